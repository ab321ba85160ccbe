from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HealthStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HEALTHY: _ClassVar[HealthStatus]
    UNHEALTHY: _ClassVar[HealthStatus]
    DEGRADED: _ClassVar[HealthStatus]
HEALTHY: HealthStatus
UNHEALTHY: HealthStatus
DEGRADED: HealthStatus

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("module_id", "module_type", "version", "health", "uptime_seconds", "envoy_version", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MODULE_ID_FIELD_NUMBER: _ClassVar[int]
    MODULE_TYPE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ENVOY_VERSION_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    module_id: str
    module_type: str
    version: str
    health: HealthStatus
    uptime_seconds: int
    envoy_version: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, module_id: _Optional[str] = ..., module_type: _Optional[str] = ..., version: _Optional[str] = ..., health: _Optional[_Union[HealthStatus, str]] = ..., uptime_seconds: _Optional[int] = ..., envoy_version: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class RoutesRequest(_message.Message):
    __slots__ = ("cluster_id",)
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    cluster_id: str
    def __init__(self, cluster_id: _Optional[str] = ...) -> None: ...

class RoutesResponse(_message.Message):
    __slots__ = ("routes", "version")
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    routes: _containers.RepeatedCompositeFieldContainer[RouteConfig]
    version: int
    def __init__(self, routes: _Optional[_Iterable[_Union[RouteConfig, _Mapping]]] = ..., version: _Optional[int] = ...) -> None: ...

class RouteConfig(_message.Message):
    __slots__ = ("name", "prefix", "cluster_name", "hosts", "timeout_seconds", "headers", "enabled", "rate_limit")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_NAME_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    name: str
    prefix: str
    cluster_name: str
    hosts: _containers.RepeatedScalarFieldContainer[str]
    timeout_seconds: int
    headers: _containers.ScalarMap[str, str]
    enabled: bool
    rate_limit: RateLimitConfig
    def __init__(self, name: _Optional[str] = ..., prefix: _Optional[str] = ..., cluster_name: _Optional[str] = ..., hosts: _Optional[_Iterable[str]] = ..., timeout_seconds: _Optional[int] = ..., headers: _Optional[_Mapping[str, str]] = ..., enabled: _Optional[bool] = ..., rate_limit: _Optional[_Union[RateLimitConfig, _Mapping]] = ...) -> None: ...

class RateLimitRequest(_message.Message):
    __slots__ = ("route_name", "config")
    ROUTE_NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    route_name: str
    config: RateLimitConfig
    def __init__(self, route_name: _Optional[str] = ..., config: _Optional[_Union[RateLimitConfig, _Mapping]] = ...) -> None: ...

class RateLimitConfig(_message.Message):
    __slots__ = ("requests_per_second", "burst_size", "enabled")
    REQUESTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    BURST_SIZE_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    requests_per_second: int
    burst_size: int
    enabled: bool
    def __init__(self, requests_per_second: _Optional[int] = ..., burst_size: _Optional[int] = ..., enabled: _Optional[bool] = ...) -> None: ...

class RateLimitResponse(_message.Message):
    __slots__ = ("success", "message")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...

class MetricsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MetricsResponse(_message.Message):
    __slots__ = ("timestamp", "total_connections", "active_connections", "total_requests", "requests_per_second", "latency", "status_codes", "routes")
    class StatusCodesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class RoutesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: RouteMetrics
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[RouteMetrics, _Mapping]] = ...) -> None: ...
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODES_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    timestamp: int
    total_connections: int
    active_connections: int
    total_requests: int
    requests_per_second: int
    latency: LatencyMetrics
    status_codes: _containers.ScalarMap[str, int]
    routes: _containers.MessageMap[str, RouteMetrics]
    def __init__(self, timestamp: _Optional[int] = ..., total_connections: _Optional[int] = ..., active_connections: _Optional[int] = ..., total_requests: _Optional[int] = ..., requests_per_second: _Optional[int] = ..., latency: _Optional[_Union[LatencyMetrics, _Mapping]] = ..., status_codes: _Optional[_Mapping[str, int]] = ..., routes: _Optional[_Mapping[str, RouteMetrics]] = ...) -> None: ...

class LatencyMetrics(_message.Message):
    __slots__ = ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "avg_ms")
    P50_MS_FIELD_NUMBER: _ClassVar[int]
    P90_MS_FIELD_NUMBER: _ClassVar[int]
    P95_MS_FIELD_NUMBER: _ClassVar[int]
    P99_MS_FIELD_NUMBER: _ClassVar[int]
    AVG_MS_FIELD_NUMBER: _ClassVar[int]
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    avg_ms: float
    def __init__(self, p50_ms: _Optional[float] = ..., p90_ms: _Optional[float] = ..., p95_ms: _Optional[float] = ..., p99_ms: _Optional[float] = ..., avg_ms: _Optional[float] = ...) -> None: ...

class RouteMetrics(_message.Message):
    __slots__ = ("requests", "errors", "avg_latency_ms")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    AVG_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    requests: int
    errors: int
    avg_latency_ms: float
    def __init__(self, requests: _Optional[int] = ..., errors: _Optional[int] = ..., avg_latency_ms: _Optional[float] = ...) -> None: ...

class TrafficWeightRequest(_message.Message):
    __slots__ = ("route_name", "weights")
    ROUTE_NAME_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    route_name: str
    weights: _containers.RepeatedCompositeFieldContainer[TrafficWeight]
    def __init__(self, route_name: _Optional[str] = ..., weights: _Optional[_Iterable[_Union[TrafficWeight, _Mapping]]] = ...) -> None: ...

class TrafficWeight(_message.Message):
    __slots__ = ("backend_name", "weight")
    BACKEND_NAME_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    backend_name: str
    weight: int
    def __init__(self, backend_name: _Optional[str] = ..., weight: _Optional[int] = ...) -> None: ...

class TrafficWeightResponse(_message.Message):
    __slots__ = ("success", "message", "applied_weights")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    APPLIED_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    applied_weights: _containers.RepeatedCompositeFieldContainer[TrafficWeight]
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ..., applied_weights: _Optional[_Iterable[_Union[TrafficWeight, _Mapping]]] = ...) -> None: ...

class ReloadRequest(_message.Message):
    __slots__ = ("force",)
    FORCE_FIELD_NUMBER: _ClassVar[int]
    force: bool
    def __init__(self, force: _Optional[bool] = ...) -> None: ...

class ReloadResponse(_message.Message):
    __slots__ = ("success", "message", "reload_timestamp")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RELOAD_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    reload_timestamp: int
    def __init__(self, success: _Optional[bool] = ..., message: _Optional[str] = ..., reload_timestamp: _Optional[int] = ...) -> None: ...
