"""The speed table from results/bench.json: one row per figure of each part that ran, with its target.

    python results/bench.py table                # prints it from the stored results/bench.json

results/speed.md computes the same figures from the same file (results/pages.py).
"""


def _speed_rows(b):
    rows = []
    if "speed" not in b:
        return rows
    s = b["speed"]
    rows += [
        (
            "`run_stream.py --n 500`: first run (empty cache) / second run, wall clock",
            f"{s['first_wall_s']:.0f} s / {s['second_wall_s']:.0f} s: **{s['second_over_first']:.2f}×** (≤ 0.6)",
        ),
        (
            "second run vs `--no-cache`: weights bit-exact, post-edit metrics equal",
            f"{s['cached_equals_uncached']['weights_bit_exact']}, {s['cached_equals_uncached']['post_equal']}",
        ),
        (
            "method's own work ÷ forward+backward (`overhead_ratio`, first / second run)",
            f"**{s['overhead_ratio']:.3f}** / {s['overhead_ratio_second']:.3f} (≤ 0.10)",
        ),
        (
            "seconds per edit, stableedit / ultraedit (same stream)",
            f"{s['seconds_per_edit']['stableedit']:.4f} / {s['seconds_per_edit']['ultraedit']:.4f}: "
            f"**{s['stableedit_over_ultraedit']:.2f}×** (≤ 1.3)",
        ),
        (
            "evaluator ÷ bare forward over the same tokens, sequences/s (> 1: batching and the LM head at answer positions only make the evaluator faster)",
            f"{s['evaluator']['evaluator']:.1f} / {s['evaluator']['bare_forward']:.1f}: "
            f"{s['evaluator_over_bare_forward']:.2f}×",
        ),
        (
            "8 float64 `eigh` of 576×576, one by one / side by side (`whitening.eigens`)",
            f"{s['eigh_8x576_seconds']['one_by_one']:.3f} s / {s['eigh_8x576_seconds']['side_by_side']:.3f} s",
        ),
    ]
    return rows


def _backward_rows(b):
    rows = []
    if "backward" not in b:
        return rows
    w = b["backward"]
    rows.append(
        (
            "forward+backward to the lowest edited layer ÷ a plain backward to the embeddings (every "
            f"weight's gradient, one pass; ours in chunks of 25 as a step runs), same 100-request {w['data']} batch",
            f"{w['capture_s']:.2f} s / {w['plain_backward_s']:.2f} s: **{w['capture_over_plain_backward']:.2f}×**",
        )
    )
    return rows


def _memory_rows(b):
    rows = []
    if "memory" not in b:
        return rows
    m = b["memory"]
    rss = {int(k): v for k, v in m["peak_rss_mb"].items()}
    rows.append(
        (
            "peak RSS, 3,000 vs 300 edits (100 evaluated)",
            f"{rss[3000]:.0f} vs {rss[300]:.0f} MB: **{m['ratio_3000_over_300']:.3f}×** (≤ 1.05)",
        )
    )
    return rows


def _stream_rows(b):
    rows = []
    if "stream" not in b:
        return rows
    t = b["stream"]
    big, small = (
        t["n1000_seconds_to_first_step_runs"],
        t["small_n1000_seconds_to_first_step_runs"],
    )
    each = lambda xs: ", ".join(f"{x:.1f}" for x in xs)  # noqa: E731
    rows += [
        (
            f"2M-line UltraEditBench JSONL ({t['file_mb']:.0f} MB), `--n 1000`: seconds to the first step"
            f" ({len(big)} runs: slowest; all)",
            f"**{max(big):.1f} s** (≤ 10); {each(big)}",
        ),
        (
            "... its peak RSS vs reading the whole file",
            f"{t['n1000_peak_rss_mb']:.0f} MB vs {t['whole_file_peak_rss_mb']:.0f} MB "
            f"({t['whole_file_read_s']:.0f} s to read)",
        ),
    ]
    rows.append(
        (
            f"... the same run on a 2,000-line file: seconds to the first step ({len(small)} runs: slowest; "
            "all), peak RSS",
            f"{max(small):.1f} s; {each(small)}; {t['small_n1000_peak_rss_mb']:.0f} MB",
        )
    )
    return rows


def _scale_rows(b):
    rows = []
    if "scale" not in b:
        return rows
    c = b["scale"]
    rows.append(
        (
            "`run_stream.py --n 20000` (synthetic, 1,000 evaluated): wall clock, peak RSS, s/edit",
            f"{c['wall_s'] / 60:.1f} min, {c['peak_rss_mb']:.0f} MB, {c['seconds_per_edit']:.4f} s",
        )
    )
    return rows


def table(b):
    """The speed table (results/speed.md): one row per figure of bench.json, with its target."""
    rows = []
    for part in (_speed_rows, _backward_rows, _memory_rows, _stream_rows, _scale_rows):
        rows += part(b)
    return "\n".join(
        ["| figure | measured (target) |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    )
