"""The Dagster code location: every asset and job under ``defs/``, the weekly schedule, and the resources
bound for this installation (``defs/resources.py``), all from one reading of the settings."""

from __future__ import annotations

import dagster as dg

import costagent_assets.defs
from costagent_assets.defs.automation import (
    build_failure_sensor,
    build_held_reports_schedule,
    build_weekly_schedule,
)
from costagent_assets.defs.resources import build_resources
from costagent_assets.home import get_home
from costagent_assets.settings import load_settings


@dg.definitions
def defs() -> dg.Definitions:
    """Load the defs package with the resources and the schedule of ``COSTAGENT_HOME``.

    The settings are read here, once: the resources (which source, which delivery, where the warehouse
    is), the values every stage reads (the ``settings`` resource) and the schedule's day and hour come
    from the same snapshot. Each run launched by Dagster loads the definitions anew, so it reads the
    settings once at its start; the schedule's day and hour change when the code location reloads.

    A plain package load rather than ``dg.load_defs``: the components loader imports every installed
    integration's components (dagster-aws's alone is ~0.8 s), which a CLI run pays on every start.
    """
    home = get_home()
    settings = load_settings(home.settings_path)
    stages = dg.load_definitions_from_package_module(costagent_assets.defs)
    return dg.Definitions.merge(
        stages,
        dg.Definitions(schedules=[build_weekly_schedule(settings), build_held_reports_schedule(settings)],
                       sensors=[build_failure_sensor(settings)],
                       resources=build_resources(home, settings)),
    )
