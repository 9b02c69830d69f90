"""Shared test set-up: offline Hub, few threads, and the fixture modules of each area."""

from __future__ import annotations

import os

# Never let huggingface_hub retry a network that is not there (it waits ~30 s otherwise).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402

# Tests are tiny; more threads than cores only adds contention on the 2-core CI machine.
torch.set_num_threads(1)

pytest_plugins = [
    "tests.fixtures_data",  # synthetic JetClass-layout ROOT files (fast, no Pythia)
    "tests.fixtures_pythia",  # real Pythia 8 jets, generated once per session
    "tests.fixtures_formats",  # the same jets as TTree, RNTuple, parquet and HDF5
    "tests.fixtures_layouts",  # the same jets in every named layout of the public data sets
]
