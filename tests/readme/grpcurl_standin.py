"""Runs a README block of ``grpcurl`` commands where grpcurl itself cannot be installed (it is in neither
Debian's nor PyPI's registry): the block runs in bash exactly as printed, with ``grpcurl`` defined as a shell
function that hands its arguments over, and each call is then made with the same method, JSON body and
metadata through Python's gRPC client."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping

import grpc
from google.protobuf import descriptor_pool, json_format
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2  # noqa: F401  (registers grpc.health.v1 in the descriptor pool)

from ailb.control.generated import module_service_pb2  # noqa: F401  (registers marchproxy.ModuleService)

_CAPTURE = 'grpcurl() { printf "%s\\0" "$@"; printf "\\1"; }\n'


def grpcurl_calls(code: str, env: Mapping[str, str], cwd: str) -> list[list[str]]:
    """The argument lists of every grpcurl call the block makes, as bash expands them."""
    out = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", _CAPTURE + code], env=dict(env), cwd=cwd, capture_output=True, timeout=60
    )
    if out.returncode != 0:
        raise RuntimeError(f"the block failed in bash: {out.stderr.decode()}")
    return [call.split("\0")[:-1] for call in out.stdout.decode().split("\1") if call]


def call(arguments: list[str]) -> str:
    """What ``grpcurl ARGUMENTS`` does for the options the README uses: -plaintext, -H, -d, address, method."""
    headers: list[tuple[str, str]] = []
    data = "{}"
    positional: list[str] = []
    words = iter(arguments)
    for word in words:
        if word == "-plaintext":
            continue
        if word == "-H":
            name, _, value = next(words).partition(":")
            headers.append((name.strip().lower(), value.strip()))
        elif word == "-d":
            data = next(words)
        elif word.startswith("-"):
            raise ValueError(f"grpcurl option {word} is not understood by this stand-in")
        else:
            positional.append(word)
    address, method = positional
    service_name, _, method_name = method.partition("/")
    descriptor = descriptor_pool.Default().FindServiceByName(service_name).FindMethodByName(method_name)
    request_class = GetMessageClass(descriptor.input_type)
    response_class = GetMessageClass(descriptor.output_type)
    request = json_format.Parse(data, request_class())
    with grpc.insecure_channel(address) as channel:
        stub = channel.unary_unary(
            f"/{service_name}/{method_name}",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        response = stub(request, metadata=headers, timeout=10)
    return json_format.MessageToJson(response)
