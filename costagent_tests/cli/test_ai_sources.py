"""AI accounts on the command line: a team names its source; a run checks the AI sources' keys first."""

from __future__ import annotations

from pathlib import Path

from costagent_assets.defs.resources import source_setup_problems
from costagent_assets.settings import Settings, with_setting
from costagent_assets.teams.registry import load_registry
from costagent_tests.peers.homes import run_cli


def test_a_team_names_the_source_of_its_account(isolated: Path, capsys):
    home = str(isolated)
    assert run_cli("--home", home, "teams", "add", "--account", "proj_q7Vd2sK9aLm3", "--name", "Search",
                   "--email", "search@example.com", "--source", "OpenAI") == 0
    assert run_cli("--home", home, "teams", "add", "--account", "wrkspc_01Abcdef", "--name", "Research",
                   "--email", "research@example.com", "--source", "bedrock") == 2
    assert "must be one of" in capsys.readouterr().err
    assert run_cli("--home", home, "teams", "update", "proj_q7Vd2sK9aLm3", "--source", "anthropic") == 0
    assert [(t.aws_account_id, t.source) for t in load_registry(isolated / "teams.json")] == [
        ("proj_q7Vd2sK9aLm3", "anthropic")]


def test_each_configured_source_needs_its_own_key():
    settings = with_setting(Settings(), "source", "cost_explorer,openai,anthropic")
    problems = source_setup_problems(settings, {"OPENAI_ADMIN_KEY": "set"})
    assert problems == ["source=anthropic needs the environment variable(s) ANTHROPIC_ADMIN_KEY"]
    assert source_setup_problems(settings, {"OPENAI_ADMIN_KEY": "x", "ANTHROPIC_ADMIN_KEY": "y"}) == []
