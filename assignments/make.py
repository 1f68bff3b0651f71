"""Make a student copy of the project: every file of the reference, with the graded functions' bodies
(assignments/tasks.py) replaced by `raise NotImplementedError("aK: ...")` -- signature, docstring
and comments kept, the code gone. No git history, no compiled files, no mutants file.

    python assignments/make.py OUT                 # every assignment blanked
    python assignments/make.py OUT --only a1,a3    # only these

The copy runs: `python run_stream.py --help`, the ungraded fast tests, `python assignments/grade.py`
(which fails until the student fills the blanks).
"""

import argparse
import ast
import io
import shutil
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from assignments.tasks import TASKS  # noqa: E402

# kept out of a student copy: the wrong implementations quote the reference code they break
EXCLUDE = {"assignments/mutants.py"}


def project_files(root):
    """The files of the project: git's tracked and unignored files where there is a git checkout,
    else every file but caches and run outputs."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard"], cwd=root, capture_output=True,
            text=True, check=True,
        ).stdout.splitlines()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", "__pycache__", ".pytest_cache", ".ruff_cache", "runs"}
        out = [
            str(p.relative_to(root))
            for p in root.rglob("*")
            if p.is_file() and not skip & set(p.relative_to(root).parts)
        ]
    return sorted(f for f in out if f not in EXCLUDE and (root / f).is_file())


def find(tree, qualname):
    """The FunctionDef of `Class.method` or `function` in a module's AST."""
    node = tree
    for part in qualname.split("."):
        node = next(
            (n for n in node.body if getattr(n, "name", None) == part and hasattr(n, "body")), None
        )
        if node is None:
            raise SystemExit(f"make.py: error: no {qualname} in the reference")
    return node


def comments(source_lines, first, last):
    """The comments of lines first..last (1-based), each on its own line: '# name: why' where the
    line assigns a name, so shape comments like `# (N, d)` keep what they describe."""
    text = "".join(source_lines[first - 1 : last])
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT:
            code = source_lines[first - 1 + tok.start[0] - 1][: tok.start[1]]
            name = code.split("=")[0].strip() if "=" in code and "==" not in code else ""
            out.append(f"# {name}: {tok.string[1:].strip()}" if name else tok.string)
    return out


def blank(source, qualname, key):
    """The module source with qualname's body after its docstring replaced by the blank."""
    lines = source.splitlines(keepends=True)
    fn = find(ast.parse(source), qualname)
    body = fn.body
    doc = isinstance(body[0], ast.Expr) and isinstance(
        getattr(body[0], "value", None), ast.Constant
    )
    first = body[1].lineno if doc and len(body) > 1 else (None if doc else body[0].lineno)
    indent = " " * (fn.col_offset + 4)
    new = [indent + c + "\n" for c in comments(lines, first, fn.end_lineno)] if first else []
    handout = f"assignments/{TASKS[key]['handout']}"
    new.append(f'{indent}raise NotImplementedError("{key}: implement {qualname} ({handout})")\n')
    start = first if first else fn.end_lineno + 1
    return "".join(lines[: start - 1] + new + lines[fn.end_lineno :])


def copy_project(out):
    """Every file of the reference (project_files) copied into out."""
    for f in project_files(ROOT):
        (out / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, out / f)


def make(out, only):
    """Copy the project into out and blank the functions of the assignments in only."""
    copy_project(out)
    for key in only:
        by_file = {}
        for spec in TASKS[key]["functions"]:
            path, qualname = spec.split(":")
            by_file.setdefault(path, []).append(qualname)
        for path, names in by_file.items():
            src = (out / path).read_text()
            # bottom-up, so that each blank leaves the line numbers above it valid
            order = sorted(names, key=lambda q: -find(ast.parse(src), q).lineno)
            for q in order:
                src = blank(src, q, key)
            (out / path).write_text(src)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="a new folder for the student copy")
    p.add_argument("--only", help="comma-separated assignments to blank (default: all)")
    args = p.parse_args(argv)
    only = args.only.split(",") if args.only else list(TASKS)
    bad = [k for k in only if k not in TASKS]
    if bad:
        p.exit(
            2, f"make.py: error: unknown assignment {bad[0]!r}; choose from {', '.join(TASKS)}\n"
        )
    if args.out.exists() and any(args.out.iterdir()):
        p.exit(2, f"make.py: error: {args.out} exists and is not empty\n")
    if args.out.resolve().is_relative_to(ROOT):
        p.exit(2, f"make.py: error: {args.out} is inside the reference; make the copy elsewhere\n")
    args.out.mkdir(parents=True, exist_ok=True)
    make(args.out, only)
    n = sum(len(TASKS[k]["functions"]) for k in only)
    print(f"student copy in {args.out}: {n} functions blanked ({', '.join(only)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
