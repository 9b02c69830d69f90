"""Run a fine-tuned model over jet files and write its predictions, file by file.

For every input file an output file of the same name and format is written to ``--out``
with the same entries in the same order (ROOT: a tree of the same name, a friend of the
input's; parquet: a file of the same rows; HDF5: one dataset per output, row ``i`` for jet
``i``): ``score_<label>`` per jet (jet tagging),
jagged ``part_prob_<origin>`` / ``part_pred_origin`` (track identification) or
``part_pred_vtx`` (vertex finding), aligned with the input particles in their original order
(NaN / −1 where a particle was not evaluated). Jets that cannot be evaluated (no
constituents, NaN inputs) get NaN scores at their entry and are counted.

Files are streamed in chunks, written under a temporary name and renamed when complete, so a
restarted run skips the files already done (``--overwrite`` redoes them).
"""

from __future__ import annotations

import argparse

from jetfm.commands import add_branch_map_argument

NAME = "predict"
HELP = "run a fine-tuned model over jet files; one prediction file per input, same entries"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from jetfm.option_checks import fraction, non_negative_int, positive_int

    parser.add_argument(
        "--model", required=True, help="fine-tuned model directory (or Hub name) with its processor"
    )
    parser.add_argument(
        "--data",
        required=True,
        nargs="+",
        help="ROOT, parquet or HDF5 files, globs or dirs, or data sets (top:test)",
    )
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument(
        "--batch-size", type=positive_int, default=256, help="jets per forward pass"
    )
    parser.add_argument(
        "--workers",
        type=non_negative_int,
        default=1,
        help="processes reading and computing features ahead of the model (0: none)",
    )
    parser.add_argument(
        "--onnx",
        action="store_true",
        help="run with ONNX Runtime (the model directory's model.onnx, else a fresh export)",
    )
    parser.add_argument(
        "--copy-branches",
        default="none",
        help="input branches to copy into the output: all, none or a comma-separated list",
    )
    parser.add_argument(
        "--max-particles",
        type=positive_int,
        default=None,
        help="leading particles evaluated per jet (default: the model processor's)",
    )
    parser.add_argument(
        "--chunk-size", type=positive_int, default=10_000, help="entries read at a time"
    )
    parser.add_argument("--device", default="auto", help="torch device (auto: CUDA if available)")
    parser.add_argument(
        "--no-bucket",
        action="store_true",
        help="pad every batch to max_particles instead of bucketing jets by particle count",
    )
    parser.add_argument(
        "--vertex-threshold",
        type=fraction,
        default=0.5,
        help="vertex finding: same-vertex probability above which two tracks are linked",
    )
    parser.add_argument("--overwrite", action="store_true", help="redo outputs that exist")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_branch_map_argument(parser)


def _copy_spec(text: str) -> str | list[str] | None:
    text = text.strip()
    if text in ("", "none"):
        return None
    if text == "all":
        return "all"
    return [b.strip() for b in text.split(",") if b.strip()]


def run(args: argparse.Namespace) -> int:
    from jetfm.commands import resolve_data_options
    from jetfm.data.layouts import mapping_from_option
    from jetfm.inference import predict_files

    resolve_data_options(args, "data")
    summary = predict_files(
        args.model,
        args.data,
        args.out,
        batch_size=args.batch_size,
        workers=args.workers,
        onnx=args.onnx,
        copy_branches=_copy_spec(args.copy_branches),
        max_particles=args.max_particles,
        step_size=args.chunk_size,
        device=args.device,
        bucket=not args.no_bucket,
        vertex_threshold=args.vertex_threshold,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        mapping=mapping_from_option(args.branch_map),
    )
    skipped = summary["skipped_empty"] + summary["skipped_nonfinite"]
    print(
        f"predicted {summary['files']} files ({summary['files_skipped']} already done), "
        f"{summary['jets']} jets ({skipped} not evaluable: {summary['skipped_empty']} empty, "
        f"{summary['skipped_nonfinite']} NaN/inf) in {summary['wall_s']:.1f} s "
        f"({summary['jets_per_s']:.0f} jets/s) → {args.out}"
    )
    return 0
