"""The seeded streams on a real model that theory_checks.py judges (§3 Thm 3.6, 3.8; Fig. 1b, 4, 12).

Per seed, one model and one synthetic stream: stableedit after a statistics-only warm-up, with shadow
trackers fed the same value gradients at no extra forward pass (a cold one from the warm-up's end,
one fed ZsRE questions before the same warm-up) and probe checkpoints every few steps (lab/probe.py:
the bias term against mu_t, Lemma D.1's drift); a statistics-only control (weights fixed, so mu is
fixed); ultraedit without warm-up; no_ln and ultraedit (ultraedit_matched) started at stableedit's
first-step size (matched_arms); and the later half of the stream re-run from the unedited weights
with the warm-up's statistics (mid-way start) and with the full run's statistics at the half (stats
arm). The model's weights are restored after every arm.

    out = seed_run(model, tok, layers, lr, alpha, SIZES["quick"], seed=0, mismatch=[], bar=tqdm())
"""

import copy

import torch

from data import load
from editor import Editor
from evaluate import top1
from lab import probe as P
from niw import NIW
from whitening import eigen


class ShadowEditor(Editor):
    """An Editor whose edit steps also feed their value gradients to shadow trackers ({name: {layer: NIW}}):
    the same stream seen by a cold tracker and a mismatched one, at no extra forward pass."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.shadows, self._feeding = {}, False

    def edit(self, requests, apply=True):
        self._feeding = True
        try:
            return super().edit(requests, apply)
        finally:
            self._feeding = False

    def capture(self, batch):
        loss, cap = super().capture(batch)
        if self._feeding:
            for name, trackers in self.shadows.items():
                for n, (_, G) in cap.items():
                    if name != "frozen":  # the boundary statistics, kept as they were
                        trackers[n].update(G)
        return loss, cap


def chunks(xs, b):
    return [xs[i : i + b] for i in range(0, len(xs), b)]


def probe_means(ed, halves, batch):
    """{layer: (mu^A, mu^B)}: the probe halves' mean value gradients at the current weights, in chunks of the
    stream's batch size (the loss averages over a batch, so g's scale depends on it)."""
    out = {}
    for h in halves:
        sums, count = {}, 0
        for c in chunks(h, batch):
            for n, G in ed.gradients(c).items():
                sums[n] = sums.get(n, 0) + G.double().sum(0)
            count += G.shape[0]
        for n, s in sums.items():
            out.setdefault(n, []).append(s / count)
    return out


def geometry(reps, weights):
    """Per-step layer means of |Delta|, cos, cond and the ridge factor; the same per layer (|cos| is
    averaged per layer before layers are averaged: a layer mean of signed cosines cancels); and the
    first-step relative size."""
    row = lambda rep, k: sum(x[k] for x in rep["layers"].values()) / len(rep["layers"])
    keys = ("delta_norm", "cos_prev", "cond")
    return {
        "norm": [row(r, "delta_norm") for r in reps],
        "cos": [row(r, "cos_prev") for r in reps],
        "cond": [row(r, "cond") for r in reps],
        "ridge": [row(r, "ridge_factor") for r in reps],
        "layers": {
            n: {k: [r["layers"][n][k] for r in reps] for k in keys} for n in reps[0]["layers"]
        },
        "rel0": sum(
            x["delta_norm"] / weights[n].norm().item() for n, x in reps[0]["layers"].items()
        )
        / len(reps[0]["layers"]),
    }


def efficacy(model, tok, requests):
    """Per-request teacher-forced token accuracy (%) of the edit prompt (App. A.1's Efficacy)."""
    return [
        100.0 * sum(a == b for a, b in zip(p, g)) / len(g)
        for p, g in top1(model, tok, [(r.prompt, r.target) for r in requests])
    ]


def checkpoint(ed, t, halves, batch, rep, prev):
    """Probe point after step t: each tracker's bias^2 against the probe's mean gradient mu_t, the squared
    bias term |r_t|^2 |Sigma^-1/2 (mu_t - m_t)|^2 and the old b-statistic (from step t's report), and the
    per-step drift of mu since the previous point prev = (t_prev, {layer: mu}, {layer: eigen(Sigma_0)}),
    in the boundary's metric Sigma_0 (lab/probe.py). Returns (point, means, eigens)."""
    layers = list(ed.modules)
    mu = probe_means(ed, halves, batch)
    eig = {n: eigen(ed.stats[n][1].covariance) for n in layers}
    avg = lambda f: sum(f(n) for n in layers) / len(layers)
    trackers = {"warm": {n: ed.stats[n][1] for n in layers}, **(ed.shadows if t else {})}
    trackers.pop("frozen", None)
    pt = {
        "step": t,
        "bias2": {
            k: avg(lambda n: P.bias2(*mu[n], tr[n].mean, eig[n])) for k, tr in trackers.items()
        },
    }
    if rep is not None:
        L = rep["layers"]
        pt["bias_sq"] = avg(
            lambda n: (
                L[n]["ridge_factor"] ** 2
                * P.bias2(*mu[n], ed.stats[n][1].mean, eig[n])
                * ed.stats[n][1].dim
            )
        )
        pt["b_stat"] = avg(lambda n: L[n]["bias_norm"])
        # off-premise control: the same bias term with the statistics frozen at the boundary (not tracked)
        fr = ed.shadows["frozen"]
        pt["bias_sq_frozen"] = avg(
            lambda n: (
                L[n]["ridge_factor"] ** 2
                * P.bias2(*mu[n], fr[n].mean, prev[2][n])  # eigen(Sigma_0): the frozen covariance
                * fr[n].dim
            )
        )
    means = {n: (a + b) / 2 for n, (a, b) in mu.items()}
    if prev is not None:
        pt["drift"] = avg(lambda n: P.drift(means[n], prev[1][n], prev[2][n], t - prev[0]))
    return pt, mu, eig


def restore(model, W0):
    """The edited layers back to their weights W0 ({layer: weight})."""
    mods = dict(model.named_modules())
    with torch.no_grad():
        for n, w in W0.items():
            mods[n].weight.copy_(w)


def step(ed, chunk, bar, apply=True):
    rep = ed.edit(chunk, apply)
    bar.update(1)
    return rep


def seed_run(model, tok, layers, lr, alpha, size, seed, mismatch, bar):
    """Every stream of one seed on one model (weights restored between them). Returns per-seed series."""
    T, B, Wn = size["steps"], size["batch"], size["warmup"]
    reqs = load("synthetic", T * B, seed=seed)
    warm = load("synthetic", Wn * B, offset=T * B, seed=seed)
    held = load("synthetic", size["probe"], offset=(T + Wn) * B, seed=seed)
    mods = dict(model.named_modules())
    W0 = {n: mods[n].weight.detach().clone() for n in layers}
    out, boundary, mid_state, mu0 = stableedit_arm(
        model, tok, layers, lr, alpha, size, reqs, warm, held, mismatch, bar, W0
    )
    restore(model, W0)
    # statistics-only control: the weights stay W0, so mu is fixed and the t = 0 probe (mu0) is it
    ctrl, out["control_bias2"] = Editor(model, tok, layers, "stableedit", lr, alpha), []
    for c in chunks(reqs[: (T // 2) * B], B):
        step(ctrl, c, bar, apply=False)
        out["control_bias2"].append(
            sum(
                P.bias2(*mu0[n], ctrl.stats[n][1].mean, eigen(ctrl.stats[n][1].covariance))
                for n in layers
            )
            / len(layers)
        )
    # the later half alone: mid-way start (warm-up statistics) and the stats arm (statistics at the half)
    later = reqs[(T // 2) * B :]
    for arm, state in (("mid", boundary), ("stats", mid_state)):
        restore(model, W0)
        e = Editor(model, tok, layers, "stableedit", lr, alpha)
        e.load_stats_state(state)
        for c in chunks(later, B):
            step(e, c, bar)
        out[arm] = efficacy(model, tok, later)
    # ULTRAEDIT as the paper runs it (no warm-up); no LN and ULTRAEDIT started at stableedit's
    # first-step size (the controls of Thm 3.8b/c, and the first-quarter contrast at matched sizes)
    out["ultraedit"] = arm_geometry(model, tok, layers, "ultraedit", alpha, reqs, B, W0, bar, lr=lr)
    out.update(matched_arms(model, tok, layers, alpha, size, seed, out["stableedit"]["rel0"], bar))
    restore(model, W0)
    return out


def arm_geometry(model, tok, layers, method, alpha, reqs, B, W0, bar, **kw):
    """One method over the whole stream from the unedited weights W0, no warm-up: its geometry."""
    restore(model, W0)
    e = Editor(model, tok, layers, method, alpha=alpha, **kw)
    return geometry([step(e, c, bar) for c in chunks(reqs, B)], W0)


# the arms started at stableedit's first-step size rel0 (Editor's step_size): name -> method
MATCHED = {"no_ln": "no_ln", "ultraedit_matched": "ultraedit"}


def matched_arms(model, tok, layers, alpha, size, seed, rel0, bar, names=tuple(MATCHED)):
    """The arms `names` of MATCHED on the seed's stream, each started at the first-step size rel0
    (stableedit's), from the unedited weights, which are restored after. Returns {name: geometry}."""
    reqs = load("synthetic", size["steps"] * size["batch"], seed=seed)
    mods = dict(model.named_modules())
    W0 = {n: mods[n].weight.detach().clone() for n in layers}
    out = {
        k: arm_geometry(
            model,
            tok,
            layers,
            MATCHED[k],
            alpha,
            reqs,
            size["batch"],
            W0,
            bar,
            lr=None,
            step_size=rel0,
        )
        for k in names
    }
    restore(model, W0)
    return out


def stableedit_arm(model, tok, layers, lr, alpha, size, reqs, warm, held, mismatch, bar, W0):
    """Statistics-only warm-up, then the stream with shadow trackers and probe checkpoints:
    (series, the statistics at the warm-up's end and at the half, the t = 0 probe means)."""
    T, B, every = size["steps"], size["batch"], size["every"]
    halves, later = (held[: len(held) // 2], held[len(held) // 2 :]), reqs[(T // 2) * B :]
    ed = ShadowEditor(model, tok, layers, "stableedit", lr, alpha)
    if mismatch:  # ZsRE questions first; the shadow then also sees the warm-up below and the stream
        side = Editor(model, tok, layers, "stableedit", lr, alpha)
        for c in chunks(mismatch, B):
            step(side, c, bar, apply=False)
        ed.shadows["mismatched"] = {n: side.stats[n][1] for n in layers}
    for c in chunks(warm, B):
        step(ed, c, bar, apply=False)
    boundary = ed.stats_state()
    # the boundary statistics, never fed (ShadowEditor skips "frozen"): the bias term's control
    ed.shadows["frozen"] = {n: copy.deepcopy(ed.stats[n][1]) for n in layers}
    ed.shadows["cold"] = {n: NIW(ed.stats[n][1].dim, device=W0[n].device) for n in layers}
    probes, reps, surrogate, mid_state, prev = [], [], [], None, None
    for t in range(T + 1):
        if t:
            m_before = {n: ed.stats[n][1].mean for n in layers}  # NIW.update never writes in place
            reps.append(step(ed, reqs[(t - 1) * B : t * B], bar))
            surrogate.append(
                sum(
                    P.surrogate(ed.stats[n][1].mean, m_before[n], ed.stats[n][1].covariance)
                    for n in layers
                )
                / len(layers)
            )
            mid_state = ed.stats_state() if t == T // 2 else mid_state
        if t % every == 0:
            pt, mu, eig = checkpoint(ed, t, halves, B, reps[-1] if t else None, prev)
            bar.update(len(held) / B)
            if t == 0:
                mu0, eig0 = mu, eig
            prev = (t, {n: (a + b) / 2 for n, (a, b) in mu.items()}, eig0)
            probes.append(pt)
    out = {
        "probe": probes,
        "stableedit": {**geometry(reps, W0), "surrogate": surrogate},
        **{
            k: [p[k] for p in probes if k in p]
            for k in ("bias_sq", "bias_sq_frozen", "b_stat", "drift")
        },
        "full": efficacy(model, tok, later),
    }
    return out, boundary, mid_state, mu0


def steps_per_seed(size, mismatch):
    T, B = size["steps"], size["batch"]
    return (
        (len(chunks(range(size["mismatch"]), B)) if mismatch else 0)
        + size["warmup"]
        + T
        + (T // size["every"] + 1) * size["probe"] / B
        + T // 2
        + 2 * (T - T // 2)
        + (1 + len(MATCHED)) * T
    )


if __name__ == "__main__":
    from tqdm import tqdm

    from lab.models import load_model
    from lab.presets import PRESETS, preset_layers, preset_lr

    model, tok, _ = load_model("smollm2-135m")
    preset, size = (
        PRESETS["smollm2-135m"],
        dict(steps=4, batch=10, warmup=2, every=2, probe=20, mismatch=0),
    )
    layers = preset_layers(preset, "synthetic")
    W = {n: m.weight.detach().clone() for n, m in model.named_modules() if n in layers}
    with tqdm(total=round(steps_per_seed(size, None)), desc="one seed, 4 steps of 10 edits") as bar:
        out = seed_run(
            model, tok, layers, preset_lr(preset, 40), preset["alpha"], size, 0, None, bar
        )
    print(
        f"probe points at steps {[p['step'] for p in out['probe']]}; later-half efficacy: mid-way start "
        f"{sum(out['mid']) / len(out['mid']):.1f} %, after the earlier edits {sum(out['full']) / len(out['full']):.1f} %"
    )
    print(
        "weights restored bit-exactly after every arm:",
        all(torch.equal(m.weight, W[n]) for n, m in model.named_modules() if n in W),
    )
