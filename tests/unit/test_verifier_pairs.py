"""The verifier's generated training pairs: every kind is there, and none of them says what the evaluation sets
ask (their slot fillers share no content word with tests/bench/data/cache_quality/)."""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from models.verifier.pairs import TEMPLATE_WORDS, digest, pairs
from router_extproc.cache.verify import STOPWORDS, words

ROOT = Path(__file__).resolve().parents[2]
EVAL = ROOT / "tests/bench/data/cache_quality"
NEAR_MISS_KINDS = {"opposite", "direction", "scope", "entity", "number", "task", "time"}


def eval_texts() -> list[str]:
    out = []
    for line in (EVAL / "paraphrases.jsonl").open():
        g = json.loads(line)
        out += [g["stored"], *(q["text"] for q in g["queries"])]
    for line in (EVAL / "near_misses.jsonl").open():
        p = json.loads(line)
        out += [p["stored"], p["query"]]
    return out


def test_positives_are_form_changes_and_negatives_come_in_every_near_miss_kind():
    kinds = Counter(r["kind"] for r in pairs())
    assert {k for k in kinds if not k.startswith("form:")} == NEAR_MISS_KINDS
    assert {"form:define", "form:explain", "form:tell", "form:keyword", "form:typo", "form:polite",
            "form:context", "form:rephrase"} <= set(kinds)
    assert all(r["label"] == (1 if r["kind"].startswith("form:") else 0) for r in pairs())
    assert all(n >= 30 for k, n in kinds.items() if k in NEAR_MISS_KINDS)


def test_no_pair_reads_a_text_twice_or_twice_the_same_pair():
    ps = pairs()
    assert all(r["text_a"] != r["text_b"] for r in ps)
    assert len({(r["text_a"], r["text_b"]) for r in ps}) == len(ps)


def test_the_generated_content_words_never_appear_in_the_evaluation_sets():
    # Only the templates' connective words ("what", "convert", "from", "one of the" ...) may appear in both: the
    # topics, objects, antonyms, units, languages, places, tasks and periods are the evaluation sets' strangers.
    seen = {w for t in eval_texts() for w in words(t)} - STOPWORDS
    shared = {}
    for r in pairs():
        for t in (r["text_a"], r["text_b"]):
            for w in set(words(t)) - STOPWORDS - TEMPLATE_WORDS:
                if w in seen:
                    shared.setdefault(w, t)
    assert not shared, f"generated words also in tests/bench/data/cache_quality: {shared}"


def test_no_evaluation_text_is_generated():
    texts = {t.lower().strip() for t in eval_texts()}
    assert not [t for r in pairs() for t in (r["text_a"], r["text_b"]) if t.lower().strip() in texts]


def test_the_pairs_are_the_same_in_every_process():
    # the recipe hash reads digest(): a set or a hash seed in the generator would rebuild the verifier at random
    code = "from models.verifier.pairs import digest; print(digest())"
    out = {subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip() for seed in ("1", "2")}
    assert out == {digest()}
