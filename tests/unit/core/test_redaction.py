"""The one Redactor: configured secrets in any casing or JSON escape, credential shapes, and nothing else."""

from __future__ import annotations

import pytest

from ailb.redaction import MIN_SECRET_LENGTH, Redactor, SecretSet

KEY = "sk-Live-Provider-Key-0042"


@pytest.mark.parametrize(
    "text",
    [
        f"bad key {KEY}",
        f"bad key {KEY.upper()}",
        f"bad key {KEY.lower()}",
        "bad key \\u0073k\\u002dLive-Provider-Key-0042",
        "bad key \\u0053K-LIVE-PROVIDER-KEY-0042",
    ],
)
def test_configured_secrets_are_masked_in_any_casing_or_escape(text: str) -> None:
    assert Redactor([KEY])(text) == "bad key ****"


def test_credential_shapes_are_masked_without_configuration() -> None:
    redactor = Redactor()
    assert redactor("Authorization: Bearer abc.def") == "Authorization: ****"
    assert redactor("used SK-proj-abcdefghij and rk-live-1234567") == "used SK-proj-**** and rk-****"
    assert redactor('{"x-api-key": "k-123"}') == '{"x-api-key": "****"}'


def test_the_longer_of_two_overlapping_secrets_is_masked_whole() -> None:
    redactor = Redactor(["team-a-key", "team-a-key-admin"])
    assert redactor("x team-a-key-admin y team-a-key z") == "x **** y **** z"


def test_placeholders_shorter_than_the_minimum_are_not_secrets() -> None:
    assert MIN_SECRET_LENGTH == 8
    redactor = Redactor(["none", "EMPTY", "1234567"])
    assert redactor("none of it is EMPTY: 1234567") == "none of it is EMPTY: 1234567"
    assert redactor.secrets.empty


def test_set_secrets_replaces_the_set_in_one_step() -> None:
    redactor = Redactor(["first-secret-1"])
    before = redactor.secrets
    redactor.set_secrets(["second-secret-2"])
    assert redactor("first-secret-1 second-secret-2") == "first-secret-1 ****"
    assert before.in_text("first-secret-1") and not before.in_text("second-secret-2")  # a snapshot is stable


def test_secret_set_searches_bytes_and_text_ignoring_case() -> None:
    secrets = SecretSet([KEY])
    assert secrets.in_bytes(b'{"content": "' + KEY.upper().encode() + b'"}')
    assert not secrets.in_bytes(b'{"content": "sk-Live-Provider-Key-004"}')
    assert secrets.mask(f"a {KEY.swapcase()} b") == "a **** b"
    assert secrets.spans(f"xx{KEY}") == [(2, 2 + len(KEY))]


@pytest.mark.parametrize(
    ("text", "held"),
    [("ends with s", True), ("ends with SK-LI", True), ("ends with sk-x", False), ("plain", False), ("", False)],
)
def test_ends_with_prefix(text: str, held: bool) -> None:
    assert SecretSet([KEY]).ends_with_prefix(text) is held


def test_the_whole_secret_is_not_a_proper_prefix() -> None:
    assert not SecretSet([KEY]).ends_with_prefix("is " + KEY)


@pytest.mark.parametrize("count", [1, 9])  # a few secrets are searched one by one, more with one expression
@pytest.mark.parametrize(
    ("text", "found"),
    [
        (f"a {KEY.swapcase()} b", True),
        (f"{KEY[:-1]} and {KEY[-1]}", False),
        (f"caf\u00e9 {KEY.upper()}", True),  # not ASCII: the expression
        (KEY.replace("k", "\u212a"), True),  # the Kelvin sign is a capital k to the expression, as it was
        ("sk-Live-Provider-Key-0042"[:10], False),
    ],
)
def test_secrets_are_found_in_text_in_any_casing(count: int, text: str, found: bool) -> None:
    secrets = SecretSet([KEY, *(f"other-secret-{k}" for k in range(count - 1))])
    assert secrets.in_text(text) is found
    assert secrets.in_text(text) is (secrets.spans(text) != [])  # in_text agrees with the expression's matches


def test_a_secret_with_a_quote_or_a_line_break_is_told() -> None:
    assert SecretSet([KEY]).quoteless
    assert not SecretSet([KEY, 'pass"word-1']).quoteless
    assert not SecretSet([KEY, "pass\nword-1"]).quoteless
    assert not SecretSet([KEY, "pass\\word-1"]).quoteless
