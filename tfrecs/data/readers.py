"""Parsers for the on-disk layouts MovieLens comes in.

Every parser reads line by line and reports a malformed line as ``path:line: reason``,
so a broken download is found at once instead of turning into wrong numbers later.

Layouts:
    * RecBole atomic files (``*.inter`` / ``*.user`` / ``*.item``, tab-separated, a
      ``name:type`` header; ``token_seq`` fields are space-separated).
    * GroupLens ML-100K (``u.data``, ``u.user``, ``u.item``), ML-1M (``ratings.dat``,
      ``users.dat``, ``movies.dat``) and the CSV releases (``ratings.csv``, ``movies.csv``).

Text decoding rule (see ``docs/data_policies.md``): every file is read as UTF-8 (a leading
byte-order mark is ignored); an undecodable byte is a ``MalformedFileError`` naming file
and line. GroupLens' own feature files (``u.item``, ``u.user``, ``movies.dat``,
``users.dat``) were published in Latin-1: they are decoded as UTF-8 when the whole file is
valid UTF-8 (a user's re-saved copy) and as Latin-1 otherwise. The choice is logged and
recorded in the ``encodings`` dict a reader is given (``RecDataset.notes["encodings"]``).
Files ending in ``.gz`` are decompressed on the fly.

Values: ids must be non-empty, integers (timestamps, ages) must be present and finite,
floats (ratings) must be finite; anything else is a ``MalformedFileError`` with file and
line. A ratings file without a single interaction is an ``EmptyFileError`` naming it.
"""

import csv
import gzip
import logging
import math
import os
import re
import zlib
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from tfrecs.core.errors import InputError, StorageError
from tfrecs.data.dataset import Columns, object_column

LOG = logging.getLogger("tfrecs.data")

UTF8 = "utf-8"
LATIN1 = "latin-1"
UTF8_OR_LATIN1 = "utf-8, else latin-1"
"""Decoding of GroupLens' own feature files: UTF-8 if the whole file is valid UTF-8, else Latin-1."""

Encodings = Optional[Dict[str, str]]
"""``path -> encoding used``; readers fill it in when given one."""


class MalformedFileError(InputError):
    """A data file does not have the expected layout; the message names file and line."""


class EmptyFileError(MalformedFileError):
    """A file that must hold interactions holds none; the message names the file."""


class DataNotFoundError(StorageError, FileNotFoundError):
    """A named data file or directory does not exist or holds no recognisable files."""


def _open_binary(path: str):
    if not os.path.exists(path):
        raise DataNotFoundError(f"data file not found: {path}")
    try:
        return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")
    except OSError as error:
        raise StorageError(f"cannot read {path}: {error.strerror or error}") from None


def detect_encoding(path: str) -> str:
    """``"utf-8"`` if the whole file decodes as UTF-8, else ``"latin-1"`` (the GroupLens rule).

    Raises:
        MalformedFileError: the file mixes UTF-8 lines with non-ASCII characters and lines that
            are not UTF-8 (a file partly re-saved): no single decoding reads both right, so the
            first line that is not UTF-8 is named.
    """
    first_invalid, utf8_text = 0, 0
    with _open_binary(path) as handle:
        try:
            for number, raw in enumerate(handle, start=1):
                try:
                    raw.decode(UTF8)
                    if not utf8_text and not raw.isascii():
                        utf8_text = number
                except UnicodeDecodeError:
                    first_invalid = first_invalid or number
        except (OSError, EOFError, zlib.error) as error:
            raise MalformedFileError(f"{path}: unreadable compressed data: {error}") from None
    if first_invalid and utf8_text:
        raise MalformedFileError(
            f"{path}:{first_invalid}: not valid UTF-8, while line {utf8_text} is UTF-8 text: the file mixes "
            "encodings; re-save it as UTF-8"
        )
    return LATIN1 if first_invalid else UTF8


def decoded_lines(path: str, encoding: str = UTF8, encodings: Encodings = None) -> Iterator[Tuple[int, str]]:
    """Yields ``(line number, text)`` of every line (line end kept), decoded by the rule above.

    Args:
        path: the file (``.gz`` is decompressed).
        encoding: ``"utf-8"``, ``"latin-1"`` or ``UTF8_OR_LATIN1``.
        encodings: if given, ``encodings[path]`` is set to the encoding used.

    Raises:
        DataNotFoundError: the file does not exist.
        MalformedFileError: a line is not valid text in the encoding (names file and line).
    """
    if encoding == UTF8_OR_LATIN1:
        encoding = detect_encoding(path)
        LOG.info("%s: decoded as %s%s", path, encoding, "" if encoding == UTF8 else " (not valid UTF-8)")
    if encodings is not None:
        encodings[path] = encoding
    number = 0
    with _open_binary(path) as handle:
        try:
            for number, raw in enumerate(handle, start=1):
                try:
                    text = raw.decode(encoding)
                except UnicodeDecodeError as error:
                    raise MalformedFileError(
                        f"{path}:{number}: not valid {encoding} text (byte 0x{raw[error.start]:02x} at column "
                        f"{error.start + 1}); re-save the file as UTF-8"
                    ) from None
                yield number, (text[1:] if number == 1 and text.startswith("\ufeff") else text)
        except (OSError, EOFError, zlib.error) as error:
            raise MalformedFileError(f"{path}:{number + 1}: unreadable compressed data: {error}") from None


def nonblank_lines(path: str, encoding: str = UTF8, encodings: Encodings = None) -> Iterator[Tuple[int, str]]:
    """Non-empty lines without their line end, as ``(line number, text)``."""
    for number, text in decoded_lines(path, encoding, encodings):
        text = text.rstrip("\r\n")
        if text:
            yield number, text


_INT64_LIMIT = 2**63


def _parse_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        number = float(raw)  # "881250949.0" (RecBole's float timestamps); raises on "", "abc"
        if not math.isfinite(number) or not number.is_integer():
            raise ValueError(raw) from None
        value = int(number)
    if not -_INT64_LIMIT <= value < _INT64_LIMIT:
        raise ValueError(raw)
    return value


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _parse_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or abs(value) > _FLOAT32_MAX:  # stored as float32: beyond it would be inf
        raise ValueError(raw)
    return value


def _convert(path: str, line: int, column: str, kind: str, raw: str):
    """Parses one field; kinds ``int``, ``float``, ``str``, ``id`` (non-empty str), ``list``."""
    if kind in ("int", "float", "id") and not raw.strip():
        raise MalformedFileError(f"{path}:{line}: column {column!r} is empty (expects {kind})")
    try:
        if kind == "int":
            return _parse_int(raw)
        if kind == "float":
            return _parse_float(raw)
        if kind == "list":
            return tuple(raw.split())
        return raw
    except ValueError:
        raise MalformedFileError(f"{path}:{line}: column {column!r} expects {kind}, got {raw!r}") from None


class UniqueIds:
    """Remembers the line of every id of a feature table; a repeated id is a ``MalformedFileError``."""

    def __init__(self, path: str, column: str):
        self.path, self.column, self.lines = path, column, {}

    def add(self, line: int, value) -> None:
        first = self.lines.setdefault(value, line)
        if first != line:
            raise MalformedFileError(
                f"{self.path}:{line}: {self.column} {value!r} repeats the row of line {first}; each id may "
                "appear once in a feature table"
            )


_NUMPY_KINDS = {"int": np.int64, "float": np.float32, "str": str, "id": str}


def _to_columns(names: Sequence[str], kinds: Sequence[str], rows: List[list]) -> Columns:
    columns: Columns = {}
    for position, (name, kind) in enumerate(zip(names, kinds)):
        values = [row[position] for row in rows]
        if kind == "list":
            columns[name] = object_column(values)
        else:
            columns[name] = np.array(values, dtype=_NUMPY_KINDS[kind])
    return columns


def require_rows(path: str, columns: Columns) -> Columns:
    """Returns ``columns`` unless they hold no row: an interactions file must not be empty.

    Raises:
        EmptyFileError: naming ``path``.
    """
    if not columns or len(next(iter(columns.values()))) == 0:
        raise EmptyFileError(
            f"{path}: the file holds no interactions; check that it is the right file and was copied completely"
        )
    return columns


def read_delimited(
    path: str,
    separator: str,
    schema: Sequence[Tuple[str, str]],
    encoding: str = UTF8,
    skip_header: bool = False,
    encodings: Encodings = None,
    unique: Optional[str] = None,
) -> Columns:
    """Reads a headerless (or header-skipped) delimited file with a fixed schema.

    Args:
        path: the file.
        separator: field separator, e.g. ``"\\t"``, ``"|"``, ``"::"``.
        schema: ``(column name, kind)`` per field, kind in ``int``, ``float``, ``str``,
            ``id`` (non-empty string), ``list`` (space-separated tokens); a name of
            ``None`` drops the field.
        encoding: ``"utf-8"`` (default), ``"latin-1"`` or ``UTF8_OR_LATIN1``.
        encodings: filled in with ``path -> encoding used`` when given.
        unique: a column whose values must not repeat (a feature table's id).

    Raises:
        DataNotFoundError: the file does not exist (a ``FileNotFoundError``).
        MalformedFileError: a line has the wrong number of fields, a bad or empty value,
            or bytes that are not text in the encoding.
    """
    rows = []
    kept = [(name, kind) for name, kind in schema if name]
    ids = UniqueIds(path, unique) if unique else None
    for number, line in nonblank_lines(path, encoding, encodings):
        if skip_header and not rows and number == 1:
            continue
        fields = line.split(separator)
        if len(fields) != len(schema):
            raise MalformedFileError(
                f"{path}:{number}: expected {len(schema)} fields separated by {separator!r}, got {len(fields)}: {line[:80]!r}"
            )
        rows.append([_convert(path, number, name, kind, raw) for (name, kind), raw in zip(schema, fields) if name])
        if ids is not None:
            ids.add(number, rows[-1][[name for name, _ in kept].index(unique)])
    return _to_columns([n for n, _ in kept], [k for _, k in kept], rows)


_ATOMIC_KINDS = {"token": "str", "float": "float", "token_seq": "list", "float_seq": "list"}
ID_COLUMNS = ("user_id", "item_id")


def read_atomic(
    path: str,
    required: Sequence[str],
    rename: Dict[str, str] = None,
    kinds: Dict[str, str] = None,
    encodings: Encodings = None,
    unique: Optional[str] = None,
) -> Columns:
    """Reads a RecBole atomic file (tab-separated, header of ``name:type`` fields).

    Args:
        path: the ``.inter`` / ``.user`` / ``.item`` file.
        required: header names that must be present (before renaming).
        rename: header name -> column name in the result.
        kinds: overrides of the parsed kind per header name (e.g. ``{"timestamp": "int"}``);
            ``user_id`` / ``item_id`` are ``id`` (non-empty) unless overridden.
        encodings: filled in with ``path -> "utf-8"`` when given (atomic files are UTF-8).
        unique: a header name whose values must not repeat (a feature table's id).

    Raises:
        MalformedFileError: missing header field, bad header, wrong field count, bad value.
    """
    rename = rename or {}
    kinds = kinds or {}
    lines = nonblank_lines(path, UTF8, encodings)
    try:
        _, header = next(lines)
    except StopIteration:
        raise EmptyFileError(f"{path}:1: empty file, expected a RecBole header") from None
    names, schema = [], []
    for field_spec in header.split("\t"):
        if ":" not in field_spec:
            raise MalformedFileError(f"{path}:1: header field {field_spec!r} is not of the form name:type")
        name, atomic_type = field_spec.split(":", 1)
        if atomic_type not in _ATOMIC_KINDS:
            raise MalformedFileError(f"{path}:1: unknown RecBole field type {atomic_type!r} for {name!r}")
        names.append(name)
        schema.append(kinds.get(name, "id" if name in ID_COLUMNS else _ATOMIC_KINDS[atomic_type]))
    for name in required:
        if name not in names:
            raise MalformedFileError(f"{path}:1: missing column {name!r} (header has {names})")
    rows = []
    ids = UniqueIds(path, unique) if unique else None
    for number, line in lines:
        fields = line.split("\t")
        if len(fields) != len(names):
            raise MalformedFileError(
                f"{path}:{number}: expected {len(names)} tab-separated fields, got {len(fields)}: {line[:80]!r}"
            )
        rows.append([_convert(path, number, n, k, raw) for n, k, raw in zip(names, schema, fields)])
        if ids is not None:
            ids.add(number, rows[-1][names.index(unique)])
    return _to_columns([rename.get(n, n) for n in names], schema, rows)


ML100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)

_YEAR_IN_TITLE = re.compile(r"^(.*?)\s*\((\d{4})\)\s*$")
_YEAR_ANYWHERE = re.compile(r"(\d{4})")


def split_title_year(title: str, release_date: str = "") -> Tuple[str, int]:
    """``"Toy Story (1995)"`` -> ``("Toy Story", 1995)``; year 0 when unknown."""
    match = _YEAR_IN_TITLE.match(title)
    if match:
        return match.group(1), int(match.group(2))
    match = _YEAR_ANYWHERE.search(release_date)
    return title.strip(), int(match.group(1)) if match else 0


def _items_from_titles(
    item_ids: List[str], titles: List[str], genres: List[tuple], release_dates: List[str] = None
) -> Columns:
    release_dates = release_dates or [""] * len(titles)
    parsed = [split_title_year(t, d) for t, d in zip(titles, release_dates)]
    return {
        "item_id": np.array(item_ids, dtype=str),
        "title": np.array([t for t, _ in parsed], dtype=str),
        "release_year": np.array([y for _, y in parsed], dtype=np.int64),
        "genres": object_column(tuple(g for g in genre if g != "unknown") for genre in genres),
    }


_RATING_SCHEMA = [("user_id", "id"), ("item_id", "id"), ("rating", "float"), ("timestamp", "int")]


def read_grouplens_100k(directory: str, encodings: Encodings = None) -> Tuple[Columns, Columns, Columns]:
    """Reads ``u.data``, ``u.user`` and ``u.item`` of the GroupLens ML-100K release.

    ``u.user`` and ``u.item`` follow the GroupLens decoding rule (UTF-8, else Latin-1).
    """
    ratings_path = os.path.join(directory, "u.data")
    interactions = require_rows(ratings_path, read_delimited(ratings_path, "\t", _RATING_SCHEMA, encodings=encodings))
    users = read_delimited(
        os.path.join(directory, "u.user"),
        "|",
        [("user_id", "id"), ("age", "int"), ("gender", "str"), ("occupation", "str"), ("zip_code", "str")],
        encoding=UTF8_OR_LATIN1,
        encodings=encodings,
        unique="user_id",
    )
    item_path = os.path.join(directory, "u.item")
    ids, titles, dates, genres = [], [], [], []
    seen = UniqueIds(item_path, "item_id")
    for number, line in nonblank_lines(item_path, UTF8_OR_LATIN1, encodings):
        fields = line.split("|")
        if len(fields) != 5 + len(ML100K_GENRES):
            raise MalformedFileError(
                f"{item_path}:{number}: expected {5 + len(ML100K_GENRES)} '|'-separated fields, got {len(fields)}"
            )
        flags = fields[5:]
        if any(flag not in ("0", "1") for flag in flags):
            raise MalformedFileError(f"{item_path}:{number}: genre flags must be 0 or 1, got {flags}")
        ids.append(_convert(item_path, number, "item_id", "id", fields[0]))
        seen.add(number, ids[-1])
        titles.append(fields[1])
        dates.append(fields[2])
        genres.append(tuple(g for g, flag in zip(ML100K_GENRES, flags) if flag == "1"))
    return interactions, users, _items_from_titles(ids, titles, genres, dates)


def read_grouplens_1m(directory: str, encodings: Encodings = None) -> Tuple[Columns, Columns, Columns]:
    """Reads ``ratings.dat``, ``users.dat`` and ``movies.dat`` of the GroupLens ML-1M release.

    ``users.dat`` and ``movies.dat`` follow the GroupLens decoding rule (UTF-8, else Latin-1).
    """
    ratings_path = os.path.join(directory, "ratings.dat")
    interactions = require_rows(ratings_path, read_delimited(ratings_path, "::", _RATING_SCHEMA, encodings=encodings))
    users = read_delimited(
        os.path.join(directory, "users.dat"),
        "::",
        [("user_id", "id"), ("gender", "str"), ("age", "int"), ("occupation", "str"), ("zip_code", "str")],
        encoding=UTF8_OR_LATIN1,
        encodings=encodings,
        unique="user_id",
    )
    movies = read_delimited(
        os.path.join(directory, "movies.dat"),
        "::",
        [("item_id", "id"), ("title", "str"), ("genres", "str")],
        encoding=UTF8_OR_LATIN1,
        encodings=encodings,
        unique="item_id",
    )
    genres = [tuple(g.split("|")) for g in movies["genres"]]
    return interactions, users, _items_from_titles(list(movies["item_id"]), list(movies["title"]), genres)


def _read_csv_rows(
    path: str, columns: Sequence[str], encodings: Encodings = None
) -> Iterator[Tuple[int, Dict[str, str]]]:
    reader = csv.DictReader(text for _, text in decoded_lines(path, UTF8, encodings))
    missing = [c for c in columns if c not in (reader.fieldnames or [])]
    if missing:
        raise MalformedFileError(f"{path}:1: missing column(s) {missing} (header has {reader.fieldnames})")
    for row in reader:
        if None in row or any(row[c] is None for c in columns):
            raise MalformedFileError(f"{path}:{reader.line_num}: wrong number of fields")
        yield reader.line_num, row


def read_grouplens_csv(directory: str, encodings: Encodings = None) -> Tuple[Columns, None, Columns]:
    """Reads ``ratings.csv`` (and ``movies.csv`` if present) of the CSV releases (ML-20M, 25M, latest)."""
    ratings_path = os.path.join(directory, "ratings.csv")
    wanted = ("userId", "movieId", "rating", "timestamp")
    rows = [
        [
            _convert(ratings_path, n, "userId", "id", r["userId"]),
            _convert(ratings_path, n, "movieId", "id", r["movieId"]),
            _convert(ratings_path, n, "rating", "float", r["rating"]),
            _convert(ratings_path, n, "timestamp", "int", r["timestamp"]),
        ]
        for n, r in _read_csv_rows(ratings_path, wanted, encodings)
    ]
    interactions = require_rows(
        ratings_path, _to_columns(["user_id", "item_id", "rating", "timestamp"], ["str", "str", "float", "int"], rows)
    )
    movies_path = os.path.join(directory, "movies.csv")
    items = None
    if os.path.exists(movies_path):
        ids, titles, genres = [], [], []
        seen = UniqueIds(movies_path, "movieId")
        for number, row in _read_csv_rows(movies_path, ("movieId", "title", "genres"), encodings):
            ids.append(_convert(movies_path, number, "movieId", "id", row["movieId"]))
            seen.add(number, ids[-1])
            titles.append(row["title"])
            genres.append(tuple(g for g in row["genres"].split("|") if g != "(no genres listed)"))
        items = _items_from_titles(ids, titles, genres)
    return interactions, None, items


def read_recbole_movielens(directory: str, name: str, encodings: Encodings = None) -> Tuple[Columns, Columns, Columns]:
    """Reads RecBole's ``<name>.inter/.user/.item`` (UTF-8) into the tfrecs MovieLens schema."""
    inter_path = os.path.join(directory, f"{name}.inter")
    interactions = require_rows(
        inter_path,
        read_atomic(
            inter_path,
            required=("user_id", "item_id", "rating", "timestamp"),
            kinds={"timestamp": "int"},
            encodings=encodings,
        ),
    )
    users = read_atomic(
        os.path.join(directory, f"{name}.user"),
        required=("user_id", "age", "gender", "occupation", "zip_code"),
        kinds={"age": "int"},
        encodings=encodings,
        unique="user_id",
    )
    item_path = os.path.join(directory, f"{name}.item")
    items = read_atomic(
        item_path,
        required=("item_id", "movie_title", "release_year", "class"),
        rename={"movie_title": "title", "class": "genres"},
        kinds={"movie_title": "str"},
        encodings=encodings,
        unique="item_id",
    )
    titles_years = [
        _recbole_title_year(item_path, row + 2, title, year)
        for row, (title, year) in enumerate(zip(items["title"], items["release_year"]))
    ]
    items["title"] = np.array([t for t, _ in titles_years], dtype=str)
    items["release_year"] = np.array([y for _, y in titles_years], dtype=np.int64)
    items["genres"] = object_column(tuple(g for g in genres if g != "unknown") for genres in items["genres"])
    return interactions, users, items


# Markers RecBole's ML-100K copy uses for an unknown release year (it spells one "unkonwn").
UNKNOWN_YEAR_MARKERS = ("", "unknown", "unkonwn")


def _recbole_title_year(path: str, line: int, title: str, year: str) -> Tuple[str, int]:
    """Repairs RecBole's ML-100K item rows: unknown years become 0, and a title that still
    carries ``(YYYY)`` (RecBole's parser left one, with year ``V``) gives its year."""
    if year.isdigit():
        return title, int(year)
    clean_title, title_year = split_title_year(title)
    if title_year:
        return clean_title, title_year
    if year.strip().lower() in UNKNOWN_YEAR_MARKERS:
        return ("" if title.lower() in UNKNOWN_YEAR_MARKERS else title), 0
    raise MalformedFileError(f"{path}:{line}: column 'release_year' expects a year, got {year!r}")


LAYOUT_READERS: Dict[str, Callable[..., Tuple[Columns, Columns, Columns]]] = {
    "u.data": read_grouplens_100k,
    "ratings.dat": read_grouplens_1m,
    "ratings.csv": read_grouplens_csv,
}
