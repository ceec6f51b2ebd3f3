"""`costagent status`: a run whose process was killed is shown (and stored) as failed, not running forever."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest

from costagent_assets.cli import main as cli
from costagent_assets.cli.runner import prepare_instance
from costagent_assets.home import Home

REPO = Path(__file__).resolve().parents[2]

# A run executed in its own process, as `costagent run` executes one, that sleeps in its only step.
SLEEPER = textwrap.dedent("""
    import sys, time
    import dagster as dg
    from costagent_assets.cli.runner import prepare_instance
    from costagent_assets.home import Home

    @dg.op
    def sleep():
        time.sleep(120)

    @dg.job
    def sleeper():
        sleep()

    from pathlib import Path
    sleeper.execute_in_process(instance=prepare_instance(Home(Path(sys.argv[1]))))
""")


def test_a_killed_run_is_marked_failed_and_shown_so(isolated: Path, capsys: pytest.CaptureFixture[str]):
    Home(isolated).ensure()
    proc = subprocess.Popen([sys.executable, "-c", SLEEPER, str(isolated)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        instance = prepare_instance(Home(isolated))
        deadline = time.monotonic() + 60
        assert proc.poll() is None
        started = []
        while not started and time.monotonic() < deadline:
            started = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
            time.sleep(0.2)
        assert started, "the run never started"
        time.sleep(0.5)  # its step is running
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    capsys.readouterr()
    assert cli.main(["--home", str(isolated), "status"]) == 0
    out = capsys.readouterr().out
    assert f"dead run:    sleeper run {started[0].run_id[:8]}: its process (pid {proc.pid}) is gone" in out
    assert "last run:    sleeper FAILURE" in out
    assert instance.get_run_by_id(started[0].run_id).status == dg.DagsterRunStatus.FAILURE
    capsys.readouterr()
    assert cli.main(["--home", str(isolated), "status"]) == 0
    assert "dead run" not in capsys.readouterr().out  # marked once
