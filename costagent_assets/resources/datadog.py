"""Datadog Cloud Cost Management as a cost source: one grouped v2 timeseries request per month.

Datadog exposes AWS cost as metrics (``aws.cost.amortized`` and friends) tagged with the member
account and the product. One query ``sum:<metric>{*} by {<account tag>,<service tag>}.rollup(sum, 86400)``
returns every account and service of a window at once, so a month costs one request, not one per account.

The quantities behind the dollars are Datadog's usage metric ``aws.usage`` ("consumption volume", to be
grouped by ``aws_pricing_usage_unit``; https://docs.datadoghq.com/cloud_cost_management/metrics/). It rides
in the same request as a second query, so quantities cost no extra request.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import polars as pl

from costagent_assets.resources.cost_source import CostSource, CostSourceError, SourceFetch, split_registered
from costagent_assets.resources.http_retry import Exchange, header_seconds, json_body, send_with_retries

if TYPE_CHECKING:  # imported when used, to keep CLI starts fast
    import httpx

# Short names people use for a Datadog site, and the sites themselves (api.<site> is the API host).
_SITE_ALIASES = {
    "us1": "datadoghq.com",
    "us": "datadoghq.com",
    "us3": "us3.datadoghq.com",
    "us5": "us5.datadoghq.com",
    "eu": "datadoghq.eu",
    "eu1": "datadoghq.eu",
    "ap1": "ap1.datadoghq.com",
    "ap2": "ap2.datadoghq.com",
    "uk1": "uk1.datadoghq.com",
    "gov": "ddog-gov.com",
    "us1-fed": "ddog-gov.com",
    "us2-fed": "us2.ddog-gov.com",
}
_SITES = frozenset(_SITE_ALIASES.values())
DAY_MS = 86_400_000


def api_base_url(site: str) -> str:
    """The API root for a Datadog site (``datadoghq.eu``, ``us3``, ``app.datadoghq.com``) or a full URL.

    A full ``http(s)://`` URL is used as is (a proxy, or a test peer on loopback).
    """
    text = (site or "").strip().rstrip("/")
    if text.startswith(("http://", "https://")):
        return text
    name = _SITE_ALIASES.get(text.lower(), text.lower()).removeprefix("app.").removeprefix("api.")
    if name not in _SITES:
        raise CostSourceError(
            f"DATADOG_SITE {text!r} is not a Datadog site; use one of {', '.join(sorted(_SITES))} "
            "(or us3, us5, eu, ap1, ap2, uk1), or a full https:// URL"
        )
    return f"https://api.{name}"


class DatadogCostSource(CostSource):
    """Daily AWS cost per account and service from Datadog Cloud Cost Management (v2 timeseries API).

    Credentials arrive as ``dg.EnvVar`` (``DATADOG_API_KEY``, ``DATADOG_APP_KEY``, ``DATADOG_SITE``) and are
    never logged. 429s and 5xx are retried after the announced ``X-RateLimit-Reset`` (or a backoff), at
    most ``max_retries`` times and ``max_wait_seconds`` per wait; 401/403 fail at once. An account the
    response does not mention is left out of the frame, which the pipeline shows as "no data".
    """

    api_key: str
    app_key: str
    site: str = "datadoghq.com"
    metric: str = "aws.cost.amortized"
    account_tag: str = "aws_member_account_id"
    service_tag: str = "aws_product"
    # The usage type and region behind each cost, for drivers below the service ("" to leave one out), by the
    # names Datadog's Cloud Cost docs give the tags on aws.cost.*. Every extra tag multiplies the series of the
    # one query; Datadog answers "N/A" for a cost without the tag.
    usage_type_tag: str = "aws_usage_type"
    region_tag: str = "aws_region"
    # The usage metric read beside the cost ("" to leave quantities out), grouped also by its unit tag: summing
    # across units (GB-hours + requests) means nothing, so a line with several units gets no quantity.
    usage_metric: str = "aws.usage"
    usage_unit_tag: str = "aws_pricing_usage_unit"
    max_retries: int = 6
    max_wait_seconds: float = 60.0
    timeout_seconds: float = 60.0

    @property
    def name(self) -> str:
        return "datadog"

    def query(self) -> str:
        """The one grouped query of every window: all accounts and services, summed per day."""
        return f"sum:{self.metric}{{*}} by {{{','.join(self._tags())}}}.rollup(sum, 86400)"

    def usage_query(self) -> str | None:
        """The quantities of the same lines, per unit; None when quantities are turned off."""
        if not (self.usage_metric and self.usage_unit_tag):
            return None
        return f"sum:{self.usage_metric}{{*}} by {{{','.join([*self._tags(), self.usage_unit_tag])}}}.rollup(sum, 86400)"

    def _tags(self) -> list[str]:
        return [t for t in (self.account_tag, self.service_tag, self.usage_type_tag, self.region_tag) if t]

    def fetch(self, account_ids: Sequence[str], start: date, end: date, as_of: date) -> SourceFetch:
        """Daily rows for ``account_ids`` from ``start`` to ``end`` inclusive, in one request (plus retries)."""
        queries = [{"data_source": "cloud_cost", "name": "a", "query": self.query()}]
        if usage := self.usage_query():
            queries.append({"data_source": "cloud_cost", "name": "b", "query": usage})
        body = {
            "data": {
                "type": "timeseries_request",
                "attributes": {
                    "from": _epoch_ms(start),
                    "to": _epoch_ms(end + timedelta(days=1)),
                    "interval": DAY_MS,
                    "queries": queries,
                    "formulas": [{"formula": q["name"]} for q in queries],
                },
            }
        }
        exchange = Exchange()
        payload = self._post("/api/v2/query/timeseries", body, exchange)
        tags = (self.account_tag, self.service_tag, self.usage_type_tag, self.region_tag)
        frame = series_frame(payload, *tags, query_index=0)
        if len(queries) > 1:
            frame = with_quantities(frame, series_frame(payload, *tags, query_index=1, unit_tag=self.usage_unit_tag))
        frame = frame.filter(pl.col("date").is_between(start, end))
        costs, unregistered = split_registered(frame, account_ids)
        costs = costs.with_columns(
            pl.lit("datadog").alias("source"), pl.lit("aws").alias("provider"), pl.lit("USD").alias("currency")
        )
        # Datadog bills queries by plan, not per call: the calls are counted, the marginal $ is 0.
        return SourceFetch(costs, requests=exchange.requests, cost_usd=0.0, retries=exchange.retries,
                           unregistered=unregistered)

    def _post(self, path: str, body: dict, exchange: Exchange) -> dict:
        import httpx

        url = api_base_url(self.site) + path
        headers = {
            "DD-API-KEY": self.api_key,
            "DD-APPLICATION-KEY": self.app_key,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        where = f"Datadog {path}"
        with httpx.Client(timeout=httpx.Timeout(self.timeout_seconds, connect=10.0)) as client:
            response = send_with_retries(
                lambda: client.post(url, json=body, headers=headers),
                exchange,
                max_retries=self.max_retries,
                max_wait=self.max_wait_seconds,
                where=where,
                refused=(
                    "Datadog refused the credentials; check DATADOG_API_KEY and DATADOG_APP_KEY (the application "
                    "key needs the timeseries_query and cloud_cost_management_read permissions) and that "
                    "DATADOG_SITE is the site of your organisation"
                ),
                announced_wait=_reset_seconds,
                error_text=_error_text,
            )
        _respect_remaining(response, self.max_wait_seconds)
        return json_body(response, where)


def _respect_remaining(response: httpx.Response, max_wait: float) -> None:
    """When a success says no calls remain in this period, wait for the reset before the next one."""
    remaining = response.headers.get("X-RateLimit-Remaining")
    reset = _reset_seconds(response)
    if remaining is not None and remaining.strip() == "0" and reset:
        time.sleep(min(reset, max_wait))


def _reset_seconds(response: httpx.Response) -> float | None:
    return header_seconds(response, "X-RateLimit-Reset", "Retry-After")


def _error_text(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors")
    except (ValueError, AttributeError):
        errors = None
    return "; ".join(map(str, errors))[:300] if errors else response.text[:300]


def _epoch_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


def series_frame(payload: dict, account_tag: str, service_tag: str, usage_type_tag: str = "",
                 region_tag: str = "", *, query_index: int | None = None, unit_tag: str = "") -> pl.DataFrame:
    """Daily rows (``date``, ``account_id``, ``service``, ``usage_type``, ``region``, ``cost_usd``) from a v2
    ``timeseries_response``.

    Each series carries ``group_tags`` like ``["aws_member_account_id:0123...", "aws_product:ec2"]``;
    ``values[i]`` runs along ``times`` (bucket starts in epoch ms, UTC). A null point is a day without
    data and makes no row, so it is never read as $0. With ``query_index`` only the series of that query
    (formula) are read; with ``unit_tag`` the values are quantities (``usage_quantity``, ``usage_unit``).
    """
    try:
        attributes = payload["data"]["attributes"]
        series, times, values = attributes.get("series") or [], attributes.get("times") or [], attributes.get("values") or []
    except (KeyError, TypeError):
        errors = payload.get("errors") if isinstance(payload, dict) else None
        raise CostSourceError(f"Datadog answered without timeseries data: {errors or 'unexpected shape'}") from None
    days = [datetime.fromtimestamp(t / 1000, UTC).date() for t in times]
    rows: dict[str, list] = {"date": [], "account_id": [], "service": [], "usage_type": [], "region": [],
                             "unit": [], "value": []}
    for entry, points in zip(series, values, strict=False):
        if query_index is not None and entry.get("query_index", 0) != query_index:
            continue
        tags = dict(tag.split(":", 1) for tag in entry.get("group_tags") or [] if ":" in tag)
        account, service = tags.get(account_tag), tags.get(service_tag)
        # "N/A" is Datadog's value for a cost without the tag: unknown, not a usage type called N/A.
        usage_type, region = ((None if tags.get(t) in (None, "", "N/A") else tags[t]) for t in (usage_type_tag, region_tag))
        if not account:
            continue  # cost Datadog could not attribute to an account: not any team's spend
        for day, value in zip(days, points, strict=False):
            if value is None:
                continue
            rows["date"].append(day)
            rows["account_id"].append(account)
            rows["service"].append(service or "(untagged)")
            rows["usage_type"].append(usage_type)
            rows["region"].append(region)
            rows["unit"].append(None if tags.get(unit_tag) in (None, "", "N/A") else tags[unit_tag])
            rows["value"].append(float(value))
    frame = pl.DataFrame(rows, schema={"date": pl.Date, "account_id": pl.String, "service": pl.String,
                                       "usage_type": pl.String, "region": pl.String, "unit": pl.String,
                                       "value": pl.Float64})
    # Several rollup buckets can fall on one UTC day only if the interval is not a day; sum to be safe.
    key = ["date", "account_id", "service", "usage_type", "region"]
    if not unit_tag:
        return frame.group_by(key).agg(pl.col("value").sum().alias("cost_usd")).sort(key, nulls_last=True)
    # A quantity is only meaningful in one unit: a line that mixes units (or has none) has no quantity.
    one_unit = (pl.col("unit").n_unique() == 1) & pl.col("unit").is_not_null().all()
    return frame.group_by(key).agg(
        pl.when(one_unit).then(pl.col("value").sum()).alias("usage_quantity"),
        pl.when(one_unit).then(pl.col("unit").first()).alias("usage_unit"),
    ).sort(key, nulls_last=True)


def with_quantities(costs: pl.DataFrame, quantities: pl.DataFrame) -> pl.DataFrame:
    """The cost rows with the quantity and unit of the same day and line (null where Datadog has none).

    Usage without a cost on that line and day adds no row: the dollars stay exactly the cost metric's.
    """
    key = ["date", "account_id", "service", "usage_type", "region"]
    return costs.join(quantities, on=key, how="left", nulls_equal=True)
