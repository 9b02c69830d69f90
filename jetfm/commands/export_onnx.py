"""Export a fine-tuned head to ONNX with dynamic batch and particle-count axes.

Inputs: the feature groups the head was fine-tuned on (kinematics, pid, tracks; normalised
with the checkpoint's processor) and a boolean mask; output: logits. The task, input groups
and class names are stored in the graph's metadata. Needs jetfm[onnx].
"""

from __future__ import annotations

import argparse

NAME = "export-onnx"
HELP = "export a fine-tuned model to ONNX (needs jetfm[onnx])"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from jetfm.option_checks import positive_int

    parser.add_argument("model", help="fine-tuned checkpoint directory")
    parser.add_argument("output", help="output .onnx file")
    parser.add_argument("--opset", type=positive_int, default=17, help="ONNX opset version")
    parser.add_argument(
        "--no-check",
        action="store_true",
        help="skip comparing onnxruntime with torch on a test batch",
    )


def run(args: argparse.Namespace) -> int:
    from jetfm.onnx_export import export_onnx, verify_onnx

    path = export_onnx(args.model, args.output, opset=args.opset)
    print(f"wrote {path}")
    if not args.no_check:
        diff = verify_onnx(args.model, path)
        print(f"onnxruntime matches torch (max |Δlogit| = {diff:.2e})")
    return 0
