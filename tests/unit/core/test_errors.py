from __future__ import annotations

import ast
from pathlib import Path

import ailb
from ailb.errors import UpstreamStatusError
from ailb.memory.store import MemoryStoreError
from ailb.providers.errors import status_error
from ailb.redaction import Redactor

REDACT = Redactor(["sk-live-1234567890"])


def test_internal_details_stay_out_of_the_answer() -> None:
    error = MemoryStoreError("The ChromaDB folder /srv/ailb_memory failed: disk I/O error")
    body = error.to_body()["error"]
    assert "/srv" not in body["message"] and "disk" not in body["message"]
    assert body["code"] == "memory_unavailable"
    assert "/srv/ailb_memory" in error.message  # still there for the log


def test_upstream_errors_keep_their_status_but_not_the_organization() -> None:
    body = b'{"error": {"message": "Rate limit reached in organization org-AbC123 on tokens", "type": "tokens"}}'
    error = status_error(429, body, "openai", 2.0, REDACT)
    assert isinstance(error, UpstreamStatusError)
    assert error.upstream_status == 429 and error.retryable and error.retry_after == 2.0
    assert "org-AbC123" not in error.message and "org-****" in error.message


def test_credential_failures_name_the_deployment_only() -> None:
    body = b'{"error": {"message": "Incorrect API key provided: sk-live-123"}}'
    error = status_error(401, body, "east", None, REDACT)
    assert "sk-live" not in error.message and "east" in error.message
    assert error.status == 502


def test_server_errors_keep_the_upstream_text_for_the_log_only() -> None:
    body = b'{"error": {"message": "backend exploded near SK-LIVE-1234567890", "code": "boom", "param": "x"}}'
    error = status_error(500, body, "east", None, REDACT)
    assert error.message == "Deployment 'east' failed with HTTP 500."
    assert error.to_body()["error"] == {
        "message": "Deployment 'east' failed with HTTP 500.",
        "type": "upstream_error",
        "param": None,
        "code": "upstream_error",
    }
    assert error.detail is not None and "exploded" in error.detail
    assert "exploded" in error.log_message and "exploded" not in str(error)


def test_a_client_errors_fields_are_redacted_too() -> None:
    body = b'{"error": {"message": "bad", "code": "key-sk-live-1234567890", "param": "sk-live-1234567890"}}'
    error = status_error(400, body, "east", None, REDACT).to_body()["error"]
    assert "1234567890" not in str(error)


def test_no_module_changes_an_error_after_it_was_made() -> None:
    """Errors are values: a later ``exc.message = ...`` (say, to mask a key) is how texts leak unmasked."""
    offenders = []
    for path in (Path(ailb.__file__).parent).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id in {"error", "exc", "err", "failure"}
                ):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_a_huge_upstream_detail_is_bounded_for_the_log() -> None:
    from ailb.errors import MAX_DETAIL, UpstreamError

    error = UpstreamError("Deployment 'x' failed with HTTP 500.", deployment="x", detail="boom " * 5000)
    assert error.detail is not None and len(error.detail) < MAX_DETAIL + 40
    assert error.detail.startswith("boom boom") and "more characters" in error.detail
