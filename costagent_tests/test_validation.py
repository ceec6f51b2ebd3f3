"""The email, USD and percentage checks shared by the settings and the teams."""

from __future__ import annotations

import pytest

from costagent_assets.validation import email_problem, parse_usd_amount


@pytest.mark.parametrize(
    "address",
    ["a@example.com", "first.last+tag@sub.example.co.uk", "o'brien@example.org", "x@xn--bcher-kva.example"],
)
def test_email_problem_accepts_practical_addresses(address):
    assert email_problem(address) is None


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("", "empty"),
        ("a@example.com\r\nBcc: evil@example.net", "line break"),
        ("a@example.com\n", "line break"),
        ("a\t@example.com", "control character"),
        ("a b@example.com", "space"),
        ("example.com", "no @"),
        ("a@b@example.com", "more than one @"),
        ("@example.com", "nothing before the @"),
        ("a..b@example.com", "two dots in a row"),
        ("a@example..com", "two dots in a row"),
        (".a@example.com", "dot before the @"),
        ("a@", "no domain"),
        ("a@localhost", "no dot"),
        ("a@-bad-.com", "not a valid host name"),
        ("a@example.c0m", "top-level domain"),
        ("a<b>@example.com", "not allowed before the @"),
        ("a@example.com,b@example.com", "separator"),
        ("jos\u00e9@example.com", "non-ASCII"),
        ("a" * 250 + "@example.com", "at most 254"),
        ("a" * 65 + "@example.com", "more than 64"),
    ],
)
def test_email_problem_explains_each_rejection(address, expected):
    reason = email_problem(address)
    assert reason is not None and expected in reason


@pytest.mark.parametrize(
    ("text", "amount"), [("$1,200.50", 1200.5), ("0", 0.0), ("1e3", 1000.0), (" $ 75 ", 75.0)]
)
def test_parse_usd_amount(text, amount):
    assert parse_usd_amount(text) == amount

