"""Validators used next to the PII model (pure functions)."""
import numpy as np

from router_extproc.signals.pii import combine, decode_tags, iban_ok, luhn_ok, regex_entities, snap


def test_luhn_and_iban_checksums():
    assert luhn_ok("4111111111111111")
    assert not luhn_ok("4111111111111112")
    assert iban_ok("GB82 WEST 1234 5698 7654 32")
    assert not iban_ok("GB82 WEST 1234 5698 7654 33")


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
    text = "Patient born 1995-06-26, see notes"
    s = text.index("1995")
    assert combine(text, [(s, s + 10, "PHONE_NUMBER", 0.9)]) == []
    assert combine(text, [(s, s + 10, "STREET_ADDRESS", 0.9)]) == []


# ---------------------------------------------------------------- addresses
def test_an_address_without_letters_is_a_phone_number_or_nothing():
    text = "call 6315166551 or visit room 4"
    s = text.index("6315")
    assert combine(text, [(s, s + 10, "STREET_ADDRESS", 0.8)]) == [(s, s + 10, "PHONE_NUMBER", 0.8)]
    r = text.index("4")
    assert combine(text, [(r, r + 1, "STREET_ADDRESS", 0.8)]) == []


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
    assert _names("ask Dr Jane Roe", ["Dr", "Jane"]) == ["Dr Jane"]
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
    text = "He lives on Calle de Paulina Frutos now"
    words = ["He", "lives", "on", "Calle", "de", "Paulina", "Frutos", "now"]
    labels = ["O", "O", "O", "B-STREET_ADDRESS", "I-STREET_ADDRESS", "I-STREET_ADDRESS", "I-PERSON", "O"]
    assert _decode(text, words, labels) == [("Calle de Paulina Frutos", "STREET_ADDRESS")]


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
