"""``vqvae``: cross-entropy over the particle's code from a frozen VQ-VAE tokenizer.

The first MPM paper (arXiv 2401.13537). The whole jet (masked particles included) is
tokenized by the frozen :class:`~jetfm.modeling.tokenizer.ParticleTokenizer` — codes depend on the jet
context — and the decoder predicts the code of each masked particle.

The tokenizer is a sub-module, so its weights and codebook travel in the MPM checkpoint's
``model.safetensors``; ``config.target_options["tokenizer"]`` holds its config (to rebuild it)
and ``path`` (the ``tokenizer/`` sub-folder where training also saves a standalone copy).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from jetfm.configuration import JetFMConfig
from jetfm.modeling.masking import weighted_mean
from jetfm.modeling.targets.base import MPMTarget, TargetInputs, TargetOutput, mlp
from jetfm.modeling.tokenizer import ParticleTokenizer, ParticleTokenizerConfig

#: sub-folder of an MPM checkpoint holding the standalone tokenizer copy
TOKENIZER_SUBFOLDER = "tokenizer"


def tokenizer_options(tokenizer: ParticleTokenizer) -> dict:
    """The ``target_options["tokenizer"]`` entry describing a tokenizer."""
    cfg = tokenizer.config.to_dict()
    for key in ("transformers_version", "architectures", "model_type"):
        cfg.pop(key, None)
    return {"path": TOKENIZER_SUBFOLDER, "config": cfg}


class VQVAETarget(MPMTarget):
    name = "vqvae"

    def __init__(self, config: JetFMConfig, input_size: int):
        super().__init__(config, input_size)
        entry = self.options.get("tokenizer")
        if not entry or "config" not in entry:
            raise ValueError(
                "mpm_target='vqvae' needs a trained tokenizer: build the model with "
                "target_options={'tokenizer': tokenizer_options(tok)} "
                "(jetfm pretrain --target vqvae --tokenizer DIR does this)"
            )
        self.tokenizer = ParticleTokenizer(ParticleTokenizerConfig(**entry["config"]))
        self.tokenizer.requires_grad_(False)
        self.head = mlp(input_size, input_size, self.tokenizer.config.num_codes, layers=1)

    def set_tokenizer(self, tokenizer: ParticleTokenizer) -> None:
        """Copy a trained tokenizer's weights and codebook into the (frozen) sub-module."""
        self.tokenizer.load_state_dict(tokenizer.state_dict())
        self.tokenizer.requires_grad_(False)

    def freeze_frozen(self) -> None:
        self.tokenizer.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.tokenizer.requires_grad_(False)
        self.tokenizer.eval()  # frozen: never update the EMA codebook during pre-training
        return self

    def forward(self, states: torch.Tensor, inputs: TargetInputs) -> TargetOutput:
        self.tokenizer.eval()
        jet = inputs.jet
        codes = self.tokenizer.encode(jet["kinematics"], inputs.mask, jet.get("tracks"))
        codes = inputs.select(codes)
        logits = self.head(states)
        loss = weighted_mean(
            F.cross_entropy(logits.float(), codes, reduction="none"), inputs.weight
        )
        return TargetOutput(loss=loss, logits=logits, codes=codes)
