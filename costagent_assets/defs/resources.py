"""The single place where resources are bound: the settings pick the source and the delivery."""

from __future__ import annotations

from costagent_assets.home import Home
from costagent_assets.resources.demo_source import DemoCostSource
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
        "io_manager": ParquetWarehouseIOManager(
            root=settings.warehouse_uri or str(home.warehouse_dir),
            s3_endpoint_url=settings.s3_endpoint_url,
            s3_region=settings.s3_region,
        ),
    }
