"""Where a run reads and writes (paper-independent plumbing of run_stream.py): every output path
resolved once, before any work, and refused in one line when it cannot be written, when two outputs
coincide or nest, when one is a file of the run, or when it would replace an input; and what a
killed write leaves behind, removed.

    outputs(args)                       # fills args.paths {flag: real path}; DataError otherwise
    real_path(path, "--out")            # symbolic links followed; DataError: one points nowhere
    apart(outputs, inputs)              # DataError: two outputs at one place or nested, an input replaced
    clean_tmp(folder)                   # removes the <name>.tmp<pid> files of dead processes
"""

import os
import tempfile
import time
from pathlib import Path

from capture import DataError
from lab.validate import device

RUN_FILES = ("editor_state.pt", "results.json", "trajectory.csv")
# every file a run writes in --out (--overwrite removes them before the new run's first save)
OUTPUTS = (*RUN_FILES, "update_geometry.png", "trajectory.png", "hidden_shift.png")
SAVES = ("--save-model", "--save-patch", "--save-lora")  # what a run or --apply-patch writes


def outputs(args):
    """Every input file and output path and the device, checked before anything is loaded: a run
    into a folder that holds another run is refused unless --resume or --overwrite. Each output is
    resolved once (symbolic links followed) into args.paths, which is what the run writes to: no
    two outputs may coincide or nest, none may be a file of the run or replace an input."""
    device(args.device, here=not getattr(args, "plan", False))
    if args.apply_patch:
        _patch_source(args.apply_patch, args.save_lora)
    paths = {} if args.apply_patch else {"--out": _default_out(args.out)}
    for flag in SAVES:
        if getattr(args, flag[2:].replace("-", "_")):
            paths[flag] = real_path(getattr(args, flag[2:].replace("-", "_")), flag)
    own = {paths["--out"] / f: f for f in OUTPUTS} if "--out" in paths else {}
    for flag, p in paths.items():
        if p in own:
            raise DataError(
                f"{flag} {p}: is the run's own {own[p]} in --out {paths['--out']}; name a path "
                "outside the run's folder"
            )
    if "--out" in paths:
        out = paths["--out"]
        writable_dir(out, "--out")
        held = [f for f in RUN_FILES if (out / f).exists()]
        if held and not (args.resume or args.overwrite):
            raise DataError(
                f"--out {args.out or out} holds another run ({', '.join(held)}); continue it with "
                "--resume, or pass --overwrite to replace it"
            )
    for flag in ("--save-model", "--save-lora"):
        if flag in paths:
            if paths[flag].exists():
                raise DataError(
                    f"{flag} {paths[flag]} exists; name a new folder (nothing is overwritten)"
                )
            writable_dir(paths[flag], flag)
    if "--save-patch" in paths:
        writable_file(paths["--save-patch"], "--save-patch", args.overwrite)
    files = [(f"the run's {f}", p) for p, f in own.items()]
    apart(list(paths.items()), _inputs(args), files)  # after each path's own checks: the finer word
    args.paths = paths


def _default_out(out):
    """--out, else runs/<timestamp>, as the real path the run writes to."""
    return real_path(out or f"runs/{time.strftime('%Y%m%d-%H%M%S')}", "--out")


def _patch_source(src, save_lora):
    """--apply-patch: a patch file, or an adapter folder (which cannot become --save-lora)."""
    path = Path(src)
    if not path.exists():
        raise DataError(f"--apply-patch {src}: no such file or folder")
    if not path.is_file() and not (path / "adapter_config.json").is_file():
        raise DataError(f"--apply-patch {src}: neither a patch file nor a LoRA adapter folder")
    if save_lora and not path.is_file():
        raise DataError(f"--apply-patch {src} is an adapter already; --save-lora needs a patch")


def _inputs(args):
    """[(flag, real path)] of what the run reads from disk: a local model, data files and folder, the
    patch or adapter; an output must not replace any of them."""
    found = [("--model", args.model), ("--apply-patch", args.apply_patch)]
    found += [("--data-dir", args.data_dir), ("--warmup-data", args.warmup_data)]
    spec = args.dataset or ""
    found += [("--dataset", x) for x in (spec, *(s.rsplit(":", 1)[0] for s in spec.split(",")))]
    return [(flag, Path(x).resolve()) for flag, x in found if x and Path(x).exists()]


def writable_dir(path, flag):
    """DataError unless `path` is, or can be made as, a writable folder: checked without creating it."""
    p = Path(path).absolute()
    if p.exists() and not p.is_dir():
        raise DataError(f"{flag} {path}: is a file, not a folder")
    up = p
    while not up.exists():
        up = up.parent
    if not up.is_dir():
        raise DataError(f"{flag} {path}: {up} is a file, so no folder can be made under it")
    _try_write(up, f"{flag} {path}: {up}")


def writable_file(path, flag, overwrite):
    """DataError unless a file can be written at `path`: not a folder, not an existing file (unless
    overwrite), in a writable folder that exists."""
    p = Path(path).absolute()
    if p.is_dir():
        raise DataError(f"{flag} {path}: is a folder; name a file")
    if p.exists() and not overwrite:
        raise DataError(
            f"{flag} {path}: exists; name a new file, or pass --overwrite to replace it"
        )
    if not p.parent.is_dir():
        raise DataError(f"{flag} {path}: its folder {p.parent} does not exist")
    _try_write(p.parent, f"{flag} {path}: its folder {p.parent}")


def real_path(path, flag):
    """The absolute path with every symbolic link in it followed, so that two spellings of one place
    compare equal; DataError when a link on it points nowhere (a folder cannot be made at a dangling
    link, and a write through it would replace the link, not reach its target)."""
    p = Path(path).absolute()
    for q in (p, *p.parents):
        if q.is_symlink() and not q.exists():  # a loop, too, reaches no existing path
            raise DataError(
                f"{flag} {path}: {q} is a symbolic link to {os.readlink(q)}, which does not exist; "
                "create its target or name another path"
            )
    return p.resolve()


def apart(outputs, inputs, files=()):
    """DataError unless the outputs [(flag, real path)] are apart -- no two the same, none inside
    another: one would be written into, or replaced by, the other -- and neither they nor the run's
    own files [(name, real path)] replace an input [(flag, real path)]: are it, or are an existing
    file inside an input folder."""
    for i, (a, p) in enumerate(outputs):
        for b, q in outputs[:i]:
            if p == q:
                raise DataError(f"{b} and {a} are the same path {p}: name a separate one for each")
            if q in p.parents or p in q.parents:
                (inner, x), (outer, y) = ((a, p), (b, q)) if q in p.parents else ((b, q), (a, p))
                raise DataError(
                    f"{inner} {x} lies inside {outer} {y}: one would be written into, or replace, "
                    "the other; name paths apart"
                )
    for a, p in [*outputs, *files]:
        for b, q in inputs:
            if p == q or (q in p.parents and p.is_file()):
                raise DataError(
                    f"{a} {p} would overwrite {'' if p == q else 'a file in '}the input {b} {q}"
                )


def _try_write(folder, what):
    """DataError unless a file can be made in folder: tried, then removed (os.access says yes to root
    and to read-only file systems alike)."""
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=".stableedit-probe-")
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        raise DataError(f"{what} is not writable ({e.strerror})") from None


def clean_tmp(folder):
    """Remove the <name>.tmp<pid> files a killed write left in folder (their process is gone)."""
    for p in Path(folder).glob("*.tmp*"):
        pid = p.name.rsplit(".tmp", 1)[1]
        if pid.isdigit() and not _alive(int(pid)) and p.is_file():
            p.unlink(missing_ok=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True
