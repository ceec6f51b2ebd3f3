"""The production instance profile's event log (deploy/dagster.postgres.yaml): a module of its own, so the
embedded profile never imports dagster-postgres (~0.5 s per command)."""

from __future__ import annotations

from dagster_postgres.event_log import PostgresEventLogStorage


class PooledPostgresEventLogStorage(PostgresEventLogStorage):
    """dagster-postgres's event log with a pooled connection in every process, not only the webserver.

    Stock, the event log opens a new PostgreSQL connection per event (NullPool) except in the webserver.
    Profiled on the demo's 84-account history run (cProfile, local PostgreSQL 15): 561 connections took
    2.0 s of the run's 7.3 s; with the webserver's own pooling (``optimize_for_webserver``, a public method
    of the storage) the run took 4.4 s. The storage stays dagster-postgres's own class; the pool is one
    connection plus a few for concurrent threads per process, and a run worker's closes when it exits.
    Config as ``PostgresEventLogStorage``'s.
    """

    @classmethod
    def from_config_value(cls, inst_data, config_value):  # type: ignore[override]
        # The stock storage (its from_config_value builds the base class whatever cls is), then pooled.
        storage = super().from_config_value(inst_data, config_value)
        # statement_timeout 0: no limit for a run's writes (the webserver sets its own when it calls this again).
        storage.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=4)
        return storage
