"""The partition store: a rerun replaces exactly its partitions, and nothing outside the run is written."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from costagent_assets.warehouse.rollups import write_raw_costs
from costagent_assets.warehouse.store import partition_path, read_partitions, write_partitions
from costagent_tests.warehouse.samples import raw


def test_rerun_replaces_exactly_its_partitions(tmp_path: Path):
    keys = [("2026-10", "000000000001"), ("2026-10", "000000000002")]
    write_partitions(tmp_path, "raw_costs", pl.concat([raw(a, m, 1.0) for m, a in keys]), keys)
    write_partitions(tmp_path, "raw_costs", raw("000000000001", "2026-10", 5.0), keys[:1])
    out = read_partitions(tmp_path, "raw_costs", keys).sort("account_id")
    assert out["cost_usd"].to_list() == [5.0, 1.0]
    assert not list(tmp_path.rglob("*.tmp"))


def test_partition_without_rows_gets_an_empty_file(tmp_path: Path):
    keys = [("2026-10", "000000000001"), ("2026-10", "000000000002")]
    written = write_partitions(tmp_path, "raw_costs", raw("000000000001", "2026-10", 1.0), keys)
    assert written == {keys[0]: 1, keys[1]: 0}
    assert pl.read_parquet(partition_path(tmp_path, "raw_costs", *keys[1])).height == 0


def test_rows_outside_the_run_are_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="outside this run"):
        write_partitions(tmp_path, "raw_costs", raw("000000000009", "2026-10", 1.0), [("2026-10", "000000000001")])
    assert not list(tmp_path.rglob("*.parquet"))
    # Refused before anything is touched, the month's rollups included.
    write_raw_costs(tmp_path, raw("000000000001", "2026-10", 1.0), [("2026-10", "000000000001")])
    before = sorted(tmp_path.rglob("*.parquet"))
    with pytest.raises(ValueError, match="outside this run"):
        write_raw_costs(tmp_path, raw("000000000009", "2026-10", 1.0), [("2026-10", "000000000001")])
    assert sorted(tmp_path.rglob("*.parquet")) == before


def test_missing_upstream_partitions_read_as_empty(tmp_path: Path):
    assert read_partitions(tmp_path, "raw_costs", [("2023-12", "000000000001")]).height == 0



def test_a_damaged_partition_is_named_with_what_to_do(tmp_path):
    """Issue 19, case 7: a corrupted Parquet file used to fail the run with the reader's error only."""
    from datetime import date as _date

    from costagent_assets.home import Home
    from costagent_assets.warehouse.store import DamagedFileError, read_table
    from costagent_tests.peers.stages import daily_costs, write_table

    home = Home(tmp_path).ensure()
    write_table(home, "raw_costs", daily_costs(_date(2026, 11, 1), {a: {"AmazonEC2": [1.0] * 3}
                                                                   for a in ("111111111111", "222222222222")}))
    bad = home.warehouse_dir / "raw_costs" / "2026-11" / "222222222222.parquet"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated, as a full disk or a killed copy leaves it
    with pytest.raises(DamagedFileError) as caught:
        read_table(home.warehouse_dir, "raw_costs", ["2026-11"])
    message = str(caught.value)
    assert str(bad) in message and "111111111111" not in message
    assert "costagent backfill --from M --to M` for 2026-11" in message


def test_usage_quantity_and_unit_are_kept_and_old_files_read_as_null(tmp_path: Path):
    keys = [("2026-10", "000000000001"), ("2026-10", "000000000002")]
    # A partition written before raw_costs had usage_quantity / usage_unit ...
    old = raw("000000000001", "2026-10", 1.0).drop("usage_quantity", "usage_unit", strict=False)
    path = partition_path(tmp_path, "raw_costs", *keys[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    old.write_parquet(path)
    assert "usage_quantity" not in pl.read_parquet_schema(path)
    # ... and one written now, with tokens.
    new = raw("000000000002", "2026-10", 2.0).with_columns(
        pl.lit(1500.0).alias("usage_quantity"), pl.lit("tokens").alias("usage_unit"))
    write_partitions(tmp_path, "raw_costs", new, keys[1:])
    out = read_partitions(tmp_path, "raw_costs", keys).sort("account_id")
    assert out["usage_quantity"].to_list() == [None, 1500.0]
    assert out["usage_unit"].to_list() == [None, "tokens"]


def test_raw_costs_stored_before_usage_quantities_read_with_nulls(tmp_path: Path):
    from costagent_assets.warehouse.store import read_table

    old = raw("111111111111", "2025-03", 10.0).drop("usage_quantity", "usage_unit")
    new = raw("222222222222", "2025-03", 10.0).with_columns(
        pl.lit(5.0).alias("usage_quantity"), pl.lit("Hrs").alias("usage_unit"))
    write_partitions(tmp_path, "raw_costs", old, [("2025-03", "111111111111")])
    write_partitions(tmp_path, "raw_costs", new, [("2025-03", "222222222222")])
    got = read_table(tmp_path, "raw_costs").sort("account_id", "date")
    assert got["usage_quantity"].to_list() == [None, 5.0]
    assert got["usage_unit"].to_list() == [None, "Hrs"]


def test_columns_reads_only_those_in_the_tables_order_and_null_where_an_old_file_lacks_one(tmp_path: Path):
    keys = [("2026-10", "000000000001"), ("2026-10", "000000000002")]
    old = raw("000000000001", "2026-10", 1.0).drop("usage_quantity", "usage_unit", strict=False)
    path = partition_path(tmp_path, "raw_costs", *keys[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    old.write_parquet(path)
    write_partitions(tmp_path, "raw_costs", raw("000000000002", "2026-10", 2.0).with_columns(
        pl.lit(3.0).alias("usage_quantity")), keys[1:])
    out = read_partitions(tmp_path, "raw_costs", keys, ["usage_quantity", "cost_usd", "account_id"]).sort("account_id")
    assert out.columns == ["account_id", "usage_quantity", "cost_usd"]
    assert out.rows() == [("000000000001", None, 1.0), ("000000000002", 3.0, 2.0)]
    assert read_partitions(tmp_path, "raw_costs", keys, ["cost_usd"]).schema == {"cost_usd": pl.Float64}
    # Nothing stored: the same columns, no rows.
    assert read_partitions(tmp_path, "raw_costs", [("2023-12", "000000000001")], ["date", "cost_usd"]).columns == [
        "date", "cost_usd"]
    with pytest.raises(ValueError, match="no column cost"):
        read_partitions(tmp_path, "raw_costs", keys, ["cost"])


def test_io_manager_reads_the_columns_an_input_declares(tmp_path: Path):
    import dagster as dg

    from costagent_assets.defs.partitions import make_key, month_account_partitions
    from costagent_assets.resources.warehouse import ParquetWarehouseIOManager, WarehouseResource

    keys = [("2026-10", "000000000001")]
    write_partitions(tmp_path, "raw_costs", raw("000000000001", "2026-10", 4.0), keys)
    manager = ParquetWarehouseIOManager(warehouse=WarehouseResource(root=str(tmp_path), ledger_dir=str(tmp_path)))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("account", ["000000000001"])

        def load(metadata):
            context = dg.build_input_context(
                asset_key="raw_costs", definition_metadata=metadata, instance=instance,
                asset_partitions_def=month_account_partitions, partition_key=str(make_key(*keys[0])))
            return manager.load_input(context)

        assert load({"columns": ["date", "account_id", "cost_usd"]}).columns == ["date", "account_id", "cost_usd"]
        assert load(None).columns == list(raw("000000000001", "2026-10", 4.0).columns)


def test_local_store_lists_and_names_keys_as_pathlib_would(tmp_path: Path):
    from costagent_assets.warehouse.store import LocalStore

    store = LocalStore(tmp_path)
    for key in ["raw_costs/2026-10/000000000002.parquet", "raw_costs/2026-10/000000000001.parquet",
                "raw_costs/2026-11/000000000001.parquet", "emails/2026-11/000000000001.parquet"]:
        store.put(key, b"x")
    (tmp_path / "raw_costs" / "2026-10" / ".000000000003.abc.tmp").write_bytes(b"half")
    assert store.keys("raw_costs/2026-10/") == ["raw_costs/2026-10/000000000001.parquet",
                                                "raw_costs/2026-10/000000000002.parquet"]
    assert store.keys("raw_costs/") == sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "raw_costs").rglob("*.parquet"))
    assert store.keys("") == sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.parquet"))
    assert store.keys("nothing/") == []
    assert store.url("emails/2026-11/000000000001.parquet") == str(tmp_path / "emails/2026-11/000000000001.parquet")
    # A folder removed between two writes (a month's rollups are rebuilt this way) is made again.
    import shutil

    shutil.rmtree(tmp_path / "emails")
    store.put("emails/2026-11/000000000001.parquet", b"y")
    assert (tmp_path / "emails/2026-11/000000000001.parquet").read_bytes() == b"y"
    assert not list(tmp_path.rglob("*.tmp"))[1:]  # only the planted one


def test_partitions_encoded_in_one_pass_are_byte_identical_to_each_partition_written_alone(tmp_path: Path):
    from costagent_assets.schemas import conform
    from costagent_assets.warehouse.store import (
        ONE_PASS_MAX_ROWS,
        encode_partitions,
        parquet_bytes,
        split_partitions,
    )

    keys = [(m, f"00000000000{i}") for m in ("2026-10", "2026-11") for i in range(1, 5)]
    parts = [raw(a, m, float(i)) for i, (m, a) in enumerate(keys[:-1])]

    def big(rows: int) -> pl.DataFrame:  # keys[0]'s partition with this many rows, each its own cost
        return pl.concat([parts[0]] * rows).with_columns(pl.Series("cost_usd", range(rows), dtype=pl.Float64))

    for rows in (1, ONE_PASS_MAX_ROWS, 300_000):  # 300,000: more than the partitioned sink keeps as one row group
        frame = conform(pl.concat([parts[1], big(rows), *parts[2:]]), "raw_costs")
        groups = split_partitions("raw_costs", frame, keys)
        if rows <= ONE_PASS_MAX_ROWS:
            encoded = encode_partitions(frame)
            assert encoded is not None and set(encoded) == set(groups) == set(keys[:-1])
            assert all(encoded[key] == parquet_bytes(part) for key, part in groups.items())
        written = write_partitions(tmp_path, "raw_costs", frame, keys)
        assert written == {k: (groups[k].height if k in groups else 0) for k in keys}
        blank = parquet_bytes(conform(frame.clear(), "raw_costs"))
        for m, a in keys:
            expected = parquet_bytes(groups[(m, a)]) if (m, a) in groups else blank
            assert partition_path(tmp_path, "raw_costs", m, a).read_bytes() == expected, (rows, m, a)
