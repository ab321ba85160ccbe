"""The shipped ailb.example.yaml loads with `ailb config check` and shows every key the file accepts."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from ailb.cli import main as ailb
from ailb.config.client_keys import CLIENT_KEY_FIELDS
from ailb.config.deployments import DEPLOYMENT_KEYS, TIMEOUT_KEYS
from ailb.config.file import SECTIONS, settings_keys
from ailb.settings import load_settings

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
    groups = {f"{key}." for key in settings_keys() if settings_keys(f"{key}.")}
    keys = (
        DEPLOYMENT_KEYS
        | settings_keys().union(*(settings_keys(group) for group in groups))
        | set(SECTIONS)
        | set(TIMEOUT_KEYS)
        | CLIENT_KEY_FIELDS
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


def test_the_commented_settings_are_the_defaults(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    start, end = text.index("\nsettings:"), text.index("# Client keys")
    lines = text[start:end].splitlines()
    uncommented = "\n".join("  " + line[4:] if line.startswith("  # ") else line for line in lines)
    path = tmp_path / "settings-only.yaml"
    path.write_text(uncommented + "\n")
    from_file = load_settings({}, str(path))
    defaults = load_settings({})
    assert from_file.memory.ttl_days == 30  # the one setting whose default (off) has no value to write
    assert replace(from_file, config_path="", memory=replace(from_file.memory, ttl_days=None)) == defaults
