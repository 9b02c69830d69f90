"""The predictor: a fine-tuned head and its processor, run over prepared chunks.

:class:`Predictor` batches a chunk's valid jets by particle count, runs them through a
:class:`~jetfm.runner.JetRunner` (torch, or ONNX Runtime on the export) and returns entry-aligned
predictions; :func:`chunk_outputs` turns those into the output columns, per-particle values
mapped back to the input's particle order.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jetfm.data.features import FeatureChunk
from jetfm.data.processor import JetProcessor
from jetfm.data.reading import ReadSpec
from jetfm.data.schema import TRACK_ORIGINS
from jetfm.errors import CheckpointError, JetFMError
from jetfm.inference.chunks import PreparedChunk, to_original
from jetfm.loading import (
    PROCESSOR_FILE,
    input_groups,
    load_checkpoint,
    load_processor,
    resolve_device,
)
from jetfm.onnx_export import export_onnx
from jetfm.runner import JetRunner
from jetfm.tasks import task_of_model

logger = logging.getLogger(__name__)

#: name of an ONNX export inside a model directory, used by ``--onnx`` when present
ONNX_FILE = "model.onnx"
#: working memory allowed for the vertex head's ``(B, N, N, ·)`` pair tensors per batch
VERTEX_PAIR_BUDGET_BYTES = 1 << 30


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
        self.task = task_of_model(model)
        self.model = model.eval()
        self.config = model.config
        self.processor = processor
        self.batch_size = int(batch_size)
        self.bucket = bool(bucket)
        self.vertex_threshold = float(vertex_threshold)
        self.device = next(model.parameters()).device if device is None else resolve_device(device)
        if device is not None:
            self.model.to(self.device)
        try:  # the groups the head was fine-tuned on (config.input_feature_groups)
            wanted = input_groups(model, processor)
        except CheckpointError as err:
            raise JetFMError(f"model and processor do not match: {err}") from err
        self.feature_groups = tuple(g for g in processor.feature_groups if g in wanted)
        tagger = not self.task.per_particle
        self.label_names = _label_names(self.config, processor) if tagger else ()
        self.session = None if onnx_path is None else _onnx_session(onnx_path, self.device)
        self.runner = JetRunner(self.model, session=self.session, vertex_threshold=vertex_threshold)
        if self.task.head == "JetFMForVertexFinding":
            head = self.config.head_hidden_size
            width = (
                self.config.hidden_size if head is None else int(head) or self.config.hidden_size
            )
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
        return self.task.output_branches(self.label_names)

    # batching ------------------------------------------------------------------------------
    def _batches(self, rows: np.ndarray, counts: np.ndarray) -> Iterator[np.ndarray]:
        """Consecutive slices of ``rows`` (pair-budget-limited for the vertex head)."""
        start = 0
        while start < len(rows):
            size = self.batch_size
            if self.task.head == "JetFMForVertexFinding":
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
        head = self.task.head
        if head == "JetFMForJetTagging":
            out = {"scores": np.full((n, len(self.label_names)), np.nan, np.float32)}
        elif head == "JetFMForTrackID":
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
            result = self.runner(self._batch(chunk, idx))
            if head == "JetFMForJetTagging":
                out["scores"][idx] = result["logits"].softmax(-1).numpy()
                continue
            w = min(result["tracks"].shape[1], width)
            keep = result["tracks"][:, :w].numpy()
            if head == "JetFMForTrackID":
                probs = result["logits"].softmax(-1).numpy()[:, :w]
                out["probs"][idx, :w] = np.where(keep[..., None], probs, np.nan)
                out["pred"][idx, :w] = np.where(keep, probs.argmax(-1), -1)
            else:
                out["pred"][idx, :w] = result["vertices"].numpy()[:, :w]
        return out


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


def chunk_outputs(predictor: Predictor, prepared: PreparedChunk) -> dict[str, Any]:
    """Entry-aligned output columns of one chunk: predictions, then the copied branches."""
    result = predictor.predict_chunk(prepared.chunk)
    out: dict[str, Any] = {}
    head = predictor.task.head
    if head == "JetFMForJetTagging":
        for j, name in enumerate(predictor.output_names):
            out[name] = result["scores"][:, j]
    elif head == "JetFMForTrackID":
        probs = to_original(result["probs"], prepared, np.nan, np.float32)
        for j, name in enumerate(predictor.output_names[:-1]):
            out[name] = probs[:, :, j]
        out["part_pred_origin"] = to_original(result["pred"], prepared, -1, np.int32)
    else:
        out["part_pred_vtx"] = to_original(result["pred"], prepared, -1, np.int32)
    for name, values in prepared.copied.items():
        if name in out:
            continue  # a prediction branch of the same name wins (warned at planning)
        out[name] = values
    return out


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
    source: str | None = None  # the checkpoint folder, when known
    if isinstance(model, (str, os.PathLike)):
        loaded = load_checkpoint(model, device)
        model, source = loaded.model, str(loaded.folder)
        processor = loaded.processor if processor is None else processor
    else:
        task_of_model(model)
        if device is not None:
            model = model.to(resolve_device(device))
        guess = getattr(model.config, "_name_or_path", "") or ""
        source = guess if guess and Path(guess, PROCESSOR_FILE).is_file() else None
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
        processor = JetProcessor(**{**processor.to_dict(), "branch_mapping": mapping})
    kwargs = dict(batch_size=batch_size, bucket=bucket, device=device,
                  vertex_threshold=vertex_threshold)  # fmt: skip
    if not onnx:
        return Predictor(model, processor, **kwargs)
    if isinstance(onnx, (str, os.PathLike)):
        onnx_path = Path(onnx)
    elif source is not None and Path(source, ONNX_FILE).is_file():
        onnx_path = Path(source, ONNX_FILE)
    elif source is not None and Path(source).is_dir():
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


__all__ = ["ONNX_FILE", "Predictor", "chunk_outputs", "make_predictor"]
