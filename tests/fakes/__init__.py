"""Loopback fakes of the upstream LLM APIs, with scripted replies and faults.

    fake = OpenAIFake(api_key="sk-test", models=["gpt-4o"])      # AnthropicFake, OllamaFake alike
    await fake.start()                                            # or `async with`, or ThreadedServer(fake)
    fake.base_url                                                 # OpenAI: .../v1; Anthropic, Ollama: root URL
    fake.reply = "text" | Reply(text, tool_calls=[(name, args_json)], finish, prompt_tokens, completion_tokens)
    fake.reply = Reply(pieces=["sk-ab", "cd"])                   # exact stream pieces
    fake.responder = lambda request_json: Reply(...)              # wins over `reply`
    fake.latency, fake.stream_chunk_delay                         # seconds
    fake.fail_next(Fault.status(429, headers={"Retry-After": "2"}), Fault.hang(5), Fault.drop())
    fake.fail_next(Fault.drop_mid_stream(after_chunks=2), Fault.error_event(after_chunks=1))
    fake.fail_next(Fault.status(401, quote_key=True), Fault.error_event(quote_key=True), Fault.malformed())
    fake.rewrite = lambda raw: raw                                # every answer body / stream frame, as sent
    fake.fail_always(Fault.status(500)); fake.clear_faults()
    fake.probe_fault = Fault.status(503)                          # model listings / health probes
    fake.requests, fake.chat_requests                             # RecordedRequest(method, path, headers, json)
    fake.chat_calls, fake.in_flight, fake.disconnects             # chat requests served / being served / abandoned

A disconnect is counted when the client goes away before the fake finished its reply (during latency, a hang
or a stream); to observe one mid-stream, set ``stream_chunk_delay`` so the stream is still being written.
"""

from tests.fakes.anthropic_fake import AnthropicFake
from tests.fakes.base import FakeProvider
from tests.fakes.ollama_fake import OllamaFake
from tests.fakes.openai_fake import OpenAIFake
from tests.fakes.script import Fault, RecordedRequest, Reply, fake_embedding
from tests.fakes.threaded import ThreadedServer

__all__ = [
    "AnthropicFake",
    "FakeProvider",
    "Fault",
    "OllamaFake",
    "OpenAIFake",
    "RecordedRequest",
    "Reply",
    "ThreadedServer",
    "fake_embedding",
]
