"""Export a fine-tuned model to ONNX and run it with ONNX Runtime.

What it shows: :func:`jetfm.onnx_export.export_onnx` (dynamic batch and particle axes, the
task and class names in the graph metadata), :func:`jetfm.onnx_export.verify_onnx` (ONNX
Runtime vs torch on a test batch) and running the export over ROOT files with
:func:`jetfm.inference.predict` (``onnx=``) next to the torch model.

Needs ``jetfm[onnx]``. Input: a fine-tuned checkpoint folder (e.g. from
``jetfm quickstart``: ``jetfm-quickstart/model``) and labelled or unlabelled files::

    python examples/export_onnx.py jetfm-quickstart/model --data 'jetfm-quickstart/data/test/*.root'
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="fine-tuned checkpoint folder")
    parser.add_argument("--data", required=True, help="ROOT files to run on")
    parser.add_argument("--output", default=None, help=".onnx file (default: MODEL/model.onnx)")
    args = parser.parse_args(argv)

    import numpy as np

    from jetfm.inference import predict
    from jetfm.onnx_export import export_onnx, verify_onnx

    path = Path(args.output or Path(args.model) / "model.onnx")
    export_onnx(args.model, path)
    diff = verify_onnx(args.model, path)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB); max |Δlogit| vs torch {diff:.1e}")

    with_torch = predict(args.model, args.data)
    with_onnx = predict(args.model, args.data, onnx=path)
    worst = 0.0
    for field in with_torch.fields:
        a = np.asarray(with_torch[field], dtype=float) if with_torch[field].ndim == 1 else None
        if a is not None:
            worst = max(worst, float(np.nanmax(np.abs(a - np.asarray(with_onnx[field], float)))))
    print(f"{len(with_onnx)} jets, outputs {with_onnx.fields}; max |Δ| torch vs ONNX {worst:.1e}")
    return {"onnx": path, "max_diff": worst, "n_jets": len(with_onnx)}


if __name__ == "__main__":
    main()
