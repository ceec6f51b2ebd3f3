"""The run lease on a local warehouse: flock, refused with the holder's name, re-entrant, freed by SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from costagent_assets.run_lease import LEASE_ENV, FileLease, LeaseHeld, hold

REPO = Path(__file__).resolve().parents[1]


def test_a_second_holder_is_refused_with_the_first_ones_name(tmp_path):
    path = tmp_path / "warehouse" / ".run_lease"
    first = FileLease(path)  # taken without exporting a token: as another process holding it
    holder = first.try_acquire("costagent weekly_report 2026-11")
    assert holder is not None and FileLease(path).try_acquire("second") is None
    started = time.monotonic()
    with pytest.raises(LeaseHeld) as caught:
        with hold(FileLease(path), "second", wait_seconds=0.3, poll_seconds=0.1):
            pass
    assert time.monotonic() - started >= 0.3  # it waited as long as it was told
    assert "costagent weekly_report 2026-11 (pid" in str(caught.value) and str(path) in str(caught.value)
    first.release(holder)
    # Released: the next run takes it, and exports its token while it holds it.
    with hold(FileLease(path), "third") as third:
        assert third is not None and third.what == "third" and os.environ[LEASE_ENV] == third.token
    assert LEASE_ENV not in os.environ


def test_the_holding_process_takes_it_again_without_waiting(tmp_path):
    path = tmp_path / ".run_lease"
    with hold(FileLease(path), "costagent run") as outer:
        with hold(FileLease(path), "Dagster run abc") as inner:  # the job's run_lease resource, same process
            assert inner is None
        assert FileLease(path).holder() == outer  # the inner block did not release it
        assert FileLease(path).try_acquire("x") is None


def test_a_killed_holder_leaves_the_lease_free(tmp_path):
    path = tmp_path / ".run_lease"
    code = ("import sys, time; from pathlib import Path; from costagent_assets.run_lease import FileLease; "
            f"assert FileLease(Path({str(path)!r})).try_acquire('doomed run'); print('held', flush=True); "
            "time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(LeaseHeld, match="doomed run"):
            with hold(FileLease(path), "waiting run"):
                pass
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    started = time.monotonic()
    with hold(FileLease(path), "next run", wait_seconds=5) as holder:
        assert holder is not None and time.monotonic() - started < 5
