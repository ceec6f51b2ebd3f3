"""Run parameters travel as run tags and come back typed."""

from __future__ import annotations

from datetime import date

import pytest

from costagent_assets.run_parameters import AI_TAG, AS_OF_TAG, TRIGGER_TAG, RunParameters


def test_parameters_round_trip_through_tags():
    params = RunParameters(as_of=date(2026, 11, 23), ai_off=True, trigger="backfill")
    tags = params.to_tags()
    assert tags == {AS_OF_TAG: "2026-11-23", AI_TAG: "off", TRIGGER_TAG: "backfill"}
    assert RunParameters.from_tags({**tags, "dagster/partition": "x"}) == params


def test_a_run_without_tags_is_the_schedule_or_the_ui_today_with_ai():
    assert RunParameters.from_tags({}) == RunParameters(as_of=None, ai_off=False, trigger="schedule_or_ui")
    assert RunParameters().to_tags() == {}
    assert RunParameters.from_tags({TRIGGER_TAG: "something else", AI_TAG: "on"}).trigger == "schedule_or_ui"


def test_a_malformed_date_names_the_tag():
    with pytest.raises(ValueError, match="costagent/as_of must be a date like 2026-11-23, got '23/11/2026'"):
        RunParameters.from_tags({AS_OF_TAG: "23/11/2026"})
