from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from ailb.observability.context import RequestContext, enter_request, leave_request
from ailb.observability.logging import RedactingFilter, Redactor, configure_logging


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer abc.DEF-123", "abc.DEF-123"),
        ("headers={'x-api-key': 'client-key-1'}", "client-key-1"),
        ('{"authorization": "Basic Zm9vOmJhcg=="}', "Zm9vOmJhcg=="),
        ("calling with sk-proj-abcdefghijkl", "abcdefghijkl"),
        ("anthropic sk-ant-api03-xyzxyzxyz", "api03-xyzxyzxyz"),
        ("api_key=hunter2hunter2 sent", "hunter2hunter2"),
    ],
)
def test_patterns_are_redacted(text: str, secret: str) -> None:
    redacted = Redactor()(text)
    assert secret not in redacted
    assert "****" in redacted


def test_configured_secrets_are_redacted_anywhere() -> None:
    redactor = Redactor(["plain-looking-key-42", "abc"])
    assert redactor("key=plain-looking-key-42;") == "key=****;"
    assert redactor("abc stays: too short to be a secret") == "abc stays: too short to be a secret"


def test_ordinary_text_is_left_alone() -> None:
    text = "task-manager routed gpt-4o to deployment blue in 0.2s"
    assert Redactor(["some-secret"])(text) == text


def test_configure_logging_redacts_messages_args_and_tracebacks(restore_root: None) -> None:
    out = io.StringIO()
    configure_logging("debug", secrets=["provider-key-123456"], stream=out)
    log = logging.getLogger("ailb.test")
    log.info("upstream said %r", {"Authorization": "Bearer provider-key-123456"})
    try:
        raise RuntimeError("failed with key provider-key-123456")
    except RuntimeError:
        log.exception("boom")
    text = out.getvalue()
    assert "provider-key-123456" not in text
    assert "boom" in text
    assert "RuntimeError" in text


def test_json_lines_carry_extra_fields_and_are_redacted(restore_root: None) -> None:
    out = io.StringIO()
    configure_logging("info", secrets=["sekrit-value"], json_lines=True, stream=out)
    logging.getLogger("ailb.http").warning("request failed", extra={"deployment": "blue", "key": "sekrit-value"})
    entry = json.loads(out.getvalue().strip())
    assert entry["level"] == "warning"
    assert entry["logger"] == "ailb.http"
    assert entry["message"] == "request failed"
    assert entry["deployment"] == "blue"
    assert entry["key"] == "****"


def test_configuring_twice_replaces_the_handler(restore_root: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("info", stream=first)
    configure_logging("info", stream=second)
    logging.getLogger("ailb.x").info("once")
    assert first.getvalue() == ""
    assert second.getvalue().count("once") == 1


def test_filter_rewrites_records_for_foreign_handlers() -> None:
    record = logging.makeLogRecord({"msg": "key %s", "args": ("sk-abcdefghijkl",)})
    assert RedactingFilter(Redactor()).filter(record)
    assert record.getMessage() == "key sk-****"


def test_json_lines_stay_valid_whatever_the_redactor_replaces(restore_root: None) -> None:
    """Redacting the serialised line would cut a string at an escaped quote (``api_key=abc\\"rest``) and leave
    broken JSON: each field is redacted before it is written."""
    out = io.StringIO()
    configure_logging("info", secrets=["secret-in-a-key"], json_lines=True, stream=out)
    log = logging.getLogger("ailb.test")
    log.warning('upstream said api_key=abc"rest and authorization: "Bearer x\\y"')
    log.warning("nested", extra={"details": {"header": 'x-api-key: "k1"', "keys": ["secret-in-a-key", 3, None]}})
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["message"] == 'upstream said api_key=****"rest and authorization: "****"'
    assert second["details"] == {"header": 'x-api-key: "****"', "keys": ["****", 3, None]}


def test_json_lines_name_the_request_being_served(restore_root: None) -> None:
    out = io.StringIO()
    configure_logging("info", json_lines=True, stream=out)
    log = logging.getLogger("ailb.test")

    class Traced:
        trace_id, span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"

    log.info("outside")
    token = enter_request(RequestContext("req-1"))
    try:
        log.info("inside")
    finally:
        leave_request(token)
    token = enter_request(RequestContext("req-2", Traced()))  # type: ignore[arg-type]
    try:
        log.info("traced")
    finally:
        leave_request(token)
    outside, inside, traced = (json.loads(line) for line in out.getvalue().splitlines())
    assert set(outside) == {"timestamp", "level", "logger", "message"}
    assert inside["request_id"] == "req-1" and "trace_id" not in inside
    assert (traced["request_id"], traced["trace_id"], traced["span_id"]) == ("req-2", Traced.trace_id, Traced.span_id)
    assert outside["timestamp"].endswith("+00:00") and outside["level"] == "info"


def test_plain_lines_name_the_request_too(restore_root: None) -> None:
    out = io.StringIO()
    configure_logging("info", stream=out)
    token = enter_request(RequestContext("req-7"))
    try:
        logging.getLogger("ailb.test").info("served")
    finally:
        leave_request(token)
    assert out.getvalue().rstrip().endswith("ailb.test: served [request_id=req-7]")
