"""The names of results/width.md: the editor measured per layer at the 7–8B widths (width.json), the
projection to whole models, the float32 whitening route's error and the projection checked on
SmolLM2-135M."""

import math

from lab.intervals import paired
from page_whole import W as whole
from page_whole import ratio as whole_ratio
from pagekit import D, J, f, have, pair, per_request, run, v

LEVEL = paired.__defaults__[0]  # the coverage of pagekit.D's intervals
PHASES = ("stats", "normalize", "solve", "apply")
MODELS = ("smollm2-135m", "gemma3-270m")
METRICS = ("efficacy", "generalization", "specificity", "retain")
DEFAULT = {"smollm2-135m": "zsre_full", "gemma3-270m": "gemma_zsre_full"}


def sci(x, d=1):
    """1.2·10⁵"""
    m, e = f"{x:.{d}e}".split("e")
    return f"{m}·10" + str(int(e)).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))


def cut_row(m, label):
    """One method of one cut model: its phases per layer and step, state and checkpoint sizes."""
    p = m[label]
    return (
        f"| {m['model']} | {m['d_out']} x {m['d_in']} | {f(m['f'] + m['b'], 2)} s | {label} | "
        + " | ".join(f"{f(p[k], 2)} s" for k in PHASES)
        + f" | {f(p['state_bytes'] / 1e6, 0)} MB ({f(p['state_over_sigma'], 2)}x) | "
        f"{f(p['save_bytes'] / 1e6, 0)} MB, {f(p['save_seconds'] / 2, 2)} s |"
    )


def cut_table():
    lines = [
        "| model | d_out x d_in | fwd+bwd per block | method | stats | normalize | solve | apply | "
        "state / float64 Sigma_g | checkpoint per layer |",
        "|---" * 10 + "|",
    ]
    for m in J("width.json")["cut"]:
        for label in ("stableedit", "ultraedit", "stableedit_float64"):
            if label in m:
                lines.append(cut_row(m, label))
    return "\n".join(lines)


def projection_table():
    lines = [
        "| model (Table 6 ZsRE layers) | s/edit stableedit | s/edit ultraedit | ratio | 20K-edit run | "
        "peak memory fp32 / bf16 | saves (auto) | written | share of wall |",
        "|---" * 9 + "|",
    ]
    for name, p in J("width.json")["projection"].items():
        se, mem = p["stableedit"], p["memory"]
        lines.append(
            f"| {name} ({p['edited_layers']} layers) | {f(se['s_per_edit'], 2)} | "
            f"{f(p['ultraedit']['s_per_edit'], 2)} | {f(p['ratio'], 2)} | {f(se['run_hours'])} h | "
            f"{f(mem['peak_device'] / 1e9)} / {f(p['bf16_peak_device'] / 1e9)} GB | "
            f"{se['saves']} (every {se['save_every_steps']}) | {f(se['bytes_written'] / 1e9, 0)} GB | "
            f"{f(100 * se['save_share'])} % |"
        )
    return "\n".join(lines)


def routes_table():
    lines = [
        "| Sigma_g spectrum (SmolLM2/Gemma layer, stretched to 4096) | cond | eigh float64 | "
        "eigh float32 | whitened g, relative error | worst row | cond's relative error |",
        "|---" * 7 + "|",
    ]
    for r in J("width.json")["routes"]:
        lines.append(
            f"| {r['spectrum']} cond | {r['cond']:.2e} | {f(r['eigh_float64_s'], 2)} s | "
            f"{f(r['eigh_float32_s'], 2)} s | {r['whitened_rel_err']:.1e} | "
            f"{r['row_rel_err_max']:.1e} | {r['cond_rel_err']:.1e} |"
        )
    return "\n".join(lines)


def route(model, dt):
    return f"route_{model}_{dt}"


def worst_drift(model):
    """The largest relative difference over layers of ‖W_T − W_0‖_F, float32 against float64."""
    a, b = (
        run(route(model, "float64"))["weight_drift"],
        run(route(model, "float32"))["weight_drift"],
    )
    return max(abs(b[n]["delta_fro"] / d["delta_fro"] - 1) for n, d in a.items())


def check_table():
    lines = [
        "| model | eigh | "
        + " | ".join(METRICS)
        + " | ‖W_T − W_0‖_F, largest relative difference over layers |",
        "|---" * (len(METRICS) + 3) + "|",
    ]
    for model in MODELS:
        for dt in ("float64", "float32"):
            lines.append(
                f"| {model} | {dt} | "
                + " | ".join(f(v(route(model, dt), k)) for k in METRICS)
                + " | |"
            )
        lines.append(
            f"| {model} | float32 − float64 | "
            + " | ".join(D(route(model, "float32"), route(model, "float64"), k) for k in METRICS)
            + f" | {worst_drift(model):.1e} |"
        )
    return "\n".join(lines)


def identical():
    """Whether every evaluated request scores the same under both routes, on both models."""
    return all(
        per_request(route(m, "float32"), k) == per_request(route(m, "float64"), k)
        for m in MODELS
        for k in METRICS
    )


def against_default():
    """How the float64 route's post-edit means read against the stored default run of each model."""
    out = []
    for model, name in DEFAULT.items():
        if not have(name):
            continue
        same = all(v(name, k) == v(route(model, "float64"), k) for k in METRICS)
        out.append(
            f"{'the same' if same else 'not the same'} post-edit means as the stored `{name}` run"
        )
    return "; ".join(out)


def validation_rows():
    """Whole SmolLM2-135M: measured and projected seconds per edit, per method."""
    val = J("width.json")["validation"]
    return "\n".join(
        f"| {k} | {f(val['measured_s_per_edit'][k], 4)} | {f(val['projected_s_per_edit'][k], 4)} | "
        f"{f(val['projected_over_measured'][k], 2)} |"
        for k in val["measured_s_per_edit"]
    )


def context():
    r = J("width.json")
    cut = {m["model"]: m for m in r["cut"]}
    bw = J("bench.json")["backward"]["seconds_per_step"]
    return dict(
        whole=whole,
        whole_ratio=whole_ratio,
        LEVEL=LEVEL,
        R=r,
        P=r["projection"],
        V=r["validation"],
        gj=cut["gpt-j"],
        gse=cut["gpt-j"]["stableedit"],
        GSE_OWN=sum(cut["gpt-j"]["stableedit"][k] for k in PHASES),
        conds=[x["cond"] for m in J("spectra.json").values() for x in m.values()],
        bw=bw,
        step=bw["forward_backward"] + sum(bw[k] for k in PHASES),
        hourly=2 + math.floor(r["projection"]["gpt-j"]["stableedit"]["run_hours"]),
        n_route=pair(route("smollm2-135m", "float32"), route("smollm2-135m", "float64"))[3],
        n_route_g=pair(route("gemma3-270m", "float32"), route("gemma3-270m", "float64"))[3],
        WORST_DRIFT=max(worst_drift(m) for m in MODELS),
        sci=sci,
        cut_table=cut_table,
        projection_table=projection_table,
        routes_table=routes_table,
        check_table=check_table,
        identical=identical,
        against_default=against_default,
        validation_rows=validation_rows,
    )
