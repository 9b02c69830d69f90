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
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import torch

from jetfm.data.features import FeatureChunk
from jetfm.data.formats import is_table
from jetfm.data.processor import JetProcessor
from jetfm.data.reading import (
    PathsLike,
    RawChunk,
    ReadSpec,
    TreeReader,
    WorkUnit,
    expand_paths,
    plan_branches,
    read_unit,
    validate_arrays,
)
from jetfm.data.schema import TRACK_ORIGINS
from jetfm.errors import CheckpointError, DataError, JetFMError

logger = logging.getLogger(__name__)

#: head class name (``config.architectures``) → task name
TASK_OF_HEAD: dict[str, str] = {
    "JetFMForJetTagging": "tagging",
    "JetFMForTrackID": "track_id",
    "JetFMForVertexFinding": "vertexing",
}
TASKS: tuple[str, ...] = ("tagging", "track_id", "vertexing")
#: name of an ONNX export inside a model directory, used by ``--onnx`` when present
ONNX_FILE = "model.onnx"
#: working memory allowed for the vertex head's ``(B, N, N, ·)`` pair tensors per batch
VERTEX_PAIR_BUDGET_BYTES = 1 << 30
PARTIAL_SUFFIX = ".partial"


# --- names ---------------------------------------------------------------------------------------
def branch_safe(name: str) -> str:
    """A label / origin name as a ROOT-branch-friendly suffix (``b->c`` → ``b_to_c``)."""
    return re.sub(r"[^0-9A-Za-z_]", "_", str(name).replace("->", "_to_"))


def output_branches(task: str, label_names: Sequence[str] = ()) -> list[str]:
    """Names of the prediction branches a task writes (per jet or jagged per particle)."""
    if task == "tagging":
        return [f"score_{branch_safe(n)}" for n in label_names]
    if task == "track_id":
        return [f"part_prob_{branch_safe(o)}" for o in TRACK_ORIGINS] + ["part_pred_origin"]
    if task == "vertexing":
        return ["part_pred_vtx"]
    raise JetFMError(f"unknown task {task!r}; choose from {list(TASKS)}")


# --- loading -------------------------------------------------------------------------------------
def _head_classes() -> dict[str, type]:
    from jetfm.modeling.heads import JetFMForJetTagging, JetFMForTrackID, JetFMForVertexFinding

    return {c.__name__: c for c in (JetFMForJetTagging, JetFMForTrackID, JetFMForVertexFinding)}


def task_of(model: Any) -> str:
    """``tagging`` / ``track_id`` / ``vertexing`` for a head instance; JetFMError otherwise."""
    for cls in type(model).__mro__:
        if cls.__name__ in TASK_OF_HEAD:
            return TASK_OF_HEAD[cls.__name__]
    raise JetFMError(
        f"{type(model).__name__} is not a fine-tuned task head; predict needs a "
        f"{' / '.join(TASK_OF_HEAD)} model"
    )


def load_model(name_or_path: str | os.PathLike, device: str | torch.device | None = None) -> Any:
    """A fine-tuned head from a folder, Hub repo id or known name, in eval mode on ``device``.

    The folder is found by :func:`jetfm.hub.resolve_pretrained` (local folder, Hugging Face
    cache, Hub, shipped copy); the head class comes from ``config.json`` (``architectures``);
    weights only from safetensors. Raises CheckpointError naming the model when it cannot be
    found, is not a jetfm checkpoint, holds a non-task model (e.g. a pre-training checkpoint)
    or its weights do not fit the architecture.
    """
    from jetfm.configuration import JetFMConfig
    from jetfm.hub import resolve_pretrained

    path = os.fspath(name_or_path)
    root = resolve_pretrained(path, required=("config.json", "preprocessor_config.json"))
    if not (root / "config.json").is_file():
        raise CheckpointError(f"model directory {path!r} has no config.json (not a checkpoint)")
    try:
        config = JetFMConfig.from_pretrained(str(root))
    except (OSError, ValueError) as err:
        raise CheckpointError(f"model {path!r}: config.json is not a jetfm config: {err}") from err
    arch = list(getattr(config, "architectures", None) or [])
    classes = _head_classes()
    name = next((a for a in arch if a in classes), None)
    if name is None:
        raise CheckpointError(
            f"model {path!r} is a {arch or 'backbone'} checkpoint, not a fine-tuned task head; "
            f"predict needs one of {list(classes)} (fine-tune it first)"
        )
    try:
        model = classes[name].from_pretrained(str(root), config=config, use_safetensors=True)
    except (OSError, ValueError, RuntimeError) as err:
        first = (str(err).strip().splitlines() or [""])[0]
        raise CheckpointError(
            f"cannot load the weights of model {path!r} into {name} ({type(err).__name__}: "
            f"{first}); was it saved by a different jetfm version?"
        ) from err
    model.config._name_or_path = str(root)  # where make_predictor finds the processor
    return model.to(_device(device)).eval()


def load_processor(name_or_path: str | os.PathLike) -> JetProcessor:
    """The model's :class:`~jetfm.data.processor.JetProcessor` (``preprocessor_config.json``)."""
    path = os.fspath(name_or_path)
    try:
        processor = JetProcessor.from_pretrained(path)
    except OSError as err:
        raise CheckpointError(
            f"model {path!r} has no preprocessor_config.json (the processor with the "
            "normalisation statistics the model was trained with); save it with "
            "processor.save_pretrained(model_dir) or pass processor=..."
        ) from err
    if not processor.is_fitted:
        raise CheckpointError(f"the processor of model {path!r} has no normalisation statistics")
    return processor


def _device(device: str | torch.device | None) -> torch.device:
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# --- the predictor -------------------------------------------------------------------------------
def _label_names(model_config: Any, processor: JetProcessor) -> tuple[str, ...]:
    """Class names: the model's ``id2label`` when set by fine-tuning, else the processor's."""
    n = int(model_config.num_labels)
    id2label = {int(k): str(v) for k, v in (model_config.id2label or {}).items()}
    names = [id2label.get(i, f"LABEL_{i}") for i in range(n)]
    if all(name == f"LABEL_{i}" for i, name in enumerate(names)):
        if processor.label_names and len(processor.label_names) == n:
            return tuple(processor.label_names)
        logger.warning("the model has no class names (id2label); writing score_LABEL_<i>")
    return tuple(names)


class Predictor:
    """A fine-tuned head (torch, or an ONNX Runtime session of its export) with its processor.

    Calling :meth:`predict_chunk` on a :class:`~jetfm.data.features.FeatureChunk` returns
    entry-aligned predictions in the chunk's (pT-sorted, padded) particle layout.

    Args:
        model: the head (``JetFMForJetTagging`` / ``JetFMForTrackID`` /
            ``JetFMForVertexFinding``), used for its config and, without ``onnx_path``, to run.
        processor: fitted processor (normalisation, branch mapping, ``max_particles``).
        batch_size: jets per forward pass (fewer for the vertex head when its pair tensors
            would exceed :data:`VERTEX_PAIR_BUDGET_BYTES`).
        bucket: sort jets by particle count and pad each batch to its longest jet (default);
            ``False`` pads every batch to ``max_particles`` in entry order (the baseline).
        onnx_path: run this ONNX export with ONNX Runtime instead of torch.
        device: torch device (default CUDA when available).
        vertex_threshold: same-vertex probability above which two tracks are linked.
    """

    def __init__(
        self,
        model: Any,
        processor: JetProcessor,
        *,
        batch_size: int = 256,
        bucket: bool = True,
        onnx_path: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        vertex_threshold: float = 0.5,
    ):
        if batch_size < 1:
            raise JetFMError(f"batch_size must be ≥ 1; got {batch_size}")
        if not processor.is_fitted:
            raise JetFMError(
                "the processor has no normalisation statistics; load the model's own with "
                "JetProcessor.from_pretrained(model_dir)"
            )
        self.task = task_of(model)
        self.model = model.eval()
        self.config = model.config
        self.processor = processor
        self.batch_size = int(batch_size)
        self.bucket = bool(bucket)
        self.vertex_threshold = float(vertex_threshold)
        self.device = next(model.parameters()).device if device is None else _device(device)
        if device is not None:
            self.model.to(self.device)
        from jetfm.evaluation import input_groups

        try:  # the groups the head was fine-tuned on (config.input_feature_groups)
            wanted = input_groups(model, processor)
        except CheckpointError as err:
            raise JetFMError(f"model and processor do not match: {err}") from err
        self.feature_groups = tuple(g for g in processor.feature_groups if g in wanted)
        self.label_names = _label_names(self.config, processor) if self.task == "tagging" else ()
        self.session = None
        if onnx_path is not None:
            self.session = _onnx_session(onnx_path, self.device)
            self.onnx_inputs = [i.name for i in self.session.get_inputs()]
        if self.task == "vertexing":
            from jetfm.modeling.heads import _head_hidden

            width = _head_hidden(self.config) or self.config.hidden_size
            # pair features [|zi−zj|, zi·zj] (2h) plus the scorer's hidden layer (h) and
            # temporaries: ~4h floats per pair
            self.max_pairs = max(1, VERTEX_PAIR_BUDGET_BYTES // (16 * width))

    # reading settings --------------------------------------------------------------------
    def read_spec(self) -> ReadSpec:
        """What to read: the model's groups; NaN/inf jets are marked invalid, never raised."""
        spec = self.processor.read_spec((), self.feature_groups)
        return dataclasses.replace(spec, nan_policy="skip")

    @property
    def max_particles(self) -> int:
        return self.processor.max_particles

    @property
    def output_names(self) -> list[str]:
        return output_branches(self.task, self.label_names)

    # batching ------------------------------------------------------------------------------
    def _batches(self, rows: np.ndarray, counts: np.ndarray) -> Iterator[np.ndarray]:
        """Consecutive slices of ``rows`` (pair-budget-limited for the vertex head)."""
        start = 0
        while start < len(rows):
            size = self.batch_size
            if self.task == "vertexing":
                stop = min(start + size, len(rows))
                width = int(counts[rows[start:stop]].max()) if self.bucket else self.max_particles
                size = max(1, min(size, self.max_pairs // max(width, 1) ** 2))
            yield rows[start : start + size]
            start += size

    def _batch(self, chunk: FeatureChunk, idx: np.ndarray) -> dict[str, np.ndarray]:
        counts = chunk.counts[idx]
        width = int(counts.max()) if self.bucket else self.max_particles
        batch = {}
        for g in self.feature_groups:
            x = chunk.features[g][idx, :width]
            if x.shape[1] < width:  # fixed-width padding (the non-bucketed baseline)
                x = np.pad(x, ((0, 0), (0, width - x.shape[1]), (0, 0)))
            batch[g] = np.ascontiguousarray(x, dtype=np.float32)
        batch["mask"] = np.arange(width)[None, :] < counts[:, None]
        return batch

    def _logits(self, batch: dict[str, np.ndarray]) -> torch.Tensor:
        if self.session is not None:
            feeds = {k: batch[k] for k in self.onnx_inputs}
            return torch.from_numpy(self.session.run(None, feeds)[0])
        tensors = {k: torch.from_numpy(v).to(self.device) for k, v in batch.items()}
        return self.model(**tensors).logits

    # running -------------------------------------------------------------------------------
    @torch.inference_mode()
    def predict_chunk(self, chunk: FeatureChunk) -> dict[str, np.ndarray]:
        """Predictions for every jet of the chunk, in entry order.

        Returns ``{"scores": (n, C)}`` for tagging, ``{"probs": (n, P, 6), "pred": (n, P)}``
        for track ID and ``{"pred": (n, P)}`` for vertexing, in the chunk's pT-sorted particle
        layout (``P`` = the chunk's width). Invalid jets and non-evaluated particles hold NaN /
        −1.
        """
        n = len(chunk)
        width = chunk.mask.shape[1] if n else 0
        if self.task == "tagging":
            out = {"scores": np.full((n, len(self.label_names)), np.nan, np.float32)}
        elif self.task == "track_id":
            out = {
                "probs": np.full((n, width, len(TRACK_ORIGINS)), np.nan, np.float32),
                "pred": np.full((n, width), -1, np.int64),
            }
        else:
            out = {"pred": np.full((n, width), -1, np.int64)}
        rows = np.flatnonzero(chunk.valid)
        if self.bucket:  # cost follows the real constituents: similar lengths batched together
            rows = rows[np.argsort(chunk.counts[rows], kind="stable")]
        for idx in self._batches(rows, chunk.counts):
            batch = self._batch(chunk, idx)
            logits = self._logits(batch)
            w = min(batch["mask"].shape[1], width)
            tracks = batch["mask"]
            if "pid" in batch:  # the track tasks evaluate charged particles only
                tracks = tracks & (batch["pid"][..., 0] != 0)
            if self.task == "tagging":
                out["scores"][idx] = logits.float().softmax(-1).cpu().numpy()
            elif self.task == "track_id":
                probs = logits.float().softmax(-1).cpu().numpy()[:, :w]
                keep = tracks[:, :w]
                out["probs"][idx, :w] = np.where(keep[..., None], probs, np.nan)
                out["pred"][idx, :w] = np.where(keep, probs.argmax(-1), -1)
            else:
                from jetfm.modeling.vertexing import group_vertices

                pred = group_vertices(logits, torch.from_numpy(tracks), self.vertex_threshold)
                out["pred"][idx, :w] = pred[:, :w]
        return out


# --- ONNX ----------------------------------------------------------------------------------------
def _onnx_session(path: str | os.PathLike, device: torch.device) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as err:
        from jetfm.errors import MissingExtraError

        raise MissingExtraError("onnx", "running the model with ONNX Runtime") from err
    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(os.fspath(path), options, providers=providers)
    except Exception as err:  # onnxruntime raises its own exception types
        raise CheckpointError(f"cannot load the ONNX model {os.fspath(path)!r}: {err}") from err


# --- chunks --------------------------------------------------------------------------------------
@dataclasses.dataclass
class PreparedChunk:
    """One chunk ready for the model: normalised features plus what maps outputs back.

    ``original_index`` gives, for every particle the model sees (row-major over the chunk's
    ``(jet, slot)`` layout where ``mask`` is True), its position in the chunk's flattened
    *input* particle arrays; ``counts_all`` are the input particle counts per jet.
    """

    chunk: FeatureChunk
    original_index: np.ndarray
    counts_all: np.ndarray
    copied: dict[str, Any]
    path: str
    file_index: int
    entry_start: int


def prepare(
    raw: RawChunk, processor: JetProcessor, spec: ReadSpec, copied: dict[str, Any] | None = None
) -> PreparedChunk:
    """Features of a validated chunk, plus the sorted → original particle mapping."""
    chunk = processor.process(raw, spec, normalise=True)
    counts_all = chunk.counts + chunk.n_truncated
    starts = np.cumsum(counts_all) - counts_all
    original = np.repeat(starts, chunk.counts) + chunk.particle_order
    return PreparedChunk(
        chunk, original, counts_all, copied or {}, raw.source, raw.file_index, raw.entry_start
    )


def _to_original(
    padded: np.ndarray, prepared: PreparedChunk, fill: float | int, dtype: Any
) -> ak.Array:
    """Padded sorted-layout per-particle values → jagged array in the input particle order."""
    chunk = prepared.chunk
    total = int(prepared.counts_all.sum())
    flat = np.full((total,) + padded.shape[2:], fill, dtype=dtype)
    if len(chunk) and padded.shape[1]:
        flat[prepared.original_index] = padded[chunk.mask]
    return ak.unflatten(flat, prepared.counts_all)


def chunk_outputs(predictor: Predictor, prepared: PreparedChunk) -> dict[str, Any]:
    """Entry-aligned output columns of one chunk: predictions, then the copied branches."""
    result = predictor.predict_chunk(prepared.chunk)
    out: dict[str, Any] = {}
    if predictor.task == "tagging":
        for j, name in enumerate(predictor.output_names):
            out[name] = result["scores"][:, j]
    elif predictor.task == "track_id":
        probs = _to_original(result["probs"], prepared, np.nan, np.float32)
        for j, name in enumerate(predictor.output_names[:-1]):
            out[name] = probs[:, :, j]
        out["part_pred_origin"] = _to_original(result["pred"], prepared, -1, np.int32)
    else:
        out["part_pred_vtx"] = _to_original(result["pred"], prepared, -1, np.int32)
    for name, values in prepared.copied.items():
        if name in out:
            continue  # a prediction branch of the same name wins (warned at planning)
        out[name] = values
    return out


# --- planning the input files --------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class InputFile:
    """One input file: its entries, output name and the branches copied through."""

    path: str
    file_index: int
    num_entries: int
    tree: str
    copy: tuple[str, ...]
    #: copied jagged ``part_*`` branches sharing the particle counter (written with it)
    particle_group: tuple[str, ...]
    #: ``root``, ``parquet`` or ``hdf5``: the output is written in the same format
    format: str = "root"
    #: particle slots per jet of a padded input (per-particle outputs of HDF5 are padded too)
    width: int | None = None


@dataclasses.dataclass(frozen=True)
class Unit:
    file: InputFile
    entry_start: int
    entry_stop: int


def _copy_plan(
    tree: Any, path: str, spec: ReadSpec, copy: str | Sequence[str] | None, taken: Sequence[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(branches to copy, those of them sharing the particles' counter and named ``part_*``)."""
    keys = list(tree.keys())
    table = is_table(tree)
    counters = set()
    for key in [] if table else keys:
        count = getattr(tree[key], "count_branch", None)
        if count is not None:
            counters.add(count.name)
    if copy in (None, "none", ()):
        names: list[str] = []
    elif copy == "all":
        # counters are re-created by the writer; a table's stored columns, not its views
        names = list(tree.columns) if table else [k for k in keys if k not in counters]
    else:
        names = [copy] if isinstance(copy, str) else list(copy)
        missing = [b for b in names if b not in keys]
        if missing:
            raise DataError(
                f"{path}: branches {missing} to copy are not in tree {spec.mapping.tree!r}; "
                f"branches present: {sorted(keys)}"
            )
    clash = [b for b in names if b in taken]
    if clash:
        logger.warning("%s: not copying %s: the predictions use these names", path, clash)
        names = [b for b in names if b not in taken]
    if table:  # no counters in columnar files: each column is written as it is
        return tuple(names), ()
    px = getattr(tree[spec.mapping.px], "count_branch", None)
    group = tuple(
        b
        for b in names
        if b.startswith("part_")
        and px is not None
        and getattr(tree[b], "count_branch", None) is not None
        and tree[b].count_branch.name == px.name
    )
    return tuple(names), group


def plan_inputs(
    paths: PathsLike,
    spec: ReadSpec,
    copy_branches: str | Sequence[str] | None = None,
    taken: Sequence[str] = (),
) -> list[InputFile]:
    """Open every file once up front: tree, branches, copy plan (fail before any output)."""
    files = [os.fspath(p) for p in expand_paths(paths)]
    out = []
    with TreeReader(spec.mapping) as reader:
        for index, path in enumerate(files):
            tree = reader.tree(path)
            plan_branches(tree, path, spec)
            copy, group = _copy_plan(tree, path, spec, copy_branches, taken)
            fmt = tree.format if is_table(tree) else "root"
            width = tree.particle_width(spec.mapping.px) if is_table(tree) else None
            out.append(
                InputFile(
                    path, index, int(tree.num_entries), spec.mapping.tree, copy, group, fmt, width
                )  # fmt: skip
            )
            reader.close()
    return out


def _units(files: Sequence[InputFile], step_size: int) -> list[Unit]:
    units = []
    for f in files:
        # an empty file still gets one (empty) unit so its (empty) output is written
        starts = range(0, f.num_entries, step_size) if f.num_entries else [0]
        units.extend(Unit(f, s, min(s + step_size, f.num_entries)) for s in starts)
    return units


class _UnitReader(torch.utils.data.Dataset):
    """Map-style dataset of work units → :class:`PreparedChunk` (runs in DataLoader workers,
    which read and compute features while the main process runs the model)."""

    def __init__(self, units: Sequence[Unit], processor: JetProcessor, spec: ReadSpec):
        self.units = list(units)
        self.processor = processor
        self.spec = spec
        self._reader: TreeReader | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_reader": None}  # open files stay in their process

    def __len__(self) -> int:
        return len(self.units)

    def __getitem__(self, i: int) -> PreparedChunk:
        unit = self.units[i]
        if self._reader is None:
            self._reader = TreeReader(self.spec.mapping)
        f = unit.file
        raw = read_unit(
            self._reader,
            WorkUnit(f.path, f.file_index, unit.entry_start, unit.entry_stop),
            self.spec,
        )
        copied: dict[str, Any] = {}
        if f.copy:
            tree = self._reader.tree(f.path)
            try:
                arrays = tree.arrays(
                    list(f.copy), entry_start=unit.entry_start, entry_stop=unit.entry_stop,
                    library="ak", array_cache=None,
                )  # fmt: skip
            except Exception as err:
                raise DataError(
                    f"{f.path}: cannot read the branches to copy {list(f.copy)} "
                    f"({type(err).__name__}: {err})"
                ) from err
            copied = {name: arrays[name] for name in f.copy}
        return prepare(raw, self.processor, self.spec, copied)


def _identity(x: Any) -> Any:
    return x


def _iter_prepared(
    units: Sequence[Unit], processor: JetProcessor, spec: ReadSpec, workers: int
) -> Iterator[PreparedChunk]:
    dataset = _UnitReader(units, processor, spec)
    if workers <= 0:
        try:
            for i in range(len(dataset)):
                yield dataset[i]
        finally:
            if dataset._reader is not None:
                dataset._reader.close()
        return
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, shuffle=False, num_workers=workers, collate_fn=_identity
    )
    yield from loader  # in unit order: the DataLoader returns items in index order


# --- writing -------------------------------------------------------------------------------------
def _pack(columns: Mapping[str, Any], particle_names: Sequence[str]) -> dict[str, Any]:
    """Columns for ``uproot`` ``mktree/extend``: particle-level ones zipped under ``part`` so
    they share one ``npart`` counter (the JetClass layout)."""
    packed = {k: v for k, v in columns.items() if k not in particle_names}
    if particle_names:
        packed["part"] = ak.zip({k[len("part_") :]: columns[k] for k in particle_names})
    return packed


def _types(packed: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: (v.type.content if isinstance(v, ak.Array) else np.asarray(v).dtype)
        for k, v in packed.items()
    }


class _PartialOutput:
    """An output file written under a temporary name beside its final one and renamed when
    complete, so a file with its final name is always whole."""

    def __init__(self, final: Path):
        self.final = final
        fd, tmp = tempfile.mkstemp(
            dir=final.parent, prefix=f".{final.name}.", suffix=PARTIAL_SUFFIX
        )
        os.close(fd)
        self.tmp = Path(tmp)
        self.entries = 0

    def extend(self, columns: Mapping[str, Any]) -> None:
        """Append one chunk's entry-aligned columns."""
        try:
            self._write(columns)
        except (TypeError, ValueError, NotImplementedError) as err:
            raise DataError(
                f"{self.final}: cannot write the output columns {list(columns)} "
                f"({type(err).__name__}: {err}); copy fewer branches (--copy-branches)"
            ) from err
        self.entries += len(next(iter(columns.values())))

    def commit(self) -> None:
        self._close()
        os.replace(self.tmp, self.final)

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._close()
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()

    def _write(self, columns: Mapping[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class _OutputFile(_PartialOutput):
    """A ROOT output file: one TTree (a friend of the input's), particle columns sharing the
    ``npart`` counter."""

    def __init__(self, final: Path, tree: str, particle_names: Sequence[str]):
        super().__init__(final)
        self.tree_name = tree
        self.particle_names = list(particle_names)
        import uproot

        self.file = uproot.recreate(self.tmp)
        self.tree: Any = None

    def _write(self, columns: Mapping[str, Any]) -> None:
        packed = _pack(columns, self.particle_names)
        if self.tree is None:
            self.tree = self.file.mktree(self.tree_name, _types(packed))
        if len(next(iter(columns.values()))):
            self.tree.extend(packed)

    def _close(self) -> None:
        self.file.close()


class _ParquetOutput(_PartialOutput):
    """A parquet output file, one row group per chunk, rows aligned with the input's."""

    def __init__(self, final: Path):
        super().__init__(final)
        self.writer: Any = None

    def _write(self, columns: Mapping[str, Any]) -> None:
        import pyarrow.parquet as pq

        # score columns are strided views of one (n, classes) array; arrow wants them whole
        plain = {
            k: np.ascontiguousarray(v) if isinstance(v, np.ndarray) else v
            for k, v in columns.items()
        }
        table = ak.to_arrow_table(ak.zip(plain, depth_limit=1), extensionarray=False)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp, table.schema)
        self.writer.write_table(table)

    def _close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class _HDF5Output(_PartialOutput):
    """An HDF5 output file: one dataset per output column, row ``i`` for input jet ``i``.

    Per-particle outputs are ``(n_jets, width)`` arrays padded with NaN / −1, the input's
    real particles first (aligned with its slots when the padding comes last, the usual
    convention).
    """

    def __init__(self, final: Path, num_entries: int, width: int | None):
        super().__init__(final)
        import h5py

        self.file = h5py.File(self.tmp, "w")
        self.num_entries = int(num_entries)
        self.width = width

    def _padded(self, values: ak.Array) -> np.ndarray:
        width = self.width or int(ak.max(ak.num(values, axis=1), initial=0))
        flat = ak.flatten(values, axis=None)
        fill = -1 if np.asarray(flat).dtype.kind in "iu" else np.nan
        return ak.to_numpy(ak.fill_none(ak.pad_none(values, width, axis=1, clip=True), fill))

    def _write(self, columns: Mapping[str, Any]) -> None:
        start = self.entries
        for name, values in columns.items():
            if isinstance(values, ak.Array) and values.ndim == 2:
                values = self._padded(values)
            values = np.asarray(ak.to_numpy(values) if isinstance(values, ak.Array) else values)
            if name not in self.file:
                self.file.create_dataset(
                    name, shape=(self.num_entries, *values.shape[1:]), dtype=values.dtype
                )
            self.file[name][start : start + len(values)] = values

    def _close(self) -> None:
        self.file.close()


def open_output(final: Path, source: InputFile, particle_names: Sequence[str]) -> _PartialOutput:
    """The writer of the predictions of ``source``, in its format."""
    if source.format == "parquet":
        return _ParquetOutput(final)
    if source.format == "hdf5":
        return _HDF5Output(final, source.num_entries, source.width)
    return _OutputFile(final, source.tree, particle_names)


def _remove_stale_partials(final: Path) -> None:
    """Temporary files a killed earlier run left for this output."""
    for stale in glob.glob(
        os.path.join(glob.escape(str(final.parent)), glob.escape(f".{final.name}.") + "*")
    ):
        if stale.endswith(PARTIAL_SUFFIX):
            logger.info("removing %s left by an interrupted run", stale)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(stale)


def _output_paths(files: Sequence[InputFile], out_dir: Path) -> dict[str, Path]:
    outputs: dict[str, Path] = {}
    seen: dict[Path, str] = {}
    for f in files:
        target = out_dir / Path(f.path).name
        if target in seen:
            raise DataError(
                f"input files {seen[target]!r} and {f.path!r} have the same name; their "
                f"predictions would both be written to {str(target)!r} (predict them separately)"
            )
        if target.resolve() == Path(f.path).resolve():
            raise DataError(
                f"the output directory {str(out_dir)!r} holds the input file {f.path!r}; "
                "choose another --out so the input is not overwritten"
            )
        seen[target] = f.path
        outputs[f.path] = target
    return outputs


# --- public API ----------------------------------------------------------------------------------
def make_predictor(
    model: Any,
    processor: JetProcessor | str | os.PathLike | None = None,
    *,
    batch_size: int = 256,
    max_particles: int | None = None,
    onnx: bool | str | os.PathLike = False,
    device: str | torch.device | None = None,
    bucket: bool = True,
    vertex_threshold: float = 0.5,
    mapping: Any = None,
) -> Predictor:
    """A :class:`Predictor` from a model directory / Hub name / head instance.

    ``processor`` defaults to the model directory's ``preprocessor_config.json``.
    ``max_particles`` and ``mapping`` (a :class:`~jetfm.data.BranchMapping`, for input files
    laid out differently from the training files) override the processor's. ``onnx``:
    ``True`` runs ONNX Runtime on the directory's ``model.onnx`` (exported with
    :func:`jetfm.onnx_export.export_onnx` to a scratch file when absent), a path runs that
    file.
    """
    if isinstance(model, Predictor):
        return model
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model, device)
        source: str | None = model.config._name_or_path  # the resolved checkpoint folder
    else:
        task_of(model)
        if device is not None:
            model = model.to(_device(device))
        guess = getattr(model.config, "_name_or_path", "") or ""
        source = guess if guess and Path(guess, "preprocessor_config.json").is_file() else None
    if processor is None:
        if source is None:
            raise JetFMError(
                "no processor given and the model was not loaded from a directory holding "
                "preprocessor_config.json; pass processor=JetProcessor.from_pretrained(dir)"
            )
        processor = load_processor(source)
    elif isinstance(processor, (str, os.PathLike)):
        processor = load_processor(processor)
    if max_particles is not None:
        if max_particles < 1:
            raise JetFMError(f"max_particles must be ≥ 1; got {max_particles}")
        processor = JetProcessor(**{**processor.to_dict(), "max_particles": int(max_particles)})
    if mapping is not None:
        processor = JetProcessor(**{**processor.to_dict(), "branch_mapping": mapping.to_dict()})
    kwargs = dict(batch_size=batch_size, bucket=bucket, device=device,
                  vertex_threshold=vertex_threshold)  # fmt: skip
    if not onnx:
        return Predictor(model, processor, **kwargs)
    if isinstance(onnx, (str, os.PathLike)):
        onnx_path = Path(onnx)
    elif source is not None and Path(source, ONNX_FILE).is_file():
        onnx_path = Path(source, ONNX_FILE)
    elif source is not None and Path(source).is_dir():
        from jetfm.onnx_export import export_onnx

        # export to a scratch file; the session keeps the graph in memory
        with tempfile.TemporaryDirectory(prefix="jetfm-onnx-") as tmp:
            path = export_onnx(source, Path(tmp) / ONNX_FILE)
            logger.info("exported %s to ONNX for this run (save it as %s/%s to reuse)",
                        source, source, ONNX_FILE)  # fmt: skip
            return Predictor(model, processor, onnx_path=path, **kwargs)
    else:
        raise JetFMError(
            "onnx=True needs the model's directory (to export it) or onnx=<path to an exported "
            "model.onnx>"
        )
    if not onnx_path.is_file():
        raise CheckpointError(f"ONNX model {str(onnx_path)!r} does not exist")
    return Predictor(model, processor, onnx_path=onnx_path, **kwargs)


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
    targets = _output_paths(files, out_dir)
    todo = [f for f in files if overwrite or not targets[f.path].exists()]
    done_before = [targets[f.path] for f in files if f not in todo]
    if done_before:
        logger.info("%d of %d outputs exist already; skipping them", len(done_before), len(files))
    particle_outputs = [n for n in predictor.output_names if n.startswith("part_")]
    tally = _Tally()
    written: list[Path] = []
    current: _PartialOutput | None = None
    total = sum(f.num_entries for f in todo)
    bar = tqdm(total=total, unit="jet", unit_scale=True, desc="predict", disable=not progress)
    try:
        for prepared in _iter_prepared(_units(todo, step_size), predictor.processor, spec, workers):
            f = files[prepared.file_index]
            if current is None or current.final != targets[f.path]:
                _remove_stale_partials(targets[f.path])
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


class _Keys:
    """``tree.keys()`` look-alike for in-memory arrays (reuses the reader's branch checks)."""

    def __init__(self, keys: Sequence[str]):
        self._keys = list(keys)

    def keys(self) -> list[str]:
        return self._keys


def _iter_arrays(
    arrays: Any, predictor: Predictor, spec: ReadSpec, copy: str | Sequence[str] | None, step: int
) -> Iterator[PreparedChunk]:
    keys = list(arrays.fields) if isinstance(arrays, ak.Array) else list(arrays.keys())
    source = "<in-memory arrays>"
    plan = plan_branches(_Keys(keys), source, spec)
    if copy in (None, "none", ()):
        copy_names: list[str] = []
    elif copy == "all":
        copy_names = [k for k in keys if k not in predictor.output_names]
    else:
        copy_names = [copy] if isinstance(copy, str) else list(copy)
        missing = [k for k in copy_names if k not in keys]
        if missing:
            raise DataError(f"{source}: fields {missing} to copy are missing; present: {keys}")
    n = len(arrays) if isinstance(arrays, ak.Array) else len(arrays[plan["px"]])
    for start in range(0, max(n, 1), step):
        stop = min(start + step, n)
        part = (
            arrays[start:stop]
            if isinstance(arrays, ak.Array)
            else {k: v[start:stop] for k, v in arrays.items()}
        )
        raw = validate_arrays(part, plan, spec, source, start)
        yield prepare(raw, predictor.processor, spec, {k: part[k] for k in copy_names})


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
        chunks = _iter_arrays(data, predictor, spec, copy_branches, step_size)
    else:
        files = plan_inputs(data, spec, copy_branches, predictor.output_names)
        chunks = _iter_prepared(_units(files, step_size), predictor.processor, spec, workers)
    parts = [ak.zip(chunk_outputs(predictor, p), depth_limit=1) for p in chunks]
    return ak.concatenate(parts) if len(parts) > 1 else parts[0]


__all__ = [
    "Predictor",
    "PreparedChunk",
    "TASKS",
    "branch_safe",
    "chunk_outputs",
    "load_model",
    "load_processor",
    "make_predictor",
    "output_branches",
    "plan_inputs",
    "predict",
    "predict_files",
    "prepare",
    "task_of",
]
