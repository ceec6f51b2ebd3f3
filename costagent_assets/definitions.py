"""The Dagster code location: every asset, job and schedule under ``defs/``, with resources bound for
this installation (``defs/resources.py``)."""

from __future__ import annotations

import dagster as dg

import costagent_assets.defs
from costagent_assets.defs.resources import build_resources
from costagent_assets.home import get_home
from costagent_assets.settings import load_settings


@dg.definitions
def defs() -> dg.Definitions:
    """Load the defs package with the resources of ``COSTAGENT_HOME``.

    A plain package load rather than ``dg.load_defs``: the components loader imports every installed
    integration's components (dagster-aws's alone is ~0.8 s), which a CLI run pays on every start.
    """
    home = get_home()
    return dg.load_definitions_from_package_module(
        costagent_assets.defs, resources=build_resources(home, load_settings(home.settings_path))
    )
