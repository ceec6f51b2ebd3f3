"""Files costagent ships that live outside the package in the source tree: the email templates
(``reports/templates/``), the default Dagster instance settings (``dagster.yaml``), the production
instance profile (``deploy/dagster.postgres.yaml``) and ``workspace.yaml``.

The wheel carries copies of them under ``costagent_assets/_shipped/`` (setup.py's build step puts them
there), so an installed package finds them without a checkout; a checkout finds them where they are.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

# Relative paths (from the project root) of every file or directory that goes into the wheel.
SHIPPED = ("reports/templates", "dagster.yaml", "deploy/dagster.postgres.yaml", "workspace.yaml")
PACKAGED_DIR = "_shipped"


def shipped_path(relative: str) -> Path:
    """Where the shipped file or directory ``relative`` (one of ``SHIPPED``) is: inside the installed
    package when there, else in the source checkout."""
    if relative not in SHIPPED:
        raise KeyError(f"{relative!r} is not a shipped file (one of {', '.join(SHIPPED)})")
    packaged = Path(str(files("costagent_assets"))) / PACKAGED_DIR / relative
    if packaged.exists():
        return packaged
    checkout = Path(__file__).resolve().parents[1] / relative
    if checkout.exists():
        return checkout
    raise FileNotFoundError(f"{relative} is neither in the installed package ({packaged}) nor in a checkout "
                            f"({checkout}): reinstall costagent")
