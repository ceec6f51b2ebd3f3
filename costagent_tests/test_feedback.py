"""`costagent anomalies ack`: marks stored in the warehouse, applied to stored and future anomalies."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from costagent_assets.anomaly_detection import AnomalyRule, detect_anomalies
from costagent_assets.cli import main as cli
from costagent_assets.feedback import read_feedback
from costagent_assets.warehouse.store import read_partitions, write_partitions
from costagent_tests.test_anomaly_detection import A, _account_mom, run, series, weekly


def _spike_rows() -> list[dict]:
    return series(date(2026, 9, 1), date(2026, 11, 4), lambda d: weekly(d) + (800.0 if d == date(2026, 11, 3) else 0))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    root = tmp_path / "home"
    stored = run(_spike_rows(), date(2026, 11, 5))
    assert stored.filter(pl.col("alerted") & (pl.col("level") == "service")).height == 1
    write_partitions(root / "warehouse", "anomalies", stored, [("2026-11", A)])
    return root


def test_ack_marks_the_stored_anomaly_and_later_runs(home: Path, capsys: pytest.CaptureFixture[str]):
    argv = ["--home", str(home), "anomalies", "ack", A, "EC2", "2026-11", "--as", "expected", "--note", "load test"]
    assert cli.main(argv) == 0
    assert "the stored anomaly is marked" in capsys.readouterr().out
    stored = read_partitions(home / "warehouse", "anomalies", [("2026-11", A)])
    stored = stored.filter(pl.col("service") == "EC2").row(0, named=True)
    assert stored["acknowledged"] and not stored["alerted"] and stored["feedback"] == "expected"
    # The next run applies the same mark: not alerted again for this account, service and month.
    marks = read_feedback(home / "warehouse")
    assert marks.select("account_id", "service", "month", "feedback", "note").row(0) == (
        A, "EC2", "2026-11", "expected", "load test")
    again = run(_spike_rows(), date(2026, 11, 5), feedback=marks).filter(pl.col("service") == "EC2").row(0, named=True)
    assert again["acknowledged"] and not again["alerted"]
    capsys.readouterr()
    assert cli.main(["--home", str(home), "sql", "select feedback from anomaly_feedback", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"feedback": "expected"}]


def test_a_second_mark_replaces_the_first(home: Path):
    for kind in ("expected", "false_positive"):
        assert cli.main(["--home", str(home), "anomalies", "ack", A, "EC2", "2026-11", "--as", kind]) == 0
    marks = read_feedback(home / "warehouse")
    assert marks["feedback"].to_list() == ["false_positive"]


def test_bad_marks_are_refused_and_nothing_is_stored(home: Path, capsys: pytest.CaptureFixture[str]):
    assert cli.main(["--home", str(home), "anomalies", "ack", "12345", "EC2", "2026-11", "--as", "expected"]) == 2
    assert "12-digit" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["--home", str(home), "anomalies", "ack", A, "EC2", "2026-11", "--as", "fine"])
    assert exc.value.code == 2
    assert read_feedback(home / "warehouse").height == 0


def test_a_budget_alert_is_acknowledged_with_a_dash_for_the_service():
    marks = pl.DataFrame([{"month": "2026-11", "account_id": A, "service": "", "feedback": "expected"}])
    out = detect_anomalies(_account_mom(850.0, 2550.0), AnomalyRule(), budgets={A: 1000.0}, feedback=marks)
    assert out.height == 1 and out["acknowledged"].all() and not out["alerted"].any()  # one budget alert a team
