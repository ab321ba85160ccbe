"""The README runs as printed: every code block in order, and the two commands in a fresh clone."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.fakes import OpenAIFake, ThreadedServer
from tests.polling import wait_for_health
from tests.ports import free_port
from tests.readme.blocks import UnannotatedBlock, readme_blocks
from tests.readme.driver import README_KEY

REPOSITORY = Path(__file__).parents[2]


def test_every_block_says_how_it_runs() -> None:
    blocks = readme_blocks()
    assert len(blocks) >= 15
    assert [b.code for b in blocks if b.clone] == ["OPENAI_API_KEY=sk-... scripts/dev serve\n", "scripts/dev test\n"]
    servers = {b.server for b in blocks if b.kind == "server"}
    assert {b.server for b in blocks if b.kind in ("run", "grpcurl") and b.server} <= servers


def test_a_block_without_a_note_is_refused() -> None:
    with pytest.raises(UnannotatedBlock, match=r"README\.md:3"):
        readme_blocks("Some text\n\n```bash\nls\n```\n")
    with pytest.raises(UnannotatedBlock, match="unknown readme-test note"):
        readme_blocks("<!-- readme-test: maybe -->\n```bash\nls\n```\n")


def _namespace() -> list[str]:
    """A private network namespace: the printed ports (8080, 50051) are free there, whatever else runs here."""
    unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs unshare and ip (util-linux, iproute2) for a private network namespace")
    if subprocess.run([*unshare, "true"], capture_output=True).returncode != 0:
        pytest.skip("network namespaces are not permitted here")
    return [*unshare, "--", "bash", "-c", 'ip link set lo up && exec "$@"', "bash"]


def _clean_env() -> dict[str, str]:
    cleared = ("OPENAI_", "ANTHROPIC_", "OLLAMA_", "AILB_", "MEMORY_", "RAG_", "ENABLE_", "CHROMA_", "PYTEST_")
    return {k: v for k, v in os.environ.items() if not k.startswith(cleared)}


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_every_readme_block_runs_as_printed(tmp_path: Path) -> None:
    namespace = _namespace()
    # scripts/dev installs .venv once (instantly when it exists); the namespace has no route to the package index.
    prepared = subprocess.run(
        [str(REPOSITORY / "scripts" / "dev"), "ailb", "--version"], capture_output=True, text=True, timeout=900
    )
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    run = subprocess.run(
        [*namespace, sys.executable, "-m", "tests.readme.driver", str(REPOSITORY), str(tmp_path)],
        cwd=REPOSITORY, env=_clean_env(), capture_output=True, text=True, timeout=1700,
    )  # fmt: skip
    results = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    failed = [r for r in results if not r["ok"]]
    assert not failed, "\n\n".join(f"{r['block']}: {r['detail']}" for r in failed) + run.stderr[-2000:]
    assert len(results) == len(readme_blocks()), run.stderr[-3000:]
    assert run.returncode == 0


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_a_fresh_clone_runs_the_two_commands_as_printed(tmp_path: Path) -> None:
    """`git clone`, then the README's two commands exactly as printed. Substituted through the environment: the
    provider (a loopback fake at OPENAI_BASE_URL that accepts the printed key) and the ports, which may be in
    use on a shared machine. The install uses the package index (and pip's cache, when there is one)."""
    serve, test = (b.code for b in readme_blocks() if b.clone)
    clone = tmp_path / "ailb"
    subprocess.run(["git", "clone", "-q", str(REPOSITORY), str(clone)], check=True, timeout=120)
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env = {k: v for k, v in _clean_env().items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")} | {"PATH": path}
    http_port, grpc_port = free_port(), free_port()
    with ThreadedServer(OpenAIFake(api_key=README_KEY)) as fake:
        server_env = {
            **env, "OPENAI_BASE_URL": fake.base_url, "HOST": "127.0.0.1",
            "HTTP_PORT": str(http_port), "GRPC_PORT": str(grpc_port),
        }  # fmt: skip
        log = tmp_path / "serve.log"
        with log.open("wb") as out:
            server = subprocess.Popen(
                ["bash", "-c", serve], cwd=clone, env=server_env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        try:
            wait_for_health(
                f"http://127.0.0.1:{http_port}", server, 900,  # the first run installs AILB
                lambda: log.read_text()[-3000:], lambda answer: answer.status_code == 200,
            )  # fmt: skip
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}]}
            reply = httpx.post(f"http://127.0.0.1:{http_port}/v1/chat/completions", json=body, timeout=30)
            assert reply.status_code == 200, reply.text
            assert reply.json()["choices"][0]["message"]["content"] == "Hello from openai"
            os.killpg(server.pid, signal.SIGTERM)
            assert server.wait(60) == 0
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
    output = log.read_text()
    assert "[3/3] installing AILB and its dependencies" in output and "==> Installed in" in output
    assert "torch" not in (clone / ".venv" / "install.log").read_text().lower()  # no PyTorch, no GPU stack
    # The suite itself runs in CI; here the printed command runs the lint, the types and one test folder.
    checked = subprocess.run(
        ["bash", "-c", test], cwd=clone, env={**env, "PYTEST_ADDOPTS": "tests/unit/core"},
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
    assert " passed" in checked.stdout
