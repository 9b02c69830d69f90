"""The README figure: soft-drop mass by class and track |d0| by truth origin, from a folder of
`jetfm generate` files (here the study's test set: `jetfm generate --classes
QCD,Hbb,Hcc,Hgg,Zqq,Wqq,Tbqq,Tbl --jets-per-class 500 --chunk-size 1500 --seed 203`).

    python studies/plot_generated_jets.py DATA_DIR docs/figures/jets.png
"""

import sys
from pathlib import Path

import awkward as ak
import matplotlib
import numpy as np
import uproot

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DATA = Path(sys.argv[1])
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
bins = np.linspace(0, 250, 51)
for f in sorted(DATA.glob("*.root")):
    cls = f.stem.split("_")[0]
    t = uproot.open(f)["tree"]
    a = t.arrays(["jet_sdmass", "part_d0val", "part_origin"], library="np")
    axes[0].hist(a["jet_sdmass"], bins=bins, histtype="step", density=True, label=cls, lw=1.4)
d0 = {0: [], 1: []}
for f in sorted(DATA.glob("H[bc]*.root")) + sorted(DATA.glob("QCD*.root")):
    a = uproot.open(f)["tree"].arrays(["part_d0val", "part_origin"])
    d = ak.to_numpy(ak.flatten(a.part_d0val))
    o = ak.to_numpy(ak.flatten(a.part_origin))
    for k, sel in ((0, o == 0), (1, (o == 1) | (o == 2))):
        d0[k].append(np.abs(d[sel]))
b2 = np.logspace(-4, 1, 51)
for k, lab in ((0, "primary tracks"), (1, "tracks from b-hadron decays")):
    x = np.clip(np.concatenate(d0[k]), 1.01e-4, 9.9)
    axes[1].hist(
        x, bins=b2, histtype="step", weights=np.full(len(x), 1 / len(x)), lw=1.6, label=lab
    )
axes[0].set(
    xlabel="soft-drop mass [GeV]",
    ylabel="jets (normalised)",
    title="Generated jets by class (jetfm generate)",
)
axes[0].legend(fontsize=8, ncol=2)
axes[1].set(
    xscale="log",
    xlabel="|d0| [mm]",
    ylabel="fraction of tracks per bin",
    title="Track impact parameter (truth origin)",
)
axes[1].legend(fontsize=8)
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)
