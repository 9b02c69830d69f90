"""Real Pythia 8 jets, generated once per test session (skipped without jetfm[generate]).

``pythia_dir``: a directory written by :func:`jetfm.generation.generate_dataset` with
:data:`PYTHIA_JETS_PER_CLASS` jets of each class in :data:`PYTHIA_CLASSES` — one file per
class (``QCD_000.root``, ``Hbb_000.root``, …) in the JetClass layout, plus
``manifest.json``. Every file carries the same ``label_*`` branches (all classes the
generator supports), so the files can be mixed freely.

``pythia_arrays``: the same jets read back with uproot, ``{class: awkward array}``.
"""

from __future__ import annotations

import pytest

PYTHIA_CLASSES = ("QCD", "Tbqq", "Wqq", "Zqq", "Hbb", "Hcc")
PYTHIA_JETS_PER_CLASS = 200
PYTHIA_SEED = 1234


@pytest.fixture(scope="session")
def pythia_dir(tmp_path_factory):
    """Directory with one Pythia-generated ROOT file per class (≈15 s on 2 cores)."""
    pytest.importorskip("pythia8mc")
    pytest.importorskip("fastjet")
    from jetfm.generation import generate_dataset

    out = tmp_path_factory.mktemp("pythia")
    generate_dataset(
        PYTHIA_CLASSES,
        PYTHIA_JETS_PER_CLASS,
        out,
        seed=PYTHIA_SEED,
        workers=2,
        chunk_size=PYTHIA_JETS_PER_CLASS,
        progress=False,
    )
    return out


@pytest.fixture(scope="session")
def pythia_arrays(pythia_dir):
    """``{class: awkward array of all branches}`` of the files in ``pythia_dir``."""
    import uproot

    out = {}
    for name in PYTHIA_CLASSES:
        with uproot.open(pythia_dir / f"{name}_000.root") as f:
            out[name] = f["tree"].arrays()
    return out
