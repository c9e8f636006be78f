"""Validators used next to the PII model (pure functions)."""
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router_extproc.signals.pii import combine, decode_tags, iban_ok, luhn_ok, regex_entities, snap


def test_luhn_and_iban_checksums():
    assert luhn_ok("4111111111111111")
    assert not luhn_ok("4111111111111112")
    assert iban_ok("GB82 WEST 1234 5698 7654 32")
    assert not iban_ok("GB82 WEST 1234 5698 7654 33")


def test_a_labelled_iban_of_its_countrys_length_is_read_even_when_its_check_digits_fail():
    # pii18: a typo'd or made-up IBAN the user names as theirs is still their account number
    text = "My IBAN is DE27 5001 0517 5407 3249 31, account holder below."
    got = {(t, text[s:e]) for s, e, t, _ in regex_entities(text)}
    assert ("IBAN_CODE", "DE27 5001 0517 5407 3249 31") in got
    # without the label, or at another country's length, a failing checksum is no IBAN
    for other in ["Order DE27 5001 0517 5407 3249 31 shipped.", "My IBAN is DE27 5001 0517 5407 3249 3 ok"]:
        assert not any(t == "IBAN_CODE" for _, _, t, _ in regex_entities(other)), other


def test_database_roles_and_credential_columns_are_no_logins():
    # pii18: "-U app_rw" names a role, "login, pw_plain" a column list; "-U kpatel_qa" is still a person's login
    for text in ["psql -h db01 -U app_rw -d orders", "SELECT login, pw_plain, created FROM old_accounts;",
                 "psql -h db01 -U etl-svc -d warehouse"]:
        assert not any(t == "USERNAME" for _, _, t, _ in regex_entities(text)), text
    text = "psql -h db01 -U kpatel_qa -d orders"
    assert ("USERNAME", "kpatel_qa") in {(t, text[s:e]) for s, e, t, _ in regex_entities(text)}


def test_a_german_letter_closes_with_gruessen_and_the_name_below():
    # pii18: "Mit freundlichen Grüßen" (and "Liebe Grüsse") before the sender's name; the greeting's words are no name
    for text, name in [("Danke.\nMit freundlichen Grüßen\nRüdiger Ostheim", "Rüdiger Ostheim"),
                       ("Liebe Grüße\nAnna", "Anna"), ("Liebe Grüsse\nAnna", "Anna")]:
        got = {text[s:e] for s, e, t, _ in combine(text, []) if t == "PERSON"}
        assert got == {name}, text


def test_regexes_find_structured_entities_with_offsets():
    text = "mail a.b@example.org, card 4111 1111 1111 1111, ip 10.0.0.254, ssn 123-45-6789, call (212) 555-0199"
    got = {(t, text[s:e]) for s, e, t, _ in regex_entities(text)}
    assert ("EMAIL_ADDRESS", "a.b@example.org") in got
    assert ("CREDIT_CARD", "4111 1111 1111 1111") in got
    assert ("IP_ADDRESS", "10.0.0.254") in got
    assert ("US_SSN", "123-45-6789") in got
    assert ("PHONE_NUMBER", "(212) 555-0199") in got


def test_exam_style_numbers_are_not_pii():
    for q in ["What is 1234 + 5678?", "The value of pi is 3.14159", "In 1492 Columbus sailed the ocean blue.",
              "Compute 2.5 * 10^3 m/s over 12 seconds"]:
        assert regex_entities(q) == []


def test_model_spans_of_checksum_types_need_a_validated_match():
    text = "card 1234 5678 9012 3456 please"
    assert combine(text, [(5, 24, "CREDIT_CARD", 0.9)]) == []


def test_snap_extends_to_word_and_strips_punctuation():
    text = "Hello Johnathan, bye"
    assert snap(text, 6, 10) == (6, 15)


# ---------------------------------------------------------------- phone numbers
def _phones(text):
    return [text[s:e] for s, e, t, _ in regex_entities(text) if t == "PHONE_NUMBER"]


def test_phone_regex_takes_international_prefixes_whole():
    assert _phones("call +34 976654393 today") == ["+34 976654393"]
    assert _phones("call 001-428-583-3841 today") == ["001-428-583-3841"]
    assert _phones("office +1-502-762-0191x229") == ["+1-502-762-0191x229"]
    assert _phones("Tel. +49(0)3944 117715") == ["+49(0)3944 117715"]
    assert _phones("Tel. +33 (0)3 62 94 41 17") == ["+33 (0)3 62 94 41 17"]


def test_phone_regex_leaves_ordinary_numbers_alone():
    for q in ["In 2019 the population was 1,234,567 and grew by +3.5%.", "x = 5 + 3 - 2 and y = 10^3",
              "It costs $1,299.99 or 1299 EUR.", "The years 1914-1918 and 1939-1945.", "ISBN 978-3-16-148410-0",
              "Order 20240115 shipped on 2024-01-15.", "Set 0012 to 3400 then add +12 to 100."]:
        assert _phones(q) == [], q


def test_model_phone_span_takes_a_directly_preceding_plus():
    text = "ring +1 (555) 0100 tonight"  # a format the regex does not know
    s = text.index("1 (555)")
    assert combine(text, [(s, s + len("1 (555) 0100"), "PHONE_NUMBER", 0.9)]) == [
        (5, 5 + len("+1 (555) 0100"), "PHONE_NUMBER", 0.9)]


def test_a_date_is_not_a_phone_number():
    text = "Patient seen 1995-06-26, see notes"
    s = text.index("1995")
    assert combine(text, [(s, s + 10, "PHONE_NUMBER", 0.9)]) == []
    assert combine(text, [(s, s + 10, "STREET_ADDRESS", 0.9)]) == []


# ---------------------------------------------------------------- addresses
def test_an_address_without_letters_is_a_phone_number_or_nothing():
    text = "call 6315166551 or visit room 4"
    s = text.index("6315")
    assert combine(text, [(s, s + 10, "STREET_ADDRESS", 0.8)]) == [(s, s + 10, "PHONE_NUMBER", 0.8)]
    r = text.index("4")
    assert not any(t == "STREET_ADDRESS" for _, _, t, _ in combine(text, [(r, r + 1, "STREET_ADDRESS", 0.8)]))


def test_an_address_needs_a_number_or_a_capitalised_name():
    text = "wait at the traffic light"
    s = text.index("traffic")
    assert combine(text, [(s, s + 7, "STREET_ADDRESS", 0.8)]) == []


def test_parts_of_one_postal_address_are_one_entity():
    text = "Ship to: 12 Main St\n Apt. 4,\n Springfield, IL 62704\nThanks"
    parts = ["12 Main St", "Apt. 4", "Springfield", "IL 62704"]
    ents = [(text.index(p), text.index(p) + len(p), "STREET_ADDRESS", 0.9) for p in parts]
    got = combine(text, ents)
    whole = "12 Main St\n Apt. 4,\n Springfield, IL 62704"
    assert [(text[s:e], t) for s, e, t, _ in got] == [(whole, "STREET_ADDRESS")]


def test_addresses_separated_by_words_stay_apart():
    text = "from 12 Main St and 4 Oak Road"
    ents = [(text.index(p), text.index(p) + len(p), "STREET_ADDRESS", 0.9) for p in ("12 Main St", "4 Oak Road")]
    assert len(combine(text, ents)) == 2


# ---------------------------------------------------------------- names
def _names(text, parts):
    ents = [(text.index(p), text.index(p) + len(p), "PERSON", 0.9) for p in parts]
    return [text[s:e] for s, e, t, _ in combine(text, ents) if t == "PERSON"]


def test_a_title_belongs_to_the_name():
    assert _names("I'm Dott. Griselda Pace from Rome", ["Dott", "Griselda Pace"]) == ["Dott. Griselda Pace"]
    assert _names("ask Dr. Jane Roe", ["Jane Roe"]) == ["Dr. Jane Roe"]
    assert _names("ask Dr Jane Roe", ["Dr", "Jane"]) == ["Dr Jane Roe"]  # the titled-name rule takes the surname
    assert _names("Sig. is short for signore", ["Sig"]) == []  # a title alone is no name


def test_name_parts_are_joined_only_across_one_space_or_a_title_dot():
    assert _names("the booking under Maria Grimes.", ["Maria", "Grimes"]) == ["Maria Grimes"]
    assert _names("signed by Smith. John said no", ["Smith", "John"]) == ["Smith", "John"]
    assert _names("Smith and Jones", ["Smith", "Jones"]) == ["Smith", "Jones"]


def test_words_inside_a_url_are_not_names():
    text = "My website is https://www.lovato-cicala.com/ and I am Anna"
    assert _names(text, ["cicala", "Anna"]) == ["Anna"]


# ---------------------------------------------------------------- decoding token tags
TAGS = ("O", "B-PERSON", "I-PERSON", "B-STREET_ADDRESS", "I-STREET_ADDRESS")


def _decode(text, words, labels):
    """One token per word; labels: tag names (probability 0.9 on that tag)."""
    offs, pos = [], 0
    for w in words:
        s = text.index(w, pos)
        offs.append((s, s + len(w)))
        pos = s + len(w)
    probs = np.full((len(words), len(TAGS)), 0.1 / (len(TAGS) - 1))
    for i, lab in enumerate(labels):
        probs[i, TAGS.index(lab)] = 0.9
    return [(text[s:e], t) for s, e, t, _ in combine(text, decode_tags(probs, offs, TAGS, 0.5))]


def test_an_entity_takes_the_type_of_most_of_its_tokens():
    # (pii14: with a house number, since an address without one is a street's name)
    text = "He lives on Calle de Paulina Frutos 12 now"
    words = ["He", "lives", "on", "Calle", "de", "Paulina", "Frutos", "12", "now"]
    labels = ["O", "O", "O", "B-STREET_ADDRESS", "I-STREET_ADDRESS", "I-STREET_ADDRESS", "I-PERSON", "I-STREET_ADDRESS",
              "O"]
    assert _decode(text, words, labels) == [("Calle de Paulina Frutos 12", "STREET_ADDRESS")]


def test_a_line_break_separates_a_name_line_from_an_address_line():
    text = "Jane Roe\n12 Main St"
    words = ["Jane", "Roe", "12", "Main", "St"]
    labels = ["B-PERSON", "I-PERSON", "I-STREET_ADDRESS", "I-STREET_ADDRESS", "I-STREET_ADDRESS"]
    assert _decode(text, words, labels) == [("Jane Roe", "PERSON"), ("12 Main St", "STREET_ADDRESS")]


def test_a_b_tag_starts_a_new_entity():
    text = "Jane Roe 12 Main St"
    words = ["Jane", "Roe", "12", "Main", "St"]
    labels = ["B-PERSON", "I-PERSON", "B-STREET_ADDRESS", "I-STREET_ADDRESS", "I-STREET_ADDRESS"]
    assert _decode(text, words, labels) == [("Jane Roe", "PERSON"), ("12 Main St", "STREET_ADDRESS")]


# ---------------------------------------------------------------- the gold convention the model is trained on
def test_training_labels_take_the_whole_postal_address_and_titles():
    import pytest

    synthetic = pytest.importorskip("models.synthetic")
    text = "Dr. Jane Roe\n12 Main St\n Apt. 4\n Springfield\n> USA 62704 -- moved from Boston, Canada"
    parts = [[0, 3, "prefix"], [4, 12, "name"]]
    for ph, value in (("building_number", "12"), ("street_name", "Main St"), ("secondary_address", "Apt. 4"),
                      ("city", "Springfield"), ("country", "USA"), ("postcode", "62704"), ("city", "Boston"),
                      ("country", "Canada")):
        s = text.index(value, parts[-1][1])
        parts.append([s, s + len(value), ph])
    got = [(text[s:e], t) for s, e, t in synthetic.gold_spans(text, parts)]
    assert got == [("Dr. Jane Roe", "PERSON"), ("12 Main St\n Apt. 4\n Springfield\n> USA 62704", "STREET_ADDRESS")]


# ---------------------------------------------------------------- linear time (issue 26)
ADVERSARIAL = {
    "email local part without a domain": "@ " + "a%" * 200_000,
    "digit runs": "1 " * 200_000,
    "dashed digits": "1-" * 200_000,
    "dotted digits": "1." * 200_000,
    "colons": "a:" * 200_000,
    "hex groups": "ab:" * 130_000,
    "credential keywords": "password: " * 40_000,
    "JWT-like": "eyJ" + "a" * 400_000,
    "private key header without an end": "-----BEGIN RSA PRIVATE KEY-----" + "A" * 400_000,
    "URL of colons": "http://" + "a:" * 200_000,
    "non-ASCII": "é1 " * 130_000,
    "greetings": "Hi Ab" * 80_000,
}


@pytest.mark.parametrize("name", ADVERSARIAL)
def test_rules_take_linear_time_on_adversarial_text(name):
    # Python's re took 398 ms on 32 KB of "a%" after an "@" (quadratic); the bound here is generous (about 2.5 s
    # per MB on a loaded 2-core machine) and still fails a quadratic pattern by orders of magnitude
    text = ADVERSARIAL[name]
    t0 = time.perf_counter()
    combine(text, [])
    assert time.perf_counter() - t0 < 2.5 * len(text.encode()) / 1e6 + 0.2


# ---------------------------------------------------------------- the wider taxonomy
def _found(text):
    return {(t, text[s:e]) for s, e, t, _ in combine(text, [])}


@pytest.mark.parametrize("text, typ, value", [
    ("my SSN is 117 44 7426", "US_SSN", "117 44 7426"),
    ("SSN: 078051120", "US_SSN", "078051120"),
    ("mac 00:1A:2B:3C:4D:5E on eth0", "MAC_ADDRESS", "00:1A:2B:3C:4D:5E"),
    ("born on 12/03/1985 in Ohio", "DATE_OF_BIRTH", "12/03/1985"),
    ("DOB: March 3, 1985", "DATE_OF_BIRTH", "March 3, 1985"),
    ("Avery, as you cross 84 years old", "AGE", "84"),
    ("a 45-year-old man", "AGE", "45"),
    ("user: jdoe42 / password: Hunter2!", "USERNAME", "jdoe42"),
    ("user: jdoe42 / password: Hunter2!", "PASSWORD", "Hunter2!"),
    ("login jsmith pw s3cret99", "PASSWORD", "s3cret99"),
    ("passport number is 533380006", "PASSPORT", "533380006"),
    ("driver's license no. D1234-56789", "DRIVER_LICENSE", "D1234-56789"),
    ("national insurance number QQ 12 34 56 C", "NATIONAL_ID", "QQ 12 34 56 C"),
    ("account number 12345678901 at Chase", "BANK_ACCOUNT", "12345678901"),
    ("send to bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "CRYPTO_WALLET",
     "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"),
    ("old wallet 1BoatSLRHtKNngkdXEeobR76b53LETtpyT", "CRYPTO_WALLET", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"),
    ("my eth wallet 0x52908400098527886E0F7030069857D2E4169EE7", "CRYPTO_WALLET",
     "0x52908400098527886E0F7030069857D2E4169EE7"),
    ("GPS coordinates 48.8584, 2.2945", "GPS_COORDINATES", "48.8584, 2.2945"),
    ("see https://www.linkedin.com/in/jane-doe-123.", "URL", "https://www.linkedin.com/in/jane-doe-123"),
    ("Olen, leverage the new plan", "PERSON", "Olen"),
    ("Best regards,\nJohn Carter\n", "PERSON", "John Carter"),
    ("Dear Mr. Smith, thanks", "PERSON", "Mr. Smith"),
])
def test_rules_find_the_wider_taxonomy(text, typ, value):
    assert (typ, value) in _found(text)


@pytest.mark.parametrize("value", [
    "sk-proj-Abc123def456GHI789jkl012MNO345pqr678",
    "sk-ant-api03-" + "A1b2C3d4E5" * 9,
    "AKIAIOSFODNN7EXAMPLE",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    "glpat-xxYYzz0011223344556677",
    "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567",
    "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
    "-----END OPENSSH PRIVATE KEY-----",
])
def test_provider_keys_private_keys_and_jwts_are_secrets(value):
    text = f"here it is: {value} thanks"
    assert ("SECRET", value) in _found(text)


def test_credentials_in_connection_strings_are_secrets_but_placeholders_are_not():
    # the password is the secret; the user name stays readable, and a raw "@" in the password is still the password
    assert _found("postgres://admin:S3cr3tP4ss@db.example.com:5432/app") == {("SECRET", "S3cr3tP4ss")}
    assert ("SECRET", "p@ss#W0rd!") in _found("mongodb://app:p@ss#W0rd!@mongo-0.internal:27017/db")
    assert ("PASSWORD", "Xy7!pass") in _found("jdbc:mysql://db/shop?user=bob&password=Xy7!pass&ssl=true")
    assert ("PASSWORD", "Qx9!rT2z") in _found("Server=sql01;Database=crm;User Id=svc;Password=Qx9!rT2z;")
    assert not _found("postgres://user:${DB_PASSWORD}@localhost/app and password: <your-password>")


@pytest.mark.parametrize("text, typ, value", [
    ("DB_PASSWORD=hunter2xyz!", "PASSWORD", "hunter2xyz!"),
    ("spring.datasource.password=Zq8#vLp2", "PASSWORD", "Zq8#vLp2"),
    ("SLACK_BOT_TOKEN=Zk39xLq0PwVb72NmQa1", "SECRET", "Zk39xLq0PwVb72NmQa1"),
    ("DJANGO_SECRET_KEY='k9#vT2$mWx4Kp9Lr7Ns3Bd6Fh1Jc5Gy0A!qWeR'", "SECRET", "k9#vT2$mWx4Kp9Lr7Ns3Bd6Fh1Jc5Gy0A!qWeR"),
    ('const cfg = { apiKey: "Qm8Zp2Kx7Tv4Rs9Nc3BdLwAq" }', "SECRET", "Qm8Zp2Kx7Tv4Rs9Nc3BdLwAq"),
    ("DD_API_KEY=6f1c2a9b8e7d4c3b2a1f0e9d8c7b6a5f", "SECRET", "6f1c2a9b8e7d4c3b2a1f0e9d8c7b6a5f"),
    ("MAILGUN=key-3a6f9d2b4c8e1f7a0b5d3c9e2f4a6b8d", "SECRET", "key-3a6f9d2b4c8e1f7a0b5d3c9e2f4a6b8d"),
    ("curl -u admin:Tr0ub4dor&3 https://jenkins.internal/api/json", "PASSWORD", "Tr0ub4dor&3"),
    ('requests.get(url, auth=("svc-report", "Rp0rt!ng-2026"))', "PASSWORD", "Rp0rt!ng-2026"),
    ("redis-cli -h cache.internal -a R3d!sC4che ping", "PASSWORD", "R3d!sC4che"),
    ('wifi:\n  psk: "c0ffee&Cr0issant"', "PASSWORD", "c0ffee&Cr0issant"),
])
def test_secrets_assigned_to_credential_names_in_env_files_and_code(text, typ, value):
    assert (typ, value) in _found(text)


@pytest.mark.parametrize("text", [
    "DB_PASSWORD=\nDB_USER=erikabell",  # an empty value does not take the next line's
    'session=7f3e2d1c; csrftoken=Xk2mZ9pQ4vLr8TwN3bY6cF1hJ5sD7gA0',
    '{"next_page_token": "CiAKGjBpNDd2Nmp2Zml2cXRiMjVhZ2xkMWU4MGs", "items": []}',
    'tokenizer = AutoTokenizer.from_pretrained("bert-base-uncased"); max_tokens: 4096',
    'token = request.headers.get("Authorization", "").removeprefix("Bearer ")',
    "SECRET_KEY = os.environ['SECRET_KEY']\napi_key = settings.OPENAI_API_KEY",
    "NODE_AUTH_TOKEN: ${{ secrets.NPM_TOKEN }}",
    'password_hash = "$2b$12$KIXQJfZ1qCzW3oPpY0vZ1eGq6QmR0b1n0cH8oGzJzF6Yp1vQe3a7y"',
    '"integrity": "sha512-Q1mZ8vX0pLk2Jr5Nc7Bd1Ye4Ga6Ui9Oo3QtWxEfHsQ1mZ8vX0pLk2Jr5Nc7Bd1Ye4Ga6Ui9Oo3QtWxEfHs=="',
])
def test_names_that_are_not_credentials_and_values_that_are_not_secrets(text):
    assert not {f for f in _found(text) if f[0] in ("SECRET", "PASSWORD")}, _found(text)


@pytest.mark.parametrize("text", [
    "commit 3f2a9c1d4e5b6a7f8091a2b3c4d5e6f708192a3b merged",
    "request id 123e4567-e89b-12d3-a456-426614174000 failed",
    "sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "password = os.environ['DB_PASSWORD']",
    "Set the password: it must be 12 characters long.",
    "the password is incorrect, try again",
    "Turn 90 degrees and walk 5 minutes; I am 5 minutes late.",
    "Is a 10-year-old car worth repairing? The building is 120 years old.",
    "Listen on 0.0.0.0:8080, proxy to 127.0.0.1:9000; the subnet is 10.0.0.0/8.",
    "Set DATABASE_URL=postgresql://user:password@localhost:5432/mydb and run `pip install redis`.",
    "Hello World! However, nothing here is personal.",
    "User: How do I sort a list in Python?",
])
def test_ordinary_code_logs_and_prose_are_not_pii(text):
    assert not _found(text), _found(text)


def test_ssn_validity_rules_apply_in_every_layout():
    for bad in ("000-12-3456", "666 12 3456", "900.12.3456", "123-00-4567", "123 45 0000"):
        assert not any(t == "US_SSN" for t, _ in _found(f"ssn {bad}")), bad


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=()), max_size=300)
       | st.lists(st.sampled_from(["@", "a%", "1", "-", " ", ".", ":", "é", "\ud800", "sk-", "user:", "pw ",
                                  "Hi ", "Ann", ",", "\n", "0x", "bc1q", "eyJ", "://", "=", "😀"]),
                  max_size=80).map("".join))
def test_rules_never_fail_and_spans_lie_inside_the_text(text):
    for s, e, typ, score in combine(text, []):
        assert 0 <= s < e <= len(text) and typ and 0 < score <= 1


def test_a_lone_surrogate_is_read_as_one_unknown_character():
    # a surrogate in a value once reached RE2 unencoded (the placeholder check) and raised
    text = "Hi \ud800 Ann, my password: \ud800abc, mail a@b.com sk-\ud800"
    found = [(typ, text[s:e]) for s, e, typ, _ in combine(text, [])]
    assert ("EMAIL_ADDRESS", "a@b.com") in found and ("PASSWORD", "\ud800abc") in found


def test_command_line_passwords_and_basic_auth_are_credentials_but_port_flags_are_not():
    assert ("PASSWORD", "Dpl0y!Bot#2026") in _found("docker login -u deploybot -p Dpl0y!Bot#2026 registry.io")
    assert ("PASSWORD", "S3cret!") in _found("mysql -uroot -pS3cret! shop")
    assert ("SECRET", "YWxhZGRpbjpvcGVuc2VzYW1l") in _found("Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l")
    assert ("SECRET", "Tq8vN3zLx0pW") in _found("redis://:Tq8vN3zLx0pW@redis-master:6379/2")
    assert not _found("docker run -p 8080:80 nginx && psql --password=$PGPASS")


# ---------------------------------------------------------------- pasted documentation
def _model(text, typ, *parts):
    ents = [(text.index(p), text.index(p) + len(p), typ, 0.95) for p in parts]
    return [text[s:e] for s, e, t, _ in combine(text, ents) if t == typ]


def test_products_files_and_stand_in_names_are_not_people():
    text = "Install from PyPI or GitHub, read README.md, then ask McDonald; ETag is set; John Doe signs up"
    assert _model(text, "PERSON", "PyPI", "GitHub", "README.md", "McDonald", "ETag", "John Doe") == ["McDonald"]


def test_in_documentation_a_capitalised_word_alone_is_not_a_person_but_a_greeting_still_is():
    doc = "## Install\n\n`pip install redis`\n\nRedis, the server, must run first. Written by Ada Lovelace."
    assert _model(doc, "PERSON", "Redis", "Ada Lovelace") == ["Ada Lovelace"]
    msg = "Redis, the server, must run first. Thanks Marisol"
    assert _model(msg, "PERSON", "Redis", "Marisol") == ["Redis", "Marisol"]  # a message: the model decides
    assert ("PERSON", "Marisol") in _found("## Notes\n`x`\n`y`\nHi Marisol, the build is green")
    badge = ".. |ruff| image:: https://x.org/badge.svg\n   :alt: Ruff\n"
    assert _model(badge, "PERSON", "Ruff") == []


def test_versions_peps_and_code_words_are_not_addresses():
    text = "PEP 695 landed in GraalPy 3.13; bfloat16 works. Office: 14 Larkspur Lane, Bristol BS7 9QT"
    got = _model(text, "STREET_ADDRESS", "PEP 695", "GraalPy 3.13", "bfloat16", "14 Larkspur Lane, Bristol BS7 9QT")
    assert got == ["14 Larkspur Lane, Bristol BS7 9QT"]


def test_ids_sizes_hashes_and_timings_are_not_phone_numbers():
    text = "see arXiv 2401.08281, images 8192 x 8192, id 9999999, commit 790c5c02991100aa; call (415) 555-0142"
    got = _model(text, "PHONE_NUMBER", "2401.08281", "8192 x 8192", "9999999", "790c5c02991100aa", "(415) 555-0142")
    assert got == ["(415) 555-0142"]


def test_addresses_that_documentation_writes_are_not_pii():
    text = ("git clone git@github.com:org/repo.git; set EMAIL=foo@example.org or you@example.com; "
            "ask matplotlib-users@python.org; mail jane@example.org")
    assert _found(text) == {("EMAIL_ADDRESS", "jane@example.org")}  # a named person at example.org stays PII


@pytest.mark.parametrize("text,typ,value", [
    ("Please debit account 709051877203 for the rent", "BANK_ACCOUNT", "709051877203"),
    ("acct no 744099590294, thanks", "BANK_ACCOUNT", "744099590294"),
    ("My Aadhaar number is 7462 9042 9248, the bank needs it", "NATIONAL_ID", "7462 9042 9248"),
])
def test_a_luhn_valid_number_after_an_account_or_id_keyword_takes_the_keywords_type(text, typ, value):
    got = _found(text)
    assert (typ, value) in got and not any(t == "CREDIT_CARD" for t, _ in got)


@pytest.mark.parametrize("value", ["(05262) 36365", "+44 20 7946 0958", "030 12345678", "0171 2345678",
                                   "0161 496 0734", "040/3456789", "06221 54 3210"])
def test_national_phone_layouts_with_a_trunk_zero(value):
    assert ("PHONE_NUMBER", value) in _found(f"ruf mich an unter {value}, danke")


@pytest.mark.parametrize("text", ["Order 0306406152 shipped", "ISBN 0306406152", "build 2024-03-88812 failed"])
def test_a_bare_run_of_digits_is_not_a_national_phone_number(text):
    assert not any(t == "PHONE_NUMBER" for t, _ in _found(text))


@pytest.mark.parametrize("text,value", [("my portfolio is at annaforbes.com, tell me", "annaforbes.com"),
                                        ("I blog at www.tomhollis.me about bread", "www.tomhollis.me"),
                                        ("find me at linkedin.com/in/sofia-m", "linkedin.com/in/sofia-m")])
def test_a_personal_site_without_a_scheme_is_a_url(text, value):
    assert ("URL", value) in _found(text)


@pytest.mark.parametrize("text", ["I read it on nytimes.com yesterday", "download it from python.org",
                                  "mail ruth.co@gmail.com", "see github.com/pandas-dev/pandas"])
def test_company_domains_in_prose_and_email_domains_are_not_personal_urls(text):
    assert not any(t == "URL" for t, _ in _found(text))


# ---------------------------------------------------------------- third round (issue #21): local layouts, references
@pytest.mark.parametrize("text,typ,value", [
    ("Jonas, bitte überweise an Konto 9125905489 bei der Sparkasse", "BANK_ACCOUNT", "9125905489"),
    ("Bankverbindung: Kontonummer 6239948174, BLZ 37040044", "BANK_ACCOUNT", "6239948174"),
    ("Numéro de compte 00012345678, code banque 30004", "BANK_ACCOUNT", "00012345678"),
    ("Número de cuenta 0200051332 en el banco", "BANK_ACCOUNT", "0200051332"),
    ("rekeningnummer 417164300 graag", "BANK_ACCOUNT", "417164300"),
])
def test_bank_accounts_after_german_french_spanish_and_dutch_keywords(text, typ, value):
    assert (typ, value) in _found(text)


@pytest.mark.parametrize("text,value", [
    ("his Aadhaar card number 2345 6789 0123 was shared", "2345 6789 0123"),
    ("Aadhaar: 6936 9122 8810 / PAN ABCPK4821M", "ABCPK4821M"),
    ("Aadhaar 6936 9122 8810 PAN ABCPK4821M", "6936 9122 8810"),
    ("mi DNI es 54951821Z, gracias", "54951821Z"),           # mod-23 letter: no keyword needed
    ("renovar el X7689229F cuanto antes", "X7689229F"),       # NIE
    ("mon numéro 1 57 11 89 839 153 65 est sur la carte", "1 57 11 89 839 153 65"),  # NIR with its mod-97 key
    ("Steuer-ID 58509126737 vom Finanzamt", "58509126737"),
    ("Sozialversicherungsnummer 12 150380 M 003", "12 150380 M 003"),
    ("SIN 046 454 286, my employer asked", "046 454 286"),
    ("BSN 111222333 staat op de brief", "111222333"),
])
def test_national_id_layouts(text, value):
    assert ("NATIONAL_ID", value) in _found(text)


@pytest.mark.parametrize("text", ["order 12345678A shipped", "ticket X7689229G closed", "build 150081019828954 ok"])
def test_id_layouts_without_their_check_character_are_not_ids(text):
    assert not any(t == "NATIONAL_ID" for t, _ in _found(text))


@pytest.mark.parametrize("text,typ,value", [
    ("Reisepass Nr. C01X00T47, gültig bis 2031", "PASSPORT", "C01X00T47"),
    ("Nº de pasaporte PAA123456, por favor", "PASSPORT", "PAA123456"),
    ("Permis de conduire n° 13AB47215 perdu", "DRIVER_LICENSE", "13AB47215"),
    ("Führerscheinnummer B072RRE2I55 bitte", "DRIVER_LICENSE", "B072RRE2I55"),
])
def test_passports_and_licences_after_keywords_in_other_languages(text, typ, value):
    assert (typ, value) in _found(text)


@pytest.mark.parametrize("text", [
    "transfer to acct 36586892367679 please, ref invoice 2024-118",
    "the ticket number is 2024-03-88812",
    "Can you explain why build 3524337211781551 failed?",
    "Kundennummer 0171 2345678, Rechnung folgt",
    "Order #412 555-0142 is late",
    "Bestellnummer: 030 98765432",
    "Factura nº 0034 91 534 2780",
])
def test_invoice_ticket_order_and_build_numbers_are_not_phones_or_cards(text):
    got = _found(text)
    assert not any(t in ("PHONE_NUMBER", "CREDIT_CARD") for t, _ in got)
    ref = text.index("2024-118") if "2024-118" in text else None
    if ref is not None:  # a model span on the reference is dropped too
        assert _model(text, "PHONE_NUMBER", "2024-118") == []


@pytest.mark.parametrize("text,value", [("phone #: (415) 555-0142", "(415) 555-0142"),
                                        ("Tel.-Nr. 030 12345678", "030 12345678"),
                                        ("call 0161 496 0734 about the order", "0161 496 0734")])
def test_phone_keywords_are_not_references(text, value):
    assert ("PHONE_NUMBER", value) in _found(text)


def test_cards_are_written_in_groups_of_four_or_the_amex_layout():
    assert ("CREDIT_CARD", "3524 3372 1178 1551") in _found("JCB card 3524 3372 1178 1551")
    assert ("CREDIT_CARD", "3775 478401 52545") in _found("AMEX 3775 478401 52545 declined")
    assert not any(t == "CREDIT_CARD" for t, _ in _found("code 1 57 11 89 839 153 65"))


@pytest.mark.parametrize("text,value", [("we're meeting at 52.5200, 13.4050, bring the keys", "52.5200, 13.4050"),
                                        ("the Airbnb is at 38.7223, -9.1393 coordinates-wise", "38.7223, -9.1393")])
def test_a_latitude_longitude_pair_after_at_is_a_place(text, value):
    assert ("GPS_COORDINATES", value) in _found(text)


@pytest.mark.parametrize("text", ["the price is at 12.50, 13.25 now", "at 123.4567, 0.1234", "version 1.2, 3.4"])
def test_prices_and_out_of_range_pairs_are_not_places(text):
    assert not any(t == "GPS_COORDINATES" for t, _ in _found(text))


def test_a_date_of_birth_on_file():
    assert ("DATE_OF_BIRTH", "1956-11-03") in _found("his date of birth on file (1956-11-03) is wrong")


# ---------------------------------------------------------------- what the head reads as a person and is not
@pytest.mark.parametrize("text,span", [
    ("Please debit account 709051877203 for the March rent, thanks.", "March rent"),
    ("My Aadhaar number is 7462 9042 9248", "Aadhaar"),
    ("Tel: +49 (0)89 1234 5678", "Tel"),
    ("Bankverbindung: Kontonummer 6239948174", "Bankverbindung"),
    ("Ruf mich an unter (05262) 48813", "Ruf mich"),
    ("Sie erreichen mich unter 030 98765432", "Sie erreichen"),
    ("Dr. Klaus Endres, Praxis für Orthopädie", "Praxis für Orthopädie"),
    ("ab 18 Uhr bin ich zu Hause.", "Hause"),
    ("Re: appointment on Monday", "Re"),
    ("Note: Mother full in least.", "Mother full"),
])
def test_labels_id_names_phrases_and_nouns_are_not_people(text, span):
    assert not any(span in p or p in span for p in _model(text, "PERSON", span))


@pytest.mark.parametrize("text,span,name", [
    ("Note to self: ping Yusuf at the office", "ping Yusuf", "Yusuf"),
    ("Jake Lester from billing said it was fixed", "Jake Lester from", "Jake Lester"),
    ("Ludwig van Beethoven wrote nine symphonies", "Ludwig van Beethoven", "Ludwig van Beethoven"),
    ("ask Ana de la Cruz", "Ana de la Cruz", "Ana de la Cruz"),
    ("[09:14] Priyanka: my number is below", "Priyanka", "Priyanka"),
])
def test_lower_case_words_at_the_edges_of_a_name_are_trimmed_and_particles_stay(text, span, name):
    assert _model(text, "PERSON", span) == [name]


@pytest.mark.parametrize("text,name", [
    ("Mastercard 2221 4369 9192 2001, name on card T. Okafor.", "T. Okafor"),
    ("Bitte zahlen Sie bis Montag. Mit freundlichen Grüßen, Jürgen Hauck", "Jürgen Hauck"),
    ("Hallo Frau Brandt, meine neue Adresse", "Frau Brandt"),
    ("Estimado Sr. Ibáñez, su cita es mañana", "Sr. Ibáñez"),
    ("Hola Lucía, te paso el documento", "Lucía"),
    ("Cher Monsieur Girard, votre dossier est complet", "Monsieur Girard"),
    ("IBAN DE89 3704 0044 0532 0130 00 — Kontoinhaber Martina Vogel", "Martina Vogel"),
    ("the tenant is Aiden O'Connell from flat 3", None),  # no frame: the head's job
])
def test_names_framed_by_greetings_sign_offs_titles_and_card_holders_in_other_languages(text, name):
    people = {v for t, v in _found(text) if t == "PERSON"}
    assert (name in people) if name else not people


@pytest.mark.parametrize("text", ["Thanks, Procurement", "Sehr geehrte Damen und Herren, bitte zahlen",
                                  "Kind regards, Accounts"])
def test_departments_and_plural_salutations_are_not_people(text):
    assert not any(t == "PERSON" for t, _ in _found(text))


# ---------------------------------------------------------------- personal sites
@pytest.mark.parametrize("text,value", [
    ("Noor's new blog noorhaddad.blog needs a privacy policy", "noorhaddad.blog"),
    ("I run a small blog at www.gretchenreads.net and want a newsletter", "www.gretchenreads.net"),
    ("my etsy store etsy.com/shop/BirchAndBrass got suspended", "etsy.com/shop/BirchAndBrass"),
    ("Loved your talk. My Mastodon is mastodon.social/@quietfern.", "mastodon.social/@quietfern"),
    ("pick a slot: calendly.com/sven-nyberg/30min", "calendly.com/sven-nyberg/30min"),
    ("slides are on jdoe.github.io now", "jdoe.github.io"),
    ("Hi, I'm Caleb, photos at calebwinterphoto.com", "calebwinterphoto.com"),
])
def test_personal_sites_shops_booking_pages_and_hosted_pages_are_urls(text, value):
    assert ("URL", value) in _found(text)


def test_a_domain_that_carries_the_name_of_a_person_in_the_message_is_their_site():
    text = "Marco Bellini — marcobellini.it — marco@marcobellini.it"
    assert not any(t == "URL" for t, _ in _found(text))  # no person found: nothing ties the domain to one
    got = [(t, text[s:e]) for s, e, t, _ in combine(text, [(0, 13, "PERSON", 0.9)])]
    assert ("URL", "marcobellini.it") in got and ("EMAIL_ADDRESS", "marco@marcobellini.it") in got


@pytest.mark.parametrize("text", [
    "Docs are at docs.stripe.com/payments and our status page is status.acme.io",
    "Our company site acme-robotics.de has a contact form",
    "Anna read about it on nytimes.com",
    "see github.com/psf/requests/releases for the changelog",
])
def test_company_sites_and_project_pages_stay_unflagged(text):
    assert not any(t == "URL" for t, _ in _found(text))


@pytest.mark.parametrize("text,value", [("Teléfono 91 534 27 80.", "91 534 27 80"),
                                        ("llame al 964 22 81 47 mañana", "964 22 81 47"),
                                        ("Mon numéro : 06 12 45 78 90, rappelez-moi", "06 12 45 78 90"),
                                        ("Telefon 030 61 28 44 09.", "030 61 28 44 09")])
def test_national_layouts_after_a_word_that_says_phone(text, value):
    assert ("PHONE_NUMBER", value) in _found(text)


@pytest.mark.parametrize("text", ["call me on 12.03.2025 at 10", "phone model 15 Pro, version 10.4.22"])
def test_dates_and_versions_after_a_phone_word_are_not_phones(text):
    assert not any(t == "PHONE_NUMBER" for t, _ in _found(text))


# ---------------------------------------------------------------- ages, birth dates and logins as notes write them
def _with_person(text, name):
    s = text.index(name)
    return {(t, text[a:b]) for a, b, t, _ in combine(text, [(s, s + len(name), "PERSON", 0.9)])}


@pytest.mark.parametrize("text,name,typ,value", [
    ("Patient Mr. Kwame Asante, 71, lives alone", "Kwame Asante", "AGE", "71"),
    ("The patient (K. Nakamura, 52) reports numbness", "K. Nakamura", "AGE", "52"),
    ("my mother Ruth Keller (09/22/1941) needs a renewal", "Ruth Keller", "DATE_OF_BIRTH", "09/22/1941"),
])
def test_an_age_or_a_birth_date_set_off_right_after_a_name(text, name, typ, value):
    assert (typ, value) in _with_person(text, name)


@pytest.mark.parametrize("text,name", [("Ask Jake, 2 tickets please", "Jake"),
                                       ("Thanks Anna, 3 of them arrived", "Anna")])
def test_a_count_after_a_name_is_not_an_age(text, name):
    assert not any(t == "AGE" for t, _ in _with_person(text, name))


@pytest.mark.parametrize("text,typ,value", [
    ("My son (15) was prescribed sertraline", "AGE", "15"),
    ("Ich bin 34 Jahre alt und habe Migräne", "AGE", "34"),
    ("Katrin Schuster, geb. 03.05.1985, Personalnummer 004471", "DATE_OF_BIRTH", "03.05.1985"),
    ("née le 12/04/1990 à Lyon", "DATE_OF_BIRTH", "12/04/1990"),
    ("ssh ubuntu2@10.0.0.5 -i key hangs", "USERNAME", "ubuntu2"),
    ("ssh -p 2222 m.kowalski@bastion hangs", "USERNAME", "m.kowalski"),
])
def test_ages_birth_dates_and_remote_logins(text, typ, value):
    assert (typ, value) in _found(text)


@pytest.mark.parametrize("text", ["ssh git@github.com -T", "ssh ubuntu@10.0.0.5", "ssh -i k.pem ec2-user@host"])
def test_default_system_logins_are_nobodys_account(text):
    assert not any(t == "USERNAME" for t, _ in _found(text))


@pytest.mark.parametrize("value", ["4417 Maple Ridge Dr, Apt 12, Boise, ID 83706", "7 Holloway Close, Norwich NR3 4JT",
                                   "Lindenstraße 27, 10969 Berlin", "Bahnhofstr. 8, 80335 München",
                                   "14 rue des Lilas, 69003 Lyon", "Calle de Alcalá 123, 4º B, 28009 Madrid",
                                   "22 MG Road, Bengaluru 560001"])
def test_whole_postal_addresses_in_uk_us_german_french_and_spanish_layouts(value):
    assert ("STREET_ADDRESS", value) in _found(f"please send it to {value}. Thanks")


@pytest.mark.parametrize("text", ["the Impressum lists Hauptstraße 5 as HQ", "Release 2 Park Street, version 3",
                                  "see 10 Downing Street for the photo"])
def test_a_street_without_its_postcode_and_city_is_left_to_the_model(text):
    assert not any(t == "STREET_ADDRESS" for t, _ in _found(text))


@pytest.mark.parametrize("text,span", [("hotels near Victoria Station in London", "Victoria"),
                                       ("The Lincoln Memorial at night", "Lincoln Memorial"),
                                       ("Can Siri and Alexa share lights?", "Siri")])
def test_places_named_after_people_and_voice_assistants_are_not_people(text, span):
    assert _model(text, "PERSON", span) == []


def test_a_given_name_that_is_also_a_place_stays_a_name_on_its_own():
    assert _model("Victoria said hi", "PERSON", "Victoria") == ["Victoria"]


@pytest.mark.parametrize("text,value", [("customer cannot log in. Username hlindqvist, last seen", "hlindqvist"),
                                        ("user name: myerssharon; please reset", "myerssharon")])
def test_login_names_in_tickets(text, value):
    assert ("USERNAME", value) in _found(text)


@pytest.mark.parametrize("text", ["the username field is empty", "username and password are wrong",
                                  "user: my_username / password: my_password"])
def test_words_and_stand_ins_after_username_are_not_logins(text):
    assert not any(t in ("USERNAME", "PASSWORD") for t, _ in _found(text))


def test_a_name_after_a_semicolon_survives_the_login_the_head_ran_into_it():
    text = "user name: myerssharon; Evan from billing said it was fixed"
    s = text.index("myerssharon")
    got = {(t, text[a:b]) for a, b, t, _ in combine(text, [(s, text.index(" from"), "PERSON", 0.9)])}
    assert ("USERNAME", "myerssharon") in got and ("PERSON", "Evan") in got


# ---------------------------------------------------------------- fourth round (held_out_3's errors as calibration)
@pytest.mark.parametrize("text,typ,value", [
    ("his social is 402187735, can you check", "US_SSN", "402187735"),
    ("The router admin is admin / Meadow_Lark_2020 — help", "PASSWORD", "Meadow_Lark_2020"),
    ("pass: Kx9#wLm2!rQ for the temp account intern.sales04", "USERNAME", "intern.sales04"),
    ("postgresql://analytics_ro:q7Z!mT2#vLx9@10.0.4.21/warehouse", "USERNAME", "analytics_ro"),
    ("The patient (K. Nakamura, 52) reports numbness", "PERSON", "K. Nakamura"),
    ("The patient (K. Nakamura, 52) reports numbness", "AGE", "52"),
    ("hey it's Dev — can u call me back", "PERSON", "Dev"),
    ("Drop pin: -33.8688, 151.2093 — our campsite", "GPS_COORDINATES", "-33.8688, 151.2093"),
    ("my pin is 4821", "PASSWORD", "4821"),
])
def test_fourth_round_rules(text, typ, value):
    assert (typ, value) in _found(text)


@pytest.mark.parametrize("text", [
    "Konto 0648489890 (BLZ 50010517) ab.",              # a bank's code is no phone
    "Tracking number 1Z 999 AA1 01 2345 6784 shows",    # nor is the tail of a tracking code
    "resend it to accounts@northwindtraders.com, please",  # a role mailbox reaches a desk, not a person
    "Bonjour, voici mon dossier",
    "Plan B. Then we go",
    "postgres://user:password@localhost/db",
])
def test_fourth_round_look_alikes(text):
    got = _found(text)
    assert not any(t in ("PHONE_NUMBER", "EMAIL_ADDRESS", "PERSON", "USERNAME", "PASSWORD") for t, _ in got), got


# ---------------------------------------------------------------- fifth round (held_out_4's errors as calibration)
@pytest.mark.parametrize("text,value", [
    ("my son is 7 and still wets the bed", "7"),
    ("Pt is 66 yrs, T2DM", "66"),
    ("I (24F) and my boyfriend (26M) disagree", "24"),
    ("Min farfar är 88 år och bor ensam", "88"),
    ("Merhaba, 34 yaşındayım", "34"),
    ("ik ben 41 jaar en zoek werk", "41"),
])
def test_ages_as_kin_words_forums_and_other_languages_write_them(text, value):
    assert ("AGE", value) in _found(text)


@pytest.mark.parametrize("text", ["My laptop is 4 years old and slow", "our dog is 12 years old, still playful",
                                  "The toy says ages 3-5 but she is fine", "rated for ages 12+ only"])
def test_a_things_age_and_a_products_age_range_are_nobodys_age(text):
    assert not any(t == "AGE" for t, _ in _found(text))


@pytest.mark.parametrize("text", ["Our freephone is 0800 123 4567.", "Call Apple support at 1-800-275-2273",
                                  "ring +44 800 123 4567 for sales", "Hotline (888) 555-1234"])
def test_freephone_and_premium_lines_are_a_companys_not_a_persons(text):
    assert not any(t == "PHONE_NUMBER" for t, _ in _found(text))


@pytest.mark.parametrize("value", ["+353 87 123 4567", "087 012 3456", "(0909)8790346", "+44 20 7946 0321"])
def test_mobile_and_geographic_numbers_near_toll_free_ranges_stay_phones(value):
    assert ("PHONE_NUMBER", value) in _found(f"call me on {value} tonight")


@pytest.mark.parametrize("text,span", [("see stackoverflow.com/questions/11227809 for it", "11227809"),
                                       ("('und', 0.0140845)", "0.0140845"), ("('en', 0.9935992)", "9935992"),
                                       ("betaling voor factuur 2025-0412, dank", "2025-0412")])
def test_numbers_in_links_decimals_and_invoice_numbers_are_not_phones(text, span):
    assert _model(text, "PHONE_NUMBER", span) == []


@pytest.mark.parametrize("text,span", [("Our office is at 1 Market Street; the postcode is online", "1 Market"),
                                       ("Visit our store at 200 Main Street, open 9-6", "200 Main Street"),
                                       ("licensed under the Apache 2.0 license", "Apache 2"),
                                       ("codes from ISO 639 and 3166", "ISO 639"),
                                       ("Route 66 road trip in 10 days", "Route 66"),
                                       ("Patient Ahmed Farouk, 63, BP 160/100, on amlodipine", "63, BP 160/100")])
def test_business_premises_standards_roads_and_readings_are_not_addresses(text, span):
    assert _model(text, "STREET_ADDRESS", span) == []


def test_an_age_after_a_name_survives_the_reading_the_head_called_an_address():
    text = "Patient Ahmed Farouk, 63, BP 160/100, on amlodipine"
    ents = [(text.index(p), text.index(p) + len(p), t, 0.9) for p, t in (("Ahmed Farouk", "PERSON"),
                                                                         ("63, BP 160/100", "STREET_ADDRESS"))]
    assert ("AGE", "63") in {(t, text[s:e]) for s, e, t, _ in combine(text, ents)}


@pytest.mark.parametrize("value", ["12 Kingfisher Way, Reading RG2 0HG", "Storgatan 8, 114 51 Stockholm",
                                   "Keizersgracht 412-3, 1016 GC Amsterdam", "ul. Długa 12/4, 00-238 Warszawa"])
def test_home_addresses_the_head_finds_stay_addresses(value):
    assert _model(f"my new address is {value}, post it there", "STREET_ADDRESS", value) == [value]


@pytest.mark.parametrize("text,name", [
    ("Hoi Sanne, mijn IBAN staat hieronder", "Sanne"),
    ("Hej Lars! Min nya adress", "Lars"),
    ("Olá, segue o NIF. Obrigado, Rui Tavares", "Rui Tavares"),
    ("Festnetz oder Mobil. Grüße, Torsten Ebert", "Torsten Ebert"),
    ("Proszę o fakturę.\nPozdrawiam,\nKatarzyna Wójcik", "Katarzyna Wójcik"),
    ("ok see you at 7\n-- Maja", "Maja"),
    ("[09:14] Priya: did the courier come?", "Priya"),
    ("12/03/2025, 18:02 - Sam: whats the wifi pw", "Sam"),
])
def test_names_after_greetings_sign_offs_signatures_and_chat_timestamps(text, name):
    assert ("PERSON", name) in _found(text)


@pytest.mark.parametrize("text", ["Milvus Lite runs in:\n- Google Colab\n- Jupyter Notebook",
                                  "[10:00] Note: the build is red", "Thanks, that fixed it!",
                                  "Which laptop is best, Dell Latitude?"])
def test_list_items_chat_labels_and_thanks_without_a_name_are_not_people(text):
    assert not any(t == "PERSON" for t, _ in _found(text))


@pytest.mark.parametrize("text,span", [("Mijn BSN is 123456782", "Mijn"), ("N° de sécurité sociale", "N"),
                                       ("Meu NIF é 245118365", "Meu")])
def test_possessives_and_single_letters_are_not_people(text, span):
    assert _model(text, "PERSON", span) == []


@pytest.mark.parametrize("text,typ,value", [
    ("Ticket #88213: user p.albrecht locked out after 5 attempts", "USERNAME", "p.albrecht"),
    ("pw for the shared printer account is Copper!Fern82 — don't post it", "PASSWORD", "Copper!Fern82"),
    ("I set my password to bluebird1987 and now it is too weak", "PASSWORD", "bluebird1987"),
    ("mysql -u reporting -pRp0rt!ng_77 -h 10.2.0.9 sales", "USERNAME", "reporting"),
    ("Benutzername t.keller, Passwort Sonnenblume!7 — geht nicht", "PASSWORD", "Sonnenblume!7"),
    ("Usuario: rgarcia77, contraseña Gato_Negro22", "PASSWORD", "Gato_Negro22"),
    ("export PGPASSWORD=Q7v!r2Lm#pX before the dump", "PASSWORD", "Q7v!r2Lm#pX"),
    ("follow me on insta @lucyinthesky_ for recipes", "USERNAME", "lucyinthesky_"),
    ("My Steam name is xXdarkfoxXx, add me", "USERNAME", "xXdarkfoxXx"),
    ("bug 4471, reported by kpatel-qa", "USERNAME", "kpatel-qa"),
    ("sshd[2211]: Failed password for oracle_bkp from 203.0.113.77 port 52144", "USERNAME", "oracle_bkp"),
    ("[2025-03-11 22:41:07] <b0rk> anyone know why pip hangs?", "USERNAME", "b0rk"),
])
def test_logins_and_passwords_in_prose_commands_logs_and_chats(text, typ, value):
    assert (typ, value) in _found(text)


@pytest.mark.parametrize("text", [
    "Password must be at least 12 characters with one symbol", "the password is 16 characters long",
    "Forgot password link goes to a 404.", "the password to the safe is long", "read the user guide for the app",
    "the user 12345 was deleted", "@Marcus can you review the PR?", "my instagram is instagram.com/lena.bakes",
    "posted by John", "logged in as admin yesterday",
])
def test_password_rules_words_and_mentions_are_not_credentials(text):
    assert not any(t in ("USERNAME", "PASSWORD") for t, _ in _found(text))


@pytest.mark.parametrize("text,value", [("Our meeting spot is 41.9028, 12.4964 — the fountain", "41.9028, 12.4964"),
                                        ("the tracker pinged at N 47.6062 W 122.3321", "N 47.6062 W 122.3321"),
                                        ("found it at 47.6062 N, 122.3321 W today", "47.6062 N, 122.3321 W"),
                                        ("geo:37.7749,-122.4194 is where it was towed", "37.7749,-122.4194"),
                                        ("we are at 1.3521, 103.8198 now", "1.3521, 103.8198")])
def test_places_as_bare_pairs_hemisphere_letters_and_geo_uris(text, value):
    assert ("GPS_COORDINATES", value) in _found(text)


@pytest.mark.parametrize("text", ["EUR/USD closed at 1.0842, 1.0871 the day before", "scores (0.4838, 0.2211)",
                                  "values 12.3456, 45.6789, 78.9012 in the table", "version 12.3456,7.8901.2"])
def test_exchange_rates_scores_and_lists_of_numbers_are_not_places(text):
    assert not any(t == "GPS_COORDINATES" for t, _ in _found(text))


@pytest.mark.parametrize("text,span", [("Milvus Lite is available in Colab", "Milvus Lite"),
                                       ("Install Visual Studio first", "Visual Studio"),
                                       ("submit a Pull Request (PR) for your locale", "Request")])
def test_product_editions_and_repository_words_are_not_people(text, span):
    assert _model(text, "PERSON", span) == []


def test_a_quoted_example_value_in_documentation_code_is_not_a_person_but_one_in_a_message_is():
    doc = "## Client\n\n```python\nreply = greeter.SayHello(HelloRequest(name='Ada Byron'))\n```\n"
    assert _model(doc, "PERSON", "Ada Byron") == []
    assert _model("please update the record: name='Ada Byron', dob 1990", "PERSON", "Ada Byron") == ["Ada Byron"]


@pytest.mark.parametrize("text", ["Call our helpline on 0345 600 0011 between 9 and 5",
                                  "customer service: 020 7946 0000, weekdays"])
def test_a_number_given_as_a_companys_line_is_not_a_persons_phone(text):
    assert not any(t == "PHONE_NUMBER" for t, _ in _found(text))


def test_a_pair_of_decimals_in_a_sentence_listing_numbers_is_not_a_place():
    assert not any(t == "GPS_COORDINATES" for t, _ in _found("GDP grew 2.4512, 2.1187 and 1.9934 percent"))


def test_form_labels_in_other_languages_are_not_people():
    assert _model("Geburtsdatum 14. März 1979, Versicherung AOK", "PERSON", "Geburtsdatum") == []


@pytest.mark.parametrize("text,typ,value", [
    ("admin panel creds: ops_lead / Winter$now24", "PASSWORD", "Winter$now24"),
    ("Anyone else's thermostat reset itself? — therm0_fan", "USERNAME", "therm0_fan"),
    ("Same here, tried both channels.\n-- netgeek_88", "USERNAME", "netgeek_88"),
])
def test_credentials_after_creds_and_a_login_signing_a_post(text, typ, value):
    assert (typ, value) in _found(text)


@pytest.mark.parametrize("text", ["user: kb77 / password: Sunfl0wer!22", "flights Paris — London", "see you — Maja"])
def test_the_next_key_is_no_password_and_a_word_after_a_dash_is_no_login(text):
    got = _found(text)
    assert ("PASSWORD", "password:") not in got and not any(t == "USERNAME" and v in ("London", "Maja") for t, v in got)


def test_polisnummer_is_a_reference_not_a_phone():
    assert not any(t == "PHONE_NUMBER" for t, _ in _found("Insured: Pieter, polisnummer 7734-2291."))


def test_address_parts_around_a_street_name_the_head_left_out_are_one_address():
    text = "Pickup: Via Roma 12, 20121 Milano | Tel"
    ents = [(text.index("Via"), text.index("Via") + 3, "STREET_ADDRESS", 0.9),
            (text.index("12,"), text.index(" |"), "STREET_ADDRESS", 0.9)]
    got = [(t, text[s:e]) for s, e, t, _ in combine(text, ents)]
    assert got == [("STREET_ADDRESS", "Via Roma 12, 20121 Milano")]


# ---------------------------------------------------------------- sixth round (held_out_5's errors as calibration)
@pytest.mark.parametrize("text,typ,value", [
    ("Dear Mr. Lindqvist, the date of birth we hold is 4 May 1951.", "DATE_OF_BIRTH", "4 May 1951"),
    ("Passenger: MR KWAME ASANTE\nPassport: G4471902", "PERSON", "MR KWAME ASANTE"),
    ("Boarding pass: NGUYEN/THI MAI MS, gate 12", "PERSON", "NGUYEN/THI MAI MS"),
    ("Steps: log in as qa.tester3 / Summer#2025qa, open /settings", "PASSWORD", "Summer#2025qa"),
    ("Dzień dobry, mój numer to 601 234 567.", "PHONE_NUMBER", "601 234 567"),
    ("携帯は090-1234-5678です。", "PHONE_NUMBER", "090-1234-5678"),
    ("Merhaba, ben Elif Yıldız, 34 yaşındayım.", "PERSON", "Elif Yıldız"),
    ("Posílám adresu. Děkuji, Jana Dvořáková", "PERSON", "Jana Dvořáková"),
    ("Usuario: rgarcia77, contraseña antigua Gato_Negro22 — no entra", "PASSWORD", "Gato_Negro22"),
    ("Versichertennummer M482913307 — die Karte ist abgelaufen.", "NATIONAL_ID", "M482913307"),
    ("@Marcus can you review the PR before standup?", "PERSON", "Marcus"),
    ('Transcript: "Hey Jamal, it\'s Tanya, call me back."', "PERSON", "Jamal"),
    ("The API returns 403 for user svc-reporting since Monday", "USERNAME", "svc-reporting"),
    ("log: principal=svc-reporting role=readonly deny", "USERNAME", "svc-reporting"),
    ("Mijn nieuwe adres: Keizersgracht 412-3, 1016 GC Amsterdam. Groetjes", "STREET_ADDRESS",
     "Keizersgracht 412-3, 1016 GC Amsterdam"),
    ("Morada: Rua Augusta 152, 3.º Esq., 1100-053 Lisboa. Obrigada!", "STREET_ADDRESS",
     "Rua Augusta 152, 3.º Esq., 1100-053 Lisboa"),
    ("Insured: Pieter de Vries, polisnummer 7734.", "PERSON", "Pieter de Vries"),
])
def test_sixth_round_rules(text, typ, value):
    assert (typ, value) in _found(text)


@pytest.mark.parametrize("text", [
    "Boarding pass: gate 12, group 3", "We live in a 40-year-old building with asbestos tiles.",
    "Release 2, 2024 Roadmap is out", "TCP/IP and AND/OR are not names", "Merhaba, nasılsın?",
])
def test_sixth_round_look_alikes(text):
    got = _found(text)
    assert not any(t in ("PASSWORD", "AGE", "STREET_ADDRESS", "PERSON") for t, _ in got), got


@pytest.mark.parametrize("text,typ,span", [
    ("CRM note: follow up Tue with the client", "PERSON", "Tue"),
    ("at our Bridge Street branch; bring ID", "STREET_ADDRESS", "Bridge Street"),
    ("order 113-4471920-5582013 has shipped", "PHONE_NUMBER", "4471920-5582013"),
    ("ISBN 978-0-306-40615-7 — second edition?", "PHONE_NUMBER", "0-306-40615-7"),
    ("Hotel res. under Okonkwo, 2 nights", "STREET_ADDRESS", "Okonkwo, 2"),
    ("Celular +55 11 98765-4321", "PERSON", "Celular"),
    ("Vilken hemtjänst kan han få?", "PERSON", "Vilken"),
])
def test_sixth_round_head_spans_that_are_not_pii(text, typ, span):
    assert _model(text, typ, span) == []


def test_a_street_named_after_a_person_joins_its_address():
    text = "Proszę wysłać na adres ul. Długa 12/4, 00-238 Warszawa."
    ents = [(text.index("Długa"), text.index("Długa") + 5, "PERSON", 0.9),
            (text.index("12/4"), text.index("Warszawa") + 8, "STREET_ADDRESS", 0.9)]
    got = [(t, text[s:e]) for s, e, t, _ in combine(text, ents)]
    assert got == [("STREET_ADDRESS", "ul. Długa 12/4, 00-238 Warszawa")]


# ---------------------------------------------------------------- seventh round (held_out_6's errors as calibration)
@pytest.mark.parametrize("text,typ,value", [
    ("SMS: Your courier Miguel is 5 stops away.", "PERSON", "Miguel"),
    ("Pls ring Auntie Grace on 0803 123 4567", "PERSON", "Grace"),
    ("Ship to:\nAylin Kaya\nBahnhofstraße 22, 8001 Zürich", "PERSON", "Aylin Kaya"),
    ("Agent: And your date of birth?\nCustomer: 09/02/1988", "DATE_OF_BIRTH", "09/02/1988"),
    ("fødselsdato 07.09.1983 — trenger ny BankID", "DATE_OF_BIRTH", "07.09.1983"),
    ("születési dátum: 1990.05.14", "DATE_OF_BIRTH", "1990.05.14"),
    ("Thanks @jwalsh-dev for the fix in #4821", "USERNAME", "jwalsh-dev"),
    ("I changed my gamertag to NightOwl_Rex, add me", "USERNAME", "NightOwl_Rex"),
    ("GitHub issue by ferrisw3: segfault on import", "USERNAME", "ferrisw3"),
    ("Reddit user u/throwaway_8812 posted it", "USERNAME", "throwaway_8812"),
    ("Terve Juha, osoitteeni on", "PERSON", "Juha"),
    ("Geia sou Nikos, to kinito mou einai", "PERSON", "Nikos"),
    ("Bună ziua, am 38 de ani.", "AGE", "38"),
    ("The kids are 4 and 7; which park?", "AGE", "7"),
    ("Wi-Fi: CafeGuest / password latte2024!", "PASSWORD", "latte2024!"),
    ("The password for the staff portal is now Nordlys-77.", "PASSWORD", "Nordlys-77"),
    ("psswd: K3ttle&Drum", "PASSWORD", "K3ttle&Drum"),
    ("The buoy is at 44°38'N 63°34'W, reported at 06:00.", "GPS_COORDINATES", "44°38'N 63°34'W"),
    ("lat 60.1699, lon 24.9384", "GPS_COORDINATES", "60.1699, lon 24.9384"),
    ("Our farm's gate is at -37.8136, 144.9631.", "GPS_COORDINATES", "-37.8136, 144.9631"),
])
def test_seventh_round_rules(text, typ, value):
    assert (typ, value) in _found(text)


@pytest.mark.parametrize("text", [
    "Ratio test gives 3.1415, 2.7182 — which is better?", "I use the password manager 1Password",
    "@app.route('/x') decorates the view", "Nurse note: refused breakfast", "comment by Q3 results",
    "buy the day pass 2024edition at the gate",
])
def test_seventh_round_look_alikes(text):
    got = _found(text)
    assert not any(t in ("GPS_COORDINATES", "PASSWORD", "USERNAME", "PERSON") for t, _ in got), got


def test_a_greeting_the_head_ran_into_a_name_is_trimmed():
    assert _model("Terve Juha, osoitteeni on", "PERSON", "Terve Juha") == ["Juha"]


def test_a_question_mark_after_a_word_does_not_make_it_a_password():
    assert not any(t == "PASSWORD" for t, _ in _found("How often should a company force password resets? NIST says no"))


# ---------------------------------------------------------------- eighth round (held_out_7's errors as calibration)
@pytest.mark.parametrize("text,typ,value", [
    ("name,email,phone,age\nRavi Patel,ravi.p@gmail.com,+44 7700 900345,42", "AGE", "42"),
    ("| Name | Phone | Age |\n|---|---|---|\n| Ines Alves | +351 912 345 678 | 37 |", "PERSON", "Ines Alves"),
    ('{"customer": "Hana", "dob": "1991-03-08"}', "DATE_OF_BIRTH", "1991-03-08"),
    ("Can you confirm your date of birth? You: 30/11/1977", "DATE_OF_BIRTH", "30/11/1977"),
    ("Dobrý deň, volám sa Martin Kováč, narodený 5. 6. 1982.", "DATE_OF_BIRTH", "5. 6. 1982"),
    ("Dobrý deň, volám sa Martin Kováč, narodený 5. 6. 1982.", "PERSON", "Martin Kováč"),
    ("Kumusta! Ako si Jose Reyes, 29 taong gulang.", "PERSON", "Jose Reyes"),
    ("Receipt: trip with driver Abdul on 12 May", "PERSON", "Abdul"),
    ("Visa form — Surname: OKAFOR, Given names: CHIDI EMMANUEL", "PERSON", "OKAFOR"),
    ("[Game chat] xX_Vortex_Xx: gg ez", "USERNAME", "xX_Vortex_Xx"),
    ("env:\n  - name: DB_USER\n    value: orders_rw\n  - name: DB_PASSWORD\n    value: Tr4in!Station9", "PASSWORD",
     "Tr4in!Station9"),
    ("environment:\n  POSTGRES_USER: inventory\n  POSTGRES_PASSWORD: S3cure_Pantry!", "USERNAME", "inventory"),
    ('The password "Spring2025!" got rejected as too common.', "PASSWORD", "Spring2025!"),
    ("Password reset requested for l.moreau at 08:14.", "USERNAME", "l.moreau"),
    ("Account locked: dpatel_admin (5 failed attempts)", "USERNAME", "dpatel_admin"),
    ("sudo -u postgres_ops psql", "USERNAME", "postgres_ops"),
    ("WIFI:T:WPA;S:HomeNet;P:m00nlight-88;; — scan this", "PASSWORD", "m00nlight-88"),
])
def test_eighth_round_rules(text, typ, value):
    assert (typ, value) in _found(text)


@pytest.mark.parametrize("text", [
    "Fax us on 020 7946 0998 for the form.", "The council's offices at 1 Civic Square are closed.",
    "id,name,version\n1,numpy,1.26", "def f(a, b):\n    return a, b",
    "Failed password for oracle_bkp from 10.0.0.5", "environment:\n  POSTGRES_USER: postgres",
])
def test_eighth_round_look_alikes(text):
    got = _found(text)
    assert not any(t in ("PHONE_NUMBER", "STREET_ADDRESS", "PERSON", "PASSWORD") or (t, v) == ("USERNAME", "postgres")
                   for t, v in got), got


@pytest.mark.parametrize("text,name", [("Dear Mr. Kováč, thanks", "Mr. Kováč"), ("Hi Leo's mum, hello", "Leo"),
                                       ("Děkuji, my name is Jana Dvořáková, ok", "Jana Dvořáková")])
def test_a_name_ending_in_an_accented_letter_is_taken_whole(text, name):
    assert ("PERSON", name) in _found(text)


# ---------------------------------------------------------------- ninth round (held_out_8's errors as calibration)
@pytest.mark.parametrize("text,typ,value", [
    ("Meeting notes — attendees: Sara Lindholm, Oscar Pérez, Wen Li. Action: send the draft.", "PERSON", "Wen Li"),
    ("INSERT INTO users (name, email, birth_date) VALUES ('Grace Liu', 'g@x.io', '1988-06-30');", "DATE_OF_BIRTH",
     "1988-06-30"),
    ('203.0.113.9 - jsmith [04/Jun/2025:10:00:01 +0000] "GET /admin HTTP/1.1" 200 512', "USERNAME", "jsmith"),
    ("Здравствуйте, меня зовут Анна Смирнова, мой телефон", "PERSON", "Анна Смирнова"),
    ("Привіт, Олег! Мені 27 років.", "AGE", "27"),
    ("안녕하세요, 제 이름은 김민수입니다.", "PERSON", "김민수"),
    ("Zdravo Nikola, rođen sam 12.03.1990.", "DATE_OF_BIRTH", "12.03.1990"),
    ("Shwmae Dafydd, dw i'n 40 oed heddiw!", "AGE", "40"),
    ("Patient, 72F, presents with confusion.", "AGE", "72"),
    ("DOB — 11-23-1958", "DATE_OF_BIRTH", "11-23-1958"),
    ("Add me: Discord lunarfox#2291", "USERNAME", "lunarfox#2291"),
    ("Lat/Lng: 35.6895 / 139.6917", "GPS_COORDINATES", "35.6895 / 139.6917"),
    ("Ship to: Mr. Kofi Boateng, PO Box 4410, Accra, Ghana.", "STREET_ADDRESS", "PO Box 4410, Accra"),
    ("Passwort geändert auf Blumen#Topf3, bitte notieren.", "PASSWORD", "Blumen#Topf3"),
])
def test_ninth_round_rules(text, typ, value):
    assert (typ, value) in _found(text)


@pytest.mark.parametrize("text", ["DOB — 11-23-1958", "login details: mlopez / Pa$$Port77", "Temperature 72F today",
                                  "cc: the whole team"])
def test_ninth_round_look_alikes(text):
    got = _found(text)
    assert not any((t == "USERNAME" and v in ("11-23-1958", "details")) or t == "AGE" or
                   (t == "PERSON" and v in ("the whole team", "The")) for t, v in got), got


def test_an_address_span_keeps_what_lies_beyond_a_name_at_its_edge():
    text = "Labas, Rūta, mano adresas Gedimino pr. 9, 01103 Vilnius."
    s = text.index("ta, mano")
    got = {(t, text[a:b]) for a, b, t, _ in combine(text, [(s, len(text) - 1, "STREET_ADDRESS", 0.9)])}
    # (pii9: the clause's own words before the street, "mano adresas", are no longer part of the address)
    assert ("PERSON", "Rūta") in got and ("STREET_ADDRESS", "Gedimino pr. 9, 01103 Vilnius") in got


# ---------------------------------------------------------------- round pii7 (held_out_10's errors as calibration)
@pytest.mark.parametrize("text,value", [
    ("Dia duit Eoin, tá mé 34 bliain d'aois.", "34"),
    ("Hey Rógvi, eg eri 27 ár gamal.", "27"),
    ("Sawubona Thandeka, ngineminyaka engu-29.", "29"),
    ("Talofa Sione, o lo'u tausaga e 41.", "41"),
    ("Assalomu alaykum Dilnoza, men 38 yoshdaman.", "38"),
    ("she is 52 years of age and lives alone", "52"),
])
def test_ages_with_a_word_for_years_and_old_or_a_word_for_age_before_them(text, value):
    assert ("AGE", value) in _found(text)


@pytest.mark.parametrize("text,value", [
    ("Patrick Joseph Hanrahan, b. 12 Mar 1921, Limerick", "12 Mar 1921"),
    ("Saluton Ludoviko, mia naskiĝdato estas 1990-04-17.", "1990-04-17"),
    ("Bonjou Widlène, mwen fèt 8 me 1985.", "8 me 1985"),
])
def test_birth_dates_after_genealogy_and_other_languages_birth_words(text, value):
    assert ("DATE_OF_BIRTH", value) in _found(text)


@pytest.mark.parametrize("text", ["Python 3.12 was released on 2 October 2023.", "Tab. 3 April 2020 shows the trend",
                                  "The bridge is 140 years old.", "We opened 12 branches in 2019."])
def test_release_dates_and_the_age_of_things_are_no_birth_date_or_age(text):
    assert not any(t in ("AGE", "DATE_OF_BIRTH") for t, _ in _found(text))


@pytest.mark.parametrize("text,value", [
    ("/billing/   @rkoval @jp-oduya", "rkoval"),
    ("[21:04] xxdarkwolfxx: gg", "xxdarkwolfxx"),
    ("1. StormBreaker99  24,510\n2. quietfox  23,870\n3. M4rcoPolo  22,004", "quietfox"),
    ("    // TODO(jwalsh): remove this fallback", "jwalsh"),
    ("WARN auth failed for user 'k.osei' from 10.0.4.17", "k.osei"),
    ("Ask dbadmin_kim on Slack about the replica lag.", "dbadmin_kim"),
    ('user_name: "bgarcia", pass_word: "R0sa!Garden"', "bgarcia"),
    ("creds for the staging box: stage_ops / Bl4ck$wan", "stage_ops"),
])
def test_logins_in_codeowners_chat_leaderboards_code_comments_and_logs(text, value):
    assert ("USERNAME", value) in _found(text)


@pytest.mark.parametrize("text", ["/docs/ @acme/writers", "[10:12] bex: anyone know?", "1. Flour  500\n",
                                  "1. Flour  500\n2. Sugar  200\n"])
def test_teams_short_first_names_in_chat_and_a_recipe_are_no_logins(text):
    assert not any(t == "USERNAME" for t, _ in _found(text))


@pytest.mark.parametrize("text,value", [
    ("Salam Leyla, mənim parolum Bakı2024!, dəyişməliyəm.", "Bakı2024!"),
    ("Maayong buntag Junrey, ang akong password kay Mangga#88.", "Mangga#88"),
    ("Password hint for mum: the dog's name plus the year, i.e. Biscuit2011", "Biscuit2011"),
    ("The new intern's account is intern_jl, temp pass Temp#4410.", "Temp#4410"),
    ('user_name: "bgarcia", pass_word: "R0sa!Garden"', "R0sa!Garden"),
])
def test_a_password_shaped_value_a_few_words_after_a_credential_word(text, value):
    assert ("PASSWORD", value) in _found(text)


@pytest.mark.parametrize("text", ["Passwords are hashed with Argon2id and SHA256 by default.",
                                  "Boarding pass: NGUYEN/THI MAI MS Flight NH212",
                                  "Reset your password and sign in with your e-mail address.",
                                  "Set the PASSWORD environment variable to your database password first."])
def test_hash_names_tickets_and_instructions_are_no_passwords(text):
    assert not any(t == "PASSWORD" for t, _ in _found(text))


def test_a_projects_own_social_account_in_its_documentation_is_not_personal():
    doc = ("# Pillow\n\n`pip install pillow`\n\nPillow is the friendly PIL fork. Pillow supports many formats; "
           "Pillow is tested on CI.\n\nFollow on Mastodon: https://fosstodon.org/@pillow\n")
    assert not any(t == "URL" for t, _ in _found(doc))
    # a contributor's profile, shown once as a link's text, stays a person's
    credits = "# Credits\n\n`pip install x`\n\n- [@jegou](https://github.com/jegou)\n"
    assert ("URL", "https://github.com/jegou") in _found(credits)
    # in a message, a handle that matches the writer's name is theirs
    assert ("URL", "https://instagram.com/lucia") in _found("Hi, Lucia here! Lucia's photos: https://instagram.com/lucia")


@pytest.mark.parametrize("text", ["- **Website:** https://numpy.org", "maintain and improve [our website](https://numpy.org)",
                                  "logo=GitHub\n   :target: https://github.com/tqdm/tqdm/actions/workflows/test.yml"])
def test_an_organisations_website_and_a_badge_target_are_not_personal_sites(text):
    assert not any(t == "URL" for t, _ in _found(text))


@pytest.mark.parametrize("text,span", [
    ("[![Nature Paper](https://img.shields.io/badge/DOI-10.1038%2Fs41586--020--2649--2-blue)]", "020--2649"),
    ("`IDLE <https://github.com/tqdm/tqdm/issues/191#issuecomment-230168030>`__", "230168030")])
def test_numbers_inside_a_link_after_markup_are_not_phones(text, span):
    assert _model(text, "PHONE_NUMBER", span) == []


@pytest.mark.parametrize("text,value", [("PAY-2291: customer cannot log in. Assignee: marta", "marta"),
                                        ("Reporter: Jonas Weber\nStatus: open", "Jonas Weber")])
def test_the_people_a_tickets_fields_name_lower_case_included(text, value):
    assert ("PERSON", value) in _found(text)


@pytest.mark.parametrize("text", ["Assignee: unassigned", "Assignee: j.doe", "Reviewer: none yet"])
def test_an_empty_ticket_field_or_a_login_there_is_no_person(text):
    assert not any(t == "PERSON" for t, _ in _found(text))


def test_a_uk_address_with_a_district_before_the_town():
    assert ("STREET_ADDRESS", "14 Albion Terrace, Leith, Edinburgh EH6 5LP") in _found(
        "Ananya Krishnan\n14 Albion Terrace, Leith, Edinburgh EH6 5LP\n07911 123456")


# pii8: families of phrasings behind held_out_11's missed ages and dates of birth
@pytest.mark.parametrize("text,typ,value", [
    ("About me: 31, nurse, love hiking", "AGE", "31"),
    ("Dating bio: 42, divorced, two teens", "AGE", "42"),
    ("Hi I'm Ines! 26 y/o, Lisbon", "AGE", "26"),
    ("Discharge summary: 71M, admitted with pneumonia", "AGE", "71"),
    ("Pt R. Dlamini, 56 yrs, DOB 11-02-1969, reviewed", "AGE", "56"),
    ("age last birthday: 48; born 17/06/1973.", "AGE", "48"),
    ("Tobias ran his first marathon at 37.", "AGE", "37"),
    ("She retired at 60 and moved to Spain", "AGE", "60"),
    ("Salude Bachisio, tenzo 58 annos.", "AGE", "58"),
    ("Muraho Uwase, mfite imyaka 33.", "AGE", "33"),
    ("Mhoro Tendai, ndine makore 35 ekuberekwa.", "AGE", "35"),
    ("Our records show your date of birth as 4 February 1960.", "DATE_OF_BIRTH", "4 February 1960"),
    ("Birthday reminder: Ola - 14.02.1993", "DATE_OF_BIRTH", "14.02.1993"),
    ("Adieu Peire, soi nascut lo 12 de genièr de 1984.", "DATE_OF_BIRTH", "12 de genièr de 1984"),
])
def test_ages_and_birth_dates_as_profiles_clinical_notes_forms_and_life_stories_write_them(text, typ, value):
    assert (typ, value) in _found(text)


@pytest.mark.parametrize("text", ["hace 5 años que vivo aquí", "Revenue: 71M, up 10%", "meet at 7.",
                                  "lavoro qui da 10 anni", "my birthday party is on 12 May 2024",
                                  "The app crashed at 37 percent"])
def test_durations_amounts_times_and_birthday_events_are_not_ages_or_dates_of_birth(text):
    assert not any(t in ("AGE", "DATE_OF_BIRTH") for t, _ in _found(text))


def test_the_target_of_a_remote_shell_is_a_login_not_an_email():
    got = _found("  501  ssh mkowalczyk@bastion.internal")
    assert ("USERNAME", "mkowalczyk") in got and not any(t == "EMAIL_ADDRESS" for t, _ in got)


# pii8: a login or a password a few words after a word for it, in the languages of held_out_7 ... held_out_11
@pytest.mark.parametrize("text,typ,value", [
    ("-- Jarek | jarek_wrenches on the forum | 2008 Civic", "USERNAME", "jarek_wrenches"),
    ("ko hoku hingoa 'i he Facebook ko sione.tupou91.", "USERNAME", "sione.tupou91"),
    ("Na nga def Moussa, sama username mooy moussa_dkr.", "USERNAME", "moussa_dkr"),
    ("Halo Jimmy, nem blong mi long app hem jimmy_vila, pasword Nakamal88.", "USERNAME", "jimmy_vila"),
    ("Halo Jimmy, nem blong mi long app hem jimmy_vila, pasword Nakamal88.", "PASSWORD", "Nakamal88"),
    ("Dating bio: 42, divorced. Insta: marco_on_bikes", "USERNAME", "marco_on_bikes"),
    ("Sannu Aminu, sunan mai amfani na shi ne aminu_kano.", "USERNAME", "aminu_kano"),
    ("The new intern's account is intern_jl, temp pass Temp#4410.", "USERNAME", "intern_jl"),
    ("ny teny miafina amin'ny wifi dia Vanille2023!.", "PASSWORD", "Vanille2023!"),
    ("Allegra Gian Andri, mes pled-clav è Engiadina#5.", "PASSWORD", "Engiadina#5"),
    ("Rojbaş Rojda, şîfreya min Zozan_1990 e.", "PASSWORD", "Zozan_1990"),
    ("Kata sandi e-mel saya Merpati#77, tolong tukar.", "PASSWORD", "Merpati#77"),
    ("The Wi-Fi card on the fridge says: SSID LittleHouse, key swallowtail-4821.", "PASSWORD", "swallowtail-4821"),
    ("i forgot my password again lol. it's Butterfly2! if anyone wants", "PASSWORD", "Butterfly2!"),
])
def test_logins_and_passwords_a_few_words_after_a_word_for_them(text, typ, value):
    assert (typ, value) in _found(text)


@pytest.mark.parametrize("text", ["set the user_id in your app config_file", "Network name HOME-5G-2F, 5 GHz band",
                                  "the wifi router model is Archer C7 v5", "open your profile settings.json",
                                  "see the account page for api_key rotation"])
def test_field_names_network_names_and_models_are_not_logins_or_passwords(text):
    assert not any(t in ("USERNAME", "PASSWORD") for t, _ in _found(text))


@pytest.mark.parametrize("text,value", [("CENSUS 2021, Person 2: Oyelaran, Folake; relationship: wife", "Oyelaran, Folake"),
                                        ("Patient: Brandt, Elliot\nWard 4", "Brandt, Elliot")])
def test_a_forms_person_field_written_surname_comma_given_name_is_one_person(text, value):
    assert ("PERSON", value) in _found(text)


@pytest.mark.parametrize("text", ["Location: Paris, France;", "Dating bio: 42, divorced. Insta: marco_on_bikes",
                                  "Whatsapp: +44 7700 900123"])
def test_places_and_social_networks_before_a_colon_are_no_person(text):
    assert not any(t == "PERSON" for t, _ in _found(text))


def test_a_model_year_and_a_car_model_are_not_an_address_a_street_after_a_year_like_number_is():
    text = "2008 Civic, 230k km, 17 years old. Ship to 2008 Maple Avenue, Springfield, IL 62704"
    got = _model(text, "STREET_ADDRESS", "2008 Civic, 230k", "2008 Maple Avenue, Springfield, IL 62704")
    assert got == ["2008 Maple Avenue, Springfield, IL 62704"]


def test_a_quoted_network_name_in_a_config_is_not_its_key():
    got = _found('wifi:\n  ssid: "Office-5G"\n  psk: "c0ffee&Cr0issant"')
    assert ("PASSWORD", "c0ffee&Cr0issant") in got and not any(v == "Office-5G" for _, v in got)


def _people_in(text, model=()):
    return [text[s:e] for s, e, t, _ in combine(text, list(model)) if t == "PERSON"]


def _piece(text, word, typ="PERSON"):
    s = text.index(word)
    return (s, s + len(word), typ, 0.9)


@pytest.mark.parametrize("text,pieces,whole", [
    # (pii9) a register's SURNAME, Given; a nickname in quotes; a particle; initials: one name, not its pieces
    ("Rx label: HALVORSEN, Ingrid - DOB 07/30/1948", ["Ingrid"], "HALVORSEN, Ingrid"),
    ('Obituary: Harold "Hal" Pemberton, of Dunedin, died on Sunday.', ["Harold", "Pemberton"],
     'Harold "Hal" Pemberton'),
    ("Ha'u-nia naran Nelinha da Costa, hela iha Dili.", ["Nelinha", "Costa"], "Nelinha da Costa"),
    ("Entrant: A. B. Okonjo, club Harriers", ["Okonjo"], "A. B. Okonjo"),
    ("Tenors this year: Pierre LAMBERT and others.", ["Pierre"], "Pierre LAMBERT"),
])
def test_pieces_of_one_name_become_one_person(text, pieces, whole):
    assert _people_in(text, [_piece(text, p) for p in pieces]) == [whole]


def test_an_abbreviation_after_a_name_is_no_surname_and_a_list_stays_apart():
    text = "Please ask Maria ASAP about it."
    assert _people_in(text, [_piece(text, "Maria")]) == ["Maria"]
    text = "Guests: Lorna, Duncan and Iain"
    assert "Lorna, Duncan" not in _people_in(text, [_piece(text, "Lorna"), _piece(text, "Duncan")])


@pytest.mark.parametrize("text,name", [
    # (pii9) "my name is" in more languages (pii/rules.py INTRO_PHRASES): the name after it, not the phrase
    ("Jenengku Wahyu Prasetyo, umurku 34 taun.", "Wahyu Prasetyo"),
    ("Казвам се Петко Илиев и живея в Пловдив.", "Петко Илиев"),
    ("Mi nomber ta Shurenska Martis.", "Shurenska Martis"),
    ("मेरा नाम अनिल कुमार है", "अनिल कुमार"),
    ("ስሜ ሰላም ነው", "ሰላም"),
])
def test_a_name_after_an_intro_phrase_of_many_languages(text, name):
    assert name in _people_in(text)


@pytest.mark.parametrize("text,word", [
    ("Jenengku Wahyu, umurku 34 taun.", "Jenengku"),
    ("Wasta abdi Euis, yuswa 61 taun.", "Wasta"),
    ("Meniň adym Aýna.", "Meniň"),
])
def test_an_intro_phrases_own_word_is_no_name(text, word):
    assert word not in _people_in(text, [_piece(text, word)])


def test_a_brand_alone_is_no_person_in_text_or_in_a_table():
    text = "Netflix keeps logging me out on the TV."
    assert _people_in(text, [_piece(text, "Netflix")]) == []
    text = "name,url,username,password\nNetflix,https://netflix.com,mo_k,Heron-88-blue"
    assert _people_in(text) == []


def test_pii_and_the_routes_read_the_same_brand_file():
    # one home (data/other_brands.txt via router_extproc/brands.py): a brand added there reaches both readers; the
    # file's section of brands that are also common words reaches PII only
    from router_extproc.brands import brand_names
    from router_extproc.pii.rules import BRANDS
    from router_extproc.routes import _shipped_brands

    assert set(_shipped_brands()) <= BRANDS and "Target" in BRANDS and "Target" not in _shipped_brands()
    assert set(brand_names(common_words=True)) <= BRANDS and {"Github", "Ebay", "Nvidia"} <= BRANDS
    text = "name,url,username,password\nStrava,https://strava.com,mo_k,Heron-88-blue"
    assert _people_in(text) == []


def _typed(text, typ):
    return [text[s:e] for s, e, t, _ in combine(text, []) if t == typ]


@pytest.mark.parametrize("text,age", [
    # (pii9) age words as families (pii/rules.py AGE_FAMILY_BEFORE / AGE_FAMILY_AFTER, AGE_ROMANCE)
    ("Jenengku Wahyu, umurku 34 taun.", "34"),       # Javanese: a word for "my age" before the number
    ("Wasta abdi Euis, yuswa 61 taun.", "61"),       # Sundanese
    ("Mu namma lea Máret, mun lean 40 jagi boaris.", "40"),  # Northern Sami: "years old" after it
    ("Ti naganko ket Rommel, 36 ti tawenko.", "36"),  # Ilocano
    ("Аз съм на 45 години и работя в Пловдив.", "45"),  # Bulgarian
    ("Si Tåsi yu', 38 años.", "38"),                 # a Romance "years" after a comma
    ("Mi nomber ta Shurenska, mi tin 23 aña.", "23"),  # Papiamento
])
def test_ages_in_the_words_of_more_languages(text, age):
    assert _typed(text, "AGE") == [age]


@pytest.mark.parametrize("text", [
    "Преди 5 години смених работата.",   # Bulgarian "5 years ago": a duration
    "Fix bug 12 for 3 years now.",
])
def test_a_duration_in_those_words_is_no_age(text):
    assert _typed(text, "AGE") == []


@pytest.mark.parametrize("text,date", [
    # (pii9) birth words as families (pii/rules.py DOB_FAMILY), with the date layouts those languages write
    ("Jenengku Wahyu, lair tanggal 17 Agustus 1991.", "17 Agustus 1991"),
    ("Ow hanow yw Tamsin, genys 9 mis Gwynngala 1979.", "9 mis Gwynngala 1979"),
    ("Meniň adym Aýna, doglan senäm 05.03.1996.", "05.03.1996"),
    ("Mi a nase 02-11-2002 na Kòrsou.", "02-11-2002"),
])
def test_birth_dates_after_birth_words_of_more_languages(text, date):
    assert _typed(text, "DATE_OF_BIRTH") == [date]


def test_an_address_after_an_age_keeps_its_own_span():
    text = "Wasta abdi Euis, yuswa 61 taun, alamat Jl. Cihampelas No. 88, Bandung."
    s = text.index("61 taun")
    got = combine(text, [(s, len(text) - 1, "STREET_ADDRESS", 0.9)])
    assert [text[a:b] for a, b, t, _ in got if t == "AGE"] == ["61"]
    assert any(t == "STREET_ADDRESS" and "Cihampelas No. 88" in text[a:b] for a, b, t, _ in got)


@pytest.mark.parametrize("text", [
    # (pii9) an age or birth date as a key's value is a person's only in a record of a person
    'The tutorial has `users = [{"name": "Alice", "age": 30}]` and sorts by age.',   # a tutorial's stand-in
    '```json\n{"example": {"name": "Jane Doe", "age": 34}}\n```\n## Schema\n`age` is an integer',  # documentation
    "pets:\n  - name: Rex\n    species: dog\n    age: 9\n",                            # an animal's record
    '{"sku": "KB-1", "model": "mk2", "age": 3}',                                      # a thing's
])
def test_an_age_key_in_an_example_or_a_things_record_is_no_age(text):
    assert [t for _, _, t, _ in combine(text, []) if t in ("AGE", "PERSON", "DATE_OF_BIRTH")] == []


@pytest.mark.parametrize("text,age", [
    ('Please fix this record from support: {"name": "Tomasz Wierzbicki", "age": 42}', "42"),
    ("patient:\n  name: Joan Pratt\n  age: 67\n", "67"),
])
def test_an_age_key_in_a_pasted_record_of_a_person_is_an_age(text, age):
    assert _typed(text, "AGE") == [age]


@pytest.mark.parametrize("text,name", [
    # (pii9) a lower-case given name of the lexicon (pii/given_names.txt, from faker) where chat puts a name
    ("talked to priya about the offsite", "priya"),
    ("hey it's dwayne again, my login is broken", "dwayne"),
    ("Thanks ngozi!! see u sat", "ngozi"),
    ("can u ask marco if he still has my charger", "marco"),
])
def test_a_lower_case_given_name_where_chat_puts_a_name(text, name):
    assert _typed(text, "PERSON") == [name]


@pytest.mark.parametrize("text", [
    "ask around the office", "thanks again for the help", "tell will to come", "ping server twice", "cheers mate",
    "I'll ask maria_88 later",
])
def test_a_common_word_or_a_handle_in_those_places_is_no_name(text):
    assert _typed(text, "PERSON") == []


def test_the_given_name_lexicon_is_built_and_leaves_common_words_out():
    from router_extproc.pii.given_names import COMMON_WORDS, FILE, GIVEN_NAMES

    assert FILE.read_text().startswith("# faker ")  # the recipe line
    assert len(GIVEN_NAMES) > 10000 and {"priya", "ngozi", "tomás"} <= GIVEN_NAMES
    assert not (GIVEN_NAMES & COMMON_WORDS)


@pytest.mark.parametrize("text,name", [
    # (pii9) greetings of more languages (pii/rules.py GREETINGS_MORE): the name after them, not the greeting
    ("Lumela Palesa, ke dula Maseru.", "Palesa"),
    ("Kia ora Aroha, how was the hui?", "Aroha"),
])
def test_a_greeting_of_more_languages_opens_a_name_and_is_none(text, name):
    assert _people_in(text, [(0, text.index(",") , "PERSON", 0.9)]) == [name]


@pytest.mark.parametrize("text,name", [
    ("LOST: grey cat, answers to Mochi, last seen near the park.", "Mochi"),
    ("Vet note: Bella (spaniel, 9 years old), limping on the left fore.", "Bella"),
    ("We adopted a kitten called Pickle last week.", "Pickle"),
])
def test_a_pets_name_is_no_person(text, name):
    assert _people_in(text, [_piece(text, name)]) == []


@pytest.mark.parametrize("text,name", [
    ("Ask Sarah, the dog walker, about Tuesday.", "Sarah"),
    ("Good evening Yara, the lab results look fine.", "Yara"),
])
def test_a_person_near_an_animal_word_stays_a_person(text, name):
    assert _people_in(text, [_piece(text, name)]) == [name]


@pytest.mark.parametrize("text", [
    "Vet intake: patient Biscuit (beagle, 9 years), owner on file.",   # (pii9) an animal's age between commas
    "The company turns 50 this year, founded in 1976.",                # a thing turns an age
])
def test_a_things_or_an_animals_age_is_no_age(text):
    assert _typed(text, "AGE") == []


def test_a_form_age_field_stays_an_age_beside_a_relationship_word():
    assert _typed("Person 2: relationship: wife; age last birthday: 48; born 1973.", "AGE") == ["48"]


@pytest.mark.parametrize("text,login", [
    # (pii9) handles with a trailing underscore or digits for letters, after a word for a profile
    ("hey, forum name is quietkettle_ if u want to DM me", "quietkettle_"),
    ('Steam profile "n0rthw1nd_" - hours played 2,311.', "n0rthw1nd_"),
])
def test_handles_with_a_trailing_underscore_or_digits_for_letters(text, login):
    assert _typed(text, "USERNAME") == [login]


def test_a_birth_date_with_an_ordinal_word_for_the_day():
    assert _typed("Born on the twelfth of January, 1988 in Cork.", "DATE_OF_BIRTH") == ["twelfth of January, 1988"]


def test_a_wifi_qr_strings_network_is_not_its_key():
    assert _typed("WIFI:T:WPA;S:Kowalski_Home_5G;P:plum-orchard-4471;;", "PASSWORD") == ["plum-orchard-4471"]


def test_a_password_headings_label_is_no_password():
    assert _typed("Password requirements: at least 12 characters, one digit, one symbol.", "PASSWORD") == []


@pytest.mark.parametrize("text,found", [
    ("and the wifi passphrase is correct horse battery staple", ["correct horse battery staple"]),
    ("the passphrase is never sent over plain text.", []),
])
def test_a_passphrase_of_plain_words(text, found):
    assert _typed(text, "PASSWORD") == found


# (pii10) logins and passwords in the layouts of held_out_13's misses: "log in as", config keys, fediverse handles,
# profile paths; placeholders and bots' or organisations' handles are not values
@pytest.mark.parametrize("text,login", [
    ("Log in as tfarouk with Desert$Rose77 and check the invoice page.", "tfarouk"),
    ("  ✓ Logged in to github.com as vukasin-dev (keyring)", "vukasin-dev"),
    ("Signed in as pa.nhia.v but the dashboard still shows the old plan.", "pa.nhia.v"),
    ('config.toml for my bot:\n[discord]\nowner = "grimble_the_third"\n', "grimble_the_third"),
    ("dn: uid=jpetraitis,ou=people,dc=corp\ncn: Jonas", "jpetraitis"),
    ("Host build\n  HostName build.lan\n  User gorazd\n  IdentityFile ~/.ssh/id", "gorazd"),
    ("Follow me at @wrenfeather@mastodon.scot", "wrenfeather"),
    ("CURRICULUM VITAE\nTomasz Wierzbicki | Age: 42 | github.com/twierz_dev", "twierz_dev"),
])
def test_a_login_in_its_many_layouts(text, login):
    assert login in _typed(text, "USERNAME")


def test_log_in_as_takes_the_password_after_with():
    assert _typed("Log in as tfarouk with Desert$Rose77 and check.", "PASSWORD") == ["Desert$Rose77"]


def test_a_fediverse_handle_is_a_login_not_an_email_address():
    assert _typed("Follow me at @wrenfeather@mastodon.scot", "EMAIL_ADDRESS") == []


@pytest.mark.parametrize("text", [
    "Telegram: ping @dimitri_kov for the spare key",
    "dependabot[bot] opened 14 PRs; also @renovate-bot suggests the same bumps.",
    "Our Twitter account is 12 years old but the handle @northwindbakery keeps getting flagged.",
    "In the tutorial, log in as admin and change the default password.",
    "Follow @stripe for status updates.",
])
def test_no_login_from_a_verb_a_bot_an_organisation_or_a_role(text):
    assert not {"ping", "renovate-bot", "northwindbakery", "admin", "stripe"} & set(_typed(text, "USERNAME"))


@pytest.mark.parametrize("text", [
    "In the docs: `export DB_PASSWORD=<your password here>` and then `psql -U $DB_USER`.",
    "stringData:\n  username: <your-username>\n  password: your-password-here",
    "POSTGRES_PASSWORD: ${PG_PASSWORD}",
    "password: {{ db_pass }}",
])
def test_a_placeholder_is_no_password(text):
    assert _typed(text, "PASSWORD") == []


@pytest.mark.parametrize("text,pw", [
    ("Паролата ми за пощата е Vitosha_1980!, но не мога да вляза.", "Vitosha_1980!"),
    ("Мой пароль: Zima2024! не работает", "Zima2024!"),
    ("Wi-Fi for the cabin: network \"Pinecone\", passphrase mossy-trail-2025. The key box code is on the fridge.",
     "mossy-trail-2025"),
])
def test_a_password_after_the_credential_words_of_other_scripts_and_on_a_wifi_line(text, pw):
    assert pw in _typed(text, "PASSWORD")


def test_a_password_rule_in_another_script_is_no_password():
    assert _typed("Пароль должен быть не короче 8 символов.", "PASSWORD") == []


@pytest.mark.parametrize("text,address", [
    ("Казвам се Петър, живея на ул. Шипка 18, София.", "ул. Шипка 18, София"),
    ("Моя адреса: вул. Хрещатик 22, кв. 8, Київ. Допоможіть з листом.", "вул. Хрещатик 22, кв. 8, Київ"),
    ("Мекенжайым: Абай көшесі, 15-3, Алматы.", "Абай көшесі, 15-3, Алматы"),
    ("tá mé i mo chónaí ag 12 Bóthar na Trá, Gaillimh.", "12 Bóthar na Trá, Gaillimh"),
])
def test_an_address_in_cyrillic_and_with_celtic_street_words(text, address):
    assert address in _typed(text, "STREET_ADDRESS")


@pytest.mark.parametrize("text,piece", [
    ("the company's Impressum lists Hauptstraße 5 as HQ. Is that enough for GDPR?", "Hauptstraße 5"),
    ("The office is on the 3rd floor at 1 Infinite Loop, does Apple still give tours?", "1 Infinite Loop"),
    ('Has anyone read "84 Charing Cross Road"? I want a book like it.', "84 Charing Cross Road"),
    ("Scout roster:\n- Maya Chowdhury, 6\n- Leo Brandt, 7", "6\n- Leo Brandt"),
])
def test_no_address_from_a_business_a_title_or_a_roster(text, piece):
    s = text.index(piece)
    assert all(e <= s or b >= s + len(piece) for b, e, t, _ in combine(text, [(s, s + len(piece), "STREET_ADDRESS", 0.9)])
               if t == "STREET_ADDRESS")


def test_a_roster_line_is_a_person_and_an_age():
    text = "Scout roster (Beavers):\n- Finn O'Rourke, 7\n- Maya Chowdhury, 6\n- Leo Brandt, 7"
    assert _typed(text, "PERSON") == ["Finn O'Rourke", "Maya Chowdhury", "Leo Brandt"]
    assert _typed(text, "AGE") == ["7", "6", "7"]


def test_a_given_name_with_a_surname_in_capitals_is_one_person():
    text = "Choir list, tenors: Jean-Luc MOREAU, Kofi MENSAH, Étienne DUVAL. Basses still need a folder."
    assert _typed(text, "PERSON") == ["Jean-Luc MOREAU", "Kofi MENSAH", "Étienne DUVAL"]
    assert _typed("Read the README first, then the Python API docs.", "PERSON") == []


def test_a_form_splitting_a_name_over_fields_gives_one_person_span_a_field():
    # (labelling convention: each field's value is a PERSON, so redaction keeps the form's labels)
    text = "Fishing licence application. Surname: MCALLISTER  Forename(s): Duncan Rhys. Date of birth: 22/07/1968."
    assert _typed(text, "PERSON") == ["MCALLISTER", "Duncan Rhys"]


def test_a_trackers_reporter_field_holds_a_login_or_a_person():
    assert _typed("Bug report: XSS in search. Reporter: h4ckd0g_.", "USERNAME") == ["h4ckd0g_"]
    assert _typed("Reporter: Anna Berg", "USERNAME") == []


def test_an_applications_stand_in_account_is_no_login():
    text = "The deploy failed: connection string was postgres://app:Wint3r-Harb0ur-77@db.internal:5432/orders"
    assert _typed(text, "USERNAME") == []


# (pii11) records that carry a person's fields by name, and shells that show a login

def test_a_vcards_fn_and_n_lines_are_people_unless_the_card_is_a_companys():
    card = "BEGIN:VCARD\nVERSION:4.0\nN:Lindqvist;Maja;;;\nFN:Maja Lindqvist\nEND:VCARD"
    assert sorted(_typed(card, "PERSON")) == ["Lindqvist", "Maja", "Maja Lindqvist"]
    shop = "BEGIN:VCARD\nFN:Café Aurora\nORG:Café Aurora AB\nEND:VCARD"
    assert _typed(shop, "PERSON") == []


def test_an_icalendar_attendees_common_name_is_a_person():
    assert _typed("ATTENDEE;CN=Pekka Virtanen;RSVP=TRUE:mailto:pv@example.org", "PERSON") == ["Pekka Virtanen"]


def test_a_chat_exports_real_name_is_a_person_and_its_name_a_login_but_a_bots_are_neither():
    text = ('{"id": "U01", "name": "r.halvorsen", "real_name": "Rune Halvorsen", "is_bot": false}\n'
            '{"id": "B01", "name": "deploy.bot", "real_name": "Deploy Bot", "is_bot": true}')
    assert _typed(text, "PERSON") == ["Rune Halvorsen"]
    assert _typed(text, "USERNAME") == ["r.halvorsen"]
    assert _typed('{"name": "my_package", "version": "1.0.0"}', "USERNAME") == []


def test_an_hl7_pid_segment_gives_the_name_the_birth_date_and_the_address_and_nk1_the_next_of_kin():
    text = "PID|1||12345^^^H||BERG^ANNA^K||19700512|F|||Storgatan 3^^Umeå^^90325\nNK1|1|BERG^OLOF|SPO"
    got = {(t, text[s:e]) for s, e, t, _ in regex_entities(text)}
    assert {("PERSON", "BERG^ANNA^K"), ("DATE_OF_BIRTH", "19700512"), ("STREET_ADDRESS", "Storgatan 3^^Umeå^^90325"),
            ("PERSON", "BERG^OLOF")} <= got
    assert _typed(text, "STREET_ADDRESS") == ["Storgatan 3^^Umeå^^90325"]  # (components joined by "^", not prose)


@pytest.mark.parametrize("text, login", [
    ("$ whoami\nCORP\\mlind_a\n$ ls", "mlind_a"),
    ("jdoe2@devbox:~/src$ make", "jdoe2"),
    ("[kvirtanen@rocky ~]$ ls", "kvirtanen"),
    ("C:\\Users\\pvirtanen> dir", "pvirtanen"),
    ("kvirtanen is not in the sudoers file.  This incident will be reported.", "kvirtanen"),
    ("uid=1000(kvirtanen) gid=1000(kvirtanen) groups=1000(kvirtanen)", "kvirtanen"),
])
def test_a_shell_shows_its_login(text, login):
    assert set(_typed(text, "USERNAME")) == {login}


def test_a_shells_system_accounts_are_no_logins():
    assert _typed("root@server:~# apt update", "USERNAME") == []
    assert _typed("C:\\Users\\Public> dir", "USERNAME") == []


@pytest.mark.parametrize("text", [
    '{"user": "U03XYZ12", "text": "hi"}',
    "the pipeline logs in as renovate[bot] and opens the PR",
    "Follow @NASA and @WHO for updates",
    "POST /api/login returned 500",
    "Grand opening Saturday! Follow us on Instagram @kaffe.hornet for news.",
])
def test_member_ids_bots_acronym_handles_verbs_and_a_shops_own_handle_are_no_logins(text):
    assert _typed(text, "USERNAME") == []


def test_a_yaml_passphrase_of_words_is_a_password():
    assert _typed("credentials:\n  passphrase: lantern canyon velvet orbit", "PASSWORD") == ["lantern canyon velvet orbit"]


def _typed_with(text, typ, model_ents):
    return [text[s:e] for s, e, t, _ in combine(text, model_ents) if t == typ]


def test_an_intro_in_an_unnamed_language_gives_the_name_not_the_phrase():
    # the phrase: a capitalised word and lower-case words; then the name before a comma (the head's guess at the
    # phrase's first word is dropped)
    text = "Minem isemem Gölnar Safina, miña 33 yäş."
    assert _typed_with(text, "PERSON", [(0, 5, "PERSON", 0.9)]) == ["Gölnar Safina"]
    assert _typed_with("Maria asked Jonas Petraitis, then left.", "PERSON", [(0, 5, "PERSON", 0.9)])[0] == "Maria"
    # (pii20: the name itself is a person by the lexicon; the thanks is no intro phrase)
    assert not any("Thanks" in v for v in _typed("Thanks to Maria Lopez, we won.", "PERSON"))


@pytest.mark.parametrize("text, typ, value", [
    ("Mano vardas Rūta Kazlauskienė, man 52 metai, gyvenu Vilniuje.", "AGE", "52"),
    ("Kuv lub npe yog Nhia Lee Xiong, kuv muaj 27 xyoos.", "AGE", "27"),
    ("Volám sa Mária Horváthová, narodila som sa 14. marca 1981.", "DATE_OF_BIRTH", "14. marca 1981"),
    ("Mani sauc Anna Ozola, esmu dzimusi 1990. gada 3. maijā.", "DATE_OF_BIRTH", "1990. gada 3. maijā"),
])
def test_a_self_introduction_goes_on_to_the_age_or_the_birth_date(text, typ, value):
    assert _typed(text, typ) == [value]


def test_a_count_after_a_greeting_and_a_name_is_no_age():
    assert _typed("Hello Maria Lopez, we have 3 rooms available.", "AGE") == []


def test_an_insert_under_born_and_street_columns_gives_the_birth_date_and_the_address():
    text = "INSERT INTO members (name, born, street) VALUES ('Ana Petek', '1971-02-03', 'Glavna 4, 2000 Maribor');"
    got = {(t, text[s:e]) for s, e, t, _ in regex_entities(text)}
    assert {("DATE_OF_BIRTH", "1971-02-03"), ("STREET_ADDRESS", "Glavna 4, 2000 Maribor")} <= got


def test_a_date_with_spaced_dots_in_brackets_after_a_name_is_the_birth_date_not_an_age():
    text = "School trip: my son Luka (4. 6. 2013) will go. Signed, Mojca Novak."
    assert _typed_with(text, "DATE_OF_BIRTH", [(20, 24, "PERSON", 0.9)]) == ["4. 6. 2013"]
    assert _typed_with(text, "AGE", [(20, 24, "PERSON", 0.9)]) == []


def test_an_owner_or_a_tenant_before_a_full_name_is_a_person():
    assert _typed("Vet note: Rex (dog, 5 years), owner Hanna Lindgren, 4 Elm Row.", "PERSON") == ["Hanna Lindgren"]


def test_a_pasted_records_name_key_with_a_full_name_is_a_person_but_a_cars_is_not():
    text = '{"users":[{"name":"Oskar Lindgren","id":1},{"name":"Mira Saloniemi","id":2}]}'
    assert _typed(text, "PERSON") == ["Oskar Lindgren", "Mira Saloniemi"]
    assert _typed('{"name": "Seat Leon", "type": "car"}', "PERSON") == []


def test_a_hebrew_son_of_or_daughter_of_number_is_an_age():
    assert _typed("שמי דניאל כהן, בן 38.", "AGE") == ["38"]


def test_a_house_number_after_a_greeted_name_is_no_age():
    assert _typed("Terve Juha, osoitteeni on Mannerheimintie 12 B 7, 00100 Helsinki.", "AGE") == []


def _found(text: str) -> set[tuple[str, str]]:
    return {(t, text[s:e]) for s, e, t, _ in combine(text, [])}


def test_passwd_line_gives_login_full_name_and_home_directory():
    text = "jokafor:x:1012:1012:Jide Okafor,,,:/home/jokafor:/bin/zsh\nwhy can't he log in?"
    got = _found(text)
    assert ("PERSON", "Jide Okafor") in got
    assert sum(1 for t, v in got if t == "USERNAME" and v == "jokafor") == 1
    assert len([1 for s, e, t, _ in combine(text, []) if t == "USERNAME"]) == 2
    assert not any(v == "postgres" for _, v in _found("postgres:x:111:118:PostgreSQL administrator,,,:/var/lib/"
                                                      "postgresql:/bin/bash"))


def test_htpasswd_batch_mode_gives_login_and_password():
    got = _found("htpasswd -b /srv/auth/.htpasswd pmensah Gold!Coast44 then reload")
    assert ("USERNAME", "pmensah") in got and ("PASSWORD", "Gold!Coast44") in got


def test_sql_account_statements_give_login_and_password_but_not_placeholders():
    got = _found("CREATE USER 'acheng_ro'@'localhost' IDENTIFIED BY 'Lantern#204';")
    assert ("USERNAME", "acheng_ro") in got and ("PASSWORD", "Lantern#204") in got
    got = _found("ALTER ROLE billing_ops WITH PASSWORD 'Fjord-Mist77';")
    assert ("USERNAME", "billing_ops") in got and ("PASSWORD", "Fjord-Mist77") in got
    assert _found("ALTER ROLE app_user WITH PASSWORD 'changeme';") == set()


def test_php_define_of_database_login_and_password():
    text = "define( 'DB_USER', 'ravi_site' );\ndefine( 'DB_PASSWORD', 'Mango&Monsoon3' );"
    got = _found(text)
    assert ("USERNAME", "ravi_site") in got and ("PASSWORD", "Mango&Monsoon3") in got
    assert not any(t == "PASSWORD" for t, _ in _found("the sample has define( 'DB_PASSWORD', 'password_here' );"))


def test_pgpass_line_gives_login_and_password():
    got = _found("cat ~/.pgpass\ndb.lan:5432:ledger:tkowalski:Wisla_Krakow9")
    assert ("USERNAME", "tkowalski") in got and ("PASSWORD", "Wisla_Krakow9") in got


def test_last_rows_and_auth_log_lines_give_logins_not_pseudo_users():
    got = _found("$ last\nlnovak   pts/1   10.0.0.7   Tue 09:12   still logged in\nreboot   system boot  6.1.0")
    assert ("USERNAME", "lnovak") in got and not any(v == "reboot" for _, v in got)
    got = _found("sshd[811]: Accepted publickey for mbanda from 10.1.1.4 port 5022 ssh2\n"
                 "sudo:   mbanda : TTY=pts/0 ; PWD=/var/www ; USER=root ; COMMAND=/bin/ls")
    assert ("USERNAME", "mbanda") in got and not any(t == "PASSWORD" for t, _ in got)


def test_chpasswd_pipe_gives_login_and_password():
    got = _found("echo 'hsuzuki:Cedar+Path61' | sudo chpasswd")
    assert ("USERNAME", "hsuzuki") in got and ("PASSWORD", "Cedar+Path61") in got


def test_name_and_age_clause_of_an_introduction_is_not_an_address():
    from router_extproc.signals.pii import _address_shaped

    assert not _address_shaped("Tomas Berg, mam 41 lat")
    assert _address_shaped("Prinsengracht 263, 1016 GV Amsterdam")


def test_a_business_name_before_an_address_makes_it_the_business_address():
    from router_extproc.pii.rules import business_address

    text = "Viewing at Lindqvist Motors, 14 Harbour Road, Gdynia."
    assert business_address(text, text.index("14"), text.index(", Gdynia"))
    text = "Please post it to Ana Silva, 14 Harbour Road, Gdynia."
    assert not business_address(text, text.index("14"), text.index(", Gdynia"))


def test_json_record_name_parts_and_address_line():
    text = '{"name": [{"family": "Mensah", "given": ["Efua"]}], "address": [{"line": ["9 Kings Way"]}]}'
    got = _found(text)
    assert {("PERSON", "Mensah"), ("PERSON", "Efua"), ("STREET_ADDRESS", "9 Kings Way")} <= got


def test_gedcom_name_and_birth_date():
    got = _found("0 @I3@ INDI\n1 NAME Efua /Mensah/\n1 BIRT\n2 DATE 4 JUL 1950\n2 PLAC Cape Coast")
    assert ("PERSON", "Efua /Mensah/") in got and ("DATE_OF_BIRTH", "4 JUL 1950") in got


def test_paths_and_placeholders_with_a_full_stop_are_no_passwords():
    from router_extproc.pii.rules import _password_ok, placeholder

    assert not _password_ok("/srv/app") and placeholder("xxxxxx.") and not placeholder("Quartz.9")


def test_intro_age_may_open_the_next_sentence_or_end_the_clause():
    got = _found("Oru nimi Hemi Walker. Oru 52 tau. Help me write to the council.")
    assert ("AGE", "52") in got
    got = _found("Oru nimi Hemi Walker, oru ni ta ko tau 61. Help me write to the council.")
    assert ("AGE", "61") in got
    assert not any(t == "AGE" for t, _ in _found("Oru nimi Hemi Walker. Oru 3 rooms booked."))


# ---------------------------------------------------------------- (pii13) age and sex shorthand
def test_age_written_with_sex_is_an_age_but_a_count_or_a_code_is_not():
    for text, age in [("ER note: 71F, fell at home, on apixaban", "71"), ("I'm 24M and my flatmate never cleans", "24"),
                      ("Asking for my brother [M19] who got scammed", "19"), ("Bio: F/33, loves hiking", "33"),
                      ("triage 59yoM with syncope", "59"), ("Unit 3 brought in a 4 y.o. F with a burn", "4"),
                      ("My partner (30NB) and I are moving", "30")]:
        assert ("AGE", age) in _found(text), text
    for text in ["a 47F capacitor code on the board", "keep it below 40F overnight", "the table has 25M rows, 12M of them",
                 "we ordered M8 bolts and an F-35 model kit"]:
        assert not any(t == "AGE" for t, _ in _found(text)), text


# ---------------------------------------------------------------- (pii13) command-line logins and passwords
def test_command_line_logins_and_passwords_in_other_flag_styles():
    cases = [
        (r"runas /user:ACME\hmaalouf cmd", {("USERNAME", "hmaalouf")}),
        ("xfreerdp /v:host /u:okeita /p:'Bamako#Niger3'", {("USERNAME", "okeita"), ("PASSWORD", "Bamako#Niger3")}),
        ("smbclient //srv/docs -U pdiallo%Conakry_77", {("USERNAME", "pdiallo"), ("PASSWORD", "Conakry_77")}),
        ("lftp -u vtran,Hue.River9 ftp://mirror", {("USERNAME", "vtran"), ("PASSWORD", "Hue.River9")}),
        ("sqlcmd -S db -U kmensah -P Accra+Osu4", {("USERNAME", "kmensah"), ("PASSWORD", "Accra+Osu4")}),
        ("sqlplus jdoe_rpt/Winter#Oak5@//db:1521/X", {("USERNAME", "jdoe_rpt"), ("PASSWORD", "Winter#Oak5")}),
        ("net user lnaidoo Durban!Bay6 /add", {("USERNAME", "lnaidoo"), ("PASSWORD", "Durban!Bay6")}),
        ("htpasswd -b /etc/.htpasswd ssato Nara-Deer8", {("USERNAME", "ssato"), ("PASSWORD", "Nara-Deer8")}),
        ("/ppp secret add name=mbeki password=Soweto^88", {("USERNAME", "mbeki")}),
        ("<Login><User>rgarcia</User><Pass>Sevilla=12x</Pass></Login>", {("USERNAME", "rgarcia"),
                                                                          ("PASSWORD", "Sevilla=12x")}),
        ("ldapwhoami -x -D uid=ablack,dc=x -w 'Slate+Rock2'", {("PASSWORD", "Slate+Rock2")}),
        ("tool --username ichen --password Taipei_101x", {("USERNAME", "ichen"), ("PASSWORD", "Taipei_101x")}),
    ]
    for text, want in cases:
        assert want <= _found(text), text
    for text in ["pip install -U requests", "diff -U 3 a b", "runas /user:Administrator cmd", "net user /add",
                 "htpasswd -b .htpasswd USER $PASS", "<password>${env.NEXUS_PASS}</password>"]:
        assert not any(t in ("USERNAME", "PASSWORD") for t, _ in _found(text)), text


# ---------------------------------------------------------------- (pii14) credentials
def test_net_use_takes_the_positional_argument_after_the_login_as_the_password():
    got = _found(r"net use Z: \\nas2\media /user:HOME\tokoro Sapporo%Snow4 /persistent:no")
    assert {("USERNAME", "tokoro"), ("PASSWORD", "Sapporo%Snow4")} <= got
    # "*" asks for the password at the prompt: nothing to take
    assert not any(t == "PASSWORD" for t, _ in _found(r"net use Z: \\nas2\media /user:tokoro * /persistent:no"))


def test_a_quoted_password_runs_to_its_closing_quote():
    got = _found('<user username="mvisser" password="Edam;Rond42" roles="admin-gui"/>')
    assert ("PASSWORD", "Edam;Rond42") in got and ("PASSWORD", "Edam") not in got


def test_default_accounts_and_logins_beside_a_stand_in_password_are_no_ones():
    for text in ['<user username="tomcat" password="tomcat" roles="tomcat"/>',
                 'The sample has <user username="role1" password="<must-be-changed>" roles="role1"/>',
                 '<user username="dvorak_k" password="<must-be-changed>" roles="manager-gui"/>',
                 "then run `sudo -u postgres createdb shop`"]:
        assert not any(t == "USERNAME" for t, _ in _found(text)), text


def test_a_state_word_or_a_flag_is_no_login():
    for text in ['"The handle is invalid" again after the reboot', "that username is taken, pick another",
                 'echo "$TOKEN" | docker login ghcr.io -u hdlamini --password-stdin']:
        assert not any(t == "USERNAME" and v in ("invalid", "taken", "password-stdin") for t, v in _found(text)), text


def test_a_login_that_is_a_domain_is_a_site_unless_the_site_hosts_the_handle():
    assert ("USERNAME", "lindiwe-m") in _found("my Bluesky handle is @lindiwe-m.bsky.social now")
    assert not any(t == "USERNAME" for t, _ in _found("The WHO is @who.int on Bluesky and the BBC is @bbc.co.uk"))
    assert not any(t == "USERNAME" and "." in v for t, v in _found("docker login harbor.corp.internal -u kmoyo"))


def test_logins_in_yaml_keys_eap_identities_matrix_ids_mentions_and_gamer_tags():
    cases = [("account:\n  username: pdlamini\n  email_opt_in: false", "pdlamini"),
             ('network={\n  ssid="campus"\n  identity="r.mwale"\n  password="Zomba!Plateau3"\n}', "r.mwale"),
             ("ping me on Matrix, I'm @thandeka.n:matrix.example.net", "thandeka.n"),
             ("that's Bongani, he's @bmthembu in the team chat", "bmthembu"),
             ("admins please kick night_rider77 from the lobby", "night_rider77"),
             ("I keep losing against xX_kestrel_Xx in ranked", "xX_kestrel_Xx")]
    for text, login in cases:
        assert ("USERNAME", login) in _found(text), text
    for text in ["we ban user_agent strings that look like scrapers", "benchmark against numpy_1 and torch"]:
        assert not any(t == "USERNAME" for t, _ in _found(text)), text


def test_network_device_type_0_secrets_and_dotted_capitalised_passwords():
    assert ("PASSWORD", "Lusaka#Cairo8") in _found("username bchanda privilege 15 secret 0 Lusaka#Cairo8")
    assert ("PASSWORD", "Kariba.Dam72") in _found("creds file:\nusername=mzulu\npassword=Kariba.Dam72\n")
    assert not any(t == "PASSWORD" for t, _ in _found("DB_PASSWORD = settings.DB_PASSWORD"))
    assert not any(t == "PASSWORD" for t, _ in _found("run `tool login --user me --password <password>` first"))


# ---------------------------------------------------------------- (pii14) addresses in more national layouts
@pytest.mark.parametrize("text, address", [
    ("택배 주소: 부산광역시 해운대구 해운대로 570, 101동 502호 입니다", "부산광역시 해운대구 해운대로 570, 101동 502호"),
    ("Teslimat: Atatürk Cad. No: 45 D: 3, Alsancak, Konak/İzmir lütfen", "Atatürk Cad. No: 45 D: 3, Alsancak, Konak/İzmir"),
    ("Địa chỉ: Số 8 ngõ 15 đường Láng, Đống Đa, Hà Nội nhé", "Số 8 ngõ 15 đường Láng, Đống Đa, Hà Nội"),
    ("Mándalo a Av. Juárez #45, Col. Roma Norte, 06700 Ciudad de México por favor",
     "Av. Juárez #45, Col. Roma Norte, 06700 Ciudad de México"),
    ("Deliver to Purok 5, Brgy. Mabini, Tanauan, Batangas before noon", "Purok 5, Brgy. Mabini, Tanauan, Batangas"),
    ("I rent the flat above the bakery, 9 Rue des Lilas, 69002 Lyon and the post never arrives",
     "9 Rue des Lilas, 69002 Lyon"),
])
def test_addresses_in_korean_turkish_vietnamese_mexican_and_philippine_layouts(text, address):
    assert ("STREET_ADDRESS", address) in _found(text)


def test_a_street_or_a_business_is_no_person_and_a_forms_label_is_no_name():
    got = _found("Teslimat: Atatürk Cad. No: 45 D: 3, Alsancak, Konak/İzmir")
    assert not any(t == "PERSON" for t, _ in got)
    assert not any(t == "PERSON" for t, _ in combine_head("Pizzeria Da Lucio is open late", "Lucio"))
    assert not any(t == "PERSON" for t, _ in combine_head("Kargo adresi: Bursa", "Kargo"))


def test_a_middle_name_the_head_missed_joins_the_two_parts():
    text = "Nama saya Budi Santoso Wirawan, umur 40"
    i, j = text.index("Budi"), text.index("Wirawan")
    got = combine(text, [(i, i + 4, "PERSON", 0.9), (j, j + 7, "PERSON", 0.9)])
    assert ("PERSON", "Budi Santoso Wirawan") in {(t, text[s:e]) for s, e, t, _ in got}


def combine_head(text: str, name: str) -> set[tuple[str, str]]:
    """The rules with the head's PERSON span on `name`."""
    i = text.index(name)
    return {(t, text[s:e]) for s, e, t, _ in combine(text, [(i, i + len(name), "PERSON", 0.9)])}


# ---------------------------------------------------------------- (pii14) introductions in unlisted languages
@pytest.mark.parametrize("text, name, detail", [
    ("Ko'olo ti Marama Tuhiwai, 41 tau ahau. Help me write a letter.", "Marama Tuhiwai", ("AGE", "41")),
    ("N kɔɔ ye Fanta Keita ye, n bɛ san 36 bɔ. Help with my letter.", "Fanta Keita", ("AGE", "36")),
    ("U kyrteng jong nga u Iaineh Syiem, nga la 29 snem. Please help.", "Iaineh Syiem", ("AGE", "29")),
    ("Goa ê miâ sī Ông Bí-hôa, kin-nî 47 hòe. Please help.", "Ông Bí-hôa", ("AGE", "47")),
    ("Yi magac Leyla Omar Ali kinni, 38 liggida. Help me.", "Leyla Omar Ali", ("AGE", "38")),
])
def test_an_introduction_in_an_unlisted_language_gives_the_name_and_the_age(text, name, detail):
    got = _found(text)
    assert ("PERSON", name) in got and detail in got, got


def test_a_form_label_or_a_house_number_is_no_introductions_age():
    got = _found("Room booking form: lead guest Tomas Brandt, party of 6, late arrival")
    assert not any(t == "AGE" for t, _ in got)
    got = _found("Register row: OKAFOR, Ngozi; 22 Mill Lane, Leeds LS6 2AB; member since 2011")
    assert ("AGE", "22") not in got
    got = _found("Saluti Anna Borg, l-indirizz tiegħi huwa 7, Triq San Pawl, Rabat RBT 1010. Grazzi")
    assert ("AGE", "7") not in got


# ---------------------------------------------------------------- (pii14) ages people turn
@pytest.mark.parametrize("text, age", [
    ("my daughter Ayasha is 7 and scared of the dentist", "7"), ("for Nana Ruth who turns 95 tomorrow", "95"),
    ("Sipho, now that you turn 40 next week, we planned a braai", "40"), ("she turned 31 in March", "31"),
    ("the reference says he was 19 when he joined", "19"), ("quote: smoker, age next birthday 56, term 10", "56"),
    ("Triage: M, 67y, chest pain since noon", "67"),
])
def test_an_age_a_person_is_or_turns(text, age):
    assert ("AGE", age) in _found(text)


def test_a_town_named_like_a_tutorials_stand_in_keeps_the_record_a_persons():
    got = _found("Name: Tjala\nSurname: Ross-Nampitjin\nAge: 19\nHome: 3 Gap Road, Alice Springs NT 0870")
    assert ("AGE", "19") in got
    assert not any(t == "AGE" for t, _ in _found('{"name": "Alice", "age": 30}'))


def test_turning_a_thing_is_no_age():
    for text in ["turn 90 degrees left at the lights", "you turn 3 pages back", "the company turns 50 this year"]:
        assert not any(t == "AGE" for t, _ in _found(text)), text


# ---------------------------------------------------------------- (pii14) names: languages, clitics, Surname, Given
def test_a_language_or_a_verb_with_its_clitic_is_no_person_but_a_chinese_given_name_is():
    assert not any(t == "PERSON" for t, _ in combine_head("Please translate this into Xhosa for my aunt", "Xhosa"))
    assert not any(t == "PERSON" for t, _ in combine_head("Merci. Dites-moi si la lettre est claire.", "Dites-moi"))
    assert ("PERSON", "Wong Siu-ming") in combine_head("Our tutor is Wong Siu-ming from Kowloon", "Wong Siu-ming")


def test_surname_comma_given_in_a_quoted_or_braced_field_is_one_person():
    text = '[Black "Fernández, Lucía"]\n[Result "1-0"]'
    assert ("PERSON", "Fernández, Lucía") in combine_head(text, "Fernández")
    text = "author = {Ngata, Hemi and Walsh, Orla}"
    assert ("PERSON", "Walsh, Orla") in combine_head(text, "Walsh")


def test_ages_in_the_romance_germanic_finnish_and_nguni_families():
    for text, age in [("Me ciamo Toni Furlan, go 64 ani e vivo a Mestre", "64"), ("Ciao, sun Piero e g'ho 58 ann", "58"),
                      ("Mi chamo Zé, tengo 33 anhos", "33"), ("Ich bin da Sepp und bin 67 Joar oid", "67"),
                      ("Mie olen 52 vuotta vanha", "52"), ("Igama lami nguThemba, ngileminyaka engu-36", "36")]:
        assert ("AGE", age) in _found(text), text
    for text in ["a 25 year old port and a 12 year old malt", "ho comprato 3 anni fa", "per 10 anni"]:
        assert not any(t == "AGE" for t, _ in _found(text)), text


def test_an_address_span_loses_the_clauses_words_and_a_date_or_an_age_clause_is_no_address():
    def head_address(text, part):
        i = text.index(part)
        return {(t, text[s:e]) for s, e, t, _ in combine(text, [(i, i + len(part), "STREET_ADDRESS", 0.9)])}
    got = head_address("we met at the pub at 12 Quay Street, ordered chips and left", "12 Quay Street, ordered chips")
    assert ("STREET_ADDRESS", "12 Quay Street") in got
    assert not any(t == "STREET_ADDRESS" for t, _ in head_address("ipinanganak ako han Agosto 3, 1990", "han Agosto 3"))
    assert not any(t == "STREET_ADDRESS" for t, _ in head_address("I'm Dana Petrova, 31, from Varna", "31, from Varna"))
    assert ("STREET_ADDRESS", "via Roma 12, 20121 Milano") in head_address("abito in via Roma 12, 20121 Milano",
                                                                           "via Roma 12, 20121 Milano")


def test_names_on_labels_in_chat_openers_and_in_certificate_subjects():
    for text, name in [("Deliver to: Mele Tupou, 14 Reef Road, Nukuʻalofa", "Mele Tupou"),
                       ("Attn: Dagny Holm", "Dagny Holm"), ("Name on the buzzer Ferrante.", "Ferrante"),
                       ("Tomasz here, 34, from Łódź. Any tips?", "Tomasz"),
                       ("subject=C = NZ, O = Home, CN = Aroha Ngata", "Aroha Ngata")]:
        assert ("PERSON", name) in _found(text), text
    assert ("AGE", "34") in _found("Tomasz here, 34, from Łódź. Any tips?")
    for text in ["Same here, the build fails", "subject=CN = api.example.com", "Support here, how can we help?"]:
        assert not any(t == "PERSON" for t, _ in _found(text)), text


def test_the_account_an_admin_command_acts_on_and_xx_tags_and_short_member_ids():
    got = _found('sudo useradd -m -c "Lena Hart" -s /bin/zsh lhart')
    assert ("USERNAME", "lhart") in got
    assert ("USERNAME", "k_mensah") in _found("rabbitmqctl set_user_tags k_mensah monitoring")
    assert ("USERNAME", "xX_tundra_Xx") in _found('ops.json: [{"name": "xX_tundra_Xx", "level": 4}]')
    assert not any(t == "USERNAME" for t, _ in _found("sudo useradd -r -s /usr/sbin/nologin node_exporter"))
    assert not any(t == "USERNAME" for t, _ in _found('{"user": "U07QZ", "user_profile": {"real_name": "Ana Silva"}}'))


def test_an_accounts_comment_field_gives_the_full_name():
    got = _found('sudo useradd -m -c "Wiremu Tane" -s /bin/bash wtane')
    assert {("PERSON", "Wiremu Tane"), ("USERNAME", "wtane")} <= got
    assert not any(t in ("PERSON", "USERNAME") for t, _ in _found('sudo usermod -c "Build Bot" cibuild'))


def test_a_birth_date_with_the_month_first_in_any_language():
    assert ("DATE_OF_BIRTH", "Agosto 14, 1979") in _found("Ako si Liza, natawo ako sadtong Agosto 14, 1979.")


def test_an_intro_phrase_may_open_with_a_word_that_is_a_given_name_elsewhere():
    text = "Nina ewe ndi Hlulani Mabunda, ndzi tshama eGiyani."
    assert ("PERSON", "Hlulani Mabunda") in combine_head(text, "Nina")
    assert ("PERSON", "Nina") not in combine_head(text, "Nina")
    text = "Maria och Jonas Berg, välkomna!"  # (two people joined by a conjunction)
    assert ("PERSON", "Maria") in combine_head(text, "Maria")


def test_a_street_without_a_number_is_no_address_unless_its_number_stands_just_before_it():
    text = "the 7 bus runs along Nelson Mandela Blvd to the station every 10 minutes"
    i = text.index("Nelson")
    got = combine(text, [(i, i + len("Nelson Mandela Blvd"), "STREET_ADDRESS", 0.9)])
    assert not any(t == "STREET_ADDRESS" for _, _, t, _ in got)
    text = "Party at 22 Protea Road, Kensington, Johannesburg on Sunday"
    i = text.index("Protea")
    got = combine(text, [(i, text.index(" on Sunday"), "STREET_ADDRESS", 0.9)])
    assert ("STREET_ADDRESS", "22 Protea Road, Kensington, Johannesburg") in {(t, text[s:e]) for s, e, t, _ in got}


def test_a_register_surname_in_capitals_then_the_given_name_is_a_person():
    """(pii16) "NOWAK, Wojciech": a surname in capitals, a comma, a given name of the lexicon."""
    text = "Attendees: NOWAK, Wojciech; OKAFOR, Chinedu.\nNOTE, Please read. WARNING, Mark the box."
    got = {text[s:e] for s, e, t, _ in combine(text, []) if t == "PERSON"}
    assert got == {"NOWAK, Wojciech", "OKAFOR, Chinedu"}


# ---------------------------------------------------------------- (pii17) names and addresses in scripts of their own
@pytest.mark.parametrize("text, want", [
    ("快递单：收货人 李建国，地址 江苏省南京市鼓楼区中山路128号2单元301室，谢谢",
     {("PERSON", "李建国"), ("STREET_ADDRESS", "江苏省南京市鼓楼区中山路128号2单元301室")}),
    ("氏名：高橋 健太\n住所：〒060-0042 北海道札幌市中央区大通西5-11-3",
     {("PERSON", "高橋 健太"), ("STREET_ADDRESS", "〒060-0042 北海道札幌市中央区大通西5-11-3")}),
    ("저는 최유진이고 서울에서 일합니다", {("PERSON", "최유진")}),
    ("Λέγομαι Γιώργος Νικολάου και μένω στην Πατησίων 104, 112 57 Αθήνα.",
     {("PERSON", "Γιώργος Νικολάου"), ("STREET_ADDRESS", "Πατησίων 104, 112 57 Αθήνα")}),
    ("اینجانب علی رضایی ساکن شیراز، خیابان زند، کوچه ۱۲، پلاک ۸ هستم",
     {("PERSON", "علی رضایی"), ("STREET_ADDRESS", "شیراز، خیابان زند، کوچه ۱۲، پلاک ۸")}),
    ("العنوان: شارع الملك فهد، عمارة 7، شقة 14، الرياض", {("STREET_ADDRESS", "شارع الملك فهد، عمارة 7، شقة 14، الرياض")}),
    ("العنوان: شارع الأمير سلطان 27، حي الروضة، جدة", {("STREET_ADDRESS", "شارع الأمير سلطان 27، حي الروضة، جدة")}),
    ("عزيزي السيد فيصل بن حمدان العتيبي، نؤكد استلام طلبكم", {("PERSON", "فيصل بن حمدان العتيبي")}),
    ("الدكتورة نورة بنت سعد القحطاني تعمل هنا", {("PERSON", "نورة بنت سعد القحطاني")}),
    ("Я, Соколов Дмитрий Андреевич, прошу. Адрес: г. Самара, ул. Ленина, д. 5, кв. 12",
     {("PERSON", "Соколов Дмитрий Андреевич"), ("STREET_ADDRESS", "г. Самара, ул. Ленина, д. 5, кв. 12")}),
    ("पता: मकान नं. 14, गली नं. 2, करोल बाग, दिल्ली", {("STREET_ADDRESS", "मकान नं. 14, गली नं. 2, करोल बाग, दिल्ली")}),
    ("ਮੇਰਾ ਨਾਮ ਗੁਰਪ੍ਰੀਤ ਸਿੰਘ ਹੈ", {("PERSON", "ਗੁਰਪ੍ਰੀਤ ਸਿੰਘ")}),
])
def test_names_and_addresses_in_their_own_scripts(text, want):
    assert want <= {(t, text[s:e]) for s, e, t, _ in combine(text, [])}


@pytest.mark.parametrize("text", [
    "저는 대학생이고 서울에 살아요",  # a student, not a name
    "东京和上海的人口都超过两千万，路很多",  # cities, no address layout
    "Версия 3.12, ул. не указана",
    "Helló, Help me with this regex",
    "ركنت في شارع الملك فهد 3 ساعات، حي جميل",
    "ذهب السيد إلى البيت", "قال السيد الرئيس إن الاجتماع انتهى",  # a title without a name after it  # hours parked on a street: the number is no house's
])
def test_script_look_alikes_carry_no_name_or_address(text):
    assert not {t for _, _, t, _ in combine(text, []) if t in ("PERSON", "STREET_ADDRESS")}


@pytest.mark.parametrize("word", ["Necesito", "Pode", "Vorrei", "Помоги"])
def test_a_request_verb_opening_a_message_is_no_name(word):
    text = f"Hola! {word} ayuda con esto"
    assert ("PERSON", word) not in {(t, text[s:e]) for s, e, t, _ in combine(text, [(6, 6 + len(word), "PERSON", 0.9)])}


# ---------------------------------------------------------------- (pii17) ages and birth dates in more languages
@pytest.mark.parametrize("text, want", [
    ("Firma mi sobrino Tomás Aguirre, de 9 años, con permiso", ("AGE", "9")),
    ("Babam için form dolduruyorum. Yaşı 72, adresi eksik", ("AGE", "72")),
    ("Minha tia faz aniversário: ela faz 90 anos amanhã", ("AGE", "90")),
    ("Ele nasceu em 21/03/1950 em Recife", ("DATE_OF_BIRTH", "21/03/1950")),
    ("生年月日：1988年11月3日", ("DATE_OF_BIRTH", "1988年11月3日")),
    ("山本さん（満41歳）の書類", ("AGE", "41")),
    ("저는 33살이고 회사원입니다", ("AGE", "33")),
    ("متولد ۱۳۷۲/۰۳/۱۵ هستم", ("DATE_OF_BIRTH", "۱۳۷۲/۰۳/۱۵")),
    ("When I was 11, my uncle taught me chess", ("AGE", "11")),
    ("ang lola ko, 81 na siya ngayon", ("AGE", "81")),
    ("ਮੇਰੀ ਉਮਰ 52 ਸਾਲ ਹੈ", ("AGE", "52")),
    ("मेरे दादाजी 88 वर्ष के हैं", ("AGE", "88")),
])
def test_ages_and_birth_dates_in_more_languages(text, want):
    assert want in {(t, text[s:e]) for s, e, t, _ in combine(text, [])}


def test_an_age_in_parentheses_after_a_name_in_other_languages():
    text = "w imieniu córki Zofia Wrona (11 lat), uczennicy"
    a = text.index("Zofia")
    assert ("AGE", "11") in {(t, text[s:e]) for s, e, t, _ in combine(text, [(a, a + 11, "PERSON", 0.9)])}


@pytest.mark.parametrize("text", [
    "un contrato, de 2 años, firmado en Lima",  # a thing's duration after a comma
    "Faz 5 anos que moro aqui. Ele faz 10 anos que trabalha lá.",  # years ago
    "I was 14 minutes late to the stand-up",
    "この建物は築30年です",  # a building's years are 年, not 歳
])
def test_durations_are_no_ages(text):
    assert not any(t == "AGE" for _, _, t, _ in combine(text, []))


def test_a_role_word_beside_a_given_name_is_that_persons_login():
    # pii19: "reports_ro_anja" is Anja's read-only account; "app_rw" and "etl-svc" stay roles
    text = "mysql -u reports_ro_anja -p sales"
    assert ("USERNAME", "reports_ro_anja") in {(t, text[s:e]) for s, e, t, _ in regex_entities(text)}
    for text in ["psql -h db01 -U app_rw -d orders", "psql -h db01 -U etl-svc -d warehouse"]:
        assert not any(t == "USERNAME" for _, _, t, _ in regex_entities(text)), text


def test_a_login_made_from_a_named_persons_full_name_is_their_login():
    # pii19: directories make logins of names (initial + surname, given.surname, ...); beside that person's name in
    # the same message the word is their login, with or without trailing digits
    text = "Benedikt Aigner is leaving Friday. His account is baigner, and ydemirci62 belongs to Yusuf Demirci."
    people = [(text.index(n), text.index(n) + len(n), "PERSON", 0.9) for n in ("Benedikt Aigner", "Yusuf Demirci")]
    got = {(t, text[s:e]) for s, e, t, _ in combine(text, people)}
    assert {("USERNAME", "baigner"), ("USERNAME", "ydemirci62")} <= got
    # diacritics fold ("Linh Trịnh" -> ltrinh); the same word in an e-mail address or a URL is no login of its own
    text = "ltrinh signed. Linh Trịnh, linh.trinh@corp.example, https://example.org/linh.trinh"
    got = {(t, text[s:e]) for s, e, t, _ in combine(text, [(15, 25, "PERSON", 0.9)])}
    assert ("USERNAME", "ltrinh") in got and not any(v == "linh.trinh" for _, v in got)
    # without the person in the message, a lower-case word is no login; nor is a word a short form spells
    text = "His account is baigner, per the ticket."
    assert not any(t == "USERNAME" for _, _, t, _ in combine(text, []))
    text = "Mark Smith marks the exams on Friday."
    assert not any(t == "USERNAME" for _, _, t, _ in combine(text, [(0, 10, "PERSON", 0.9)]))


def test_a_connection_strings_password_is_a_persons_password_when_the_login_is_a_persons():
    # pii19: "://okonkwo_e:Onitsha.Market7@" is a person's login and password; "://app:...@", "://svc_billing:...@"
    # and a token's fixed user ("://oauth2:glpat-...@") hold a service's secret
    for text, typ in [("psql \"postgresql://okonkwo_e:Onitsha.Market7@pg-replica:5432/ledger\"", "PASSWORD"),
                      ("DATABASE_URL=mongodb://shelleycook:0YzgdW4tHI@db-65.example.com:27017/x", "PASSWORD"),
                      ("DATABASE_URL=postgres://app:Wint3r-Harb0ur-77@db.internal:5432/orders", "SECRET"),
                      ("url = postgres://svc_billing:nT4!vQ9zLm2#@db:5432/billing", "SECRET"),
                      ("git clone https://oauth2:glpat-Rw4Ys6Nb1Hc5Je3Gf2Ua@gitlab.com/team/x.git", "SECRET")]:
        got = {t for s, e, t, _ in regex_entities(text) if t in ("PASSWORD", "SECRET")}
        assert got == {typ}, text


def _rule_pairs(text):
    return {(t, text[s:e]) for s, e, t, _ in regex_entities(text)}


@pytest.mark.parametrize("text, login, password", [
    ("hey can you log into the vendor portal for me? it's tlevi.procure / Carmel&Wadi54, I'm stuck",
     "tlevi.procure", "Carmel&Wadi54"),
    ("Test account for the QA environment that the vendor shared: qa_harlow_vendor / Blu3Heron$2026. It works",
     "qa_harlow_vendor", "Blu3Heron$2026"),
    ("user/pass for the NAS is jdoe77 / Kestrel!88 btw", "jdoe77", "Kestrel!88"),
])
def test_a_login_and_password_joined_by_a_slash_in_chat_prose(text, login, password):
    # pii19: "X / Y" a few words after a word for logging in or an account, the password shaped like one
    assert {("USERNAME", login), ("PASSWORD", password)} <= _rule_pairs(text)


def test_a_slash_between_words_or_numbers_is_no_credential_pair():
    for text in ["Log in at the portal; see docs / README2024 for the account setup",
                 "my account ratio is 3 / 4 now", "login page: home / about / contact"]:
        assert not any(t in ("USERNAME", "PASSWORD") for t, _ in _rule_pairs(text)), text


@pytest.mark.parametrize("text, password", [
    ("[09:14] pixelmoth: password on the sticker is wrong\n[09:15] gregor_k: it's Hazelnut-Ferry-19 now", "Hazelnut-Ferry-19"),
    ("[21:04] <kb_greg> hold reset 10s, then default creds\n[21:06] <nj_77> did that, set it to Nas4ever!Bramble now",
     "Nas4ever!Bramble"),
    ("[18:02] Sam: whats the wifi pw\n[18:03] Ola: kittycat!2019", "kittycat!2019"),
])
def test_the_answer_on_the_line_after_a_password_question_is_a_password(text, password):
    # pii19: the line after (or the one after that) a line that asks for or speaks of a password
    assert ("PASSWORD", password) in _rule_pairs(text)


def test_no_password_from_the_lines_after_a_password_word_without_one():
    for text in ["Password policy: at least 12 characters.\nBuild v2.4.1 ran on Win11Pro machines with SHA256Sum.",
                 "Guest Wi-Fi\nNetwork: TP-Link_4F2A\nask at the desk",
                 "Password=Xy;\n<script integrity=\"sha384-cdNFcQ1NiAUw1xm7zHhwz75yt01+gHHra6inOipg9zmNnDIk0aatuO6+o\">"]:
        got = {v for t, v in _rule_pairs(text) if t == "PASSWORD"}
        assert got <= {"Xy"}, text


def test_the_word_for_an_account_in_other_languages_before_a_login():
    # pii19: French "compte", Russian "логин" (and the other scripts' words) before a login-shaped word
    assert ("USERNAME", "apo.vasseur") in _rule_pairs("Mon compte client est apo.vasseur et je n'arrive plus à me connecter.")
    assert ("USERNAME", "dacha_admin_olya") in _rule_pairs("а логин роутера тот же dacha_admin_olya?")
    assert not any(t == "USERNAME" for t, _ in _rule_pairs("Das Konto wurde gesperrt, siehe konto_export.csv."))


@pytest.mark.parametrize("text, address", [
    ("alamat rumah Jl. Gajah Mada No. 17, Yogyakarta, tolong dikirim", "Jl. Gajah Mada No. 17, Yogyakarta"),
    ("Nimehamia Nyumba 41, Mtaa wa Uhuru, Kisumu wiki hii", "Nyumba 41, Mtaa wa Uhuru, Kisumu"),
    ("nhà tôi ở số 12 ngõ 45 Láng Hạ, Đống Đa, Hà Nội nhé", "12 ngõ 45 Láng Hạ, Đống Đa, Hà Nội"),
    ("הכתובת שלי רחוב ויצמן 12, כפר סבא תודה", "רחוב ויצמן 12, כפר סבא"),
    ("ที่อยู่ 45/3 ซอยอารีย์ 2 แขวงสามเสนใน เขตพญาไท กรุงเทพฯ ค่ะ", "45/3 ซอยอารีย์ 2 แขวงสามเสนใน เขตพญาไท กรุงเทพฯ"),
    ("العنوان شارع الملك فهد، حي العليا، الرياض، شكرا", "شارع الملك فهد، حي العليا، الرياض"),
    ("我家住北京市朝阳区建国路100弄8号302室，谢谢", "北京市朝阳区建国路100弄8号302室"),
    ("मेरा पता फ्लैट 3ए, गंगा अपार्टमेंट, नेहरू मार्ग, इंदौर है।", "फ्लैट 3ए, गंगा अपार्टमेंट, नेहरू मार्ग, इंदौर"),
])
def test_street_addresses_in_running_prose_in_more_countries_layouts(text, address):
    # pii19: each layout's own words name its parts (Jl./No., Nyumba/Mtaa, ngõ, רחוב, ซอย/แขวง/เขต, شارع/حي, 弄/号,
    # फ्लैट); no label before it
    got = {text[s:e] for s, e, t, _ in combine(text, []) if t == "STREET_ADDRESS"}
    assert got == {address}


def test_the_heads_longer_span_does_not_swallow_a_rules_address_into_a_clause():
    # pii19: the head ran "214, alamat KTP" into the address; the trim drops such a span whole, so the rule's stays
    text = "menginap di kamar 214, alamat KTP Jl. Gajah Mada No. 17, Yogyakarta."
    s = text.index("214")
    got = {text[a:b] for a, b, t, _ in combine(text, [(s, len(text) - 1, "STREET_ADDRESS", 0.99)]) if t == "STREET_ADDRESS"}
    assert got == {"Jl. Gajah Mada No. 17, Yogyakarta"}


def test_the_date_on_the_line_after_a_date_of_birth_question_is_the_date_of_birth():
    # pii19: asked on one line, answered on the next (or the one after)
    text = "[10:02] Clinic: to confirm, full name and date of birth please?\n[10:05] Me: Odile Ferrand, 04.11.1972"
    assert ("DATE_OF_BIRTH", "04.11.1972") in _rule_pairs(text)
    # a line that gives the date itself is answered already: the next line's date is another's
    text = "Date of birth: 30 JUL 1990\nDate of issue: 14 FEB 2019"
    assert ("DATE_OF_BIRTH", "14 FEB 2019") not in _rule_pairs(text)


@pytest.mark.parametrize("text, name", [
    ("Ονοματεπώνυμο: Δήμητρα Αλεξίου\nΤάξη: Β2", "Δήμητρα Αλεξίου"),
    ("שם ההורה: דנה כהן-לוי\nטלפון: לא ידוע", "דנה כהן-לוי"),
    ("Veli: Selin Aksoy, cep numarası ektedir", "Selin Aksoy"),
    ("ФИО: Ирина Петрова\nгруппа 3", "Ирина Петрова"),
    ("Nama lengkap: Dewi Lestari (kelas 5)", "Dewi Lestari"),
])
def test_a_form_field_for_a_persons_name_in_other_languages_and_scripts(text, name):
    # pii19: the field's word (a name, a parent, a guardian), a colon, a full name alone after it
    assert {text[s:e] for s, e, t, _ in combine(text, []) if t == "PERSON"} == {name}


def test_a_form_field_with_words_that_are_no_name_takes_none():
    for text in ["Mother: Not Known", "Nama: lihat lampiran", "Vater: unbekannt"]:
        assert not any(t == "PERSON" for _, _, t, _ in combine(text, [])), text


@pytest.mark.parametrize("text, name", [
    ("Дмитрий Волков, [04.12.2026 09:15]\nкогда встречаемся?", "Дмитрий Волков"),
    ("[12/10/26 19.42.07] Sekar Ayuningtyas: nanti sore ya", "Sekar Ayuningtyas"),
    ("我叫王晓明，今年28岁", "王晓明"),
    ("Мен ушул жерде жашайм, атым Айбек Токтогулов. Help me", "Айбек Токтогулов"),
])
def test_chat_export_speakers_and_more_languages_intro_phrases(text, name):
    # pii19: Telegram's "Name, [date time]" head, WhatsApp iOS's dotted time, Chinese 我叫, Kyrgyz атым
    assert name in {text[s:e] for s, e, t, _ in combine(text, []) if t == "PERSON"}


def test_a_chat_exports_self_or_service_speaker_is_no_name():
    # pii19: "Me:" and "Clinic:" speak in an export; "To" after "Hi! " opens the sentence
    text = "[10:02] Clinic: Hi! To confirm, your date of birth please?\n[10:05] Me: Odile Ferrand, 04.11.1972"
    got = {text[s:e] for s, e, t, _ in combine(text, []) if t == "PERSON"}
    assert not got & {"Clinic", "Me", "To"}


def test_an_address_does_not_run_across_an_aligned_tables_column_gap():
    # pii19: "Centraal   IC 3518" is a station's cell and a train's; a letter's indented next line stays the address's
    text = "Departures\nAmsterdam Centraal   IC 3518   platform 5\n"
    s = text.index("Centraal")
    got = combine(text, [(s, s + len("Centraal   IC 3518"), "STREET_ADDRESS", 0.9)])
    assert not any(t == "STREET_ADDRESS" for _, _, t, _ in got)
    text = "Send it to:\n12 Tallow Lane\n   Frome BA11 1AA\nthanks"
    s, e = text.index("12"), text.index("1AA") + 3
    got = {text[a:b] for a, b, t, _ in combine(text, [(s, e, "STREET_ADDRESS", 0.9)]) if t == "STREET_ADDRESS"}
    assert any("Frome" in v for v in got)


def test_a_templates_stand_ins_are_no_name_and_no_birth_date():
    # pii19: sample data with obvious placeholders: a zero date, capitalised field words
    for text in ["dob: 0000-00-00, name: FIRSTNAME LASTNAME", "born 00/00/1990", "Name: ANNA SURNAME"]:
        assert not any(t in ("PERSON", "DATE_OF_BIRTH") for _, _, t, _ in combine(text, [])), text
    text = "DOB: 2001-05-07"
    assert ("DATE_OF_BIRTH", "2001-05-07") in {(t, text[s:e]) for s, e, t, _ in combine(text, [])}


def test_an_email_at_a_templates_stand_in_domain_is_no_address():
    # pii19: "name@domain.tld", "first.last@domain.com" are a template's; a real domain's address stays
    assert not any(t == "EMAIL_ADDRESS" for _, _, t, _ in combine("email: name@domain.tld or first.last@domain.com", []))
    text = "mail me at lena.brandt@posteo.de"
    assert ("EMAIL_ADDRESS", "lena.brandt@posteo.de") in {(t, text[s:e]) for s, e, t, _ in combine(text, [])}


def _people(text: str, model: list | None = None) -> set[str]:
    return {text[s:e] for s, e, t, _ in combine(text, model or []) if t == "PERSON"}


def test_a_given_name_of_the_lexicon_and_a_capitalised_word_after_it_are_a_person_without_a_frame():
    # pii20: a full name in running text with no greeting, title or "my name is" ("...; Rohan Mehta, DL ...")
    assert "Benedikt Varga" in _people("The parcel for Benedikt Varga came back, is the label wrong?")
    assert "Yusuf Alderwick" in _people("Lab results: Yusuf Alderwick, 54, fasting glucose 6.1")
    # nor a maker, a landmark or event, a title after an article, or a word the text also writes in lower case
    for text in ["My Ford Fiesta needs new brakes.", "When was the Berlin Wall built?",
                 "Summarise The Brothers Karamazov.", "Harold Big bought a big car."]:
        assert not _people(text), text


def test_a_name_part_found_alone_grows_to_the_capitalised_word_beside_it():
    # pii20: the head took one part of a two-word name ("Andrés |Villalobos|", "|Gülsüm| Yıldırım için")
    text = "Saludos cordiales, Andrés Quintanar"
    s = text.index("Andrés")
    assert _people(text, [(s, s + len("Andrés"), "PERSON", 0.9)]) == {"Andrés Quintanar"}
    text = "minha avó Conceição Barbosa faz 85 anos"
    s = text.index("Barbosa")
    assert _people(text, [(s, s + len("Barbosa"), "PERSON", 0.9)]) == {"Conceição Barbosa"}
    # a word that opens the sentence before the part is a greeting of an unlisted language, not the name's
    text = "Muraho Keza, amakuru?"
    s = text.index("Keza")
    assert _people(text, [(s, s + len("Keza"), "PERSON", 0.9)]) == {"Keza"}


def test_a_lone_word_that_opens_a_sentence_and_runs_into_lower_case_words_is_no_name():
    # pii20: the head reads a sentence's capitalised first word as a name ("Ticket #7: |Loud| fan noise since ...")
    for text, word in [("Ticket #7: Loud fan noise since Monday.", "Loud"), ("Refund request below, thanks.", "Refund"),
                       ("Achtung: Rechnungsnummer folgt per Post.", "Rechnungsnummer")]:
        s = text.index(word)
        assert _people(text, [(s, s + len(word), "PERSON", 0.9)]) == set(), text
    # a given name of the lexicon, or a word that a verb of saying or being follows, stays the name
    for text, word in [("Anneke booked the room.", "Anneke"), ("Tom says the boiler is broken.", "Tom"),
                       ("Update: Kofiwaa is off sick today.", "Kofiwaa"), ("Note: Ngozika emailed the form.", "Ngozika")]:
        s = text.index(word)
        assert _people(text, [(s, s + len(word), "PERSON", 0.9)]) == {word}, text


@pytest.mark.parametrize("text, typ, value", [
    # pii20: a form's label typed as a table's header is, in the languages the header words list
    ("Formulario\nNombre: Inés\nEdad: 41\nCiudad: Cádiz", "AGE", "41"),
    ("Leeftijd: 44", "AGE", "44"),
    ("Patient, Köln. Alter: 67. Termin morgen", "AGE", "67"),
    ("Στοιχεία. Ημερομηνία γέννησης: 03/07/1981.", "DATE_OF_BIRTH", "03/07/1981"),
    ("BEGIN:VCARD\nBDAY:19850214\nEND:VCARD", "DATE_OF_BIRTH", "19850214"),
    # a PDF form copied out: the label on one line, its value alone on the next
    ("Age on entry\n15\nSchool year\n10", "AGE", "15"),
])
def test_a_forms_labelled_field_gives_the_age_or_birth_date(text, typ, value):
    assert value in [text[s:e] for s, e, t, _ in combine(text, []) if t == typ]


def test_a_things_age_field_or_a_free_number_is_no_persons_age():
    for text in ["max_age: 30", "Cache age: 3600", "Retry after: 30", "Page\n12", "Token age: 12"]:
        assert not any(t == "AGE" for _, _, t, _ in combine(text, [])), text


def test_a_part_of_a_named_persons_name_names_them_again():
    # pii20: "Oyelowo Banjoko ... call Banjoko": the surname alone later in the text is the same person
    text = "Patient: Oyelowo Banjoko, bed 4. Family asked that Banjoko be moved near the window."
    s = text.index("Oyelowo")
    got = _people(text, [(s, s + len("Oyelowo Banjoko"), "PERSON", 0.9)])
    assert [text[a:b] for a, b, t, _ in combine(text, [(s, s + len("Oyelowo Banjoko"), "PERSON", 0.9)])
            if t == "PERSON"] == ["Oyelowo Banjoko", "Banjoko"]
    assert got == {"Oyelowo Banjoko", "Banjoko"}
    # not inside a run of capitalised words (another name, a place): "Banjoko Street" is the street's
    text = "Oyelowo Banjoko called. The clinic is on Banjoko Street."
    got = combine(text, [(0, len("Oyelowo Banjoko"), "PERSON", 0.9)])
    assert [text[a:b] for a, b, t, _ in got if t == "PERSON"] == ["Oyelowo Banjoko"]


def test_an_address_the_head_stopped_at_a_comma_runs_on_to_its_postcode():
    # pii20: "Flat 9B|, Sea Breeze Apartments, 12th Road, Khar West, Mumbai 400052|"
    text = "new address Flat 2C, Coral Heights, 7th Cross Road, Indiranagar, Bengaluru 560038, from Monday"
    s = text.index("Flat")
    got = combine(text, [(s, s + len("Flat 2C"), "STREET_ADDRESS", 0.9)])
    assert [text[a:b] for a, b, t, _ in got if t == "STREET_ADDRESS"] == [
        "Flat 2C, Coral Heights, 7th Cross Road, Indiranagar, Bengaluru 560038"]
    # without a postcode to close it, the parts after the comma may be the clause's: the span stays
    text = "she lives at 4 Mill Lane, Oxford, Dr Patel said"
    s = text.index("4 Mill")
    got = combine(text, [(s, s + len("4 Mill Lane"), "STREET_ADDRESS", 0.9)])
    assert "4 Mill Lane" in [text[a:b] for a, b, t, _ in got if t == "STREET_ADDRESS"]


def test_a_continental_house_number_with_stair_door_or_floor():
    # pii20: Vienna's "9/2/14" (house, stair, door), Amsterdam's "61-II" (house, floor)
    for text, value in [("wohnt in der Praterstraße 12/3/8, 1020 Wien.", "Praterstraße 12/3/8, 1020 Wien"),
                        ("ons adres: Lijnbaansgracht 88-III, 1017 RZ Amsterdam", "Lijnbaansgracht 88-III, 1017 RZ Amsterdam")]:
        assert value in [text[s:e] for s, e, t, _ in combine(text, []) if t == "STREET_ADDRESS"], text


def test_a_service_mailbox_or_a_timestamp_column_is_nobodys_login():
    # pii20: whichever rule found it, "noreply" and "created_at" name no person's account
    for text in ["MAIL_USER=noreply\nMAIL_PASS=Tr0ub4dor&3", "[smtp]\nuser = no-reply-alerts\npassword = Xk2!pq9Lm",
                 "SELECT handle, pw, joined_at FROM members;"]:
        assert not any(t == "USERNAME" for _, _, t, _ in combine(text, [])), text
    text = "MAIL_USER=dkowalski\nMAIL_PASS=Tr0ub4dor&3"
    assert ("USERNAME", "dkowalski") in {(t, text[s:e]) for s, e, t, _ in combine(text, [])}


def test_a_name_in_capitals_is_found_as_one_in_title_case_is():
    # pii20: a court filing's or a CV's name in capitals, a given name of the lexicon first
    text = "IN THE COUNTY COURT\nGABRIELA McALLISTER-VOSS, Claimant, v. NORTHGATE LETTINGS LTD"
    assert "GABRIELA McALLISTER-VOSS" not in _people(text)  # (mixed case inside a word: not a word in capitals)
    text = "IN THE COUNTY COURT\nGABRIELA ASHWORTH, Claimant, v. NORTHGATE LETTINGS LTD"
    assert "GABRIELA ASHWORTH" in _people(text)
    assert not _people("PLEASE NOTE: THE OFFICE IS CLOSED")


def test_a_name_on_a_short_line_stays_on_its_line():
    # pii20: the head ran a form's name into the next line's label; a long, wrapped prose line may carry a name on
    text = "Formularz:\nImię: Jadwiga\nNazwisko: Ostrowska\nWiek: 58"
    s = text.index("Jadwiga")
    got = combine(text, [(s, s + len("Jadwiga\nNazwisko"), "PERSON", 0.9)])
    assert "Jadwiga" in [text[a:b] for a, b, t, _ in got if t == "PERSON"]
    text = ("Thanks to everyone who sent patches this year, in particular the long list of people below and " * 1 +
            "Bartłomiej\nSzczepański, who did most of it.")
    s = text.index("Bartłomiej")
    got = combine(text, [(s, s + len("Bartłomiej\nSzczepański"), "PERSON", 0.9)])
    assert "Bartłomiej\nSzczepański" in [text[a:b] for a, b, t, _ in got if t == "PERSON"]


def test_a_column_of_given_names_under_a_header_that_names_nothing_is_peoples():
    # pii20: "date,who,what,amount": "who" names no type and no thing; under "city" the same names are places
    text = "date,who,what,amount\n2026-03-01,Rosalind,rent,900\n2026-03-02,Ingeborg,gas,40\n2026-03-05,Rosalind,food,62"
    got = [text[s:e] for s, e, t, _ in combine(text, []) if t == "PERSON"]
    assert got.count("Rosalind") == 2 and "Ingeborg" in got
    text = "date,city,what,amount\n2026-03-01,Florence,rent,900\n2026-03-02,Victoria,gas,40\n2026-03-05,Florence,x,62"
    assert not [text[s:e] for s, e, t, _ in combine(text, []) if t == "PERSON"]


def test_a_records_first_last_and_full_keys_hold_a_name():
    # pii20: {"first": ..., "last": ...}; "full" in a script without case
    text = '[{"no": 7, "first": "Gunnhild", "last": "Aasheim", "age": 44}]'
    got = {text[s:e] for s, e, t, _ in combine(text, []) if t == "PERSON"}
    assert {"Gunnhild", "Aasheim"} <= got
    text = '{"uid": 12, "full": "נועה ברק", "age": 30}'
    assert "נועה ברק" in {text[s:e] for s, e, t, _ in combine(text, []) if t == "PERSON"}
    text = '{"first": "2024-01-02", "last": "2024-03-04"}'
    assert not any(t == "PERSON" for _, _, t, _ in combine(text, []))


def test_a_things_age_is_no_persons():
    # pii20: "my sourdough starter is 3 years old": the subject names no person, kin or pet
    for text in ["my kombucha scoby is 2 years old, still safe?", "this oak barrel is 12 years old",
                 "Our Toyota is 15 years old with 300,000 km"]:
        assert not any(t == "AGE" for _, _, t, _ in combine(text, [])), text
    for text, age in [("my daughter is 7 years old", "7"), ("my grandson is 14 years old", "14"),
                      ("my nephew Tomasz is 9 years old", "9")]:
        assert ("AGE", age) in {(t, text[s:e]) for s, e, t, _ in combine(text, [])}, text


def test_a_name_at_an_addresss_edge_is_cut_from_it():
    # pii20: the head ran an address across a sentence's end into the sender's name, or began it at a surname
    text = "Please post the forms to 14 Rua Augusta, 1100-048 Lisboa. Benedita Sarmento"
    s = text.index("14 Rua")
    got = combine(text, [(s, len(text), "STREET_ADDRESS", 0.9)])
    assert ("PERSON", "Benedita Sarmento") in {(t, text[a:b]) for a, b, t, _ in got}
    assert any(t == "STREET_ADDRESS" and "Benedita" not in text[a:b] for a, b, t, _ in got)
    text = "Zwolnienie. Agnieszka Wrzosek, ul. Lipowa 7/2, 20-020 Lublin"
    s = text.index("Wrzosek")
    got = {(t, text[a:b]) for a, b, t, _ in combine(text, [(s, len(text), "STREET_ADDRESS", 0.9)])}
    assert ("PERSON", "Agnieszka Wrzosek") in got and ("STREET_ADDRESS", "ul. Lipowa 7/2, 20-020 Lublin") in got


def test_a_signature_line_keeps_the_given_name_beside_the_surname_found():
    # pii20: "...\nClemency |Audsley|": a name alone on its line; the e-mail address's parts are no prose words
    text = "From: perpetua.wimbourne@example.org\nSubject: payslip\nHi, can you resend it?\nPerpetua Wimbourne"
    s = text.index("Wimbourne", 60)
    assert _people(text, [(s, s + len("Wimbourne"), "PERSON", 0.9)]) == {"Perpetua Wimbourne"}


@pytest.mark.parametrize("text, value", [
    # pii20: an address field's value, its commas included, without a postcode
    ("Home address: 17 Nkrumah Road, Osu, Accra", "17 Nkrumah Road, Osu, Accra"),
    ("Address: 221 Elm St. Apt 4, Springfield. Please call.", "221 Elm St. Apt 4, Springfield"),
    ("Domicilio: Av. Corrientes 1234, Buenos Aires | Tel: 011 4321 5678", "Av. Corrientes 1234, Buenos Aires"),
    # a street's particle after its word: "Rua das Flores 45", "Via della Spiga 8"
    ("I live at Rua das Flores 45, 4050-262 Porto", "Rua das Flores 45, 4050-262 Porto"),
])
def test_an_address_fields_value_is_the_address(text, value):
    assert value in [text[s:e] for s, e, t, _ in combine(text, []) if t == "STREET_ADDRESS"]


def test_an_address_field_of_a_thing_or_a_sentence_is_no_address():
    for text in ["Server address: db01.internal:5432", "address: 0x7ffd5e8c", "IP address: 10.0.0.1",
                 "Change of address: from 1 April send the post to my sister"]:
        assert not any(t == "STREET_ADDRESS" for _, _, t, _ in combine(text, [])), text


def test_canadian_and_australian_postal_layouts_close_an_address():
    # pii20: a province's postal code, a state's postcode
    for text, value in [("drop it at 88 Birchmount Road, Toronto, ON M1K 1N5", "88 Birchmount Road, Toronto, ON M1K 1N5"),
                        ("we moved to 9 Banksia Street, Fitzroy, VIC 3065 last year", "9 Banksia Street, Fitzroy, VIC 3065")]:
        assert value in [text[s:e] for s, e, t, _ in combine(text, []) if t == "STREET_ADDRESS"], text


def test_a_lifes_span_in_brackets_after_a_name_gives_the_birth_date():
    # pii20: obituaries and family trees: the first date, where the two are years apart
    text = "In memory of Philippa Wrenfield (2 March 1939 - 30 October 2025), dearly loved."
    assert ("DATE_OF_BIRTH", "2 March 1939") in {(t, text[s:e]) for s, e, t, _ in combine(text, [])}
    text = "Seaview Lodge (1 June 2024 - 5 June 2024) is booked."
    assert not any(t == "DATE_OF_BIRTH" for _, _, t, _ in combine(text, []))
