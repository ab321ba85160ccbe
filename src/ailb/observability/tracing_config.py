"""The OpenTelemetry environment variables AILB reads, parsed once into a frozen ``TracingConfig``.

Tracing is on when an OTLP endpoint is set (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_ENDPOINT``), unless ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``. Nothing
here imports opentelemetry: with tracing off it is never imported (see ``ailb.observability.tracing``).
Variables AILB does not read itself (certificates, compression, ...) reach the exporter through the process
environment, where the OpenTelemetry SDK looks for them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

PROTOCOLS = ("http/protobuf", "grpc")
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
_Getter = Callable[[str], str]  # a variable's trimmed value, "" when unset
_TRUE = ("true", "1", "yes", "on", "span_only", "span_and_event")
_FALSE = ("false", "0", "no", "off", "no_content", "event_only", "")


class TracingSettingError(ValueError):
    """A tracing variable has a bad value; ``key`` names it (``ailb.settings`` turns it into a ConfigError)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


@dataclass(frozen=True, slots=True)
class TracingConfig:
    endpoint: str = ""  # the traces endpoint, whole (for http/protobuf ending in /v1/traces)
    protocol: str = "http/protobuf"
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout: float = 10.0
    insecure: bool | None = None  # grpc only; None: decided by the endpoint's scheme
    service_name: str = "ailb"
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    sampler: str = "parentbased_always_on"
    sampler_ratio: float = 1.0
    capture_content: bool = False
    schedule_delay_ms: int = 5000

    @property
    def enabled(self) -> bool:
        return bool(self.endpoint)


def read_tracing_config(env: Mapping[str, str]) -> TracingConfig:
    """``TracingConfig`` from the standard OpenTelemetry variables in ``env`` (raises ``TracingSettingError``)."""

    def get(key: str) -> str:
        return env.get(key, "").strip()

    protocol = _choice("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", get, "") or _choice(
        "OTEL_EXPORTER_OTLP_PROTOCOL", get, "http/protobuf"
    )
    disabled = get("OTEL_SDK_DISABLED").lower() == "true"
    exporters = {e.strip().lower() for e in (get("OTEL_TRACES_EXPORTER") or "otlp").split(",")}
    if exporters - {"otlp", "none"}:
        raise TracingSettingError("OTEL_TRACES_EXPORTER", f"AILB exports traces with otlp (or none), not {exporters}")
    endpoint = _endpoint(get, protocol) if "otlp" in exporters and not disabled else ""
    sampler = get("OTEL_TRACES_SAMPLER").lower() or "parentbased_always_on"
    if sampler not in SAMPLERS:
        raise TracingSettingError("OTEL_TRACES_SAMPLER", f"must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    resource = _pairs("OTEL_RESOURCE_ATTRIBUTES", get)
    timeout_ms = _number("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", get, None) or _number(
        "OTEL_EXPORTER_OTLP_TIMEOUT", get, 10_000.0
    )
    return TracingConfig(
        endpoint=endpoint,
        protocol=protocol,
        headers=_pairs("OTEL_EXPORTER_OTLP_HEADERS", get) | _pairs("OTEL_EXPORTER_OTLP_TRACES_HEADERS", get),
        timeout=timeout_ms / 1000,
        insecure=_insecure(get),
        service_name=get("OTEL_SERVICE_NAME") or resource.get("service.name") or "ailb",
        resource_attributes=resource,
        sampler=sampler,
        sampler_ratio=_ratio(get),
        capture_content=_capture(get),
        schedule_delay_ms=max(1, int(_number("OTEL_BSP_SCHEDULE_DELAY", get, 5000.0))),
    )


def _choice(key: str, get: _Getter, default: str) -> str:
    value = get(key).lower() or default
    if value and value not in PROTOCOLS:
        raise TracingSettingError(key, f"must be one of {', '.join(PROTOCOLS)}, got {value!r}")
    return value


def _endpoint(get: _Getter, protocol: str) -> str:
    specific = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    key = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" if specific else "OTEL_EXPORTER_OTLP_ENDPOINT"
    base = specific or get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not base:
        return ""
    if not base.startswith(("http://", "https://")):
        raise TracingSettingError(key, f"must be an http:// or https:// URL, got {base!r}")
    if specific or protocol == "grpc":
        return base
    # The signal-neutral endpoint is the collector's root: the traces path is appended (OTLP/HTTP spec).
    return base.rstrip("/") + "/v1/traces"


def _pairs(key: str, get: _Getter) -> dict[str, str]:
    """``k1=v1,k2=v2`` with URL-encoded values (the W3C baggage format the OTLP variables use)."""
    found: dict[str, str] = {}
    for item in get(key).split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise TracingSettingError(key, "expected comma-separated key=value pairs")
        found[unquote(name.strip())] = unquote(value.strip())
    return found


def _number(key: str, get: _Getter, default: float | None) -> float:
    raw = get(key)
    if not raw:
        return default or 0.0
    try:
        value = float(raw)
    except ValueError:
        raise TracingSettingError(key, f"expected a number, got {raw!r}") from None
    if value < 0:
        raise TracingSettingError(key, f"must not be negative, got {value}")
    return value


def _ratio(get: _Getter) -> float:
    ratio = _number("OTEL_TRACES_SAMPLER_ARG", get, 1.0)
    if ratio > 1:
        raise TracingSettingError("OTEL_TRACES_SAMPLER_ARG", f"must be between 0 and 1, got {ratio}")
    return ratio


def _insecure(get: _Getter) -> bool | None:
    raw = (get("OTEL_EXPORTER_OTLP_TRACES_INSECURE") or get("OTEL_EXPORTER_OTLP_INSECURE")).lower()
    return None if not raw else raw == "true"


def _capture(get: _Getter) -> bool:
    key = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
    raw = get(key).lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise TracingSettingError(key, f"expected true or false, got {raw!r}")
