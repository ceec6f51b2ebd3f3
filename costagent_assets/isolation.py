"""One account's bad data must not stop a stage for every account: run a computation over all of a run's
partitions at once (the fast path), and only when that fails, account by account, to find and set aside the
accounts it fails for. Pure Python, no Dagster."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl

UNAVAILABLE = "unavailable"


class EveryAccountFailed(RuntimeError):
    """The computation failed for every account of the run: not one account's data, a fault to fix."""


# Accounts computed in one call by the stages whose intermediate frames grow with the accounts they are given
# (mom_changes, anomalies): in groups of this many, a stage's peak memory stops growing with the organisation.
# Their results are per account, so the rows are the same whatever the grouping.
ACCOUNT_GROUP = 500


def account_groups(partitions: Sequence[tuple[str, str]], size: int | None = None) -> list[list[tuple[str, str]]]:
    """``partitions`` in groups of at most ``size`` (default ``ACCOUNT_GROUP``) accounts, by account id, each in
    the partitions' order; a single group when they are that few (or none)."""
    size = size or ACCOUNT_GROUP
    accounts = sorted({a for _, a in partitions})
    if len(accounts) <= size:
        return [list(partitions)]
    groups = []
    for start in range(0, len(accounts), size):
        members = set(accounts[start:start + size])
        groups.append([p for p in partitions if p[1] in members])
    return groups


def in_account_groups(compute: Callable[[list[tuple[str, str]]], pl.DataFrame],
                      partitions: Sequence[tuple[str, str]], size: int | None = None) -> pl.DataFrame:
    """``compute`` of each group of ``account_groups``, concatenated: for a computation that gives each account
    the same rows whichever other accounts it is given with (``compute`` reads only its group's accounts)."""
    frames = [compute(group) for group in account_groups(list(partitions), size)]
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")


def isolate_accounts(
    compute: Callable[[list[tuple[str, str]]], pl.DataFrame], partitions: Sequence[tuple[str, str]],
    grouped: bool = False,
) -> tuple[pl.DataFrame, dict[str, str]]:
    """``compute(partitions)``, or, when it raises, ``compute`` of each account's partitions alone.

    Returns the rows of the accounts it succeeded for and {account_id: "ErrorType: message"} for the others.
    ``compute`` must read only the accounts of the partitions it is given. When it fails for every account,
    the first account's error is raised (as :class:`EveryAccountFailed`): that is no longer one account's data.
    ``grouped``: the accounts are computed (and isolated) a group at a time (``account_groups``).
    """
    partitions = list(partitions)
    groups = account_groups(partitions) if grouped else [partitions]
    frames, failed = [], {}
    first_error: Exception | None = None
    for group in groups:
        try:
            frames.append(compute(group))
            continue
        except Exception:  # any failure: find the accounts it comes from below
            pass
        for account in sorted({a for _, a in group}):
            try:
                frames.append(compute([(m, a) for m, a in group if a == account]))
            except Exception as err:  # recorded for this account; the others go on
                failed[account] = f"{type(err).__name__}: {err}"
                first_error = first_error or err
    accounts = sorted({a for _, a in partitions})
    if failed and len(failed) == len(accounts):
        raise EveryAccountFailed(f"failed for every account of the run: {failed[accounts[0]]}") from first_error
    return (frames[0] if len(frames) == 1 and not failed else pl.concat(frames, how="diagonal_relaxed")), failed


def of_accounts(frame: pl.DataFrame, partitions: Sequence[tuple[str, str]]) -> pl.DataFrame:
    """The rows of ``frame`` that belong to the accounts of ``partitions`` (``frame`` itself when that is all of
    them: no copy of a whole month's rows when a run's accounts make one group)."""
    wanted = pl.col("account_id").is_in(sorted({a for _, a in partitions}))
    if frame.is_empty() or frame.select(wanted.fill_null(False).all()).item():
        return frame
    return frame.filter(wanted)
