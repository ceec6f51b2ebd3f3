"""Tests for settings: every key's parser, refusals that say what is allowed, and the settings file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from costagent_assets.settings import (
    Choice,
    Integer,
    Number,
    Rule,
    SettingError,
    Settings,
    load_settings,
    parse_setting,
    save_settings,
    setting_rule,
    settings_as_dict,
    settings_table_markdown,
    with_setting,
)

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.mark.parametrize(
    ("key", "raw", "value"),
    [
        ("anomaly_threshold_pct", "25", 25.0),
        ("anomaly_threshold_pct", "12.5%", 12.5),
        ("anomaly_threshold_pct", "1000", 1000.0),
        ("anomaly_min_usd", "0", 0.0),
        ("anomaly_min_usd", "$1,500", 1500.0),
        ("schedule_day", "Friday", "friday"),
        ("schedule_day", "TUE", "tuesday"),
        ("schedule_day", " sun ", "sunday"),
        ("schedule_hour", "0", 0),
        ("schedule_hour", "23", 23),
        ("global_admin_emails", "a@example.com, b@example.org", ("a@example.com", "b@example.org")),
        ("global_admin_emails", "", ()),
        ("ai_enabled", "No", False),
        ("ai_enabled", "on", True),
        ("ai_enabled", "1", True),
        ("ai_enabled", "false", False),
        ("source", "Demo", "demo"),
        ("source", "cost-explorer", "cost_explorer"),
        ("source", "Datadog", "datadog"),
        ("source", "focus", "focus"),
        ("source", "cost-explorer, OpenAI,anthropic", "cost_explorer,openai,anthropic"),
        ("source", "anthropic", "anthropic"),
        ("cost_explorer_metric", "amortizedcost", "AmortizedCost"),
        ("focus_cost_column", "effectivecost", "EffectiveCost"),
        ("datadog_metric", "aws.cost.net.amortized", "aws.cost.net.amortized"),
        ("focus_path", " s3://cur-exports/focus/ ", "s3://cur-exports/focus/"),
        ("source_max_wait_seconds", "0.05", 0.05),
        ("email_mode", "outbox", "outbox"),
        ("email_mode", "SMTP", "smtp"),
        ("smtp_rate_per_minute", "120", 120.0),
        ("datadog_dashboard_url", " https://app.datadoghq.com/dashboard/x?tpl_var_account={account_id} ",
         "https://app.datadoghq.com/dashboard/x?tpl_var_account={account_id}"),
        ("demo_accounts", "1", 1),
        ("demo_accounts", "10000", 10000),
        ("demo_seed", "0", 0),
        ("Demo-Seed", "7", 7),
    ],
)
def test_parse_setting_accepts(key, raw, value):
    assert parse_setting(key, raw) == value


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("anomaly_threshold_pct", "0", "greater than 0 and at most 1000"),
        ("anomaly_threshold_pct", "1001", "greater than 0 and at most 1000"),
        ("anomaly_threshold_pct", "lots", "not a number"),
        ("anomaly_threshold_pct", "nan", "greater than 0"),
        ("anomaly_min_usd", "-1", "0 or more"),
        ("anomaly_min_usd", "cheap", "0 or more"),
        ("schedule_day", "funday", "monday..sunday"),
        ("schedule_day", "t", "monday..sunday"),
        ("schedule_hour", "24", "from 0 to 23"),
        ("schedule_hour", "9.5", "from 0 to 23"),
        ("schedule_hour", "9am", "from 0 to 23"),
        ("global_admin_emails", "a@example.com, nope", "'nope' has no @"),
        ("global_admin_emails", "a@example.com\r\nBcc: x@evil.test", "line break"),
        ("ai_enabled", "maybe", "true/false, yes/no, on/off or 1/0"),
        ("source", "s3", "allowed: one or more of demo, datadog, cost_explorer, focus, openai, anthropic"),
        ("source", "openai,openai", "separated by commas"),
        ("source", "cost_explorer,s3", "not allowed"),
        ("datadog_metric", "aws cost", "Datadog metric name"),
        ("datadog_account_tag", "", "Datadog tag name"),
        ("cost_explorer_metric", "cheapest", "UnblendedCost, AmortizedCost"),
        ("focus_cost_column", "Cost", "BilledCost, EffectiveCost"),
        ("focus_path", "s3://A_Bucket/x", "not a valid s3://bucket/prefix"),
        ("focus_path", "exports\n", "local file or directory"),
        ("source_max_retries", "21", "from 0 to 20"),
        ("source_max_wait_seconds", "0", "> 0 and <= 3600"),
        ("smtp_rate_per_minute", "0", "greater than 0"),
        ("smtp_rate_per_minute", "fast", "not a number"),
        ("smtp_ca_bundle", "/no/such/ca.pem", "is not a file"),
        ("datadog_dashboard_url", "http://example.com/{account_id}", "https URL"),
        ("datadog_dashboard_url", "https://example.com/{acount}", "unknown placeholder {acount}"),
        ("datadog_dashboard_url", 'https://example.com/"><b>', "https URL without spaces or quotes"),
        ("email_mode", "pigeon", "allowed: outbox"),
        ("demo_accounts", "0", "from 1 to 10000"),
        ("demo_accounts", "10001", "from 1 to 10000"),
        ("demo_seed", "-1", ">= 0"),
        ("demo_seed", "x", ">= 0"),
        # issue 19, case 7: the API key goes with every request
        ("gemini_base_url", "http://169.254.169.254", "plain http"),
        ("gemini_base_url", "https://169.254.169.254/v1", "link-local"),
        ("gemini_base_url", "http://gemini-gateway.example.com", "plain http"),
        ("incomplete_data_wait_days", "15", "from 0 to 14"),
    ],
)
def test_parse_setting_refuses_and_says_what_is_allowed(key, raw, expected):
    with pytest.raises(SettingError) as caught:
        parse_setting(key, raw)
    message = str(caught.value)
    assert message.startswith(f"{key}: ") and expected in message


def test_refused_planned_values_still_name_the_allowed_one():
    with pytest.raises(SettingError, match="allowed: outbox, smtp"):
        parse_setting("email_mode", "pigeon")


def test_unknown_key_lists_the_known_keys():
    with pytest.raises(SettingError) as caught:
        parse_setting("schedule_hours", "9")
    message = str(caught.value)
    assert "unknown setting 'schedule_hours'" in message and "did you mean 'schedule_hour'" in message
    assert all(name in message for name in Settings.model_fields)


def test_every_setting_is_documented_with_its_default():
    defaults = Settings()
    for key, field in Settings.model_fields.items():
        assert field.description, key
        doc = field.description.replace("`", "")
        default = getattr(defaults, key)
        shown = "none" if default == () else str(default).lower().removesuffix(".0")
        if isinstance(default, tuple) and default and isinstance(default[0], float):
            shown = ",".join(f"{x:g}" for x in default)  # budget_alert_pcts: written as typed
        if isinstance(default, tuple) and default and isinstance(default[0], str):
            shown = ",".join(default)  # optimization_regions, nonproduction_environments: as typed
        if isinstance(default, dict):
            shown = ", ".join(f"{model}={i:g}/{o:g}" for model, (i, o) in default.items())  # ai_prices: as typed
        assert f"default {shown}" in doc.lower(), key
    assert "AWS Cost Anomaly Detection" in Settings.model_fields["anomaly_min_usd"].description


def test_with_setting_returns_a_changed_copy():
    base = Settings()
    changed = with_setting(base, "schedule_day", "wed")
    assert changed.schedule_day == "wednesday" and base.schedule_day == "monday"
    assert changed.model_copy(update={"schedule_day": "monday"}) == base


def test_save_and_load_round_trip(tmp_path):
    path = tmp_path / "home" / "settings.json"
    assert load_settings(path) == Settings()  # missing file: defaults
    custom = Settings(
        anomaly_threshold_pct=35.0, global_admin_emails=("cfo@example.com",), ai_enabled=False, demo_seed=7
    )
    save_settings(path, custom)
    assert load_settings(path) == custom
    text = path.read_text()
    assert text.endswith("}\n") and json.loads(text) == settings_as_dict(custom)
    assert settings_as_dict(custom)["global_admin_emails"] == ["cfo@example.com"]
    first = path.read_bytes()
    save_settings(path, load_settings(path))
    assert path.read_bytes() == first
    assert [p.name for p in path.parent.iterdir()] == ["settings.json"]


def test_partial_file_takes_defaults_for_missing_keys(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text('{"schedule_hour": 6}')
    assert load_settings(path) == Settings(schedule_hour=6)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"schedule_hour": 6,', "invalid JSON at line 1"),
        ("[1, 2]", "expected a JSON object"),
        ('{"schedul_day": "monday"}', "unknown setting 'schedul_day'"),
        ('{"schedule_hour": 99}', "schedule_hour: 99 is not allowed"),
        ('{"source": "datadog-ish"}', "source: 'datadog-ish' is not allowed"),
        ('{"ai_enabled": "perhaps"}', "ai_enabled"),
        ('{"schedule_hour": true}', "schedule_hour"),
    ],
)
def test_corrupted_settings_file_names_the_file_and_key(tmp_path, content, expected):
    path = tmp_path / "settings.json"
    path.write_text(content)
    with pytest.raises(SettingError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and expected in message


def test_every_bad_key_in_the_file_is_reported(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text('{"schedule_hour": -1, "bogus": 1, "demo_accounts": 0}')
    with pytest.raises(SettingError) as caught:
        load_settings(path)
    lines = str(caught.value).splitlines()
    assert len(lines) == 3 and all(line.startswith(str(path)) for line in lines)


def test_save_refuses_invalid_settings_and_leaves_the_file(tmp_path):
    path = tmp_path / "settings.json"
    save_settings(path, Settings())
    before = path.read_bytes()
    with pytest.raises(SettingError, match="schedule_hour"):
        save_settings(path, Settings(schedule_hour=25))
    assert path.read_bytes() == before


def test_budget_alert_levels_are_a_list_of_percentages(tmp_path):
    from costagent_assets.settings import SettingError, load_settings, save_settings, with_setting

    settings = with_setting(Settings(), "budget_alert_pcts", "90, 50%,75")
    assert settings.budget_alert_pcts == (50.0, 75.0, 90.0)
    save_settings(tmp_path / "s.json", settings)
    assert load_settings(tmp_path / "s.json").budget_alert_pcts == (50.0, 75.0, 90.0)
    for bad in ("", "0", "50,lots", "2000"):
        with pytest.raises(SettingError, match="budget_alert_pcts"):
            with_setting(Settings(), "budget_alert_pcts", bad)


def test_the_readme_table_is_the_one_generated_from_the_model():
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1]
    table = re.search(r"^\| setting \| meaning \|\n(?:\|.*\n)+", section, re.MULTILINE)
    assert table is not None and table.group(0) == settings_table_markdown()


def test_every_setting_has_a_description_and_a_rule():
    for key in Settings.model_fields:
        assert Settings.model_fields[key].description, key
        assert isinstance(setting_rule(key), Rule), key


def _keys_ruled_by(kind: type[Rule]) -> list[str]:
    return [key for key in Settings.model_fields if isinstance(setting_rule(key), kind)]


def _refusal(key: str, raw: object) -> str:
    with pytest.raises(SettingError) as caught:
        Settings(**{key: raw})
    message = str(caught.value)
    assert message.startswith(f"{key}: ") and "; allowed: " in message
    return message


@pytest.mark.parametrize("key", _keys_ruled_by(Integer) + _keys_ruled_by(Number))
def test_every_bound_in_the_model_is_enforced_and_described(key):
    rule = setting_rule(key)
    above_low = getattr(rule, "above_low", False)  # integers always include their low bound
    lowest = rule.low + 1 if above_low else rule.low
    assert getattr(Settings(**{key: str(lowest)}), key) == lowest
    _refusal(key, str(rule.low if above_low else rule.low - 1))
    if rule.high is None:
        span = f">= {rule.low:g}"
    else:
        assert getattr(Settings(**{key: str(rule.high)}), key) == rule.high
        _refusal(key, str(rule.high + 1))
        span = f"> {rule.low:g} and <= {rule.high:g}" if above_low else f"{rule.low:g}..{rule.high:g}"
    assert span in Settings.model_fields[key].description, "the description must say the range the rule enforces"


@pytest.mark.parametrize("key", _keys_ruled_by(Choice))
def test_every_choice_in_the_model_is_accepted_in_any_case_and_nothing_else(key):
    rule = setting_rule(key)
    for option in rule.options:
        assert parse_setting(key, f" {option.upper()} ") == option
    assert _refusal(key, "none-of-these").endswith("; allowed: " + ", ".join(rule.options))
    assert all(f"`{option}`" in Settings.model_fields[key].description for option in rule.options)


def test_config_set_accepts_any_spelling_of_the_key_and_names_the_stored_one(tmp_path, capsys):
    from costagent_assets.cli import main as cli

    assert cli.main(["--home", str(tmp_path), "config", "set", "Schedule-Hour", "7"]) == 0
    assert capsys.readouterr().out.startswith("schedule_hour = 7\n")
    assert load_settings(tmp_path / "settings.json").schedule_hour == 7


@pytest.mark.parametrize("url", ["https://gemini-gateway.example.com/v1", "http://127.0.0.1:8080", "http://localhost:9",
                                 "http://[::1]:8080", ""])
def test_gemini_base_url_takes_https_or_plain_http_on_this_machine(url):
    assert parse_setting("gemini_base_url", url) == url


def test_a_focus_path_that_does_not_exist_is_refused_when_set_and_before_a_run(isolated, tmp_path, capsys):
    from costagent_assets.cli import main as cli
    from costagent_assets.defs.resources import source_setup_problems

    missing = tmp_path / "no-such-exports"
    assert cli.main(["config", "set", "focus_path", str(missing)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (isolated / "settings.json").exists() or "no-such-exports" not in (isolated / "settings.json").read_text()
    missing.mkdir()
    assert cli.main(["config", "set", "focus_path", str(missing)]) == 0
    missing.rmdir()  # it disappears later: the other commands still work, a run is refused up front
    assert cli.main(["config", "show"]) == 0
    settings = Settings(source="focus", focus_path=str(missing))
    assert any("does not exist" in p for p in source_setup_problems(settings, {}))
