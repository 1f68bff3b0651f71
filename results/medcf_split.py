"""MedCF split by record within each relation, for the warm-up-source comparison (Table 5/11).

MedCF's file comes in blocks of one relation (17 question templates). Editing its first 272 records and
warming up on the other 272 puts different relations on the two sides; this script alternates records
within each relation instead: even positions are edited (in the file's order), odd ones are the
in-domain warm-up. It writes a data folder whose `medcf/medcf.json` holds the edited half first, so
`--dataset medcf --n 272` edits its first 272 records and `--warmup-data medcf` (which starts after
the edited records) warms up on the next 272. One relation has an odd count, so the halves are 273 and
271 records: the warm-up is the one even record left over and 271 odd ones. The other benchmarks are
links to the real data folder.

    python results/medcf_split.py [--data-dir DIR] [--out DIR]   # prints the folder to pass as --data-dir
"""

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from data import data_dir  # noqa: E402


def relation(record):
    """The question template: the prompt with its subject taken out."""
    return record["prompt"].replace(record["subject"], "{}")


def split(records):
    """(edited, warm-up): alternate records within each relation, the file's order kept."""
    seen, edited, warm = {}, [], []
    for r in records:
        k = seen[relation(r)] = seen.get(relation(r), -1) + 1
        (edited if k % 2 == 0 else warm).append(r)
    return edited, warm


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=os.path.expanduser("~/.cache/stableedit/medcf_split"))
    a = p.parse_args()
    src = Path(data_dir(a.data_dir))
    edited, warm = split(json.loads((src / "medcf" / "medcf.json").read_text("utf-8")))
    out = Path(a.out)
    (out / "medcf").mkdir(parents=True, exist_ok=True)
    (out / "medcf" / "medcf.json").write_text(
        json.dumps(edited + warm, ensure_ascii=False), "utf-8"
    )
    for d in src.iterdir():
        if d.is_dir() and d.name != "medcf" and not (out / d.name).exists():
            (out / d.name).symlink_to(d.resolve())
    print(f"{out}  ({len(edited)} edited records first, {len(warm)} warm-up records after them)")


if __name__ == "__main__":
    main()
