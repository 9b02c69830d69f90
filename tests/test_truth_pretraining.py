"""Pre-training on simulation truth beside MPM: jet class (QCD split by its hard parton),
track origin and vertex pairing, on generated-like ROOT files written with uproot."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from jetfm.cli import main as cli_main
from jetfm.configuration import DEFAULT_TRUTH_WEIGHTS, JetFMConfig
from jetfm.data import JetDataset, JetProcessor
from jetfm.data.batching import JetCollator, dataset_to_batch
from jetfm.data.device_batches import DeviceJetBatches
from jetfm.data.feature_cache import cached_features
from jetfm.data.schema import IGNORE_INDEX, PARTON_FLAVOURS
from jetfm.data.truth import (
    TRUTH_TARGETS,
    expand_classes,
    parton_flavour,
    truth_class_names,
    truth_class_table,
)
from jetfm.defaults import FINETUNE_LR, FINETUNE_PRETRAINED_HEAD_LR
from jetfm.errors import JetFMError
from jetfm.model_card import collect_facts, render_model_card
from jetfm.modeling.backbone import JetFMModel
from jetfm.modeling.continuation import (
    DECODER_WEIGHTS_NAME,
    decoder_state,
    load_initial_weights,
)
from jetfm.modeling.pretraining import JetFMForMaskedParticleModeling
from jetfm.pretraining import _DEFAULT_TRUTH, PretrainArguments, pretrain, truth_weights
from tests.fixtures_data import write_jetclass_file

CLASSES = ("QCD", "Wqq", "Tbqq")
#: the truth classes of these files: QCD split by its hard parton
TRUTH_CLASSES = ["QCD_light", "QCD_gluon", "QCD_heavy", "Wqq", "Tbqq"]
RESONANCE_PID = {"Wqq": 24, "Tbqq": 6}


def _with_partons(branches: dict) -> dict:
    """Add ``aux_genpart_pid`` as the generator writes it: the resonance's PDG id, or for a
    QCD jet its hard parton's, chosen with physical sense so that it can be learnt: a
    heavy-flavour parton (b, c; signed) for jets with displaced b/c tracks, a gluon for the
    other wide, many-particle jets, a light quark (u, d, s) for the rest."""
    origin = branches["part_origin"]
    n = np.asarray([len(o) for o in origin.tolist()])
    heavy = np.asarray([any(c in (1, 2, 3) for c in o) for o in origin.tolist()])
    rng = np.random.default_rng(7)
    qcd = np.asarray(branches["label_QCD"], bool)
    gluon = n > np.median(n[qcd]) if qcd.any() else np.zeros(len(n), bool)
    pid = np.where(
        heavy, rng.choice([-5, 4, 5], len(n)), np.where(gluon, 21, rng.integers(1, 4, len(n)))
    )
    for name, resonance in RESONANCE_PID.items():
        if f"label_{name}" in branches:
            pid = np.where(np.asarray(branches[f"label_{name}"], bool), resonance, pid)
    return {**branches, "aux_genpart_pid": pid.astype(np.int32)}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Training and validation files with every truth branch, like `jetfm generate`'s."""
    base = tmp_path_factory.mktemp("truth")
    train = write_jetclass_file(base / "train.root", 360, seed=21, classes=CLASSES,
                                mutate=_with_partons)  # fmt: skip
    val = write_jetclass_file(base / "val.root", 90, seed=22, classes=CLASSES,
                              mutate=_with_partons)  # fmt: skip
    return train, val


@pytest.fixture(scope="module")
def truth_run(generated, tmp_path_factory):
    """One short MPM + truth pre-training run on the generated files. One bucket: these few
    jets' classes differ in multiplicity so much that bucketed batches would each hold
    nearly one class; a trainable embedding: a frozen random one slows the class head."""
    train, val = generated
    out = tmp_path_factory.mktemp("truth_run") / "run"
    result = pretrain(
        data=str(train), val=str(val), output_dir=str(out), size="tiny", target="regression",
        max_steps=70, batch_size=32, lr=3e-3, logging_steps=5, save_steps=70, buckets="128",
        encoder_delay=0.0, embedding_lr_scale=1.0, truth="class=2,origin=0.5,vertex=0.2",
        seed=0,
    )  # fmt: skip
    return result


def _batch(path, processor, n=32, targets=TRUTH_TARGETS):
    dataset = JetDataset(path, processor, targets=targets)
    return JetCollator(targets=targets)([dataset[i] for i in range(n)])


def _model(**overrides):
    options = dict(
        truth_objectives={"class": 1.0, "origin": 0.5, "vertex": 0.2},
        pretrain_classes=TRUTH_CLASSES,
        pretrain_label_names=list(CLASSES),
    )
    config = JetFMConfig.from_preset("tiny", **{**options, **overrides})
    torch.manual_seed(0)
    return JetFMForMaskedParticleModeling(config)


# --- the labels -----------------------------------------------------------------------------
def test_qcd_is_split_by_its_hard_parton():
    light, gluon, heavy = (PARTON_FLAVOURS.index(f) for f in ("light", "gluon", "heavy"))
    pids = np.array([21, 1, 2, 3, -3, 4, 5, -5, 24, 6, 25, 0, 11])
    assert parton_flavour(pids).tolist() == [gluon, light, light, light, light, heavy, heavy,
                                             heavy] + [IGNORE_INDEX] * 5  # fmt: skip
    assert list(truth_class_names(CLASSES)) == TRUTH_CLASSES
    assert truth_class_names(CLASSES, split_qcd=False) == CLASSES
    # "QCD" names its three splits; an unknown class is refused
    assert expand_classes(["QCD", "Tbqq"], TRUTH_CLASSES) == (*TRUTH_CLASSES[:3], "Tbqq")
    assert expand_classes(["QCD_gluon"], TRUTH_CLASSES) == ("QCD_gluon",)
    with pytest.raises(ValueError, match="Hbb"):
        expand_classes(["Hbb"], TRUTH_CLASSES)
    # label × flavour → supervised index; Wqq held out; QCD of unknown flavour not supervised
    table = truth_class_table(CLASSES, ["QCD_light", "QCD_gluon", "QCD_heavy", "Tbqq"])
    assert table.tolist() == [[0, 1, 2, IGNORE_INDEX], [IGNORE_INDEX] * 4, [3, 3, 3, 3]]


def test_the_files_truth_reaches_the_batches(generated, tmp_path):
    """The reader's parton_labels, and every truth target through the feature cache and the
    device batches equal to the collator's, with IGNORE_INDEX on padding and neutrals."""
    train, _ = generated
    processor = JetProcessor(max_particles=64).fit(train, progress=False)
    dataset = JetDataset(train, processor, targets=TRUTH_TARGETS)
    import uproot

    pid = np.abs(uproot.open(train)["tree"]["aux_genpart_pid"].array(library="np"))
    qcd = dataset.labels == CLASSES.index("QCD")
    flavours = dataset.jet_targets["parton_labels"]
    assert (flavours[qcd] >= 0).all() and (flavours[~qcd] == IGNORE_INDEX).all()
    assert (flavours[pid == 21] == PARTON_FLAVOURS.index("gluon")).all()
    assert len(set(flavours[qcd].tolist())) == 3  # every flavour present
    # the cache holds the targets; asking for others rebuilds it
    folder = tmp_path / "cache"
    plain = cached_features(train, processor, folder)
    assert not plain.targets and not plain.jet_targets
    cached = cached_features(train, processor, folder, TRUTH_TARGETS)
    assert not cached.reused
    assert cached_features(train, processor, folder, TRUTH_TARGETS).reused
    np.testing.assert_array_equal(cached.jet_targets["labels"], dataset.labels)
    flat, _, _ = dataset.flat_arrays()
    np.testing.assert_array_equal(cached.targets["track_labels"], flat["track_labels"])
    batches = DeviceJetBatches(cached.flat, cached.counts, 16, buckets=(64,), seed=0,
                               targets=cached.targets, jet_targets=cached.jet_targets)  # fmt: skip
    order, plan = batches.plan(0)
    batch = next(iter(batches))
    jets = order[plan[0][0] : plan[0][0] + 16]
    expected = JetCollator(targets=TRUTH_TARGETS, pad_to=64)([dataset[int(j)] for j in jets])
    for key in ("labels", "parton_labels", "track_labels", "vertex_labels", "mask"):
        assert torch.equal(batch[key], expected[key]), key
    assert (batch["track_labels"][~batch["mask"]] == IGNORE_INDEX).all()


# --- the model ------------------------------------------------------------------------------
def test_one_loss_dict_with_each_component(generated):
    train, _ = generated
    processor = JetProcessor(max_particles=64).fit(train, progress=False)
    batch = _batch(train, processor)
    model = _model().eval()
    out = model(**batch)
    assert set(out.losses) == {"mpm", "class", "origin", "vertex"}
    assert all(torch.isfinite(v) and v > 0 for v in out.losses.values())
    weights = model.config.truth_objectives
    total = out.losses["mpm"] + sum(weights[k] * out.losses[k] for k in weights)
    torch.testing.assert_close(out.loss.detach(), total)
    assert out.class_logits.shape == (32, len(TRUTH_CLASSES))
    # untrained: about log(classes) per jet
    assert abs(float(out.class_loss) - math.log(len(TRUTH_CLASSES))) < 0.5
    # the static-shape step (what a GPU runs) gives the same losses
    static = model(**batch, static_shapes=True)
    for key, value in out.losses.items():
        torch.testing.assert_close(static.losses[key], value)
    # no truth in the batch: MPM alone
    plain = {k: batch[k] for k in ("kinematics", "pid", "tracks", "mask")}
    assert set(model(**plain).losses) == {"mpm"}


def test_held_out_classes_give_no_class_loss(generated):
    """Jets of classes outside pretrain_classes contribute no class loss and no gradient to
    the class head; they still pre-train through MPM and the origin objective."""
    train, _ = generated
    processor = JetProcessor(max_particles=64).fit(train, progress=False)
    dataset = JetDataset(train, processor, targets=TRUTH_TARGETS)
    collate = JetCollator(targets=TRUTH_TARGETS)
    tops = [dataset[i] for i in np.flatnonzero(dataset.labels == CLASSES.index("Tbqq"))[:16]]
    mixed = [dataset[i] for i in range(16)]
    model = _model(pretrain_classes=TRUTH_CLASSES[:4])  # Tbqq held out
    model.train()

    def class_head_grad(jets):
        model.zero_grad()
        out = model(**collate(jets))
        out.loss.backward()
        grads = [p.grad for p in model.truth.jet_class.parameters()]
        return out, sum(0.0 if g is None else float(g.abs().sum()) for g in grads)

    out, grad = class_head_grad(tops)
    assert float(out.class_loss) == 0.0 and grad == 0.0
    assert out.mpm_loss > 0 and out.origin_loss > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.jetfm.parameters())
    out, grad = class_head_grad(mixed)  # the same step with supervised jets: it trains
    assert float(out.class_loss) > 0 and grad > 0


def test_mpm_weight_scales_the_mpm_loss_and_zero_skips_the_decoder(generated):
    """``mpm_loss_weight`` weighs the masked-particle loss; at 0 the truth objectives train
    alone, from the same encoder pass (same visible particles), and the decoder gets no
    gradient because it is not run."""
    train, _ = generated
    processor = JetProcessor(max_particles=64).fit(train, progress=False)
    batch = _batch(train, processor)
    full = _model().eval()(**batch)
    half = _model(mpm_loss_weight=0.5).eval()(**batch)
    truth = {k: v for k, v in full.losses.items() if k != "mpm"}
    weights = _model().config.truth_objectives
    truth_total = sum(weights[k] * v for k, v in truth.items())
    torch.testing.assert_close(half.loss.detach(), 0.5 * full.losses["mpm"] + truth_total)

    model = _model(mpm_loss_weight=0).eval()  # eval: the same mask as the models above
    out = model(**batch)
    assert set(out.losses) == {"class", "origin", "vertex"}
    for key, value in truth.items():
        torch.testing.assert_close(out.losses[key], value)
    torch.testing.assert_close(out.loss.detach(), truth_total)
    assert out.decoder_states is None and out.target_loss is None
    out.loss.backward()
    assert all(p.grad is None for p in model.decoder.parameters())
    assert all(p.grad is None for p in model.target.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.jetfm.parameters())
    # a batch without truth labels: a zero loss that still backpropagates
    plain = model(**{k: batch[k] for k in ("kinematics", "pid", "tracks", "mask")})
    assert plain.losses == {} and float(plain.loss.detach()) == 0.0 and plain.loss.requires_grad
    with pytest.raises(ValueError, match="nothing to train"):
        JetFMConfig(mpm_loss_weight=0)
    with pytest.raises(ValueError, match="mpm_loss_weight must be >= 0"):
        _model(mpm_loss_weight=-1)


# --- a real run -----------------------------------------------------------------------------
def _logged(history, key):
    return [h[key] for h in history if key in h]


def test_short_training_lowers_the_truth_losses(truth_run, generated):
    history = truth_run.trainer.state.log_history
    for key in ("mpm_loss", "class_loss", "origin_loss", "vertex_loss"):  # each in the logs
        assert len(_logged(history, key)) >= 10, key
    assert truth_run.metrics["class_loss"] == _logged(history, "class_loss")[-1]
    config = truth_run.model.config
    assert config.pretrain_classes == TRUTH_CLASSES
    assert config.truth_objectives == {"class": 2.0, "origin": 0.5, "vertex": 0.2}
    # on the validation jets, against the same model untrained
    processor = JetProcessor.from_pretrained(truth_run.output_dir)
    batch = dataset_to_batch(JetDataset(generated[1], processor, targets=TRUTH_TARGETS))
    torch.manual_seed(0)
    with torch.no_grad():
        before = JetFMForMaskedParticleModeling(config).eval()(**batch).losses
        after = truth_run.model.eval()(**batch).losses
    assert before["class"] > 0.95 * math.log(len(TRUTH_CLASSES))
    assert after["class"] < 0.8 * math.log(len(TRUTH_CLASSES)), (before, after)
    assert after["origin"] < 0.8 * before["origin"], (before, after)
    assert after["vertex"] < before["vertex"] and after["mpm"] < before["mpm"]


def test_truth_heads_round_trip_and_every_head_fine_tunes(truth_run, generated, tmp_path, caplog):
    from jetfm.finetuning import finetune
    from jetfm.modeling.heads import JetFMForTrackID

    train, val = generated
    out = truth_run.output_dir
    processor = JetProcessor.from_pretrained(out)
    batch = _batch(val, processor)
    model = truth_run.model.eval()
    loaded = JetFMForMaskedParticleModeling.from_pretrained(out).eval()
    a, b = model(**batch), loaded(**batch)
    for key in ("class_logits", "origin_logits", "vertex_logits"):
        torch.testing.assert_close(getattr(b, key), getattr(a, key))
    # a release (backbone alone + mpm_decoder.safetensors) brings the truth heads back too
    release = tmp_path / "release"
    model.jetfm.save_pretrained(release)
    save_file(decoder_state(model), str(release / DECODER_WEIGHTS_NAME))
    torch.testing.assert_close(
        JetFMForMaskedParticleModeling.from_pretrained(release).eval()(**batch).class_logits,
        a.class_logits,
    )
    # continuing keeps them (same classes)
    fresh = JetFMForMaskedParticleModeling(JetFMConfig.from_pretrained(out))
    assert "truth heads (jet_class, origin, vertex)" in load_initial_weights(fresh, out)
    # the backbone and the task heads load without the truth heads, and without noise
    with caplog.at_level(logging.WARNING):
        JetFMModel.from_pretrained(out)
        JetFMForTrackID.from_pretrained(out)
    assert "truth." not in caplog.text and "UNEXPECTED" not in caplog.text  # its keys: truth.*
    result = finetune(str(out), "tagging", train, val, tmp_path / "tag", max_steps=4,
                      batch_size=32, early_stopping_patience=None, evals_per_run=1)  # fmt: skip
    assert type(result.model).__name__ == "JetFMForJetTagging"
    assert not hasattr(result.model, "truth")


def test_files_without_truth_pre_train_by_mpm_alone(kinematics_only_file, tmp_path, caplog):
    """Unlabelled (here: four-vector only, no origin) files: the truth objectives the files
    cannot feed are turned off with one log line, and MPM trains."""
    with caplog.at_level(logging.WARNING, logger="jetfm.pretraining"):
        result = pretrain(data=str(kinematics_only_file), output_dir=str(tmp_path / "o"),
                          size="tiny", max_steps=2, batch_size=32, truth="default")  # fmt: skip
    lines = [r.getMessage() for r in caplog.records if "truth objectives" in r.getMessage()]
    assert len(lines) == 1 and "origin" in lines[0] and "part_origin" in lines[0]
    assert "MPM and the others" in lines[0]  # the class objective stays: labels exist
    assert result.model.config.truth_objectives == {"class": 1.0}
    # no labels either: MPM alone
    unlabelled = write_jetclass_file(tmp_path / "u.root", 64, seed=5, kinematics_only=True,
                                     with_truth=False)  # fmt: skip
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="jetfm.pretraining"):
        result = pretrain(data=str(unlabelled), output_dir=str(tmp_path / "u"), size="tiny",
                          max_steps=2, batch_size=32, truth="default")  # fmt: skip
    assert "MPM alone" in caplog.text
    assert result.model.truth is None and not result.model.config.truth_objectives
    assert result.metrics["steps"] == 2


def test_truth_alone_pre_training_run(generated, tmp_path, caplog):
    """``--mpm-weight 0``: a real run trains the truth heads and the encoder, logs no MPM
    loss, leaves the decoder as it was initialised, and its card says what it learnt from."""
    train, val = generated
    out = tmp_path / "truth_alone"
    rc = cli_main(["pretrain", "--data", str(train), "--val", str(val), "--output", str(out),
                   "--size", "tiny", "--target", "regression", "--truth", "class=2,origin=0.5",
                   "--mpm-weight", "0", "--max-steps", "70", "--batch-size", "32",
                   "--lr", "3e-3", "--logging-steps", "5", "--save-steps", "70",
                   "--buckets", "128", "--encoder-delay", "0", "--embedding-lr-scale", "1",
                   "--seed", "0"])  # fmt: skip
    assert rc == 0
    model = JetFMForMaskedParticleModeling.from_pretrained(str(out))
    assert model.config.mpm_loss_weight == 0
    processor = JetProcessor.from_pretrained(out)
    batch = dataset_to_batch(JetDataset(val, processor, targets=TRUTH_TARGETS[:3]))
    torch.manual_seed(0)
    untrained = JetFMForMaskedParticleModeling(model.config).eval()
    with torch.no_grad():
        before, after = untrained(**batch).losses, model.eval()(**batch).losses
    assert set(after) == {"class", "origin"}
    assert after["class"] < 0.8 * before["class"], (before, after)
    assert after["origin"] < 0.9 * before["origin"], (before, after)
    # the decoder was never run: still at the seeded initialisation of the run
    torch.manual_seed(0)
    fresh = JetFMForMaskedParticleModeling(model.config)
    for (name, p), q in zip(
        model.decoder.named_parameters(), fresh.decoder.parameters(), strict=True
    ):
        torch.testing.assert_close(p, q, msg=name)
    log = (out / "training_log.csv").read_text()
    assert "class_loss" in log and "mpm_loss" not in log
    card = render_model_card(collect_facts(out))
    assert "pre-trained on generator truth alone" in card and "`--mpm-weight 0`" in card
    assert "| MPM target |" not in card
    # continuing it with MPM on: its never-trained decoder is not taken for a trained one
    with caplog.at_level(logging.INFO, logger="jetfm.modeling.continuation"):
        result = pretrain(data=str(train), output_dir=str(tmp_path / "cont"), init_from=str(out),
                          target="regression", max_steps=2, batch_size=32, buckets="128",
                          truth="class=2,origin=0.5")  # fmt: skip
    assert "decoder was never trained" in caplog.text
    assert result.model.config.mpm_encoder_delay > 0  # the fresh decoder learns to read first
    assert result.metrics["mpm_loss"] > 0


# --- options --------------------------------------------------------------------------------
def test_truth_options_and_their_errors(generated, tmp_path, capsys):
    from jetfm.cli import build_parser
    from jetfm.commands import pretrain_arguments

    assert truth_weights(None) == truth_weights("none") == {}
    assert truth_weights("default") == truth_weights(_DEFAULT_TRUTH)
    assert truth_weights("default") == {k: v for k, v in DEFAULT_TRUTH_WEIGHTS.items() if v}
    assert truth_weights("origin=0.3,vertex") == {"origin": 0.3, "vertex": 1.0}
    argv = ["pretrain", "--data", "x.root", "--output", "o", "--truth", "class=1,origin=0.5",
            "--supervised-classes", "QCD,Wqq"]  # fmt: skip
    parsed = pretrain_arguments(build_parser().parse_args(argv))
    assert parsed == PretrainArguments(data="x.root", output_dir="o", truth="class=1,origin=0.5",
                                       supervised_classes=["QCD", "Wqq"])  # fmt: skip
    bare = pretrain_arguments(build_parser().parse_args([*argv[:5], "--truth"]))
    assert bare.truth == "default"
    with pytest.raises(JetFMError, match="unknown objectives"):
        truth_weights("jets=1")
    train, _ = generated
    base = ["pretrain", "--data", str(train), "--size", "tiny", "--output", str(tmp_path / "x")]
    assert cli_main([*base, "--truth", "class=-1"]) == 2
    assert ">= 0" in capsys.readouterr().err
    assert cli_main([*base, "--truth", "--supervised-classes", "QCD,Hbb", "--max-steps", "1"]) == 2
    assert "--supervised-classes: unknown class 'Hbb'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="pretrain_classes"):
        JetFMConfig(truth_objectives={"class": 1.0})
    assert cli_main([*base, "--mpm-weight", "0", "--max-steps", "1"]) == 2
    assert "--mpm-weight 0 leaves nothing to train" in capsys.readouterr().err
    assert cli_main([*base, "--mpm-weight", "-1", "--truth"]) == 2
    assert "--mpm-weight" in capsys.readouterr().err
    weighted = pretrain_arguments(build_parser().parse_args([*argv, "--mpm-weight", "0.5"]))
    assert weighted.mpm_weight == 0.5


def test_track_id_head_starts_from_the_pretrained_origin_head(truth_run, generated, tmp_path,
                                                              caplog):  # fmt: skip
    """The track-origin head pre-trained beside MPM is where a track-id head starts: from a
    `jetfm pretrain` output and from a release alike; --new-head (or a head of another shape)
    gives a random one."""
    from sklearn.metrics import balanced_accuracy_score

    from jetfm.finetuning import finetune, load_model_for_task

    train, val = generated
    out = truth_run.output_dir
    origin = truth_run.model.truth.origin.state_dict()
    release = tmp_path / "release"
    truth_run.model.jetfm.save_pretrained(release)
    save_file(decoder_state(truth_run.model), str(release / DECODER_WEIGHTS_NAME))
    batch = _batch(val, JetProcessor.from_pretrained(out), n=90, targets=("track_labels",))
    labels = batch.pop("track_labels")
    tracks = labels != IGNORE_INDEX

    def balanced_accuracy(model) -> float:
        with torch.no_grad():
            logits = model.eval()(**batch).logits
        return balanced_accuracy_score(labels[tracks], logits.argmax(-1)[tracks])

    for folder in (out, release):
        with caplog.at_level(logging.INFO, logger="jetfm.finetuning"):
            model = load_model_for_task(folder, "track-id")
        assert "starts from the pre-trained origin head" in caplog.text
        for key, value in model.classifier.state_dict().items():
            torch.testing.assert_close(value, origin[key])
        assert model.config.finetuning["head_from"] == "pre-trained truth head 'origin'"
        caplog.clear()
    # before any fine-tuning step it tells displaced tracks from prompt ones; a new head can't
    present = len(torch.unique(labels[tracks]))
    new = load_model_for_task(out, "track-id", pretrained_head=False)
    assert "head_from" not in new.config.finetuning
    warm_ba, new_ba = balanced_accuracy(model), balanced_accuracy(new)  # 0.32, 0.11 here
    assert warm_ba > max(1.0 / present, new_ba) + 0.05, (warm_ba, new_ba)
    # another head shape: a new head, said so
    with caplog.at_level(logging.INFO, logger="jetfm.finetuning"):
        load_model_for_task(out, "track-id", head_hidden_size=16)
    assert "does not fit" in caplog.text
    # the CLI's --new-head, and the record of the run
    common = ["finetune", "--model", str(out), "--task", "track-id", "--train", str(train),
              "--val", str(val), "--max-steps", "2", "--batch-size", "32", "--evals", "1"]  # fmt: skip
    assert cli_main([*common, "--output", str(tmp_path / "warm")]) == 0
    assert cli_main([*common, "--output", str(tmp_path / "new"), "--new-head"]) == 0
    warm = JetFMConfig.from_pretrained(tmp_path / "warm").finetuning
    assert warm["head_from"] == "pre-trained truth head 'origin'"
    assert "head_from" not in JetFMConfig.from_pretrained(tmp_path / "new").finetuning
    # the default LR keeps the pre-trained head's start; a new head gets the usual one
    learning_rate = {k: json.loads((tmp_path / k / "training_args.json").read_text())[
        "learning_rate"] for k in ("warm", "new")}  # fmt: skip
    assert learning_rate == {"warm": FINETUNE_PRETRAINED_HEAD_LR, "new": FINETUNE_LR}
    card = render_model_card(collect_facts(tmp_path / "warm"))
    assert "| Head initialisation | the base model's pre-trained truth head 'origin' |" in card
    assert "Head initialisation" not in render_model_card(collect_facts(tmp_path / "new"))
    # tagging has no such head: a new one
    tagger = finetune(str(out), "tagging", train, val, tmp_path / "tag", max_steps=2,
                      batch_size=32, early_stopping_patience=None, evals_per_run=1)  # fmt: skip
    assert "head_from" not in tagger.model.config.finetuning
