"""Pythia 8 jet generation for one class: seeded, batched, vectorised.

:class:`JetGenerator` owns one ``pythia8mc.Pythia`` instance. Events come in batches from
``Pythia.nextBatch`` (the whole event record as one awkward array, filled in C++) and every
batch is analysed with numpy/awkward/FastJet in a handful of array operations
(:mod:`jetfm.generation.analysis`), so Python costs nothing per particle.

Reproducibility: the Pythia seed and the numpy generators (beam spot, impact-parameter
smearing, detector simulation) are all derived from ``(seed, class, chunk)`` with
:class:`numpy.random.SeedSequence`; the same triple (and the same options) always gives the
same jets, and a detector-level run sees the same Pythia events as a particle-level one.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator

import awkward as ak
import numpy as np

from jetfm.errors import JetFMError
from jetfm.generation.analysis import analyse
from jetfm.generation.detector import DetectorSettings, get_detector
from jetfm.generation.processes import (
    DEFAULT_SELECTION,
    DEFAULT_TUNE,
    SUPPORTED_CLASSES,
    JetSelection,
    get_process,
    pythia_settings,
)
from jetfm.generation.record import ParticleTable, from_batch

_PYTHIA_SEED_MAX = 900_000_000  # Pythia's Random:seed range is 1 … 900 000 000
_MIN_BATCH, _MAX_BATCH = 10, 200
_GIVE_UP_EVENTS = 5000  # a class that yields no jet at all in this many events is broken


def derive_seeds(seed: int, jet_class: str, chunk: int = 0) -> tuple[int, np.random.SeedSequence]:
    """The Pythia seed and numpy seed sequence of one ``(seed, class, chunk)``."""
    cls_index = SUPPORTED_CLASSES.index(jet_class)
    seq = np.random.SeedSequence([int(seed), cls_index, int(chunk)])
    pythia_seed = int(seq.generate_state(1, np.uint32)[0]) % _PYTHIA_SEED_MAX + 1
    return pythia_seed, seq.spawn(1)[0]


@contextlib.contextmanager
def _quiet_stdout():
    """Silence C++ output on fd 1 (FastJet's banner, Pythia's init lines)."""
    try:
        fd = os.dup(1)
    except OSError:  # no real stdout (e.g. some notebook kernels)
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(fd, 1)
        os.close(fd)


class JetGenerator:
    """Generates truth-matched jets of one class.

    Args:
        jet_class: a name from :data:`~jetfm.generation.processes.SUPPORTED_CLASSES`.
        seed: user seed; with ``chunk`` it fixes the Pythia and smearing seeds.
        chunk: index of the independent stream (one per output file).
        labels: label branches to write (default: every supported class).
        selection: jet radius and pT/η window.
        tune: Pythia ``Tune:pp`` number.
        detector: a detector name (``"cms"``, …) or settings; ``None``/``"none"`` for
            particle level.
    """

    def __init__(
        self,
        jet_class: str,
        seed: int,
        chunk: int = 0,
        labels: tuple[str, ...] = SUPPORTED_CLASSES,
        *,
        selection: JetSelection = DEFAULT_SELECTION,
        tune: int = DEFAULT_TUNE,
        detector: str | DetectorSettings | None = None,
    ) -> None:
        import pythia8mc

        self.spec = get_process(jet_class)
        self.labels = tuple(labels)
        self.selection = selection
        self.detector = (
            detector if isinstance(detector, DetectorSettings) else get_detector(detector)
        )
        pythia_seed, seq = derive_seeds(seed, jet_class, chunk)
        # beam spot, impact parameters, detector particles, detector cells (spawn(4) starts
        # with the same two streams as spawn(2): particle-level output does not change)
        self.rngs = tuple(np.random.default_rng(s) for s in seq.spawn(4))
        self.pythia = pythia8mc.Pythia("", False)
        for line in pythia_settings(self.spec, pythia_seed, selection=selection, tune=tune):
            if not self.pythia.readString(line):
                raise JetFMError(f"Pythia rejected the setting {line!r} ({jet_class})")
        with _quiet_stdout():
            ok = self.pythia.init()
        if not ok:
            raise JetFMError(f"Pythia failed to initialise for class {jet_class}")
        self.table = ParticleTable(self.pythia.particleData)
        self.n_events = 0  # generated so far (including those without a selected jet)
        self.n_jets = 0  # selected before any truncation to the requested count
        self._efficiency = 0.5  # jets per event, updated as we go

    def _batch_size(self, wanted: int) -> int:
        n = math.ceil(1.2 * wanted / max(self._efficiency, 0.02))
        return int(np.clip(n, _MIN_BATCH, _MAX_BATCH))

    def batches(self, n_jets: int | None = None) -> Iterator[dict]:
        """Columns of successive batches of jets; stops after ``n_jets`` (exact) if given."""
        done = 0
        while n_jets is None or done < n_jets:
            want = _MAX_BATCH if n_jets is None else n_jets - done
            # only the first batch can print (FastJet's banner, once per process)
            with _quiet_stdout() if self.n_events == 0 else contextlib.nullcontext():
                raw = self.pythia.nextBatch(self._batch_size(want), "skip")
                cols = analyse(from_batch(raw), self.spec, self.table, self.rngs, self.labels,
                               self.selection, self.detector)  # fmt: skip
            n = len(cols["jet_pt"])
            self.n_events += len(raw)
            self.n_jets += n
            self._efficiency = max(self.n_jets / max(self.n_events, 1), 0.01)
            if self.n_jets == 0 and self.n_events >= _GIVE_UP_EVENTS:
                raise JetFMError(
                    f"no {self.spec.name} jet passed the selection in {self.n_events} events"
                )
            if n_jets is not None and done + n > n_jets:
                cols = {k: v[: n_jets - done] for k, v in cols.items()}
                n = n_jets - done
            done += n
            if n:
                yield cols

    def generate(self, n_jets: int) -> ak.Array:
        """Exactly ``n_jets`` jets as one awkward record array (fields = branch names)."""
        return concatenate(list(self.batches(n_jets)), self.labels)


def concatenate(batches: list[dict], labels: tuple[str, ...] = SUPPORTED_CLASSES) -> ak.Array:
    """Join column batches into one awkward record array (one record per jet)."""
    from jetfm.generation.analysis import empty_columns

    if not batches:
        batches = [empty_columns(labels)]
    cols = {k: ak.concatenate([b[k] for b in batches]) for k in batches[0]}
    return ak.zip(cols, depth_limit=1)


def generate_jets(
    jet_class: str,
    n_jets: int,
    seed: int,
    *,
    chunk: int = 0,
    selection: JetSelection = DEFAULT_SELECTION,
    tune: int = DEFAULT_TUNE,
    detector: str | DetectorSettings | None = None,
) -> ak.Array:
    """Generate ``n_jets`` truth-matched jets of one class.

    Returns an awkward array of records whose fields are the JetClass branch names
    (``part_*`` jagged, ``jet_*``, ``label_*``, ``aux_*``). ``generate_jets(c, n, s)``
    equals the first ``n`` jets of chunk 0 of :func:`~jetfm.generation.generate_dataset`
    with the same seed and options. ``detector`` (``"cms"``, ``"atlas"``, …) gives
    detector-level jets; the default is particle level.
    """
    from jetfm.generation import require_extra

    require_extra()
    gen = JetGenerator(jet_class, seed, chunk, selection=selection, tune=tune, detector=detector)
    return gen.generate(n_jets)
