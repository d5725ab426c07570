"""Property (issue 15): a reader loads exactly the valid rows, or names the file and line of the first bad one.

Valid files of every reader format (GroupLens ``u.data`` / ``u.item`` / ``u.user``, ML-1M
``*.dat``, ``ratings.csv``, RecBole atomic files, the ``user item`` sequence file) get
random lines inserted: malformed ones (wrong field counts, empty fields, non-numeric,
non-finite, huge or non-integral numbers, bytes that are not UTF-8) and legitimately
accepted ones (blank lines, a byte-order mark, CRLF line ends, a missing final newline).
Loading must either raise a ``TfrecsError`` whose message holds ``<path>:<line>:`` of the
first malformed line, or return exactly the valid rows, in file order. See
``docs/data_policies.md`` ("Property tests").
"""

import os
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import hypothesis_settings  # noqa: F401  - loads the shared profile
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tfrecs.core.errors import TfrecsError
from tfrecs.data import EmptyFileError, load_dataset

GENRE_FLAGS = "|".join(["0"] * 8 + ["1"] + ["0"] * 10)  # Drama only
ML100K_GENRES = 19

# Ids: letters and digits of any script (no separators, whitespace, quotes or control characters).
IDS = st.text(st.characters(categories=("L", "N")), min_size=1, max_size=6)
RATINGS = st.sampled_from(["1", "2", "3", "4", "5", "0.5", "3.5", "4.0", "0", "-1", "10"])
TIMESTAMPS = st.lists(st.integers(0, 2**40), min_size=1, max_size=6, unique=True)

BAD_FLOATS = ["abc", "five", "nan", "NaN", "inf", "-inf", "Infinity", "1e400", "4,5", "1e39"]
BAD_INTS = ["abc", "nan", "inf", "-inf", "1e300", "9" * 25, "-" + "9" * 25, "12:30", "2020-01-01", "1.5"]
# Latin-1 e-acute, a UTF-16 BOM, truncated UTF-8, a stray continuation byte
BAD_BYTES = [b"\xe9", b"\xff\xfe", b"\xc3", b"\x80abc"]


@dataclass(frozen=True)
class Format:
    """An interactions file layout and how ``load_dataset`` finds it."""

    dataset: str
    file: str
    separator: str
    header: Optional[str]
    columns: Tuple[str, ...]
    side_files: Tuple[Tuple[str, str], ...] = ()
    data_dir_is_file: bool = False


FORMATS: Dict[str, Format] = {
    "u.data": Format(
        "ml-100k",
        "u.data",
        "\t",
        None,
        ("user_id", "item_id", "rating", "timestamp"),
        (("u.user", "1|24|M|technician|85711\n"), ("u.item", f"1|Heat (1995)|01-Jan-1995||http://x|{GENRE_FLAGS}\n")),
    ),
    "ratings.dat": Format(
        "ml-1m",
        "ratings.dat",
        "::",
        None,
        ("user_id", "item_id", "rating", "timestamp"),
        (("users.dat", "1::F::1::10::48067\n"), ("movies.dat", "1::Toy Story (1995)::Animation|Comedy\n")),
    ),
    "ratings.csv": Format(
        "ml-20m", "ratings.csv", ",", "userId,movieId,rating,timestamp", ("user_id", "item_id", "rating", "timestamp")
    ),
    "recbole.inter": Format(
        "ml-100k",
        "ml-100k.inter",
        "\t",
        "user_id:token\titem_id:token\trating:float\ttimestamp:float",
        ("user_id", "item_id", "rating", "timestamp"),
        (
            (
                "ml-100k.user",
                "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
                "1\t24\tM\ttechnician\t85711\n",
            ),
            (
                "ml-100k.item",
                "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n1\tHeat\t1995\tDrama\n",
            ),
        ),
    ),
    "sequence": Format("sequences", "seq.txt", " ", None, ("user_id", "item_id"), data_dir_is_file=True),
}


@dataclass
class Line:
    """One physical line: ``valid`` (with the row it must load as), ``skip`` or ``bad``."""

    raw: bytes
    kind: str
    row: Optional[dict] = None
    why: str = ""


def _join(fmt: Format, fields: List[str]) -> bytes:
    return fmt.separator.join(fields).encode("utf-8")


@st.composite
def valid_rows(draw, fmt: Format) -> List[dict]:
    timestamps = draw(TIMESTAMPS)
    rows = []
    for timestamp in timestamps:
        row = {
            "user_id": draw(IDS),
            "item_id": draw(IDS),
            "rating": draw(RATINGS),
            "timestamp": str(timestamp) + draw(st.sampled_from(["", "", ".0"])),
        }
        rows.append({name: row[name] for name in fmt.columns})
    return rows


@st.composite
def bad_line(draw, fmt: Format) -> Line:
    """A line that must be refused, made from a fresh valid row."""
    row = draw(valid_rows(fmt))[0]
    fields = [row[name] for name in fmt.columns]
    numeric = [name for name in ("rating", "timestamp") if name in fmt.columns]
    kinds = ["too_few", "too_many", "bad_bytes"] + (["empty", "bad_number"] if numeric else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "too_few":
        return Line(_join(fmt, fields[:-1]), "bad", why=kind)
    if kind == "too_many":
        return Line(_join(fmt, fields + ["7"]), "bad", why=kind)
    if kind == "empty":
        position = draw(st.integers(0, len(fields) - 1))
        fields[position] = draw(st.sampled_from(["", " "]))
        return Line(_join(fmt, fields), "bad", why=f"empty {fmt.columns[position]}")
    if kind == "bad_number":
        column = draw(st.sampled_from(numeric))
        fields[fmt.columns.index(column)] = draw(st.sampled_from(BAD_FLOATS if column == "rating" else BAD_INTS))
        return Line(_join(fmt, fields), "bad", why=f"bad {column}")
    position = draw(st.integers(0, 1))  # bytes that are not UTF-8 inside an id
    encoded = [field.encode("utf-8") for field in fields]
    encoded[position] = encoded[position] + draw(st.sampled_from(BAD_BYTES))
    return Line(fmt.separator.encode("utf-8").join(encoded), "bad", why="not utf-8")


def skip_line(fmt: Format):
    blanks = [b""] + ([b" \t "] if fmt.dataset == "sequences" else [])
    return st.sampled_from(blanks).map(lambda raw: Line(raw, "skip", why="blank"))


@dataclass
class Case:
    fmt: Format
    lines: List[Line]
    ending: bytes
    bom: bool
    final_newline: bool

    def content(self) -> bytes:
        physical = ([self.fmt.header.encode("utf-8")] if self.fmt.header else []) + [line.raw for line in self.lines]
        text = self.ending.join(physical) + (self.ending if self.final_newline else b"")
        return (b"\xef\xbb\xbf" if self.bom else b"") + text

    def first_bad_line(self) -> Optional[int]:
        offset = 2 if self.fmt.header else 1
        return next((number + offset for number, line in enumerate(self.lines) if line.kind == "bad"), None)

    def valid(self) -> List[Tuple[int, dict]]:
        offset = 2 if self.fmt.header else 1
        return [(number + offset, line.row) for number, line in enumerate(self.lines) if line.kind == "valid"]


@st.composite
def cases(draw, fmt: Format, bad: bool = True) -> Case:
    lines = [Line(_join(fmt, [row[name] for name in fmt.columns]), "valid", row) for row in draw(valid_rows(fmt))]
    extra = st.one_of(bad_line(fmt), skip_line(fmt)) if bad else skip_line(fmt)
    for line in draw(st.lists(extra, max_size=3)):
        lines.insert(draw(st.integers(0, len(lines))), line)
    return Case(fmt, lines, draw(st.sampled_from([b"\n", b"\r\n"])), draw(st.booleans()), draw(st.booleans()))


def _load(case: Case, directory: str):
    fmt = case.fmt
    for name, text in fmt.side_files:
        with open(os.path.join(directory, name), "w", encoding="utf-8") as handle:
            handle.write(text)
    path = os.path.join(directory, fmt.file)
    with open(path, "wb") as handle:
        handle.write(case.content())
    return path, (lambda: load_dataset(fmt.dataset, data_dir=path if fmt.data_dir_is_file else directory))


def _expected_columns(case: Case) -> Dict[str, list]:
    valid = case.valid()
    expected = {"user_id": [row["user_id"] for _, row in valid], "item_id": [row["item_id"] for _, row in valid]}
    if "rating" in case.fmt.columns:
        expected["rating"] = [np.float32(float(row["rating"])) for _, row in valid]
        expected["timestamp"] = [int(float(row["timestamp"])) for _, row in valid]
    else:  # the sequence file: the timestamp is the line number
        expected["timestamp"] = [number for number, _ in valid]
    return expected


def check_case(case: Case) -> None:
    """The property: exactly the valid rows, or a TfrecsError naming ``path:line`` of the first bad line."""
    with tempfile.TemporaryDirectory() as directory:
        path, load = _load(case, directory)
        line = case.first_bad_line()
        if line is None:
            ds = load()
            loaded = {name: ds.interactions[name].tolist() for name in _expected_columns(case)}
            assert loaded == _expected_columns(case), case.content()
            return
        with pytest.raises(TfrecsError) as error:
            load()
        assert f"{path}:{line}:" in str(error.value), (case.content(), str(error.value))


@pytest.mark.parametrize("key", list(FORMATS))
@given(data=st.data())
def test_interaction_files_load_the_valid_rows_or_name_the_first_bad_line(key, data):
    check_case(data.draw(cases(FORMATS[key])))


@pytest.mark.parametrize("key", list(FORMATS))
@given(data=st.data())
def test_accepted_variants_load_exactly_the_valid_rows(key, data):
    """Blank lines, a BOM, CRLF and a missing final newline change nothing."""
    check_case(data.draw(cases(FORMATS[key], bad=False)))


NUMERIC_FORMATS = [key for key, fmt in FORMATS.items() if "rating" in fmt.columns]


@pytest.mark.parametrize("key", NUMERIC_FORMATS)
@pytest.mark.parametrize(
    "column, token", [("rating", token) for token in BAD_FLOATS] + [("timestamp", token) for token in BAD_INTS]
)
def test_every_bad_number_is_named_at_its_line(key, column, token):
    """Every token of the random property, deterministically: 25 examples do not draw them all.
    ``1e39`` is a finite float64 but ``inf`` as the float32 rating; ``1.5`` is not a whole timestamp."""
    fmt = FORMATS[key]
    good = {"user_id": "1", "item_id": "2", "rating": "4", "timestamp": "881250949"}
    lines = [
        Line(_join(fmt, [good[name] for name in fmt.columns]), "valid", good),
        Line(_join(fmt, [{**good, column: token}[name] for name in fmt.columns]), "bad"),
    ]
    check_case(Case(fmt, lines, b"\n", False, True))


@pytest.mark.parametrize("key", list(FORMATS))
@given(blank=st.lists(st.sampled_from([b"", b"\r"]), max_size=3), bom=st.booleans())
def test_a_file_without_interactions_is_an_empty_file_error_naming_it(key, blank, bom):
    fmt = FORMATS[key]
    case = Case(fmt, [Line(raw, "skip") for raw in blank], b"\n", bom, True)
    with tempfile.TemporaryDirectory() as directory:
        path, load = _load(case, directory)
        with pytest.raises(EmptyFileError) as error:
            load()
        assert path in str(error.value)


# Feature tables: u.item / movies.dat / ml-100k.item and u.user / users.dat / ml-100k.user ----------------

LATIN1_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" + "".join(map(chr, range(0xE0, 0x100)))
# Never valid UTF-8 once Latin-1 encoded (lead bytes without continuation bytes), so detection is unambiguous.
LATIN1_TITLES = st.text(st.sampled_from(LATIN1_LETTERS), min_size=1, max_size=8)
UNICODE_TITLES = st.text(st.characters(categories=("L",)), min_size=1, max_size=8)
NUMERIC_IDS = st.lists(st.integers(1, 10**6), min_size=1, max_size=5, unique=True)


@dataclass(frozen=True)
class Table:
    """A feature table: where it lives, how a row is written, which rule decodes it."""

    layout: str  # "u.data", "ratings.dat" or "recbole.inter"
    file: str
    kind: str  # "items" or "users"

    @property
    def latin1_allowed(self) -> bool:
        return self.layout != "recbole.inter"


TABLES = {
    "u.item": Table("u.data", "u.item", "items"),
    "movies.dat": Table("ratings.dat", "movies.dat", "items"),
    "recbole.item": Table("recbole.inter", "ml-100k.item", "items"),
    "u.user": Table("u.data", "u.user", "users"),
    "users.dat": Table("ratings.dat", "users.dat", "users"),
    "recbole.user": Table("recbole.inter", "ml-100k.user", "users"),
}


def _table_line(table: Table, row: dict) -> str:
    if table.kind == "items":
        title, year, item = row["title"], row["year"], row["item_id"]
        if table.file == "u.item":
            return f"{item}|{title} ({year})|01-Jan-{year}||http://x|{row.get('flags', GENRE_FLAGS)}"
        if table.file == "movies.dat":
            return f"{item}::{title} ({year})::Drama"
        return f"{item}\t{title}\t{year}\tDrama"
    user, age = row["user_id"], row["age"]
    if table.file == "u.user":
        return f"{user}|{age}|M|technician|85711"
    if table.file == "users.dat":
        return f"{user}::M::{age}::10::48067"
    return f"{user}\t{age}\tM\ttechnician\t85711"


def _table_header(table: Table) -> Optional[str]:
    if table.file == "ml-100k.item":
        return "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"
    if table.file == "ml-100k.user":
        return "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token"
    return None


def _bad_table_lines(table: Table, row: dict) -> List[Tuple[str, str]]:
    """(line, why) variants of ``row`` that must be refused."""
    line = _table_line(table, row)
    separator = "|" if table.layout == "u.data" else ("::" if table.layout == "ratings.dat" else "\t")
    fields = line.split(separator)
    variants = [
        (separator.join(fields[:-1]), "too few fields"),
        (separator.join(fields + ["x"]), "too many fields"),
        (separator.join([""] + fields[1:]), "empty id"),
    ]
    if table.kind == "users":
        variants += [(_table_line(table, {**row, "age": age}), "bad age") for age in ("", "old", "nan", "1e400")]
    if table.file == "u.item":
        variants.append((_table_line(table, {**row, "flags": GENRE_FLAGS.replace("1", "2")}), "bad genre flag"))
    return variants


@st.composite
def table_cases(draw, table: Table):
    encoding = draw(st.sampled_from(["utf-8", "latin-1"] if table.latin1_allowed else ["utf-8"]))
    titles = LATIN1_TITLES if encoding == "latin-1" else UNICODE_TITLES
    ids = draw(NUMERIC_IDS)
    rows = [
        {
            "item_id": str(i),
            "user_id": str(i),
            "title": draw(titles),
            "year": draw(st.integers(1900, 2030)),
            "age": draw(st.integers(1, 99)),
        }
        for i in ids
    ]
    lines: List[Tuple[str, str, Optional[dict]]] = [(_table_line(table, row), "valid", row) for row in rows]
    extras = st.one_of(
        st.just(("", "skip", None)),
        st.sampled_from(_bad_table_lines(table, rows[0])).map(lambda v: (v[0], "bad", v[1])),
    )
    for extra in draw(st.lists(extras, max_size=2)):
        lines.insert(draw(st.integers(0, len(lines))), extra)
    bom = encoding == "utf-8" and draw(st.booleans())
    return encoding, bom, lines


def _feature_table_directory(directory: str, table: Table, encoding: str, bom: bool, lines) -> str:
    fmt = FORMATS[table.layout]
    for name, text in fmt.side_files:
        with open(os.path.join(directory, name), "w", encoding="utf-8") as handle:
            handle.write(text)
    with open(os.path.join(directory, fmt.file), "w", encoding="utf-8") as handle:
        handle.write(
            (fmt.header + "\n" if fmt.header else "") + fmt.separator.join(["1", "1", "5", "881250949"]) + "\n"
        )
    header = _table_header(table)
    text = "\n".join(([header] if header else []) + [line for line, _, _ in lines]) + "\n"
    path = os.path.join(directory, table.file)
    with open(path, "wb") as handle:
        handle.write((b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding))
    return path


@pytest.mark.parametrize("key", list(TABLES))
@given(data=st.data())
def test_feature_tables_load_exactly_or_name_the_first_bad_line(key, data):
    """Titles, years, ages and ids read back exactly (UTF-8 or, for GroupLens' files, Latin-1),
    or the first bad line is named."""
    table = TABLES[key]
    encoding, bom, lines = data.draw(table_cases(table))
    offset = 2 if _table_header(table) else 1
    bad = next((number + offset for number, (_, kind, _) in enumerate(lines) if kind == "bad"), None)
    with tempfile.TemporaryDirectory() as directory:
        path = _feature_table_directory(directory, table, encoding, bom, lines)
        load = lambda: load_dataset(FORMATS[table.layout].dataset, data_dir=directory)  # noqa: E731
        if bad is not None:
            with pytest.raises(TfrecsError) as error:
                load()
            assert f"{path}:{bad}:" in str(error.value), (lines, str(error.value))
            return
        ds = load()
        valid = [row for _, kind, row in lines if kind == "valid"]
        if table.kind == "items":
            assert ds.items["item_id"].tolist() == [row["item_id"] for row in valid]
            assert ds.items["title"].tolist() == [row["title"] for row in valid]
            assert ds.items["release_year"].tolist() == [row["year"] for row in valid]
        else:
            assert ds.users["user_id"].tolist() == [row["user_id"] for row in valid]
            assert ds.users["age"].tolist() == [row["age"] for row in valid]


@pytest.mark.parametrize("key", list(TABLES))
def test_a_repeated_id_in_a_feature_table_names_its_line(key, tmp_path):
    """A second row for the same item / user id is refused at its line (not a later
    "the catalogue has duplicate ids" ValueError without file or line)."""
    table = TABLES[key]
    row = {"item_id": "1", "user_id": "1", "title": "Heat", "year": 1995, "age": 24}
    other = {**row, "item_id": "2", "user_id": "2"}
    lines = [(_table_line(table, r), "valid", r) for r in (row, other, row)]
    path = _feature_table_directory(str(tmp_path), table, "utf-8", False, lines)
    line = 3 + (1 if _table_header(table) else 0)
    with pytest.raises(TfrecsError) as error:
        ds = load_dataset(FORMATS[table.layout].dataset, data_dir=str(tmp_path))
        assert len(ds.item_index) and len(ds.user_index)  # where the repeat surfaces today, if loading accepted it
    assert f"{path}:{line}:" in str(error.value), str(error.value)


def test_a_grouplens_file_mixing_utf8_and_latin1_is_refused_or_read_right(tmp_path):
    """One title saved as UTF-8 ("Amélie") and one as Latin-1 ("Léon"): decoding the whole file as
    Latin-1 would turn the first into mojibake without a word."""
    table = TABLES["u.item"]
    rows = [{"item_id": "1", "title": "Amélie", "year": 2001}, {"item_id": "2", "title": "Léon", "year": 1994}]
    path = _feature_table_directory(str(tmp_path), table, "utf-8", False, [])
    with open(path, "wb") as handle:
        handle.write(
            (_table_line(table, rows[0]) + "\n").encode("utf-8")
            + (_table_line(table, rows[1]) + "\n").encode("latin-1")
        )
    try:
        ds = load_dataset("ml-100k", data_dir=str(tmp_path))
    except TfrecsError as error:
        assert f"{path}:" in str(error)
        return
    assert ds.items["title"].tolist() == ["Amélie", "Léon"]
