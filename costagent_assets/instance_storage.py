"""A SQLite event log that stores a ranged run's per-partition events in one transaction.

Measured on the demo (84 accounts): Dagster's own bookkeeping, not our computation, was most of a
weekly run: ~1,000 materialization events, each opening a fresh SQLAlchemy engine (recompiling its
statements), writing two databases and fsyncing each. This subclass keeps one engine per database,
keeps its connection open, lets WAL-mode SQLite sync at checkpoints instead of every commit (``synchronous=NORMAL``: a crash can
lose the last events, never corrupt the file), and writes a batch (one asset's partitions, when
``DAGSTER_EVENT_BATCH_SIZE`` is set) in one transaction per database, one executemany each. Everything else
is Dagster's.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as db
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from dagster._core.errors import DagsterInvariantViolationError
from dagster._core.event_api import EventLogEntry
from dagster._core.events import (
    ASSET_CHECK_EVENTS,
    ASSET_EVENTS,
    EVENT_TYPE_TO_PIPELINE_RUN_STATUS,
    DagsterEventType,
)
from dagster._core.storage.event_log.schema import SqlEventLogStorageMetadata, SqlEventLogStorageTable
from dagster._core.storage.event_log.sqlite import sqlite_event_log
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sql import get_alembic_config, safe_commit
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData
from sqlalchemy.pool import QueuePool

RUN_END_EVENTS = {
    DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_CANCELED,
}


@functools.cache
def _migration_scripts() -> ScriptDirectory:
    """The event log's Alembic scripts, read once per process: Dagster reads all ~90 of them twice for every
    database it opens (a revision check and a stamp), ~20 ms each, and every run has a database of its own."""
    return ScriptDirectory.from_config(get_alembic_config(sqlite_event_log.__file__))


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log, with cached engines, NORMAL sync and one transaction per event batch."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._engines: dict[str, db.Engine] = {}
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def from_config_value(cls, inst_data, config_value):  # type: ignore[override]
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> db.Engine:
        engine = self._engines.get(shard)
        if engine is None:
            # One pooled connection per database, reused under _db_lock: closing the last connection
            # of a WAL database checkpoints it, which Dagster's NullPool did after every event.
            engine = db.create_engine(
                self.conn_string_for_shard(shard),
                poolclass=QueuePool,
                pool_size=1,
                max_overflow=4,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )

            @db.event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn, _record):  # noqa: ANN001
                cursor = dbapi_conn.cursor()
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.close()

            self._engines[shard] = engine
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[db.Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def _initdb(self, engine: db.Engine, for_index_shard: bool = False) -> None:
        """Dagster's ``_initdb`` with the migration scripts read once per process: a stamped database is left as
        it is, an empty one gets the tables and the head revision, exactly as Dagster writes them. Anything
        else (an unstamped database with tables, a concurrent initializer) goes to Dagster's own, with its retries."""
        try:
            with engine.connect() as conn:
                if MigrationContext.configure(conn).get_current_revision():
                    return
                if not db.inspect(conn).get_table_names():
                    SqlEventLogStorageMetadata.create_all(engine)
                    conn.execute(db.text("PRAGMA journal_mode=WAL;"))
                    MigrationContext.configure(conn).stamp(_migration_scripts(), "head")
                    safe_commit(conn)
                    return
        except (db.exc.DatabaseError, sqlite3.DatabaseError, sqlite3.OperationalError):
            pass
        super()._initdb(engine, for_index_shard=for_index_shard)

    def dispose(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()
        super().dispose()

    def store_event(self, event: EventLogEntry) -> None:
        """Dagster's store_event; a run's own database engine is closed when the run ends, so a long-lived
        daemon or webserver does not keep one open per run it ever saw."""
        super().store_event(event)
        if event.is_dagster_event and event.dagster_event_type in RUN_END_EVENTS:
            with self._db_lock:
                engine = self._engines.pop(event.run_id, None)
            if engine is not None:
                engine.dispose()

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Store a batch with one transaction on the run's database and one on the index."""
        if not events:
            return
        run_ids = {e.run_id for e in events}
        simple = all(
            e.is_dagster_event
            and e.dagster_event_type in ASSET_EVENTS
            and e.dagster_event_type not in ASSET_CHECK_EVENTS
            and e.dagster_event_type not in EVENT_TYPE_TO_PIPELINE_RUN_STATUS
            for e in events
        )
        if len(run_ids) != 1 or not simple:
            for event in events:
                self.store_event(event)
            return
        # One executemany per database, the index's returning the new ids in order: a statement built,
        # compiled and executed per event was about half of this method at 1,000 accounts.
        rows = [self._event_to_row(e) for e in events]
        with self.run_connection(events[0].run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        with self.index_transaction() as conn:
            inserted = conn.execute(
                SqlEventLogStorageTable.insert().returning(SqlEventLogStorageTable.c.id, sort_by_parameter_order=True),
                rows,
            )
            event_ids = [row[0] for row in inserted]
            if len(event_ids) != len(events) or None in event_ids:
                raise DagsterInvariantViolationError("Cannot store asset event tags for null event id.")
            self._store_asset_event_tags(conn, events, event_ids)
            # The asset-key row keeps only the latest event per asset, so the last one of the batch
            # leaves it exactly as storing each in turn would.
            latest = {e.dagster_event.asset_key: (e, i) for e, i in zip(events, event_ids, strict=True)}
            for event, event_id in latest.values():
                self._store_asset_event(conn, event, event_id)

