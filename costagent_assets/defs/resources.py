"""The single place where resources are bound: the settings pick the source and the delivery."""

from __future__ import annotations

import os

import dagster as dg

from costagent_assets.home import Home
from costagent_assets.resources.demo_source import DemoCostSource
from costagent_assets.resources.home import CostagentHome
from costagent_assets.resources.outbox import OutboxDelivery
from costagent_assets.resources.smtp import SmtpDelivery
from costagent_assets.resources.warehouse import ParquetWarehouseIOManager
from costagent_assets.settings import Settings


def build_resources(home: Home, settings: Settings) -> dict[str, object]:
    """Resources for an installation; asset code never branches on where its data comes from."""
    sources = {"demo": lambda: DemoCostSource(seed=settings.demo_seed)}
    deliveries = {
        "outbox": lambda: OutboxDelivery(directory=str(home.outbox_dir)),
        "smtp": lambda: smtp_delivery(settings),
    }
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


def smtp_delivery(settings: Settings) -> SmtpDelivery:
    """SMTP with its connection details as ``dg.EnvVar`` (read at run time, hidden in the UI).

    SMTP_PORT (default 587) and SMTP_USER/SMTP_PASSWORD (no AUTH when unset) are optional, so only the
    variables that are set are bound.
    """
    optional = {
        "port": ("SMTP_PORT", dg.EnvVar.int),
        "username": ("SMTP_USER", dg.EnvVar),
        "password": ("SMTP_PASSWORD", dg.EnvVar),
    }
    return SmtpDelivery(
        host=dg.EnvVar("SMTP_HOST"),
        sender=dg.EnvVar("SENDER_EMAIL"),
        rate_per_minute=settings.smtp_rate_per_minute,
        ca_bundle=settings.smtp_ca_bundle,
        **{field: make(name) for field, (name, make) in optional.items() if os.environ.get(name)},
    )
