"""The ``ailb`` command: serve, config check, and knowledge-base (rag) management."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import signal
import sys
from collections.abc import Sequence

from ailb import __version__
from ailb.settings import ConfigError, Settings, load_settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ailb", description="AILB, the AI Load Balancer.")
    parser.add_argument("--version", action="version", version=f"ailb {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="start the gateway (HTTP and gRPC)")
    serve.add_argument("--config", help="YAML config file (default: $AILB_CONFIG)")
    serve.add_argument("--host", help="listen address (default: $HOST or 0.0.0.0)")
    serve.add_argument("--port", type=int, help="HTTP port (default: $HTTP_PORT or 8080)")
    serve.set_defaults(func=_serve)

    config = commands.add_parser("config", help="configuration tools")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="validate the configuration and print the deployments")
    check.add_argument("--config", help="YAML config file (default: $AILB_CONFIG)")
    check.set_defaults(func=_config_check)

    from ailb.cli_rag import add_rag_commands

    add_rag_commands(commands)
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"ailb: configuration error: {exc}", file=sys.stderr)
        return 2
    return code


def _load(args: argparse.Namespace) -> Settings:
    from ailb.bootstrap import check_settings

    settings = load_settings(config_path=getattr(args, "config", None))
    check_settings(settings)
    return settings


def _config_check(args: argparse.Namespace) -> int:
    from ailb.bootstrap import NO_DEPLOYMENTS

    settings = _load(args)
    if not settings.deployments:
        raise ConfigError("deployments", NO_DEPLOYMENTS)
    report = {
        "routing_strategy": settings.routing_strategy,
        "deployments": [d.redacted() for d in settings.deployments],
        "model_aliases": {k: list(v) for k, v in settings.model_aliases.items()},
        "memory": settings.memory.enabled,
        "rag": settings.rag.enabled,
        "client_keys": len(set(settings.api_keys) | {k.key for k in settings.client_keys}),
    }
    print(json.dumps(report, indent=2))
    print("configuration OK", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from dataclasses import replace

    import uvicorn

    from ailb.bootstrap import Gateway, secrets_of
    from ailb.http.app import create_app
    from ailb.http.server import server_config
    from ailb.observability.logging import configure_logging

    settings = _load(args)
    if args.host:
        settings = replace(settings, host=args.host)
    if args.port is not None:
        settings = replace(settings, http_port=args.port)
    redactor = configure_logging(
        settings.log_level, secrets=secrets_of(settings), json_lines=settings.log_format == "json"
    )
    gateway = Gateway(settings, redactor=redactor)
    config = server_config(create_app(gateway), settings)
    server = uvicorn.Server(config)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        pending: set[asyncio.Task[tuple[bool, str]]] = set()

        def on_sighup() -> None:
            task = loop.create_task(gateway.reload(force=False))
            pending.add(task)
            task.add_done_callback(pending.discard)

        if hasattr(signal, "SIGHUP"):
            loop.add_signal_handler(signal.SIGHUP, on_sighup)
        try:
            await gateway.start()
        except BaseException:
            await gateway.aclose()
            raise
        gc.freeze()  # start-up objects never become garbage: keep them out of every later collection
        await server.serve()

    if sys.platform != "win32":
        import uvloop

        uvloop.run(run())
    else:
        asyncio.run(run())
    return 0 if server.started else 1


if __name__ == "__main__":
    raise SystemExit(main())
