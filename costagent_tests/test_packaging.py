"""The wheel installs anywhere: built from the sources alone, installed into a fresh venv outside the
checkout, it carries the templates and instance profiles (costagent_assets/shipped.py) and runs the demo.

The fresh venv reuses the shared venv's installed dependencies through a .pth line (a plain path line,
so the shared venv's editable costagent hook is not run) and gets the wheel with ``pip install --no-deps``:
the same package a Docker image or pipx would install, without a 5-minute dependency install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from costagent_assets.shipped import SHIPPED

ROOT = Path(__file__).resolve().parents[1]
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "costagent_assets", *SHIPPED)


def _build_wheel(tmp: Path) -> Path:
    """The wheel built from a copy of the build inputs (so the checkout gets no build/ directory)."""
    source = tmp / "source"
    for relative in BUILD_INPUTS:
        src, dest = ROOT / relative, source / relative
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "_shipped"))
        else:
            shutil.copy2(src, dest)
    out = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(source)], check=True, capture_output=True)
    (wheel,) = out.glob("costagent-*.whl")
    return wheel


def test_the_wheel_carries_the_shipped_files_and_runs_the_demo_outside_the_checkout(tmp_path: Path):
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in (ROOT / "reports" / "templates").iterdir():
        assert f"costagent_assets/_shipped/reports/templates/{template.name}" in names
    for relative in ("dagster.yaml", "deploy/dagster.postgres.yaml", "workspace.yaml"):
        assert f"costagent_assets/_shipped/{relative}" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "shared_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # The shared venv holds costagent's editable install, which the .pth line makes visible (and so does a
    # PYTHONPATH at the checkout, through its costagent.egg-info): pip would call the wheel "already installed".
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DAGSTER_HOME", "COSTAGENT_HOME")}
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps", "-q",
                    "--force-reinstall", str(wheel)], check=True, capture_output=True, env=env)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import costagent_assets; print(costagent_assets.__file__)"],
                           cwd=elsewhere, env=env, check=True, capture_output=True, text=True).stdout
    assert where.startswith(str(site)), f"costagent imported from {where}, not the installed wheel"

    home = tmp_path / "installed-home"
    done = subprocess.run([str(venv / "bin" / "costagent"), "--home", str(home), "demo", "--accounts", "3",
                           "--history-months", "0", "--as-of", "2026-11-23"],
                          cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    outbox = home / "outbox" / "2026-11-23"
    assert len(list(outbox.glob("*-team-*.eml"))) == 3
    assert "<html" in next(outbox.glob("*-admin.html")).read_text(encoding="utf-8").lower()
    shipped = (site / "costagent_assets" / "_shipped" / "dagster.yaml").read_text(encoding="utf-8")
    written = (home / "dagster" / "dagster.yaml").read_text(encoding="utf-8")
    assert written == shipped.replace("__DAGSTER_HOME__", str(home / "dagster"))
