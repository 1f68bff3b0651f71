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
    ed = OfficialEditor(model, tok, layers, lr=3e-4, **REPLICAS["ultraedit-official"]["editor"])  # lab.settings
"""

from dataclasses import replace

import torch

from editor import Editor

EPS32 = torch.finfo(torch.float32).eps  # the official codes' eps: they run in float32


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


class OfficialEditor(Editor):
    """The Editor with the official codes' tracker, batching and statistics merge: RunningMeanStd in
    place of the NIW posterior (stats: "official-unbiased" ULTRAEDIT, "official-biased" StableEdit, or
    "niw"), mini-batches of `minibatch` prompts cut after sorting by length (None: one batch), each
    merged layer by layer, and Sigma_g's eigenvalues clamped at an absolute 1e-6 (eig_floor)."""

    def __init__(self, *args, stats="official-biased", minibatch=10, eig_floor="absolute", **kw):
        if stats not in ("niw", "official-unbiased", "official-biased") or eig_floor not in (
            "relative",
            "absolute",
        ):
            raise ValueError(
                "stats: niw, official-unbiased or official-biased; eig_floor: relative or absolute"
            )
        if minibatch is not None and minibatch < 1:
            raise ValueError(f"minibatch must be positive, got {minibatch}")
        self.stats_kind, self.minibatch, self.absolute_floor = (
            stats,
            minibatch,
            eig_floor == "absolute",
        )
        super().__init__(*args, **kw)

    def _tracker(self, dim, full, prior, device):
        if self.stats_kind == "niw":
            return super()._tracker(dim, full, prior, device)
        return RunningMeanStd(
            dim, full=full, unbiased=self.stats_kind == "official-unbiased", device=device
        )

    def _batch(self, requests):
        """The Editor's batch sorted by token length, longest first, and its mini-batch sizes."""
        batch, groups = super()._batch(requests)
        if self.minibatch is None:
            return batch, groups
        lengths = batch["attention_mask"].sum(1).tolist()
        order = sorted(range(len(requests)), key=lambda i: -lengths[i])  # stable, longest first
        n, m = len(requests), self.minibatch
        return {k: v[order] for k, v in batch.items()}, [min(m, n - s) for s in range(0, n, m)]

    def _update_stats(self, cap, rows):
        """Each mini-batch's rows merged layer by layer (rows: answer rows per mini-batch); an NIW
        merge is exact, so stats="niw" keeps the Editor's one merge."""
        if self.stats_kind == "niw":
            return super()._update_stats(cap, rows)
        ends = torch.tensor([0] + list(rows)).cumsum(0).tolist()
        for lo, hi in zip(ends[:-1], ends[1:]):
            for s in {id(s): s for s in self.stats.values()}.values():  # each tracker once
                for n in [n for n in cap if self.stats[n] is s]:
                    s[0].update(cap[n][0][lo:hi])
                    s[1].update(cap[n][1][lo:hi])


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
