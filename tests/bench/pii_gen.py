"""Held-out secrets set made by a generator, not by hand: code, config and log snippets in which real-format secrets
sit beside the random-looking strings that fill such text (git SHAs, digests, UUIDs, trace ids, lockfile hashes,
base64 blobs). The hand-written sets in tests/bench/data/pii/ are the calibration source the rules were tuned on;
this one is a different source (a seeded generator with its own templates and value makers, written before the
rules were run on it) and is what bench_pii.py reports for secrets.

    python -m tests.bench.pii_gen   # rewrites code_logs_gen.txt and messages_gen.txt in tests/bench/data/pii/

Seeded, but faker dates depend on the day it runs: the committed files are the sets; rerunning makes new ones.

Secret values follow each provider's published format (prefix, alphabet, length) and are random: none is live.
"""
from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import uuid
from pathlib import Path

from faker import Faker

OUT = Path(__file__).resolve().parent / "data" / "pii" / "code_logs_gen.txt"
ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"
HEX = "0123456789abcdef"


class Gen:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        self.f = Faker()
        self.f.seed_instance(seed)

    def s(self, alphabet: str, n: int) -> str:
        return "".join(self.r.choice(alphabet) for _ in range(n))

    # ── secrets (marked) ──────────────────────────────────────────────────────────────────────────────
    def provider_key(self) -> tuple[str, str]:
        """(env-style name, value) of a provider key in its published format."""
        r, s = self.r, self.s
        return r.choice([
            ("OPENAI_API_KEY", "sk-proj-" + s(URLSAFE, r.choice([48, 64, 132]))),
            ("OPENAI_API_KEY", "sk-" + s(ALNUM, 48)),
            ("ANTHROPIC_API_KEY", "sk-ant-api03-" + s(URLSAFE, 93) + "AA"),
            ("AWS_ACCESS_KEY_ID", r.choice(["AKIA", "ASIA"]) + s("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)),
            ("GITHUB_TOKEN", "ghp_" + s(ALNUM, 36)),
            ("GH_TOKEN", "gho_" + s(ALNUM, 36)),
            ("GITHUB_PAT", "github_pat_" + s(ALNUM, 22) + "_" + s(ALNUM, 59)),
            ("GITLAB_TOKEN", "glpat-" + s(URLSAFE, 20)),
            ("SLACK_BOT_TOKEN", f"xoxb-{r.randrange(10**10, 10**12)}-{r.randrange(10**10, 10**12)}-{s(ALNUM, 24)}"),
            ("STRIPE_API_KEY", r.choice(["sk_live_", "rk_live_", "sk_test_"]) + s(ALNUM, r.choice([24, 99]))),
            ("GOOGLE_API_KEY", "AIza" + s(URLSAFE, 35)),
            ("HF_TOKEN", "hf_" + s(ALNUM, 34)),
            ("SENDGRID_API_KEY", "SG." + s(URLSAFE, 22) + "." + s(URLSAFE, 43)),
            ("TWILIO_ACCOUNT_SID", "AC" + s(HEX, 32)),
            ("NPM_TOKEN", "npm_" + s(ALNUM, 36)),
            ("SHOPIFY_ACCESS_TOKEN", "shpat_" + s(HEX, 32)),
            ("GROQ_API_KEY", "gsk_" + s(ALNUM, 52)),
            ("DIGITALOCEAN_TOKEN", "dop_v1_" + s(HEX, 64)),
            ("TELEGRAM_BOT_TOKEN", f"{r.randrange(10**8, 10**10)}:AA{s(URLSAFE, 33)}"),
            # no recognisable prefix: only the name beside it says what it is
            ("MAILGUN_API_KEY", "key-" + s(HEX, 32)),
            ("DD_API_KEY", s(HEX, 32)),
            ("SENTRY_AUTH_TOKEN", s(HEX, 64)),
            ("AZURE_CLIENT_SECRET", s(ALNUM, 3) + "8Q~" + s(ALNUM + "_~.-", 34)),
            ("OPENWEATHER_API_KEY", s(HEX, 32)),
        ])

    def password(self) -> str:
        return self.f.password(length=self.r.choice([10, 12, 16, 20]), special_chars=self.r.random() < 0.6)

    def generic_secret(self) -> str:
        return self.s(self.r.choice([ALNUM, URLSAFE, ALNUM + "!@#$%^&*(-_=+)"]), self.r.choice([32, 40, 50, 64]))

    def jwt(self) -> str:
        def enc(obj: dict) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")
        head = {"alg": self.r.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}
        body = {"sub": str(self.r.randrange(10**6)), "name": self.f.name(), "iat": self.r.randrange(1_600_000_000, 1_800_000_000)}
        return f"{enc(head)}.{enc(body)}.{self.s(URLSAFE, 43)}"

    def pem(self) -> tuple[str, str, str]:
        kind = self.r.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"])
        body = "\n".join(self.s(B64, 64) for _ in range(self.r.randrange(3, 8))) + "\n" + self.s(B64, 20) + "=="
        return f"-----BEGIN {kind}-----\n", body, f"\n-----END {kind}-----"

    # ── random-looking strings that are not secrets ───────────────────────────────────────────────────
    def sha(self, n: int = 40) -> str:
        return self.s(HEX, n)

    def noise(self) -> str:
        r, s, f = self.r, self.s, self.f
        return r.choice([
            f"commit {self.sha()}\nAuthor: build-bot <ci@builds.invalid>\nDate:   {f.date_time():%a %b %d %H:%M:%S %Y}"
            f" +0000\n\n    {f.sentence(nb_words=5)}",
            f"{r.choice(['INFO', 'DEBUG', 'WARN'])} {f.iso8601()} request_id={uuid.UUID(int=r.getrandbits(128))} "
            f"trace_id={self.sha(32)} span_id={self.sha(16)} status={r.choice([200, 201, 404, 502])} "
            f"latency_ms={r.randrange(2, 900)}",
            f"FROM python:3.12-slim@sha256:{self.sha(64)}",
            f'"node_modules/{f.word()}": {{\n  "version": "{r.randrange(1, 9)}.{r.randrange(20)}.{r.randrange(20)}",\n'
            f'  "resolved": "https://registry.npmjs.org/{f.word()}/-/{f.word()}-1.2.3.tgz",\n'
            f'  "integrity": "sha512-{s(B64, 86)}=="\n}}',
            f"{self.sha(64)}  {f.file_name(extension='tar.gz')}",
            f"{self.sha(32)}  {f.file_name(extension='iso')}",
            f"Successfully built {self.sha(12)}\nSuccessfully tagged {f.word()}:latest",
            f"<script src=\"/static/js/main.{self.sha(8)}.chunk.js\" integrity=\"sha384-{s(B64, 64)}\"></script>",
            f"{f.word()}-{s('bcdfghjklmnpqrstvwxz2456789', 10)}-{s('bcdfghjklmnpqrstvwxz2456789', 5)}   1/1     "
            f"Running   0          {r.randrange(2, 59)}m",
            f"ETag: W/\"{self.sha(27)}\"\nX-Request-Id: {uuid.UUID(int=r.getrandbits(128))}",
            f"id = \"{uuid.UUID(int=r.getrandbits(128))}\"\nchecksum = \"{self.sha(64)}\"",
            f"img = \"data:image/png;base64,{s(B64, 120)}\"",
            f"ulid={s('0123456789ABCDEFGHJKMNPQRSTVWXYZ', 26)} object_key=uploads/{self.sha(2)}/{self.sha(30)}.jpg",
            f"  File \"/srv/app/{f.word()}.py\", line {r.randrange(10, 400)}, in {f.word()}\n"
            f"    cache_key = hashlib.sha1(payload).hexdigest()  # {self.sha()}",
            f"merge: {self.sha(7)} {self.sha(7)}\n{self.sha(7)} (HEAD -> main, origin/main) {f.sentence(nb_words=4)}",
            f"password_reset_sent user_id={r.randrange(10**5)} email_hash={self.sha(64)}",
            f"API_KEY = os.environ[\"API_KEY\"]\nclient = Client(api_key=API_KEY, timeout={r.randrange(5, 60)})",
            "token = request.headers.get(\"Authorization\", \"\").removeprefix(\"Bearer \")",
            "      - name: Publish\n        env:\n          NODE_AUTH_TOKEN: ${{ secrets.NPM_TOKEN }}",
            f"DB_PASSWORD=\nDB_USER={f.user_name()}  # set DB_PASSWORD in the vault, never here",
            f"sha256sum: {hashlib.sha256(f.word().encode()).hexdigest()}",
            f"version: {r.randrange(1, 4)}.{r.randrange(30)}.{r.randrange(30)}+{self.sha(7)}",
        ])

    # ── snippets ──────────────────────────────────────────────────────────────────────────────────────
    def with_secret(self) -> str:
        r, f = self.r, self.f
        kind = r.randrange(12)
        if kind == 0:
            name, v = self.provider_key()
            return r.choice([f"export {name}={{{{SECRET|{v}}}}}", f"{name}=\"{{{{SECRET|{v}}}}}\"",
                             f"{name.lower()}: {{{{SECRET|{v}}}}}"])
        if kind == 1:
            name, v = self.provider_key()
            var = name.split("_", 1)[0].lower() + "_key"
            return r.choice([f"client = {f.word().capitalize()}Client(api_key=\"{{{{SECRET|{v}}}}}\")",
                             f"const {var} = '{{{{SECRET|{v}}}}}';",
                             f"headers = {{\"Authorization\": \"Bearer {{{{SECRET|{v}}}}}\"}}"])
        if kind == 2:
            name, v = self.provider_key()
            return (f"curl -s https://api.{f.domain_name()}/v1/{f.word()} \\\n  -H \"Authorization: Bearer "
                    f"{{{{SECRET|{v}}}}}\" \\\n  -H \"Content-Type: application/json\"")
        if kind == 3:
            u, p = f.user_name(), self.password()
            scheme, port = r.choice([("postgresql", 5432), ("mysql", 3306), ("mongodb", 27017), ("redis", 6379),
                                     ("amqp", 5672)])
            return r.choice([f"DATABASE_URL={scheme}://{u}:{{{{PASSWORD|{p}}}}}@{f.hostname()}:{port}/{f.word()}",
                             f"engine = create_engine(\"{scheme}://{u}:{{{{PASSWORD|{p}}}}}@{f.ipv4_private()}/"
                             f"{f.word()}\")"])
        if kind == 4:
            p = self.password()
            return r.choice([f"DB_PASSWORD={{{{PASSWORD|{p}}}}}", f"  password: \"{{{{PASSWORD|{p}}}}}\"",
                             f"\"password\": \"{{{{PASSWORD|{p}}}}}\",", f"spring.datasource.password={{{{PASSWORD|{p}}}}}",
                             f"Server={f.hostname()};Database={f.word()};User Id={f.user_name()};"
                             f"Password={{{{PASSWORD|{p}}}}};"])
        if kind == 5:
            p = self.password()
            return r.choice([f"mysql -h {f.hostname()} -u {f.user_name()} -p{{{{PASSWORD|{p}}}}} {f.word()}",
                             f"docker login -u {f.user_name()} --password {{{{PASSWORD|{p}}}}} registry.example.net",
                             f"sshpass -p '{{{{PASSWORD|{p}}}}}' ssh {f.user_name()}@{f.ipv4_private()}"])
        if kind == 6:
            v = self.generic_secret()
            return r.choice([f"SECRET_KEY = '{{{{SECRET|{v}}}}}'", f"JWT_SECRET={{{{SECRET|{v}}}}}",
                             f"client_secret: {{{{SECRET|{v}}}}}", f"app.config['SECRET_KEY'] = \"{{{{SECRET|{v}}}}}\"",
                             f"WEBHOOK_SIGNING_SECRET={{{{SECRET|{v}}}}}"])
        if kind == 7:
            t = self.jwt()
            return r.choice([f"Authorization: Bearer {{{{SECRET|{t}}}}}", f"token = \"{{{{SECRET|{t}}}}}\"",
                             f"{f.iso8601()} DEBUG auth ok jwt={{{{SECRET|{t}}}}}"])
        if kind == 8:
            a, body, b = self.pem()
            return f"{a}{{{{SECRET|{body}}}}}{b}"
        if kind == 9:
            u, p = f.user_name(), self.password()
            raw = base64.b64encode(f"{u}:{p}".encode()).decode()
            return f"GET /admin HTTP/1.1\nHost: {f.hostname()}\nAuthorization: Basic {{{{SECRET|{raw}}}}}"
        if kind == 10:
            key = self.s(B64, 86) + "=="
            return (f"DefaultEndpointsProtocol=https;AccountName={f.word()}{r.randrange(100)};"
                    f"{{{{SECRET|AccountKey={key}}}}};EndpointSuffix=core.windows.net")
        _, v = self.provider_key()
        return f"{f.iso8601()} ERROR upstream 401 for key {{{{SECRET|{v}}}}} (revoked?)"

    def snippet(self) -> str:
        r = self.r
        parts = [self.noise() for _ in range(r.randrange(0, 3))]
        if r.random() < 0.55:
            parts.insert(r.randrange(len(parts) + 1), self.with_secret())
        if not parts:
            parts = [self.noise()]
        return "\n".join(parts)


def main() -> None:
    g = Gen(seed=20261203)
    blocks = [g.snippet() for _ in range(240)]
    OUT.write_text("# Generated by tests/bench/pii_gen.py (seeded): the held-out secrets set. Markup {{TYPE|value}};"
                   " snippets separated by lines \"---\".\n" + "\n---\n".join(blocks) + "\n")
    print(f"wrote {len(blocks)} snippets to {OUT}")



# ── messages: every type of the taxonomy in correspondence, tickets, chat and notes ─────────────────────────────
MSG_OUT = Path(__file__).resolve().parent / "data" / "pii" / "messages_gen.txt"
_BECH = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _bech32(hrp: str, data: list[int]) -> str:
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)

    def polymod(values: list[int]) -> int:
        chk = 1
        for v in values:
            top = chk >> 25
            chk = (chk & 0x1FFFFFF) << 5 ^ v
            for i in range(5):
                chk ^= gen[i] if (top >> i) & 1 else 0
        return chk
    exp = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    pm = polymod(exp + data + [0] * 6) ^ 1
    return hrp + "1" + "".join(_BECH[d] for d in data + [(pm >> 5 * (5 - i)) & 31 for i in range(6)])


class MessageGen(Gen):
    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.gb = Faker("en_GB")
        self.gb.seed_instance(seed)
        self.de = Faker("de_DE")
        self.de.seed_instance(seed)

    @staticmethod
    def m(typ: str, v: str) -> str:
        return "{{" + typ + "|" + v + "}}"

    def value(self, typ: str) -> str:
        r, f, m = self.r, self.f, self.m
        if typ == "EMAIL_ADDRESS":
            return m(typ, r.choice([f.free_email(), f.company_email(), self.gb.free_email()]))
        if typ == "PHONE_NUMBER":
            return m(typ, r.choice([f.phone_number(), self.gb.phone_number(), self.de.phone_number(),
                                    f"+1 {r.randrange(201, 989)} {r.randrange(200, 999)} {r.randrange(1000, 9999)}"]))
        if typ == "STREET_ADDRESS":
            return m(typ, r.choice([f.address().replace("\n", ", "), f.street_address(),
                                    self.gb.address().replace("\n", ", ")]))
        if typ == "DATE_OF_BIRTH":
            d = f.date_of_birth(minimum_age=1, maximum_age=95)
            return m(typ, d.strftime(r.choice(["%m/%d/%Y", "%B %d, %Y", "%Y-%m-%d", "%d.%m.%Y", "%d %b %Y"])))
        if typ == "URL":
            first, last = f.first_name().lower(), f.last_name().lower()
            return m(typ, r.choice([f"https://www.linkedin.com/in/{first}-{last}-{r.randrange(100, 999)}",
                                    f"https://github.com/{first}{last[:3]}", f"https://twitter.com/{first}_{last}",
                                    f"https://www.instagram.com/{first}.{last}/", f"https://{first}{last}.com"]))
        if typ == "MAC_ADDRESS":
            v = f.mac_address()
            return m(typ, r.choice([v, v.upper(), v.upper().replace(":", "-")]))
        if typ == "IP_ADDRESS":
            return m(typ, r.choice([f.ipv4_public(), f.ipv4_private(), f.ipv6()]))
        if typ == "US_SSN":
            v = f.ssn()
            return m(typ, r.choice([v, v.replace("-", " "), v.replace("-", "")]))
        if typ == "PASSPORT":
            return m(typ, f.passport_number())
        if typ == "DRIVER_LICENSE":
            return m(typ, r.choice(string.ascii_uppercase) + str(r.randrange(10**6, 10**8)))
        if typ == "NATIONAL_ID":
            return m(typ, r.choice([self.gb.ssn(), f"{r.randrange(1000, 9999)} {r.randrange(1000, 9999)} "
                                    f"{r.randrange(1000, 9999)}", f"{r.randrange(10**7, 10**8)}{r.choice('TRWAGMY')}"]))
        if typ == "BANK_ACCOUNT":
            return m(typ, str(r.randrange(10**7, 10**12)))
        if typ == "IBAN_CODE":
            v = r.choice([f.iban(), self.de.iban(), self.gb.iban()])
            return m(typ, r.choice([v, " ".join(v[i:i + 4] for i in range(0, len(v), 4))]))
        if typ == "CREDIT_CARD":
            v = f.credit_card_number(card_type=r.choice(["visa16", "mastercard", "amex", "discover"]))
            return m(typ, r.choice([v, " ".join(v[i:i + 4] for i in range(0, len(v), 4))]))
        if typ == "CRYPTO_WALLET":
            if r.random() < 0.5:
                return m(typ, "0x" + self.s("0123456789abcdefABCDEF", 40))
            prog = [r.randrange(256) for _ in range(20)]
            bits = "".join(f"{b:08b}" for b in prog)
            return m(typ, _bech32("bc", [0] + [int(bits[i:i + 5], 2) for i in range(0, 160, 5)]))
        if typ == "GPS_COORDINATES":
            lat, lon = float(f.latitude()), float(f.longitude())
            return m(typ, f"{lat:.5f}, {lon:.5f}")
        if typ == "AGE":
            return m(typ, str(r.randrange(2, 96)))
        if typ == "USERNAME":
            return m(typ, f.user_name())
        if typ == "PASSWORD":
            return m(typ, self.password())
        return m("PERSON", r.choice([f.first_name(), f.name()]))

    FRAMES = {
        "EMAIL_ADDRESS": ["you can reach me at {v}", "please send the invoice to {v} instead", "my email changed to {v}"],
        "PHONE_NUMBER": ["call me back on {v} after 5pm", "my new number is {v}", "the pharmacy's line {v} is busy",
                         "text {v} if the courier is late"],
        "STREET_ADDRESS": ["please ship it to {v}", "we moved to {v} last month", "the leak is at {v}, unit upstairs"],
        "DATE_OF_BIRTH": ["date of birth {v}", "DOB: {v}", "I was born on {v}", "his birthday is {v}"],
        "URL": ["my profile is {v}", "see my work at {v}", "you can check {v} for my background"],
        "MAC_ADDRESS": ["the laptop's MAC is {v}", "whitelist device {v} on the guest network"],
        "IP_ADDRESS": ["my home IP is {v}", "the login came from {v}", "I connect from {v}"],
        "US_SSN": ["SSN {v}", "my social security number is {v}", "ssn: {v}"],
        "PASSPORT": ["passport number {v}", "my passport no. is {v}"],
        "DRIVER_LICENSE": ["driver's license {v}", "my driving licence number is {v}"],
        "NATIONAL_ID": ["national insurance number {v}", "my Aadhaar is {v}", "DNI {v}"],
        "BANK_ACCOUNT": ["account number {v}", "pay into account {v}", "my bank account is {v}"],
        "IBAN_CODE": ["IBAN {v}", "transfer it to {v}", "my IBAN is {v}"],
        "CREDIT_CARD": ["card {v} was charged twice", "my card number is {v}", "use the card ending... no, the full "
                        "number is {v}"],
        "CRYPTO_WALLET": ["send the refund to my wallet {v}", "my wallet address: {v}"],
        "GPS_COORDINATES": ["my coordinates are {v}", "the car is parked at GPS {v}", "pin location: {v}"],
        "AGE": ["my daughter is {v} years old", "I'm {v} and just started running", "patient, aged {v}, reports",
                "a {v}-year-old woman with"],
        "USERNAME": ["my username is {v}", "login: {v}", "user name: {v}"],
        "PASSWORD": ["password: {v}", "my password is {v}", "the wifi password is {v}"],
        "PERSON": ["I spoke with {v} at the front desk", "{v} from billing said it was fixed", "ask {v} to call me"],
    }

    def message(self) -> str:
        r, f = self.r, self.f
        types = list(self.FRAMES)
        picks = r.sample(types, r.randrange(1, 4))
        clauses = [r.choice(self.FRAMES[t]).format(v=self.value(t)) for t in picks]
        style = r.randrange(5)
        body = "; ".join(clauses)
        if style == 0:
            return (f"Hi {self.m('PERSON', f.first_name())},\n\n{body[0].upper() + body[1:]}. "
                    f"{f.sentence(nb_words=8)}\n\nThanks,\n{self.m('PERSON', f.name())}")
        if style == 1:
            return f"Ticket #{r.randrange(10000, 99999)}: {f.sentence(nb_words=5)} Customer says {body}."
        if style == 2:
            return f"{body} lol, {f.sentence(nb_words=6).lower()}"
        if style == 3:
            return f"Note: {f.sentence(nb_words=6)} {body[0].upper() + body[1:]}. Follow up in {r.randrange(2, 9)} days."
        return f"{f.sentence(nb_words=7)} {body[0].upper() + body[1:]}."


def messages() -> None:
    g = MessageGen(seed=121203)
    blocks = [g.message() for _ in range(200)]
    MSG_OUT.write_text("# Generated by tests/bench/pii_gen.py (seeded): held-out messages, every type. Markup "
                       "{{TYPE|value}}; messages separated by lines \"---\".\n" + "\n---\n".join(blocks) + "\n")
    print(f"wrote {len(blocks)} messages to {MSG_OUT}")


if __name__ == "__main__":
    main()
    messages()
