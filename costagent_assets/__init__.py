"""costagent: weekly cloud-cost intelligence for AWS organisations, on Dagster, Parquet and DuckDB."""

__version__ = "0.1.0"
