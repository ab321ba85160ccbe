"""Conversation memory end to end: the OpenAI SDK → the real gateway (real MiniLM, real ChromaDB) → a fake model.

The fake model only knows what it is sent: it can say the user's name only if AILB gave it the earlier turn.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from ailb.bootstrap import build_gateway
from ailb.settings import ConfigError, load_settings
from tests.integration.conftest import GatewayFactory
from tests.integration.harness import RunningGateway
from tests.integration.surfaces_support import openai_client
from tests.integration.upstreams import OPENAI_KEY, Upstreams
from tests.ports import free_port

pytestmark = pytest.mark.slow
MODEL = "gpt-4o-mini"
NAME = re.compile(r"[Mm]y name is (\w+)")
MEMORY_TAG = "<conversation_memory>"


def name_aware_model(body: dict[str, Any]) -> str:
    """Answers "What is my name?" from anything in the request, else acknowledges what it was told."""
    messages = body["messages"]
    question = messages[-1]["content"]
    if "What is my name" in question:
        earlier = " ".join(str(m.get("content")) for m in messages[:-1])
        found = NAME.findall(earlier)
        return f"Your name is {found[-1]}." if found else "I do not know your name."
    told = NAME.search(question)
    return f"Nice to meet you, {told.group(1)}!" if told else "Noted."


@pytest.fixture
def env(upstreams: Upstreams) -> dict[str, str]:
    upstreams.reset()
    upstreams.openai.responder = name_aware_model
    return {
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": upstreams.openai.base_url,
        "OPENAI_MODELS": MODEL,
        "ENABLE_MEMORY": "true",
        "HEALTH_CHECK_INTERVAL": "0",
    }


def say(sdk: openai.OpenAI, text: str, session: str, **kwargs: Any) -> tuple[str, int]:
    """One plain turn in ``session``; returns the answer and the ``x-ailb-memory-turns`` header."""
    raw = sdk.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": text}], extra_body={"session_id": session}, **kwargs
    )
    return raw.parse().choices[0].message.content or "", int(raw.headers["x-ailb-memory-turns"])


def say_streaming(sdk: openai.OpenAI, text: str, session: str) -> str:
    stream = sdk.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": text}], stream=True, extra_headers={"X-Session-ID": session}
    )
    return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)


def session_turns(gateway: RunningGateway, session: str, key: str = "unused") -> list[dict[str, Any]]:
    response = httpx.get(f"{gateway.v1}/memory/sessions/{session}", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list" and body["session_id"] == session
    return list(body["data"])


def test_alice_is_remembered_across_plain_requests(
    run_gateway: GatewayFactory, env: dict[str, str], upstreams: Upstreams
) -> None:
    gateway = run_gateway(env)
    sdk = openai_client(gateway)
    assert say(sdk, "My name is Alice", "chat-1") == ("Nice to meet you, Alice!", 0)
    answer, recalled = say(sdk, "What is my name?", "chat-1")
    assert (answer, recalled) == ("Your name is Alice.", 1)
    assert say(sdk, "What is my name?", "another-session") == ("I do not know your name.", 0)

    sent = upstreams.openai.chat_requests[-2].json["messages"]
    assert sent[-1] == {"role": "user", "content": "What is my name?"}
    assert sent[0]["role"] == "system" and MEMORY_TAG in sent[0]["content"]

    gateway.flush_memory()
    turns = session_turns(gateway, "chat-1")
    assert [(t["user"], t["assistant"]) for t in turns] == [
        ("My name is Alice", "Nice to meet you, Alice!"),
        ("What is my name?", "Your name is Alice."),
    ]
    assert turns[0]["deployment"] == "openai" and turns[0]["model"] == MODEL
    assert turns[0]["completion_tokens"] > 0


def test_memory_goes_after_the_clients_system_message(
    run_gateway: GatewayFactory, env: dict[str, str], upstreams: Upstreams
) -> None:
    gateway = run_gateway(env)
    sdk = openai_client(gateway)
    say(sdk, "My name is Dora", "sys-1")
    sdk.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is my name?"}],
        extra_body={"session_id": "sys-1"},
    )
    roles = [(m["role"], MEMORY_TAG in str(m["content"])) for m in upstreams.openai.chat_requests[-1].json["messages"]]
    assert roles == [("system", False), ("system", True), ("user", False)]


def test_streamed_turns_are_remembered_when_complete(run_gateway: GatewayFactory, env: dict[str, str]) -> None:
    gateway = run_gateway(env)
    sdk = openai_client(gateway)
    assert say_streaming(sdk, "My name is Bob", "stream-1") == "Nice to meet you, Bob!"
    assert say_streaming(sdk, "What is my name?", "stream-1") == "Your name is Bob."


def test_a_cut_off_stream_is_not_remembered(
    run_gateway: GatewayFactory, env: dict[str, str], upstreams: Upstreams
) -> None:
    gateway = run_gateway(env)
    sdk = openai_client(gateway)
    upstreams["openai"].drop_next_stream_after(2)
    with pytest.raises(openai.APIError):
        say_streaming(sdk, "My name is Carol and I like long answers", "cut-1")
    gateway.flush_memory()
    assert session_turns(gateway, "cut-1") == []
    assert say(sdk, "What is my name?", "cut-1") == ("I do not know your name.", 0)


def test_memory_survives_a_gateway_restart(run_gateway: GatewayFactory, env: dict[str, str]) -> None:
    first = run_gateway(env)
    say(openai_client(first), "My name is Erin", "restart-1")
    first.stop()  # graceful: the write queue is flushed
    second = run_gateway(env)
    assert say(openai_client(second), "What is my name?", "restart-1") == ("Your name is Erin.", 1)


def test_tenants_cannot_read_recall_or_delete_each_others_turns(
    run_gateway: GatewayFactory, env: dict[str, str]
) -> None:
    gateway = run_gateway({**env, "AILB_API_KEYS": "key-alice,key-mallory"})
    alice, mallory = openai_client(gateway, "key-alice"), openai_client(gateway, "key-mallory")
    say(alice, "My name is Alice", "shared")
    gateway.flush_memory()
    assert say(mallory, "What is my name?", "shared") == ("I do not know your name.", 0)
    assert [t["user"] for t in session_turns(gateway, "shared", "key-mallory")] == ["What is my name?"]
    deleted = httpx.delete(f"{gateway.v1}/memory/sessions/shared", headers={"Authorization": "Bearer key-mallory"})
    assert deleted.json() == {"object": "memory.session.deleted", "session_id": "shared", "deleted": True, "turns": 1}
    assert [t["user"] for t in session_turns(gateway, "shared", "key-alice")] == ["My name is Alice"]
    assert say(alice, "What is my name?", "shared") == ("Your name is Alice.", 1)
    anonymous = httpx.get(f"{gateway.v1}/memory/sessions/shared")
    assert anonymous.status_code == 401


def test_delete_makes_the_gateway_forget_at_once(run_gateway: GatewayFactory, env: dict[str, str]) -> None:
    gateway = run_gateway(env)
    sdk = openai_client(gateway)
    say(sdk, "My name is Frank", "forget-1")
    response = httpx.delete(f"{gateway.v1}/memory/sessions/forget-1")
    assert response.status_code == 200 and response.json()["turns"] == 1
    assert say(sdk, "What is my name?", "forget-1") == ("I do not know your name.", 0)


def test_full_history_clients_do_not_get_their_history_twice(
    run_gateway: GatewayFactory, env: dict[str, str], upstreams: Upstreams
) -> None:
    gateway = run_gateway(env)
    sdk = openai_client(gateway)
    history: list[Any] = []
    for text in ("My name is Grace", "I live in Oslo", "What is my name?"):
        history.append({"role": "user", "content": text})
        raw = sdk.chat.completions.with_raw_response.create(
            model=MODEL, messages=history, extra_body={"session_id": "full-1"}
        )
        assert raw.headers["x-ailb-memory-turns"] == "0"
        history.append({"role": "assistant", "content": raw.parse().choices[0].message.content})
        assert upstreams.openai.chat_requests[-1].json["messages"] == history[:-1]
    assert history[-1]["content"] == "Your name is Grace."


def test_memory_routes_validate_and_document_themselves(run_gateway: GatewayFactory, env: dict[str, str]) -> None:
    gateway = run_gateway(env)
    bad = httpx.get(f"{gateway.v1}/memory/sessions/has%20space")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "session_id"
    too_long = httpx.delete(f"{gateway.v1}/memory/sessions/{'x' * 129}")
    assert too_long.status_code == 400
    paths = httpx.get(gateway.url + "/openapi.json").json()["paths"]
    operations = paths["/v1/memory/sessions/{session_id}"]
    assert set(operations) == {"get", "delete"}
    assert operations["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/MemorySession"
    )
    assert "503" in operations["delete"]["responses"]
    health = httpx.get(gateway.url + "/healthz").json()
    assert health["memory"] in ("ok", "loading")


def test_memory_disabled_is_a_clear_404(run_gateway: GatewayFactory, env: dict[str, str]) -> None:
    gateway = run_gateway({**env, "ENABLE_MEMORY": "false"})
    response = httpx.get(f"{gateway.v1}/memory/sessions/chat-1")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "memory_disabled"
    raw = openai_client(gateway).chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "My name is Hal"}], extra_body={"session_id": "chat-1"}
    )
    assert raw.parse().choices[0].message.content == "Nice to meet you, Hal!"
    assert "x-ailb-memory-turns" not in raw.headers


def test_an_unreachable_store_degrades_memory_but_chat_works(run_gateway: GatewayFactory, env: dict[str, str]) -> None:
    gateway = run_gateway({**env, "CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": str(free_port())})
    sdk = openai_client(gateway)
    assert say(sdk, "My name is Ivy", "down-1") == ("Nice to meet you, Ivy!", 0)
    # the first turn waits in the write queue (recallable) while the writer retries; either answer is fine
    assert say(sdk, "What is my name?", "down-1")[0] in ("Your name is Ivy.", "I do not know your name.")
    health = httpx.get(gateway.url + "/healthz").json()
    assert health["memory"] == "degraded" and health["status"] == "degraded"
    listed = httpx.get(f"{gateway.v1}/memory/sessions/down-1")
    assert listed.status_code == 503 and listed.json()["error"]["code"] == "memory_unavailable"
    metrics = httpx.get(gateway.url + "/metrics").text
    assert re.search(r'ailb_memory_failures_total\{operation="list"\} [1-9]', metrics)


async def test_an_unusable_memory_path_stops_start_up_with_a_clear_message(tmp_path: Path, env: dict[str, str]) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    gateway = build_gateway(load_settings({**env, "MEMORY_PATH": str(blocker), "ENABLE_GRPC": "false"}))
    with pytest.raises(ConfigError) as raised:
        await gateway.start(grpc=False)
    assert raised.value.key == "MEMORY_PATH"
    await gateway.aclose()
