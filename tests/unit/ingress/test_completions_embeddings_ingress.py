"""The legacy completions and the embeddings translators."""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson
import pytest

from ailb.contract import Completion, EmbeddingResult, Usage
from ailb.errors import InvalidRequestError
from ailb.ingress.completions.request import parse as parse_completion
from ailb.ingress.completions.response import text_completion
from ailb.ingress.completions.stream import CompletionEvents
from ailb.ingress.embeddings.request import parse as parse_embeddings
from ailb.ingress.embeddings.response import embedding_list
from ailb.providers.canonical import ChunkWriter


def test_one_chat_call_per_prompt() -> None:
    calls, spec = parse_completion(
        {"model": "m", "prompt": ["a", "b"], "max_tokens": 5, "n": 2, "stop": "\n", "seed": 1, "echo": True}, "t", {}
    )
    assert [call.body["messages"] for call in calls] == [
        [{"role": "user", "content": "a"}],
        [{"role": "user", "content": "b"}],
    ]
    assert calls[0].body["max_completion_tokens"] == 5 and calls[0].body["n"] == 2 and calls[0].body["stop"] == "\n"
    assert (spec.n, spec.echo, spec.prompts) == (2, True, ("a", "b"))


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"suffix": "x"}, "suffix"),
        ({"logprobs": 0}, "logprobs"),
        ({"best_of": 2}, "best_of"),
        ({"prompt": [1, 2]}, "prompt"),
        ({"rag_collection": "docs"}, "rag_collection"),
        ({"tools": []}, "tools"),
    ],
)
def test_completions_refusals(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        parse_completion({"model": "m", "prompt": "p", **extra}, "t", {})
    assert refused.value.param == param


def answer(*texts: str, finish: str = "stop") -> Completion:
    choices = [
        {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": finish}
        for i, t in enumerate(texts)
    ]
    return Completion(body={"choices": choices}, usage=Usage(2, 3), text=texts[0])


def test_choices_are_numbered_prompt_by_prompt() -> None:
    _calls, spec = parse_completion({"model": "m", "prompt": ["a", "b"], "n": 2, "echo": True}, "t", {})
    body = text_completion([answer("x", "y"), answer("z", "w", finish="length")], spec)
    assert [(c["index"], c["text"], c["finish_reason"]) for c in body["choices"]] == [
        (0, "ax", "stop"), (1, "ay", "stop"), (2, "bz", "length"), (3, "bw", "length")
    ]  # fmt: skip
    assert body["usage"] == {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10}


def test_stream_chunks_keep_their_choice_and_echo_once() -> None:
    _calls, spec = parse_completion({"model": "m", "prompt": ["a", "b"], "echo": True}, "t", {})
    events = CompletionEvents(spec)
    second = ChunkWriter("m", False)
    frames = b"".join(events.feed(1, chunk) for chunk in (second.opening(), second.text("hi"), second.finish("stop")))
    chunks = [orjson.loads(block[6:]) for block in frames.split(b"\n\n") if block]
    assert [(c["choices"][0]["index"], c["choices"][0]["text"], c["choices"][0]["finish_reason"]) for c in chunks] == [
        (1, "b", None), (1, "hi", None), (1, "", "stop")
    ]  # fmt: skip


def test_embedding_inputs() -> None:
    call, as_base64 = parse_embeddings({"model": "e", "input": ["a", "b"], "dimensions": 8}, "t", {}, None)
    assert (call.texts, call.dimensions, as_base64) == (("a", "b"), 8, False)
    decoded, _ = parse_embeddings({"model": "e", "input": [[1, 2], [3]]}, "t", {}, lambda ids: "-".join(map(str, ids)))
    assert decoded.texts == ("1-2", "3")
    single, _ = parse_embeddings({"model": "e", "input": [5, 6]}, "t", {}, lambda ids: str(sum(ids)))
    assert single.texts == ("11",)
    with pytest.raises(InvalidRequestError) as no_tokenizer:
        parse_embeddings({"model": "e", "input": [5, 6]}, "t", {}, None)
    assert no_tokenizer.value.param == "input"


def test_embeddings_as_floats_or_base64() -> None:
    result = EmbeddingResult([[0.5, -1.0], [0.25, 2.0]], 7)
    floats = embedding_list(result, "e", False)
    assert floats["data"][1] == {"object": "embedding", "index": 1, "embedding": [0.25, 2.0]}
    assert floats["usage"] == {"prompt_tokens": 7, "total_tokens": 7}
    packed = base64.b64decode(embedding_list(result, "e", True)["data"][0]["embedding"])
    assert struct.unpack("<2f", packed) == (0.5, -1.0)
