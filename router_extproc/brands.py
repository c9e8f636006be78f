"""The one home of the well-known brand names (router_extproc/data/other_brands.txt), read by the routes' judge
(routes.py, `known_brand`) and by the PII rules (pii/rules.py: a one-word "name" that is a brand is no person).

The file lists one name a line, by kind, under comment headings. Its last section, headed "# also common words",
holds brands whose names are ordinary words too ("Target", "Wise", "Line"): PII reads them (a capitalised one-word
"name" there is the brand), the routes do not (a turn saying "target" is not about the company). A brand is added
to the file once and both readers see it."""
from __future__ import annotations

from functools import cache
from importlib.resources import files

COMMON_WORDS_HEADING = "# also common words"
# The brands of other_brands.txt a customer uses the operator's own service on or pays it with: devices, operating
# systems, browsers, office files and cards ("crashes on Android", "won't render in Firefox", "paid with Apple Pay",
# "export to Excel"). Named after a preposition, they are where the operator's service runs, not whose case it is
# (routes.py, the judge's `platform`). Each is also in the file (tests/unit/test_routes_judge.py checks it).
PLATFORMS = ("Apple", "Apple Pay", "Apple ID", "iPhone", "iPad", "MacBook", "iOS", "macOS", "Android", "Samsung",
             "Windows", "Chrome", "Firefox", "Safari", "Excel", "PowerPoint", "Amex", "American Express", "Mastercard")


def data_lines(name: str, stop_at: str | None = None) -> tuple[str, ...]:
    """The lines of a shipped data file (router_extproc/data/`name`), less comments and blanks, in order and without
    repeats; with `stop_at`, only those before the first comment line that starts with it."""
    out: list[str] = []
    for ln in files(__package__).joinpath("data", name).read_text(encoding="utf-8").splitlines():
        if stop_at is not None and ln.startswith(stop_at):
            break
        if ln.strip() and not ln.startswith("#"):
            out.append(ln.strip())
    return tuple(dict.fromkeys(out))


@cache
def brand_names(common_words: bool = False) -> tuple[str, ...]:
    """The brand names as written in the file; with `common_words`, also those that are ordinary words."""
    return data_lines("other_brands.txt", stop_at=None if common_words else COMMON_WORDS_HEADING)
