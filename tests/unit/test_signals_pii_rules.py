"""Validators used next to the PII model (pure functions)."""
from router_extproc.signals.pii import combine, iban_ok, luhn_ok, regex_entities, snap


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
