"""Benchmark loaders and the checks on answers before a run (paper §5.1, Appendix A.1 metrics, A.2 datasets).

Convention (as in the paper's code): a request is a prompt and a new target; the
model reads prompt + " " + target and is scored, and edited, only on the target
tokens under teacher forcing.

    load("zsre", n=1000)                # -> list[Request], in file order
    load("synthetic", n=20000, seed=0)  # made-up facts the model cannot know
    load("my_edits.json", n=50)         # a file in any layout of lab/layouts.py, told apart by its first record

Files come from the data folder (`data_dir`): zsre/zsre_eval.json, zsre/zsre_calib.json,
counterfact/counterfact.json, fever/fever_eval_20k.json, wikibigedit/wikibigedit_eval_17k.json,
ultraeditbench/UltraEditBench_2M.json, medcf/medcf.json. Any file may be a JSON list
or JSONL (one object per line, streamed: a 2M-line file is read only as far as the
n requests asked for). Where a public original exists (zsre: the full 19,086-record
zsre_mend_eval.json; counterfact) a missing file is fetched once into $STABLEEDIT_CACHE/data
(default ~/.cache/stableedit/data).

Fields read, per layout, as the official loaders read them: lab/layouts.py. A named benchmark is read
in its own layout; a file passed by path in the layout that its first record's keys tell.

Where ours deliberately differs from the official code:
  * every rephrase prompt (FEVER equiv_prompt, CounterFact paraphrase_prompts) and every CounterFact
    neighborhood prompt is scored and averaged, where the official code draws one at random per use;
  * WikiBigEdit reasoning is scored wherever mhop_ans is given (the official code: only with
    eval_mhop: True); a record with a null mhop_ans has no reasoning metric (StableEdit's loader
    scores the string "null" after the prompt "null" instead);
  * a record with an empty target is skipped and counted on stderr (the published ZsRE file has a
    few), a probe with an empty prompt or answer is left out; in our own layout an empty target is
    an error.
Errors name the record: "<file> record i" is the 0-based index in a JSON list, "line k" the JSONL line.
"""

import http.client
import json
import os
import sys
import urllib.request
from pathlib import Path

from capture import DataError
from lab.layouts import LAYOUTS, SIGNATURES
from lab.request import Request  # noqa: F401  (data.load returns Requests)
from lab.synthetic import synthetic

# ---------------------------------------------------------------- files

# name -> (file under the data folder, layout, public URL fetched when missing, where to get it)
BENCHMARKS = {
    "zsre": (
        "zsre/zsre_eval.json",
        "zsre",
        "https://rome.baulab.info/data/dsets/zsre_mend_eval.json",
        "",
    ),
    "zsre-calib": (
        "zsre/zsre_calib.json",
        "zsre",
        None,
        "the project's shared data (a calibration split)",
    ),
    "counterfact": (
        "counterfact/counterfact.json",
        "counterfact",
        "https://rome.baulab.info/data/dsets/counterfact.json",
        "",
    ),
    "fever": (
        "fever/fever_eval_20k.json",
        "fever",
        None,
        "ULTRAEDIT's data folder (github.com/XiaojieGu/UltraEdit, 'Data Preparation')",
    ),
    "wikibigedit": (
        "wikibigedit/wikibigedit_eval_17k.json",
        "wikibigedit",
        None,
        "huggingface.co/datasets/lukasthede/WikiBigEdit",
    ),
    "ultraeditbench": (
        "ultraeditbench/UltraEditBench_2M.json",
        "ultraeditbench",
        None,
        "huggingface.co/datasets/XiaojieGu/UltraEditBench",
    ),
    "medcf": (
        "medcf/medcf.json",
        "easyedit",
        None,
        "the MedLaSA release (github.com/quqxui/MedLaSA, MedCF/test.json)",
    ),
}


def data_dir(explicit=None):
    """The data folder: explicit argument, else $STABLEEDIT_DATA, else ../shared/data next to the repo, else None."""
    for where, d in (
        ("data folder", explicit),
        ("$STABLEEDIT_DATA", os.environ.get("STABLEEDIT_DATA")),
    ):
        if d:
            if not Path(d).is_dir():
                raise DataError(f"{where} {d} is not a directory")
            return Path(d)
    shared = Path(__file__).resolve().parent.parent / "shared" / "data"
    return shared if shared.is_dir() else None


_find_data_dir = data_dir  # load() has a parameter called data_dir


def _benchmark_file(name, explicit):
    rel, _, url, hint = BENCHMARKS[name]
    root = _find_data_dir(explicit)
    if root is not None and (root / rel).exists():
        return root / rel
    if url:  # fetch the public original once into a user cache
        # imported here: lab/cache.py pulls in transformers, a local file does not
        from lab.cache import (
            home,
        )

        cache = home() / "data"
        path = cache / Path(url).name
        if path.exists():
            return path
        try:
            with urllib.request.urlopen(
                url, timeout=10
            ) as r:  # offline: fails in well under a second
                body = r.read()
            cache.mkdir(parents=True, exist_ok=True)  # offline, nothing is created
            tmp = path.with_suffix(".part")
            tmp.write_bytes(body)
            tmp.replace(path)  # never leave a half-written file under the final name
            print(f"{name}: downloaded {url} to {path}", file=sys.stderr)
            return path
        except (OSError, http.client.HTTPException) as e:
            hint = f"{url} (fetch failed: {e})"
    where = (
        f"under the data folder {root}"
        if root
        else "and no data folder ($STABLEEDIT_DATA or --data-dir)"
    )
    raise DataError(f"{name}: no file {rel} {where}; get it from {hint}")


BOMS = {
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe": "UTF-16",
    b"\xfe\xff": "UTF-16",
}


def _encoding(path, encoding):
    """The text encoding to read path with: `encoding` when given, else UTF-8 (with or without a
    byte-order mark); a UTF-16/32 file without --encoding is refused by name."""
    if encoding:
        return encoding
    with open(path, "rb") as f:
        head = f.read(4)
    for bom, name in BOMS.items():
        if head.startswith(bom):
            raise DataError(
                f"{path.name}: is {name} (byte-order mark); save it as UTF-8 or pass "
                f"--encoding {name.lower()}"
            )
    if b"\x00" in head:
        raise DataError(
            f"{path.name}: holds NUL bytes, like UTF-16/32 text without a byte-order mark; "
            "save it as UTF-8 or pass --encoding utf-16-le (or utf-16-be)"
        )
    return "utf-8-sig"  # plain UTF-8, and a leading BOM is skipped


def _records(path, encoding=None):
    """Yield (where, record) from a JSON list (parsed whole) or JSONL (streamed line by line)."""
    if path.is_dir():
        raise DataError(f"{path} is a directory, expected a JSON or JSONL file")
    if not path.exists():
        raise DataError(f"{path}: no such file")
    enc = _encoding(path, encoding)
    try:
        with open(path, encoding=enc) as f:
            yield from _parse(path, f)
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path.name}: not {enc.replace('-sig', '')} text (byte 0x{e.object[e.start]:02x}); "
            "save it as UTF-8 or pass its encoding, e.g. --encoding latin-1"
        ) from None
    except RecursionError:
        raise DataError(
            f"{path.name}: JSON nested deeper than the parser's {sys.getrecursionlimit()} "
            "levels; a record is a flat object of strings and lists"
        ) from None


def _parse(path, f):
    head = f.read(4096).lstrip()[:1]
    f.seek(0)
    if path.suffix != ".jsonl" and head == "[":
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise DataError(
                f"{path.name}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})"
            ) from None
        yield from ((f"{path.name} record {i}", r) for i, r in enumerate(data))
    elif head in ("{", ""):
        for k, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield f"{path.name} line {k}", json.loads(line)
                except json.JSONDecodeError as e:
                    if k == 1 and _one_object(f):
                        raise DataError(
                            f"{path.name}: is one JSON object, not a list of records; write "
                            "[{...}, {...}] or JSONL (one record per line)"
                        ) from None
                    raise DataError(f"{path.name} line {k}: not valid JSON ({e.msg})") from None
    else:
        raise DataError(f"{path.name}: neither a JSON list nor JSONL (starts with {head!r})")


def _one_object(f):
    """Is the whole file one JSON object (a valid file that is not a list or JSONL)?"""
    f.seek(0)
    try:
        return isinstance(json.load(f), dict)
    except json.JSONDecodeError:
        return False


# ---------------------------------------------------------------- the entry point


def load(name_or_path, n, offset=0, seed=0, data_dir=None, encoding=None):
    """Exactly n requests from position `offset` on, in file order (seed only shapes the synthetic stream);
    a file is read as UTF-8 (with or without a byte-order mark) unless `encoding` names another."""
    if n <= 0 or offset < 0:
        raise DataError(f"need n >= 1 and offset >= 0, got n={n}, offset={offset}")
    if name_or_path == "synthetic":
        out = synthetic(n, offset, seed)
        for i, r in enumerate(out, offset):
            r.where = f"synthetic request {i}"
        return out
    if name_or_path in BENCHMARKS:
        path, layout, label = (
            _benchmark_file(name_or_path, data_dir),
            BENCHMARKS[name_or_path][1],
            name_or_path,
        )
    elif Path(name_or_path).exists():
        path, layout, label = Path(name_or_path), None, Path(name_or_path).name
    else:
        raise DataError(
            f"{name_or_path}: no such file, and not one of synthetic, {', '.join(BENCHMARKS)}"
        )
    out, usable, skipped = [], 0, 0
    for where, rec in _records(path, encoding):
        if layout is None:
            keys = rec if isinstance(rec, dict) else ()
            layout = next((name for key, name in SIGNATURES if key in keys), "ours")
            if layout != "ours":
                print(f"{label}: read in the {layout} layout", file=sys.stderr)
        r = LAYOUTS[layout](rec, where)
        r.where = where
        if not r.target.strip():  # benchmark layouts only; from_ours raises
            skipped += 1
            continue
        if not r.prompt.strip():
            raise DataError(f"{where}: empty prompt")
        usable += 1
        if usable > offset:
            out.append(r)
            if len(out) == n:
                break  # a 2M-line JSONL is never read further
    if skipped:
        print(f"{label}: skipped {skipped} records with an empty target", file=sys.stderr)
    if len(out) < n:
        raise DataError(
            f"{label}: asked for {n} requests from offset {offset}, but only {len(out)} are "
            f"available ({usable} usable requests in the file)"
        )
    dup = n - len({(r.prompt, r.target) for r in out})
    if dup:
        print(
            f"{label}: {dup} of {n} requests repeat an earlier prompt/target pair", file=sys.stderr
        )
    return out


if __name__ == "__main__":
    print("synthetic:", load("synthetic", 1)[0])
    try:
        z = load("zsre", 3)
        print(f"zsre: {z[0].prompt!r} -> {z[0].target!r}; locality {z[0].locality}")
    except DataError as e:
        print("zsre not available:", e)
