"""The console script: --help, --version, every subcommand has help, option values checked
while parsing (one line, exit status 2, nothing created), each default shown once and real."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jetfm.cli import build_parser, main
from jetfm.version import __version__

ROOT = Path(__file__).resolve().parents[1]


def test_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out
    assert main([]) == 0
    assert "jetfm" in capsys.readouterr().out
    assert main(["finetune", "--help"]) == 0
    assert "--batch-size" in capsys.readouterr().out


def test_console_script_runs():
    out = subprocess.run(
        [sys.executable, "-m", "jetfm.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "usage: jetfm" in out.stdout


def _subparsers(parser: argparse.ArgumentParser):
    """``(name, parser)`` of every command, nested ones (``tokenizer train``) included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, cmd in action.choices.items():
                yield name, cmd
                for sub_name, sub in _subparsers(cmd):
                    yield f"{name} {sub_name}", sub


def test_every_subcommand_has_help():
    names = []
    for name, cmd in _subparsers(build_parser()):
        text = cmd.format_help()
        assert name in text and len(text) > 80
        names.append(name)
    assert {"finetune", "pretrain", "quickstart", "tokenizer train"} <= set(names)


# --- option values are checked while parsing ----------------------------------------------------
def _required(command: str, tmp: Path) -> list[str]:
    """A valid command line of ``command`` apart from the option under test (paths in tmp)."""
    data, model, out = str(tmp / "d.root"), str(tmp / "model"), str(tmp / "out")
    return {
        "finetune": ["--model", "tiny", "--task", "tagging", "--train", data, "--val", data,
                     "--output", out],
        "quickstart": ["--output", out],
        "pretrain": ["--data", data, "--output", out],
        "tokenizer": ["train", "--data", data, "--output", out],
        "generate": ["--jets-per-class", "5", "--out", out],
        "predict": ["--model", model, "--data", data, "--out", out],
        "evaluate": ["--model", model, "--data", data, "--output", str(tmp / "m.json")],
        "stats": ["--data", data, "--output", out],
        "release": ["--name", "x", "--out", out, "--generate-jets-per-class", "4"],
        "export-onnx": [model, str(tmp / "m.onnx")],
    }[command]  # fmt: skip


BAD_VALUES = [
    ("finetune", "--batch-size", "-5"), ("finetune", "--batch-size", "0"),
    ("finetune", "--batch-size", "2.5"), ("finetune", "--max-steps", "0"),
    ("finetune", "--max-steps", "-2"), ("finetune", "--epochs", "0"),
    ("finetune", "--lr", "-0.001"), ("finetune", "--lr", "nan"), ("finetune", "--seed", "-1"),
    ("finetune", "--max-train-jets", "0"), ("finetune", "--freeze-fraction", "1.5"),
    ("finetune", "--ramp-fraction", "-0.1"), ("finetune", "--backbone-lr-scale", "-1"),
    ("finetune", "--layer-lr-decay", "0"), ("finetune", "--layer-lr-decay", "1.5"),
    ("finetune", "--lora-rank", "0"), ("finetune", "--patience", "-1"),
    ("finetune", "--evals", "0"), ("finetune", "--head-hidden-size", "-1"),
    ("finetune", "--fractions", "0.2"), ("finetune", "--fractions", "0.5,0.5"),
    ("finetune", "--fractions", "0.2,1.5"),
    ("quickstart", "--batch-size", "-5"), ("quickstart", "--jets-per-class", "3"),
    ("quickstart", "--max-steps", "0"), ("quickstart", "--workers", "0"),
    ("quickstart", "--seed", "x"),
    ("pretrain", "--batch-size", "0"), ("pretrain", "--max-particles", "0"),
    ("pretrain", "--epochs", "-1"), ("pretrain", "--lr", "0"), ("pretrain", "--save-steps", "0"),
    ("pretrain", "--logging-steps", "0"), ("pretrain", "--mask-fraction", "1"),
    ("pretrain", "--encoder-delay", "0.5"), ("pretrain", "--group-dropout", "2"),
    ("pretrain", "--embedding-lr-scale", "-1"), ("pretrain", "--layer-scale-init", "0"),
    ("pretrain", "--num-codes", "1"), ("pretrain", "--kmeans-particles", "0"),
    ("pretrain", "--buckets", "16,x"), ("pretrain", "--buckets", "0,32"),
    ("tokenizer", "--codes", "1"), ("tokenizer", "--code-dim", "0"),
    ("tokenizer", "--hidden-size", "0"), ("tokenizer", "--heads", "0"),
    ("tokenizer", "--commitment", "-1"), ("tokenizer", "--ema-decay", "1"),
    ("tokenizer", "--dead-code-fraction", "-0.5"), ("tokenizer", "--stats-batches", "0"),
    ("tokenizer", "--batch-size", "-5"),
    ("generate", "--jets-per-class", "0"), ("generate", "--workers", "0"),
    ("generate", "--chunk-size", "0"), ("generate", "--seed", "-1"),
    ("generate", "--classes", "Hbb,Zbb"),
    ("predict", "--batch-size", "0"), ("predict", "--workers", "-1"),
    ("predict", "--max-particles", "0"), ("predict", "--chunk-size", "0"),
    ("predict", "--vertex-threshold", "1.5"),
    ("evaluate", "--batch-size", "0"),
    ("stats", "--max-particles", "0"), ("stats", "--max-jets", "0"),
    ("stats", "--step-size", "0"),
    ("release", "--max-steps", "0"), ("release", "--batch-size", "0"), ("release", "--lr", "0"),
    ("release", "--max-file-mb", "0"), ("release", "--generate-jets-per-class", "-1"),
    ("release", "--probe-jets-per-class", "-1"), ("release", "--classes", "Foo"),
    ("export-onnx", "--opset", "0"),
]  # fmt: skip


@pytest.mark.parametrize(("command", "option", "value"), BAD_VALUES)
def test_a_bad_number_stops_the_command_at_once(command, option, value, tmp_path, capsys,
                                                monkeypatch):  # fmt: skip
    monkeypatch.chdir(tmp_path)  # a folder created relative to the current one would show too
    work = tmp_path / "work"
    work.mkdir()
    argv = [command, *_required(command, work), option, value]
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert captured.out == "" and "\n" not in err, err
    assert err.startswith(f"jetfm {command}") and f"argument {option}: must be" in err
    assert repr(value) in err or value in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["work"]  # nothing created


def test_every_numeric_option_is_checked():
    """No command takes a number with a bare int/float: each has a range check."""
    unchecked = [
        f"{name} {action.option_strings[0]}"
        for name, cmd in _subparsers(build_parser())
        for action in cmd._actions
        if action.type in (int, float)
    ]
    assert unchecked == []


def test_quickstart_with_a_bad_batch_size_does_nothing(tmp_path):
    """The console path: one line, exit status 2, no output folder, in well under a second
    of work (nothing generated first)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "jetfm.cli", "quickstart", "--batch-size", "-5"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "jetfm quickstart: error: argument --batch-size: must be a whole number ≥ 1, got '-5' "
        "(see `jetfm quickstart --help`)"
    ]
    assert list(tmp_path.iterdir()) == []


def test_good_values_pass_the_checks():
    parser = build_parser()
    args = parser.parse_args(
        ["finetune", *_required("finetune", Path("t")), "--fractions", "0.1,0.9", "--lr", "1e-4",
         "--max-steps", "-1", "--patience", "0", "--freeze-fraction", "0", "--seed", "4294967295"]
    )  # fmt: skip
    assert args.fractions == [0.1, 0.9] and args.lr == 1e-4 and args.patience == 0
    assert args.seed == 2**32 - 1 and args.max_steps == -1
    args = parser.parse_args(["pretrain", *_required("pretrain", Path("t")), "--buckets", "32, 64"])
    assert args.buckets == "32,64"
    args = parser.parse_args(
        ["generate", *_required("generate", Path("t")), "--classes", "QCD,Hbb"]
    )
    assert args.classes == ["QCD", "Hbb"]


# --- each default shown once, and the real one --------------------------------------------------
def test_help_shows_each_default_once():
    for name, cmd in _subparsers(build_parser()):
        formatter = cmd._get_formatter()
        for action in cmd._actions:
            if action.help in (None, argparse.SUPPRESS):
                continue
            text = formatter._expand_help(action)
            stated = text.count("default:") + text.count("(default)")
            assert stated <= 1, f"jetfm {name} {action.option_strings}: {text!r}"
            assert "(default: None)" not in text and "(default: False)" not in text, text
            assert "(default: [" not in text, text  # a default as the command line writes it
    help_text = build_parser()._subparsers._group_actions[0].choices["finetune"].format_help()
    assert "(default: 2e-3) (default: None)" not in help_text


def _option_help(command: str, option: str) -> str:
    parser = dict(_subparsers(build_parser()))[command]
    action = next(a for a in parser._actions if option in a.option_strings)
    return " ".join(parser._get_formatter()._expand_help(action).split())


def test_finetune_defaults_are_the_library_ones():
    import jetfm.defaults as D
    from jetfm import finetuning as F
    from jetfm.commands.finetune import finetune_arguments

    assert F.MODES == D.FINETUNE_MODES
    assert (F.DEFAULT_LR, F.DEFAULT_EPOCHS, F.MIN_STEPS) == (
        D.FINETUNE_LR, D.FINETUNE_EPOCHS, D.FINETUNE_MIN_STEPS)  # fmt: skip
    assert (F.MIN_BATCH_SIZE, F.MAX_BATCH_SIZE) == (
        D.FINETUNE_MIN_BATCH_SIZE, D.FINETUNE_MAX_BATCH_SIZE)  # fmt: skip
    assert (F.DEFAULT_EVALS, F.DEFAULT_PATIENCE) == (D.FINETUNE_EVALS, D.FINETUNE_PATIENCE)
    # what the parser passes when no option is given is what the library does by default
    required = _required("finetune", Path("t"))
    parsed = finetune_arguments(build_parser().parse_args(["finetune", *required]))
    library = F.FinetuneArguments(model="tiny", task="tagging", train="t/d.root",
                                  val="t/d.root", output_dir="t/out")  # fmt: skip
    assert parsed.to_dict() == {**library.to_dict(), "config_overrides": {}}
    # and the defaults the help states in words are those values
    lr_help = _option_help("finetune", "--lr")
    assert f"(default: {F.DEFAULT_LR:g}; {D.FINETUNE_PRETRAINED_HEAD_LR:g} for a head" in lr_help
    assert f"(default: {F.DEFAULT_EVALS})" in _option_help("finetune", "--evals")
    assert f"(default: {F.DEFAULT_PATIENCE};" in _option_help("finetune", "--patience")
    epochs = _option_help("finetune", "--epochs")
    assert f"(default: {F.DEFAULT_EPOCHS:g}, but at least {F.MIN_STEPS} " in epochs
    batch = _option_help("finetune", "--batch-size")
    assert f"{F.MIN_BATCH_SIZE} to {F.MAX_BATCH_SIZE})" in batch


def test_pretrain_defaults_are_the_library_ones():
    from jetfm.commands import pretrain_arguments
    from jetfm.configuration import MPM_TARGETS, JetFMConfig
    from jetfm.defaults import MPM_TARGETS as LIGHT_TARGETS
    from jetfm.pretraining import BASE_LR, PretrainArguments

    assert MPM_TARGETS is LIGHT_TARGETS
    parsed = pretrain_arguments(
        build_parser().parse_args(["pretrain", "--data", "d", "--output", "o"])
    )
    assert parsed == PretrainArguments(data="d", output_dir="o")
    assert f"(default: {BASE_LR:g} at batch 256" in _option_help("pretrain", "--lr")
    layer_scale = JetFMConfig().layer_scale_init
    assert f"(default: the config's, {layer_scale:g})" in _option_help(
        "pretrain", "--layer-scale-init"
    )
