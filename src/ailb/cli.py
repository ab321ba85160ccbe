"""The ``ailb`` command: serve, config check, and knowledge-base (rag) management."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

from ailb import __version__
from ailb.embeddings import native_work
from ailb.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from ailb.bootstrap import Gateway
    from ailb.demo import Demo
    from ailb.startup import DrainingServer


def collect_as_served() -> None:
    """Python's cycle collector as ``ailb serve`` sets it once started (the in-process benchmarks call this too)."""
    gc.freeze()  # start-up objects never become garbage: keep them out of every later collection
    # A request allocates a few hundred objects and frees nearly all by reference counting: collecting the young
    # generation every 700 allocations (the default) scanned them for nothing every couple of requests.
    gc.set_threshold(50_000, 20, 100)


def run() -> NoReturn:
    """The ``ailb`` command and ``python -m ailb``: ``main``, then ``exit_process``."""
    try:
        code = main()
    except SystemExit:
        raise
    except BaseException as exc:
        if not native_work.under_way():
            raise
        traceback.print_exc()
        code = 130 if isinstance(exc, KeyboardInterrupt) else 1
    exit_process(code)


def exit_process(code: int) -> NoReturn:
    """Exit with ``code``; while the embedding runtime works on a daemon thread (a failed start-up while the model
    loads, a stop during an encode), without the interpreter's finalization, which would abort under it."""
    if native_work.close():
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ailb", description="AILB, the AI Load Balancer.")
    parser.add_argument("--version", action="version", version=f"ailb {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="start the gateway (HTTP and gRPC)")
    serve.add_argument("--config", help="YAML config file (default: $AILB_CONFIG)")
    serve.add_argument("--host", help="listen address (default: $HOST or 0.0.0.0)")
    serve.add_argument("--port", type=int, help="HTTP port (default: $HTTP_PORT or 8080)")
    serve.add_argument("--grpc-port", type=int, help="gRPC control-plane port (default: $GRPC_PORT or 50051)")
    serve.add_argument("--workers", type=int, help="processes serving the same ports (default: $WORKERS or 1)")
    serve.add_argument(
        "--demo", action="store_true", help="add a built-in echo model named 'demo' (no provider key needed)"
    )
    serve.set_defaults(func=_serve)

    config = commands.add_parser("config", help="configuration tools")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="validate the configuration and print the deployments")
    check.add_argument("--config", help="YAML config file (default: $AILB_CONFIG)")
    check.set_defaults(func=_config_check)

    from ailb.cli_rag import add_rag_commands

    add_rag_commands(commands)
    args = parser.parse_args(argv)
    from ailb.startup import StartupError

    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"ailb: configuration error: {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(f"ailb: cannot start: {exc}", file=sys.stderr)
        return 1
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
    from ailb.startup import warnings

    for warning in warnings(settings):
        print(f"warning: {warning}", file=sys.stderr)
    print("configuration OK", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from ailb import workers
    from ailb.bootstrap import Gateway, secrets_of
    from ailb.http.app import create_app
    from ailb.http.server import server_config
    from ailb.observability.logging import configure_logging
    from ailb.startup import DrainingServer

    settings = _serve_settings(args)
    demo = _demo(settings) if args.demo else None
    if demo is not None:
        settings = demo.settings
    redactor = configure_logging(
        settings.log_level, secrets=secrets_of(settings), json_lines=settings.log_format == "json"
    )
    if settings.workers != 1 and not workers.is_worker():
        return workers.supervise(settings, args.config)
    gateway = Gateway(settings, redactor=redactor)
    server = DrainingServer(server_config(create_app(gateway), settings))
    try:
        if sys.platform != "win32":
            import uvloop

            uvloop.run(_run(gateway, server, demo))
        else:
            asyncio.run(_run(gateway, server, demo))
    finally:
        if demo is not None:
            demo.remove_folder()
    return 0 if server.started else 1


def _serve_settings(args: argparse.Namespace) -> Settings:
    """The settings with the command line's overrides; the ports checked free (but a worker's)."""
    from dataclasses import replace

    from ailb import workers
    from ailb.startup import check_ports

    settings = _load(args)
    if args.host:
        settings = replace(settings, host=args.host)
    if args.port is not None:
        settings = replace(settings, http_port=args.port)
    if args.grpc_port is not None:
        settings = replace(settings, grpc_port=args.grpc_port)
    if args.workers is not None:
        settings = replace(settings, workers=args.workers)
    if not workers.is_worker():  # a worker's ports are held for it by its parent
        check_ports(settings)
    if settings.workers != 1 and args.demo:
        raise ConfigError("--demo", "runs in one process: leave out --workers/WORKERS")
    return settings


async def _run(gateway: Gateway, server: DrainingServer, demo: Demo | None) -> None:
    """Start, report, serve until told to stop; ``SIGHUP`` reloads the configuration."""
    from ailb import workers
    from ailb.startup import report

    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[tuple[bool, str]]] = set()

    def on_sighup() -> None:
        task = loop.create_task(gateway.reload(force=False))
        pending.add(task)
        task.add_done_callback(pending.discard)

    if hasattr(signal, "SIGHUP"):
        loop.add_signal_handler(signal.SIGHUP, on_sighup)
    await _start(gateway, demo)
    report(gateway)
    collect_as_served()
    try:
        await server.serve(sockets=workers.listen_sockets(gateway.runtime.settings))
    finally:
        if demo is not None:
            await demo.aclose()


def _demo(settings: Settings) -> Demo:
    from ailb.demo import Demo

    return Demo(settings)


async def _start(gateway: Gateway, demo: Demo | None) -> None:
    """Start the demo's upstream (with ``--demo``) and the gateway; on failure close what was started."""
    try:
        if demo is not None:
            await demo.start()
        await gateway.start()
        if demo is not None:
            await demo.seed(gateway)
    except BaseException:
        await gateway.aclose()
        if demo is not None:
            await demo.aclose()
        raise


if __name__ == "__main__":
    run()
