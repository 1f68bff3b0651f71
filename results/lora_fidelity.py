"""How much of a lifelong edit a LoRA adapter keeps, per rank (results/lora.md).

    python results/lora_fidelity.py            # ~50 min on 2 CPU cores; reruns nothing already stored

For ZsRE's evaluation split (1,487 edits) and MedCF (544) on SmolLM2-135M: the default run
(run_stream.py --dataset D --n N --save-patch), then for each rank r in 8, 32, 128, full the adapter
lab.lora.save_lora makes of its W_T - W_0, loaded through PEFT onto the unedited model and scored on
the run's evaluated edits against the exact edited model (per-request paired differences, mean and
95 % interval, requests the unit); the share of |W_T - W_0|_F each rank keeps, and the sizes. And the
singular-value spectrum of W_t - W_0 after 100, 500 and 1,487 ZsRE edits (runs of those lengths: the
first t edits of a stream are the same at every length, the preset lr being the same up to 1,500).
Writes results/lora.json, lora.csv and lora.png; patches and adapters go to $STABLEEDIT_CACHE/lora.
"""

import csv
import json
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import run_stream  # noqa: E402
from evaluate import edit_metrics, paired  # noqa: E402
from lab.cache import home  # noqa: E402
from lab.intervals import t_quantile  # noqa: E402
from lab.lora import load_lora, save_lora, svd  # noqa: E402
from lab.models import load_model  # noqa: E402
from lab.patch import read_patch  # noqa: E402
from lab.stream import load_stream  # noqa: E402

HERE = Path(__file__).resolve().parent
RANKS = (8, 32, 128, "full")
DATASETS = (("zsre", 1487), ("medcf", 544))
METRICS = ("efficacy", "generalization", "specificity", "retain")
SPECTRUM = (100, 500, 1487)  # ZsRE edits at which the spectrum of W_t - W_0 is read


def stream(dataset, n, eval_n=None):
    """The default run on the first n records, its patch kept: (run folder, patch path)."""
    out, patch = (
        HERE / "runs" / f"lora_{dataset}_{n}",
        home() / "lora" / f"{dataset}_{n}.safetensors",
    )
    if not ((out / "results.json").exists() and patch.exists()):
        patch.parent.mkdir(parents=True, exist_ok=True)
        argv = [
            "--dataset",
            dataset,
            "--n",
            str(n),
            "--out",
            str(out),
            "--save-patch",
            str(patch),
            "--overwrite",
        ]
        code = run_stream.entry(argv + (["--eval-n", str(eval_n)] if eval_n else []))
        if code:
            sys.exit(f"lora_fidelity.py: the {dataset} run stopped with exit code {code}")
    return out, patch


def ranks(dataset, n):
    """The rank table of one dataset: per rank the share kept, the adapter's size and the metrics
    with the adapter loaded through PEFT, paired against the exact edited model."""
    out, patch = stream(dataset, n)
    res = json.loads((out / "results.json").read_text())
    ref = torch.load(out / "editor_state.pt", weights_only=True)["ref"]
    requests, _, _ = load_stream(res["config"])
    exact = res["per_request"]
    evaluated = [requests[i] for i in exact["index"]]
    diff, meta = read_patch(patch)
    rows = []
    for r in RANKS:
        model, tok, _ = load_model("smollm2-135m")
        with tempfile.TemporaryDirectory() as tmp:
            kept = save_lora(
                Path(tmp) / "a", {k: d.float() for k, d in diff.items()}, model, meta, r
            )
            size = sum(f.stat().st_size for f in (Path(tmp) / "a").iterdir())
            lora = load_lora(model, Path(tmp) / "a").get_base_model()  # LoRA layers active
            m = edit_metrics(lora, tok, evaluated, reference=ref)
        per = {"index": exact["index"], **m.pop("per_request")}
        rows.append(
            {
                "dataset": dataset,
                "edits": n,
                "rank": r,
                "adapter_mb": size / 2**20,
                "patch_mb": patch.stat().st_size / 2**20,
                "kept_mean": sum(kept.values()) / len(kept),
                "kept_min": min(kept.values()),
                "kept": kept,
                **{k: m[k] for k in METRICS if k in m},
                **{f"exact_{k}": res["post"][k] for k in METRICS if k in res["post"]},
                **{f"diff_{k}": paired(exact, per, k) for k in METRICS if k in per},
            }
        )
    return rows


def spectra():
    """{edits: per-layer singular values of W_t - W_0 (descending)} after 100, 500, 1,487 ZsRE edits."""
    out = {}
    for n in SPECTRUM:
        _, patch = stream("zsre", n, eval_n=None if n == 1487 else 1)
        diff, _ = read_patch(patch)
        out[n] = {k: svd(d.float())[1].tolist() for k, d in diff.items()}
    return out


def plot(path, spec):
    """Share of |W_t - W_0|_F kept by the best rank r, mean over the edited layers, per stream length."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for n, layers in spec.items():
        curves = [
            torch.tensor(s).square().cumsum(0).div(sum(x * x for x in s)).sqrt()
            for s in layers.values()
        ]
        mean = torch.stack(curves).mean(0)
        ax.plot(range(1, len(mean) + 1), mean, label=f"{n} edits")
    ax.set(
        xscale="log",
        xlabel="rank r",
        ylabel="share of |W_t - W_0|_F kept",
        title="SmolLM2-135M, ZsRE: the rank an edit needs grows",
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def rank_needed(spec, share):
    """{edits: mean over layers of the smallest rank keeping `share` of |W_t - W_0|_F}."""
    out = {}
    for n, layers in spec.items():
        need = []
        for s in layers.values():
            c = torch.tensor(s).square().cumsum(0).div(sum(x * x for x in s)).sqrt()
            need.append(int((c < share).sum()) + 1)
        out[n] = sum(need) / len(need)
    return out


def main():
    rows = [row for d, n in DATASETS for row in ranks(d, n)]
    spec = spectra()
    plot(HERE / "lora.png", spec)
    res = {
        "rows": rows,
        "rank_for_share": {s: rank_needed(spec, s) for s in (0.9, 0.99)},
        "spectra": spec,
    }
    (HERE / "lora.json").write_text(json.dumps(res, indent=1))
    cols = ["dataset", "edits", "rank", "adapter_mb", "patch_mb", "kept_mean", "kept_min"]
    with open(HERE / "lora.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols + [f"diff_{k}_{x}" for k in METRICS for x in ("mean", "se")])
        for r in rows:
            w.writerow(
                [r[c] for c in cols] + [v for k in METRICS for v in r.get(f"diff_{k}", ("", ""))]
            )
    print(table(res))


def evaluated(row):
    """How many requests the row's run scored: the paired intervals' unit."""
    res = json.loads(
        (HERE / "runs" / f"lora_{row['dataset']}_{row['edits']}" / "results.json").read_text()
    )
    return len(res["per_request"]["index"])


def table(res):
    """The rank table: metrics through PEFT minus the exact edit, mean [95 % paired t-interval over the
    evaluated requests, from the stored mean and SE] (results/lora.md computes the same)."""
    lines = [
        "| data | rank | adapter MB (patch MB) | share kept (mean, min) | "
        + " | ".join(f"Δ {k[:4]}" for k in METRICS)
        + " |",
        "|---|---|---|---|" + "---|" * len(METRICS),
    ]
    for r in res["rows"]:
        cells, t = [], t_quantile(0.975, evaluated(r) - 1)
        for k in METRICS:
            m, se = r.get(f"diff_{k}", (float("nan"), float("nan")))
            cells.append(f"{m:+.2f} [{m - t * se:+.2f}, {m + t * se:+.2f}]")
        lines.append(
            f"| {r['dataset']} ({r['edits']}) | {r['rank']} | {r['adapter_mb']:.1f} ({r['patch_mb']:.1f}) | "
            f"{r['kept_mean']:.4f}, {r['kept_min']:.4f} | " + " | ".join(cells) + " |"
        )
    need = res["rank_for_share"]
    lines.append("")
    lines += [
        f"rank keeping {float(s):.0%} of |W_t - W_0|_F (mean over layers): "
        + ", ".join(f"{n} edits: {v:.0f}" for n, v in need[s].items())
        for s in need
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:] == ["--table"]:
        print(table(json.loads((HERE / "lora.json").read_text())))
    else:
        main()
