"""Model path: config → backbone → pre-training or task heads.

Importing this package registers jetfm with transformers' Auto classes.
"""

from transformers import AutoConfig, AutoModel

from jetfm.configuration import JetFMConfig
from jetfm.modeling.backbone import (
    JetFMModel,
    JetFMModelOutput,
    JetFMPreTrainedModel,
    pid_categories,
)
from jetfm.modeling.pretraining import (
    JetFMForMaskedParticleModeling,
    MaskedParticleModelingOutput,
)

#: The backbone under its user-facing name: ``JetFM.from_pretrained("mpm-flow-base")``.
JetFM = JetFMModel

AutoConfig.register("jetfm", JetFMConfig, exist_ok=True)
AutoModel.register(JetFMConfig, JetFMModel, exist_ok=True)

__all__ = [
    "JetFM",
    "JetFMForMaskedParticleModeling",
    "MaskedParticleModelingOutput",
    "JetFMModel",
    "JetFMModelOutput",
    "JetFMPreTrainedModel",
    "pid_categories",
]
