"""The whole weekly job on the demo organisation, run once and shared by the tests that only read it."""

from __future__ import annotations

from pathlib import Path

import pytest

from costagent_tests.peers.homes import DEMO_AS_OF, run_cli


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`costagent demo --as-of 2026-11-23`: the README's first command (84 accounts, 6 months of history first).

    Shared by every test of this folder that reads its outbox, warehouse or Dagster instance. A test that
    changes a home (a rerun, a setting, a mark) works on ``copy_home(demo_home, tmp_path / ...)`` instead.
    ``--home`` is explicit, and ``run_cli`` restores COSTAGENT_HOME/DAGSTER_HOME after, so the per-test
    ``isolated`` homes are untouched.
    """
    home = tmp_path_factory.mktemp("demo") / "home"
    assert run_cli("--home", str(home), "demo", "--as-of", DEMO_AS_OF.isoformat()) == 0
    return home
