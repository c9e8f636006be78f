"""A lexicon of given names, for the lower-case names of chat ("talked to priya", "[10:12] bex: ..."), where no capital
says that a word is a name. The names come from faker's person providers (every locale's first-name lists, Latin
script), exported once into given_names.txt by `python -m router_extproc.pii.given_names`; the file's first line
records the recipe (faker version, how many locales and names). At runtime the file is read once, at import.

Only the rules' name contexts consult it (pii/rules.py LOWER_NAME: after a greeting, a thanks, "ask"/"tell"/"talked
to", "it's", or as a chat line's speaker), and a name that is also a common English word ("will", "may", "hope",
"mark") is left out here, so "ask will" or "thanks, may I" stays no person."""
from __future__ import annotations

import importlib
from pathlib import Path

FILE = Path(__file__).with_name("given_names.txt")
# given names that are also common English words, months or interjections: never read as a name without a capital
COMMON_WORDS = frozenset("""will can may june april august art hope grace rose joy sunny bill mark faith honor honour
    bob pat sue dawn eve chance chase chip cliff dale dean dick drew earl ernest frank gene guy hunter jack jay
    jean jewel job lane lee les lance max miles neil nick norm page pearl penny pier ray reed rich rob rod roman
    rusty sandy scott shadow sky skye spring star stone storm summer sun sunday autumn winter river rock royal
    ruby sage savannah saint sterling tiny trinity true wade ward wesley young amber angel april baby bay bell
    belle berry blue brook brooke buck butch candy carol carter cash cherry christian clay coral crystal daisy
    destiny diamond don doc fern flora forest gale gay gil ginger glen glory gray grey harmony heather holly
    ivy jade jasmine jet kit lark lily liberty love lucky major mason may melody merry mercy miracle misty
    noble olive opal paris pepper poppy precious prince princess queen rain raven rebel rowan saga sable serenity
    shay sienna silver stormy taylor tex treasure van vera violet willow zen ace ali ana ann anna are bea ben
    con dom ed eli em ella ian ira ivan kim lou luz mae mai mia mo nan ned ola paz rae roy sam sol tad ted
    tim tom una val wal won yang lin man min ming hung long tang van per bo mohammed his her him one the and for
    not but you all any had has how its let new now old see two way who boy did get out use day yes ten
    add alpha among author basil beat beta branch carry case conn del delta dev doctor dot early easter else emit eta
    ever fancy fed floor forum general grant green greet handy harm haven jax judge len less line link little made
    math media meta minor octave odd rand reason red sad said server skip sys tab ties unique unknown valid worth
    abdi ani council friend gun hall lawyer lea lean lon lot male mate meg nae nas north nya olen ora owe park
    patience price rein sie sing sister son toy trace urban von west della geo""".split())
# (the last six lines: faker names found as lower-case words in the calibration texts - README passages of the
# calibration half, benign questions, calibration messages - other than as a person's name)


def export(path: Path = FILE) -> int:
    """Write the lexicon from faker's person providers; returns the number of names."""
    import faker
    from faker.config import AVAILABLE_LOCALES

    names: set[str] = set()
    used = 0
    for loc in AVAILABLE_LOCALES:
        try:
            provider = importlib.import_module(f"faker.providers.person.{loc}").Provider
        except (ImportError, AttributeError):
            continue
        used += 1
        for attr in ("first_names", "first_names_male", "first_names_female", "first_names_nonbinary"):
            v = getattr(provider, attr, None)
            for n in (v.keys() if isinstance(v, dict) else v if isinstance(v, (list, tuple)) else ()):
                if isinstance(n, str) and n.isalpha() and all(ord(c) < 0x250 for c in n) and 3 <= len(n) <= 14:
                    names.add(n.lower())
    names -= COMMON_WORDS
    path.write_text(f"# faker {faker.VERSION}, {used} locales' first-name lists, Latin script, 3-14 letters, "
                    f"less COMMON_WORDS: {len(names)} names\n" + "\n".join(sorted(names)) + "\n")
    return len(names)


def load(path: Path = FILE) -> frozenset[str]:
    if not path.exists():
        return frozenset()
    return frozenset(ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")) - COMMON_WORDS


GIVEN_NAMES = load()

if __name__ == "__main__":
    print(f"given_names: {export()} names -> {FILE}")
