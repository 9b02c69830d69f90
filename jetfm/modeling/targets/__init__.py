"""Masked Particle Modelling targets, one module each, selected by ``config.mpm_target``."""

from __future__ import annotations

from jetfm.configuration import JetFMConfig
from jetfm.modeling.targets.base import (
    MPMTarget,
    TargetInputs,
    TargetOutput,
    continuous_groups,
)


def target_class(name: str) -> type[MPMTarget]:
    """The target class for ``config.mpm_target`` (imported lazily: zuko, tokenizer)."""
    if name == "regression":
        from jetfm.modeling.targets.regression import RegressionTarget as cls
    elif name == "flow":
        from jetfm.modeling.targets.flow import FlowTarget as cls
    elif name == "diffusion":
        from jetfm.modeling.targets.diffusion import DiffusionTarget as cls
    elif name == "kmeans":
        from jetfm.modeling.targets.kmeans import KMeansTarget as cls
    elif name == "vqvae":
        from jetfm.modeling.targets.vqvae import VQVAETarget as cls
    else:
        raise ValueError(
            f"unknown mpm_target {name!r}; one of vqvae, kmeans, regression, flow, diffusion"
        )
    return cls


def build_target(config: JetFMConfig, input_size: int) -> MPMTarget:
    """Instantiate the target named by ``config.mpm_target`` on decoder width ``input_size``."""
    return target_class(config.mpm_target)(config, input_size)


__all__ = [
    "MPMTarget",
    "TargetInputs",
    "TargetOutput",
    "build_target",
    "continuous_groups",
    "target_class",
]
