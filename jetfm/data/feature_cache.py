"""A flat columnar cache of a training set's processed features.

Reading ROOT files and computing normalised features costs a pass over the data; pre-training
reads the same set for many epochs (and runs that continue one another read it again). The
cache holds what :class:`~jetfm.data.datasets.JetDataset` computes — every feature group as one
``(particles, F)`` float32 array, jets concatenated, plus the particle count per jet and the
truth targets asked for (per particle: ``track_labels``, ``vertex_labels``; per jet:
``labels``, ``parton_labels``; int64) — in one ``features.safetensors`` file beside a
``manifest.json`` that records what it was made from: the input files (path, size,
modification time), the processor (settings and statistics), the targets and the jetfm
version. It is reused only while all of these are unchanged, rebuilt (with a log
line saying why) otherwise or when its file is unreadable (a copy cut short, a full disk:
the cache is derived data), and written atomically (a temporary sibling folder, then renames),
so an interrupted build never leaves a cache that looks complete.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Sequence
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

CACHE_FORMAT = 2
FEATURES_FILE = "features.safetensors"
MANIFEST_FILE = "manifest.json"
COUNTS_KEY = "counts"
#: key prefixes of the targets in the safetensors file
PARTICLE_TARGET_PREFIX = "target."
JET_TARGET_PREFIX = "jet."


@dataclass
class CachedFeatures:
    """Processed features of a training set.

    Attributes:
        flat: ``{group: (particles, F)}`` float32, the jets' particles concatenated.
        counts: ``(jets,)`` int64 particles per jet.
        folder: the cache folder.
        reused: True when an up-to-date cache was read, False when it was (re)built.
        targets: ``{per-particle target: (particles,)}`` int64, jets concatenated like
            ``flat``, :data:`~jetfm.data.schema.IGNORE_INDEX` on neutrals.
        jet_targets: ``{per-jet target: (jets,)}`` int64.
    """

    flat: dict[str, np.ndarray]
    counts: np.ndarray
    folder: Path
    reused: bool
    targets: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    jet_targets: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    @property
    def num_jets(self) -> int:
        return len(self.counts)

    def flat_arrays(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray | None]:
        """``(flat features and per-particle targets, counts, labels)``, like
        :meth:`JetDataset.flat_arrays`."""
        return {**self.flat, **self.targets}, self.counts, self.jet_targets.get("labels")

    def jet_arrays(self) -> dict[str, np.ndarray]:
        """The per-jet targets, like :meth:`JetDataset.jet_arrays`."""
        return dict(self.jet_targets)

    @property
    def nbytes(self) -> int:
        arrays = [*self.flat.values(), *self.targets.values(), *self.jet_targets.values()]
        return sum(a.nbytes for a in arrays) + self.counts.nbytes


def fingerprint(paths: PathsLike, processor: Any, targets: Sequence[str] = ()) -> dict[str, Any]:
    """What a cache is made from: files (resolved path, size, mtime), processor, targets,
    version."""
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
        "targets": list(targets),
    }
    return json.loads(json.dumps(record, sort_keys=True, default=str))  # as read back


def _stale_reason(manifest: dict[str, Any], expected: dict[str, Any]) -> str | None:
    for key, what in (
        ("format", "cache format"),
        ("jetfm_version", "jetfm version"),
        ("files", "input files"),
        ("processor", "processor settings or statistics"),
        ("targets", "truth targets"),
    ):
        if manifest.get(key) != expected[key]:
            return f"the {what} changed"
    return None


def _split(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) :]: arrays.pop(k) for k in list(arrays) if k.startswith(prefix)}


def _read(folder: Path) -> CachedFeatures:
    arrays = load_file(str(folder / FEATURES_FILE))
    counts = arrays.pop(COUNTS_KEY)
    targets = _split(arrays, PARTICLE_TARGET_PREFIX)
    jet_targets = _split(arrays, JET_TARGET_PREFIX)
    return CachedFeatures(arrays, counts, folder, True, targets, jet_targets)


def _write(
    folder: Path,
    flat: dict[str, np.ndarray],
    counts: np.ndarray,
    record: dict,
    targets: dict[str, np.ndarray],
    jet_targets: dict[str, np.ndarray],
) -> None:
    """Write the cache into a staging folder beside ``folder``, then swap it into place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with atomic_folder(folder) as stage:
        arrays = {g: np.ascontiguousarray(a, dtype=np.float32) for g, a in flat.items()}
        for prefix, values in ((PARTICLE_TARGET_PREFIX, targets), (JET_TARGET_PREFIX, jet_targets)):
            for name, a in values.items():
                arrays[prefix + name] = np.ascontiguousarray(a, dtype=np.int64)
        arrays[COUNTS_KEY] = np.ascontiguousarray(counts, dtype=np.int64)
        save_file(arrays, str(stage / FEATURES_FILE))
        summary = {"jets": int(len(counts)), "particles": int(counts.sum())}
        (stage / MANIFEST_FILE).write_text(json.dumps({**record, **summary}, indent=1) + "\n")


def cached_features(
    paths: PathsLike, processor: Any, folder: str | os.PathLike, targets: Sequence[str] = ()
) -> CachedFeatures:
    """The processed features of ``paths`` from the cache in ``folder``, built if missing or
    stale (see the module docstring).

    Args:
        paths: the training files (path, glob, directory or list).
        processor: a fitted :class:`~jetfm.data.processor.JetProcessor`.
        folder: the cache folder (created; replaced atomically when rebuilt).
        targets: truth targets to hold beside the features (any of
            :data:`~jetfm.data.reading.TARGETS`); another set rebuilds the cache.
    """
    from jetfm.data.datasets import JetDataset
    from jetfm.data.reading import TARGETS

    folder = Path(folder)
    targets = tuple(t for t in TARGETS if t in targets)
    expected = fingerprint(paths, processor, targets)
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
                cached = _read(folder)
            except Exception as err:  # truncated or damaged (a full disk, a copy cut short)
                reason = f"{FEATURES_FILE} is unreadable ({type(err).__name__}: {err})"
            else:
                logger.info("feature cache %s: %d jets, up to date", folder, cached.num_jets)
                return cached
        logger.warning("feature cache %s is stale (%s): rebuilding it", folder, reason)
    elif folder.exists() and any(folder.iterdir()):
        raise DataError(
            f"{folder} exists but is not a jetfm feature cache (no {MANIFEST_FILE} and "
            f"{FEATURES_FILE}); choose another cache folder"
        )
    dataset = JetDataset(paths, processor, targets=targets)
    flat, counts, _ = dataset.flat_arrays()
    particle_targets = {t: flat.pop(t) for t in targets if t in flat}
    jet_targets = dataset.jet_arrays()
    _write(folder, flat, counts, expected, particle_targets, jet_targets)
    logger.info("feature cache %s: wrote %d jets", folder, len(counts))
    return CachedFeatures(
        {g: np.asarray(a, np.float32) for g, a in flat.items()},
        np.asarray(counts, np.int64),
        folder,
        reused=False,
        targets={t: np.asarray(a, np.int64) for t, a in particle_targets.items()},
        jet_targets={t: np.asarray(a, np.int64) for t, a in jet_targets.items()},
    )


__all__ = ["CachedFeatures", "cached_features", "fingerprint"]
