"""The efficacy–locality frontier of the calibration sweep (issue 8): results/frontier.png.

Reads the tables of results/calibration.md (rows written by results/sweep.py) and plots Eff and
Gen against Specificity, one marker per warm-up regime. Usage: python results/frontier.py
"""

import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

here = Path(__file__).resolve().parent
text = (here / "calibration.md").read_text()
session2 = text.split("## Gemma-3-270M")[0]  # SmolLM2 rows only
rows = re.findall(r"^\| `(\{.*?\})`[^|]*\| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", session2, re.M)
pre = dict(
    zip(
        ("eff", "gen", "spe"),
        map(float, re.search(r"Pre-edit: Eff ([\d.]+), Gen ([\d.]+), Spe ([\d.]+)", text).groups()),
    )
)
fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
for setting, eff, gen, spe in rows:
    cfg = json.loads(setting.replace(", ...,", ","))  # "[14, ..., 25]" is shorthand in the table
    warm = cfg.get("warmup", 2000)
    style = {
        0: ("o", "tab:red", "no warm-up"),
        1000: ("s", "tab:orange", "warm-up 1,000"),
        2000: ("^", "tab:blue", "warm-up 2,000"),
        4000: ("D", "tab:purple", "warm-up 4,000"),
    }[warm]
    default = cfg == {"lr": 2.5e-4}
    for ax, y in zip(axes, (eff, gen)):
        ax.scatter(
            float(spe),
            float(y),
            marker=style[0],
            color=style[1],
            label=style[2],
            s=120 if default else 40,
            edgecolors="black" if default else "none",
        )
for ax, name, key, peer in zip(axes, ("Efficacy", "Generalization"), ("eff", "gen"), (68.6, 56.7)):
    ax.axvline(pre["spe"], color="grey", ls=":", lw=1)
    ax.scatter([21.5], [peer], marker="*", s=160, color="black", label="official ULTRAEDIT")
    ax.set(
        xlabel="Specificity (pre-edit: dotted)", ylabel=f"{name} %", title=f"{name} vs Specificity"
    )
handles, labels = axes[0].get_legend_handles_labels()
uniq = dict(zip(labels, handles))
axes[0].legend(uniq.values(), uniq.keys(), fontsize=8)
fig.suptitle("SmolLM2-135M, 300 zsre-calib edits: calibration sweep (large marker: the default)")
fig.tight_layout()
fig.savefig(here / "frontier.png", dpi=110)
print(f"{len(rows)} settings plotted to {here / 'frontier.png'}")
