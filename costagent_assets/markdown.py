"""Markdown previews for Dagster materialization metadata."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any


def table(rows: Iterable[Mapping[str, Any]], columns: Sequence[tuple[str, Callable[[Mapping[str, Any]], Any]]]) -> str:
    """A markdown table: one column per (header, function of the row)."""
    head = "| " + " | ".join(h for h, _ in columns) + " |\n|" + "---|" * len(columns) + "\n"
    body = "\n".join(
        "| " + " | ".join(str(fn(r)).replace("|", "\\|") for _, fn in columns) + " |" for r in rows
    )
    return head + body


def usd(x: float | None) -> str:
    """$1,234.56, or n/a."""
    return "n/a" if x is None else f"${x:,.2f}"


def pct(x: float | None) -> str:
    """+12.3%, or n/a."""
    return "n/a" if x is None else f"{x:+.1f}%"
