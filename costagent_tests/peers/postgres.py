"""A throwaway PostgreSQL server on a loopback port: initdb and pg_ctl in a temp dir, stopped at the end.

initdb refuses to run as root, so under root the cluster belongs to the ``postgres`` user (Debian's
postgresql package creates it). Binaries: $COSTAGENT_PG_BIN, else the newest /usr/lib/postgresql/*/bin,
else PATH. Each test gets its own database (``new_database``), so tests never see each other's runs.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SUPERUSER = "costagent"


def postgres_bin() -> Path | None:
    """The directory holding initdb and pg_ctl, or None when PostgreSQL is not installed."""
    if os.environ.get("COSTAGENT_PG_BIN"):
        return Path(os.environ["COSTAGENT_PG_BIN"])
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if versions:
        return versions[-1]
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@dataclass(frozen=True)
class PostgresServer:
    """A running server: connect as ``SUPERUSER`` (trust authentication on 127.0.0.1)."""

    bin_dir: Path
    port: int
    run_as: str | None

    def _run(self, *command: str) -> subprocess.CompletedProcess:
        return subprocess.run(list(command), check=True, capture_output=True, text=True, user=self.run_as)

    def new_database(self, name: str) -> dict[str, str]:
        """Create database ``name``; returns the DAGSTER_POSTGRES_* variables that reach it."""
        self._run(str(self.bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, name)
        return {"DAGSTER_POSTGRES_USER": SUPERUSER, "DAGSTER_POSTGRES_PASSWORD": "",
                "DAGSTER_POSTGRES_HOST": "127.0.0.1", "DAGSTER_POSTGRES_PORT": str(self.port),
                "DAGSTER_POSTGRES_DB": name}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a cluster in a fresh temp dir on a free loopback port; stop it and remove the dir after."""
    bin_dir = postgres_bin()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        pytest.skip("PostgreSQL is not installed (.ci/run installs it: apt-get install postgresql)")
    run_as = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="costagent-pg-"))
    if run_as:
        shutil.chown(root, run_as, run_as)
    data, port = root / "data", _free_port()
    server = PostgresServer(bin_dir, port, run_as)
    server._run(str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync")
    # Loopback only, no Unix socket outside the temp dir; fsync off: a test cluster need not survive a crash.
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} -c fsync=off"
    server._run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start")
    try:
        yield server
    finally:
        server._run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
