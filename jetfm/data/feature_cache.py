"""A flat columnar cache of a training set's processed features.

Reading ROOT files and computing normalised features costs a pass over the data; pre-training
reads the same set for many epochs (and runs that continue one another read it again). The
cache holds what :class:`~jetfm.data.datasets.JetDataset` computes — every feature group as one
``(particles, F)`` float32 array, jets concatenated, plus the particle count per jet — in one
``features.safetensors`` file beside a ``manifest.json`` that records what it was made from:
the input files (path, size, modification time), the processor (settings and statistics) and
the jetfm version. It is reused only while all of these are unchanged, rebuilt (with a log
line saying why) otherwise or when its file is unreadable (a copy cut short, a full disk:
the cache is derived data), and written atomically (a temporary sibling folder, then renames),
so an interrupted build never leaves a cache that looks complete.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from jetfm.atomic import atomic_folder
from jetfm.data.reading import PathsLike, expand_paths
from jetfm.errors import DataError
from jetfm.version import __version__

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1
FEATURES_FILE = "features.safetensors"
MANIFEST_FILE = "manifest.json"
COUNTS_KEY = "counts"


@dataclass
class CachedFeatures:
    """Processed features of a training set.

    Attributes:
        flat: ``{group: (particles, F)}`` float32, the jets' particles concatenated.
        counts: ``(jets,)`` int64 particles per jet.
        folder: the cache folder.
        reused: True when an up-to-date cache was read, False when it was (re)built.
    """

    flat: dict[str, np.ndarray]
    counts: np.ndarray
    folder: Path
    reused: bool

    @property
    def num_jets(self) -> int:
        return len(self.counts)

    def flat_arrays(self) -> tuple[dict[str, np.ndarray], np.ndarray, None]:
        """``(flat, counts, None)``, like :meth:`JetDataset.flat_arrays` (no labels)."""
        return dict(self.flat), self.counts, None

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.flat.values()) + self.counts.nbytes


def fingerprint(paths: PathsLike, processor: Any) -> dict[str, Any]:
    """What a cache is made from: files (resolved path, size, mtime), processor, version."""
    files = []
    for path in expand_paths(paths):
        stat = path.stat()
        files.append(
            {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        )
    record = {
        "format": CACHE_FORMAT,
        "jetfm_version": __version__,
        "files": files,
        "processor": processor.to_dict(),
    }
    return json.loads(json.dumps(record, sort_keys=True, default=str))  # as read back


def _stale_reason(manifest: dict[str, Any], expected: dict[str, Any]) -> str | None:
    for key, what in (
        ("format", "cache format"),
        ("jetfm_version", "jetfm version"),
        ("files", "input files"),
        ("processor", "processor settings or statistics"),
    ):
        if manifest.get(key) != expected[key]:
            return f"the {what} changed"
    return None


def _read(folder: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    arrays = load_file(str(folder / FEATURES_FILE))
    counts = arrays.pop(COUNTS_KEY)
    return arrays, counts


def _write(folder: Path, flat: dict[str, np.ndarray], counts: np.ndarray, record: dict) -> None:
    """Write the cache into a staging folder beside ``folder``, then swap it into place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with atomic_folder(folder) as stage:
        arrays = {g: np.ascontiguousarray(a, dtype=np.float32) for g, a in flat.items()}
        arrays[COUNTS_KEY] = np.ascontiguousarray(counts, dtype=np.int64)
        save_file(arrays, str(stage / FEATURES_FILE))
        summary = {"jets": int(len(counts)), "particles": int(counts.sum())}
        (stage / MANIFEST_FILE).write_text(json.dumps({**record, **summary}, indent=1) + "\n")


def cached_features(paths: PathsLike, processor: Any, folder: str | os.PathLike) -> CachedFeatures:
    """The processed features of ``paths`` from the cache in ``folder``, built if missing or
    stale (see the module docstring).

    Args:
        paths: the training files (path, glob, directory or list).
        processor: a fitted :class:`~jetfm.data.processor.JetProcessor`.
        folder: the cache folder (created; replaced atomically when rebuilt).
    """
    from jetfm.data.datasets import JetDataset

    folder = Path(folder)
    expected = fingerprint(paths, processor)
    manifest_path = folder / MANIFEST_FILE
    if manifest_path.is_file() and (folder / FEATURES_FILE).is_file():
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            manifest, reason = {}, f"its manifest is unreadable ({err})"
        else:
            reason = _stale_reason(manifest, expected)
        if reason is None:
            try:
                flat, counts = _read(folder)
            except Exception as err:  # truncated or damaged (a full disk, a copy cut short)
                reason = f"{FEATURES_FILE} is unreadable ({type(err).__name__}: {err})"
            else:
                logger.info("feature cache %s: %d jets, up to date", folder, len(counts))
                return CachedFeatures(flat, counts, folder, reused=True)
        logger.warning("feature cache %s is stale (%s): rebuilding it", folder, reason)
    elif folder.exists() and any(folder.iterdir()):
        raise DataError(
            f"{folder} exists but is not a jetfm feature cache (no {MANIFEST_FILE} and "
            f"{FEATURES_FILE}); choose another cache folder"
        )
    dataset = JetDataset(paths, processor, targets=())
    flat, counts, _ = dataset.flat_arrays()
    _write(folder, flat, counts, expected)
    logger.info("feature cache %s: wrote %d jets", folder, len(counts))
    return CachedFeatures(
        {g: np.asarray(a, np.float32) for g, a in flat.items()},
        np.asarray(counts, np.int64),
        folder,
        reused=False,
    )


__all__ = ["CachedFeatures", "cached_features", "fingerprint"]
