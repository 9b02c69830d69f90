"""Is pre-training learning anything about the jet? The *context gain* of an MPM model.

A masked particle can be guessed two ways: from its pT rank alone (the marginal distribution
of "the k-th hardest particle" over all jets), or from the rest of *its own* jet. Only the
second needs a representation of the jet, which is what fine-tuning later reuses. The context
gain measures it directly: the target loss when each jet's masked particles are decoded from
another jet's encoder output, minus the loss with the jet's own (nats per masked particle for
the likelihood targets, cross-entropy for the code targets). About zero means the model has
so far only learnt the marginals; its backbone is then no better than random weights.

``jetfm pretrain`` logs it at every evaluation as ``eval_context_gain``.
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


__all__ = ["context_gain"]
