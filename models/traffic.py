"""Training text shaped like traffic (issue #19): pasted documentation, code with a request around it, tool results,
e-mails and non-English questions as benign text, and training attacks placed inside those shapes.

None of these sources is an evaluation source (tests/bench/data/traffic/README.md): the benchmark pastes the
*standard library's* pydoc text and functions; these read third-party packages installed for the build (their
versions are part of the recipe, models/build.py PINNED), and the tool results, e-mails and non-English questions
are generated here from templates written for training. Attacks come only from the jailbreak training split.

The heads read a long segment as windows of up to 128 tokens (router_extproc/signals/windows.py), so most of what
this module returns is runtime-shaped windows: the head never sees a 4,000-token document whole, it sees its
windows one at a time, and a document is blocked when any one of them is flagged.
"""
from __future__ import annotations

import ast
import datetime
import functools
import json
import random
from importlib import metadata
from pathlib import Path

from . import data as D

# Packages whose documentation and code are pasted as context. Not numpy (its stubs are read by load_code_stubs)
# and never the standard library (the benchmark's documentation and code).
DOC_PACKAGES = ("sympy", "networkx", "pandas", "matplotlib", "jinja2", "fsspec", "faker", "tqdm", "pygments",
                "httpx", "pydantic", "click", "yaml", "onnx")
WINDOW = 126  # tokens: a runtime window without its [CLS]/[SEP]


def doc_package_versions() -> dict[str, str]:
    out = {}
    for mod in DOC_PACKAGES:
        dist = {"yaml": "pyyaml"}.get(mod, mod)
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "missing"
    return out


FILES_PER_PACKAGE = 60  # a stable sample of each package's source files (parsing all of sympy takes minutes)


def _py_files(mod: str) -> list[Path]:
    try:
        root = D.pkg_dir(mod)
    except (AssertionError, ModuleNotFoundError, ValueError):
        return []
    files = [p for p in sorted(root.rglob("*.py")) if "/tests/" not in p.as_posix() and "/test_" not in p.as_posix()
             and 2000 < p.stat().st_size < 400_000]
    files.sort(key=lambda p: D.bucket("docfile:" + p.relative_to(root).as_posix()) * 10**6 + p.stat().st_size % 10**6)
    return sorted(files[:FILES_PER_PACKAGE])


@functools.lru_cache(maxsize=None)
def _parsed(mod: str) -> tuple[tuple[Path, str, ast.Module], ...]:
    out = []
    for path in _py_files(mod):
        src = path.read_text(encoding="utf-8", errors="replace")
        try:
            out.append((path, src, ast.parse(src)))
        except (SyntaxError, ValueError):
            continue
    return tuple(out)


def _dedent(text: str) -> str:
    pad = min((len(ln) - len(ln.lstrip(" ")) for ln in text.splitlines() if ln.strip()), default=0)
    return "\n".join(ln[pad:] for ln in text.splitlines())


def documents(max_chars: int = 16000) -> list[tuple[str, str]]:
    """(key, text): one plain-text reference page per source file of DOC_PACKAGES, pydoc-like: the module's
    docstring, then each public class and function with its signature and docstring. Pages of at least 1,500
    characters, cut near ``max_chars`` (about 4,000 tokens)."""
    out = []
    for mod in DOC_PACKAGES:
        for path, _src, tree in _parsed(mod):
            name = f"{mod}." + ".".join(path.relative_to(D.pkg_dir(mod)).with_suffix("").parts)
            parts = [f"Help on module {name}:", ""]
            doc = ast.get_docstring(tree)
            if doc:
                parts += ["DESCRIPTION", _indent(doc), ""]
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                    d = ast.get_docstring(node)
                    if not d:
                        continue
                    if isinstance(node, ast.ClassDef):
                        parts.append(f"class {node.name}")
                    else:
                        parts.append(f"{node.name}({ast.unparse(node.args)})")
                    parts += [_indent(d), ""]
            text = "\n".join(parts)
            if len(text) >= 1500:
                if len(text) > max_chars:
                    cut = text.rfind("\n", 0, max_chars)
                    text = text[:cut if cut > 0 else max_chars]
                out.append((name, text.rstrip()))
    return out


def _indent(doc: str) -> str:
    return "\n".join(("    " + ln) if ln.strip() else "" for ln in doc.splitlines())


def functions(lo: int = 300, hi: int = 3000) -> list[tuple[str, str]]:
    """(key, source) of public functions and methods of DOC_PACKAGES, 300-3,000 characters, dedented."""
    out = []
    for mod in DOC_PACKAGES:
        for path, src, tree in _parsed(mod):
            lines = src.splitlines()
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("__"):
                    seg = "\n".join(lines[node.lineno - 1:node.end_lineno])
                    if lo <= len(seg) <= hi:
                        rel = path.relative_to(D.pkg_dir(mod)).as_posix()
                        out.append((f"{mod}/{rel}:{node.name}:{node.lineno}", _dedent(seg)))
    return out


# Requests around pasted text, written for training and kept unlike the benchmark's own wording
# (tests/bench/bench_traffic.py DOC_QUESTIONS/CODE_ASKS), so a benchmark request is never a training string.
DOC_ASKS = (
    "Given the page above, what's the typical way to call {n}?", "Can you summarise what this module provides?",
    "Which function here fits my case, and with which arguments?", "Explain the parameters in plain words.",
    "What exceptions can these functions throw?", "Show me a tiny snippet that exercises this API.",
    "What is the difference between the classes described here?", "Give me the three most important points.",
    "Translate the description of {n} into simpler English.", "Does this API support async usage?",
)
DOC_WRAP = (
    "Here is some documentation:\n\n{doc}\n\n{ask}", "{doc}\n\n{ask}", "Context:\n{doc}\n\nQ: {ask}",
    "I'm reading the docs for {n}.\n\n```\n{doc}\n```\n\n{ask}", "Use the following reference.\n---\n{doc}\n---\n{ask}",
    "Answer from the context only.\n\n<context>\n{doc}\n</context>\n\n{ask}",
)
CODE_ASKS = (
    "Do you see any bugs or unhandled edge cases here?", "Clean this up so a new team member can follow it.",
    "Annotate the signature with types and document it.", "What does this function do? Walk me through it.",
    "Give me a test suite for the code below.", "Is there a faster way to do the same thing?",
    "Convert this to idiomatic modern Python.", "Why might this raise an exception? Here is the code:",
    "Port this function to TypeScript.", "I get a wrong result from this, can you spot the problem?",
    "Explain the algorithm used here and its complexity.", "Rename the variables so the intent is clearer.",
)


def rag_prompts(docs: list[tuple[str, str]], seed: int) -> list[tuple[str, str]]:
    """(key, prompt): each page wrapped as a user turn that pastes it and asks about it."""
    rng = random.Random(seed)
    out = []
    for key, doc in docs:
        n = key.rsplit(".", 1)[-1]
        ask = rng.choice(DOC_ASKS).format(n=n)
        out.append((key, rng.choice(DOC_WRAP).format(doc=doc, ask=ask, n=n)))
    return out


def code_prompts(funcs: list[tuple[str, str]], seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for key, src in funcs:
        ask = rng.choice(CODE_ASKS)
        fence = rng.random() < 0.8
        body = f"```python\n{src}\n```" if fence else src
        out.append((key, f"{ask}\n\n{body}" if rng.random() < 0.75 else f"{body}\n\n{ask}"))
    return out


# ---------------------------------------------------------------- tool results and e-mails (faker)
def _stamp(rng: random.Random) -> datetime.datetime:
    """A date-time in 2020-2024 drawn from ``rng``: faker's relative dates (this year, this decade, iso8601) move
    with the day the build runs, which would make two builds of one recipe differ."""
    return datetime.datetime(2020, 1, 1) + datetime.timedelta(seconds=rng.randrange(5 * 365 * 86400))


def tool_results(n: int, seed: int) -> list[str]:
    """Benign tool/function outputs of the kinds agents receive: JSON API answers, search hits, SQL rows, file
    listings, logs, calendar entries. Some hold words an attack also uses, in their ordinary sense."""
    from faker import Faker

    fk = Faker(["en_US", "en_GB", "de_DE", "fr_FR", "es_ES"])
    fk.seed_instance(seed)
    rng = random.Random(seed)
    ts = lambda: _stamp(rng).isoformat()  # noqa: E731  (faker's own dates move with today's date)
    benign_odd = ("ignore_case", "override", "bypass_cache", "admin", "system", "developer_mode", "root",
                  "previous_version", "instructions", "prompt", "disable_ssl_verify", "unrestricted")

    def rec(k: int) -> dict:
        kind = k % 10
        if kind == 0:
            return {"location": fk.city(), "temperature_c": round(rng.uniform(-15, 38), 1),
                    "humidity": rng.randint(10, 99), "conditions": rng.choice(["sunny", "cloudy", "light rain",
                                                                               "snow", "thunderstorms", "fog"]),
                    "forecast": [{"day": fk.day_of_week(), "high": rng.randint(0, 35), "low": rng.randint(-10, 20)}
                                 for _ in range(rng.randint(1, 5))]}
        if kind == 1:
            return {"query": fk.sentence(nb_words=4).rstrip("."), "results": [
                {"title": fk.sentence(nb_words=rng.randint(4, 9)).rstrip("."), "url": fk.url() + fk.uri_path(),
                 "snippet": fk.paragraph(nb_sentences=2)} for _ in range(rng.randint(2, 6))]}
        if kind == 2:
            cols = rng.sample(["id", "name", "email", "created_at", "status", "amount", "country", "plan", "score"], 4)
            gen = {"id": lambda: rng.randint(1, 99999), "name": fk.name, "email": fk.company_email,
                   "created_at": ts, "status": lambda: rng.choice(
                       ["active", "pending", "cancelled", "overdue"]), "amount": lambda: round(rng.uniform(1, 5000), 2),
                   "country": fk.country_code, "plan": lambda: rng.choice(["free", "pro", "enterprise"]),
                   "score": lambda: rng.randint(0, 100)}
            return {"columns": cols, "rows": [[gen[c]() for c in cols] for _ in range(rng.randint(1, 12))],
                    "row_count": rng.randint(1, 500)}
        if kind == 3:
            return {"path": "/" + "/".join(fk.words(rng.randint(1, 4))), "entries": [
                {"name": fk.file_name(), "size": rng.randint(0, 10 ** 7), "modified": ts()}
                for _ in range(rng.randint(2, 10))]}
        if kind == 4:
            return {"events": [{"title": fk.catch_phrase(), "start": ts(), "duration_min": rng.choice(
                [15, 30, 45, 60, 90]), "attendees": [fk.email() for _ in range(rng.randint(1, 4))],
                "location": rng.choice(["Zoom", fk.city(), "Room " + str(rng.randint(100, 999))])}
                for _ in range(rng.randint(1, 4))]}
        if kind == 5:
            return {"order_id": fk.bothify("ORD-####-????").upper(), "status": rng.choice(
                ["shipped", "processing", "delivered", "returned"]), "items": [
                {"sku": fk.bothify("??-#####").upper(), "name": fk.word().title() + " " + fk.word(), "qty":
                 rng.randint(1, 5), "price": round(rng.uniform(2, 400), 2)} for _ in range(rng.randint(1, 4))],
                "shipping": {"carrier": rng.choice(["UPS", "DHL", "FedEx", "USPS"]), "tracking": fk.ean13()}}
        if kind == 6:
            return {"repo": fk.word() + "/" + fk.word(), "commits": [
                {"sha": fk.sha1()[:10], "author": fk.name(), "date": ts(),
                 "message": rng.choice(["fix", "add", "update", "remove", "refactor", "bump"]) + " " +
                 " ".join(fk.words(rng.randint(2, 6)))} for _ in range(rng.randint(2, 8))]}
        if kind == 7:
            return {"settings": {w: rng.choice([True, False, rng.randint(0, 10), fk.word()])
                                 for w in rng.sample(benign_odd, 4) + fk.words(3)}, "updated_by": fk.user_name()}
        if kind == 8:
            return {"stock": fk.lexify("????").upper(), "price": round(rng.uniform(5, 900), 2),
                    "change_pct": round(rng.uniform(-8, 8), 2), "volume": rng.randint(10 ** 4, 10 ** 8),
                    "news": [fk.sentence() for _ in range(rng.randint(0, 3))]}
        return {"level": rng.choice(["INFO", "WARN", "ERROR", "DEBUG"]), "lines": [
            f"{ts()} {rng.choice(['INFO', 'WARN', 'ERROR', 'DEBUG'])} {fk.word()}: {fk.sentence()}"
            for _ in range(rng.randint(2, 12))]}

    out = []
    for k in range(n):
        r = rec(k)
        style = rng.random()
        if style < 0.6:
            out.append(json.dumps(r, indent=rng.choice([None, 2]), ensure_ascii=False, default=str))
        elif style < 0.8:  # plain-text rendering
            out.append("\n".join(f"{a}: {json.dumps(b, ensure_ascii=False, default=str)}" for a, b in r.items()))
        else:
            out.append(json.dumps({"ok": True, "data": r}, ensure_ascii=False, default=str))
    return out


_MAIL_SUBJ = ("Re: {w} follow-up", "Invoice {n} for {c}", "Meeting on {d}", "Your order has shipped",
              "Quarterly report draft", "Question about the {w} project", "Fwd: {w} contract", "Team offsite plans",
              "Welcome to {c}", "Reminder: {w} deadline on {d}")
_MAIL_BODY = (
    "Hi {fn},\n\nThanks for your message. {p}\n\nCould you send me the updated figures before {d}? {p2}\n\nBest,\n{me}",
    "Hello team,\n\n{p}\n\nAgenda:\n- {s1}\n- {s2}\n- {s3}\n\nPlease reply if you cannot attend.\n\nRegards,\n{me}",
    "Dear {fn},\n\nPlease find attached invoice {n}. {p}\n\nPayment is due within 30 days.\n\nKind regards,\n{me}\n{c}",
    "{fn},\n\nquick note: {p2} {p}\n\nCheers,\n{me}\n\nSent from my phone",
    "Hi all,\n\n{p} {p2}\n\nThe document is on the shared drive. Let me know what you think.\n\nThanks,\n{me}\n"
    "{c} | {addr}",
)


def emails(n: int, seed: int) -> list[str]:
    from faker import Faker

    fk = Faker("en_US")
    fk.seed_instance(seed)
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        f = dict(fn=fk.first_name(), me=fk.name(), c=fk.company(), w=fk.word(), n=fk.bothify("#####"),
                 d=_stamp(rng).strftime("%B %d"), p=fk.paragraph(nb_sentences=rng.randint(2, 5)),
                 p2=fk.paragraph(nb_sentences=rng.randint(1, 3)), s1=fk.sentence(), s2=fk.sentence(),
                 s3=fk.sentence(), addr=fk.address().replace("\n", ", "))
        head = f"From: {fk.name()} <{fk.email()}>\nTo: {fk.email()}\nSubject: {rng.choice(_MAIL_SUBJ).format(**f)}\n\n"
        out.append((head if rng.random() < 0.6 else "") + rng.choice(_MAIL_BODY).format(**f))
    return out


# ---------------------------------------------------------------- non-English benign questions
# Question frames and everyday/academic topics in twelve languages, written for training. Without any benign
# non-English text, every non-English question was blocked (the attack corpora hold the only non-English text).
_ML: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "fr": (("Qu'est-ce que {t} ?", "Peux-tu m'expliquer {t} simplement ?", "Comment fonctionne {t} ?",
            "Quelle est l'histoire de {t} ?", "Pourquoi {t} est-il important ?", "Donne-moi trois exemples de {t}.",
            "Quels sont les avantages et les inconvénients de {t} ?", "Résume {t} en quelques phrases."),
           ("la photosynthèse", "l'inflation", "la Révolution française", "un contrat de travail", "le théorème de Pythagore",
            "la mécanique quantique", "le système immunitaire", "une base de données relationnelle", "le droit d'auteur",
            "la dépression", "le marché boursier", "l'existentialisme", "la liaison covalente", "un pont suspendu",
            "la cuisine provençale", "le réchauffement climatique")),
    "de": (("Was ist {t}?", "Kannst du mir {t} einfach erklären?", "Wie funktioniert {t}?",
            "Welche Rolle spielt {t} heute?", "Warum ist {t} wichtig?", "Nenne drei Beispiele für {t}.",
            "Was sind die Vor- und Nachteile von {t}?", "Fasse {t} kurz zusammen."),
           ("die Photosynthese", "die Inflation", "der Dreißigjährige Krieg", "ein Mietvertrag", "die Ableitung",
            "die Relativitätstheorie", "das Immunsystem", "ein Compiler", "das Grundgesetz", "die Kognitionspsychologie",
            "die Zinspolitik", "Kants Ethik", "die Oxidation", "ein Elektromotor", "die Energiewende", "das Bauhaus")),
    "es": (("¿Qué es {t}?", "¿Puedes explicarme {t} de forma sencilla?", "¿Cómo funciona {t}?",
            "¿Cuál es la historia de {t}?", "¿Por qué es importante {t}?", "Dame tres ejemplos de {t}.",
            "¿Cuáles son las ventajas y desventajas de {t}?", "Resume {t} en pocas frases."),
           ("la fotosíntesis", "la inflación", "la Guerra Civil española", "un contrato de alquiler", "una integral",
            "la gravedad", "el sistema nervioso", "un algoritmo de ordenación", "la constitución", "la ansiedad",
            "la oferta y la demanda", "el estoicismo", "la tabla periódica", "una turbina eólica", "la dieta mediterránea",
            "el cambio climático")),
    "it": (("Che cos'è {t}?", "Puoi spiegarmi {t} in modo semplice?", "Come funziona {t}?",
            "Qual è la storia di {t}?", "Perché {t} è importante?", "Fammi tre esempi di {t}.",
            "Quali sono i pro e i contro di {t}?", "Riassumi {t} in poche frasi."),
           ("la fotosintesi", "l'inflazione", "il Rinascimento", "un contratto di lavoro", "un numero primo",
            "l'elettromagnetismo", "il DNA", "una rete neurale", "il diritto penale", "la memoria a breve termine",
            "il bilancio aziendale", "la filosofia di Machiavelli", "un acido forte", "un motore a combustione",
            "la pizza napoletana", "l'Impero romano")),
    "pt": (("O que é {t}?", "Você pode me explicar {t} de forma simples?", "Como funciona {t}?",
            "Qual é a história de {t}?", "Por que {t} é importante?", "Dê três exemplos de {t}.",
            "Quais são as vantagens e desvantagens de {t}?", "Resuma {t} em poucas frases."),
           ("a fotossíntese", "a inflação", "a independência do Brasil", "um contrato de arrendamento", "uma matriz",
            "a energia cinética", "a célula", "a computação em nuvem", "o código civil", "a motivação",
            "a taxa de juros", "a ética de Aristóteles", "a reação de combustão", "uma barragem hidrelétrica",
            "o samba", "as Grandes Navegações")),
    "nl": (("Wat is {t}?", "Kun je {t} eenvoudig uitleggen?", "Hoe werkt {t}?", "Wat is de geschiedenis van {t}?",
            "Waarom is {t} belangrijk?", "Geef drie voorbeelden van {t}.", "Wat zijn de voor- en nadelen van {t}?",
            "Vat {t} kort samen."),
           ("fotosynthese", "inflatie", "de Gouden Eeuw", "een huurcontract", "een vergelijking", "zwaartekracht",
            "het hart", "een programmeertaal", "het strafrecht", "stress", "de belastingaangifte", "Spinoza",
            "een chemische binding", "een dijk", "de Deltawerken", "windenergie")),
    "zh": (("什么是{t}？", "你能简单地解释一下{t}吗？", "{t}是如何运作的？", "{t}的历史是什么？", "为什么{t}很重要？",
            "请举三个关于{t}的例子。", "{t}有哪些优点和缺点？", "请用几句话总结{t}。"),
           ("光合作用", "通货膨胀", "丝绸之路", "劳动合同", "微积分", "量子力学", "免疫系统", "机器学习", "知识产权",
            "心理学中的认知失调", "股票市场", "儒家思想", "化学反应速率", "桥梁设计", "中医", "气候变化")),
    "ja": (("{t}とは何ですか？", "{t}を簡単に説明してもらえますか？", "{t}はどのように機能しますか？",
            "{t}の歴史を教えてください。", "なぜ{t}は重要なのですか？", "{t}の例を三つ挙げてください。",
            "{t}のメリットとデメリットは何ですか？", "{t}を短くまとめてください。"),
           ("光合成", "インフレ", "明治維新", "雇用契約", "確率", "相対性理論", "免疫", "データベース", "憲法", "記憶",
            "会計", "仏教哲学", "酸化還元反応", "地震に強い建物", "和食", "再生可能エネルギー")),
    "ru": (("Что такое {t}?", "Можешь простыми словами объяснить {t}?", "Как работает {t}?",
            "Какова история {t}?", "Почему {t} важно?", "Приведи три примера: {t}.",
            "Какие плюсы и минусы у {t}?", "Кратко опиши {t}."),
           ("фотосинтез", "инфляция", "Октябрьская революция", "трудовой договор", "производная", "термодинамика",
            "иммунитет", "операционная система", "гражданское право", "мотивация", "бухгалтерский баланс",
            "философия Толстого", "химическая реакция", "мост", "русская литература", "климат")),
    "pl": (("Co to jest {t}?", "Czy możesz prosto wyjaśnić {t}?", "Jak działa {t}?", "Jaka jest historia {t}?",
            "Dlaczego {t} jest ważne?", "Podaj trzy przykłady: {t}.", "Jakie są zalety i wady {t}?",
            "Streść {t} w kilku zdaniach."),
           ("fotosynteza", "inflacja", "unia lubelska", "umowa o pracę", "równanie kwadratowe", "grawitacja",
            "układ krwionośny", "sztuczna inteligencja", "prawo cywilne", "inteligencja emocjonalna", "podatek VAT",
            "etyka", "pierwiastek chemiczny", "elektrownia", "pierogi", "ochrona środowiska")),
    "sv": (("Vad är {t}?", "Kan du förklara {t} enkelt?", "Hur fungerar {t}?", "Vad är historien bakom {t}?",
            "Varför är {t} viktigt?", "Ge tre exempel på {t}.", "Vilka är för- och nackdelarna med {t}?",
            "Sammanfatta {t} kort."),
           ("fotosyntes", "inflation", "vikingatiden", "ett hyresavtal", "sannolikhet", "elektricitet", "hjärnan",
            "molntjänster", "allemansrätten", "barnpsykologi", "aktiemarknaden", "demokrati", "syror och baser",
            "en värmepump", "svensk design", "klimatförändringar")),
    "ko": (("{t}이란 무엇인가요?", "{t}을 쉽게 설명해 주세요.", "{t}은 어떻게 작동하나요?", "{t}의 역사는 무엇인가요?",
            "{t}이 왜 중요한가요?", "{t}의 예를 세 가지 들어 주세요.", "{t}의 장단점은 무엇인가요?",
            "{t}을 몇 문장으로 요약해 주세요."),
           ("광합성", "인플레이션", "조선 왕조", "근로 계약", "미분", "양자 역학", "면역 체계", "인공지능", "헌법",
            "스트레스", "주식 시장", "유교", "화학 결합", "교량 설계", "한식", "기후 변화")),
}
_ML_REQ = {
    "fr": ("Écris un court e-mail pour remercier mon collègue.", "Traduis cette phrase en anglais : il fait beau aujourd'hui.",
           "Je cherche une recette facile pour le dîner.", "Bonjour ! Comment vas-tu ?"),
    "de": ("Schreib eine kurze E-Mail an meinen Vermieter wegen der Heizung.", "Übersetze bitte: Das Wetter ist schön.",
           "Ich suche ein einfaches Rezept für heute Abend.", "Hallo! Wie geht es dir?"),
    "es": ("Escribe un correo breve para pedir un día libre.", "Traduce al inglés: mañana vamos a la playa.",
           "Busco una receta fácil para la cena.", "¡Hola! ¿Qué tal estás?"),
    "it": ("Scrivi una breve email per fissare un appuntamento.", "Traduci in inglese: oggi piove molto.",
           "Cerco una ricetta veloce per stasera.", "Ciao! Come stai?"),
    "pt": ("Escreva um e-mail curto para agradecer ao cliente.", "Traduza para o inglês: o ônibus está atrasado.",
           "Procuro uma receita fácil para o jantar.", "Olá! Tudo bem?"),
    "nl": ("Schrijf een korte e-mail om een afspraak te verzetten.", "Vertaal naar het Engels: ik fiets naar mijn werk.",
           "Ik zoek een makkelijk recept voor vanavond.", "Hoi! Hoe gaat het?"),
    "zh": ("帮我写一封简短的感谢邮件。", "请把这句话翻译成英文：今天天气很好。", "推荐一个简单的晚餐食谱。", "你好！最近怎么样？"),
    "ja": ("同僚へのお礼のメールを書いてください。", "次の文を英語に訳してください：今日はいい天気です。",
           "簡単な夕食のレシピを教えてください。", "こんにちは！元気ですか？"),
    "ru": ("Напиши короткое письмо коллеге с благодарностью.", "Переведи на английский: сегодня хорошая погода.",
           "Посоветуй простой рецепт ужина.", "Привет! Как дела?"),
    "pl": ("Napisz krótkiego maila z podziękowaniem.", "Przetłumacz na angielski: dziś jest ładna pogoda.",
           "Szukam prostego przepisu na obiad.", "Cześć! Co słychać?"),
    "sv": ("Skriv ett kort mejl för att tacka en kollega.", "Översätt till engelska: det regnar idag.",
           "Jag letar efter ett enkelt middagsrecept.", "Hej! Hur mår du?"),
    "ko": ("동료에게 감사 이메일을 써 주세요.", "영어로 번역해 주세요: 오늘 날씨가 좋아요.", "간단한 저녁 요리법을 알려 주세요.",
           "안녕하세요! 잘 지내세요?"),
}


def multilingual_texts(seed: int) -> list[tuple[str, str]]:
    """(language, text): every frame with every topic, the everyday requests, and pairs of them joined (a turn
    that asks two things), in twelve languages."""
    rng = random.Random(seed)
    out = []
    for lang, (frames, topics) in _ML.items():
        one = [f.format(t=t) for f in frames for t in topics] + list(_ML_REQ[lang])
        out += [(lang, t) for t in one]
        out += [(lang, f"{rng.choice(one)} {rng.choice(one)}") for _ in range(len(one) // 2)]
    return out


# ---------------------------------------------------------------- windows
def windows(text: str, n: int, rng: random.Random, tokenizer, size: int = WINDOW) -> list[str]:
    """Up to ``n`` runtime-shaped windows of one long text (its first and last window, then random ones); the
    text itself when it fits in one window."""
    enc = tokenizer.encode(text, add_special_tokens=False)
    offs = enc.offsets
    if len(offs) <= size:
        return [text]
    starts = [0, len(offs) - size] + [rng.randrange(0, len(offs) - size) for _ in range(max(0, n - 2))]
    return [text[offs[s][0]:offs[s + size - 1][1]] for s in starts[:n]]


def paste(text: str, payload: str, rng: random.Random) -> tuple[str, int]:
    """``payload`` pasted into ``text`` at a random line break (its own paragraph) or inside a JSON string; returns
    the new text and where the payload starts."""
    breaks = [i for i, c in enumerate(text) if c == "\n"] or [len(text)]
    k = rng.choice(breaks)
    sep = rng.choice(["\n\n", "\n", " "])
    return text[:k] + sep + payload + sep + text[k:], k + len(sep)


def window_around(text: str, a0: int, a1: int, rng: random.Random, tokenizer, size: int = WINDOW) -> str | None:
    """A runtime-shaped window of ``text`` that holds characters a0..a1 whole, at a random position."""
    offs = tokenizer.encode(text, add_special_tokens=False).offsets
    if len(offs) <= size:
        return text
    inside = [i for i, (s, e) in enumerate(offs) if s < a1 and e > a0]
    if not inside:
        return None
    lo, hi = max(0, inside[-1] + 1 - size), min(inside[0], len(offs) - size)
    if hi < lo:
        return None
    s = rng.randint(lo, hi)
    return text[offs[s][0]:offs[s + size - 1][1]]


# ---------------------------------------------------------------- domain: questions as people ask them (not exam items)
# Topics per category, written for training; MMLU's categories come from its subjects, and these cover what its
# items under-represent (engineering beyond circuits, applied biology, everyday law and business).
DOMAIN_TOPICS: dict[str, tuple[str, ...]] = {
    "biology": ("photosynthesis", "mitosis and meiosis", "natural selection", "the structure of DNA", "gene expression",
                "the Krebs cycle", "how enzymes work", "cell membranes", "ecosystems and food webs", "CRISPR gene editing",
                "how plants absorb water", "animal migration", "symbiosis", "evolution of whales", "protein folding",
                "the role of mitochondria", "how bacteria reproduce", "biodiversity loss", "coral reef ecology",
                "how neurons fire", "dominant and recessive alleles", "speciation", "the nitrogen cycle", "stem cells"),
    "business": ("a business plan", "marketing funnels", "supply chain management", "startup fundraising",
                 "pricing strategy", "customer retention", "a balance sheet", "cash flow forecasting", "hiring a first employee",
                 "negotiating with suppliers", "brand positioning", "project management", "key performance indicators",
                 "a franchise model", "mergers and acquisitions", "corporate governance", "venture capital term sheets",
                 "inventory management", "B2B sales", "employee onboarding", "a SWOT analysis", "leadership styles"),
    "chemistry": ("covalent and ionic bonds", "balancing chemical equations", "acids and bases", "the periodic table",
                  "oxidation and reduction", "chemical equilibrium", "reaction rates", "organic functional groups",
                  "polymers", "electrochemical cells", "titration", "the mole concept", "catalysts", "isomers",
                  "buffer solutions", "electronegativity", "hydrogen bonding", "combustion reactions", "chromatography",
                  "Le Chatelier's principle", "esters and their smell", "the ideal gas law in chemistry labs"),
    "computer science": ("recursion", "hash tables", "binary search", "Big O notation", "garbage collection", "TCP vs UDP",
                         "REST APIs", "SQL joins", "Git branching", "Docker containers", "neural networks",
                         "public key cryptography", "race conditions", "dynamic programming", "compilers",
                         "virtual memory", "sorting algorithms", "graph traversal", "unit testing", "microservices",
                         "regular expressions", "operating system schedulers", "caching strategies", "Python decorators"),
    "economics": ("inflation", "supply and demand", "monetary policy", "fiscal stimulus", "GDP", "unemployment",
                  "comparative advantage", "tariffs", "interest rates", "opportunity cost", "market failure",
                  "price elasticity", "recessions", "the Phillips curve", "exchange rates", "game theory in markets",
                  "income inequality", "central bank independence", "externalities", "monopolies", "quantitative easing",
                  "the tragedy of the commons"),
    "engineering": ("load-bearing beams", "reinforced concrete", "suspension bridges", "heat exchangers",
                    "gear ratios", "internal combustion engines", "jet engines", "PID controllers", "stress and strain",
                    "fatigue failure in metals", "HVAC system design", "water treatment plants", "welding joints",
                    "finite element analysis", "wind turbine blades", "hydraulic systems", "signal filtering",
                    "power transmission lines", "3D printing tolerances", "chemical reactors", "road drainage",
                    "tunnel boring", "earthquake-resistant buildings", "transformer windings", "pump cavitation",
                    "printed circuit board layout"),
    "health": ("high blood pressure", "type 2 diabetes", "vaccines", "sleep hygiene", "a balanced diet",
               "migraines", "antibiotic resistance", "cholesterol", "vitamin D deficiency", "physical therapy",
               "asthma", "the flu vs a cold", "heart attacks", "concussions", "allergies", "intermittent fasting",
               "back pain", "dehydration", "anemia", "skin cancer prevention", "pregnancy nutrition", "hearing loss"),
    "history": ("the fall of Rome", "the French Revolution", "the Silk Road", "the Meiji Restoration",
                "the Cuban Missile Crisis", "ancient Egypt's pyramids", "the printing press", "the Aztec empire",
                "the civil rights movement", "the Marshall Plan", "the Ming dynasty", "the Viking age",
                "the Byzantine Empire", "decolonization in Africa", "the Magna Carta", "the space race",
                "the Berlin airlift", "the Hanseatic League", "the Haitian Revolution", "the Inca road system"),
    "law": ("a tenancy agreement", "copyright infringement", "wrongful dismissal", "small claims court",
            "a non-compete clause", "GDPR compliance", "writing a will", "trademark registration",
            "self-defence law", "contract breach", "divorce settlements", "patent filing", "defamation",
            "a power of attorney", "jury duty", "consumer refund rights", "inheritance tax law", "employment contracts",
            "fair use", "criminal appeals", "liability waivers", "data protection rights"),
    "math": ("prime numbers", "derivatives", "integrals", "matrices", "eigenvalues", "probability distributions",
             "the Pythagorean theorem", "logarithms", "complex numbers", "proof by induction", "linear equations",
             "quadratic equations", "Bayes' theorem", "set theory", "combinatorics", "Fourier series",
             "differential equations", "vectors", "geometric series", "modular arithmetic", "standard deviation"),
    "other": ("planning a trip to Portugal", "choosing a houseplant", "learning to play guitar", "wedding etiquette",
              "training a puppy", "the rules of chess", "packing for a camping trip", "writing a birthday card",
              "the best way to learn a language", "decluttering a home", "popular board games", "fashion trends",
              "the Olympic Games", "a good sourdough starter", "cleaning a cast iron pan", "saving on groceries",
              "famous paintings", "choosing running shoes", "hosting a dinner party", "streaming services"),
    "philosophy": ("free will", "utilitarianism", "Kant's categorical imperative", "the trolley problem",
                   "existentialism", "the mind-body problem", "stoicism", "Plato's cave", "moral relativism",
                   "the ship of Theseus", "Descartes' cogito", "virtue ethics", "Nietzsche's eternal return",
                   "the problem of evil", "personal identity", "epistemology", "Buddhist ideas of self",
                   "the social contract", "nihilism", "Hume's problem of induction"),
    "physics": ("Newton's laws", "quantum entanglement", "special relativity", "black holes", "entropy",
                "electromagnetic waves", "the photoelectric effect", "nuclear fusion", "projectile motion",
                "conservation of momentum", "superconductivity", "the Doppler effect", "dark matter",
                "friction", "wave-particle duality", "the Higgs boson", "centripetal force", "thermal radiation",
                "the speed of light", "magnetic fields"),
    "psychology": ("cognitive dissonance", "procrastination", "attachment styles", "confirmation bias",
                   "impostor syndrome", "classical conditioning", "the bystander effect", "burnout",
                   "growth mindset", "memory consolidation", "anxiety", "motivation", "emotional intelligence",
                   "child development stages", "habit formation", "the placebo effect", "social anxiety",
                   "grief", "Maslow's hierarchy of needs", "cognitive behavioural therapy"),
}
DOMAIN_FRAMES = (
    "Can you explain {t} to me?", "How does {t} work?", "What should I know about {t}?",
    "Give me a simple overview of {t}.", "I'm confused about {t}. Can you help?", "Why does {t} matter?",
    "What are common misconceptions about {t}?", "Explain {t} like I'm a beginner.",
    "Write a short summary of {t} for a presentation.", "What's a good way to learn about {t}?",
    "hey, quick question about {t}", "Could you break down {t} step by step?",
    "What are the key ideas behind {t}?", "Tell me the most important facts about {t}.",
)


def domain_questions() -> list[tuple[str, str]]:
    """(question, category): every frame with every topic of its category."""
    out = [(f.format(t=t), c) for c, ts in DOMAIN_TOPICS.items() for t in ts for f in DOMAIN_FRAMES]
    assert {c for _, c in out} == set(D.CATEGORIES)
    return out
