"""``flow``: negative log-likelihood of the masked particle under a conditional flow.

One ``zuko`` neural spline flow (rational-quadratic spline, autoregressive) per feature group,
chained: ``p(kinematics | s) · p(tracks | s, kinematics)`` where ``s`` is the decoder state at
the masked slot. The chain rule keeps the likelihood exact when tracks are present and lets
kinematics-only batches train the first factor alone. Options (``target_options``):
``flow_transforms`` (3), ``flow_bins`` (8), ``flow_hidden`` (2 × decoder width),
``flow_dequantise`` (0.01: std of the Gaussian noise added to the normalised features before
scoring). Track parameters are scored for charged particles only when ``pid`` is present.
"""

from __future__ import annotations

import torch
import zuko
from torch import nn

from jetfm.configuration import JetFMConfig
from jetfm.data.schema import REQUIRED_GROUP
from jetfm.modeling.masking import weighted_mean
from jetfm.modeling.targets.base import MPMTarget, TargetInputs, TargetOutput


class FlowTarget(MPMTarget):
    name = "flow"

    def __init__(self, config: JetFMConfig, input_size: int):
        super().__init__(config, input_size)
        hidden = int(self.options.get("flow_hidden", 2 * input_size))
        flows = {}
        context = input_size
        # zuko computes its autoregressive masks with torch.unique at construction, which has
        # no meta kernel: build on CPU when transformers instantiates on the meta device
        # (from_pretrained); the weights are then loaded over these tensors.
        device = torch.get_default_device()
        with torch.device("cpu" if device.type == "meta" else device):
            for g, n in self.groups.items():
                flows[g] = zuko.flows.NSF(
                    features=n,
                    context=context,
                    transforms=int(self.options.get("flow_transforms", 3)),
                    bins=int(self.options.get("flow_bins", 8)),
                    hidden_features=(hidden, hidden),
                )
                context += n  # the next group is conditioned on this one too
        self.flows = nn.ModuleDict(flows)

    def forward(self, states: torch.Tensor, inputs: TargetInputs) -> TargetOutput:
        context = states.float()
        nll = states.new_zeros((), dtype=torch.float32)
        # Exact spikes in the data (a constant fill value, a rounded feature) are delta
        # functions a flow can fit to unbounded likelihood, which then dominates the loss:
        # dequantise with a little Gaussian noise, and score track parameters only for
        # charged particles (a neutral's track features are a fill value, not a measurement).
        noise = float(self.options.get("flow_dequantise", 0.01))
        pid = inputs.jet.get("pid")
        charged = inputs.select(pid)[:, 0] != 0 if pid is not None else None
        for g, flow in self.flows.items():
            if g not in inputs.features:
                break  # later groups are conditioned on this one
            x = inputs.features[g].float()
            scored = x
            if noise > 0:
                scored = x + noise * inputs.normal(self.groups[g], x.dtype)
            # Flows are evaluated in float32: spline bin searches are fragile in bf16.
            with torch.autocast(device_type=states.device.type, enabled=False):
                log_prob = flow(context).log_prob(scored)
            weight = inputs.weight
            if g != REQUIRED_GROUP and charged is not None:
                weight = weight * charged.to(weight.dtype)
            nll = nll - weighted_mean(log_prob, weight)
            context = torch.cat([context, x], dim=-1)
        return TargetOutput(loss=nll)

    @torch.no_grad()
    def sample(self, states, generator=None):
        # zuko samples with the global RNG; fork it so a generator gives reproducible draws.
        seed = None if generator is None else int(torch.randint(2**62, (1,), generator=generator))
        out: dict[str, torch.Tensor] = {}
        context = states.float()
        devices = [states.device] if states.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            for g, flow in self.flows.items():
                x = flow(context).sample()
                out[g] = x
                context = torch.cat([context, x], dim=-1)
        return out
