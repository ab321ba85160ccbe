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
        ({"MAX_HEADER_BYTES": "10"}, "MAX_HEADER_BYTES"),
        ({"MAX_HEADERS": "many"}, "MAX_HEADERS"),
        ({"HEADER_TIMEOUT": "0"}, "HEADER_TIMEOUT"),
        ({"BODY_TIMEOUT": "-1"}, "BODY_TIMEOUT"),
        ({"KEEPALIVE_TIMEOUT": "soon"}, "KEEPALIVE_TIMEOUT"),
        ({"MAX_CONNECTIONS": "0"}, "MAX_CONNECTIONS"),
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
    cache_read_cost_per_1k: 0.00008
    cache_write_cost_per_1k: 0.001
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
    assert (west.cache_read_cost_per_1k, west.cache_write_cost_per_1k) == (0.00008, 0.001)
    assert (east.cache_read_cost_per_1k, east.cache_write_cost_per_1k) == (None, None)
    assert west.redacted()["cache_write_cost_per_1k"] == 0.001
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
        (
            "deployments:\n  - {name: a, provider: openai, api_key: k, models: [m], cache_read_cost_per_1k: x}",
            "deployments[a].cache_read_cost_per_1k",
        ),
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
        ("settings: {colour: red}", "settings.colour", "unknown key (known: "),
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
    assert load_settings({"AILB_DATA_DIR": "/srv/ailb"}).spend_path == "/srv/ailb/ailb_spend.sqlite3"

def _with_client_keys(tmp_path: Path, text: str, **env: str) -> dict[str, str]:
    path = tmp_path / "ailb.yaml"
    path.write_text("client_keys:\n" + text)
    return {"AILB_CONFIG": str(path), **env}


def test_client_keys_carry_name_scopes_limits_and_budget(tmp_path: Path) -> None:
    env = _with_client_keys(
        tmp_path,
        """
  ${TEAM_A_KEY}:
    name: team-a
    models: [gpt-4o-mini, fast]
    collections: [company_docs]
    rpm: 600
    tpm: 200000
    max_budget_usd: 50
    budget_period: 7d
  plain-key-0002:
    collections: [handbook]
  bare-key-0003:
""",
        TEAM_A_KEY="sk-team-a-0001",
    )
    team, plain, bare = load_settings(env).client_keys
    assert (team.key, team.name, team.models) == ("sk-team-a-0001", "team-a", frozenset({"gpt-4o-mini", "fast"}))
    assert (team.rpm, team.tpm, team.max_budget_usd, team.budget_period.text) == (600, 200000, 50.0, "7d")
    assert team.metered and not plain.metered and not bare.metered
    assert (plain.name, plain.models, plain.rpm, plain.budget_period.text) == (None, None, None, "30d")
    assert bare.collections is None
    assert load_settings(env).key_collections == {
        "sk-team-a-0001": frozenset({"company_docs"}),
        "plain-key-0002": frozenset({"handbook"}),
    }
    assert "sk-team-a-0001" not in repr(load_settings(env))


@pytest.mark.parametrize(
    ("entry", "key", "message"),
    [
        ("  k1:\n    name: team-a\n    rpm: 0\n", "client_keys[team-a].rpm", "at least 1"),
        ("  k1:\n    tpm: 1.5\n", "client_keys[0].tpm", "whole number"),
        ("  k1:\n    name: team-a\n    max_budget_usd: -1\n", "client_keys[team-a].max_budget_usd", "between"),
        ("  k1:\n    name: team-a\n    budget_period: 1y\n", "client_keys[team-a].budget_period", "30d or 1mo"),
        ("  k1:\n    name: team-a\n    models: gpt-4o\n", "client_keys[team-a].models", "list"),
        ("  k1:\n    name: team-a\n    colections: [x]\n", "client_keys[team-a].colections", "unknown key"),
        ("  k1:\n    name: bad name\n", "client_keys[0].name", "letters"),
        ("  k1:\n    name: a\n  k2:\n    name: a\n", "client_keys[a].name", "two client keys"),
        ("  k1: [x]\n", "client_keys[0]", "mapping"),
        ("  ${MISSING_KEY}:\n    rpm: 5\n", "client_keys[0]", "MISSING_KEY"),
    ],
)
def test_bad_client_keys_name_the_entry_never_the_key(tmp_path: Path, entry: str, key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(_with_client_keys(tmp_path, entry))
    assert info.value.key == key
    assert "k1" not in str(info.value) and "k2" not in str(info.value)


def test_spend_path_defaults_next_to_the_memory_folder(tmp_path: Path) -> None:
    assert load_settings({"MEMORY_PATH": str(tmp_path / "memory")}).spend_path == str(tmp_path / "ailb_spend.sqlite3")
    assert load_settings({"SPEND_PATH": "/data/spend.db"}).spend_path == "/data/spend.db"
    assert load_settings({"SPEND_PATH": "none"}).spend_path == ""


def test_http_limits_and_metrics_token_come_from_the_environment() -> None:
    defaults = load_settings({})
    assert (defaults.http.max_header_bytes, defaults.http.max_headers, defaults.http.max_connections) == (
        65536, 100, 4096,
    )  # fmt: skip
    assert (defaults.http.header_timeout, defaults.http.body_timeout, defaults.http.keepalive_timeout) == (
        10.0, 30.0, 75.0,
    )  # fmt: skip
    assert defaults.metrics_token == ""
    env = {
        "MAX_HEADER_BYTES": "32768", "MAX_HEADERS": "50", "HEADER_TIMEOUT": "5", "BODY_TIMEOUT": "15",
        "KEEPALIVE_TIMEOUT": "20", "MAX_CONNECTIONS": "100", "METRICS_TOKEN": "scrape-me",
    }  # fmt: skip
    settings = load_settings(env)
    assert settings.http.max_header_bytes == 32768 and settings.http.max_headers == 50
    assert settings.http.header_timeout == 5 and settings.http.body_timeout == 15
    assert settings.http.keepalive_timeout == 20 and settings.http.max_connections == 100
    assert settings.metrics_token == "scrape-me" and "scrape-me" not in repr(settings)


def test_max_output_tokens_per_deployment(tmp_path: Path) -> None:
    path = tmp_path / "ailb.yaml"
    path.write_text(
        "deployments:\n"
        "  - {name: a, provider: openai, api_key: k, models: [gpt-4o], max_output_tokens: 2048}\n"
        "  - {name: b, provider: openai, api_key: k, models: [gpt-4o]}\n"
    )
    settings = load_settings({"AILB_CONFIG": str(path)})
    assert [d.max_output_tokens for d in settings.deployments] == [2048, None]
    assert settings.deployments[0].redacted()["max_output_tokens"] == 2048
    path.write_text("deployments:\n  - {name: a, provider: openai, api_key: k, models: [x], max_output_tokens: 0}\n")
    with pytest.raises(ConfigError) as info:
        load_settings({"AILB_CONFIG": str(path)})
    assert info.value.key == "deployments[a].max_output_tokens"


def test_embedding_models_from_env_and_file(tmp_path: Path) -> None:
    env = {"OPENAI_API_KEY": "sk-openai-123456789", "OLLAMA_BASE_URL": "http://127.0.0.1:11434"}
    settings = load_settings(env)
    assert settings.deployments[0].embedding_models == (
        "text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"
    )  # fmt: skip
    assert settings.deployments[1].embedding_models == () and settings.local_embeddings is True
    settings = load_settings({**env, "OPENAI_EMBEDDING_MODELS": "none", "OLLAMA_EMBEDDING_MODELS": "nomic-embed-text",
                              "ENABLE_LOCAL_EMBEDDINGS": "false"})  # fmt: skip
    assert [d.embedding_models for d in settings.deployments] == [(), ("nomic-embed-text",)]
    assert settings.local_embeddings is False
    path = tmp_path / "ailb.yaml"
    path.write_text("deployments:\n  - {name: e, provider: openai, api_key: k, embedding_models: [my-embedder]}\n")
    only_embeddings = load_settings({"AILB_CONFIG": str(path)}).deployments[0]
    assert (only_embeddings.models, only_embeddings.embedding_models) == ((), ("my-embedder",))
    assert only_embeddings.redacted()["embedding_models"] == ["my-embedder"]


@pytest.mark.parametrize(
    ("deployments", "key"),
    [
        ("  - {name: c, provider: anthropic, api_key: k, models: [claude-x], embedding_models: [e]}\n",
         "deployments[c].embedding_models"),
        ("  - {name: o, provider: openai, api_key: k, models: [m1], embedding_models: [m1]}\n",
         "deployments[o].embedding_models"),
        ("  - {name: o, provider: openai, api_key: k, embedding_models: [1]}\n", "deployments[o].embedding_models"),
    ],
)  # fmt: skip
def test_bad_embedding_models_name_the_key(tmp_path: Path, deployments: str, key: str) -> None:
    path = tmp_path / "ailb.yaml"
    path.write_text("deployments:\n" + deployments)
    with pytest.raises(ConfigError) as info:
        load_settings({"AILB_CONFIG": str(path)})
    assert info.value.key == key


def test_fleet_settings_and_their_errors() -> None:
    settings = load_settings({"REDIS_URL": "rediss://:pw@cache:6380/2", "EXPECTED_INSTANCES": "4", "WORKERS": "3"})
    assert (settings.redis_url, settings.expected_instances, settings.workers) == ("rediss://:pw@cache:6380/2", 4, 3)
    assert "pw" not in repr(settings)
    defaults = load_settings({})
    assert (defaults.redis_url, defaults.expected_instances, defaults.workers) == ("", 1, 1)
    for env, key in (({"REDIS_URL": "http://:secret-pw@cache"}, "REDIS_URL"), ({"WORKERS": "0"}, "WORKERS"),
                     ({"EXPECTED_INSTANCES": "0"}, "EXPECTED_INSTANCES")):  # fmt: skip
        with pytest.raises(ConfigError) as info:
            load_settings(env)
        assert info.value.key == key and "secret-pw" not in str(info.value)


def test_workers_need_redis_and_a_chromadb_server() -> None:
    from ailb.bootstrap import check_settings

    with pytest.raises(ConfigError, match="REDIS_URL") as info:
        check_settings(load_settings({"WORKERS": "2", "ENABLE_MEMORY": "false"}))
    assert info.value.key == "WORKERS"
    with pytest.raises(ConfigError, match="CHROMA_HOST"):
        check_settings(load_settings({"WORKERS": "2", "REDIS_URL": "redis://cache:6379/0"}))
    check_settings(load_settings({"WORKERS": "2", "REDIS_URL": "redis://cache:6379/0", "CHROMA_HOST": "chroma"}))
    check_settings(load_settings({"WORKERS": "2", "REDIS_URL": "redis://cache", "ENABLE_MEMORY": "false"}))
