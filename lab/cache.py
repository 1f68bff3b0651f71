"""Content-addressed caches for the pure parts of a run: a statistics-only warm-up and the
pre-edit evaluation (Algorithm 1's warm-up phase; §5's protocol measures before and after).

A statistics-only warm-up never touches the weights, so its statistics are a pure function of
the model's weights, the edited layers, the method and its statistics settings, the warm-up
requests, the batch size, the dtype and device, and the code that computes them; the pre-edit
metrics likewise of the weights, the evaluated requests and the metric code. Each entry is keyed
by a hash of exactly those, so any difference -- one weight bit, one request, one character of
niw.py -- is a miss and is recomputed; a hit is bit-identical to recomputing, because the same
float64 tensors come back. Entries are written atomically with torch.save and read with
weights_only=True (tensors and plain values, never arbitrary objects), each with a SHA-256 of its
content (lab.validate.seal): an unreadable entry is a miss, and one whose checksum or finiteness check
fails is deleted, reported and recomputed. The library versions are part of every key (another torch may round differently). Entries
live in $STABLEEDIT_RUN_CACHE, default $STABLEEDIT_CACHE/runs or ~/.cache/stableedit/runs; nothing
evicts them (a SmolLM2 warm-up's statistics are ~20 MB): delete the folder to reclaim the space.
"""

import dataclasses
import hashlib
import json
import os
import sys
from pathlib import Path

import torch
import transformers

from capture import DataError
from lab.outputs import atomic_write
from lab.paths import clean_tmp
from lab.validate import finite, seal, unseal

HERE = Path(__file__).resolve().parent.parent  # the repository: CODE names its files
# the modules whose code decides what a warm-up or an evaluation computes
CODE = (
    "capture.py",
    "data.py",
    "editor.py",
    "evaluate.py",
    "lab/generation.py",
    "niw.py",
    "lab/official.py",
    "ridge.py",
    "lab/synthetic.py",
    "whitening.py",
)


def home():
    """Everything stableedit keeps between runs: $STABLEEDIT_CACHE, default ~/.cache/stableedit
    (converted models, fetched public data, and the run cache below)."""
    return Path(os.environ.get("STABLEEDIT_CACHE", Path.home() / ".cache" / "stableedit"))


def root():
    if os.environ.get("STABLEEDIT_RUN_CACHE"):
        return Path(os.environ["STABLEEDIT_RUN_CACHE"])
    return home() / "runs"


def weights_digest(model, exclude=()):
    """blake2b of every parameter and buffer (but the state_dict names in exclude): names, dtypes,
    shapes and bytes."""
    h = hashlib.blake2b(digest_size=20)
    for name, t in sorted(model.state_dict().items()):
        if name in exclude:
            continue
        t = t.detach().contiguous().reshape(-1)
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        # bytes, whatever the dtype (bf16 has no numpy type)
        h.update(t.view(torch.uint8).cpu().numpy())
    return h.hexdigest()


def code_digest():
    """The code that computes an entry, and the libraries it runs on."""
    h = hashlib.blake2b(digest_size=20)
    for f in CODE:
        h.update((HERE / f).read_bytes())
    h.update(f"torch {torch.__version__} transformers {transformers.__version__}".encode())
    return h.hexdigest()


def tokenizer_digest(tok):
    """The tokenizer's content (its vocabulary and rules), not the folder it was read from."""
    backend = getattr(tok, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else json.dumps(tok.get_vocab(), sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=20).hexdigest()


def requests_digest(requests):
    """What the requests ask, in order (not where they were read)."""
    rows = [{k: v for k, v in dataclasses.asdict(r).items() if k != "where"} for r in requests]
    return hashlib.blake2b(json.dumps(rows).encode(), digest_size=20).hexdigest()


def key(**parts):
    """One hex key for a dict of plain values (strings, numbers, lists, None)."""
    return hashlib.blake2b(json.dumps(parts, sort_keys=True).encode(), digest_size=20).hexdigest()


def _unedited(model, tok, cfg):
    """What every entry depends on: the unedited weights, the code, dtype, device, tokenizer, attention."""
    return dict(
        weights=weights_digest(model),
        code=code_digest(),
        dtype=cfg["dtype"],
        device=str(next(model.parameters()).device.type),
        tokenizer=tokenizer_digest(tok),
        attention=getattr(model.config, "_attn_implementation", None),
    )


def pre_key(model, tok, cfg, evaluated):
    """The key of the pre-edit evaluation of the evaluated requests."""
    return key(
        **_unedited(model, tok, cfg), requests=requests_digest(evaluated), generate=cfg["generate"]
    )


def warmup_key(model, tok, cfg, warm, max_length):
    """The key of a statistics-only warm-up's statistics: what it reads, not the targets' settings
    (key_scale, eig_floor, lr), which a statistics-only step never uses."""
    ed = cfg["editor"]
    return key(
        **_unedited(model, tok, cfg),
        requests=requests_digest(warm),
        layers=cfg["layers"],
        method=cfg["method"],
        prior=cfg["prior"],
        pooled=cfg["pooled"],
        batch=cfg["batch"],
        stats=ed.get("stats", "niw"),
        minibatch=ed.get("minibatch"),
        max_length=max_length,
    )


def read(kind, k):
    """The entry stored under (kind, k), or None: absent, unreadable, or failing its checksum or
    finiteness check (then it is deleted, said on stderr, and recomputed)."""
    path = root() / kind / f"{k}.pt"
    if not path.exists():
        return None
    try:
        entry = unseal(torch.load(path, weights_only=True), str(path))
        finite(entry, str(path))
        return entry
    except DataError as e:
        print(f"cache: {e}; the entry is discarded and recomputed", file=sys.stderr)
    except Exception:
        pass  # truncated or not a torch file: a plain miss
    path.unlink(missing_ok=True)
    return None


def write(kind, k, obj):
    """Store an entry; a cache that cannot be written (read-only, full) costs a warning, not the run."""
    path = root() / kind / f"{k}.pt"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_tmp(path.parent)
        atomic_write(path, lambda f: torch.save(seal(obj), f))
    except OSError as e:
        print(
            f"cache: could not store {path} ({e.strerror}); the run goes on without it",
            file=sys.stderr,
        )


if __name__ == "__main__":
    import tempfile

    os.environ["STABLEEDIT_CACHE"] = tempfile.mkdtemp()
    lin = torch.nn.Linear(4, 3)
    d0 = weights_digest(lin)
    with torch.no_grad():
        lin.weight[0, 0] = torch.nextafter(lin.weight[0, 0], torch.tensor(1.0))  # one ulp
    print(f"one ulp of one weight changes the digest: {weights_digest(lin) != d0}")
    k = key(weights=d0, layers=["fc"], code=code_digest())
    write("demo", k, {"m": torch.arange(3, dtype=torch.float64), "n": 3})
    print(f"read back: {read('demo', k)}; another key: {read('demo', key(weights=d0))}")
