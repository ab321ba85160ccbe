"""A loopback Ollama server: /api/chat (JSON and NDJSON), /api/tags, /api/embed, /api/version."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson
from aiohttp import web

from tests.fakes.base import FakeProvider, Frame, Handler
from tests.fakes.chat_rules import ollama_request_errors
from tests.fakes.script import Answer, count_words, fake_embedding, text_pieces

_DONE_REASONS = {"tool_calls": "stop", "content_filter": "stop"}
_DEFAULT_MESSAGES = {
    400: "invalid request",
    401: "unauthorized",
    404: "not found",
    429: "too many requests",
    500: "an error was encountered while running the model",
    503: "server busy, please try again. maximum pending requests exceeded",
}
_NANOS = 1_000_000


def ollama_error(status: int, message: str | None = None) -> web.Response:
    return web.json_response({"error": message or _DEFAULT_MESSAGES.get(status, f"HTTP {status}")}, status=status)


def _tagged(model: str) -> str:
    return model if ":" in model else f"{model}:latest"


class OllamaFake(FakeProvider):
    """``base_url`` is the root URL, like ``http://localhost:11434``. ``stream`` defaults to true, as in Ollama.
    With ``api_key`` set, requests need ``Authorization: Bearer <key>`` (Ollama behind an authenticating proxy)."""

    kind: ClassVar[str] = "ollama"
    chat_path: ClassVar[str] = "/api/chat"
    default_models: ClassVar[tuple[str, ...]] = ("llama3.2",)
    stream_content_type: ClassVar[str] = "application/x-ndjson"

    def extra_routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/api/tags", self._tags),
            ("POST", "/api/embed", self._embed),
            ("GET", "/api/version", self._version),
            ("GET", "/", self._root),
        ]

    def error_response(self, status: int, message: str | None = None) -> web.Response:
        return ollama_error(status, message)

    def auth_error(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        if request.headers.get("Authorization", "") != f"Bearer {self.api_key}":
            return ollama_error(401, "unauthorized")
        return None

    def validate_chat(self, request: web.Request, body: dict[str, Any]) -> web.Response | None:
        problem = ollama_request_errors(body)
        if problem is not None:
            return ollama_error(400, problem)
        if not self._serves(body["model"]):
            return ollama_error(404, f'model "{body["model"]}" not found, try pulling it first')
        return None

    def is_stream(self, body: dict[str, Any]) -> bool:
        return body.get("stream", True) is not False

    def token_limit(self, body: dict[str, Any]) -> int | None:
        limit = (body.get("options") or {}).get("num_predict")
        return limit if isinstance(limit, int) and limit >= 0 else None

    def whole_body(self, body: dict[str, Any], answer: Answer) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": answer.text}
        if _thinks(body) and answer.reasoning:
            message["thinking"] = answer.reasoning
        if answer.tool_calls:
            message["tool_calls"] = _tool_calls(answer)
        out = {**_head(body), "message": message, **_final(answer)}
        if body.get("logprobs"):
            out["logprobs"] = [entry for piece in answer.pieces for entry in _logprobs(body, piece)]
        return out

    def stream_frames(self, body: dict[str, Any], answer: Answer) -> list[Frame]:
        frames = []
        if _thinks(body):
            frames.extend(
                _line(
                    {**_head(body), "message": {"role": "assistant", "content": "", "thinking": piece}, "done": False},
                    True,
                )
                for piece in text_pieces(answer.reasoning)
            )
        for piece in answer.pieces:
            line = {**_head(body), "message": {"role": "assistant", "content": piece}, "done": False}
            if body.get("logprobs"):
                line["logprobs"] = _logprobs(body, piece)
            frames.append(_line(line, True))
        if answer.tool_calls:
            message = {"role": "assistant", "content": "", "tool_calls": _tool_calls(answer)}
            frames.append(_line({**_head(body), "message": message, "done": False}, True))
        frames.append(_line({**_head(body), "message": {"role": "assistant", "content": ""}, **_final(answer)}))
        return frames

    def error_frame(self, message: str | None = None) -> bytes:
        return _line({"error": message or "an error was encountered while running the model: unexpected EOF"}).data

    def garbage_frame(self, text: str) -> bytes:
        return text.encode() + b"\n"

    def _serves(self, model: str) -> bool:
        return _tagged(model) in {_tagged(m) for m in self.models}

    async def _tags(self, request: web.Request, body: Any) -> web.StreamResponse:
        return web.json_response({"models": [_model_entry(model) for model in self.models]})

    async def _embed(self, request: web.Request, body: Any) -> web.StreamResponse:
        if not isinstance(body, dict) or not body.get("model"):
            return ollama_error(400, "model is required")
        if not self._serves(body["model"]):
            return ollama_error(404, f'model "{body["model"]}" not found, try pulling it first')
        raw = body.get("input", [])
        texts = [raw] if isinstance(raw, str) else raw
        if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
            return ollama_error(400, "invalid input type")
        dimensions = int(body.get("dimensions") or self.embedding_dimensions)
        return web.json_response(
            {
                "model": body["model"],
                "embeddings": [fake_embedding(text, dimensions) for text in texts],
                "total_duration": 14 * _NANOS,
                "load_duration": 1 * _NANOS,
                "prompt_eval_count": sum(max(1, count_words(text)) for text in texts),
            }
        )

    async def _version(self, request: web.Request, body: Any) -> web.StreamResponse:
        return web.json_response({"version": "0.6.8"})

    async def _root(self, request: web.Request, body: Any) -> web.StreamResponse:
        return web.Response(text="Ollama is running")


def _head(body: dict[str, Any]) -> dict[str, Any]:
    return {"model": body["model"], "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z")}


def _final(answer: Answer) -> dict[str, Any]:
    return {
        "done_reason": _DONE_REASONS.get(answer.finish, answer.finish),
        "done": True,
        "total_duration": 120 * _NANOS,
        "load_duration": 5 * _NANOS,
        "prompt_eval_count": answer.prompt_tokens,
        "prompt_eval_duration": 15 * _NANOS,
        "eval_count": answer.completion_tokens,
        "eval_duration": 100 * _NANOS,
    }


def _thinks(body: dict[str, Any]) -> bool:
    return body.get("think") not in (None, False)


def _logprobs(body: dict[str, Any], piece: str) -> list[dict[str, Any]]:
    """One entry per piece (the fake's token), with ``top_logprobs`` alternatives when asked for, as Ollama
    sends them: the chosen token first among the alternatives, ``bytes`` as a list of UTF-8 byte values."""
    logprob = -round(0.05 * (1 + len(piece)), 4)
    entry: dict[str, Any] = {"token": piece, "logprob": logprob, "bytes": list(piece.encode())}
    top = body.get("top_logprobs") or 0
    if top:
        alternatives = [{"token": piece, "logprob": logprob, "bytes": list(piece.encode())}]
        alternatives += [
            {"token": f"{piece}~{rank}", "logprob": logprob - rank, "bytes": list(f"{piece}~{rank}".encode())}
            for rank in range(1, top)
        ]
        entry["top_logprobs"] = alternatives
    return [entry]


def _tool_calls(answer: Answer) -> list[dict[str, Any]]:
    return [
        {"function": {"name": name, "arguments": json.loads(arguments or "{}")}}
        for name, arguments in answer.tool_calls
    ]


def _model_entry(model: str) -> dict[str, Any]:
    return {
        "name": _tagged(model),
        "model": _tagged(model),
        "modified_at": "2025-01-15T10:00:00.000000000Z",
        "size": 2019393189,
        "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": "llama",
            "families": ["llama"],
            "parameter_size": "3.2B",
            "quantization_level": "Q4_K_M",
        },
    }


def _line(data: dict[str, Any], content: bool = False) -> Frame:
    return Frame(orjson.dumps(data) + b"\n", content=content)
