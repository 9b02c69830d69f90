"""Masked Particle Modelling targets, one module each, selected by ``config.mpm_target``."""

from __future__ import annotations

from collections.abc import Callable

from jetfm.configuration import MPM_TARGETS, JetFMConfig
from jetfm.modeling.targets.base import (
    MPMTarget,
    TargetInputs,
    TargetOutput,
    continuous_groups,
)


# Each target's module is imported on first use (zuko, the tokenizer); the imports stay
# statements so that tests/import_graph.py sees them.
def _vqvae() -> type[MPMTarget]:
    from jetfm.modeling.targets.vqvae import VQVAETarget

    return VQVAETarget


def _kmeans() -> type[MPMTarget]:
    from jetfm.modeling.targets.kmeans import KMeansTarget

    return KMeansTarget


def _regression() -> type[MPMTarget]:
    from jetfm.modeling.targets.regression import RegressionTarget

    return RegressionTarget


def _flow() -> type[MPMTarget]:
    from jetfm.modeling.targets.flow import FlowTarget

    return FlowTarget


def _diffusion() -> type[MPMTarget]:
    from jetfm.modeling.targets.diffusion import DiffusionTarget

    return DiffusionTarget


#: ``config.mpm_target`` → the loader of its target class, keyed by
#: :data:`jetfm.configuration.MPM_TARGETS`
TARGET_CLASSES: dict[str, Callable[[], type[MPMTarget]]] = {
    "vqvae": _vqvae,
    "kmeans": _kmeans,
    "regression": _regression,
    "flow": _flow,
    "diffusion": _diffusion,
}


def target_class(name: str) -> type[MPMTarget]:
    """The target class for ``config.mpm_target`` (:data:`TARGET_CLASSES`)."""
    if name not in TARGET_CLASSES:
        raise ValueError(f"unknown mpm_target {name!r}; one of {', '.join(MPM_TARGETS)}")
    return TARGET_CLASSES[name]()


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
