"""A column-aware reader for tables pasted into a message (pii15, issue #21).

A table is a header row that names its columns, then rows laid out the same way:
- delimited: comma, semicolon, tab or `|` (CSV, TSV, Markdown, psql's grid with its `---+---` rule line);
- aligned: columns separated by runs of two or more spaces, cells under their header (pandas' `df.head()`,
  psql without borders, fixed-width reports); pandas' row numbers stand left of the first column;
- `COPY table (c1, c2, ...) FROM stdin;` blocks of pg_dump: tab-separated rows up to the `\\.` line.

Each column is typed from its header's words (in several languages), never from one cell alone; where the header
says nothing, or a block of rows has none (pii17: header-less CSV/TSV, `headed` False), the caller types a column
from its values (`Table.columns`). Row numbers (an unlabelled leading
column of numbers, or one headed id/#/no/row/index) are index cells: they are never an address or an age.

Everything here is a scan over the lines, linear in the text; `has_table` is the cheap pre-check that runs first.
Which cells hold PII (a value that fits its column's type) is the rules' decision (pii/rules.py `_tables`).
"""
from __future__ import annotations

from typing import NamedTuple

Span = tuple[int, int]


class Table(NamedTuple):
    types: tuple[str | None, ...]  # per column: the PII type its header names, or None
    columns: tuple[tuple[Span, ...], ...]  # per column: its cells (absolute char offsets), one per row at most
    index: tuple[Span, ...]  # row numbers and id cells: never PII of a place or an age
    # (pii17) False: a block of rows without a header (header-less CSV/TSV, rows copied out of a spreadsheet); its
    # columns are typed from their values alone (pii/rules.py `_tables`)
    headed: bool = True
    # (pii20) per column of a header that names no type: True where its header names no thing either ("who", "by",
    # "paid"), so its values may type it (a column of given names under "who" is people's; under "city" it is not)
    silent: tuple[bool, ...] = ()


# Header words and the type of the cells under them. A header is split into words at "_", "-", ".", spaces and
# camelCase humps; the type is the first entry whose word is in the header, unless the header also has a word of
# _THING (a product's name, a birth place, a cache's max age, an e-mail address are not a person's).
_HEADER_WORDS: tuple[tuple[str, frozenset[str]], ...] = (
    ("PASSWORD", frozenset("password passwd pass pwd pw passwort kennwort contraseña contrasena senha mdp passcode "
                           "wachtwoord hasło haslo пароль 密码 密碼 パスワード 비밀번호".split())),
    ("DATE_OF_BIRTH", frozenset("dob birth birthdate birthday bday born geburtsdatum geboren nacimiento naissance "
                                "nascita nascimento geboortedatum urodzenia 生年月日 出生日期 생년월일 дата_рождения "
                                # (pii20) the word for birth (date) in more languages, as a form's label writes it
                                "γέννησης syntymäaika fødselsdato födelsedatum fæðingardagur narození narodenia "
                                "születési рождения народження рођења rođenja rojstva doğum lahir kapanganakan "
                                "naixement jaiotze nașterii naşterii dzimšanas gimimo sünniaeg 出生 생일".split())),
    ("AGE", frozenset("age alter edad âge età idade leeftijd wiek ålder alder yaş umur возраст 年龄 年齢 나이 "
                      # (pii20) more languages' word for a person's age
                      "ηλικία vek věk életkor ikä vanus вік възраст tuổi edat adina umri starost amžius vecums "
                      "aldur 연령 عمر سن גיל उम्र".split())),
    ("USERNAME", frozenset("username user login handle userid nick nickname benutzer benutzername usuario utente "
                           "identifiant gebruikersnaam samaccountname".split())),
    ("PHONE_NUMBER", frozenset("phone mobile cell tel telephone telefon teléfono telefono téléphone telefone "
                               "handy móvil movil celular 电话 電話 전화".split())),
    ("STREET_ADDRESS", frozenset("address addr street adresse anschrift dirección direccion domicilio indirizzo "
                                 "morada endereço endereco straße strasse adres 住所 地址 주소".split())),
    # (pii16) a card or IBAN column: its cells are the type's by their shape, even where a checksum fails
    ("CREDIT_CARD", frozenset("card cardnumber cc ccnum creditcard kreditkarte kartennummer tarjeta carte carta "
                              "cartão cartao".split())),
    ("IBAN_CODE", frozenset("iban".split())),
    ("PERSON", frozenset("name fullname firstname lastname surname forename forenames givenname familyname nombre "
                         "nombres apellido apellidos prénom prenom nom vorname nachname cognome nome voornaam "
                         "achternaam nazwisko imię imie customer patient employee contact attendee guest passenger "
                         "applicant student member 姓名 氏名 名前 이름 имя фамилия".split())),
)
_THING = frozenset("""product item file filename host hostname company org organisation organization city town country
    place birthplace table column field key project app site domain server db database repo package branch bucket
    model brand team group event course class device service pet dog cat species breed street_name display_old
    email mail e ip mac ipv4 ipv6 url web wallet btc eth contract max min cache ttl agent hash hashed digest salt
    policy reset expires expiry changed updated length strength count type code id ids category department
    dept role title label tag status queue topic bank last time timestamp attempts failed successful created shell
    dir path""".split())
# compound headers that keep their type beside a _THING word: "user_id", "last_name", "birth_date"
_COMPOUND = {"userid": "USERNAME", "username": "USERNAME", "fullname": "PERSON", "firstname": "PERSON",
             "lastname": "PERSON", "dateofbirth": "DATE_OF_BIRTH", "birthdate": "DATE_OF_BIRTH"}
_INDEX = frozenset("# id no nr no. n row idx index rownum row_number #id".split())


def _words(name: str) -> list[str]:
    out, cur = [], []
    prev = ""
    for c in name:
        if c in "_-. /()[]\"'`*:" or c.isspace():
            if cur:
                out.append("".join(cur))
            cur = []
        elif c.isupper() and prev.islower():
            out.append("".join(cur))
            cur = [c]
        else:
            cur.append(c)
        prev = c
    if cur:
        out.append("".join(cur))
    return [w.lower() for w in out if w]


def header_type(name: str) -> str | None:
    """The PII type of the cells under a column named `name`, or None."""
    words = _words(name)
    if not words or len(words) > 5:
        return None
    joined = "".join(words)
    ws = set(words) | {joined}
    if joined in _COMPOUND:
        return _COMPOUND[joined]
    if ws & _THING:
        return None
    for typ, keys in _HEADER_WORDS:
        if ws & keys:
            return typ
    return None


def _name_like(cell: str) -> bool:
    """A header cell: a short column name (four words at most), no digits beyond a suffix, no code or prose marks
    (a line of code split at its commas, '"name": obj.name}', is no header)."""
    v = cell.strip().strip("\"'`*")
    return 0 < len(v) <= 32 and not v[:1].isdigit() and sum(c.isdigit() for c in v) <= 2 and \
        len(v.split()) <= 4 and all(c.isalnum() or c in " _-.#()/?'" for c in v)


def has_table(text: str) -> bool:
    """Cheap pre-check: two lines at least and a separator a table could use."""
    return "\n" in text and ("," in text or "\t" in text or "|" in text or ";" in text or "  " in text)


def _split(line: str, sep: str) -> list[Span]:
    """Stripped cells of a row split at `sep` (double quotes protect a comma or semicolon; Markdown's outer pipes
    are dropped)."""
    out: list[Span] = []
    start, quoted = 0, False
    for i, c in enumerate(line):
        if c == '"' and sep in ",;":
            quoted = not quoted
        elif c == sep and not quoted:
            out.append((start, i))
            start = i + 1
    out.append((start, len(line)))
    cells = []
    for a, b in out:
        while a < b and line[a] in " \t":
            a += 1
        while b > a and line[b - 1] in " \t\r":
            b -= 1
        if b - a >= 2 and line[a] == '"' and line[b - 1] == '"':
            a, b = a + 1, b - 1
        cells.append((a, b))
    if sep == "|" and cells and cells[0][0] == cells[0][1]:
        cells = cells[1:]
    if sep == "|" and cells and cells[-1][0] == cells[-1][1]:
        cells = cells[:-1]
    return cells


def _chunks(line: str) -> list[Span]:
    """Cells of an aligned row: runs of text separated by two or more spaces (or a tab)."""
    out: list[Span] = []
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] in " \t\r":
            i += 1
        if i >= n:
            break
        j = i
        while j < n and line[j] not in "\t\r" and not (line[j] == " " and (j + 1 >= n or line[j + 1] in " \t")):
            j += 1
        out.append((i, j))
        i = j
    return out


def _is_rule(line: str) -> bool:
    """A rule line under a header: Markdown's "|---|:--:|", psql's "----+----", a report's "=====  ===="."""
    s = line.strip()
    return bool(s) and set(s) <= set("|-:+= ") and ("-" in s or "=" in s)


def _header(names: list[str]) -> tuple[tuple[str | None, ...], frozenset[int]] | None:
    if len(names) < 2 or not all(_name_like(n) for n in names):
        return None
    types = tuple(header_type(n) for n in names)
    if not any(types):
        return None
    return types, frozenset(j for j, n in enumerate(names) if n.strip().strip("\"'`*").lower() in _INDEX)


def _overflow(rc: list[Span], types: tuple[str | None, ...], sep: str) -> list[Span]:
    """(pii18) A CSV row with an address column written with its own unquoted commas ("14 Tallow Lane, Frome"): the
    extra cells are that address's parts, joined back into its cell; (pii19) wherever the one address column stands
    ("driver,age,home_address,licensed_since": the cells after the address's parts are the next columns')."""
    cols = [j for j, t in enumerate(types) if t == "STREET_ADDRESS"]
    extra = len(rc) - len(types)
    if sep == "," and len(types) >= 2 and len(cols) == 1 and 0 < extra <= 3:
        j = cols[0]
        return rc[:j] + [(rc[j][0], rc[j + extra][1])] + rc[j + extra + 1:]
    return rc


def _delimited(lines: list[str], starts: list[int], i: int) -> tuple[Table, int] | None:
    ln = lines[i]
    for sep in ("\t", "|", ",", ";"):
        if sep not in ln:
            continue
        cells = _split(ln, sep)
        if i > 0 and sep in lines[i - 1] and len(_split(lines[i - 1], sep)) == len(cells):
            continue  # (a row inside a table is no header: the header is the block's first line)
        got = _header([ln[a:b] for a, b in cells])
        if got is None:
            continue
        types, index = got
        cols: list[list[Span]] = [[] for _ in types]
        idx: list[Span] = []
        k = i + 1
        while k < len(lines):
            row = lines[k]
            if _is_rule(row):
                k += 1
                continue
            rc = _overflow(_split(row, sep), types, sep)
            if len(rc) != len(types) or sep not in row:
                break
            for j, (a, b) in enumerate(rc):
                (idx if j in index else cols[j]).append((starts[k] + a, starts[k] + b))
            k += 1
        if k > i + 1:
            return Table(types, tuple(tuple(c) for c in cols), tuple(idx)), k
    return None


def _aligned(lines: list[str], starts: list[int], i: int) -> tuple[Table, int] | None:
    ln = lines[i]
    head = _chunks(ln)
    if i > 0 and len(_chunks(lines[i - 1])) == len(head):
        return None  # (a row inside a table is no header)
    if "\t" in ln:
        return None
    got = None
    if len(head) >= 2 and any("  " in ln[head[j][1]:head[j + 1][0]] for j in range(len(head) - 1)):
        got = _aligned_rows(lines, starts, i, head, False)
    if got is None:
        # (a header whose names stand one space apart, "   first_name last_name  age": each word a column's)
        words = _words_at(ln)
        if len(words) > len(head):
            got = _aligned_rows(lines, starts, i, words, True)
    return got


def _words_at(line: str) -> list[Span]:
    out: list[Span] = []
    for a, b in _chunks(line):
        k = a
        for w in line[a:b].split(" "):
            out.append((k, k + len(w)))
            k += len(w) + 1
    return out


def _aligned_rows(lines: list[str], starts: list[int], i: int, head: list[Span], full: bool
                  ) -> tuple[Table, int] | None:
    """Rows under an aligned header; `full`: every row fills every column (a header read word by word must be
    borne out by its rows: "- Handle unicode exception" above one link is no header)."""
    ln = lines[i]
    got = _header([ln[a:b] for a, b in head])
    if got is None:
        return None
    types, index = got
    cols: list[list[Span]] = [[] for _ in types]
    idx: list[Span] = []
    k = i + 1
    while k < len(lines):
        row = lines[k]
        if _is_rule(row):
            k += 1
            continue
        rc = _chunks(row)
        cut = _cut(row, head) if len(rc) < len(head) else None  # (fewer runs than columns: one-space gaps?)
        placed = list(range(len(head))) if cut is not None else _place(row, rc, head) or _in_order(row, rc, len(head))
        rc = cut if cut is not None else rc
        if len(rc) < 2 or placed is None or (full and len([j for j in placed if j is not None]) != len(head)):
            break
        for (a, b), j in zip(rc, placed):
            (idx if j is None or j in index else cols[j]).append((starts[k] + a, starts[k] + b))
        k += 1
    if k == i + 1:
        return None
    return Table(types, tuple(tuple(c) for c in cols), tuple(idx)), k


def _cut(line: str, head: list[Span]) -> list[Span] | None:
    """(pii19) A fixed-width report's row whose cells stand one space apart where a value fills its column
    ("Gwendolyn Ashforth 1965-09-30 Bargoed" under "NAME               DOB        CITY"): cut at the header's column
    starts, where each cell must start (a space before it, none at it); else None. Linear in the row."""
    if len(head) < 2 or len(line) <= head[-1][0] or line[:head[0][0]].strip():
        return None
    out: list[Span] = []
    for j, (a, _) in enumerate(head):
        if line[a] in " \t" or (j > 0 and line[a - 1] != " "):
            return None
        end = head[j + 1][0] - 1 if j + 1 < len(head) else len(line)
        b = end
        while b > a and line[b - 1] in " \t\r":
            b -= 1
        out.append((a, b))
    return out


def _place(line: str, row: list[Span], head: list[Span]) -> list[int | None] | None:
    """The header column of each cell of an aligned row (None: a row number left of the first column), or None when
    the row does not fit the header: a cell sits under the column whose left or right edge it shares, or which it
    overlaps; each column holds one cell at most. One pass over both (linear in the row)."""
    out: list[int | None] = []
    j = 0
    for n, (a, b) in enumerate(row):
        while j < len(head) and head[j][1] <= a:
            j += 1  # (a column wholly left of the cell cannot hold it: the cell belongs further right)
        if j < len(head) and head[j][0] < b:
            out.append(j)
            j += 1
        elif n == 0 and line[a:b].isdigit():
            out.append(None)
        else:
            return None
    return out


def _in_order(line: str, row: list[Span], width: int) -> list[int | None] | None:
    """A hand-aligned row whose cells drift from the header's edges but match its columns one for one (a row number
    first at most): "Wojciech Nowak  52  Gdansk" under "name   age  city"."""
    if len(row) == width:
        return list(range(width))
    if len(row) == width + 1 and line[row[0][0]:row[0][1]].isdigit():
        return [None, *range(width)]
    return None


def _copy(lines: list[str], starts: list[int], i: int) -> tuple[Table, int] | None:
    """pg_dump's `COPY public.members (id, full_name, birth_date) FROM stdin;` and its tab-separated rows."""
    ln = lines[i]
    up = ln.upper()
    if not up.startswith("COPY ") or "FROM STDIN" not in up or "(" not in ln or ")" not in ln:
        return None
    names = [c.strip().strip('"') for c in ln[ln.index("(") + 1:ln.index(")")].split(",")]
    types = tuple(header_type(n) for n in names)
    index = frozenset(j for j, n in enumerate(names) if n.lower() in _INDEX)
    cols: list[list[Span]] = [[] for _ in types]
    idx: list[Span] = []
    k = i + 1
    while k < len(lines) and lines[k].rstrip("\r") != "\\.":
        rc = _split(lines[k], "\t")
        if len(rc) != len(types):
            break
        for j, (a, b) in enumerate(rc):
            if lines[k][a:b] != "\\N":
                (idx if j in index else cols[j]).append((starts[k] + a, starts[k] + b))
        k += 1
    if k == i + 1:
        return None
    return Table(types, tuple(tuple(c) for c in cols), tuple(idx)), k


_PLAIN_CELL = 60  # a cell of a header-less table is short: prose lines with as many commas are no table


def _plain(lines: list[str], starts: list[int], i: int) -> tuple[Table, int] | None:
    """(pii17) Two or more rows split the same way by a tab, `|`, `;` or `,` into as many short cells, under no header
    (or under one that names no type): every row is data. A line that is a typed header ends the block (its own table
    starts there)."""
    ln = lines[i]
    for sep in ("\t", "|", ";", ","):
        if sep not in ln:
            continue
        width = len(_split(ln, sep))
        if width < 2:
            continue
        cols: list[list[Span]] = [[] for _ in range(width)]
        k = i
        while k < len(lines):
            row = lines[k]
            if k > i and _is_rule(row):
                k += 1
                continue
            rc = _split(row, sep)
            if sep not in row or len(rc) != width or any(b - a > _PLAIN_CELL for a, b in rc) or \
                    (k > i and _header([row[a:b] for a, b in rc]) is not None):
                break
            for j, (a, b) in enumerate(rc):
                cols[j].append((starts[k] + a, starts[k] + b))
            k += 1
        if k >= i + 2:
            # a first row of column names that name no type ("who,team,seat") is a header all the same: its
            # columns' numbers and dates are a thing's, and its names are no cells
            headed = all(_name_like(ln[a:b]) and any(c.isalpha() for c in ln[a:b]) for a, b in _split(ln, sep))
            cells = tuple(tuple(c[1:] if headed else c) for c in cols)
            types = (None,) * width if headed else _announced(lines, i, width)
            silent = tuple(not set(_words(ln[a:b])) & _THING for a, b in _split(ln, sep)) if headed else ()
            return Table(types, cells, (), headed, silent), k
    return None


def _announced(lines: list[str], i: int, width: int) -> tuple[str | None, ...]:
    """(pii19) The columns of a header-less block as the sentence just above it names them: "no header, columns are
    login, temp password, full name", "two rows (name, dob, street, town):". The last `width` comma-separated
    items of a clause of that line (the first item's last words: "columns are login") type the columns as a header
    would; two typed items at least, or none is taken."""
    k = i - 1
    while k >= 0 and i - k <= 2 and not lines[k].strip():
        k -= 1
    if k < 0 or i - k > 2:
        return (None,) * width
    line = lines[k]
    for c in "():.;":
        line = line.replace(c, "\n")
    for clause in line.split("\n"):
        items = [x.strip() for x in clause.split(",")]
        if len(items) < width or not all(items[-width:]) or any(len(x.split()) > 3 for x in items[-width + 1:]):
            continue
        items = items[-width:]
        items[0] = " ".join(items[0].split()[-2:])
        types = tuple(header_type(x) or (header_type(x.split()[-1]) if j == 0 else None) for j, x in enumerate(items))
        if sum(1 for t in types if t) >= 2:
            return types
    return (None,) * width


def read_tables(text: str) -> list[Table]:
    """Every table in `text` (see the module's docstring); [] when `has_table` says there can be none."""
    if not has_table(text):
        return []
    lines = text.split("\n")
    starts = [0]
    for ln in lines:
        starts.append(starts[-1] + len(ln) + 1)
    out: list[Table] = []
    i = 0
    while i < len(lines) - 1:
        got = _copy(lines, starts, i) or _delimited(lines, starts, i) or _aligned(lines, starts, i) or \
            _plain(lines, starts, i)
        if got is None:
            i += 1
            continue
        out.append(got[0])
        i = got[1]
    return out
