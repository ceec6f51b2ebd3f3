"""The AI settings: the model, the endpoint, the rate, the timeout, the attempts and the price table."""

from __future__ import annotations

from pathlib import Path

import pytest

from costagent_assets.defs.resources import build_gemini
from costagent_assets.settings import SettingError, Settings, load_settings, save_settings, with_setting


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("gemini_model", "Gemini Flash!"),
        ("gemini_base_url", "ftp://example.com"),
        ("ai_requests_per_minute", "0"),
        ("ai_timeout_seconds", "-1"),
        ("ai_timeout_seconds", "soon"),
        ("ai_max_attempts", "11"),
        ("ai_prices", "gemini-2.5-flash=0.30"),
        ("ai_prices", "gemini-2.5-flash=a/b"),
    ],
)
def test_bad_values_are_refused_saying_what_is_allowed(key: str, value: str):
    with pytest.raises(SettingError, match=f"{key}: .*allowed"):
        with_setting(Settings(), key, value)


def test_a_price_table_round_trips_through_the_file(tmp_path: Path):
    settings = with_setting(Settings(), "ai_prices", "gemini-x-flash=0.5/3, gemini-2.5-flash=0.30/2.50")
    assert settings.ai_prices == {"gemini-x-flash": [0.5, 3.0], "gemini-2.5-flash": [0.3, 2.5]}
    save_settings(tmp_path / "s.json", settings)
    assert load_settings(tmp_path / "s.json") == settings


def test_the_resource_follows_the_settings_and_binds_no_key_when_none_is_set(monkeypatch: pytest.MonkeyPatch):
    settings = with_setting(with_setting(Settings(), "ai_timeout_seconds", "2.5"), "gemini_model", "gemini-2.5-flash-lite")
    gemini = build_gemini(settings)
    assert gemini.model == "gemini-2.5-flash-lite" and gemini.timeout_seconds == 2.5 and not gemini.available
    monkeypatch.setenv("GEMINI_API_KEY", "secret")
    assert build_gemini(settings).api_key == "GEMINI_API_KEY"  # a dg.EnvVar: the name now, the value at run time
