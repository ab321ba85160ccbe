"""Start-up checks: ports taken, the resolved set-up report and the open-guard warnings."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

import pytest

from ailb.bootstrap import Gateway
from ailb.compiled import HOT_MODULES, compiled_modules
from ailb.settings import DeploymentConfig, MemoryConfig, RagConfig, Settings, load_settings
from ailb.startup import StartupError, check_ports, describe, warnings

EAST = DeploymentConfig(
    name="openai-east",
    provider="openai",
    base_url="https://user:pw@api.example.com/v1",
    api_key="sk-east-secret-123456",
    models=("gpt-4o", "gpt-4o-mini"),
)


def test_a_taken_http_port_is_named_at_once() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StartupError, match=f"the HTTP port {port} on 127.0.0.1 is already in use"):
            check_ports(Settings(host="127.0.0.1", http_port=port, grpc_port=0))
        with pytest.raises(StartupError, match=f"the gRPC port {port} on 127.0.0.1 is already in use.*--grpc-port"):
            check_ports(Settings(host="127.0.0.1", http_port=0, grpc_port=port))
        check_ports(Settings(host="127.0.0.1", http_port=0, grpc_port=port, enable_grpc=False))


def test_one_port_for_both_servers_is_refused() -> None:
    with pytest.raises(StartupError, match="both 18123"):
        check_ports(Settings(host="127.0.0.1", http_port=18123, grpc_port=18123))


def test_the_report_names_deployments_aliases_absolute_stores_and_guards(tmp_path: Path) -> None:
    settings = Settings(
        host="127.0.0.1",
        deployments=(EAST,),
        model_aliases={"fast": ("gpt-4o-mini",)},
        memory=MemoryConfig(path=str(tmp_path / "m")),
        rag=RagConfig(enabled=True, path="relative-rag"),
        api_keys=frozenset({"client-key-1"}),
    )
    text = "\n".join(describe(Gateway(settings)))
    assert "deployment  openai-east (openai, https://****@api.example.com/v1): gpt-4o, gpt-4o-mini" in text
    assert "alias       fast -> gpt-4o-mini" in text
    assert f"memory      embedded ChromaDB in {tmp_path / 'm'}" in text
    assert f"RAG         embedded ChromaDB in {Path('relative-rag').resolve()}" in text
    assert "embeddings  local all-MiniLM-L6-v2 on onnx" in text
    assert "1 client keys; no admin token" in text
    assert "gRPC        127.0.0.1:50051" in text
    assert "sk-east-secret" not in text and "pw@" not in text


def test_the_first_line_says_whether_the_hot_path_runs_compiled() -> None:
    first = describe(Gateway(Settings(host="127.0.0.1")))[0]
    compiled = compiled_modules()
    expected = f"hot path compiled ({len(HOT_MODULES)} modules)" if compiled else "pure Python"
    assert compiled in ([], list(HOT_MODULES))  # all or none: a partly compiled install would be a broken build
    assert first.endswith(f", {expected})"), first


def test_an_open_control_plane_on_the_network_is_a_loud_warning() -> None:
    open_settings = Settings(host="0.0.0.0", rag=RagConfig(enabled=True))
    [warning] = warnings(open_settings)
    assert warning.startswith("!!! the gRPC control plane (port 50051) and the knowledge-base admin API (/v1/rag)")
    assert "anyone who can reach this address" in warning and "AILB_ADMIN_TOKEN" in warning
    [warning] = warnings(replace(open_settings, api_keys=frozenset({"k"})))
    assert "every client key" in warning
    assert warnings(replace(open_settings, admin_token="admin-token-123")) == []
    assert warnings(replace(open_settings, host="127.0.0.1")) == []
    assert warnings(replace(open_settings, host="::1")) == []
    assert warnings(replace(open_settings, enable_grpc=False, rag=RagConfig(enabled=False))) == []


def test_provider_keys_the_file_ignores_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "ailb.yaml"
    path.write_text("deployments:\n  - {name: local, provider: ollama, base_url: 'http://127.0.0.1:11434'}\n")
    settings = load_settings({"OPENAI_API_KEY": "sk-ignored", "HOST": "127.0.0.1"}, str(path))
    assert warnings(settings) == [
        "OPENAI_API_KEY is set but unused: the config file lists the deployments and does not refer to "
        "${OPENAI_API_KEY}"
    ]


def test_the_report_names_embedding_models_and_the_packaged_one() -> None:
    only_embeddings = DeploymentConfig(
        name="embedder", provider="openai", base_url="https://api.example.com/v1", api_key="k",
        embedding_models=("text-embedding-3-small",),
    )  # fmt: skip
    text = "\n".join(describe(Gateway(Settings(host="127.0.0.1", deployments=(only_embeddings,)))))
    line = "embedder (openai, https://api.example.com/v1): no chat models; embeddings: text-embedding-3-small"
    assert line in text and "/v1/embeddings also serves the packaged all-MiniLM-L6-v2" in text
    quiet = "\n".join(describe(Gateway(Settings(host="127.0.0.1", local_embeddings=False))))
    assert "/v1/embeddings" not in quiet
