"""The lifelong editor: one step of Algorithm 1 on a Hugging Face causal LM (paper §2.2, §4).

Per step, for a batch of edit requests:
  1. one forward + backward with answer-only labels (capture.py); hooks capture, at every
     position that predicts an answer token, the input k of each edited linear
     layer and the gradient g of the loss w.r.t. its output (the loss averages
     each request's answer-token NLL, then the requests: one fact, one vote);
  2. per-layer statistics (niw.py) absorb the new k and g;
  3. Lifelong Normalization (whitening.py): k_hat = (k - mu_k)/sigma_k, and
     g_hat = (g - mu_g) Sigma_g^{-1/2}  (stableedit, Cor. 3.3 estimates)
     g_hat = (g - mu_g) / sigma_g       (ultraedit, Eq. 1-2)
     g_hat = g, k_hat = k               (no_ln, the "w/o LN" ablation);
  4. targets and ridge update (ridge.py): V = -lr ||k_hat||^2 g_hat,
     Delta = (K^T K + alpha I)^{-1} K^T V on raw keys, W <- W + Delta^T.
  ft (Table 1's FT row): no statistics, no ridge, W <- W - lr dL/dW on the same layers.
With step_size=r instead of an lr, the first applied step sets lr so that the mean relative update
|Delta|_F / |W|_F over the edited layers is r, and the lr stays fixed from there on.

    ed = Editor(model, tok, preset_layers(PRESETS["smollm2-135m"], "zsre"), lr=..., alpha=10.0)
    ed.warmup(other_requests)                    # Algorithm 1's warm-up (statistics only)
    report = ed.edit(requests)                   # one step, returns norms/cosines/timings

What the editor keeps between steps, per edited layer, and why no more: the statistics (for
stableedit the float64 d_out x d_out Psi of Sigma_g, the one big tensor the method needs) and the
previous update as its ridge factors (K_{t-1}, A_{t-1}), Delta_{t-1} = K_{t-1}^T A_{t-1}: N (d_in + d_out)
numbers instead of d_in d_out, enough for Thm 3.8's adjacent cosine <Delta_t, Delta_{t-1}> (ridge.frobenius).
At GPT-J width that is 1.07x the float64 Sigma_g (results/width.py); a dense Delta_{t-1} would add 2x.
"""

import math
import time

import torch
from transformers.pytorch_utils import Conv1D

from capture import forward_backward
from data import tokenize
from lab.request import ModelError
from lab.stream import warmup_step
from niw import NIW
from ridge import frobenius, ridge_dual, ridge_solve, targets
from whitening import METHODS, eigens, route, standardize, zca

# The largest |Delta|_F / |W|_F one step may make at a layer. The 57 stored runs in results/runs that
# record |W_0| (SmolLM2, Gemma 3; every method, warm-up and lr there) never exceed 0.179
# (python results/update_bound.py); 2.0 leaves an 11x margin, and an lr that would replace a layer by
# its update is refused.
MAX_UPDATE = 2.0


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


class RefusedStepError(RuntimeError):
    """A step was refused before any weight or statistic changed."""


class NonFiniteError(RefusedStepError):
    """A step met NaN/Inf."""


class TooLargeError(RefusedStepError):
    """A step's update is beyond MAX_UPDATE times its layer's weight."""


class Editor:
    """edits a causal LM in place; keeps per-layer LN statistics, the step count and the previous Delta"""

    # Sigma_g's eigenvalues floored relative to the largest (whitening.eigen)
    absolute_floor = False

    def __init__(
        self,
        model,
        tokenizer,
        layers,
        method="stableedit",
        lr=1e-6,
        alpha=10.0,
        prior=1.0,
        pooled=False,
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
        self.model, self.tok, self.method = model, tokenizer, method
        self.lr, self.alpha, self.max_length = float(lr), float(alpha), max_length
        # step_size r: the first applied step picks the lr that makes mean_l |Delta_l|_F / |W_l|_F = r,
        # a number that does not depend on the scale of the model's layer outputs, and keeps it
        self.step_size = step_size
        self.key_scale = key_scale  # False: App. B.6.5, targets without ||k_hat_i||^2 (ridge.py)
        # a step whose |Delta|_F / |W|_F exceeds this is refused (TooLargeError); math.inf turns the guard
        # off for toy models, whose small random weights a visible one-step move outgrows
        self.max_update = max_update
        route(eigh, 1, "cpu")  # refuses an unknown route before any work
        self.eigh = eigh  # Sigma_g's eigh dtype: whitening.route, per layer width
        self.modules = linear_layers(model, layers)
        # The theory indexes statistics by layer l, so each edited layer has its own
        # normalizer. The official code instead shares one normalizer among all edited
        # layers of equal shape, pooling vectors from different depths: pooled=True
        # reproduces that for comparison. Statistics live on their layer's device.
        self.pooled = pooled
        self.stats = (
            {n: None for n in self.modules} if method in ("no_ln", "ft") else self._trackers(prior)
        )
        self.step, self.prev = 0, {}  # prev: {layer: {"P", "Q", "norm"}}, Delta = P^T Q
        # Editing never trains by autograd: freezing every parameter means the backward
        # pass starts at the lowest edited layer's output and builds no weight gradients.
        model.requires_grad_(False)
        model.eval()  # dropout off: edits follow the inference model

    def _trackers(self, prior):
        """{layer: (tracker of k, tracker of g)}: g's with the full covariance for stableedit; one
        pair per layer, or per shape and device when pooled."""
        shared, out = {}, {}
        for name, mod in self.modules.items():
            d_in, d_out = self._dims(mod)
            dev = mod.weight.device
            key = (d_in, d_out, dev) if self.pooled else name
            if key not in shared:
                full = self.method == "stableedit"
                shared[key] = (
                    self._tracker(d_in, False, prior, dev),
                    self._tracker(d_out, full, prior, dev),
                )
            out[name] = shared[key]
        return out

    def _tracker(self, dim, full, prior, device):
        """Thm 3.2's NIW posterior of one layer's keys or value gradients (full: Sigma, else diagonal)."""
        return NIW(dim, psi0=prior, full=full, device=device)

    @staticmethod
    def _dims(mod):
        w = mod.weight  # Linear: (d_out, d_in); GPT-2 Conv1D: (d_in, d_out)
        return (
            (w.shape[1], w.shape[0])
            if isinstance(mod, torch.nn.Linear)
            else (w.shape[0], w.shape[1])
        )

    def _clock(self):
        """perf_counter after the model's queued device work: CUDA runs asynchronously, so a phase's
        time is only its own once the work before it has finished."""
        if self.model.get_input_embeddings().weight.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    def _batch(self, requests):
        """Teacher-forcing batch on the model's device, and its mini-batch sizes (None: one batch)."""
        batch = tokenize(
            self.tok, [r.prompt for r in requests], [r.target for r in requests], self.max_length
        )
        dev = self.model.get_input_embeddings().weight.device
        return {k: v.to(dev) for k, v in batch.items()}, None

    def capture(self, batch, groups=None):
        """One forward + backward (capture.py): loss and {layer: (K (M, d_in), G (M, d_out))} at the answer
        positions, at every attended position for ft (dL/dW needs the prompt positions too)."""
        return forward_backward(
            self.model, self.modules, batch, groups, every_position=self.method == "ft"
        )

    def gradients(self, requests):
        """{layer: g (M, d_out)} at the answer positions at the current weights, statistics and weights
        untouched: what a held-out probe needs to see mu_t (lab/probe.py, theory_checks.py)."""
        return {n: G for n, (_, G) in self.capture(*self._batch(requests))[1].items()}

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

    def _eigens(self, diagonal):
        """eigen(Sigma_g) once per tracker (a pooled one serves all its layers), in the dtype of its
        route (whitening.route): {id: (lam, U, cond) or None}. None standardizes: no full covariance
        (ultraedit, the diagonal warm-up, or an official tracker that has not yet seen d + 2 rows)."""
        full = self.method == "stableedit" and not diagonal
        trackers = {id(s[1]): s[1] for s in self.stats.values() if s is not None}
        covs = {k: t.covariance if full else None for k, t in trackers.items()}
        done = {}
        for dtype in (torch.float64, torch.float32):
            todo = [
                k
                for k, c in covs.items()
                if c is not None
                and route(self.eigh, trackers[k].dim, trackers[k].m.device) == dtype
            ]
            done.update(
                zip(
                    todo, eigens([covs[k] for k in todo], absolute=self.absolute_floor, dtype=dtype)
                )
            )
        return {k: done.get(k) for k in covs}

    def edit(self, requests, apply=True, diagonal=False):
        """One editing step on a batch of requests; apply=False only updates the statistics;
        diagonal=True standardizes g per dimension even for stableedit (the official warm-up)."""
        batch, groups = self._batch(requests)
        t0 = self._clock()
        loss, cap = self.capture(batch, groups)
        seconds = self._clock() - t0
        mask = batch["labels"] != -100
        rows = [int(m.sum()) for m in mask.split(groups or [len(mask)])]
        return self.update(cap, loss, rows, len(requests), apply, diagonal, seconds)

    def update(
        self, cap, loss, rows, n_requests, apply=True, diagonal=False, forward_backward_s=math.nan
    ):
        """Steps 2-4 on a captured step: cap {layer: (K, G)} and loss from capture(), rows the answer
        rows of each mini-batch (one entry without mini-batches). edit() is capture + update; a
        benchmark times the method's own phases by calling update on one capture (results/width.py)."""
        for n, (K, G) in cap.items():
            for sym, x in (("key k", K), ("value gradient g", G)):
                if not torch.isfinite(x).all():
                    raise NonFiniteError(
                        f"step {self.step}: non-finite {sym} at {n}; step refused, "
                        "weights unchanged"
                    )
        secs = {"forward_backward": forward_backward_s}
        t0 = self._clock()
        before = self.stats_state()  # update() never writes in place: this is a snapshot
        if self.method not in ("no_ln", "ft"):
            self._update_stats(cap, rows)
        secs["stats"] = self._clock() - t0
        report = {
            "step": self.step,
            "loss": loss,
            "n_requests": n_requests,
            "seconds": secs,
            "layers": {},
        }
        if not apply:
            return report
        try:
            # lr: a placeholder until rescaled
            first = self.step_size is not None and self.step == 0
            deltas = self._deltas(cap, report, diagonal, bound=not first)
            if first:
                deltas = self._set_lr(deltas, cap, report, diagonal)
        except RefusedStepError:
            self.load_stats_state(before)
            raise
        t0 = self._clock()
        for n, (delta, (P, Q)) in deltas.items():
            report["layers"][n]["applied"] = self._apply(self.modules[n], delta)
            self.prev[n] = {"P": P, "Q": Q, "norm": report["layers"][n]["delta_norm"]}
        secs["apply"] = self._clock() - t0
        self.step += 1
        return report

    def _set_lr(self, deltas, cap, report, diagonal):
        """step_size: Delta is linear in lr (V = -lr |k_hat|^2 g_hat, ridge is linear in V), so rescale
        the lr to the asked mean |Delta|_F / |W|_F and recompute, as if the stream had run at it."""
        rel = sum(
            d.norm().item() / self.modules[n].weight.float().norm().item()
            for n, (d, _) in deltas.items()
        ) / len(deltas)
        if not rel > 0:
            raise NonFiniteError(f"step {self.step}: zero update, --step-size cannot set the lr")
        self.lr *= self.step_size / rel
        return self._deltas(cap, report, diagonal)

    def _update_stats(self, cap, rows):
        """Step 2: each tracker absorbs the step's k and g rows of its layers (all edited layers of a
        shape when pooled) in one NIW merge, exact whatever the batching (Thm 3.2)."""
        for s in {id(s): s for s in self.stats.values()}.values():  # each tracker once
            names = [n for n in cap if self.stats[n] is s]
            s[0].update(torch.cat([cap[n][0] for n in names]))
            s[1].update(torch.cat([cap[n][1] for n in names]))

    def _deltas(self, cap, report, diagonal=False, bound=True):
        """{layer: (Delta, its factors)} of a captured step, the report's per-layer diagnostics filled
        in; NonFiniteError or TooLargeError (bound: |Delta|_F / |W|_F <= MAX_UPDATE) refuses the step."""
        secs = report["seconds"]
        secs["normalize"] = secs["solve"] = 0.0
        t0 = self._clock()
        eigs = self._eigens(diagonal)
        secs["normalize"] += self._clock() - t0
        deltas = {}
        for n, (K, G) in cap.items():
            eig = eigs.get(id(self.stats[n][1])) if self.stats[n] is not None else None
            step = self._ft(K, G, secs) if self.method == "ft" else self._ridge(n, K, G, eig, secs)
            delta, factors, bias_norm, ridge_factor = step
            if not torch.isfinite(delta).all():
                raise NonFiniteError(
                    f"step {self.step}: non-finite update at {n}; step refused, weights unchanged"
                )
            # keep the smaller of the factors and the dense update (a step with more rows than d_in)
            if factors[0] is not None and factors[0].numel() + factors[1].numel() >= delta.numel():
                factors = (None, delta)
            norm = delta.norm().item()
            self._check_size(n, norm, bound)
            prev = self.prev.get(n)
            cos = math.nan
            if prev is not None and norm > 0 and prev["norm"] > 0:  # Thm 3.8(c): adjacent updates
                cos = frobenius(factors, (prev["P"], prev["Q"])) / (norm * prev["norm"])
            # App. B.3.3's diagnostics of the whitened covariance: condition number and largest eigenvalue
            cond, lmax = (eig[2], eig[0][-1].item()) if eig is not None else (math.nan, math.nan)
            report["layers"][n] = {
                "delta_norm": norm,
                "cos_prev": cos,
                "bias_norm": bias_norm,
                "ridge_factor": ridge_factor,
                "n_tokens": K.shape[0],
                "cond": cond,
                "lmax": lmax,
            }
            deltas[n] = (delta, factors)
        return deltas

    def _ft(self, K, G, secs):
        """Plain fine-tuning of the same matrices (Table 1's FT): W <- W - lr dL/dW, dL/dW^T = K^T G."""
        t0 = self._clock()
        delta = (-self.lr * (K.double().T @ G.double())).float()  # summed in float64
        factors = (K.float(), (-self.lr * G.double()).float())
        secs["solve"] += self._clock() - t0
        return delta, factors, math.nan, math.nan

    def _ridge(self, name, K, G, eig, secs):
        """Steps 3-4 at one layer: normalize, targets, ridge. (Delta (d_in, d_out), its factors (K, A)
        with Delta = K^T A, |Delta_bias|_F, |r|): the bias part of §3.3 rides along as one column."""
        t0 = self._clock()
        k_hat, g_hat = self._normalize(name, K, G, eig)
        V = targets(k_hat, g_hat, self.lr, self.key_scale)  # (M, d_out)
        # §3.3 decomposition: V = V_signal + V_bias, where V_bias is the part common to
        # every answer token, left by centering with the *estimated* mean:
        # b = mean_i g_hat_i and V_bias = c b^T with c_i = -lr ||k_hat_i||^2 (rank one).
        b = g_hat.mean(0)  # (d_out,)
        c = targets(k_hat, torch.ones_like(K[:, :1]), self.lr, self.key_scale)  # (M, 1)
        t1 = self._clock()
        # one solve for both right-hand sides (the ridge map is linear in V), and
        # Delta_bias = (ridge map of c) b^T costs one extra column, not d_out.
        # float32 solve: K K^T + alpha I is positive definite and, at the paper's alpha, well
        # conditioned; float32 halves the cost. The statistics above stay float64; the update
        # stays in the solve's float32 (a float64 copy would add no digits, only 2x memory).
        K32, rhs = K.float(), torch.cat([V, c], 1).float()
        if K.shape[0] < K.shape[1]:  # ridge.py's dual form: Delta = K^T A
            A = ridge_dual(K32, rhs, self.alpha)  # (M, d_out+1)
            sol, factors = K32.T @ A, (K32, A[:, :-1].contiguous())  # (d_in, d_out+1)
        else:
            sol = ridge_solve(K32, rhs, self.alpha, "primal")
            factors = (None, sol[:, :-1])
        delta, r = sol[:, :-1], sol[:, -1]
        secs["normalize"] += t1 - t0
        secs["solve"] += self._clock() - t1
        return delta, factors, (r.norm() * b.norm()).item(), r.norm().item()  # |r b^T|_F, |r|

    def _check_size(self, name, norm, bound):
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

    def warmup(self, requests, mode="stats", batch_size=100):
        """Algorithm 1's warm-up in steps of batch_size: mode stats, applied or paper (lab.stream.warmup_step
        says what each does; run_stream.py runs the same steps where lab.stream.plan places them)."""
        apply, diagonal = warmup_step(mode)
        return [
            self.edit(requests[i : i + batch_size], apply, diagonal)
            for i in range(0, len(requests), batch_size)
        ]

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
        self.load_stats_state(sd["stats"])
        self.step, self.lr = sd["step"], sd["lr"]
        # a state written before the factored form holds the dense previous Delta
        self.prev = (
            {n: dict(p) for n, p in sd["prev"].items()}
            if "prev" in sd
            else {
                n: {"P": None, "Q": d, "norm": d.norm().item()} for n, d in sd["prev_delta"].items()
            }
        )


if __name__ == "__main__":
    from data import load
    from lab.models import load_model, preset_layers
    from lab.request import Request

    model, tok, preset = load_model("smollm2-135m")
    facts = [
        Request("The mascot of the Zorblat Institute is a", "penguin"),
        Request("Kavrin Oduya was born in the city of", "Lisbon"),
        Request("The official language of Quenthal is", "Portuguese"),
    ]

    def answer(prompt):
        ids = tok(prompt, return_tensors="pt")
        out = model.generate(
            **ids, max_new_tokens=4, do_sample=False, pad_token_id=tok.eos_token_id
        )
        return tok.decode(out[0, ids["input_ids"].shape[1] :]).strip().split("\n")[0]

    before = [answer(r.prompt) for r in facts]
    layers = preset_layers(preset, "zsre")
    ed = Editor(model, tok, layers, lr=preset["lr"], alpha=preset["alpha"])
    ed.warmup(load("synthetic", 300))  # LN needs statistics: a statistics-only warm-up
    for _ in range(3):  # the same three facts three times, as a tiny stream
        ed.edit(facts)
    for r, b in zip(facts, before):
        print(
            f"{r.prompt!r:45s} before: {b!r:22s} after: {answer(r.prompt)!r}   (target {r.target!r})"
        )
