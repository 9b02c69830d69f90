"""The shipped card's numbers come from the committed study rows, not from hand edits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_mpm_flow_base_metrics_are_rebuilt_from_the_study_rows(tmp_path):
    script = REPO / "benchmarks" / "releases" / "mpm-flow-base" / "make_metrics.py"
    out = tmp_path / "metrics.json"
    subprocess.run([sys.executable, str(script), str(out)], check=True, capture_output=True)
    shipped = json.loads((REPO / "model_cards" / "mpm-flow-base" / "metrics.json").read_text())
    assert json.loads(out.read_text()) == shipped
    tagging = shipped["results"][0]
    assert tagging["metric"] == "accuracy" and 0.6 < tagging["value"] < 1.0
    # the scratch baseline is read from rows too: the comparison in the notes must agree
    scratch = float(tagging["notes"].split("(also 2e-3) ")[1].split(" ")[0])
    assert 0.6 < scratch < tagging["value"]


def test_mpm_flow_base_recall_figure_is_drawn_from_the_study_rows(tmp_path):
    script = REPO / "benchmarks" / "releases" / "mpm-flow-base" / "make_recall_figure.py"
    out = tmp_path / "per_class_recall.png"
    subprocess.run([sys.executable, str(script), str(out)], check=True, capture_output=True)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    usage = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert usage.returncode != 0 and "usage" in usage.stderr


def test_transfer_gains_in_the_docs_come_from_the_study_rows(monkeypatch):
    """docs/results.md's top-vs-QCD transfer gains (backbone pre-trained without top vs
    scratch, seed by seed, 1k labels) are what the committed rows give."""
    import numpy as np

    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import plot_transfer_steps as plot

    study = plot.load_study_module()
    gains = {
        steps: plot.paired_gains(study, pre, scratch) for steps, _, pre, scratch in plot.POINTS
    }
    assert all(len(g) == 5 for g in gains.values()), {s: len(g) for s, g in gains.items()}
    mean = {s: round(100 * float(np.mean(list(g.values()))), 1) for s, g in gains.items()}
    assert mean[2_400] == 0.6 and mean[4_800] == 1.6 and mean[9_600] == 2.5
    for steps in (4_800, 9_600):
        assert all(v > 0 for v in gains[steps].values()), steps  # "ahead on all five seeds"
