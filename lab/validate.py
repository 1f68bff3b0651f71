"""Nothing silently wrong: the checks run_stream.py makes before its work and whenever it reads
back what it wrote (the state of Algorithm 1's loop, cache entries, patches); where it writes is
lab/paths.py's.

    sealed = seal(obj)                 # obj + "sha256": SHA-256 of every tensor and value in it
    obj = unseal(sealed, "editor_state.pt")   # DataError when one bit changed since seal
    finite(obj, "editor_state.pt")     # DataError naming the first tensor with NaN/Inf
    same_layout(fresh, read, what)     # DataError when keys, shapes or dtypes differ
    readable(requests)                 # DataError naming a record and field that is no Unicode text
    stats_memory(modules, full, device_bytes)  # DataError: statistics beyond half the memory

A checksum catches what a flipped bit or an edited byte does to a file that still loads: without
it a damaged state resumes, a damaged cache entry is served as a hit, a damaged patch is applied.
SHA-256 runs at ~1.7 GB/s here (hardware instructions), a few per cent of a save's time.
"""

import hashlib
import os

import torch

from capture import DataError

KEY = "sha256"
MEMORY_SHARE = 0.5  # the edited layers' statistics may take at most this share of a device
REQUEST_BYTES = 4096  # a loaded request with its probes (measured: 1.3 KB for ZsRE; margin)


def digest(obj, h=None):
    """SHA-256 hex digest of a nested structure of dicts, lists/tuples, tensors and plain values:
    every tensor's dtype, shape and bytes, every key and value; lists and tuples hash alike
    (torch.load may return one for the other)."""
    top = h is None
    h = hashlib.sha256() if top else h
    if isinstance(obj, dict):
        h.update(b"{%d" % len(obj))
        for k in sorted(obj, key=repr):
            h.update(repr(k).encode())
            digest(obj[k], h)
    elif isinstance(obj, (list, tuple)):
        h.update(b"[%d" % len(obj))
        for x in obj:
            digest(x, h)
    elif isinstance(obj, torch.Tensor):
        t = obj.detach().contiguous().reshape(-1).cpu()
        h.update(f"T{t.dtype}{tuple(obj.shape)}".encode())
        h.update(t.view(torch.uint8).numpy())  # bytes, whatever the dtype (bf16 has no numpy type)
    else:
        h.update(f"{type(obj).__name__}:{obj!r}".encode())
    return h.hexdigest() if top else None


def seal(obj):
    """obj (a dict) with its checksum added under "sha256"."""
    return {**obj, KEY: digest({k: v for k, v in obj.items() if k != KEY})}


def unseal(obj, what):
    """obj without its checksum; DataError when it has none or it does not match."""
    if not isinstance(obj, dict) or KEY not in obj:
        raise DataError(
            f"{what}: no checksum (not written by this version of stableedit, or damaged)"
        )
    body = {k: v for k, v in obj.items() if k != KEY}
    if digest(body) != obj[KEY]:
        raise DataError(
            f"{what}: checksum mismatch: the file changed after it was written (damaged or edited)"
        )
    return body


def finite(obj, what, path=""):
    """DataError naming the first floating tensor (or float) in obj that holds NaN or Inf."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            finite(v, what, f"{path}/{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            finite(v, what, f"{path}/{i}")
    elif (
        isinstance(obj, torch.Tensor) and obj.is_floating_point() and not torch.isfinite(obj).all()
    ):
        raise DataError(f"{what}: non-finite values in {path or 'the tensor'}")


def same_layout(fresh, read, what, path=""):
    """DataError unless `read` has the structure of `fresh`: the same dict keys, list lengths and
    tensor shapes and dtypes (a state of another model, layer set or version does not load)."""
    where = path or "the top level"
    if isinstance(fresh, dict):
        if not isinstance(read, dict) or set(fresh) != set(read):
            got = sorted(map(str, read))[:4] if isinstance(read, dict) else type(read).__name__
            raise DataError(
                f"{what}: {where} should hold {sorted(map(str, fresh))[:4]}, holds {got}"
            )
        for k in fresh:
            same_layout(fresh[k], read[k], what, f"{path}/{k}")
    elif isinstance(fresh, (list, tuple)):
        if not isinstance(read, (list, tuple)) or len(fresh) != len(read):
            raise DataError(f"{what}: {where} should be a list of {len(fresh)}")
        for i, (a, b) in enumerate(zip(fresh, read)):
            same_layout(a, b, what, f"{path}/{i}")
    elif isinstance(fresh, torch.Tensor):
        if (
            not isinstance(read, torch.Tensor)
            or read.shape != fresh.shape
            or read.dtype != fresh.dtype
        ):
            got = (
                f"{read.dtype} {list(read.shape)}"
                if isinstance(read, torch.Tensor)
                else type(read).__name__
            )
            raise DataError(
                f"{what}: {where} should be {fresh.dtype} {list(fresh.shape)}, is {got}"
            )


def device(name, here=True):
    """The torch device `name`, or DataError: not a device name, or (here) not on this machine. --plan
    plans for a device without using it: here=False."""
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise DataError(f"--device {name}: not a torch device (cpu, cuda, cuda:N, mps)") from None
    if not here and dev.type in ("cpu", "cuda", "mps"):
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DataError(
                f"--device {name}: this torch ({torch.__version__}) sees no CUDA device; use --device cpu"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DataError(
                f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise DataError(
                f"--device {name}: MPS is not available on this machine; use --device cpu"
            )
    elif dev.type != "cpu":
        raise DataError(f"--device {name}: only cpu, cuda and mps are supported")
    return dev


def host_bytes():
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def device_bytes(dev):
    """Total memory of a device: the GPU's, else the host's."""
    dev = torch.device(dev)
    return torch.cuda.mem_get_info(dev)[1] if dev.type == "cuda" else host_bytes()


def stats_memory(widths, dev, total=None):
    """DataError when the float64 statistics of the edited layers outgrow MEMORY_SHARE of the device:
    widths {layer: (d_out, full)}, a full covariance costing Sigma_g, its eigenvectors and one
    workspace of the same size, 3 d_out^2 float64 (a diagonal one: 4 d_out)."""
    total = device_bytes(dev) if total is None else total
    need = {n: 8 * (3 * d * d if full else 4 * d) for n, (d, full) in widths.items()}
    if sum(need.values()) > MEMORY_SHARE * total:
        big = max(need, key=need.get)
        d = widths[big][0]
        raise DataError(
            f"the statistics of the {len(need)} edited layer(s) need {sum(need.values()) / 1e9:.1f} GB "
            f"({big}: a {d} x {d} float64 Sigma_g, {need[big] / 1e9:.1f} GB with its eigenvectors), more "
            f"than {MEMORY_SHARE:.0%} of the {total / 1e9:.1f} GB of {dev}; edit narrower layers (--layers)"
        )


def requests_memory(n, total=None):
    """DataError when n loaded requests would outgrow MEMORY_SHARE of the host's memory."""
    total = host_bytes() if total is None else total
    if n * REQUEST_BYTES > MEMORY_SHARE * total:
        raise DataError(
            f"--n {n}: the requests alone would need ~{n * REQUEST_BYTES / 1e9:.0f} GB in memory, more "
            f"than {MEMORY_SHARE:.0%} of this machine's {total / 1e9:.1f} GB"
        )


def texts(r):
    """(field, text, is a prompt) of every text of request r that a run tokenizes: prompts before
    their answers, the fields named as lab.request.Request names them."""
    yield "prompt", r.prompt, True
    yield "target", r.target, False
    yield from ((f"rephrase {i}", p, True) for i, p in enumerate(r.rephrase))
    yield from ((f"personas {i}", p, True) for i, p in enumerate(r.personas))
    probes = [(f"locality{' ' + k if k else ''}", ps) for k, ps in r.locality.items()]
    for kind, pairs in [*probes, ("reasoning", r.reasoning), ("portability", r.portability)]:
        for i, (p, a) in enumerate(pairs):
            yield f"{kind} prompt {i}", p, True
            yield f"{kind} answer {i}", a, False


def readable(requests):
    """DataError naming the first request and field whose text is no string, or no Unicode a tokenizer
    can read (an unpaired surrogate such as "\\ud800", which JSON can spell): found before the run
    writes anything, not when a step or an evaluation meets it."""
    for r in requests:
        for what, t, _ in texts(r):
            where = _named(r)
            if not isinstance(t, str):
                raise DataError(f"{where}: {what} is a {type(t).__name__}, not text")
            try:
                t.encode("utf-8")
            except UnicodeEncodeError as e:
                raise DataError(
                    f"{where}: {what} holds U+{ord(t[e.start]):04X} at character {e.start}, an "
                    "unpaired surrogate: not Unicode text a tokenizer reads; fix the record"
                ) from None


def tokenizable(tokenizer, requests, max_length=256):
    """DataError naming the first request and field that the tokenizer refuses or turns into zero
    tokens, or an answer of max_length tokens or more (capture.tokenize joins " " + answer and would
    refuse these mid-run): one tokenizer pass over every text, before the run's first step."""
    found = [
        (r, what, t if prompt else " " + t.strip(), prompt)
        for r in requests
        for what, t, prompt in texts(r)
    ]
    try:
        ids = _ids(tokenizer, [(t, p) for _, _, t, p in found])
    except Exception:  # one text the tokenizer cannot read: find which, one by one
        ids = None
    for j, (r, what, t, prompt) in enumerate(found):
        try:
            got = ids[j] if ids is not None else _ids(tokenizer, [(t, prompt)])[0]
        except Exception as e:
            raise DataError(f"{_named(r)}: the tokenizer refuses {what} {t[:40]!r} ({e})") from None
        if not got or not t.strip():
            raise DataError(f"{_named(r)}: {what} {t.strip()!r} tokenizes to zero tokens")
        if not prompt and len(got) >= max_length:
            raise DataError(
                f"{_named(r)}: {what} is {len(got)} tokens, more than the {max_length - 1} an edit "
                "step takes"
            )


def _ids(tokenizer, texts):
    """Token ids of (text, is a prompt) pairs: prompts as the model reads them, answers without
    special tokens (as capture.tokenize appends them)."""
    prompts = [t for t, p in texts if p]
    answers = [t for t, p in texts if not p]
    P = iter(tokenizer(prompts)["input_ids"] if prompts else [])
    A = iter(tokenizer(answers, add_special_tokens=False)["input_ids"] if answers else [])
    return [next(P) if p else next(A) for _, p in texts]


def _named(r):
    """Where request r was read ("facts.json record 3"), else the start of its prompt."""
    return r.where or repr(r.prompt[:40])


if __name__ == "__main__":
    state = {"W": torch.randn(4, 3), "step": 7, "rows": [{"loss": 1.5}]}
    sealed = seal(state)
    raw = sealed["W"].view(torch.int32)
    raw[0, 0] ^= 1  # one flipped bit
    try:
        unseal(sealed, "demo state")
    except DataError as e:
        print(f"one flipped bit is caught: {e}")
    try:
        stats_memory({"lm_head": (49152, True)}, "cpu")
    except DataError as e:
        print(f"a vocabulary-wide Sigma_g is refused before it is allocated: {e}")
