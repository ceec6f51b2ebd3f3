"""The Parquet warehouse: one object per asset partition, local or on S3, and the DuckDB views over it.

- ``store``: where the objects live (the ``Store`` protocol, the local store) and the account-month
  partitions of the asset tables: their keys, writing and reading them.
- ``rollups``: the per-month rollups of raw_costs (daily and monthly sums) that history queries read, and
  ``write_raw_costs``, the step that writes raw_costs partitions together with their months' rollups.
- ``log_tables``: the append-only log tables (``source_usage``, ``ai_usage``, ``ai_insight_history``,
  ``optimization_scans``), all written by ``append_log``.
- ``views``: the DuckDB side: the documented views over the objects, connections and the database file.

The S3 store lives with the other outside systems in ``resources/s3_warehouse.py``; the Dagster IO
manager in ``resources/warehouse.py``.
"""
