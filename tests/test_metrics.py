"""Metric functions on hand-made inputs with known answers, CWoLa mixtures, plots, JSON."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from jetfm import metrics as M
from jetfm import plots as P
from jetfm.data.schema import IGNORE_INDEX
from jetfm.errors import JetFMError
from jetfm.weak_supervision import make_mixtures


def test_rejection_at_efficiency_hand_made():
    # signal scores 0.9 0.8 0.3 0.2 ; background 0.85 0.1 0.05 0.01
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.3, 0.2, 0.85, 0.1, 0.05, 0.01])
    rej = M.rejection_at_efficiency(y, s, (0.25, 0.5, 0.75, 1.0))
    # ε_S = 25 %: cut at 0.9, no background → ∞; 50 %: cut 0.8 keeps 1/4 background → 4;
    # 75 %: cut 0.3 keeps 1/4 → 4; 100 %: cut 0.2 keeps 1/4 → 4
    assert rej[0.25] == math.inf
    assert rej[0.5] == pytest.approx(4.0)
    assert rej[0.75] == pytest.approx(4.0)
    assert rej[1.0] == pytest.approx(4.0)


def test_tagging_metrics_known_answers():
    names = ["QCD", "Wqq", "Tbqq"]
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    probs = np.array([
        [0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.3, 0.6, 0.1],  # one QCD → Wqq
        [0.1, 0.8, 0.1], [0.2, 0.7, 0.1],
        [0.1, 0.1, 0.8], [0.2, 0.1, 0.7],
    ])  # fmt: skip
    m = M.tagging_metrics(labels, probs, names)
    assert m["accuracy"] == pytest.approx(7 / 8)
    assert m["auc_per_class"]["Tbqq"] == pytest.approx(1.0)
    # the one QCD jet tagged as Wqq shows up in QCD's recall and the matrix, nowhere else
    assert m["recall"] == pytest.approx({"QCD": 0.75, "Wqq": 1.0, "Tbqq": 1.0})
    assert m["confusion_matrix"] == [[3, 1, 0], [0, 2, 0], [0, 0, 2]]
    assert m["background"] == "QCD"
    # Wqq vs QCD with s_W/(s_W+s_QCD): Wqq 0.889, 0.778; QCD 0.111 0.222 0.333 0.667
    # 50 % efficiency: cut 0.889 → no QCD passes: not a value, the bound 4 QCD jets allow
    wqq = m["rejection"]["Wqq"]["50"]
    assert wqq["value"] is None and wqq["n_background_passing"] == 0
    assert wqq["n_background"] == 4 and wqq["signal_efficiency"] == 0.5
    assert wqq["lower_bound"] == pytest.approx(1 / (1 - 0.05 ** (1 / 4)))  # 95 % CL, k = 0
    assert m["rejection"]["Tbqq"]["30"]["value"] is None
    # perfect and inverted binary classifiers
    y = np.array([0, 1, 0, 1])
    good = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    assert M.tagging_metrics(y, good)["auc"] == 1.0
    assert M.tagging_metrics(y, good[:, ::-1])["auc"] == 0.0


def test_clopper_pearson_known_answers():
    # k = 0: the upper end solves (1 - p)^n = α/2; k = n mirrors it; scipy's beta quantiles
    cl = M.INTERVAL_CL
    low, high = M.clopper_pearson(0, 10, cl)
    assert low == 0.0 and high == pytest.approx(1 - ((1 - cl) / 2) ** (1 / 10))
    low, high = M.clopper_pearson(10, 10, cl)
    assert high == 1.0 and low == pytest.approx(((1 - cl) / 2) ** (1 / 10))
    # a textbook value: 1 of 10 at 95 % → [0.0025, 0.4450]
    assert M.clopper_pearson(1, 10, 0.95) == pytest.approx([0.00253, 0.44502], abs=1e-5)
    assert M.upper_limit(0, 200, 0.95) == pytest.approx(1 - 0.05 ** (1 / 200))
    assert M.upper_limit(5, 5) == 1.0


def test_rejection_with_uncertainty_counts_and_interval():
    # 100 signal jets score 1; background: 8 of 200 score 1 as well, the rest 0
    y = np.r_[np.ones(100), np.zeros(200)].astype(bool)
    s = np.r_[np.ones(100), np.ones(8), np.zeros(192)]
    rec = M.rejection_with_uncertainty(y, s, (0.5,))[0.5]
    assert rec["n_background_passing"] == 8 and rec["n_background"] == 200
    assert rec["value"] == pytest.approx(25.0)
    low, high = rec["interval"]
    eps_low, eps_high = M.clopper_pearson(8, 200)
    assert (low, high) == pytest.approx((1 / eps_high, 1 / eps_low))
    assert low < 25.0 < high and high - 25.0 > 25.0 - low  # asymmetric, longer upwards
    # the same cut on 20× the background: the interval shrinks by about sqrt(20)
    big = M.rejection_record(160, 4000, 1.0)
    assert big["value"] == pytest.approx(25.0)
    ratio = (high - low) / (big["interval"][1] - big["interval"][0])
    assert 3.5 < ratio < 5.5


def test_rejection_table_and_json_never_print_inf(tmp_path):
    rng = np.random.default_rng(3)
    labels = np.r_[np.zeros(200), np.ones(200)].astype(int)
    # a perfect tagger on 200 background jets: nothing passes at any working point
    probs = np.stack([1.0 - labels, labels.astype(float)], axis=1) * 0.98 + 0.01
    probs[:, 1] += rng.uniform(0, 0.001, len(labels))
    m = M.tagging_metrics(labels, probs, ["QCD", "Tbqq"])
    table = M.format_table(m)
    assert "inf" not in table and "nan" not in table
    bound = 1 / (1 - 0.05 ** (1 / 200))  # 67.3: what 0 of 200 allows at 95 % CL
    row = next(r for r in table.splitlines() if r.startswith("rejection.Tbqq.50 "))
    assert row.split(None, 1)[1] == "> 67 (95% CL), none of 200 bkg passed"
    assert 67 < bound < 68
    data = json.loads(M.write_metrics(m, tmp_path / "m.json").read_text())
    assert data["rejection"]["Tbqq"]["50"]["lower_bound"] == pytest.approx(bound)
    assert data["rejection"]["Tbqq"]["50"]["value"] is None
    # a measurable rejection: value with its asymmetric interval in the table's one line
    rec = M.rejection_record(8, 200, 0.5)
    line = M.format_table({"rejection": {"W": {"50": rec}}})
    lo, hi = rec["interval"]  # 16.91, 38.06: errors 13.06 and 8.09 (two digits in 8.1)
    assert line == "rejection.W.50  25.0 (+13.1/-8.1), 8 of 200 bkg passed"


@pytest.mark.parametrize(
    ("passing", "n", "cell"),
    [
        (1, 200, "200 (+960/-140), 1 of 200 bkg passed"),  # no 9.6e+02: rounded to the tens
        (8, 200, "25.0 (+13.1/-8.1), 8 of 200 bkg passed"),
        (50, 200, "4.00 (+0.58/-0.48), 50 of 200 bkg passed"),
        (2, 2000, "1000 (+1820/-570), 2 of 2000 bkg passed"),
        (3, 50000, "16700 (+19900/-8200), 3 of 50000 bkg passed"),
        (0, 200, "> 67 (95% CL), none of 200 bkg passed"),  # 67.26, rounded down
        (0, 20000, "> 6600 (95% CL), none of 20000 bkg passed"),  # 6676.7, rounded down
    ],
)
def test_rejection_cells_are_rounded_to_their_uncertainty(passing, n, cell):
    text = M.format_rejection(M.rejection_record(passing, n, 0.5))
    assert text == cell
    assert "e+" not in text and "e-" not in text


def test_round_with_errors():
    assert M.round_with_errors(200.0, [958.3, 139.0]) == ("200", ["960", "140"])
    assert M.round_with_errors(25.0, [13.06, 8.09]) == ("25.0", ["13.1", "8.1"])
    assert M.round_with_errors(0.01234, [0.00056, 0.0012]) == ("0.01234", ["0.00056", "0.00120"])
    assert M.round_with_errors(1234567.0, [2345.0]) == ("1234600", ["2300"])
    assert M.round_with_errors(3.14159, [0.0]) == ("3.14", ["0.00"])  # no error: 3 digits


def test_rejection_curve_band_contains_points():
    rng = np.random.default_rng(0)
    y = rng.random(2000) < 0.5
    score = rng.normal(size=2000) + 1.5 * y
    curve = M.rejection_curve(y, score)
    assert len(curve["rejection"]) > 10 and np.all(curve["rejection"] >= 1.0)
    assert np.all(curve["low"] <= curve["rejection"]) and np.all(
        curve["rejection"] <= curve["high"]
    )
    # the point values agree with the working-point numbers
    rec = M.rejection_with_uncertainty(y, score, (0.5,))[0.5]
    rej = M.rejection_at_efficiency(y, score, (0.5,))[0.5]
    assert rec["value"] == pytest.approx(rej)


def test_track_id_metrics_known_answers():
    labels = np.array([[0, 0, 0, 1, 1, 2, IGNORE_INDEX, IGNORE_INDEX]])
    preds = np.array([[0, 0, 1, 1, 1, 0, 5, 3]])
    m = M.track_id_metrics(labels, preds)
    assert m["n_tracks"] == 6
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert m["recall"] == pytest.approx({"primary": 2 / 3, "b": 1.0, "b->c": 0.0})
    assert m["confusion_matrix"][0][:3] == [2, 1, 0]


def test_ari_per_jet_equals_sklearn():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, (60, 12))
    pred = rng.integers(0, 4, (60, 12))
    valid = rng.random((60, 12)) < 0.7
    pred[:10] = truth[:10] * 5 + 2  # relabelled perfect partitions
    pred[10:20] = 0
    valid[20] = False
    valid[21, 1:] = False  # one track: undefined
    got = M.adjusted_rand_index_per_jet(truth, pred, valid)
    for j in range(60):
        if valid[j].sum() < 2:
            assert np.isnan(got[j])
        else:
            assert got[j] == pytest.approx(
                adjusted_rand_score(truth[j][valid[j]], pred[j][valid[j]])
            )
    assert np.all(got[:10][~np.isnan(got[:10])] == 1.0)


def test_vertexing_metrics_hand_made():
    I = IGNORE_INDEX  # noqa: E741
    #            primary ×3, b vertex ×3, neutral
    truth = np.array([[0, 0, 0, 1, 1, 1, I],
                      [0, 0, 0, 0, 0, 0, I]])  # fmt: skip
    origin = np.array([[0, 0, 0, 1, 1, 1, I],
                       [0, 0, 0, 0, 0, 0, I]])  # fmt: skip
    pred = np.array([[0, 0, 1, 1, 1, 2, -1],  # track 2 wrongly joins the b vertex; 5 alone
                     [3, 3, 3, 3, 3, 3, -1]])  # fmt: skip
    m = M.vertexing_metrics(truth, pred, origin)
    assert m["n_jets"] == 2
    assert m["perfect_fraction"] == 0.5
    expected = adjusted_rand_score([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 2])
    assert m["ari"] == pytest.approx((expected + 1.0) / 2)
    # b vertex {3,4,5} best matched by predicted {2,3,4}: 2 shared of 3 true, of 3 predicted
    assert m["n_b_vertices"] == 1
    assert m["b_vertex_efficiency"] == pytest.approx(2 / 3)
    assert m["b_vertex_purity"] == pytest.approx(2 / 3)
    assert m["by_flavour"]["b"]["n_jets"] == 1 and m["by_flavour"]["light"]["ari"] == 1.0
    # the one-vertex baseline: ARI 0 on the b jet, 1 on the all-prompt jet
    assert m["baseline_ari_one_vertex"] == pytest.approx(0.5)


def test_make_mixtures_fractions_and_disjointness():
    labels = np.repeat([0, 1, 2], [500, 400, 100])  # 0 background, 1 signal, 2 unused
    mix = make_mixtures(labels, signal=1, background=0, fractions=(0.7, 0.1), seed=3)
    assert len(np.unique(mix.indices)) == len(mix)  # each jet at most once
    assert set(labels[mix.indices]) <= {0, 1}
    f_lo = mix.is_signal[mix.mixture == 0].mean()
    f_hi = mix.is_signal[mix.mixture == 1].mean()
    assert f_lo == pytest.approx(0.1, abs=0.01) and f_hi == pytest.approx(0.7, abs=0.01)
    assert mix.fractions == pytest.approx((f_lo, f_hi))
    assert (mix.mixture == 0).sum() == (mix.mixture == 1).sum()
    # as large as the sample allows: 500 background bound m·(2 − 0.8) ≤ 500 → m = 416
    assert len(mix) == 2 * 416
    again = make_mixtures(labels, 1, 0, (0.1, 0.7), seed=3)
    assert np.array_equal(again.indices, mix.indices)
    with pytest.raises(JetFMError, match="different"):
        make_mixtures(labels, 1, 0, (0.3, 0.3))
    with pytest.raises(JetFMError, match="not enough"):
        make_mixtures(labels, 1, 5, (0.1, 0.7))


def test_write_metrics_strict_json(tmp_path):
    path = M.write_metrics(
        {"rejection": {"W": {"50": math.inf}}, "n": np.int64(3)}, tmp_path / "m.json"
    )
    data = json.loads(path.read_text())
    assert data == {"rejection": {"W": {"50": None}}, "n": 3}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temp file left
    assert "rejection.W.50" in M.format_table({"rejection": {"W": {"50": 2.0}}})


@pytest.mark.parametrize("style", ["CMS", "ATLAS"])
def test_plots_in_experiment_style(tmp_path, style):
    pytest.importorskip("mplhep")
    import matplotlib

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 300)
    probs = M.softmax(rng.normal(size=(300, 2)) + 2 * np.eye(2)[labels])
    plain = P.plot_rejection_curves(labels, probs, ["QCD", "Tbqq"], tmp_path / "plain.png")
    before = dict(matplotlib.rcParams)  # after the first plot has set the Agg backend
    roc = P.plot_rejection_curves(labels, probs, ["QCD", "Tbqq"], tmp_path / "roc.png", style=style)
    assert roc.read_bytes()[:4] == b"\x89PNG"
    # the experiment's figure size (mplhep's style sheet), not the default one
    assert _png_size(roc) != _png_size(plain)
    assert dict(matplotlib.rcParams) == before  # the style stays inside the figure


def _png_size(path) -> tuple[int, int]:
    head = path.read_bytes()[16:24]
    return int.from_bytes(head[:4], "big"), int.from_bytes(head[4:], "big")


def test_unknown_plot_style_is_a_clear_error(tmp_path):
    with pytest.raises(JetFMError, match="unknown plot style 'LHCb'"):
        P.plot_rejection_curves(np.array([0, 1]), np.eye(2), ["QCD", "W"], tmp_path / "r.png",
                                style="LHCb")  # fmt: skip
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("command", ["evaluate", "quickstart"])
def test_experiment_style_without_mplhep_fails_before_any_work(command, tmp_path, monkeypatch,
                                                               capsys):  # fmt: skip
    from jetfm.cli import main

    monkeypatch.setitem(sys.modules, "mplhep", None)  # import now raises ImportError
    args = {
        "evaluate": ["--model", str(tmp_path / "no-model"), "--data", str(tmp_path),
                     "--plots", str(tmp_path / "plots"), "--output", str(tmp_path / "m.json")],
        "quickstart": ["--output", str(tmp_path / "qs"), "--jets-per-class", "8"],
    }[command]  # fmt: skip
    assert main([command, *args, "--style", "ATLAS"]) == 2
    assert "plot style 'ATLAS' needs mplhep: pip install mplhep" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing read, nothing written


def _panels(fig) -> dict[str, object]:
    return {ax.get_title(): ax for ax in fig.axes if ax.get_visible() and ax.get_title()}


def test_rejection_plot_has_one_panel_per_signal_class():
    rng = np.random.default_rng(2)
    names = ["QCD", "Hbb", "Hcc", "Hgg", "Zqq", "Wqq", "Tbqq", "Tbl"]  # the quickstart's eight
    labels = np.repeat(np.arange(len(names)), 200)
    probs = M.softmax(rng.normal(size=(len(labels), len(names))) + 2.5 * np.eye(8)[labels])
    with P.rejection_figure(labels, probs, names) as fig:
        panels = _panels(fig)
        assert list(panels) == [f"{n} vs QCD" for n in names[1:]]  # seven panels, no QCD one
        for ax in panels.values():
            assert ax.get_yscale() == "log"
            assert len(ax.collections) == 1  # one band per panel, never another class's
            curve, bound = ax.get_lines()[:2]
            # the bound where no QCD jet passes: what 0 of 200 allows at 95 % CL, below the
            # rejection at the tightest cut that one passes (200)
            assert bound.get_ydata()[0] == pytest.approx(1 / (1 - 0.05 ** (1 / 200)))
            assert max(curve.get_ydata()) == pytest.approx(200)
        # one legend for the figure, in the spare slot of the 2 × 4 grid
        legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
        assert len(fig.axes) == 8 and len(legends) == 1
        entries = [t.get_text() for t in legends[0].get_texts()]
        assert len(entries) == 3 and "68 % CL" in entries[1] and "no QCD jet" in entries[2]
    # the legend gathers every panel's entries: here only Hcc's panel has the bound line
    few = np.r_[np.zeros(20), np.ones(20), np.full(20, 2)].astype(int)
    few_probs = M.softmax(rng.normal(size=(60, 3)) + 3 * np.eye(3)[few])
    few_probs[0] = [0.0, 1.0, 0.0]  # a QCD jet passes Hbb's tightest cut: no bound there
    with P.rejection_figure(few, few_probs, names[:3]) as fig:
        (legend,) = fig.legends  # no spare panel in a 1 × 2 grid: below the figure
        assert any("no QCD jet" in t.get_text() for t in legend.get_texts())
        hbb = _panels(fig)["Hbb vs QCD"]
        assert len(hbb.get_lines()) == 1  # the curve only
    # a class without jets in the test set gets no panel; two classes: a single panel
    keep = labels != names.index("Hgg")
    with P.rejection_figure(labels[keep], probs[keep], names) as fig:
        assert "Hgg vs QCD" not in _panels(fig) and len(_panels(fig)) == 6
    two = labels <= 1
    with P.rejection_figure(labels[two], probs[two][:, :2], names[:2]) as fig:
        assert list(_panels(fig)) == ["Hbb vs QCD"]
    # without the background class: one one-vs-rest ROC panel per class
    with P.rejection_figure(labels, probs, [f"c{i}" for i in range(8)]) as fig:
        assert list(_panels(fig)) == [f"c{i} vs rest" for i in range(8)]


def test_panel_grid():
    assert P.panel_grid(1) == (1, 1) and P.panel_grid(3) == (1, 3)
    assert P.panel_grid(7) == (2, 4) and P.panel_grid(5) == (2, 3) and P.panel_grid(9) == (3, 3)


def test_plots_are_written(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 200)
    probs = M.softmax(rng.normal(size=(200, 3)) + 2 * np.eye(3)[labels])
    names = ["QCD", "Wqq", "Tbqq"]
    files = [
        P.plot_rejection_curves(labels, probs, names, tmp_path / "roc.png"),
        P.plot_rejection_curves(labels, probs, ["a", "b", "c"], tmp_path / "roc_ovr.png"),
        P.plot_confusion_matrix(labels, probs.argmax(1), names, tmp_path / "cm.png"),
        P.plot_ari_histogram({"b": rng.random(50), "light": np.ones(20)}, tmp_path / "ari.png"),
    ]
    for f in files:
        assert f.read_bytes()[:4] == b"\x89PNG" and f.stat().st_size > 5000
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ari.png",
        "cm.png",
        "roc.png",
        "roc_ovr.png",
    ]
