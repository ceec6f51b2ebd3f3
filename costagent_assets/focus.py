"""FOCUS exports and legacy AWS CUR files into daily cost rows: pure polars, no clients.

Real exports hold traps, each handled here: hourly rows (rolled up into days), the literal text
``NULL``, numeric-looking ids (always read as text, AWS ids padded back to 12 digits), enumerations in
mixed case, negative credits, charge periods that straddle a billing-period boundary (the row counts in
the billing period it was billed in), tags as JSON inside a quoted CSV field, and CUR tax lines that span
the whole month (counted on the day their period starts, as Cost Explorer does).
"""

from __future__ import annotations

import gzip
import io
import re

import polars as pl

NULL_TEXTS = ("", "null", "none", "nan", "n/a")
FOCUS_COST_COLUMNS = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")

# Canonical column name -> the spelling looked up in a file (case-insensitive).
_FOCUS_COLUMNS = {
    "ChargePeriodStart": "chargeperiodstart",
    "BillingPeriodStart": "billingperiodstart",
    "BillingPeriodEnd": "billingperiodend",
    "SubAccountId": "subaccountid",
    "ServiceName": "servicename",
    "RegionId": "regionid",
    "ChargeCategory": "chargecategory",
    "ProviderName": "providername",
    "BillingCurrency": "billingcurrency",
    "x_UsageType": "x_usagetype",
    "ConsumedQuantity": "consumedquantity",
    "ConsumedUnit": "consumedunit",
    "PricingQuantity": "pricingquantity",
    "PricingUnit": "pricingunit",
}
_CUR_COLUMNS = {
    "account": ("lineitem/usageaccountid", "line_item_usage_account_id"),
    "cost": ("lineitem/unblendedcost", "line_item_unblended_cost"),
    "service": ("product/productname", "product_product_name", "lineitem/productcode", "line_item_product_code"),
    "start": ("lineitem/usagestartdate", "line_item_usage_start_date"),
    "type": ("lineitem/lineitemtype", "line_item_line_item_type"),
    "region": ("product/regioncode", "product_region_code", "product/region", "product_region"),
    "usage_type": ("lineitem/usagetype", "line_item_usage_type"),
    "quantity": ("lineitem/usageamount", "line_item_usage_amount"),
    "unit": ("pricing/unit", "pricing_unit"),
    "currency": ("lineitem/currencycode", "line_item_currency_code"),
    "billing_start": ("bill/billingperiodstartdate", "bill_billing_period_start_date"),
    "billing_end": ("bill/billingperiodenddate", "bill_billing_period_end_date"),
}
# CUR line item types -> FOCUS charge categories.
_CUR_CATEGORIES = {
    "usage": "usage", "discountedusage": "usage", "savingsplancoveredusage": "usage",
    "tax": "tax", "credit": "credit", "refund": "credit", "bundleddiscount": "credit", "edpdiscount": "credit",
    "privaterateddiscount": "credit", "fee": "purchase", "rifee": "purchase", "savingsplanrecurringfee": "purchase",
    "savingsplanupfrontfee": "purchase", "savingsplannegation": "adjustment",
}
_PROVIDERS = (("amazon", "aws"), ("aws", "aws"), ("microsoft", "azure"), ("azure", "azure"), ("google", "gcp"),
              ("gcp", "gcp"), ("oracle", "oci"), ("oci", "oci"))

ROW_SCHEMA = {
    "date": pl.Date,
    "account_id": pl.String,
    "provider": pl.String,
    "service": pl.String,
    "region": pl.String,
    "usage_type": pl.String,
    "charge_category": pl.String,
    "currency": pl.String,
    "cost_usd": pl.Float64,
    "usage_quantity": pl.Float64,
    "usage_unit": pl.String,
}
DAILY_KEY = ["date", "account_id", "provider", "service", "region", "usage_type", "charge_category", "currency"]


class ExportError(ValueError):
    """A file is not a readable FOCUS or CUR export; the message names the file and the problem."""


def read_export_bytes(content: bytes, name: str) -> pl.DataFrame:
    """Every column of one export file as text (CSV, gzipped CSV or Parquet, told apart by content).

    Reading everything as text keeps ids such as ``012345678901`` intact; Parquet columns are turned
    into text too (timestamps as ISO in UTC) so both formats take the same path.
    """
    if content[:2] == b"\x1f\x8b":
        try:
            content = gzip.decompress(content)
        except (OSError, EOFError) as exc:
            raise ExportError(f"{name}: damaged gzip file ({exc})") from None
    try:
        if content[:4] == b"PAR1":
            return _as_text(pl.read_parquet(io.BytesIO(content)))
        return pl.read_csv(io.BytesIO(content), infer_schema=False, encoding="utf8-lossy")
    except pl.exceptions.PolarsError as exc:
        raise ExportError(f"{name}: not a readable CSV or Parquet export ({str(exc).splitlines()[0]})") from None


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    columns = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            if dtype.time_zone:
                col = col.dt.convert_time_zone("UTC")
            col = col.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        elif dtype == pl.Date:
            col = col.dt.strftime("%Y-%m-%d")
        columns.append(col.cast(pl.String).alias(name))
    return frame.select(columns)


def normalize_export(frame: pl.DataFrame, name: str, cost_column: str = "BilledCost") -> pl.DataFrame:
    """One export file's rows in ``ROW_SCHEMA`` (not yet rolled up), FOCUS or CUR told apart by columns."""
    lower = {c.strip().lower(): c for c in frame.columns}
    if "chargeperiodstart" in lower:
        return _normalize_focus(frame, lower, name, cost_column)
    if any(c in lower for c in _CUR_COLUMNS["account"]):
        return _normalize_cur(frame, lower, name)
    raise ExportError(
        f"{name}: neither a FOCUS export (no ChargePeriodStart column) nor a CUR file "
        "(no lineItem/UsageAccountId column)"
    )


def _text(frame: pl.DataFrame, column: str | None) -> pl.Expr:
    """A text column with surrounding blanks removed and the null spellings (``NULL``, ``""``) as null."""
    if column is None or column not in frame.columns:
        return pl.lit(None, dtype=pl.String)
    value = pl.col(column).cast(pl.String).str.strip_chars()
    return pl.when(value.str.to_lowercase().is_in(NULL_TEXTS)).then(None).otherwise(value)


def _pick(lower: dict[str, str], *candidates: str) -> str | None:
    return next((lower[c] for c in candidates if c in lower), None)


def _normalize_focus(frame: pl.DataFrame, lower: dict[str, str], name: str, cost_column: str) -> pl.DataFrame:
    col = {canonical: lower.get(key) for canonical, key in _FOCUS_COLUMNS.items()}
    cost = lower.get(cost_column.lower())
    missing = [c for c in ("SubAccountId", "ServiceName") if col[c] is None] + ([cost_column] if cost is None else [])
    if missing:
        raise ExportError(f"{name}: FOCUS export without the column(s) {', '.join(missing)}")
    provider = _provider(_text(frame, col["ProviderName"]))
    return _finish(
        frame,
        name,
        start=_text(frame, col["ChargePeriodStart"]),
        billing_start=_text(frame, col["BillingPeriodStart"]),
        billing_end=_text(frame, col["BillingPeriodEnd"]),
        account=_text(frame, col["SubAccountId"]),
        provider=provider,
        service=_text(frame, col["ServiceName"]),
        region=_text(frame, col["RegionId"]),
        usage_type=_text(frame, col["x_UsageType"]),
        # What was consumed, in its unit; the pricing quantity where a file has only that.
        quantity=pl.coalesce(_text(frame, col["ConsumedQuantity"]), _text(frame, col["PricingQuantity"])),
        unit=pl.when(_text(frame, col["ConsumedQuantity"]).is_not_null()).then(_text(frame, col["ConsumedUnit"]))
        .otherwise(_text(frame, col["PricingUnit"])),
        category=_text(frame, col["ChargeCategory"]).str.to_lowercase(),
        currency=_text(frame, col["BillingCurrency"]).str.to_uppercase(),
        cost=_text(frame, cost),
    )


def _normalize_cur(frame: pl.DataFrame, lower: dict[str, str], name: str) -> pl.DataFrame:
    col = {key: _pick(lower, *names) for key, names in _CUR_COLUMNS.items()}
    missing = [k for k in ("cost", "service", "start") if col[k] is None]
    if missing:
        raise ExportError(f"{name}: CUR file without a column for {', '.join(missing)}")
    line_type = _text(frame, col["type"]).str.to_lowercase()
    category = line_type.replace_strict(_CUR_CATEGORIES, default="adjustment", return_dtype=pl.String)
    return _finish(
        frame,
        name,
        start=_text(frame, col["start"]),
        billing_start=_text(frame, col["billing_start"]),
        billing_end=_text(frame, col["billing_end"]),
        account=_text(frame, col["account"]),
        provider=pl.lit("aws"),
        service=pl.coalesce(_text(frame, col["service"]), _text(frame, _pick(lower, "lineitem/productcode",
                                                                             "line_item_product_code"))),
        region=_text(frame, col["region"]),
        usage_type=_text(frame, col["usage_type"]),
        quantity=_text(frame, col["quantity"]),
        unit=_text(frame, col["unit"]),
        category=pl.when(line_type.is_null()).then(pl.lit("usage")).otherwise(category),
        currency=_text(frame, col["currency"]).str.to_uppercase(),
        cost=_text(frame, col["cost"]),
    )


def _provider(name: pl.Expr) -> pl.Expr:
    lowered = name.str.to_lowercase()
    expr = lowered.str.replace_all(r"[^a-z0-9]+", "_").str.strip_chars("_")
    for needle, short in reversed(_PROVIDERS):
        expr = pl.when(lowered.str.contains(needle, literal=True)).then(pl.lit(short)).otherwise(expr)
    return pl.when(name.is_null()).then(pl.lit("unknown")).otherwise(expr)


def utc_timestamp(text: pl.Expr) -> pl.Expr:
    """ISO-ish timestamps (``2026-11-01``, ``...T10:00:00Z``, ``... 10:00:00.000+02:00``) as UTC datetimes."""
    s = text.str.replace(" ", "T")
    s = pl.when(s.str.len_chars() == 10).then(s + "T00:00:00").otherwise(s)
    s = s.str.replace(r"(T\d\d:\d\d)(Z|[+-]\d\d:?\d\d)?$", "${1}:00${2}")  # minutes only
    s = s.str.replace(r"\.\d+", "").str.replace(r"Z$", "+00:00")
    s = pl.when(s.str.contains(r"[+-]\d\d:?\d\d$")).then(s).otherwise(s + "+00:00")
    return s.str.to_datetime("%Y-%m-%dT%H:%M:%S%z", time_zone="UTC", strict=False)


def account_id_expr(account: pl.Expr, provider: pl.Expr) -> pl.Expr:
    """Account ids as text in one shape per provider.

    An AWS id that lost its leading zeros (a number column in Parquet or a spreadsheet) gets them back;
    an Azure subscription path ``/subscriptions/<guid>`` becomes the lower-case guid.
    """
    digits = account.str.replace(r"\.0+$", "")
    aws = pl.when(digits.str.contains(r"^[0-9]{1,12}$")).then(digits.str.zfill(12)).otherwise(account)
    azure = account.str.replace(r"(?i)^/subscriptions/([0-9a-f-]{36}).*$", "${1}").str.to_lowercase()
    return (
        pl.when(provider == "aws").then(aws)
        .when((provider == "azure") & account.str.contains(r"(?i)^/subscriptions/"))
        .then(azure)
        .otherwise(account)
    )


def _finish(frame: pl.DataFrame, name: str, *, start: pl.Expr, billing_start: pl.Expr, billing_end: pl.Expr,
            account: pl.Expr, provider: pl.Expr, service: pl.Expr, region: pl.Expr, usage_type: pl.Expr,
            category: pl.Expr, currency: pl.Expr, cost: pl.Expr, quantity: pl.Expr, unit: pl.Expr) -> pl.DataFrame:
    rows = frame.select(
        start.alias("_start_text"),
        utc_timestamp(start).alias("_start"),
        utc_timestamp(billing_start).alias("_billing_start"),
        utc_timestamp(billing_end).alias("_billing_end"),
        account.alias("_account"),
        provider.alias("provider"),
        service.fill_null("(unknown service)").alias("service"),
        region.alias("region"),
        usage_type.alias("usage_type"),
        category.fill_null("usage").alias("charge_category"),
        currency.fill_null("USD").alias("currency"),
        cost.alias("_cost_text"),
        cost.cast(pl.Float64, strict=False).alias("cost_usd"),
        quantity.cast(pl.Float64, strict=False).alias("usage_quantity"),
        unit.alias("usage_unit"),
    )
    _refuse_bad_values(rows, name)
    # The day the charge period starts, kept inside the billing period: a period straddling the boundary
    # counts in the month it was billed in, so each month's total matches the invoice.
    day = pl.col("_start").dt.date()
    day = pl.when(pl.col("_billing_start").is_not_null() & (day < pl.col("_billing_start").dt.date())) \
        .then(pl.col("_billing_start").dt.date()).otherwise(day)
    last_billed = (pl.col("_billing_end") - pl.duration(microseconds=1)).dt.date()
    day = pl.when(pl.col("_billing_end").is_not_null() & (day > last_billed)).then(last_billed).otherwise(day)
    return rows.filter(pl.col("_account").is_not_null() | pl.col("cost_usd").is_not_null()).select(
        day.alias("date"),
        account_id_expr(pl.col("_account"), pl.col("provider")).fill_null("(unknown account)").alias("account_id"),
        *[pl.col(c) for c in ("provider", "service", "region", "usage_type", "charge_category", "currency")],
        pl.col("cost_usd").fill_null(0.0),
        pl.col("usage_quantity"),
        pl.col("usage_unit"),
    )


def _refuse_bad_values(rows: pl.DataFrame, name: str) -> None:
    """Refuse the file when a date or an amount cannot be read: a guessed value would be a wrong total."""
    bad_dates = rows.filter(pl.col("_start").is_null())
    if bad_dates.height:
        sample = ", ".join(repr(v) for v in bad_dates["_start_text"].head(3).to_list())
        raise ExportError(f"{name}: {bad_dates.height} row(s) with an unreadable charge period start, e.g. {sample}")
    bad_costs = rows.filter(pl.col("_cost_text").is_not_null() & pl.col("cost_usd").is_null())
    if bad_costs.height:
        sample = ", ".join(repr(v) for v in bad_costs["_cost_text"].head(3).to_list())
        raise ExportError(f"{name}: {bad_costs.height} row(s) with an unreadable cost, e.g. {sample}")


def daily_rollup(rows: pl.DataFrame) -> pl.DataFrame:
    """One row per day and line (account, provider, service, region, usage type, charge category, currency).

    Hourly rows of the same day add up; credits stay negative.
    """
    if rows.is_empty():
        return pl.DataFrame(schema=ROW_SCHEMA)
    return rows.group_by(DAILY_KEY).agg(
        pl.col("cost_usd").sum(),
        # No quantity on any of the day's rows is unknown (null), not 0.
        pl.when(pl.col("usage_quantity").count() > 0).then(pl.col("usage_quantity").sum()).alias("usage_quantity"),
        pl.col("usage_unit").drop_nulls().first().alias("usage_unit"),
    ).select(list(ROW_SCHEMA)).sort(DAILY_KEY, nulls_last=True)


_EXPORT_NAME = re.compile(r"\.(csv|csv\.gz|gz|parquet|pq)$", re.IGNORECASE)


def is_export_file(name: str) -> bool:
    """Whether a file name looks like an export data file (manifests and hidden files are not)."""
    base = name.rsplit("/", 1)[-1]
    return not base.startswith((".", "_")) and bool(_EXPORT_NAME.search(base))
