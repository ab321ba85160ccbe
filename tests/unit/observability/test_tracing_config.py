from __future__ import annotations

import os
import re

import pytest

from ailb.observability.context import request_id_from
from ailb.observability.tracing import NO_TRACING, build_tracing
from ailb.observability.tracing_config import read_tracing_config
from ailb.redaction import Redactor
from ailb.settings import ConfigError, load_settings


def test_without_an_endpoint_tracing_is_off() -> None:
    config = read_tracing_config({"OTEL_SERVICE_NAME": "gw", "OTEL_TRACES_SAMPLER": "always_on"})
    assert not config.enabled
    assert build_tracing(config, Redactor()) is NO_TRACING


def test_the_standard_variables() -> None:
    config = read_tracing_config(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/",
            "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20abc,x-tenant = blue",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,service.name=from-resource",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.25",
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "True",
        }
    )
    assert config.enabled and config.protocol == "http/protobuf"
    assert config.endpoint == "http://collector:4318/v1/traces"  # the signal path is appended to the base
    assert config.headers == {"Authorization": "Bearer abc", "x-tenant": "blue"}
    assert config.timeout == 2.5
    assert config.service_name == "from-resource" and config.resource_attributes["deployment.environment"] == "prod"
    assert (config.sampler, config.sampler_ratio, config.capture_content) == ("parentbased_traceidratio", 0.25, True)


def test_defaults_and_signal_specific_variables() -> None:
    config = read_tracing_config(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://ignored:4318",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces.example:4318/custom/path",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "k=v",
        }
    )
    assert config.endpoint == "https://traces.example:4318/custom/path"  # used as it is
    assert config.headers == {"k": "v"}
    assert (config.service_name, config.sampler, config.capture_content) == ("ailb", "parentbased_always_on", False)
    grpc = read_tracing_config({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert (grpc.endpoint, grpc.protocol) == ("http://c:4317", "grpc")


@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_SDK_DISABLED": "true"},
        {"OTEL_TRACES_EXPORTER": "none"},
    ],
)
def test_tracing_can_be_switched_off_with_an_endpoint_set(env: dict[str, str]) -> None:
    assert not read_tracing_config({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", **env}).enabled


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
        ("OTEL_TRACES_SAMPLER", "sometimes"),
        ("OTEL_TRACES_SAMPLER_ARG", "2"),
        ("OTEL_TRACES_EXPORTER", "zipkin"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
        ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "maybe"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
    ],
)
def test_a_bad_value_is_a_config_error_naming_the_variable(key: str, value: str) -> None:
    env = {"OPENAI_API_KEY": "sk-test-key-1234", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", key: value}
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert info.value.key == key


def test_log_format() -> None:
    assert load_settings({}).log_format == "text"
    assert load_settings({"LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(ConfigError) as info:
        load_settings({"LOG_FORMAT": "xml"})
    assert info.value.key == "LOG_FORMAT"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"x-request-id", b"abc-123:x.y_z")], "abc-123:x.y_z"),
        ([(b"host", b"h"), (b"x-request-id", b"A" * 128)], "A" * 128),
    ],
)
def test_a_safe_request_id_is_kept(headers: list[tuple[bytes, bytes]], expected: str) -> None:
    assert request_id_from(headers) == expected


@pytest.mark.parametrize(
    "value", [b"", b"A" * 129, b"with space", b"semi;colon", b"new\nline", "ü".encode(), b"slash/no"]
)
def test_an_unsafe_request_id_is_replaced_by_a_random_one(value: bytes) -> None:
    generated = request_id_from([(b"x-request-id", value)])
    assert len(generated) == 16 and int(generated, 16) >= 0
    assert generated != request_id_from([(b"x-request-id", value)])
    assert len(request_id_from([])) == 16


def test_new_request_ids_are_16_lowercase_hex_digits_and_differ_in_a_forked_worker() -> None:
    ids = {request_id_from([]) for _ in range(1000)}
    assert len(ids) == 1000 and all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # a worker forked from this process: its generator must not repeat the parent's sequence
        os.write(write, request_id_from([]).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read, "rb") as pipe:
        from_child = pipe.read().decode()
    assert re.fullmatch(r"[0-9a-f]{16}", from_child) and from_child != request_id_from([])
