"""Redraw ``docs/figures/label_efficiency.png``: tagging accuracy vs labelled jets for the
fixed-recipe checkpoints, scratch and the BDT, from the raw study rows in
``studies/results/`` (several study runs, hence this merge; run from the repo root),
and ``docs/figures/lr_scan.png``: accuracy at 1,000 labels vs fine-tuning LR
(``results_lr_grid.jsonl``, the rows of the session-17/18 LR scans in the ``--lrs`` format),
and ``docs/figures/label_efficiency_tuned.png``: accuracy vs labelled jets with the LR tuned
(1,000 labels: chosen on validation from the grid; 10,000 labels: the 1k choice, 2e-3),
the figure the model cards carry.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
#: study model name -> legend name (rows of other models are left out)
NAMES = {
    "v4": "flow, 3,000 steps",
    "vqbig": "mpm-vq-base (360k jets)",
    "flowbig": "flow, 360k jets",
    "diffbig": "diffusion, 360k jets, 2,400 steps",
    "diff7k": "session-19 release (7,200 steps)",
    "g25": "mpm-flow-base (19,400 steps, group dropout)",
    "emb": "session-25 release (19,400 steps)",
    "vq2": "vqvae, 30k jets",
    "flow3": "flow, 30k jets (mpm-flow-base until session 19)",
    "scratch": "scratch",
    "bdt": "bdt",
}
#: newest first: the first row of a key wins
FILES = (
    "results_session17.jsonl",
    "results_big_data.jsonl",
    "results_fixed_recipe_2.jsonl",
    "results_fixed_recipe.jsonl",
    "results_diagnostics.jsonl",
    "results.jsonl",
)
#: rows at 10,000 labels run at the 1k grid's choice of LR (``TUNED_LR``)
TUNED_10K_FILES = (
    "results_session18.jsonl",
    "results_session19.jsonl",
    "results_session20.jsonl",
    "results_session25_release.jsonl",
    "results_session27.jsonl",
)
TUNED_LR = 2e-3
#: rows of later LR grids at 1,000 labels (the ``--lrs`` format), added to the scan and to the
#: tuned figure
GRID_FILES = (
    "results_session24_embedding.jsonl",
    "results_session25_release.jsonl",
    "results_session27.jsonl",
)


def load_study_module():
    spec = importlib.util.spec_from_file_location("study", ROOT / "study_label_efficiency.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["study"] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    study = load_study_module()
    rows: dict[str, dict] = {}
    for name in FILES:
        for line in (RESULTS / name).read_text().splitlines():
            row = json.loads(line)
            if row["task"] != "tagging" or row["model"] not in NAMES:
                continue
            if row["study"] not in ("main", "bdt"):
                continue
            if name == "results.jsonl" and row["model"] != "bdt":
                continue  # the first recipe's scratch used LayerScale 1e-3
            row = {**row, "model": NAMES[row["model"]]}
            rows.setdefault(f"{row['study']}:{row['model']}:{row['labels']}:{row['seed']}", row)
    summary = study.summarise(rows)
    print(study.markdown_table(summary))
    figures = ROOT.parent / "docs" / "figures"
    study.plot(summary, figures / "label_efficiency.png")

    grid = study.load_results(RESULTS / "results_lr_grid.jsonl")
    for name in GRID_FILES:
        grid |= {key: row for key, row in study.load_results(RESULTS / name).items()
                 if (row["study"], row["task"], row["labels"]) == ("main", "tagging", 1000)
                 and row["model"] in NAMES and row.get("lr") is not None}  # fmt: skip
    grid = {key: {**row, "model": NAMES[row["model"]]} for key, row in grid.items()}
    grid_summary = study.summarise(grid)
    print(study.markdown_table(grid_summary))
    study.plot_lr_scan(grid_summary, figures / "lr_scan.png")

    tuned = dict(grid)
    for name in TUNED_10K_FILES:
        for key, row in study.load_results(RESULTS / name).items():
            if (row["study"], row["task"], row["labels"]) == ("main", "tagging", 10000) and (
                row["model"] in NAMES and row.get("lr") == TUNED_LR
            ):
                tuned[key] = {**row, "model": NAMES[row["model"]]}
    tuned |= {key: row for key, row in rows.items() if row["study"] == "bdt"}
    tuned_summary = study.summarise(tuned)
    print(study.markdown_table(tuned_summary))
    study.plot(tuned_summary, figures / "label_efficiency_tuned.png")


if __name__ == "__main__":
    main()
