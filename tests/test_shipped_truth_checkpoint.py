"""The shipped mpm-truth-det-base: it loads offline with its decoder and truth heads, and its
pre-training class head tells top jets from QCD jets on real Pythia jets it never saw (another
seed, particle level rather than its detector level, four-vectors only)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from jetfm.data import JetDataset, dataset_to_batch
from jetfm.hub import resolve_pretrained
from jetfm.loading import load_processor
from jetfm.modeling.heads import masked_mean
from jetfm.modeling.pretraining import JetFMForMaskedParticleModeling

NAME = "mpm-truth-det-base"


def test_class_head_separates_top_from_qcd_zero_shot(pythia_dir):
    folder = resolve_pretrained(NAME)
    model = JetFMForMaskedParticleModeling.from_pretrained(str(folder)).eval()
    assert model.truth is not None and model.truth.jet_class is not None  # shipped with it
    classes = list(model.config.pretrain_classes)
    processor = load_processor(folder)
    scores, truth = [], []
    for name, is_top in (("QCD", 0), ("Tbqq", 1)):
        ds = JetDataset(str(pythia_dir / f"{name}_000.root"), processor, targets=(),
                        feature_groups=("kinematics",))  # fmt: skip
        batch = dataset_to_batch(ds, targets=())
        with torch.inference_mode():
            out = model.jetfm(kinematics=batch["kinematics"], mask=batch["mask"])
            jet = torch.cat(
                [out.pooler_output, masked_mean(out.last_hidden_state, batch["mask"])], -1
            )
            p = model.truth.jet_class(jet).softmax(-1)
        qcd = p[:, [classes.index(c) for c in ("QCD_light", "QCD_gluon", "QCD_heavy")]].sum(-1)
        top = p[:, classes.index("Tbqq")]
        scores.append((top / (top + qcd)).numpy())
        truth.append(np.full(len(ds), is_top))
    auc = roc_auc_score(np.concatenate(truth), np.concatenate(scores))
    assert auc > 0.85, auc  # a random class head gives about 0.5
