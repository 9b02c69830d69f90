"""Fine-tuning a pretrained jetfm backbone on a task, on transformers' ``Trainer``.

Tasks (:data:`jetfm.tasks.TASKS`): ``tagging`` (jet classes), ``cwola`` (weakly supervised tagging from
two mixtures), ``track-id`` (per-track origin) and ``vertexing`` (track → vertex grouping).

Modes (:data:`MODES`):

* ``frozen`` — the encoder's weights are fixed, only the head learns (a linear probe with
  ``config.head_hidden_size = 0``, an MLP probe otherwise);
* ``full`` — everything learns, but the encoder starts frozen and its learning rate is then
  ramped up linearly to the head's (:class:`FinetuneTrainer`), so the randomly initialised
  head cannot wreck the pretrained features in the first steps;
* ``lora`` — low-rank adapters (``peft``, extra ``jetfm[lora]``) on the attention and
  feed-forward ``Linear`` layers of the encoder blocks, the head fully trained; the adapters
  are merged into the weights at the end, so the checkpoint is a plain jetfm model.
* ``probe`` — nothing is trained by gradient: the whole backbone stays as it is and a linear
  head is fitted as a logistic regression on its jet representation, the L2 strength chosen
  on the validation jets (:mod:`jetfm.probing`; ``tagging`` and ``cwola``). No learning rate,
  no seed dependence, seconds once the features are computed: the few-label mode for a
  backbone pre-trained with a jet-level objective.

In every gradient mode the backbone's class-attention *pooling* (``cls_token``, ``class_attention``,
``pool_norm``) trains with the head: Masked Particle Modelling never uses the pooled jet
state, so those weights are still at their random initialisation in a pretrained checkpoint
(a frozen random pooling would hand the probe a nearly constant jet state).

``from_scratch=True`` trains the same architecture (same config) from random weights — the
baseline every study compares against.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from transformers import EarlyStoppingCallback, PreTrainedModel

from jetfm.arguments import RunArguments, mapping_option, option, path_option, tuple_option
from jetfm.configuration import SIZE_PRESETS, JetFMConfig
from jetfm.data.schema import IGNORE_INDEX
from jetfm.defaults import (
    FINETUNE_EPOCHS,
    FINETUNE_EVALS,
    FINETUNE_FREEZE_FRACTION,
    FINETUNE_LR,
    FINETUNE_MAX_BATCH_SIZE,
    FINETUNE_MIN_BATCH_SIZE,
    FINETUNE_MIN_STEPS,
    FINETUNE_MODES,
    FINETUNE_PATIENCE,
    FINETUNE_PRETRAINED_HEAD_LR,
    FINETUNE_RAMP_FRACTION,
)
from jetfm.errors import CheckpointError, JetFMError, MissingExtraError
from jetfm.hub import resolve_pretrained
from jetfm.loading import PROCESSOR_FILE, load_processor
from jetfm.tasks import get_task
from jetfm.training import grouped_optimizer, ramp_param_groups
from jetfm.training_callbacks import BestCheckpointReport, HoldEvaluationUntil

logger = logging.getLogger(__name__)

MODES = FINETUNE_MODES


#: ``Linear`` layers that LoRA adapts: attention projections and SwiGLU of every encoder block.
LORA_TARGET_MODULES = r".*jetfm\.layers\.\d+\.(attn\.(q|kv|out)|ff\.(gate_up|down))"
#: head modules trained and saved in full under LoRA
HEAD_MODULES = ("classifier", "pair_proj", "pair_scorer")
#: backbone parameters not trained by MPM (the class-attention pooling): they train with the head
POOLING_PREFIXES = ("cls_token", "class_attention.", "pool_norm.")


#: fewer optimiser steps than this draw a warning: at about 1,000 labelled jets, 250 steps ×
#: 100 jets fine-tune well and 125 steps under-train by several points of accuracy
FEW_STEPS = 200

# The default schedule (:func:`default_schedule`). At about 1,000 labelled jets 250 steps of
# 100 jets at LR 2e-3 fine-tuned best, pre-trained and from scratch alike (the LR chosen on
# the validation set for both); 10 epochs of 256 jets, 40 steps, under-trained.
#: fewest optimiser steps of a default run, whatever the data set's size
MIN_STEPS = FINETUNE_MIN_STEPS
#: default epochs: the length of a default run on a data set large enough to exceed MIN_STEPS
DEFAULT_EPOCHS = FINETUNE_EPOCHS
#: default batch: a tenth of the training jets (so an epoch is ≥ 10 steps), within these bounds
MIN_BATCH_SIZE, MAX_BATCH_SIZE = FINETUNE_MIN_BATCH_SIZE, FINETUNE_MAX_BATCH_SIZE
#: default peak learning rate (the head's; ``full`` mode ramps the backbone up to it)
DEFAULT_LR = FINETUNE_LR
#: default validation passes per run, and evaluations without improvement before stopping
DEFAULT_EVALS, DEFAULT_PATIENCE = FINETUNE_EVALS, FINETUNE_PATIENCE


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Length of a fine-tuning run: ``batch_size`` jets per step, ``steps`` optimiser steps
    (``epochs`` passes over the ``train_jets``)."""

    train_jets: int
    batch_size: int
    steps: int

    @property
    def epochs(self) -> float:
        return self.steps * self.batch_size / max(1, self.train_jets)


def default_schedule(
    train_jets: int,
    *,
    batch_size: int | None = None,
    epochs: float | None = None,
    max_steps: int | None = None,
) -> Schedule:
    """The fine-tuning schedule for ``train_jets`` jets; what is not given scales with them.

    * batch size: a tenth of the training jets, clipped to [16, 256] (and never above the
      jets there are): 100 at 1,000 jets, 256 from 2,560 jets on;
    * steps: ``max_steps`` if given (> 0), else ``epochs`` passes if given, else
      ``DEFAULT_EPOCHS`` (10) passes but at least ``MIN_STEPS`` (250) steps.

    So 1,000 jets train 250 steps × 100 jets (25 epochs), 10,000 jets 400 steps × 256 jets
    (10 epochs), and a large set its 10 epochs; early stopping on the validation set
    (``finetune(early_stopping_patience=...)``) ends a run that stops improving sooner.
    """
    if train_jets < 1:
        raise JetFMError("no training jets to fine-tune on")
    if batch_size is None:
        batch_size = min(train_jets, max(MIN_BATCH_SIZE, min(MAX_BATCH_SIZE, train_jets // 10)))
    steps_per_epoch = math.ceil(train_jets / batch_size)
    if max_steps is not None and max_steps > 0:
        steps = int(max_steps)
    elif epochs is not None:
        steps = max(1, math.ceil(steps_per_epoch * epochs))
    else:
        steps = max(MIN_STEPS, math.ceil(steps_per_epoch * DEFAULT_EPOCHS))
    return Schedule(train_jets, int(batch_size), steps)


def few_steps_warning(total_steps: int, train_jets: int, batch_size: int) -> str | None:
    """The warning for a run too short to fine-tune well (``None`` when long enough): small
    label sets with few epochs give only a few dozen steps."""
    if total_steps >= FEW_STEPS:
        return None
    return (
        f"only {total_steps} optimiser steps ({train_jets} training jets, batch {batch_size}): "
        f"with about 1,000 labelled jets, 250 steps of 100 jets fine-tuned best and 125 steps "
        f"lost about 10 points of tagging accuracy (docs/results.md); leave --epochs/--max-steps "
        f"unset for the default schedule (at least {MIN_STEPS} steps), or raise them"
    )


def finetuning_info(config: Any) -> dict[str, Any]:
    """The fine-tuning record kept in the model config (``config.finetuning``, saved in
    ``config.json``): ``task``, ``mode``, ``from_scratch``, ``feature_groups`` (the input
    groups the head was trained on) and, for CWoLa, ``cwola`` (signal, background,
    fractions). Created empty on first use; returned by reference."""
    info = getattr(config, "finetuning", None)
    if not isinstance(info, dict):
        info = {}
        config.finetuning = info
    return info


# --- models ---------------------------------------------------------------------------------
def resolve_model(name_or_path: str | os.PathLike) -> str:
    """A size preset as it is; a folder, short name or Hub id as the local folder it resolves
    to, so that the config, the weights and the normalisation statistics all come from it."""
    path = str(name_or_path)
    if not Path(path).exists() and path in SIZE_PRESETS:
        return path
    return str(resolve_pretrained(path))


def hub_model_id(name_or_path: str | os.PathLike) -> str | None:
    """The Hub repo id of a pretrained checkpoint given by name, Hub id or folder, as a model
    card's ``base_model``: a shipped short name's repo, a Hub id as given, a folder's
    recorded ``repo_id`` (``provenance.json``); ``None`` for a size preset or an unpublished
    folder (a machine-local path names nothing on the Hub)."""
    from jetfm.hub import known_checkpoints, repo_id_for

    path = str(name_or_path)
    folder = Path(path)
    if folder.is_dir():
        try:
            return json.loads((folder / "provenance.json").read_text()).get("repo_id") or None
        except (OSError, ValueError):
            return None
    if path in SIZE_PRESETS:
        return None
    if path in known_checkpoints() or path.count("/") == 1:
        return repo_id_for(path)
    return None


def config_for_finetuning(name_or_path: str | os.PathLike, **overrides: Any) -> JetFMConfig:
    """Config of a pretrained model (local dir, or Hub name via ``from_pretrained``), or of a
    size preset (``tiny``/``small``/``base``) when no such directory exists."""
    path = str(name_or_path)
    if not Path(path).exists() and path in SIZE_PRESETS:
        return JetFMConfig.from_preset(path, **overrides)
    try:
        return JetFMConfig.from_pretrained(path, **overrides)
    except OSError as err:
        raise CheckpointError(f"cannot load a jetfm config from {path!r}: {err}") from err


def load_model_for_task(
    name_or_path: str | os.PathLike,
    task: str,
    *,
    label_names: Sequence[str] | None = None,
    from_scratch: bool = False,
    seed: int = 42,
    pretrained_head: bool = True,
    **config_overrides: Any,
) -> PreTrainedModel:
    """The task's head on the pretrained backbone (or on random weights).

    Args:
        name_or_path: pretrained checkpoint (backbone-only or MPM) or a size preset name; a
            preset implies ``from_scratch``.
        task: one of :data:`jetfm.tasks.TASKS`.
        label_names: jet class names for ``tagging`` (sets ``num_labels``/``id2label``).
        from_scratch: same config, random weights.
        seed: seeds the head's (and, from scratch, the backbone's) initialisation.
        pretrained_head: start a new head from the checkpoint's pre-training truth head that
            did the same job, where it has one that fits (:data:`TASK_HEADS_FROM_TRUTH`;
            ``track-id``: the track-origin head); False: a new random head.
        config_overrides: e.g. ``head_hidden_size=0`` for a linear probe.
    """
    spec = get_task(task)
    kwargs = dict(config_overrides)
    if not spec.per_particle:  # a tagger: its classes
        if task == "cwola":  # binary target: which mixture the jet came from
            names = ["background-rich", "signal-rich"]
        elif label_names:
            names = list(label_names)
        else:
            raise JetFMError("the tagging task needs the class names (label_names)")
        kwargs |= dict(
            num_labels=len(names),
            id2label=dict(enumerate(names)),
            label2id={n: i for i, n in enumerate(names)},
        )
    transformers.set_seed(seed)
    path = str(name_or_path)
    preset = not Path(path).exists() and path in SIZE_PRESETS
    if from_scratch or preset:
        model = spec.head_class(config_for_finetuning(path, **kwargs))
    else:
        model = head_on_checkpoint(path, task, **kwargs)
        if pretrained_head:
            start_head_from_truth(model, path, task)
    finetuning_info(model.config).update(task=task, from_scratch=bool(from_scratch or preset))
    return model


#: task → the pre-training truth head (:mod:`jetfm.modeling.truth_heads`) with the same job
#: and layout as the task's head (an ``MLPHead`` on ``[particle state, jet state]``)
TASK_HEADS_FROM_TRUTH: dict[str, str] = {"track-id": "origin"}


def start_head_from_truth(model: PreTrainedModel, folder: str | os.PathLike, task: str) -> bool:
    """Copy into ``model.classifier`` the pre-training truth head of checkpoint ``folder``
    that did ``task``'s job (``jetfm pretrain --truth origin=...`` for ``track-id``), when it
    has one of the same shapes: the head then starts as a working classifier rather than a
    random one. Records ``head_from`` in the fine-tuning info; returns whether it did."""
    from jetfm.modeling.continuation import state_fits, truth_head_weights

    truth = TASK_HEADS_FROM_TRUTH.get(task)
    saved = truth_head_weights(Path(folder), truth) if truth else {}
    if not saved:
        return False
    if not state_fits(model.classifier, saved):
        logger.info("%s: its pre-trained %s head does not fit a %s head with head_hidden_size "
                    "%s; a new head is created", folder, truth, task,
                    model.config.head_hidden_size)  # fmt: skip
        return False
    model.classifier.load_state_dict(saved)
    finetuning_info(model.config)["head_from"] = f"pre-trained truth head '{truth}'"
    logger.info("the %s head starts from the pre-trained %s head of %s", task, truth, folder)
    return True


def head_on_checkpoint(path: str | os.PathLike, task: str, **config_overrides: Any) -> Any:
    """The ``task`` head on the backbone of any jetfm checkpoint folder ``path``.

    A backbone or pre-training checkpoint gets a new head; so does a fine-tuned one of
    another task or other classes (its backbone, pooling included, is kept; its head is
    not). A checkpoint of the same task and classes continues with its head. One log line
    says which."""
    from safetensors.torch import load_file

    from jetfm.hub import check_checkpoint_folder
    from jetfm.tasks import head_of_config, task_of_config

    spec = get_task(task)
    folder = Path(path)
    config = config_for_finetuning(folder, **config_overrides)
    config.finetuning = {}  # the new run's record; the checkpoint's was for its own head
    saved = JetFMConfig.from_pretrained(folder)
    saved_task = task_of_config(saved).name if head_of_config(saved) else None
    same = saved_task == task and (
        spec.per_particle or list(saved.id2label.values()) == list(config.id2label.values())
    )
    check_checkpoint_folder(folder)  # safetensors only, headers checked
    state = load_file(folder / "model.safetensors")
    model = spec.head_class(config)
    if same:
        target, weights = model, state
        logger.info("continuing the %s head of %s", task, folder)
    else:
        prefixed = {k.removeprefix("jetfm."): v for k, v in state.items() if k.startswith("jetfm.")}
        target, weights = model.jetfm, prefixed or state  # a bare backbone has no prefix
        classes = "" if spec.per_particle else f" of {config.num_labels} classes"
        if saved_task is None:
            logger.info("a new %s head%s on the backbone of %s", task, classes, folder)
        else:
            logger.info("%s is a %s model: its backbone is kept and a new %s head%s is "
                        "created", folder, saved_task, task, classes)  # fmt: skip
    try:
        target.load_state_dict(weights, strict=True)
    except RuntimeError as err:
        first = (str(err).strip().splitlines() or [""])[0]
        raise CheckpointError(
            f"cannot load the weights of {folder} into {type(target).__name__}: {first}"
        ) from err
    return model


def apply_mode(
    model: PreTrainedModel,
    mode: str,
    *,
    lora_rank: int = 8,
    lora_alpha: float = 16.0,
    lora_dropout: float = 0.0,
) -> torch.nn.Module:
    """Prepare ``model`` for a fine-tuning mode (see the module doc); returns the model to
    train (a ``peft.PeftModel`` for ``lora``)."""
    if mode not in MODES:
        raise JetFMError(f"unknown fine-tuning mode {mode!r}; choose from {list(MODES)}")
    finetuning_info(model.config)["mode"] = mode
    if mode == "frozen":
        for name, param in model.named_parameters():
            param.requires_grad_(not encoder_parameter(name))
        return model
    if mode == "probe":  # fitted in closed form (jetfm.probing): no parameter takes gradients
        model.requires_grad_(False)
        return model
    if mode == "full":
        return model
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as err:
        raise MissingExtraError("lora", "LoRA fine-tuning (--mode lora)") from err
    # the untrained pooling is trained in full (cls_token, a bare parameter, stays as is)
    pooling = [f"class_attention.{i}" for i in range(len(model.jetfm.class_attention))]
    present = [m for m in HEAD_MODULES if hasattr(model, m)] + pooling + ["pool_norm"]
    config = LoraConfig(
        r=lora_rank,
        lora_alpha=lora_alpha,
        lora_dropout=lora_dropout,
        target_modules=LORA_TARGET_MODULES,
        modules_to_save=present,
    )
    return get_peft_model(model, config)


def encoder_depth(name: str, num_layers: int) -> int:
    """Depth of an encoder parameter for layer-wise LR decay: 0 for the particle embedding
    and register tokens, ``i + 1`` for block ``i``, ``num_layers + 1`` for the final norm."""
    rest = name.split("jetfm.", 1)[1]
    if rest.startswith("layers."):
        return int(rest.split(".", 2)[1]) + 1
    if rest.startswith("norm."):
        return num_layers + 1
    return 0


def encoder_parameter(name: str) -> bool:
    """Whether a parameter belongs to the pretrained encoder: ``jetfm.*`` (also under peft
    prefixes) except the class-attention pooling (:data:`POOLING_PREFIXES`)."""
    if name.startswith("jetfm."):
        rest = name[len("jetfm.") :]
    elif ".jetfm." in name:
        rest = name.split(".jetfm.", 1)[1]
    else:
        return False
    return not rest.startswith(POOLING_PREFIXES)


class FinetuneTrainer(transformers.Trainer):
    """``Trainer`` with separate head / encoder parameter groups and the encoder LR ramp.

    Args:
        backbone_ramp: ``(freeze_fraction, ramp_fraction[, lr_scale])``: the encoder's LR is
            0 for the first ``freeze_fraction`` of the steps, then ramps linearly to
            ``lr_scale`` (default 1) × the head's LR over the next ``ramp_fraction``.
            ``None`` → one LR.
            The pooling trains with the head (see the module doc).
        layer_lr_decay: with ``backbone_ramp``, layer-wise LR decay: a parameter at encoder
            depth ``k`` (:func:`encoder_depth`) of a backbone with ``L`` blocks learns at
            ``layer_lr_decay ** (L + 1 - k)`` × the encoder LR, so the layers nearest the
            input, which hold the most general features, move least. 1 → no decay.
        Other arguments: as ``transformers.Trainer``.
    """

    def __init__(
        self,
        *args: Any,
        backbone_ramp: tuple[float, ...] | None = None,
        layer_lr_decay: float = 1.0,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.backbone_ramp = backbone_ramp
        self.layer_lr_decay = layer_lr_decay

    def create_optimizer(self, model=None):
        if self.optimizer is None and self.backbone_ramp is not None:
            opt_model = self.model if model is None else model
            num_layers = opt_model.config.num_hidden_layers
            depths = range(num_layers + 2)
            # one optimiser part per encoder depth, all of them under the backbone LR ramp
            self.optimizer = grouped_optimizer(
                self,
                opt_model,
                lambda n: (
                    f"backbone.{encoder_depth(n, num_layers)}" if encoder_parameter(n) else "head"
                ),
                ("head", *(f"backbone.{k}" for k in depths)),
                lr_scale={
                    f"backbone.{k}": self.layer_lr_decay ** (num_layers + 1 - k) for k in depths
                },
            )
        return super().create_optimizer(model)

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if self.lr_scheduler is not None or self.backbone_ramp is None:
            return super().create_scheduler(num_training_steps, optimizer)
        base = super().create_scheduler(num_training_steps, optimizer)
        freeze, ramp, *rest = self.backbone_ramp
        scale = rest[0] if rest else 1.0
        freeze_steps = round(freeze * num_training_steps)
        ramp_steps = round(ramp * num_training_steps)
        try:
            backbone = {g["jetfm_part"] for g in base.optimizer.param_groups} - {"head"}
            self.lr_scheduler = ramp_param_groups(base, backbone, freeze_steps, ramp_steps, scale)
        except ValueError as err:
            raise JetFMError(
                f"the backbone LR ramp: {err} (lr_scheduler_type={self.args.lr_scheduler_type!r})"
            ) from None
        logger.info(
            "backbone frozen for %d steps, then LR ramped up over %d steps",
            freeze_steps,
            ramp_steps,
        )
        return self.lr_scheduler

    def train(self, *args: Any, **kwargs: Any):
        result = super().train(*args, **kwargs)
        merge = getattr(self.model, "merge_and_unload", None)
        if merge is not None:  # LoRA: fold the adapters in, save a plain jetfm model
            self.model = merge()
            self.model_wrapped = self.model
        return result


# --- metrics inside the Trainer -------------------------------------------------------------
def backbone_ramp_end(total_steps: int, freeze_fraction: float, ramp_fraction: float) -> int:
    """The step at which ``full`` mode's backbone reaches its learning rate (the scheduler's
    rounding, :meth:`FinetuneTrainer.create_scheduler`), at most the run's last step."""
    end = round(freeze_fraction * total_steps) + round(ramp_fraction * total_steps)
    return min(int(end), int(total_steps))


def run_summary(state: Any) -> dict[str, Any]:
    """``steps`` run, ``max_steps``, ``stopped_early`` and the restored ``best_step`` of a
    finished Trainer state (recorded in ``finetune_metrics.json``)."""
    best = state.best_model_checkpoint
    return {
        "steps": int(state.global_step),
        "max_steps": int(state.max_steps),
        "stopped_early": bool(state.global_step < state.max_steps),
        "best_step": int(Path(best).name.removeprefix("checkpoint-")) if best else None,
    }


def preprocess_logits(task: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Reduce per-batch outputs before the Trainer gathers them: per-particle tasks keep the
    predicted class / vertex id (``(B, N)``, padded by the Trainer with -100) instead of
    ``(B, N, C)`` logits or ``(B, N, N)`` pair scores."""
    from jetfm.modeling.vertexing import group_vertices

    head = get_task(task).head

    def fn(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if isinstance(logits, tuple):
            logits = logits[0]
        if head == "JetFMForTrackID":
            return logits.argmax(dim=-1)
        if head == "JetFMForVertexFinding":
            valid = labels != IGNORE_INDEX
            return torch.from_numpy(group_vertices(logits, valid)).to(logits.device)
        return logits

    return fn


def compute_metrics_fn(task: str) -> Callable[[Any], dict[str, float]]:
    """``compute_metrics`` for the Trainer (validation metrics of each task)."""
    from jetfm import metrics as M

    spec = get_task(task)

    def fn(pred: Any) -> dict[str, float]:
        out, labels = pred.predictions, pred.label_ids
        if isinstance(out, tuple):
            out = out[0]
        if not spec.per_particle:
            m = M.tagging_metrics(labels, M.softmax(out))
        elif spec.head == "JetFMForTrackID":
            m = M.track_id_metrics(labels, out)
        else:
            m = M.vertexing_metrics(labels, out)
        return {k: m[k] for k in spec.training_metrics if k in m}

    return fn


# --- data -----------------------------------------------------------------------------------
def processor_for_finetuning(
    name_or_path: str | os.PathLike,
    train: Any,
    feature_groups: Sequence[str] | None = None,
    max_jets: int | None = None,
    mapping: Any = None,
    *,
    refit: bool = False,
    from_scratch: bool = False,
) -> Any:
    """The processor to fine-tune with: the checkpoint's (normalisation travels with the
    model, :func:`jetfm.loading.load_processor`); ``mapping`` (a
    :class:`~jetfm.data.BranchMapping`) replaces its branch mapping (names, not statistics).

    A size preset (or ``from_scratch``) gets a processor fitted on the training files. A
    pretrained checkpoint without ``preprocessor_config.json`` is a :class:`CheckpointError`:
    its backbone learnt on statistics that are lost, and statistics refitted on other files
    scale its inputs differently. ``refit=True`` (``FinetuneArguments.refit_processor``,
    ``--refit-processor``) fits them on the training files anyway, with a warning."""
    from jetfm.data import JetProcessor

    path = Path(name_or_path)
    if (path / PROCESSOR_FILE).is_file():
        processor = load_processor(path)
        logger.info("using the normalisation statistics saved with %s", path)
        if mapping is not None:
            processor.branch_mapping = mapping_option(mapping).to_dict()
        return processor
    preset = not path.exists() and str(name_or_path) in SIZE_PRESETS
    if not (preset or from_scratch):
        if not refit:
            raise CheckpointError(
                f"{path}: no {PROCESSOR_FILE} in the checkpoint folder (the normalisation "
                "statistics its backbone was pre-trained with); statistics fitted on the "
                "training files would scale its inputs differently. To fit them anyway, pass "
                "FinetuneArguments(refit_processor=True) (command line: --refit-processor)"
            )
        logger.warning(
            "%s has no %s: normalisation statistics refitted on %s (the backbone was "
            "pre-trained on other statistics, so its inputs are scaled differently)",
            path, PROCESSOR_FILE, train,
        )  # fmt: skip
    from jetfm.data.reading import detect_feature_groups

    # default: the groups the training files have (four-vector-only files are common)
    groups = tuple(feature_groups) if feature_groups else detect_feature_groups(train, mapping)
    processor = JetProcessor(feature_groups=groups, branch_mapping=mapping)
    processor.fit(train, max_jets=max_jets, progress=False)
    if preset or from_scratch:
        logger.info("fitted normalisation statistics on %s", train)
    return processor


def _check_classes(classes: Sequence[str], train: Any, processor: Any) -> list[str]:
    """``classes`` as a list, after checking that the training files have their branches."""
    from jetfm.data.reading import resolve_label_names

    chosen = list(dict.fromkeys(classes))
    if len(chosen) < 2:
        raise JetFMError(f"classes= needs at least two class names, got {list(classes)}")
    available = resolve_label_names(train, processor.mapping)
    missing = [c for c in chosen if c not in available]
    if missing:
        raise JetFMError(
            f"classes {missing} have no {processor.mapping.label_prefix}* branch in the training "
            f"files ({train}); available: {list(available)}"
        )
    return chosen


def _data_groups(processor: Any, config: JetFMConfig, requested: Sequence[str] | None) -> list[str]:
    available = [g for g in processor.feature_groups if g in config.feature_groups]
    if requested is None:
        return available
    bad = [g for g in requested if g not in available]
    if bad:
        raise JetFMError(
            f"feature groups {bad} are not available: the model takes "
            f"{list(config.feature_groups)}, the processor reads {list(processor.feature_groups)}"
        )
    return [g for g in available if g in requested]


#: where a run saves its :class:`FinetuneArguments`, in its output folder
FINETUNE_ARGS_NAME = "finetune_args.json"
#: the checkpoint file of the normalisation statistics
#: the arguments :func:`finetune` also takes by position, in order
POSITIONAL_FIELDS = ("model", "task", "train", "val", "output_dir")


@dataclasses.dataclass
class FinetuneArguments(RunArguments):
    """The options of a fine-tuning run (:func:`finetune`, ``jetfm finetune``).

    The fields are :func:`finetune`'s parameters, with the same defaults. Paths are kept as
    strings, sequences as tuples, the mapping as a :class:`~jetfm.data.BranchMapping`;
    :meth:`to_json_file` / :meth:`from_json_file` save and read them back unchanged. A run
    saves them in its output folder as ``finetune_args.json``.
    """

    FILE_NAME = FINETUNE_ARGS_NAME

    model: str = dataclasses.field(
        metadata={"help": "Pretrained checkpoint (folder, short name or Hub id), or a size "
                  "preset (tiny/small/base, implying from_scratch)."}
    )  # fmt: skip
    task: str = dataclasses.field(
        metadata={"help": "What to learn: tagging, cwola, track-id or vertexing."}
    )
    train: Any = dataclasses.field(
        metadata={"help": "Training files: ROOT, parquet or HDF5 (path, glob, directory or list)."}
    )
    val: Any = dataclasses.field(
        metadata={"help": "Validation files (early stopping and the best checkpoint)."}
    )
    output_dir: str = dataclasses.field(metadata={"help": "The fine-tuned checkpoint folder."})
    mode: str = option(
        "full",
        "frozen, full (backbone LR ramp), lora, or probe (a logistic "
        "regression on the frozen backbone).",
    )
    from_scratch: bool = option(False, "Same architecture and config, random weights (the "
                                       "baseline).")  # fmt: skip
    max_train_jets: int | None = option(
        None,
        "Use a random subset of this many training jets (data-efficiency studies; for cwola "
        "the cap on both mixtures together).",
    )
    epochs: float | None = option(
        None, "Passes over the training jets (None: 10, but at least 250 optimiser steps)."
    )
    max_steps: int = option(-1, "Optimiser steps; > 0 overrides epochs.")
    batch_size: int | None = option(
        None, "Jets per step (None: a tenth of the training jets, within [16, 256])."
    )
    lr: float | None = option(
        None,
        "Peak learning rate of the head (None: 2e-3, or 5e-4 for a head that starts from a "
        "pre-trained truth head; both chosen on the validation set at 1,000 labels).",
    )
    seed: int = option(42, "Seeds the subset, the head and the data order.")
    pretrained_head: bool = option(
        True,
        "track-id: start the head from the checkpoint's pre-trained track-origin head where it "
        "has one (jetfm pretrain --truth origin=...); False: a new random head.",
    )
    feature_groups: tuple[str, ...] | None = option(
        None, "Input groups to use (None: all the model and the data share)."
    )
    classes: tuple[str, ...] | None = option(
        None, "Tagging only: learn these classes (label_* branch names) instead of every one."
    )
    other_classes: str = option(
        "raise",
        "With classes: 'raise' (a jet of another class is a DataError naming the file and "
        "entry) or 'skip' such jets.",
    )
    signal: str | None = option(None, "CWoLa: the signal class.")
    background: str | None = option(None, "CWoLa: the background class.")
    fractions: tuple[float, ...] = option((0.2, 0.6), "CWoLa: signal fractions of the two "
                                                      "mixtures.")  # fmt: skip
    freeze_fraction: float = option(FINETUNE_FREEZE_FRACTION, "full mode: fraction of steps "
                                    "with the backbone frozen.")  # fmt: skip
    ramp_fraction: float = option(
        FINETUNE_RAMP_FRACTION, "full mode: fraction of steps ramping the backbone LR up."
    )
    backbone_lr_scale: float = option(
        1.0, "full mode: the backbone's LR after the ramp, relative to the head's."
    )
    layer_lr_decay: float = option(
        1.0, "full mode: each encoder block learns at this × the LR of the block above (1: off)."
    )
    early_stopping_patience: int | None = option(
        DEFAULT_PATIENCE,
        "Stop after this many evaluations without improvement (None: never); the best "
        "checkpoint is restored either way.",
    )
    evals_per_run: int = option(DEFAULT_EVALS, "Validation passes over the run (also the "
                                               "checkpoint cadence).")  # fmt: skip
    lora_rank: int = option(8, "lora mode: adapter rank.")
    config_overrides: dict[str, Any] | None = option(
        None, "Model config fields, e.g. {'head_hidden_size': 0} for a linear probe."
    )
    mapping: Any = option(
        None,
        "A BranchMapping (its dict, a layout name such as 'qg-npz', or a YAML path) for files "
        "not in the JetClass layout; saved with the fine-tuned processor.",
    )
    compile: bool = option(False, "torch.compile the model (batches padded to a few bucket "
                                  "lengths, one graph each).")  # fmt: skip
    refit_processor: bool = option(
        False,
        "Fit the normalisation statistics on the training files when the checkpoint has no "
        "preprocessor_config.json (otherwise an error: its backbone learnt on other ones).",
    )
    report_to: tuple[str, ...] = option(
        ("none",),
        "Where the Trainer also reports the run (its integrations: tensorboard, wandb, "
        "mlflow, ...); training_log.csv and training_curves.png are written either way.",
    )
    keep_checkpoints: bool = option(
        False,
        "Keep the intermediate checkpoint-* folders (the two newest) after the run has finished.",
    )
    training_overrides: dict[str, Any] = dataclasses.field(
        default_factory=dict, metadata={"help": "Any other TrainingArguments field."}
    )

    def __post_init__(self) -> None:
        for name in ("model", "train", "val", "output_dir"):
            setattr(self, name, path_option(getattr(self, name)))
        self.feature_groups = tuple_option(self.feature_groups, str)
        self.classes = tuple_option(self.classes, str)
        self.fractions = tuple_option(self.fractions, float)
        self.report_to = tuple_option(self.report_to, str) or ("none",)
        self.mapping = mapping_option(self.mapping)
        self.training_overrides = dict(self.training_overrides or {})
        if self.config_overrides is not None:
            self.config_overrides = dict(self.config_overrides)


@dataclasses.dataclass
class FinetuneResult:
    """What :func:`finetune` returns."""

    output_dir: Path
    trainer: transformers.Trainer
    model: PreTrainedModel
    metrics: dict[str, Any]
    #: the run's options (also saved as ``finetune_args.json`` in ``output_dir``)
    arguments: FinetuneArguments | None = None


def finetune_arguments(
    args: FinetuneArguments | Any = None, *positional: Any, **kwargs: Any
) -> FinetuneArguments:
    """The :class:`FinetuneArguments` of a :func:`finetune` call: ``args`` itself, or the
    keyword call ``(model, task, train, val, output_dir, **options)``, whose options that are
    no field go to ``training_overrides``."""
    if isinstance(args, FinetuneArguments):
        if positional or kwargs:
            raise TypeError("finetune() takes FinetuneArguments or the arguments, not both")
        return args
    values = ([] if args is None else [args]) + list(positional)
    if len(values) > len(POSITIONAL_FIELDS):
        raise TypeError(
            f"finetune() takes at most {len(POSITIONAL_FIELDS)} positional arguments "
            f"({', '.join(POSITIONAL_FIELDS)}), got {len(values)}"
        )
    given = dict(zip(POSITIONAL_FIELDS, values, strict=False))
    twice = sorted(set(given) & set(kwargs))
    if twice:
        raise TypeError(f"finetune() got multiple values for {twice}")
    fields = {f.name for f in dataclasses.fields(FinetuneArguments)}
    options = {k: v for k, v in kwargs.items() if k in fields}
    extra = {k: v for k, v in kwargs.items() if k not in fields}
    if extra:
        options["training_overrides"] = {**dict(options.get("training_overrides") or {}), **extra}
    return FinetuneArguments(**given, **options)


def finetune(
    args: FinetuneArguments | str | os.PathLike | None = None, *positional: Any, **kwargs: Any
) -> FinetuneResult:
    """Fine-tune ``model`` on ``task`` and write the final checkpoint into ``output_dir``.

    Called with a :class:`FinetuneArguments` (``finetune(FinetuneArguments(...))``) or with
    its fields: ``finetune(model, task, train, val, output_dir, mode=..., ...)`` (the first
    five also by position); keywords that are no field go to ``training_overrides``.

    Args:
        model: pretrained checkpoint dir/name (or a size preset, implying from scratch).
        task: ``tagging``, ``cwola``, ``track-id`` or ``vertexing``.
        train / val: ROOT, parquet or HDF5 files (path, glob, directory or list).
        mode: ``frozen``, ``full`` (backbone LR ramp), ``lora`` or ``probe`` (a linear head
            fitted as a logistic regression on the frozen backbone; LR and schedule unused).
        from_scratch: same architecture and config, random weights (the baseline).
        max_train_jets: use a random subset of this many training jets (data-efficiency
            studies; for ``cwola`` the cap on both mixtures together).
        epochs / max_steps / batch_size: the run's length; what is left unset scales with the
            number of training jets (:func:`default_schedule`: batch = a tenth of the jets
            within [16, 256], 10 epochs but at least 250 steps; 250 steps × 100 jets at 1,000
            jets). ``max_steps > 0`` overrides ``epochs``.
        lr: peak learning rate. ``None``: 2e-3 (chosen on the validation set at 1,000
            labels for pre-trained and from-scratch models alike), or 5e-4 for a head that
            starts from a pre-trained truth head (2e-3 washes its start out).
        seed: seeds the subset, the head and the data order.
        pretrained_head: ``track-id``: start the head from the checkpoint's pre-trained
            track-origin head where it has one (see :func:`start_head_from_truth`).
        feature_groups: input groups to use (default: all the model and data share).
        classes: tagging only: learn these classes (``label_*`` branch names, e.g.
            ``["QCD", "Tbqq"]``) instead of every class in the files.
        other_classes: with ``classes``: ``"raise"`` (default: a jet of another class is a
            DataError naming the file and entry, so nothing is dropped unasked) or ``"skip"``
            such jets (to learn some classes of files that mix them all; counted in the log).
        signal / background / fractions: CWoLa classes and the two signal fractions.
        freeze_fraction / ramp_fraction: the backbone LR ramp of ``full`` mode.
        backbone_lr_scale: in ``full`` mode the backbone's LR after the ramp, relative to the
            head's (below 1 keeps pretrained features from being overwritten early).
        layer_lr_decay: in ``full`` mode, each encoder block learns at this factor × the LR of
            the block above it (the embedding lowest); 1 (default) → one encoder LR.
        early_stopping_patience: stop after this many evaluations without improvement of the
            validation metric (``None``: never); either way the checkpoint with the best
            validation metric is restored at the end (``load_best_model_at_end``) and saved.
        evals_per_run: validation passes over the run (also the checkpoint cadence).
        lora_rank: adapter rank in ``lora`` mode.
        config_overrides: e.g. ``{"head_hidden_size": 0}`` for a linear probe.
        mapping: a :class:`~jetfm.data.BranchMapping`, or a layout name of
            :mod:`jetfm.data.layouts` (``"qg-npz"``, ``"toptag-pandas-h5"``, ...), for files
            not in the JetClass layout; saved with the fine-tuned processor.
        compile: ``torch.compile`` the model (static shapes: batches padded to a few bucket
            lengths, one graph each); a one-off compilation for faster steps on a GPU.
        refit_processor: a checkpoint without ``preprocessor_config.json`` is an error unless
            this is set: then statistics are fitted on the training files (with a warning).
        training_overrides: any other ``TrainingArguments`` field.

    Returns:
        :class:`FinetuneResult` with the output dir, trainer, trained model, the final
        validation metrics (for ``cwola`` also the AUC on true labels, ``true_auc``) and the
        arguments (saved as ``finetune_args.json`` in ``output_dir``).
    """
    options = finetune_arguments(args, *positional, **kwargs)
    (model, task, train, val, output_dir) = (getattr(options, f) for f in POSITIONAL_FIELDS)
    mode, from_scratch, max_train_jets = options.mode, options.from_scratch, options.max_train_jets
    epochs, max_steps, batch_size = options.epochs, options.max_steps, options.batch_size
    lr, seed, feature_groups = options.lr, options.seed, options.feature_groups
    classes, other_classes = options.classes, options.other_classes
    signal, background, fractions = options.signal, options.background, options.fractions
    freeze_fraction, ramp_fraction = options.freeze_fraction, options.ramp_fraction
    backbone_lr_scale, layer_lr_decay = options.backbone_lr_scale, options.layer_lr_decay
    early_stopping_patience, evals_per_run = options.early_stopping_patience, options.evals_per_run
    lora_rank, config_overrides = options.lora_rank, options.config_overrides
    mapping, compile, training_overrides = (
        options.mapping,
        options.compile,
        options.training_overrides,
    )
    from jetfm.data import JetCollator, JetDataset
    from jetfm.metrics import write_metrics
    from jetfm.training import run_training, training_arguments
    from jetfm.weak_supervision import build_mixture_dataset

    spec = get_task(task)
    if mode not in MODES:
        raise JetFMError(f"unknown fine-tuning mode {mode!r}; choose from {list(MODES)}")
    if task == "cwola" and (signal is None or background is None):
        raise JetFMError("the cwola task needs --signal and --background class names")
    if classes and task != "tagging":
        raise JetFMError(f"classes= applies to tagging only, not to the {task!r} task")
    if other_classes != "raise" and not classes:
        # without classes= every label branch is in use: a jet of none is a broken file
        raise JetFMError(f"other_classes={other_classes!r} applies with classes= only")
    if not 0.0 < layer_lr_decay <= 1.0:
        raise JetFMError(f"layer_lr_decay must be in (0, 1], got {layer_lr_decay}")
    if layer_lr_decay != 1.0 and mode != "full":
        raise JetFMError(f"layer_lr_decay applies to mode='full' only, not {mode!r}")
    if mode == "probe":
        check_probe_options(task, config_overrides)
    base_model = None if from_scratch else hub_model_id(model)
    model = resolve_model(model)  # a name would miss the checkpoint's normalisation below
    config = config_for_finetuning(model)
    if mode == "probe" and not from_scratch:
        warn_if_pooling_untrained(config, model)
    processor = processor_for_finetuning(
        model,
        train,
        feature_groups,
        mapping=mapping,
        refit=options.refit_processor,
        from_scratch=from_scratch,
    )
    groups = _data_groups(processor, config, feature_groups)
    if feature_groups is None:  # the checkpoint may know groups the files lack
        from jetfm.data.reading import groups_for_files

        groups = list(groups_for_files([train, val], groups, processor.mapping, str(model)))
    targets = (spec.label,)
    if task == "tagging":
        # the fine-tuning data's classes, not pre-training's: those with training jets
        from jetfm.data.class_counts import training_classes

        # the files' classes (or the user's mapping's), not the checkpoint's
        processor.label_names = list(mapping.labels) if mapping and mapping.labels else None
        chosen = _check_classes(classes, train, processor) if classes else None
        processor.label_names = training_classes(train, val, processor.mapping, chosen)
    elif spec.label == "labels":
        processor.label_names = None  # every label branch (CWoLa picks its two classes)
    train_ds = JetDataset(
        train, processor, targets, feature_groups=groups, other_classes=other_classes
    )
    val_ds = JetDataset(val, processor, targets, feature_groups=groups, other_classes=other_classes)
    label_names = processor.label_names if spec.label == "labels" else None

    rng = np.random.default_rng(seed)
    if task == "cwola":
        train_set = build_mixture_dataset(
            train_ds, signal, background, fractions, seed=seed, max_jets=max_train_jets
        )
        val_set = build_mixture_dataset(val_ds, signal, background, fractions, seed=seed + 1)
        logger.info("CWoLa mixtures: %d train jets, fractions %s", len(train_set),
                    train_set.mixtures.fractions)  # fmt: skip
    else:
        train_set = train_ds
        if max_train_jets is not None and max_train_jets < len(train_ds):
            keep = np.sort(rng.choice(len(train_ds), size=max_train_jets, replace=False))
            train_set = torch.utils.data.Subset(train_ds, keep.tolist())
        val_set = val_ds

    overrides = dict(config_overrides or {})
    if mode == "probe":
        overrides["head_hidden_size"] = 0  # a logistic regression is one linear layer
    net = load_model_for_task(
        model,
        task,
        label_names=label_names,
        from_scratch=from_scratch,
        seed=seed,
        pretrained_head=options.pretrained_head,
        **overrides,
    )
    info = finetuning_info(net.config)
    info["feature_groups"] = list(groups)
    if base_model and not info["from_scratch"]:
        info["base_model"] = base_model  # the model card's base_model
    if task == "cwola":
        info["cwola"] = {
            "signal": signal,
            "background": background,
            "fractions": list(train_set.mixtures.fractions),
        }
    if lr is None:
        lr = FINETUNE_PRETRAINED_HEAD_LR if "head_from" in info else DEFAULT_LR
    trainable = apply_mode(net, mode, lora_rank=lora_rank)

    schedule = default_schedule(
        len(train_set), batch_size=batch_size, epochs=epochs, max_steps=max_steps
    )
    total, batch_size = schedule.steps, schedule.batch_size
    logger.info("fine-tuning schedule: %d steps × %d jets (%.3g epochs of %d jets), LR %g",
                total, batch_size, schedule.epochs, len(train_set), lr)  # fmt: skip
    if warning := few_steps_warning(total, len(train_set), batch_size):
        logger.warning(warning)
    every = max(1, math.ceil(total / max(1, evals_per_run)))
    trainer_args = training_arguments(
        str(output_dir),
        seed=seed,
        learning_rate=lr,
        max_steps=total,  # the schedule's length, whatever the epochs
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        eval_strategy="steps",
        eval_steps=every,
        save_strategy="steps",
        save_steps=every,
        save_total_limit=1,
        logging_steps=min(50, every),
        load_best_model_at_end=True,
        metric_for_best_model=spec.metric,
        greater_is_better=spec.greater_is_better,
        label_names=[spec.label],
        report_to=list(options.report_to),
        **training_overrides,
    )
    callbacks: list[Any] = [BestCheckpointReport()]
    if mode == "full":
        # evaluations of the frozen backbone and of the LR ramp are never the "best" model,
        # and early stopping counts only the evaluations after them
        hold = backbone_ramp_end(total, freeze_fraction, ramp_fraction)
        callbacks.append(HoldEvaluationUntil(hold))
        logger.info("validation (best checkpoint, early stopping) from step %d on, after the "
                    "backbone's freeze and LR ramp", hold)  # fmt: skip
    if early_stopping_patience is not None:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=early_stopping_patience))
    trainer_cls = functools.partial(
        FinetuneTrainer,
        backbone_ramp=(
            (freeze_fraction, ramp_fraction, backbone_lr_scale) if mode == "full" else None
        ),
        layer_lr_decay=layer_lr_decay,
        preprocess_logits_for_metrics=preprocess_logits(task),
    )
    buckets = None
    if compile:
        from jetfm.data.batching import default_buckets
        from jetfm.training import compile_model

        compile_model(trainable)
        buckets = default_buckets(processor.max_particles, getattr(train_set, "counts", None))
    collator = JetCollator(targets=targets, feature_groups=groups, buckets=buckets)
    if mode == "probe":
        trainer, fit = _fit_probe(task, trainable, trainer_args, train_set, val_set, collator,
                                  processor, trainer_cls)  # fmt: skip
        run_record = {"probe": fit.summary()}
    else:
        trainer = run_training(
            trainable,
            trainer_args,
            train_set,
            eval_dataset=val_set,
            data_collator=collator,
            compute_metrics=compute_metrics_fn(task),
            callbacks=callbacks,
            processor=processor,
            trainer_cls=trainer_cls,
            keep_checkpoints=options.keep_checkpoints,
        )
        run_record = run_summary(trainer.state)
    final = trainer.model
    metrics = {k.removeprefix("eval_"): v for k, v in trainer.evaluate().items()}
    if task == "cwola":
        metrics["true_auc"] = cwola_true_auc(
            final, val_ds, signal, background, collator, batch_size
        )
    metrics |= {"task": task, "mode": mode, "from_scratch": bool(info["from_scratch"]),
                "train_jets": len(train_set), **run_record}  # fmt: skip
    write_metrics(metrics, Path(output_dir) / "finetune_metrics.json")
    if trainer.is_world_process_zero():
        options.to_json_file(Path(output_dir) / FINETUNE_ARGS_NAME)
    return FinetuneResult(Path(output_dir), trainer, final, metrics, options)


def check_probe_options(task: str, config_overrides: dict[str, Any] | None) -> None:
    """The clear errors of ``mode="probe"``: a jet-level task and a linear head."""
    from jetfm.probing import PROBE_TASKS

    if task not in PROBE_TASKS:
        raise JetFMError(f"mode='probe' fits a jet classifier: tasks {', '.join(PROBE_TASKS)}, "
                         f"not {task!r} (use mode='frozen' for a frozen backbone)")  # fmt: skip
    hidden = (config_overrides or {}).get("head_hidden_size")
    if hidden not in (None, 0):
        raise JetFMError(
            f"mode='probe' fits a linear head: head_hidden_size must be 0, not {hidden}"
        )


def warn_if_pooling_untrained(config: JetFMConfig, name_or_path: str | os.PathLike) -> None:
    """``mode="probe"`` reads the pooled jet state as pre-trained: say so when MPM alone made
    the checkpoint ``name_or_path`` (``config``: its config; the pooling is still random)."""
    from jetfm.probing import pooling_pretrained

    if not pooling_pretrained(config):
        logger.warning("mode='probe' on %s: its class-attention pooling was never trained (no "
                       "jet-level pre-training objective), so the probe reads a random pooled "
                       "state beside the mean particle state; mode='frozen' or 'full' train the "
                       "pooling and usually do better on such a checkpoint", name_or_path)  # fmt: skip


def _fit_probe(
    task: str,
    model: PreTrainedModel,
    trainer_args: transformers.TrainingArguments,
    train_set: Any,
    val_set: Any,
    collator: Any,
    processor: Any,
    trainer_cls: Callable[..., transformers.Trainer],
) -> tuple[transformers.Trainer, Any]:
    """``mode="probe"``: fit the head (:func:`jetfm.probing.fit_probe_head`) and write the
    checkpoint folder as a trained run does; returns a trainer holding the model (for the
    validation metrics) and the fit."""
    from jetfm.probing import fit_probe_head
    from jetfm.training import save_final_checkpoint

    fit = fit_probe_head(model, train_set, val_set, collator, label=get_task(task).label,
                         progress=not trainer_args.disable_tqdm)  # fmt: skip
    logger.info("probe: C = %g chosen on %d validation jets (cross-entropy %s)", fit.c,
                fit.val_jets, {f"{c:g}": round(v, 4) for c, v in fit.val_loss.items()})  # fmt: skip
    finetuning_info(model.config)["probe"] = fit.summary()  # saved in config.json
    trainer = trainer_cls(model=model, args=trainer_args, eval_dataset=val_set,
                          data_collator=collator, compute_metrics=compute_metrics_fn(task))  # fmt: skip
    save_final_checkpoint(trainer, processor=processor, run_info={"probe": fit.summary()})
    return trainer, fit


def cwola_true_auc(
    model: PreTrainedModel,
    dataset: Any,
    signal: str,
    background: str,
    collator: Any,
    batch_size: int = 256,
) -> float:
    """AUC of a CWoLa classifier (score: signal-rich probability) on the true labels of the
    signal and background jets of a labelled dataset."""
    from sklearn.metrics import roc_auc_score

    from jetfm.runner import JetRunner, run_dataset
    from jetfm.weak_supervision import SIGNAL_RICH, class_index

    names = dataset.processor.label_names
    s, b = class_index(names, signal, "signal"), class_index(names, background, "background")
    keep = np.flatnonzero((dataset.labels == s) | (dataset.labels == b))
    subset = torch.utils.data.Subset(dataset, keep.tolist())
    logits = run_dataset(JetRunner(model), subset, collator, batch_size)["logits"]
    score = torch.softmax(torch.as_tensor(logits), dim=-1)[:, SIGNAL_RICH].numpy()
    return float(roc_auc_score(dataset.labels[keep] == s, score))


__all__ = [
    "FINETUNE_ARGS_NAME",
    "FinetuneArguments",
    "FinetuneResult",
    "FinetuneTrainer",
    "LORA_TARGET_MODULES",
    "MODES",
    "Schedule",
    "TASK_HEADS_FROM_TRUTH",
    "apply_mode",
    "encoder_parameter",
    "finetuning_info",
    "hub_model_id",
    "start_head_from_truth",
    "compute_metrics_fn",
    "cwola_true_auc",
    "default_schedule",
    "finetune",
    "finetune_arguments",
    "config_for_finetuning",
    "resolve_model",
    "load_model_for_task",
    "head_on_checkpoint",
    "processor_for_finetuning",
    "preprocess_logits",
]
