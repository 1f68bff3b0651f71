"""The projection of results/width.py: from a depth-cut measurement (width_measure.measure_cut) to the
whole model with Table 6's ZsRE layers -- seconds per edit, a 20,000-edit run's hours, saves and bytes
under --save-every auto, peak memory -- and the paper's configs at tiny width for the CPU tests.

Every figure here is arithmetic on measured ones, and is called projected where a page quotes it.
Used by `python results/width.py` (results/width.json); it stores nothing itself.
"""

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lab.models import random_model  # noqa: E402
from width_measure import EDITS  # noqa: E402

RUN_EDITS, WARMUP = 20_000, 2_000  # the headline run; Algorithm 1's warm-up


def n_params(cfg):
    model = random_model(cfg, device="meta")
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def run_cost(p, fb, n_layers, step_counts, write_bps, save_bytes):
    """One method's projected run: per-edit seconds, hours, and what --save-every auto writes."""
    edit_steps, warm_steps = step_counts
    method = sum(p[k] for k in ("stats", "normalize", "solve", "apply", "drift")) * n_layers
    step, warm = fb + method, fb + p["stats"] * n_layers
    save_s = save_bytes / write_bps
    every = max(1, math.ceil(19 * save_s / step))  # --save-every auto, in steps
    saves = 2 + (edit_steps + warm_steps) // every  # the first, the policy's, the final
    wall = edit_steps * step + warm_steps * warm
    return {
        "s_per_edit": step / EDITS,
        "method_s_per_step": method,
        "run_hours": wall / 3600,
        "save_bytes": save_bytes,
        "save_s": save_s,
        "save_every_steps": every,
        "saves": saves,
        "bytes_written": saves * save_bytes,
        "save_share": saves * save_s / (wall + saves * save_s),
    }


def memory(m, cfg, n_layers, L, low, weight_bytes):
    """Peak device memory of the whole model, by part, and the host's copy of W_0."""
    act = m["act_block"] * (L - low) / 4 * weight_bytes  # measured in float32
    # Psi/dof, eigh, U in float64; Delta, W copy
    transient = 3 * m["sigma_g_bytes"] + 2 * m["d_in"] * m["d_out"] * 4
    out = {
        "weights": n_params(cfg) * weight_bytes,
        "editor_state": n_layers * m["stableedit"]["state_bytes"],
        "activations": act,
        "transient": transient,
        "w0_host": n_layers * m["d_in"] * m["d_out"] * weight_bytes,
    }
    out["peak_device"] = sum(
        out[k] for k in ("weights", "editor_state", "activations", "transient")
    )
    return out


def project(m, cfg, layers, write_bps, weight_bytes=4, n=RUN_EDITS, warmup=WARMUP):
    """The full model from a depth-cut measurement m (results/width.py's docstring): L blocks, lowest
    edited block l, forward+backward = fb1 + (L-1) f + (L-1-l) b; every figure here is projected."""
    L = random_model(cfg, device="meta").config.get_text_config().num_hidden_layers
    low = min(int(x.split(".")[-3]) for x in layers)
    fb = m["fb1"] + (L - 1) * m["f"] + (L - 1 - low) * m["b"]
    out = {"blocks": L, "edited_layers": len(layers), "lowest_block": low, "forward_backward_s": fb}
    counts = math.ceil(n / EDITS), math.ceil(warmup / EDITS)
    for label in ("stableedit", "ultraedit"):
        p = m[label]
        save_bytes = len(layers) * (p["state_bytes"] + m["d_in"] * m["d_out"] * weight_bytes)
        out[label] = run_cost(p, fb, len(layers), counts, write_bps, save_bytes)
    out["ratio"] = out["stableedit"]["s_per_edit"] / out["ultraedit"]["s_per_edit"]
    out["memory"] = memory(m, cfg, len(layers), L, low, weight_bytes)
    return out


def tiny_config(cfg):
    """A PAPER_CONFIGS entry at tiny width and full depth: the --full path's test on a CPU."""
    cls, kw = cfg
    small = {
        "n_embd": 64,
        "n_inner": 256,
        "n_head": 4,
        "rotary_dim": 8,
        "hidden_size": 64,
        "intermediate_size": 224,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    }
    return cls, {**kw, **{k: v for k, v in small.items() if k in kw}}
