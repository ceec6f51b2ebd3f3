"""Validators shared by the settings and the teams registry: e-mail addresses, USD amounts, percentages.

Both read values typed by people (command line, spreadsheets) and JSON values, so they must agree on
what an address, an amount or a percentage is; keeping the rules here keeps them from drifting apart.
"""

from __future__ import annotations

import math
import re

# Control characters, C1 included: a CR/LF in an address or a name is a header injection waiting to happen.
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# An RFC 2047 encoded-word (=?charset?Q|B?text?=). Mail clients decode it, and Python's email package before
# 3.11.10/3.12.5 (CVE-2024-6923) writes what it decodes to into the header as is: a CR/LF hidden in one
# becomes a header line of its own.
ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[bBqQ]\?[^?\s]*\?=")
# What must never reach a header, decoded or not: C0/C1 controls (CR, LF, NEL U+0085 among them) and the
# Unicode line and paragraph separators.
HEADER_BREAK = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def encoded_word_problem(text: str) -> str | None:
    """Why ``text`` cannot go into a mail header because of an RFC 2047 encoded-word in it (one that decodes
    to a control character, or cannot be decoded), or None."""
    import email.header

    for word in ENCODED_WORD.findall(text):
        try:
            decoded = "".join(
                part.decode(charset or "ascii", errors="replace") if isinstance(part, bytes) else part
                for part, charset in email.header.decode_header(word)
            )
        except (ValueError, LookupError):
            return f"contains the RFC 2047 encoded-word {word!r}, which cannot be decoded"
        if HEADER_BREAK.search(decoded):
            return f"contains the RFC 2047 encoded-word {word!r}, which decodes to a line break or control character"
    return None
_LOCAL_PART_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-."
)
_DOMAIN_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_TOP_LEVEL_DOMAIN = re.compile(r"[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59}")
_MONEY = re.compile(
    r"(?P<sign>[-+]?)\s*\$?\s*(?P<sign2>[-+]?)"
    r"(?P<number>[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?|[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
)

# An anomaly threshold (the installation's and a team's own): a percentage above THRESHOLD_PCT_LOW, at most
# THRESHOLD_PCT_HIGH; ten times over is as far as a month-over-month rise is still worth a setting.
THRESHOLD_PCT_LOW = 0.0
THRESHOLD_PCT_HIGH = 1000.0


def email_problem(address: str) -> str | None:
    """Why ``address`` is not a usable e-mail address, or None if it is.

    A practical syntax check (no DNS): one ASCII address, no display name, no quoting. Control
    characters are refused above all because a CR/LF in an address is a header injection.
    """
    if not isinstance(address, str):
        return "is not text"
    if not address:
        return "is empty"
    if CONTROL_CHARACTER.search(address):
        return "contains a line break, tab or other control character"
    if any(ch.isspace() for ch in address):
        return "contains a space"
    if len(address) > 254:
        return f"is {len(address)} characters long; at most 254 are allowed"
    if "," in address or ";" in address:
        return "contains a separator (',' or ';'); give one address here"
    non_ascii = next((ch for ch in address if not ch.isascii()), None)
    if non_ascii is not None:
        return f"contains the non-ASCII character {non_ascii!r}; use the plain ASCII (punycode) form"
    if "@" not in address:
        return "has no @"
    if address.count("@") > 1:
        return "has more than one @"
    local, domain = address.split("@")
    if not local:
        return "has nothing before the @"
    if len(local) > 64:
        return "has more than 64 characters before the @"
    if ".." in address:
        return "has two dots in a row"
    if local.startswith(".") or local.endswith("."):
        return "starts or ends with a dot before the @"
    bad = next((ch for ch in local if ch not in _LOCAL_PART_CHARS), None)
    if bad is not None:
        return f"contains {bad!r}, which is not allowed before the @"
    if not domain:
        return "has no domain after the @"
    if "." not in domain:
        return f"domain {domain!r} has no dot (expected something like example.com)"
    if not all(_DOMAIN_LABEL.fullmatch(label) for label in domain.split(".")):
        return f"domain {domain!r} is not a valid host name"
    if not _TOP_LEVEL_DOMAIN.fullmatch(domain.rsplit(".", 1)[1]):
        return f"domain {domain!r} does not end in a top-level domain such as .com"
    return None


def parse_usd_amount(value: object) -> float:
    """A non-negative, finite USD amount from a number or text such as ``"$1,200.50"``.

    Raises ValueError with the reason. Commas are only accepted as thousands separators, so a
    European decimal comma ("1200,50") is refused instead of being read as 120050.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, str):
        text = value.strip()
        match = _MONEY.fullmatch(text)
        if match:
            amount = float(match["number"].replace(",", ""))
            if "-" in match["sign"] + match["sign2"]:
                amount = -amount
        else:
            try:
                amount = float(text)  # plain float syntax such as 1e6
            except ValueError:
                raise ValueError(
                    f"{value!r} is not an amount in USD (write it like 1200 or $1,200.50)"
                ) from None
    else:
        amount = float(value)
    if not math.isfinite(amount):
        raise ValueError(f"{value!r} is not a finite number")
    if amount < 0:
        raise ValueError(f"{value!r} is negative; it must be 0 or more")
    return 0.0 if amount == 0 else amount  # no "-0.0" in the registry


def number_text(value: object) -> str | None:
    """The value as number text (stripped), or None for types no number can come from (bools included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return repr(value)
    return value.strip() if isinstance(value, str) else None


def parse_number(value: object, *, percent_sign: bool = False) -> float:
    """The number in a JSON number or text such as ``" 12.5 "``; with ``percent_sign`` also ``"12.5%"``.

    Raises ValueError for anything else; JSON ``true`` is not 1. NaN and infinities come back as
    floats, so that the caller's range check refuses them with the range in its message.
    """
    text = number_text(value) or ""
    try:
        return float(text.removesuffix("%") if percent_sign else text)
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None


def in_range(number: float, low: float, high: float | None, *, above_low: bool = False) -> bool:
    """Whether ``number`` is finite, at least ``low`` (above it with ``above_low``) and at most ``high``."""
    above = number > low if above_low else number >= low
    return math.isfinite(number) and above and (high is None or number <= high)


def check_threshold_pct(value: object) -> float:
    """A team's anomaly threshold: a percentage > 0 and <= 1000 ("25" or "25%"); ValueError if not."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a percentage")
    try:
        pct = parse_number(value, percent_sign=True)
    except ValueError:
        raise ValueError(f"{value!r} is not a percentage (write it like 25 or 25%)") from None
    if not in_range(pct, THRESHOLD_PCT_LOW, THRESHOLD_PCT_HIGH, above_low=True):
        raise ValueError(f"{value!r} is out of range; a percentage greater than 0 and at most 1000")
    return pct
