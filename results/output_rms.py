"""Why Gemma-3-270M needs a 25x smaller lr than SmolLM2 (results/calibration.md).

LN fixes the size of the targets V = -lr |k_hat|^2 g_hat, so lr is in units of the edited layer's
output. This prints the RMS of each preset layer's output at the answer positions of 20 ZsRE
calibration prompts. Usage: python results/output_rms.py
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from capture import tokenize  # noqa: E402
from data import load  # noqa: E402
from lab.models import load_model  # noqa: E402
from lab.presets import preset_layers  # noqa: E402


def output_rms(model, layers, batch):
    """{layer: RMS of its output over the batch's answer positions}, by forward hooks."""
    mask = batch["labels"] != -100  # (B, T)
    named, rms = dict(model.named_modules()), {}

    def hook(layer):
        def fn(mod, inp, out):
            rms[layer] = out[mask].pow(2).mean().sqrt().item()

        return fn

    handles = [named[n].register_forward_hook(hook(n)) for n in layers]
    with torch.no_grad():
        model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    for h in handles:
        h.remove()
    return rms


def main():
    reqs = load("zsre-calib", 20)
    for name in ("smollm2-135m", "gemma3-270m"):
        model, tok, preset = load_model(name)
        batch = tokenize(tok, [r.prompt for r in reqs], [r.target for r in reqs])
        rms = output_rms(model, preset_layers(preset, "zsre"), batch)
        print(
            f"{name} (lr {preset['lr']:g}): output RMS "
            + ", ".join(f"{n.split('.')[2]}: {v:.3f}" for n, v in rms.items())
        )


if __name__ == "__main__":
    main()
