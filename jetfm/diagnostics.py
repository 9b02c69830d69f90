"""Is pre-training learning anything about the jet? The *context gain* of an MPM model.

A masked particle can be guessed two ways: from its pT rank alone (the marginal distribution
of "the k-th hardest particle" over all jets), or from the rest of *its own* jet. Only the
second needs a representation of the jet, which is what fine-tuning later reuses. The context
gain measures it directly: the target loss when each jet's masked particles are decoded from
another jet's encoder output, minus the loss with the jet's own (nats per masked particle for
the likelihood targets, cross-entropy for the code targets). About zero means the model has
so far only learnt the marginals; its backbone is then no better than random weights.

``jetfm pretrain`` logs it at every evaluation as ``eval_context_gain``.

The second diagnostic, :func:`representation_collapse`, watches what a fine-tuning head will
be given. Short MPM runs were measured to (1) squeeze the particle embedding into one or two
directions (mostly the particle's pT) and (2) make the blocks write one large vector, the same
for every particle of every jet, into the residual stream, until the final states differ only
in a small remainder. Both made the backbone a worse fine-tuning start than random weights.
``jetfm pretrain`` logs ``eval_embedding_rank`` (falling = warning) and
``eval_state_common_share`` (rising towards 1 = warning).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch

#: batch keys the MPM model reads
_MODEL_INPUTS = ("kinematics", "mask", "pid", "tracks")


@torch.no_grad()
def context_gain(
    model: torch.nn.Module, batches: Iterable[Mapping[str, Any]], shift: int = 1
) -> dict[str, float]:
    """Target loss with each jet's own context vs with the context of the jet ``shift``
    places further in the batch, averaged over masked particles.

    Args:
        model: a :class:`~jetfm.modeling.pretraining.JetFMForMaskedParticleModeling`.
        batches: collated batches (``JetCollator``); batches of one jet are skipped.
        shift: which other jet's context to use.

    Returns:
        ``{"target_loss", "shuffled_target_loss", "context_gain"}`` (gain = shuffled − own).
    """
    was_training = model.training
    model.eval()  # fixed masks and target noise: both passes see the same masked particles
    device = next(model.parameters()).device
    own_sum = other_sum = 0.0
    count = 0
    try:
        for batch in batches:
            inputs = {k: batch[k].to(device) for k in _MODEL_INPUTS if batch.get(k) is not None}
            if inputs["kinematics"].shape[0] < 2:
                continue
            own = model(**inputs)
            other = model(**inputs, masked=own.masked, context_shift=shift)
            n = int(own.masked.sum())
            own_sum += float(own.target_loss) * n
            other_sum += float(other.target_loss) * n
            count += n
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("context_gain needs batches of at least two jets with masked particles")
    own_loss, other_loss = own_sum / count, other_sum / count
    return {
        "target_loss": own_loss,
        "shuffled_target_loss": other_loss,
        "context_gain": other_loss - own_loss,
    }


def _effective_rank(states: torch.Tensor) -> tuple[float, float]:
    """(exp(entropy) of the centred spectrum, variance share of the leading direction)."""
    spectrum = torch.linalg.svdvals(states - states.mean(0)) ** 2
    share = spectrum / spectrum.sum().clamp_min(1e-30)
    entropy = -(share * share.clamp_min(1e-30).log()).sum()
    return float(entropy.exp()), float(share[0])


@torch.no_grad()
def representation_collapse(
    model: torch.nn.Module, batches: Iterable[Mapping[str, Any]]
) -> dict[str, float]:
    """How far the backbone's particle states have collapsed, over the real particles of
    ``batches``; every state is layer-normalised first (as the blocks and heads see it).

    Returns:
        ``embedding_rank``: effective rank (``exp`` of the spectral entropy) of the particle
        embeddings — 1 means every particle on one line; ``embedding_top_share``: the
        variance share of their leading direction; ``state_common_share``: the share of the
        final encoder states' energy in one vector common to all particles of all jets —
        near 1 means every particle looks alike to a fine-tuning head (a random backbone:
        about 0.35).

    Args:
        model: a :class:`~jetfm.modeling.backbone.JetFMModel` or a model with a ``jetfm``
            backbone attribute (MPM model, task heads).
        batches: collated batches (``JetCollator``).
    """
    backbone = getattr(model, "jetfm", model)
    device = next(backbone.parameters()).device
    was_training = backbone.training
    backbone.eval()  # no feature-group dropout
    embedded, final = [], []
    try:
        for batch in batches:
            inputs = {k: batch[k].to(device) for k in _MODEL_INPUTS if batch.get(k) is not None}
            out = backbone(**inputs, output_hidden_states=True)
            real = inputs["mask"].bool()
            embedded.append(out.hidden_states[0][real])
            final.append(out.hidden_states[-1][real])
    finally:
        backbone.train(was_training)
    if not embedded or sum(len(c) for c in embedded) < 2:
        raise ValueError("representation_collapse needs at least two real particles")
    norm = torch.nn.functional.layer_norm
    emb = norm(torch.cat(embedded).float(), embedded[0].shape[-1:])
    last = norm(torch.cat(final).float(), final[0].shape[-1:])
    rank, top = _effective_rank(emb)
    common = float(last.mean(0).square().sum() / last.square().sum(-1).mean())
    return {"embedding_rank": rank, "embedding_top_share": top, "state_common_share": common}


__all__ = ["context_gain", "representation_collapse"]
