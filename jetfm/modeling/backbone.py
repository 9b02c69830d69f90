"""The jetfm backbone: a permutation-equivariant transformer over a jet's particles.

Per-group particle embeddings (summed) → learned register tokens → pre-norm transformer
blocks → final norm → per-particle states, plus a jet state from CaiT class-attention pooling.
There is no positional encoding, so permuting the particles permutes the outputs the same way
(unless ``config.ordered`` adds pT-rank embeddings for the ordering study).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from jetfm.configuration import JetFMConfig
from jetfm.data.schema import FEATURE_GROUPS, REQUIRED_GROUP
from jetfm.modeling.layers import (
    ClassAttentionBlock,
    LayerScale,
    TransformerBlock,
    masked_fill_padding,
)
from jetfm.publish import ModelHubMixin

#: Particle types of the categorical PID embedding: 5 flags × charge sign, plus "unknown".
NUM_PID_CATEGORIES = 11


def pid_categories(pid: torch.Tensor) -> torch.Tensor:
    """Particle type index from the ``pid`` group ``(…, 6)`` = [charge, e, μ, γ, h±, h0].

    ``2 * flag + (charge > 0)``: e−, e+, μ−, μ+, γ, (γ+), h−, h+, h0, (h0+), and 10 when no
    flag is set. Used by the embedding and by the PID side-target of pre-training.
    """
    flags = pid[..., 1:6]
    category = 2 * flags.argmax(dim=-1) + (pid[..., 0] > 0).long()
    return torch.where(flags.sum(dim=-1) > 0, category, NUM_PID_CATEGORIES - 1)


@dataclass
class JetFMModelOutput(ModelOutput):
    """Output of :class:`JetFMModel`.

    Args:
        last_hidden_state: ``(B, N, D)`` per-particle states (zero at padding).
        pooler_output: ``(B, D)`` jet state from class-attention pooling.
        register_states: ``(B, R, D)`` final states of the register tokens.
        hidden_states: per-layer particle states, when ``output_hidden_states=True``.
    """

    last_hidden_state: torch.Tensor | None = None
    pooler_output: torch.Tensor | None = None
    register_states: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


class JetFMPreTrainedModel(ModelHubMixin, PreTrainedModel):
    """Base class: config class, weight initialisation and the ``jetfm`` prefix that lets
    every head load a backbone-only checkpoint. :class:`~jetfm.publish.ModelHubMixin` makes
    ``from_pretrained`` resolve short names / the Hub / the shipped copies with safety checks,
    ``save_pretrained`` write the model card and ``push_to_hub`` upload the full folder."""

    config_class = JetFMConfig
    config: JetFMConfig
    base_model_prefix = "jetfm"
    main_input_name = "kinematics"
    supports_gradient_checkpointing = False
    _no_split_modules = ["TransformerBlock", "ClassAttentionBlock"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, LayerScale):
            init.constant_(module.gamma, module.init_value)
        elif isinstance(module, JetFMModel):
            init.trunc_normal_(module.register_tokens, std=self.config.initializer_range)
            init.trunc_normal_(module.cls_token, std=self.config.initializer_range)


class ParticleEmbedding(nn.Module):
    """One embedding per feature group, summed: an MLP for continuous groups, a categorical
    embedding of the particle type for ``pid`` (plus a linear term for the raw flags)."""

    def __init__(self, config: JetFMConfig):
        super().__init__()
        d = config.hidden_size
        self.group_sizes = dict(config.feature_groups)
        self.group_dropout_prob = config.group_dropout_prob
        self.mlps = nn.ModuleDict(
            {
                g: nn.Sequential(nn.Linear(n, d), nn.GELU(), nn.Linear(d, d))
                for g, n in self.group_sizes.items()
                if g != "pid"
            }
        )
        if "pid" in self.group_sizes:
            self.pid_type = nn.Embedding(NUM_PID_CATEGORIES, d)
            self.pid_linear = nn.Linear(self.group_sizes["pid"], d)
        self.rank = nn.Embedding(config.max_particles, d) if config.ordered else None

    def _check(self, name: str, x: torch.Tensor, like: torch.Tensor) -> None:
        expected = self.group_sizes.get(name)
        if expected is None:
            raise ValueError(
                f"feature group {name!r} was given but the model was built for "
                f"{list(self.group_sizes)}"
            )
        if x.dim() != 3 or x.shape[:2] != like.shape[:2] or x.shape[-1] != expected:
            names = FEATURE_GROUPS.get(name, ())
            raise ValueError(
                f"feature group {name!r} must have shape (batch, particles, {expected}) "
                f"{tuple(names)} matching kinematics {tuple(like.shape[:2])}; got {tuple(x.shape)}"
            )

    def forward(
        self,
        groups: dict[str, torch.Tensor],
        particle_ranks: torch.Tensor | None = None,
    ) -> torch.Tensor:
        kin = groups[REQUIRED_GROUP]
        self._check(REQUIRED_GROUP, kin, kin)
        x = self.mlps[REQUIRED_GROUP](kin)
        for name, feats in groups.items():
            if name == REQUIRED_GROUP or feats is None:
                continue
            self._check(name, feats, kin)
            if name == "pid":
                emb = self.pid_type(pid_categories(feats)) + self.pid_linear(feats)
            else:
                emb = self.mlps[name](feats)
            if self.training and self.group_dropout_prob > 0:
                # Drop the whole group for some jets so the backbone learns to work on
                # kinematics alone (public datasets often have only 4-vectors).
                keep = torch.rand(kin.shape[0], 1, 1, device=kin.device) >= self.group_dropout_prob
                emb = emb * keep.to(emb.dtype)
            x = x + emb
        if self.rank is not None:
            if particle_ranks is None:
                particle_ranks = torch.arange(kin.shape[1], device=kin.device).expand(kin.shape[:2])
            x = x + self.rank(particle_ranks.clamp(max=self.rank.num_embeddings - 1))
        return x


class JetFMModel(JetFMPreTrainedModel):
    """The jetfm backbone (exported as ``jetfm.JetFM``).

    Example::

        model = JetFM.from_pretrained("mpm-truth-det-base")
        out = model(kinematics=batch["kinematics"], pid=batch["pid"],
                    tracks=batch["tracks"], mask=batch["mask"])
        out.last_hidden_state  # (B, N, D) particle states
        out.pooler_output      # (B, D) jet state
    """

    # A pre-training or fine-tuned checkpoint also holds decoder/target/head weights; loading
    # only the backbone from it is expected, not worth a warning.
    _keys_to_ignore_on_load_unexpected = [
        r"^decoder\.", r"^target\.", r"^pid_head\.", r"^truth\.", r"^encoder_mask_token",
        r"^classifier\.", r"^pair_proj\.", r"^pair_scorer\.",
    ]  # fmt: skip

    def __init__(self, config: JetFMConfig):
        super().__init__(config)
        d = config.hidden_size
        self.embeddings = ParticleEmbedding(config)
        self.register_tokens = nn.Parameter(torch.zeros(1, config.num_register_tokens, d))
        block_args = dict(
            dim=d,
            num_heads=config.num_attention_heads,
            ff_hidden=config.intermediate_size,
            layer_scale_init=config.layer_scale_init,
            dropout=config.hidden_dropout_prob,
            eps=config.layer_norm_eps,
        )
        self.layers = nn.ModuleList(
            TransformerBlock(**block_args, attention_dropout=config.attention_dropout_prob)
            for _ in range(config.num_hidden_layers)
        )
        self.norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.class_attention = nn.ModuleList(
            ClassAttentionBlock(**block_args) for _ in range(config.num_class_attention_layers)
        )
        self.pool_norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.post_init()

    def embed(
        self,
        kinematics: torch.Tensor,
        pid: torch.Tensor | None = None,
        tracks: torch.Tensor | None = None,
        particle_ranks: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Particle embeddings ``(B, N, D)`` (what ``inputs_embeds`` replaces)."""
        groups = {REQUIRED_GROUP: kinematics, "pid": pid, "tracks": tracks}
        return self.embeddings(groups, particle_ranks)

    def encode(
        self, inputs_embeds: torch.Tensor, mask: torch.Tensor, output_hidden_states: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...] | None]:
        """Run the encoder blocks on embeddings; returns (particles, registers, hidden)."""
        r = self.config.num_register_tokens
        b = inputs_embeds.shape[0]
        x = torch.cat([self.register_tokens.expand(b, -1, -1), inputs_embeds], dim=1)
        full_mask = torch.cat([mask.new_ones(b, r), mask], dim=1)
        hidden = [] if output_hidden_states else None
        for layer in self.layers:
            if hidden is not None:
                hidden.append(x[:, r:])
            x = layer(x, full_mask)
        x = self.norm(x)
        if hidden is not None:
            hidden.append(x[:, r:])
        return x, full_mask, tuple(hidden) if hidden is not None else None

    def pool(self, states: torch.Tensor, full_mask: torch.Tensor) -> torch.Tensor:
        """Class-attention pooling of encoder states (registers included) → jet state (B, D)."""
        cls = self.cls_token.expand(states.shape[0], -1, -1)
        for block in self.class_attention:
            cls = block(cls, states, full_mask)
        return self.pool_norm(cls[:, 0])

    def forward(
        self,
        kinematics: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        pid: torch.Tensor | None = None,
        tracks: torch.Tensor | None = None,
        particle_ranks: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> JetFMModelOutput | tuple[torch.Tensor, ...]:
        r"""
        Args:
            kinematics: ``(B, N, 7)`` normalised kinematic features (required unless
                ``inputs_embeds`` is given).
            mask: ``(B, N)`` bool, True for real particles (default: all real).
            pid: ``(B, N, 6)`` charge and particle-type flags, optional.
            tracks: ``(B, N, 4)`` normalised track parameters, optional.
            particle_ranks: ``(B, N)`` pT ranks, used only when ``config.ordered``.
            inputs_embeds: ``(B, N, D)`` precomputed embeddings (e.g. with mask tokens).
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if inputs_embeds is None:
            if kinematics is None:
                raise ValueError("JetFMModel needs `kinematics` (or `inputs_embeds`)")
            inputs_embeds = self.embed(kinematics, pid, tracks, particle_ranks)
        b, n = inputs_embeds.shape[:2]
        if mask is None:
            mask = torch.ones(b, n, dtype=torch.bool, device=inputs_embeds.device)
        elif mask.shape != (b, n):
            raise ValueError(f"mask must have shape {(b, n)}, got {tuple(mask.shape)}")
        mask = mask.bool()
        x, full_mask, hidden = self.encode(inputs_embeds, mask, bool(output_hidden_states))
        r = self.config.num_register_tokens
        pooled = self.pool(x, full_mask)
        particles = masked_fill_padding(x[:, r:], mask)
        out = JetFMModelOutput(
            last_hidden_state=particles,
            pooler_output=pooled,
            register_states=x[:, :r],
            hidden_states=hidden,
        )
        return out if return_dict else out.to_tuple()
