"""One account's bad data must not stop a stage for every account: run a computation over all of a run's
partitions at once (the fast path), and only when that fails, account by account, to find and set aside the
accounts it fails for. Pure Python, no Dagster."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl

UNAVAILABLE = "unavailable"


class EveryAccountFailed(RuntimeError):
    """The computation failed for every account of the run: not one account's data, a fault to fix."""


def isolate_accounts(
    compute: Callable[[list[tuple[str, str]]], pl.DataFrame], partitions: Sequence[tuple[str, str]]
) -> tuple[pl.DataFrame, dict[str, str]]:
    """``compute(partitions)``, or, when it raises, ``compute`` of each account's partitions alone.

    Returns the rows of the accounts it succeeded for and {account_id: "ErrorType: message"} for the others.
    ``compute`` must read only the accounts of the partitions it is given. When it fails for every account,
    the first account's error is raised (as :class:`EveryAccountFailed`): that is no longer one account's data.
    """
    partitions = list(partitions)
    try:
        return compute(partitions), {}
    except Exception:  # any failure: find the accounts it comes from below
        pass
    frames, failed = [], {}
    accounts = sorted({a for _, a in partitions})
    first_error: Exception | None = None
    for account in accounts:
        try:
            frames.append(compute([(m, a) for m, a in partitions if a == account]))
        except Exception as err:  # recorded for this account; the others go on
            failed[account] = f"{type(err).__name__}: {err}"
            first_error = first_error or err
    if len(failed) == len(accounts):
        raise EveryAccountFailed(f"failed for every account of the run: {failed[accounts[0]]}") from first_error
    return pl.concat(frames, how="diagonal_relaxed"), failed


def of_accounts(frame: pl.DataFrame, partitions: Sequence[tuple[str, str]]) -> pl.DataFrame:
    """The rows of ``frame`` that belong to the accounts of ``partitions``."""
    return frame.filter(pl.col("account_id").is_in(sorted({a for _, a in partitions})))
