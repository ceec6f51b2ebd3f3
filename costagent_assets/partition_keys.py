"""Partition keys as text, without Dagster: the IO manager, the CLI and the domain code share them.

A month x account key is ``"<account_id>|<YYYY-MM>"``: Dagster orders a multi-partition key's dimensions
by name (``account`` before ``month``), and ``dg.MultiPartitionKey`` is a ``str`` in exactly this form.
"""

from __future__ import annotations

ACCOUNT_DIMENSION = "account"
MONTH_DIMENSION = "month"
SEPARATOR = "|"


def split_key(key: str) -> tuple[str, str]:
    """``(month, account_id)`` of a month x account key (a ``dg.MultiPartitionKey`` or its text)."""
    account, month = str(key).split(SEPARATOR)
    return month, account


def key_text(month: str, account_id: str) -> str:
    """The text of the month x account key of ``(month, account_id)``."""
    return f"{account_id}{SEPARATOR}{month}"
