"""A labelled dataset on disk: one ROOT file per class and chunk, plus a manifest.

``generate_dataset(["QCD", "Hbb"], 10_000, "out/", seed=1, workers=4, chunk_size=5000)``
writes ``out/QCD_000.root``, ``out/QCD_001.root``, ``out/Hbb_000.root``, … and
``out/manifest.json`` (options, physics settings, seed, versions, per-file jet and event
counts). Options: the jet radius and pT/η window (:class:`~.processes.JetSelection`), the
Pythia tune and the detector (``"none"``: particle level, the default; ``"cms"``, …).

* **Reproducible:** chunk ``i`` of class ``c`` is generated from ``(seed, c, i)`` alone, so
  its content does not depend on the number of workers or on which chunks ran before.
* **Resumable:** the manifest is rewritten (atomically) after every finished chunk. A
  restarted run with the same seed and chunk size skips every chunk that the manifest
  lists with the planned jet count and whose file exists; files are renamed into place
  only when complete, so an interrupted chunk is simply redone (hidden temporary files that
  killed runs left behind are removed first).
* **Parallel:** chunks are spread over ``workers`` processes (``spawn``: no Pythia state is
  ever forked, so scripts calling this with ``workers > 1`` need the usual
  ``if __name__ == "__main__":`` guard); a tqdm bar shows jets/s and the ETA.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import json
import math
import multiprocessing as mp
import queue
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jetfm.atomic import remove_leftovers
from jetfm.errors import JetFMError
from jetfm.generation import processes, tracks
from jetfm.generation.detector import DetectorSettings, get_detector
from jetfm.generation.processes import DEFAULT_SELECTION, DEFAULT_TUNE, JetSelection
from jetfm.generation.writer import RootWriter, write_json_atomic

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class Chunk:
    """One output file: ``n_jets`` jets of ``jet_class`` from stream ``index``."""

    jet_class: str
    index: int
    n_jets: int

    @property
    def filename(self) -> str:
        return f"{self.jet_class}_{self.index:03d}.root"


def plan_chunks(classes: Sequence[str], jets_per_class: int, chunk_size: int) -> list[Chunk]:
    """All chunks, interleaved over classes so that partial runs cover every class."""
    n_chunks = math.ceil(jets_per_class / chunk_size)
    return [
        Chunk(c, i, min(chunk_size, jets_per_class - i * chunk_size))
        for i in range(n_chunks)
        for c in classes
    ]


def _detector(detector: str | DetectorSettings | None) -> DetectorSettings | None:
    return detector if isinstance(detector, DetectorSettings) else get_detector(detector)


def options_record(
    selection: JetSelection = DEFAULT_SELECTION,
    tune: int = DEFAULT_TUNE,
    detector: str | DetectorSettings | None = None,
) -> dict[str, Any]:
    """The generation options as written to the manifest (``options``)."""
    settings = _detector(detector)
    return {
        "detector": "none" if settings is None else settings.name,
        "radius": selection.radius,
        "pt_min": selection.pt_min,
        "pt_max": selection.pt_max,
        "eta_max": selection.abs_eta_max,
        "tune": int(tune),
    }


def physics_settings(
    selection: JetSelection = DEFAULT_SELECTION,
    tune: int = DEFAULT_TUNE,
    detector: str | DetectorSettings | None = None,
) -> dict[str, Any]:
    """Everything that fixes a chunk's content besides (seed, class, chunk, n_jets)."""
    settings = _detector(detector)
    r = selection.radius
    ip_d0 = tracks.D0_RES_MM if settings is None else settings.d0_res_mm
    ip_dz = tracks.DZ_RES_MM if settings is None else settings.dz_res_mm
    return {
        "ecm_gev": processes.ECM,
        "jet_algorithm": f"anti-kt R={r}",
        "jet_pt_gev": [selection.pt_min, selection.pt_max],
        "jet_abs_eta_max": selection.abs_eta_max,
        "match_dr": selection.match_dr,
        "max_particles": processes.MAX_PARTICLES,
        "softdrop": {"beta": 0.0, "z_cut": 0.1, "R0": r},
        "nsubjettiness": {"beta": 1.0, "R0": r, "measure": "normalized"},
        "impact_parameters": {
            "beam_spot_xy_mm": tracks.BEAM_SPOT_XY_MM,
            "d0_resolution_mm": list(ip_d0),
            "dz_resolution_mm": list(ip_dz),
        },
        "tune_pp": int(tune),
        "detector": None if settings is None else settings.to_dict(),
        "pythia": {
            name: [
                s
                for s in processes.pythia_settings(spec, 0, selection=selection, tune=tune)
                if not s.startswith("Random:seed")
            ]
            for name, spec in processes.PROCESSES.items()
        },
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("jetfm", "pythia8mc", "fastjet", "uproot", "awkward", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "unknown"
    return out


@dataclasses.dataclass(frozen=True)
class Options:
    """What ``jetfm generate`` lets one choose besides classes, counts and seed."""

    selection: JetSelection = DEFAULT_SELECTION
    tune: int = DEFAULT_TUNE
    detector: str | DetectorSettings | None = None


def generate_chunk(
    chunk: Chunk,
    seed: int,
    out_dir: str | Path,
    labels: tuple[str, ...] = processes.SUPPORTED_CLASSES,
    progress: Callable[[int], None] | None = None,
    options: Options = Options(),
) -> dict[str, Any]:
    """Generate and write one chunk; returns its manifest entry."""
    from jetfm.generation.pythia import JetGenerator

    start = time.perf_counter()
    gen = JetGenerator(chunk.jet_class, seed, chunk.index, labels, selection=options.selection,
                       tune=options.tune, detector=options.detector)  # fmt: skip
    with RootWriter(Path(out_dir) / chunk.filename) as writer:
        for cols in gen.batches(chunk.n_jets):
            writer.write(cols)
            if progress is not None:
                progress(len(cols["jet_pt"]))
    return {
        "class": chunk.jet_class,
        "chunk": chunk.index,
        "n_jets": writer.n_jets,
        "n_events": gen.n_events,
        "seconds": round(time.perf_counter() - start, 3),
    }


# --- worker processes ---------------------------------------------------------------------
_QUEUE: Any = None


def _init_worker(q) -> None:
    global _QUEUE
    _QUEUE = q


def _worker(
    chunk: Chunk, seed: int, out_dir: str, labels: tuple[str, ...], options: Options
) -> dict[str, Any]:
    return generate_chunk(chunk, seed, out_dir, labels, progress=_QUEUE.put, options=options)


# --- manifest ------------------------------------------------------------------------------
def _load_manifest(
    path: Path, seed: int, chunk_size: int, physics: dict[str, Any]
) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
        same = (
            manifest["seed"] == seed
            and manifest["chunk_size"] == chunk_size
            and manifest["physics"] == json.loads(json.dumps(physics))
        )
    except (ValueError, KeyError, TypeError) as err:
        raise JetFMError(f"{path}: unreadable generation manifest ({err})") from None
    if not same:
        raise JetFMError(
            f"{path}: this directory holds a dataset generated with other settings (seed "
            f"{manifest.get('seed')}, chunk size {manifest.get('chunk_size')}, options "
            f"{manifest.get('options')}); use the same --seed/--chunk-size and options to "
            "resume, or a new --out directory"
        )
    return manifest


def generate_dataset(
    classes: Sequence[str],
    jets_per_class: int,
    out_dir: str | Path,
    seed: int = 0,
    workers: int = 1,
    chunk_size: int = 10_000,
    progress: bool = True,
    *,
    selection: JetSelection = DEFAULT_SELECTION,
    tune: int = DEFAULT_TUNE,
    detector: str | DetectorSettings | None = None,
) -> dict[str, Any]:
    """Generate (or finish) a dataset; returns the manifest.

    Args:
        classes: JetClass names (see :data:`~jetfm.generation.SUPPORTED_CLASSES`).
        jets_per_class: jets per class, split into files of ``chunk_size`` jets.
        out_dir: output directory (created).
        seed: master seed; with the class and chunk index it fixes every file's content.
        workers: processes running chunks in parallel.
        progress: show a tqdm bar.
        selection: jet radius and pT/η window (default: R = 0.8, 500–1000 GeV, |η| < 2).
        tune: Pythia ``Tune:pp`` (default 14, Monash 2013: Pythia's own default).
        detector: ``None``/``"none"`` (particle level, the default), a name from
            :data:`~jetfm.generation.detector.DETECTORS` or a
            :class:`~jetfm.generation.detector.DetectorSettings`.
    """
    from jetfm.generation import require_extra

    require_extra()
    classes = list(dict.fromkeys(classes))
    for c in classes:
        processes.check_containment(processes.get_process(c), selection)
    if jets_per_class < 1 or chunk_size < 1 or workers < 1:
        raise JetFMError(
            "jets_per_class, chunk_size and workers must be positive integers "
            f"(got {jets_per_class}, {chunk_size}, {workers})"
        )
    _detector(detector)  # an unknown name or tune fails before anything is written
    tune = processes.check_tune(tune)
    options = Options(selection, tune, detector)
    physics = physics_settings(selection, tune, detector)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST
    manifest = _load_manifest(manifest_path, seed, chunk_size, physics) or {
        "format": MANIFEST_FORMAT,
        "generator": "jetfm.generation (Pythia 8 + FastJet)",
        "seed": seed,
        "chunk_size": chunk_size,
        "labels": list(processes.SUPPORTED_CLASSES),
        "options": options_record(selection, tune, detector),
        "physics": physics,
        "files": {},
    }
    manifest.update(classes=classes, jets_per_class=jets_per_class, versions=_versions())

    chunks = plan_chunks(classes, jets_per_class, chunk_size)
    files = manifest["files"]
    todo = [
        c
        for c in chunks
        if not (files.get(c.filename, {}).get("n_jets") == c.n_jets and (out / c.filename).exists())
    ]

    for c in chunks:  # the temporary files killed runs left can never complete
        remove_leftovers(out / c.filename)

    def finish(entry: dict[str, Any]) -> None:
        files[f"{entry['class']}_{entry['chunk']:03d}.root"] = entry
        manifest["files"] = dict(sorted(files.items()))
        manifest["counts"] = _counts(files, classes)
        write_json_atomic(manifest_path, manifest)

    manifest["counts"] = _counts(files, classes)
    write_json_atomic(manifest_path, manifest)

    from tqdm.auto import tqdm

    labels = processes.SUPPORTED_CLASSES
    bar = tqdm(total=sum(c.n_jets for c in todo), unit="jet", disable=not progress,
               desc="generating", smoothing=0.1)  # fmt: skip
    with bar:
        if workers == 1 or len(todo) <= 1:
            for c in todo:
                finish(generate_chunk(c, seed, out, labels, bar.update, options))
        else:
            _run_parallel(todo, seed, out, labels, options, min(workers, len(todo)), bar, finish)
    return manifest


def _run_parallel(todo, seed, out, labels, options, workers, bar, finish) -> None:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    pool = cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                  initargs=(q,))  # fmt: skip
    try:
        pending = {pool.submit(_worker, c, seed, str(out), labels, options) for c in todo}
        while pending:
            done, pending = cf.wait(pending, timeout=0.5, return_when=cf.FIRST_COMPLETED)
            _drain(q, bar)
            for fut in done:
                finish(fut.result())
    except BaseException:
        # Ctrl-C or a failed chunk: drop queued chunks (finished ones are in the manifest)
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    _drain(q, bar)  # workers have exited: their queue feeders are flushed


def _drain(q, bar) -> None:
    while True:
        try:
            bar.update(q.get_nowait())
        except queue.Empty:
            return


def _counts(files: dict[str, Any], classes: Sequence[str]) -> dict[str, int]:
    counts = dict.fromkeys(classes, 0)
    for entry in files.values():
        counts[entry["class"]] = counts.get(entry["class"], 0) + entry["n_jets"]
    return counts
