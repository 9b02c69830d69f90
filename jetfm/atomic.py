"""Atomic writes: a file or a folder appears complete at its final path, or not at all.

Both context managers hand out a hidden temporary path in the target's own directory (so the
final ``os.replace`` is a rename on one file system) and clean it up when the block raises:

.. code-block:: python

    with atomic_file("out/metrics.json") as tmp:  # tmp: out/.metrics.json.XXXX.tmp
        tmp.write_text(text)
    with atomic_folder("model_cards/mpm-flow-base") as stage:  # .mpm-flow-base.tmp-XXXX/
        model.save_pretrained(stage)

A reader (or a crash) therefore never sees a half-written file, and a failure never leaves
a temporary file or staging folder behind. Temporary names start with a dot, so listings
that skip hidden entries (:func:`jetfm.hub.bundled_checkpoints`) never see them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_file", "atomic_folder", "write_text"]


def _umask() -> int:
    """The process umask (read by setting it and putting it back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync(path: Path) -> None:
    """Flush ``path`` (a file or a directory) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_file(path: str | os.PathLike, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (an empty file, hidden: ``.NAME.XXXX.tmp``).

    When the block ends normally the temporary file replaces ``path`` in one rename, with the
    permissions of a newly created file (``0o666`` less the umask); when it raises the
    temporary file is deleted and ``path`` is left as it was.

    Args:
        path: the final file; its directory must exist.
        fsync: also flush the file and its directory to disk (survives a power cut).
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it owner-only
        if fsync:
            _fsync(tmp)
        os.replace(tmp, path)
        if fsync:
            _fsync(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str, *, fsync: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path, fsync=fsync) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


@contextmanager
def atomic_folder(path: str | os.PathLike, *, fsync: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder beside ``path`` (hidden: ``.NAME.tmp-XXXX``).

    When the block ends normally the staging folder becomes ``path``: an existing ``path``
    is first moved aside (``.NAME.old-XXXX``), then deleted once the new folder is in place
    (or moved back if the rename fails). When the block raises, the staging folder is
    deleted and ``path`` is left as it was.

    Args:
        path: the final folder; its parent directory must exist.
        fsync: also flush every file of the folder, and the parent directory, to disk.
    """
    path = Path(path)
    stage = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield stage
        os.chmod(stage, 0o777 & ~_umask())  # mkdtemp makes it owner-only
        if fsync:
            for item in stage.rglob("*"):
                _fsync(item)
            _fsync(stage)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            try:
                os.replace(path, old / path.name)
                try:
                    os.replace(stage, path)
                except BaseException:
                    os.replace(old / path.name, path)
                    raise
            finally:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(stage, path)
        if fsync:
            _fsync(path.parent)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
