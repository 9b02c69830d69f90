"""The release inputs of mpm-flow-base in studies/ rebuild what the checkpoint ships: its
measured values from the committed study rows, and its recall figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RELEASE = REPO / "studies" / "releases" / "mpm-flow-base"
SHIPPED = REPO / "model_cards" / "mpm-flow-base"


def _measured(metrics: dict) -> list[tuple[str, float]]:
    """What a metrics.json measures: each row's metric and value (the wording is the card's)."""
    return [(row["metric"], row["value"]) for row in metrics["results"]]


def test_mpm_flow_base_values_are_rebuilt_from_the_study_rows(tmp_path):
    out = tmp_path / "metrics.json"
    script = RELEASE / "make_metrics.py"
    subprocess.run([sys.executable, str(script), str(out)], check=True, capture_output=True)
    rebuilt = json.loads(out.read_text())
    shipped = json.loads((SHIPPED / "metrics.json").read_text())
    assert len(rebuilt["results"]) >= 5
    assert [m for m, _ in _measured(rebuilt)] == [m for m, _ in _measured(shipped)]
    assert [v for _, v in _measured(rebuilt)] == pytest.approx([v for _, v in _measured(shipped)])


def test_mpm_flow_base_recall_figure_is_drawn_from_the_study_rows(tmp_path):
    script = RELEASE / "make_recall_figure.py"
    out = tmp_path / "per_class_recall.png"
    subprocess.run([sys.executable, str(script), str(out)], check=True, capture_output=True)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    usage = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert usage.returncode != 0 and "usage" in usage.stderr


def test_the_transfer_figure_pairs_pretrained_and_scratch_seed_by_seed(monkeypatch):
    """studies/plot_transfer_steps.py: every point of the figure pairs the committed rows of a
    pre-trained and a scratch run seed by seed (same labelled jets, same initial head)."""
    monkeypatch.syspath_prepend(str(REPO / "studies"))
    import plot_transfer_steps as plot

    study = plot.load_study_module()
    for _, _, pretrained, scratch in plot.POINTS:
        ours = plot.top_vs_qcd_rows(study, *pretrained)
        gains = plot.paired_gains(study, pretrained, scratch)
        assert len(ours) >= 2 and set(gains) == set(ours)  # each seed has its scratch twin
        assert all(-0.5 < gain < 0.5 for gain in gains.values()), gains


def test_mpm_truth_det_base_values_are_rebuilt_from_the_test_bed_rows(tmp_path):
    """Every value mpm-truth-det-base ships is the test bed's own choice (recipe chosen on
    validation) over the committed rows, each fine-tuned row with its scratch baseline."""
    out = tmp_path / "metrics.json"
    script = REPO / "studies" / "releases" / "mpm-truth-det-base" / "make_metrics.py"
    subprocess.run([sys.executable, str(script), str(out)], check=True, capture_output=True)
    rebuilt = json.loads(out.read_text())
    shipped = json.loads((REPO / "model_cards" / "mpm-truth-det-base" / "metrics.json").read_text())
    assert [m for m, _ in _measured(rebuilt)] == [m for m, _ in _measured(shipped)]
    assert [v for _, v in _measured(rebuilt)] == pytest.approx([v for _, v in _measured(shipped)])
    tagging = [r for r in rebuilt["results"] if "recipe chosen on validation" in r["task"]]
    # both tasks and the 8-class test bed, at 1,000 and at 100 labels
    assert len(tagging) == 6 and all("scratch" in r["notes"] for r in tagging)
    # track origin from the pre-trained head, on the shifted and the generated jets: each
    # beside a new random head and scratch, both at the LR validation chose
    track = [r for r in rebuilt["results"] if "from the pre-trained track-origin head" in r["task"]]
    assert len(track) == 4
    fine_tuned = [r for r in track if "LR chosen on validation" in r["task"]]
    assert len(fine_tuned) == 2
    assert all("new random head" in r["notes"] and "scratch" in r["notes"] for r in fine_tuned)
