"""metrics.json of mpm-truth-det-base, from the committed rows of the domain-shifted test bed
(``studies/results/foundation``) and of the generated 8-class test bed
(``studies/results/foundation/elsewhere``, beside the rows behind ``mpm-flow-base``'s card):
every value, the baselines' included, is read from a row and chosen by the test bed's own
code (recipe on validation), none is typed in.

    python studies/releases/mpm-truth-det-base/make_metrics.py OUT.json
"""

import importlib.util
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
RESULTS = REPO / "studies" / "results" / "foundation"
#: the checkpoint's name in the rows
CHECKPOINT = "truth2"
TASKS = {
    "top": "top vs QCD (anti-kT R = 0.8, pT 550-650 GeV)",
    "qg": "quark vs gluon (anti-kT R = 0.4, pT 500-550 GeV)",
}
#: the label counts of the card's rows, as its task names write them
LABELS = {1000: "1k", 100: "100"}
TEST_BED = ("jets of the domain-shifted test bed (ATLAS-like detector card, Pythia tune 21, "
            "generator seeds never used in pre-training), four-vectors only")  # fmt: skip


def load_driver():
    path = REPO / "studies" / "foundation" / "run_testbed.py"
    spec = importlib.util.spec_from_file_location("run_testbed", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ms(cell: dict) -> str:
    return f"{cell['mean']:.3f} ± {cell['std']:.3f}"


def seeds(cell: dict) -> str:
    return ", ".join(f"{v:.3f}" for _, v in sorted(cell["seeds"].items()))


def recipe(cell: dict) -> str:
    """The recipe validation chose and the grid it chose from, e.g. ``frozen encoder, LR
    0.002, chosen on validation among full: LR 0.0005, 0.002; frozen: LR 0.0005, 0.002``."""
    grid: dict[str, list[str]] = {}
    for key in cell.get("lr_scan", {}):
        lr, _, mode = key.partition(" ")
        if key == "probe":  # the LR-free logistic-regression probe (finetune --mode probe)
            grid["probe"] = []
        else:
            grid.setdefault(mode or "full", []).append(lr)
    among = "; ".join(f"{mode}: LR {', '.join(lrs)}" if lrs else mode
                      for mode, lrs in grid.items())  # fmt: skip
    if cell.get("mode") == "probe":
        return ("logistic-regression probe on the frozen backbone (finetune --mode probe), "
                f"chosen on validation among {among}")  # fmt: skip
    chosen = {"frozen": "frozen encoder", "linear": "linear head on the frozen encoder"}.get(
        cell.get("mode", "full"), "full fine-tuning"
    )
    return f"{chosen} at LR {cell['lr']:g}, chosen on validation among {among}"


def ahead(ours: dict, base: dict) -> str:
    common = sorted(set(ours["seeds"]) & set(base["seeds"]))
    d = [ours["seeds"][s] - base["seeds"][s] for s in common]
    n = sum(x > 0 for x in d)
    where = "on every seed" if n == len(d) else f"on {n} of {len(d)} seeds"
    return f"ahead {where} ({', '.join(f'{x:+.3f}' for x in d)})"


def read_rows(path: Path) -> list[dict]:
    """The JSON lines of a rows file (probe rows have no run key, so not the study's
    ``load_results``)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def probe_rows() -> list[dict]:
    return read_rows(RESULTS / "probe.jsonl")


def build_results() -> list[dict]:
    driver = load_driver()
    study = driver.load_study()
    probes = probe_rows()
    res = []
    for labels in (1000, 100):
        for task, title in TASKS.items():
            rows = list(study.load_results(RESULTS / task / "results.jsonl").values())
            table = driver.task_table(study, rows)
            pre, scr, bdt = (table[m][str(labels)] for m in (CHECKPOINT, "scratch", "bdt"))
            base = table.get("base", {}).get(str(labels))
            n_test = next(r["n_jets"] for r in rows if r["model"] == CHECKPOINT)
            gain = 100 * (pre["mean"] - scr["mean"])
            res.append({
                "task": f"jet tagging, {title}, {LABELS[labels]} labelled jets, recipe chosen "
                        "on validation",
                "dataset": f"{n_test:,} {TEST_BED}",
                "metric": "accuracy",
                "value": round(pre["mean"], 4),
                "notes": f"pre-trained, mean of {pre['n']} seeds ({seeds(pre)}), {recipe(pre)}; "
                         f"scratch (same architecture; {recipe(scr)}) "
                         f"{ms(scr)} ({seeds(scr)}): {gain:+.1f} points, {ahead(pre, scr)}; "
                         + (f"mpm-flow-base ({recipe(base)}) {ms(base)}; " if base else "")
                         + f"gradient-boosted trees on 8 jet observables {ms(bdt)}",
            })  # fmt: skip
    for task, title in TASKS.items():
        (zero,) = [r for r in probes if (r["task"], r["model"], r["kind"])
                   == (task, CHECKPOINT, "zero-shot")]  # fmt: skip
        res.append({
            "task": f"jet tagging, {title}, zero-shot from the pre-training class head (no labels)",
            "dataset": TEST_BED,
            "metric": "accuracy",
            "value": round(zero["accuracy"], 4),
            "notes": f"AUC {zero['auc']:.3f}; the score is the head's probability of "
                     + ("Tbqq against the three QCD classes" if task == "top"
                        else "QCD_gluon against QCD_light + QCD_heavy")
                     + "; only the threshold is set on the validation set",
        })  # fmt: skip
    return res


#: the generated test bed (particle level, 8 classes, seeds 201 / 202 / 203, all feature
#: groups), mpm-flow-base's card protocol: 1,000 labels, LR 2e-3, 250 steps, 3 evaluations
ELSEWHERE = RESULTS / "elsewhere" / "results.jsonl"
ELSEWHERE_DATA = "4,000 held-out Pythia jets (particle level, generator seeds 201 / 202 / 203), "
#: the rows behind mpm-flow-base's card on the same jets with the same recipe (LR 2e-3):
#: {task: {model: [(rows file in studies/results, model name there)]}}
CARD_ROWS = {
    "tagging": {"mpm-flow-base": [("results_session27.jsonl", "g25")],
                "scratch": [("results_lr_grid.jsonl", "scratch")]},
    "track-id": {"mpm-flow-base": [("results_session27.jsonl", "g25")],
                 "scratch": [("results_session20.jsonl", "scratch")]},
    "vertexing": {"mpm-flow-base": [("results_session27.jsonl", "g25")],
                  "scratch": [("results_session20.jsonl", "scratch"),
                              ("results_session24_vertex.jsonl", "scratch")]},
}  # fmt: skip
ELSEWHERE_TASKS = {
    "tagging": ("jet tagging, 8 classes, full fine-tuning, 1k labelled jets",
                "8 classes", "accuracy"),
    "track-id": ("track origin (primary, b-hadron, b→c, c-hadron, τ), full fine-tuning of a "
                 "new random head, 1k labelled jets", "tracks", "balanced accuracy"),
    "vertexing": ("secondary-vertex finding, full fine-tuning, 1k labelled jets", "tracks",
                  "adjusted Rand index"),
}  # fmt: skip
METRIC_KEY = {"tagging": "accuracy", "track-id": "balanced_accuracy", "vertexing": "ari"}


def seed_metric(rows: list[dict], model: str, task: str) -> dict[int, float]:
    """``{seed: metric}`` of one model's 1k-label, LR-2e-3 rows of a task."""
    return {r["seed"]: r[METRIC_KEY[task]] for r in rows
            if (r.get("study"), r.get("model"), r.get("task"), r.get("labels"), r.get("lr"))
            == ("main", model, task, 1000, 0.002) and METRIC_KEY[task] in r}  # fmt: skip


def stats(study, values: dict[int, float]) -> dict:
    """The study's :func:`metric_stats` of ``{seed: value}``, with the seeds kept."""
    seeds_sorted = dict(sorted(values.items()))
    return study.metric_stats(list(seeds_sorted.values())) | {"seeds": seeds_sorted}


def elsewhere_results() -> list[dict]:
    """The checkpoint on the generated 8-class test bed, beside mpm-flow-base and scratch."""
    if not ELSEWHERE.is_file():
        return []
    study = load_driver().load_study()
    ours = read_rows(ELSEWHERE)
    res = []
    for task, (title, what, metric) in ELSEWHERE_TASKS.items():
        mine = seed_metric(ours, "truth", task)
        if not mine:
            continue
        cells = {}
        for model, sources in CARD_ROWS[task].items():
            values = {}
            for name, in_file in sources:
                values.update(seed_metric(read_rows(REPO / "studies" / "results" / name),
                                          in_file, task))  # fmt: skip
            cells[model] = stats(study, values)
        fresh = seed_metric(ours, "scratch", task)
        pre, base, scr = stats(study, mine), cells["mpm-flow-base"], cells["scratch"]
        note = (f"pre-trained, mean of {pre['n']} seed{'s' * (pre['n'] > 1)} ({seeds(pre)}) "
                f"at LR 2e-3 (mpm-flow-base's recipe); mpm-flow-base {ms(base)} ({seeds(base)}): "
                f"{ahead(pre, base).replace('ahead', 'ahead of it')}; scratch {ms(scr)} "
                f"({seeds(scr)}): {ahead(pre, scr)}")  # fmt: skip
        if fresh:
            runs = ", ".join(f"seed {k}: {v:.3f}" for k, v in sorted(fresh.items()))
            note += f"; scratch with this checkpoint's normalisation, same code and recipe: {runs}"
        res.append({"task": title, "dataset": ELSEWHERE_DATA + what, "metric": metric,
                    "value": round(pre["mean"], 4), "notes": note})  # fmt: skip
    return res


#: the 8-class domain-shifted test bed: the top test bed's card, tune, radius and pT window,
#: every class, generator seeds 9101 / 9102 / 9103 (train / validation / test)
EIGHT = RESULTS / "eight" / "results.jsonl"


def eight_class_results() -> list[dict]:
    """The checkpoint on the 8-class domain-shifted test bed, beside scratch and the trees."""
    if not EIGHT.is_file():
        return []
    driver = load_driver()
    study = driver.load_study()
    rows = list(study.load_results(EIGHT).values())
    table = driver.task_table(study, rows)
    n_test = next(r["n_jets"] for r in rows if r["model"] == CHECKPOINT)
    grid = {1000: "the recipe grid ran on every seed",
            100: "the recipe grid ran on seed 0, seeds 1 and 2 at the recipe chosen there"}  # fmt: skip
    res = []
    for labels in (1000, 100):
        pre, scr, bdt = (table[m].get(str(labels)) for m in (CHECKPOINT, "scratch", "bdt"))
        if pre is None or scr is None or bdt is None:
            continue
        gain = 100 * (pre["mean"] - scr["mean"])
        res.append({
            "task": f"jet tagging, 8 classes (anti-kT R = 0.8, pT 550-650 GeV), {LABELS[labels]} "
                    "labelled jets, recipe chosen on validation",
            "dataset": f"{n_test:,} {TEST_BED}",
            "metric": "accuracy",
            "value": round(pre["mean"], 4),
            "notes": f"pre-trained, mean of {pre['n']} seeds ({seeds(pre)}), {recipe(pre)}; "
                     f"scratch (same architecture; {recipe(scr)}) {ms(scr)} ({seeds(scr)}): "
                     f"{gain:+.1f} points, {ahead(pre, scr)}; gradient-boosted trees on 8 jet "
                     f"observables {ms(bdt)}; {grid[labels]}",
        })  # fmt: skip
    return res


#: track origin, 1,000 labels, 250 steps of 100 jets, 3 evaluations, LR 5e-4 or 2e-3:
#: ``warmhead`` (the head starts from the checkpoint's pre-trained origin head, the default),
#: ``newhead`` (the same checkpoint, a random head), scratch
TRACK_ORIGIN = RESULTS / "trackid"
#: the released checkpoint's name in the tracking rows of the domain-shifted bed
CHECKPOINT_TRACKS = "truth"
TRACK_BEDS = {
    "shifted": "4,000 " + TEST_BED.replace(", four-vectors only", "") + ", 8 classes, every "
               "feature group",
    "generated": ELSEWHERE_DATA.removesuffix(", "),
}  # fmt: skip
#: rows of the generated bed behind the other cards: {model: [(file in studies/results, name)]}
TRACK_EARLIER = {"newhead": [("foundation/elsewhere/results.jsonl", "truth")],
                 "scratch": [("results_session20.jsonl", "scratch")]}  # fmt: skip


def chosen_cell(study, rows: list[dict], metric: str) -> dict:
    """The study's own choice of LR on validation (``select_lr``: the validation mean over
    the seeds every LR ran), with ``seeds`` (the chosen LR's test values by seed) and
    ``grid`` (the LRs it chose among)."""
    cell = study.select_lr(rows, metric)
    values = {r["seed"]: r[metric] for r in rows if r["lr"] == cell["lr"]}
    return cell | {"seeds": dict(sorted(values.items())), "grid": sorted({r["lr"] for r in rows})}


def track_origin_results() -> list[dict]:
    """Track origin from the pre-trained origin head, beside a random head and scratch, and
    the head alone before any fine-tuning step."""
    if not TRACK_ORIGIN.is_dir():
        return []
    study = load_driver().load_study()
    zero = {r["data"].split("/")[-2]: r for r in read_rows(TRACK_ORIGIN / "zero_shot.jsonl")}
    res = []
    for bed, dataset in TRACK_BEDS.items():
        if not (TRACK_ORIGIN / bed / "results.jsonl").is_file():
            continue
        rows = read_rows(TRACK_ORIGIN / bed / "results.jsonl")
        if bed == "generated":
            for model, sources in TRACK_EARLIER.items():
                for name, in_file in sources:
                    rows += [r | {"model": model} for r in read_rows(REPO / "studies" / "results" / name)
                             if (r.get("study"), r.get("model"), r.get("task"), r.get("labels"))
                             == ("main", in_file, "track-id", 1000) and r.get("lr")]  # fmt: skip
        pre, new, scr = (chosen_cell(study, [r for r in rows if r["model"] == m],
                                     "balanced_accuracy") for m in ("warmhead", "newhead", "scratch"))  # fmt: skip
        tracks = sum(
            map(sum, next(r for r in rows if r["model"] == "warmhead")["confusion_matrix"])
        )
        dataset = f"{dataset}: {tracks:,} tracks"
        grid = ", ".join(f"{lr:g}" for lr in pre["grid"])
        res.append({
            "task": "track origin (primary, b-hadron, b→c, c-hadron, τ), 1k labelled jets, full "
                    "fine-tuning from the pre-trained track-origin head, LR chosen on validation",
            "dataset": dataset,
            "metric": "balanced accuracy",
            "value": round(pre["mean"], 4),
            "notes": f"pre-trained, mean of {pre['n']} seeds ({seeds(pre)}) at LR {pre['lr']:g} "
                     f"(chosen among {grid}); the same checkpoint with a new random head "
                     f"{ms(new)} (LR {new['lr']:g}): {ahead(pre, new).replace('ahead', 'ahead of it')}; "
                     f"scratch {ms(scr)} (LR {scr['lr']:g}): {ahead(pre, scr)}",
        })  # fmt: skip
        z = zero.get({"shifted": "testbed8", "generated": "gen8"}[bed])
        if z:
            rec = ", ".join(f"{k} {v:.2f}" for k, v in z["recall"].items() if k != "other")
            res.append({
                "task": "track origin, zero-shot from the pre-trained track-origin head (no labels)",
                "dataset": dataset,
                "metric": "balanced accuracy",
                "value": round(z["balanced_accuracy"], 4),
                "notes": f"recall per origin: {rec}; a random head is at chance (0.2)",
            })  # fmt: skip
    return res


#: vertex finding on the domain-shifted 8-class jets, the recipe of the track-origin rows
VERTEXING = RESULTS / "vertexing" / "results.jsonl"


def vertexing_results() -> list[dict]:
    """Vertex finding on the domain-shifted 8-class jets, beside scratch."""
    if not VERTEXING.is_file():
        return []
    study = load_driver().load_study()
    rows = read_rows(VERTEXING)
    pre, scr = (chosen_cell(study, [r for r in rows if r["model"] == m], "ari")
                for m in (CHECKPOINT_TRACKS, "scratch"))  # fmt: skip
    grid = ", ".join(f"{lr:g}" for lr in pre["grid"])
    return [{
        "task": "secondary-vertex finding, 1k labelled jets, full fine-tuning, LR chosen on "
                "validation",
        "dataset": TRACK_BEDS["shifted"],
        "metric": "adjusted Rand index",
        "value": round(pre["mean"], 4),
        "notes": f"pre-trained, mean of {pre['n']} seeds ({seeds(pre)}) at LR {pre['lr']:g} "
                 f"(chosen among {grid}); scratch {ms(scr)} (LR {scr['lr']:g}): {ahead(pre, scr)}",
    }]  # fmt: skip


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python make_metrics.py OUT.json")
    out = {"results": build_results() + eight_class_results() + track_origin_results()
           + vertexing_results() + elsewhere_results()}  # fmt: skip
    Path(sys.argv[1]).write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
