"""The Dagster code location: every module under ``defs/``, with resources bound for this installation."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

import costagent_assets.defs


@dg.definitions
def defs() -> dg.Definitions:
    """Load the defs folder (assets, checks, jobs, schedule, resources)."""
    return dg.components.load_defs(costagent_assets.defs, project_root=Path(__file__).resolve().parents[1])
