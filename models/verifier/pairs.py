"""Generated training pairs for the cache's hit verifier (issue #20), beside QQP.

QQP's pairs rarely differ only in how a request is put, and hold few near misses of the kinds a cache must refuse.
This module writes both from templates, deterministically (a fixed seed, no I/O):

* **positives** — one request in other forms: "What is X?" / "Explain X" / "Define X" / "Tell me about X" /
  "X?" / a keyword query / a typo'd, a polite and a long version with context, and rewordings of how-to and
  factual questions ("How do I V O?" / "What's the way to V O?", "Who invented X?" / "Who is the inventor of X?");
* **hard negatives, by kind** — ``opposite`` (antonyms), ``direction`` (conversions, translations, transfers, "how
  many A in a B"), ``scope`` (one / all), ``entity`` (another place, language, library), ``number``, ``task``
  (the same pasted text, another product) and ``time`` (another period).

The slot fillers (topics, objects, places, units, antonym pairs, tasks, periods) share no content word with the
evaluation sets in tests/bench/data/cache_quality/ (tests/unit/test_verifier_pairs.py checks it): those sets stay
a measure of what the verifier learnt, not of what it was shown. Only the connective words of the templates
(:data:`TEMPLATE_WORDS`: "what", "convert", "translate", "explain" ...) may appear there too.
"""

from __future__ import annotations

import hashlib
import json
import random
import re

SEED = 20
VERSION = 1

# -- fillers -------------------------------------------------------------------------------------------------------
TOPICS = [
    "entropy in thermodynamics", "a hash map", "plate tectonics", "the placebo effect", "quantum entanglement",
    "a mortgage", "a sonnet", "a monsoon", "cognitive dissonance", "a neural synapse", "an index fund",
    "a semiconductor", "the greenhouse effect", "statistical significance", "a linked list", "a binary tree",
    "an allergy", "a tsunami", "a glacier", "a mutual fund", "supply chain management", "game theory",
    "a sitcom", "a ballad", "impressionism", "stoicism", "a fjord", "a volcano", "an earthquake",
    "a metaphor", "a pension", "an annuity", "a vaccine adjuvant", "a firewall", "a load balancer",
    "a compiler", "an interpreter", "a mutex", "a semaphore", "garbage collection", "a microservice",
    "a tariff", "a recession", "a hedge fund", "carbon dating", "nuclear fusion", "a supernova",
    "a nebula", "a comet", "an asteroid", "an antibody", "insulin resistance", "a cholesterol panel",
    "an aquifer", "a wetland", "a coral reef", "a savanna", "a tundra", "a mangrove forest",
    "a palindrome", "an anagram", "a sonata", "a symphony", "an opera", "a fugue", "a watt", "a kilowatt hour",
    "an ohm", "a transistor", "a capacitor", "a resistor", "an enzyme", "a protein fold", "a chromosome",
    "a gene mutation", "an antioxidant", "a probiotic", "a carbohydrate", "a calorie deficit",
]

HOWTO = [  # (verb phrase, object)
    ("defrost", "a freezer"), ("descale", "a kettle"), ("repot", "an orchid"), ("sharpen", "a kitchen knife"),
    ("iron", "a linen shirt"), ("patch", "a bicycle tyre"), ("polish", "leather boots"),
    ("prune", "a rose bush"), ("season", "a wok"), ("tune", "a ukulele"),
    ("knit", "a scarf"), ("brew", "kombucha"), ("ferment", "sauerkraut"), ("pickle", "cucumbers"),
    ("grout", "bathroom tiles"), ("caulk", "a shower"), ("wallpaper", "a hallway"), ("insulate", "a loft"),
    ("rebase", "a feature branch"), ("profile", "a slow query"), ("benchmark", "a hard disk"),
    ("calibrate", "a monitor"), ("format", "an sd card"), ("partition", "a hard disk"),
    ("compress", "a folder"), ("mirror", "a tablet display"), ("back up", "a smartphone"),
    ("memorize", "a monologue"), ("negotiate", "a salary"), ("finance", "a wedding"),
    ("train", "a puppy to sit"), ("groom", "a poodle"), ("bathe", "a hamster"),
    ("clean", "a fish tank"), ("unclog", "a drain"), ("hang", "a heavy mirror"), ("paint", "a fence"),
    ("wax", "a snowboard"), ("restring", "a tennis racket"), ("inflate", "a paddleboard"),
]

FACTS = [  # (question, its rewordings)
    ("Who invented the telephone?", ["Who is the inventor of the telephone?", "telephone inventor",
                                    "Which person invented the telephone?"]),
    ("Who sculpted the statue of David?", ["Which artist sculpted the statue of David?", "David statue sculptor"]),
    ("Who founded the Salvation Army?", ["Who was the founder of the Salvation Army?", "Salvation Army founder"]),
    ("What is the national flower of Peru?", ["Which flower is the national flower of Peru?",
                                              "Peru national flower"]),
    ("What altitude does Kilimanjaro reach?", ["What is the elevation of Kilimanjaro?", "Kilimanjaro elevation"]),
    ("How deep is the Mariana Trench?", ["What is the depth of the Mariana Trench?", "Mariana Trench depth"]),
    ("What is the length of the Nile?", ["How many kilometres does the Nile flow?", "Nile length"]),
    ("When did the Berlin Wall come down?", ["On what date was the Berlin Wall demolished?",
                                             "Berlin Wall demolition date"]),
    ("Who discovered penicillin?", ["Who was the discoverer of penicillin?", "penicillin discoverer"]),
    ("Who composed the Moonlight Sonata?", ["Which composer created the Moonlight Sonata?",
                                            "Moonlight Sonata composer"]),
    ("How hot is the surface of Venus?", ["What is the surface temperature of Venus?",
                                          "Venus surface temperature"]),
    ("How far is Mars from the Sun?", ["What is the distance from Mars to the Sun?", "Mars distance from the Sun"]),
    ("Why do dolphins whistle?", ["What makes dolphins whistle?", "reason dolphins whistle"]),
    ("Why is seawater salty?", ["What makes seawater salty?", "why seawater is salty"]),
    ("How do bees produce honey?", ["By what means do bees produce honey?", "how bees produce honey"]),
    ("How do submarines dive?", ["What makes a submarine dive?", "how submarines dive"]),
    ("What is the purpose of the kidneys?", ["What do kidneys do?", "kidney purpose"]),
    ("How many moons does Jupiter have?", ["What is the count of moons of Jupiter?", "Jupiter moons count"]),
]

# (a, b) that need different answers; each pair's words appear in no evaluation text
ANTONYMS = [
    ("open", "shut"), ("lengthen", "shorten"), ("heat", "chill"), ("buy", "sell"), ("hire", "dismiss"),
    ("attach", "detach"), ("plug in", "unplug"), ("inhale", "exhale"), ("widen", "narrow"),
    ("accelerate", "decelerate"), ("upload", "download"), ("arm", "disarm"), ("zip", "unzip"),
    ("fasten", "unfasten"), ("tighten", "loosen"), ("freeze", "thaw"), ("inflate", "deflate"),
    ("pause", "unpause"), ("maximize", "minimize"), ("approve", "reject"), ("pin", "unpin"),
    ("merge", "split"), ("encode", "decode"), ("compress", "decompress"), ("load", "unload"),
    ("expand", "collapse"), ("reveal", "conceal"), ("wrap", "unwrap"),
]
ANTONYM_ADJ = [
    ("perks", "drawbacks"), ("upsides", "downsides"), ("merits", "flaws"), ("healthiest", "unhealthiest"),
    ("cheapest", "most expensive"), ("easiest", "hardest"), ("hottest", "coldest"), ("oldest", "youngest"),
    ("safest", "riskiest"), ("loudest", "quietest"), ("heaviest", "lightest"), ("richest", "poorest"),
    ("most popular", "least popular"), ("highest", "lowest"), ("earliest", "latest"),
]
OPP_OBJECTS = ["a zip archive", "a spreadsheet macro", "the sunroof", "a garage door", "the cabin pressure",
               "a retirement goal", "a tent", "the hatch", "a browser extension", "a trailer hitch",
               "a drone propeller", "a kayak seat"]
OPP_TOPICS = ["wind turbines", "boarding schools", "mopeds", "a sabbatical", "nuclear power",
              "coworking spaces", "hybrid vehicles", "freelancing", "tiny houses", "online dating"]
SUPERLATIVE_OF = ["horse breeds", "cheeses", "national parks in Chile", "marathons", "spices", "metals",
                  "reptiles", "sports coupes", "islands in Greece", "fabrics"]

UNITS = [("liters", "gallons"), ("meters", "feet"), ("kilograms", "tonnes"), ("acres", "hectares"),
         ("joules", "kilojoules"), ("bytes", "kilobytes"), ("knots", "kilometres per hour"), ("pints", "litres"),
         ("yards", "metres"), ("tablespoons", "teaspoons"), ("kelvin", "rankine"), ("pesos", "rupees"),
         ("francs", "kronor"), ("bars", "psi"), ("newtons", "dynes")]
LANGS = ["Dutch", "Swedish", "Polish", "Turkish", "Greek", "Korean", "Hindi", "Vietnamese", "Finnish",
         "Hebrew", "Czech", "Romanian", "Hungarian", "Swahili", "Thai", "Danish", "Ukrainian", "Indonesian"]
PHRASES = ["best wishes", "happy holidays", "the train is late", "where is the museum",
           "see you later", "the kitchen is closed", "I am Sam", "I am hungry"]
DEVICES = ["a kindle", "a smartwatch", "a network share", "an external ssd", "a camera card",
           "a desktop computer", "an ipad", "a chromebook", "a nas enclosure", "a game console"]
CODE_TYPES = [("a dictionary", "a set"), ("bytes", "a hex digest"), ("a timestamp", "a date"),
              ("a char", "an ascii ordinal"), ("an enum", "a label"), ("a matrix", "a vector"),
              ("a map", "an object"), ("a slice", "a deque")]
PROG = ["Rust", "Ruby", "Haskell", "Scala", "Elixir", "Lua", "Perl", "Dart", "Julia", "Clojure", "Erlang",
        "Fortran", "OCaml", "Zig", "Nim", "Crystal"]
CODE_TASKS = ["stream stdin chunks", "parse cli flags", "pause execution briefly", "spawn a thread",
              "shuffle a vector", "open a socket", "checksum a tarball", "format a timestamp", "generate a random token",
              "parse an xml document"]
PLACES = ["Peru", "Chile", "Kenya", "Ghana", "Norway", "Finland", "Vietnam", "Thailand", "Morocco", "Egypt",
          "Nepal", "Bhutan", "Iceland", "Ireland", "Cuba", "Jamaica", "Portugal", "Croatia"]
PLACE_QS = ["What is the national anthem of {}?", "Which coins circulate in {}?", "What is the national dish of {}?",
            "Which mountain ranges cross {}?", "When is the rainy season in {}?", "What is the area of {}?"]
SCOPE = [("one of the", "all of the"), ("one of the", "every one of the"), ("just one of the", "all the"),
         ("some of the", "all the")]
SCOPE_Q = ["Name {} moons of Saturn", "List {} halogens", "Which is {} Channel Islands?",
           "How do I freeze {} panes in this sheet?", "Translate {} verses of the hymn",
           "Describe {} stages of mitosis", "Explain {} amendments in the bill",
           "Paraphrase {} chapters of the handbook", "Rename {} tags in my repository",
           "Which is {} moons of Uranus?", "Annotate {} paragraphs of my thesis",
           "Who restored {} frescoes in this chapel?"]
TASKS = ["press release", "blurb", "sonnet", "riddle", "jingle", "memo", "synopsis", "eulogy",
         "rap verse", "acrostic", "elevator pitch", "crossword clue", "postcard"]
TASK_VERBS = {"synopsis": "Paraphrase"}
PASTED = [
    "Our pottery studio opens four shops in June and hires forty potters.",
    "The town assembly voted to ban lorries from the historic plaza on Sundays.",
    "Biologists discovered an unknown species of frog in the cloud forests of Ecuador.",
    "The gallery will stay open late on Thursdays throughout the sculpture exhibition.",
    "A storm cut power to twelve thousand households along the coast.",
    "The hockey club recruited a young goalkeeper from a minor league club.",
    "Local farmers announced a record harvest of pumpkins this October.",
    "The library lends gardening tools besides books.",
]
TIMES = [("in the 1800s", "in the 1600s"), ("in the Renaissance", "in the Middle Ages"),
         ("in the eighteenth century", "in the sixteenth century"), ("in the Neolithic", "in the Paleolithic"),
         ("in the interwar decades", "in the postwar decades"), ("in the morning", "in the evening"),
         ("in midsummer", "in midwinter"), ("in the Victorian era", "in the Edwardian era"),
         ("under the Ming dynasty", "under the Qing dynasty"), ("in the Tudor era", "in the Stuart era")]
TIME_Q = ["What did farmers grow {}?", "How were houses heated {}?", "What goods did Venice trade {}?",
          "How did ships navigate {}?", "What was the average lifespan {}?", "Which instruments did musicians play {}?"]
NUMBERS = [("17", "71"), ("6", "9"), ("45", "54"), ("eleven", "nineteen"), ("14", "41"), ("1066", "1666")]
NUMBER_Q = ["What is {} multiplied by 19?", "Is {} divisible by 11?", "What notable events took place in {}?",
            "How do I write {} in Roman numerals?", "What is the cube of {}?"]

# Connective words of the templates below (may also appear in the evaluation sets: they carry the form, not
# the content). tests/unit/test_verifier_pairs.py checks that nothing else does.
TEMPLATE_WORDS = frozenset(
    "what is are explain define tell me about meaning definition hi could you please thanks thank "
    "i was reading got confused my friend asked and didn't know so how do can what's way to the best steps "
    "quick question for a an of in on from into convert translate move transfer files many there "
    "write this text which who why when where does did make makes quickly s simple terms really need help "
    "someone mentioned at work yesterday i'm not sure it means one every each use mean name list new people "
    "much up out turn there".split())


def _typo(text: str, rng: random.Random) -> str:
    """Swap two inner letters of one word of at least six letters (the first letter kept)."""
    ws = text.split(" ")
    idx = [i for i, w in enumerate(ws) if len(re.sub(r"\W", "", w)) >= 6]
    if not idx:
        return text
    i = rng.choice(idx)
    w = ws[i]
    j = rng.randrange(1, len(re.sub(r"\W+$", "", w)) - 2)
    ws[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    return " ".join(ws)


def _bare(topic: str) -> str:
    return re.sub(r"^(a|an|the) ", "", topic)


def _definition_forms(x: str, rng: random.Random) -> list[tuple[str, str]]:
    bare = _bare(x)
    forms = [("define", f"Define {bare}"), ("explain", f"Explain {x}"), ("tell", f"Tell me about {x}"),
             ("keyword", f"{bare}?"), ("keyword", f"{bare} meaning"),
             ("polite", f"Hi, could you please explain what {x} is? Thanks!"),
             ("context", f"I was reading about this yesterday and got confused. What is {x}?"),
             ("context", f"Someone mentioned {bare} at work and I'm not sure what it means. What is {x}?"),
             ("rephrase", f"What does {bare} mean?"), ("rephrase", f"Explain {x} in simple terms")]
    forms.append(("typo", _typo(f"what is {x}", rng)))
    return forms


def _howto_forms(v: str, o: str, rng: random.Random) -> list[tuple[str, str]]:
    return [("rephrase", f"What's the way to {v} {o}?"), ("rephrase", f"What is the best way to {v} {o}?"),
            ("rephrase", f"How can I {v} {o}?"), ("keyword", f"how to {v} {o}"),
            ("keyword", f"{v} {o} steps"), ("polite", f"Hi, could you please tell me how to {v} {o}? Thanks"),
            ("context", f"My friend asked me and I didn't know. How do I {v} {o}?"),
            ("typo", _typo(f"how do i {v} {o}", rng))]


def positives(rng: random.Random) -> list[dict]:
    out = []
    for x in TOPICS:
        stored = f"What is {x}?"
        forms = _definition_forms(x, rng)
        out += [{"text_a": stored, "text_b": t, "label": 1, "kind": f"form:{f}"} for f, t in forms]
        a, b = rng.sample(forms, 2)  # two forms of one request, neither the stored one
        out.append({"text_a": a[1], "text_b": b[1], "label": 1, "kind": "form:cross"})
    for v, o in HOWTO:
        stored = f"How do I {v} {o}?"
        out += [{"text_a": stored, "text_b": t, "label": 1, "kind": f"form:{f}"} for f, t in _howto_forms(v, o, rng)]
    for q, alts in FACTS:
        out += [{"text_a": q, "text_b": t, "label": 1, "kind": "form:rephrase"} for t in alts]
        out.append({"text_a": q, "text_b": _typo(q, rng), "label": 1, "kind": "form:typo"})
    return out


def negatives(rng: random.Random) -> list[dict]:
    out: list[dict] = []

    def add(kind: str, a: str, b: str) -> None:
        if rng.random() < 0.5:
            a, b = b, a
        out.append({"text_a": a, "text_b": b, "label": 0, "kind": kind})

    for a, b in ANTONYMS:
        for o in rng.sample(OPP_OBJECTS, 3):
            add("opposite", f"How do I {a} {o}?", f"How do I {b} {o}?")
    for a, b in ANTONYM_ADJ[:3]:
        for t in OPP_TOPICS:
            add("opposite", f"What are the {a} of {t}?", f"What are the {b} of {t}?")
    for a, b in ANTONYM_ADJ[3:]:
        for t in rng.sample(SUPERLATIVE_OF, 3):
            add("opposite", f"What are the {a} {t}?", f"What are the {b} {t}?")
    for u1, u2 in UNITS:
        n = rng.choice(["6", "16", "250", "9.25"])
        add("direction", f"Convert {n} {u1} to {u2}", f"Convert {n} {u2} to {u1}")
        add("direction", f"How do I convert {u1} into {u2}?", f"How do I convert {u2} into {u1}?")
        add("direction", f"How many {u1} make up {u2.rstrip('s')}?", f"How many {u2} make up {u1.rstrip('s')}?")
        add("direction", f"How many {u1} are there in a {u2.rstrip('s')}?",
            f"How many {u2} are there in a {u1.rstrip('s')}?")
    for _ in range(40):
        l1, l2 = rng.sample(LANGS, 2)
        p = rng.choice(PHRASES)
        add("direction", f"Translate '{p}' from {l1} to {l2}", f"Translate '{p}' from {l2} to {l1}")
    for _ in range(25):
        l1, l2 = rng.sample(LANGS, 2)
        p = rng.choice(PHRASES)
        add("direction", f"Translate '{p}' into {l1} from {l2}", f"Translate '{p}' into {l2} from {l1}")
    for _ in range(30):
        d1, d2 = rng.sample(DEVICES, 2)
        verb = rng.choice(["move", "transfer", "sync", "back up"])
        add("direction", f"How do I {verb} photos from {d1} to {d2}?", f"How do I {verb} photos from {d2} to {d1}?")
    for t1, t2 in CODE_TYPES:
        lang = rng.choice(PROG)
        add("direction", f"How do I turn {t1} into {t2} in {lang}?", f"How do I turn {t2} into {t1} in {lang}?")
    for a, b in SCOPE:
        for q in SCOPE_Q:
            add("scope", q.format(a), q.format(b))
    for task in CODE_TASKS:
        l1, l2, l3 = rng.sample(PROG, 3)
        add("entity", f"How do I {task} in {l1}?", f"How do I {task} in {l2}?")
        add("entity", f"{task} in {l1}", f"{task} in {l3}")
    for q in PLACE_QS:
        for _ in range(8):
            p1, p2 = rng.sample(PLACES, 2)
            add("entity", q.format(p1), q.format(p2))
    for q in NUMBER_Q:
        for a, b in NUMBERS:
            add("number", q.format(a), q.format(b))
    for text in PASTED:
        for _ in range(8):
            t1, t2 = rng.sample(TASKS, 2)

            def ask(t: str) -> str:
                return f"{TASK_VERBS[t]} this text: {text}" if t in TASK_VERBS else f"Write a {t} for this text: {text}"
            add("task", ask(t1), ask(t2))
    for a, b in TIMES:
        for q in TIME_Q:
            add("time", q.format(a), q.format(b))
    return out


def pairs() -> list[dict]:
    """Every generated pair: ``text_a``, ``text_b``, ``label`` (1: one request), ``kind`` (``form:...`` for a
    positive, the near-miss kind for a negative). Deterministic: the same list on every call and machine."""
    rng = random.Random(SEED)
    out = positives(rng) + negatives(rng)
    seen, uniq = set(), []
    for r in out:
        k = (r["text_a"], r["text_b"])
        if r["text_a"] != r["text_b"] and k not in seen:
            seen.add(k)
            uniq.append(r)
    return uniq


def digest() -> str:
    """The recipe key of the generated pairs (models/build_verifier.py hashes it into the verifier's recipe)."""
    return hashlib.sha256(json.dumps([VERSION, pairs()], sort_keys=True).encode()).hexdigest()


if __name__ == "__main__":
    from collections import Counter

    ps = pairs()
    print(len(ps), Counter(r["kind"] for r in ps))
