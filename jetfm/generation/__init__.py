"""Labelled jet samples from Pythia 8 + FastJet, in the JetClass ROOT layout.

Needs the optional extra ``jetfm[generate]`` (``pythia8mc``, ``fastjet``)::

    from jetfm.generation import generate_jets, generate_dataset

    jets = generate_jets("Hbb", 1000, seed=1)          # awkward records, JetClass fields
    jets = generate_jets("Hbb", 1000, seed=1, detector="cms")   # detector level
    generate_dataset(["QCD", "Hbb"], 10_000, "data/", seed=1, workers=4)

Modules: :mod:`~.processes` (Pythia settings per class, jet selection, tune),
:mod:`~.record` (event record → numpy), :mod:`~.objects` (what jets are clustered from),
:mod:`~.detector` (fast detector simulation: tracks, calorimeter cells, energy flow),
:mod:`~.jets` (FastJet clustering, soft drop, N-subjettiness), :mod:`~.truth` (matching,
track origin, vertices), :mod:`~.tracks` (impact parameters and their resolution model),
:mod:`~.analysis` (one batch → columns), :mod:`~.pythia` (the generator), :mod:`~.writer`
(ROOT files, manifest) and :mod:`~.dataset` (chunks, workers, resume).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jetfm.errors import MissingExtraError
from jetfm.generation.processes import SUPPORTED_CLASSES

if TYPE_CHECKING:  # pragma: no cover
    from jetfm.generation.dataset import generate_dataset
    from jetfm.generation.pythia import JetGenerator, generate_jets


def require_extra(what: str = "jetfm generate") -> None:
    """Raise :class:`~jetfm.errors.MissingExtraError` unless pythia8mc and fastjet import."""
    try:
        import fastjet  # noqa: F401
        import pythia8mc  # noqa: F401
    except ImportError:
        raise MissingExtraError("generate", what) from None


_LAZY = {
    "generate_jets": "jetfm.generation.pythia",
    "JetGenerator": "jetfm.generation.pythia",
    "generate_dataset": "jetfm.generation.dataset",
}


def __getattr__(name: str) -> Any:
    # Heavy modules (fastjet, pythia8mc) load only when the API is used, and a missing
    # extra gives the pip hint instead of a bare ImportError.
    if name in _LAZY:
        require_extra(f"jetfm.generation.{name}")
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "SUPPORTED_CLASSES",
    "JetGenerator",
    "generate_dataset",
    "generate_jets",
    "require_extra",
]
