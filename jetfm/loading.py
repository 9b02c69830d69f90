"""Loading a fine-tuned checkpoint: the one path from a name to a model ready to run.

:func:`load_checkpoint` finds the folder (local, Hugging Face cache, Hub or a shipped copy,
through :func:`jetfm.hub.resolve_pretrained`), checks what it holds and returns the head with
its processor and task. Evaluation, prediction and ONNX export all load through it, so every
caller gets the same checks and the same error messages::

    from jetfm.loading import load_checkpoint

    loaded = load_checkpoint("runs/tagger")
    loaded.model, loaded.processor, loaded.task.name, loaded.folder

Weights are read from safetensors only.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch

from jetfm.configuration import JetFMConfig
from jetfm.data.processor import JetProcessor
from jetfm.errors import CheckpointError
from jetfm.hub import resolve_pretrained
from jetfm.tasks import HEAD_NAMES, Task, head_of_config, task_of_config

CONFIG_FILE = "config.json"
PROCESSOR_FILE = "preprocessor_config.json"


@dataclasses.dataclass
class LoadedCheckpoint:
    """A fine-tuned head in eval mode, its processor (normalisation statistics, branch
    mapping), its task and the folder it came from."""

    model: Any
    processor: JetProcessor
    task: Task
    folder: Path


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` / ``"auto"`` → CUDA when available, else CPU; anything else as given."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_processor(name_or_path: str | os.PathLike) -> JetProcessor:
    """The processor saved with a checkpoint (``preprocessor_config.json``), fitted.

    Raises CheckpointError naming the folder when the file is missing or holds no
    normalisation statistics: a model must see its inputs scaled as in training.
    """
    folder = Path(name_or_path)
    if not (folder / PROCESSOR_FILE).is_file():
        raise CheckpointError(
            f"{folder}: no {PROCESSOR_FILE} (the processor with the normalisation statistics "
            "the model was trained with); save it with processor.save_pretrained(folder)"
        )
    processor = JetProcessor.from_pretrained(str(folder))
    if not processor.is_fitted:
        raise CheckpointError(f"{folder / PROCESSOR_FILE}: no normalisation statistics")
    return processor


def load_config(folder: str | os.PathLike) -> JetFMConfig:
    """The jetfm config of a checkpoint folder (CheckpointError naming the file otherwise)."""
    file = Path(folder) / CONFIG_FILE
    if not file.is_file():
        raise CheckpointError(f"{folder}: no {CONFIG_FILE} (not a jetfm checkpoint folder)")
    try:
        return JetFMConfig.from_pretrained(str(folder))
    except CheckpointError:
        raise
    except (OSError, ValueError, TypeError) as err:
        raise CheckpointError(f"{file}: not a jetfm config ({type(err).__name__}: {err})") from err


def load_checkpoint(
    name_or_path: str | os.PathLike, device: str | torch.device | None = None
) -> LoadedCheckpoint:
    """A fine-tuned task head from a folder, Hub repo id or shipped short name.

    The head class comes from ``config.json`` (``architectures``), the task from the
    fine-tuning record in the config, the processor from ``preprocessor_config.json``.

    Args:
        name_or_path: checkpoint folder, Hub repo id or short name.
        device: where to put the model (default: CUDA when available).

    Raises:
        CheckpointError: the checkpoint cannot be found; its config is broken (naming the
            file and the field); it holds no task head (a backbone or pre-training model:
            fine-tune it first); its processor is missing; its weights do not fit.
    """
    name = os.fspath(name_or_path)
    try:
        folder = resolve_pretrained(name, required=(CONFIG_FILE, PROCESSOR_FILE))
    except CheckpointError as err:
        raise CheckpointError(
            f"{err} (a fine-tuned checkpoint is a folder with {CONFIG_FILE}, "
            f"model.safetensors and {PROCESSOR_FILE}, written by `jetfm finetune`)"
        ) from err
    config = load_config(folder)
    head = head_of_config(config)
    if head is None:
        raise CheckpointError(
            f"{folder / CONFIG_FILE}: architectures={config.architectures or ['JetFMModel']} is "
            f"not a fine-tuned task head (one of {list(HEAD_NAMES)}); fine-tune it with "
            "`jetfm finetune` first"
            + (" (`jetfm evaluate` checks a pre-trained backbone only with its MPM decoder, "
               "which this checkpoint does not ship)" if not config.architectures
               or config.architectures == ["JetFMModel"] else "")
        )  # fmt: skip
    processor = load_processor(folder)
    task = task_of_config(config)
    try:
        model = task.head_class.from_pretrained(str(folder), config=config, use_safetensors=True)
    except (OSError, ValueError, RuntimeError) as err:
        first = (str(err).strip().splitlines() or [""])[0]
        raise CheckpointError(
            f"cannot load the weights of {name!r} ({folder}) into {head} "
            f"({type(err).__name__}: {first}); was it saved by a different jetfm version?"
        ) from err
    return LoadedCheckpoint(model.to(resolve_device(device)).eval(), processor, task, folder)


def input_groups(model: Any, processor: JetProcessor) -> list[str]:
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


__all__ = [
    "LoadedCheckpoint",
    "input_groups",
    "load_checkpoint",
    "load_config",
    "load_processor",
    "resolve_device",
]
