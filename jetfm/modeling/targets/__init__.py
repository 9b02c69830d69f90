"""Masked Particle Modelling targets, one module each, selected by ``config.mpm_target``."""

from __future__ import annotations

import importlib

from jetfm.configuration import MPM_TARGETS, JetFMConfig
from jetfm.modeling.targets.base import (
    MPMTarget,
    TargetInputs,
    TargetOutput,
    continuous_groups,
)

#: ``config.mpm_target`` → ``"module:class"`` of its target (imported on use: zuko, tokenizer);
#: keyed by :data:`jetfm.configuration.MPM_TARGETS`
TARGET_CLASSES: dict[str, str] = {
    "vqvae": "jetfm.modeling.targets.vqvae:VQVAETarget",
    "kmeans": "jetfm.modeling.targets.kmeans:KMeansTarget",
    "regression": "jetfm.modeling.targets.regression:RegressionTarget",
    "flow": "jetfm.modeling.targets.flow:FlowTarget",
    "diffusion": "jetfm.modeling.targets.diffusion:DiffusionTarget",
}


def target_class(name: str) -> type[MPMTarget]:
    """The target class for ``config.mpm_target`` (:data:`TARGET_CLASSES`)."""
    if name not in TARGET_CLASSES:
        raise ValueError(f"unknown mpm_target {name!r}; one of {', '.join(MPM_TARGETS)}")
    module, cls = TARGET_CLASSES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build_target(config: JetFMConfig, input_size: int) -> MPMTarget:
    """Instantiate the target named by ``config.mpm_target`` on decoder width ``input_size``."""
    return target_class(config.mpm_target)(config, input_size)


__all__ = [
    "MPMTarget",
    "TARGET_CLASSES",
    "TargetInputs",
    "TargetOutput",
    "build_target",
    "continuous_groups",
    "target_class",
]
