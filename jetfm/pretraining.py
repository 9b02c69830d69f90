"""Pre-training a jetfm backbone by Masked Particle Modelling, as a library function.

:func:`pretrain` fits the processor's normalisation statistics on the training files (one
streaming pass), prepares the target (k-means centroids for ``target="kmeans"``, the frozen
tokenizer for ``target="vqvae"``), trains with the transformers ``Trainer`` and leaves a
complete checkpoint folder in ``output_dir``: load the backbone with
``JetFMModel.from_pretrained(DIR)`` or everything with
``JetFMForMaskedParticleModeling.from_pretrained(DIR)``. ``init_from=CHECKPOINT`` starts from
a run or a release (its architecture, statistics, backbone and, same target, decoder) instead
of random weights. Its options are the fields of :class:`PretrainArguments`, saved with the
run as ``pretrain_args.json``; ``jetfm pretrain`` is this function on the command line::

    import jetfm

    result = jetfm.pretrain(data="train/*.root", output_dir="runs/mpm", size="tiny",
                            max_steps=300, batch_size=64)
    print(result.metrics["loss"], result.output_dir)
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from jetfm.arguments import RunArguments, mapping_option, option, path_option, tuple_option

logger = logging.getLogger(__name__)

#: peak learning rate at batch 256 (other batch sizes: jetfm.training.scaled_learning_rate)
BASE_LR = 5e-4
#: the size presets a pre-training run can start from
SIZES = ("tiny", "small", "base", "large")
#: defaults of ``embedding_lr_scale`` and ``encoder_delay``: a frozen particle embedding and an
#: encoder that starts after the decoder keep MPM from collapsing the representation
#: (see docs/guide/pretraining.md). The delay is for a fresh decoder: a run that continues a
#: checkpoint's decoder (``init_from``, same target) starts its encoder at once, since that
#: decoder already reads it (a quarter of a long run's steps would otherwise pass with the
#: backbone frozen)
EMBEDDING_LR_SCALE = 0.0
ENCODER_DELAY = 0.25
#: where a run saves its :class:`PretrainArguments`, in its output folder
PRETRAIN_ARGS_NAME = "pretrain_args.json"
#: written at the end of a run with ``val``: the jet-mass check of :mod:`jetfm.reconstruction`
RECONSTRUCTION_PLOT = "mpm_reconstruction.png"
#: ``--truth default``: the loss weights of jetfm.configuration.DEFAULT_TRUTH_WEIGHTS
#: (kept here as text so that building the command-line parser imports no torch)
_DEFAULT_TRUTH = "class=1,origin=0.5"


@dataclasses.dataclass
class PretrainArguments(RunArguments):
    """The options of a pre-training run (:func:`pretrain`, ``jetfm pretrain``).

    One field per command-line option (``--max-steps`` is ``max_steps``), with the same
    defaults; ``output_dir`` is ``--output`` and ``mapping`` the mapping ``--branch-map``
    reads. Paths are kept as strings, the mapping as a :class:`~jetfm.data.BranchMapping`;
    :meth:`to_json_file` / :meth:`from_json_file` save and read them back unchanged.
    """

    FILE_NAME = PRETRAIN_ARGS_NAME

    data: str | list[str] = dataclasses.field(
        metadata={"help": "Training files: a ROOT file, a glob, a directory or a list of them."}
    )
    output_dir: str = dataclasses.field(
        metadata={"help": "The checkpoint folder the run writes (and its checkpoint-* folders)."}
    )
    val: str | list[str] | None = option(
        None, "Validation files (glob): the validation loss and the jet-mass reconstruction check."
    )
    groups: str = option(
        "auto",
        "Comma-separated feature groups (kinematics,pid,tracks); 'auto' takes every group the "
        "files have. A list of names is joined.",
    )
    max_particles: int = option(128, "Constituents kept per jet.")
    streaming: bool = option(False, "Stream the files instead of reading them into memory "
                                    "(needs max_steps).")  # fmt: skip
    max_steps: int = option(-1, "Optimiser steps (-1: run `epochs` passes).")
    epochs: float = option(1.0, "Passes over the training jets when max_steps is -1.")
    batch_size: int = option(256, "Jets per device and optimiser step.")
    lr: float | None = option(
        None,
        f"Peak learning rate. None: {BASE_LR:g} at batch 256, scaled by sqrt(batch/256) for "
        "other batch sizes (docs/guide/pretraining.md).",
    )
    seed: int = option(42, "Random seed of the weights, the masks and the data order.")
    save_steps: int = option(500, "Write a checkpoint-* folder (and evaluate) every N steps.")
    logging_steps: int = option(50, "Log the losses every N steps.")
    resume: bool = option(False, "Resume from the last checkpoint-* in output_dir.")
    mapping: Any = option(
        None,
        "Where the quantities live in the input files: a BranchMapping, its dict, a layout "
        "name such as 'omnilearned-h5' or the path of a YAML file (None: the JetClass names).",
    )
    report_to: tuple[str, ...] = option(
        ("none",),
        "Where the Trainer also reports the run (its integrations: tensorboard, wandb, "
        "mlflow, ...); training_log.csv and training_curves.png are written either way.",
    )
    keep_checkpoints: bool = option(
        False,
        "Keep the intermediate checkpoint-* folders (the two newest: older ones are rotated "
        "out while the run goes) after the run has finished (a finished "
        "run is continued with init_from, not resume).",
    )
    compile: bool = option(
        False,
        "torch.compile the training step (static shapes, one graph per bucket): a one-off "
        "compilation (minutes) for faster steps, worth it for long runs on a GPU or a CPU.",
    )
    bf16: bool = option(
        False,
        "bfloat16 autocast on a CPU: matrix products in bf16 (fast on CPUs with AVX512-BF16 "
        "or AMX); attention and the flow target's splines stay float32, so do checkpoints. "
        "On CUDA bf16 is on either way.",
    )
    device_batches: bool = option(
        True,
        "Keep the processed training features in device memory and sample, bucket and pad "
        "batches there; False uses a DataLoader with per-jet collation. Not with streaming.",
    )
    feature_cache: str | None = option(
        None,
        "Cache folder of the processed training features (None: OUTPUT.features beside "
        "output_dir); reused while the files and the processor are unchanged.",
    )
    buckets: str | None = option(
        None,
        "Comma-separated padded lengths of the batches (None: the training jets' multiplicity "
        "quartiles, rounded up to multiples of 8, and max_particles). A list is joined.",
    )
    target: str = option("flow", "The MPM target, one of jetfm.configuration.MPM_TARGETS.")
    size: str | None = option(None, "Model size preset: tiny, small, base or large "
                                    "(None: base, or the init_from checkpoint's).")  # fmt: skip
    init_from: str | None = option(
        None,
        "Continue pre-training from this checkpoint (folder, short name or Hub id): its "
        "architecture, normalisation and backbone; its MPM decoder too when it has one for "
        "the same target.",
    )
    tokenizer: str | None = option(None, "Trained tokenizer folder (target 'vqvae').")
    mask_fraction: float = option(0.4, "Fraction of each jet's particles masked.")
    mask_in_encoder: bool = option(
        False, "Send mask tokens through the encoder (arXiv 2401.13537) instead of dropping them."
    )
    embedding_lr_scale: float = option(
        EMBEDDING_LR_SCALE,
        "Particle-embedding LR relative to lr (0: frozen at its random initialisation, which "
        "keeps the backbone fine-tunable).",
    )
    encoder_delay: float | None = option(
        None,
        "Fraction of the steps with the encoder frozen (then ramped up over as many), so a "
        "fresh decoder learns to read it first (None: 0.25, or 0 when init_from loads the "
        "checkpoint's decoder for the same target).",
    )
    group_dropout: float = option(
        0.0,
        "Probability of dropping each optional feature group (pid, tracks) from a jet's "
        "encoder input, so the backbone also serves kinematics-only data.",
    )
    layer_scale_init: float | None = option(
        None, "Initial LayerScale of the blocks (None: the config's, 1e-3)."
    )
    num_codes: int = option(512, "k-means codes (target 'kmeans').")
    kmeans_particles: int = option(200_000, "Particles sampled to fit k-means.")
    truth: str | dict | None = option(
        None,
        "Supervised objectives on generator truth beside MPM, with their loss weights: "
        "'class=1,origin=0.5,vertex=0.2' (objectives left out are off), 'default' "
        f"({_DEFAULT_TRUTH}) or None / 'none' (pure MPM); a dict of weights is taken as it "
        "is. Objectives whose branches the files lack are turned off with a log line.",
    )
    mpm_weight: float = option(
        1.0,
        "Weight of the masked-particle (MPM) loss beside the truth objectives; 0 trains the "
        "truth objectives alone (on the visible particles; the decoder is not run).",
    )
    supervised_classes: str | None = option(
        None,
        "Comma-separated jet classes the class objective supervises (None: every class of "
        "the files, QCD split by its hard parton into QCD_light, QCD_gluon, QCD_heavy; "
        "'QCD' names all three). Jets of the other classes are held out of the class loss "
        "but still pre-train through MPM and the other objectives. A list is joined.",
    )

    def __post_init__(self) -> None:
        for name in ("data", "output_dir", "val", "feature_cache", "init_from", "tokenizer"):
            setattr(self, name, path_option(getattr(self, name)))
        self.mapping = mapping_option(self.mapping)
        self.report_to = tuple_option(self.report_to, str) or ("none",)
        if not isinstance(self.groups, str):
            self.groups = ",".join(str(g) for g in self.groups)
        if self.buckets is not None and not isinstance(self.buckets, str):
            self.buckets = ",".join(str(int(b)) for b in self.buckets)
        if self.supervised_classes is not None and not isinstance(self.supervised_classes, str):
            self.supervised_classes = ",".join(str(c) for c in self.supervised_classes)


@dataclasses.dataclass
class PretrainResult:
    """What :func:`pretrain` returns."""

    output_dir: Path
    trainer: Any
    model: Any
    #: ``steps``, ``loss`` (the last logged) and, with ``val``, the reconstruction check's
    metrics: dict[str, Any]


def check_options(args: PretrainArguments) -> None:
    """Refuse out-of-range numbers before any data is read (fitting the statistics on a large
    set takes minutes; a typo should not cost them)."""
    from jetfm.configuration import MPM_TARGETS
    from jetfm.errors import JetFMError

    if args.target not in MPM_TARGETS:
        raise JetFMError(f"--target must be one of {list(MPM_TARGETS)}, got {args.target!r}")
    if args.size is not None and args.size not in SIZES:
        raise JetFMError(f"--size must be one of {list(SIZES)}, got {args.size!r}")
    truth_weights(args.truth)  # a malformed --truth fails here
    checks = (
        ("--mask-fraction", args.mask_fraction, 0 < args.mask_fraction < 1, "in (0, 1)"),
        ("--embedding-lr-scale", args.embedding_lr_scale, args.embedding_lr_scale >= 0, ">= 0"),
        (
            "--encoder-delay",
            args.encoder_delay,
            args.encoder_delay is None or 0 <= args.encoder_delay < 0.5,
            "in [0, 0.5)",
        ),
        ("--group-dropout", args.group_dropout, 0 <= args.group_dropout <= 1, "in [0, 1]"),
        ("--mpm-weight", args.mpm_weight, args.mpm_weight >= 0, ">= 0"),
        ("--num-codes", args.num_codes, args.num_codes >= 2, ">= 2"),
        ("--kmeans-particles", args.kmeans_particles, args.kmeans_particles > 0, "> 0"),
    )
    for flag, value, ok, allowed in checks:
        if not ok:
            raise JetFMError(f"{flag} must be {allowed}, got {value}")
    if args.mpm_weight == 0 and not truth_weights(args.truth):
        raise JetFMError("--mpm-weight 0 leaves nothing to train: add --truth objectives")


def pretrain(args: PretrainArguments | None = None, **kwargs: Any) -> PretrainResult:
    """Pre-train a backbone by Masked Particle Modelling into ``args.output_dir``, with the
    supervised objectives on simulation truth of ``args.truth`` beside it.

    Args:
        args: the run's options; without it ``kwargs`` are the :class:`PretrainArguments`
            fields (``pretrain(data=..., output_dir=..., size="tiny")``).

    Returns:
        :class:`PretrainResult`: the output folder (a complete checkpoint, with the arguments
        in ``pretrain_args.json``), the trainer, the trained model and the run's metrics
        (with truth objectives, the last logged ``mpm_loss``, ``class_loss``, ...).
    """
    from transformers import set_seed

    from jetfm.training import ComponentLossTrainer, run_training

    if args is None:
        args = PretrainArguments(**kwargs)
    elif kwargs:
        raise TypeError("pretrain() takes PretrainArguments or keyword fields, not both")
    elif not isinstance(args, PretrainArguments):
        raise TypeError(f"pretrain() takes PretrainArguments, got {type(args).__name__}")
    saved = args
    args = dataclasses.replace(args)  # the run adjusts its copy (streaming, tokenizer)
    check_options(args)
    set_seed(args.seed)
    training_args = trainer_arguments(args)
    with training_args.main_process_first(desc="reading and caching the training features"):
        data = prepare_data(args)
    if data["features"] is not None:
        data["train"] = device_batches(args, data, training_args)
    model, extra = build_model(args, data)
    if args.compile:
        from jetfm.training import compile_model

        compile_model(model)
    continuation = continuation_info(args, data["init_from"])
    if continuation:  # every checkpoint-* of the run knows its start, not only the final folder
        from jetfm.modeling.continuation import CONTINUATION_NAME

        extra = {**extra, CONTINUATION_NAME: continuation}
    n_params = sum(p.numel() for p in model.jetfm.parameters())
    size = model.config.size
    weights = model.config.truth_objectives or {}
    listed = ", ".join(f"{k} {v:g}" for k, v in weights.items())
    if model.config.mpm_loss_weight == 0:
        objectives = f"truth alone ({listed}; the MPM loss off)"
    else:
        objectives = f"MPM {args.target}" + (f" + truth ({listed})" if weights else "")
    logger.info("%s, %s backbone (%.2fM parameters)", objectives, size, n_params / 1e6)
    trainer = run_training(
        model,
        training_args,
        data["train"],
        eval_dataset=data["val"],
        data_collator=data["collator"],
        processor=data["processor"],
        resume_from_checkpoint=True if args.resume else None,
        trainer_cls=ComponentLossTrainer,
        extra_files=extra,
        # kept when resuming too (the command line names it again)
        run_info=continuation,
        keep_checkpoints=args.keep_checkpoints,
    )
    output = Path(args.output_dir)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    metrics: dict[str, Any] = {"steps": trainer.state.global_step}
    if losses:
        metrics["loss"] = losses[-1]
    for key in ("mpm_loss", "class_loss", "origin_loss", "vertex_loss"):
        logged = [h[key] for h in trainer.state.log_history if key in h]
        if logged and model.config.truth_objectives:
            metrics[key] = logged[-1]
    last = f", last logged loss {losses[-1]:.4f}" if losses else ""
    print(f"pre-trained {trainer.state.global_step} steps{last}; checkpoint in {output}")
    if trainer.is_world_process_zero():
        saved.to_json_file(output / PRETRAIN_ARGS_NAME)
        stats = report_reconstruction(trainer.model, data, output)
        if stats:
            metrics["reconstruction"] = stats
    return PretrainResult(output, trainer, trainer.model, metrics)


# --- simulation truth ---------------------------------------------------------------------
#: the truth target each objective reads
OBJECTIVE_TARGETS = {"class": "labels", "origin": "track_labels", "vertex": "vertex_labels"}


def truth_weights(truth: str | dict | None) -> dict[str, float]:
    """``{objective: weight}`` of ``--truth`` (see :class:`PretrainArguments`), only the
    objectives with weight > 0; JetFMError naming the bad part."""
    from jetfm.configuration import DEFAULT_TRUTH_WEIGHTS, TRUTH_OBJECTIVES
    from jetfm.errors import JetFMError

    if truth is None or (isinstance(truth, str) and truth.strip().lower() in ("", "none", "off")):
        return {}
    if isinstance(truth, str) and truth.strip().lower() in ("default", "on"):
        weights: dict = dict(DEFAULT_TRUTH_WEIGHTS)
    elif isinstance(truth, str):
        weights = {}
        for part in (p.strip() for p in truth.split(",") if p.strip()):
            name, eq, value = part.partition("=")
            try:
                weights[name.strip()] = float(value) if eq else 1.0
            except ValueError:
                raise JetFMError(f"--truth: {part!r} is not OBJECTIVE=WEIGHT") from None
    else:
        weights = dict(truth)
    unknown = sorted(set(weights) - set(TRUTH_OBJECTIVES))
    if unknown:
        raise JetFMError(f"--truth: unknown objectives {unknown}; choose from "
                         f"{list(TRUTH_OBJECTIVES)}")  # fmt: skip
    bad = {k: v for k, v in weights.items() if not (isinstance(v, (int, float)) and v >= 0)}
    if bad:
        raise JetFMError(f"--truth: weights must be numbers >= 0, got {bad}")
    return {k: float(weights[k]) for k in TRUTH_OBJECTIVES if weights.get(k, 0) > 0}


@dataclasses.dataclass
class TruthPlan:
    """What a run supervises: the objectives on (``weights``), the targets its batches carry,
    the supervised classes and the data's label names (``labels`` index order)."""

    weights: dict[str, float] = dataclasses.field(default_factory=dict)
    targets: tuple[str, ...] = ()
    classes: list[str] | None = None
    label_names: list[str] | None = None

    def config_options(self) -> dict[str, Any]:
        """The :class:`~jetfm.configuration.JetFMConfig` fields of this plan."""
        return dict(truth_objectives=dict(self.weights), pretrain_classes=self.classes,
                    pretrain_label_names=self.label_names)  # fmt: skip


def plan_truth(args: PretrainArguments, processor: Any) -> TruthPlan:
    """The truth objectives of ``args.truth`` that the training files can feed; the others
    are turned off with one log line (unlabelled data pre-trains by MPM alone). Sets the
    processor's label names to the files' classes when ``class`` is asked for."""
    from jetfm.data.reading import resolve_label_names
    from jetfm.data.schema import BranchMapping
    from jetfm.data.truth import available_truth, expand_classes, truth_class_names
    from jetfm.errors import JetFMError

    weights = truth_weights(args.truth)
    if not weights:
        return TruthPlan()
    label_names: list[str] = []
    if "class" in weights:
        own = BranchMapping.from_dict(processor.branch_mapping)  # the user's labels, if set
        label_names = list(resolve_label_names(args.data, own))
    missing = available_truth(args.data, processor.mapping, label_names)
    off = {k: missing[OBJECTIVE_TARGETS[k]] for k in weights if missing[OBJECTIVE_TARGETS[k]]}
    classes = None
    if "class" in weights and "class" not in off:
        known = truth_class_names(label_names, split_qcd=missing["parton_labels"] is None)
        try:
            classes = list(expand_classes(
                [c.strip() for c in (args.supervised_classes or "").split(",") if c.strip()]
                or known, known))  # fmt: skip
        except ValueError as err:
            raise JetFMError(f"--supervised-classes: {err}") from None
        if len(classes) < 2:
            off["class"] = f"only {classes} supervised (at least two classes are needed)"
    truth_alone = args.mpm_weight == 0
    if truth_alone and set(off) == set(weights):
        raise JetFMError(
            f"--mpm-weight 0 trains the truth objectives alone, but {args.data} has the truth "
            f"of none of them ({'; '.join(f'{k}: {why}' for k, why in off.items())})"
        )
    if off:
        rest = "the others" if truth_alone else "MPM and the others"
        logger.warning(
            "truth objectives turned off: %s; pre-training on %s",
            "; ".join(f"{k} ({why})" for k, why in off.items()),
            "MPM alone" if set(off) == set(weights) else rest,
        )
    weights = {k: v for k, v in weights.items() if k not in off}
    targets = [OBJECTIVE_TARGETS[k] for k in weights]
    if "class" in weights:
        processor.label_names = label_names
        if missing["parton_labels"] is None:
            targets.append("parton_labels")
        else:
            logger.info("truth: QCD not split by its hard parton (%s)", missing["parton_labels"])
    else:
        classes = None
    from jetfm.data.reading import TARGETS

    return TruthPlan(
        weights=weights,
        targets=tuple(t for t in TARGETS if t in targets),
        classes=classes,
        label_names=label_names if "class" in weights else None,
    )


def val_targets(paths: Any, processor: Any, targets: tuple[str, ...]) -> tuple[str, ...]:
    """The truth ``targets`` that every validation file has (the others are not evaluated)."""
    from jetfm.data.truth import available_truth

    if not targets:
        return ()
    missing = available_truth(paths, processor.mapping, processor.label_names or ())
    return tuple(t for t in targets if missing[t] is None)


# --- data ---------------------------------------------------------------------------------
def last_checkpoint(output: str | Path) -> Path | None:
    """The newest ``checkpoint-*`` folder in ``output`` (None if there is none)."""
    from transformers.trainer_utils import get_last_checkpoint

    output = Path(output)
    if not output.is_dir():
        return None
    last = get_last_checkpoint(str(output))
    return Path(last) if last else None


def prepare_data(args: PretrainArguments) -> dict[str, Any]:
    """Processor (fitted, or reloaded from the checkpoint when resuming), datasets, collator."""
    from jetfm.data.batching import JetCollator
    from jetfm.data.datasets import JetDataset, StreamingJetDataset
    from jetfm.data.feature_cache import cached_features
    from jetfm.data.processor import JetProcessor
    from jetfm.data.reading import detect_feature_groups
    from jetfm.errors import JetFMError

    if args.streaming and args.max_steps <= 0:
        raise JetFMError("--streaming needs --max-steps (a stream has no length)")
    if args.streaming and args.device_batches:
        args.device_batches = False  # a stream is for data larger than memory
    ckpt = last_checkpoint(args.output_dir) if args.resume else None
    init = None
    if ckpt is None and args.init_from:
        from jetfm.hub import resolve_pretrained

        init = resolve_pretrained(args.init_from)
    if ckpt is not None and args.truth is None:  # the resumed run's truth objectives
        from jetfm.configuration import JetFMConfig

        saved = JetFMConfig.from_pretrained(str(ckpt))
        args.truth = saved.truth_objectives or None
        if saved.pretrain_classes and args.supervised_classes is None:
            args.supervised_classes = ",".join(saved.pretrain_classes)
    if ckpt is not None and (ckpt / "preprocessor_config.json").exists():
        processor = JetProcessor.from_pretrained(str(ckpt))
        logger.info("resuming: processor statistics from %s", ckpt)
    elif init is not None:
        from jetfm.modeling.continuation import processor_for_continuation

        # the backbone learnt on these statistics: refitting them would shift its inputs
        processor = processor_for_continuation(init, args.data, args.groups)
    else:
        mapping = args.mapping
        if args.groups == "auto":
            groups = detect_feature_groups(args.data, mapping)
        else:
            groups = tuple(g.strip() for g in args.groups.split(",") if g.strip())
        processor = JetProcessor(
            feature_groups=groups, max_particles=args.max_particles, branch_mapping=mapping
        )
        processor.fit(args.data, progress=False)
    truth = plan_truth(args, processor)
    targets = truth.targets
    features = None
    if args.streaming:
        train = StreamingJetDataset(
            args.data, processor, targets=targets, shuffle=True, seed=args.seed
        )
    elif args.device_batches:
        train = None  # built on the training device by device_batches()
        features = cached_features(args.data, processor, feature_cache_folder(args), targets)
    else:
        train = JetDataset(args.data, processor, targets=targets)
    counts = features.counts if features is not None else getattr(train, "counts", None)
    buckets = bucket_lengths(args, processor.max_particles, counts)
    val = None
    if args.val:
        val = JetDataset(args.val, processor, targets=val_targets(args.val, processor, targets))
    compiled = args.compile
    return {
        "truth": truth,
        "processor": processor,
        "train": train,
        "features": features,
        "buckets": buckets,
        "val": val,
        # a compiled step gets bucketed batches (one graph per bucket), also in evaluation
        "collator": JetCollator(
            targets=targets, buckets=buckets if compiled else None, optional_targets=True
        ),
        "checkpoint": ckpt,
        "init_from": init,
    }


def bucket_lengths(
    args: PretrainArguments, max_particles: int, counts: Any = None
) -> tuple[int, ...]:
    """``--buckets`` (checked against the particles kept per jet) or the default ones,
    fitted to the training jets' multiplicities ``counts`` when known."""
    from jetfm.data.batching import default_buckets
    from jetfm.errors import JetFMError

    text = args.buckets
    if not text:
        return default_buckets(max_particles, counts)
    try:
        buckets = tuple(sorted({int(b) for b in text.split(",") if b.strip()}))
    except ValueError:
        raise JetFMError(f"--buckets must be comma-separated integers, got {text!r}") from None
    if not buckets or buckets[0] < 1 or buckets[-1] < max_particles:
        raise JetFMError(
            f"--buckets {text!r}: positive lengths whose largest holds --max-particles "
            f"({max_particles})"
        )
    return buckets


def feature_cache_folder(args: PretrainArguments) -> Path:
    """``--feature-cache`` or ``OUTPUT.features`` beside the run's output folder."""
    if args.feature_cache:
        return Path(args.feature_cache)
    out = Path(args.output_dir).resolve()
    return out.with_name(out.name + ".features")


def device_batches(args: PretrainArguments, data: dict[str, Any], training_args: Any):
    """The training set as :class:`~jetfm.data.device_batches.DeviceJetBatches` on the
    training device (this rank's share of the jets under data parallelism)."""
    from jetfm.data.device_batches import DeviceJetBatches

    features = data["features"]
    batches = DeviceJetBatches(
        features.flat,
        features.counts,
        args.batch_size,
        buckets=data["buckets"],
        device=training_args.device,
        seed=args.seed,
        rank=training_args.process_index,
        world_size=training_args.world_size,
        # fixed shapes where they pay: on an accelerator (no host reads) or when compiled
        pad_to_bucket=training_args.device.type != "cpu" or args.compile,
        targets=features.targets,
        jet_targets=features.jet_targets,
    )
    logger.info("training batches: %r", batches)
    return batches


def continuation_info(args: PretrainArguments, init: Path | None) -> dict[str, Any] | None:
    """What ``run_config.json`` records about the checkpoint this run continued from: its
    name and the pre-training steps already behind it (so a card can state the total)."""
    from jetfm.errors import JetFMError
    from jetfm.modeling.continuation import steps_behind

    if not args.init_from:
        return None
    info: dict[str, Any] = {"init_from": args.init_from}
    if init is None:  # resuming: the weights came from the checkpoint, the count still holds
        from jetfm.hub import resolve_pretrained

        try:
            init = resolve_pretrained(args.init_from)
        except JetFMError:
            return info
    behind = steps_behind(Path(init))
    if behind is not None:
        info["steps_before"] = behind
    return info


def particle_sample(dataset: Any, groups: list[str], limit: int, seed: int = 0):
    """Up to ``limit`` particles ``(P, F)`` of the given groups (concatenated), as a tensor:
    a random subset of an in-memory dataset, or the first particles of a stream."""
    import numpy as np
    import torch

    if hasattr(dataset, "flat_arrays"):
        flat, _, _ = dataset.flat_arrays()
    else:
        parts: dict[str, list] = {g: [] for g in groups}
        seen = 0
        for jet in dataset:
            for g in groups:
                parts[g].append(jet[g])
            seen += len(jet[groups[0]])
            if seen >= limit:
                break
        flat = {g: np.concatenate(v) for g, v in parts.items()}
    x = np.concatenate([np.asarray(flat[g], np.float32) for g in groups], axis=-1)
    if len(x) > limit:
        x = x[np.random.default_rng(seed).choice(len(x), limit, replace=False)]
    return torch.from_numpy(np.ascontiguousarray(x))


def trainer_arguments(args: PretrainArguments, **overrides: Any):
    """``TrainingArguments`` from the shared CLI options."""
    from jetfm.training import scaled_learning_rate, training_arguments

    lr = args.lr
    if lr is None:
        lr = scaled_learning_rate(BASE_LR, args.batch_size)
    options = dict(
        seed=args.seed,
        max_steps=args.max_steps,
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size,
        learning_rate=lr,
        save_steps=args.save_steps,
        eval_steps=args.save_steps,
        logging_steps=args.logging_steps,
        prediction_loss_only=True,
        report_to=list(args.report_to or ("none",)),
    )
    options.update(overrides)
    return training_arguments(args.output_dir, cpu_bf16=args.bf16, **options)


# --- model --------------------------------------------------------------------------------
def build_model(args: PretrainArguments, data: dict[str, Any]):
    """The MPM model, with the target prepared; also returns the extra files to save."""
    import torch

    from jetfm.configuration import JetFMConfig
    from jetfm.errors import CheckpointError, JetFMError
    from jetfm.modeling.pretraining import JetFMForMaskedParticleModeling

    processor, ckpt = data["processor"], data["checkpoint"]
    extra: dict[str, Any] = {}
    if ckpt is not None:
        # Resuming: same config as the checkpoint; the Trainer restores the weights
        # (centroids and tokenizer included, they live in model.safetensors).
        config = JetFMConfig.from_pretrained(str(ckpt))
        if (ckpt / "tokenizer").is_dir():  # loaded now: old checkpoints get rotated away
            from jetfm.modeling.tokenizer import ParticleTokenizer

            extra["tokenizer"] = ParticleTokenizer.from_pretrained(str(ckpt / "tokenizer"))
        return JetFMForMaskedParticleModeling(config), extra

    init = data.get("init_from")
    options: dict[str, Any] = {}
    tokenizer = None
    if args.target == "vqvae" and init is not None and not args.tokenizer:
        from jetfm.modeling.targets.vqvae import TOKENIZER_SUBFOLDER

        if (init / TOKENIZER_SUBFOLDER).is_dir():  # the codebook the checkpoint learnt with
            args.tokenizer = str(init / TOKENIZER_SUBFOLDER)
    if args.target == "vqvae":
        from jetfm.modeling.targets.vqvae import TOKENIZER_SUBFOLDER, tokenizer_options
        from jetfm.modeling.tokenizer import ParticleTokenizer

        if not args.tokenizer:
            raise JetFMError(
                "--target vqvae needs --tokenizer DIR (train one: jetfm tokenizer train)"
            )
        if not (Path(args.tokenizer) / "config.json").exists():
            raise CheckpointError(
                f"{args.tokenizer}: no tokenizer checkpoint (config.json missing)"
            )
        tokenizer = ParticleTokenizer.from_pretrained(args.tokenizer)
        missing = [g for g in tokenizer.config.feature_groups if g not in processor.feature_groups]
        if missing:
            raise JetFMError(
                f"the tokenizer in {args.tokenizer} needs feature groups {missing} that the "
                f"data ({processor.feature_groups}) does not provide"
            )
        options["tokenizer"] = tokenizer_options(tokenizer)
        extra[TOKENIZER_SUBFOLDER] = tokenizer
    elif args.target == "kmeans":
        options["num_codes"] = args.num_codes
    truth = data.get("truth") or TruthPlan()
    mpm_options = dict(
        **truth.config_options(),
        mpm_target=args.target,
        mask_fraction=args.mask_fraction,
        mask_in_encoder=args.mask_in_encoder,
        mpm_embedding_lr_scale=args.embedding_lr_scale,
        mpm_encoder_delay=ENCODER_DELAY if args.encoder_delay is None else args.encoder_delay,
        mpm_group_dropout=args.group_dropout,
        mpm_loss_weight=args.mpm_weight,
        target_options=options,
    )
    if init is not None:
        from jetfm.modeling.continuation import config_for_continuation, load_initial_weights

        if args.layer_scale_init is not None:
            raise JetFMError(
                "--layer-scale-init sets initial weights; with --init-from they come from "
                f"{init}: drop one of the two options"
            )
        config = config_for_continuation(init, size=args.size, **mpm_options)
        torch.manual_seed(args.seed)  # the fresh parts (decoder, target) are seeded
        model = JetFMForMaskedParticleModeling(config)
        if tokenizer is not None:
            model.target.set_tokenizer(tokenizer)
        loaded = load_initial_weights(model, init)
        logger.info("initialised from %s: %s", init, ", ".join(loaded))
        if args.encoder_delay is None and "decoder" in loaded:
            model.config.mpm_encoder_delay = 0.0  # its decoder already reads this encoder
        if args.target == "kmeans" and "decoder" not in loaded:
            _fit_kmeans(model, data, args)
        return model, extra
    config = JetFMConfig.from_preset(
        args.size or "base",
        feature_groups=processor.group_sizes,
        max_particles=processor.max_particles,
        **mpm_options,
        **({} if args.layer_scale_init is None else {"layer_scale_init": args.layer_scale_init}),
    )
    torch.manual_seed(args.seed)
    model = JetFMForMaskedParticleModeling(config)
    if tokenizer is not None:
        model.target.set_tokenizer(tokenizer)
    if args.target == "kmeans":
        _fit_kmeans(model, data, args)
    return model, extra


def _fit_kmeans(model: Any, data: dict[str, Any], args: PretrainArguments) -> None:
    from jetfm.modeling.targets import continuous_groups
    from jetfm.modeling.targets.kmeans import fit_kmeans

    groups = list(continuous_groups(model.config))
    source = data["features"] if data.get("features") is not None else data["train"]
    points = particle_sample(source, groups, args.kmeans_particles, args.seed)
    logger.info("fitting %d k-means codes on %d particles", args.num_codes, len(points))
    model.target.set_centroids(fit_kmeans(points, args.num_codes, seed=args.seed))


def report_reconstruction(model: Any, data: dict[str, Any], output: Path, n_jets: int = 2000):
    """Rebuild up to ``n_jets`` validation jets from their visible and sampled particles, plot
    it into ``output`` and print the mass response: a look at what pre-training learnt."""
    from jetfm.reconstruction import can_sample, masked_reconstruction, plot_reconstruction

    if data["val"] is None or not can_sample(model) or model.config.mpm_loss_weight == 0:
        return None
    try:
        result = masked_reconstruction(model, data["val"], data["processor"], n_jets=n_jets)
    except Exception as err:  # a diagnostic must not fail a run whose checkpoint is saved
        logger.warning("the reconstruction check of the validation jets failed: %s", err)
        return None
    stats = result.summary()
    plot = plot_reconstruction(result, output / RECONSTRUCTION_PLOT,
                               title=f"{output.name}: masked particles rebuilt, "
                                     f"{int(stats['jets'])} validation jets")  # fmt: skip
    if "reconstructed_mass_response" in stats:
        print(f"masked particles rebuilt on {int(stats['jets'])} validation jets: jet mass / "
              f"true {stats['reconstructed_mass_response']:.2f} ± "
              f"{stats['reconstructed_mass_resolution']:.2f} (visible particles alone "
              f"{stats['visible_mass_response']:.2f}); plot: {plot}")  # fmt: skip
    return stats


__all__ = [
    "BASE_LR",
    "PRETRAIN_ARGS_NAME",
    "PretrainArguments",
    "PretrainResult",
    "SIZES",
    "pretrain",
]
