"""`costagent ui` serves the Dagster UI on 127.0.0.1 over the installation's state, and stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from costagent_assets.defs.automation import REPORT_ASSETS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, data: dict | None = None) -> tuple[int, bytes]:
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, response.read()


def test_ui_serves_the_assets_and_stops_on_sigterm(isolated: Path):
    port = free_port()
    costagent = Path(sys.executable).with_name("costagent")
    proc = subprocess.Popen(
        [str(costagent), "--home", str(isolated), "ui", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if get(f"http://127.0.0.1:{port}/server_info")[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, "costagent ui exited early"
            assert time.monotonic() < deadline, "the UI did not come up in 120 s"
            time.sleep(0.5)
        # The code location may still be loading right after the server answers.
        for _ in range(60):
            _, body = get(f"http://127.0.0.1:{port}/graphql", {"query": "{ assetNodes { assetKey { path } } }"})
            nodes = json.loads(body).get("data", {}).get("assetNodes") or []
            if nodes:
                break
            time.sleep(0.5)
        assert sorted(n["assetKey"]["path"][0] for n in nodes) == sorted(REPORT_ASSETS)
        assert (isolated / "dagster" / "dagster.yaml").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("costagent ui ignored SIGTERM")
    # No child (webserver, daemon, code server) left behind in its process group.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("children of costagent ui were still running 30 s after SIGTERM")
