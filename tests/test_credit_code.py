"""The unified social credit code check (GB 32100-2015), and the register's CSV import."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from tafang.store.cases import Actor, Refused, Store
from tafang.store.credit_code import ALPHABET, CreditCodeError, check_char, is_valid, validate
from tafang.store.enterprises import enterprises, find, import_csv

# Written out by hand from the standard (not computed from the module under test).
HAND_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
# Published codes of large companies (business licences are public).
PUBLISHED = ["914403001922038216", "9144030071526726XG", "91330100799655058B"]


def hand_check(body: str) -> str:
    """The check character computed the slow, obvious way."""
    s = sum(ALPHABET.index(c) * w for c, w in zip(body, HAND_WEIGHTS, strict=True))
    r = 31 - s % 31
    return "0" if r == 31 else ALPHABET[r]


def test_the_alphabet_has_31_characters_without_i_o_s_v_z() -> None:
    assert len(ALPHABET) == 31
    assert not set("IOSVZ") & set(ALPHABET)


@pytest.mark.parametrize("code", PUBLISHED)
def test_published_codes_pass(code: str) -> None:
    assert validate(code) == code


def test_constructed_codes_pass_and_every_corruption_fails() -> None:
    bodies = ["91330106MA2GL0AB1", "92330106MA28EXXQ3", "12330106470100073", "5133010655750321X"]
    for body in bodies:
        code = body + hand_check(body)
        assert check_char(body) == hand_check(body)
        assert validate(code.lower()) == code  # typed in lower case
        for i in range(18):  # every single-character substitution is caught
            for c in ALPHABET:
                if c != code[i]:
                    assert not is_valid(code[:i] + c + code[i + 1 :]), (code, i, c)
        for i in range(17):  # and every swap of two neighbours that differ
            if code[i] != code[i + 1]:
                swapped = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
                assert not is_valid(swapped), (code, i)


def test_a_check_value_of_31_is_written_0() -> None:
    # Find a body whose weighted sum is a multiple of 31: its check is "0".
    bodies = (f"9133010600000{n:04d}" for n in range(10_000))
    body = next(b for b in bodies if hand_check(b) == "0")
    assert check_char(body) == "0"
    assert is_valid(body + "0")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("91330106MA2GL0AB1", "length"),
        ("914403001922038216X", "length"),
        ("9144030019220382I6", "alphabet"),
        ("91440300192203821O", "alphabet"),
        ("914403001922038217", "check"),
    ],
)
def test_bad_codes_say_why(raw: str, reason: str) -> None:
    with pytest.raises(CreditCodeError) as e:
        validate(raw)
    assert e.value.code == reason


def test_blanks_are_ignored() -> None:
    assert validate(" 9144 0300 1922 0382 16 ") == "914403001922038216"


CSV = """credit_code,name,grid,address,risk_grade,contact
914403001922038216,华为技术有限公司,N3-07,天目山路1号,B,王工
9144030071526726XG,"腾讯科技(深圳)有限公司",33010600700801,,A,
914403001922038217,校验位错的公司,N3-07,,B,
91330100799655058B,,N3-07,,B,
91330100799655058B,阿里巴巴(中国)有限公司,Z9-99,,B,
91330100799655058B,阿里巴巴(中国)有限公司,N3-07,,E,
91330100799655058B,阿里巴巴(中国)有限公司,N3-07,文一西路969号,C,a,extra
91330100799655058B,阿里巴巴(中国)有限公司,N3-07,文一西路969号,c,
"""


def test_import_reports_bad_rows_by_line_and_keeps_them(store: Store) -> None:
    me = Actor("d01")
    r = import_csv(store, CSV.encode("utf-8-sig"), origin="ent.csv", actor=me)
    assert (r.added, r.updated) == (3, 0)
    lines = [n for n, _ in r.errors]
    assert lines == [4, 5, 6, 7, 8]
    reasons = dict(r.errors)
    assert "check character" in reasons[4]
    assert "name is blank" in reasons[5]
    assert "Z9-99" in reasons[6]
    assert "risk_grade" in reasons[7]
    assert "more values" in reasons[8]
    got = {e.credit_code: e for e in enterprises(store)}
    assert got["91330100799655058B"].risk_grade == "C"  # lower case accepted
    assert got["9144030071526726XG"].grid == "33010600700801"
    assert got["914403001922038216"].grid == store.d.grids_by_label["N3-07"].code
    with store.read_engine.connect() as c:
        dead = c.execute(text("SELECT line_no, raw FROM dead_letters ORDER BY line_no")).all()
        last = c.execute(text("SELECT action, detail FROM audit ORDER BY seq DESC")).first()
    assert [d.line_no for d in dead] == lines
    assert "校验位错的公司" in json.loads(dead[0].raw)["csv"]
    assert last is not None and last.action == "enterprise.import"
    # Importing again updates instead of duplicating.
    r2 = import_csv(store, CSV, origin="ent.csv", actor=me)
    assert (r2.added, r2.updated, r2.rejected) == (0, 3, 5)
    assert find(store, "阿里巴巴(中国)有限公司") is not None
    assert find(store, "91330100799655058b") is not None


def test_import_needs_the_header_and_a_dispatcher(store: Store) -> None:
    from tafang.store.csv_import import RowError

    with pytest.raises(RowError, match="line 1: header lacks credit_code"):
        import_csv(store, "name,grid\nx,N3-07\n", origin="x.csv", actor=Actor("d01"))
    with pytest.raises(Refused):
        import_csv(store, CSV, origin="x.csv", actor=Actor("nobody"))


def test_a_gb18030_spreadsheet_export_reads_and_hostile_names_stay_text(store: Store) -> None:
    """Excel on a Chinese Windows saves CSV as GB 18030; a name may carry escapes."""
    data = "credit_code,name\n914403001922038216,华为\x1b[31m技术\n".encode("gb18030")
    r = import_csv(store, data, origin="gbk.csv", actor=Actor("d01"))
    assert r.added == 1
    assert find(store, "914403001922038216").name == "华为\x1b[31m技术"  # kept as received
    from tafang.store.csv_import import RowError

    with pytest.raises(RowError, match="line 2: neither UTF-8"):
        import_csv(store, b"credit_code,name\n\xff\xff\xff\xff\n", origin="x", actor=Actor("d01"))
