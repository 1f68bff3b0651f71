"""The spectra of Sigma_g on the real small models: what results/width.py stretches to the paper's widths.

For each model, the default run's statistics at its first edit step (a 2,000-edit statistics-only warm-up
on the synthetic stream, 100 per step, the preset's layers), and for each edited layer the eigenvalues of
E[Sigma_g] (niw.py) divided by the largest, at 129 quantiles, with the condition number.

    python results/spectra.py                    # SmolLM2-135M and Gemma-3-270M, ~5 min; writes spectra.json
"""

import json
import sys
from pathlib import Path

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from data import load  # noqa: E402
from editor import Editor  # noqa: E402
from lab.models import load_model  # noqa: E402
from lab.presets import preset_layers  # noqa: E402

QUANTILES = 129


def spectra(name, n_warm=2000):
    model, tok, preset = load_model(name)
    ed = Editor(
        model, tok, preset_layers(preset, "synthetic"), lr=preset["lr"], alpha=preset["alpha"]
    )
    warm = load("synthetic", n_warm)
    for i in tqdm(range(0, n_warm, 100), desc=f"{name} warm-up", unit="step"):
        ed.edit(warm[i : i + 100], apply=False)
    out = {}
    for n, (_, sg) in ed.stats.items():
        lam = torch.linalg.eigvalsh(sg.covariance).clamp_min(0)  # ascending
        q = torch.linspace(0, 1, QUANTILES, dtype=torch.float64)
        idx = (q * (len(lam) - 1)).round().long()
        out[n] = {
            "d": len(lam),
            "rows": sg.n,
            "cond": (lam[-1] / lam[0]).item(),
            "relative": (lam[idx] / lam[-1]).tolist(),
        }
    return out


def main():
    res = {name: spectra(name) for name in ("smollm2-135m", "gemma3-270m")}
    path = Path(__file__).with_name("spectra.json")
    path.write_text(json.dumps(res, indent=1))
    for name, layers in res.items():
        conds = [v["cond"] for v in layers.values()]
        print(f"{name}: {len(layers)} layers, cond(Sigma_g) {min(conds):.3g}-{max(conds):.3g}")


if __name__ == "__main__":
    main()
