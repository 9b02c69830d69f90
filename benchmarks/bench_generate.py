"""Jets/s of the vectorised Pythia generator vs a naive per-particle Python loop, and
particle vs detector level.

Both comparisons run in this process on one core, from the same Pythia settings and
seed, so the ratios are fair per-core numbers.

* ``--mode naive`` (default): the naive reference is the textbook approach:
  ``pythia.next()`` per event, a Python loop over ``pythia.event`` particles, classic
  FastJet ``PseudoJet`` clustering, and per-jet / per-constituent Python loops for truth
  matching, soft drop (declustering), N-subjettiness, track origin (mother walk), vertex
  grouping and impact parameters — the same outputs as the package's generator.
* ``--mode detector``: the generator at particle level (the baseline) against the same
  generator with ``--detector`` simulations (default ``cms,atlas``), interleaved round by
  round; jets/s are per CPU second of this process (``time.process_time``), so a busy
  neighbour does not slow one variant more than another.
* ``--mode pthat``: the Pythia hard-process cut at the containment pT (``0.9 · max(pT_min,
  m/R)``, the generator's rule) against the plain ``0.9 · pT_min`` (the baseline), at
  R = 0.4 and 300–1,200 GeV by default, where a top only fits the jet above ~430 GeV;
  interleaved, per CPU second.

    python benchmarks/bench_generate.py --jets 300 --naive-jets 60 --out bench_generate.json
    python benchmarks/bench_generate.py --mode detector --jets 300 --rounds 2 --out det.json
    python benchmarks/bench_generate.py --mode pthat --classes Hbb,Tbqq --jets 100 --out pthat.json
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import math
import platform
import time

import numpy as np
from benchutil import write_json_atomic


def _naive_softdrop(jet, fastjet) -> float:
    """Soft drop (β = 0, z_cut = 0.1) by declustering a C/A reclustering in Python."""
    cs = fastjet.ClusterSequence(
        list(jet.constituents()), fastjet.JetDefinition(fastjet.cambridge_algorithm, 2.0)
    )
    j = cs.exclusive_jets(1)[0]
    p1, p2 = fastjet.PseudoJet(), fastjet.PseudoJet()
    while j.has_parents(p1, p2):
        if min(p1.pt(), p2.pt()) / (p1.pt() + p2.pt()) > 0.1:
            break
        j = p1 if p1.pt() > p2.pt() else p2
        p1, p2 = fastjet.PseudoJet(), fastjet.PseudoJet()
    return j.m()


def _naive_taus(jet, fastjet) -> list[float]:
    """τ1..τ3 (β = 1, normalised) with exclusive-kT axes, summed in Python."""
    cons = list(jet.constituents())
    cs = fastjet.ClusterSequence(cons, fastjet.JetDefinition(fastjet.kt_algorithm, 2.0))
    norm = sum(c.pt() for c in cons) * 0.8
    out = []
    for n in (1, 2, 3):
        axes = cs.exclusive_jets(min(n, len(cons)))
        out.append(sum(c.pt() * min(c.delta_R(a) for a in axes) for c in cons) / norm)
    return out


def naive_jets(jet_class: str, n_jets: int, seed: int) -> tuple[int, float]:
    """Naive reference with the same outputs: returns (jets produced, seconds)."""
    import fastjet
    import pythia8mc

    from jetfm.generation import processes, tracks
    from jetfm.generation.pythia import derive_seeds
    from jetfm.generation.truth import heavy_flavour

    spec = processes.get_process(jet_class)
    pythia_seed, _ = derive_seeds(seed, jet_class)
    pythia = pythia8mc.Pythia("", False)
    for line in processes.pythia_settings(spec, pythia_seed):
        pythia.readString(line)
    pythia.init()
    pd = pythia.particleData
    jetdef = fastjet.JetDefinition(fastjet.antikt_algorithm, processes.JET_R)
    rng = np.random.default_rng(seed)

    def is_b(pid: int) -> bool:
        return bool(heavy_flavour(np.array([pid]))[0][0])

    produced, start = 0, time.perf_counter()
    while produced < n_jets:
        if not pythia.next():
            continue
        ev = pythia.event
        parts = [ev[i] for i in range(ev.size())]
        bx, by = rng.normal(0.0, tracks.BEAM_SPOT_XY_MM, 2)
        inputs = []
        for i, p in enumerate(parts):
            if p.isFinal() and p.idAbs() not in (12, 14, 16) and p.pT() > 1e-3:
                pj = fastjet.PseudoJet(p.px(), p.py(), p.pz(), p.e())
                pj.set_user_index(i)
                inputs.append(pj)
        targets = []  # truth objects: resonance + decay products, or hard partons
        for p in parts:
            if spec.resonance == 0:
                if p.statusAbs() == 23 and (p.idAbs() <= 5 or p.idAbs() == 21):
                    targets.append([p])
            elif p.idAbs() == spec.resonance and parts[p.daughter1()].idAbs() != spec.resonance:
                targets.append([p, parts[p.daughter1()], parts[p.daughter2()]])
        cs = fastjet.ClusterSequence(inputs, jetdef)
        for jet in cs.inclusive_jets(processes.JET_PT_MIN):
            if not (jet.pt() < processes.JET_PT_MAX and abs(jet.eta()) < 2):
                continue
            if not any(
                all(jet.delta_R(fastjet.PseudoJet(t.px(), t.py(), t.pz(), t.e())) < 0.8
                    for t in objs)
                for objs in targets
            ):  # fmt: skip
                continue
            sdmass, taus = _naive_softdrop(jet, fastjet), _naive_taus(jet, fastjet)
            cons = sorted(jet.constituents(), key=lambda c: -c.pt())[: processes.MAX_PARTICLES]
            rows, vertices = [], {}
            for c in cons:
                p = parts[c.user_index()]
                charge = pd.charge(p.id())
                origin = vtx = -1
                d0 = dz = d0e = dze = 0.0
                if charge != 0:
                    anc, any_b, cur = -1, False, c.user_index()
                    while parts[cur].statusAbs() >= 71:
                        m = parts[cur].mother1()
                        any_b |= is_b(parts[m].id())
                        if anc < 0 and parts[m].status() < 0 and pd.tau0(parts[m].id()) > 1e-3:
                            anc = m
                        cur = m
                    if anc < 0:
                        origin = vtx = 0
                    else:
                        a = parts[anc].idAbs()
                        hb, hc = (bool(x[0]) for x in heavy_flavour(np.array([a])))
                        origin = (
                            1 if hb else (2 if hc and any_b else 3 if hc else 4 if a == 15 else 5)
                        )
                        vtx = vertices.setdefault(anc, len(vertices) + 1)
                    pt = p.pT()
                    d0 = ((p.yProd() + by) * p.px() - (p.xProd() + bx) * p.py()) / pt
                    dz = p.zProd() - (p.xProd() * p.px() + p.yProd() * p.py()) * p.pz() / pt**2
                    d0e = math.hypot(tracks.D0_RES_MM[0], tracks.D0_RES_MM[1] / pt)
                    dze = math.hypot(tracks.DZ_RES_MM[0], tracks.DZ_RES_MM[1] / pt)
                    d0 += d0e * rng.standard_normal()
                    dz += dze * rng.standard_normal()
                aid = p.idAbs()
                rows.append(
                    (p.px(), p.py(), p.pz(), p.e(), p.eta() - jet.eta(),
                     math.remainder(p.phi() - jet.phi(), 2 * math.pi), charge, aid == 11,
                     aid == 13, aid == 22, charge != 0 and aid not in (11, 13),
                     charge == 0 and aid != 22, d0, d0e, dz, dze, origin, vtx)
                )  # fmt: skip
            _ = (sdmass, taus, np.array(rows, np.float32))
            produced += 1
            if produced >= n_jets:
                break
    return produced, time.perf_counter() - start


def fast_jets(
    jet_class: str,
    n_jets: int,
    seed: int,
    detector: str | None = None,
    clock=time.perf_counter,
    constituents: list | None = None,
    selection=None,
) -> tuple[int, float, int]:
    """The package's generator: returns (jets, seconds, events). ``constituents``, if
    given, receives the mean constituent count; ``selection`` is a ``JetSelection``
    (default: the generator's)."""
    from jetfm.generation.processes import DEFAULT_SELECTION
    from jetfm.generation.pythia import JetGenerator

    gen = JetGenerator(jet_class, seed, detector=detector, selection=selection or DEFAULT_SELECTION)
    start = clock()
    n, n_const = 0, 0
    for b in gen.batches(n_jets):
        n += len(b["jet_pt"])
        n_const += int(np.sum(b["jet_nparticles"]))
    elapsed = clock() - start
    if constituents is not None:
        constituents.append(n_const / max(n, 1))
    return n, elapsed, gen.n_events


def available() -> str | None:
    """``None`` when the generator's dependencies are installed, else what is missing."""
    missing = [m for m in ("pythia8mc", "fastjet") if importlib.util.find_spec(m) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (pip install 'jetfm[generate]')"
    return None


def measure(
    classes: tuple[str, ...] | list[str] | None = None,
    n_fast: int = 300,
    n_naive: int = 60,
    *,
    seed: int = 1,
    rounds: int = 1,
    verbose: bool = True,
    progress: bool = False,
) -> dict:
    """Jets/s per class of the vectorised generator and of the naive reference.

    For each class the two alternate for ``rounds`` rounds (each from the same seed, so
    every round does the same work); the best round of each is kept. Pythia's
    initialisation is outside the timing of both.

    Args:
        classes: jet classes (default: every supported class).
        n_fast / n_naive: jets per round of the vectorised generator / naive reference.
        seed: generator seed.
        rounds: timed rounds per class.
        verbose: print one line per class.
        progress: show a progress bar over the classes.

    Returns:
        ``{"rows": [{"class", "fast_jets_per_s", "naive_jets_per_s", "speedup",
        "jets_per_event", "fast_jets", "naive_jets"}], "fast_jets_per_s_all", "machine",
        "python"}``.
    """
    from tqdm.auto import tqdm

    from jetfm.generation import SUPPORTED_CLASSES

    classes = tuple(classes or SUPPORTED_CLASSES)
    rows = []
    if verbose:
        print(
            f"{'class':6s} {'fast j/s':>9s} {'naive j/s':>10s} {'speed-up':>9s} {'jets/event':>11s}"
        )
    for cls in tqdm(classes, desc="generate", disable=not progress):
        fast = naive = 0.0
        for _ in range(rounds):  # interleaved: fast, naive, fast, naive, ...
            got_fast, t_fast, n_ev = fast_jets(cls, n_fast, seed)
            got_naive, t_naive = naive_jets(cls, n_naive, seed)
            fast, naive = max(fast, got_fast / t_fast), max(naive, got_naive / t_naive)
        rows.append(
            {"class": cls, "fast_jets_per_s": round(fast, 2), "naive_jets_per_s": round(naive, 2),
             "speedup": round(fast / naive, 3), "jets_per_event": round(got_fast / n_ev, 3),
             "fast_jets": got_fast, "naive_jets": got_naive}
        )  # fmt: skip
        if verbose:
            print(
                f"{cls:6s} {fast:9.1f} {naive:10.1f} {fast / naive:8.2f}x {got_fast / n_ev:11.2f}"
            )
    total_fast = sum(r["fast_jets"] for r in rows) / sum(
        r["fast_jets"] / r["fast_jets_per_s"] for r in rows
    )
    if verbose:
        print(f"all classes, vectorised: {total_fast:.1f} jets/s on one core")
    return {
        "rows": rows,
        "fast_jets_per_s_all": round(total_fast, 2),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }


def measure_detector(
    classes: tuple[str, ...] | list[str] | None = None,
    n_jets: int = 300,
    detectors: tuple[str, ...] | list[str] = ("cms", "atlas"),
    *,
    seed: int = 1,
    rounds: int = 1,
    verbose: bool = True,
) -> dict:
    """Jets per CPU second of the generator at particle level and at detector level.

    For each class the levels alternate (particle, cms, atlas, particle, …) for ``rounds``
    rounds from the same seed (the same Pythia events); the best round of each is kept.

    Returns:
        ``{"rows": [{"class", "particle_jets_per_s", "<det>_jets_per_s",
        "<det>_vs_particle", "particle_constituents", "<det>_constituents"}],
        "all": {level: jets/s over all classes}, "machine", "python"}``.
    """
    from jetfm.generation import SUPPORTED_CLASSES

    classes = tuple(classes or SUPPORTED_CLASSES)
    levels = ("particle", *detectors)
    rows, totals = [], {lvl: [0, 0.0] for lvl in levels}
    if verbose:
        print(f"{'class':6s} " + " ".join(f"{lvl + ' j/s':>13s}" for lvl in levels)
              + " " + " ".join(f"{d + '/particle':>15s}" for d in detectors))  # fmt: skip
    for cls in classes:
        best: dict[str, tuple[int, float]] = {}  # level → (jets, CPU seconds) of its best round
        const: dict[str, list] = {lvl: [] for lvl in levels}
        for _ in range(rounds):
            for lvl in levels:
                det = None if lvl == "particle" else lvl
                n, t, _events = fast_jets(cls, n_jets, seed, det, time.process_time, const[lvl])
                if lvl not in best or n / t > best[lvl][0] / best[lvl][1]:
                    best[lvl] = (n, t)
        for lvl, (n, t) in best.items():
            totals[lvl][0] += n
            totals[lvl][1] += t
        best = {lvl: n / t for lvl, (n, t) in best.items()}
        row = {"class": cls}
        for lvl in levels:
            row[f"{lvl}_jets_per_s"] = round(best[lvl], 2)
            row[f"{lvl}_constituents"] = round(const[lvl][-1], 1)
        for d in detectors:
            row[f"{d}_vs_particle"] = round(best[d] / best["particle"], 3)
        rows.append(row)
        if verbose:
            print(f"{cls:6s} " + " ".join(f"{best[lvl]:13.1f}" for lvl in levels) + " "
                  + " ".join(f"{best[d] / best['particle']:14.2f}x" for d in detectors))  # fmt: skip
    overall = {lvl: round(n / t, 2) for lvl, (n, t) in totals.items()}
    if verbose:
        print("all classes, jets per CPU second: "
              + ", ".join(f"{lvl} {v:.1f}" for lvl, v in overall.items()))  # fmt: skip
    return {
        "rows": rows,
        "all": overall,
        "clock": "process_time",
        "machine": platform.machine(),
        "python": platform.python_version(),
    }


@contextlib.contextmanager
def _plain_pthat_cut():
    """Pythia's pT̂ cut at ``0.9 · pT_min`` for every class (the rule before the
    containment floor), while the block runs."""
    from jetfm.generation import processes

    rule = processes.pthat_min
    processes.pthat_min = lambda spec, selection: processes.PTHAT_FRACTION * selection.pt_min
    try:
        yield
    finally:
        processes.pthat_min = rule


def measure_pthat(
    classes: tuple[str, ...] | list[str] = ("Wqq", "Hbb", "Tbqq"),
    n_jets: int = 100,
    *,
    radius: float = 0.4,
    pt_window: tuple[float, float] = (300.0, 1200.0),
    detector: str | None = "cms",
    seed: int = 1,
    rounds: int = 1,
    verbose: bool = True,
) -> dict:
    """Jets per CPU second with the containment pT̂ cut against the plain one.

    For each class the two rules alternate (plain, containment, …) for ``rounds`` rounds;
    the best round of each is kept. Pythia's initialisation is outside the timing.

    Returns:
        ``{"rows": [{"class", "pthat_plain", "pthat_containment", "plain_jets_per_s",
        "containment_jets_per_s", "speedup"}], "radius", "pt_window", "detector", ...}``.
    """
    from jetfm.generation import processes

    selection = processes.JetSelection(radius=radius, pt_min=pt_window[0], pt_max=pt_window[1])
    rows = []
    if verbose:
        print(f"{'class':6s} {'plain j/s':>10s} {'m/R cut j/s':>12s} {'speed-up':>9s}")
    for cls in classes:
        spec = processes.get_process(cls)
        best = {"plain": 0.0, "containment": 0.0}
        for _ in range(rounds):
            for rule in best:
                ctx = _plain_pthat_cut() if rule == "plain" else contextlib.nullcontext()
                with ctx:
                    n, t, _ = fast_jets(cls, n_jets, seed, detector, time.process_time,
                                        selection=selection)  # fmt: skip
                best[rule] = max(best[rule], n / t)
        rows.append(
            {"class": cls, "pthat_plain": processes.PTHAT_FRACTION * selection.pt_min,
             "pthat_containment": round(processes.pthat_min(spec, selection), 2),
             "plain_jets_per_s": round(best["plain"], 2),
             "containment_jets_per_s": round(best["containment"], 2),
             "speedup": round(best["containment"] / best["plain"], 3)}
        )  # fmt: skip
        if verbose:
            r = rows[-1]
            print(f"{cls:6s} {r['plain_jets_per_s']:10.1f} {r['containment_jets_per_s']:12.1f} "
                  f"{r['speedup']:8.2f}x")  # fmt: skip
    return {
        "rows": rows,
        "radius": radius,
        "pt_window": list(pt_window),
        "detector": detector,
        "clock": "process_time",
        "machine": platform.machine(),
        "python": platform.python_version(),
    }


def main() -> None:
    from jetfm.generation import SUPPORTED_CLASSES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("naive", "detector", "pthat"), default="naive")
    ap.add_argument("--classes", default=",".join(SUPPORTED_CLASSES))
    ap.add_argument("--jets", type=int, default=300, help="jets per class (vectorised)")
    ap.add_argument("--naive-jets", type=int, default=60, help="jets per class (naive)")
    ap.add_argument("--detectors", default="cms,atlas", help="detectors of --mode detector")
    ap.add_argument("--rounds", type=int, default=1, help="alternating rounds (best kept)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()
    missing = available()
    if missing:
        ap.exit(1, f"bench_generate: {missing}\n")
    if args.mode == "pthat":
        results = measure_pthat(
            args.classes.split(","), args.jets, seed=args.seed, rounds=args.rounds
        )
    elif args.mode == "detector":
        results = measure_detector(
            args.classes.split(","), args.jets, args.detectors.split(","),
            seed=args.seed, rounds=args.rounds,
        )  # fmt: skip
    else:
        results = measure(
            args.classes.split(","), args.jets, args.naive_jets, seed=args.seed,
            rounds=args.rounds,
        )  # fmt: skip
    if args.out:
        write_json_atomic(args.out, results)


if __name__ == "__main__":
    main()
