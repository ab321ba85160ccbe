from __future__ import annotations

from ailb.errors import UpstreamStatusError
from ailb.memory.store import MemoryStoreError
from ailb.providers.transport import status_error


def test_internal_details_stay_out_of_the_answer() -> None:
    error = MemoryStoreError("The ChromaDB folder /srv/ailb_memory failed: disk I/O error")
    body = error.to_body()["error"]
    assert "/srv" not in body["message"] and "disk" not in body["message"]
    assert body["code"] == "memory_unavailable"
    assert "/srv/ailb_memory" in error.message  # still there for the log


def test_upstream_errors_keep_their_status_but_not_the_organization() -> None:
    body = b'{"error": {"message": "Rate limit reached in organization org-AbC123 on tokens", "type": "tokens"}}'
    error = status_error(429, body, "openai", 2.0)
    assert isinstance(error, UpstreamStatusError)
    assert error.upstream_status == 429 and error.retryable and error.retry_after == 2.0
    assert "org-AbC123" not in error.message and "org-****" in error.message


def test_credential_failures_name_the_deployment_only() -> None:
    error = status_error(401, b'{"error": {"message": "Incorrect API key provided: sk-live-123"}}', "east", None)
    assert "sk-live" not in error.message and "east" in error.message
    assert error.status == 502
