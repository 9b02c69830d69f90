"""Continue Masked Particle Modelling from an existing checkpoint (``jetfm pretrain --init-from``).

A released checkpoint holds the backbone (``model.safetensors``, keys without prefix) and, from
this version on, the MPM decoder, target, side heads and truth heads
(``mpm_decoder.safetensors``); a ``jetfm pretrain`` output holds everything in
``model.safetensors`` under the model's own key names (``jetfm.*`` for the backbone). Either can seed a new pre-training run: on more jets,
on the user's own data (domain adaptation), or for more steps than one job allows.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from jetfm.configuration import JetFMConfig
from jetfm.errors import CheckpointError, JetFMError
from jetfm.hub import WEIGHTS_NAME

logger = logging.getLogger(__name__)

#: the non-backbone MPM weights a release ships next to the backbone
DECODER_WEIGHTS_NAME = "mpm_decoder.safetensors"
BACKBONE_PREFIX = "jetfm."
#: the truth heads (:mod:`jetfm.modeling.truth_heads`), loaded head by head where they fit
TRUTH_PREFIX = "truth."
#: written into every folder of a continued run (``checkpoint-*`` too): where it started
CONTINUATION_NAME = "continuation.json"
#: config fields that change the decoder's or the target's weights: a checkpoint's decoder is
#: reused only when they all match
_DECODER_FIELDS = ("mpm_target", "mask_in_encoder", "target_options", "pid_side_target")


def steps_behind(folder: Path) -> int | None:
    """Pre-training steps already in a checkpoint, counting every run it continued from.

    A finished run (or its release) records its own steps and those behind its start in
    ``run_config.json`` (``global_step``, ``steps_before``); a Trainer ``checkpoint-*`` folder
    has its step in ``trainer_state.json`` and, for a continued run, ``steps_before`` in
    ``continuation.json`` (older runs: in the run's ``run_config.json`` one folder up, once
    the run has finished). None when the folder says nothing about its steps.
    """
    import json

    def read(path: Path) -> dict:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return {}

    folder = Path(folder)
    run = read(folder / "run_config.json")
    if isinstance(run.get("global_step"), int):
        return int(run.get("steps_before") or 0) + run["global_step"]
    state = read(folder / "trainer_state.json")
    if isinstance(state.get("global_step"), int):
        start = read(folder / CONTINUATION_NAME) or read(folder.parent / "run_config.json")
        return int(start.get("steps_before") or 0) + state["global_step"]
    return None


def processor_for_continuation(folder: Path, data: str, groups: str = "auto") -> Any:
    """The checkpoint's processor (normalisation statistics), after checking that ``data``
    provides every feature group it reads."""
    from jetfm.data.processor import JetProcessor
    from jetfm.data.reading import detect_feature_groups

    processor = JetProcessor.from_pretrained(str(folder))
    wanted = tuple(processor.feature_groups)
    if groups != "auto":
        asked = tuple(g.strip() for g in groups.split(",") if g.strip())
        if set(asked) != set(wanted):
            raise JetFMError(
                f"--groups {groups} differs from the feature groups {list(wanted)} of the "
                f"checkpoint {folder}: a continued backbone reads the groups it learnt on"
            )
    present = detect_feature_groups(data)
    missing = [g for g in wanted if g not in present]
    if missing:
        raise JetFMError(
            f"{data}: the files have no {missing} branches, which the checkpoint {folder} "
            f"reads (it was trained on {list(wanted)})"
        )
    return processor


def config_for_continuation(folder: Path, size: str | None = None, **mpm_options: Any):
    """The checkpoint's architecture with this run's MPM options (target, masking, schedule)."""
    config = JetFMConfig.from_pretrained(str(folder))
    if size is not None and size != config.size:
        raise JetFMError(
            f"--size {size}: the checkpoint {folder} is a {config.size or 'custom-size'} model; "
            "a continued run keeps its architecture (drop --size)"
        )
    for key, value in mpm_options.items():
        setattr(config, key, value)
    config.architectures = None
    return config


def _read(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error types on a damaged file
        raise CheckpointError(f"{path}: cannot read the weights ({err})") from err


def _decoder_matches(model: Any, folder: Path) -> bool:
    saved = JetFMConfig.from_pretrained(str(folder))
    return all(getattr(saved, f, None) == getattr(model.config, f, None) for f in _DECODER_FIELDS)


def _decoder_trained(folder: Path) -> bool:
    """False for a checkpoint pre-trained on truth alone (``mpm_loss_weight`` 0): its decoder
    kept its random initialisation."""
    saved = JetFMConfig.from_pretrained(str(folder))
    return saved.mpm_loss_weight > 0


def load_initial_weights(model: Any, folder: Path) -> list[str]:
    """Copy ``folder``'s weights into a freshly built ``JetFMForMaskedParticleModeling``.

    The backbone is always loaded (and must match exactly); the decoder, target and side heads
    are loaded when the checkpoint has them for the same target, otherwise they keep their
    fresh initialisation. Returns the parts loaded, e.g. ``["backbone", "decoder"]``.
    """
    weights = Path(folder) / WEIGHTS_NAME
    if not weights.is_file():
        raise CheckpointError(f"{folder}: no {WEIGHTS_NAME} to continue from")
    state = _read(weights)
    if any(k.startswith(BACKBONE_PREFIX) for k in state):  # a `jetfm pretrain` output
        backbone = {k[len(BACKBONE_PREFIX) :]: v for k, v in state.items()
                    if k.startswith(BACKBONE_PREFIX)}  # fmt: skip
        decoder = {k: v for k, v in state.items() if not k.startswith(BACKBONE_PREFIX)}
    else:  # a release: the backbone alone, the decoder beside it if shipped
        backbone = state
        extra = Path(folder) / DECODER_WEIGHTS_NAME
        decoder = _read(extra) if extra.is_file() else {}
    _load_strict(model.jetfm, backbone, weights, "backbone")
    loaded = ["backbone"]
    heads = load_truth_heads(model, decoder, folder)
    if heads:
        loaded.append("truth heads (" + ", ".join(heads) + ")")
    decoder = {k: v for k, v in decoder.items() if not k.startswith(TRUTH_PREFIX)}
    if decoder and not _decoder_trained(folder):
        logger.info("%s: its decoder was never trained (pre-trained with --mpm-weight 0); a "
                    "fresh decoder is trained", folder)  # fmt: skip
    elif decoder and _decoder_matches(model, folder):
        if _load_decoder(model, decoder):
            loaded.append("decoder")
        else:
            logger.warning("%s: decoder weights do not match this model; a fresh decoder is "
                           "trained instead", folder)  # fmt: skip
    elif decoder:
        logger.info("%s: its decoder is for another target; a fresh decoder is trained", folder)
    return loaded


def _load_decoder(model: Any, decoder: dict[str, torch.Tensor]) -> bool:
    """Load exactly the model's MPM decoder, target and side-head weights (neither backbone
    nor truth heads); False (nothing loaded) if the keys differ."""
    decoder = {k: v for k, v in decoder.items() if not k.startswith(TRUTH_PREFIX)}
    rest = {k for k in model.state_dict()
            if not k.startswith((BACKBONE_PREFIX, TRUTH_PREFIX))}  # fmt: skip
    if set(decoder) != rest:
        return False
    model.load_state_dict(decoder, strict=False)
    return True


def state_fits(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> bool:
    """Whether ``state`` holds exactly ``module``'s tensors, each with its shape."""
    own = module.state_dict()
    return state.keys() == own.keys() and all(state[k].shape == own[k].shape for k in own)


def truth_head_weights(folder: Path, name: str) -> dict[str, torch.Tensor]:
    """The weights of the pre-training truth head ``name`` (``origin``, ``jet_class``,
    ``vertex``) of checkpoint ``folder``, without their prefix: from ``model.safetensors`` of
    a ``jetfm pretrain`` output or from :data:`DECODER_WEIGHTS_NAME` beside a release's
    backbone. Empty when the checkpoint has no such head."""
    prefix = f"{TRUTH_PREFIX}{name}."
    for path in (Path(folder) / WEIGHTS_NAME, Path(folder) / DECODER_WEIGHTS_NAME):
        if path.is_file():
            state = _read(path)
            head = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            if head:
                return head
    return {}


def load_truth_heads(model: Any, state: dict[str, torch.Tensor], folder: Path) -> list[str]:
    """Load each of the model's truth heads that ``state`` holds with the same shapes (the
    jet-class head only for the same ``pretrain_classes``); the others keep their fresh
    initialisation. Returns the heads loaded."""
    truth = getattr(model, "truth", None)
    if truth is None or not any(k.startswith(TRUTH_PREFIX) for k in state):
        return []
    saved_classes = JetFMConfig.from_pretrained(str(folder)).pretrain_classes
    loaded = []
    for name, head in truth.named_children():
        prefix = f"{TRUTH_PREFIX}{name}."
        saved = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        fits = state_fits(head, saved)
        if name == "jet_class":
            fits = fits and saved_classes == model.config.pretrain_classes
        if fits:
            head.load_state_dict(saved)
            loaded.append(name)
        elif saved:
            logger.info("%s: its %s head does not fit this model; a fresh one is trained",
                        folder, name)  # fmt: skip
    return loaded


def complete_from_release(model: Any, folder: Path) -> list[str]:
    """After ``JetFMForMaskedParticleModeling.from_pretrained(folder)``: if ``folder`` is a
    release (the backbone alone in ``model.safetensors``), load the MPM decoder, target and
    side heads from :data:`DECODER_WEIGHTS_NAME` beside it, or at least the frozen VQ-VAE
    tokenizer from ``tokenizer/``; warn about whatever stays freshly initialised.

    Returns the parts loaded here (``["decoder"]``, ``["tokenizer"]`` or ``[]``).
    """
    from safetensors import safe_open

    folder = Path(folder)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():  # sharded or unusual layout: transformers reported what it loaded
        return []
    with safe_open(str(weights), framework="pt") as f:  # reads the header only
        names = list(f.keys())  # noqa: SIM118 - safe_open is not iterable
    if any(k.startswith(BACKBONE_PREFIX) for k in names):
        return []  # a `jetfm pretrain` output: everything was in model.safetensors
    extra = folder / DECODER_WEIGHTS_NAME
    state = _read(extra) if extra.is_file() else {}
    if state and _decoder_matches(model, folder) and _load_decoder(model, state):
        model.target.freeze_frozen()
        return ["decoder", *(["truth heads"] if load_truth_heads(model, state, folder) else [])]
    loaded = []
    tokenizer = getattr(model.target, "tokenizer", None)
    if tokenizer is not None and (folder / "tokenizer" / WEIGHTS_NAME).is_file():
        from jetfm.modeling.tokenizer import ParticleTokenizer

        model.target.set_tokenizer(ParticleTokenizer.from_pretrained(str(folder / "tokenizer")))
        loaded.append("tokenizer")
    reason = ("does not fit this model" if extra.is_file()
              else f"is not shipped (no {DECODER_WEIGHTS_NAME})")  # fmt: skip
    logger.warning(
        "%s: the MPM decoder %s, so the decoder and target heads are freshly initialised%s. "
        "Continue pre-training (jetfm pretrain --init-from) before trusting the MPM loss or "
        "reconstruct(); the backbone is the pre-trained one.",
        folder, reason, " (the tokenizer is the shipped one)" if loaded else "",
    )  # fmt: skip
    return loaded


def _load_strict(module: torch.nn.Module, state: dict, source: Path, part: str) -> None:
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as err:  # size mismatches
        raise CheckpointError(f"{source}: the {part} weights do not fit its config: {err}") from err
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: the {part} weights do not fit its config "
            f"(missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]})"
        )


def decoder_state(model: Any) -> dict[str, torch.Tensor]:
    """The MPM model's non-backbone weights (decoder, target, side heads, truth heads), to
    ship with a release as :data:`DECODER_WEIGHTS_NAME`."""
    return {k: v.detach().contiguous() for k, v in model.state_dict().items()
            if not k.startswith(BACKBONE_PREFIX)}  # fmt: skip
