"""PII and secrets on held-out message-style text: per-type precision/recall, secret P/R against code and logs full
of hashes and UUIDs, false-flag rates on benign questions and pasted documentation, and the cost of redaction +
restoration. Runs the shipped SignalEngine (model head + rules), as the router does.

    python -m tests.bench.bench_pii [--quick] [--before MODEL_DIR]

--before names an earlier model build (a directory like models/dist): its held-out message figures are reported
beside the shipped build's, so a retrain of the PII head is measured on the same held-out set.

Writes docs/bench/pii.json and the PII section of docs/signals.md (between its markers; `make bench` runs this
step after the signals step, which rewrites that file).
"""
from __future__ import annotations

import argparse
import hashlib
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from tests.helpers import write_section

from .common import DOCS, MODEL_DIR, ROOT, progress, save

DATA = ROOT / "tests" / "bench" / "data" / "pii"
START, END = "<!-- bench_pii:start -->", "<!-- bench_pii:end -->"
MARK = re.compile(r"\{\{([A-Z_]+)\|(.*?)\}\}", re.S)
SECRET_TYPES = ("SECRET", "PASSWORD")
# values in the held-out README passages judged by hand to be real personal data (a real person's e-mail address,
# profile URL or name): a flag on one of these is right, every other flag on documentation is a false flag
PERSONAL = DATA / "readme_personal.txt"
TARGETS = {"per_type": 0.90, "message_recall": 0.93, "secret": 0.95, "benign": 0.03, "docs": 0.05, "redact_ms": 1.0}


def _blocks(name: str) -> list[str]:
    text = "\n".join(ln for ln in (DATA / name).read_text().splitlines() if not ln.startswith("#"))
    return [b.strip("\n") for b in re.split(r"^---$", text, flags=re.M) if b.strip()]


def parse(marked: str) -> tuple[str, list[tuple[int, int, str]]]:
    """Text without the markup, and its gold spans."""
    out, spans, last = [], [], 0
    pos = 0
    for m in MARK.finditer(marked):
        out.append(marked[last:m.start()])
        pos += m.start() - last
        spans.append((pos, pos + len(m.group(2)), m.group(1)))
        out.append(m.group(2))
        pos += len(m.group(2))
        last = m.end()
    out.append(marked[last:])
    return "".join(out), spans


def _iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    return inter / max(1, max(a[1], b[1]) - min(a[0], b[0]))


def as_group(spans: list[list[tuple]]) -> list[list[tuple]]:
    """SECRET and PASSWORD as one type: the secret group, which one policy redacts or blocks as a whole (a password
    in a connection string is marked SECRET by one writer and PASSWORD by another)."""
    return [[(*x[:2], "SECRET" if x[2] in SECRET_TYPES else x[2]) for x in ps] for ps in spans]


def score(gold: list[list[tuple]], pred: list[list[tuple]], types: tuple[str, ...] | None = None) -> dict:
    """Per-type and overall P/R: same type and char IoU >= 0.5 (one prediction matches one gold span)."""
    tp: dict[str, int] = {}
    fp: dict[str, int] = {}
    fn: dict[str, int] = {}
    misses: list[str] = []
    for g, p in zip(gold, pred):
        p = [x for x in p if types is None or x[2] in types]
        used: set[int] = set()
        for gs in g:
            j = next((j for j, ps in enumerate(p) if j not in used and ps[2] == gs[2] and _iou(gs, ps) >= 0.5), None)
            if j is None:
                fn[gs[2]] = fn.get(gs[2], 0) + 1
            else:
                used.add(j)
                tp[gs[2]] = tp.get(gs[2], 0) + 1
        for j, ps in enumerate(p):
            if j not in used:
                fp[ps[2]] = fp.get(ps[2], 0) + 1
    rows = {}
    for t in sorted(set(tp) | set(fp) | set(fn)):
        a, b, c = tp.get(t, 0), fp.get(t, 0), fn.get(t, 0)
        rows[t] = {"precision": round(a / (a + b), 4) if a + b else None,
                   "recall": round(a / (a + c), 4) if a + c else None, "n": a + c, "false_pos": b}
    a, b, c = sum(tp.values()), sum(fp.values()), sum(fn.values())
    rows["ALL"] = {"precision": round(a / max(1, a + b), 4), "recall": round(a / max(1, a + c), 4), "n": a + c,
                   "false_pos": b}
    return rows


def _misses(texts, gold, pred) -> list[str]:
    out = []
    for text, g, p in zip(texts, gold, pred):
        for s, e, t in g:
            if not any(ps[2] == t and _iou((s, e), ps) >= 0.5 for ps in p):
                out.append(f"missed {t} {text[s:e]!r}")
        for s, e, t in p:
            if not any(gs[2] == t and _iou((s, e), gs) >= 0.5 for gs in g):
                out.append(f"extra {t} {text[s:e]!r}")
    return out


def redaction_cost(engine: Any, texts: list[str], rounds: int) -> dict:
    """Milliseconds to redact one request and restore its answer (the signal pass is not included: the router
    runs it anyway), over the message set."""
    from router_extproc.pii.redact import SSERestorer, redact_request, restore_completion
    from router_extproc.pii.taxonomy import ALL_TYPES
    import json

    types = frozenset(ALL_TYPES)
    sigs = engine.analyze_batch(texts)
    times = []
    for _ in range(rounds):
        for text, sig in zip(texts, sigs):
            body = {"model": "auto", "messages": [{"role": "user", "content": text}]}
            known = [(e.type, text[e.start:e.end]) for e in sig.pii]
            t0 = time.perf_counter()
            out, red = redact_request(body, types, known)
            answer = "Sure. " + out["messages"][0]["content"]
            restore_completion(json.dumps({"choices": [{"index": 0, "message": {"content": answer}}]}).encode(), red)
            r = SSERestorer(red)
            for w in answer.split(" "):
                r.feed(b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": w + " "}}]}).encode()
                       + b"\n\n")
            times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": round(statistics.median(times), 4), "p90_ms": round(sorted(times)[int(len(times) * 0.9)], 4),
            "n": len(times), "what": "redact_request + JSON restore + SSE restore (one event per word)"}


# Held-out sets were never used to change the rules; calibration sets were (their figures are optimistic). Each
# held-out set comes from another writer or source than its calibration sets: the message and benign sets were
# written after the rules were frozen; the secrets set is made by a seeded generator (pii_gen.py) with its own
# templates; the documentation set is the README text of the installed packages (real documentation, nobody wrote
# it for this), half of the packages by a hash of their names (the other half is calibration).
# The reported message set. Each held_out_N is written before the rule (or head) changes of its round and first run
# after they froze; the sets after held_out_8 that came before the reported one are calibration data now.
# held_out_16 was written after held_out_15's errors were known and before the rules were changed for them (pii12).
HELD_MESSAGES = "held_out_22.txt"
_EARLIER = tuple(f"held_out_{i}.txt" for i in range(9, int(HELD_MESSAGES[len("held_out_"):-len(".txt")])))
SPLITS: dict[str, dict[str, tuple[str, ...]]] = {
    # issue #21: each held-out message set was written before the rules were changed for the previous one's errors,
    # which then became calibration data (messages_blind/messages_gen, then held_out_2 ... held_out_8, ...)
    "held": {"messages": (HELD_MESSAGES,), "code": ("code_logs_gen.txt",), "benign": ("benign_blind.txt",),
             "docs": ("readme:held",)},
    "cal": {"messages": ("messages.txt", "messages_blind.txt", "messages_gen.txt", "held_out_2.txt",
                         "held_out_3.txt", "held_out_4.txt", "messages_cal5.txt", "held_out_5.txt",
                         "held_out_6.txt", "held_out_7.txt", "held_out_8.txt") + _EARLIER,
            "code": ("code_logs.txt", "code_logs_blind.txt", "code_logs_blind2.txt", "code_logs_cal.txt"),
            "benign": ("benign_questions.txt",), "docs": ("docs.txt", "docs_blind.txt", "docs_blind2.txt",
                                                          "readme:cal")},
}


def readme_passages(half: str, max_chars: int = 1200) -> list[str]:
    """The long descriptions (README text) of the installed packages, cut into passages of up to `max_chars` at
    paragraph breaks; `half` "cal" or "held" picks the packages by a hash of their names."""
    from importlib import metadata

    out = []
    for dist in sorted(metadata.distributions(), key=lambda d: d.metadata["Name"].lower()):
        name = dist.metadata["Name"].lower().replace("_", "-")
        if name == "router-extproc" or (int(hashlib.sha256(name.encode()).hexdigest(), 16) % 2 == 0) != (half == "cal"):
            continue
        body = (dist.read_text("METADATA") or "").partition("\n\n")[2]
        cur = ""
        for para in re.split(r"\n\s*\n", body):
            if cur and len(cur) + len(para) > max_chars:
                out.append(cur)
                cur = ""
            cur += ("\n\n" if cur else "") + para
        if cur.strip():
            out.append(cur)
    return out


def _items(kind: str, files: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for f in files:
        if f.startswith("readme:"):
            out += readme_passages(f.split(":", 1)[1])
        elif kind == "benign":
            out += [ln for ln in (DATA / f).read_text().splitlines() if ln and not ln.startswith("#")]
        else:
            out += _blocks(f)
    return out


def evaluate(predict, sets: dict[str, tuple[str, ...]]) -> dict:
    res: dict[str, Any] = {}
    msgs = [parse(b) for b in _items("messages", sets["messages"])]
    texts, gold = [t for t, _ in msgs], [g for _, g in msgs]
    pred = predict(texts)
    res["messages"] = score(gold, pred)
    res["messages_n"] = len(texts)
    res["message_errors"] = _misses(texts, gold, pred)
    res["messages_by_file"], i = {}, 0
    for f in sets["messages"]:
        n = len(_items("messages", (f,)))
        res["messages_by_file"][f] = {**score(gold[i:i + n], pred[i:i + n])["ALL"], "messages": n}
        i += n
    code = [parse(b) for b in _items("code", sets["code"])]
    ctexts, cgold = [t for t, _ in code], [g for _, g in code]
    cpred = [[p for p in ps if p[2] in SECRET_TYPES] for ps in predict(ctexts)]
    res["code_n"] = len(ctexts)
    res["code_with_secret_n"] = sum(1 for g in cgold if g)
    res["secrets"] = score(as_group(cgold), as_group(cpred), SECRET_TYPES)["ALL"]
    res["secrets_by_type"] = score(cgold, cpred, SECRET_TYPES)
    res["secret_errors"] = _misses(ctexts, as_group(cgold), as_group(cpred))
    personal = {ln for ln in PERSONAL.read_text().splitlines() if ln and not ln.startswith("#")}
    for name in ("benign", "docs"):
        items = _items(name, sets[name])
        flags = [[(x[2], t[x[0]:x[1]]) for x in ps] for t, ps in zip(items, predict(items))]
        false = [[f for f in fl if " ".join(f[1].split()) not in personal] for fl in flags]
        res[f"{name}_false_flag_rate"] = round(sum(1 for f in false if f) / len(items), 4)
        res[f"{name}_n"] = len(items)
        res[f"{name}_flagged"] = [str(f) for f in false if f]
        if name == "docs":
            res["docs_flagged_rate_raw"] = round(sum(1 for f in flags if f) / len(items), 4)
            res["docs_personal_n"] = sum(1 for fl, f in zip(flags, false) if fl and not f)
    return res


def _predictor(model_dir: Path):
    from router_extproc.signals import SignalEngine

    engine = SignalEngine(model_dir, device="cpu", max_wait_ms=0)

    def predict(texts: list[str]) -> list[list[tuple]]:
        return [[(e.start, e.end, e.type) for e in s.pii] for s in engine.analyze_batch(texts)]

    return engine, predict


def _recipe(model_dir: Path) -> str:
    import json

    p = Path(model_dir) / "build.json"
    return json.loads(p.read_text())["recipe"] if p.exists() else Path(model_dir).resolve().name


def run(quick: bool, before: Path | None = None) -> dict:
    engine, predict = _predictor(MODEL_DIR)
    res: dict[str, Any] = {"targets": TARGETS, "recipe": _recipe(MODEL_DIR)}
    for split, sets in SPLITS.items():
        res[split] = evaluate(predict, sets)
    if before is not None:  # the same held-out messages through an earlier build's head (same rules)
        _, bpredict = _predictor(before)
        msgs = [parse(b) for b in _items("messages", SPLITS["held"]["messages"])]
        bpred = bpredict([t for t, _ in msgs])
        res["before"] = {"recipe": _recipe(before), "messages": score([g for _, g in msgs], bpred),
                         "message_errors": _misses([t for t, _ in msgs], [g for _, g in msgs], bpred)}
    if HELD_MESSAGES in RULES_BEFORE:
        # (pii20) one earlier rule version, or several, oldest first: the last is the round's start
        got = RULES_BEFORE[HELD_MESSAGES]
        versions = got if isinstance(got, list) else [got]
        rev, rows = versions[-1]
        res["rules_before"] = {"rev": rev, "messages": rows,
                               "versions": [{"rev": r, "messages": m} for r, m in versions]}
    texts = [parse(b)[0] for f in ("messages_blind.txt", "messages.txt") for b in _blocks(f)]
    res["redaction"] = redaction_cost(engine, texts, 2 if quick else 10)
    res["rules"] = rules_cost(texts, 5 if quick else 50)
    return res


def rules_cost(texts: list[str], rounds: int) -> dict:
    """What the rules add to the signal pass: `combine` with no model entities, per message."""
    from router_extproc.signals.pii import combine

    times = []
    for _ in range(rounds):
        for t in texts:
            t0 = time.perf_counter()
            combine(t, [])
            times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": round(statistics.median(times), 4), "n": len(times),
            "mean_chars": round(sum(map(len, texts)) / len(texts))}


# what the reported message set is, as the section describes it
MESSAGE_SETS = {
    "held_out_9.txt": (
        "Messages: held_out_9, hand-written for issue #21 in "
        "styles the earlier sets lack (instructions wrapping personal data - rewrite, translate, summarise -, pasted "
        "PDF and OCR'd text, LinkedIn notes, newsletters, tenancy disputes, vet notes, rosters, seating plans, "
        "obituaries, podcast show notes; Afrikaans, Albanian, Maltese, Basque, Galician, Luxembourgish and Swiss "
        "German lines), the weak types (PERSON, PHONE_NUMBER, STREET_ADDRESS, USERNAME, PASSWORD, AGE, "
        "GPS_COORDINATES, DATE_OF_BIRTH) six or more times each, with look-alikes (receipts, room and extension "
        "numbers, flights, release and delivery dates, weights and constants, company lines and shops, pets' names "
        "and ages, the age of things and age ratings, products and places named like people); committed before the "
        "rules were changed for held_out_8's errors and first run after they froze. The earlier held-out sets "
        "(held_out_8 ... held_out_2; messages_blind, hand-written, and messages_gen, seeded faker generator) are "
        "calibration now. One person wrote held_out_9 and the rule changes after it, knowing its contents: it is "
        "held out from the rules' tuning runs, not from their author, so its figures lean optimistic. "),
    "held_out_10.txt": (
        "Messages: held_out_10, hand-written for issue #21 "
        "before the PII head's retrain and before its new training templates were written, in styles the earlier "
        "sets lack (commit trailers and CODEOWNERS lines, tickets, out-of-office replies, prescriptions, lab and "
        "school reports, CV headers, reference letters, restaurant bookings, boarding passes, genealogy records, "
        "lower-case game and Discord chat, leaderboards, password-manager exports, Wi-Fi cards, fitness logs, "
        "book-club notes, code comments; greetings in Irish, Scottish Gaelic, Frisian, Faroese, Esperanto, Yoruba, "
        "Zulu, Xhosa, Hausa, Somali, Maori, Hawaiian, Samoan, Haitian Creole, Quechua, Azerbaijani, Uzbek, Breton, "
        "Corsican, Latin, Tok Pisin, Cebuano, Arabic and Japanese), the weak types (PERSON, PHONE_NUMBER, "
        "STREET_ADDRESS, USERNAME, PASSWORD, AGE, GPS_COORDINATES, DATE_OF_BIRTH) six or more times each, with "
        "look-alikes (pets, places, products and fictional characters named like people, Re:/Fwd: subjects, drug "
        "doses, base64, version strings, a street-named product and SKUs, exchange rates, the age of things); "
        "committed alone and first run after the retrained head froze. The rules are held_out_9's round's, "
        "unchanged, so the 'before' columns (the same rules with the head before the retrain) isolate the retrain. "
        "The head's new training templates copy no seven-word run of any evaluation set (tests/unit/"
        "test_models_synthetic.py) and leave out held_out_10's languages (their greetings and name lists), so its "
        "greeting lines test languages the head never saw. The earlier held-out sets (held_out_9 ... held_out_2; "
        "messages_blind, hand-written, and messages_gen, seeded faker generator) are calibration now. One person "
        "wrote held_out_10 and the new training templates, knowing both: it is held out from training, not from "
        "its author, so its figures lean optimistic. "),
    "held_out_11.txt": (
        "Messages: held_out_11, hand-written for issue #21 after held_out_10's errors were known and before the "
        "rules were changed for them (round pii7), in styles the earlier sets lack (voicemail transcripts, insurance "
        "claim forms, dating-profile bios, jury and pension letters, hotel registration cards, parcel notes, alumni "
        "news, YAML and .env fixtures, SQL INSERT rows and CSV exports, router setup screens, shell history, app "
        "reviews, forum signatures, census forms, adoption and custody letters; Kinyarwanda, Malagasy, Fijian, "
        "Tongan, Occitan, Romansh, Sardinian, Wolof, Shona, Igbo, Kurmanji, Luganda, Sesotho and Bislama lines), "
        "AGE, DATE_OF_BIRTH, USERNAME, PASSWORD, PERSON and STREET_ADDRESS eight or more times each, with "
        "look-alikes (the age of buildings, whisky, accounts and cars, release and founding dates, public bots' and "
        "organisations' handles, 'password' in instructions without a value, streets in film and album titles); "
        "committed alone and first run after the rules froze. The head is the one held_out_10 reported (unchanged); "
        "the 'before' columns are the rules before this round (commit 775416f) with that head, so they isolate the "
        "rule changes. The earlier held-out sets (held_out_10 ... held_out_2; messages_blind, hand-written, and "
        "messages_gen, seeded faker generator) are calibration now. One person wrote held_out_11 and then the rule "
        "changes, knowing its contents, and kept its languages' words out of the rules (its Kinyarwanda, Fijian, "
        "Shona, ... age and password words are not in them): it is held out from the rules' tuning runs, not from "
        "their author, so its figures lean optimistic. "),
    "held_out_12.txt": (
        "Messages: held_out_12, hand-written for issue #21 after held_out_11's errors were known and before the "
        "rules were changed for them (round pii8), in styles the earlier sets lack (school enrolment and club "
        "registration forms, vet intake, pharmacy labels, CV headers, Discord and Steam profiles, Wi-Fi QR strings "
        "and router stickers, library and gym cards, RSVPs, genealogy notes, obituary drafts, landlord references, "
        "Kubernetes and docker-compose fixtures, support-chat transcripts, password-manager exports; Guarani, "
        "Javanese, Sundanese, Scots, Manx, Cornish, Tetum, Chamorro, Papiamento, Ladino, Sranan Tongo, Northern "
        "Sami, Turkmen and Ilocano lines), AGE, DATE_OF_BIRTH, USERNAME, PASSWORD, PERSON and STREET_ADDRESS eight "
        "or more times each, with look-alikes (the age of whisky, trees, companies and a game's character, release "
        "and founding dates, public bots' and organisations' handles, 'password' in documentation without a value, "
        "a map's and a song's key, streets in songs and films); committed alone and first run after the rules "
        "froze. The head is the one held_out_10 reported (unchanged); the 'before' columns are the rules before "
        "this round (commit c643c8d) with that head, so they isolate the rule changes. The earlier held-out sets "
        "(held_out_11 ... held_out_2; messages_blind, hand-written, and messages_gen, seeded faker generator) are "
        "calibration now. This round's rules are general families of phrasings taken from the calibration sets' "
        "misses (profile, clinical, form and life-event ages; a birth word a few words before a date; a login-shaped "
        "word a few words after a word for a login or a network; credential words of more languages and a Wi-Fi "
        "network's key); held_out_12's own language words (its Javanese, Sundanese, Manx, Tetum, Papiamento, "
        "Ladino, Sranan, Sami, Turkmen, Cornish age and birth words) are not in them. One person wrote held_out_12 "
        "and then the rule changes, knowing its contents (some of its phrasings - a Wi-Fi 'wireless key', a French "
        "'mot de passe', a handle after 'forum' - fall inside the families above): it is held out from the rules' "
        "tuning runs, not from their author, so its figures lean optimistic. "),
    "held_out_13.txt": (
        "Messages: held_out_13, hand-written for issue #21 after held_out_12's errors were known and before the "
        "rules were changed for them (round pii9), in styles the earlier sets lack (blood-donor cards and hospital "
        "wristbands, fun-run and marathon entries, QSL cards, fishing-licence forms, car-rental agreements, removal "
        "quotes, scout and choir rosters, dental recall letters, donor lists, pen-pal letters, escape-room bookings, "
        "a bug-bounty report, Mastodon, Reddit, Telegram and IRC lines, .gitconfig, package.json, TOML and Helm "
        "values, a GraphQL response, a pytest fixture; Kazakh, Bulgarian, Macedonian, Belarusian, Mongolian, "
        "Georgian, Armenian, Hebrew, Hindi, Nepali, Amharic, Thai, romanized Urdu and Tamil, Yiddish, Low German, "
        "Asturian, Friulian, Chichewa, Twi and Lingala lines; names as 'SURNAME, Given', with quoted nicknames, "
        "initials, particles and all-capitals surnames), AGE, DATE_OF_BIRTH, USERNAME, PASSWORD, PERSON and "
        "STREET_ADDRESS eight or more times each, with look-alikes (a cache's max-age, pets', trees', bottles' and "
        "accounts' ages, JSON and YAML examples whose 'age' is a schema's, a tutorial stand-in's or a pet's, public "
        "bots' handles, 'password' without a value, a street in a book title); committed alone (07e7083) and first "
        "run after the rules froze. The head is the one held_out_10 reported (unchanged); the 'before' columns are "
        "the rules before this round (commit b39be91) with that head, so they isolate the rule changes. The earlier "
        "held-out sets (held_out_12 ... held_out_2; messages_blind, hand-written, and messages_gen, seeded faker "
        "generator) are calibration now. This round's rules: one name cut in pieces becomes one PERSON (surname-"
        "comma-given, quoted nicknames, particles, initials, all-capitals surnames); the words of 'my name is' "
        "phrases and greetings of ~90 languages (tables in pii/rules.py) are no names and frame the name after "
        "them; a lone brand or a pet beside its animal word is no person; age and birth words as families of ~60 "
        "languages; an 'age' key's number is PII only in a record of a person (not in documentation, a tutorial "
        "stand-in's record or an animal's or thing's: the five README false flags of round pii8 were "
        "'{\"name\": \"Alice\", \"age\": 30}'); lower-case given names where chat puts a name, from a lexicon of "
        "faker's 86 locales exported into pii/given_names.txt. Caveat: one person wrote held_out_13 and then these "
        "tables, knowing its contents, and the language tables cover held_out_13's languages (they list ~60-90 "
        "languages each, held_out_13's twenty among them), so its language lines do not test unseen languages: it "
        "is held out from the rules' tuning runs, not from their author, and its figures lean optimistic. "),
    "held_out_14.txt": (
        "Messages: held_out_14, hand-written for issue #21 after held_out_13's errors were known and before the "
        "rules were changed for them (round pii10), in styles the earlier sets lack (.env, INI, .netrc, ssh_config, "
        "docker-compose and Kubernetes Secret snippets, WhatsApp and Slack exports, vCard, LDIF, SQL INSERT, HL7 PID "
        "segments, iCalendar, Markdown and CSV rosters, tenancy and parking-permit forms, library cards, consent "
        "slips, vet invoices, obituaries, seating plans, court lists, holiday-let messages, shop and restaurant ads, "
        "job ads, CLI transcripts), with USERNAME, PASSWORD and STREET_ADDRESS ten or more times each, PERSON sixty "
        "times, AGE and DATE_OF_BIRTH twelve or more times each, and look-alikes (organisations' and bots' handles, "
        "'password' in documentation with placeholders, businesses' addresses in ads, ages of things, a sandbox "
        "login in a tutorial); its language lines are in thirteen languages none of the rules' tables name and no "
        "earlier set used (Slovene, Bosnian, Upper Sorbian, Limburgish, Tatar, Bashkir, Chuvash, Tajik, Uyghur, "
        "Pashto, Kirundi, Greenlandic, Hmong) and three the tables do not name (Latvian, Lithuanian, Slovak). "
        "Committed alone (4fd1de0) and first run after the rules froze. The head is the one held_out_10 reported "
        "(unchanged); the 'before' columns are the rules at this round's start (commit 6e947f9) with that head, so "
        "they isolate the rule changes. The earlier held-out sets (held_out_13 ... held_out_2; messages_blind, "
        "hand-written, and messages_gen, seeded faker generator) are calibration now. This round's rules (tuned on "
        "calibration only): logins after 'log in as'/'signed in as' and in config keys (owner, uid=, ssh_config "
        "User), fediverse handles, profile paths and trackers' reporter fields; bots', brands' and organisations' "
        "handles are no logins; placeholder pieces are no passwords; password words of other scripts; a Wi-Fi "
        "line's passphrase; addresses in Cyrillic and Greek and with Irish/Welsh street words; businesses' "
        "addresses (imprints, 'as HQ', 'apply in person at', 'now open') and streets in quoted titles are no "
        "personal address; roster lines as PERSON and AGE, given names with surnames in capitals; the brand names "
        "read from data/other_brands.txt, shared with the routes. Labelling: a name a form splits over fields is "
        "one PERSON span a field. Caveat: one person wrote held_out_14 and then these rules, knowing its contents "
        "(the rules follow the families the round's brief named and calibration's misses; the new password-word "
        "and street-word tables leave out held_out_14's languages on purpose: Bosnian 'šifra', Bashkir 'урамы' and "
        "Tajik 'кӯчаи' are not in them), so it is held out from the rules' tuning runs, not from their author."),
    "held_out_15.txt": (
        "Messages: held_out_15, hand-written for issue #21 after held_out_14's errors were known and before the "
        "rules were changed for them (round pii11), in styles the earlier sets lack (FHIR Patient JSON, GEDCOM, "
        "/etc/passwd and .htpasswd lines, shell and PowerShell prompts, id/last/who output, sshd and sudo logs, "
        "CREATE USER and wp-config lines, .pgpass and curl -u, git blame and git log authors, Zoom and Teams "
        "exports, Mailchimp CSV, X.509 subjects, airline PNR names, baptism and naturalisation certificates, "
        "invitations, condolence cards, yearbook captions, age-group entries, wristbands) and in the families "
        "held_out_14 showed as gaps, in new layouts (vCard FN:/N:, HL7 PID/NK1, Slack users.json and Discord "
        "exports with real_name/global_name, whoami and prompts), with PERSON 118, AGE 43, DATE_OF_BIRTH 31, "
        "USERNAME 32, PASSWORD 15 and STREET_ADDRESS 16 times, and look-alikes (ages of things, businesses' "
        "addresses, bots' and services' handles, brute-force logins, placeholder passwords, fictional characters "
        "and eponyms, age groups); its language lines are in ~40 languages no earlier set used and the rules' "
        "tables do not name (Karakalpak, Sakha, Buryat, Udmurt, Komi, Ossetian, Crimean Tatar, Karachay-Balkar, "
        "Kashubian, Silesian, Lower Sorbian, Rusyn, Aromanian, Jerriais, Sicilian, Neapolitan, Venetian, Voro, "
        "Wolaytta, Afar, Kamba, Bambara, Sepedi, Tsonga, Tzotzil, Purepecha, Mapudungun, Tahitian, Hiligaynon, "
        "Waray, Kapampangan, Minangkabau, Acehnese, Zazaki, Balochi; romanized Dhivehi, Tulu, Konkani, Odia, "
        "Cantonese, Sorani), written by a non-native speaker. Committed alone (745a42c; fifteen language lines "
        "whose phrases the tables already listed were replaced in 5e12515, before any run or rule change) and "
        "first run after the rules froze. The head is the one held_out_10 reported (unchanged); the 'before' "
        "columns are the rules at this round's start (commit e74993f) with that head, so they isolate the rule "
        "changes. The earlier held-out sets (held_out_14 ... held_out_2; messages_blind, hand-written, and "
        "messages_gen, seeded faker generator) are calibration now. This round's rules (tuned on calibration "
        "only, held_out_14 above all): vCard FN:/N: lines, iCalendar CN=, chat exports' real_name/global_name "
        "and their logins (not bots'), HL7 PID-5/7/11 and NK1-2; shell logins (whoami's answer, prompts, "
        "C:\\Users\\x, sudoers refusals, uid=/gid=); a self-introduction in an unnamed language by its shape "
        "(a phrase of a capitalised and lower-case words, then the name) going on to the age or the birth date; "
        "SQL and register columns born/street/forename; a spaced-dot date in brackets after a name; owner/tenant "
        "before a full name; a pasted record's name key with a full name; member ids, [bot] names, acronym and "
        "'follow us' handles are no logins. Caveat: one person wrote held_out_15 and then these rules, knowing "
        "its contents; the rules follow the families the round's brief named and calibration's misses (no rule "
        "for FHIR, GEDCOM, passwd or auth-log layouts was added, and no phrase of held_out_15's languages went "
        "into a table), so it is held out from the rules' tuning runs, not from their author."),
    "held_out_16.txt": (
        "Messages: held_out_16, hand-written for issue #21 after held_out_15's errors were known and before the "
        "rules were changed for them (round pii12; committed alone, 95fbbf7), in styles the earlier sets lack "
        "(command lines that carry a login and its password - sshpass, mysql, mongosh, docker login, smbclient, "
        "mount.cifs credentials files, net user, cmdkey, runas, ldapsearch, rabbitmqctl, kubectl --from-literal, "
        "useradd and chpasswd -, Cisco and MikroTik user lines, FileZilla sitemanager.xml, wpa_supplicant, OpenVPN "
        "auth files, Grafana and Jenkins settings, Django and Keycloak transcripts; passport MRZ lines, chess PGN "
        "headers, BibTeX authors, theatre programmes, birth-chart requests, triage shorthand, Reddit '(34M)' posts, "
        "life-insurance quotes, au-pair ads, voter-roll rows, funeral notices, hospice and discharge summaries; "
        "addresses in the layouts of Japan, Korea, Brazil, Turkey, Mexico, the Philippines, Nigeria, Vietnam, Iran "
        "and Egypt), with PERSON 112, AGE 51, DATE_OF_BIRTH 31, USERNAME 33, PASSWORD 20 and STREET_ADDRESS 20 "
        "times, and look-alikes (ages of things, age limits, historical and public figures' birthdays, businesses' "
        "addresses in ads and menus, service logins and documentation defaults, placeholder passwords, eponyms and "
        "fictional characters, chess openings, a specimen passport); its language lines are in 59 languages that no "
        "earlier set used and the rules' tables do not name (Bikol, Pangasinan, Tausug, Buginese, Banjar, Madurese, "
        "Sasak, Toba Batak, Bemba, Lozi, Venda, siSwati, Ndebele, Oshiwambo, Kabyle, Fulfulde, Dholuo, Tiv, Efik, "
        "Moore, Sango, Kikongo, Tshiluba, Bhojpuri, Sindhi, Saraiki, Kashmiri, Khasi, Mizo, Meitei, Taiwanese "
        "Hokkien, Okinawan, Chechen, Kabardian, Adyghe, Mari, Erzya, Kalmyk, Tuvan, Latgalian, Meankieli, "
        "Bavarian, Alemannic, Plautdietsch, Pennsylvania Dutch, Gascon, Ligurian, Piedmontese, Lombard, Mirandese, "
        "Plains Cree, Ojibwe, Navajo, K'iche', Q'eqchi', Krio, Nigerian Pidgin, Jamaican Patois, Hawaiian Pidgin). "
        "First run after the rules froze (181a013). The head is the one held_out_10 reported (unchanged); the "
        "'before' columns are the rules at this round's start (commit 0b00f9c) with that head, so they isolate the "
        "rule changes. The earlier held-out sets (held_out_15 ... held_out_2; messages_blind, hand-written, and "
        "messages_gen, seeded faker generator) are calibration now. This round's rules (tuned on calibration only): "
        "account files and statements (/etc/passwd lines, htpasswd -b, CREATE/ALTER USER or ROLE with a password, "
        "PHP define of DB_USER/DB_PASSWORD, .pgpass, last/who rows, sshd 'Accepted ... for' and sudo lines, "
        "chpasswd); a name-and-age introduction clause is no address; a business's name (a company form or a "
        "trade word) before an address makes it the business's; FHIR-style JSON name parts and address lines; "
        "GEDCOM NAME and BIRT/DATE; an introduction's age may open the next sentence or end the clause; cheap "
        "keyword pre-checks before the role-word, record, birth-date and name-edge patterns. Caveat: one person "
        "wrote held_out_16 and then these rules, knowing its contents; the rules follow the families the round's "
        "brief named (from held_out_15's misses) and no layout only held_out_16 has (no rule for net user, cmdkey, "
        "runas, smbclient -U user%pass, FileZilla, wpa_supplicant, Cisco, MikroTik, MRZ, PGN or BibTeX was added, "
        "and no phrase of its languages went into a table), so it is held out from the rules' tuning runs, not "
        "from their author."),
    "held_out_17.txt": (
        "Messages: held_out_17, hand-written for issue #21 (round pii13) after held_out_16's errors became known and "
        "before this round's rules changed, committed alone and first run when they froze: 48 messages, styles no "
        "earlier set used (ambulance run sheets, dating and roommate posts, r/legaladvice titles, sports rosters; "
        "command lines of curl -u, wget --user/--password, git clone with a token, psql URIs, sqlcmd -U/-P, "
        "sqlplus user/pass@db, xfreerdp /u: /p:, lftp -u user,pass, psexec, net use, htpasswd -b, redis-cli, "
        "ansible, tomcat-users.xml, .netrc, Maven settings.xml, JDBC properties) with look-alikes (32F capacitor "
        "codes, 25M rows, M4 screws, F-16, 18+, the -U of pip, diff and gcc, service and default accounts, "
        "placeholder passwords, streets and eponyms named after people). This round's rules: age-and-sex shorthand "
        "(19F, (38NB), M/27, 67yoF, 8 y.o. M, with counts and part codes excluded) and command-line logins and "
        "passwords (Windows /user: /u: /p: /pass: flags with a DOMAIN\\ prefix, -U user%pass, -u user,pass, "
        "-U/-P, Oracle user/pass@db, ldap -w, accounts created with their password as arguments, name=/password= "
        "pairs, <User>/<Pass> XML, --username beside --password, echo | --password-stdin), tuned on held_out_16. "
        "Caveat: one person wrote held_out_17 and then these rules, knowing its contents (several of its command "
        "styles are in the families the rules cover), so it is held out from the rules' tuning runs, not from "
        "their author, and its figures lean optimistic."),
    "held_out_18.txt": (
        "Messages: held_out_18, written for issue #21 by another session (the sets helper, committed on main as "
        "ca4d53e) that changed no code, rules or models and did not see this round's rules work; the rules' author "
        "(round pii14) did not open, grep or run it before the rules froze (ec9133c), then brought it in alone "
        "(0650009) and ran it once. 70 messages (15 without PII) in styles no earlier set used: airline and hotel "
        "complaint threads, HR onboarding tickets, CV headers and recruiter messages, pharmacy refill messages, "
        "insurance claim narratives, US court-filing captions, HOA reports, deposit-dispute letters, W-2 corrections, "
        "car-hire problems, scholarship essays; CI logs with set -x traces, pg_dump COPY blocks, df.head() output, "
        "mail-merge CSV, Sentry payloads, terraform.tfstate, rclone.conf, ~/.my.cnf, airflow connections, a login "
        "POST from a browser's network tab, an SMTP config diff, docker-compose MariaDB variables, a gist of API "
        "keys; Taglish code-switching, Greek, Bengali and Gurmukhi, and Chinese, Japanese, Korean and Persian "
        "layouts; with look-alikes (flight, room and booking numbers, versions and SKUs, age limits, ages of things, "
        "eponyms, a form's specimen row, placeholder credentials, service accounts). The head is the one "
        "held_out_10 reported (unchanged); the 'before' columns are the rules at main's 8ce9e46 (this round's start) "
        "with that head, so they isolate this round's rule changes. The earlier held-out sets (held_out_17 ... "
        "held_out_2; messages_blind, hand-written, and messages_gen, seeded faker generator) are calibration now. "
        "This round's rules (tuned on calibration only, held_out_15 ... held_out_17 above all): credentials (net "
        "use's positional password, a quoted password to its closing quote, device type-0 secrets, default and "
        "Tomcat sample accounts and logins beside a stand-in password are no one's, domain-shaped logins, YAML "
        "username keys, EAP identities, Matrix ids, mentions, gamer tags, the account an admin command acts on and "
        "its GECOS name); addresses in Korean, Turkish, Vietnamese, Mexican and Philippine layouts, trimmed of the "
        "clause's words, a street without a number no address; street, business, label and language words and "
        "verbs with clitics are no names, a middle name joins a name's parts, 'Surname, Given' in a field; "
        "self-introductions in unlisted languages (a looser phrase shape) with their age or birth date, ages a "
        "person is or turns, the word-for-years families; names on shipping labels, chat openers and certificate "
        "subjects. Unlike earlier sets, no caveat of authorship: the set's writer did not see the rules, and the "
        "rules' author did not read the set before the freeze."),
    "held_out_19.txt": (
        "Messages: held_out_19, written for issue #21 by another session (the sets4 helper, committed on main as "
        "7ba916c) that changed no code, rules or models and did not see this round's rules work; the rules' author "
        "(round pii15) did not open, grep or run it before the rules froze (73afd30), then brought it in alone "
        "(25b292a) and ran it once. 61 messages (16 without PII), about a third of them tabular: CSV/TSV, psql and "
        "mysql grids, df.head() prints, Markdown, fixed-width reports, JSON. The head is the one held_out_10 "
        "reported (unchanged); the 'before' columns are the rules at main's 6c69de8 (this round's start) with that "
        "head, so they isolate this round's change: a column-aware table reader (pii/tables.py: CSV/TSV with quotes, "
        "Markdown, psql and mysql grids, space-aligned df.head() prints and hand-aligned reports, pg_dump COPY "
        "blocks; each column typed from its header's words in several languages, a thing's header (product, "
        "birth_place, max_age, password_hash, ...) typing nothing; a table's row numbers and id cells are nobody's "
        "age or address), tuned on calibration only (held_out_18's pg_dump, mail-merge CSV and df.head() "
        "messages above all). No caveat of authorship: the set's writer did not see the rules, and the rules' "
        "author did not read the set before the freeze. Caveat (round pii16): held_out_20 was not on main at "
        "pii16's freeze, so these figures are held_out_19 again AFTER pii16 fixed its listed errors knowing it (card "
        "and IBAN columns by shape, no address across a table row's line end, a hash is no login, 'SURNAME, Given'): "
        "it is calibration now, not held out; pii16 measured it at main's df37d5e at 0.8774/0.7351 and at 3b572ee "
        "at 0.8944/0.7784. The 'before' columns stay pii15's (rules at 6c69de8)."),
    "held_out_20.txt": (
        "Messages: held_out_20, written for issue #21 by another session (the sets6 helper, committed on main as "
        "3e0cd5f) that changed no code, rules or models and did not see this round's rules work; the rules' author "
        "(round pii17) did not open, grep or run it before the rules froze (37af8eb), then brought it in alone "
        "(00497cf) and ran it once. 60 messages (17 without PII). The head is the one held_out_10 reported "
        "(unchanged); the 'before' columns are the rules at main's 02ce9d3 (this round's start) with that head, so "
        "they isolate this round's changes, tuned on calibration only (held_out_2 ... held_out_19, held_out_18's and "
        "held_out_19's misses above all): names and addresses in scripts of their own (Japanese and Chinese address "
        "layouts, Russian form order, Greek, Persian/Arabic and Hindi layouts; CJK form labels before a name, Korean "
        "'저는 X이고', patronymic names, more intro phrases), header-less CSV/TSV blocks and columns typed by their "
        "values (given names of the lexicon and the surnames beside them, and beside a person's column ages and "
        "birth dates), ages and birth dates in more languages (CJK counters, Turkish, Punjabi, Hindi, Tagalog, "
        "Spanish and Portuguese phrasings), and one read of a text's tables for the rules and the row-number check. "
        "No caveat of authorship: the set's writer did not see the rules, and the rules' author did not read the "
        "set before the freeze. held_out_19 (calibration now) went from 0.8944/0.7784 at 02ce9d3 to 0.9432/0.8973 "
        "with these rules, in-sample."),
    "held_out_21.txt": (
        "Messages: held_out_21, written for issue #21 by another session (the sets8 helper, committed on main as "
        "34c0acc) that changed no code, rules or models and did not see this round's rules work; the rules' author "
        "(round pii18) did not open, grep or run it before the rules froze (347c3ca), then brought it in alone "
        "(0fd0ac6) and ran it once. 61 messages. The head is the one "
        "held_out_10 reported (unchanged); the 'before' columns are the rules at main's 7a546b3 (this round's "
        "start) with that head, so they isolate this round's changes, tuned on calibration only (held_out_2 ... "
        "held_out_20, held_out_20's listed misses above all): a labelled IBAN of its country's length whose check "
        "digits fail, database roles and credential columns that are no login (app_rw, pw_plain, pw_hash), the "
        "Gulf's street-number layout without a building word (شارع ... 27، حي ...), Arabic names after a title with "
        "their بن/بنت chain, and a CSV address column that keeps its unquoted commas. No caveat of authorship: the "
        "set's writer did not see the rules, and the rules' author did not read the set before the freeze. Outcome: "
        "the changes found nothing new on held_out_21 and cost one login ('reports_ro_anja': a person's account "
        "named like a read-only role, which the role rule dropped: a role word beside a person's name must keep the "
        "login), so P/R moved 0.8732/0.7848 -> 0.8726/0.7806 (USERNAME R 0.818 -> 0.773; every other type "
        "unchanged). held_out_20 (calibration now) went from 0.8954/0.7965 to 0.9177/0.8430 with these rules, "
        "in-sample. CAVEAT (round pii19): the fresh set held_out_22, promised by another session, was not on main "
        "when pii19's rules froze (3b5368e) nor by 06:23 UTC, so this section still reports held_out_21, and for "
        "pii19 it is NOT held out: the pii19 author studied its misses and tuned on it (with held_out_2 ... "
        "held_out_20 and the other calibration sets). The columns below are in-sample and optimistic; the 'before' "
        "columns are the rules at main's 5e3baca (pii19's start, the same figures pii18 reported after its round). "
        "pii19's changes (general mechanisms, each with a unit test): a role word beside a given name keeps a "
        "person's login; a login made from a named person's full name; header-less rows typed by the column names "
        "the sentence above them gives; a fixed-width report's row with one-space gaps cut at the header's column "
        "starts; a connection string's password is a PASSWORD for a person's login; login / password pairs, the "
        "answer on the line after a password or date-of-birth question, and the word for an account in more "
        "languages in chat prose; street addresses in prose in more layouts (Indonesia/Malaysia, East Africa, "
        "Vietnamese lanes, Hebrew, Thai, the Gulf without a number, Chinese lanes, Hindi flats); a CSV address column "
        "anywhere; form fields for names in more languages and scripts, Telegram and WhatsApp-iOS chat heads, more "
        "intro phrases; template stand-ins (zero dates, FIRSTNAME, name@domain.tld) are no PII. The next fresh "
        "set gives their held-out figure."),
    "held_out_22.txt": (
        "Messages: held_out_22, written for issue #21 by another session (the sets14 helper, committed on main as "
        "8d0373a) that changed no code, rules or models and saw neither pii19's nor this round's (pii20) rules work; "
        "neither rules' author opened, grepped or ran it before their rules froze (pii19's at 3b5368e, before the set was "
        "on main; pii20's at 367a6af), then pii20 brought it in alone (685e1af) and ran it once. 65 messages (13 "
        "without PII, look-alikes; about a fifth tabular), written to stress home addresses in running prose in 28 "
        "countries' layouts, unlabelled names in narrative, logins and passwords in chat and config, and names that "
        "are also common words. The head is the one held_out_10 reported (unchanged). The table shows three rule "
        "versions with that head: 5e3baca (before pii19), 1b82c4d (main at pii20's start: pii19's rules, so this is "
        "pii19's first held-out figure) and this round's. pii20's changes, tuned on calibration only (held_out_2 ... "
        "held_out_21 and the other message sets; misses listed by class, not by set), each a general mechanism with "
        "a unit test: a given name of the lexicon and the capitalised word(s) after it are a person without a frame "
        "(in capitals too), and a name part the head found alone grows to the capitalised word beside it (not over "
        "makers, landmarks, titles after an article, words the text writes in lower case, or a sentence-opening "
        "greeting); a part of a named person's name names them again; a lone sentence-opening word the head read as "
        "a name that runs into lower-case words no name is followed by is no name; a head's name on a short line "
        "stays on its line; a name at an address's edge is cut from the address; an address the head stopped at a "
        "comma runs on to its postcode; a form's labelled fields ('Label: value', or the value on the next line) "
        "typed by the table reader's header words give ages, birth dates and addresses in more languages; a column "
        "of given names under a header that names nothing is people's; a record's first/last/full keys; continental "
        "house numbers (9/2/14, 61-II), Canadian and Australian postcodes; a life's span in brackets gives the birth "
        "date; a service mailbox or timestamp column is no login; a thing's 'N years old' is no person's age. No "
        "caveat of authorship: the set's writer did not see the rules, and neither rules' author read the set "
        "before their freeze. Outcome: pii19's rules moved held_out_22 from 0.8814/0.7969 to 0.8819/0.8008 (a "
        "password); pii20's to 0.8821/0.8314: seven names found that the head missed or cut (full names without a "
        "frame, three-word Spanish and Portuguese names, a hyphenated surname), two Australian addresses (WA "
        "postcodes), two ages and two false flags fewer (an age, an address run into a label), against three "
        "false names (a football club and two streets read as a given name and a capitalised word: 'Aston Villa', "
        "'Rua Haddock Lobo', 'Aroha Terrace') and three names lost ('Grace heard', 'Bisi didn't': a lone "
        "sentence-opening name before a verb the list of verbs after a name lacks; 'Will': the head's span ran from "
        "the line above, 'Thu\\n- Will', and the short-line cut kept 'Thu'), so PERSON went P 0.890 -> 0.867, R "
        "0.750 -> 0.787. "
        "held_out_21 (calibration now) went from 0.9391/0.9114 (pii19, in-sample) to 0.9658/0.9536 with these "
        "rules, in-sample."),
}
# the reported set through the rules before its round, with the same head (the 'before' columns), measured once
# when the round's rules froze: `git checkout 775416f -- router_extproc/pii/rules.py` and run this bench with
# --no-doc (held.messages in docs/bench/pii.json), then restore the file
RULES_BEFORE = {"held_out_11.txt": ("775416f", {
    'AGE': {'precision': 0.8333, 'recall': 0.2941, 'n': 17, 'false_pos': 1},
    'DATE_OF_BIRTH': {'precision': 1.0, 'recall': 0.5455, 'n': 11, 'false_pos': 0},
    'EMAIL_ADDRESS': {'precision': 0.0, 'recall': None, 'n': 0, 'false_pos': 1},
    'PASSWORD': {'precision': 1.0, 'recall': 0.4, 'n': 10, 'false_pos': 0},
    'PERSON': {'precision': 0.8958, 'recall': 0.8776, 'n': 49, 'false_pos': 5},
    'PHONE_NUMBER': {'precision': 1.0, 'recall': 1.0, 'n': 1, 'false_pos': 0},
    'STREET_ADDRESS': {'precision': 0.8182, 'recall': 1.0, 'n': 9, 'false_pos': 2},
    'USERNAME': {'precision': 1.0, 'recall': 0.4545, 'n': 11, 'false_pos': 0},
    'ALL': {'precision': 0.8902, 'recall': 0.6759, 'n': 108, 'false_pos': 9}}),
    # (round pii8: `git checkout c643c8d -- router_extproc/pii/rules.py router_extproc/signals/pii.py`, the held
    # messages scored as run() scores them, then the files restored)
    "held_out_12.txt": ("c643c8d", {
    'AGE': {'precision': 0.9091, 'recall': 0.4545, 'n': 22, 'false_pos': 1},
    'DATE_OF_BIRTH': {'precision': 1.0, 'recall': 0.5385, 'n': 13, 'false_pos': 0},
    'EMAIL_ADDRESS': {'precision': 1.0, 'recall': 1.0, 'n': 1, 'false_pos': 0},
    'IP_ADDRESS': {'precision': 0.0, 'recall': None, 'n': 0, 'false_pos': 1},
    'PASSWORD': {'precision': 0.8889, 'recall': 0.7273, 'n': 11, 'false_pos': 1},
    'PERSON': {'precision': 0.6486, 'recall': 0.8, 'n': 30, 'false_pos': 13},
    'STREET_ADDRESS': {'precision': 0.7692, 'recall': 0.9091, 'n': 11, 'false_pos': 3},
    'USERNAME': {'precision': 0.6667, 'recall': 0.3636, 'n': 11, 'false_pos': 2},
    'ALL': {'precision': 0.7529, 'recall': 0.6465, 'n': 99, 'false_pos': 21}}),
    # (round pii9: `git show b39be91:<file> > <file>` for router_extproc/pii/rules.py and
    # router_extproc/signals/pii.py, the held messages scored as run() scores them, then the files restored)
    "held_out_13.txt": ("b39be91", {
    'AGE': {'precision': 0.5, 'recall': 0.1935, 'n': 31, 'false_pos': 6},
    'DATE_OF_BIRTH': {'precision': 1.0, 'recall': 0.4375, 'n': 16, 'false_pos': 0},
    'EMAIL_ADDRESS': {'precision': 0.6667, 'recall': 1.0, 'n': 2, 'false_pos': 1},
    'PASSWORD': {'precision': 0.75, 'recall': 0.6667, 'n': 9, 'false_pos': 2},
    'PERSON': {'precision': 0.617, 'recall': 0.58, 'n': 50, 'false_pos': 18},
    'SECRET': {'precision': 0.0, 'recall': None, 'n': 0, 'false_pos': 1},
    'STREET_ADDRESS': {'precision': 0.7143, 'recall': 0.9091, 'n': 11, 'false_pos': 4},
    'USERNAME': {'precision': 0.75, 'recall': 0.6923, 'n': 13, 'false_pos': 3},
    'ALL': {'precision': 0.6635, 'recall': 0.5227, 'n': 132, 'false_pos': 35}}),
    # (round pii10: `git checkout 6e947f9 -- router_extproc/pii/rules.py router_extproc/signals/pii.py`, --no-doc,
    # then the files restored)
    "held_out_14.txt": ("6e947f9", {
    'AGE': {'precision': 0.875, 'recall': 0.4667, 'n': 15, 'false_pos': 1},
    'DATE_OF_BIRTH': {'precision': 1.0, 'recall': 0.5, 'n': 12, 'false_pos': 0},
    'EMAIL_ADDRESS': {'precision': 1.0, 'recall': 1.0, 'n': 1, 'false_pos': 0},
    'PASSWORD': {'precision': 0.75, 'recall': 0.9, 'n': 10, 'false_pos': 3},
    'PERSON': {'precision': 0.807, 'recall': 0.7419, 'n': 62, 'false_pos': 11},
    'PHONE_NUMBER': {'precision': 0.0, 'recall': None, 'n': 0, 'false_pos': 1},
    'STREET_ADDRESS': {'precision': 0.8125, 'recall': 0.8667, 'n': 15, 'false_pos': 3},
    'USERNAME': {'precision': 0.7778, 'recall': 0.7368, 'n': 19, 'false_pos': 4},
    'ALL': {'precision': 0.8067, 'recall': 0.7164, 'n': 134, 'false_pos': 23}}),
    # (round pii11: `git checkout e74993f -- router_extproc/pii/rules.py router_extproc/signals/pii.py`, --no-doc,
    # then the files restored)
    "held_out_15.txt": ("e74993f", {
    'AGE': {'precision': 0.9091, 'recall': 0.2326, 'n': 43, 'false_pos': 1},
    'DATE_OF_BIRTH': {'precision': 1.0, 'recall': 0.4839, 'n': 31, 'false_pos': 0},
    'EMAIL_ADDRESS': {'precision': 1.0, 'recall': 1.0, 'n': 1, 'false_pos': 0},
    'PASSWORD': {'precision': 0.8333, 'recall': 0.6667, 'n': 15, 'false_pos': 2},
    'PERSON': {'precision': 0.783, 'recall': 0.7034, 'n': 118, 'false_pos': 23},
    'PHONE_NUMBER': {'precision': 0.0, 'recall': None, 'n': 0, 'false_pos': 2},
    'STREET_ADDRESS': {'precision': 0.4583, 'recall': 0.6875, 'n': 16, 'false_pos': 13},
    'USERNAME': {'precision': 0.6, 'recall': 0.1875, 'n': 32, 'false_pos': 4},
    'ALL': {'precision': 0.7514, 'recall': 0.5312, 'n': 256, 'false_pos': 45}}),
    # (round pii12: the rules of 0b00f9c (`git archive 0b00f9c router_extproc`) over the same head's pieces of
    # held_out_16, scored as run() scores them)
    "held_out_16.txt": ("0b00f9c", {
    'AGE': {'precision': 0.8571, 'recall': 0.3529, 'n': 51, 'false_pos': 3},
    'DATE_OF_BIRTH': {'precision': 1.0, 'recall': 0.6129, 'n': 31, 'false_pos': 0},
    'IP_ADDRESS': {'precision': 0.0, 'recall': None, 'n': 0, 'false_pos': 1},
    'PASSWORD': {'precision': 0.8462, 'recall': 0.55, 'n': 20, 'false_pos': 2},
    'PERSON': {'precision': 0.687, 'recall': 0.8036, 'n': 112, 'false_pos': 41},
    'PHONE_NUMBER': {'precision': 0.0, 'recall': None, 'n': 0, 'false_pos': 1},
    'STREET_ADDRESS': {'precision': 0.6, 'recall': 0.75, 'n': 20, 'false_pos': 10},
    'USERNAME': {'precision': 0.8125, 'recall': 0.3939, 'n': 33, 'false_pos': 3},
    'ALL': {'precision': 0.7313, 'recall': 0.6217, 'n': 267, 'false_pos': 61}}),
    # (round pii13: router_extproc/pii/rules.py of bf2fee4 (`git show bf2fee4:...`, the only file this round's rule
    # change touched) over the same head, held_out_17 scored as run() scores them, then the file restored)
    "held_out_17.txt": ("bf2fee4", {
    'AGE': {'precision': 1.0, 'recall': 0.6, 'n': 15, 'false_pos': 0},
    'PASSWORD': {'precision': 0.9091, 'recall': 0.5882, 'n': 17, 'false_pos': 1},
    'PERSON': {'precision': 0.875, 'recall': 1.0, 'n': 21, 'false_pos': 3},
    'SECRET': {'precision': 0.0, 'recall': None, 'n': 0, 'false_pos': 2},
    'STREET_ADDRESS': {'precision': 0.6667, 'recall': 1.0, 'n': 2, 'false_pos': 1},
    'USERNAME': {'precision': 0.8667, 'recall': 0.65, 'n': 20, 'false_pos': 2},
    'ALL': {'precision': 0.8594, 'recall': 0.7333, 'n': 75, 'false_pos': 9}}),
    # (round pii14: the router_extproc tree of main's 8ce9e46 (`git archive 8ce9e46 router_extproc`) first on
    # sys.path, the same head, held_out_18 scored as run() scores them, once, after the rules froze)
    "held_out_18.txt": ("8ce9e46", {
    'AGE': {'precision': 0.8571, 'recall': 0.375, 'n': 16, 'false_pos': 1},
    'BANK_ACCOUNT': {'precision': 1.0, 'recall': 1.0, 'n': 2, 'false_pos': 0},
    'CREDIT_CARD': {'precision': 1.0, 'recall': 1.0, 'n': 3, 'false_pos': 0},
    'CRYPTO_WALLET': {'precision': 1.0, 'recall': 1.0, 'n': 1, 'false_pos': 0},
    'DATE_OF_BIRTH': {'precision': 1.0, 'recall': 0.3333, 'n': 15, 'false_pos': 0},
    'DRIVER_LICENSE': {'precision': None, 'recall': 0.0, 'n': 1, 'false_pos': 0},
    'EMAIL_ADDRESS': {'precision': 1.0, 'recall': 1.0, 'n': 6, 'false_pos': 0},
    'GPS_COORDINATES': {'precision': 1.0, 'recall': 1.0, 'n': 1, 'false_pos': 0},
    'IBAN_CODE': {'precision': 1.0, 'recall': 1.0, 'n': 4, 'false_pos': 0},
    'IP_ADDRESS': {'precision': 1.0, 'recall': 1.0, 'n': 4, 'false_pos': 0},
    'MAC_ADDRESS': {'precision': 1.0, 'recall': 1.0, 'n': 1, 'false_pos': 0},
    'NATIONAL_ID': {'precision': 1.0, 'recall': 1.0, 'n': 1, 'false_pos': 0},
    'PASSPORT': {'precision': 1.0, 'recall': 0.5, 'n': 2, 'false_pos': 0},
    'PASSWORD': {'precision': 0.9, 'recall': 0.75, 'n': 12, 'false_pos': 1},
    'PERSON': {'precision': 0.8, 'recall': 0.7018, 'n': 57, 'false_pos': 10},
    'PHONE_NUMBER': {'precision': 0.75, 'recall': 1.0, 'n': 6, 'false_pos': 2},
    'SECRET': {'precision': 0.3333, 'recall': 0.5, 'n': 2, 'false_pos': 2},
    'STREET_ADDRESS': {'precision': 0.6875, 'recall': 0.6875, 'n': 16, 'false_pos': 5},
    'URL': {'precision': None, 'recall': 0.0, 'n': 1, 'false_pos': 0},
    'USERNAME': {'precision': 1.0, 'recall': 0.8571, 'n': 14, 'false_pos': 0},
    'US_SSN': {'precision': 1.0, 'recall': 1.0, 'n': 2, 'false_pos': 0},
    'ALL': {'precision': 0.8467, 'recall': 0.6946, 'n': 167, 'false_pos': 21}}),
    # (round pii15: the router_extproc tree of main's 6c69de8 (`git archive 6c69de8 router_extproc`) first on
    # sys.path, the same head, held_out_19 scored as run() scores them, once, after the rules froze)
    "held_out_19.txt": ("6c69de8", {
    'AGE': {'false_pos': 1, 'n': 25, 'precision': 0.8889, 'recall': 0.32},
    'CREDIT_CARD': {'false_pos': 0, 'n': 3, 'precision': None, 'recall': 0.0},
    'DATE_OF_BIRTH': {'false_pos': 2, 'n': 23, 'precision': 0.8571, 'recall': 0.5217},
    'EMAIL_ADDRESS': {'false_pos': 0, 'n': 3, 'precision': 1.0, 'recall': 1.0},
    'IBAN_CODE': {'false_pos': 0, 'n': 2, 'precision': None, 'recall': 0.0},
    'IP_ADDRESS': {'false_pos': 0, 'n': 2, 'precision': 1.0, 'recall': 1.0},
    'PASSPORT': {'false_pos': 0, 'n': 1, 'precision': 1.0, 'recall': 1.0},
    'PASSWORD': {'false_pos': 0, 'n': 11, 'precision': 1.0, 'recall': 0.4545},
    'PERSON': {'false_pos': 9, 'n': 70, 'precision': 0.8393, 'recall': 0.6714},
    'PHONE_NUMBER': {'false_pos': 0, 'n': 5, 'precision': 1.0, 'recall': 1.0},
    'SECRET': {'false_pos': 1, 'n': 0, 'precision': 0.0, 'recall': None},
    'STREET_ADDRESS': {'false_pos': 4, 'n': 17, 'precision': 0.7333, 'recall': 0.6471},
    'USERNAME': {'false_pos': 2, 'n': 23, 'precision': 0.8947, 'recall': 0.7391},
    'ALL': {'false_pos': 19, 'n': 185, 'precision': 0.8538, 'recall': 0.6}}),
    # (round pii17: the rules at 02ce9d3, exported with `git archive 02ce9d3 router_extproc` and put first on the
    # path, the held messages scored as run() scores them with the same head)
    "held_out_20.txt": ("02ce9d3", {
    'AGE': {'precision': 1.0, 'recall': 0.8571, 'n': 21, 'false_pos': 0},
    'CREDIT_CARD': {'precision': None, 'recall': 0.0, 'n': 1, 'false_pos': 0},
    'DATE_OF_BIRTH': {'precision': 1.0, 'recall': 0.6, 'n': 25, 'false_pos': 0},
    'EMAIL_ADDRESS': {'precision': 1.0, 'recall': 1.0, 'n': 5, 'false_pos': 0},
    'IBAN_CODE': {'precision': 1.0, 'recall': 0.5, 'n': 2, 'false_pos': 0},
    'IP_ADDRESS': {'precision': 0.6667, 'recall': 1.0, 'n': 2, 'false_pos': 1},
    'PASSPORT': {'precision': 1.0, 'recall': 1.0, 'n': 1, 'false_pos': 0},
    'PASSWORD': {'precision': 1.0, 'recall': 0.9, 'n': 10, 'false_pos': 0},
    'PERSON': {'precision': 0.8627, 'recall': 0.7333, 'n': 60, 'false_pos': 7},
    'PHONE_NUMBER': {'precision': 0.8571, 'recall': 1.0, 'n': 6, 'false_pos': 1},
    'SECRET': {'precision': 1.0, 'recall': 1.0, 'n': 1, 'false_pos': 0},
    'STREET_ADDRESS': {'precision': 0.7778, 'recall': 0.7368, 'n': 19, 'false_pos': 4},
    'USERNAME': {'precision': 0.8, 'recall': 0.8889, 'n': 18, 'false_pos': 4},
    'US_SSN': {'precision': 1.0, 'recall': 1.0, 'n': 1, 'false_pos': 0},
    'ALL': {'precision': 0.8867, 'recall': 0.7733, 'n': 172, 'false_pos': 17}}),
    # (round pii19: the rules at main's 5e3baca, pii19's start, exported with `git archive 5e3baca router_extproc` and
    # put first on the path, the messages scored as run() scores them with the same head; pii18's 7a546b3 gave
    # 0.8732/0.7848 here)
    "held_out_21.txt": ("5e3baca", {
    'AGE': {'precision': 1.0, 'recall': 0.8846, 'n': 26, 'false_pos': 0},
    'CREDIT_CARD': {'precision': None, 'recall': 0.0, 'n': 1, 'false_pos': 0},
    'DATE_OF_BIRTH': {'precision': 0.88, 'recall': 0.9167, 'n': 24, 'false_pos': 3},
    'EMAIL_ADDRESS': {'precision': 0.8571, 'recall': 1.0, 'n': 6, 'false_pos': 1},
    'IBAN_CODE': {'precision': 1.0, 'recall': 0.5, 'n': 2, 'false_pos': 0},
    'IP_ADDRESS': {'precision': 0.0, 'recall': None, 'n': 0, 'false_pos': 1},
    'PASSWORD': {'precision': 1.0, 'recall': 0.6923, 'n': 13, 'false_pos': 0},
    'PERSON': {'precision': 0.8202, 'recall': 0.7526, 'n': 97, 'false_pos': 16},
    'PHONE_NUMBER': {'precision': 1.0, 'recall': 1.0, 'n': 14, 'false_pos': 0},
    'SECRET': {'precision': 1.0, 'recall': 1.0, 'n': 1, 'false_pos': 0},
    'STREET_ADDRESS': {'precision': 0.8571, 'recall': 0.6, 'n': 30, 'false_pos': 3},
    'USERNAME': {'precision': 0.85, 'recall': 0.7727, 'n': 22, 'false_pos': 3},
    'US_SSN': {'precision': 1.0, 'recall': 1.0, 'n': 1, 'false_pos': 0},
    'ALL': {'precision': 0.8726, 'recall': 0.7806, 'n': 237, 'false_pos': 27}}),
    # (round pii20: two earlier rule versions, each the router_extproc tree of its commit (`git archive <rev>
    # router_extproc`) first on the path, the same head, held_out_22 scored as run() scores it, once each, after this
    # round's rules froze: 5e3baca, the rules before pii19; 1b82c4d, main at pii20's start (pii19's rules))
    "held_out_22.txt": [("5e3baca", {
    'AGE': {'precision': 0.9167, 'recall': 0.7333, 'n': 15, 'false_pos': 1},
    'BANK_ACCOUNT': {'precision': 1.0, 'recall': 1.0, 'n': 1, 'false_pos': 0},
    'CREDIT_CARD': {'precision': 0.3333, 'recall': 1.0, 'n': 1, 'false_pos': 2},
    'CRYPTO_WALLET': {'precision': None, 'recall': 0.0, 'n': 1, 'false_pos': 0},
    'DATE_OF_BIRTH': {'precision': 1.0, 'recall': 0.9231, 'n': 13, 'false_pos': 0},
    'DRIVER_LICENSE': {'precision': 1.0, 'recall': 1.0, 'n': 1, 'false_pos': 0},
    'EMAIL_ADDRESS': {'precision': 0.6667, 'recall': 1.0, 'n': 6, 'false_pos': 3},
    'GPS_COORDINATES': {'precision': 1.0, 'recall': 1.0, 'n': 1, 'false_pos': 0},
    'IBAN_CODE': {'precision': 1.0, 'recall': 1.0, 'n': 5, 'false_pos': 0},
    'IP_ADDRESS': {'precision': 0.5, 'recall': 1.0, 'n': 1, 'false_pos': 1},
    'MAC_ADDRESS': {'precision': 1.0, 'recall': 1.0, 'n': 1, 'false_pos': 0},
    'NATIONAL_ID': {'precision': 1.0, 'recall': 0.5, 'n': 6, 'false_pos': 0},
    'PASSPORT': {'precision': 1.0, 'recall': 0.5, 'n': 2, 'false_pos': 0},
    'PASSWORD': {'precision': 0.8667, 'recall': 0.7222, 'n': 18, 'false_pos': 2},
    'PERSON': {'precision': 0.8901, 'recall': 0.75, 'n': 108, 'false_pos': 10},
    'PHONE_NUMBER': {'precision': 0.8824, 'recall': 0.8824, 'n': 17, 'false_pos': 2},
    'SECRET': {'precision': 0.75, 'recall': 1.0, 'n': 3, 'false_pos': 1},
    'STREET_ADDRESS': {'precision': 0.8919, 'recall': 0.8462, 'n': 39, 'false_pos': 4},
    'URL': {'precision': 1.0, 'recall': 0.5, 'n': 2, 'false_pos': 0},
    'USERNAME': {'precision': 0.8947, 'recall': 0.8947, 'n': 19, 'false_pos': 2},
    'US_SSN': {'precision': 1.0, 'recall': 1.0, 'n': 1, 'false_pos': 0},
    'ALL': {'precision': 0.8814, 'recall': 0.7969, 'n': 261, 'false_pos': 28}}),
                        ("1b82c4d", {
    'AGE': {'precision': 0.9167, 'recall': 0.7333, 'n': 15, 'false_pos': 1},
    'BANK_ACCOUNT': {'precision': 1.0, 'recall': 1.0, 'n': 1, 'false_pos': 0},
    'CREDIT_CARD': {'precision': 0.3333, 'recall': 1.0, 'n': 1, 'false_pos': 2},
    'CRYPTO_WALLET': {'precision': None, 'recall': 0.0, 'n': 1, 'false_pos': 0},
    'DATE_OF_BIRTH': {'precision': 1.0, 'recall': 0.9231, 'n': 13, 'false_pos': 0},
    'DRIVER_LICENSE': {'precision': 1.0, 'recall': 1.0, 'n': 1, 'false_pos': 0},
    'EMAIL_ADDRESS': {'precision': 0.6667, 'recall': 1.0, 'n': 6, 'false_pos': 3},
    'GPS_COORDINATES': {'precision': 1.0, 'recall': 1.0, 'n': 1, 'false_pos': 0},
    'IBAN_CODE': {'precision': 1.0, 'recall': 1.0, 'n': 5, 'false_pos': 0},
    'IP_ADDRESS': {'precision': 0.5, 'recall': 1.0, 'n': 1, 'false_pos': 1},
    'MAC_ADDRESS': {'precision': 1.0, 'recall': 1.0, 'n': 1, 'false_pos': 0},
    'NATIONAL_ID': {'precision': 1.0, 'recall': 0.5, 'n': 6, 'false_pos': 0},
    'PASSPORT': {'precision': 1.0, 'recall': 0.5, 'n': 2, 'false_pos': 0},
    'PASSWORD': {'precision': 0.875, 'recall': 0.7778, 'n': 18, 'false_pos': 2},
    'PERSON': {'precision': 0.8901, 'recall': 0.75, 'n': 108, 'false_pos': 10},
    'PHONE_NUMBER': {'precision': 0.8824, 'recall': 0.8824, 'n': 17, 'false_pos': 2},
    'SECRET': {'precision': 0.75, 'recall': 1.0, 'n': 3, 'false_pos': 1},
    'STREET_ADDRESS': {'precision': 0.8919, 'recall': 0.8462, 'n': 39, 'false_pos': 4},
    'URL': {'precision': 1.0, 'recall': 0.5, 'n': 2, 'false_pos': 0},
    'USERNAME': {'precision': 0.8947, 'recall': 0.8947, 'n': 19, 'false_pos': 2},
    'US_SSN': {'precision': 1.0, 'recall': 1.0, 'n': 1, 'false_pos': 0},
    'ALL': {'precision': 0.8819, 'recall': 0.8008, 'n': 261, 'false_pos': 28}})]}


# what each earlier held-out message set gave while it was held out (the rules then frozen), for the trend
HISTORY = ("Earlier rounds, each on the set then held out with the rules of the time: messages_blind + messages_gen "
           "(230 messages) P 0.974 / R 0.968, then held_out_2 (82 messages, harder layouts) P 0.867 / R 0.904, then "
           "held_out_3 (137 messages, more languages and styles) P 0.885 / R 0.942, then held_out_4 (87 messages) "
           "P 0.908 / R 0.899, then held_out_5 (132 messages, new styles) P 0.837 / R 0.843, then held_out_6 (90 "
           "messages, new styles) P 0.952 / R 0.775, then held_out_7 (78 messages, new styles) P 0.935 / R 0.783, "
           "then held_out_8 (71 messages, new styles) P 0.878 / R 0.783"
           + (", then held_out_9 (69 messages, new styles) P 0.882 / R 0.798" if "held_out_9.txt" in _EARLIER else "")
           + (", then held_out_10 (81 messages, new styles and languages; the retrained head) P 0.938 / R 0.685"
              if "held_out_10.txt" in _EARLIER else "")
           + (", then held_out_11 (70 messages, new styles and languages) P 0.893 / R 0.694"
              if "held_out_11.txt" in _EARLIER else "")
           + (", then held_out_12 (67 messages, new styles and languages) P 0.755 / R 0.717"
              if "held_out_12.txt" in _EARLIER else "")
           + (", then held_out_13 (72 messages, new styles and languages) P 0.862 / R 0.848"
              if "held_out_13.txt" in _EARLIER else "")
           + (", then held_out_14 (69 messages, new styles and languages) P 0.826 / R 0.746"
              if "held_out_14.txt" in _EARLIER else "")
           + (", then held_out_15 (148 messages, new styles and languages) P 0.839 / R 0.734"
              if "held_out_15.txt" in _EARLIER else "")
           + (", then held_out_16 (156 messages, new styles and languages) P 0.751 / R 0.655"
              if "held_out_16.txt" in _EARLIER else "")
           + (", then held_out_17 (48 messages, command lines and new styles) P 0.909 / R 0.933"
              if "held_out_17.txt" in _EARLIER else "")
           + (", then held_out_18 (70 messages, new styles, layouts and scripts) P 0.842 / R 0.701"
              if "held_out_18.txt" in _EARLIER else "")
           + (", then held_out_19 (61 messages, a third of them tables; another session's set) P 0.877 / R 0.735"
              if "held_out_19.txt" in _EARLIER else "")
           + (", then held_out_20 (60 messages, another session's set) P 0.895 / R 0.797"
              if "held_out_20.txt" in _EARLIER else "")
           + (", then held_out_21 (61 messages, another session's set) P 0.873 / R 0.781"
              if "held_out_21.txt" in _EARLIER else "")
           + "; all are calibration data now, with "
           "messages_cal5 (round-5 calibration cases).")
RETRAIN = (
    "What the rules cannot do and the PII head would need a retrain for (not done: the head is unchanged, "
    "config.PII_TYPES stays its eight training labels): names in running text without a greeting, title or "
    "'my name is' (the head finds most, the rules only the framed ones); addresses; and the head's own false "
    "positives seen here (STREET_ADDRESS on a drug dose and on base64, PERSON on 'Re:' and on a novel's title "
    "character). A retrain needs training text from more than one source and style (correspondence, tickets, "
    "clinical notes, chat, logs, code and documentation as negatives), single given names and lower-case names, "
    "and evaluation on a source held out from training, as here. New labels (AGE, DATE_OF_BIRTH, USERNAME, ...) "
    "would change models/data.py's tag set and so the model recipe. The trend of the rounds says the same: each "
    "round's rules take the set they were calibrated on to P/R about 0.98 / 0.98, and each fresh set in styles "
    "and languages not seen before lands at recall 0.78-0.84 (held_out_5 ... held_out_9): what the rules miss on "
    "it is new layouts (config files, tables, forms, transcripts) and greetings, name frames and age phrasings of "
    "languages not yet listed, which a rule list only ever catches after the fact; names the head runs into a "
    "greeting of an unlisted language ('Grüezi Urs', 'Kaixo Ane') and pets' or places' names (PERSON on 'Bella', "
    "'Porto') are the head's own errors. Training text for that retrain, in the same eight labels, is in "
    "models/pii_templates.txt (round pii6: greetings and sign-offs of ~40 languages before single given names, "
    "chat, tickets, clinical notes, logs, forms, code comments, lower-case names, and negatives for the head's "
    "errors above); once the retrained head ships, this section reports held_out_10, written before that text.")
if HELD_MESSAGES != "held_out_9.txt":  # (held_out_10 on: the retrained head ships)
    RETRAIN = (
        "The PII head reported here was retrained on the round-pii6 templates of models/pii_templates.txt (same "
        "eight labels; greetings and sign-offs of ~40 languages before single given names, chat, tickets, clinical "
        "notes, logs, forms, code comments, lower-case names, and negatives: pets, products, fictional characters, "
        "places named like people, Re:/Fwd: subjects, drug doses, base64/hex, versions, street-like product codes)"
        + ("; the 'before' columns above are the head it replaced, with the same rules" if HELD_MESSAGES ==
           "held_out_10.txt" else "")
        + ". AGE, DATE_OF_BIRTH, USERNAME, PASSWORD and GPS_COORDINATES come from the rules alone (not head labels), "
        "so a retrain cannot move them.")


def _fmt(v: Any) -> str:
    return "-" if v is None else str(v)


def _table(rows: dict, before: dict | None = None, versions: list[dict] | None = None) -> list[str]:
    if versions is not None and len(versions) > 1:
        # (pii20) several earlier rule versions beside the current rules, oldest first
        head = "| type | " + " | ".join(f"rules {v['rev']}: P / R" for v in versions) + " | this round's rules: P / R | n |"
        out = [head, "|---" * (len(versions) + 3) + "|"]
        keys = sorted((set(rows) | {k for b in versions for k in b["messages"]}) - {"ALL"}) + ["ALL"]
        for k in keys:
            cells = [f"{_fmt(b['messages'].get(k, {}).get('precision'))} / "
                     f"{_fmt(b['messages'].get(k, {}).get('recall'))}" for b in versions]
            v = rows.get(k, {"precision": None, "recall": None,
                             "n": max(b["messages"].get(k, {}).get("n", 0) for b in versions)})
            out.append(f"| {k} | " + " | ".join(cells) + f" | {_fmt(v['precision'])} / {_fmt(v['recall'])} | {v['n']} |")
        return out
    if before is None:
        out = ["| type | precision | recall | n |", "|---|---|---|---|"]
        return out + [f"| {k} | {_fmt(v['precision'])} | {_fmt(v['recall'])} | {v['n']} |" for k, v in rows.items()]
    out = ["| type | precision | recall | n | before: precision | before: recall |", "|---|---|---|---|---|---|"]
    return out + [f"| {k} | {_fmt(v['precision'])} | {_fmt(v['recall'])} | {v['n']} | "
                  f"{_fmt(before.get(k, {}).get('precision'))} | {_fmt(before.get(k, {}).get('recall'))} |"
                  for k, v in rows.items()]


def _below(rows: dict, target: float) -> list[str]:
    return [k for k, v in rows.items() if k != "ALL" and any(x is not None and x < target
                                                             for x in (v["precision"], v["recall"]))]


def _list(items: list[str], n: int = 25) -> str:
    return ("; ".join(items[:n]) + (f"; ... and {len(items) - n} more" if len(items) > n else "")) or "none"


def section(res: dict) -> str:
    t, h, c = res["targets"], res["held"], res["cal"]
    m, sec = h["messages"]["ALL"], h["secrets"]
    below = _below(h["messages"], t["per_type"])
    return "\n".join([
        START,
        "## PII and secrets on held-out text (bench_pii.py)",
        "",
        "Model head + rules as the router runs them. Every figure below is on a **held-out** set, never used to "
        "change the rules, from another writer or source than the **calibration** sets that were (tests/bench/data/"
        "pii/; calibration figures at the end, optimistic). " + MESSAGE_SETS[HELD_MESSAGES].rstrip() +
        # (pii12) some sets' descriptions end without a space: one here, so that the sentences do not run together
        " Benign questions: hand-written after the rules were frozen. Secrets: made by "
        "a seeded generator (tests/bench/pii_gen.py, its own templates and value makers; the calibration sets are "
        "hand-written) - code, config and log snippets where provider-format keys, passwords, connection strings, "
        "JWTs, PEM blocks and high-entropy values sit beside git SHAs, digests, UUIDs, trace ids, lockfile hashes and "
        "base64. Documentation: the README text of the installed Python packages (real documentation), cut into "
        "passages, half of the packages by a hash of their names (the other half is calibration); flags on real "
        "people's e-mail addresses, profile URLs and names in them were judged by hand as correct (tests/bench/data/"
        "pii/readme_personal.txt), every other flag counts as false. Match: same type and char IoU >= 0.5; the "
        "model head never trained on any of these sets (its data: presidio-evaluator templates and hand-written "
        "templates, models/pii_templates.txt, filled by faker).",
        "",
        f"Messages ({h['messages_n']}): overall precision {m['precision']} / recall {m['recall']} (target recall >= "
        f"{t['message_recall']}; by source: "
        + "; ".join(f"{k} ({v['messages']} messages) P {v['precision']} / R {v['recall']}"
                    for k, v in h["messages_by_file"].items())
        + f"); per type (target P and R >= {t['per_type']}):",
        "", *_table(h["messages"],
                    res.get("before", {}).get("messages") or res.get("rules_before", {}).get("messages"),
                    None if "before" in res else res.get("rules_before", {}).get("versions")),
        "",
        *([f"Before the retrain (recipe {res['before']['recipe']}, the head of held_out_9's round; shipped now: "
           f"{res['recipe']}): P {res['before']['messages']['ALL']['precision']} / R "
           f"{res['before']['messages']['ALL']['recall']} on the same messages and rules.", ""] if "before" in res else []),
        *([f"Before this round's rule changes (the rules of commit {res['rules_before']['rev']}, the same head): "
           f"P {res['rules_before']['messages']['ALL']['precision']} / "
           f"R {res['rules_before']['messages']['ALL']['recall']} on the same messages"
           + "".join(f"; the rules of commit {v['rev']}: P {v['messages']['ALL']['precision']} / "
                     f"R {v['messages']['ALL']['recall']}" for v in res["rules_before"].get("versions", [])[:-1])
           + ".", ""]
          if "before" not in res and "rules_before" in res else []),
        f"Types below target: {', '.join(below) if below else 'none'}. " + HISTORY,
        "",
        f"Secrets in code and logs ({h['code_n']} generated snippets, {h['code_with_secret_n']} holding a secret): "
        f"precision {sec['precision']} / recall {sec['recall']} for the secret group (SECRET and PASSWORD as one, "
        f"as policies name it; target >= {t['secret']} both; n={sec['n']}, {sec['false_pos']} false positives). "
        "By type (lower: the generator marks a password in a connection string PASSWORD; since pii19 the rules do "
        "too where the login looks like a person's, and call it SECRET for a service's or a token's, which counts "
        "here as a miss and a false positive where the generator's login looks like a service's):",
        "", *_table(h["secrets_by_type"]), "",
        f"False flags: {h['benign_false_flag_rate']} of {h['benign_n']} benign questions (target <= {t['benign']}); "
        f"{h['docs_false_flag_rate']} of {h['docs_n']} README passages (target <= {t['docs']}; "
        f"{h['docs_flagged_rate_raw']} flagged at all, {h['docs_personal_n']} only for real people's contact data).",
        "",
        f"Calibration sets (optimistic): messages P/R {c['messages']['ALL']['precision']} / "
        f"{c['messages']['ALL']['recall']} (n={c['messages']['ALL']['n']}; by file: "
        + "; ".join(f"{k} P {v['precision']} / R {v['recall']}" for k, v in c["messages_by_file"].items())
        + f"); secrets {c['secrets']['precision']} / "
        f"{c['secrets']['recall']} (n={c['secrets']['n']}, {c['code_n']} hand-written snippets); false flags "
        f"{c['benign_false_flag_rate']} of {c['benign_n']} questions and {c['docs_false_flag_rate']} of {c['docs_n']}"
        " documentation passages (hand-written and the other half of the README passages; that half had no hand "
        "review, so its contributors' real profile links and addresses count there as false).",
        "",
        f"Redaction + restoration: p50 {res['redaction']['p50_ms']} ms, p90 {res['redaction']['p90_ms']} ms per "
        f"request ({res['redaction']['what']}; n={res['redaction']['n']}; target p50 <= {t['redact_ms']} ms). "
        f"The rules add p50 {res['rules']['p50_ms']} ms to the signal pass per message (mean "
        f"{res['rules']['mean_chars']} characters; n={res['rules']['n']}); measured on a shared 2-core machine.",
        "",
        "Held-out message errors: " + _list(h["message_errors"]) + ".",
        "",
        "Held-out secret errors: " + _list(h["secret_errors"]) + ".",
        "",
        "Falsely flagged README passages: " + _list(h["docs_flagged"]) + ". Flagged benign questions: "
        + _list(h["benign_flagged"]) + ".",
        "",
        RETRAIN,
        END,
    ])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-doc", action="store_true")
    ap.add_argument("--before", type=Path, default=None, help="an earlier model build to compare on held-out messages")
    a = ap.parse_args(argv)
    if not (MODEL_DIR / "encoder.onnx").exists():
        progress("models not built: skipping")
        return {}
    res = run(a.quick, a.before)
    save("pii", res)
    if not a.no_doc:
        write_section(DOCS / "signals.md", START, END, section(res))
    h = res["held"]
    progress(f"pii (held-out): messages {h['messages']['ALL']}, secrets {h['secrets']}, benign "
             f"{h['benign_false_flag_rate']}, docs {h['docs_false_flag_rate']}; redaction {res['redaction']}")
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
