"""The hit verifier: paraphrases pass, near-misses, negations and changed numbers are refused."""

import json
from pathlib import Path

import numpy as np
import pytest

from router_extproc.cache.verify import (
    N_LEXICAL,
    CosineVerifier,
    PairVerifier,
    build_idf,
    lexical_features,
    load_verifier,
    pair_features,
    quantities,
    DEFAULT_VETOES,
    VETOES,
    refusal,
    same_request,
    veto,
    veto_guard,
)

ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = ROOT / "models/dist"
IDF, UNK = build_idf(["how do i learn python", "how do i learn java", "what is the capital of france"] * 3)


def feats(a, b):
    return dict(zip(["jac", "cjac", "widf", "maxdiff", "sumdiff", "num", "neg", "first", "lenratio", "lendiff",
                     "same", "minonly", "maxonly", "nodiff", "bigram", "trigram", "last"],
                    lexical_features(a, b, IDF, UNK)))


def test_there_are_as_many_lexical_features_as_declared():
    assert len(lexical_features("a", "b", IDF, UNK)) == N_LEXICAL


def test_identical_texts_look_identical():
    f = feats("How do I learn Python?", "how do i learn python")
    assert f["same"] == 1 and f["jac"] == 1 and f["nodiff"] == 1 and f["neg"] == 0 and f["num"] == 0


def test_a_negation_on_one_side_only_is_flagged():
    assert feats("Is Python a good first language?", "Is Python not a good first language?")["neg"] == 1
    assert feats("Why can't I sleep?", "Why can I not sleep?")["neg"] == 0


def test_a_changed_number_is_flagged():
    assert feats("What is 15% of 200?", "What is 20% of 200?")["num"] == 1
    assert feats("What is 15% of 200?", "what is 15 % of 200")["num"] == 0


def test_features_are_symmetric():
    a, b = "How do I learn Python fast?", "What is the quickest way to learn Java?"
    # equal up to float rounding: IDF sums run over sets, whose order follows PYTHONHASHSEED
    assert np.allclose(lexical_features(a, b, IDF, UNK), lexical_features(b, a, IDF, UNK), rtol=1e-9, atol=1e-12)
    u, v = np.eye(4, dtype=np.float32)[:1], np.ones((1, 4), np.float32) / 2
    lex = np.zeros((1, N_LEXICAL), np.float32)
    assert np.allclose(pair_features(u, v, lex), pair_features(v, u, lex))


def test_plain_cosine_fallback_accepts_at_or_above_the_threshold():
    v = CosineVerifier(0.9)
    q = np.ones(4, np.float32)
    assert v.accept(q, "x", [(q, "y", 0.95), (q, "z", 0.85)]).tolist() == [True, False]


def tiny_verifier(tmp_path, threshold=0.5):
    dim = 4
    d_in = 2 * dim + 2 + N_LEXICAL
    rng = np.random.default_rng(0)
    weights = {"w1_0": rng.normal(size=(d_in, 8)).astype(np.float32), "b1_0": np.zeros(8, np.float32),
               "w2_0": rng.normal(size=8).astype(np.float32), "b2_0": np.zeros(1, np.float32)}
    meta = {"dimension": dim, "members": 1, "floor": 0.7, "threshold": threshold, "idf": {"python": 2.0},
            "unk": 3.0}
    (tmp_path / "verifier.json").write_text(json.dumps(meta))
    np.savez(tmp_path / "verifier.npz", **weights)
    return meta, weights


def test_a_verifier_loads_from_its_json_or_its_directory(tmp_path):
    meta, weights = tiny_verifier(tmp_path)
    v1, v2 = load_verifier(tmp_path / "verifier.json"), load_verifier(tmp_path)
    q = np.array([1, 0, 0, 0], np.float32)
    c = [(np.array([0.9, 0.1, 0, 0], np.float32), "learn python", 0.99)]
    s = v1.scores(q, "learn python", c)
    assert s.shape == (1,) and 0 <= s[0] <= 1 and np.allclose(s, v2.scores(q, "learn python", c))
    assert v1.floor == 0.7 and v1.threshold == 0.5


def test_the_threshold_can_be_overridden(tmp_path):
    meta, weights = tiny_verifier(tmp_path)
    assert PairVerifier(meta, weights, threshold=0.99).threshold == 0.99


def tiny_cross_verifier(pair_dim=3):
    dim = 4
    d_in = pair_dim + 2 * dim + 2 + N_LEXICAL
    rng = np.random.default_rng(1)
    weights = {"w1_0": rng.normal(size=(d_in, 8)).astype(np.float32), "b1_0": np.zeros(8, np.float32),
               "w2_0": rng.normal(size=8).astype(np.float32), "b2_0": np.zeros(1, np.float32),
               "cross_mu": np.zeros(pair_dim, np.float32), "cross_sd": np.ones(pair_dim, np.float32)}
    meta = {"dimension": dim, "members": 1, "floor": 0.7, "threshold": 0.5, "idf": {}, "unk": 3.0,
            "cross": {"dim": pair_dim, "output": "seq_feat", "tokens": 128}}
    return PairVerifier(meta, weights)


def test_a_cross_verifier_reads_the_pair_features_it_is_given():
    v = tiny_cross_verifier()
    q = np.array([1, 0, 0, 0], np.float32)
    c = [(np.array([0.9, 0.1, 0, 0], np.float32), "study python", 0.99)]  # not another form of the query
    assert v.needs_pairs and v.pair_dim == 3
    a = v.scores(q, "learn python", c, np.zeros((1, 3), np.float32))
    b = v.scores(q, "learn python", c, np.full((1, 3), 2.0, np.float32))
    assert a.shape == (1,) and not np.allclose(a, b)


def test_the_negation_guard_refuses_a_pair_whose_polarity_differs():
    v = tiny_cross_verifier()
    v.negation_guard, v.threshold = True, 0.0
    q = np.ones(4, np.float32) / 2
    f = np.zeros((1, 3), np.float32)
    assert v.scores(q, "Is coffee good for you?", [(q, "Is coffee not good for you?", 1.0)], f)[0] == 0.0
    assert v.scores(q, "Why can't I sleep?", [(q, "Why can I not sleep?", 1.0)], f)[0] > 0.0  # same parity


@pytest.mark.parametrize("a, b", [
    ("the First World War", "the 1st world war"),
    ("1,000 users", "1000 users"),
    ("costs 3.50", "costs 3.5"),
    ("twenty questions", "20 questions"),
    ("World War II", "the second world war"),
])
def test_quantities_are_compared_by_value(a, b):
    assert quantities(a) == quantities(b) != frozenset()


def test_pronouns_and_single_letters_are_not_quantities():
    assert quantities("Which one is better, I or you?") == quantities("v for vendetta, x or y") == frozenset()


def test_the_quantity_guard_refuses_a_pair_that_names_different_numbers():
    v = tiny_cross_verifier()
    v.quantity_guard, v.threshold = True, 0.0
    q = np.ones(4, np.float32) / 2
    f = np.zeros((1, 3), np.float32)
    first = "What were the main causes of the First World War?"
    assert v.scores(q, first, [(q, "What were the main causes of the Second World War?", 1.0)], f)[0] == 0.0
    assert v.scores(q, "What is 15% of 200?", [(q, "What is 20% of 200?", 1.0)], f)[0] == 0.0
    assert v.scores(q, first, [(q, "What caused the 1st World War?", 1.0)], f)[0] > 0.0


def test_a_gate_without_pair_features_to_gate_is_a_malformed_verifier():
    meta = {"dimension": 4, "members": 1, "floor": 0.7, "threshold": 0.5, "idf": {}, "unk": 3.0,
            "gate": {"threshold": 0.2, "members": 1}}
    d_in = 2 * 4 + 2 + N_LEXICAL
    w = {"w1_0": np.zeros((d_in, 2), np.float32), "b1_0": np.zeros(2, np.float32), "w2_0": np.zeros(2, np.float32),
         "b2_0": np.zeros(1, np.float32)}
    with pytest.raises(ValueError, match="gate"):
        PairVerifier(meta, {**w, **{f"gate_{k}": a for k, a in w.items()}})


def test_a_cross_verifier_refuses_to_score_without_pair_features_or_with_the_wrong_width():
    v = tiny_cross_verifier()
    q = np.ones(4, np.float32)
    c = [(q, "y", 0.95)]
    with pytest.raises(ValueError, match="pair_feats"):
        v.scores(q, "x", c)
    with pytest.raises(ValueError, match="built for 3"):
        v.scores(q, "x", c, np.zeros((1, 5), np.float32))


# ---------------------------------------------------------------- the shipped verifier on real embeddings

needs_model = pytest.mark.skipif(
    not ((MODEL_DIR / "verifier.json").exists() and (MODEL_DIR / "encoder.onnx").exists()),
    reason="models/dist/verifier.json not built (python -m models.build_verifier --model-dir models/dist)",
)


@pytest.fixture(scope="module")
def engine():
    from router_extproc.signals import SignalEngine

    return SignalEngine(MODEL_DIR, device="cpu", threads=2)


@pytest.fixture(scope="module")
def shipped():
    return load_verifier(MODEL_DIR / "verifier.json")


def served(verifier, engine, a, b):
    """The cache's decision for query ``a`` and cached ``b`` (SemanticCache._verify, for one candidate)."""
    u, v = (s.embedding for s in engine.analyze_batch([a, b]))
    cos = float(u @ v)
    if cos < verifier.floor or verifier.prescreen(u, a, [(v, b, cos)])[0] < verifier.gate:
        return False
    pair = engine.pair_features_batch([(a, b)]) if verifier.needs_pairs else None
    return bool(verifier.accept(u, a, [(v, b, cos)], pair)[0])


PARAPHRASES = [
    ("How can I lose weight fast?", "How can I lose weight quickly?"),
    ("How do I learn Python quickly?", "How can I learn Python fast?"),
    ("What is the best way to learn guitar?", "How should I learn to play guitar?"),
    ("How can I lose weight fast?", "What is the fastest way to lose weight?"),
    ("What is the capital of France?", "What's the capital city of France?"),
]


@needs_model
def test_most_clear_paraphrases_are_served(shipped, engine):
    # The shipped threshold trades recall for precision (about a third of QQP duplicates are served), so the
    # specification is "most", not "all": some true paraphrases are refused and simply go upstream.
    n = sum(served(shipped, engine, a, b) for a, b in PARAPHRASES)
    assert n >= 3, f"only {n} of {len(PARAPHRASES)} paraphrases served"


@needs_model
@pytest.mark.parametrize("a, b", [
    ("How do I learn Python quickly?", "How do I learn Java quickly?"),
    ("What is the capital of France?", "What is the capital of Germany?"),
    ("Why is Python a good first language?", "Why is Python not a good first language?"),
    ("What is 15% of 200?", "What is 20% of 200?"),
    ("What were the main causes of the First World War?", "What were the main causes of the Second World War?"),
    ("Who was the first president of the United States?", "Who was the second president of the United States?"),
    ("How do I convert Celsius to Fahrenheit?", "How do I convert Fahrenheit to Celsius?"),
])
def test_near_misses_negations_and_changed_numbers_are_refused(shipped, engine, a, b):
    assert not served(shipped, engine, a, b)


@needs_model
def test_the_shipped_verifier_needs_nothing_the_engine_cannot_give(shipped, engine):
    assert not shipped.needs_pairs or shipped.pair_dim == engine.pair_dim
    assert shipped.negation_guard and shipped.quantity_guard


@needs_model
def test_the_shipped_verifier_beats_plain_cosine_on_the_held_out_split(shipped):
    f = shipped.meta["figures"]
    assert f["test"]["precision"] >= 0.88 and f["test"]["recall"] >= 0.33, f
    assert f["test"]["precision"] >= f["cosine_same_recall"]["precision"] + 0.05, f


def test_the_verifier_recipe_is_keyed_by_the_code_training_reads():
    # When this fails, the features, guards or pair row that training reads changed: set TRAINING_SOURCE and
    # TRAINING_CODE_KEY in models/build_verifier.py to the new digest, and the verifier is rebuilt.
    from models.build_verifier import TRAINING_SOURCE, training_source

    assert training_source() == TRAINING_SOURCE



@pytest.mark.parametrize("kind,a,b", [
    ("opposite", "How do I turn on dark mode in Windows?", "How do I turn off dark mode in Windows?"),
    ("opposite", "What are the advantages of nuclear power?", "What are the disadvantages of nuclear power?"),
    ("opposite", "What are the pros of remote work?", "What are the cons of remote work?"),
    ("opposite", "What increases blood pressure?", "What decreases blood pressure?"),
    ("opposite", "How do I install numpy?", "How do I uninstall numpy?"),
    ("direction", "Convert Celsius to Fahrenheit", "Convert Fahrenheit to Celsius"),
    ("direction", "Translate 'good morning' from English to French", "Translate 'good morning' from French to English"),
    ("direction", "How do I move my photos from iPhone to Android?", "How do I move my photos to iPhone from Android?"),
    ("direction", "How many hours is the flight from New York to Los Angeles?",
     "How many hours is the flight from Los Angeles to New York?"),
    # two things traded around a relation, no "from"/"to"
    ("direction", "Is Lima ahead of Oslo in time?", "Is Oslo ahead of Lima in time?"),
    ("direction", "Does Peru export more copper than Chile?", "Does Chile export more copper than Peru?"),
    ("opposite", "How can I make my laptop boot faster?", "How can I make my laptop boot slower?"),
    ("opposite", "How did the Ming dynasty begin?", "How did the Ming dynasty end?"),
    ("opposite", "When does the sun rise in Lima in June?", "When does the sun set in Lima in June?"),
    ("scope", "Name one of the planets of the solar system", "Name all of the planets of the solar system"),
    ("task", "Write a headline for this: The council approved the new bridge.",
     "Write a tweet for this: The council approved the new bridge."),
    ("task", "Suggest a title for my paper on soil erosion", "Write an abstract for my paper on soil erosion"),
    ("task", "Grade an essay on climate migration", "Outline an essay on climate migration"),  # one product
    ("entity", "How do I read a CSV file in Python?", "How do I read a CSV file in Rust?"),
    ("entity", "Translate 'thank you' into Spanish", "Translate 'thank you' into German"),
    ("name", "What is the capital of France?", "What is the capital of Spain?"),
])
def test_a_veto_separates_each_kind_of_near_miss(kind, a, b):
    assert veto(a, b, VETOES) == kind and veto(b, a, VETOES) == kind
    assert (veto(a, b) == kind) == (kind in DEFAULT_VETOES)  # the others are measured, not applied


@pytest.mark.parametrize("a,b", [
    ("What is the capital of France?", "Tell me the capital city of France"),
    ("Who was Albert Einstein?", "Tell me about Albert Einstien"),  # a typo in a name is not another name
    ("What is machine learning?", "Define machine learning"),
    ("How do I turn on dark mode?", "Enable dark mode: how do I turn it on?"),
    ("Convert Celsius to Fahrenheit", "How do I convert from Celsius to Fahrenheit?"),
    ("Summarize this: The council approved the bridge.", "Give me a summary of: The council approved the bridge."),
    # products in common: one request ("story" and "summary" / "story"; "emails" and "table" / "emails")
    ("Summarize the story of the Golem of Prague", "Tell me the story of the Golem of Prague in brief"),
    ("Write a SQL query to find duplicate emails in a users table", "sql to find duplicat emails in users tabel"),
    ("How do I sort a list in Python?", "python: how to sort a list"),
    ("What are the benefits of exercise?", "Why is exercise good for you, what are its benefits?"),
    # a symmetric joiner: the two things may come in either order
    ("What is the difference between TCP and UDP?", "What is the difference between UDP and TCP?"),
    ("Which is healthier, rice or pasta?", "Which is healthier, pasta or rice?"),
    ("Compare Vue vs React", "Compare React vs Vue"),
    # one product, one action in other words
    ("Write an essay on climate migration", "Could you draft an essay on climate migration?"),
])
def test_no_veto_between_paraphrases(a, b):
    assert veto(a, b, VETOES) is None and veto(b, a, VETOES) is None


def test_the_veto_guard_zeroes_only_the_vetoed_candidates():
    s = veto_guard(np.array([0.9, 0.8], np.float32), "How do I turn on wifi?",
                   ["How do I turn off wifi?", "How can I turn wifi on?"])
    assert s.tolist() == pytest.approx([0.0, 0.8])
    assert veto_guard(np.array([0.9], np.float32), "turn on wifi", ["turn off wifi"], kinds=()).tolist() == \
        pytest.approx([0.9])


@pytest.mark.parametrize("a,b", [
    ("Why do rainbows form?", "We saw two of them today and I couldn't answer my kids. Why do rainbows form?"),
    ("When did World War II end?", "Please tell me when World War II ended. Thanks!"),
])
def test_context_before_the_question_is_not_read_as_a_negation_or_a_number(a, b):
    assert refusal(a, b) is None


@pytest.mark.parametrize("a,b,why", [
    ("I have 3 apples and eat one. How many are left?", "I have 5 apples and eat one. How many are left?", "quantity"),
    ("Is it safe?", "Is it not safe?", "negation"),
    ("How do I turn on Bluetooth on my laptop?", "How do I turn off Bluetooth on my laptop?", "opposite"),
])
def test_the_guards_and_vetoes_give_their_reason(a, b, why):
    assert refusal(a, b) == why


@pytest.mark.parametrize("a,b", [
    ("What is recursion in programming?", "Define recursion in programming"),
    ("What is recursion in programming?", "recursion in programming?"),
    ("What is recursion in programming?", "waht is recursoin in programing"),
    ("What is recursion in programming?", "Hi, could you please tell me what recursion is in programming? Thanks!"),
    ("What is recursion in programming?", "My teacher never explains it. What is recursion in programming?"),
    ("What is a black hole?", "Tell me about black holes"),
    ("What is an API?", "What does API mean?"),
    ("How do I undo the last git commit?", "how to undo the last git comit"),
    # the form set aside, the same content words in any order when one side is not a question
    ("Why does sourdough taste sour?", "sourdough sour taste why"),
    ("How do I reverse a list in Python?", "python reverse list"),
    ("What is git rebase?", "git rebase meaning"),
    ("Can you explain list comprehensions in Python?", "Explain Python list comprehensions"),
    # a keyword query whose words are all in the question, which has one more
    ("How do I cancel my Netflix subscription?", "cancel netflix"),
    ("Does melatonin help with insomnia?", "melatonin insomnia"),
    ("Who was Albert Einstein?", "who was albert einstien"),  # one edit in a name is still a typo
    ("What is the difference between a migraine and a headache?", "migraine vs headache"),  # "vs": the difference
    ("How do I keep pasta from sticking together?", "pasta sticking together fix"),          # "fix": how
])
def test_another_form_of_the_same_request_is_the_same_request(a, b):
    assert same_request(a, b)


@pytest.mark.parametrize("a,b", [
    ("When did the Berlin Wall fall?", "Where did the Berlin Wall fall?"),    # question words count
    ("What is the capital of Austria?", "What is the capital of Australia?"),  # two edits: not a typo
    ("Who won the 2014 World Cup?", "Who won the 2018 World Cup?"),            # numbers are not typos
    ("What increases blood pressure?", "What decreases blood pressure?"),
    ("How many ounces are in a gram?", "How many grams are in an ounce?"),   # two questions: order counts
    ("What does Elon Musk do?", "Who is Elon Musk?"),                          # a leading "what" counts
    ("How do I sort a list in Python?", "python sort list descending"),       # the keyword query adds a word
    ("How do I sort a list of tuples by key in Python?", "python sort list"),   # the question has two more
    ("What is Python used for?", "python"),                                    # one word says too little
    ("What is the capital of Slovenia?", "What is the capital of Slovakia?"),  # two names, not a typo
    ("What is the difference between C and C++?", "What is the difference between C++ and C#?"),
    ("What does それでもまだ mean in English?", "What does 骚客 mean in English?"),
    ("Is this emotional abuse?", "What is emotional abuse?"),                  # a yes/no question
    ("What can I do to save the world?", "Can I save the world?"),
    ("Can someone translate the video?", "Can someone translate this video?"),
    ("Did the crash come as a surprise? Did the crash lead to the Depression?",
     "Did the crash lead to the Depression?"),                                   # two questions ask more
    ("What is the capital of Australia? Answer in French.", "What is the capital of Australia?"),
    ("What is the capital of Australia? (streamed)", "What is the capital of Australia?"),
])
def test_other_requests_are_not_the_same_request(a, b):
    assert not same_request(a, b)


def test_a_word_is_a_typo_only_when_one_spelling_is_not_a_word_of_its_own():
    known = {"desert", "dessert", "best"}.__contains__
    assert not same_request("best desert in town", "best dessert in town", known)
    assert same_request("best dessert in town", "best desert in town")  # without a dictionary: a typo


def test_another_form_is_accepted_without_the_models_unless_a_guard_refuses_it():
    v = tiny_cross_verifier()
    v.negation_guard = True
    q = np.array([1, 0, 0, 0], np.float32)
    c = [(q, "Define recursion", 0.9), (q, "Define recursion, not iteration", 0.9)]
    s = v.scores(q, "What is recursion?", c, np.zeros((2, 3), np.float32))
    assert s.tolist() == [1.0, 0.0]
