"""Memory and knowledge bases over a real ChromaDB server (``CHROMA_HOST``), shared by two gateways.

Two real ``ailb serve`` processes, one ``chroma run`` server, the real model and a fake upstream. With
``CHROMA_HOST`` set nothing is kept in, or locked in, ``MEMORY_PATH`` or ``RAG_PATH``:
neither folder is even created. (Before the fix, memory tried to take the lock file in ``MEMORY_PATH``,
failed with ``FileNotFoundError`` and ran without memory.)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.openai_fake import OpenAIFake
from tests.fakes.threaded import ThreadedServer
from tests.integration.chroma_server import ChromaServer
from tests.integration.control_support import ADMIN_TOKEN
from tests.integration.fleet_support import AilbProcess
from tests.integration.rag_support import MODEL, last_upstream_messages, openai_upstream, rag_env, reference_block

pytestmark = pytest.mark.slow
MEMORY_TAG = "<conversation_memory>"


def chat(gateway: AilbProcess, text: str, **extra: Any) -> Any:
    sdk = openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
    return sdk.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": text}], extra_body=extra
    )


def admin_client(gateway: AilbProcess) -> httpx.Client:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    return httpx.Client(base_url=gateway.url + "/v1/rag", headers=headers, timeout=60)


def recall_through(gateway: AilbProcess, upstream: ThreadedServer[OpenAIFake], session: str, text: str) -> Any:
    """Ask through ``gateway`` until the model is given ``text`` as recalled memory (another gateway stores it in
    the background); the response."""
    deadline = time.monotonic() + 20
    while True:
        raw = chat(gateway, "What is my name?", session_id=session)
        if any(MEMORY_TAG in str(m["content"]) and text in m["content"] for m in last_upstream_messages(upstream)):
            return raw
        assert time.monotonic() < deadline, f"{text!r} stored through the other gateway was never recalled"
        time.sleep(0.2)


def test_two_gateways_share_memory_and_knowledge_bases_through_a_chroma_server(
    chroma_server: ChromaServer, tmp_path: Path
) -> None:
    memory_path, rag_path = tmp_path / "ailb_memory", tmp_path / "ailb_rag"
    with openai_upstream() as upstream:
        server = {"CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": str(chroma_server.port)}
        env = rag_env(upstream, rag_path, ENABLE_MEMORY="true", MEMORY_PATH=str(memory_path), **server)
        first, second = AilbProcess(tmp_path, env), AilbProcess(tmp_path, env)
        try:
            first.start()
            second.start()
            # a session remembered through one gateway is recalled through the other
            assert chat(first, "My name is Alice", session_id="shared-1").http_response.status_code == 200
            raw = recall_through(second, upstream, "shared-1", "User: My name is Alice")
            assert int(raw.headers["x-ailb-memory-turns"]) >= 1
            listed = httpx.get(f"{second.url}/v1/memory/sessions/shared-1").json()["data"]
            assert listed[0]["user"] == "My name is Alice"

            # a collection ingested through one gateway serves chat through the other
            with admin_client(first) as api:
                assert api.post("/collections", json={"name": "company_docs"}).status_code == 201
                docs = [{"id": "vacation", "text": "Full-time employees receive 25 days of paid vacation per year."}]
                assert api.post("/collections/company_docs/documents", json={"documents": docs}).status_code == 200
            raw = chat(second, "How many days of paid vacation do employees receive?", rag_collection="company_docs")
            assert raw.headers["x-ailb-rag-sources"] == "vacation"
            assert "25 days of paid vacation" in reference_block(last_upstream_messages(upstream))
            with admin_client(second) as api:
                assert [c["name"] for c in api.get("/collections").json()["data"]] == ["company_docs"]

            for gateway in (first, second):
                health = httpx.get(gateway.url + "/healthz").json()
                assert (health["status"], health["memory"], health["rag"]) == ("ok", "ok", "ok"), health
        finally:
            assert first.stop() == 0 and second.stop() == 0
    assert not memory_path.exists() and not rag_path.exists()
