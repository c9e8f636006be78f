"""Templated data: complexity prompts and span-labelled PII sentences (presidio-evaluator templates + faker)."""
from __future__ import annotations

import base64
import datetime
import random
import re

from .data import HERE, PII_TYPES, pkg_dir, split_of

# ---------------------------------------------------------------- complexity
_TASKS = [
    "reverses a linked list", "checks whether a string is a palindrome", "merges two sorted arrays",
    "computes the nth Fibonacci number with memoization", "parses a CSV file and sums the second column",
    "finds the longest common subsequence of two strings", "implements binary search", "implements an LRU cache",
    "validates an email address", "counts word frequencies in a text file", "performs a topological sort",
    "detects a cycle in a directed graph", "computes the edit distance between two words",
    "serializes a binary tree to a string and back", "implements quicksort", "flattens a nested list",
    "rate-limits calls with a token bucket", "finds all permutations of a list", "solves the N-queens problem",
    "computes the shortest path with Dijkstra's algorithm", "deduplicates records by key keeping the newest",
    "implements a thread-safe queue", "converts Roman numerals to integers", "evaluates a postfix expression",
]
_LANGS = ["Python", "Go", "Rust", "JavaScript", "Java", "C++", "TypeScript"]
_CODE_T = [
    "Write a {lang} function that {task}.", "Implement a {lang} program that {task}.",
    "Can you write {lang} code that {task}? Include tests.", "write me a {lang} script that {task}",
    "I need a {lang} class that {task}, with complexity analysis.",
]
_PROOF = [
    "Prove that the square root of 2 is irrational.", "Prove that there are infinitely many primes.",
    "Derive the quadratic formula by completing the square.", "Show that the sum of the first n odd numbers is n^2.",
    "Prove by induction that 1 + 2 + ... + n = n(n+1)/2.", "Derive the kinetic energy formula from Newton's second law.",
    "Prove that every finite group of prime order is cyclic.", "Derive the formula for compound interest.",
    "Prove that a continuous function on a closed interval attains its maximum.",
    "Derive the time dilation formula from the postulates of special relativity.",
    "Show that the determinant of a product of matrices equals the product of determinants.",
    "Derive the Black-Scholes PDE step by step.", "Prove that the harmonic series diverges.",
]
_NAMES = ["Maria", "Tom", "A farmer", "A bakery", "Priya", "Jamal", "A school", "Lena", "A store", "Kenji"]
_ITEMS = ["apples", "books", "tickets", "cupcakes", "pencils", "shirts", "eggs", "bottles"]


def _word_problem(rng: random.Random) -> str:
    n, it = rng.choice(_NAMES), rng.choice(_ITEMS)
    a, b, c, p = rng.randint(3, 90), rng.randint(2, 9), rng.randint(2, 30), rng.randint(2, 15)
    forms = [
        f"{n} buys {a} {it} and gives away {c} of them. Then {n} buys {b} times as many as are left. How many {it} are there now?",
        f"{n} sells {it} for ${p} each. On Monday {a} were sold and on Tuesday {b} fewer than half of that. What was the total revenue?",
        f"If {b} workers can pack {a} boxes of {it} in {c} hours, how long would {b + 3} workers take to pack {a * 2} boxes?",
        f"{n} has {a} {it}. {n} loses {p}% of them and then receives {c} more. How many does {n} have, and what fraction is that of the original amount?",
        f"A train leaves at {b}:00 travelling {a + 30} km/h; a second train leaves {c} minutes later at {a + 50} km/h. When does the second catch up?",
    ]
    return rng.choice(forms)


_SIMPLE = [
    "What is the capital of {c}?", "Which continent is {c} in?", "What language do people speak in {c}?",
    "What currency does {c} use?", "who is the head of state of {c}", "What is the population of {c}?",
]
_COUNTRIES = ["France", "Japan", "Brazil", "Kenya", "Canada", "Norway", "India", "Peru", "Egypt", "Vietnam",
              "Australia", "Germany", "Chile", "Morocco", "Spain", "Thailand", "Poland", "Ghana"]
_DEFS = ["photosynthesis", "inflation", "a noun", "an atom", "democracy", "a mortgage", "a haiku", "gravity",
         "a prime number", "an API", "a tariff", "DNA", "a sonnet", "an ecosystem", "a verb", "entropy", "a virus"]
_DEF_T = ["What is {d}?", "Define {d}.", "What does {d} mean?", "Give me a one-line definition of {d}.",
          "In simple words, what is {d}?"]
_CHAT = ["Hi!", "Hello, how are you?", "Good morning", "Thanks a lot!", "hey there", "What's up?",
         "Tell me a joke.", "Who wrote Hamlet?", "When did World War II end?", "How tall is Mount Everest?",
         "What year did the Berlin Wall fall?", "Who painted the Mona Lisa?", "What is the boiling point of water?",
         "How many legs does a spider have?", "What's the largest ocean?", "Who invented the telephone?",
         "What color is the sky?", "Translate 'thank you' into Spanish.", "What time zone is London in?",
         "Recommend a good book.", "What is the chemical symbol for gold?", "Who was the first US president?"]


def complexity_prompts() -> list[tuple[str, int]]:
    rng = random.Random(7)
    out: list[tuple[str, int]] = []
    for task in _TASKS:
        for t in rng.sample(_CODE_T, 3):
            out.append((t.format(lang=rng.choice(_LANGS), task=task), 1))
    out += [(p, 1) for p in _PROOF]
    out += [(_word_problem(rng), 1) for _ in range(150)]
    for c in _COUNTRIES:
        for t in rng.sample(_SIMPLE, 3):
            out.append((t.format(c=c), 0))
    for d in _DEFS:
        for t in rng.sample(_DEF_T, 2):
            out.append((t.format(d=d), 0))
    out += [(c, 0) for c in _CHAT]
    return out


# ---------------------------------------------------------------- PII
PLACEHOLDER_TYPE = {
    "person": "PERSON", "name": "PERSON", "first_name": "PERSON", "last_name": "PERSON", "name_female": "PERSON",
    "name_male": "PERSON", "first_name_male": "PERSON", "first_name_female": "PERSON",
    "first_name_nonbinary": "PERSON", "last_name_male": "PERSON", "last_name_female": "PERSON",
    "email": "EMAIL_ADDRESS", "phone_number": "PHONE_NUMBER", "credit_card_number": "CREDIT_CARD",
    "ssn": "US_SSN", "iban": "IBAN_CODE", "ip_address": "IP_ADDRESS", "address": "STREET_ADDRESS",
    "street_address": "STREET_ADDRESS", "street_name": "STREET_ADDRESS", "building_number": "STREET_ADDRESS",
    "secondary_address": "STREET_ADDRESS",
    # a single given name from many languages' name lists, as written and in lower case (chat, running text)
    "given_name": "PERSON", "given_name_lower": "PERSON",
}
_PH = re.compile(r"{{\s*([a-z_]+)\s*}}")


def pii_templates() -> list[tuple[str, str]]:
    """(template, source) pairs: presidio-evaluator's templates plus our own (models/pii_templates.txt)."""
    p = pkg_dir("presidio_evaluator") / "data_generator" / "raw_data" / "templates.txt"
    out = []
    for ln in p.read_text(encoding="utf-8", errors="replace").splitlines():
        ln = ln.strip().strip('"').replace("\\n", "\n").replace("\\,", ",")
        if ln:
            out.append((ln, "presidio-evaluator"))
    for ln in (HERE / "pii_templates.txt").read_text(encoding="utf-8").splitlines():
        if ln.strip() and not ln.startswith("#"):
            out.append((ln.strip().replace("\\n", "\n"), "handwritten"))
    return out


def template_split(t: str) -> str:
    return split_of("tpl:" + t, train=72, cal=82)


# Given names beyond the eight faker locales below, for greetings and single names. Latin-script locales whose
# faker provider has its own first names (several locales fall back to English lists and add nothing). Left out on
# purpose: the languages of tests/bench/data/pii/held_out_10.txt (Irish, Yoruba, Zulu, Hausa, Azerbaijani, Uzbek,
# ...), so that its greeting and name lines stay a test of languages the head never saw.
INTL_LOCALES = ("cs_CZ", "da_DK", "de_AT", "de_CH", "en_IN", "en_KE", "en_NZ", "en_PK", "es_AR", "es_MX", "et_EE",
                "fi_FI", "fr_CA", "hr_HR", "hu_HU", "id_ID", "ig_NG", "is_IS", "lt_LT", "lv_LV", "nl_BE", "nl_NL",
                "no_NO", "pl_PL", "pt_BR", "pt_PT", "ro_RO", "sk_SK", "sl_SI", "sv_SE", "sw", "tr_TR", "tw_GH")
# Languages faker has no Latin-script name list for (Basque, Welsh, Albanian, Maltese, Swiss German, Korean,
# Japanese, Chinese, Arabic, Hebrew, Tagalog, Vietnamese, Thai, Greek and Russian romanised).
_GIVEN_EXTRA = (
    "Ane", "Iker", "Maialen", "Unai", "Nerea", "Aitor", "Rhys", "Cerys", "Dafydd", "Gwen", "Siân", "Iolo", "Arben",
    "Drita", "Besnik", "Elira", "Gentian", "Marija", "Ġużeppi", "Pawlu", "Urs", "Reto", "Beat", "Mirjam", "Luc",
    "Jang", "Minjun", "Seoyeon", "Jiwoo", "Hyun-woo", "Haruto", "Yui", "Sota", "Aoi", "Ren", "Wei", "Xiaoling",
    "Mingyu", "Jun", "Omar", "Karim", "Fatima", "Rania", "Noa", "Yael", "Eitan", "Avi", "Jomar", "Maricel", "Rodel",
    "Linh", "Minh", "Thao", "Quang", "Somchai", "Ploy", "Nikos", "Eleni", "Dimitra", "Sergei", "Olga", "Dmitri")
# Words that open or close a message without being a name: greetings and sign-offs of ~40 languages (none of
# held_out_10's, nor a word the uncased tokenizer reads as one of its greetings: "Halo" is Gaelic "Halò" without
# the accent), and the subject prefixes of mail clients.
GREETINGS = (
    "Hi", "Hello", "Dear", "Good morning", "Morning", "Hiya", "Howdy", "Yo", "Hallo", "Liebe", "Lieber", "Servus",
    "Moin", "Grüezi", "Grüß Gott", "Bonjour", "Salut", "Coucou", "Chère", "Cher", "Hola", "Buenas", "Querida",
    "Estimado", "Olá", "Oi", "Prezada", "Caro", "Cara", "Ciao", "Buongiorno", "Gentile", "Beste", "Dag",
    "Goedemorgen", "Hej", "Hei", "Kære", "Moi", "Terve", "Cześć", "Dzień dobry", "Witaj", "Ahoj", "Dobrý den",
    "Szia", "Kedves", "Bună", "Merhaba", "Geia sou", "Privet", "Zdravstvuyte", "Pryvit", "Hai",
    "Selamat pagi", "Kumusta", "Magandang umaga", "Chào", "Xin chào", "Habari", "Jambo", "Goeie môre", "Kaixo",
    "Egun on", "Ola", "Bon dia", "Helo", "Shwmae", "Halló", "Sæl", "Përshëndetje", "Tungjatjeta", "Bongu", "Moien",
    "Tere", "Sveiki", "Labas", "Bok", "Zdravo", "Živjo", "Namaste", "Konnichiwa", "Annyeong", "Shalom", "Ni hao",
    "Sawasdee")
SIGNOFFS = (
    "Best", "Cheers", "Thanks", "Regards", "Kind regards", "Liebe Grüße", "Viele Grüße", "Gruss", "Bisous",
    "Cordialement", "Bien à vous", "Saludos", "Un abrazo", "Abraços", "Beijos", "Cumprimentos", "Saluti",
    "Un abbraccio", "Groetjes", "Met vriendelijke groet", "Hälsningar", "Mvh", "Hilsen", "Terveisin", "Pozdrawiam",
    "S pozdravem", "Üdv", "Pozdrav", "Lp", "Cu drag", "Saygılarımla", "Asante", "Groete", "Hwyl",
    "Kveðja", "Tervitades", "Ar cieņu", "Pagarbiai", "Dhanyavaad", "Arigatou", "Xie xie", "Take care", "xx")
SUBJECT_PREFIXES = ("Re:", "RE:", "Fwd:", "FW:", "Fw:", "AW:", "WG:", "TR:", "SV:", "VS:", "Odp:", "Re: Re:",
                    "RE: FW:", "Antw:", "R:", "Rif:")
# Non-person names that the head read as PERSON (pets, products, assistants, fictional characters), and things
# that look like a number plus words, which it read as STREET_ADDRESS (doses, product codes, titles with streets).
PET_NAMES = ("Bella", "Max", "Charlie", "Milo", "Coco", "Rocky", "Daisy", "Teddy", "Oscar", "Poppy", "Simba",
             "Nala", "Loki", "Ziggy", "Pepper", "Bruno", "Rex", "Mochi", "Whiskers", "Shadow", "Ginger", "Oreo")
PRODUCTS = ("Kindle", "Roomba", "Cortana", "Bixby", "Galaxy S23", "Pixel 8", "iPad Air", "Tesla Model 3",
            "Ford Fiesta", "Honda Civic", "Jaguar XE", "Porsche Cayenne", "Mercedes A-Class", "Fitbit Charge",
            "Dyson V15", "PlayStation 5", "Nintendo Switch", "ThinkPad X1", "Copilot", "Gemini", "Llama 3",
            "Mistral 7B", "Jenkins", "Ansible", "Django", "Flask")
FICTIONAL = ("Sherlock Holmes", "Hermione Granger", "Gandalf", "Frodo", "Elizabeth Bennet", "Mr. Darcy",
             "Atticus Finch", "Holden Caulfield", "Jane Eyre", "Captain Ahab", "Anna Karenina", "Raskolnikov",
             "Don Quixote", "Huckleberry Finn", "Winnie the Pooh", "Harry Potter", "Bilbo", "Katniss", "Pippi",
             "Tintin", "Asterix", "Moomin", "Scrooge", "Oliver Twist", "Dorian Gray", "Frankenstein")
DRUGS = ("Metformin", "Atorvastatin", "Paracetamol", "Levothyroxine", "Ramipril", "Omeprazole", "Sertraline",
         "Amlodipine", "Lisinopril", "Prednisolone", "Salbutamol", "Warfarin", "Co-codamol", "Naproxen")
LANDMARKS = ("Abbey Road", "Penny Lane", "Baker Street", "42nd Street", "Sesame Street", "Coronation Street",
             "Wall Street", "Downing Street", "Fifth Avenue", "Route 66", "Sunset Boulevard", "Champs-Élysées",
             "Park Lane", "Carnaby Street", "Broadway", "Lombard Street")
_WORD_LISTS = {"greeting": GREETINGS, "signoff": SIGNOFFS, "subject_prefix": SUBJECT_PREFIXES, "pet_name": PET_NAMES,
               "product": PRODUCTS, "fictional": FICTIONAL, "landmark": LANDMARKS}

_NAME_WORDS = frozenset((
    "tea", "rose", "may", "june", "april", "august", "will", "bill", "mark", "grace", "hope", "joy", "faith", "dawn",
    "summer", "autumn", "pat", "sue", "rob", "art", "jack", "frank", "ray", "gene", "iris", "lily", "ivy", "daisy",
    "holly", "amber", "ruby", "pearl", "sky", "river", "sunny", "star", "max", "don", "guy", "sol", "luz", "eve",
    "per", "jan", "van", "bo", "ada", "ben", "kit", "sandy", "rusty", "clay", "dale", "glen", "heather", "olive",
    "hazel", "violet", "jade", "crystal", "storm", "page", "chase", "hunter", "miles", "norman", "victor", "lean"))
_DATE_END = datetime.datetime(2024, 12, 31)
_DOB_START, _DOB_END = datetime.date(1910, 1, 1), datetime.date(2007, 12, 31)


class Filler:
    def __init__(self, seed: int) -> None:
        from faker import Faker

        self.rng = random.Random(seed)
        self.fakers = [Faker(loc) for loc in ("en_US", "en_US", "en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT")]
        for i, f in enumerate(self.fakers):
            f.seed_instance(seed + i)
            for prov in f.get_providers():  # it_IT builds its city list from a set: fix its order across runs
                if isinstance(getattr(prov, "cities", None), list):
                    prov.cities = sorted(prov.cities)
        self.us = self.fakers[0]
        # Separately seeded, so that the sentences of templates that do not use them are the same as before.
        self.intl = [Faker(loc) for loc in INTL_LOCALES]
        for i, f in enumerate(self.intl):
            f.seed_instance(seed + 100 + i)

    def given_name(self) -> str:
        if self.rng.random() < 0.2:
            return self.rng.choice(_GIVEN_EXTRA)
        f = self.rng.choice(self.intl + self.fakers)
        return getattr(f, self.rng.choice(("first_name", "first_name_female", "first_name_male")), f.first_name)()

    def value(self, ph: str) -> str:
        f = self.rng.choice(self.fakers)
        r = self.rng
        if ph in ("person", "name"):
            v = f.name() if r.random() < 0.8 else f.first_name() + " " + f.last_name()
        elif ph in ("first_name", "first_name_male", "first_name_female", "first_name_nonbinary"):
            v = getattr(f, ph, f.first_name)()
        elif ph == "given_name":
            v = self.given_name()
        elif ph == "given_name_lower":
            v = self.given_name()
            # a lower-case name that is also a word ("tea", "rose") would teach the head to tag the word
            while v.lower() in _NAME_WORDS or len(v.lower()) != len(v):  # ('İ'.lower() is two characters)
                v = self.given_name()
            v = v.lower()
        elif ph in _WORD_LISTS:
            v = r.choice(_WORD_LISTS[ph])
        elif ph == "drug_dose":
            v = f"{r.choice(DRUGS)} {r.choice(('5', '10', '20', '40', '75', '100', '250', '850', '1000'))} " \
                f"{r.choice(('mg', 'mg', 'mcg', 'ml'))} {r.choice(('od', 'bd', 'tds', 'once daily', 'twice a day', 'at night', 'PRN', 'every 6 hours'))}"
        elif ph == "blob":  # base64 or hex of random bytes: a pasted hash, token or image chunk
            b = bytes(r.randrange(256) for _ in range(r.choice((12, 16, 24, 32, 48))))
            v = base64.b64encode(b).decode() if r.random() < 0.6 else b.hex()
        elif ph == "version":
            v = r.choice(("", "v")) + f"{r.randint(0, 12)}.{r.randint(0, 30)}.{r.randint(0, 20)}" + \
                r.choice(("", "", "-rc.1", "-beta.2", "+build.77", ".post1"))
        elif ph == "product_code":  # street-like SKUs and model numbers
            v = r.choice((f"{r.randint(10, 999)}-{r.choice(('ST', 'AVE', 'RD', 'LN', 'BLVD'))}-"
                          f"{r.choice(('BLK', 'WHT', 'GRY', 'NVY'))}",
                          f"{r.choice(('Park', 'Hudson', 'Kings', 'Harbour', 'Mill'))} {r.choice(('Avenue', 'Road', 'Lane', 'Street'))} "
                          f"{r.randint(100, 900)}",
                          f"Model {r.randint(100, 9999)} {r.choice(('Elm', 'Oak', 'Main', 'Bay'))}"))
        elif ph == "username":
            v = self.us.user_name() if r.random() < 0.7 else f.user_name()
        elif ph == "password":
            v = self.us.password(length=r.randint(8, 16), special_chars=r.random() < 0.7)
        elif ph == "clock":
            v = f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}"
        elif ph == "timestamp":
            v = f.date_time(end_datetime=_DATE_END).strftime("%Y-%m-%dT%H:%M:%SZ")
        elif ph == "number":
            v = str(r.randint(2, 99999))
        elif ph in ("last_name", "last_name_male", "last_name_female"):
            v = f.last_name()
        elif ph in ("name_female", "name_male"):
            v = getattr(f, ph)()
        elif ph == "email":
            v = f.email() if r.random() < 0.7 else f.free_email()
        elif ph == "phone_number":
            v = (self.us if r.random() < 0.6 else f).phone_number()
        elif ph == "credit_card_number":
            v = self.us.credit_card_number()
            if r.random() < 0.4 and len(v) == 16:
                sep = r.choice([" ", "-"])
                v = sep.join(v[i:i + 4] for i in range(0, 16, 4))
        elif ph == "ssn":
            v = self.us.ssn()
        elif ph == "iban":
            v = f.iban()
            if r.random() < 0.4:
                v = " ".join(v[i:i + 4] for i in range(0, len(v), 4))
        elif ph == "ip_address":
            v = self.us.ipv4() if r.random() < 0.8 else self.us.ipv6()
        elif ph in ("address", "street_address"):
            v = (f.address() if ph == "address" and r.random() < 0.6 else f.street_address()).replace("\n", ", ")
        elif ph == "street_name":
            v = f.street_name()
        elif ph == "building_number":
            v = f.building_number()
        elif ph == "secondary_address":
            v = self.us.secondary_address()
        elif ph == "prefix_male":
            v = f.prefix_male() if hasattr(f, "prefix_male") else "Mr."
        elif ph == "prefix_female":
            v = f.prefix_female() if hasattr(f, "prefix_female") else "Ms."
        elif ph == "date_time":  # fixed bounds, not "now": the same seed gives the same sentences on any day
            v = str(f.date_time(end_datetime=_DATE_END))
        elif ph == "date_of_birth":
            v = str(f.date_between(start_date=_DOB_START, end_date=_DOB_END))
        elif ph == "year":  # faker's year() and day_of_week() draw up to "now": a build an hour later differed
            v = str(f.date_time(end_datetime=_DATE_END).year)
        elif ph == "day_of_week":
            v = f.date_time(end_datetime=_DATE_END).strftime("%A")
        elif ph in ("country", "city", "job", "company", "zipcode", "postcode", "url", "state_abbr", "prefix"):
            fn = {"organization": "company", "zipcode": "postcode"}.get(ph, ph)
            v = str(getattr(self.us if ph in ("state_abbr", "zipcode") else f, fn)())
        elif ph == "organization":
            v = f.company()
        elif ph == "age":
            v = str(r.randint(18, 90))
        elif ph in ("nationality", "nation_woman", "nation_plural"):
            v = r.choice(["French", "Kenyan", "Brazilian", "Korean", "German", "Mexican"])
        elif ph == "us_driver_license":
            v = f"{r.choice('ABCDEFGHJK')}{r.randint(1000000, 9999999)}"
        else:
            v = f.word()
        return v

    def fill(self, template: str) -> tuple[str, list[tuple[int, int, str]]]:
        """Fill a template; return the text and its gold (start, end, type) spans (see ADDRESS_CONVENTION)."""
        out, parts, pos = [], [], 0
        length = 0
        for m in _PH.finditer(template):
            lit = template[pos:m.start()]
            out.append(lit)
            length += len(lit)
            v = self.value(m.group(1))
            parts.append([length, length + len(v), m.group(1)])
            out.append(v)
            length += len(v)
            pos = m.end()
        out.append(template[pos:])
        text = "".join(out)
        return text, gold_spans(text, parts)


# Gold-label convention (also in the model card):
# * STREET_ADDRESS is the whole contiguous postal address: the street parts (address, street_address, street_name,
#   building_number, secondary_address) plus every city/state/postcode/country part chained to them by nothing but
#   whitespace, commas, newlines and line-leading quote/bullet markers ("> ", "- "). A city or country that is not
#   attached to a street part is not labelled (a place name alone is not an address).
# * PERSON is the whole name, including a title written directly before it ("Dr. Jane Roe", "Sig. Rossi") -- as
#   faker's own names carry them -- and first + last name written next to each other.
STREET_PARTS = {k for k, v in PLACEHOLDER_TYPE.items() if v == "STREET_ADDRESS"}
ADDRESS_ATTACHABLE = {"city", "state", "state_abbr", "postcode", "zipcode", "country"}
TITLE_PH = {"prefix", "prefix_male", "prefix_female"}
_ADDR_SEP = re.compile(r"(?:[ \t,]|\n[ \t]*(?:>+|[?*\u2022-]+(?=[ \t]))?)*")


def _trim(text: str, s: int, e: int) -> tuple[int, int]:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return s, e


def gold_spans(text: str, parts: list) -> list[tuple[int, int, str]]:
    """parts: [start, end, placeholder] in text order -> merged, typed gold spans."""
    spans: list[tuple[int, int, str]] = []
    i = 0
    while i < len(parts):
        s, e, ph = parts[i]
        if ph in STREET_PARTS or ph in ADDRESS_ATTACHABLE:
            j = i  # the maximal chain of address-like parts joined by separators only
            while (j + 1 < len(parts) and (parts[j + 1][2] in STREET_PARTS or parts[j + 1][2] in ADDRESS_ATTACHABLE)
                   and _ADDR_SEP.fullmatch(text, parts[j][1], parts[j + 1][0])):
                j += 1
            if any(p[2] in STREET_PARTS for p in parts[i:j + 1]):
                spans.append((parts[i][0], parts[j][1], "STREET_ADDRESS"))
            i = j + 1
            continue
        t = PLACEHOLDER_TYPE.get(ph)
        if ph in TITLE_PH and i + 1 < len(parts) and PLACEHOLDER_TYPE.get(parts[i + 1][2]) == "PERSON" \
                and text[e:parts[i + 1][0]] == " ":
            t = "PERSON"  # a title directly before a name belongs to the name
        if t == "PERSON" and spans and spans[-1][2] == "PERSON" and text[spans[-1][1]:s] == " ":
            spans[-1] = (spans[-1][0], e, "PERSON")
        elif t:
            spans.append((s, e, t))
        i += 1
    out = []
    for s, e, t in spans:
        s, e = _trim(text, s, e)
        if e > s:
            out.append((s, e, t))
    return out


def pii_sentences(per_template: dict[str, int], seed: int = 11) -> list[dict]:
    """Sentences with spans; templates (not just fillers) are held out per split."""
    filler = Filler(seed)
    out = []
    for tpl, src in pii_templates():
        sp = template_split(tpl)
        n = per_template[sp]
        if not _PH.search(tpl):
            n = max(1, n // 4)
        for _ in range(n):
            text, spans = filler.fill(tpl)
            out.append({"text": text, "spans": spans, "split": sp, "template": tpl, "source": src})
    return out


assert set(PLACEHOLDER_TYPE.values()) == set(PII_TYPES)


# ---------------------------------------------------------------- domain augmentation (router-style phrasings)
_PROOF_CAT = {"kinetic": "physics", "time dilation": "physics", "Black-Scholes": "economics",
              "compound interest": "business"}


def domain_prompts() -> list[tuple[str, str]]:
    """Prompts in the phrasings a router sees (requests rather than exam items): code-writing requests ->
    computer science, multi-step word problems and proofs -> math, country facts / chit-chat -> other."""
    rng = random.Random(8)
    out: list[tuple[str, str]] = []
    for task in _TASKS:
        for t in _CODE_T:
            out.append((t.format(lang=rng.choice(_LANGS), task=task), "computer science"))
    for p in _PROOF:
        cat = next((c for k, c in _PROOF_CAT.items() if k in p), "math")
        out.append((p, cat))
    out += [(_word_problem(rng), "math") for _ in range(200)]
    for c in _COUNTRIES:
        for t in _SIMPLE:
            out.append((t.format(c=c), "other"))
    # Router-style history requests: MMLU's history items are long source passages, so without these short
    # questions about events land in "other". None of these events appear in the hand-written OOD set.
    for e in _EVENTS:
        for t in _HISTORY_T:
            out.append((t.format(e=e), "history"))
    return out


_EVENTS = (
    "First World War", "Second World War", "Thirty Years' War", "Hundred Years' War", "American Revolution",
    "Russian Revolution", "Industrial Revolution", "Protestant Reformation", "Renaissance", "Cold War",
    "American Civil War", "Napoleonic Wars", "Glorious Revolution", "Crusades", "Black Death",
    "Ottoman conquest of Constantinople", "unification of Germany", "partition of India", "Great Depression",
    "Spanish Civil War", "fall of the Berlin Wall", "Opium Wars", "Peloponnesian War", "Norman conquest of England",
    "Congress of Vienna", "War of the Roses", "Boxer Rebellion", "Treaty of Versailles", "Mongol invasions",
    "age of exploration",
)
_HISTORY_T = (
    "What were the main causes of the {e}?", "Explain the consequences of the {e}.",
    "Summarize the key events of the {e}.", "Who were the most important figures in the {e}?",
    "How did the {e} change the societies it touched?", "When did the {e} happen and why does it matter?",
)


def code_snippets() -> list[str]:
    """Code-completion style prompts (function stubs with docstrings): benign hard negatives for jailbreak."""
    rng = random.Random(9)
    out = []
    for task in _TASKS:
        name = "_".join(task.replace("'", "").replace("-", " ").split()[:4]).lower()
        arg = rng.choice(["xs", "s", "graph", "items", "n", "text", "head", "values"])
        doc = task[0].upper() + task[1:]
        ex = rng.choice([f">>> {name}([1, 2, 3])\n    [3, 2, 1]", f">>> {name}('abc')\n    True", f">>> {name}(5)\n    5"])
        out.append(f"from typing import List\n\n\ndef {name}({arg}: List[int]) -> List[int]:\n    \"\"\" {doc}.\n    {ex}\n    \"\"\"\n")
        out.append(f"def {name}({arg}):\n    # TODO: {task}\n    pass\n\nFix and complete this function.")
        out.append(f"class Solution:\n    def {name}(self, {arg}):\n        \"\"\"Ignore edge cases for now; {task}.\"\"\"\n")
    return out


# ---------------------------------------------------------------- conversational questions (jailbreak hard negatives)
# Personal, opinion and "how does this site work" questions addressed to the reader. The jailbreak head had learnt
# "a question about *you*" as role-play: on Quora questions it had never seen it flagged 1.2% (favourite anime,
# secrets never told, who can see that I blocked them). These templates were written after reading the flagged
# questions of QQP rows 0-19,999; the figure in the benchmark is measured on rows 20,000 onward.
_FAV = ("anime", "book", "movie", "song", "programming language", "season", "city", "board game", "dish",
        "painting", "historical period", "word in English", "podcast", "sport to watch", "video game", "poem")
_EVER = ("strangest thing", "best advice", "most useful skill", "hardest decision", "funniest joke",
         "biggest mistake", "most embarrassing moment", "kindest thing a stranger did for", "worst job",
         "most surprising fact", "scariest experience", "best gift")
_EVER_V = {"best advice": "received", "funniest joke": "heard", "kindest thing a stranger did for": "seen done",
           "most useful skill": "learned", "hardest decision": "made", "biggest mistake": "made",
           "worst job": "had", "best gift": "given", "most surprising fact": "learned"}
_HAVE = ("been scammed online", "lost your wallet abroad", "changed careers after 30", "met someone famous",
         "failed an important exam", "regretted quitting a job", "moved to a country where you did not speak the "
         "language", "been discriminated against at work", "tried intermittent fasting", "lived alone",
         "been lied to by a close friend", "had a mentor who changed your life")
_REALIZE = ("that you loved programming", "that you wanted to be a teacher", "that you were gay",
            "that you were an introvert", "that your parents were getting old", "that money does not buy happiness",
            "that you needed glasses", "that you had outgrown your friends", "that you were good at math")
_IF = ("tell your younger self one thing", "live in any century", "master any skill overnight",
       "have dinner with anyone alive or dead", "change one law", "live in any city", "undo one decision",
       "ask an expert one question", "delete one invention")
_WISH = (("people", "nurses"), ("parents", "teenagers"), ("managers", "software developers"), ("men", "women"),
         ("tourists", "your home town"), ("students", "teachers"), ("customers", "waiters"), ("voters", "politics"))
_PLATFORM = (
    "If I block someone on {app}, can the other person see that I blocked them?",
    "Why are my questions on {app} marked as needing clarification?",
    "How do I stop people from commenting on my posts on {app}?",
    "Why does {app} keep deleting my comments?",
    "Can people see who viewed their profile on {app}?",
    "Why doesn't anyone answer my questions on {app}?",
    "Is it rude to leave a group chat on {app} without saying anything?",
    "What is the best question you have come across on {app}?",
    "How many of you use {app} every day?",
    "Who moderates the moderators on {app}?",
)
_APPS = ("Quora", "Instagram", "Reddit", "WhatsApp", "Facebook", "Twitter", "LinkedIn", "Discord", "Telegram")
_MISC = (
    "What is something you have never told anybody?", "What secret have you kept from your family?",
    "Do you wish your hobby could be your job, or do you prefer to keep them separate?",
    "What is one thing you have always wanted to do but never did?",
    "What was your biggest mistake when launching your first product?", "How did you get over a breakup?",
    "What keeps you motivated when nobody is watching?", "What do you do when you cannot sleep?",
    "What is the dumbest thing you have ever done?", "Be honest: do you like your job?",
    "Just curious, how many of you meditate?", "What do you think about people who never apologise?",
    "Why do you think some people hate their own birthday?", "Which habit of yours would you most like to break?",
)


def conversational_questions() -> list[str]:
    out = [f"What is your favourite {f} and why?" for f in _FAV]
    out += [f"What is your favorite {f}?" for f in _FAV[::2]]
    out += [f"What is the {e} you have ever {_EVER_V.get(e, 'seen')}?" for e in _EVER]
    out += [f"Have you ever {h}? What happened?" for h in _HAVE]
    out += [f"When did you first realize {r}?" for r in _REALIZE]
    out += [f"If you could {x}, what would it be and why?" for x in _IF]
    out += [f"What do you wish {a} knew about {b}?" for a, b in _WISH]
    out += [t.format(app=_APPS[(i + k) % len(_APPS)]) for i, t in enumerate(_PLATFORM) for k in (0, 3, 6)]
    out += list(_MISC)
    return sorted(set(out))



def text_windows(pool: list[str], n: int, seed: int, tokenizer, size: int = 126) -> list[str]:
    """Runtime-shaped windows of many pasted-together texts: random pool items joined with spaces, cut to ``size``
    tokens starting at a random token, usually mid-sentence. A long prompt reaches the heads as windows like
    these (router_extproc/signals/engine.py), and the jailbreak head read windows of ordinary Quora questions
    as attacks 3-5 % of the time (calibration-split questions) when it had only seen whole questions."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        parts: list[str] = []
        while sum(len(p) for p in parts) < 12 * size:  # ~3 characters a token: always longer than one window
            parts.append(rng.choice(pool))
        text = " ".join(parts)
        enc = tokenizer.encode(text, add_special_tokens=False)
        if len(enc.ids) <= size:
            continue
        s = rng.randrange(0, len(enc.ids) - size)
        out.append(text[enc.offsets[s][0]:enc.offsets[s + size - 1][1]])
    return out


def insert_windows(inserts: list[str], pool: list[str], seed: int, tokenizer, size: int = 126) -> list[str]:
    """Runtime-shaped windows that hold one insert whole, at a random place among pasted pool texts: a short
    attack pasted into a long prompt of ordinary text (the span head's positives), or, with benign inserts, the
    same shape without an attack (its negatives, so that the splice itself is not what it learns)."""
    rng = random.Random(seed)
    out: list[str] = []
    for a in inserts:
        parts: list[str] = []
        while sum(len(p) for p in parts) < 8 * size:
            parts.append(rng.choice(pool))
        k = rng.randrange(len(parts) + 1)
        left, right = " ".join(parts[:k]), " ".join(parts[k:])
        a0 = len(left) + 1 if left else 0
        text = (left + " " if left else "") + a + (" " + right if right else "")
        offs = tokenizer.encode(text, add_special_tokens=False).offsets
        inside = [i for i, (s, e) in enumerate(offs) if s < a0 + len(a) and e > a0]
        if not inside:
            continue
        lo, hi = max(0, inside[-1] + 1 - size), min(inside[0], len(offs) - size)
        if hi < lo:  # longer than a window
            continue
        s = rng.randint(lo, hi)
        out.append(text[offs[s][0]:offs[min(len(offs), s + size) - 1][1]])
    return out
