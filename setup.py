"""Build step only (the metadata is in pyproject.toml): copy the files that live outside the package in
the source tree (email templates, instance settings; see costagent_assets/shipped.py) into the wheel,
under costagent_assets/_shipped/, so a non-editable install can render emails and create its instance."""

import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

sys.path.insert(0, str(Path(__file__).parent / "costagent_assets"))
from shipped import PACKAGED_DIR, SHIPPED  # noqa: E402  (the module itself, without importing the package)


class BuildPyWithShippedFiles(build_py):
    """build_py, then the shipped files copied into the built package."""

    def run(self):
        super().run()
        root = Path(__file__).parent
        target = Path(self.build_lib) / "costagent_assets" / PACKAGED_DIR
        for relative in SHIPPED:
            source, dest = root / relative, target / relative
            dest.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, dest, dirs_exist_ok=True)
            else:
                shutil.copy2(source, dest)


setup(cmdclass={"build_py": BuildPyWithShippedFiles})
