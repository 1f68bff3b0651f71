"""The graded tests of the course (assignments/tasks.py), one pytest marker per assignment.

Each test checks a property the paper states -- an identity, a closed form, the behaviour of a tiny
model -- through the public signatures, never the reference's code, and its failure message names
the property. `python assignments/grade.py` runs them; test_all.py runs them too (the fast tier), so
a wrong implementation of the core fails the project's own tests as well.
"""

import math

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from editor import Editor
from niw import NIW
from ridge import frobenius, ridge_dual, ridge_solve, targets
from whitening import eigen, standardize, zca

F64 = torch.float64


def gen(seed):
    return torch.Generator().manual_seed(seed)


def spd(d, seed, jitter=0.1):
    """A random symmetric positive definite (d, d) matrix."""
    A = torch.randn(d, d, generator=gen(seed), dtype=F64)
    return A @ A.T / d + jitter * torch.eye(d, dtype=F64)


def close(a, b, tol):
    """relative Frobenius distance of two tensors below tol"""
    a, b = torch.as_tensor(a, dtype=F64), torch.as_tensor(b, dtype=F64)
    return ((a - b).norm() / b.norm().clamp_min(1e-300)).item() < tol


# ---------------------------------------------------------------- a1: the NIW statistics


@pytest.mark.a1
@pytest.mark.parametrize("N", [1, 7])
def test_a1_one_update_is_theorem_3_2_in_closed_form(N):
    """One batch from an informative prior (kappa0 = 3, m0 != 0, nu0 = d + 5): E[mu], Psi and E[Sigma]
    are Thm 3.2 / Cor. 3.3 written out, with Psi0 = eps s0^2 I and s0^2 the batch's mean variance."""
    d, kappa0, nu0, eps = 4, 3.0, 9.0, 0.5
    m0 = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=F64)
    x = torch.randn(N, d, generator=gen(N), dtype=F64) * 2 + 1
    t = NIW(d, kappa0=kappa0, nu0=nu0, psi0=eps, m0=m0)
    t.update(x)
    xbar = x.mean(0)
    xc = x - xbar
    s0 = (xc.pow(2).mean() if N > 1 else (x - m0).pow(2).mean()).item()
    m1 = (kappa0 * m0 + N * xbar) / (kappa0 + N)
    Psi1 = eps * s0 * torch.eye(d, dtype=F64) + xc.T @ xc
    Psi1 = Psi1 + kappa0 * N / (kappa0 + N) * torch.outer(xbar - m0, xbar - m0)
    assert close(t.mean, m1, 1e-12), "a1: E[mu] must be m_1 = (kappa0 m0 + N xbar) / (kappa0 + N)"
    assert close(t.covariance, Psi1 / (nu0 + N - d - 1), 1e-12), (
        "a1: E[Sigma] must be Psi_1 / (nu_1 - d - 1), Psi_1 = Psi0 + S + kappa0 N/(kappa0+N) dm dm^T"
    )


@pytest.mark.a1
@pytest.mark.parametrize("full", [True, False])
def test_a1_batches_in_any_split_give_the_same_posterior(full):
    """Conjugacy (Thm 3.2): after the same first batch (which sets the prior's scale), the rest fed as
    one batch or as two gives the same posterior."""
    x = torch.randn(30, 5, generator=gen(2), dtype=F64) + 2
    split, joint = NIW(5, full=full), NIW(5, full=full)
    for t in (split, joint):
        t.update(x[:12])
    split.update(x[12:20])
    split.update(x[20:])
    joint.update(x[12:])
    assert close(split.mean, joint.mean, 1e-12), "a1: the mean must not depend on the batching"
    assert close(split.covariance, joint.covariance, 1e-12), (
        "a1: Psi must absorb S plus the mean-shift term, so that batches merge exactly (Thm 3.2)"
    )


@pytest.mark.a1
def test_a1_the_flat_prior_is_the_running_mean_and_variance():
    """Diagonal mode with kappa0 = 0 and no prior scatter is ULTRAEDIT's running statistics (Eq. 1-2):
    the sample mean, and the scatter divided by n - 2 (nu0 = 0, d = 1 per dimension)."""
    x = torch.randn(40, 3, generator=gen(3), dtype=F64) * torch.tensor([1.0, 5.0, 0.1]) - 4
    t = NIW(3, kappa0=0.0, nu0=0.0, psi0=0.0, full=False)
    for part in x.split(9):
        t.update(part)
    assert close(t.mean, x.mean(0), 1e-12), "a1: with kappa0 = 0, E[mu] is the running sample mean"
    scatter = ((x - x.mean(0)) ** 2).sum(0)
    assert close(t.covariance, scatter / (40 - 2), 1e-12), (
        "a1: with a flat prior, E[Sigma_jj] = scatter_j / (nu - d - 1) = scatter_j / (n - 2)"
    )


@pytest.mark.a1
def test_a1_the_posterior_is_scale_free_and_refuses_an_infinite_covariance():
    """c x gives c m and c^2 E[Sigma] (the prior's scale follows the data); nu <= d + 1 has no E[Sigma]."""
    x = torch.randn(6, 4, generator=gen(4), dtype=F64)
    a, b = NIW(4), NIW(4)
    a.update(x)
    b.update(1e-4 * x)
    assert close(b.mean, 1e-4 * a.mean, 1e-10), "a1: E[mu] must scale with the data"
    assert close(b.covariance, 1e-8 * a.covariance, 1e-10), "a1: E[Sigma] must scale as c^2"
    few = NIW(4, nu0=1.0)
    few.update(x[:2])
    with pytest.raises(ValueError):
        few.covariance  # nu = 3 <= d + 1 = 5: E[Sigma] is infinite


# ---------------------------------------------------------------- a2: standardize and whiten


@pytest.mark.a2
def test_a2_standardize_divides_each_dimension_by_its_standard_deviation():
    x = torch.randn(50, 3, generator=gen(5), dtype=F64)
    mean, var = torch.tensor([1.0, 2.0, 3.0], dtype=F64), torch.tensor([4.0, 0.25, 9.0], dtype=F64)
    got = standardize(x, mean, var)
    assert got.dtype == F64 and close(got, (x - mean) / var.sqrt(), 1e-12), (
        "a2: standardize must return (x - mean) / sqrt(var) in float64"
    )
    tiny = standardize(x, mean, torch.tensor([1.0, 0.0, 1.0], dtype=F64))
    assert torch.isfinite(tiny).all(), "a2: a zero variance must be floored, never divide by 0"


@pytest.mark.a2
def test_a2_eigen_floors_relative_to_the_largest_eigenvalue():
    U = torch.linalg.qr(torch.randn(4, 4, generator=gen(6), dtype=F64))[0]
    lam = torch.tensor([1e-8, 1e-3, 1.0, 100.0], dtype=F64)
    S = (U * lam) @ U.T
    got, V, cond = eigen(S, floor=1e-6)
    assert torch.allclose(got, torch.tensor([1e-4, 1e-3, 1.0, 100.0], dtype=F64), rtol=1e-6), (
        "a2: eigenvalues ascending, floored at floor * lambda_max (here 1e-4), not at floor itself"
    )
    assert close((V * lam) @ V.T, S, 1e-9), "a2: the eigenvectors must decompose the covariance"
    assert cond == pytest.approx(1e10, rel=1e-3), (
        "a2: cond is lambda_max / lambda_min before the floor"
    )


@pytest.mark.a2
def test_a2_zca_is_the_symmetric_inverse_square_root():
    """ZCA whitens with W = Sigma^{-1/2}, the one whitening matrix that is symmetric (Remark D.9):
    W Sigma W = I and W = W^T, where Cholesky or PCA whitening gives a non-symmetric W."""
    S = spd(6, 7)
    lam, U, _ = eigen(S)
    W = zca(torch.eye(6, dtype=F64), torch.zeros(6, dtype=F64), lam, U)  # rows of I: W itself
    assert close(W @ S @ W, torch.eye(6, dtype=F64), 1e-9), "a2: W Sigma W must be the identity"
    assert close(W, W.T, 1e-12), "a2: the ZCA matrix must be symmetric (not Cholesky or PCA)"
    x = torch.randn(8, 6, generator=gen(8), dtype=F64) + 3
    mu = x.mean(0)
    assert close(zca(x, mu, lam, U), (x - mu) @ W, 1e-12), "a2: zca must centre x before whitening"


@pytest.mark.a2
def test_a2_a_diagonal_covariance_whitens_as_standardization():
    D = torch.tensor([0.5, 2.0, 7.0], dtype=F64)
    x = torch.randn(20, 3, generator=gen(9), dtype=F64)
    lam, U, _ = eigen(torch.diag(D))
    assert close(zca(x, x.mean(0), lam, U), standardize(x, x.mean(0), D), 1e-12), (
        "a2: ULTRAEDIT is the diagonal special case: ZCA of a diagonal Sigma is standardization"
    )


# ---------------------------------------------------------------- a3: targets and ridge


@pytest.mark.a3
@pytest.mark.parametrize("key_scale", [True, False])
def test_a3_targets_scale_each_gradient_by_its_key_energy(key_scale):
    k_hat = torch.randn(5, 7, generator=gen(10), dtype=F64)
    g_hat = torch.randn(5, 3, generator=gen(11), dtype=F64)
    c = k_hat.pow(2).sum(1, keepdim=True) if key_scale else torch.full((5, 1), 7.0, dtype=F64)
    assert close(targets(k_hat, g_hat, 0.3, key_scale), -0.3 * c * g_hat, 1e-12), (
        "a3: V = -lr ||k_hat_i||^2 g_hat_i (Eq. 5); without the key scale, -lr d_in g_hat_i"
    )


@pytest.mark.a3
@pytest.mark.parametrize("N, d_in", [(6, 20), (30, 8)])
def test_a3_ridge_solves_the_normal_equations_in_both_forms(N, d_in):
    """Eq. 6: (K^T K + alpha I) Delta = K^T V, whether the N x N dual or the d_in x d_in primal solves
    it (the push-through identity), and with more rows than d_in as well as fewer."""
    K = torch.randn(N, d_in, generator=gen(N), dtype=F64)
    V = torch.randn(N, 4, generator=gen(d_in), dtype=F64)
    A = ridge_dual(K, V, 2.0)
    assert close((K @ K.T + 2.0 * torch.eye(N, dtype=F64)) @ A, V, 1e-10), (
        "a3: ridge_dual must return A = (K K^T + alpha I)^{-1} V"
    )
    lhs = K.T @ K + 2.0 * torch.eye(d_in, dtype=F64)
    for method in ("primal", "dual", "auto"):
        D = ridge_solve(K, V, 2.0, method)
        assert D.shape == (d_in, 4) and close(lhs @ D, K.T @ V, 1e-10), (
            f"a3: ridge_solve({method!r}) must solve (K^T K + alpha I) Delta = K^T V"
        )
    with pytest.raises(ValueError):
        ridge_solve(K, V, 2.0, "cholesky")


# ---------------------------------------------------------------- a4: one editor step


class Tok:
    """a word-level tokenizer for a tiny random model: one id (1..63) per word"""

    pad_token_id = eos_token_id = 0

    def __call__(self, text, add_special_tokens=True):
        ids = lambda t: [1 + sum(map(ord, w)) % 63 for w in t.split()]  # noqa: E731
        return {"input_ids": ids(text) if isinstance(text, str) else [ids(t) for t in text]}


class Req:
    def __init__(self, prompt, target):
        self.prompt, self.target = prompt, target


WARM = [Req(f"fact {i} about thing {i % 7} is", f"w{i} v{i % 5}") for i in range(24)]
EDITS = [
    Req(
        "The capital of Zorb is", "Quill Town"
    ),  # answers of 1-3 tokens: the loss averages per request
    Req("Ada plays the", "oboe"),
    Req("Mount Kel lies in", "north Peru now"),
]
LAYERS = ["model.layers.1.mlp.down_proj", "model.layers.2.mlp.down_proj"]


def tiny_model(d_in=48):
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=64, hidden_size=16, intermediate_size=d_in, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2,
    )  # fmt: skip
    return LlamaForCausalLM(cfg)


def captured(model, requests):
    """K, G of the edited layers by hand: hooks and autograd of the paper's loss, the mean over
    requests of each request's mean answer-token NLL (one fact, one vote)."""
    ids, labels, keys, outs = [], [], {}, {}
    tok = Tok()
    for r in requests:
        p, a = tok(r.prompt)["input_ids"], tok(" " + r.target)["input_ids"]
        ids.append(p + a)
        labels.append([-100] * (len(p) - 1) + a)
    mods = dict(model.named_modules())

    def keep(name):
        def hook(mod, inp, out):
            if not out.requires_grad:  # frozen weights: the graph starts at the lowest edited layer
                out.requires_grad_()
            keys[name], outs[name] = inp[0], out

        return hook

    hooks = [mods[n].register_forward_hook(keep(n)) for n in LAYERS]
    rows = {n: ([], []) for n in LAYERS}
    with torch.enable_grad():
        for seq, lab in zip(ids, labels):
            logits = model(torch.tensor([seq[:-1]])).logits[0]
            lab = torch.tensor(lab)
            at = lab != -100
            loss = torch.nn.functional.cross_entropy(logits[at], lab[at]) / len(requests)
            grads = torch.autograd.grad(loss, [outs[n] for n in LAYERS])
            for n, g in zip(LAYERS, grads):
                rows[n][0].append(keys[n][0][at].detach())
                rows[n][1].append(g[0][at])
    for h in hooks:
        h.remove()
    return {n: (torch.cat(k).double(), torch.cat(g).double()) for n, (k, g) in rows.items()}


def sym_sqrt(S):
    lam, U = torch.linalg.eigh(S)
    return (U * lam.clamp_min(0).sqrt()) @ U.T


def warmed(method="stableedit", d_in=48, lr=0.5):
    model = tiny_model(d_in)
    ed = Editor(model, Tok(), LAYERS, method=method, lr=lr, alpha=3.0, max_update=math.inf)
    for i in range(0, len(WARM), 8):
        ed.edit(WARM[i : i + 8], apply=False)
    return model, ed


@pytest.mark.a4
def test_a4_the_statistics_absorb_every_answer_row():
    """Step 2: after a statistics-only step, each layer's trackers have seen that step's rows."""
    model, ed = warmed()
    n0 = {n: (ed.stats[n][0].n, ed.stats[n][1].n) for n in LAYERS}
    ed.edit(EDITS, apply=False)
    rows = captured(model, EDITS)[LAYERS[0]][0].shape[0]
    for n in LAYERS:
        assert (ed.stats[n][0].n, ed.stats[n][1].n) == (n0[n][0] + rows, n0[n][1] + rows), (
            "a4: _update_stats must feed each layer's k tracker its K rows and g tracker its G rows"
        )


@pytest.mark.a4
@pytest.mark.parametrize("method", ["stableedit", "ultraedit", "no_ln"])
def test_a4_normalize_centres_and_scales_k_and_g(method):
    """Step 3: k_hat sigma_k + mu_k = k; for stableedit g_hat Sigma_g^{1/2} + mu_g = g (ZCA), for
    ultraedit g_hat sigma_g + mu_g = g; no_ln leaves both as they are."""
    model, ed = warmed(method)
    K, G = captured(model, EDITS)[LAYERS[1]]
    eig = ed._eigens()[LAYERS[1]]
    k_hat, g_hat = ed._normalize(LAYERS[1], K, G, eig)
    if method == "no_ln":
        assert close(k_hat, K, 1e-12) and close(g_hat, G, 1e-12), "a4: no_ln must not normalize"
        return
    sk, sg = ed.stats[LAYERS[1]]
    assert close(k_hat * sk.variance.sqrt() + sk.mean, K, 1e-9), (
        "a4: k_hat must be (k - mu_k) / sigma_k with the k tracker's mean and variance"
    )
    back = g_hat @ sym_sqrt(sg.covariance) if method == "stableedit" else g_hat * sg.variance.sqrt()
    assert close(back + sg.mean, G, 1e-6), (
        "a4: g_hat must be (g - mu_g) Sigma_g^{-1/2} (ZCA; stableedit) or (g - mu_g) / sigma_g"
    )


@pytest.mark.a4
def test_a4_targets_carry_the_bias_column():
    """Step 4's right-hand side: [V | c] with V = -lr ||k_hat||^2 g_hat and c = -lr ||k_hat||^2, and b
    the mean normalized gradient (§3.3's bias term rides along as one column)."""
    model, ed = warmed(lr=0.25)
    k_hat = torch.randn(5, 48, generator=gen(12), dtype=F64)
    g_hat = torch.randn(5, 16, generator=gen(13), dtype=F64)
    rhs, b = ed._targets(k_hat, g_hat)
    c = -0.25 * k_hat.pow(2).sum(1, keepdim=True)
    assert close(rhs, torch.cat([c * g_hat, c], 1), 1e-12), "a4: rhs must be [V | c], V = c g_hat"
    assert close(b, g_hat.mean(0), 1e-12), "a4: b must be the mean of g_hat over the rows"


@pytest.mark.a4
@pytest.mark.parametrize("d_in", [48, 4])
def test_a4_one_step_solves_eq_6_on_raw_keys(d_in):
    """One stableedit step on a tiny model, multi-token answers, rebuilt by hand: the applied change
    W_new - W_old = Delta^T solves (K^T K + alpha I) Delta = K^T V on raw keys, with K, G from the
    paper's loss and V from the statistics after the step. d_in = 4 has more rows than d_in (the
    primal path)."""
    model, ed = warmed(d_in=d_in)
    cap = captured(model, EDITS)
    W0 = {n: ed.modules[n].weight.detach().double().clone() for n in LAYERS}
    ed.edit(EDITS)
    for n in LAYERS:
        K, G = cap[n]
        sk, sg = ed.stats[n]
        k_hat = (K - sk.mean) / sk.variance.sqrt()
        g_hat = torch.linalg.solve(sym_sqrt(sg.covariance), (G - sg.mean).T).T
        V = -ed.lr * k_hat.pow(2).sum(1, keepdim=True) * g_hat
        D = (ed.modules[n].weight.detach().double() - W0[n]).T  # (d_in, d_out)
        lhs = (K.T @ K + ed.alpha * torch.eye(K.shape[1], dtype=F64)) @ D
        assert close(lhs, K.T @ V, 2e-3), (
            f"a4: the step at {n} must solve (K^T K + alpha I) Delta = K^T V with V = -lr |k_hat|^2 g_hat"
        )
    assert (K.shape[0] > d_in) == (d_in == 4), "the primal case must have more rows than d_in"


@pytest.mark.a4
def test_a4_the_ridge_factors_hold_the_update():
    """_ridge returns the factors (K, A) of the solution [Delta | r] = K^T A where the dual form runs,
    (None, [Delta | r]) where the primal one does; the last column is the ridge map of c."""
    model, ed = warmed()
    for N, d_in in ((5, 48), (60, 48)):
        K = torch.randn(N, d_in, generator=gen(14))
        rhs = torch.randn(N, 17, generator=gen(15), dtype=F64)
        P, A = ed._ridge(K, rhs)
        full = torch.linalg.solve(
            K.double().T @ K.double() + 3.0 * torch.eye(d_in, dtype=F64), K.double().T @ rhs
        )
        sol = A.double() if P is None else P.double().T @ A.double()
        assert (P is None) == (N >= d_in), "a4: the dual form where M < d_in, the primal otherwise"
        assert close(sol, full, 1e-4), (
            "a4: P^T A must be the ridge solution [Delta | r] of [V | c] (Eq. 6, alpha of the editor)"
        )


# ---------------------------------------------------------------- a5: the update geometry


@pytest.mark.a5
def test_a5_frobenius_of_factored_updates_is_the_dense_inner_product():
    Pa, Qa = torch.randn(4, 9, generator=gen(16)), torch.randn(4, 5, generator=gen(17))
    Pb, Qb = torch.randn(6, 9, generator=gen(18)), torch.randn(6, 5, generator=gen(19))
    dense = lambda P, Q: P.double().T @ Q.double()  # noqa: E731
    want = (dense(Pa, Qa) * dense(Pb, Qb)).sum().item()
    assert frobenius((Pa, Qa), (Pb, Qb)) == pytest.approx(want, rel=1e-9), (
        "a5: <K_a^T A_a, K_b^T A_b>_F must equal the dense Frobenius inner product"
    )
    assert frobenius((None, dense(Pa, Qa)), (Pb, Qb)) == pytest.approx(want, rel=1e-9), (
        "a5: a dense update (None, Delta) must pair with a factored one"
    )


@pytest.mark.a5
def test_a5_the_reported_cosine_is_that_of_the_weight_changes():
    """Thm 3.8(c) on a tiny model: the cosine the editor reports between adjacent updates equals the
    cosine of the two weight changes measured from the weights."""
    model, ed = warmed()
    W = [ed.modules[LAYERS[0]].weight.detach().double().clone()]
    for chunk in (EDITS, WARM[:3]):
        rep = ed.edit(chunk)
        W.append(ed.modules[LAYERS[0]].weight.detach().double().clone())
    d1, d2 = W[1] - W[0], W[2] - W[1]
    cos = ((d1 * d2).sum() / (d1.norm() * d2.norm())).item()
    assert rep["layers"][LAYERS[0]]["cos_prev"] == pytest.approx(cos, abs=2e-3), (
        "a5: cos(Delta_t, Delta_t-1) must be <Delta_t, Delta_t-1>_F / (|Delta_t| |Delta_t-1|)"
    )


@pytest.mark.a5
def test_a5_geometry_curve_reads_edit_steps_and_averages_layers():
    from lab.outputs import geometry_curve

    rows = [
        {"kind": "warmup", "norm/a": 9.0, "norm/b": 9.0, "cos/a": 0.9, "cos/b": 0.9},
        {
            "kind": "edit",
            "norm/a": 1.0,
            "norm/b": 3.0,
            "cos/a": float("nan"),
            "cos/b": float("nan"),
        },
        {"kind": "edit", "norm/a": 2.0, "norm/b": 4.0, "cos/a": 0.1, "cos/b": -0.3},
    ]
    steps, norms, coss = geometry_curve(rows)
    assert list(steps) == [1, 2], "a5: steps count the edit steps only, from 1"
    assert list(norms) == [2.0, 3.0], "a5: the norm curve is the mean over layers of ||Delta_t||"
    assert math.isnan(coss[0]) and coss[1] == pytest.approx(-0.1), (
        "a5: the cosine curve is the layer mean; the first step has no previous update (NaN)"
    )
