"""The whole jetfm path in one call: pretrained checkpoint → generated jets → tagger → metrics.

:func:`run_quickstart` is what ``jetfm quickstart`` runs, entirely offline:

1. resolve the pretrained checkpoint (:data:`DEFAULT_MODEL`, shipped with jetfm, so it loads
   without network) with its normalisation statistics;
2. generate a small labelled sample with the Pythia 8 + FastJet generator (needs the extra
   ``jetfm[generate]``): train, validation and test sets from different seeds, every class
   the generator supports;
3. fit a jet tagger on it (:func:`jetfm.finetuning.finetune`; by default ``probe`` mode for
   a checkpoint pre-trained with a jet-level objective, such as the default one: a logistic
   regression on the frozen backbone; ``frozen`` mode otherwise: the pooling and the head
   learn for ``max_steps``);
4. evaluate it on the test set (:func:`jetfm.evaluation.evaluate_checkpoint`): print the
   metrics table and write ``metrics.json``, ``plots/roc.png`` and
   ``plots/confusion_matrix.png``.

The defaults take under a minute on 2 idle CPU cores (generation 30 s, the probe 16 s,
evaluation 6 s; ``benchmarks/bench_quickstart.py``) for a test accuracy of about 0.79 over
the 8 classes; ``mode="frozen"`` (300 steps) takes 80 s for about 0.78. Re-running with
the same output folder reuses the generated jets (the generator resumes from its manifest).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: Checkpoint fine-tuned by default (shipped with jetfm; resolved by ``from_pretrained`` rules):
#: MPM plus simulation truth on detector-level jets, the best measured transfer (docs/results.md).
DEFAULT_MODEL = "mpm-truth-det-base"
#: Default output folder.
DEFAULT_OUTPUT = "jetfm-quickstart"
#: Training jets generated per class by default (validation: a quarter of it, test: as many:
#: generating is cheap next to fine-tuning, and the rejections need background jets).
DEFAULT_JETS_PER_CLASS = 200
#: Fine-tuning optimiser steps by default.
DEFAULT_MAX_STEPS = 300
#: Fine-tuning mode by default (None): ``probe`` for a checkpoint pre-trained with a jet-level
#: objective (the default model; a logistic regression on the frozen backbone, seconds), else
#: ``frozen`` (the encoder as pre-trained, the pooling and the head trained for ``max_steps``)
DEFAULT_MODE = None
#: Fine-tuning learning rate by default.
DEFAULT_LR = 2e-3
#: Seeds of the three generated samples: different seeds, so the sets are independent.
SEEDS = {"train": 101, "val": 102, "test": 103}


@dataclasses.dataclass
class QuickstartResult:
    """What :func:`run_quickstart` returns."""

    output_dir: Path
    model_dir: Path
    metrics: dict[str, Any]
    plots: list[Path]
    seconds: dict[str, float]


def sample_sizes(jets_per_class: int) -> dict[str, int]:
    """Jets per class of the train / val / test samples for a given training size."""
    if jets_per_class < 4:
        raise ValueError(f"jets_per_class must be at least 4; got {jets_per_class}")
    return {
        "train": jets_per_class,
        "val": max(2, jets_per_class // 4),
        "test": jets_per_class,
    }


def _workers(requested: int | None) -> int:
    if requested is not None:
        return max(1, int(requested))
    return max(1, min(4, os.cpu_count() or 1))


def run_quickstart(
    output_dir: str | os.PathLike = DEFAULT_OUTPUT,
    *,
    model: str = DEFAULT_MODEL,
    jets_per_class: int = DEFAULT_JETS_PER_CLASS,
    max_steps: int = DEFAULT_MAX_STEPS,
    batch_size: int = 64,
    lr: float = DEFAULT_LR,
    mode: str | None = DEFAULT_MODE,
    workers: int | None = None,
    seed: int = 42,
    progress: bool = True,
    style: str = "default",
    echo: Callable[[str], None] = print,
) -> QuickstartResult:
    """Fine-tune and evaluate a jet tagger on freshly generated jets, offline.

    Args:
        output_dir: receives ``data/{train,val,test}/`` (ROOT files), ``model/`` (the
            fine-tuned checkpoint), ``metrics.json`` and ``plots/``.
        model: pretrained checkpoint: a folder, Hub id or shipped name.
        jets_per_class: training jets per class (validation gets a quarter, test as many).
        max_steps: fine-tuning optimiser steps.
        mode: fine-tuning mode; by default ``probe`` for a checkpoint pre-trained with a
            jet-level objective (a logistic regression on the frozen backbone: seconds, no
            steps) and ``frozen`` otherwise (the encoder as pre-trained, the pooling and head
            learn); ``full`` (everything learns after a frozen start: slower) or ``lora``.
        batch_size / lr / seed: fine-tuning settings.
        workers: generator processes (default: up to 4, at most the CPU count).
        progress: progress bars for generation, training and evaluation.
        style: the plots' style, ``default``, ``CMS`` or ``ATLAS`` (through mplhep).
        echo: where the step headers and the final table go.

    Raises:
        MissingExtraError: the extra ``jetfm[generate]`` (Pythia 8, FastJet) is missing.
        CheckpointError: ``model`` cannot be found.
    """
    from jetfm.generation import require_extra
    from jetfm.plots import check_style

    check_style(style)  # before minutes of generation and training
    require_extra("jetfm quickstart (it generates its jets with Pythia 8)")
    from jetfm.evaluation import evaluate_checkpoint
    from jetfm.finetuning import finetune
    from jetfm.generation.dataset import generate_dataset
    from jetfm.generation.processes import SUPPORTED_CLASSES
    from jetfm.hub import resolve_pretrained
    from jetfm.metrics import format_table, write_metrics

    out = Path(output_dir)
    # every class the generator supports: its files carry a label branch for each of them,
    # so the tagger's classes are exactly those
    classes = list(SUPPORTED_CLASSES)
    sizes = sample_sizes(jets_per_class)
    n_workers = _workers(workers)
    seconds: dict[str, float] = {}

    echo(f"[1/4] pretrained checkpoint {model!r}")
    start = time.perf_counter()
    # a local folder, so that fine-tuning uses the normalisation saved with the checkpoint
    folder = resolve_pretrained(model)
    echo(f"      loaded from {folder}")
    if mode is None:
        from jetfm.finetuning import config_for_finetuning
        from jetfm.probing import default_tagging_mode

        mode = default_tagging_mode(config_for_finetuning(folder))
    seconds["resolve"] = time.perf_counter() - start

    start = time.perf_counter()
    data: dict[str, Path] = {}
    for step, (split, n) in enumerate(sizes.items(), start=1):
        echo(f"[2/4] generating {split} jets ({step}/3): {n} per class, classes "
             f"{','.join(classes)}, seed {SEEDS[split]}")  # fmt: skip
        data[split] = out / "data" / split
        generate_dataset(classes, n, data[split], seed=SEEDS[split], workers=n_workers,
                         chunk_size=n, progress=progress)  # fmt: skip
    seconds["generate"] = time.perf_counter() - start

    if mode == "probe":
        echo("[3/4] fitting a jet tagger (a logistic-regression probe on the frozen encoder)")
    else:
        echo(f"[3/4] fine-tuning a jet tagger ({max_steps} steps, batch {batch_size}, {mode} mode)")
    start = time.perf_counter()
    model_dir = out / "model"
    result = finetune(
        folder,
        "tagging",
        str(data["train"]),
        str(data["val"]),
        model_dir,
        mode=mode,
        max_steps=max_steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        early_stopping_patience=None,
        evals_per_run=4,
        disable_tqdm=not progress,
    )
    seconds["finetune"] = time.perf_counter() - start
    echo(f"      validation: accuracy {result.metrics.get('accuracy', float('nan')):.3f}, "
         f"AUC {result.metrics.get('auc', float('nan')):.3f}")  # fmt: skip

    echo(f"[4/4] evaluating on the test jets ({sizes['test']} per class)")
    start = time.perf_counter()
    plots_dir = out / "plots"
    metrics = evaluate_checkpoint(model_dir, str(data["test"]), plots_dir=plots_dir,
                                  progress=progress, style=style)  # fmt: skip
    seconds["evaluate"] = time.perf_counter() - start
    write_metrics(metrics, out / "metrics.json")
    plots = sorted(plots_dir.glob("*.png"))
    echo("")
    echo(format_table(metrics))
    echo("")
    total = sum(seconds.values())
    parts = ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
    echo(f"done in {total:.0f} s ({parts}): model in {model_dir}, metrics in "
         f"{out / 'metrics.json'}, plots: {', '.join(str(p) for p in plots)}")  # fmt: skip
    return QuickstartResult(out, model_dir, metrics, plots, seconds)


__all__ = [
    "DEFAULT_JETS_PER_CLASS",
    "DEFAULT_LR",
    "DEFAULT_MAX_STEPS",
    "DEFAULT_MODE",
    "DEFAULT_MODEL",
    "DEFAULT_OUTPUT",
    "QuickstartResult",
    "SEEDS",
    "run_quickstart",
    "sample_sizes",
]
