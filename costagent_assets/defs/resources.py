"""The single place where resources are bound, from one snapshot of the settings: they pick the source,
the delivery and the scanner, locate the warehouse, and are handed to every stage as the ``settings``
resource, so a run never sees two versions of them."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import date

import dagster as dg

from costagent_assets.demo.cost_source import DemoCostSource
from costagent_assets.demo.scanner import DemoScanner
from costagent_assets.home import Home
from costagent_assets.resources.anthropic_costs import AnthropicCostSource
from costagent_assets.resources.aws_scanner import AwsScanner, DisabledScanner, OptimizationScanner
from costagent_assets.resources.cost_explorer import CostExplorerCostSource
from costagent_assets.resources.cost_source import CostSource, SourceFetch
from costagent_assets.resources.datadog import DatadogCostSource
from costagent_assets.resources.focus_files import FocusCostSource
from costagent_assets.resources.gemini import GeminiResource
from costagent_assets.resources.openai_costs import OpenAICostSource
from costagent_assets.resources.outbox import OutboxDelivery
from costagent_assets.resources.run_lease import RunLeaseResource
from costagent_assets.resources.s3_warehouse import ledger_dir, warehouse_root
from costagent_assets.resources.smtp import SmtpDelivery
from costagent_assets.resources.teams_registry import TeamsRegistry
from costagent_assets.resources.warehouse import ParquetWarehouseIOManager, WarehouseResource
from costagent_assets.settings import Settings, focus_path_problem, source_names


class CombinedCostSource(CostSource):
    """The configured sources, in the order of the ``source`` setting: ``raw_costs`` asks each for the registry
    accounts that name it (or, naming none, the first AWS source), and a source that fails leaves only its own
    accounts without data.

    One field per kind of source, because Dagster configures nested resources by their declared type.
    """

    order: list[str]
    demo: DemoCostSource | None = None
    datadog: DatadogCostSource | None = None
    cost_explorer: CostExplorerCostSource | None = None
    focus: FocusCostSource | None = None
    openai: OpenAICostSource | None = None
    anthropic: AnthropicCostSource | None = None

    @property
    def name(self) -> str:
        return ",".join(self.order)

    def sources(self) -> list[CostSource]:
        return [getattr(self, name) for name in self.order]

    def fetch(self, account_ids: Sequence[str], start: date, end: date, as_of: date) -> SourceFetch:
        raise NotImplementedError("raw_costs fetches from each of CombinedCostSource.sources() in turn")


def build_resources(home: Home, settings: Settings) -> dict[str, object]:
    """Resources for an installation; asset code never branches on where its data comes from."""
    sources = {
        "demo": lambda: DemoCostSource(seed=settings.demo_seed),
        "datadog": lambda: DatadogCostSource(
            api_key=dg.EnvVar("DATADOG_API_KEY"),
            app_key=dg.EnvVar("DATADOG_APP_KEY"),
            site=dg.EnvVar("DATADOG_SITE"),
            metric=settings.datadog_metric,
            account_tag=settings.datadog_account_tag,
            service_tag=settings.datadog_service_tag,
            usage_type_tag=settings.datadog_usage_type_tag,
            region_tag=settings.datadog_region_tag,
            usage_metric=settings.datadog_usage_metric,
            usage_unit_tag=settings.datadog_usage_unit_tag,
            max_retries=settings.source_max_retries,
            max_wait_seconds=settings.source_max_wait_seconds,
            timeout_seconds=settings.datadog_timeout_seconds,
        ),
        "cost_explorer": lambda: CostExplorerCostSource(
            metric=settings.cost_explorer_metric, max_retries=settings.source_max_retries,
            usage_types=settings.cost_explorer_usage_types,
        ),
        "focus": lambda: FocusCostSource(
            path=settings.focus_path, cost_column=settings.focus_cost_column,
            max_retries=settings.source_max_retries,
        ),
        "openai": lambda: OpenAICostSource(
            admin_key=dg.EnvVar("OPENAI_ADMIN_KEY"), base_url=settings.openai_base_url or "https://api.openai.com",
            max_retries=settings.source_max_retries, max_wait_seconds=settings.source_max_wait_seconds,
        ),
        "anthropic": lambda: AnthropicCostSource(
            admin_key=dg.EnvVar("ANTHROPIC_ADMIN_KEY"),
            base_url=settings.anthropic_base_url or "https://api.anthropic.com",
            max_retries=settings.source_max_retries, max_wait_seconds=settings.source_max_wait_seconds,
        ),
    }
    names = source_names(settings.source)
    deliveries = {
        "outbox": lambda: OutboxDelivery(directory=str(home.outbox_dir)),
        "smtp": lambda: smtp_delivery(settings),
    }
    warehouse = WarehouseResource(
        root=warehouse_root(home, settings),
        s3_endpoint_url=settings.s3_endpoint_url,
        s3_region=settings.s3_region,
        ledger_dir=str(ledger_dir(home, settings)),
    )
    return {
        "settings": dg.ResourceDefinition.hardcoded_resource(settings, "The installation's settings (settings.json)."),
        "teams_registry": TeamsRegistry(path=str(home.teams_path)),
        "warehouse": warehouse,
        "io_manager": ParquetWarehouseIOManager(warehouse=warehouse),
        "cost_source": (sources[names[0]]() if len(names) == 1
                        else CombinedCostSource(order=list(names), **{n: sources[n]() for n in names})),
        "email_delivery": deliveries[settings.email_mode](),
        "gemini": build_gemini(settings),
        "aws_scanner": build_scanner(settings),
        # One writer at a time, whoever launched the run (see run_lease.py).
        "run_lease": RunLeaseResource(warehouse_root=warehouse.root, s3_endpoint_url=settings.s3_endpoint_url,
                                      s3_region=settings.s3_region),
    }


# Environment variables each source reads at run time (as dg.EnvVar); checked before a run starts.
SOURCE_ENVIRONMENT = {"datadog": ("DATADOG_API_KEY", "DATADOG_APP_KEY", "DATADOG_SITE"),
                      "openai": ("OPENAI_ADMIN_KEY",), "anthropic": ("ANTHROPIC_ADMIN_KEY",)}


# Required by email_mode=smtp (SMTP_PORT, SMTP_USER and SMTP_PASSWORD are optional), and by smtp_auth=xoauth2.
SMTP_ENVIRONMENT = ("SMTP_HOST", "SENDER_EMAIL")
XOAUTH2_ENVIRONMENT = ("SMTP_OAUTH_TENANT", "SMTP_OAUTH_CLIENT_ID")  # and a secret or a certificate


def source_setup_problems(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """What keeps the configured source from running (unset variables, missing settings); empty when ready.

    Only the presence of variables is checked, never their values.
    """
    problems = []
    names = source_names(settings.source)
    for source in names:
        missing = [name for name in SOURCE_ENVIRONMENT.get(source, ()) if not environ.get(name)]
        if missing:
            problems.append(f"source={source} needs the environment variable(s) {', '.join(missing)}")
    if "focus" in names and not settings.focus_path:
        problems.append("source=focus needs focus_path: `costagent config set focus_path DIR_OR_S3_URI`")
    elif "focus" in names and focus_path_problem(settings.focus_path):
        problems.append(focus_path_problem(settings.focus_path))
    return problems


def delivery_setup_problems(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    """What keeps the configured email delivery from running (unset SMTP variables); empty when ready."""
    if settings.email_mode != "smtp":
        return []
    problems = []
    unset = [name for name in SMTP_ENVIRONMENT if not environ.get(name)]
    if unset:
        problems.append(f"email_mode=smtp needs the environment variable(s) {', '.join(unset)}")
    unset = [name for name in XOAUTH2_ENVIRONMENT if settings.smtp_auth == "xoauth2" and not environ.get(name)]
    if settings.smtp_auth == "xoauth2" and not (environ.get("SMTP_OAUTH_CLIENT_SECRET")
                                                or environ.get("SMTP_OAUTH_CERTIFICATE")):
        unset.append("SMTP_OAUTH_CLIENT_SECRET (or SMTP_OAUTH_CERTIFICATE)")
    if unset:
        problems.append(f"smtp_auth=xoauth2 needs the environment variable(s) {', '.join(unset)}")
    return problems


def smtp_delivery(settings: Settings) -> SmtpDelivery:
    """SMTP with its connection details as ``dg.EnvVar`` (read at run time, hidden in the UI).

    SMTP_PORT (default 587) and SMTP_USER/SMTP_PASSWORD (no AUTH when unset) are optional, so only the
    variables that are set are bound.
    """
    optional = {
        "port": ("SMTP_PORT", dg.EnvVar.int),
        "username": ("SMTP_USER", dg.EnvVar),
        "password": ("SMTP_PASSWORD", dg.EnvVar),
        "oauth_tenant": ("SMTP_OAUTH_TENANT", dg.EnvVar),
        "oauth_client_id": ("SMTP_OAUTH_CLIENT_ID", dg.EnvVar),
        "oauth_client_secret": ("SMTP_OAUTH_CLIENT_SECRET", dg.EnvVar),
        "oauth_certificate": ("SMTP_OAUTH_CERTIFICATE", dg.EnvVar),
    }
    return SmtpDelivery(
        host=dg.EnvVar("SMTP_HOST"),
        sender=dg.EnvVar("SENDER_EMAIL"),
        rate_per_minute=settings.smtp_rate_per_minute,
        ca_bundle=settings.smtp_ca_bundle,
        auth=settings.smtp_auth,
        oauth_authority=settings.smtp_oauth_authority,
        **{field: make(name) for field, (name, make) in optional.items() if os.environ.get(name)},
    )


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


def build_scanner(settings: Settings) -> OptimizationScanner:
    """What finds savings: ``optimization_scanner`` (``auto``: the demo's resources on the demo source, else
    off until the read-only role is deployed in every account and the setting says ``aws``)."""
    mode = settings.optimization_scanner
    if mode == "auto":
        mode = "demo" if "demo" in source_names(settings.source) else "off"
        off_reason = ("not scanned: deploy the read-only role (README, Savings) and "
                      "`costagent config set optimization_scanner aws`")
    else:
        off_reason = "scanning is switched off (optimization_scanner=off)"
    scanners = {
        "demo": lambda: DemoScanner(seed=settings.demo_seed),
        "aws": lambda: AwsScanner(
            role_name=settings.optimization_role_name,
            regions=list(settings.optimization_regions),
            max_workers=settings.optimization_max_workers,
            max_attempts=settings.optimization_max_attempts,
            commitments=settings.optimization_commitments,
        ),
        "off": lambda: DisabledScanner(reason=off_reason),
    }
    return scanners[mode]()
