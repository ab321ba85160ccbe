"""Every field of ``Settings`` can be set (by a variable, the file, or both), and the README and the example
file agree with the table."""

from __future__ import annotations

import re
from dataclasses import fields, is_dataclass
from pathlib import Path

from ailb.config.client_keys import CLIENT_KEY_FIELDS
from ailb.config.deployments import DEPLOYMENT_KEYS, TIMEOUT_KEYS
from ailb.config.docs import END, START, markdown_table
from ailb.config.env import FILE_VARS, PROVIDERS, VARS
from ailb.config.file import SECTIONS
from ailb.config.schema import GROUPS
from ailb.settings import ClientKeyConfig, DeploymentConfig, Settings, Timeouts

ROOT = Path(__file__).parents[3]
FILE_SECTIONS = {"deployments", "model_aliases", "client_keys"}  # set by their own sections of the file
DERIVED = {"unused_provider_env"}  # worked out from the others, never set
STANDARD = {"tracing"}  # the standard OTEL_* variables, read by observability/tracing_config.py


def _leaves(cls: type, prefix: str = "") -> list[str]:
    found: list[str] = []
    for item in fields(cls):  # type: ignore[arg-type]
        path = prefix + item.name
        nested = GROUPS.get(path) if not prefix else None
        found += _leaves(nested, f"{path}.") if nested is not None else [path]
    return found


def test_every_settings_field_is_reachable() -> None:
    reachable = {v.path for v in VARS} | FILE_SECTIONS | DERIVED | STANDARD
    assert [leaf for leaf in _leaves(Settings) if leaf not in reachable] == []
    assert set(GROUPS) == {f.name for f in fields(Settings) if is_dataclass(f.default)}


def test_every_table_path_is_a_field() -> None:
    leaves = set(_leaves(Settings))
    assert [v.path for v in VARS if not v.path.startswith(PROVIDERS) and v.path not in leaves] == []
    provider_fields = {f.name for f in fields(DeploymentConfig)}
    assert {v.path.rpartition(".")[2] for v in VARS if v.path.startswith(PROVIDERS)} <= provider_fields


def test_every_deployment_and_client_key_field_is_a_file_key() -> None:
    assert {f.name for f in fields(DeploymentConfig)} <= DEPLOYMENT_KEYS
    assert {f.name for f in fields(Timeouts)} == set(TIMEOUT_KEYS)
    assert {f.name for f in fields(ClientKeyConfig)} - {"key"} == CLIENT_KEY_FIELDS  # the key is the entry's name


def test_the_readme_holds_the_generated_table() -> None:
    readme = (ROOT / "README.md").read_text()
    start, end = readme.index(START), readme.index(END) + len(END)
    assert readme[start:end] == markdown_table(), "run: python -m ailb.config.docs, and paste it into README.md"
    described = readme[:start] + readme[end:]
    assert [v.name for v in VARS if f"`{v.name}`" not in described] == []  # each is explained somewhere too


def test_the_example_file_shows_every_setting_with_its_variable() -> None:
    lines = (ROOT / "ailb.example.yaml").read_text().splitlines()
    start = lines.index("settings:")
    block = [line.removeprefix("  ").removeprefix("# ") for line in lines[start + 1 :]]
    missing = []
    for path, var in FILE_VARS.items():
        group, _, leaf = path.rpartition(".")
        indent = "  " if group else ""
        if not any(re.match(rf"{indent}{leaf}: .*# {var.name}\b", line) for line in block):
            missing.append(path)
    assert missing == []
    assert set(SECTIONS) == FILE_SECTIONS | {"settings"}
