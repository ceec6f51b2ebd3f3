"""Small file helpers shared by the modules that keep state under ``COSTAGENT_HOME``."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def atomic_write_text(path: Path, text: str, *, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``text`` (see ``atomic_write_bytes``); newlines are written as given."""
    atomic_write_bytes(path, text.encode(encoding))


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so that readers see either the old file or the new one.

    ``durable=False`` skips the fsyncs: still atomic for readers, but a power cut may lose the write.
    Bulk outputs that a rerun regenerates (the outbox) use it; state files (registry, settings) don't.

    The text goes to a temporary file in the same directory (``os.replace`` is only atomic within
    one filesystem), is flushed and fsynced, then renamed over the target. A crash or a full disk
    leaves the previous file intact and no temporary file behind. The parent directory is created
    if needed; an existing file keeps its permission bits.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        # mkstemp creates 0600; a fresh state file should be as readable as one made by open().
        mode = 0o644
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            if durable:
                tmp.flush()
                os.fsync(tmp.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    if durable:
        _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    # The rename itself is only durable once the directory entry is on disk; not every platform
    # lets a directory be opened (Windows), and losing that last guarantee there is acceptable.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
