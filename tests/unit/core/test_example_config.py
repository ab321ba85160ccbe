"""The shipped ailb.example.yaml loads with `ailb config check` and shows every key the file accepts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ailb import settings as settings_module
from ailb.cli import main as ailb

EXAMPLE = Path(__file__).parents[3] / "ailb.example.yaml"


@pytest.fixture(autouse=True)
def provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AILB_CONFIG", "OLLAMA_BASE_URL", "AILB_API_KEYS", "AILB_ADMIN_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-example-openai-0001")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-example-0002")
    monkeypatch.setenv("HOST", "127.0.0.1")  # else the open control plane is (rightly) warned about


def test_the_example_passes_config_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert ailb(["config", "check", "--config", str(EXAMPLE)]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert [d["name"] for d in report["deployments"]] == ["openai-east", "anthropic", "ollama-local"]
    assert report["model_aliases"]["fast"] == ["gpt-4o-mini", "claude-3-5-haiku-latest"]
    assert "sk-example-openai" not in out
    assert err.strip().endswith("configuration OK")
    assert "warning" not in err  # both provider keys are referred to by the file


def test_the_example_shows_every_key_the_file_accepts() -> None:
    text = EXAMPLE.read_text()
    keys = (
        settings_module._DEPLOYMENT_KEYS
        | settings_module._OVERRIDABLE
        | {"deployments", "model_aliases", "settings", "client_keys", "collections"}
        | {"connect", "first_token", "idle", "total"}
        | settings_module._CLIENT_KEY_FIELDS
    )
    missing = sorted(key for key in keys if not re.search(rf"\b{key}\b", text))
    assert missing == []


def test_the_commented_client_keys_example_is_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = EXAMPLE.read_text()
    start = text.index("# client_keys:")
    uncommented = "\n".join(line.removeprefix("# ") for line in text[start:].splitlines())
    path = tmp_path / "with-keys.yaml"
    path.write_text(text[:start] + uncommented + "\n")
    monkeypatch.setenv("TEAM_A_KEY", "team-a-key-0001")
    assert ailb(["config", "check", "--config", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["client_keys"] == 1
