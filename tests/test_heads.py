"""Task heads: loading a backbone checkpoint, losses, masking, symmetry, vertex grouping."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from jetfm.configuration import JetFMConfig
from jetfm.data.schema import IGNORE_INDEX
from jetfm.modeling.backbone import JetFMModel
from jetfm.modeling.heads import JetFMForJetTagging, JetFMForTrackID, JetFMForVertexFinding
from jetfm.modeling.vertexing import group_vertices, pair_targets, vertex_pair_loss

HEADS = (JetFMForJetTagging, JetFMForTrackID, JetFMForVertexFinding)


def _config(**kw) -> JetFMConfig:
    return JetFMConfig.from_preset("tiny", num_labels=3, head_dropout_prob=0.0, **kw)


def _batch(b=3, n=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(b, n, dtype=torch.bool)
    mask[1, 6:] = False
    mask[2, 4:] = False
    pid = torch.zeros(b, n, 6)
    pid[..., 0] = torch.tensor([1.0, -1.0, 0.0]).repeat(n)[:n]  # every third neutral
    pid[..., 4] = (pid[..., 0] != 0).float()
    pid[..., 3] = (pid[..., 0] == 0).float()
    kin = torch.randn(b, n, 7, generator=g) * mask[..., None]
    tracks = torch.randn(b, n, 4, generator=g) * mask[..., None]
    return dict(kinematics=kin, mask=mask, pid=pid * mask[..., None], tracks=tracks)


@pytest.mark.parametrize("head", HEADS)
def test_from_backbone_checkpoint_reports_new_head(head, tmp_path):
    backbone = JetFMModel(_config())
    backbone.save_pretrained(tmp_path)
    model, info = head.from_pretrained(tmp_path, num_labels=3, output_loading_info=True)
    missing = set(info["missing_keys"])
    assert missing and all(not k.startswith("jetfm.") for k in missing)  # only head weights
    assert not info["unexpected_keys"]
    for k, v in backbone.state_dict().items():
        assert torch.equal(model.jetfm.state_dict()[k], v), k


def test_auto_class_registration(tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    JetFMModel(_config()).save_pretrained(tmp_path)
    assert isinstance(
        AutoModelForSequenceClassification.from_pretrained(tmp_path), JetFMForJetTagging
    )
    assert isinstance(AutoModelForTokenClassification.from_pretrained(tmp_path), JetFMForTrackID)


def test_tagging_loss_is_cross_entropy_and_ignores_padding():
    torch.manual_seed(0)
    model = JetFMForJetTagging(_config()).eval()
    batch = _batch()
    labels = torch.tensor([0, 2, 1])
    out = model(**batch, labels=labels)
    assert out.logits.shape == (3, 3)
    assert torch.allclose(out.loss, F.cross_entropy(out.logits, labels))
    # garbage in padded slots must not change anything
    noisy = dict(batch, kinematics=batch["kinematics"] + 50.0 * (~batch["mask"])[..., None])
    assert torch.allclose(model(**noisy).logits, out.logits, atol=1e-5)


def test_track_id_ignores_unlabelled_positions():
    torch.manual_seed(0)
    model = JetFMForTrackID(_config()).eval()
    batch = _batch()
    labels = torch.randint(0, 6, batch["mask"].shape)
    labels[batch["pid"][..., 0] == 0] = IGNORE_INDEX
    out = model(**batch, track_labels=labels)
    assert out.logits.shape == (3, 9, 6)
    # the loss depends only on labelled positions: changing the others' labels is a no-op
    other = labels.clone()
    other[labels == IGNORE_INDEX] = IGNORE_INDEX
    assert torch.allclose(model(**batch, track_labels=other).loss, out.loss)
    # a batch with no labelled track gives a zero (not NaN) loss with a graph
    none = torch.full_like(labels, IGNORE_INDEX)
    loss = JetFMForTrackID(_config())(**batch, track_labels=none).loss
    assert loss.item() == 0.0 and loss.requires_grad


def test_track_id_class_weights_balance_rare_classes():
    torch.manual_seed(0)
    model = JetFMForTrackID(_config()).eval()
    batch = _batch()
    labels = torch.where(batch["pid"][..., 0] != 0, 0, IGNORE_INDEX)
    labels[0, 0] = 1  # one rare b track among prompt ones
    for power in (0.0, 1.0):
        model.class_weight_power = power
        out = model(**batch, track_labels=labels)
        valid = labels != IGNORE_INDEX
        weight = torch.bincount(labels[valid], minlength=6).clamp(min=1).float() ** -power
        expected = F.cross_entropy(out.logits.flatten(0, 1), labels.flatten(), weight=weight)
        assert torch.allclose(out.loss, expected)
    # fully balanced: the single b track weighs as much as all prompt tracks together
    per_track = F.cross_entropy(out.logits[valid], labels[valid], reduction="none")
    b_track = labels[valid] == 1
    assert torch.allclose(out.loss, (per_track[b_track].mean() + per_track[~b_track].mean()) / 2)


def test_vertex_logits_symmetric_and_permutation_equivariant():
    torch.manual_seed(0)
    model = JetFMForVertexFinding(_config()).eval()
    batch = _batch()
    logits = model(**batch).logits
    tracks = batch["mask"] & (batch["pid"][..., 0] != 0)
    pairs = tracks[:, :, None] & tracks[:, None, :]
    assert torch.allclose(logits, logits.transpose(1, 2), atol=1e-5)
    assert (logits[~pairs] == model.NON_TRACK_LOGIT).all()
    perm = torch.randperm(9)
    permuted = {k: v[:, perm] for k, v in batch.items()}
    # padding must stay where the mask says; permute only the full jet 0
    out = model(**{k: v[:1] for k, v in permuted.items()}).logits[0]
    assert torch.allclose(out, logits[0][perm][:, perm], atol=1e-4)


def test_vertex_loss_uses_valid_pairs_only():
    labels = torch.tensor([[0, 0, 1, IGNORE_INDEX]])
    targets, pairs = pair_targets(labels)
    assert pairs.sum() == 3  # (0,1) (0,2) (1,2)
    assert targets[0, 0, 1] == 1 and targets[0, 0, 2] == 0
    logits = torch.zeros(1, 4, 4)
    base = vertex_pair_loss(logits, labels)
    logits[0, 3, :] = 100.0  # pairs with the unlabelled particle
    logits[0, 1, 0] = -100.0  # the lower triangle is not counted twice
    assert torch.allclose(vertex_pair_loss(logits, labels), base)


def test_vertex_head_trains_loss_down():
    torch.manual_seed(0)
    model = JetFMForVertexFinding(_config())
    batch = _batch(b=4, n=12, seed=1)
    tracks = batch["mask"] & (batch["pid"][..., 0] != 0)
    labels = torch.where(tracks, (batch["tracks"][..., 0] > 0).long(), IGNORE_INDEX)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        loss = model(**batch, vertex_labels=labels).loss
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def test_group_vertices_connected_components():
    # jet 0: 0-1 linked, 1-2 linked (chain → one vertex), 3 alone, 4 non-track
    # jet 1: 0-3 linked, 1 alone, 2 alone; no links across jets
    logits = torch.full((2, 5, 5), -5.0)
    for b, i, j in [(0, 0, 1), (0, 1, 2), (1, 0, 3), (0, 3, 4)]:
        logits[b, i, j] = logits[b, j, i] = 5.0
    tracks = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 0]], dtype=torch.bool)
    got = group_vertices(logits, tracks, threshold=0.5)
    assert got.tolist() == [[0, 0, 0, 1, -1], [0, 1, 2, 0, -1]]
    # a stricter threshold cuts the weak link
    logits[0, 1, 2] = logits[0, 2, 1] = 1.0  # p = 0.73
    assert group_vertices(logits, tracks, threshold=0.8)[0].tolist() == [0, 0, 1, 2, -1]
    with pytest.raises(ValueError, match="threshold"):
        group_vertices(logits, tracks, threshold=1.0)


def test_find_vertices_marks_non_tracks():
    model = JetFMForVertexFinding(_config()).eval()
    batch = _batch()
    vertices = model.find_vertices(**batch)
    tracks = (batch["mask"] & (batch["pid"][..., 0] != 0)).numpy()
    assert (vertices[~tracks] == -1).all() and (vertices[tracks] >= 0).all()


def test_bad_label_shape_is_clear():
    model = JetFMForJetTagging(_config())
    with pytest.raises(ValueError, match="labels must have shape"):
        model(**_batch(), labels=torch.zeros(3, 2, dtype=torch.long))
