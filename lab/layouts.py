"""The benchmarks' field layouts: one record -> one Request (paper §5.1, Appendix A.2 datasets).

Each benchmark ships its edits in its own JSON fields; one function per layout reads a record
exactly as the official loaders do, so that a request scores the same prompts and answers the
paper's numbers were computed on. data.load finds the file and picks the layout.

Fields read, per layout, as the official ULTRAEDIT/StableEdit loaders (data/<name>.py)
and MedLaSA's MedCF evaluation read them:
  zsre         (MEND) src, ans or else alt, rephrase, loc, loc_ans; locality prompt loc + "?"
               (loc keeps its "nq question: " prefix). The only layout that appends anything.
  counterfact  requested_rewrite {prompt with "{}" for subject, target_new.str, target_true.str},
               paraphrase_prompts, neighborhood_prompts (each scored against target_true.str).
  fever        prompt, alt ("SUPPORTS"/"REFUTES"), equiv_prompt (a list), unrel_prompt, unrel_ans.
  wikibigedit  update, ans, rephrase, personas (one string, scored against ans), loc, loc_ans,
               mhop, mhop_ans (reasoning). The personas_<character> fields are not read.
  ultraeditbench  prompt, ans, rephrase_prompt, loc, loc_ans.
  easyedit     prompt|prompts, target_new, rephrase_prompt(s) (a string or a list), subject, and
               probes with their own answers: locality_prompt + locality_ground_truth,
               locality_<name>_prompt + locality_<name>_ground_truth, or locality {<name>: {prompt,
               ground_truth}} (an object or a list of them; a list-valued ground_truth is aliases, the
               first one is scored); portability likewise. ground_truth (the old answer) is not used.
               MedCF is this layout with the four probes target, mapping, struc, tokenSem.
  ours         prompt, target (required), rephrase (a string or a list), loc_prompt, loc_answer, subject.
A named benchmark is read in its own layout; a file passed by path in the layout that
the first record's keys tell (SIGNATURES below; data.load chooses). Other keys are ignored.
Every function takes (record, where) -- `where` names the record in errors, "<file> record i" or
"<file> line k" -- and returns a Request, or raises a one-line DataError.
"""

import re

from capture import DataError
from lab.request import Request


def _str(rec, keys, where, required=True):
    """The first of `keys` present in rec (a string), else "" or a DataError."""
    if not isinstance(rec, dict):
        raise DataError(f"{where}: expected an object, got {type(rec).__name__}")
    for k in keys:
        if rec.get(k) is not None:
            if not isinstance(rec[k], str):
                raise DataError(
                    f"{where}: field {k!r} must be a string, got {type(rec[k]).__name__}"
                )
            return rec[k]
    if required:
        raise DataError(f"{where}: missing field {keys[0]!r}")
    return ""


def _strs(rec, keys, where):
    """A string or list of strings under the first present key, as a list without empty entries."""
    for k in keys:
        v = rec.get(k)
        if v is not None:
            v = [v] if isinstance(v, str) else v
            if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
                raise DataError(f"{where}: field {k!r} must be a string or a list of strings")
            return [s for s in v if s.strip()]
    return []


def _scorable(pairs):
    """The (prompt, answer) pairs that can be scored: both non-empty."""
    return [(p, a) for p, a in pairs if p.strip() and a.strip()]


def _locality(probes):
    """probe name -> scorable pairs, leaving out probes that have none."""
    return {k: v for k, v in ((k, _scorable(v)) for k, v in probes.items()) if v}


def _loc(rec, w, prompt_key, answer_key):
    """The one unnamed locality probe rec[prompt_key] -> rec[answer_key], read as it is."""
    return _locality(
        {"": [(_str(rec, (prompt_key,), w, False), _str(rec, (answer_key,), w, False))]}
    )


def from_zsre(rec, w):
    loc = _str(rec, ("loc",), w, False)
    return Request(
        _str(rec, ("src",), w),
        _str(rec, ("ans", "alt"), w),
        _strs(rec, ("rephrase",), w),
        _locality({"": [(loc and loc + "?", _str(rec, ("loc_ans",), w, False))]}),
        _str(rec, ("subject",), w, False),
    )


def from_counterfact(rec, w):
    rw = rec.get("requested_rewrite") if isinstance(rec, dict) else None
    if not isinstance(rw, dict):
        raise DataError(f"{w}: missing field 'requested_rewrite'")
    subject = _str(rw, ("subject",), w)
    new, true = rw.get("target_new"), rw.get("target_true") or {}
    if not isinstance(new, dict) or not isinstance(true, dict):
        raise DataError(f"{w}: 'target_new' / 'target_true' must be objects with a 'str' field")
    true = _str(true, ("str",), w, False)
    return Request(
        _str(rw, ("prompt",), w).replace("{}", subject),
        _str(new, ("str",), w),
        _strs(rec, ("paraphrase_prompts",), w),
        _locality({"": [(p, true) for p in _strs(rec, ("neighborhood_prompts",), w)]}),
        subject,
    )


def from_fever(rec, w):
    return Request(
        _str(rec, ("prompt",), w),
        _str(rec, ("alt",), w),
        _strs(rec, ("equiv_prompt",), w),
        _loc(rec, w, "unrel_prompt", "unrel_ans"),
    )


def from_wikibigedit(rec, w):
    return Request(
        _str(rec, ("update",), w),
        _str(rec, ("ans",), w),
        _strs(rec, ("rephrase",), w),
        _loc(rec, w, "loc", "loc_ans"),
        _str(rec, ("subject",), w, False),
        _strs(rec, ("personas",), w),
        _scorable([(_str(rec, ("mhop",), w, False), _str(rec, ("mhop_ans",), w, False))]),
    )


def from_ultraeditbench(rec, w):
    return Request(
        _str(rec, ("prompt",), w),
        _str(rec, ("ans",), w),
        _strs(rec, ("rephrase_prompt",), w),
        _loc(rec, w, "loc", "loc_ans"),
        _str(rec, ("subject",), w, False),
    )


def _probes(item, w, key):
    """(prompt, answer) pairs of EasyEdit probes: a {prompt, ground_truth} object or a list of them;
    a list-valued ground_truth holds aliases (possibly nested), of which the first is scored."""
    out = []
    for it in item if isinstance(item, list) else [item]:
        p, a = (it.get("prompt"), it.get("ground_truth")) if isinstance(it, dict) else (None, None)
        while isinstance(a, list) and a:
            a = a[0]
        if not isinstance(p, str) or not isinstance(a, str):
            raise DataError(
                f"{w}: field {key!r} must hold {{prompt, ground_truth}} objects of strings"
            )
        out.append((p, a))
    return out


# flat probe keys; group 2 is the name
PROBE = re.compile(r"(locality|portability)_(?:(.+)_)?prompt")


def from_easyedit(rec, w):
    probes = {"locality": {}, "portability": {}}  # kind -> name -> pairs
    for k, v in rec.items() if isinstance(rec, dict) else ():
        if k in probes:  # nested: {name: probe(s)}
            if not isinstance(v, dict):
                raise DataError(
                    f"{w}: field {k!r} must be an object {{name: {{prompt, ground_truth}}}}"
                )
            probes[k].update({name: _probes(item, w, f"{k}.{name}") for name, item in v.items()})
        elif m := PROBE.fullmatch(k):
            gt = k[: -len("prompt")] + "ground_truth"
            if gt not in rec:
                raise DataError(f"{w}: missing field {gt!r}")
            probes[m[1]][m[2] or ""] = _probes({"prompt": v, "ground_truth": rec[gt]}, w, k)
    return Request(
        _str(rec, ("prompt", "prompts"), w),
        _str(rec, ("target_new",), w),
        _strs(rec, ("rephrase_prompt", "rephrase_prompts"), w),
        _locality(probes["locality"]),
        _str(rec, ("subject",), w, False),
        portability=_scorable([p for pairs in probes["portability"].values() for p in pairs]),
    )


def from_ours(rec, w):
    r = Request(
        _str(rec, ("prompt",), w),
        _str(rec, ("target",), w),
        _strs(rec, ("rephrase",), w),
        _loc(rec, w, "loc_prompt", "loc_answer"),
        _str(rec, ("subject",), w, False),
    )
    if not r.target.strip():
        raise DataError(f"{w}: empty target")
    return r


LAYOUTS = {
    "zsre": from_zsre,
    "counterfact": from_counterfact,
    "fever": from_fever,
    "wikibigedit": from_wikibigedit,
    "ultraeditbench": from_ultraeditbench,
    "easyedit": from_easyedit,
    "ours": from_ours,
}
# a file passed by path is read in the layout of the first of these keys in its first record (else ours)
SIGNATURES = [
    ("requested_rewrite", "counterfact"),
    ("src", "zsre"),
    ("update", "wikibigedit"),
    ("equiv_prompt", "fever"),
    ("target_new", "easyedit"),
    ("target", "ours"),
    ("ans", "ultraeditbench"),
]


if __name__ == "__main__":
    rec = {
        "src": "What is the capital of Atlantis?",
        "ans": "Poseidonia",
        "rephrase": "Atlantis has which capital?",
        "loc": "nq question: who wrote hamlet",
        "loc_ans": "Shakespeare",
    }
    layout = next(name for key, name in SIGNATURES if key in rec)
    r = LAYOUTS[layout](rec, "demo record 0")
    print(
        f"a record with a 'src' key reads as {layout}: {r.prompt!r} -> {r.target!r}, locality {r.locality}"
    )
