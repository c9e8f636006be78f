"""The column-aware table reader (router_extproc/pii/tables.py) and the cells the rules take from it (pii15)."""
import time

import pytest

from router_extproc.pii.tables import has_table, header_type, read_tables
from router_extproc.signals.pii import combine


def _found(text):
    return {(t, text[s:e]) for s, e, t, _ in combine(text, [])}


# ---------------------------------------------------------------- headers
@pytest.mark.parametrize("name, typ", [
    ("full_name", "PERSON"), ("firstName", "PERSON"), ("Apellidos", "PERSON"), ("Vorname", "PERSON"),
    ("age_at_reunion", "AGE"), ("Alter", "AGE"), ("date of birth", "DATE_OF_BIRTH"), ("birthDate", "DATE_OF_BIRTH"),
    ("fecha_nacimiento", "DATE_OF_BIRTH"), ("street", "STREET_ADDRESS"), ("home address", "STREET_ADDRESS"),
    ("login", "USERNAME"), ("user_id", "USERNAME"), ("pwd", "PASSWORD"), ("mobile", "PHONE_NUMBER"),
    ("card", "CREDIT_CARD"), ("card_number", "CREDIT_CARD"), ("IBAN", "IBAN_CODE"),
])
def test_a_header_names_the_type_of_its_column(name, typ):
    assert header_type(name) == typ


@pytest.mark.parametrize("name", ["product_name", "file name", "birth_place", "max_age", "email address",
                                  "ip_address", "password_hash", "last_login", "patient_id", "city", "price",
                                  "card_type", "card_expiry"])
def test_a_header_of_a_thing_types_nothing(name):
    assert header_type(name) is None


# ---------------------------------------------------------------- layouts
def test_csv_with_quoted_cells_and_a_compound_header():
    text = ('mail merge please\nfirst_name,last_name,street,town,age_at_reunion\n'
            'Priyanka,"Venkataraman",12 Orchard Close,Hitchin,41\nTobias,Lindgren,7 Kelso Row,Peebles,44\n')
    got = _found(text)
    assert {("PERSON", "Priyanka"), ("PERSON", "Venkataraman"), ("PERSON", "Lindgren"), ("AGE", "41"),
            ("AGE", "44"), ("STREET_ADDRESS", "12 Orchard Close")} <= got


def test_an_unquoted_address_with_commas_in_the_last_csv_column_stays_one_cell():
    # pii18: "14 Tallow Lane, Frome" under a street header splits into more cells than the header has
    text = ("volunteers\nname,born,street\nHester Vane,1969-04-17,14 Kiln Lane, Frome\n"
            "Orrin Pask,1991-12-08,3 Mill Row, Frome\n")
    got = _found(text)
    assert {("PERSON", "Hester Vane"), ("DATE_OF_BIRTH", "1991-12-08"), ("STREET_ADDRESS", "14 Kiln Lane, Frome"),
            ("STREET_ADDRESS", "3 Mill Row, Frome")} <= got
    # a row with extra cells under a header whose last column is no address ends the table, as before
    assert not read_tables("name,born,note\nHester Vane,1969-04-17,late, again\n")


def test_tsv_rows_under_their_header():
    text = "export:\nname\tdob\tcity\nOtieno Wambua\t1979-05-02\tKisumu\nHelga Brandt\t1984-11-23\tKiel\n"
    got = _found(text)
    assert {("PERSON", "Otieno Wambua"), ("DATE_OF_BIRTH", "1979-05-02"), ("DATE_OF_BIRTH", "1984-11-23")} <= got


def test_pandas_head_with_row_numbers():
    text = ("df.head() gives\n"
            "              name         dob  age     city\n"
            "0     Ilse Janssens  1966-04-30   60  Antwerp\n"
            "1  Tomás Ó Briain  1999-12-01   26     Cork\n")
    got = _found(text)
    assert {("PERSON", "Ilse Janssens"), ("PERSON", "Tomás Ó Briain"), ("DATE_OF_BIRTH", "1966-04-30"),
            ("AGE", "60"), ("AGE", "26")} <= got
    assert not any(t == "STREET_ADDRESS" for t, _ in got)
    (table,) = read_tables(text)
    assert [text[s:e] for s, e in table.index] == ["0", "1"]  # row numbers are index cells, never a column's


def test_psql_grid_with_its_rule_line():
    text = (" id |    username    | age \n----+----------------+-----\n  7 | marguerite_l   |  34\n"
            "  8 | d.okonjo       |  29\n(2 rows)\n")
    got = _found(text)
    assert {("USERNAME", "marguerite_l"), ("USERNAME", "d.okonjo"), ("AGE", "34"), ("AGE", "29")} <= got
    assert not any(v in ("7", "8") for _, v in got)


def test_mysql_grid_with_its_borders():
    text = ("+----+-----------------+-----+\n| id | name            | age |\n+----+-----------------+-----+\n"
            "|  1 | Wiremu Tane     |  47 |\n|  2 | Ngozi Eze       |  35 |\n+----+-----------------+-----+\n"
            "2 rows in set (0.00 sec)\n")
    got = _found(text)
    assert {("PERSON", "Wiremu Tane"), ("PERSON", "Ngozi Eze"), ("AGE", "47"), ("AGE", "35")} <= got
    assert not any(v in ("1", "2") for _, v in got)


def test_an_aligned_header_with_names_one_space_apart():
    text = "   first_name last_name  age\n0       Kofi    Boateng   52\n1      Yusra     Haddad   31\n"
    got = _found(text)
    assert {("PERSON", "Kofi"), ("PERSON", "Boateng"), ("PERSON", "Haddad"), ("AGE", "52"), ("AGE", "31")} <= got
    assert not any(v in ("0", "1") for _, v in got)  # row numbers are nobody's age


def test_a_hand_aligned_table_whose_cells_drift_from_the_header():
    text = "name   age  city\nWojciech Nowak  52  Gdansk\nAma Mensah  31  Accra\n"
    got = _found(text)
    assert {("PERSON", "Wojciech Nowak"), ("PERSON", "Ama Mensah"), ("AGE", "52"), ("AGE", "31")} <= got


def test_markdown_table():
    text = "| Name | Phone | Born |\n|---|---|---|\n| Rafaela Moura | +351 912 345 678 | 1990-02-14 |\n"
    got = _found(text)
    assert {("PERSON", "Rafaela Moura"), ("DATE_OF_BIRTH", "1990-02-14")} <= got


def test_pg_dump_copy_block():
    text = ("COPY public.members (id, full_name, birth_date, city) FROM stdin;\n"
            "12\tSigrún Halldórsdóttir\t1988-07-09\tAkureyri\n13\tBao Nguyen\t1992-03-17\tHue\n\\.\n")
    got = _found(text)
    assert {("PERSON", "Sigrún Halldórsdóttir"), ("PERSON", "Bao Nguyen"), ("DATE_OF_BIRTH", "1988-07-09"),
            ("DATE_OF_BIRTH", "1992-03-17")} <= got
    assert not any(t == "STREET_ADDRESS" for t, _ in got)


def test_a_column_of_full_names_under_an_unhelpful_header():
    text = "who,team,seat\nMaria Gonzalez,blue,4\nDavid Cohen,red,9\nSarah Kim,blue,2\n"
    # (pii17) the header types no column: the full names are people's by their values, the seats stay a thing's
    got = _found(text)
    assert {("PERSON", "Maria Gonzalez"), ("PERSON", "David Cohen"), ("PERSON", "Sarah Kim")} <= got
    assert not any(t == "AGE" for t, _ in got)
    text = "who,team,age\nMaria Gonzalez,blue,44\nDavid Cohen,red,39\nSarah Kim,blue,27\n"
    got = _found(text)
    assert {("PERSON", "Maria Gonzalez"), ("PERSON", "David Cohen"), ("AGE", "44")} <= got


# ---------------------------------------------------------------- look-alikes
@pytest.mark.parametrize("text", [
    "item,price,qty\nWidget A,4.99,12\nGadget Pro,19.00,3\n",  # a price list
    "product_name\tcategory\tstock\nTrail Runner 2\tshoes\t140\nSummit Pack\tbags\t35\n",  # a catalogue
    "route  departs  arrives  platform\nX12    08:15    09:40    4\nX14    10:15    11:40    2\n",  # a timetable
    "endpoint,count,p95_ms\n/login,1532,41\n/search,88,120\n",  # a log with counts
    "| Feature | Ours | Theirs |\n|---|---|---|\n| User-defined metrics | yes | no |\n| Joins | yes | no |\n",
])
def test_look_alike_tables_carry_no_pii(text):
    assert _found(text) == set()


def test_a_row_inside_a_table_is_no_header():
    text = ("| Part | Issue | Notes |\n|---|---|---|\n| Lexicon | #8 | Customer entity words |\n"
            "| Sidecar | #11 | Business sidecar |\n")
    assert _found(text) == set()


def test_a_line_of_code_split_at_commas_is_no_header():
    text = 'def f(u):\n    return {"id": u.id, "name": u.name}\n>>> dumps(User("3b1", "asd"))\n'
    # (pii17: two lines split alike are a header-less block, typed by nothing)
    assert not any(any(t.types) for t in read_tables(text)) and _found(text) == set()


# ---------------------------------------------------------------- cost
def test_the_precheck_skips_text_without_a_separator():
    assert not has_table("one line, no table")
    assert not has_table("two\nlines")


@pytest.mark.parametrize("text", [
    "name,age\n" + "Ana Lima,30\n" * 40_000,
    "  ".join(["age"] * 20_000) + "\n" + "  ".join(["30"] * 20_000) + "\n",
    ("name  age\n" + "x  " * 100_000 + "\n") * 2,
])
def test_tables_take_linear_time(text):
    t0 = time.perf_counter()
    read_tables(text)
    assert time.perf_counter() - t0 < 2.5 * len(text.encode()) / 1e6 + 0.2


# ---------------------------------------------------------------- (pii16) card and IBAN columns
def test_a_card_column_takes_its_cells_by_their_shape_even_where_luhn_fails():
    text = ("txn\tholder\tcard\tamount\n88120\tCyprian Lattimore\t4539 7702 1184 6625\t119.00\n"
            "88121\tHedda Sorlie\t5425 2334 9081 7762\t64.50\n")
    found = _found(text)
    assert ("CREDIT_CARD", "4539 7702 1184 6625") in found and ("CREDIT_CARD", "5425 2334 9081 7762") in found
    assert not any(v in ("119.00", "88120") for _, v in found)


def test_an_iban_column_takes_its_cells_by_their_shape_even_where_the_checksum_fails():
    text = ("emp\tname\tdob\tiban\n0417\tFenna Dijkhuizen\t12-08-1990\tNL62RABO0317245589\n"
            "0418\tJoris Abbink\t29-01-1984\tNL07INGB0008812734\n")
    found = _found(text)
    assert ("IBAN_CODE", "NL62RABO0317245589") in found and ("IBAN_CODE", "NL07INGB0008812734") in found


def test_a_card_or_iban_column_of_other_values_takes_nothing():
    assert _found("iban\tnote\nsee attached\tpending\nn/a\tdone\n") == set()
    assert _found("card_type,card_expiry\nvisa,12/27\n") == set()


def test_an_address_does_not_run_from_one_table_row_into_the_next():
    text = (" member_id | full_name          | age | city\n-----------+--------------------+-----+-----------\n"
            "      2081 | Ottilie Brandvold  |  44 | Bergen\n      2082 | Sanjeev Kothandaraman |  61 | Chennai\n")
    a, b = text.index("Bergen"), text.index("2082") + 4
    got = {(t, text[s:e]) for s, e, t, _ in combine(text, [(a, b, "STREET_ADDRESS", 0.9)])}
    assert not any(t == "STREET_ADDRESS" for t, _ in got)


def test_an_address_across_lines_outside_a_table_stays():
    text = "name,street\nAna Lima,Rua Augusta 12\nBo Chen,Main St 4\n\nShip to 12 Main St\nSpringfield"
    a = text.index("12 Main")
    got = {(t, text[s:e]) for s, e, t, _ in combine(text, [(a, len(text), "STREET_ADDRESS", 0.9)])}
    assert ("STREET_ADDRESS", "12 Main St\nSpringfield") in got


@pytest.mark.parametrize("value", ["5f4dcc3b5aa765d61d8327deb882cf99",
                                   "$2b$12$KIXQeN1a8yq7m3Zl0vQfUe3yW8jv0Q1ZsJX6m9QhQv1bA2cD4eF5g"])
def test_a_password_hash_is_no_login(value):
    text = f"user,pw_hash\nana.lima,{value}\nbo.chen,{value}\n"
    a = text.index(value)
    got = {(t, text[s:e]) for s, e, t, _ in combine(text, [(a, a + len(value), "USERNAME", 0.9)])}
    assert ("USERNAME", value) not in got and ("USERNAME", "ana.lima") in got


# ---------------------------------------------------------------- (pii17) one read per text
def test_combine_reads_the_tables_of_a_text_once(monkeypatch):
    import router_extproc.signals.pii as sp

    calls = []
    real = sp.read_tables

    def counting(text):
        calls.append(text)
        return real(text)

    monkeypatch.setattr(sp, "read_tables", counting)
    monkeypatch.setattr("router_extproc.pii.rules.read_tables", lambda text: pytest.fail("read twice"))
    text = "name,age\nAna Lima,30\nBo Chen,41\n"
    got = {(t, text[s:e]) for s, e, t, _ in sp.combine(text, [(9, 17, "PERSON", 0.9)])}
    assert ("AGE", "30") in got and ("PERSON", "Ana Lima") in got
    assert len(calls) == 1  # the rules type the cells and the row-number check reads the same tables


# ---------------------------------------------------------------- (pii17) columns typed by their values
def test_header_less_rows_copied_from_a_spreadsheet():
    text = "the lookup fails on row 2:\nFairweather\tBeatrix\t44\tLegal\nOyelowo\tTobias\t58\tFacilities\n"
    got = _found(text)
    assert {("PERSON", "Fairweather"), ("PERSON", "Beatrix"), ("PERSON", "Oyelowo"), ("PERSON", "Tobias"),
            ("AGE", "44"), ("AGE", "58")} <= got
    assert not any(v in ("Legal", "Facilities") for _, v in got)  # not beside the given names: a department
    (table,) = read_tables(text)
    assert not table.headed


def test_a_header_that_is_no_column_name_leaves_the_rows_typed_by_their_values():
    text = ("A: Name | B: Born | C: =YEARFRAC(B2,TODAY())\nGwendolyn Marsh | 1961-08-14 | 65\n"
            "Piotr Zielinski | 1979-02-27 | 47\n")
    got = _found(text)
    assert {("PERSON", "Gwendolyn Marsh"), ("DATE_OF_BIRTH", "1961-08-14"), ("AGE", "65"),
            ("PERSON", "Piotr Zielinski"), ("DATE_OF_BIRTH", "1979-02-27"), ("AGE", "47")} <= got
    assert not any(v.startswith("A:") for _, v in got)


@pytest.mark.parametrize("text", [
    "id,city,visits\n1,Bergen,12\n2,Rosario,40\n",  # a thing's header: given-name-like cities are no people
    "2024-01-03\tJune\t14\n2024-02-09\tApril\t22\n",  # months, no person's column beside them
    "red, green, blue\nApple, Banana, Cherry\n",
    "Week\tOpened\tClosed\n1\t2024-01-03\t2024-01-09\n2\t2024-01-10\t2024-01-16\n",
])
def test_value_typing_look_alikes(text):
    got = _found(text)
    assert not any(t in ("AGE", "DATE_OF_BIRTH") for t, _ in got), got
    assert not any(v in ("Bergen", "Rosario", "June", "April") for _, v in got)


def test_header_less_tables_take_linear_time():
    text = "Lorna\t39\n" * 50_000 + "x,y\n" * 50_000
    t0 = time.perf_counter()
    read_tables(text)
    assert time.perf_counter() - t0 < 2.5 * len(text.encode()) / 1e6 + 0.2


def test_a_run_of_row_numbers_beside_given_names_is_no_age_column():
    from router_extproc.pii.rules import _value_types

    text = "Lorna\t1\tx\nCallum\t2\ty\nIsla\t3\tz\n"
    (table,) = read_tables(text)
    assert _value_types(text, table) == ["PERSON", None, None]


def test_header_less_rows_take_the_column_names_the_sentence_above_them_gives():
    # pii19: "columns are login, temp password, full name" / "(name, dob, street, town)" name the columns of the
    # header-less rows under them as a header row would
    text = ("new starters, no header, columns are login, temp password, full name. make it a table\n\n"
            "qnorcott,Wiosna#4471,Halina Norcott\nvpellew,Tamale-Sun-82,Kwame Pellew")
    got = _found(text)
    assert {("USERNAME", "qnorcott"), ("PASSWORD", "Wiosna#4471"), ("USERNAME", "vpellew"),
            ("PASSWORD", "Tamale-Sun-82")} <= got
    text = ("two rows from the sheet, no header (name, dob, street, town):\n"
            "Ada Ferrante\t1973-08-19\tVia Sole 14\tPisa\nIvo Kask\t1996-11-05\tPikk 61-12\tTartu")
    got = _found(text)
    assert {("DATE_OF_BIRTH", "1973-08-19"), ("STREET_ADDRESS", "Via Sole 14"), ("STREET_ADDRESS", "Pikk 61-12")} <= got


def test_a_sentence_that_names_no_column_types_leaves_header_less_rows_untyped():
    # one typed word in a sentence is no list of columns: "the login page, the logo, the footer" over rows of items
    table = read_tables("fix the login page, the logo, and the footer:\nhome,42,ok\nabout,17,ok")[0]
    assert table.types == (None, None, None)


def test_an_address_column_before_other_columns_keeps_its_unquoted_commas():
    # pii19: the CSV address's own commas, wherever the one address column stands; the next columns stay theirs
    text = "driver,age,home_address,licensed_since\nRos Tamblyn,67,4 Chapel Row, Helston,1977\nKit Pascoe,44,9 Quay Hill, Fowey,2001"
    got = _found(text)
    assert {("STREET_ADDRESS", "4 Chapel Row, Helston"), ("STREET_ADDRESS", "9 Quay Hill, Fowey"), ("AGE", "67")} <= got
    assert not any(v in ("1977", "2001") for _, v in got)


def test_a_birth_date_column_types_the_full_names_beside_it_in_header_less_rows():
    # pii19: names the given-name lexicon lacks ("Maelor", "Siân") are still the people whose births the rows give
    text = "no header:\nMaelor Griffiths\t30/03/1972\t07700 918 442\nSiân Pritchard-Evans\t11/10/1968\t07700 903 117"
    assert {("PERSON", "Maelor Griffiths"), ("PERSON", "Siân Pritchard-Evans"), ("DATE_OF_BIRTH", "30/03/1972")} <= _found(text)
    # without a birth column, two-word cells are no names: "Shepton Mallet", "Blue Door" in a stock list
    text = "Shepton Mallet\t12\tin stock\nBlue Door\t4\tback order"
    assert not any(t == "PERSON" for t, _ in _found(text))


def test_a_fixed_width_report_with_one_space_gaps_is_cut_at_its_header_columns():
    # pii19: where a value fills its column the gap to the next is one space; the header's column starts cut the row
    text = ("NAME               DOB        CITY\nGwenllian Ashworth 1965-09-30 Bargoed\n"
            "Ivo Kask           1996-11-05 Tartu\nPriya Raman        1971-02-14 Leicester")
    got = _found(text)
    assert {("PERSON", "Gwenllian Ashworth"), ("DATE_OF_BIRTH", "1965-09-30"), ("PERSON", "Ivo Kask"),
            ("DATE_OF_BIRTH", "1996-11-05"), ("DATE_OF_BIRTH", "1971-02-14")} <= got
    table = read_tables(text)[0]
    assert [text[a:b] for a, b in table.columns[2]] == ["Bargoed", "Tartu", "Leicester"]


def test_a_row_that_does_not_start_its_cells_at_the_header_columns_is_not_cut():
    # right-aligned numbers or a prose line under a header: no cell starts at a column start, so no cut
    text = "name      age  city\nsee the notes below for the rest of it"
    assert read_tables(text) == [] or all(not c for t in read_tables(text) for c in t.columns)
