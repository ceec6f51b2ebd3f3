"""The single place where resources are bound: the settings pick the source and the delivery."""

from __future__ import annotations

import os

import dagster as dg

from costagent_assets.home import Home
from costagent_assets.resources.demo_source import DemoCostSource
from costagent_assets.resources.gemini import GeminiResource
from costagent_assets.resources.home import CostagentHome
from costagent_assets.resources.outbox import OutboxDelivery
from costagent_assets.resources.warehouse import ParquetWarehouseIOManager
from costagent_assets.settings import Settings


def build_resources(home: Home, settings: Settings) -> dict[str, object]:
    """Resources for an installation; asset code never branches on where its data comes from."""
    sources = {"demo": lambda: DemoCostSource(seed=settings.demo_seed)}
    deliveries = {"outbox": lambda: OutboxDelivery(directory=str(home.outbox_dir))}
    return {
        "cost_source": sources[settings.source](),
        "email_delivery": deliveries[settings.email_mode](),
        "costagent_home": CostagentHome(root=str(home.root)),
        "io_manager": ParquetWarehouseIOManager(root=str(home.warehouse_dir)),
        "gemini": build_gemini(settings),
    }


def build_gemini(settings: Settings) -> GeminiResource:
    """Gemini from the settings; the key is read at run time (``dg.EnvVar``) and only bound when set, so an
    installation without one runs the deterministic insights instead of failing (and sends nothing)."""
    return GeminiResource(
        api_key=dg.EnvVar("GEMINI_API_KEY") if os.environ.get("GEMINI_API_KEY") else "",
        model=settings.gemini_model,
        base_url=settings.gemini_base_url,
        timeout_seconds=settings.ai_timeout_seconds,
        max_attempts=settings.ai_max_attempts,
        requests_per_minute=settings.ai_requests_per_minute,
    )
