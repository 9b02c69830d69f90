"""``JetFMConfig``: every hyper-parameter of the backbone, the pre-training and the heads.

One config serves every class (as in transformers, where a BERT config serves BERT and its
heads): the backbone reads the ``hidden_*`` fields, Masked Particle Modelling reads ``mpm_*``
and ``decoder_*``, the heads read ``num_labels`` / ``head_*``.
"""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig

from jetfm.config_checks import CheckedConfigMixin
from jetfm.data.schema import FEATURE_GROUPS, REQUIRED_GROUP
from jetfm.defaults import MPM_TARGETS
from jetfm.hub import CONFIG_NAME, HubMixin

#: Size presets. Parameter counts (backbone only, all three feature groups) are checked by
#: ``tests/test_backbone.py`` and listed in the docs.
# `base` is sized to converge on a CPU budget (it is what the shipped `mpm-*-base` checkpoints
# use); `large` is for a GPU.
SIZE_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=64, decoder_hidden_size=32, decoder_num_layers=1,
                 decoder_num_attention_heads=4, num_class_attention_layers=1),
    "small": dict(hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                  intermediate_size=128, decoder_hidden_size=64, decoder_num_layers=2,
                  decoder_num_attention_heads=4, num_class_attention_layers=1),
    "base": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=8,
                 intermediate_size=256, decoder_hidden_size=96, decoder_num_layers=2,
                 decoder_num_attention_heads=4, num_class_attention_layers=2),
    "large": dict(hidden_size=256, num_hidden_layers=8, num_attention_heads=8,
                  intermediate_size=512, decoder_hidden_size=128, decoder_num_layers=3,
                  decoder_num_attention_heads=8, num_class_attention_layers=2),
}  # fmt: skip

#: supervised objectives on generator truth beside the MPM target (see
#: :mod:`jetfm.modeling.truth_heads`): jet class, per-track origin, same-vertex track pairs
TRUTH_OBJECTIVES = ("class", "origin", "vertex")
#: their weights in the pre-training loss when truth is switched on without weights
DEFAULT_TRUTH_WEIGHTS: dict[str, float] = {"class": 1.0, "origin": 0.5, "vertex": 0.0}

__all__ = [
    "DEFAULT_TRUTH_WEIGHTS",
    "MPM_TARGETS",
    "SIZE_PRESETS",
    "TRUTH_OBJECTIVES",
    "JetFMConfig",
]


class JetFMConfig(CheckedConfigMixin, HubMixin, PretrainedConfig):
    r"""Configuration of a jetfm model.

    Args:
        feature_groups: ``{group: n_features}`` the embedding accepts; ``kinematics`` required.
        hidden_size: width of the particle states.
        num_hidden_layers: encoder blocks (pre-norm, LayerScale, SwiGLU feed-forward).
        num_attention_heads: heads per attention layer.
        intermediate_size: hidden width of the SwiGLU feed-forward.
        num_register_tokens: learned tokens prepended to every jet (they also keep attention
            well defined for jets with very few particles).
        num_class_attention_layers: CaiT-style class-attention blocks producing the jet state.
        layer_scale_init: initial LayerScale value (small → blocks start near identity). A
            tagger trained from scratch on few labels reaches a higher accuracy with 0.1 (CaiT's value
            for shallow stacks); MPM pre-training uses the default.
        hidden_dropout_prob / attention_dropout_prob: dropout rates.
        ordered: add pT-rank embeddings (breaks permutation equivariance on purpose; the
            ordering study of arXiv 2401.13537).
        max_particles: largest rank embedded when ``ordered``.
        group_dropout_prob: during training, drop each optional feature group of a jet with
            this probability so one checkpoint also serves kinematics-only data.
        mpm_target: pre-training target, one of ``vqvae``, ``kmeans``, ``regression``,
            ``flow``, ``diffusion``.
        mask_fraction: fraction of each jet's real particles masked in pre-training.
        mask_in_encoder: ``False`` (default) drops masked particles from the encoder input
            (arXiv 2409.12589); ``True`` sends mask tokens through the encoder
            (arXiv 2401.13537).
        decoder_*: the lighter transformer decoder used only in pre-training.
        decoder_jet_token: give the decoder the backbone's pooled jet state (of the visible
            particles) as an extra token, so that pre-training also trains the class-attention
            pooler that the fine-tuning heads read (off by default).
        decoder_sees_visible: let the decoder's masked slots attend to the visible particles'
            states. ``False`` makes the context tokens (registers, jet token) the only route
            from the visible particles to the answer, so the encoder must summarise the jet
            instead of the decoder copying the pT-neighbours of a masked slot.
        mpm_embedding_lr_scale: MPM pre-training only: the particle embedding's learning rate
            relative to the rest of the model; 0 keeps it frozen at its random
            initialisation. A scale below 1 keeps short MPM runs from squeezing the embedding
            into one or two directions (mostly pT; see
            :func:`jetfm.diagnostics.representation_collapse`).
        mpm_encoder_delay: MPM pre-training only: fraction of the steps during which the
            encoder (and embedding) stay frozen while the decoder learns to read them, then
            a linear LR ramp over as many steps. This keeps a short run from silencing the
            encoder early (every particle's final state nearly the same vector).
        mpm_group_dropout: MPM pre-training only: drop each optional feature group (``pid``,
            ``tracks``) from a jet's encoder input with this probability, so the backbone
            also learns to work from kinematics alone (the masked particles' targets keep
            every group). Unlike ``group_dropout_prob`` it does not carry over into
            fine-tuning.
        mpm_loss_weight: MPM pre-training only: weight of the masked-particle loss (the
            target's, with the particle-ID side-target) in the total loss. ``0`` trains the
            ``truth_objectives`` alone on the visible particles: the decoder is not run (it
            stays as it is, so a later run can continue MPM from it).
        pid_side_target: add a cross-entropy side-target on the particle type.
        truth_objectives: MPM pre-training only: ``{objective: weight}`` of the supervised
            objectives on generator truth added to the MPM loss (``class``, ``origin``,
            ``vertex``; see :mod:`jetfm.modeling.truth_heads`). Objectives with weight 0 or
            absent have no head; ``None`` / ``{}``: pure MPM.
        pretrain_classes: the jet classes the ``class`` objective supervises, in the order of
            its logits (QCD split by the hard parton: ``QCD_light``, ``QCD_gluon``,
            ``QCD_heavy``); jets of other classes are left out of the class loss (held out)
            but still pre-train through MPM and the other objectives.
        pretrain_label_names: the class names of the pre-training data's ``labels`` index
            (its processor's label names), to map each jet to ``pretrain_classes``.
        target_options: target-specific settings (e.g. number of codes, flow transforms).
        head_hidden_size / head_dropout_prob: task heads' MLP.
        size: the size preset this config was built from, if any.
        finetuning: what a fine-tuned checkpoint was trained for (task, mode, from_scratch,
            feature_groups, ...); read by evaluation, ONNX export and predict.
    """

    model_type = "jetfm"
    # from_pretrained resolves short names ("mpm-flow-base") like the models do
    hub_required_file = CONFIG_NAME

    def __init__(
        self,
        feature_groups: dict[str, int] | None = None,
        hidden_size: int = 128,
        num_hidden_layers: int = 4,
        num_attention_heads: int = 8,
        intermediate_size: int = 256,
        num_register_tokens: int = 4,
        num_class_attention_layers: int = 2,
        layer_scale_init: float = 1e-3,
        hidden_dropout_prob: float = 0.0,
        attention_dropout_prob: float = 0.0,
        layer_norm_eps: float = 1e-6,
        initializer_range: float = 0.02,
        ordered: bool = False,
        max_particles: int = 128,
        group_dropout_prob: float = 0.0,
        mpm_target: str = "flow",
        mask_fraction: float = 0.4,
        mask_in_encoder: bool = False,
        decoder_hidden_size: int = 96,
        decoder_num_layers: int = 2,
        decoder_num_attention_heads: int = 4,
        decoder_jet_token: bool = False,
        decoder_sees_visible: bool = True,
        mpm_embedding_lr_scale: float = 1.0,
        mpm_encoder_delay: float = 0.0,
        mpm_group_dropout: float = 0.0,
        mpm_loss_weight: float = 1.0,
        pid_side_target: bool = True,
        truth_objectives: dict[str, float] | None = None,
        pretrain_classes: list[str] | None = None,
        pretrain_label_names: list[str] | None = None,
        target_options: dict[str, Any] | None = None,
        head_hidden_size: int | None = None,
        head_dropout_prob: float = 0.1,
        size: str | None = None,
        finetuning: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        self.feature_groups = dict(feature_groups or {g: len(f) for g, f in FEATURE_GROUPS.items()})
        if REQUIRED_GROUP not in self.feature_groups:
            raise ValueError(
                f"feature_groups must contain {REQUIRED_GROUP!r}; got {list(self.feature_groups)}"
            )
        if hidden_size % num_attention_heads:
            raise ValueError(
                f"hidden_size ({hidden_size}) must be divisible by num_attention_heads "
                f"({num_attention_heads})"
            )
        if mpm_target not in MPM_TARGETS:
            raise ValueError(f"mpm_target must be one of {MPM_TARGETS}, got {mpm_target!r}")
        if mpm_embedding_lr_scale < 0:
            raise ValueError(f"mpm_embedding_lr_scale must be >= 0, got {mpm_embedding_lr_scale}")
        if not 0.0 <= mpm_encoder_delay < 0.5:
            raise ValueError(f"mpm_encoder_delay must be in [0, 0.5), got {mpm_encoder_delay}")
        for name, prob in (
            ("group_dropout_prob", group_dropout_prob),
            ("mpm_group_dropout", mpm_group_dropout),
        ):
            if not 0.0 <= prob <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {prob}")
        if not mpm_loss_weight >= 0:
            raise ValueError(f"mpm_loss_weight must be >= 0, got {mpm_loss_weight}")
        if not 0.0 < mask_fraction < 1.0:
            raise ValueError(f"mask_fraction must be in (0, 1), got {mask_fraction}")
        truth_objectives = {k: float(v) for k, v in (truth_objectives or {}).items()}
        unknown = sorted(set(truth_objectives) - set(TRUTH_OBJECTIVES))
        if unknown:
            raise ValueError(
                f"truth_objectives: unknown objectives {unknown}; known {list(TRUTH_OBJECTIVES)}"
            )
        negative = {k: v for k, v in truth_objectives.items() if not v >= 0}
        if negative:
            raise ValueError(f"truth_objectives: weights must be >= 0, got {negative}")
        if truth_objectives.get("class", 0) > 0 and not (pretrain_classes and pretrain_label_names):
            raise ValueError(
                "truth_objectives 'class' needs pretrain_classes (the supervised classes) and "
                "pretrain_label_names (the data's label names)"
            )
        if mpm_loss_weight == 0 and not any(w > 0 for w in truth_objectives.values()):
            raise ValueError(
                "mpm_loss_weight 0 leaves nothing to train: switch on truth_objectives too"
            )
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.num_register_tokens = num_register_tokens
        self.num_class_attention_layers = num_class_attention_layers
        self.layer_scale_init = layer_scale_init
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_dropout_prob = attention_dropout_prob
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        self.ordered = ordered
        self.max_particles = max_particles
        self.group_dropout_prob = group_dropout_prob
        self.mpm_target = mpm_target
        self.mask_fraction = mask_fraction
        self.mask_in_encoder = mask_in_encoder
        self.decoder_hidden_size = decoder_hidden_size
        self.decoder_num_layers = decoder_num_layers
        self.decoder_num_attention_heads = decoder_num_attention_heads
        self.decoder_jet_token = decoder_jet_token
        self.decoder_sees_visible = decoder_sees_visible
        self.mpm_embedding_lr_scale = mpm_embedding_lr_scale
        self.mpm_encoder_delay = mpm_encoder_delay
        self.mpm_group_dropout = mpm_group_dropout
        self.mpm_loss_weight = float(mpm_loss_weight)
        self.pid_side_target = pid_side_target
        self.truth_objectives = truth_objectives
        self.pretrain_classes = list(pretrain_classes) if pretrain_classes else None
        self.pretrain_label_names = list(pretrain_label_names) if pretrain_label_names else None
        self.target_options = dict(target_options or {})
        self.head_hidden_size = head_hidden_size
        self.head_dropout_prob = head_dropout_prob
        self.size = size
        self.finetuning = dict(finetuning) if finetuning else None
        super().__init__(**kwargs)

    @classmethod
    def from_preset(cls, size: str, **overrides: Any) -> JetFMConfig:
        """A config for a size preset (``tiny``, ``small``, ``base``) with overrides."""
        if size not in SIZE_PRESETS:
            raise ValueError(f"unknown size {size!r}; presets: {sorted(SIZE_PRESETS)}")
        return cls(**{**SIZE_PRESETS[size], "size": size, **overrides})
