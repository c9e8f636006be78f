"""The word-for-word English gloss the custom routes read for a turn in another language (gloss.py)."""

from __future__ import annotations

from router_extproc import gloss as G
from router_extproc.thresholds import GLOSS_MIN_COVER

TABLE = G.Glossary.parse("""# a comment before any section is skipped
ignored = never
# fr
mon = my
colis = parcel
n = -
est = is
pas = not
arrivé = arrived
mon = mine
# es
mi = my
""")


def test_sections_give_one_table_per_language_and_the_first_entry_of_a_word_wins():
    assert TABLE.languages == frozenset({"fr", "es"})
    assert TABLE.tables["fr"]["mon"] == "my" and "ignored" not in TABLE.tables["fr"]


def test_words_are_glossed_one_by_one_particles_dropped_and_elisions_split():
    assert TABLE.gloss("Mon colis n'est pas arrivé", "fr") == "my parcel is not arrived"


def test_accents_and_case_do_not_matter():
    assert TABLE.gloss("MON COLIS N'EST PAS ARRIVE", "fr") == TABLE.gloss("mon colis n’est pas arrivé", "fr")


def test_unknown_words_and_numbers_are_kept_as_written():
    assert TABLE.gloss("Mon colis 4711 Zalando n'est pas arrivé", "fr") == "my parcel 4711 Zalando is not arrived"


def test_too_few_known_words_or_no_table_gives_no_gloss():
    assert TABLE.gloss("Mon colis", "de") is None                          # no German table
    assert TABLE.gloss("Mon colis", None) is None
    few = "mon " + " ".join(["inconnu"] * 3)                                 # 1 of 4 known
    assert 1 / 4 < GLOSS_MIN_COVER and TABLE.gloss(few, "fr") is None
    assert TABLE.gloss("", "fr") is None and TABLE.gloss("1234", "fr") is None


def test_the_shipped_table_covers_the_languages_the_router_glosses():
    shipped = G.shipped()
    assert shipped.languages == frozenset({"fr", "es", "de", "it", "pt", "nl"})
    assert all(len(t) > 150 and all(k == G.fold(k) for k in t) for t in shipped.tables.values())
    assert shipped.gloss("Je n'ai pas reçu ma facture", "fr") == "I have not received my invoice"
    assert shipped.gloss("Ich habe mein Passwort vergessen", "de") == "I have my password forgotten"


def test_a_long_turn_is_glossed_up_to_its_first_words():
    long = " ".join(["mon colis"] * G.MAX_WORDS)
    assert TABLE.gloss(long, "fr") == " ".join(["my parcel"] * (G.MAX_WORDS // 2))
    assert G.fold("Größe") == "grosse"
