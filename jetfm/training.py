"""Trainer wiring shared by pre-training, tokenizer training and fine-tuning.

Two functions: :func:`training_arguments` gives ``transformers.TrainingArguments`` with jetfm
defaults, :func:`run_training` runs ``transformers.Trainer`` (resume included) and writes the
final, complete checkpoint folder atomically:

* ``config.json`` + ``model.safetensors`` (``save_pretrained``),
* ``preprocessor_config.json`` (the processor's feature statistics),
* any ``extra_files`` (e.g. the VQ-VAE ``tokenizer/`` sub-folder),
* ``training_args.json`` and ``run_config.json`` (exact model config, seed, world size, steps).

The folder is first written next to ``output_dir`` and then renamed into place, so a reader
never sees a half-written checkpoint; the Trainer's ``checkpoint-*`` folders are carried over,
so ``--resume`` keeps working.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import TrainerCallback, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, IntervalStrategy, get_last_checkpoint

from jetfm.atomic import atomic_folder
from jetfm.model_card import write_model_card
from jetfm.training_callbacks import (
    ReadableLogCallback,
    ReadableProgressCallback,
    TrainingCurvesCallback,
)
from jetfm.version import __version__

logger = logging.getLogger(__name__)

TRAINING_ARGS_FILE = "training_args.json"
RUN_CONFIG_FILE = "run_config.json"


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 matrix products natively (AVX512-BF16 or AMX), the
    instructions that make bf16 autocast faster than float32 on a CPU."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # an older torch without the probes
        return False


def training_arguments(
    output_dir: str, *, seed: int = 42, cpu_bf16: bool = False, **overrides: Any
) -> TrainingArguments:
    """``TrainingArguments`` with jetfm defaults; any field can be overridden.

    Defaults: no external reporting, keep every batch key (``remove_unused_columns=False``),
    step-based saving/evaluation (evaluation is switched off by :func:`run_training` when no
    eval set is given), two checkpoints kept, AdamW at 5e-4 with cosine decay and 5 % warm-up,
    bf16 (or fp16) and the fused AdamW kernel only on CUDA, data-loader workers and pinned
    memory only on GPU machines, ``use_cpu`` on machines without an accelerator (so
    ``torchrun`` gives gloo DDP on CPU). ``cpu_bf16=True`` turns bf16 autocast on for CPU
    runs too (``jetfm pretrain --bf16``; a warning where the CPU lacks native bf16).
    """
    cuda = torch.cuda.is_available()
    mps = torch.backends.mps.is_available()
    cpu = not cuda and not mps
    bf16 = (cuda and torch.cuda.is_bf16_supported()) or (cpu and cpu_bf16)
    if cpu and cpu_bf16 and not cpu_has_native_bf16():
        logger.warning(
            "bf16 autocast on a CPU without AVX512-BF16 or AMX: its bf16 matrix products are "
            "emulated and the steps are likely slower than in float32"
        )
    defaults: dict[str, Any] = dict(
        output_dir=str(output_dir),
        seed=seed,
        data_seed=seed,
        report_to="none",
        remove_unused_columns=False,
        save_strategy="steps",
        save_steps=500,
        save_total_limit=2,
        eval_strategy="steps",
        eval_steps=500,
        logging_steps=50,
        logging_first_step=True,
        # the filter reads every step's loss on the host (a synchronisation per step) and
        # hides NaN losses from the log; a NaN should show
        logging_nan_inf_filter=False,
        learning_rate=5e-4,
        weight_decay=0.01,
        # one kernel for the whole update instead of several per parameter tensor
        optim="adamw_torch_fused" if cuda else "adamw_torch",
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        max_grad_norm=1.0,
        per_device_train_batch_size=256,
        per_device_eval_batch_size=256,
        bf16=bf16,
        fp16=cuda and not bf16,
        dataloader_num_workers=min(4, os.cpu_count() or 1) if cuda else 0,
        dataloader_pin_memory=cuda,
        disable_tqdm=True,
        # Explicit CPU mode also makes accelerate set up multi-process CPU (gloo) DDP.
        use_cpu=cpu,
    )
    defaults.update(overrides)
    return TrainingArguments(**defaults)


#: the batch size that :func:`scaled_learning_rate` takes as its reference
REFERENCE_BATCH_SIZE = 256


def scaled_learning_rate(base_lr: float, batch_size: int) -> float:
    """The LR for ``batch_size`` from the LR ``base_lr`` tuned at batch 256: square-root
    scaling, ``base_lr · sqrt(batch_size / 256)``, the rule that keeps AdamW's training
    dynamics for a given number of samples seen (Malladi et al. 2022, arXiv 2205.10287;
    linear scaling over-shoots with adaptive optimisers). With the warm-up of
    :func:`training_arguments` it holds from batch 256 to 4096."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return base_lr * (batch_size / REFERENCE_BATCH_SIZE) ** 0.5


def compile_model(model: torch.nn.Module, backend: str = "inductor") -> torch.nn.Module:
    """Compile ``model``'s forward in place with ``torch.compile`` (backward through
    AOTAutograd), static shapes: one graph per batch shape, so feed it bucketed batches
    (:func:`~jetfm.data.batching.default_buckets`). Parameters, ``state_dict`` and
    ``save_pretrained`` are unchanged. ``backend``: torch.compile's (``"aot_eager"`` traces
    the same graphs without generating kernels, a quick check). Returns the model."""
    import torch._dynamo

    # one graph per bucket and per train/eval mode: keep them all
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    model.compile(dynamic=False, backend=backend)
    return model


class ThroughputCallback(TrainerCallback):
    """Logs ``jets_per_second``: training jets per second of wall time since the previous
    log line (the whole step: data, forward, backward, optimiser, logging)."""

    def __init__(self) -> None:
        self._last: tuple[int, float] | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        import time

        self._last = (state.global_step, time.perf_counter())

    def on_log(self, args, state, control, logs=None, **kwargs):
        import time

        if logs is None or "loss" not in logs or self._last is None:
            return
        step, then = self._last
        now = time.perf_counter()
        if state.global_step > step:
            batch = args.per_device_train_batch_size * args.world_size
            jets = (state.global_step - step) * batch * args.gradient_accumulation_steps
            logs["jets_per_second"] = round(jets / (now - then), 1)
        self._last = (state.global_step, now)


# --- learning-rate ramps for parts of a model ----------------------------------------------
class RampedLambda:
    """LR multiplier of a model part: ``base(step)`` × 0 until ``freeze_steps``, then a linear
    ramp to 1 over ``ramp_steps``. A class (not a closure) so the scheduler state saves."""

    # ``LambdaLR.state_dict`` stores each callable's ``__dict__``; keeping ``base`` (a
    # function) out of it keeps scheduler.pt loadable with ``torch.load(weights_only=True)``,
    # which the Trainer uses on --resume.
    __slots__ = ("base", "__dict__")

    def __init__(
        self, base: Callable[[int], float], freeze_steps: int, ramp_steps: int, scale: float = 1.0
    ):
        self.base = base
        self.freeze_steps = int(freeze_steps)
        self.ramp_steps = int(ramp_steps)
        self.scale = float(scale)

    def factor(self, step: int) -> float:
        if step < self.freeze_steps:
            return 0.0
        if self.ramp_steps <= 0:
            return self.scale
        return self.scale * min(1.0, (step - self.freeze_steps + 1) / self.ramp_steps)

    def __call__(self, step: int) -> float:
        return self.base(step) * self.factor(step)


def ramp_param_groups(
    base: torch.optim.lr_scheduler.LRScheduler,
    parts: Iterable[str],
    freeze_steps: int,
    ramp_steps: int,
    scale: float = 1.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Wrap the LambdaLR ``base`` so that the optimiser groups whose ``jetfm_part`` is in
    ``parts`` follow :class:`RampedLambda`; the other groups keep their schedule."""
    from torch.optim.lr_scheduler import LambdaLR

    if not isinstance(base, LambdaLR):
        raise ValueError(
            f"an LR ramp needs a LambdaLR schedule (linear, cosine, constant...); "
            f"got {type(base).__name__}"
        )
    parts = set(parts)
    opt = base.optimizer
    lambdas = [
        RampedLambda(fn, freeze_steps, ramp_steps, scale) if g.get("jetfm_part") in parts else fn
        for fn, g in zip(base.lr_lambdas, opt.param_groups, strict=True)
    ]
    for g in opt.param_groups:  # restart from the base LRs with the new multipliers
        g["lr"] = g["initial_lr"]
    return LambdaLR(opt, lambdas)


def grouped_optimizer(
    trainer: transformers.Trainer,
    model: torch.nn.Module,
    part_of: Callable[[str], str],
    parts: Sequence[str],
    lr_scale: Mapping[str, float] | None = None,
) -> torch.optim.Optimizer:
    """The Trainer's optimiser with one parameter group per (part, decayed or not), in the
    order of ``parts``; each group carries its ``jetfm_part`` (for :func:`ramp_param_groups`)
    and, for parts in ``lr_scale``, that fraction of the LR. Frozen parameters are left out."""
    decay = set(trainer.get_decay_parameter_names(model))
    lr_scale = dict(lr_scale or {})
    groups = []
    for part in parts:
        for decayed in (True, False):
            params = [
                p
                for n, p in model.named_parameters()
                if p.requires_grad and (n in decay) == decayed and part_of(n) == part
            ]
            if params:
                group = {"params": params, "jetfm_part": part}
                group["weight_decay"] = trainer.args.weight_decay if decayed else 0.0
                if part in lr_scale:
                    group["lr"] = trainer.args.learning_rate * lr_scale[part]
                groups.append(group)
    cls, kwargs = trainer.get_optimizer_cls_and_kwargs(trainer.args, model)
    return cls(groups, **kwargs)


#: parameter names of an MPM model's particle embedding (see ``mpm_embedding_lr_scale``)
EMBEDDING_PREFIX = "jetfm.embeddings."


def _mpm_part(name: str) -> str:
    """Which part of an MPM model a parameter belongs to: embedding, encoder or rest."""
    if name.startswith(EMBEDDING_PREFIX):
        return "embedding"
    return "encoder" if name.startswith("jetfm.") else "rest"


class ComponentLossTrainer(transformers.Trainer):
    """``Trainer`` that also logs the model output's scalar diagnostics — every
    ``*_loss`` field (e.g. ``target_loss``, ``pid_loss``) and ``perplexity`` / ``usage`` —
    averaged over the steps since the last log line (main process values)."""

    LOG_KEYS = ("perplexity", "usage")
    #: evaluation batches on which MPM models' context gain is measured (0: not measured);
    #: a few batches suffice to see whether the jet context is being used
    context_gain_batches = 4

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._component_sums: dict[str, Any] = {}
        self._component_counts: dict[str, int] = {}

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"):
        """The usual evaluation, plus (MPM models) ``{prefix}_context_gain``: how much the
        loss rises when jets are decoded from another jet's context, and
        ``{prefix}_embedding_rank`` / ``{prefix}_state_common_share``: how far the particle
        states have collapsed (see :mod:`jetfm.diagnostics`)."""
        metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        dataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        from itertools import islice

        from jetfm.diagnostics import context_gain, representation_collapse
        from jetfm.modeling.pretraining import JetFMForMaskedParticleModeling

        model = self.accelerator.unwrap_model(self.model)
        is_mpm = isinstance(model, JetFMForMaskedParticleModeling)
        if self.context_gain_batches <= 0 or dataset is None or not is_mpm:
            return metrics

        loader = self.get_eval_dataloader(dataset)
        collapse = representation_collapse(model, islice(loader, self.context_gain_batches))
        extra = {
            f"{metric_key_prefix}_embedding_rank": round(collapse["embedding_rank"], 3),
            f"{metric_key_prefix}_state_common_share": round(collapse["state_common_share"], 4),
        }
        if model.config.mpm_loss_weight > 0:  # no decoder pass at 0
            gain = context_gain(model, islice(loader, self.context_gain_batches))
            extra[f"{metric_key_prefix}_context_gain"] = round(gain["context_gain"], 5)
        self.log(extra)
        metrics.update(extra)
        return metrics

    @staticmethod
    def _mpm_schedule(model: Any) -> tuple[float, float]:
        """``(mpm_embedding_lr_scale, mpm_encoder_delay)`` of an MPM model ((1, 0) otherwise)."""
        from jetfm.modeling.pretraining import JetFMForMaskedParticleModeling

        if not isinstance(model, JetFMForMaskedParticleModeling):
            return 1.0, 0.0
        return float(model.config.mpm_embedding_lr_scale), float(model.config.mpm_encoder_delay)

    def create_optimizer(self, model=None):
        """The usual optimiser; for MPM models with ``mpm_embedding_lr_scale`` ≠ 1 or
        ``mpm_encoder_delay`` > 0 the parameters are grouped into the particle embedding,
        the encoder and the rest (decoder, target), so that each part gets its own LR."""
        opt_model = self.model if model is None else model
        scale, delay = self._mpm_schedule(opt_model)
        if self.optimizer is None and (scale != 1.0 or delay > 0):
            self.optimizer = grouped_optimizer(
                self, opt_model, _mpm_part, ("rest", "encoder", "embedding"), {"embedding": scale}
            )
        return super().create_optimizer(model)

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        """The usual schedule; with ``mpm_encoder_delay`` the encoder and embedding stay
        frozen for that fraction of the steps, then ramp up linearly over as many steps."""
        _, delay = self._mpm_schedule(self.model)
        if self.lr_scheduler is not None or delay <= 0:
            return super().create_scheduler(num_training_steps, optimizer)
        base = super().create_scheduler(num_training_steps, optimizer)
        steps = round(delay * num_training_steps)
        logger.info("the encoder stays frozen for the first %d of %d steps, then ramps up over "
                    "%d (encoder delay %g)", steps, num_training_steps, steps, delay)  # fmt: skip
        self.lr_scheduler = ramp_param_groups(base, ("encoder", "embedding"), steps, steps)
        return self.lr_scheduler

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, outputs = super().compute_loss(
            model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch
        )
        if model.training and isinstance(outputs, Mapping):
            for key, value in outputs.items():
                wanted = (key.endswith("_loss") or key in self.LOG_KEYS) and key != "loss"
                if wanted and torch.is_tensor(value) and value.dim() == 0:
                    self._component_sums[key] = self._component_sums.get(key, 0.0) + value.detach()
                    self._component_counts[key] = self._component_counts.get(key, 0) + 1
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._component_sums:
            for key, total in self._component_sums.items():
                logs[key] = round(float(total) / self._component_counts[key], 5)
            self._component_sums, self._component_counts = {}, {}
        super().log(logs, start_time)


def _shards_itself(dataset: Any) -> bool:
    """A streaming dataset that splits its files between ranks by itself
    (:class:`~jetfm.data.datasets.StreamingJetDataset`)."""
    return isinstance(dataset, torch.utils.data.IterableDataset) and hasattr(dataset, "shard")


def _yields_batches(dataset: Any) -> bool:
    """A dataset that yields whole batches (:class:`~jetfm.data.device_batches.DeviceJetBatches`)."""
    return getattr(dataset, "yields_batches", False)


class _SelfShardingMixin:
    """Give a self-sharding stream a plain per-rank DataLoader under DDP.

    ``accelerate`` would otherwise either read the stream on rank 0 and dispatch slices
    (while the dataset keeps only rank 0's files: half the data never seen) or wrap it in
    ``IterableDatasetShard`` (each rank keeps every k-th batch of its own shard: data lost
    again). Each rank reads its own files; batches are moved to the device by the Trainer.
    A dataset that yields whole batches on the device gets a loader that passes them on.
    """

    def get_train_dataloader(self):
        if _yields_batches(self.train_dataset):
            # batches come ready (built on the device, sharded by rank): no workers, no collate
            return torch.utils.data.DataLoader(self.train_dataset, batch_size=None)
        if not (_shards_itself(self.train_dataset) and self.args.world_size > 1):
            return super().get_train_dataloader()
        workers = self.args.dataloader_num_workers
        params: dict[str, Any] = dict(
            batch_size=self._train_batch_size,
            collate_fn=self.data_collator,
            num_workers=workers,
            pin_memory=self.args.dataloader_pin_memory,
        )
        if workers > 0:
            params["persistent_workers"] = self.args.dataloader_persistent_workers
            params["prefetch_factor"] = self.args.dataloader_prefetch_factor
        return torch.utils.data.DataLoader(self.train_dataset, **params)


class _CheckpointExtrasCallback(TrainerCallback):
    """Also write the processor and extra files into each ``checkpoint-*`` folder, so every
    intermediate checkpoint is as usable as the final one."""

    def __init__(self, processor: Any, extra_files: Mapping[str, Any]):
        self.processor = processor
        self.extra_files = extra_files

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            _write_extras(folder, self.processor, self.extra_files)


def _save_object(obj: Any, dest: Path) -> None:
    """Write ``obj`` at ``dest``: a path is copied, a callable is called with the path, an
    object with ``save_pretrained`` saves itself into the folder ``dest``, a mapping is
    written as JSON."""
    if isinstance(obj, (str, os.PathLike)):
        src = Path(obj)
        if src.is_dir():
            shutil.copytree(src, dest, dirs_exist_ok=True)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
    elif hasattr(obj, "save_pretrained"):
        obj.save_pretrained(str(dest))
    elif callable(obj):
        obj(dest)
    elif isinstance(obj, Mapping):
        _write_json(dest, obj)
    else:
        raise TypeError(f"extra file {dest.name!r}: expected a path, a callable, an object "
                        f"with save_pretrained or a mapping, got {type(obj).__name__}")  # fmt: skip


def _write_extras(folder: Path, processor: Any, extra_files: Mapping[str, Any]) -> None:
    if processor is not None:
        if not hasattr(processor, "save_pretrained"):
            raise TypeError(f"processor {type(processor).__name__} has no save_pretrained")
        processor.save_pretrained(str(folder))
    for name, obj in extra_files.items():
        _save_object(obj, folder / name)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def save_final_checkpoint(
    trainer: transformers.Trainer,
    processor: Any = None,
    extra_files: Mapping[str, Any] | None = None,
    run_info: Mapping[str, Any] | None = None,
    keep_checkpoints: bool = True,
) -> Path:
    """Write the complete checkpoint folder into ``trainer.args.output_dir`` atomically.

    Everything is saved into a temporary sibling folder; the existing contents of the output
    folder that the new checkpoint does not replace are moved into it — the Trainer's
    ``checkpoint-*`` folders only with ``keep_checkpoints`` (a finished run needs them no
    more) —; then the folders are swapped by renames. Only the main process writes.
    """
    args = trainer.args
    out = Path(args.output_dir).resolve()
    if not trainer.is_world_process_zero():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    umask = os.umask(0)
    os.umask(umask)
    with atomic_folder(out) as tmp:
        model = trainer.accelerator.unwrap_model(trainer.model)
        model.save_pretrained(str(tmp))
        _write_extras(tmp, processor, extra_files or {})
        _write_json(tmp / TRAINING_ARGS_FILE, json.loads(args.to_json_string()))
        config = getattr(model, "config", None)
        run = {
            "jetfm_version": __version__,
            "transformers_version": transformers.__version__,
            "torch_version": torch.__version__,
            "model_class": type(model).__name__,
            "seed": args.seed,
            "data_seed": args.data_seed,
            "world_size": args.world_size,
            "global_step": trainer.state.global_step,
            "epoch": trainer.state.epoch,
            "log_history": trainer.state.log_history,
            "model_config": config.to_dict() if config is not None else None,
            **dict(run_info or {}),
        }
        _write_json(tmp / RUN_CONFIG_FILE, run)
        # now that the training record exists; named after the output, not the temp folder
        write_model_card(tmp, name=out.name)
        # some writers (safetensors via a temp file) leave 0600: a checkpoint is shared data
        for path in tmp.rglob("*"):
            if path.is_file():
                os.chmod(path, 0o666 & ~umask)
        if out.exists():
            for entry in out.iterdir():  # keep anything else (and checkpoint-* on request)
                dropped = not keep_checkpoints and entry.name.startswith(PREFIX_CHECKPOINT_DIR)
                if not dropped and not (tmp / entry.name).exists():
                    os.replace(entry, tmp / entry.name)
    if not keep_checkpoints:
        logger.info("removed the intermediate checkpoint-* folders of the finished run in %s "
                    "(keep them with keep_checkpoints / --keep-checkpoints)", out)  # fmt: skip
    return out


def use_readable_logs(trainer: transformers.Trainer) -> None:
    """Swap the Trainer's log printers (a dict of strings per entry) for the readable lines of
    :mod:`jetfm.training_callbacks`, on the progress bar or on stdout."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    handler = trainer.callback_handler
    if any(type(cb) is ProgressCallback for cb in handler.callbacks):
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(ReadableProgressCallback())
    if any(type(cb) is PrinterCallback for cb in handler.callbacks):
        trainer.remove_callback(PrinterCallback)
        trainer.add_callback(ReadableLogCallback())


def run_training(
    model: torch.nn.Module,
    args: TrainingArguments,
    train_dataset: Any,
    eval_dataset: Any = None,
    data_collator: Callable | None = None,
    compute_metrics: Callable | None = None,
    callbacks: Iterable[TrainerCallback] = (),
    processor: Any = None,
    resume_from_checkpoint: bool | str | None = None,
    trainer_cls: type[transformers.Trainer] = transformers.Trainer,
    extra_files: dict | None = None,
    run_info: Mapping[str, Any] | None = None,
    keep_checkpoints: bool = False,
) -> transformers.Trainer:
    """Train ``model`` with ``trainer_cls`` and write the final checkpoint folder.

    Args:
        model: a ``PreTrainedModel`` whose ``forward`` takes the collator's batch keys and
            returns a ``loss``.
        args: from :func:`training_arguments`. A streaming (``IterableDataset``) training set
            needs ``max_steps``. Evaluation is switched off when ``eval_dataset`` is None.
        processor: saved as ``preprocessor_config.json`` (``save_pretrained``) next to the
            weights, in the final folder and in every ``checkpoint-*``.
        resume_from_checkpoint: a ``checkpoint-*`` path, or True for the latest one in
            ``args.output_dir`` (a fresh start, with a log line, when there is none).
        extra_files: ``{relative name: path | callable(dest) | object with save_pretrained |
            mapping (written as JSON)}`` also written into the checkpoint folders (e.g.
            ``{"tokenizer": tokenizer}``).
        run_info: extra facts recorded in the final folder's ``run_config.json``.
        keep_checkpoints: keep the ``checkpoint-*`` folders (weights and optimiser state; the
            two newest, ``save_total_limit``) after the run has finished; by default they are
            removed once the final folder is written (they are needed only while the run can
            still be resumed).

    Every run also writes ``training_log.csv`` and ``training_curves.png`` into its folder
    and prints its log entries as readable lines (:mod:`jetfm.training_callbacks`).

    Returns:
        The trainer, after training (``trainer.state.log_history`` holds the losses).
    """
    streaming = isinstance(train_dataset, torch.utils.data.IterableDataset)
    if streaming and not hasattr(train_dataset, "__len__") and args.max_steps <= 0:
        raise ValueError("a streaming (IterableDataset) training set needs max_steps > 0")
    if eval_dataset is None and args.eval_strategy != IntervalStrategy.NO:
        args.eval_strategy = IntervalStrategy.NO
        if args.load_best_model_at_end:
            args.load_best_model_at_end = False
    extra_files = dict(extra_files or {})
    callbacks = [*callbacks, ThroughputCallback(), TrainingCurvesCallback()]
    if processor is not None or extra_files:
        callbacks.append(_CheckpointExtrasCallback(processor, extra_files))
    own_loader = _shards_itself(train_dataset) or _yields_batches(train_dataset)
    if own_loader and not issubclass(trainer_cls, _SelfShardingMixin):
        trainer_cls = type(trainer_cls.__name__, (_SelfShardingMixin, trainer_cls), {})
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=data_collator,
        compute_metrics=compute_metrics,
        callbacks=callbacks,
    )
    use_readable_logs(trainer)
    if resume_from_checkpoint is True:
        last = get_last_checkpoint(args.output_dir) if os.path.isdir(args.output_dir) else None
        if last is None:
            logger.info("no checkpoint-* in %s: starting from scratch", args.output_dir)
        resume_from_checkpoint = last
    trainer.train(resume_from_checkpoint=resume_from_checkpoint or None)
    save_final_checkpoint(
        trainer,
        processor=processor,
        extra_files=extra_files,
        run_info={"resumed_from": resume_from_checkpoint or None, **dict(run_info or {})},
        keep_checkpoints=keep_checkpoints,
    )
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()  # other ranks return once the folder is complete
    return trainer


__all__ = [
    "ComponentLossTrainer",
    "REFERENCE_BATCH_SIZE",
    "RUN_CONFIG_FILE",
    "RampedLambda",
    "TRAINING_ARGS_FILE",
    "ThroughputCallback",
    "compile_model",
    "cpu_has_native_bf16",
    "scaled_learning_rate",
    "grouped_optimizer",
    "ramp_param_groups",
    "run_training",
    "save_final_checkpoint",
    "training_arguments",
    "use_readable_logs",
]
