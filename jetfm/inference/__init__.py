"""Running a fine-tuned jetfm model over whole datasets: ``jetfm predict`` and its Python API.

Two entry points::

    from jetfm.inference import predict, predict_files

    scores = predict("runs/tagger", "test/*.root")       # awkward Array, one record per entry
    summary = predict_files("runs/tagger", "test/*.root", "predictions/")

:func:`predict_files` streams every input file in chunks (memory is bounded by the chunk, not
the file), runs the model under ``torch.inference_mode()`` (or ONNX Runtime) and writes, per
input file, a ROOT file of the same name in the output directory with **the same entries in
the same order**:

* jet tagging: ``score_<label>`` (softmax probabilities) per jet;
* track identification: jagged ``part_prob_<origin>`` and ``part_pred_origin``;
* vertex finding: jagged ``part_pred_vtx`` (vertex index within the jet).

Per-particle outputs are aligned with the input's particles in their *original* order (the
model sees them sorted by pT and truncated to ``max_particles``; the predictions are mapped
back). Particles the model did not evaluate — beyond ``max_particles``, neutrals for the
track tasks (charge 0, the ``part_origin``/``part_vtx`` convention), jets that could not be
processed — get NaN probabilities and index −1. Invalid jets (0 constituents, NaN/inf inputs)
get NaN scores at exactly their entry, never a shift; they are counted in the summary.

Outputs are written under a temporary name in the output directory and renamed on success,
so a file with its final name is always complete; a restarted run skips the files already
done. Inference batches are bucketed by particle count (jets sorted by multiplicity within
each chunk, then unsorted), so the cost follows the real constituents rather than
``max_particles`` padded slots.

The package's modules, one job each: :mod:`~jetfm.inference.chunks` (input chunks and the
particle-order mapping), :mod:`~jetfm.inference.predictor` (the model over a chunk),
:mod:`~jetfm.inference.writers` (the output files); input files are planned by
:mod:`jetfm.data.input_plan`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import torch

from jetfm.data.input_plan import plan_inputs, work_units
from jetfm.data.processor import JetProcessor
from jetfm.data.reading import PathsLike
from jetfm.errors import JetFMError
from jetfm.inference.chunks import PreparedChunk, iter_arrays, iter_prepared
from jetfm.inference.predictor import Predictor, chunk_outputs, make_predictor
from jetfm.inference.writers import PartialOutput, open_output, output_paths, remove_stale_partials

logger = logging.getLogger(__name__)


class _Tally:
    def __init__(self) -> None:
        self.jets = self.empty = self.nonfinite = self.truncated_jets = 0

    def add(self, prepared: PreparedChunk) -> None:
        chunk = prepared.chunk
        skipped = chunk.skipped
        self.jets += len(chunk)
        self.empty += skipped["empty"]
        self.nonfinite += skipped["nonfinite"]
        self.truncated_jets += int(np.count_nonzero(chunk.n_truncated[chunk.valid]))


def predict_files(
    model: Any,
    paths: PathsLike,
    out_dir: str | os.PathLike,
    processor: JetProcessor | str | os.PathLike | None = None,
    *,
    batch_size: int = 256,
    workers: int = 0,
    onnx: bool | str | os.PathLike = False,
    copy_branches: str | Sequence[str] | None = None,
    max_particles: int | None = None,
    step_size: int = 10_000,
    device: str | torch.device | None = None,
    bucket: bool = True,
    vertex_threshold: float = 0.5,
    overwrite: bool = False,
    progress: bool = True,
    on_chunk: Callable[[str, int, int], None] | None = None,
    mapping: Any = None,
) -> dict[str, Any]:
    """Predict every input file into ``out_dir/<same name>`` (same tree, same entry order).

    Args:
        model: model directory, Hub name, head instance or :class:`Predictor` (used as it
            is: its own batch size, bucketing and backend apply).
        paths: files, globs or directories (DataError naming a pattern that matches nothing).
        out_dir: output directory (created).
        processor: default: the model directory's.
        batch_size: jets per forward pass.
        workers: DataLoader worker processes reading and computing features ahead of the
            model (0: in the main process).
        onnx: run with ONNX Runtime (see :func:`make_predictor`).
        copy_branches: ``"all"``, ``None``/``"none"`` or a list of input branches written
            alongside the predictions, so the output is self-contained.
        max_particles: override the processor's.
        step_size: entries read per chunk (bounds memory).
        bucket: bucket batches by particle count (``False``: pad to ``max_particles``).
        overwrite: redo files whose output exists (default: skip them, so a restarted run
            continues where it stopped).
        progress: tqdm progress bar with jets/s.
        on_chunk: called as ``on_chunk(path, entries_done, entries_total)`` after each chunk
            is written (progress reporting; tests use it to interrupt a run).
        mapping: a :class:`~jetfm.data.BranchMapping` for inputs laid out differently from
            the model's training files (default: the processor's).

    Returns:
        Summary: ``files`` (predicted now), ``files_skipped`` (already done), ``jets``,
        ``skipped_empty``, ``skipped_nonfinite``, ``truncated_jets``, ``wall_s``,
        ``jets_per_s`` and ``outputs`` (paths).
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    predictor = make_predictor(
        model, processor, batch_size=batch_size, max_particles=max_particles, onnx=onnx,
        device=device, bucket=bucket, vertex_threshold=vertex_threshold, mapping=mapping,
    )  # fmt: skip
    if step_size < 1:
        raise JetFMError(f"step_size must be ≥ 1; got {step_size}")
    spec = predictor.read_spec()
    files = plan_inputs(paths, spec, copy_branches, predictor.output_names)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    targets = output_paths(files, out_dir)
    todo = [f for f in files if overwrite or not targets[f.path].exists()]
    done_before = [targets[f.path] for f in files if f not in todo]
    if done_before:
        logger.info("%d of %d outputs exist already; skipping them", len(done_before), len(files))
    particle_outputs = [n for n in predictor.output_names if n.startswith("part_")]
    tally = _Tally()
    written: list[Path] = []
    current: PartialOutput | None = None
    total = sum(f.num_entries for f in todo)
    bar = tqdm(total=total, unit="jet", unit_scale=True, desc="predict", disable=not progress)
    try:
        units = work_units(todo, step_size)
        for prepared in iter_prepared(units, todo, predictor.processor, spec, workers):
            f = files[prepared.file_index]
            if current is None or current.final != targets[f.path]:
                remove_stale_partials(targets[f.path])
                group = [n for n in f.particle_group if n not in particle_outputs]
                current = open_output(targets[f.path], f, particle_outputs + group)
            current.extend(chunk_outputs(predictor, prepared))
            tally.add(prepared)
            bar.update(len(prepared.chunk))
            if on_chunk is not None:
                on_chunk(f.path, current.entries, f.num_entries)
            if current.entries == f.num_entries:
                current.commit()
                written.append(current.final)
                current = None
    except BaseException:
        if current is not None:
            current.abort()
        raise
    finally:
        bar.close()
    wall = time.perf_counter() - t0
    summary = {
        "files": len(written),
        "files_skipped": len(done_before),
        "jets": tally.jets,
        "skipped_empty": tally.empty,
        "skipped_nonfinite": tally.nonfinite,
        "truncated_jets": tally.truncated_jets,
        "wall_s": round(wall, 3),
        "jets_per_s": round(tally.jets / wall, 1) if wall > 0 else 0.0,
        "outputs": [str(p) for p in written],
    }
    if tally.empty or tally.nonfinite:
        logger.warning(
            "predict: %d jets with 0 constituents and %d with NaN/inf inputs got NaN "
            "predictions (entries kept)",
            tally.empty,
            tally.nonfinite,
        )
    logger.info(
        "predict: %d files (%d already done), %d jets in %.1f s (%.0f jets/s)",
        summary["files"],
        summary["files_skipped"],
        summary["jets"],
        wall,
        summary["jets_per_s"],
    )
    return summary


def predict(
    model: Any,
    data: PathsLike | ak.Array | Mapping[str, Any],
    processor: JetProcessor | str | os.PathLike | None = None,
    *,
    batch_size: int = 256,
    copy_branches: str | Sequence[str] | None = None,
    max_particles: int | None = None,
    onnx: bool | str | os.PathLike = False,
    step_size: int = 10_000,
    device: str | torch.device | None = None,
    bucket: bool = True,
    vertex_threshold: float = 0.5,
    workers: int = 0,
    mapping: Any = None,
) -> ak.Array:
    """Predictions for files or in-memory arrays, one record per input entry, in order.

    Args:
        model: model directory, Hub name, head instance (``processor`` then required unless
            it was loaded from a directory) or :class:`Predictor`.
        data: files/globs/directories (entries of all files concatenated in order), or an
            awkward record array / dict of arrays keyed by branch name (e.g.
            ``tree.arrays()``).
        Other arguments as :func:`predict_files`.

    Returns:
        An awkward Array of records with the output branches (``score_<label>`` /
        ``part_prob_<origin>`` + ``part_pred_origin`` / ``part_pred_vtx``) and any copied
        branches. Invalid jets have NaN scores at their entry.
    """
    predictor = make_predictor(
        model, processor, batch_size=batch_size, max_particles=max_particles, onnx=onnx,
        device=device, bucket=bucket, vertex_threshold=vertex_threshold, mapping=mapping,
    )  # fmt: skip
    spec = predictor.read_spec()
    if isinstance(data, (ak.Array, Mapping)):
        chunks = iter_arrays(
            data, predictor.processor, spec, copy_branches, step_size, predictor.output_names
        )
    else:
        files = plan_inputs(data, spec, copy_branches, predictor.output_names)
        units = work_units(files, step_size)
        chunks = iter_prepared(units, files, predictor.processor, spec, workers)
    parts = [ak.zip(chunk_outputs(predictor, p), depth_limit=1) for p in chunks]
    return ak.concatenate(parts) if len(parts) > 1 else parts[0]


__all__ = ["Predictor", "make_predictor", "predict", "predict_files"]
