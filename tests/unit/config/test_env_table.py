"""The table of environment variables: every variable parses, ranges are enforced, defaults hold, and the
config file's ``settings:`` section takes the same settings under their paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ailb.config.env import FILE_VARS, PROVIDERS, SETTINGS_VARS, VARS, Var, default_of, read_env
from ailb.providers.kinds import provider_kinds
from ailb.settings import ConfigError, load_settings
from tests.unit.config.samples import at_path, invalid, valid

DERIVED_DEFAULTS = {"memory.path", "rag.path", "spend_path"}  # follow AILB_DATA_DIR / MEMORY_PATH


def _ids(var: Var) -> str:
    return var.name


def test_names_and_paths_are_unique() -> None:
    assert len({v.name for v in VARS}) == len(VARS)
    assert len({v.path for v in VARS}) == len(VARS)


@pytest.mark.parametrize("var", VARS, ids=_ids)
def test_every_variable_parses_to_its_path(var: Var) -> None:
    for text, expected in valid(var):
        assert read_env({var.name: text}) == {var.path: expected}


@pytest.mark.parametrize("var", [v for v in SETTINGS_VARS if v.name != "AILB_CONFIG"], ids=_ids)  # a file
def test_every_setting_reaches_settings(var: Var) -> None:
    for text, expected in valid(var):
        assert at_path(load_settings({var.name: text}), var.path) == expected


@pytest.mark.parametrize("var", [v for v in VARS if invalid(v)], ids=_ids)
def test_ranges_and_choices_are_enforced_naming_the_variable(var: Var) -> None:
    for text in invalid(var):
        with pytest.raises(ConfigError) as info:
            read_env({var.name: text})
        assert info.value.key == var.name
        assert str(info.value).startswith(f"{var.name}: ")


def test_an_empty_variable_counts_as_unset() -> None:
    assert read_env({v.name: " " for v in VARS}) == {}


@pytest.mark.parametrize("var", [v for v in SETTINGS_VARS if v.path not in DERIVED_DEFAULTS], ids=_ids)
def test_defaults_without_environment_or_file(var: Var) -> None:
    assert at_path(load_settings({}), var.path) == default_of(var)


def test_the_derived_defaults() -> None:
    settings = load_settings({})
    assert (settings.memory.path, settings.rag.path, settings.spend_path) == (
        "./ailb_memory", "./ailb_rag", "ailb_spend.sqlite3",
    )  # fmt: skip
    settings = load_settings({"MEMORY_PATH": "/m/memory", "AILB_DATA_DIR": "/d"})
    assert (settings.memory.path, settings.rag.path, settings.spend_path) == (
        "/m/memory", "/d/ailb_rag", "/m/ailb_spend.sqlite3",
    )  # fmt: skip


def test_provider_variables_come_from_the_kinds_and_configure_one_deployment_each() -> None:
    names = {v.name for v in VARS if v.path.startswith(PROVIDERS)}
    for kind in provider_kinds():
        assert {kind.env.base_url, kind.env.models, kind.configured_by} <= names
    settings = load_settings({"ANTHROPIC_API_KEY": "sk-ant-0001", "ANTHROPIC_MAX_TOKENS": "512"})
    (anthropic,) = settings.deployments
    assert (anthropic.name, anthropic.default_max_tokens, anthropic.priority) == ("anthropic", 512, 1)
    assert anthropic.models == ("claude-3-5-sonnet-latest", "claude-3-5-haiku-latest", "claude-3-opus-latest")
    assert load_settings({"OLLAMA_MODELS": "llama3", "OPENAI_BASE_URL": "http://h:1/v1"}).deployments == ()


def _nested(path: str, value: str) -> str:
    """``memory.top_k`` → ``settings:\\n  memory:\\n    top_k: '8'`` (quoted: the file's text is checked)."""
    lines = ["settings:"]
    parts = path.split(".")
    for depth, part in enumerate(parts[:-1]):
        lines.append("  " * (depth + 1) + f"{part}:")
    quoted = "'" + value.replace("'", "''") + "'"
    lines.append("  " * len(parts) + f"{parts[-1]}: {quoted}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("var", list(FILE_VARS.values()), ids=_ids)
def test_every_file_setting_is_checked_like_its_variable(tmp_path: Path, var: Var) -> None:
    path = tmp_path / "ailb.yaml"
    for text, expected in valid(var):
        path.write_text(_nested(var.path, text))
        assert at_path(load_settings({}, str(path)), var.path) == expected
    for text in invalid(var):
        path.write_text(_nested(var.path, text))
        with pytest.raises(ConfigError) as info:
            load_settings({}, str(path))
        assert info.value.key == f"settings.{var.path}"


def test_secrets_and_the_file_location_are_environment_only() -> None:
    env_only = {v.name for v in VARS if not v.file}
    assert {"AILB_API_KEYS", "AILB_ADMIN_TOKEN", "METRICS_TOKEN", "AILB_CONFIG", "OPENAI_API_KEY"} <= env_only


def test_the_file_wins_over_the_environment_and_expands_references(tmp_path: Path) -> None:
    path = tmp_path / "ailb.yaml"
    path.write_text("settings:\n  module_id: ${POD}\n  router:\n    max_attempts: 5\n  memory: {enabled: false}\n")
    settings = load_settings({"ROUTER_MAX_ATTEMPTS": "2", "MEMORY_TOP_K": "7", "POD": "ailb-7"}, str(path))
    assert (settings.module_id, settings.router.max_attempts, settings.memory.enabled) == ("ailb-7", 5, False)
    assert settings.memory.top_k == 7  # the environment still sets what the file leaves alone


@pytest.mark.parametrize(
    ("yaml_text", "key", "message"),
    [
        ("settings:\n  router: {max_attemps: 2}\n", "settings.router.max_attemps", "did you mean 'max_attempts'?"),
        ("settings:\n  routr: {max_attempts: 2}\n", "settings.routr", "did you mean 'router'?"),
        ("settings:\n  memory: 3\n", "settings.memory", "must be a mapping"),
        ("settings:\n  memory: {top_k: [1]}\n", "settings.memory.top_k", "expected a single value"),
        ("settings:\n  memory: {top_k: null}\n", "settings.memory.top_k", "expected a single value"),
        ("settings:\n  admin_token: x\n", "settings.admin_token", "unknown key"),
        ("settings:\n  rag: {enabled: perhaps}\n", "settings.rag.enabled", "expected true or false"),
        ("settings:\n  module_id: ${UNSET_NAME}\n", "settings.module_id", "UNSET_NAME"),
        ("settings: [1]\n", "settings", "must be a mapping"),
        ("deployments: {a: 1}\n", "deployments", "must be a list"),
    ],
)
def test_file_errors_name_the_path(tmp_path: Path, yaml_text: str, key: str, message: str) -> None:
    path = tmp_path / "ailb.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message) as info:
        load_settings({}, str(path))
    assert info.value.key == key


def test_a_setting_the_file_leaves_empty_keeps_its_default(tmp_path: Path) -> None:
    path = tmp_path / "ailb.yaml"
    path.write_text("settings:\n  chroma_host: ''\n")
    settings: Any = load_settings({}, str(path))
    assert settings.chroma_host == ""
