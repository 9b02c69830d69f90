"""Runs as library calls with their arguments as dataclasses: ``jetfm.pretrain`` with
``PretrainArguments``, ``finetune`` with ``FinetuneArguments`` (JSON saved with the run, read
back equal), the CLI filling the same dataclasses, a checkpoint without its processor, and the
MPM target names."""

from __future__ import annotations

import json
import logging

import pytest
import torch

import jetfm
from jetfm.cli import build_parser
from jetfm.cli import main as cli_main
from jetfm.configuration import MPM_TARGETS, JetFMConfig
from jetfm.data import BranchMapping
from jetfm.errors import CheckpointError
from jetfm.finetuning import FinetuneArguments, finetune, processor_for_finetuning
from jetfm.modeling.backbone import JetFMModel
from jetfm.modeling.pretraining import JetFMForMaskedParticleModeling
from jetfm.pretraining import PretrainArguments, pretrain


def _cli(*argv) -> int:
    return cli_main([str(a) for a in argv])


def _logged_losses(trainer) -> list[float]:
    return [h["loss"] for h in trainer.state.log_history if "loss" in h]


# --- pre-training -------------------------------------------------------------------------
def test_pretrain_as_a_library_function(jetclass_file, tmp_path):
    out = tmp_path / "mpm"
    args = PretrainArguments(
        data=jetclass_file, output_dir=out, size="tiny", target="regression", max_steps=40,
        batch_size=32, lr=3e-3, logging_steps=1, save_steps=40, encoder_delay=0.0,
        device_batches=False, seed=1,
    )  # fmt: skip
    assert args.data == str(jetclass_file) and args.output_dir == str(out)  # paths as strings
    result = pretrain(args)
    assert jetfm.pretrain is pretrain and jetfm.PretrainArguments is PretrainArguments
    assert result.output_dir == out and result.metrics["steps"] == 40
    losses = _logged_losses(result.trainer)
    assert sum(losses[-5:]) / 5 < 0.9 * sum(losses[:5]) / 5, losses  # the loss went down
    assert result.metrics["loss"] == losses[-1]
    # a loadable checkpoint, equal to the trained model
    loaded = JetFMForMaskedParticleModeling.from_pretrained(out).eval()
    assert loaded.config.mpm_target == "regression" and loaded.config.size == "tiny"
    trained = {k: v.detach() for k, v in result.model.state_dict().items()}
    for name, value in loaded.state_dict().items():
        torch.testing.assert_close(value, trained[name])
    # the arguments, saved as JSON, read back equal
    saved = json.loads((out / "pretrain_args.json").read_text())
    assert saved["data"] == str(jetclass_file) and saved["max_steps"] == 40
    assert PretrainArguments.from_json_file(out / "pretrain_args.json") == args


def test_pretrain_takes_keyword_fields_or_arguments_not_both(tmp_path):
    with pytest.raises(TypeError, match="not both"):
        pretrain(PretrainArguments(data="x.root", output_dir=tmp_path), seed=1)
    with pytest.raises(TypeError):
        pretrain(data="x.root")  # no output_dir
    with pytest.raises(jetfm.errors.JetFMError, match="--target"):
        pretrain(data=tmp_path / "none.root", output_dir=tmp_path / "o", target="nope")


def test_cli_fills_the_same_pretrain_arguments(jetclass_file, tmp_path):
    """Every option of `jetfm pretrain` lands in its PretrainArguments field, and a run of
    the command saves the JSON the library call with the same options saves."""
    from jetfm.commands import pretrain_arguments

    yaml = tmp_path / "branches.yaml"
    yaml.write_text("tree: tree\npx: part_px\n")
    argv = [
        "pretrain", "--data", jetclass_file, "--val", jetclass_file, "--output", tmp_path / "a",
        "--groups", "kinematics,pid", "--max-particles", 64, "--streaming", "--max-steps", 7,
        "--epochs", 2, "--batch-size", 16, "--lr", 1e-3, "--seed", 3, "--save-steps", 5,
        "--logging-steps", 2, "--resume", "--branch-map", yaml, "--compile", "--bf16",
        "--no-device-batches", "--feature-cache", tmp_path / "fc", "--buckets", "16,64",
        "--target", "kmeans", "--size", "small", "--init-from", tmp_path / "init",
        "--tokenizer", tmp_path / "tok", "--mask-fraction", 0.3, "--mask-in-encoder",
        "--embedding-lr-scale", 0.5, "--encoder-delay", 0.1, "--group-dropout", 0.2,
        "--layer-scale-init", 0.01, "--num-codes", 8, "--kmeans-particles", 100,
    ]  # fmt: skip
    parsed = pretrain_arguments(build_parser().parse_args([str(a) for a in argv]))
    expected = PretrainArguments(
        data=jetclass_file, val=jetclass_file, output_dir=tmp_path / "a",
        groups=["kinematics", "pid"], max_particles=64, streaming=True, max_steps=7, epochs=2.0,
        batch_size=16, lr=1e-3, seed=3, save_steps=5, logging_steps=2, resume=True,
        mapping=BranchMapping(tree="tree", px="part_px"), compile=True, bf16=True,
        device_batches=False, feature_cache=tmp_path / "fc", buckets=(16, 64), target="kmeans",
        size="small",
        init_from=tmp_path / "init", tokenizer=tmp_path / "tok", mask_fraction=0.3,
        mask_in_encoder=True, embedding_lr_scale=0.5, encoder_delay=0.1, group_dropout=0.2,
        layer_scale_init=0.01, num_codes=8, kmeans_particles=100,
    )  # fmt: skip
    assert parsed == expected
    assert parsed.to_dict()["mapping"] == BranchMapping(tree="tree", px="part_px").to_dict()
    # defaults: the command line's are the dataclass's
    bare = ["pretrain", "--data", jetclass_file, "--output", tmp_path / "b"]
    default = pretrain_arguments(build_parser().parse_args([str(a) for a in bare]))
    assert default == PretrainArguments(data=jetclass_file, output_dir=tmp_path / "b")
    # a real run of each: the same arguments JSON
    options = dict(size="tiny", target="regression", max_steps=2, batch_size=16, save_steps=2)
    pretrain(data=jetclass_file, output_dir=tmp_path / "lib", **options)
    assert _cli("pretrain", "--data", jetclass_file, "--output", tmp_path / "cli", "--size",
                "tiny", "--target", "regression", "--max-steps", 2, "--batch-size", 16,
                "--save-steps", 2) == 0  # fmt: skip
    lib = json.loads((tmp_path / "lib" / "pretrain_args.json").read_text())
    cli = json.loads((tmp_path / "cli" / "pretrain_args.json").read_text())
    assert lib.pop("output_dir") == str(tmp_path / "lib")
    assert cli.pop("output_dir") == str(tmp_path / "cli")
    assert lib == cli


# --- fine-tuning --------------------------------------------------------------------------
def test_finetune_arguments_json_round_trip(tmp_path):
    args = FinetuneArguments(
        tmp_path / "ckpt", "cwola", [tmp_path / "a.root", tmp_path / "b.root"], "val/*.root",
        tmp_path / "out", mode="frozen", feature_groups=["kinematics"], classes=None,
        signal="Tbqq", background="QCD", fractions=[0.1, 0.7], early_stopping_patience=None,
        config_overrides={"head_hidden_size": 0}, mapping=BranchMapping(tree="Events"),
        refit_processor=True, training_overrides={"warmup_steps": 3},
    )  # fmt: skip
    path = args.to_json_file(tmp_path / "finetune_args.json")
    data = json.loads(path.read_text())
    assert data["model"] == str(tmp_path / "ckpt") and data["output_dir"] == str(tmp_path / "out")
    assert data["train"] == [str(tmp_path / "a.root"), str(tmp_path / "b.root")]
    assert data["mapping"] == BranchMapping(tree="Events").to_dict()
    assert data["fractions"] == [0.1, 0.7] and data["training_overrides"] == {"warmup_steps": 3}
    again = FinetuneArguments.from_json_file(path)
    assert again == args and isinstance(again.mapping, BranchMapping)
    assert FinetuneArguments.from_dict(args.to_dict()) == args
    with pytest.raises(ValueError, match="unknown FinetuneArguments fields"):
        FinetuneArguments.from_dict({**data, "epoch": 3})
    assert jetfm.FinetuneArguments is FinetuneArguments and jetfm.finetune is finetune


def test_finetune_with_arguments_equals_the_keyword_call(jetclass_file, tmp_path):
    options = dict(max_steps=2, batch_size=16, early_stopping_patience=None, evals_per_run=1,
                   seed=5)  # fmt: skip
    by_keywords = finetune("tiny", "tagging", jetclass_file, jetclass_file, tmp_path / "kw",
                           warmup_steps=1, **options)  # fmt: skip
    arguments = FinetuneArguments(
        model="tiny", task="tagging", train=jetclass_file, val=jetclass_file,
        output_dir=tmp_path / "args", training_overrides={"warmup_steps": 1}, **options,
    )  # fmt: skip
    by_arguments = finetune(arguments)
    assert by_keywords.arguments.replace(output_dir="x") == by_arguments.arguments.replace(
        output_dir="x"
    )
    assert by_keywords.trainer.args.warmup_steps == by_arguments.trainer.args.warmup_steps == 1
    timing = ("runtime", "samples_per_second", "steps_per_second")
    same = {k: v for k, v in by_keywords.metrics.items() if k not in timing}
    assert same == {k: v for k, v in by_arguments.metrics.items() if k not in timing}
    mine = by_arguments.model.state_dict()
    for name, value in by_keywords.model.state_dict().items():
        torch.testing.assert_close(value, mine[name])
    saved = FinetuneArguments.from_json_file(tmp_path / "args" / "finetune_args.json")
    assert saved == by_arguments.arguments
    with pytest.raises(TypeError, match="not both"):
        finetune(saved, seed=1)
    with pytest.raises(TypeError, match="multiple values"):
        finetune("tiny", "tagging", jetclass_file, jetclass_file, "out", model="small")


def test_a_checkpoint_without_its_processor(jetclass_file, tmp_path, caplog, capsys):
    """Fine-tuning a pretrained backbone whose statistics are missing is an error naming the
    folder, the file and the opt-in; with the opt-in the statistics are refitted, warned."""
    ckpt = tmp_path / "no-processor"
    JetFMModel(JetFMConfig.from_preset("tiny")).save_pretrained(ckpt)
    with pytest.raises(CheckpointError) as err:
        finetune(ckpt, "tagging", jetclass_file, jetclass_file, tmp_path / "x", max_steps=1)
    message = str(err.value)
    assert str(ckpt) in message and "preprocessor_config.json" in message
    assert "refit_processor=True" in message and "--refit-processor" in message
    assert not (tmp_path / "x").exists()  # refused before any training
    base = ["finetune", "--model", ckpt, "--task", "tagging", "--train", jetclass_file, "--val",
            jetclass_file, "--max-steps", 1, "--batch-size", 16, "--evals", 1]  # fmt: skip
    assert _cli(*base, "--output", tmp_path / "y") == 2
    assert "--refit-processor" in capsys.readouterr().err
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="jetfm.finetuning"):
        assert _cli(*base, "--output", tmp_path / "z", "--refit-processor") == 0
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("preprocessor_config.json" in r.getMessage() for r in warned), caplog.text
    assert json.loads((tmp_path / "z" / "finetune_args.json").read_text())["refit_processor"]
    assert (tmp_path / "z" / "preprocessor_config.json").is_file()
    # from scratch (random weights) the statistics are the training files', without a warning
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="jetfm.finetuning"):
        processor = processor_for_finetuning(ckpt, jetclass_file, from_scratch=True)
    assert processor.num_jets_fitted > 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# --- MPM target names -----------------------------------------------------------------------
def test_every_mpm_target_name_builds_its_target():
    from jetfm.modeling.targets import TARGET_CLASSES, build_target, target_class
    from jetfm.modeling.targets.vqvae import tokenizer_options
    from jetfm.modeling.tokenizer import ParticleTokenizer, ParticleTokenizerConfig

    assert tuple(TARGET_CLASSES) == MPM_TARGETS
    tokenizer = ParticleTokenizer(
        ParticleTokenizerConfig(feature_groups={"kinematics": 7}, num_codes=8, hidden_size=16,
                                num_layers=1, num_attention_heads=2, intermediate_size=32)
    )  # fmt: skip
    options = {"vqvae": {"tokenizer": tokenizer_options(tokenizer)}, "kmeans": {"num_codes": 8}}
    for name in MPM_TARGETS:
        config = JetFMConfig.from_preset(
            "tiny", mpm_target=name, target_options=options.get(name, {})
        )
        target = build_target(config, config.hidden_size)
        assert target.name == name and target_class(name).name == name
    with pytest.raises(ValueError, match="unknown mpm_target"):
        target_class("nope")
    # the command lines offer exactly these names
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for command in ("pretrain", "release"):
        option = next(a for a in commands[command]._actions if a.dest == "target")
        assert tuple(option.choices) == MPM_TARGETS
