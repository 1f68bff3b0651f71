"""The official ULTRAEDIT and StableEdit codes' algorithmic choices, replicated (../shared/peers/).

Our editor follows the paper's math (§3.1 NIW statistics per layer, a scale-free prior, eigenvalues
floored relative to the largest); the official codes (`nets.RunningMeanStd`, `editor/ultraedit.py`,
`editor/stableedit.py`) differ in ways the paper does not mention. `lab.settings.REPLICAS` turns each
code's choices on at once, so a comparison with the official numbers is one about the method, not about a
reimplementation:

  both     one normalizer per weight shape, pooling all edited layers; loss = mean CE over the answer
           tokens of a mini-batch of 10 prompts (mini-batches cut after sorting the step's prompts by
           length), statistics updated per mini-batch and per layer; no prior: mean/variance start at
           the first rows; k_hat = (k - mu) / (sigma + 1.19e-7) with sigma = sqrt(M2 / (n - 1));
           the target is appended to the prompt with one space, verbatim (" " + alt; ours strips it)
  ULTRAEDIT  M2 += N * var_unbiased(x_b) + shift term (the batch variance with N - 1, times N);
           ridge lambda = 1, hard-coded; no warm-up
  StableEdit M2 += N * var_biased(x_b) + shift term; full covariance of g with divisor n - d - 1,
           whitening only once n > d + 1, eigenvalues clamped at an absolute 1e-6 (on SmolLM2 the
           eigenvalues of Sigma_g are ~1e-9..1e-7, so this clamp replaces whitening by a scaling);
           alpha = 10; warm-up ("preheat") on training-split records, applied to the weights, with
           diagonal standardization of k and g ("train" mode)

    tracker = RunningMeanStd(576, full=True, unbiased=False)    # the StableEdit normalizer of g
    ed = OfficialEditor(model, tok, layers, lr=3e-4, **REPLICAS["ultraedit-official"]["editor"])  # lab/settings.py
"""

from dataclasses import replace

import torch

from capture import forward_backward
from editor import Editor, dims
from niw import NIW
from whitening import eigens, route

EPS32 = torch.finfo(torch.float32).eps  # the official codes' eps: they run in float32
EIG_FLOOR = 1e-6  # the official StableEdit's absolute clamp of Sigma_g's eigenvalues


class RunningMeanStd:
    """the official running mean / std (and covariance) of d-dimensional rows, Chan's merge"""

    def __init__(self, dim, full=False, unbiased=False, device=None):
        self.dim, self.full, self.unbiased = dim, full, unbiased
        self.n = 0
        self.m = torch.zeros(dim, dtype=torch.float64, device=device)
        self.M2 = torch.zeros(dim, dtype=torch.float64, device=device)
        self.C = torch.zeros((dim, dim) if full else (0,), dtype=torch.float64, device=device)

    def update(self, x):
        """Merge a batch x (N, d). Builds new tensors, so an earlier state_dict() stays a snapshot."""
        x = x.detach().to(torch.float64)  # (N, d)
        N = x.shape[0]
        n = self.n + N
        delta = x.mean(0) - self.m  # (d,)
        self.m = self.m + N * delta / n
        # ULTRAEDIT multiplies the *unbiased* batch variance by N: M2 grows by N/(N-1) S, not S
        self.M2 = (
            self.M2 + N * x.var(0, correction=int(self.unbiased)) + self.n * N * delta.pow(2) / n
        )
        if self.full:
            xc = x - x.mean(0)
            self.C = self.C + xc.T @ xc + self.n * N * torch.outer(delta, delta) / n
        self.n = n

    @property
    def mean(self):
        return self.m

    @property
    def variance(self):
        """(sigma + eps)^2, so that (x - mu) / sqrt(variance) is the official (x - mu) / (sigma + eps)."""
        return ((self.M2 / (self.n - 1 + EPS32)).sqrt() + EPS32).pow(2)

    @property
    def covariance(self):
        """cov / (n - d - 1 + eps), or None while n <= d + 1 (the official code then standardizes)."""
        if not self.full or self.n <= self.dim + 1:
            return None
        return self.C / (self.n - self.dim - 1 + EPS32)

    def state_dict(self):
        return {
            "dim": self.dim,
            "full": self.full,
            "unbiased": self.unbiased,
            "n": self.n,
            "m": self.m,
            "M2": self.M2,
            "C": self.C,
        }

    def load_state_dict(self, sd):
        if (sd["dim"], sd["full"], sd["unbiased"]) != (self.dim, self.full, self.unbiased):
            raise ValueError(f"official tracker state is for dim={sd['dim']}, full={sd['full']}")
        self.n = sd["n"]
        self.m, self.M2, self.C = (sd[k].to(torch.float64).clone() for k in ("m", "M2", "C"))


def group_weights(mask, groups):
    """(B, T) token weights of L = sum_g mean_{answer tokens j of mini-batch g} nll_j: the sum of the
    losses of separate mini-batch backward passes (mask (B, T), groups: the mini-batch sizes)."""
    tokens = torch.stack([m.sum() for m in mask.split(groups)])  # (n_groups,)
    per_row = torch.repeat_interleave(1.0 / tokens, torch.tensor(groups, device=tokens.device))
    return per_row.unsqueeze(1).expand_as(mask)  # (B, T)


class OfficialEditor(Editor):
    """The Editor with the official codes' choices: one normalizer per weight shape and device pooling
    the edited layers (pooled); RunningMeanStd in place of the NIW posterior (stats: "official-unbiased"
    ULTRAEDIT, "official-biased" StableEdit, or "niw"); mini-batches of `minibatch` prompts cut after
    sorting by length, their losses summed and their rows merged layer by layer (None: one batch);
    Sigma_g's eigenvalues clamped at an absolute 1e-6 (eig_floor); and edit(..., diagonal=True), the
    official warm-up that standardizes g per dimension even for stableedit."""

    def __init__(
        self, *args, pooled=True, stats="official-biased", minibatch=10, eig_floor="absolute", **kw
    ):
        if stats not in ("niw", "official-unbiased", "official-biased") or eig_floor not in (
            "relative",
            "absolute",
        ):
            raise ValueError(
                "stats: niw, official-unbiased or official-biased; eig_floor: relative or absolute"
            )
        if minibatch is not None and minibatch < 1:
            raise ValueError(f"minibatch must be positive, got {minibatch}")
        self.pooled, self.stats_kind, self.minibatch = pooled, stats, minibatch
        self.absolute_floor = eig_floor == "absolute"
        self.groups, self.rows, self.diagonal = None, None, False  # of the step under way
        super().__init__(*args, **kw)

    def _trackers(self, prior):
        """One (k, g) pair of trackers per layer, or per (d_in, d_out, device) when pooled."""
        shared, out = {}, {}
        for name, mod in self.modules.items():
            d_in, d_out = dims(mod)
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
        if self.stats_kind == "niw":
            return NIW(dim, psi0=prior, full=full, device=device)
        unbiased = self.stats_kind == "official-unbiased"
        return RunningMeanStd(dim, full=full, unbiased=unbiased, device=device)

    def edit(self, requests, apply=True, diagonal=False):
        self.diagonal = diagonal
        try:
            return super().edit(requests, apply)
        finally:
            self.diagonal = False

    def _batch(self, requests):
        """The Editor's batch sorted by token length, longest first; its mini-batch sizes kept."""
        batch = super()._batch(requests)
        n, m = len(requests), self.minibatch
        self.groups = None if m is None else [min(m, n - s) for s in range(0, n, m)]
        if m is None:
            return batch
        lengths = batch["attention_mask"].sum(1).tolist()
        order = sorted(range(n), key=lambda i: -lengths[i])  # stable, longest first
        return {k: v[order] for k, v in batch.items()}

    def capture(self, batch):
        """The Editor's capture with each mini-batch's loss the mean over its answer tokens; the answer
        rows of each mini-batch kept for the merge."""
        mask = batch["labels"] != -100
        groups = self.groups or [len(mask)]
        self.rows = [int(m.sum()) for m in mask.split(groups)]
        w = None if self.groups is None else group_weights(mask, self.groups)
        return forward_backward(self.model, self.modules, batch, self.method == "ft", w)

    def _update_stats(self, cap):
        """Each tracker once (a pooled one takes all its layers' rows); an NIW merge is exact, so
        stats="niw" merges the whole step at once, the official trackers mini-batch by mini-batch and
        layer by layer, as the official loop does."""
        trackers = {id(s): s for s in self.stats.values()}.values()
        if self.stats_kind == "niw":
            for s in trackers:
                names = [n for n in cap if self.stats[n] is s]
                s[0].update(torch.cat([cap[n][0] for n in names]))
                s[1].update(torch.cat([cap[n][1] for n in names]))
            return
        ends = torch.tensor([0] + list(self.rows)).cumsum(0).tolist()
        for lo, hi in zip(ends[:-1], ends[1:]):
            for s in trackers:
                for n in [n for n in cap if self.stats[n] is s]:
                    s[0].update(cap[n][0][lo:hi])
                    s[1].update(cap[n][1][lo:hi])

    def _groups(self):
        """Pooled: all layers in one group, as one tracker serves several layers and is decomposed
        once; otherwise the Editor's pairs."""
        return [list(self.modules)] if self.pooled else super()._groups()

    def _eigens(self):
        """eigen(Sigma_g) once per tracker (a pooled one serves all its layers); None standardizes: not
        stableedit, the diagonal warm-up, or an official tracker that has not yet seen d + 2 rows."""
        full = self.method == "stableedit" and not self.diagonal
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
            # the absolute clamp: decompose unfloored, then floor at EIG_FLOOR itself
            got = eigens(
                [covs[k] for k in todo], floor=0.0 if self.absolute_floor else 1e-6, dtype=dtype
            )
            if self.absolute_floor:
                got = [(lam.clamp_min(EIG_FLOOR), U, cond) for lam, U, cond in got]
            done.update(zip(todo, got))
        return {n: None if s is None else done.get(id(s[1])) for n, s in self.stats.items()}


def verbatim(requests):
    """The official join, prompt + " " + target with the target as stored (tokenize keeps a target
    that already starts with a space as it is)."""
    return [
        replace(
            r,
            target=" " + r.target,
            locality={k: [(p, " " + a) for p, a in v] for k, v in r.locality.items()},
        )
        for r in requests
    ]


if __name__ == "__main__":
    torch.manual_seed(0)
    x = torch.randn(300, 4, dtype=torch.float64) * torch.tensor([1.0, 2.0, 3.0, 4.0]) + 5
    for unbiased in (False, True):
        t = RunningMeanStd(4, full=True, unbiased=unbiased)
        for b in x.split(10):
            t.update(b)
        print(
            f"unbiased={unbiased}: M2 / exact scatter = {(t.M2 / ((x - x.mean(0)) ** 2).sum(0)).tolist()}"
        )
    print(
        "(ULTRAEDIT's merge over batches of 10 overstates the scatter by about 10/9; StableEdit's is exact)"
    )
