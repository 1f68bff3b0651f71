"""Plausible wrong implementations of the core, each patched into a copy of the project to check that
the tests catch it (kept out of student copies: each quotes the reference line it breaks).

    python assignments/mutants.py               # each mutant: the grader of its assignment
    python assignments/mutants.py --fast-tier   # and the project's fast tier (a minute per mutant)
    python assignments/mutants.py --first 6     # the six that survived the fast tier before

A mutant is (name, assignment whose grader must reject it, file, reference text, wrong text).
The first six survived the fast tier before the graded tests existed.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MUTANTS = [
    ("E[Sigma] divided by nu - d", "a1", "niw.py",
     "dof = self.nu - self.d_eff - 1", "dof = self.nu - self.d_eff"),
    ("the prior's kappa0 ignored", "a1", "niw.py",
     "self.kappa, self.nu, self.n = self.kappa0, self.nu0, 0", "self.kappa, self.nu, self.n = 0.0, self.nu0, 0"),
    ("g not centred before ZCA", "a4", "editor.py",
     "return k_hat, zca(G, sg.mean, lam, U)", "return k_hat, zca(G, 0 * sg.mean, lam, U)"),
    ("k not centred", "a4", "editor.py",
     "k_hat = standardize(K, sk.mean, sk.variance)", "k_hat = standardize(K, 0 * sk.mean, sk.variance)"),
    ("token-mean loss instead of the per-request mean", "a4", "capture.py",
     "return 1.0 / (n_ans * mask.shape[0])", "return torch.ones_like(n_ans) / mask.sum()"),
    ("the editor's primal ridge path without alpha", "a4", "editor.py",
     'return None, ridge_solve(K32, rhs, self.alpha, "primal")', 'return None, ridge_solve(K32, rhs, 0.0, "primal")'),
    # further wrong implementations of each assignment's functions
    ("Psi without the mean-shift term", "a1", "niw.py",
     "self.Psi = self.Psi + S + w * torch.outer(dm, dm)", "self.Psi = self.Psi + S"),
    ("standardize by the variance, not its root", "a2", "whitening.py",
     "return (x.to(torch.float64) - mean) / var.sqrt()", "return (x.to(torch.float64) - mean) / var"),
    ("an absolute eigenvalue floor", "a2", "whitening.py",
     "return lam.clamp_min(floor * lam_max), U, cond", "return lam.clamp_min(floor), U, cond"),
    ("PCA whitening instead of ZCA", "a2", "whitening.py",
     "return (((x.to(torch.float64) - mean) @ U) * lam.rsqrt()) @ U.T",
     "return ((x.to(torch.float64) - mean) @ U) * lam.rsqrt()"),
    ("targets without the key energy", "a3", "ridge.py",
     "return -lr * scale * g_hat", "return -lr * g_hat"),
    ("the primal ridge without alpha", "a3", "ridge.py",
     "        A = K.T @ K  # (d_in, d_in)\n        A.diagonal().add_(alpha)\n",
     "        A = K.T @ K  # (d_in, d_in)\n"),
    ("ultraedit's g centred but not scaled", "a4", "editor.py",
     "return k_hat, standardize(G, sg.mean, sg.variance)",
     "return k_hat, standardize(G, sg.mean, torch.ones_like(sg.variance))"),
    ("the bias column without the key energy", "a4", "editor.py",
     "c = targets(k_hat, torch.ones_like(k_hat[:, :1]), self.lr, self.key_scale)",
     "c = -self.lr * torch.ones_like(k_hat[:, :1])"),
    ("the factored inner product as a product of sums", "a5", "ridge.py",
     "return ((Pa.double() @ Pb.double().T) * (Qa.double() @ Qb.double().T)).sum().item()",
     "return ((Pa.double() @ Pb.double().T).sum() * (Qa.double() @ Qb.double().T).sum()).item()"),
    ("warm-up steps counted as edit steps", "a5", "lab/outputs.py",
     'edit = [r for r in rows if r["kind"] == "edit"]\n    return (\n        list(range(1, len(edit) + 1)),\n        [layer_mean(r, "norm/")',
     'edit = rows\n    return (\n        list(range(1, len(edit) + 1)),\n        [layer_mean(r, "norm/")'),
]  # fmt: skip


def patched_copy(mutant, dest):
    """A copy of the project in dest with the mutant's wrong text in place of the reference's."""
    from assignments.make import copy_project

    name, _, path, old, new = mutant
    copy_project(dest)
    src = (dest / path).read_text()
    if src.count(old) != 1:
        raise SystemExit(f"mutants.py: error: {name!r}: the reference text is not once in {path}")
    (dest / path).write_text(src.replace(old, new))


def caught(mutant, fast_tier=False):
    """(grader rejects it, fast tier fails on it or None when not run)."""
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp)
        patched_copy(mutant, dest)
        grade = subprocess.run(
            [sys.executable, "assignments/grade.py", mutant[1]], cwd=dest, capture_output=True
        )
        fast = None
        if fast_tier:
            cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"]
            r = subprocess.run(
                [*cmd, "test_all.py", "-m", "not slow"], cwd=dest, capture_output=True
            )
            fast = r.returncode != 0
        return grade.returncode != 0, fast


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fast-tier", action="store_true", help="also run the fast tier per mutant")
    p.add_argument("--first", type=int, default=len(MUTANTS), help="only the first N mutants")
    args = p.parse_args(argv)
    missed, chosen = 0, MUTANTS[: args.first]
    for m in chosen:
        grade, fast = caught(m, args.fast_tier)
        missed += not grade or fast is False
        tier = "" if fast is None else f", fast tier {'fails' if fast else 'PASSES'}"
        print(f"{m[1]} {m[0]}: grader {'rejects' if grade else 'ACCEPTS'}{tier}")
    print(f"{len(chosen) - missed}/{len(chosen)} mutants caught")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
