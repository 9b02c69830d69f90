"""Trainer callbacks of every jetfm training loop: what a person watching a run needs.

* :class:`ReadableLogCallback` prints each log entry as one line of numbers
  (``step 50/250  loss 0.412  lr 2.0e-03 …``) instead of the Trainer's dict of strings;
* :class:`TrainingCurvesCallback` keeps the history as ``training_log.csv`` and draws
  ``training_curves.png`` (loss, every ``*_loss`` component, the validation metrics, the
  learning rate) in the run's folder, refreshed at every evaluation, every checkpoint and at
  the end;
* :class:`HoldEvaluationUntil` skips evaluations and checkpoints before a step (the end of the
  backbone's freeze and LR ramp in ``full`` fine-tuning), so a frozen-backbone model can never
  become the restored "best" one and early stopping only counts evaluations after it;
* :class:`BestCheckpointReport` says when a run stopped early and which step was restored.
"""

from __future__ import annotations

import csv
import logging
import math
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

from jetfm.atomic import atomic_file

logger = logging.getLogger(__name__)

#: the run's history, one row per log entry
TRAINING_LOG_FILE = "training_log.csv"
#: the curves drawn from it
TRAINING_CURVES_FILE = "training_curves.png"
#: keys of a log entry that are bookkeeping, not curves
_NOT_CURVES = ("epoch", "step", "total_flos", "train_runtime", "train_loss")


def format_number(value: Any) -> str:
    """A log value as a person reads it: 4 significant digits, scientific only when tiny or
    huge (``0.4123``, ``2.0e-03``, ``1234``); strings as they are."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.4g}"
    return f"{value:.1e}"


def format_log_line(logs: dict[str, Any], step: int, max_steps: int) -> str:
    """One line for a Trainer log entry: the step, then each value by its short name."""
    parts = [f"step {step}/{max_steps}" if max_steps > 0 else f"step {step}"]
    for key, value in logs.items():
        if key in _NOT_CURVES:
            continue
        name = key.replace("learning_rate", "lr").replace("_", "-")
        parts.append(f"{name} {format_number(value)}")
    return "  ".join(parts)


class ReadableLogCallback(TrainerCallback):
    """Prints every log entry as one readable line (replaces the Trainer's printer)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and state.is_world_process_zero:
            print(format_log_line(logs, state.global_step, state.max_steps), flush=True)


class ReadableProgressCallback(ProgressCallback):
    """The Trainer's progress bars, with log entries written as readable lines."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None and logs:
            self.training_bar.write(format_log_line(logs, state.global_step, state.max_steps))


class HoldEvaluationUntil(TrainerCallback):
    """No evaluation and no checkpoint before step ``step`` (the last step always counts)."""

    def __init__(self, step: int):
        self.step = int(step)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step < min(self.step, max(state.max_steps, 1)):
            control.should_evaluate = False
            control.should_save = False
        return control


class BestCheckpointReport(TrainerCallback):
    """At the end of a run with ``load_best_model_at_end``: one log line saying whether it
    stopped early (at which step, of how many) and which checkpoint was restored."""

    def on_train_end(self, args, state, control, **kwargs):
        if not (args.load_best_model_at_end and state.is_world_process_zero):
            return
        metric = args.metric_for_best_model or "loss"
        if state.global_step < state.max_steps:
            logger.info(
                "early stopping at step %d of %d: validation %s did not improve for the last "
                "evaluations", state.global_step, state.max_steps, metric,
            )  # fmt: skip
        best = state.best_model_checkpoint
        if best:
            step = Path(best).name.removeprefix("checkpoint-")
            logger.info(
                "restored the best checkpoint: step %s (validation %s %s)",
                step, metric, format_number(state.best_metric),
            )  # fmt: skip


class TrainingCurvesCallback(TrainerCallback):
    """Writes ``training_log.csv`` and ``training_curves.png`` into ``output_dir`` at every
    evaluation, every checkpoint and at the end of training (main process only)."""

    def __init__(self, output_dir: str | Path | None = None):
        self.output_dir = output_dir

    def _folder(self, args) -> Path:
        return Path(self.output_dir or args.output_dir)

    def on_evaluate(self, args, state, control, **kwargs):
        self.write(state.log_history, self._folder(args))

    def on_save(self, args, state, control, **kwargs):
        # long runs without a validation set: the curves at every checkpoint
        self.write(state.log_history, self._folder(args))

    def on_train_end(self, args, state, control, **kwargs):
        self.write(state.log_history, self._folder(args))

    def write(self, history: list[dict[str, Any]], folder: Path) -> None:
        if not history:
            return
        folder.mkdir(parents=True, exist_ok=True)
        write_training_log(history, folder / TRAINING_LOG_FILE)
        try:
            plot_training_curves(history, folder / TRAINING_CURVES_FILE)
        except Exception as err:  # a plot must never cost a run its weights
            logger.warning("could not draw %s: %s", TRAINING_CURVES_FILE, err)


def write_training_log(history: list[dict[str, Any]], path: Path) -> Path:
    """The Trainer's ``log_history`` as CSV: one row per entry, one column per key."""
    keys = list(dict.fromkeys(k for entry in history for k in entry))
    keys = ["step"] + [k for k in keys if k != "step"]
    with atomic_file(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        for entry in history:
            writer.writerow({k: entry.get(k, "") for k in keys})
    return path


def _series(history: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    points = [
        (int(e["step"]), float(e[key]))
        for e in history
        if key in e and "step" in e and isinstance(e[key], (int, float))
    ]
    return [p[0] for p in points], [p[1] for p in points]


def curve_panels(history: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Which keys each panel of :func:`plot_training_curves` draws: ``loss`` (training and
    validation loss and every ``*_loss`` component), ``validation`` (the other ``eval_*``
    metrics) and ``learning rate``."""
    keys = list(dict.fromkeys(k for entry in history for k in entry))
    numeric = [
        k
        for k in keys
        if k not in _NOT_CURVES
        and not k.endswith(("_runtime", "_per_second", "samples_per_second"))
        and any(isinstance(e.get(k), (int, float)) for e in history)
    ]
    losses = [k for k in numeric if k == "loss" or k.endswith("_loss") or k == "eval_loss"]
    validation = [k for k in numeric if k.startswith("eval_") and k not in losses]
    panels = {"loss": losses, "validation": validation}
    if "learning_rate" in numeric:
        panels["learning rate"] = ["learning_rate"]
    return {name: ks for name, ks in panels.items() if ks}


def plot_training_curves(history: list[dict[str, Any]], path: Path) -> Path | None:
    """Draw the panels of :func:`curve_panels` against the optimiser step into ``path``."""
    panels = curve_panels(history)
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    for ax, (title, keys) in zip(axes[0], panels.items(), strict=True):
        for key in keys:
            steps, values = _series(history, key)
            if steps:
                marker = "o" if key.startswith("eval_") else None
                ax.plot(steps, values, marker=marker, markersize=3, label=key)
        if title in ("loss", "learning rate"):
            positive = all(v > 0 for k in keys for v in _series(history, k)[1])
            if positive and title == "learning rate":
                ax.set_yscale("log")
        ax.set_xlabel("optimiser step")
        ax.set_title(title)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        with atomic_file(path) as tmp:  # a .tmp name: the format is given, not guessed
            fig.savefig(tmp, format="png", dpi=110)
    finally:
        plt.close(fig)
    return path


__all__ = [
    "TRAINING_CURVES_FILE",
    "TRAINING_LOG_FILE",
    "BestCheckpointReport",
    "HoldEvaluationUntil",
    "ReadableLogCallback",
    "ReadableProgressCallback",
    "TrainingCurvesCallback",
    "curve_panels",
    "format_log_line",
    "format_number",
    "plot_training_curves",
    "write_training_log",
]
