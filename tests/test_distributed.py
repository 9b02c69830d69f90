"""Two-process DDP pre-training on CPU (gloo) through the real Trainer path."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from jetfm.modeling.pretraining import JetFMForMaskedParticleModeling

ROOT = Path(__file__).resolve().parents[1]
STEPS = 6
BATCH = 8


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_see_disjoint_jets_and_end_identical(jetclass_files, tmp_path):
    data = str(Path(jetclass_files[0]).parent / "*.root")
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
    }
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        str(ROOT / "tests" / "_ddp_worker.py"), data, str(tmp_path), str(STEPS),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    seen = [json.loads((tmp_path / f"seen_rank{r}.json").read_text()) for r in range(2)]
    ids = [{tuple(j) for j in s["seen"]} for s in seen]
    for s, jets in zip(seen, ids, strict=True):
        assert s["steps"] == STEPS
        assert len(s["seen"]) == STEPS * BATCH == len(jets)  # no jet twice within a rank
    assert not ids[0] & ids[1], "the two ranks trained on overlapping jets"

    w0, w1 = (load_file(tmp_path / f"weights_rank{r}.safetensors") for r in range(2))
    assert w0.keys() == w1.keys()
    for key in w0:
        torch.testing.assert_close(w0[key], w1[key], rtol=0, atol=0, msg=key)
    # The final checkpoint (written by rank 0 only) holds those same weights.
    model = JetFMForMaskedParticleModeling.from_pretrained(tmp_path / "checkpoint")
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, w0[key], rtol=0, atol=0, msg=key)
    assert (tmp_path / "checkpoint" / "preprocessor_config.json").exists()
