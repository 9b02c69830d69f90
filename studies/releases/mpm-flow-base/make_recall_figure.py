"""per_class_recall.png of the shipped mpm-flow-base: recall per class at 1,000 labels (3 seeds,
LR 2e-3) for this release, the previous one and scratch, drawn by the study's own plot code
from the committed rows.

    python studies/releases/mpm-flow-base/make_recall_figure.py OUT.png
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # studies/, for the study module
sys.path.insert(0, str(HERE))

from make_metrics import pick, recall  # noqa: E402
from study_label_efficiency import per_class_recall, plot_recall, summarise  # noqa: E402


def main(out: Path) -> None:
    """Draw the figure from the 1k-label, LR 2e-3 tagging rows of each model."""
    models = {  # label in the figure: its rows
        "mpm-flow-base (group dropout 0.25)": pick(
            "results_session27.jsonl",
            study="main",
            model="g25",
            task="tagging",
            labels=1000,
            lr=0.002,
        ),
        "previous release (no group dropout)": pick(
            "results_session24_embedding.jsonl", model="emb", task="tagging"
        ),
        "scratch": pick("results_session24_perclass.jsonl", model="scratch", task="tagging"),
    }
    results = {
        f"{name}:{row['seed']}": {**row, "model": name, "recall": recall(row)}
        for name, rows in models.items()
        for row in rows
    }
    plot_recall(per_class_recall(results, summarise(results)), out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: python {sys.argv[0]} OUT.png")
    main(Path(sys.argv[1]))
