"""The interface every Masked Particle Modelling target implements.

A target receives the decoder state of each masked particle, ``states`` ``(E, Dd)``, plus a
:class:`TargetInputs` with the true masked-particle features (and the whole jet, for targets
whose labels depend on the jet context, like the VQ-VAE tokenizer), and returns a
:class:`TargetOutput` with a scalar loss. Generative targets also implement ``sample``.

Reconstruction features: the *normalised continuous* groups of the masked particle, i.e.
``kinematics`` (7 features) and, when the batch carries them and the model was built with
them, ``tracks`` (4 features). ``pid`` is categorical and has its own side-target.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from jetfm.configuration import JetFMConfig
from jetfm.data.schema import NORMALISED_GROUPS, REQUIRED_GROUP
from jetfm.modeling.masking import MaskedSlots


@dataclass
class TargetInputs:
    """What a target may look at besides the decoder states.

    The targets work on *entries* ``(E, …)``: the masked particles, addressed by
    ``slots`` (see :class:`~jetfm.modeling.masking.MaskedSlots`). In the index form some
    entries are padding; every loss is a mean over entries weighted by ``weight``.

    Args:
        features: ``{group: (E, F_g)}`` normalised continuous features of the masked
            particles, for every target group present in the batch (``kinematics`` first).
        masked: ``(B, N)`` bool, True at masked slots.
        mask: ``(B, N)`` bool, True at real particles.
        jet: ``{group: (B, N, F_g)}`` the full jet inputs (``kinematics``, ``pid``, ``tracks``).
        generator: random generator (fixed in evaluation, ``None`` = global RNG in training).
        slots: how the entries address the slots (default: the boolean form of ``masked``).
    """

    features: dict[str, torch.Tensor]
    masked: torch.Tensor
    mask: torch.Tensor
    jet: dict[str, torch.Tensor] = field(default_factory=dict)
    generator: torch.Generator | None = None
    slots: MaskedSlots | None = None

    def __post_init__(self) -> None:
        if self.slots is None:
            self.slots = MaskedSlots.build(self.masked)

    @property
    def weight(self) -> torch.Tensor:
        """``(E,)``: 1 on masked particles, 0 on padding entries."""
        return self.slots.weight

    def select(self, x: torch.Tensor) -> torch.Tensor:
        """A per-slot tensor ``(B, N, …)`` at the entries ``(E, …)``."""
        return self.slots.select(x)

    # Noise is drawn for every slot and then selected, so each masked particle gets the same
    # draw whichever way the entries are addressed (and the eval generator gives the same
    # losses in both forms).
    def normal(self, n_features: int, dtype: torch.dtype) -> torch.Tensor:
        """Standard-normal noise ``(E, n_features)``."""
        shape = (*self.mask.shape, n_features)
        noise = torch.randn(shape, generator=self.generator, device=self.mask.device)
        return self.select(noise).to(dtype)

    def uniform(self, dtype: torch.dtype) -> torch.Tensor:
        """Uniform noise on [0, 1) ``(E,)``."""
        noise = torch.rand(self.mask.shape, generator=self.generator, device=self.mask.device)
        return self.select(noise).to(dtype)


@dataclass
class TargetOutput:
    """Loss of a target (a weighted mean over the entries), plus optional per-entry outputs.

    ``logits`` ``(E, K)`` and ``codes`` ``(E,)`` for the code targets; ``predictions``
    ``(E, F)`` for direct regression.
    """

    loss: torch.Tensor
    logits: torch.Tensor | None = None
    codes: torch.Tensor | None = None
    predictions: torch.Tensor | None = None


def continuous_groups(config: JetFMConfig) -> dict[str, int]:
    """``{group: n_features}`` reconstructed by the targets, ``kinematics`` first.

    ``config.target_options["groups"]`` restricts the list (e.g. ``["kinematics"]``).
    """
    wanted = config.target_options.get("groups")
    groups = {
        g: n
        for g, n in config.feature_groups.items()
        if g in NORMALISED_GROUPS and (wanted is None or g in wanted)
    }
    if REQUIRED_GROUP not in groups:
        raise ValueError(f"MPM target groups must include {REQUIRED_GROUP!r}; got {list(groups)}")
    return {REQUIRED_GROUP: groups.pop(REQUIRED_GROUP), **groups}


def concat_features(features: dict[str, torch.Tensor], groups: dict[str, int]) -> torch.Tensor:
    """Concatenate the groups a code target needs; a missing group is a clear error."""
    missing = [g for g in groups if g not in features]
    if missing:
        raise ValueError(
            f"this MPM target was built on feature groups {list(groups)} but the batch lacks "
            f"{missing}; pass them to the model (or rebuild with target_options['groups'])"
        )
    return torch.cat([features[g] for g in groups], dim=-1)


class MPMTarget(nn.Module):
    """Base class of the pre-training targets (one module per ``config.mpm_target``)."""

    #: name used in ``config.mpm_target``
    name: str = ""

    def __init__(self, config: JetFMConfig, input_size: int):
        super().__init__()
        self.config = config
        self.input_size = input_size
        self.groups = continuous_groups(config)
        self.options = dict(config.target_options)

    def forward(self, states: torch.Tensor, inputs: TargetInputs) -> TargetOutput:
        raise NotImplementedError

    @torch.no_grad()
    def sample(
        self, states: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Draw ``{group: (M, F_g)}`` particle features given the decoder states."""
        raise NotImplementedError(f"the {self.name!r} target cannot sample particles")

    def freeze_frozen(self) -> None:
        """Set ``requires_grad=False`` on parts that must not train (after loading)."""

    def init_custom_weights(self, std: float) -> None:
        """Initialise parameters that are not plain Linear/Embedding/LayerNorm (called from
        the model's ``_init_weights`` with the ``transformers.initialization`` helpers)."""


def mlp(d_in: int, d_hidden: int, d_out: int, layers: int = 2) -> nn.Sequential:
    """A GELU MLP with ``layers`` hidden layers."""
    mods: list[nn.Module] = []
    d = d_in
    for _ in range(layers):
        mods += [nn.Linear(d, d_hidden), nn.GELU()]
        d = d_hidden
    mods.append(nn.Linear(d, d_out))
    return nn.Sequential(*mods)
