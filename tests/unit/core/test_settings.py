from __future__ import annotations

from pathlib import Path

import pytest

from ailb.settings import ConfigError, Settings, load_settings, redact, redact_url


def test_env_only_setup_yields_named_deployments_in_failover_order() -> None:
    settings = load_settings(
        {
            "OPENAI_API_KEY": "sk-openai-123456789",
            "OPENAI_MODELS": "gpt-4o, gpt-4o-mini",
            "ANTHROPIC_API_KEY": "sk-ant-123456789",
            "ANTHROPIC_MODELS": "claude-3-5-haiku-latest",
            "OLLAMA_BASE_URL": "http://127.0.0.1:11434/",
            "HTTP_PORT": "9000",
            "ROUTING_STRATEGY": "failover",
        }
    )
    names = [(d.name, d.provider, d.priority) for d in settings.deployments]
    assert names == [("openai", "openai", 0), ("anthropic", "anthropic", 1), ("ollama", "ollama", 2)]
    assert settings.deployments[0].models == ("gpt-4o", "gpt-4o-mini")
    assert settings.deployments[0].base_url == "https://api.openai.com/v1"
    assert settings.deployments[2].base_url == "http://127.0.0.1:11434"
    assert settings.deployments[2].input_cost_per_1k == 0.0
    assert settings.http_port == 9000
    assert settings.routing_strategy == "failover"
    assert settings.memory.enabled is True
    assert settings.rag.enabled is False


def test_provider_without_key_is_not_configured() -> None:
    assert load_settings({"OPENAI_MODELS": "gpt-4o"}).deployments == ()


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"HTTP_PORT": "eighty"}, "HTTP_PORT"),
        ({"HTTP_PORT": "70000"}, "HTTP_PORT"),
        ({"ENABLE_MEMORY": "maybe"}, "ENABLE_MEMORY"),
        ({"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": "api.openai.com"}, "OPENAI_BASE_URL"),
        ({"MEMORY_BACKEND": "redis"}, "MEMORY_BACKEND"),
    ],
)
def test_bad_env_values_name_the_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert info.value.key == key
    assert key in str(info.value)


def test_yaml_deployments_with_env_expansion_and_aliases(tmp_path: Path) -> None:
    path = tmp_path / "ailb.yaml"
    path.write_text(
        """
deployments:
  - name: east
    provider: openai
    base_url: http://127.0.0.1:9/v1
    api_key: ${EAST_KEY}
    models: [gpt-4o]
    weight: 3
    version: blue
    input_cost_per_1k: 0.5
    timeouts: {connect: 2, first_token: 10}
  - name: west
    provider: anthropic
    api_key: literal-key
    models: [claude-3-5-haiku-latest]
    priority: 5
model_aliases:
  smart: [gpt-4o, claude-3-5-haiku-latest]
"""
    )
    settings = load_settings({"EAST_KEY": "sk-east-secret"}, str(path))
    east, west = settings.deployments
    assert east.api_key == "sk-east-secret"
    assert east.weight == 3.0 and east.version == "blue" and east.input_cost_per_1k == 0.5
    assert east.timeouts.connect == 2 and east.timeouts.first_token == 10 and east.timeouts.idle == 30
    assert west.base_url == "https://api.anthropic.com" and west.priority == 5
    assert settings.model_aliases == {"smart": ("gpt-4o", "claude-3-5-haiku-latest")}
    assert "sk-east-secret" not in repr(east)
    assert east.redacted()["api_key"] == "****cret"


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        (
            "deployments:\n  - {name: a, provider: openai, api_key: k, models: [m], colour: red}",
            "deployments[a].colour",
        ),
        ("deployments:\n  - {name: a, provider: bedrock, api_key: k, models: [m]}", "deployments[a].provider"),
        ("deployments:\n  - {name: a, provider: openai, api_key: k, models: [m], weight: -1}", "deployments[a].weight"),
        ("deployments:\n  - {name: a, provider: openai, api_key: '${NOPE}', models: [m]}", "deployments[a].api_key"),
        ("deployments:\n  - {name: a, provider: openai, api_key: k}", "deployments[a].models"),
        (
            "deployments:\n  - {name: a, provider: openai, api_key: k, models: [m]}\nmodel_aliases: {x: [zzz]}",
            "model_aliases.x",
        ),
        (
            "deployments:\n  - {name: a, provider: openai, api_key: k, models: [m]}\n"
            "  - {name: a, provider: openai, api_key: k, models: [m]}",
            "deployments[a]",
        ),
        ("colour: red", "colour"),
        ("- just a list", "AILB_CONFIG"),
        ("deployments: [ {name: a", "AILB_CONFIG"),
    ],
)
def test_bad_yaml_names_the_key(tmp_path: Path, yaml_text: str, key: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_settings({}, str(path))
    assert info.value.key == key


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"AILB_CONFIG": str(tmp_path / "absent.yaml")})
    assert info.value.key == "AILB_CONFIG"


def test_redact_keeps_only_a_short_tail() -> None:
    assert redact("") == ""
    assert redact("short") == "****"
    assert redact("sk-0123456789abcdef") == "****cdef"


def test_settings_overrides_are_checked_like_env_vars(tmp_path: Path) -> None:
    path = tmp_path / "ailb.yaml"
    path.write_text("settings:\n  max_request_bytes: big\n")
    with pytest.raises(ConfigError) as info:
        load_settings({}, str(path))
    assert info.value.key == "settings.max_request_bytes"
    path.write_text("settings:\n  max_request_bytes: 2048\n  drain_timeout: 3\n  routing_strategy: failover\n")
    settings = load_settings({}, str(path))
    assert (settings.max_request_bytes, settings.drain_timeout, settings.routing_strategy) == (2048, 3.0, "failover")


def test_a_yaml_error_says_where_without_quoting_the_line(tmp_path: Path) -> None:
    path = tmp_path / "ailb.yaml"
    path.write_text("deployments:\n  - name: a\n    api_key: sk-secret-abcdef: x\n")
    with pytest.raises(ConfigError) as info:
        load_settings({}, str(path))
    assert "line 3" in str(info.value)
    assert "sk-secret" not in str(info.value)


def test_redacted_base_url_hides_userinfo_and_query() -> None:
    assert redact_url("https://user:pw@host.example/v1?api-key=abc") == "https://****@host.example/v1?****"
    assert redact_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"


@pytest.mark.parametrize(
    ("yaml_text", "key", "hint"),
    [
        (
            "deployments:\n  - {name: east, provider: openai, api_key: k, models: [m], max_concurency: 4}",
            "deployments[east].max_concurency",
            "did you mean 'max_concurrency'?",
        ),
        (
            "deployments:\n  - {name: east, provider: openai, api_key: k, models: [m], timeouts: {frist_token: 9}}",
            "deployments[east].timeouts.frist_token",
            "did you mean 'first_token'?",
        ),
        ("deployment: []", "deployment", "did you mean 'deployments'?"),
        ("settings: {routing_stratgy: random}", "settings.routing_stratgy", "did you mean 'routing_strategy'?"),
        ("settings: {colour: red}", "settings.colour", "known: drain_timeout, max_request_bytes"),
    ],
)
def test_unknown_keys_are_named_by_deployment_name_with_a_suggestion(
    tmp_path: Path, yaml_text: str, key: str, hint: str
) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_settings({}, str(path))
    assert info.value.key == key
    assert hint in str(info.value)


def test_a_file_with_deployments_is_authoritative(tmp_path: Path) -> None:
    path = tmp_path / "ailb.yaml"
    path.write_text(
        "deployments:\n"
        "  - {name: openai-east, provider: openai, api_key: '${OPENAI_API_KEY}', models: [gpt-4o-mini]}\n"
    )
    env = {"OPENAI_API_KEY": "sk-from-env", "ANTHROPIC_API_KEY": "sk-ant-unused"}
    settings = load_settings(env, str(path))
    assert [d.name for d in settings.deployments] == ["openai-east"]  # no second, env-configured "openai"
    assert settings.deployments[0].api_key == "sk-from-env"
    assert settings.unused_provider_env == ("ANTHROPIC_API_KEY",)  # set, but neither used nor referred to


def test_a_file_without_deployments_keeps_the_env_ones(tmp_path: Path) -> None:
    path = tmp_path / "ailb.yaml"
    path.write_text("settings: {routing_strategy: failover}\n")
    settings = load_settings({"OPENAI_API_KEY": "sk-from-env"}, str(path))
    assert [d.name for d in settings.deployments] == ["openai"]
    assert settings.unused_provider_env == ()


def test_one_data_folder_holds_both_stores_unless_a_path_is_given() -> None:
    assert (Settings().memory.path, Settings().rag.path) == ("./ailb_memory", "./ailb_rag")
    settings = load_settings({"AILB_DATA_DIR": "/srv/ailb"})
    assert (settings.data_dir, settings.memory.path, settings.rag.path) == (
        "/srv/ailb", "/srv/ailb/ailb_memory", "/srv/ailb/ailb_rag"
    )
    settings = load_settings({"AILB_DATA_DIR": "/srv/ailb", "MEMORY_PATH": "/var/memory"})
    assert (settings.memory.path, settings.rag.path) == ("/var/memory", "/srv/ailb/ailb_rag")
    assert load_settings({}).memory.path == "./ailb_memory"  # the original AILB's default, in the current folder
