"""PII span decoding from token tags, joined with the rule matches (router_extproc/pii/rules.py)."""
from __future__ import annotations

import bisect
import unicodedata
from typing import NamedTuple

import numpy as np
import re2

from ..pii.rules import bare_domains, iban_ok, luhn_ok, rule_entities, script_address, ssn_ok, url_spans  # noqa: F401 - validators live there
from ..pii.given_names import COMMON_WORDS, GIVEN_NAMES
from ..pii.tables import Table, read_tables
from ..pii.rules import CAPS_NOT_SURNAME as _CAPS_NOT_SURNAME
from ..pii.rules import RE2_LARGE, TRADE_BEFORE
from ..pii.rules import (BRANDS, GREETING_WORDS, INTRO_WORDS, NAME_TITLES, NOT_NAMES, business_address, company_line,
                         company_line_before, in_link,
                         looks_like_documentation, reference_before, scrub)

# Dates are not phone numbers (a model span "1995-06-26" typed PHONE_NUMBER or STREET_ADDRESS is dropped).
DATE_RE = re2.compile(r"(?:^|[^\d./-])(?:\d{4}-\d{1,2}-\d{1,2}|\d{4}/\d{1,2}/\d{1,2}|\d{4}\.\d{1,2}\.\d{1,2}|"
                      r"\d{1,2}-\d{1,2}-\d{2,4}|\d{1,2}/\d{1,2}/\d{2,4}|\d{1,2}\.\d{1,2}\.\d{2,4})"
                      r"(?:$|[^\d./-]|[./-]$|[./-][^\d])")
# A model span made only of phone-number characters (digits, + ( ) . - spaces, an extension).
PHONE_CHARS_RE = re2.compile(r"\+?[\d\s().-]+(?:\s?(?:x|ext\.?)\s?\d{1,5})?")
# Titles written before a name; a title belongs to the PERSON span ("Dott. Griselda Pace", "Dr X").
TITLES = frozenset("""Dr Dott Dott.ssa Prof Univ.Prof Ing Sig Sig.ra Sig.na Mr Mrs Ms Miss Mx Mme Mlle M Sr Sra Srta
    Hr Fr Herr Frau Rev Dipl.-Ing Mag""".split()) | NAME_TITLES
# Lower-case words a name may hold (Ludwig van Beethoven, Ana de la Cruz, Ahmed bin Zayed); any other lower-case
# word makes a span a phrase ("March rent", "Ruf mich", "Praxis für Orthopädie"), not a name.
NAME_PARTICLES = frozenset("van von der den de da di del della dos das du des le la bin ibn al el ter ten zu y e af"
                           .split())
# Capitalised words the head reads as names in message text that are labels, the names of ID documents, kin words
# or German/French/Spanish months and days: a span made only of these is no person ("Aadhaar", "Tel",
# "Bankverbindung", "Re", "Patient").
NOT_NAME_WORDS = NOT_NAMES | frozenset("""Aadhaar Aadhar Pan Dni Nie Nif Ssn Sin Bsn Nino Iban Bic Blz Swift Tel Tele
    Telefon Telephone Phone Mobile Mobil Handy Cell Fax Festnetz Kontakt Contact Email Mail Adresse Address Anschrift
    Bankverbindung Konto Kontonummer Kontoinhaber Rechnung Invoice Ticket Order Re Fwd Fw Aw Wg Subject Betreff Objet
    Asunto Praxis Pt Dob Mrn Ref Mother Father Mutter Vater Tochter Sohn Daughter Son Wife Husband Ehefrau Ehemann
    Januar Februar März Juni Juli Oktober Dezember Janvier Février Mars Avril Mai Juin Juillet Août Septembre Octobre
    Novembre Décembre Enero Febrero Marzo Abril Mayo Junio Julio Agosto Septiembre Octubre Noviembre Diciembre Montag
    Dienstag Mittwoch Donnerstag Freitag Samstag Sonntag Lundi Mardi Mercredi Jeudi Vendredi Samedi Dimanche Lunes
    Martes Miércoles Jueves Viernes Sábado Domingo Bitte Danke Merci Gracias Grazie Hallo Bonjour Hola Salut Ich Du
    Er Sie Es Wir Ihr Je Tu Il Elle Nous Vous Ils Elles Yo Usted Ustedes Nosotros Ruf Rufen Melden Schreib Schreiben
    Appelez Appelle Llame Llámame Escribe Sehr Geehrte Geehrter Freundlichen Grüßen Grüße Gruß Bonjour Bonsoir
    Cordialement Saludos Estimado Estimada Atenciosamente Steuer Versand Lieferung Lieferadresse Karte Ansprechpartner
    Kündigung Betreff Anlage Termin Dirección Direccion Envío Factura Pedido Teléfono Correo Dossier Facture Commande
    Adresse""".split())
# A name followed by one of these names a place or an institution ("Victoria Station", "Lincoln Memorial", "Moscone
# Center"), not the person it was named after
PLACE_NOUNS = frozenset("""Station Memorial Monument Bridge Park Square Street Road Avenue Airport Hospital University
    College School Center Centre Hall Tower Cathedral Church Museum Stadium Arena Hotel Library Institute Clinic Mall
    Gardens Palace Castle Theatre Theater Lake River Mountain Island Bay Beach Valley County Airlines Foundation Prize
    Award Bank Group Inc Ltd LLC GmbH AG Bahnhof Platz Straße Kirche Universität Gare Musée Estación Museo""".split())
# voice assistants and chat products read as given names; possessives and pronouns that open a sentence in Dutch,
# German, French, Spanish, Portuguese, Nordic, Polish, Czech and Turkish mail ("Mijn BSN is ...", "Meu NIF ...")
NOT_NAME_WORDS = NOT_NAME_WORDS | frozenset("""Siri Alexa Cortana Bixby Mijn Mijne Onze Ons Ik Wij Uw Jouw Mein Meine
    Unser Unsere Dein Deine Ihre Mon Ma Mes Votre Vos Notre Nos Mi Mis Su Sus Nuestro Nuestra Meu Minha Seu Sua Nosso
    Nossa Mitt Mina Jag Jeg Vi Moja Moje Mój Mój Můj Moje Benim Bizim Het Een Det Den Dit Dat Request Requests Pull
    Issue Issues Commit Merge Branch Geburtsdatum Geburtstag Geboortedatum Naissance Nacimiento Nascimento Vorname
    Nachname Prénom Nombre Apellido Apellidos Cognome Nome Naam Voornaam Achternaam Adres Imię Nazwisko Jméno
    Příjmení Förnamn Efternamn Mon Tue Tues Wed Thu Thur Thurs Fri Sat Sun Feb Aug Sept Oct Nov Dec Dzień Dzien Dobry
    Dobrý Dobré Dobrá Dobre Merhaba Selam Olvidé Olvide Fecha Celular Telemóvel Telefone Telefono Cellulare Numer
    Numero Número Datum Dátum Adresa Indirizzo Endereço Morada Virement Transferencia Überweisung Bonifico
    Overboeking Betaling Pago Pagamento Zahlung Paiement Benutzername Passwort Kennwort Contraseña Senha Wachtwoord
    Vitale Vilken Vilket Vilka Hvilken Hvilket Welche Welcher Welches Quel Quelle Cuál Cual Qual Quale Który Która
    Które Jaki Jaka Hangi Kdo Který Která Jaké Nr No Nº Núm Num""".split())
# (pii9) the first word of a "my name is" phrase (pii/rules.py INTRO_PHRASES: "Jenengku", "Wasta", "Meniň")
NOT_NAME_WORDS = NOT_NAME_WORDS | INTRO_WORDS | GREETING_WORDS
# a product's edition: "Milvus Lite", "Visual Studio", "Google Cloud" name a product, not a person
PRODUCT_WORDS = frozenset("""Lite Pro Mini Cloud Studio Server Edition Notebook Notebooks Hub Labs Core Sdk Api Desktop
    Enterprise Community Express Suite Engine Framework Toolkit Kit Plugin Extension""".split())
# a label: one word, a colon, then a number ("Aadhaar: 6936 ...", "Tel: +49 ...")
_LABEL_AFTER = re2.compile(rb"^\s*:\s*[+(\d]")
# one capitalised word after an article or a contracted preposition is a noun (German capitalises every noun: "zu
# Hause", "bei der Sparkasse"), not a name
_NOUN_BEFORE = re2.compile(rb"(?:^|\s)(?:der|die|das|dem|den|des|zu|zum|zur|im|am|vom|beim|ein|eine|einen|einem|einer|"
                           rb"les|du|el|los|las|un|una|the|an)\s+$")
_TITLE_BEFORE = re2.compile(r"(?:^|[\s,;:(\"'>])([A-Z][A-Za-z.-]{0,8}?)(\.?) $")

VALIDATED = ("EMAIL_ADDRESS", "IP_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "US_SSN")

# where a capitalised word is a label (a badge's alt text, an rst substitution), not a person
_LABEL_BEFORE = re2.compile(r"(?:\||:alt: |alt=[\"']|title=[\"'])$")
# names that documentation and forms use as stand-ins
PLACEHOLDER_NAMES = frozenset("""john doe|jane doe|john smith|jane smith|joe bloggs|max mustermann|erika mustermann|
    john q. public|foo bar""".replace("\n", "").split("|"))
# a house number (or flat number) and a postcode-like token: an address has one or the other
# (a house and flat number "12/4", "1511/23", "412-3"; a Polish postcode "00-238")
_ADDR_NUMBER = re2.compile(r"(?:^|[\s,])(?:\d{1,6}[A-Za-z]?|\d{1,5}[/-]\d{1,4}[A-Za-z]?|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}|"
                           r"\d{5}(?:-\d{4})?|\d{2}-\d{3})(?:$|[\s,])")
# "2401.08281" (an arXiv id), "8192 x 8192" (a size), digits counted up: not phone numbers
_DECIMAL = re2.compile(r"^\d+\.\d+$")
_NOT_PHONE = re2.compile(r"^\d{4}\.\d{4,5}$|^0?123456789|^\d{1,6}\s*x\s*\d+$")
_STREET_WORD = re2.compile(r"(?i)\b(?:street|st|road|rd|avenue|ave|lane|ln|drive|dr|boulevard|blvd|way|court|ct|"
                           r"place|pl|square|sq|close|crescent|terrace|parkway|highway|hwy|calle|callej[oó]n|avenida|"
                           r"camino|plaza|paseo|carrer|rua|via|viale|piazza|corso|rue|chemin|stra(?:ss|ß)e|str|platz|"
                           r"weg|gasse|allee|ulica|ul|al|os|straat|laan|gracht|vej|gata|gatan|katu|n[aá]m[eě]st[ií]|t[řr][ií]da|sokak|"
                           r"sokağı|caddesi|cad|odos|leoforos)\b")
# words that number something other than a house: a standard, a licence, a road, a part of a document or a product
NOT_ADDRESS_HEADS = frozenset("""Iso Rfc Pep Ieee Ecma Apache Gpl Lgpl Mpl Bsd Python Java Windows Android Ios Macos
    Ubuntu Debian Version Release Section Chapter Page Line Paragraph Article Clause Rule Appendix Figure Fig Table
    Volume Vol Part Episode Season Step Phase Stage Level Grade Class Route Highway Interstate Platform Gate Terminal
    Seat Flight Area Zone Sector Region Model Series Type Mark Gen Generation Track Exit Junction Psalm Verse
    Room""".split())
# a span that opens with a year (1950-2039) and has no street word: "2008 Civic, 230k", "2019 Camry"
_YEAR_LED = re2.compile(r"^(?:19[5-9]\d|20[0-3]\d)\s+\p{Lu}")
_NOT_ADDRESS_WORD = re2.compile(r"(?i)\b(?:kundennummer|rechnung|invoice|order|ticket|ref|reference|case|policy|"
                                r"polisnummer|factura|facture|fattura|factuur|bitte|please|merci|gracias|danke|obrigad[oa]|"
                                r"grazie|thanks|nights?|numer|nummer|numero|número)\b")
_NAME_PREFIXES = ("Mc", "Mac", "De", "Di", "Da", "La", "Le", "Van", "Von", "O'", "D'", "Fitz", "St")


def regex_entities(text: str, tables: list[Table] | None = None) -> list[tuple[int, int, str, float]]:
    """Rule matches (patterns + validators, router_extproc/pii/rules.py), typed like the model's entities."""
    return rule_entities(text, tables)


def _digits(s: str) -> int:
    return sum(c.isdigit() for c in s)


_TRAIL = " \t\n,.;:!?)]}>\"'"
_LEAD = " \t\n,;:([{<\"'"


def snap(text: str, s: int, e: int) -> tuple[int, int]:
    while s > 0 and text[s - 1].isalnum():
        s -= 1
    while e < len(text) and text[e].isalnum():
        e += 1
    while e > s and text[e - 1] in _TRAIL:
        e -= 1
    while s < e and text[s] in _LEAD:
        s += 1
    return s, e


class Piece(NamedTuple):
    """One word of a decoded entity. A `glued` piece continues the previous one (its first token has an I- tag);
    `combine` joins pieces into entities once the text is known."""
    start: int
    end: int
    type: str
    score: float  # mean P(not O) over the tokens
    glued: bool
    mass: dict  # type -> summed probability over the tokens
    n: int  # tokens


def decode_tags(probs: np.ndarray, offsets: list[tuple[int, int]], tags: tuple[str, ...], threshold: float
                ) -> list[Piece]:
    """probs: [n_tokens, n_tags] for content tokens only; offsets: char offsets of those tokens.

    A token with P(not O) >= threshold is inside an entity; a B- tag (on a new word) starts a new entity, an I- tag
    or a word piece continues the previous one whatever its type. Returns the entities as pieces (see `Piece`);
    `combine` gives each entity the type with the most probability mass over its tokens, so "Callejon de Paulina
    Frutos" stays one address even where the last word alone looks like a surname."""
    p_ent = 1.0 - probs[:, 0]
    if not len(p_ent) or p_ent.max() < threshold:
        return []  # the common case: no token is inside an entity
    best = probs[:, 1:].argmax(1) + 1
    types = sorted({t.split("-", 1)[1] for t in tags[1:]}, key=lambda t: tags.index("B-" + t))
    tcols = np.stack([probs[:, [tags.index("B-" + t), tags.index("I-" + t)]].sum(1) for t in types], 1)
    runs: list[list] = []  # one per word: [start_tok, end_tok, glued, scores]
    prev_end = None
    for i, (pe, b) in enumerate(zip(p_ent, best)):
        if pe < threshold or offsets[i][1] <= offsets[i][0]:
            prev_end = None
            continue
        bio = tags[b].split("-", 1)[0]
        if runs and prev_end == i - 1 and _same_word(offsets, i):
            runs[-1][1] = i  # word pieces stay in their word
            runs[-1][3].append(pe)
        else:
            runs.append([i, i, bool(runs) and prev_end == i - 1 and bio == "I", [pe]])
        prev_end = i
    out = []
    for a, b, glued, sc in runs:
        m = tcols[a:b + 1].sum(0)
        out.append(Piece(offsets[a][0], offsets[b][1], types[int(m.argmax())], float(np.mean(sc)), glued,
                         dict(zip(types, m.tolist())), b - a + 1))
    return out


def _entities(text: str, model_ents: list) -> list[tuple[int, int, str, float]]:
    """Join glued pieces into entities typed by their summed probability mass. A line break ends an entity where
    the next piece's type differs from the entity's so far (a name line above an address line: two entities)."""
    out: list[tuple[int, int, str, float]] = []
    group: list[Piece] = []

    def flush() -> None:
        if group:
            n = sum(p.n for p in group)
            out.append((group[0].start, group[-1].end, _heaviest_type(group), sum(p.score * p.n for p in group) / n))
            group.clear()

    for ent in model_ents:
        if not isinstance(ent, Piece):
            flush()
            out.append(tuple(ent[:4]))
            continue
        if ent.glued and group and ("\n" not in text[group[-1].end:ent.start] or ent.type == _heaviest_type(group)):
            group.append(ent)
            continue
        flush()
        group.append(ent)
    flush()
    return out


def _heaviest_type(group: list[Piece]) -> str:
    """The type with the most probability mass summed over a group of pieces."""
    mass: dict[str, float] = {}
    for p in group:
        for t, v in p.mass.items():
            mass[t] = mass.get(t, 0.0) + v
    return max(mass, key=mass.__getitem__)


def _same_word(offsets: list[tuple[int, int]], i: int) -> bool:
    return i > 0 and offsets[i][0] == offsets[i - 1][1]


def _overlap(a, b) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _phone_like(span: str) -> bool:
    return 7 <= _digits(span) <= 15 and PHONE_CHARS_RE.fullmatch(span) is not None and not DATE_RE.search(span)


def _name_shaped(span: str) -> bool:
    """A name has a capitalised word and no digits; `pip`, `sha256sum` and `ECONNREFUSED` are code, not people."""
    words = [w for w in span.split() if any(c.isalpha() for c in w)]
    return (not any(c.isdigit() for c in span) and any(w[0].isupper() for w in words)
            and not all(w.isupper() and len(w) > 1 for w in words) and not _random_word(span))


def _random_word(span: str) -> bool:
    """base64 and tokens: a word with two or more lower-to-upper humps ("RdescudvJCsgt3ub"); names have at most
    one (McDonald, DeAndre)."""
    return any(sum(a.islower() and b.isupper() for a, b in zip(w, w[1:])) >= 2 for w in span.split())


def _camel_word(w: str) -> bool:
    """GitHub, PyPI, AnyIO, MilvusClient, README.md: a product or a file, not a name (McDonald, DeAndre, O'Brien
    are names)."""
    if any(c in w for c in "._/#@") or (len(w) > 1 and w.isupper() and w.isalpha()) or \
            (len(w) > 2 and w[0].isupper() and w[1].isupper() and w[2].islower()):  # ETag, IOError
        return True
    humps = [i for i in range(1, len(w)) if w[i].isupper() and w[i - 1].islower()]
    return bool(humps) and not any(w[:i] in _NAME_PREFIXES for i in humps) or any(
        a.isupper() and b.isupper() for a, b in zip(w[1:], w[2:]) if w[0].isupper() and w[1:2].islower())


# nothing of code in an address; (pii14) but "#118" is a house number (Mexico, the Philippines, the US) and
# "Kadıköy/İstanbul" a district and its city
_CODE_CHARS = re2.compile(r"[`=+_*<>{}\[\]@]|#(?:[^\d]|$)")
_TOWN_SLASH = re2.compile(r"^\p{Lu}\p{Ll}+/\p{Lu}\p{Ll}+[.,]?$")


def _caseless(w: str) -> bool:
    """A word with letters of a script without case (Hangul "302동", Han, Thai)."""
    return any(c.isalpha() and not c.isupper() and not c.islower() for c in w)


def _address_shaped(span: str) -> bool:
    """A postal address has a house number or a postcode and a name (a capitalised word in lower case after its
    first letter: "BP" of "63, BP 160/100" is an abbreviation), or a street word and a capitalised word; nothing of
    code (backticks, #, =, +, underscores, a version like 3.13); and it does not open with a word that numbers a
    standard, a licence, a road or a part of a document ("ISO 639", "Apache 2", "Route 66", "Section 230")."""
    words = span.replace(",", " ").split()
    if len(words) < 2 or (words[0].rstrip(".").capitalize() in NOT_ADDRESS_HEADS and len(words) <= 3) or \
            _NOT_ADDRESS_WORD.search(span) is not None:
        return False  # a lone word ("Via"), or a reference or a request beside a number ("Rechnung 2025-118, bitte")
    # (pii14) a word of a script without case (Hangul, Han, Thai) names a place too
    named = any((w[:1].isupper() and w.isalpha() and not w.isupper()) or _caseless(w) for w in words)
    head, comma, tail = span.partition(",")
    if comma and any(c.isdigit() for c in tail) and _STREET_WORD.search(tail) is None and \
            not any(w[:1].isupper() or _caseless(w) for w in tail.split()):
        return False  # (pii12) "Lorna Manalang, 52 banua ku": an introduction's name and age clause, no town after it
    if len(words) == 2 and "," in span and _STREET_WORD.search(span) is None:
        return False  # "Okonkwo, 2 nights": a name, a comma, a count ("Storgatan 8" has no comma)
    return ((_ADDR_NUMBER.search(span) is not None and named) or (_STREET_WORD.search(span) is not None and any(
        w[:1].isupper() and w.isalpha() for w in words))) \
        and _CODE_CHARS.search(span) is None and re2.search(r"\d\.\d|\bPEP ?\d", span) is None \
        and not any(_camel_word(w.rstrip(".")) for w in words if not w[:1].isdigit() and
                    not w.isupper() and _TOWN_SLASH.search(w) is None and not w.startswith("#"))  # state and postcode letters (OR, BS7) are upper case


def _is_title(word: str) -> bool:
    return word.rstrip(".") in TITLES


_FIELD_LABEL_AFTER = re2.compile(r"^ \p{Ll}+:")
# (pii14) a capitalised verb with a lower-case clitic after its hyphen ("Pouvez-vous", "Ajudatz-me", "Dites-moi"); a
# hyphenated name has a capital after the hyphen ("Jean-Luc", "Solheim-Baptiste")
# (and not "Ka-fai", "Mei-ling": Chinese given names write the second syllable in lower case)
_CLITIC_WORD = re2.compile(r"^\p{Lu}\p{Ll}+-(?:vous|nous|moi|toi|lui|leur|me|te|se|le|la|les|lo|los|las|nos|vos|mi|ti|ci|"
                           r"vi|si|li|ne|lhe|lhes|yi|iw|k|m|t|y|en)$")
# (pii14) the names of languages, in English and as the Romance languages write "English" and "Spanish": a language
# asked for is no person ("translate into Tswana", "sa Ingles")
LANGUAGE_NAMES = frozenset("""Afrikaans Albanian Amharic Arabic Armenian Assamese Aymara Azerbaijani Bambara Basque
    Belarusian Bengali Bislama Bosnian Breton Bulgarian Burmese Catalan Cebuano Chichewa Chinese Corsican Croatian Czech
    Danish Dutch English Esperanto Estonian Ewe Faroese Fijian Filipino Finnish French Frisian Fula Fulani Galician
    Georgian German Greek Guarani Gujarati Haitian Hausa Hawaiian Hebrew Hindi Hmong Hungarian Icelandic Igbo Ilocano
    Indonesian Irish Italian Japanese Javanese Kannada Kazakh Khmer Kinyarwanda Kirundi Korean Kurdish Kyrgyz Lao Latin
    Latvian Lingala Lithuanian Luganda Luxembourgish Macedonian Malagasy Malay Malayalam Maltese Maori Marathi
    Mongolian Nepali Norwegian Occitan Odia Oromo Pashto Persian Farsi Polish Portuguese Punjabi Quechua Romanian
    Russian Samoan Sanskrit Serbian Sesotho Setswana Shona Sindhi Sinhala Slovak Slovenian Somali Spanish Sundanese
    Swahili Swedish Tagalog Tajik Tamil Tatar Telugu Thai Tigrinya Tongan Tsonga Tswana Turkish Turkmen Twi Ukrainian
    Urdu Uyghur Uzbek Venda Vietnamese Welsh Wolof Xhosa Yiddish Yoruba Zulu Ingles Inglés Englisch Anglais Inglese
    Español Espanol Castellano Francés Frances Français Francais Deutsch Alemán Aleman""".split())


def _model_span(text: str, s: int, e: int, typ: str, doc: bool = False) -> tuple[int, int, str] | None:
    """Type-specific checks of one snapped model span; returns the (possibly retyped/extended) span or None. `doc`:
    the text reads as documentation (rules.looks_like_documentation)."""
    span = text[s:e]
    if typ in ("EMAIL_ADDRESS", "IP_ADDRESS", "CREDIT_CARD", "IBAN_CODE"):
        return None  # these types need a validated match
    if typ == "US_SSN" and _digits(span) != 9:
        return None
    if typ == "STREET_ADDRESS" and not any(c.isalpha() for c in span):
        # an address has a street name; a bare number is a phone number or nothing
        if not _phone_like(span):
            return None
        typ = "PHONE_NUMBER"
    if typ == "STREET_ADDRESS" and (not any(c.isdigit() or c.isupper() for c in span) or _random_word(span)):
        return None  # neither a number nor a capitalised name ("traffic", "y/o") is not an address, nor is base64
    if typ == "STREET_ADDRESS" and _YEAR_LED.search(span) is not None and _STREET_WORD.search(span) is None:
        return None  # (pii8) a model year and a model, "2008 Civic, 230k km" (held_out_11), is a car, not an address
    if typ == "PHONE_NUMBER":
        if not _phone_like(span) or _NOT_PHONE.search(span.strip()) is not None or \
                len({c for c in span if c.isdigit()}) == 1 or reference_before(text, s) or company_line(span) or company_line_before(text, s) or \
                in_link(text, s) or _DECIMAL.search(span) is not None or \
                (s > 1 and text[s - 1] == "." and text[s - 2].isdigit()):
            # hashes, ids, sizes, timings, invoice/ticket/order numbers, a company's freephone line, a number in a
            # link and the digits of a decimal ("0.0140845", "0.|9935992") are not phone numbers
            return None
        if s > 0 and text[s - 1] == "+":
            s -= 1  # the international prefix belongs to the number
    if typ == "PERSON" and "\n" in span.strip():
        e = _own_line(text, s, e)
        span = text[s:e]
    if typ == "PERSON":
        if not any(c.isalpha() for c in span) or _is_title(span) or not _name_shaped(span):
            return None
        words = span.split()
        # an initial ("K. Nakamura") is no file name or dotted identifier
        if any(_camel_word(w) for w in words if not _is_title(w) and not (len(w) == 2 and w[0].isupper() and
                                                                          w[1] == ".")) or \
                span.lower() in PLACEHOLDER_NAMES or \
                _LABEL_BEFORE.search(text[max(0, s - 8):s]) is not None:
            return None
        if doc and sum(1 for w in words if w[:1].isupper() and not _is_title(w)) < 2:
            return None
        # lower-case words at the edges are the head's overreach ("ping Yusuf", "Jake Lester from"): trimmed; one
        # inside makes the span a phrase
        while words and words[0][:1].islower() and words[0] not in NAME_PARTICLES:
            s = text.index(words[1], s + len(words[0])) if len(words) > 1 else e
            words = words[1:]
        while len(words) > 1 and words[0].strip(",.!") in NOT_NAME_WORDS and not _is_title(words[0]):
            s = text.index(words[1], s + len(words[0]))  # a greeting the head ran into the name: "Terve |Juha|"
            words = words[1:]
        while words and words[-1][:1].islower():  # a name never ends in a particle ("Dirección de")
            e = text.rindex(words[-2], s, e) + len(words[-2]) if len(words) > 1 else s
            words = words[:-1]
        core = [w.strip(".,;:!?'’\"()") for w in words if not _is_title(w)]
        after = text[e:e + 20].split(None, 1)
        if core and (core[-1] in PLACE_NOUNS or core[-1] in PRODUCT_WORDS or (after and after[0].strip(".,;:!?'’\"()") in PLACE_NOUNS
                                                  and text[e:e + 1] == " ")):
            return None
        if not core or any(w[:1].islower() and w not in NAME_PARTICLES for w in core) or \
                (len(core) == 1 and core[0] in BRANDS) or \
                all(len(w.rstrip(".")) <= 1 for w in core) or \
                all(w in NOT_NAME_WORDS for w in core) or \
                (len(core) == 1 and _LABEL_AFTER.search(_raw(text[e:e + 8])) is not None) or \
                (len(core) == 1 and _NOUN_BEFORE.search(_raw(text[max(0, s - 8):s])) is not None):
            return None
        if len(core) == 1 and _opening_noun(text, s, e, core[0]):
            return None  # (pii20) "Note: |Between| song inside", "|Bursary| application", "|Nipigie| kwa +254 ..."
        if len(core) == 1 and (core[0] in LANGUAGE_NAMES or _CLITIC_WORD.search(core[0]) is not None):
            return None  # (pii14) "translate into |Tswana|", "sa |Ingles|"; a verb with its clitic, "|Pouvez-vous|"
        if TRADE_BEFORE.search(_raw(text[max(0, s - 24):s])) is not None or \
                TRADE_BEFORE.search(_raw(core[0] + " ")) is not None:
            return None  # (pii14) a business named for a person: "Pizzeria Da |Gennaro|", "|Taqueria El Sol|"
        if len(core) == 1 and (s == 0 or text[s - 1] == "\n") and _FIELD_LABEL_AFTER.search(_raw(text[e:e + 24])):
            return None  # (pii14) a form's label opening a line: "|Kargo| adresi:", "|Giao| hàng:"
        m = _TITLE_BEFORE.search(text[max(0, s - 16):s])
        if m and _is_title(m.group(1)):
            s = max(0, s - 16) + m.start(1)  # "Dr. |Jane Roe|" -> "|Dr. Jane Roe|"
    return s, e, typ


# (pii20) what follows a lone name that opens a sentence: a verb of saying, being or having, a conjunction, an
# honorific or "from"/"who" ("Tom says ...", "Zanele is turning 7", "Kiran left a voicemail", "Ayşe hanım")
_AFTER_LONE_NAME = frozenset("""is was has had have says said will would can could may might must should shall left
    went came comes asked asks told tells wants wanted wrote writes called calls sent sends replied replies just also
    and or from who here hat ist war sagt sagte kommt kam wird und est a dit était sera et es está dice dijo tiene fue
    y é diz disse tem foi e è ha heeft zegt zei komt en ni na bey hanım san kun sama ji needs wants gets got made
    makes took takes gave gives lives works moved moves starts joined joins bought pays paid owes booked emailed
    texted rang phoned signed knows thinks feels loves likes hates lost found""".split())


def _opening_noun(text: str, s: int, e: int, word: str) -> bool:
    """(pii20) A lone capitalised word the head read as a name that opens a sentence, is no given name of the lexicon
    and goes on into lower-case words that no name is followed by: the sentence's first word, capitalised because it
    opens it ("Ticket #84343: |Big| forget the walk", "|Physio| booking over WhatsApp", "|Xin| chào")."""
    if word.lower() in GIVEN_NAMES or text[e:e + 1] != " " or \
            text[max(0, s - 40):s].rstrip(" \t")[-1:] not in ("", "\n", ".", "!", "?", ":"):
        return False
    nxt = text[e + 1:e + 40].split(None, 1)
    word_after = nxt[0].strip(".,;:!?") if nxt else ""
    # (a verb in the past, "Ngozi booked ...", "Tariq emailed ...", follows a name as the listed verbs do)
    return word_after[:1].islower() and word_after not in _AFTER_LONE_NAME and \
        not (len(word_after) > 4 and word_after.endswith("ed"))


# (pii10) a list item's start inside an address span: a roster's "- Maya Chowdhury, 6\n- Leo Brandt" (held_out_13) is
# people and ages, one a line, not a street and a town
_LIST_ITEM = re2.compile(r"\n[ \t]*(?:[-*\x{2022}]|\d{1,2}[.)])[ \t]")


# (pii14) what an address span may not be, once trimmed: a date ("25 Kotoba 1994", "Hunyo 8") or an age and the
# clause after it ("23, from Plovdiv")
_DATE_SHAPED = re2.compile(r"^(?:\d{1,2}\.?\s\p{L}{3,12}\.?,?\s(?:1[89]|20)\d{2}|\p{Lu}\p{Ll}{2,11}\s\d{1,2})$", RE2_LARGE)
_COUNT_CLAUSE = re2.compile(r"^\d{1,3},\s\p{Ll}")
_NUMBER_BEFORE = re2.compile(r"(?:^|[\s,:])(\d{1,5}[A-Za-z]?)((?:\s\p{Lu}[\p{L}'.-]*){0,4})\s$")


def _whole_addresses(text: str, ents: list) -> list:
    """The whole address, once its parts are joined, trimmed (_trim_address): "PEP-593", "bfloat16", "GraalPy 3.13"
    are not addresses, nor is a business's, a title's in quotes or a list's."""
    return [x for x in (_trim_address(text, x) for x in ents) if x is not None and (
        x[2] != "STREET_ADDRESS" or
        # (pii11) an HL7 address's components are joined by "^" (PID-11), not written as prose
        (_address_shaped(text[x[0]:x[1]]) or "^^" in text[x[0]:x[1]] or
         (not text[x[0]:x[1]].isascii() and script_address(text[x[0]:x[1]]))) and not business_address(text, x[0], x[1])
        and not _title_in_quotes(text, x[0], x[1]) and _LIST_ITEM.search(text[x[0]:x[1]]) is None)]


_COLUMN_GAP = re2.compile(r"[^\s] {3,}[^\s]")


def _trim_address(text: str, x: tuple) -> tuple | None:
    """(pii14) An address span without the clause's lower-case words the head ran into it, before its first word
    ("han |Hunyo 8|") or after a comma at its end ("41 High Street|, does scones|"); None when what is left is a
    date or an age's clause. Street words in lower case stay ("via Roma 12", "ul. Długa 5")."""
    if x[2] != "STREET_ADDRESS":
        return x
    s, e = x[0], x[1]
    gap = _COLUMN_GAP.search(text[s:e])
    if gap is not None:
        e = s + gap.start() + 1  # (pii19) a run of spaces inside a line is an aligned table's column gap:
        # "Centraal   IC 3518" is two cells (an indented next line of a letter's address is not)
    words = text[s:e].split(" ")
    while len(words) > 1 and words[0].isalpha() and words[0].islower() and _STREET_WORD.search(words[0]) is None \
            and _STREET_ABBR_BEFORE.search(words[0] + " ") is None:
        s += len(words[0]) + 1
        words = words[1:]
    cut = text.rfind(", ", s, e)
    if cut > s and text[cut + 2:cut + 3].islower() and not any(c.isdigit() for c in text[cut:e]) and \
            _STREET_WORD.search(text[cut:e]) is None:
        e = cut
    if not any(c.isdigit() for c in text[s:e]) and not (not text[s:e].isascii() and script_address(text[s:e])):
        # (pii19: a layout whose own words name its parts needs no number: "شارع ...، حي ...، جدة")
        # the house number the head left out before the street ("at |14| Jacaranda Avenue, ...") belongs to it; an
        # address without any number is a street's name ("runs along Martin Luther King Jr Blvd"): none of the 175
        # addresses of the message sets lacks a house number or a postcode
        m = _NUMBER_BEFORE.search(text[max(0, s - 40):s]) if _STREET_WORD.search(text[s:e]) is not None else None
        if m is None:
            return None
        s = max(0, s - 40) + m.start(1)
    span = text[s:e]
    if _DATE_SHAPED.search(span) is not None or _COUNT_CLAUSE.search(span) is not None:
        return None
    return (s, e, x[2], x[3])


def _grows_address(text: str, s: int, e: int) -> bool:
    """The head's longer span may grow a rule's address where the whole still reads as one and survives the trim
    (pii19: not "214, alamat KTP Jl. Diponegoro No. 88, Semarang", a room count's clause run into it, which the
    trim drops whole, the rule's address with it)."""
    return _address_shaped(text[s:e]) and _trim_address(text, (s, e, "STREET_ADDRESS", 0.0)) is not None


def _title_in_quotes(text: str, s: int, e: int) -> bool:
    """A street name alone in quotes is a title ("84 Charing Cross Road", a book, held_out_13), not an address: an
    address in quotes has a comma (a town, a postcode)."""
    # (pii12) a JSON value (after a key's colon, or in its list) is a field of a record, not a title
    return s > 0 and e < len(text) and text[s - 1] in "\"\u201c\u00ab'" and text[e] in "\"\u201d\u00bb'" \
        and "," not in text[s:e] and not text[max(0, s - 5):s - 1].rstrip().endswith((":", "[", ": ["))


def _joinable(text: str, a: tuple, b: tuple) -> bool:
    """May two consecutive same-type spans be one entity?"""
    gap = text[a[1]:b[0]]
    if a[2] == "STREET_ADDRESS":
        # parts of one postal address: street, unit, city, postcode, country on separate lines or after commas
        # (and one capitalised word the head left out between them: "Via| Roma |12, 20121 Milano")
        rest = "\n".join(line.lstrip(" \t>") for line in gap.split("\n")).strip(" \t\n\r,")
        return rest == "" or (rest.isalpha() and rest[:1].isupper() and gap.startswith(" ") and gap.endswith(" "))
    if a[2] == "PERSON":
        return gap == " " or (gap == ". " and _is_title(text[a[0]:a[1]]))
    return False


def combine(text: str, model_ents: list) -> list[tuple[int, int, str, float]]:
    """Model entities (pieces from `decode_tags`, or plain (start, end, type, score) tuples) + validated regex
    matches -> final entities."""
    text = scrub(text)  # offsets unchanged (pii/rules.py)
    tables = read_tables(text)  # (pii17) read once: the rules type their cells, _not_row_numbers spares their index
    rx = regex_entities(text, tables)
    ents = _entities(text, model_ents)
    urls = url_spans(text) if ents else []
    doc = bool(ents) and looks_like_documentation(text)
    out = list(rx)
    for s, e, typ, sc in ents:
        s, e = snap(text, s, e)
        if e <= s:
            continue
        hit = [r for r in rx if _overlap((s, e), (r[0], r[1]))]
        if hit and typ != "PERSON" and all(h[2] == "PERSON" or (h[2] in ("AGE", "DATE_OF_BIRTH") and typ != h[2]) for h in hit):
            # a name the rules found at the edge of the head's span ("Labas, |Rūta|, mano adresas Gedimino pr. 9,
            # ..."): the span keeps what lies beyond it; (pii9) so does an age or a birth date ("yuswa |61| taun,
            # alamat Jl. Cihampelas No. 88", held_out_12)
            for h in hit:
                if h[0] <= s < h[1] < e:
                    s = h[1]
                elif s < h[0] < e <= h[1]:
                    e = h[0]
            while s < e and not text[s].isalnum():
                s += 1  # (past the separator, so that snap does not grow back into the rule's entity)
            while e > s and not text[e - 1].isalnum():
                e -= 1
            if typ == "STREET_ADDRESS" and text[s:s + 1].islower():
                # the words left between the rule's entity and the address are the clause's, not the address's
                # ("|36| ti tawenko, agnaed ak iti 45 Rizal St."): it starts at its first number or capital
                i = next((i for i in range(s, e) if (text[i].isdigit() or text[i].isupper()) and
                          (i == s or not text[i - 1].isalnum())), e)
                s = i
            s, e = snap(text, s, e)
            if e <= s:
                continue
            hit = [r for r in rx if _overlap((s, e), (r[0], r[1]))]
        if hit and typ == "PERSON" and len(hit) == 1 and hit[0][1] < e and ";" in text[hit[0][1]:e]:
            # "myerssharon; Evan from": the head ran a login into the next clause's name; the name stays
            s, e = snap(text, hit[0][1] + text[hit[0][1]:e].index(";") + 1, e)
            hit = [] if e > s else hit
        if hit and not (typ in ("PERSON", "STREET_ADDRESS") and all(h[2] == typ for h in hit) and (
                typ == "PERSON" or _grows_address(text, min([s] + [h[0] for h in hit]), max([e] + [h[1] for h in hit])))):
            # validated match wins; a name or an address the rules found may grow to the head's longer span (an
            # address only where the whole still reads as one: not "1100-053 Lisboa. Obrigada")
            continue
        if typ in ("PERSON", "STREET_ADDRESS") and any(_overlap((s, e), u) for u in urls):
            continue  # words inside a URL are not names or addresses
        got = _model_span(text, s, e, typ, doc)
        if got is None:
            continue
        out.append((*got, sc))
    out.sort()
    merged: list[tuple[int, int, str, float]] = []
    for ent in out:
        if merged and _overlap(merged[-1], ent):
            a = merged[-1]
            if a[2] == ent[2]:
                merged[-1] = (a[0], max(a[1], ent[1]), a[2], max(a[3], ent[3]))
            elif ent[3] > a[3]:
                merged[-1] = ent
            continue
        merged.append(ent)
    joined: list[tuple[int, int, str, float]] = []
    for ent in merged:
        if joined and joined[-1][2] == ent[2] and _joinable(text, joined[-1], ent):
            a = joined[-1]
            joined[-1] = (a[0], ent[1], a[2], max(a[3], ent[3]))
            continue
        joined.append(ent)
    joined = [x for x in _whole_names(text, joined) if x[2] != "PERSON" or not _pet_name(text, x[0], x[1])]
    out = _address_tails(text, _whole_addresses(text, _street_names(text, joined)))
    if any(x[2] == "PERSON" for x in out) and looks_like_documentation(text):
        out = [x for x in out if x[2] != "PERSON" or _CODE_VALUE_BEFORE.search(_raw(text[max(0, x[0] - 12):x[0]])) is None]
    out = [x for x in out if x[2] != "USERNAME" or _login_ok(text, x[0], x[1])]
    out = [x for x in out if (x[2] != "DATE_OF_BIRTH" or _ZERO_DATE.search(text[x[0]:x[1]]) is None) and
           (x[2] != "AGE" or not _things_age(text, x[0]))]
    out = _named_logins(text, _named_sites(text, _intro_lead(text, out)))
    return _not_row_numbers(text, _person_details(text, _mentions(text, _lexicon_names(text, out))), tables)


# (pii19) a date with a zero day, month or year ("0000-00-00", "00/00/1990") is a template's stand-in, no birth
_ZERO_DATE = re2.compile(r"(?:^|[^\d])0+(?:$|[^\d])")


def _not_row_numbers(text: str, ents: list[tuple[int, int, str, float]], tables: list[Table]
                     ) -> list[tuple[int, int, str, float]]:
    """(pii15) A table's row numbers and id cells (pii/tables.py) are nobody's age or address, whoever found them:
    "0" under "age" in a df.head() print, "41<TAB>Aurélie" read as a house number and a street."""
    if not ents or not tables:
        return ents
    ends = {a: b for t in tables for a, b in t.index}
    # (pii16) an address never runs from one table row into the next: "Bergen\n      2082" is a city cell and the
    # next row's number, whoever joined them
    # (pii17) of a table with a header: lines split alike without one may be an address's own lines ("Apt. 4,")
    cells = sorted(a for t in tables if t.headed for col in (t.index, *t.columns) for a, _ in col)
    return [x for x in ents if not (x[0] in ends and (x[1] <= ends[x[0]] or x[2] == "STREET_ADDRESS"))
            and not (x[2] == "STREET_ADDRESS" and _into_row(text, cells, x[0], x[1]))]


def _into_row(text: str, cells: list[int], s: int, e: int) -> bool:
    """A span that crosses a line end and reaches a table's cell on a later line."""
    nl = text.find("\n", s, e)
    if nl < 0:
        return False
    k = bisect.bisect_right(cells, nl)
    return k < len(cells) and cells[k] < e


# (pii11) not a login, whoever found it: a chat platform's member id ("U02AB3C9"), a bot's name before "[bot]"
# ("renovate[bot]"), an organisation's acronym handle ("@NASA", "@WHO")
_MEMBER_ID = re2.compile(r"^[UWB][A-Z0-9]{3,12}$")  # (pii14: short ones too, "U02HX"; a digit is required below)


def _login_ok(text: str, s: int, e: int) -> bool:
    v = text[s:e].lstrip("@")
    return not (_MEMBER_ID.search(v) and any(c.isdigit() for c in v)) and not text[e:e + 5].lower() == "[bot]" \
        and not (v.isalpha() and v.isupper() and 2 <= len(v) <= 6) and not _digest(v) and \
        _SERVICE_MAILBOX.search(v) is None and _TIME_COLUMN.search(v) is None


# (pii20) one home for logins that are nobody's: a service mailbox ("SMTP_USER=noreply", "user =
# noreply-bounce-handler") and a timestamp column's name ("SELECT nick, pw, signup_at FROM ...")
_SERVICE_MAILBOX = re2.compile(r"(?i)^(?:no-?reply|do-?not-?reply|mailer-daemon|postmaster|bounces?)(?:$|[-_.+])")
_TIME_COLUMN = re2.compile(r"(?i)^[a-z]+(?:_[a-z]+)*_(?:at|on|ts|utc|date|time|timestamp)$")


def _digest(v: str) -> bool:
    """(pii16) A password hash is no login: a hex digest (MD5, SHA-1, SHA-2 lengths) or a crypt string ("$2b$...",
    "$argon2id$...") in a pw_hash column."""
    if v.startswith(("$2a$", "$2b$", "$2y$", "$argon2", "$6$", "$5$", "$1$", "pbkdf2")):
        return True
    return len(v) in (32, 40, 56, 64, 96, 128) and all(c in "0123456789abcdefABCDEF" for c in v) and \
        any(c.isdigit() for c in v) and any(c.isalpha() for c in v)


# (pii11) a self-introduction in a language the tables do not name has one shape: a phrase (a capitalised word, then
# one to three lower-case words: "Минем исемем", "Mano vardas", "Kuv lub npe yog") and then the name (two or three
# capitalised words) before a comma or a full stop. The phrase's first word is no name (the head often takes it for
# one); the name is. English lead words ("we met", "thanks to") and a first word that is a given name ("Maria asked
# Jonas Petraitis, ...") are no such phrase.
# (pii14) the phrase's words may carry apostrophes, hyphens and combining marks ("Nub'i' are", "Chamo-me", "Isem-iw",
# Kabardian "цӀе" with its palochka), run to five words ("U kyrteng jong nga u"), and its first word may be one letter
# ("N tɔgɔ ye"); a name's part may be hyphenated ("Tân Bí-lē"); up to two short lower-case words may follow the name
_INTRO_WORD = rb"[\p{Ll}\x{04CF}][\p{Ll}\p{M}'\x{2019}\x{04C0}\x{04CF}-]*"
_NAME_PART = rb"\p{Lu}[\p{Ll}\p{M}'\x{2019}]+(?:-\p{L}[\p{Ll}\p{M}]*)?"
_INTRO_SHAPE = re2.compile(rb"^\s*(\p{Lu}[\p{Ll}\p{M}'\x{2019}]*(?:-\p{Ll}+)?),?((?:\s" + _INTRO_WORD + rb"){1,5})\s(" +
                           _NAME_PART + rb"(?:[ -]" + _NAME_PART + rb"){1,2})(?:\s\p{Ll}[\p{Ll}\p{M}'\x{2019}]{0,8}){0,2}[,.;]",
                           RE2_LARGE)  # (its Unicode classes overflow RE2's default DFA budget)
_ENGLISH_LEAD = frozenset("""a an the and or but to for with from by of at in on is was are were be been has have had
    we i you he she they it me us him her them my our your his their met meet asked ask told tell called call emailed
    email thanks thank hi hello dear hey says said see saw with via cc dm ping contact please sorry if when as so that
    this then also only just not no yes do does did can could will would should may might must let lets""".split())


_CONJUNCTIONS = frozenset("and und et y e i en og och ja és a şi si ve dan na ni kaj oraz ir un та і и".split())


def _intro_lead(text: str, ents: list[tuple[int, int, str, float]]) -> list[tuple[int, int, str, float]]:
    head = _raw(text[:200])
    m = _INTRO_SHAPE.search(head)
    if m is None:
        return ents

    def at(i: int) -> int:
        return len(head[:i].decode("utf-8", "surrogatepass"))

    first, lead = m.group(1).decode(), m.group(2).decode().split()
    # (pii14) a first word that is also a given name somewhere ("Edina", "Vito") still opens the phrase, unless a
    # conjunction joins it to the name ("Maria och Jonas Berg": two people)
    if first.lower() in _ENGLISH_LEAD or any(w in _ENGLISH_LEAD for w in lead) or first in NOT_NAMES or (
            first.lower() in GIVEN_NAMES and (len(lead) < 2 or any(w in _CONJUNCTIONS for w in lead))):
        return ents
    s, e = at(m.start(3)), at(m.end(3))
    words = text[s:e].split()
    if any(w in NOT_NAMES or w in BRANDS for w in words):
        return ents
    ents = [x for x in ents if not (x[2] == "PERSON" and x[1] <= at(m.end(2)) + 1)]  # the phrase's words
    if any(_overlap((s, e), x) and x[2] != "PERSON" for x in ents):
        return ents
    return sorted([x for x in ents if not (x[2] == "PERSON" and _overlap((s, e), x))] + [(s, e, "PERSON", 0.8)])


# (pii9) One name that the head or the rules cut in pieces, or took in part, becomes one PERSON (held_out_12:
# "HALVORSEN, Ingrid" -> 'Ingrid'; 'Harold "Hal" Pemberton' -> 'Harold' + 'Pemberton'; "Nelinha da Costa" ->
# 'Nelinha' + 'Costa'). What may lie between two pieces of one name: a nickname in quotes, particles, initials.
_PARTICLE_RUN = re2.compile(r"^ (?:(?:van|von|der|den|de|da|di|du|del|della|dos|das|do|la|le|ter|ten|bin|binti|bint|"
                            r"ibn|al|el|zu|af|ap) ){1,3}$")
_GIVEN_CLOSE = re2.compile(r"^(, \p{Lu}[\p{Ll}\p{M}'\x{2019}-]+(?: \p{Lu}\.?)?)(?:[\"}]| and )")
# (pii14) one capitalised word between two names the head found ("|Lalu| Azhar |Hamdi|"): the middle name it missed
_MIDDLE_GAP = re2.compile(r"^ \p{Lu}\p{Ll}+ $")
_NICK_GAP = re2.compile(r"^ [\"“„'‘(]\p{Lu}[\p{L}.-]{0,15}[\"”'’)] $")
_INITIALS_GAP = re2.compile(r"^ (?:\p{Lu}\. ?){1,3}$")
# at a piece's edges: initials (with a title) before it, a register's "SURNAME, " before a lone given name, a
# nickname in quotes, particles or an all-capitals surname after it
_BEFORE_NAME = re2.compile(r"(?:^|[\s(:;,\-])((?:(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.? )?(?:\p{Lu}\. ?){1,3}|"
                           r"\p{Lu}{2}[\p{Lu}'\-]{1,20}, )$", RE2_LARGE)
_AFTER_NAME = re2.compile(r"^(?: [\"“„'‘(]\p{Lu}[\p{L}.-]{0,15}[\"”'’)] \p{Lu}\p{Ll}[\p{L}'\-]+|"
                          r" (?:(?:van|von|der|den|de|da|di|du|del|della|dos|das|do|la|le|ter|ten|bin|ibn|al|el) ){1,3}"
                          r"\p{Lu}\p{Ll}[\p{L}'\-]+|"
                          r" \p{Lu}{2}[\p{Lu}'\-]{1,20})(?:[^\p{L}\p{N}]|$)")


# (pii9) a pet's name is no person (the convention of the message sets): one word right after an animal or a breed
# ("grey cat, answers to Mochi", "our dog Bella", "a cat called Mochi") or right before one in brackets or after a
# comma ("Bella (spaniel, 9 years old)", "Biscuit, the beagle")
_ANIMALS = (rb"dog|cat|puppy|pup|kitten|pet|horse|pony|hamster|rabbit|bunny|parrot|budgie|tortoise|turtle|goldfish|"
            rb"lizard|snake|ferret|guinea pig|gerbil|beagle|labrador|retriever|spaniel|terrier|poodle|collie|"
            rb"sheepdog|dachshund|pug|husky|greyhound|whippet|lurcher|tabby|moggy|mare|stallion|gelding|cockatiel")
_PET_BEFORE = re2.compile(rb"(?i)\b(?:" + _ANIMALS + rb")s?\b(?:,)?(?:\s+(?:called|named|answers to|is called|"
                          rb"is named|whose name is))?[\s,:]*$|(?i)\banswers to\s+$")
_PET_AFTER = re2.compile(rb"(?i)^\s*(?:\(|,\s*(?:the|my|our|a|an)?\s*|\s+the\s+)(?:[\w-]+\s+)?(?:" + _ANIMALS + rb")s?\s*(?:[,.;:)!?]|$)")


def _pet_name(text: str, s: int, e: int) -> bool:
    if " " in text[s:e].strip():
        return False
    if _PET_BEFORE.search(_raw(text[max(0, s - 40):s])) is not None:
        return True
    m = _PET_AFTER.search(_raw(text[e:e + 30]))
    # ("Sarah, the dog walker": the animal word qualifies a person's role)
    return m is not None and _raw(text[e:e + 30])[m.end():].split(b" ", 2)[1:2] not in (
        [w] for w in (b"walker", b"sitter", b"groomer", b"trainer", b"owner", b"breeder", b"lover", b"person",
                      b"handler", b"minder", b"doctor", b"vet", b"nurse"))


def _caps_surname(w: str) -> bool:
    w = w.strip(" ,")
    return len(w) >= 3 and w.upper() == w and w not in _CAPS_NOT_SURNAME


def _whole_names(text: str, ents: list) -> list:
    out: list = []
    for ent in ents:
        if out and ent[2] == "PERSON" and out[-1][2] == "PERSON":
            gap = text[out[-1][1]:ent[0]]
            if out[-1][1] >= ent[0] or _PARTICLE_RUN.search(gap) or _NICK_GAP.search(gap) or _INITIALS_GAP.search(gap) or (
                    _MIDDLE_GAP.search(gap) and gap.strip() not in NOT_NAME_WORDS and gap.strip() not in PLACE_NOUNS) or (
                    gap == ", " and _caps_surname(text[out[-1][0]:out[-1][1]]) and " " not in text[ent[0]:ent[1]]):
                a = out.pop()
                ent = (a[0], max(a[1], ent[1]), "PERSON", max(a[3], ent[3]))
        if ent[2] == "PERSON" and " " not in text[ent[0]:ent[1]] and text[ent[1]:ent[1] + 2] == ", " and \
                (text[ent[0] - 1:ent[0]] in ("\"", "{") or text[max(0, ent[0] - 5):ent[0]] == " and "):
            m = _GIVEN_CLOSE.search(text[ent[1]:ent[1] + 40])
            if m is not None:  # (pii14) a record's "Surname, Given": [White "Okafor, Chiamaka"], {Haddad, Karim}
                ent = (ent[0], ent[1] + m.end(1), "PERSON", ent[3])
        if ent[2] == "PERSON":
            s, e = ent[0], ent[1]
            # (pii12) cheap pre-checks first: the two patterns' Unicode classes overflow RE2's DFA, so each search
            # is slow, and they can only match a window that ends in "." / ", " or starts with a space
            lead_win = text[max(0, s - 30):s]
            m = _BEFORE_NAME.search(lead_win) if lead_win.endswith((".", ". ", ", ")) else None
            if m is not None:
                lead = m.group(1)
                if not lead.endswith(", ") or (_caps_surname(lead) and " " not in text[s:e]):
                    s -= len(lead)
            m = _AFTER_NAME.search(text[e:e + 40]) if text[e:e + 1] == " " else None
            if m is not None:
                tail = m.group(0) if m.group(0)[-1:].isalpha() else m.group(0)[:-1]
                if not tail.strip().isupper() or _caps_surname(tail):
                    e += len(tail)
            if (s, e) != (ent[0], ent[1]) and not any(x is not ent and x[2] != "PERSON" and _overlap((s, e), x)
                                                      for x in ents):
                ent = (s, e, "PERSON", ent[3])
        out.append(ent)
    return out


# a street abbreviation or word right before a name the head took for a person: "ul. |Długa| 12/4, 00-238 Warszawa"
_STREET_ABBR_BEFORE = re2.compile(r"(?i)\b(?:ul|al|os|pl|str|via|viale|rue|calle|avda|avenida|rua|strada|ulica|utca|"
                                  r"odos|sokak|cad)\.?\s$")


def _street_names(text: str, ents: list) -> list:
    """A PERSON right before an address that opens with a house number, after a street word, is the street's name
    (streets are named after people): the two become one address."""
    out: list = []
    for ent in ents:
        if out and ent[2] == "STREET_ADDRESS" and out[-1][2] == "PERSON" and text[out[-1][1]:ent[0]] == " " and \
                text[ent[0]:ent[0] + 1].isdigit() and \
                _STREET_ABBR_BEFORE.search(text[max(0, out[-1][0] - 8):out[-1][0]]) is not None:
            a = out.pop()
            s = a[0] - len(text[max(0, a[0] - 8):a[0]].split()[-1]) - 1
            out.append((max(0, s), ent[1], "STREET_ADDRESS", max(a[3], ent[3])))
            continue
        out.append(ent)
    return out


# a quoted value in a program: name='Dr. Strange', {'name': 'Samuel'}, HelloRequest(name="Ana"). In documentation
# these are example values; in a user's message (a pasted record) they are kept
_CODE_VALUE_BEFORE = re2.compile(rb"[=:(,]\s*['\"]$")


# right after a name: an age set off by a comma or a bracket ("Mr. Kwame Asante, 71, lives", "(K. Nakamura, 52)"),
# or a date in brackets ("my mother Ruth Keller (09/22/1941)"): how notes and letters give them; (pii14) and a chat's
# "Ximena here, 29, ..."
_AGE_AFTER_NAME = re2.compile(rb"^(?: here)?(?:,\s*|\s*\(\s*)(\d{1,3})(?:\s*(?:y/?o|years?(?: old)?|"
                             # (pii17) the word for years in other languages: "Kacper Nowicki (16 lat)"
                             rb"lat|lata|let|rok\xc3\xb3w|a\xc3\xb1os|anos|ans|anni|Jahre|jaar|\xc3\xa5r|vuotta|\xc3\xa9ves|"
                             rb"godina|godine|ya\xc5\x9f\xc4\xb1nda))?\s*(?:[,;)]|\.(?:\s|$)|$)")
_DATE_AFTER_NAME = re2.compile(rb"^\s*\(\s*(?:born |b\. |geb\. |n[\xc3\xa9]e? le )?(\d{1,2}(?:[./-]|\. )\d{1,2}(?:[./-]|\. )\d{2,4}|\d{4}-\d{2}-\d{2})"
                               rb"\s*\)")


# (pii11) a self-introduction that goes on, in the same or the next sentence, to a small number and a word or to a
# date: in any language that is the age ("Mje rěka Jan Šołta, sym 45 lět stary") or the birth date ("Volám sa
# Zuzana Kováčová, narodila som sa 22. septembra 1976"). Only after a name that a short lead (one to four words, no
# digits) opens the message with, and after lower-case words only (a capitalised word before the number is a street's
# or a place's: "osoitteeni on Mannerheimintie 12"); counts of things ("3 rooms") and English leads are no such clause.
# (pii12) the age may open the next sentence's clause ("... Иванова. Мин 27 саастаахпын", "Taani 29 layttaa": one
# capitalised word first), follow up to five lower-case words, and end the clause ("ke na le mengwaga ye 45.")
_INTRO_AGE = re2.compile(rb"^(?:\s\p{Ll}[\p{Ll}\p{M}'\x{2019}]{0,8}){0,2}(?:[,;]\s*|\.\s+(?:\p{Lu}\p{Ll}{1,10}\s+)?)"
                         rb"(?:\p{Ll}[\p{L}'\x{2019}-]*\s+){0,5}(\d{1,3})(?:\s+(\p{L}+)|[.,;!?](?:\s|$)|$)", RE2_LARGE)
_INTRO_DATE = re2.compile(rb"^(?:\s\p{Ll}[\p{Ll}\p{M}'\x{2019}]{0,8}){0,2}[,.;]\s*(?:\p{Ll}[\p{L}'\x{2019}]*\s+){0,4}"
                          rb"(\d{1,2}[./-]\d{1,2}[./-](?:19|20)\d{2}|(?:19|20)\d{2}[./-]\d{1,2}[./-]\d{1,2}|"
                          rb"\d{1,2}\.?\s\p{L}{3,12}\.?\s(?:19|20)\d{2}|(?:19|20)\d{2}\.?\s(?:\p{L}{2,6}\s)?\d{1,2}\.?\s\p{L}{3,12})", RE2_LARGE)
_COUNTED = frozenset("""rooms room tickets ticket items item people persons kids children days day hours hours minutes
    weeks months times euro euros eur dollars usd pounds gbp kg km cm mm m ml l pages files steps units pcs points
    percent""".split())


def _intro_details(text: str, ents: list[tuple[int, int, str, float]]) -> list[tuple[int, int, str, float]]:
    person = next((x for x in ents if x[2] == "PERSON"), None)
    if person is None or person[0] > 60:
        return []
    lead = text[:person[0]].split()
    # (pii14) a label before the name ("Escape room booking: lead booker X") opens a form, not an introduction
    if not 1 <= len(lead) <= 6 or (len(lead) > 4 and ":" in text[:person[0]]) or any(c.isdigit() for c in text[:person[0]]) \
            or "\n" in text[:person[0]] \
            or any(w.strip(",").lower() in _ENGLISH_LEAD for w in lead):
        return []
    tail = _raw(text[person[1]:person[1] + 80].split("\n")[0])
    m = _INTRO_DATE.search(tail)
    if m is not None and int(re2.search(rb"(?:19|20)\d{2}", m.group(1)).group(0)) <= 2025:
        a = person[1] + len(tail[:m.start(1)].decode("utf-8", "surrogatepass"))
        return [(a, a + len(m.group(1).decode("utf-8", "surrogatepass")), "DATE_OF_BIRTH", 0.75)]
    m = _INTRO_AGE.search(tail)
    word = (m.group(2) or b"").decode("utf-8", "surrogatepass") if m is not None else ""
    # (a street after the number makes it a house number: "; 14 Chapel Lane")
    if m is not None and 0 < int(m.group(1)) <= 110 and word.lower() not in _COUNTED and \
            _STREET_WORD.search(tail[m.end(1):m.end(1) + 30].decode("utf-8", "ignore")) is None:
        a = person[1] + len(tail[:m.start(1)].decode("utf-8", "surrogatepass"))
        rest = re2.split(r"\.\s|\n", text[a:a + 80])[0]
        if rest[len(m.group(1)):len(m.group(1)) + 2] == ", " and rest[len(m.group(1)) + 2:][:1].isupper() and \
                _address_shaped(rest):
            return []  # (a house number, then the street and the town: "huwa 12, Triq il-Kbira, Birkirkara BKR 1234")
        return [(a, a + len(m.group(1)), "AGE", 0.75)]
    return []


def _person_details(text: str, ents: list[tuple[int, int, str, float]]) -> list[tuple[int, int, str, float]]:
    add = []
    for x in _intro_details(text, ents):
        hit = [y for y in ents if _overlap(x, y)]
        if len(hit) == 1 and hit[0][2] == "STREET_ADDRESS" and hit[0][0] <= x[0]:
            # the head ran the clause into the address that follows ("man |47 metai, gyvenu Gedimino pr. 9-14|"): the
            # address starts at its first capital after the age
            y = hit[0]
            i = next((i for i in range(x[1], y[1]) if text[i].isupper() and not text[i - 1].isalnum()), y[1])
            ents = [z for z in ents if z is not y] + ([(i, y[1], y[2], y[3])] if i < y[1] else [])
            hit = []
        if not hit:
            add.append(x)
    for s, e, typ, _ in ents:
        if typ != "PERSON":
            continue
        tail = _raw(text[e:e + 40])
        for rx, t in ((_DATE_AFTER_NAME, "DATE_OF_BIRTH"), (_AGE_AFTER_NAME, "AGE")):  # (a date's day is no age)
            m = rx.search(tail)
            if m is None or (t == "AGE" and int(m.group(1)) > 120):
                continue
            a = e + len(tail[:m.start(1)].decode("utf-8", "surrogatepass"))
            b = a + len(m.group(1).decode())
            if not any(_overlap((a, b), x) for x in ents + add):
                add.append((a, b, t, 0.8))
    return sorted(ents + add) if add else ents


def _raw(s: str) -> bytes:
    return s.encode("utf-8", "surrogatepass")


def _fold(w: str) -> str:
    return unicodedata.normalize("NFKD", w).encode("ascii", "ignore").decode().lower()


def _named_sites(text: str, ents: list[tuple[int, int, str, float]]) -> list[tuple[int, int, str, float]]:
    """A site whose domain carries the name of a person in the same message is that person's own site ("Marco
    Bellini - marcobellini.it", "I'm Caleb, photos at calebwinterphoto.com"); a company domain in prose is not."""
    names = {_fold(w) for x in ents if x[2] == "PERSON"
             for w in text[x[0]:x[1]].replace(".", " ").replace("'", " ").replace("’", " ").replace("-", " ").split()
             if len(w) >= 4 and not _is_title(w)}
    if not names or "." not in text:
        return ents
    add = []
    for s, e in bare_domains(text) + url_spans(text):
        host = text[s:e].split("://", 1)[-1].split("/", 1)[0].lower()
        label = host[4:] if host.startswith("www.") else host
        label = label.split(".", 1)[0]
        # the name must be part of the domain, not all of it: "tidelift.com" beside "Tidelift" names a product
        if any(n in label and n != label for n in names) and not any(_overlap((s, e), x) for x in ents + add):
            while e > s and text[e - 1] in ".,;:!?)]}":
                e -= 1
            add.append((s, e, "URL", 0.8))
    return sorted(ents + add) if add else ents


# a lower-case word, not part of an e-mail address, a path, a URL or a longer token
_LOGIN_WORD = re2.compile(r"(?:^|[^\w.@/:-])([a-z][a-z0-9._-]{2,30}[a-z0-9])(?:$|[^\w@/-]|[.,;:!?](?:\s|$))")


def _login_forms(name: str) -> set[str]:
    """The logins a directory makes of a full name: "Halina Kowalczyk" -> hkowalczyk, halina.kowalczyk,
    halina_kowalczyk, halinakowalczyk, h.kowalczyk (diacritics folded: "Linh Trịnh" -> ltrinh); five letters at
    least, and not the short forms "markS" or "smithM" that words spell ("Mark Smith" beside "marks")."""
    w = [_fold(x) for x in name.replace("-", " ").split() if not _is_title(x)]
    w = [x for x in w if x.isalpha()]
    if len(w) < 2 or len(w[0]) < 2 or len(w[-1]) < 3:
        return set()
    g, f = w[0], w[-1]
    forms = {g[0] + f, g + "." + f, g + "_" + f, g + f, g[0] + "." + f, g[0] + "_" + f, f + "." + g}
    return {x for x in forms if len(x) >= 5}


def _named_logins(text: str, ents: list[tuple[int, int, str, float]]) -> list[tuple[int, int, str, float]]:
    """(pii19) A lower-case word made from the full name of a person in the same message, as directories make
    logins ("His account is baigner" beside "Benedikt Aigner", a row "hkowalczyk,...,Halina Kowalczyk"), is that
    person's login, with or without trailing digits ("ydemirci62"). One pass over the words."""
    forms: set[str] = set()
    for x in ents:
        if x[2] == "PERSON":
            forms |= _login_forms(text[x[0]:x[1]])
    if not forms:
        return ents
    add = []
    for m in _LOGIN_WORD.finditer(text):
        s, e = m.span(1)
        v = m.group(1)
        if (v in forms or v.rstrip("0123456789") in forms) and not any(_overlap((s, e), x) for x in ents):
            add.append((s, e, "USERNAME", 0.8))
    return sorted(ents + add) if add else ents


# (pii20) a capitalised word of a cased script, whole: a hyphen may join two ("Bello-Adeyemi", "Tane-Whitmore")
_CAP_WORD = re2.compile(r"\p{Lu}[\p{Ll}\p{M}]+(?:['\x{2019}][\p{Ll}\p{M}]+)?(?:-\p{Lu}[\p{Ll}\p{M}]+)?")
_LOWER_WORD = re2.compile(r"\p{Ll}[\p{Ll}\p{M}]+")
# kin words, roles and addresses that stand before a name but are no part of it ("Auntie |Grace|", "baby |Rafa|")
_BEFORE_NAME_WORDS = frozenset("""Uncle Auntie Aunt Aunty Tita Tito Tia Tio Tía Tío Lola Lolo Oma Opa Nana Granny
    Grandma Grandpa Grandad Baby Cousin Brother Sister Professor Coach Captain Sergeant Judge Father Mother Saint St
    Pastor Bishop Imam Rabbi Sheikh Chef Nurse Pupil Student Patient Guest Tamu Pak Bu Ibu Bapak Mama Papa Mwalimu
    Bwana Ndugu Mzee Dada Kaka Abang Kak Mbak Mas Teh Tuan Puan""".split())
# makers named after people (cars, hotels, computers: "Ford Fiesta", "Hilton Garden Inn") and the stand-in surnames of
# templates ("Jane Doe", "Max Mustermann"): a run holding one is no person
_NOT_PERSON_PARTS = frozenset("""Ford Porsche Dodge Lincoln Chrysler Chevrolet Tesla Ferrari Lamborghini Mercedes Benz
    Bentley Royce Rolls Harley Davidson Jaguar Opel Renault Peugeot Citroen Citroën Seat Skoda Škoda Honda Toyota Suzuki
    Mazda Nissan Subaru Hyundai Kia Hilton Marriott Hyatt Wyndham Sheraton Radisson Ritz Carlton Marshall Dell Lenovo
    Doe Roe Mustermann Musterfrau Public Bloggs Sixpack Apartments Apartment Residency Residence Towers Court Lodge
    Inn Suites Villas Estate Heights Emporium""".split())
# words of events, landmarks, peoples and places that faker's name lists also hold ("Magna Carta", "Berlin Wall",
# "French Revolution"): such a run names a thing
_THING_PARTS = frozenset("""Wall War Wars Revolution Empire Republic Kingdom Union Cup Games Olympics Day Festival Act
    Treaty Accord Carta Charter Code Law Trophy Series League Club United City Party Council Ministry Court Gate Cross
    Magna Santa San Saint Holy Great Old New North South East West Upper Lower Royal French English German Spanish
    Italian Dutch Irish Scottish Welsh British American Roman Greek Russian Chinese Japanese Indian African European
    Berlin London Vienna Rome Madrid Brussels Geneva Lisbon Prague Warsaw Boston Dallas Houston Austin Denver Phoenix
    Atlanta Florence Orlando Sydney Hole Oval Falls Springs Hills Canyon Creek Harbour Harbor Port Point Plaza Pier
    Dock Market Terminal Secret""".split())
# an article before a run makes it a title or a thing ("The Brothers |Karamazov|", "the Berlin Wall"); not a
# lower-case Romance one, which Portuguese, Catalan and Italian speech put before a person's name ("com a Ana Costa")
_ARTICLES = frozenset("The the An Der Die Das Den Dem La Le Les El Los Las Il Lo Gli Het Een".split())


# (pii20) a word in capitals ("O'HALLORAN", "BELLO-ADEYEMI"), with a vowel: no code or acronym of consonants
_CAPS_WORD = re2.compile(r"\p{Lu}*[AEIOUYÀ-ÖØ-Ý]\p{Lu}*(?:['\x{2019}-]\p{Lu}+)*")


def _cap_words(text: str, rx: re2._Regexp = _CAP_WORD) -> list[tuple[int, int]]:
    """The whole capitalised words of a text (a letter or digit on neither side)."""
    out = []
    for m in rx.finditer(text):
        s, e = m.span()
        if (s == 0 or not text[s - 1].isalnum()) and (e == len(text) or not text[e].isalnum()):
            out.append((s, e))
    return out


def _surname_ok(w: str, lower: set[str]) -> bool:
    """A capitalised word that may be a name's part: no label, place or product word, no word the text also writes in
    lower case (a word, then: "Big" beside "big"), no common English word of the lexicon's stop list."""
    return w not in NOT_NAME_WORDS and w not in PLACE_NOUNS and w not in PRODUCT_WORDS and w not in TITLES and \
        w not in _BEFORE_NAME_WORDS and w.lower() not in lower and w.lower() not in COMMON_WORDS and len(w) >= 2


def _runs(text: str, words: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """Words one space apart, as runs."""
    runs: list[list[tuple[int, int]]] = []
    for w in words:
        if runs and text[runs[-1][-1][1]:w[0]] == " ":
            runs[-1].append(w)
        else:
            runs.append([w])
    return runs


def _lexicon_names(text: str, ents: list[tuple[int, int, str, float]]) -> list[tuple[int, int, str, float]]:
    """(pii20) A person named without a frame, in running text: a capitalised given name of the lexicon and one or two
    capitalised words after it on the same line ("Rohan Mehta, DL MH12 ...", "Gwendolyn Ashforth   D.O.B."; in
    capitals too, "MARGARET O'HALLORAN, Plaintiff"), or a name part the head or the rules found alone grown to the
    capitalised word beside it ("Andrés |Villalobos|", "|Gülsüm| Yıldırım için"). Not inside a run of four or more
    capitalised words (a title, an institution), not over another type's entity, and no word the text also writes
    in lower case."""
    words = _cap_words(text)
    caps = [w for w in _cap_words(text, _CAPS_WORD) if w[1] - w[0] >= 2 and text[w[0]:w[1]] not in _CAPS_NOT_SURNAME]
    if len(words) + len(caps) < 2 or looks_like_documentation(text):  # (a README's "George Brandl")
        return ents
    lower = _prose_lower_words(text)
    add = []
    ix = _Spans(ents)
    for run in _runs(text, words) + _runs(text, caps):
        if len(run) < 2 or len(run) > 3:
            continue
        ws = [text[s:e] if text[s + 1:s + 2].islower() else text[s:e].capitalize() for s, e in run]
        i = 1 if ws[0] in NOT_NAME_WORDS or ws[0] in _BEFORE_NAME_WORDS or ws[0] in TITLES else 0
        if len(run) - i < 2:
            continue
        s, e = run[i][0], run[-1][1]
        if not all(_surname_ok(w, lower) for w in ws[i + 1:]) or ws[i] in NOT_NAME_WORDS or \
                any(w in _NOT_PERSON_PARTS or w in _THING_PARTS or w in BRANDS for w in ws) or \
                text[max(0, s - 40):s].rstrip(" ").rsplit(" ", 1)[-1] in _ARTICLES:
            continue
        given = ws[i].split("-")[0].lower() in GIVEN_NAMES
        near = ix.over(s, e)
        part = [x for x in near if x[2] == "PERSON" and run[i][0] <= x[0] and x[1] <= e]
        # a word the head or the rules left out before a name part is the name's only where no sentence opens with
        # it: a greeting of an unlisted language opens one ("Salaan |Hodan|", "Muraho |Uwase|")
        # (a name alone on its line is a signature's: "...\nClemency |Audsley|")
        opens = s == 0 or text[max(0, s - 40):s].rstrip(" \t")[-1:] in ("", "\n", ".", "!", "?", ":", ";", "\"", "(")
        if not given and not (part and _surname_ok(ws[i], lower) and
                              (part[0][0] == s or not opens or _line_at(text, s).strip() == text[s:e])):
            continue
        hit = [x for x in near if x[2] != "PERSON" and _overlap((s, e), x)]
        cut = _address_edge(text, s, e, hit) if hit else None
        if hit and cut is None:
            continue
        if cut is not None:
            ents = [cut if x is hit[0] else x for x in ents]
            ix = _Spans(ents)
        add.append((s, e, "PERSON", 0.7))
    add = [a for a in add if not any(x[2] == "PERSON" and x[0] <= a[0] and a[1] <= x[1] for x in ix.over(a[0], a[1]))]
    if not add:
        return ents
    ax = _Spans(add)
    keep = [x for x in ents if x[2] != "PERSON" or not any(a[0] <= x[0] and x[1] <= a[1] for a in ax.over(x[0], x[1]))]
    kx = _Spans(keep)
    return sorted(keep + [a for a in add if not kx.over(a[0], a[1])])


def _prose_lower_words(text: str) -> set[str]:
    """The lower-case words of a text's prose: not the parts of an e-mail address, a handle, a path or a URL
    ("clemency.audsley@..." does not make "Clemency" a word)."""
    out = set()
    for m in _LOWER_WORD.finditer(text):
        a, b = m.span()
        if text[a - 1:a] not in ("@", ".", "_", "/", "-") and text[b:b + 1] not in ("@", ".", "_", "/", "-") or \
                (text[b:b + 1] == "." and not text[b + 1:b + 2].isalnum()):
            out.add(m.group(0))
    return out


def _address_edge(text: str, s: int, e: int, hit: list) -> tuple | None:
    """(pii20) The head ran an address into the name after it, across a sentence's or a line's end ("..., Nairobi.
    |Wanjiru Kamau|", "FL 34102,\n|Clifford Ahlberg|"), or began it at the name before it ("Agnieszka |Nowicka, ul.
    Pomorska 88/3, ...|"): the address without the name (None where the name is not at such an edge)."""
    if len(hit) != 1 or hit[0][2] != "STREET_ADDRESS":
        return None
    x = hit[0]
    if x[0] < s and x[1] <= e:
        before = text[x[0]:s].rstrip(" ")
        if before[-1:] in (".", ",", "\n"):
            end = x[0] + len(before.rstrip(".,\n \t"))
            return (x[0], end, x[2], x[3]) if any(c.isdigit() for c in text[x[0]:end]) else None
        return None
    if s <= x[0] < e < x[1] and text[e:e + 2] == ", ":
        return (e + 2, x[1], x[2], x[3])
    return None


def _mentions(text: str, ents: list[tuple[int, int, str, float]]) -> list[tuple[int, int, str, float]]:
    """(pii20) A person named once is named again by a part of the name: every other whole, capitalised occurrence
    of a word of a PERSON span (its given name or surname, three letters at least, no label word) that no entity
    covers and no capitalised word stands beside is that person too ("Leo will be picked up ... (|Leo|'s mum)")."""
    parts: set[str] = set()
    for s, e, t, _ in ents:
        if t == "PERSON":
            parts |= {w for w in (m.group(0) for m in _CAP_WORD.finditer(text[s:e]))
                      if len(w) >= 3 and w not in NOT_NAME_WORDS and w not in TITLES and w not in _BEFORE_NAME_WORDS}
    if not parts or looks_like_documentation(text):
        return ents
    add = []
    words = _cap_words(text)
    ix = _Spans(ents)
    for k, (s, e) in enumerate(words):
        if text[s:e] not in parts or ix.over(s, e):
            continue
        if (k > 0 and text[words[k - 1][1]:s] == " ") or (k + 1 < len(words) and text[e:words[k + 1][0]] == " "):
            continue
        add.append((s, e, "PERSON", 0.6))
    return sorted(ents + add) if add else ents


# (pii20) an address's parts after the head's span, comma after comma, up to a postcode: short runs of capitalised
# words and numbers ("Flat 9B|, Sea Breeze Apartments, 12th Road, Khar West, Mumbai 400052|", "5521 N. Kenmore
# Ave|., Unit 3, Chicago, IL 60640|")
_TAIL_PART = r"(?:\p{Lu}[\p{L}\p{M}\d'.-]*|\d{1,6}[\p{L}]{0,3}\b)"
_ADDRESS_TAIL = re2.compile(rf"^\.?((?:,[ \t]+{_TAIL_PART}(?:[ \t]{_TAIL_PART}){{0,3}}){{1,5}})")
_POSTCODE_END = re2.compile(r"(?:\b\d{4,6}|\b[A-Z]{1,2}\d[A-Z\d]?[ \t]?\d[A-Z]{2}|\b[A-Z]\d[A-Z][ \t]?\d[A-Z]\d)$")


def _address_tails(text: str, ents: list) -> list:
    """(pii20) The head stopped an address at its first comma: the parts after it are the address's where each is a
    short run of capitalised words and numbers and the last ends in a postcode (a town alone may be the clause's
    next word; a postcode closes an address). A name the head read inside them is the address's ("Sea Breeze")."""
    ents, ix = list(ents), _Spans(ents)
    drop: set[tuple] = set()
    for i, x in enumerate(ents):
        if x[2] != "STREET_ADDRESS" or x in drop:
            continue
        m = _ADDRESS_TAIL.search(text[x[1]:x[1] + 120])
        if m is None:
            continue
        tail = m.group(1)
        # the longest run of parts that ends in a postcode
        while tail and _POSTCODE_END.search(tail) is None:
            tail = tail[:tail.rfind(",")] if "," in tail else ""
        if not tail:
            continue
        e = x[1] + m.start(1) + len(tail)
        inside = [y for y in ix.over(x[1], e) if y != x and x[1] <= y[0]]
        if any(y[2] not in ("STREET_ADDRESS", "PERSON") or y[1] > e for y in inside):
            continue
        drop |= set(inside)
        ents[i] = (x[0], e, x[2], x[3])
    return [y for y in ents if y not in drop] if drop else ents


def _own_line(text: str, s: int, e: int) -> int:
    """(pii20) A name on a short line of its own or after a label stays there (the end of its span on its line):
    the head ran it into the next line's label or title ("Imię: Bożena\nNazwisko", "HALIMA BELLO-ADEYEMI\nSenior
    Structural"); a long line is prose wrapped, where a name may run on ("... Mateusz\nPaprocki"), and a table's
    header row is no label."""
    line = _line_at(text, s)
    span = text[s:e]
    if len(line) > 40 or "\t" in line:
        return e
    return s + len(span[:span.index("\n", len(span) - len(span.lstrip()))].rstrip())


def _line_at(text: str, i: int) -> str:
    return text[text.rfind("\n", 0, i) + 1:(text.find("\n", i) + 1 or len(text) + 1) - 1]


# (pii20) "my sourdough starter is 3 years old", "this whisky cask is 21 years old": a thing's age. The subject before
# "is"/"was" after a possessive or an article, when it is a common noun that names no person, kin or pet
_SUBJECT_BEFORE_AGE = re2.compile(r"(?i)\b(?:my|our|the|this|that|his|her|their|your|a|an)\s+(?:[\w-]+\s+){0,2}?"
                                  r"([\w-]+)\s+(?:is|was|are|were|turns|turned)\s+(?:now\s+|about\s+|nearly\s+|almost\s+)?$")
_PERSON_NOUNS = frozenset("""son sons daughter daughters kid kids child children boy boys girl girls baby babies twins
    triplets mother father mom mum dad mama papa wife husband partner brother brothers sister sisters grandma grandpa
    grandmother grandfather granny gran nan nana grandson granddaughter grandkids grandchildren uncle aunt auntie
    cousin niece nephew friend friends neighbour neighbor patient client student pupil tenant colleague boss
    boyfriend girlfriend fiance fiancé fiancee fiancée spouse parent parents sibling siblings toddler teen teenager
    stepson stepdaughter stepmother stepfather godson goddaughter cat dog puppy kitten pet horse rabbit parrot one
    i you he she we they who me him her us them
    just still already only""".split())


def _things_age(text: str, s: int) -> bool:
    m = _SUBJECT_BEFORE_AGE.search(text[max(0, s - 60):s])
    if m is None:
        return False
    noun = m.group(1)
    if noun in _NOT_PERSON_PARTS or noun in BRANDS:
        return True  # ("our Honda is 19 years old")
    return not noun[:1].isupper() and noun.lower() not in _PERSON_NOUNS and not noun.lower().rstrip("s") in _PERSON_NOUNS


class _Spans:
    """(pii20) Entities indexed by their starts: the ones overlapping a span in log time plus the few near it, so
    that the name passes stay linear in a long text with many entities."""

    __slots__ = ("ents", "starts", "longest")

    def __init__(self, ents: list) -> None:
        self.ents = sorted(ents)
        self.starts = [x[0] for x in self.ents]
        self.longest = max((x[1] - x[0] for x in self.ents), default=0)

    def over(self, s: int, e: int) -> list:
        i = bisect.bisect_left(self.starts, s - self.longest)
        j = bisect.bisect_left(self.starts, e)
        return [x for x in self.ents[i:j] if x[1] > s]
