"""The whole models of results/width.py, edited step by step with Editor.edit: validate checks the
projection (width_plan.project) against the whole SmolLM2-135M on this CPU, full_run measures a paper
model whole in bf16 on a GPU (`--full`).

    python results/width.py                          # validate: results/width.json's "validation"
    python results/width.py --device cuda --full     # full_run: results/width_gpu.json
"""

import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from data import load  # noqa: E402
from editor import Editor  # noqa: E402
from lab.models import load_model, random_model  # noqa: E402
from lab.presets import PRESETS, preset_layers  # noqa: E402
from width_measure import EDITS, checkpoint, clock, measure_cut  # noqa: E402
from width_plan import project  # noqa: E402
from width_sigma import covariance, seed_statistics, spectrum  # noqa: E402

BOTH = [("stableedit", "stableedit", "auto"), ("ultraedit", "ultraedit", "auto")]


def measured_per_edit(model, tok, preset, layers, requests, Sigma, steps):
    """{method: seconds per edit of the live editor}: the fastest step after the first."""
    measured = {}
    for method in ("stableedit", "ultraedit"):
        ed = Editor(model, tok, layers, method=method, lr=preset["lr"], alpha=preset["alpha"])
        seed_statistics(ed, ed.capture(ed._batch(requests))[1], Sigma)
        walls = []
        for _ in range(steps):
            t0 = time.perf_counter()
            ed.edit(requests)
            walls.append(time.perf_counter() - t0)
        measured[method] = min(walls[1:]) / EDITS
    return measured


def validate(tok, reps, steps=5, depth=6):
    """The projection against the whole SmolLM2-135M: its preset layers, 100 synthetic edits per step,
    Sigma_g seeded with its own measured spectrum (no stretch); seconds per edit, both methods: the
    fastest step after the first, as every timing of the cut is the fastest of its repeats (interference
    only slows). Its blocks take ~0.1 s, so the
    cut keeps `depth` of them."""
    model, tok, preset = load_model("smollm2-135m")
    layers = preset_layers(preset, "zsre")
    requests = load("synthetic", EDITS)  # the cut's batch, every step: same tokens, same cost
    Sigma = covariance(spectrum(model.config.hidden_size), seed=2)
    measured = measured_per_edit(model, tok, preset, layers, requests, Sigma, steps)
    cfg = type(model.config)(**model.config.to_dict())
    m = measure_cut("smollm2-135m", cfg, tok, "cpu", torch.float32, BOTH, steps, reps, depth)
    p = project(m, cfg, layers, write_bps=1e12)
    # the live editor has no run_stream drift per step: compare like with like
    proj = {k: p[k]["s_per_edit"] - m[k]["drift"] * len(layers) / EDITS for k in measured}
    return {
        "measured_s_per_edit": measured,
        "projected_s_per_edit": proj,
        "reps": reps,
        "cut": {k: m[k] for k in ("depth", "fb1", "fbD", "f1", "fD", "f", "b")},
        "forward_backward_s": p["forward_backward_s"],
        "method_s_per_step": {k: p[k]["method_s_per_step"] for k in measured},
        "projected_over_measured": {k: proj[k] / measured[k] for k in measured},
    }


def full_method(ed, requests, Sigma, steps, device):
    """One method on the whole model: a statistics-only step, Sigma_g seeded, steps + 1 timed steps."""
    ed.edit(requests[:EDITS], apply=False)  # Algorithm 1's warm-up, statistics only
    seed_statistics(ed, ed.capture(ed._batch(requests[:EDITS]))[1], Sigma)
    walls, secs = [], []
    for i in range(EDITS, (steps + 2) * EDITS, EDITS):
        t0 = clock(device)
        secs.append(ed.edit(requests[i : i + EDITS])["seconds"])
        walls.append(clock(device) - t0)
    return {
        "s_per_edit": sum(walls[1:]) / len(walls[1:]) / EDITS,
        "phases_s": {k: sum(s[k] for s in secs[1:]) / len(secs[1:]) for k in secs[0]},
    }


def full_run(name, cfg, tok, device, dtype, steps):
    """The whole model with Table 6's ZsRE layers: one statistics-only step, Sigma_g seeded as on the CPU,
    then steps + 1 edit steps per method; seconds per edit (mean after the first), phases, peak memory."""
    torch.manual_seed(0)
    model = random_model(cfg, vocab=len(tok), dtype=dtype, device=device)
    layers = preset_layers(PRESETS[name], "zsre")
    requests = load("synthetic", (steps + 2) * EDITS)
    Sigma = covariance(spectrum(model.config.get_text_config().hidden_size), device=device)
    out = {"model": name, "device": str(device), "dtype": str(dtype), "layers": len(layers)}
    cuda = torch.device(device).type == "cuda"
    for method in ("stableedit", "ultraedit"):
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        ed = Editor(model, tok, layers, method=method, lr=PRESETS[name]["lr"], alpha=10.0)
        r = full_method(ed, requests, Sigma, steps, device)
        if cuda:
            r["max_memory_allocated"] = torch.cuda.max_memory_allocated()
        with tempfile.TemporaryDirectory() as tmp:
            r["save_bytes"], r["save_seconds"] = checkpoint(ed, tmp)
        out[method] = r
        del ed
    out["ratio"] = out["stableedit"]["s_per_edit"] / out["ultraedit"]["s_per_edit"]
    return out
