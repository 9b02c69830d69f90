"""Masked Particle Modelling: ``JetFMForMaskedParticleModeling``.

For each jet a fraction ``config.mask_fraction`` of its real particles is masked at random.

* ``mask_in_encoder=False`` (default, arXiv 2409.12589): masked particles are **dropped** from
  the encoder input. The visible particles are gathered into a compact padded tensor (padded
  to the largest visible count in the batch), encoded, and scattered back into their original
  slots; the decoder gets a learned mask token at every masked slot. The encoder thus costs
  only the visible particles.
* ``mask_in_encoder=True`` (arXiv 2401.13537): the backbone sees every slot, with the masked
  particles' embeddings replaced by a learned mask token (through ``inputs_embeds``).

**Set ambiguity.** The backbone has no positions, so identical mask tokens could not tell the
masked slots apart: every masked slot would receive the same prediction. The symmetry is
broken *in the decoder only*: every decoder input token gets a learned pT-rank embedding
(its slot index — the data layer sorts particles by decreasing pT, so the slot is the rank
within the full jet). The backbone, which is what gets fine-tuned, stays
permutation-equivariant.

The decoder is a lighter transformer (``decoder_*`` config fields) over the particle slots plus
the backbone's register states as extra context; the target (``config.mpm_target``, see
:mod:`jetfm.modeling.targets`) reads the decoder state at each masked slot. With
``pid_side_target`` and ``pid`` given, a cross-entropy on the particle type
(:func:`~jetfm.modeling.backbone.pid_categories`) is added.

**Simulation truth beside MPM.** With ``config.truth_objectives`` the same encoder pass also
feeds small supervised heads (:mod:`jetfm.modeling.truth_heads`: jet class with QCD split by
its hard parton, track origin, same-vertex track pairs) on the visible particles' states and
the jet state; their losses, weighted, are added to the MPM loss when the batch carries the
labels (``labels``, ``parton_labels``, ``track_labels``, ``vertex_labels``), and each is
reported on its own (``mpm_loss``, ``class_loss``, ``origin_loss``, ``vertex_loss``).

The backbone lives in ``self.jetfm``, so a saved MPM checkpoint loads straight into
``JetFMModel.from_pretrained`` and every task head.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.utils import ModelOutput

from jetfm.configuration import JetFMConfig
from jetfm.data.schema import NORMALISED_GROUPS
from jetfm.modeling.backbone import (
    NUM_PID_CATEGORIES,
    JetFMModel,
    JetFMPreTrainedModel,
    pid_categories,
)
from jetfm.modeling.layers import TransformerBlock, masked_fill_padding
from jetfm.modeling.masking import (
    MaskedSlots,
    first_slots,
    gather_slots,
    sample_particle_mask,
    static_width_table,
    weighted_mean,
)
from jetfm.modeling.targets import MPMTarget, TargetInputs, TargetOutput, build_target
from jetfm.modeling.truth_heads import TruthHeads, active_objectives

#: seed of the masks (and target noise) drawn in evaluation mode, so eval losses are
#: reproducible and comparable between checkpoints
EVAL_SEED = 1234


@dataclass
class MaskedParticleModelingOutput(ModelOutput):
    """Output of :class:`JetFMForMaskedParticleModeling`.

    Args:
        loss: ``mpm_loss + Σ truth weight · truth loss``.
        mpm_loss: ``target_loss + pid_weight · pid_loss``.
        target_loss: loss of the ``mpm_target``.
        pid_loss: particle-type side-target (None when unused).
        class_loss / origin_loss / vertex_loss: the truth objectives (None when off or
            without their labels in the batch); :attr:`losses` gathers them.
        class_logits: ``(B, C)`` over ``config.pretrain_classes``; origin_logits:
            ``(B, N, 6)``; vertex_logits: ``(B, N, N)`` (the truth heads'; None when off).
        masked: ``(B, N)`` bool, the masked particles.
        logits: ``(E, K)`` code logits (``vqvae``, ``kmeans``).
        target_codes: ``(E,)`` true codes (``vqvae``, ``kmeans``).
        predictions: ``(E, F)`` regressed features (``regression``).
        pid_logits: ``(E, 11)`` particle-type logits.
        decoder_states: ``(E, Dd)`` decoder states at the masked slots.
        masked_index: ``(B, K)`` slot index of each entry (``static_shapes=True``; the
            entries are then ``E = B·K`` rows, jet by jet, each jet's masked particles first
            in slot order), None when the entries are exactly the masked particles
            (``E = M``, row-major order of ``masked``).
        masked_valid: ``(B, K)`` bool, which entries are masked particles (with
            ``masked_index``); ``MaskedParticleModelingOutput.entries`` drops the others.
    """

    loss: torch.Tensor | None = None
    target_loss: torch.Tensor | None = None
    pid_loss: torch.Tensor | None = None
    masked: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    target_codes: torch.Tensor | None = None
    predictions: torch.Tensor | None = None
    pid_logits: torch.Tensor | None = None
    decoder_states: torch.Tensor | None = None
    masked_index: torch.Tensor | None = None
    masked_valid: torch.Tensor | None = None
    mpm_loss: torch.Tensor | None = None
    class_loss: torch.Tensor | None = None
    origin_loss: torch.Tensor | None = None
    vertex_loss: torch.Tensor | None = None
    class_logits: torch.Tensor | None = None
    origin_logits: torch.Tensor | None = None
    vertex_logits: torch.Tensor | None = None

    @property
    def losses(self) -> dict[str, torch.Tensor]:
        """The loss components (detached): ``{"mpm", "class", "origin", "vertex"}``, those
        computed in this step."""
        parts = {"mpm": self.mpm_loss, "class": self.class_loss, "origin": self.origin_loss,
                 "vertex": self.vertex_loss}  # fmt: skip
        return {k: v for k, v in parts.items() if v is not None}

    def entries(self, x: torch.Tensor) -> torch.Tensor:
        """Per-entry rows ``(E, …)`` (e.g. ``decoder_states``) at the masked particles only,
        ``(M, …)`` in row-major order of ``masked``, whichever form the step used."""
        if self.masked_valid is None:
            return x
        return x[self.masked_valid.flatten()]


class _Pass(NamedTuple):
    """One encoder + decoder pass: decoder states ``(B,N,Dd)``, the mask ``(B,N)``, the
    encoder's particle states ``(B,N,D)`` and jet state ``(B,D)`` (None without truth heads)."""

    decoded: torch.Tensor | None
    masked: torch.Tensor
    states: torch.Tensor
    jet_state: torch.Tensor | None


class _MPMLoss(NamedTuple):
    """The masked-particle part of a forward pass (all None when ``mpm_loss_weight`` is 0)."""

    loss: torch.Tensor | None = None
    target_out: TargetOutput | None = None
    pid_loss: torch.Tensor | None = None
    pid_logits: torch.Tensor | None = None
    states: torch.Tensor | None = None
    slots: MaskedSlots | None = None


class MPMDecoder(nn.Module):
    """Light transformer over the particle slots (+ registers) with pT-rank embeddings."""

    def __init__(self, config: JetFMConfig):
        super().__init__()
        dd = config.decoder_hidden_size
        if dd % config.decoder_num_attention_heads:
            raise ValueError(
                f"decoder_hidden_size ({dd}) must be divisible by decoder_num_attention_heads "
                f"({config.decoder_num_attention_heads})"
            )
        self.input_proj = nn.Linear(config.hidden_size, dd)
        self.mask_token = nn.Parameter(torch.zeros(dd))
        self.rank_embedding = nn.Embedding(config.max_particles, dd)
        self.blocks = nn.ModuleList(
            TransformerBlock(
                dd,
                config.decoder_num_attention_heads,
                2 * dd,
                layer_scale_init=config.layer_scale_init,
                dropout=config.hidden_dropout_prob,
                eps=config.layer_norm_eps,
            )
            for _ in range(config.decoder_num_layers)
        )
        self.norm = nn.LayerNorm(dd, eps=config.layer_norm_eps)

    def forward(
        self,
        states: torch.Tensor,
        registers: torch.Tensor,
        mask: torch.Tensor,
        masked: torch.Tensor,
        replace_masked: bool = True,
        sees_visible: bool = True,
    ) -> torch.Tensor:
        """``states`` ``(B, N, D)`` in their slots and context tokens ``registers`` ``(B, R, D)``
        (registers, optionally the jet state) → decoder states ``(B, N, Dd)``.

        With ``sees_visible=False`` the masked slots attend only to each other and to the
        context tokens, not to the visible particles' states: the jet summary is then the only
        route to the answer (see ``JetFMConfig.decoder_sees_visible``)."""
        b, n = mask.shape
        x = self.input_proj(states)
        if replace_masked:
            x = torch.where(masked.unsqueeze(-1), self.mask_token.to(x.dtype), x)
        ranks = torch.arange(n, device=x.device).clamp(max=self.rank_embedding.num_embeddings - 1)
        x = masked_fill_padding(x + self.rank_embedding(ranks), mask)  # padding stays padding
        r = registers.shape[1]
        h = torch.cat([self.input_proj(registers), x], dim=1)
        keys = mask if sees_visible else masked & mask
        h_mask = torch.cat([mask.new_ones(b, r), keys], dim=1)
        for block in self.blocks:
            h = block(h, h_mask)
        return self.norm(h[:, r:])


class JetFMForMaskedParticleModeling(JetFMPreTrainedModel):
    """Backbone + decoder + target for Masked Particle Modelling (see the module docstring).

    Example::

        config = JetFMConfig.from_preset("small", mpm_target="flow")
        model = JetFMForMaskedParticleModeling(config)
        out = model(**batch)          # batch from JetCollator
        out.loss.backward()
        model.save_pretrained("mpm")  # JetFMModel.from_pretrained("mpm") gets the backbone
    """

    def __init__(self, config: JetFMConfig):
        super().__init__(config)
        self.jetfm = JetFMModel(config)
        self.encoder_mask_token = (
            nn.Parameter(torch.zeros(config.hidden_size)) if config.mask_in_encoder else None
        )
        self.decoder = MPMDecoder(config)
        self.target: MPMTarget = build_target(config, config.decoder_hidden_size)
        self.pid_head = (
            nn.Linear(config.decoder_hidden_size, NUM_PID_CATEGORIES)
            if config.pid_side_target and "pid" in config.feature_groups
            else None
        )
        self.truth = TruthHeads(config) if active_objectives(config) else None
        self.post_init()
        self._build_width_table()
        if config.mpm_embedding_lr_scale == 0:  # see JetFMConfig.mpm_embedding_lr_scale
            self.jetfm.embeddings.requires_grad_(False)
        if config.mpm_group_dropout > 0:
            # set on the embedding, not in config.group_dropout_prob, so that task models
            # built from this checkpoint's config fine-tune without dropping groups
            self.jetfm.embeddings.group_dropout_prob = config.mpm_group_dropout

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        std = self.config.initializer_range
        if isinstance(module, MPMDecoder):
            init.trunc_normal_(module.mask_token, std=std)
        elif isinstance(module, JetFMForMaskedParticleModeling):
            if module.encoder_mask_token is not None:
                init.trunc_normal_(module.encoder_mask_token, std=std)
        elif isinstance(module, MPMTarget):
            module.init_custom_weights(std)
        elif isinstance(module, TruthHeads):
            module.reset_class_table()

    #: a release keeps these beside the backbone (``mpm_decoder.safetensors``): loaded, or
    #: reported clearly, by ``_complete_from_folder`` rather than in transformers' key table
    _keys_to_ignore_on_load_missing = [
        r"^(decoder|target|pid_head|truth)\.",
        r"^encoder_mask_token$",
    ]

    @classmethod
    def _complete_from_folder(cls, model: JetFMForMaskedParticleModeling, folder) -> None:
        """After ``from_pretrained``: from a release, load the decoder shipped beside the
        backbone; then re-freeze the target's frozen parts (the VQ-VAE tokenizer): loading
        replaces parameters and resets ``requires_grad``."""
        from jetfm.modeling.continuation import complete_from_release

        complete_from_release(model, folder)
        model.target.freeze_frozen()

    # --- encoding -------------------------------------------------------------------------
    def static_widths(self, num_slots: int) -> tuple[int, int]:
        """``(most masked, most visible)`` particles of any jet in ``num_slots`` slots at
        this model's mask fraction: the widths of the static-shape step."""
        fraction = self.config.mask_fraction
        if self._width_fraction != fraction or num_slots >= len(self._width_table):
            # only if the config changed after construction (the table is built eagerly in
            # __init__, so a compiled step just reads it)
            self._build_width_table(num_slots)
        return self._width_table[num_slots]

    def _build_width_table(self, num_slots: int = 0) -> None:
        self._width_fraction = self.config.mask_fraction
        size = max(num_slots, self.config.max_particles)
        self._width_table = static_width_table(size, self._width_fraction)

    def _encode_visible(self, kinematics, pid, tracks, mask, masked, width=None):
        """Drop the masked particles: encode a compact tensor of the visible ones and scatter
        the states back into their slots. Returns ``(states (B,N,D), registers (B,R,D))``.

        ``width``: slots of the compact tensor (static shapes); None = the most visible
        particles of any jet in this batch (a host synchronisation)."""
        states, x, full_mask = self._visible_pass(kinematics, pid, tracks, mask, masked, width)
        return states, self._context_tokens(x, full_mask)

    def _visible_pass(self, kinematics, pid, tracks, mask, masked, width=None):
        """:meth:`_encode_visible`, returning ``(states (B,N,D), encoder output (B,R+W,D),
        its mask)``."""
        b, n = mask.shape
        visible = mask & ~masked
        if width is None:
            width = int(visible.sum(dim=1).max()) if b else 0
        # Stable sort puts each jet's visible slots first, in their original (pT) order.
        order, compact_mask = first_slots(visible, width)
        embeds = self.jetfm.embed(
            gather_slots(kinematics, order),
            None if pid is None else gather_slots(pid, order),
            None if tracks is None else gather_slots(tracks, order),
            particle_ranks=order,
        )
        x, full_mask, _ = self.jetfm.encode(embeds, compact_mask)
        r = self.config.num_register_tokens
        states = masked_fill_padding(x[:, r:], compact_mask)
        full = states.new_zeros(b, n, states.shape[-1])
        # Slots are unique per row; compact padding carries zeros into non-visible slots.
        full = full.scatter(1, order.unsqueeze(-1).expand(-1, -1, states.shape[-1]), states)
        return full, x, full_mask

    def _context_tokens(
        self, x: torch.Tensor, full_mask: torch.Tensor, jet_state: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The tokens the decoder sees besides the particle slots: the registers and, with
        ``decoder_jet_token``, the pooled jet state (which trains the pooler too; computed
        here unless given)."""
        registers = x[:, : self.config.num_register_tokens]
        if not getattr(self.config, "decoder_jet_token", False):
            return registers
        if jet_state is None:
            jet_state = self.jetfm.pool(x, full_mask)
        return torch.cat([registers, jet_state.unsqueeze(1)], dim=1)

    def _encode_with_mask_tokens(self, kinematics, pid, tracks, mask, masked):
        """First-paper scheme: every slot through the encoder, masked ones as a mask token."""
        states, x, full_mask = self._mask_token_pass(kinematics, pid, tracks, mask, masked)
        return states, self._context_tokens(x, full_mask)

    def _mask_token_pass(self, kinematics, pid, tracks, mask, masked):
        """:meth:`_encode_with_mask_tokens`, returning ``(states, encoder output, mask)``."""
        embeds = self.jetfm.embed(kinematics, pid, tracks)
        embeds = torch.where(masked.unsqueeze(-1), self.encoder_mask_token.to(embeds.dtype), embeds)
        x, full_mask, _ = self.jetfm.encode(embeds, mask)
        r = self.config.num_register_tokens
        return masked_fill_padding(x[:, r:], mask), x, full_mask

    def decode(
        self,
        kinematics,
        mask,
        pid=None,
        tracks=None,
        masked=None,
        generator=None,
        context_shift=0,
        static_shapes=False,
    ):
        """Run encoder and decoder; returns ``(decoder states (B,N,Dd), masked (B,N))``.

        ``context_shift=k`` hands each jet's masked slots the encoder output of the jet ``k``
        places further in the batch (a diagnostic: see :func:`jetfm.diagnostics.context_gain`).
        ``static_shapes``: size the encoder's compact tensor of visible particles by the batch
        shape, not by its data (see :meth:`forward`).
        """
        encoded = self._encode_and_decode(
            kinematics, mask, pid, tracks, masked, generator, context_shift, static_shapes
        )
        return encoded.decoded, encoded.masked

    def _encode_and_decode(
        self,
        kinematics,
        mask,
        pid=None,
        tracks=None,
        masked=None,
        generator=None,
        context_shift=0,
        static_shapes=False,
        decode: bool = True,
    ) -> _Pass:
        """:meth:`decode`, also returning the encoder's particle states and jet state (the
        truth heads' inputs); ``decode=False`` stops after the encoder (no decoder states)."""
        if kinematics.dim() != 3:
            raise ValueError(
                f"kinematics must have shape (batch, particles, features), got "
                f"{tuple(kinematics.shape)}"
            )
        b, n = kinematics.shape[:2]
        if mask is None:
            mask = torch.ones(b, n, dtype=torch.bool, device=kinematics.device)
        elif mask.shape != (b, n):
            raise ValueError(f"mask must have shape {(b, n)}, got {tuple(mask.shape)}")
        mask = mask.bool()
        if masked is None:
            masked = sample_particle_mask(mask, self.config.mask_fraction, generator)
        elif masked.shape != (b, n):
            raise ValueError(f"masked must have shape {(b, n)}, got {tuple(masked.shape)}")
        masked = masked.bool() & mask
        if self.config.mask_in_encoder:
            states, x, full_mask = self._mask_token_pass(kinematics, pid, tracks, mask, masked)
        else:
            width = self.static_widths(n)[1] if static_shapes else None
            states, x, full_mask = self._visible_pass(kinematics, pid, tracks, mask, masked, width)
        # the jet state of the visible particles: for the truth heads and the decoder's jet token
        jet_state = self.jetfm.pool(x, full_mask) if self.truth is not None else None
        if not decode:
            return _Pass(None, masked, states, jet_state)
        registers = self._context_tokens(x, full_mask, jet_state)
        encoder_states = states
        if context_shift:
            # mask tokens through the encoder carry their own jet's context: move them too
            visible = (mask if self.config.mask_in_encoder else mask & ~masked).unsqueeze(-1)
            states = torch.where(visible, states.roll(context_shift, 0), states)
            registers = registers.roll(context_shift, 0)
        decoded = self.decoder(
            states,
            registers,
            mask,
            masked,
            replace_masked=not self.config.mask_in_encoder,
            sees_visible=self.config.decoder_sees_visible,
        )
        return _Pass(decoded, masked, encoder_states, jet_state)

    def _generator(self, device: torch.device) -> torch.Generator | None:
        if self.training:
            return None
        return torch.Generator(device=device).manual_seed(EVAL_SEED)

    def forward(
        self,
        kinematics: torch.Tensor,
        mask: torch.Tensor | None = None,
        pid: torch.Tensor | None = None,
        tracks: torch.Tensor | None = None,
        masked: torch.Tensor | None = None,
        return_loss: bool = True,
        return_dict: bool | None = None,
        context_shift: int = 0,
        static_shapes: bool | None = None,
        labels: torch.Tensor | None = None,
        parton_labels: torch.Tensor | None = None,
        track_labels: torch.Tensor | None = None,
        vertex_labels: torch.Tensor | None = None,
    ) -> MaskedParticleModelingOutput | tuple:
        r"""
        Args:
            kinematics: ``(B, N, 7)`` normalised kinematics.
            mask: ``(B, N)`` bool, True for real particles.
            pid: ``(B, N, 6)`` particle ID (inputs and side-target), optional.
            tracks: ``(B, N, 4)`` normalised track parameters, optional (also reconstructed).
            labels / parton_labels: ``(B,)`` truth of the ``class`` objective: the jet's
                class (index in ``config.pretrain_label_names``) and its hard parton's
                flavour (:data:`~jetfm.data.schema.PARTON_FLAVOURS`, ``IGNORE_INDEX`` when
                not a QCD parton); used only with truth heads.
            track_labels / vertex_labels: ``(B, N)`` ``part_origin`` / ``part_vtx`` truth of
                the ``origin`` / ``vertex`` objectives (``IGNORE_INDEX`` on neutrals).
            masked: optional precomputed ``(B, N)`` bool mask of the particles to hide; drawn
                at random otherwise (with a fixed seed in eval mode, for reproducible losses).
            context_shift: diagnostic; decode each jet from the encoder output of the jet
                this many places further in the batch (0: its own).
            return_loss: kept for the Trainer (it computes eval losses only for models whose
                ``forward`` has ``return_loss=True``); the loss is always computed.
            static_shapes: address the masked particles by ``(B, K)`` index tensors whose
                sizes follow from the batch shape alone (``K`` = the most particles a jet of
                ``N`` slots can have masked; padding entries weigh 0 in the losses), so the
                step has no host synchronisation and compiles whole. ``False`` addresses
                them by boolean indexing (``E = M`` entries, data-dependent sizes). Both
                give the same loss and gradients for the same ``masked``. ``None``
                (default): static on accelerators and under ``torch.compile``, boolean
                indexing in eager CPU runs (where a synchronisation costs nothing and the
                padding entries would cost compute).
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if mask is None:
            mask = torch.ones(kinematics.shape[:2], dtype=torch.bool, device=kinematics.device)
        mask = mask.bool()
        generator = self._generator(kinematics.device)
        if static_shapes is None:
            static_shapes = kinematics.device.type != "cpu" or torch.compiler.is_compiling()
        mpm_weight = self.config.mpm_loss_weight
        encoded = self._encode_and_decode(
            kinematics, mask, pid, tracks, masked, generator, context_shift, static_shapes,
            decode=mpm_weight > 0,
        )  # fmt: skip
        masked = encoded.masked
        mpm = (
            self._mpm_loss(encoded, kinematics, pid, tracks, mask, generator, static_shapes)
            if mpm_weight > 0
            else _MPMLoss()
        )
        loss = None if mpm.loss is None else mpm_weight * mpm.loss
        truth = None
        if self.truth is not None:
            truth = self.truth(
                encoded.states,
                encoded.jet_state,
                mask & ~masked,
                labels,
                parton_labels,
                track_labels,
                vertex_labels,
            )
            extra = self.truth.total(truth.losses)
            if extra is not None:
                loss = extra if loss is None else loss + extra
        if loss is None:  # truth alone, and this batch has none of its labels: a zero step
            loss = encoded.states.sum() * 0.0
        truth_losses = {} if truth is None else {k: v.detach() for k, v in truth.losses.items()}
        target_out = mpm.target_out
        out = MaskedParticleModelingOutput(
            loss=loss,
            mpm_loss=None if mpm.loss is None else mpm.loss.detach(),
            class_loss=truth_losses.get("class"),
            origin_loss=truth_losses.get("origin"),
            vertex_loss=truth_losses.get("vertex"),
            class_logits=None if truth is None else truth.class_logits,
            origin_logits=None if truth is None else truth.origin_logits,
            vertex_logits=None if truth is None else truth.vertex_logits,
            target_loss=None if target_out is None else target_out.loss.detach(),
            pid_loss=None if mpm.pid_loss is None else mpm.pid_loss.detach(),
            masked=masked,
            logits=None if target_out is None else target_out.logits,
            target_codes=None if target_out is None else target_out.codes,
            predictions=None if target_out is None else target_out.predictions,
            pid_logits=mpm.pid_logits,
            decoder_states=mpm.states,
            masked_index=None if mpm.slots is None else mpm.slots.index,
            masked_valid=None if mpm.slots is None else mpm.slots.valid,
        )
        return out if return_dict else out.to_tuple()

    def _mpm_loss(self, encoded, kinematics, pid, tracks, mask, generator, static_shapes):
        """The masked-particle loss of one pass: the target's, plus the particle-ID
        side-target (unweighted by ``mpm_loss_weight``)."""
        masked = encoded.masked
        width = self.static_widths(mask.shape[1])[0] if static_shapes else None
        slots = MaskedSlots.build(masked, width)
        states = slots.select(encoded.decoded)
        jet = {"kinematics": kinematics, "pid": pid, "tracks": tracks}
        features = {
            g: slots.select(x)
            for g, x in jet.items()
            if x is not None and g in NORMALISED_GROUPS and g in self.target.groups
        }
        inputs = TargetInputs(
            features=features,
            masked=masked,
            mask=mask,
            jet={g: x for g, x in jet.items() if x is not None},
            generator=generator,
            slots=slots,
        )
        target_out = self.target(states, inputs)
        loss = target_out.loss
        pid_loss = pid_logits = None
        if self.pid_head is not None and pid is not None:
            pid_logits = self.pid_head(states)
            types = pid_categories(slots.select(pid))
            pid_loss = weighted_mean(
                F.cross_entropy(pid_logits.float(), types, reduction="none"), inputs.weight
            )
            loss = loss + float(self.config.target_options.get("pid_weight", 1.0)) * pid_loss
        return _MPMLoss(loss, target_out, pid_loss, pid_logits, states, slots)

    @torch.no_grad()
    def reconstruct(
        self,
        kinematics: torch.Tensor,
        mask: torch.Tensor | None = None,
        pid: torch.Tensor | None = None,
        tracks: torch.Tensor | None = None,
        masked: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Sample the masked particles from the target (``flow``, ``diffusion``; the point
        estimate for ``regression``). Returns ``({group: (M, F_g)}, masked (B, N))``, the
        rows in row-major order of ``masked``."""
        decoded, masked = self.decode(kinematics, mask, pid, tracks, masked, generator)
        return self.target.sample(decoded[masked], generator=generator), masked


__all__ = [
    "EVAL_SEED",
    "JetFMForMaskedParticleModeling",
    "MPMDecoder",
    "MaskedParticleModelingOutput",
    "sample_particle_mask",
]
