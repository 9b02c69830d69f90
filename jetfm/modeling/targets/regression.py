"""``regression``: predict the masked particle's normalised features directly.

Huber loss by default (``target_options["loss"] = "l1"`` for L1). Because the decoder cannot
know which hidden particle a slot stands for, regression learns the conditional mean — the
baseline the generative targets improve on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from jetfm.configuration import JetFMConfig
from jetfm.modeling.masking import weighted_mean
from jetfm.modeling.targets.base import MPMTarget, TargetInputs, TargetOutput, mlp


class RegressionTarget(MPMTarget):
    name = "regression"

    def __init__(self, config: JetFMConfig, input_size: int):
        super().__init__(config, input_size)
        self.loss_type = self.options.get("loss", "huber")
        if self.loss_type not in ("huber", "l1"):
            raise ValueError(f"regression loss must be 'huber' or 'l1', got {self.loss_type!r}")
        self.delta = float(self.options.get("huber_delta", 1.0))
        self.heads = nn.ModuleDict(
            {g: mlp(input_size, input_size, n, layers=1) for g, n in self.groups.items()}
        )

    def forward(self, states: torch.Tensor, inputs: TargetInputs) -> TargetOutput:
        preds, trues = [], []
        for g, head in self.heads.items():
            if g in inputs.features:
                preds.append(head(states))
                trues.append(inputs.features[g])
        pred, true = torch.cat(preds, -1), torch.cat(trues, -1).to(states.dtype)
        if self.loss_type == "huber":
            error = F.huber_loss(pred, true, delta=self.delta, reduction="none")
        else:
            error = F.l1_loss(pred, true, reduction="none")
        loss = weighted_mean(error.float().mean(dim=-1), inputs.weight)
        return TargetOutput(loss=loss, predictions=pred)

    @torch.no_grad()
    def sample(self, states, generator=None):
        # The point estimate is the only "sample" regression has.
        return {g: head(states) for g, head in self.heads.items()}
