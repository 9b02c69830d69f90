"""Evaluating a fine-tuned checkpoint on labelled files: predictions → metrics → plots.

A pre-training checkpoint with its decoder is evaluated on its own task instead: how well it
rebuilds the jets whose particles it masks (:func:`evaluate_reconstruction`).

:func:`predict` runs any head over a dataset (batched, ``torch.no_grad``) and returns numpy
arrays padded to a common particle count; :func:`evaluate_checkpoint` is what
``jetfm evaluate`` runs: it loads the head named in the checkpoint's config with its processor,
computes the task's metrics (:mod:`jetfm.metrics`) and optionally writes the plots
(:mod:`jetfm.plots`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from jetfm.data.schema import IGNORE_INDEX, TRACK_ORIGINS
from jetfm.errors import CheckpointError, DataError

logger = logging.getLogger(__name__)

MODEL_INPUTS = ("kinematics", "pid", "tracks", "mask")
#: head class → task, for checkpoints saved without ``config.finetuning["task"]``
DEFAULT_TASK = {
    "JetFMForJetTagging": "tagging",
    "JetFMForTrackID": "track-id",
    "JetFMForVertexFinding": "vertexing",
}


def _pad_cat(parts: Sequence[np.ndarray], fill: int) -> np.ndarray:
    """Concatenate ``(b_i, n_i)`` arrays along jets, right-padding particles with ``fill``."""
    width = max(p.shape[1] for p in parts)
    return np.concatenate(
        [np.pad(p, ((0, 0), (0, width - p.shape[1])), constant_values=fill) for p in parts]
    )


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    dataset: Any,
    collator: Any,
    batch_size: int = 256,
    vertex_threshold: float = 0.5,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Run a head over ``dataset`` and gather numpy outputs.

    Returns, by head: tagging ``{"logits" (n, C)}``; track ID ``{"predictions" (n, N)}``
    (argmax origin, -100 at padding); vertex finding ``{"vertices" (n, N)}`` (vertex id per
    track, -1 elsewhere). Targets present in the batches are returned as well (``labels``,
    ``track_labels``, ``vertex_labels``), padded with ``IGNORE_INDEX``.
    """
    from tqdm.auto import tqdm

    from jetfm.modeling.heads import JetFMForTrackID, JetFMForVertexFinding

    model.eval()
    device = next(model.parameters()).device
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collator)
    out: dict[str, list[np.ndarray]] = {}
    for batch in tqdm(loader, desc="predicting", unit="batch", disable=not progress):
        inputs = {k: v.to(device) for k, v in batch.items() if k in MODEL_INPUTS}
        if isinstance(model, JetFMForVertexFinding):
            if "pid" in inputs:
                tracks = model.default_track_mask(inputs["mask"], inputs["pid"])
            elif "vertex_labels" in batch:
                tracks = batch["vertex_labels"].to(device) != IGNORE_INDEX
            else:
                tracks = inputs["mask"]
            pred = model.find_vertices(**inputs, track_mask=tracks, threshold=vertex_threshold)
            out.setdefault("vertices", []).append(pred)
        else:
            logits = model(**inputs).logits.float().cpu()
            if isinstance(model, JetFMForTrackID):
                pred = logits.argmax(dim=-1).masked_fill(~batch["mask"], IGNORE_INDEX)
                out.setdefault("predictions", []).append(pred.numpy())
            else:
                out.setdefault("logits", []).append(logits.numpy())
        for key in ("labels", "track_labels", "vertex_labels"):
            if key in batch:
                out.setdefault(key, []).append(batch[key].numpy())
    if not out:
        raise DataError("no jets to predict on")
    result = {}
    for key, parts in out.items():
        if key in ("logits", "labels"):
            result[key] = np.concatenate(parts)
        else:
            result[key] = _pad_cat(parts, -1 if key == "vertices" else IGNORE_INDEX)
    return result


def load_finetuned(model_dir: str | os.PathLike) -> tuple[torch.nn.Module, Any, str]:
    """``(model, processor, task)`` of a fine-tuned checkpoint folder."""
    from transformers import AutoConfig

    import jetfm.modeling  # noqa: F401  (registers the jetfm config with AutoConfig)
    from jetfm.data import JetProcessor
    from jetfm.finetuning import HEAD_CLASSES

    path = Path(model_dir)
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path}: no config.json (not a jetfm checkpoint folder)")
    config = AutoConfig.from_pretrained(str(path))
    arch = next((a for a in (config.architectures or []) if a in HEAD_CLASSES), None)
    if arch is None:
        raise CheckpointError(
            f"{path}/config.json: architectures={config.architectures} is not a fine-tuned "
            f"jetfm head (one of {sorted(HEAD_CLASSES)}); fine-tune it with `jetfm finetune`"
            + (" (a pre-trained backbone can be evaluated only with its MPM decoder, which "
               "this checkpoint does not ship)" if config.architectures == ["JetFMModel"] else "")
        )  # fmt: skip
    if not (path / "preprocessor_config.json").is_file():
        raise CheckpointError(
            f"{path}: no preprocessor_config.json (the normalisation statistics the model was "
            "trained with)"
        )
    processor = JetProcessor.from_pretrained(str(path))
    model = HEAD_CLASSES[arch].from_pretrained(str(path))
    task = (getattr(config, "finetuning", None) or {}).get("task") or DEFAULT_TASK[arch]
    return model, processor, task


def input_groups(model: torch.nn.Module, processor: Any) -> list[str]:
    """Feature groups the head was fine-tuned on (``config.finetuning["feature_groups"]``;
    all of the model's groups for a checkpoint without that record)."""
    info = getattr(model.config, "finetuning", None) or {}
    groups = info.get("feature_groups") or list(model.config.feature_groups)
    missing = [g for g in groups if g not in processor.feature_groups]
    if missing:
        raise CheckpointError(
            f"the model needs feature groups {missing} its processor does not read"
        )
    return list(groups)


def evaluate_checkpoint(
    model_dir: str | os.PathLike,
    data: Any,
    plots_dir: str | os.PathLike | None = None,
    batch_size: int = 256,
    progress: bool = True,
    other_classes: str = "raise",
    mapping: Any = None,
    style: str = "default",
) -> dict[str, Any]:
    """Metrics (and plots) of a fine-tuned checkpoint on labelled ROOT, parquet or HDF5 files.

    ``mapping`` (a :class:`~jetfm.data.BranchMapping`) replaces the branch mapping saved with
    the checkpoint, for files laid out differently from its training files.

    ``style``: the plots' style, ``default``, ``CMS`` or ``ATLAS`` (the last two through
    mplhep, :mod:`jetfm.plots`); checked before any jet is read.

    ``other_classes="skip"`` evaluates a tagger of some classes (``finetune(classes=...)``) on
    files that also hold others, dropping those jets; by default they are a DataError.

    Tagging: accuracy, macro AUC, QCD rejection at 50 %/30 % signal efficiency per class with
    its 68 % interval, or the 95 % CL lower bound where no QCD jet passes
    (:func:`jetfm.metrics.rejection_record`; ``roc.png`` with the band,
    ``confusion_matrix.png``); CWoLa: the same on the true signal/background
    labels; track ID: accuracy, balanced accuracy, per-class recall
    (``confusion_matrix.png``); vertexing: ARI, perfect-jet fraction, b-vertex
    efficiency/purity, split by flavour (``ari.png``). A pre-training checkpoint with its
    decoder gets :func:`evaluate_reconstruction` instead (the data need no labels).
    """
    from jetfm import metrics as M
    from jetfm import plots as P
    from jetfm.data import JetCollator, JetDataset
    from jetfm.hub import resolve_pretrained

    if plots_dir is not None:
        P.check_style(style)  # a missing mplhep fails now, not after the predictions
    folder = resolve_pretrained(model_dir)  # a folder, or a short name / Hub id
    if is_pretraining_checkpoint(folder):
        return evaluate_reconstruction(folder, data, plots_dir, batch_size, progress) | {
            "model": str(model_dir)
        }
    model, processor, task = load_finetuned(folder)
    if mapping is not None:
        processor.branch_mapping = mapping.to_dict()
    groups = input_groups(model, processor)
    targets = {
        "tagging": ("labels",),
        "cwola": ("labels",),
        "track-id": ("track_labels",),
        "vertexing": ("vertex_labels", "track_labels"),
    }[task]
    dataset = JetDataset(
        data, processor, targets, feature_groups=groups, other_classes=other_classes
    )
    collator = JetCollator(targets=targets, feature_groups=groups)
    pred = predict(model, dataset, collator, batch_size, progress=progress)
    plots = Path(plots_dir) if plots_dir is not None else None
    result: dict[str, Any] = {"task": task, "model": str(model_dir)}

    if task in ("tagging", "cwola"):
        probs = M.softmax(pred["logits"])
        labels = pred["labels"]
        names = [model.config.id2label[i] for i in range(model.config.num_labels)]
        background = "QCD"
        if task == "cwola":
            from jetfm.weak_supervision import SIGNAL_RICH, class_index

            cw = model.config.finetuning["cwola"]
            s = class_index(processor.label_names, cw["signal"], "signal")
            b = class_index(processor.label_names, cw["background"], "background")
            keep = (labels == s) | (labels == b)
            # true labels in the head's output order: background 0, signal SIGNAL_RICH (= 1)
            labels = np.where(labels[keep] == s, SIGNAL_RICH, 1 - SIGNAL_RICH)
            probs = probs[keep]
            names = [cw["background"], cw["signal"]]
            background = cw["background"]
        result |= M.tagging_metrics(labels, probs, names, background=background)
        if plots is not None:
            P.plot_rejection_curves(labels, probs, names, plots / "roc.png", background, style)
            P.plot_confusion_matrix(labels, probs.argmax(1), names,
                                    plots / "confusion_matrix.png", style=style)  # fmt: skip
    elif task == "track-id":
        result |= M.track_id_metrics(pred["track_labels"], pred["predictions"])
        if plots is not None:
            keep = pred["track_labels"] != IGNORE_INDEX
            P.plot_confusion_matrix(
                pred["track_labels"][keep], pred["predictions"][keep], TRACK_ORIGINS,
                plots / "confusion_matrix.png", title="track origin", style=style,
            )  # fmt: skip
    else:
        truth, tl, vert = pred["vertex_labels"], pred["track_labels"], pred["vertices"]
        result |= M.vertexing_metrics(truth, vert, tl)
        if plots is not None:
            ari = M.adjusted_rand_index_per_jet(truth, vert, truth != IGNORE_INDEX)
            flavour = M.jet_flavour(tl)
            P.plot_ari_histogram(
                {f: ari[flavour == f] for f in ("b", "c", "light")}, plots / "ari.png", style
            )
    return result


def is_pretraining_checkpoint(folder: str | os.PathLike) -> bool:
    """A ``jetfm pretrain`` output, or a release that ships its MPM decoder."""
    import json

    from jetfm.modeling.continuation import DECODER_WEIGHTS_NAME

    folder = Path(folder)
    try:
        arch = json.loads((folder / "config.json").read_text()).get("architectures") or []
    except (OSError, ValueError):
        return False  # load_finetuned reports the missing or broken config
    released = arch == ["JetFMModel"] and (folder / DECODER_WEIGHTS_NAME).is_file()
    return "JetFMForMaskedParticleModeling" in arch or released


def evaluate_reconstruction(
    folder: str | os.PathLike,
    data: Any,
    plots_dir: str | os.PathLike | None = None,
    batch_size: int = 256,
    progress: bool = True,
) -> dict[str, Any]:
    """The jet-mass check of :mod:`jetfm.reconstruction` for a pre-training checkpoint on
    every jet of ``data`` (labels not needed): the median rebuilt / true jet mass and its
    spread, against the visible particles alone; ``mpm_reconstruction.png`` in ``plots_dir``."""
    from jetfm.data import JetDataset, JetProcessor
    from jetfm.modeling.pretraining import JetFMForMaskedParticleModeling
    from jetfm.reconstruction import masked_reconstruction, plot_reconstruction

    folder = Path(folder)
    processor = JetProcessor.from_pretrained(str(folder))
    model = JetFMForMaskedParticleModeling.from_pretrained(str(folder))
    dataset = JetDataset(data, processor, targets=())
    result = masked_reconstruction(model, dataset, processor, n_jets=len(dataset),
                                   batch_size=batch_size, progress=progress)  # fmt: skip
    if plots_dir is not None:
        plot_reconstruction(result, Path(plots_dir) / "mpm_reconstruction.png",
                            title=f"{folder.name}: masked particles rebuilt")  # fmt: skip
    return {"task": "masked-particle reconstruction", **result.summary()}


__all__ = [
    "evaluate_checkpoint",
    "evaluate_reconstruction",
    "input_groups",
    "is_pretraining_checkpoint",
    "load_finetuned",
    "predict",
]
