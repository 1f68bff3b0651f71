"""The official codes' own scores, read from the peers' reports into results/peers.json.

    python results/peers.py                 # reads ../shared/peers/{ultraedit,stableedit}.md
    python results/peers.py --peers DIR     # or another folder holding the two reports

The official ULTRAEDIT and StableEdit codes were run on this project's machine by the peers
(ultraedit.md, stableedit.md): 300 ZsRE calibration edits, SmolLM2-135M, fp32. Each figure is stored
as the fraction the code printed, with the file and line it was read from; results/official.md reads
them from here, not from typed decimals. ES, GS and LS are the codes' efficacy, generalization and
specificity.
"""

import argparse
import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS = HERE.parent.parent / "shared" / "peers"
METRICS = ("efficacy", "generalization", "specificity")
NUM = r"(0\.\d+)"
# (code, report, pattern, how a match names its run): the fp32 rows of ULTRAEDIT's results table,
# the figures its reproducibility check printed, and StableEdit's full-precision results
PATTERNS = (
    (
        "ultraedit",
        "ultraedit.md",
        rf"^\| fp32 \| (pre-edit|[\d.e-]+)[^|]*\| {NUM} \| {NUM} \| {NUM} \|",
        lambda m: "pre" if m.group(1) == "pre-edit" else f"lr {m.group(1)}",
    ),
    (
        "ultraedit_check",
        "ultraedit.md",
        rf"(pre-edit|lr [\d.e-]+) {NUM}/{NUM}/{NUM}",
        lambda m: "pre" if m.group(1) == "pre-edit" else m.group(1),
    ),
    (
        "stableedit",
        "stableedit.md",
        rf"(pre-edit|lr [\d.e-]+|alpha 1) `\{{'ES': {NUM}\d*, 'GS': {NUM}\d*, 'LS': {NUM}\d*\}}`",
        lambda m: "pre" if m.group(1) == "pre-edit" else m.group(1),
    ),
)


def read(peers):
    """{code: {run: {metric: fraction, 'source': 'file:line'}}} from the two reports."""
    out = {}
    for code, name, pattern, label in PATTERNS:
        lines = (peers / name).read_text("utf-8").splitlines()
        for i, text in enumerate(lines, 1):
            for m in re.finditer(pattern, text):
                row = dict(zip(METRICS, (float(x) for x in m.groups()[1:4])))
                out.setdefault(code, {})[label(m)] = {**row, "source": f"{name}:{i}"}
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peers", type=Path, default=PEERS, help="the folder of the peers' reports")
    p.add_argument("--out", type=Path, default=HERE / "peers.json")
    a = p.parse_args(argv)
    scores = read(a.peers)
    doc = {"source": "../shared/peers (ultraedit.md, stableedit.md)", **scores}
    a.out.write_text(json.dumps(doc, indent=1) + "\n", "utf-8")
    for code, runs in scores.items():
        print(code, ", ".join(runs))


if __name__ == "__main__":
    main()
