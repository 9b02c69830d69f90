"""Atomic writes: a file or a folder appears complete at its final path, or not at all.

Both context managers hand out a hidden temporary path in the target's own directory (so the
final ``os.replace`` is a rename on one file system) and clean it up when the block raises:

.. code-block:: python

    with atomic_file("out/metrics.json") as tmp:  # tmp: out/.metrics.json.XXXX.tmp
        tmp.write_text(text)
    with atomic_folder("model_cards/mpm-flow-base") as stage:  # .mpm-flow-base.tmp-XXXX/
        model.save_pretrained(stage)

A writer that keeps its file open across calls (a ROOT file filled batch by batch) holds an
:class:`AtomicFile` instead and ends it with :meth:`~AtomicFile.commit` or
:meth:`~AtomicFile.abort`:

.. code-block:: python

    pending = AtomicFile("out/jets.root")   # pending.tmp: out/.jets.root.XXXX.tmp
    handle = uproot.recreate(pending.tmp)
    ...                                     # later calls write through ``handle``
    handle.close()
    pending.commit()                        # or pending.abort() on failure

A reader (or a crash) therefore never sees a half-written file, and a failure never leaves
a temporary file or staging folder behind. Temporary names start with a dot, so listings
that skip hidden entries (:func:`jetfm.hub.bundled_checkpoints`) never see them.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["AtomicFile", "atomic_file", "atomic_folder", "remove_leftovers", "write_text"]

logger = logging.getLogger(__name__)


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


class AtomicFile:
    """A temporary file beside ``path`` that becomes ``path`` on :meth:`commit` or
    disappears on :meth:`abort`: the explicit form of :func:`atomic_file`, for a writer
    that keeps its file open across calls.

    The temporary file (hidden: ``.NAME.XXXX.tmp``, created empty) is at :attr:`tmp`; write
    it, close every handle on it, then call :meth:`commit` once. :meth:`abort` is safe to
    call at any time and more than once (after a commit it does nothing). Used as a context
    manager it commits when the block ends normally and aborts when it raises.

    Args:
        path: the final file; its directory must exist.
        fsync: on commit, also flush the file and its directory to disk.
        suffix: ending of the temporary file's name (how a writer recognises the ones an
            interrupted run left behind).
    """

    def __init__(
        self, path: str | os.PathLike, *, fsync: bool = False, suffix: str = ".tmp"
    ) -> None:
        self.path = Path(path)
        self.fsync = fsync
        fd, name = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=suffix
        )
        os.close(fd)
        self.tmp = Path(name)
        self._state = "open"

    @property
    def committed(self) -> bool:
        """Whether :meth:`commit` has put the file in place."""
        return self._state == "committed"

    @property
    def pending(self) -> bool:
        """Whether the temporary file still waits for :meth:`commit` or :meth:`abort`."""
        return self._state == "open"

    def commit(self) -> Path:
        """Put the temporary file at :attr:`path` in one rename, with the permissions of a
        newly created file (``0o666`` less the umask); returns :attr:`path`. When the rename
        fails the temporary file is removed and :attr:`path` is left as it was."""
        if self._state != "open":
            raise RuntimeError(f"{self.path}: the atomic write is already {self._state}")
        try:
            os.chmod(self.tmp, 0o666 & ~_umask())  # mkstemp makes it owner-only
            if self.fsync:
                _fsync(self.tmp)
            os.replace(self.tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._state = "committed"
        if self.fsync:
            _fsync(self.path.parent)
        return self.path

    def abort(self) -> None:
        """Remove the temporary file (:attr:`path` is left as it was); a no-op once committed
        or aborted."""
        if self._state == "open":
            self._state = "aborted"
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def __repr__(self) -> str:
        return f"AtomicFile({str(self.path)!r}, {self._state})"


def remove_leftovers(path: str | os.PathLike, suffix: str = ".tmp") -> int:
    """Delete the temporary files (``.NAME.XXXX`` + ``suffix``) of writes to ``path`` that
    never committed: a killed process cannot abort them. Returns how many were removed. Call
    it only where no other process writes ``path`` at the same time."""
    path = Path(path)
    pattern = glob.escape(str(path.parent / f".{path.name}.")) + "*" + glob.escape(suffix)
    removed = 0
    for stale in glob.glob(pattern):
        logger.info("removing %s left by an interrupted run", stale)
        Path(stale).unlink(missing_ok=True)
        removed += 1
    return removed


@contextmanager
def atomic_file(path: str | os.PathLike, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (an empty file, hidden: ``.NAME.XXXX.tmp``).

    When the block ends normally the temporary file replaces ``path`` in one rename, with the
    permissions of a newly created file (``0o666`` less the umask); when it raises the
    temporary file is deleted and ``path`` is left as it was. (:class:`AtomicFile` is the
    same without the ``with`` block.)

    Args:
        path: the final file; its directory must exist.
        fsync: also flush the file and its directory to disk (survives a power cut).
    """
    pending = AtomicFile(path, fsync=fsync)
    try:
        yield pending.tmp
    except BaseException:
        pending.abort()
        raise
    pending.commit()


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
