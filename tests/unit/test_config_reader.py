"""config_reader.Reader: the one validation idiom; every error is "file: dotted.key: reason"."""

import pytest

from router_extproc.config_reader import Reader, config_error
from router_extproc.errors import ConfigError


def reader(data, path="sec"):
    return Reader(data, "c.yaml", path)


def fails(fn, key: str) -> str:
    with pytest.raises(ConfigError) as e:
        fn()
    assert str(e.value).startswith(f"c.yaml: {key}: "), str(e.value)
    return str(e.value)


def test_a_missing_key_and_null_both_mean_the_default():
    r = reader({"a": None})
    assert r.int("a", 3) == 3 and r.str("b", "x") == "x" and r.float("c", None) is None
    fails(lambda: r.str("d"), "sec.d")


def test_values_are_typed_and_bounded():
    r = reader({"n": True, "port": 70000, "f": 0.5, "nan": float("nan"), "s": 5, "m": [1]})
    assert "must be an integer" in fails(lambda: r.int("n"), "sec.n")
    assert "must be <= 65535" in fails(lambda: r.int("port", maximum=65535), "sec.port")
    assert "must be >= 1" in fails(lambda: r.float("f", lo=1), "sec.f")
    assert "within [0, 0.25]" in fails(lambda: r.float("f", lo=0, hi=0.25), "sec.f")
    fails(lambda: r.float("nan"), "sec.nan")
    fails(lambda: r.str("s"), "sec.s")
    fails(lambda: r.mapping("m"), "sec.m")


def test_text_reads_a_number_as_text_but_not_a_boolean():
    r = reader({"pw": 12345, "db": "x", "flag": True})
    assert (r.text("pw"), r.text("db"), r.text("none", "")) == ("12345", "x", "")
    fails(lambda: r.text("flag"), "sec.flag")


def test_sections_and_items_carry_the_dotted_path():
    r = reader({"inner": {"list": [{"k": "v"}, 3]}}, path="")
    inner = r.section("inner")
    items = lambda: inner.items("list")  # noqa: E731
    fails(items, "inner.list[1]")
    assert Reader({"k": 1}, "c.yaml", "").key("k") == "k"


def test_unread_keys_are_unknown_unless_ignored_and_the_error_lists_the_known_ones():
    r = reader({"good": 1, "seed_knob": 2, "typo": 3})
    r.int("good")
    r.ignore("seed_knob")
    msg = fails(r.check_unknown, "sec.typo")
    assert msg.endswith("known: good, seed_knob")


def test_a_check_made_outside_a_reader_has_the_same_shape():
    assert str(config_error("c.yaml", "a.b", "why")) == "c.yaml: a.b: why"
    assert str(config_error("c.yaml", "", "why")) == "c.yaml: <root>: why"
