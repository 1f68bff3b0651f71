"""The lifelong editor: one step of Algorithm 1 on a Hugging Face causal LM (paper §2.2, §3.3, §4).

Per step, for a batch of edit requests, the four steps below, in this file's order:
  1. capture (capture.py): one forward + backward with answer-only labels; hooks catch, at every
     position that predicts an answer token, the input k of each edited linear layer and the
     gradient g of the loss w.r.t. its output (one fact, one vote: capture.py's loss);
  2. statistics (niw.py): each layer's NIW posteriors of k and g absorb the step's rows (Thm 3.2);
  3. Lifelong Normalization (whitening.py): k_hat = (k - mu_k) / sigma_k, and
     g_hat = (g - mu_g) Sigma_g^{-1/2}   stableedit, the Cor. 3.3 estimates (ZCA)
     g_hat = (g - mu_g) / sigma_g        ultraedit, Eq. 1-2
     g_hat = g, k_hat = k                no_ln, the "w/o LN" ablation;
  4. targets and ridge update (ridge.py): V = -lr ||k_hat||^2 g_hat,
     Delta = (K^T K + alpha I)^{-1} K^T V on raw keys, W <- W + Delta^T.
  ft (Table 1's FT row): no statistics, no ridge, W <- W - lr dL/dW on the same layers.
With step_size=r instead of an lr, the first applied step sets the lr so that the mean relative update
|Delta|_F / |W|_F over the edited layers is r, and the lr stays fixed from there on.

    ed = Editor(model, tok, ["model.layers.20.mlp.down_proj"], lr=1e-6, alpha=10.0)
    ed.edit(other_requests, apply=False)         # Algorithm 1's warm-up: statistics only
    report = ed.edit(requests)                   # one step: norms, cosines, phase seconds

What the editor keeps between steps, per edited layer, and why no more: the statistics (for
stableedit the float64 d_out x d_out Psi of Sigma_g, the one big tensor the method needs) and the
previous update as its ridge factors (K_{t-1}, A_{t-1}), Delta_{t-1} = K_{t-1}^T A_{t-1}: N (d_in + d_out)
numbers instead of d_in d_out, enough for Thm 3.8's adjacent cosine <Delta_t, Delta_{t-1}> (ridge.frobenius).
"""

import copy
import math
import time
from contextlib import contextmanager

import torch
from transformers.pytorch_utils import Conv1D

from capture import ModelError, forward_backward, tokenize
from niw import NIW
from ridge import frobenius, ridge_dual, ridge_solve, targets
from whitening import METHODS, eigens, route, standardize, zca

# The largest |Delta|_F / |W|_F one step may make at a layer: an order of magnitude above the largest
# ratio any stored run reached (`python results/update_bound.py` prints it), so an lr that would
# replace a layer by its update is refused while every stored setting passes.
MAX_UPDATE = 2.0


class RefusedStepError(RuntimeError):
    """A step was refused before any weight or statistic changed."""


class NonFiniteError(RefusedStepError):
    """A step met NaN/Inf."""


class TooLargeError(RefusedStepError):
    """A step's update is beyond MAX_UPDATE times its layer's weight."""


def linear_layers(model, layers):
    """{name: module} of the edited layers; ModelError for a name the model lacks or a non-linear one."""
    named = dict(model.named_modules())
    for name in layers:
        if name not in named:
            example = next(n for n, m in named.items() if isinstance(m, torch.nn.Linear))
            raise ModelError(f"layer {name!r} is not a module of this model (e.g. {example})")
        if not isinstance(named[name], (torch.nn.Linear, Conv1D)):
            kind = type(named[name]).__name__
            raise ModelError(f"layer {name!r} is a {kind}, not a linear layer")
    return {name: named[name] for name in layers}


def dims(mod):
    """(d_in, d_out) of a linear layer: Linear stores W as (d_out, d_in), GPT-2's Conv1D as (d_in, d_out)."""
    w = mod.weight
    return (w.shape[1], w.shape[0]) if isinstance(mod, torch.nn.Linear) else tuple(w.shape)


class PhaseClock:
    """Seconds per phase of one step, summed over layers. CUDA runs asynchronously, so each boundary
    waits for the queued device work: a phase's time is then its own."""

    def __init__(self, device):
        self.cuda, self.seconds = torch.device(device).type == "cuda", {}

    @contextmanager
    def __call__(self, phase):
        t0 = self._now()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + self._now() - t0

    def _now(self):
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()


class Editor:
    """Edits a causal LM in place; keeps per-layer LN statistics, the step count and the previous Delta."""

    def __init__(
        self,
        model,
        tokenizer,
        layers,
        method="stableedit",
        lr=1e-6,
        alpha=10.0,
        prior=1.0,
        max_length=256,
        step_size=None,
        key_scale=True,
        eigh="auto",
        max_update=MAX_UPDATE,
    ):
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        if step_size is not None:
            lr = 1.0 if lr is None else lr  # a placeholder: the first applied step sets it
        if not lr > 0 or not alpha > 0 or (step_size is not None and not step_size > 0):
            raise ValueError(
                f"lr, alpha and step_size must be positive (got lr={lr}, alpha={alpha}, "
                f"step_size={step_size})"
            )
        route(eigh, 1, "cpu")  # refuses an unknown route before any work
        self.model, self.tok, self.method = model, tokenizer, method
        self.lr, self.alpha, self.max_length = float(lr), float(alpha), max_length
        # step_size r: the first applied step picks the lr that makes mean_l |Delta_l|_F / |W_l|_F = r,
        # a number that does not depend on the scale of the model's layer outputs, and keeps it
        self.step_size = step_size
        self.key_scale = key_scale  # False: App. B.6.5, targets without ||k_hat_i||^2 (ridge.py)
        self.eigh = eigh  # Sigma_g's eigh dtype: whitening.route, per layer width
        # a step whose |Delta|_F / |W|_F exceeds this is refused (TooLargeError); math.inf turns the guard
        # off for toy models, whose small random weights a visible one-step move outgrows
        self.max_update = max_update
        self.modules = linear_layers(model, layers)
        # §3.1 indexes the statistics by layer l: each edited layer has its own pair of posteriors
        self.stats = (
            {n: None for n in self.modules} if method in ("no_ln", "ft") else self._trackers(prior)
        )
        self.step, self.prev = 0, {}  # prev: {layer: {"P", "Q", "norm"}}, Delta = P^T Q
        # Editing never trains by autograd: freezing every parameter means the backward
        # pass starts at the lowest edited layer's output and builds no weight gradients.
        model.requires_grad_(False)
        model.eval()  # dropout off: edits follow the inference model

    def _trackers(self, prior):
        """{layer: (NIW of k, NIW of g)} (Thm 3.2): g's with the full covariance for stableedit."""
        out = {}
        for name, mod in self.modules.items():
            d_in, d_out = dims(mod)
            dev = mod.weight.device  # statistics live on their layer's device
            full = self.method == "stableedit"
            out[name] = (
                NIW(d_in, psi0=prior, full=False, device=dev),
                NIW(d_out, psi0=prior, full=full, device=dev),
            )
        return out

    def _device(self):
        return self.model.get_input_embeddings().weight.device

    # ------------------------------------------------------------ step 1: capture k and g

    def _batch(self, requests):
        """The teacher-forcing batch (capture.tokenize) on the model's device."""
        prompts, answers = [r.prompt for r in requests], [r.target for r in requests]
        batch = tokenize(self.tok, prompts, answers, self.max_length)
        return {k: v.to(self._device()) for k, v in batch.items()}

    def capture(self, batch):
        """(loss, {layer: (K (M, d_in), G (M, d_out))}) at the answer positions (capture.py), at every
        attended position for ft (dL/dW needs the prompt positions too)."""
        return forward_backward(self.model, self.modules, batch, self.method == "ft")

    def gradients(self, requests):
        """{layer: g (M, d_out)} at the answer positions at the current weights, statistics and weights
        untouched: what a held-out probe needs to see mu_t (lab/probe.py, theory_checks.py)."""
        return {n: G for n, (_, G) in self.capture(self._batch(requests))[1].items()}

    # ------------------------------------------------------------ one step: steps 1-4

    def edit(self, requests, apply=True):
        """One editing step on a batch of requests; apply=False only updates the statistics (the
        warm-up of Algorithm 1)."""
        batch = self._batch(requests)
        clock = PhaseClock(self._device())
        with clock("forward_backward"):
            loss, cap = self.capture(batch)
        return self.update(cap, loss, len(requests), apply, clock)

    def update(self, cap, loss, n_requests, apply=True, clock=None):
        """Steps 2-4 on a captured step (cap {layer: (K, G)} and loss from capture()). A step that meets
        NaN/Inf or a too large update raises RefusedStepError with weights and statistics unchanged."""
        clock = clock or PhaseClock(self._device())
        clock.seconds.setdefault("forward_backward", math.nan)
        self._check_finite(cap)
        report = {"step": self.step, "loss": loss, "n_requests": n_requests}
        report.update(seconds=clock.seconds, layers={})
        if apply:  # computed and checked against trial posteriors (_trial): nothing is kept yet
            first = self.step_size is not None and self.step == 0  # lr: a placeholder until set
            steps = self._deltas(cap, clock, bound=not first)
            if first:
                steps = self._set_lr(steps, cap, clock)
        with clock("stats"):  # the step passed: its rows join the statistics (Thm 3.2)
            if self.method not in ("no_ln", "ft"):
                self._update_stats(cap)
        if not apply:
            return report
        for n, st in steps.items():  # now the weights move, one layer at a time
            self._apply_step(n, st, report, clock)
        self.step += 1
        return report

    def _check_finite(self, cap):
        for n, (K, G) in cap.items():
            for sym, x in (("key k", K), ("value gradient g", G)):
                if not torch.isfinite(x).all():
                    raise NonFiniteError(
                        f"step {self.step}: non-finite {sym} at {n}; step refused, weights unchanged"
                    )

    # ------------------------------------------------------------ step 2: statistics

    def _update_stats(self, cap):
        """Each layer's posteriors absorb the step's k and g rows in one NIW merge (Thm 3.2), exact
        whatever the batching."""
        for n, (K, G) in cap.items():
            sk, sg = self.stats[n]
            sk.update(K)
            sg.update(G)

    # ------------------------------------------------------------ step 3: normalize

    @contextmanager
    def _trial(self, cap, names, clock):
        """Inside the block, self.stats holds only `names`, each with the step's rows merged: the
        posterior that steps 3-4 use. The step is computed and checked against these copies one group
        at a time, so a refused step has nothing to undo and only one group's new Psi is alive at once
        (a snapshot of all 17 of GPT-J's old ones would be 2.3 GB); update() then merges the rows for
        good, the same bits. The trackers never write in place, so a shallow copy is a copy."""
        if self.method in ("no_ln", "ft"):  # no statistics to merge
            yield
            return
        kept, copies = self.stats, {}
        self.stats = {  # a tracker that serves several layers (lab/official.py) stays shared
            n: tuple(copies.setdefault(id(t), copy.copy(t)) for t in kept[n]) for n in names
        }
        try:
            with clock("stats"):
                self._update_stats({n: cap[n] for n in names})
            yield
        finally:
            self.stats = kept

    def _groups(self):
        """The layers in the groups whose Sigma_g are decomposed together: two at a time, as
        whitening.eigens runs two solves side by side. Only a group's d_out x d_out eigenvectors are
        alive at once (all 17 of GPT-J's float64 ones would be 2.3 GB)."""
        names = list(self.modules)
        return [names[i : i + 2] for i in range(0, len(names), 2)]

    def _eigens(self):
        """{layer: eigen(Sigma_g) or None} of the layers self.stats holds (inside _trial: one group),
        each in the dtype of its route (whitening.route). None standardizes g per dimension: every
        method but stableedit."""
        names = list(self.stats)
        if self.method != "stableedit":
            return {n: None for n in names}
        done = {}
        for dtype in (torch.float64, torch.float32):
            todo = [n for n in names if route(self.eigh, *self._width(n)) == dtype]
            done.update(zip(todo, eigens([self.stats[n][1].covariance for n in todo], dtype=dtype)))
        return done

    def _width(self, name):
        """(d_out, device) of a layer's Sigma_g: what whitening.route decides by."""
        sg = self.stats[name][1]
        return sg.dim, sg.m.device

    def _normalize(self, name, K, G, eig=None):
        """(k_hat (M, d_in), g_hat (M, d_out)) in float64; eig is eigen(Sigma_g) for full whitening,
        None to standardize g per dimension."""
        if self.method == "no_ln":
            return K.double(), G.double()
        sk, sg = self.stats[name]
        k_hat = standardize(K, sk.mean, sk.variance)
        if eig is not None:
            lam, U, _ = eig
            return k_hat, zca(G, sg.mean, lam, U)
        return k_hat, standardize(G, sg.mean, sg.variance)

    # ------------------------------------------------------------ step 4: targets and ridge

    def _targets(self, k_hat, g_hat):
        """The ridge's right-hand side [V | c] (M, d_out + 1) and b (d_out,). §3.3 decomposes
        V = V_signal + V_bias, where V_bias = c b^T is the part common to every answer token, left by
        centring with the *estimated* mean: b = mean_i g_hat_i, c_i = -lr ||k_hat_i||^2 (rank one).
        The ridge map is linear in V, so one solve serves both and Delta_bias costs one column."""
        V = targets(k_hat, g_hat, self.lr, self.key_scale)  # (M, d_out)
        b = g_hat.mean(0)  # (d_out,)
        c = targets(k_hat, torch.ones_like(k_hat[:, :1]), self.lr, self.key_scale)  # (M, 1)
        return torch.cat([V, c], 1), b

    def _ridge(self, K, rhs):
        """Eq. 5-6 on raw keys: (P, A) with [Delta | r] = P^T A, r the ridge map of c: (K (M, d_in),
        A (M, d_out + 1)) in the dual form, (None, [Delta | r] (d_in, d_out + 1)) in the primal one.
        The solve runs in float32: K K^T + alpha I is positive definite and, at the paper's alpha, well
        conditioned; float32 halves the cost, and a float64 copy of the update would add no digits,
        only memory. The statistics stay float64."""
        K32, rhs = K.float(), rhs.float()  # (M, d_in), (M, d_out + 1)
        if K.shape[0] < K.shape[1]:  # ridge.py's dual form: Delta = K^T A
            return K32, ridge_dual(K32, rhs, self.alpha)  # (M, d_out + 1)
        return None, ridge_solve(K32, rhs, self.alpha, "primal")  # (d_in, d_out + 1)

    def _ft(self, K, G):
        """Plain fine-tuning of the same matrices (Table 1's FT): W <- W - lr dL/dW, dL/dW^T = K^T G."""
        delta = (-self.lr * (K.double().T @ G.double())).float()  # summed in float64
        return delta, (K.float(), (-self.lr * G.double()).float())

    def _deltas(self, cap, clock, bound=True):
        """{layer: its step} of a captured step: the update as its ridge factors (`solve`), checked
        (NonFiniteError, or TooLargeError beyond max_update when bound) before any weight moves. The
        dense (d_in, d_out) Delta is formed only when applied, one layer at a time: all 17 of GPT-J's
        at once would be 4.6 GB."""
        clock.seconds.setdefault("solve", 0.0)
        steps = {}
        for group in self._groups():
            with self._trial(cap, group, clock):
                steps.update(self._group_steps(cap, group, clock, bound))
        return steps

    def _group_steps(self, cap, group, clock, bound):
        """{layer: its step} of one group, against the trial posteriors (_trial)."""
        steps = {}
        with clock("normalize"):
            eigs = self._eigens()
        for n in group:
            K, G = cap[n]
            st = {"b": None, "tokens": K.shape[0]}
            if self.method == "ft":
                with clock("solve"):
                    st["dense"], st["ft"] = self._ft(K, G)
            else:
                with clock("normalize"):
                    rhs, st["b"] = self._targets(*self._normalize(n, K, G, eigs[n]))
                with clock("solve"):
                    st["K"], st["A"] = self._ridge(K, rhs)
            st["eig"] = None if eigs[n] is None else (eigs[n][2], eigs[n][0][-1].item())
            self._check(n, self._norm(st), bound)
            steps[n] = st
        return steps

    @staticmethod
    def _solution(st):
        """(Delta (d_in, d_out), r (d_in,) or None) of a step: [Delta | r] = K^T A, formed here."""
        if "dense" in st:
            return st["dense"], None
        sol = st["A"] if st["K"] is None else st["K"].T @ st["A"]  # (d_in, d_out + 1)
        return sol[:, :-1], sol[:, -1]

    @staticmethod
    def _norm(st):
        """|Delta|_F of a step without forming Delta: sum((K K^T) * (A A^T)) in float64 (ridge.frobenius)."""
        if "dense" in st:
            return st["dense"].norm().item()
        P, Q = st["K"], st["A"][:, :-1].double()  # (None, Delta) in the primal form
        # the Gram form written out (not ridge.frobenius, the geometry assignment a5 blanks)
        sq = (Q.pow(2) if P is None else (P.double() @ P.double().T) * (Q @ Q.T)).sum().item()
        return math.sqrt(sq) if math.isfinite(sq) else math.nan

    def _apply_step(self, n, st, report, clock):
        """Form one layer's Delta, file its diagnostics, apply it and keep its factors for the next
        step's cosine (Thm 3.8(c))."""
        with clock("solve"):
            delta, r = self._solution(st)
            factors = self._factors(st, delta)
        norm, cos = self._diagnostics(n, delta, factors)
        bias_norm = ridge_factor = math.nan
        if r is not None:  # |Delta_bias|_F = |r b^T|_F = |r| |b|
            rn = r.norm()
            bias_norm, ridge_factor = (rn * st["b"].norm()).item(), rn.item()
        cond, lmax = st["eig"] or (math.nan, math.nan)
        L = report["layers"][n] = dict(delta_norm=norm, cos_prev=cos, bias_norm=bias_norm)
        L.update(ridge_factor=ridge_factor, n_tokens=st["tokens"], cond=cond, lmax=lmax)
        with clock("apply"):
            L["applied"] = self._apply(self.modules[n], delta)
        self.prev[n] = {"P": factors[0], "Q": factors[1], "norm": norm}

    @staticmethod
    def _factors(st, delta):
        """The factors to keep for the next cosine: (K, A) of the dual form, or the dense update where
        it is the smaller (a step with more rows than d_in, the primal form, ft)."""
        if "dense" in st:
            P, Q = st["ft"]
        elif st["K"] is not None:
            P, Q = st["K"], st["A"][:, :-1].contiguous()
        else:
            return None, delta
        return (None, delta) if P.numel() + Q.numel() >= delta.numel() else (P, Q)

    def _check(self, name, norm, bound):
        """NonFiniteError for a non-finite update; TooLargeError beyond max_update times the layer when
        bound."""
        if not math.isfinite(norm):
            raise NonFiniteError(
                f"step {self.step}: non-finite update at {name}; step refused, weights unchanged"
            )
        rel = norm / max(self.modules[name].weight.float().norm().item(), 1e-30)
        if bound and not rel <= self.max_update:  # a NaN ratio is refused too
            fix = (
                "its norm overflows: lower the lr by orders of magnitude"
                if not math.isfinite(rel)
                else f"an lr below {self.lr * self.max_update / rel:.3g} keeps this step within it"
            )
            raise TooLargeError(
                f"step {self.step}: |Delta|_F / |W|_F = {rel:.3g} at {name}, above the bound "
                f"{self.max_update:g} (editor.MAX_UPDATE): lr {self.lr:.3g} would wreck the layer; step "
                f"refused, weights unchanged; {fix}"
            )

    def _diagnostics(self, name, delta, factors):
        """|Delta|_F and Thm 3.8(c)'s adjacent cosine <Delta_t, Delta_{t-1}> / (|Delta_t| |Delta_{t-1}|)."""
        norm, prev, cos = delta.norm().item(), self.prev.get(name), math.nan
        if prev is not None and norm > 0 and prev["norm"] > 0:
            cos = frobenius(factors, (prev["P"], prev["Q"])) / (norm * prev["norm"])
        return norm, cos

    def _set_lr(self, steps, cap, clock):
        """step_size: Delta is linear in lr (V = -lr |k_hat|^2 g_hat, ridge is linear in V), so rescale
        the lr to the asked mean |Delta|_F / |W|_F and recompute, as if the stream had run at it."""
        rel = sum(
            self._solution(st)[0].norm().item() / self.modules[n].weight.float().norm().item()
            for n, st in steps.items()
        ) / len(steps)
        if not rel > 0:
            raise NonFiniteError(f"step {self.step}: zero update, --step-size cannot set the lr")
        self.lr *= self.step_size / rel
        return self._deltas(cap, clock)

    @staticmethod
    def _apply(mod, delta):
        """W <- W + Delta^T (Linear) or W + Delta (Conv1D). Returns |W_new - W_old| / |Delta|: below 1
        when the weight dtype (e.g. bf16) could not represent part of the update."""
        W = mod.weight
        step = (delta.T if isinstance(mod, torch.nn.Linear) else delta).to(W.device)
        old = W.detach().clone()
        with torch.no_grad():
            W.add_(step.to(W.dtype))
        norm = step.norm()
        return ((W.detach() - old).float().norm() / norm).item() if norm > 0 else 1.0

    # ------------------------------------------------------------ state

    def stats_state(self):
        return {
            n: None if s is None else (s[0].state_dict(), s[1].state_dict())
            for n, s in self.stats.items()
        }

    def load_stats_state(self, state):
        for n, s in state.items():
            if s is not None:
                self.stats[n][0].load_state_dict(s[0])
                self.stats[n][1].load_state_dict(s[1])

    def state_dict(self):
        return {
            "method": self.method,
            "layers": list(self.modules),
            "lr": self.lr,
            "alpha": self.alpha,
            "step": self.step,
            "stats": self.stats_state(),
            "prev": {n: dict(p) for n, p in self.prev.items()},
        }

    def load_state_dict(self, sd):
        if sd["method"] != self.method or sd["layers"] != list(self.modules):
            raise ValueError(
                f"editor state is for method {sd['method']} on {len(sd['layers'])} layers "
                f"{sd['layers'][:1]}...; this editor is {self.method} on {list(self.modules)[:1]}..."
            )
        if "prev" not in sd:
            raise ValueError("editor state without 'prev' is an older layout; rerun the stream")
        self.load_stats_state(sd["stats"])
        self.step, self.lr = sd["step"], sd["lr"]
        self.prev = {n: dict(p) for n, p in sd["prev"].items()}


if __name__ == "__main__":
    # A toy run that needs no download: a 4-block Llama with random weights (initialized at 0.2, so
    # its logits are not all equal) and a word-level tokenizer over the facts' words.
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(0)
    words = "the a of is in was born city capital language mascot penguin Lisbon Portuguese".split()
    vocab = {w: i for i, w in enumerate(["<eos>", *words, *(f"Name{i}" for i in range(40))])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<eos>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<eos>", pad_token="<eos>")
    cfg = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(vocab), initializer_range=0.2, **cfg))

    class Fact:  # an edit request: the Editor reads .prompt and .target
        def __init__(self, prompt, target):
            self.prompt, self.target = prompt, target

    facts = [
        Fact("the mascot of Name1 is a", "penguin"),
        Fact("Name2 was born in the city of", "Lisbon"),
        Fact("the language of Name3 is", "Portuguese"),
    ]
    relations = [
        "the capital of {} is",
        "{} was born in",
        "the mascot of {} is a",
        "the language of {} is",
    ]
    warm = [
        Fact(r.format(f"Name{i}"), f"Name{(7 * i + j) % 40}")
        for i in range(4, 40)
        for j, r in enumerate(relations)
    ]

    def p_target(f):
        ids = tok(f.prompt, return_tensors="pt")["input_ids"]
        return model(ids).logits[0, -1].softmax(-1)[tok.convert_tokens_to_ids(f.target)].item()

    before = [p_target(f) for f in facts]
    layers = ["model.layers.2.mlp.down_proj", "model.layers.3.mlp.down_proj"]
    ed = Editor(model, tok, layers, lr=1.0, max_update=math.inf)  # toy weights: no size guard
    ed.edit(warm, apply=False)  # Algorithm 1's warm-up: LN needs statistics before the first edit
    report = ed.edit(facts)  # one step: capture, statistics, normalize, targets, ridge, apply
    for f, p in zip(facts, before):
        print(
            f"{f.prompt!r:34} -> {f.target!r:13} p(target) before {p:.3f}, after one step {p_target(f):.3f}"
        )
    norms = {n.split(".")[2]: round(L["delta_norm"], 2) for n, L in report["layers"].items()}
    print(f"|Delta|_F per edited block: {norms}")
