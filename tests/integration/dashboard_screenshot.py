"""Takes the README's screenshot of the dashboard:

    python -m tests.integration.dashboard_screenshot docs/dashboard.png

A real gateway (memory and knowledge bases on, four deployments, one of them failing for a while and one held
open by a 429 with Retry-After) in front of the wire-level fakes, with about a minute and a half of mixed plain
and streamed traffic, photographed by headless Chromium.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.fakes import Fault, OpenAIFake, ThreadedServer
from tests.integration.browser import chromium
from tests.integration.harness import RunningGateway
from tests.integration.upstreams import OPENAI_KEY, start_upstreams

CONFIG = """
deployments:
  - name: openai-east
    provider: openai
    base_url: {openai}
    api_key: {key}
    models: [gpt-4o, gpt-4o-mini]
    weight: 3
  - name: openai-west
    provider: openai
    base_url: {west}
    api_key: {key}
    models: [gpt-4o, gpt-4o-mini]
    weight: 1
  - name: anthropic
    provider: anthropic
    base_url: {anthropic}
    api_key: sk-ant-integration-key
    models: [claude-3-5-haiku-latest, claude-3-5-sonnet-latest]
  - name: ollama-local
    provider: ollama
    base_url: {ollama}
    models: [llama3.2]
model_aliases:
  fast: [gpt-4o-mini, claude-3-5-haiku-latest, llama3.2]
  smart: [gpt-4o, claude-3-5-sonnet-latest]
"""
MODELS = ["gpt-4o", "gpt-4o", "gpt-4o-mini", "fast", "fast", "smart", "llama3.2", "claude-3-5-haiku-latest"]


def _traffic(gateway: RunningGateway, seconds: float, stop: threading.Event) -> None:
    rng = random.Random(7)
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=30) as client:
        while time.monotonic() < deadline and not stop.is_set():
            body: dict[str, Any] = {
                "model": rng.choice(MODELS),
                "messages": [{"role": "user", "content": "Tell me something " * rng.randint(1, 30)}],
                "stream": rng.random() < 0.4,
            }
            if rng.random() < 0.3:
                body["session_id"] = f"user-{rng.randint(1, 5)}"
            client.post(gateway.v1 + "/chat/completions", json=body)
            time.sleep(rng.uniform(0.05, 0.25))


def take(target: Path, seconds: float = 90.0) -> None:
    west_fake = OpenAIFake(api_key=OPENAI_KEY, name="openai-west")
    with start_upstreams() as upstreams, ThreadedServer(west_fake):
        upstreams.openai.latency, upstreams.anthropic.latency, upstreams.ollama.latency = 0.08, 0.35, 0.6
        west_fake.latency = 0.15
        upstreams.openai.stream_chunk_delay = 0.02
        config = CONFIG.format(
            openai=upstreams.openai.base_url,
            west=west_fake.base_url,
            anthropic=upstreams.anthropic.base_url,
            ollama=upstreams.ollama.base_url,
            key=OPENAI_KEY,
        )
        env = {
            "HEALTH_CHECK_INTERVAL": "0",
            "ENABLE_MEMORY": "true",
            "ENABLE_RAG": "true",
            "EMBEDDING_BACKEND": "provider",
            "EMBEDDING_DEPLOYMENT": "openai-east",
            "EMBEDDING_MODEL": "text-embedding-3-small",
            "MODULE_ID": "ailb-eu-1",
        }
        with tempfile.TemporaryDirectory() as workdir, RunningGateway(env, config, Path(workdir)) as gateway:
            rag = gateway.v1 + "/rag/collections"
            for name, text in (("handbook", "Company handbook"), ("support-faq", "Customer support answers")):
                httpx.post(rag, json={"name": name, "description": text}, timeout=60)
                documents = [{"id": f"{name}-{i}.md", "text": f"{text}, part {i}. " * 40} for i in range(6)]
                httpx.post(f"{rag}/{name}/documents", json={"documents": documents}, timeout=120)
            stop = threading.Event()
            workers = [threading.Thread(target=_traffic, args=(gateway, seconds, stop)) for _ in range(3)]
            for worker in workers:
                worker.start()
            time.sleep(seconds * 0.35)
            west_fake.fail_always(Fault.status(500))  # a bad patch on the west deployment...
            time.sleep(seconds * 0.25)
            west_fake.clear_faults()  # ...that heals
            time.sleep(seconds * 0.3)
            upstreams.anthropic.fail_next(*[Fault.status(429, headers={"Retry-After": "45"})] * 3)
            for worker in workers:
                worker.join()
            with chromium(1400, 900) as browser:
                browser.get(gateway.url + "/dashboard")
                time.sleep(3)
                height = int(browser.execute_script("return document.documentElement.scrollHeight"))
                metrics = {"width": 1400, "height": height, "deviceScaleFactor": 1, "mobile": False}
                browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
                time.sleep(2.5)
                target.parent.mkdir(parents=True, exist_ok=True)
                browser.save_screenshot(str(target))
    print(f"wrote {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", type=Path, nargs="?", default=Path("docs/dashboard.png"))
    parser.add_argument("--seconds", type=float, default=90.0, help="how long to send traffic first")
    args = parser.parse_args()
    take(args.target, args.seconds)


if __name__ == "__main__":
    main()
