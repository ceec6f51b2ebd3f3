"""The `costagent` command and what it drives: runs, backfills, status and previews, outside the Dagster UI."""
