"""The README's theory table, regenerated from theory.json (one column per model).

python results/theory_table.py results/theory/smollm2-135m/theory.json results/theory/gemma3-270m/theory.json
"""

import json
import sys


def cell(c):
    lo, hi = c["interval"]
    fmt = lambda x: "–" if x is None else f"{x:.3g}"
    verdict = {True: " **pass**", False: " **FAIL**", None: " (reported)"}[c["pass"]]
    return f"{fmt(c['mean'])} [{fmt(lo)}, {fmt(hi)}]{verdict}"


def main(paths):
    runs = [json.load(open(p)) for p in paths]
    print(
        "| check | claim (threshold) | "
        + " | ".join(
            f"{r['model']} ({r['mode']}, {len(r['seeds'])} seeds, {r['seconds'] / 60:.0f} min)"
            for r in runs
        )
        + " |"
    )
    print("|---|---|" + "---|" * len(runs))
    for name, check in runs[0]["checks"].items():
        for i, c in enumerate(check["claims"]):
            verdicts = " / ".join("pass" if r["checks"][name]["pass"] else "FAIL" for r in runs)
            label = f"{name} ({verdicts})" if i == 0 else ""
            cells = [cell(r["checks"][name]["claims"][i]) for r in runs]
            statement = c["statement"].replace("|", "\\|")  # |x| norms inside a table cell
            print(f"| {label} | {statement} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
