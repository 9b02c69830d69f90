"""Supervised objectives on generator truth, trained beside the MPM target.

:class:`TruthHeads` are small heads on the backbone states that
:class:`~jetfm.modeling.pretraining.JetFMForMaskedParticleModeling` already computes for MPM
(the visible particles' states and the class-attention jet state of the same encoder pass,
so supervision costs a few small matrix products, not a second forward):

* ``class``: the jet class from ``[jet state, mean particle state]`` (the input of the
  fine-tuning tagger), a cross-entropy over ``config.pretrain_classes`` — the data's classes
  with QCD split by its hard parton (``QCD_light``, ``QCD_gluon``, ``QCD_heavy``; see
  :mod:`jetfm.data.truth`). A jet whose class is not in the list (held out) has no class
  loss; it still pre-trains through MPM and the other objectives.
* ``origin``: each visible track's origin (:data:`~jetfm.data.schema.TRACK_ORIGINS`) from
  ``[particle state, jet state]``, the class-weighted cross-entropy of the fine-tuning
  track-ID head; neutrals (``−1`` in ``part_origin``) are ignored.
* ``vertex``: for every pair of visible tracks, whether they share a vertex, scored by a
  symmetric bilinear form of the particle states (``O(B·N²)`` scalars, no pair MLP) under the
  focal loss of :func:`jetfm.modeling.vertexing.vertex_pair_loss`.

The loss of each is a weighted mean over its labelled entries, with static shapes (labels
outside the objective are :data:`~jetfm.data.schema.IGNORE_INDEX`, masked by weights rather
than boolean indexing), and zero, with the graph kept, when a batch has none.
The pre-training loss is ``MPM + Σ config.truth_objectives[name] · loss[name]``
(:data:`~jetfm.configuration.DEFAULT_TRUTH_WEIGHTS`: class 1, origin 0.5, vertex off).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from jetfm.configuration import TRUTH_OBJECTIVES, JetFMConfig
from jetfm.data.schema import IGNORE_INDEX, TRACK_ORIGINS
from jetfm.data.truth import truth_class_table
from jetfm.modeling.heads import MLPHead, class_weighted_cross_entropy, masked_mean
from jetfm.modeling.masking import weighted_mean
from jetfm.modeling.vertexing import vertex_pair_loss

#: exponent of the inverse-frequency class weights of the origin loss (as in track ID)
ORIGIN_CLASS_WEIGHT_POWER = 0.5
#: focusing parameter of the vertex pair loss (as in vertex finding)
VERTEX_FOCAL_GAMMA = 2.0


def active_objectives(config: JetFMConfig) -> dict[str, float]:
    """``{objective: weight}`` of the truth objectives a config switches on (weight > 0)."""
    weights = getattr(config, "truth_objectives", None) or {}
    return {k: float(weights[k]) for k in TRUTH_OBJECTIVES if float(weights.get(k, 0)) > 0}


@dataclass
class TruthOutput:
    """What :class:`TruthHeads` computed: ``losses`` ``{objective: scalar}`` for the
    objectives whose labels the batch carried, and the logits of every head."""

    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    class_logits: torch.Tensor | None = None
    origin_logits: torch.Tensor | None = None
    vertex_logits: torch.Tensor | None = None


class PairScorer(nn.Module):
    """Symmetric same-vertex logits ``(B, N, N)`` of every particle pair: the scaled dot
    product of projected states plus a learned offset (a Gram matrix: symmetric, and
    ``O(B·N²)`` scalars where a pair MLP would hold ``O(B·N²·D)``)."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Linear(dim, dim)
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        z = self.proj(states)
        gram = torch.einsum("bik,bjk->bij", z, z) / math.sqrt(z.shape[-1])
        return gram.float() + self.bias


class TruthHeads(nn.Module):
    """The heads of the objectives :func:`active_objectives` switches on (see the module
    docstring); the others are absent, so a checkpoint holds only what was trained."""

    def __init__(self, config: JetFMConfig):
        super().__init__()
        self.weights = active_objectives(config)
        d = config.hidden_size
        dropout = config.hidden_dropout_prob
        self.jet_class = self.origin = self.vertex = None
        self._table = None
        if "class" in self.weights:
            classes = list(config.pretrain_classes or ())
            self.jet_class = MLPHead(2 * d, d, len(classes), dropout)
            self._table = truth_class_table(config.pretrain_label_names or (), classes)
            self.register_buffer("class_table", torch.from_numpy(self._table), persistent=False)
        if "origin" in self.weights:
            self.origin = MLPHead(2 * d, d, len(TRACK_ORIGINS), dropout)
        if "vertex" in self.weights:
            self.vertex = PairScorer(d)

    @torch.no_grad()
    def reset_class_table(self) -> None:
        """Write the class table (derived from the config) into its buffer: a model built on
        the meta device (``from_pretrained``) gets it here, as its weights get initialised."""
        if self._table is not None:
            self.class_table.copy_(torch.from_numpy(self._table))

    def class_targets(
        self, labels: torch.Tensor, parton_labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(B,)`` index in ``config.pretrain_classes`` of each jet, ``IGNORE_INDEX`` for a
        jet of a class not supervised. ``labels``: index in ``pretrain_label_names``;
        ``parton_labels``: the hard parton's flavour (QCD split; None: not known)."""
        unknown = self.class_table.shape[1] - 1
        if parton_labels is None:
            flavour = torch.full_like(labels, unknown)
        else:
            flavour = torch.where(parton_labels >= 0, parton_labels, unknown)
        target = self.class_table[labels.clamp(min=0), flavour]
        return torch.where(labels >= 0, target, IGNORE_INDEX)

    def forward(
        self,
        states: torch.Tensor,
        jet_state: torch.Tensor,
        visible: torch.Tensor,
        labels: torch.Tensor | None = None,
        parton_labels: torch.Tensor | None = None,
        track_labels: torch.Tensor | None = None,
        vertex_labels: torch.Tensor | None = None,
    ) -> TruthOutput:
        """
        Args:
            states: ``(B, N, D)`` backbone states in the particle slots (zero elsewhere).
            jet_state: ``(B, D)`` class-attention jet state of the same pass.
            visible: ``(B, N)`` bool, the slots whose states the backbone computed from the
                particle itself (real and not masked); only these are supervised.
            labels / parton_labels: ``(B,)`` jet class (index in the data's label names)
                and the hard parton's flavour; the ``class`` loss needs ``labels``.
            track_labels / vertex_labels: ``(B, N)`` ``part_origin`` / ``part_vtx`` with
                ``IGNORE_INDEX`` on neutrals and padding.
        """
        out = TruthOutput()
        if self.jet_class is not None:
            jet = torch.cat([jet_state, masked_mean(states, visible)], dim=-1)
            out.class_logits = self.jet_class(jet)
            if labels is not None:
                target = self.class_targets(labels.long(), _long(parton_labels))
                ce = F.cross_entropy(
                    out.class_logits.float(), target.clamp(min=0), reduction="none"
                )
                out.losses["class"] = weighted_mean(ce, target != IGNORE_INDEX)
        if self.origin is not None:
            context = jet_state[:, None, :].expand_as(states)
            out.origin_logits = self.origin(torch.cat([states, context], dim=-1))
            if track_labels is not None:
                target = torch.where(visible, track_labels.long(), IGNORE_INDEX)
                out.losses["origin"] = class_weighted_cross_entropy(
                    out.origin_logits, target, len(TRACK_ORIGINS), ORIGIN_CLASS_WEIGHT_POWER
                )
        if self.vertex is not None:
            out.vertex_logits = self.vertex(states)
            if vertex_labels is not None:
                target = torch.where(visible, vertex_labels.long(), IGNORE_INDEX)
                out.losses["vertex"] = vertex_pair_loss(
                    out.vertex_logits, target, gamma=VERTEX_FOCAL_GAMMA
                )
        return out

    def total(self, losses: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """``Σ weight · loss`` over ``losses`` (None when empty)."""
        terms = [self.weights[k] * v for k, v in losses.items()]
        return sum(terms[1:], terms[0]) if terms else None


def _long(x: torch.Tensor | None) -> torch.Tensor | None:
    return None if x is None else x.long()


__all__ = [
    "ORIGIN_CLASS_WEIGHT_POWER",
    "PairScorer",
    "TruthHeads",
    "TruthOutput",
    "VERTEX_FOCAL_GAMMA",
    "active_objectives",
]
