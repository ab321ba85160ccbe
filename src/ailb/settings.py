"""Configuration: the original AILB environment variables plus an optional YAML file.

Parsed once into a frozen ``Settings``; every bad key or value is a ``ConfigError`` naming that key. The
implementation lives in ``ailb.config``; this module is the import path the rest of AILB uses.
"""

from __future__ import annotations

from ailb.config.errors import ConfigError
from ailb.config.load import load_settings
from ailb.config.schema import (
    ClientKeyConfig,
    DeploymentConfig,
    HttpLimits,
    MemoryConfig,
    RagConfig,
    RouterConfig,
    Settings,
    Timeouts,
)
from ailb.redaction import mask_secret as redact
from ailb.redaction import redact_url

__all__ = [
    "ClientKeyConfig",
    "ConfigError",
    "DeploymentConfig",
    "HttpLimits",
    "MemoryConfig",
    "RagConfig",
    "RouterConfig",
    "Settings",
    "Timeouts",
    "load_settings",
    "redact",
    "redact_url",
]
