"""Model path: config → backbone → pre-training or task heads.

Importing this package registers jetfm with transformers' Auto classes.
"""

from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
)

from jetfm.configuration import JetFMConfig
from jetfm.modeling.backbone import (
    JetFMModel,
    JetFMModelOutput,
    JetFMPreTrainedModel,
    pid_categories,
)
from jetfm.modeling.heads import (
    JetFMForJetTagging,
    JetFMForTrackID,
    JetFMForVertexFinding,
    VertexFindingOutput,
)
from jetfm.modeling.pretraining import (
    JetFMForMaskedParticleModeling,
    MaskedParticleModelingOutput,
)

#: The backbone under its user-facing name: ``JetFM.from_pretrained("mpm-flow-base")``.
JetFM = JetFMModel

AutoConfig.register("jetfm", JetFMConfig, exist_ok=True)
AutoModel.register(JetFMConfig, JetFMModel, exist_ok=True)
AutoModelForSequenceClassification.register(JetFMConfig, JetFMForJetTagging, exist_ok=True)
AutoModelForTokenClassification.register(JetFMConfig, JetFMForTrackID, exist_ok=True)

__all__ = [
    "JetFM",
    "JetFMForJetTagging",
    "JetFMForMaskedParticleModeling",
    "JetFMForTrackID",
    "JetFMForVertexFinding",
    "VertexFindingOutput",
    "MaskedParticleModelingOutput",
    "JetFMModel",
    "JetFMModelOutput",
    "JetFMPreTrainedModel",
    "pid_categories",
]
