"""`costagent preview team ACCOUNT --ai` against a local Gemini-like server: one account analysed on demand.

The demo runs once without a key (every account has the computed summary); the preview then asks the
peer about one account, and the ai_insights partition and the preview carry the model's grounded text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from costagent_assets.cli import main as cli
from costagent_assets.defs import run_metadata
from costagent_tests.end_to_end.test_ai_insights import ACCOUNTS, EXPLAINED_SQL, MONTH, demo, sql
from costagent_tests.peers.gemini_server import GeminiPeer
from costagent_tests.peers.homes import copy_home, environment


@pytest.fixture(scope="module")
def keyless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, GeminiPeer]]:
    """One weekly run without GEMINI_API_KEY (the peer configured but never called), copied by each test."""
    server = GeminiPeer().start()
    home = tmp_path_factory.mktemp("preview-ai") / "home"
    demo(home, server, key=None)
    assert server.received == []
    yield home, server
    server.stop()


def sent_files(home: Path) -> dict[str, int]:
    """Every file of the outbox and the send ledger, with its modification time."""
    return {str(p): p.stat().st_mtime_ns for folder in ("outbox", "warehouse/email_ledger")
            for p in (home / folder).rglob("*") if p.is_file()}


def preview(home: Path, *args: str, key: str | None, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    with environment(GEMINI_API_KEY=key):
        code = cli.main(["--home", str(home), "preview", "team", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_ai_makes_one_call_for_that_account_and_previews_its_text(keyless, tmp_path, capsys):
    source, peer = keyless
    home = copy_home(source, tmp_path / "home")
    peer.reset()
    account = sql(home, EXPLAINED_SQL, capsys)[0]["account_id"]
    before = sent_files(home)
    assert before  # the demo's emails and ledger entries are there to be left alone
    code, out, err = preview(home, account, "--ai", key="test-key", capsys=capsys)
    assert code == 0, err
    # Exactly one model call, about this account only: no organisation summary of one account.
    [call] = peer.received
    assert call.status == 200 and call.data["account"]["account_id"] == account
    others = [r["account_id"] for r in sql(home, f"select account_id from ai_insights where month = '{MONTH}' "
                                                 f"and account_id <> '{account}'", capsys)]
    assert len(others) == ACCOUNTS - 1 and not any(a in json.dumps(call.data) for a in others)
    # The stored partition is refreshed with the grounded text, and the preview shows it.
    [row] = sql(home, f"select source, summary, ai_note from ai_insights where month = '{MONTH}' "
                      f"and account_id = '{account}'", capsys)
    assert row["source"] == "gemini" and row["ai_note"] is None and row["summary"].startswith("Spend ")
    code, out, err = preview(home, account, key="test-key", capsys=capsys)  # without --ai: what is stored
    assert code == 0 and len(peer.received) == 1
    assert row["summary"].split(" against ")[0] in out and "written by an AI model" in out
    # The other accounts keep what the weekly run computed; nothing was sent or recorded as sent.
    assert {r["source"] for r in sql(home, f"select source from ai_insights where month = '{MONTH}' "
                                           f"and account_id <> '{account}'", capsys)} == {"deterministic"}
    assert sent_files(home) == before
    # The run is the installation's own: the UI shows ai_insights materialized for that one partition.
    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    try:
        [record] = instance.fetch_materializations(dg.AssetKey("ai_insights"), limit=1).records
        assert record.asset_materialization.partition == f"{account}|{MONTH}"
        assert instance.get_run_by_id(record.run_id).tags["costagent/trigger"] == "preview"
        assert run_metadata.latest_metadata(instance, "ai_insights")["ai_calls"].value == 1
    finally:
        instance.dispose()
    [org] = sql(home, "select source from ai_org_summaries", capsys)
    assert org["source"] == "deterministic"  # the organisation's summary is the weekly run's


def test_without_a_key_it_says_so_and_previews_the_computed_summary(keyless, tmp_path, capsys):
    source, peer = keyless
    home = copy_home(source, tmp_path / "home")
    peer.reset()
    account = sql(home, EXPLAINED_SQL, capsys)[0]["account_id"]
    code, out, err = preview(home, account, "--ai", key=None, capsys=capsys)
    assert code == 0 and "no GEMINI_API_KEY is set" in err and "computed summary" in err
    assert out.startswith("Subject:") and "written by an AI model" not in out
    assert peer.received == []


def test_an_unknown_account_fails_naming_it(keyless, tmp_path, capsys):
    source, peer = keyless
    home = copy_home(source, tmp_path / "home")
    peer.reset()
    code, _, err = preview(home, "999999999999", "--ai", key="test-key", capsys=capsys)
    assert code != 0 and "999999999999" in err
    assert peer.received == []


def test_the_help_says_what_it_costs(capsys):
    with pytest.raises(SystemExit):
        cli.main(["preview", "team", "--help"])
    assert "one model call" in " ".join(capsys.readouterr().out.split())

