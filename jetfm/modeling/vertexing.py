"""Secondary-vertex finding helpers: pair targets, focal loss and track grouping.

The vertex head (:class:`jetfm.modeling.heads.JetFMForVertexFinding`) scores every pair of
tracks in a jet with the probability that they come from the same vertex. Training uses the
pairs of valid tracks only (``part_vtx`` ≠ ``IGNORE_INDEX``), with a focal loss because most
pairs are easy (two prompt tracks); inference thresholds the scores and takes the connected
components of the resulting graph as vertices — one sparse block-diagonal graph for the
whole batch, so there is no Python loop over jets or pairs.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from jetfm.data.schema import IGNORE_INDEX


def valid_pair_mask(valid: torch.Tensor) -> torch.Tensor:
    """``(B, N, N)`` bool: pairs ``i < j`` of valid tracks (each unordered pair once)."""
    n = valid.shape[-1]
    upper = torch.ones(n, n, dtype=torch.bool, device=valid.device).triu(diagonal=1)
    return valid[:, :, None] & valid[:, None, :] & upper


def pair_targets(vertex_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets ``(B, N, N)`` float (1 = same vertex) and the pair mask of valid tracks."""
    valid = vertex_labels != IGNORE_INDEX
    same = vertex_labels[:, :, None] == vertex_labels[:, None, :]
    return same.float(), valid_pair_mask(valid)


def sigmoid_focal_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    gamma: float = 2.0,
    alpha: float | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Mean focal loss (Lin et al. 2017) of binary logits: ``(1 − p_t)^γ · BCE``
    (per element with ``reduction="none"``).

    Down-weights the many easy pairs (prompt–prompt) so the rare displaced pairs drive the
    gradient; ``alpha`` optionally re-weights positives (``alpha``) vs negatives (1 − alpha).
    """
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p = torch.sigmoid(logits)
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = bce * (1 - p_t) ** gamma
    if alpha is not None:
        loss = loss * (alpha * targets + (1 - alpha) * (1 - targets))
    if reduction == "none":
        return loss
    return loss.mean() if loss.numel() else logits.sum() * 0.0


def vertex_pair_loss(
    pair_logits: torch.Tensor, vertex_labels: torch.Tensor, gamma: float = 2.0
) -> torch.Tensor:
    """Focal loss over the valid track pairs of a batch (zero when there are none)."""
    targets, pairs = pair_targets(vertex_labels)
    # a weighted mean over every pair slot (static shapes, no boolean indexing): the mean
    # over the valid pairs, and zero with the graph kept when there are none
    loss = sigmoid_focal_loss(pair_logits, targets, gamma=gamma, reduction="none")
    weight = pairs.to(loss.dtype)
    return (loss * weight).sum() / weight.sum().clamp(min=1.0)


def group_vertices(
    pair_logits: torch.Tensor | np.ndarray,
    track_mask: torch.Tensor | np.ndarray,
    threshold: float = 0.5,
) -> np.ndarray:
    """Tracks → vertices: connect pairs with probability > ``threshold``, take components.

    Args:
        pair_logits: ``(B, N, N)`` same-vertex logits (symmetric).
        track_mask: ``(B, N)`` bool, True for the tracks to group.
        threshold: probability above which two tracks are linked.

    Returns:
        ``(B, N)`` int64 vertex index per track, numbered ``0, 1, …`` within each jet in order
        of first appearance, and ``-1`` for non-tracks and padding.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    logits = torch.as_tensor(pair_logits).detach().float().cpu()
    valid = torch.as_tensor(track_mask).detach().bool().cpu()
    b, n = valid.shape
    if logits.shape != (b, n, n):
        raise ValueError(f"pair_logits must have shape {(b, n, n)}, got {tuple(logits.shape)}")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be a probability in (0, 1), got {threshold}")
    # probability > threshold ⇔ logit > logit(threshold); avoids a sigmoid on B·N² entries
    linked = logits > float(np.log(threshold / (1.0 - threshold)))
    edges = (linked & valid_pair_mask(valid)).nonzero().numpy()
    rows = edges[:, 0] * n + edges[:, 1]
    cols = edges[:, 0] * n + edges[:, 2]
    # block-diagonal graph over all B·N slots: jets never connect to each other
    graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(b * n, b * n))
    _, component = connected_components(graph, directed=False)
    return _renumber_within_jets(component.reshape(b, n), valid.numpy())


def _renumber_within_jets(component: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Global component ids ``(B, N)`` → ``0..k-1`` per jet in order of first track; −1 else."""
    b, n = component.shape
    out = np.full((b, n), -1, dtype=np.int64)
    jet, slot = np.nonzero(valid)
    if not len(jet):
        return out
    comp = component[jet, slot]
    # first slot of each (jet, component): components numbered in slot order inside a jet
    key = jet.astype(np.int64) * (b * n) + comp
    uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    order_key = jet[first].astype(np.int64) * n + slot[first]
    rank_of_uniq = np.empty(len(uniq), dtype=np.int64)
    rank_of_uniq[np.argsort(order_key, kind="stable")] = np.arange(len(uniq))
    # subtract the number of components in earlier jets
    jets_of_uniq = jet[first]
    offset = np.searchsorted(np.sort(jets_of_uniq), jets_of_uniq, side="left")
    within = rank_of_uniq - offset
    out[jet, slot] = within[inverse]
    return out
