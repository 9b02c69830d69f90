"""jetfm: Masked Particle Modelling foundation models for high-energy-physics jets.

Public names are imported lazily (PEP 562) so that ``jetfm --help`` starts without loading
torch. Importing any model class registers jetfm with transformers' Auto classes, so
``AutoModel.from_pretrained(dir)`` works without ``trust_remote_code``.
"""

from __future__ import annotations

import importlib
from typing import Any

from jetfm.version import __version__

# public name -> module that defines it
_LAZY: dict[str, str] = {
    "JetFMConfig": "jetfm.configuration",
    "SIZE_PRESETS": "jetfm.configuration",
    "JetFM": "jetfm.modeling",
    "JetFMModel": "jetfm.modeling",
    "JetFMPreTrainedModel": "jetfm.modeling",
    "JetFMForMaskedParticleModeling": "jetfm.modeling",
    "JetFMForJetTagging": "jetfm.modeling",
    "JetFMForTrackID": "jetfm.modeling",
    "JetFMForVertexFinding": "jetfm.modeling",
    "ParticleTokenizer": "jetfm.modeling.tokenizer",
    "BranchMapping": "jetfm.data",
    "JetProcessor": "jetfm.data",
    "JetDataset": "jetfm.data",
    "StreamingJetDataset": "jetfm.data",
    "JetCollator": "jetfm.data",
    "pretrain": "jetfm.pretraining",
    "PretrainArguments": "jetfm.pretraining",
    "finetune": "jetfm.finetuning",
    "FinetuneArguments": "jetfm.finetuning",
    "predict": "jetfm.inference",
    "predict_files": "jetfm.inference",
    "resolve_pretrained": "jetfm.hub",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jetfm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
