"""Evaluating a fine-tuned checkpoint on labelled files: predictions → metrics → plots.

A pre-training checkpoint with its decoder is evaluated on its own task instead: how well it
rebuilds the jets whose particles it masks (:func:`evaluate_reconstruction`).

:func:`evaluate_checkpoint` is what ``jetfm evaluate`` runs: it loads the head with its
processor (:func:`jetfm.loading.load_checkpoint`), runs it over the files
(:func:`jetfm.runner.run_dataset`), computes the task's metrics (:mod:`jetfm.metrics`) and
optionally writes the plots (:mod:`jetfm.plots`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from jetfm.data.layouts import mapping_from_option
from jetfm.data.schema import IGNORE_INDEX, TRACK_ORIGINS
from jetfm.loading import input_groups, load_checkpoint
from jetfm.runner import JetRunner, run_dataset

logger = logging.getLogger(__name__)


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
    loaded = load_checkpoint(folder)
    model, processor, task = loaded.model, loaded.processor, loaded.task.name
    if mapping is not None:
        processor.branch_mapping = mapping_from_option(mapping).to_dict()
    groups = input_groups(model, processor)
    targets = loaded.task.labels_read
    dataset = JetDataset(
        data, processor, targets, feature_groups=groups, other_classes=other_classes
    )
    collator = JetCollator(targets=targets, feature_groups=groups)
    pred = run_dataset(JetRunner(model), dataset, collator, batch_size, progress=progress)
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
        return False  # load_checkpoint reports the missing or broken config
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


__all__ = ["evaluate_checkpoint", "evaluate_reconstruction", "is_pretraining_checkpoint"]
