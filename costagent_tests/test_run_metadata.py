"""Run-wide metadata is recorded once per asset and run; each partition's materialization keeps its own figures."""

from __future__ import annotations

from datetime import date

from costagent_tests.peers.stages import daily_costs, materialize_stage

A, B, C = "111111111111", "222222222222", "333333333333"


def test_a_ranged_run_records_the_stage_figures_once_and_each_partition_only_its_own(tmp_path):
    raw = daily_costs(date(2025, 3, 1), {
        A: {"AmazonEC2": [10, 12, 10], "AmazonS3": [2.5, 2.5, 2.5]},
        B: {"AWSLambda": [7, 7, 7]},
    })
    run = materialize_stage("service_breakdown", tmp_path, month="2025-03", accounts=[A, B, C],
                            as_of=date(2025, 3, 4), upstream={"raw_costs": raw})
    assert run.result.success
    materializations = {e.partition: e.materialization.metadata for e in run.result.get_asset_materialization_events()}
    assert set(materializations) == {f"{a}|2025-03" for a in (A, B, C)}
    for partition, metadata in materializations.items():
        assert set(metadata) == {"rows", "path"}
        account = partition.split("|")[0]
        assert metadata["path"].value == str(run.home.warehouse_dir / "service_breakdown" / "2025-03" / f"{account}.parquet")
    assert {p.split("|")[0]: m["rows"].value for p, m in materializations.items()} == {A: 2, B: 1, C: 0}

    observations = [e.asset_observation_data.asset_observation for e in run.result.all_events if e.is_asset_observation]
    [record] = [o for o in observations if o.asset_key.path == ["service_breakdown"]]
    assert record.partition is None
    meta = run.metadata("service_breakdown")
    assert (meta["rows"], meta["services"], meta["mtd_usd"]) == (3, 3, 60.5)
    assert (meta["partitions"], meta["empty_partitions"]) == (3, 1)
