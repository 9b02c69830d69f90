"""``diffusion``: conditional flow matching from Gaussian noise to the masked particle.

A small MLP ``v(x_t, t, s)`` (``s`` = decoder state at the masked slot, ``t`` embedded with
sinusoids) is trained to predict the straight-line velocity ``x_1 − x_0`` at
``x_t = (1 − t) x_0 + t x_1``, ``x_0 ~ N(0, I)``, ``x_1`` = the true normalised features
(rectified flow / conditional flow matching); loss = MSE on the velocity, averaged over the
masked particles. ``sample``
integrates the ODE with ``target_options["sample_steps"]`` (32) Euler steps. As in the flow
target, tracks are modelled after, and conditioned on, the kinematics.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from jetfm.configuration import JetFMConfig
from jetfm.modeling.masking import weighted_mean
from jetfm.modeling.targets.base import MPMTarget, TargetInputs, TargetOutput, mlp

TIME_FREQUENCIES = 8


def time_embedding(t: torch.Tensor) -> torch.Tensor:
    """Fixed sinusoidal features ``(M, 2·TIME_FREQUENCIES)`` of ``t`` in [0, 1]."""
    freqs = torch.exp(torch.arange(TIME_FREQUENCIES, device=t.device) * math.log(2.0)) * math.pi
    angles = t[:, None] * freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class DiffusionTarget(MPMTarget):
    name = "diffusion"

    def __init__(self, config: JetFMConfig, input_size: int):
        super().__init__(config, input_size)
        hidden = int(self.options.get("diffusion_hidden", 2 * input_size))
        self.sample_steps = int(self.options.get("sample_steps", 32))
        nets, context = {}, input_size
        for g, n in self.groups.items():
            nets[g] = mlp(n + 2 * TIME_FREQUENCIES + context, hidden, n, layers=3)
            context += n
        self.nets = nn.ModuleDict(nets)

    def velocity(self, g: str, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor):
        return self.nets[g](torch.cat([x, time_embedding(t).to(x.dtype), context], dim=-1))

    def forward(self, states: torch.Tensor, inputs: TargetInputs) -> TargetOutput:
        context, losses = states, []
        for g in self.nets:
            if g not in inputs.features:
                break
            x1 = inputs.features[g].to(states.dtype)
            x0 = inputs.normal(self.groups[g], x1.dtype)
            t = inputs.uniform(x1.dtype)
            xt = (1 - t[:, None]) * x0 + t[:, None] * x1
            error = (self.velocity(g, xt, t, context) - (x1 - x0)).float().pow(2).mean(dim=-1)
            losses.append(weighted_mean(error, inputs.weight))
            context = torch.cat([context, x1], dim=-1)
        return TargetOutput(loss=torch.stack(losses).sum())

    @torch.no_grad()
    def sample(self, states, generator=None, steps: int | None = None):
        steps = steps or self.sample_steps
        out: dict[str, torch.Tensor] = {}
        context = states
        for g in self.nets:
            n = self.groups[g]
            x = torch.randn(
                (states.shape[0], n), generator=generator, device=states.device, dtype=states.dtype
            )
            for i in range(steps):  # Euler integration of dx/dt = v(x, t)
                t = torch.full((states.shape[0],), i / steps, device=x.device, dtype=x.dtype)
                x = x + self.velocity(g, x, t, context) / steps
            out[g] = x
            context = torch.cat([context, x], dim=-1)
        return out
