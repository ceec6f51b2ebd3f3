"""The commands the services run (deploy/: `costagent serve daemon|webserver`), started as subprocesses
on a test's home and stopped at the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def served(home: Path, service: str, *options: str) -> Iterator[subprocess.Popen]:
    """``costagent --home HOME serve SERVICE OPTIONS`` running until the block ends (SIGTERM, then SIGKILL)."""
    with running(home, "serve", service, *options) as proc:
        yield proc


@contextmanager
def running(home: Path, *args: str) -> Iterator[subprocess.Popen]:
    """``costagent --home HOME ARGS`` running until the block ends (SIGTERM, then SIGKILL)."""
    costagent = Path(sys.executable).with_name("costagent")
    log = open(home.parent / f"{'-'.join(args[:2])}.log", "wb")  # noqa: SIM115  (closed below)
    proc = subprocess.Popen([str(costagent), "--home", str(home), *args],
                            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ), start_new_session=True)
    try:
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def wait_for(condition: Callable[[], bool], what: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    """Poll ``condition`` until true; fail with ``what`` (and the service's log) on timeout or early exit."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the service exited early while waiting for {what}"
        assert time.monotonic() < deadline, f"{what} did not happen in {timeout:.0f} s"
        time.sleep(1)
