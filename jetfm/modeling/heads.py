"""Task heads on the jetfm backbone: jet tagging, track identification, vertex finding.

Each head is a :class:`JetFMPreTrainedModel` holding the backbone in ``self.jetfm``, so
``JetFMForJetTagging.from_pretrained(pretrained_dir, num_labels=...)`` loads the backbone of
any jetfm checkpoint (backbone-only or MPM) and reports the head weights as newly initialised,
exactly like ``BertForSequenceClassification`` on a BERT checkpoint.

The heads read ``config.head_hidden_size`` (MLP width; default the backbone width, ``0`` for a
linear probe) and ``config.head_dropout_prob``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import SequenceClassifierOutput, TokenClassifierOutput
from transformers.utils import ModelOutput

from jetfm.configuration import JetFMConfig
from jetfm.data.schema import IGNORE_INDEX, TRACK_ORIGINS
from jetfm.modeling.backbone import JetFMModel, JetFMPreTrainedModel
from jetfm.modeling.vertexing import group_vertices, vertex_pair_loss


def _head_hidden(config: JetFMConfig) -> int:
    return config.hidden_size if config.head_hidden_size is None else int(config.head_hidden_size)


class MLPHead(nn.Module):
    """``Linear → GELU → Dropout → Linear`` (a single ``Linear`` when ``hidden == 0``)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, dropout: float):
        super().__init__()
        if hidden <= 0:
            self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, out_dim))
        else:
            self.net = nn.Sequential(
                nn.Linear(in_dim, hidden),
                nn.GELU(),
                nn.Dropout(dropout),
                nn.Linear(hidden, out_dim),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def masked_mean(states: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of the particle states over real particles ``(B, N, D) → (B, D)``."""
    if mask is None:
        return states.mean(dim=1)
    weights = mask.to(states.dtype).unsqueeze(-1)
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class JetFMForJetTagging(JetFMPreTrainedModel):
    """Jet classification from the pooled jet state (``config.num_labels`` classes).

    The MLP reads the class-attention jet state concatenated with the mean of the particle
    states: MPM pre-trains the particle states but never the class-attention pooling, so the
    mean gives a probe pretrained jet features from the first step.

    Also the weakly supervised (CWoLa) classifier: trained with ``num_labels=2`` on the
    mixture index instead of the true class (see :mod:`jetfm.weak_supervision`).

    Example::

        model = JetFMForJetTagging.from_pretrained("path/to/pretrained", num_labels=10)
        out = model(**batch)  # batch from JetCollator(targets=("labels",))
        out.loss, out.logits  # CE loss, (B, num_labels)
    """

    def __init__(self, config: JetFMConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.jetfm = JetFMModel(config)
        self.classifier = MLPHead(
            2 * config.hidden_size,
            _head_hidden(config),
            config.num_labels,
            config.head_dropout_prob,
        )
        self.post_init()

    def jet_representation(
        self,
        kinematics: torch.Tensor,
        mask: torch.Tensor | None = None,
        pid: torch.Tensor | None = None,
        tracks: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(B, 2 * hidden_size)``: the class-attention jet state and the mean particle
        state, the input of :attr:`classifier` (and of ``mode="probe"``'s regression)."""
        out = self.jetfm(kinematics=kinematics, mask=mask, pid=pid, tracks=tracks)
        return torch.cat([out.pooler_output, masked_mean(out.last_hidden_state, mask)], dim=-1)

    def forward(
        self,
        kinematics: torch.Tensor,
        mask: torch.Tensor | None = None,
        pid: torch.Tensor | None = None,
        tracks: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> SequenceClassifierOutput | tuple[torch.Tensor, ...]:
        r"""
        Args:
            kinematics / mask / pid / tracks: the batch contract (see :class:`JetFMModel`).
            labels: ``(B,)`` class indices in ``[0, num_labels)``; gives a cross-entropy loss.

        Returns:
            ``SequenceClassifierOutput`` with ``loss`` (when ``labels``) and ``logits (B, C)``.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        jet = self.jet_representation(kinematics=kinematics, mask=mask, pid=pid, tracks=tracks)
        logits = self.classifier(jet)
        loss = None
        if labels is not None:
            if labels.dim() != 1 or labels.shape[0] != logits.shape[0]:
                raise ValueError(
                    f"labels must have shape ({logits.shape[0]},), got {tuple(labels.shape)}"
                )
            loss = F.cross_entropy(logits, labels.long())
        out = SequenceClassifierOutput(loss=loss, logits=logits)
        return out if return_dict else out.to_tuple()


class JetFMForTrackID(JetFMPreTrainedModel):
    """Per-particle classification of a track's origin (``schema.TRACK_ORIGINS``, 6 classes).

    Each particle state is concatenated with the jet state (global context) and passed
    through an MLP. Positions whose label is ``IGNORE_INDEX`` (neutrals, padding) are left out
    of the loss. Prompt tracks dominate (~80 %), so the cross-entropy weights each class by
    ``count^(−class_weight_power)`` within the batch (0: plain CE, 1: fully balanced).
    """

    num_track_classes = len(TRACK_ORIGINS)
    #: exponent of the per-batch inverse-frequency class weights of the loss
    class_weight_power = 0.5

    def __init__(self, config: JetFMConfig):
        super().__init__(config)
        self.jetfm = JetFMModel(config)
        d = config.hidden_size
        self.classifier = MLPHead(
            2 * d, _head_hidden(config), self.num_track_classes, config.head_dropout_prob
        )
        self.post_init()

    def forward(
        self,
        kinematics: torch.Tensor,
        mask: torch.Tensor | None = None,
        pid: torch.Tensor | None = None,
        tracks: torch.Tensor | None = None,
        track_labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> TokenClassifierOutput | tuple[torch.Tensor, ...]:
        r"""
        Args:
            kinematics / mask / pid / tracks: the batch contract (see :class:`JetFMModel`).
            track_labels: ``(B, N)`` origin index 0..5, ``IGNORE_INDEX`` where not a track.

        Returns:
            ``TokenClassifierOutput`` with ``loss`` and ``logits (B, N, 6)``.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        out = self.jetfm(kinematics=kinematics, mask=mask, pid=pid, tracks=tracks)
        h = out.last_hidden_state
        jet = out.pooler_output[:, None, :].expand_as(h)
        logits = self.classifier(torch.cat([h, jet], dim=-1))
        loss = None
        if track_labels is not None:
            if track_labels.shape != logits.shape[:2]:
                raise ValueError(
                    f"track_labels must have shape {tuple(logits.shape[:2])}, "
                    f"got {tuple(track_labels.shape)}"
                )
            loss = class_weighted_cross_entropy(
                logits, track_labels.long(), self.num_track_classes, self.class_weight_power
            )
        result = TokenClassifierOutput(loss=loss, logits=logits)
        return result if return_dict else result.to_tuple()


def class_weighted_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, num_classes: int, power: float
) -> torch.Tensor:
    """Cross-entropy over the labelled entries of ``logits (B, N, C)``, each class weighted
    by ``count^-power`` in the batch (``F.cross_entropy`` with ``weight``: a weighted mean).

    Branch-free, with static shapes (no boolean indexing, no host synchronisation), so a
    compiled step takes it whole; zero, with the graph kept, when nothing is labelled."""
    valid = labels != IGNORE_INDEX
    safe = labels.clamp(min=0)
    counts = (F.one_hot(safe, num_classes) * valid.unsqueeze(-1)).sum(dim=(0, 1))
    class_weight = counts.clamp(min=1).float().pow(-power)
    weight = class_weight[safe] * valid
    loss = F.cross_entropy(logits.flatten(0, 1).float(), safe.flatten(), reduction="none")
    return (loss * weight.flatten()).sum() / weight.sum().clamp(min=torch.finfo(torch.float32).tiny)


@dataclass
class VertexFindingOutput(ModelOutput):
    """Output of :class:`JetFMForVertexFinding`.

    Args:
        loss: focal loss over valid track pairs (when ``vertex_labels`` is given).
        logits: ``(B, N, N)`` symmetric same-vertex logits of every particle pair.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None


class JetFMForVertexFinding(JetFMPreTrainedModel):
    """Pairwise "same vertex" scores between tracks, grouped into vertices at inference.

    The particle states are projected to ``head_hidden_size`` and each pair ``(i, j)`` is
    scored by an MLP on ``[|z_i − z_j|, z_i ⊙ z_j]`` — symmetric by construction. Only tracks
    are scored: they are first gathered to the front of each jet (``T`` = most tracks in the
    batch), so the pair cost is ``O(B · T² · head_hidden_size)`` rather than ``N²``; the
    returned ``(B, N, N)`` logits hold ``NON_TRACK_LOGIT`` for pairs involving a non-track.
    """

    #: logit reported for pairs that involve a neutral particle or padding
    NON_TRACK_LOGIT = -1e4
    #: focusing parameter of the pair focal loss
    focal_gamma = 2.0

    def __init__(self, config: JetFMConfig):
        super().__init__(config)
        self.jetfm = JetFMModel(config)
        h = _head_hidden(config) or config.hidden_size
        self.pair_proj = nn.Linear(config.hidden_size, h)
        self.pair_scorer = MLPHead(2 * h, h, 1, config.head_dropout_prob)
        self.post_init()

    def pair_logits(self, states: torch.Tensor) -> torch.Tensor:
        """``(B, T, D)`` particle states → ``(B, T, T)`` symmetric same-vertex logits."""
        z = self.pair_proj(states)
        zi, zj = z[:, :, None, :], z[:, None, :, :]
        return self.pair_scorer(torch.cat([(zi - zj).abs(), zi * zj], dim=-1)).squeeze(-1)

    @staticmethod
    def default_track_mask(mask: torch.Tensor, pid: torch.Tensor | None) -> torch.Tensor:
        """Tracks = charged real particles (``pid`` charge ≠ 0); every real particle if no pid."""
        return mask if pid is None else mask & (pid[..., 0] != 0)

    def _track_pair_logits(self, states: torch.Tensor, track_mask: torch.Tensor) -> torch.Tensor:
        b, n, d = states.shape
        exporting = torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
        exporting = exporting or torch.compiler.is_compiling()
        if exporting:  # static graph: score every slot (data-dependent T does not trace)
            order = torch.arange(n, device=states.device).expand(b, n)
        else:  # tracks first within each jet, then keep the T leading slots
            order = torch.argsort((~track_mask).to(torch.int8), dim=1, stable=True)
            order = order[:, : max(int(track_mask.sum(dim=1).max()), 1)]
        compact = torch.gather(states, 1, order[..., None].expand(-1, -1, d))
        is_track = torch.gather(track_mask, 1, order)
        logits = self.pair_logits(compact)
        logits = logits.masked_fill(
            ~(is_track[:, :, None] & is_track[:, None, :]), self.NON_TRACK_LOGIT
        )
        if exporting:
            return logits
        full = logits.new_full((b, n, n), self.NON_TRACK_LOGIT)
        jets = torch.arange(b, device=states.device)[:, None, None]
        full[jets, order[:, :, None], order[:, None, :]] = logits
        return full

    def forward(
        self,
        kinematics: torch.Tensor,
        mask: torch.Tensor | None = None,
        pid: torch.Tensor | None = None,
        tracks: torch.Tensor | None = None,
        vertex_labels: torch.Tensor | None = None,
        track_mask: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> VertexFindingOutput | tuple[torch.Tensor, ...]:
        r"""
        Args:
            kinematics / mask / pid / tracks: the batch contract (see :class:`JetFMModel`).
            vertex_labels: ``(B, N)`` truth vertex id per track (``part_vtx``),
                ``IGNORE_INDEX`` for neutrals and padding; only pairs of valid tracks count.
            track_mask: ``(B, N)`` bool, the particles to score (default: charged particles
                when ``pid`` is given, else every real particle).

        Returns:
            ``VertexFindingOutput`` with ``loss`` and pair ``logits (B, N, N)``.
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        states = self.jetfm(kinematics=kinematics, mask=mask, pid=pid, tracks=tracks)
        h = states.last_hidden_state
        real = (
            torch.ones(h.shape[:2], dtype=torch.bool, device=h.device)
            if mask is None
            else mask.bool()
        )
        if track_mask is None:
            track_mask = self.default_track_mask(real, pid)
        if vertex_labels is not None:
            if vertex_labels.shape != h.shape[:2]:
                raise ValueError(
                    f"vertex_labels must have shape {tuple(h.shape[:2])}, "
                    f"got {tuple(vertex_labels.shape)}"
                )
            track_mask = track_mask | (vertex_labels != IGNORE_INDEX)  # every labelled track
        logits = self._track_pair_logits(h, track_mask.bool() & real)
        loss = None
        if vertex_labels is not None:
            loss = vertex_pair_loss(logits, vertex_labels.long(), gamma=self.focal_gamma)
        out = VertexFindingOutput(loss=loss, logits=logits)
        return out if return_dict else out.to_tuple()

    @torch.no_grad()
    def find_vertices(
        self,
        kinematics: torch.Tensor,
        mask: torch.Tensor,
        pid: torch.Tensor | None = None,
        tracks: torch.Tensor | None = None,
        track_mask: torch.Tensor | None = None,
        threshold: float = 0.5,
    ) -> np.ndarray:
        """Vertex index per particle ``(B, N)``: ``0..k-1`` within each jet, ``-1`` for
        non-tracks (``track_mask`` False; default: charged particles) and padding."""
        if track_mask is None:
            track_mask = self.default_track_mask(mask.bool(), pid)
        track_mask = track_mask.bool() & mask.bool()
        logits = self(
            kinematics=kinematics, mask=mask, pid=pid, tracks=tracks, track_mask=track_mask
        ).logits
        return group_vertices(logits, track_mask, threshold)


__all__ = [
    "JetFMForJetTagging",
    "JetFMForTrackID",
    "JetFMForVertexFinding",
    "MLPHead",
    "VertexFindingOutput",
]
