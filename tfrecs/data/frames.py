"""Your own data in: a pandas DataFrame, a CSV / TSV / Parquet file or a sequence file -> ``RecDataset``.

``from_dataframe(df, user=..., item=...)`` and ``from_files(path, ...)`` build the
interactions (``user_id``, ``item_id`` and, when declared, ``timestamp``, ``rating``,
``label``) and the user / item tables from the feature columns you declare. Nothing is
assumed: a column is read only when it is named, and a named column that is missing is an
error naming it. The same validation as the built-in readers (``tfrecs.data.readers``)
applies, and every refusal names the file and line (CSV / TSV: the header is line 1),
the Parquet row, or the DataFrame row:

* ids must be present and non-empty; ratings finite (float32); timestamps whole numbers
  (``datetime64`` columns become seconds since the epoch); labels 0 / 1;
* a user feature must be constant per user (and an item feature per item): the error
  names the column, the id and the two rows that disagree;
* exact duplicate rows follow ``duplicates`` as in ``RecDataset.deduplicated``.

Types. A DataFrame or Parquet column keeps its type: integer columns (ids included) are
int64, floats float32, text str, and a column of Python lists / tuples / arrays is a list
feature. In CSV / TSV every value is text: ids stay strings (as the MovieLens readers keep
them, so ``007`` stays ``007``); a feature column whose every value is a number becomes
int64 (or float32), unless a value has a leading zero (zip codes), else it is text. A text
column named in ``list_features`` is split on ``list_separator`` (``"Action|Comedy"`` ->
``("Action", "Comedy")``, blank tokens dropped).

Time. Without a ``timestamp`` column the data has none: random splits work, leave-one-out
and temporal splits (SASRec, BERT4Rec, DIN's history) refuse it. The sequence formats
carry their order as the ``timestamp`` (file order = time order).

Example::

    from tfrecs.data import from_files, make_split
    ds = from_files("ratings.csv", user="user", item="movie", rating="stars", timestamp="ts",
                    user_features=["country"], item_features=["genres"], list_features=["genres"])
    split = make_split(ds, "random")
"""

import csv
import inspect
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tfrecs.core.errors import InputError
from tfrecs.data.dataset import (
    DUPLICATE_POLICIES,
    ITEM_ID,
    RATING,
    TIMESTAMP,
    USER_ID,
    Columns,
    RecDataset,
    object_column,
    row_groups,
)
from tfrecs.data.readers import (
    UTF8,
    DataNotFoundError,
    EmptyFileError,
    MalformedFileError,
    decoded_lines,
    nonblank_lines,
)
from tfrecs.data.sequence_file import read_sequence_file

LABEL = "label"
RESERVED_NAMES = (USER_ID, ITEM_ID, TIMESTAMP, RATING, LABEL, "history")
"""Interaction columns and the views' ``history``: a feature column may not take these names."""

FORMATS = ("csv", "tsv", "parquet", "sequences", "pairs")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet"}
_SEPARATORS = {"csv": ",", "tsv": "\t"}
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_INT64_LIMIT = 2**63


class MalformedDataError(InputError):
    """A DataFrame handed to ``from_dataframe`` is not usable; the message names column and row."""


@dataclass
class _Rows:
    """Where each row came from, for messages: a file's lines, a Parquet file's rows, or a DataFrame's rows."""

    source: str
    kind: str  # "text" (CSV / TSV lines), "parquet", "frame"
    lines: Optional[List[int]] = None
    labels: Optional[Sequence[Any]] = None
    error: type = field(default=MalformedFileError)

    def at(self, position: int) -> str:
        if self.kind == "text":
            return f"{self.source}:{self.lines[position]}"
        if self.kind == "parquet":
            return f"{self.source}: row {position + 1}"
        label = self.labels[position] if self.labels is not None else position
        return f"{self.source} row {position} (index {label!r})"

    @property
    def header(self) -> str:
        return f"{self.source}:1" if self.kind == "text" else self.source

    def fail(self, position: Optional[int], message: str) -> InputError:
        return self.error(f"{self.at(position) if position is not None else self.header}: {message}")


def _names(value: Any, argument: str) -> Tuple[str, ...]:
    """A column list argument as a tuple (a single string names one column)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(name.strip() for name in value.split(",") if name.strip())
    names = tuple(value)
    if not all(isinstance(name, str) and name for name in names):
        raise InputError(f"{argument} must name columns (strings), got {value!r}")
    return names


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN, NaT, pandas.NA
    except (TypeError, ValueError):
        return False


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple, np.ndarray))


def _values(series) -> list:
    return series.tolist()


def _check_present(rows: _Rows, column: str, values: list, kind: str) -> None:
    for position, value in enumerate(values):
        if _is_missing(value) or (isinstance(value, str) and not value.strip()):
            raise rows.fail(position, f"column {column!r} is empty (expects {kind})")


def _ids(rows: _Rows, column: str, series) -> np.ndarray:
    """Raw ids: int64 for an integer column (a DataFrame's or Parquet's), else non-empty strings."""
    dtype = series.dtype
    if dtype.kind in "iu":
        return series.to_numpy(dtype=np.int64)
    values = _values(series)
    _check_present(rows, column, values, "id")
    if dtype.kind == "f" or all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        for position, value in enumerate(values):
            if isinstance(value, (float, np.floating)) and not float(value).is_integer():
                raise rows.fail(position, f"column {column!r} expects an id (text or whole number), got {value!r}")
        return np.array([int(v) for v in values], dtype=np.int64)
    for position, value in enumerate(values):
        if not isinstance(value, str):
            raise rows.fail(
                position, f"column {column!r} mixes types: {value!r} ({type(value).__name__}) among string ids"
            )
    return np.array(values, dtype=str)


def _whole_number(value: Any) -> int:
    if isinstance(value, str):
        try:
            number = int(value)
        except ValueError:
            parsed = float(value)  # "881250949.0"; raises on "", "abc"
            if not math.isfinite(parsed) or not parsed.is_integer():
                raise ValueError(value) from None
            number = int(parsed)
    elif isinstance(value, (bool, np.bool_)):
        raise ValueError(value)
    elif isinstance(value, (int, np.integer)):
        number = int(value)
    else:
        parsed = float(value)
        if not math.isfinite(parsed) or not parsed.is_integer():
            raise ValueError(value)
        number = int(parsed)
    if not -_INT64_LIMIT <= number < _INT64_LIMIT:
        raise ValueError(value)
    return number


def _finite(value: Any) -> float:
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(value)
    number = float(value)
    if not math.isfinite(number) or abs(number) > _FLOAT32_MAX:  # stored as float32
        raise ValueError(value)
    return number


def _timestamps(rows: _Rows, column: str, series) -> np.ndarray:
    if series.dtype.kind == "M":  # datetime64: seconds since the epoch
        if series.isna().any():
            raise rows.fail(int(np.flatnonzero(series.isna().to_numpy())[0]), f"column {column!r} is empty (NaT)")
        return series.to_numpy(dtype="datetime64[s]").astype(np.int64)
    return _numbers(rows, column, series, _whole_number, "int", np.int64)


def _numbers(rows: _Rows, column: str, series, parse: Callable, kind: str, dtype) -> np.ndarray:
    values = _values(series)
    _check_present(rows, column, values, kind)
    parsed = []
    for position, value in enumerate(values):
        try:
            parsed.append(parse(value))
        except (TypeError, ValueError, OverflowError):
            raise rows.fail(position, f"column {column!r} expects {kind}, got {value!r}") from None
    return np.array(parsed, dtype=dtype)


_LABEL_TEXT = {"0": 0.0, "1": 1.0, "0.0": 0.0, "1.0": 1.0, "false": 0.0, "true": 1.0}


def _labels(rows: _Rows, column: str, series) -> np.ndarray:
    values = _values(series)
    _check_present(rows, column, values, "0 or 1")
    labels = []
    for position, value in enumerate(values):
        label = _LABEL_TEXT.get(value.strip().lower()) if isinstance(value, str) else None
        if label is None and not isinstance(value, str) and value in (0, 1):
            label = float(value)
        if label is None:
            raise rows.fail(position, f"column {column!r} is a label: expects 0 or 1, got {value!r}")
        labels.append(label)
    return np.array(labels, dtype=np.float32)


def _split_list(value: str, separator: str) -> tuple:
    return tuple(token.strip() for token in value.split(separator) if token.strip())


def _list_feature(rows: _Rows, column: str, values: list, separator: str) -> np.ndarray:
    lists = []
    for position, value in enumerate(values):
        if isinstance(value, str):
            lists.append(_split_list(value, separator))
        elif _is_list(value):
            items = list(value.tolist() if isinstance(value, np.ndarray) else value)
            if any(_is_missing(v) for v in items):
                raise rows.fail(position, f"column {column!r} holds an empty (NaN / None) list entry")
            lists.append(tuple(items))
        elif _is_missing(value):
            raise rows.fail(position, f"column {column!r} is empty (expects a list; use an empty list or '')")
        else:
            raise rows.fail(position, f"column {column!r} expects a list, got {value!r}")
    return object_column(lists)


def _text_token(value: str) -> str:
    """``int``, ``float``, ``nonfinite``, ``empty`` or ``text``: how a CSV field reads."""
    stripped = value.strip()
    if not stripped:
        return "empty"
    digits = stripped.lstrip("+-")
    if len(digits) > 1 and digits[0] == "0" and digits[1].isdigit():
        return "text"  # a leading zero (zip code, padded code): keep the text
    try:
        _whole_number(stripped)
        return "int"
    except (ValueError, OverflowError):
        pass
    try:
        number = float(stripped)
    except ValueError:
        return "text"
    return "float" if math.isfinite(number) and abs(number) <= _FLOAT32_MAX else "nonfinite"


def _text_feature(rows: _Rows, column: str, values: List[str]) -> np.ndarray:
    """A CSV / TSV feature column: numbers if every value is one, else text (module doc)."""
    kinds = [_text_token(v) for v in values]
    if "text" in kinds or all(kind == "empty" for kind in kinds):
        return np.array(values, dtype=str)
    for bad in ("nonfinite", "empty"):
        if bad in kinds:
            position = kinds.index(bad)
            what = "is empty" if bad == "empty" else f"expects a finite number, got {values[position]!r}"
            raise rows.fail(position, f"column {column!r} {what} (the column's other values are numbers)")
    if all(kind == "int" for kind in kinds):
        return np.array([_whole_number(v.strip()) for v in values], dtype=np.int64)
    return np.array([float(v) for v in values], dtype=np.float32)


def _feature(rows: _Rows, column: str, series, is_list: bool, separator: str) -> np.ndarray:
    dtype = series.dtype
    if dtype.kind == "b":
        return series.to_numpy(dtype=np.int64)
    if dtype.kind in "iu":
        return series.to_numpy(dtype=np.int64)
    if dtype.kind == "f":
        return _numbers(rows, column, series, _finite, "a finite number", np.float32)
    if dtype.kind == "M":
        return _timestamps(rows, column, series)
    values = _values(series)
    if is_list or any(_is_list(v) for v in values):
        return _list_feature(rows, column, values, separator)
    if rows.kind == "text":
        return _text_feature(rows, column, values)
    for position, value in enumerate(values):
        if _is_missing(value):
            raise rows.fail(position, f"column {column!r} is empty (None / NaN)")
    if all(isinstance(v, str) for v in values):
        return np.array(values, dtype=str)
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in values):
        return np.array(values, dtype=np.int64)
    if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in values):
        return _numbers(rows, column, series, _finite, "a finite number", np.float32)
    position = next(i for i, v in enumerate(values) if not isinstance(v, str))
    raise rows.fail(position, f"column {column!r} mixes types: {values[position]!r} among text values")


def _same(a: Any, b: Any) -> bool:
    if _is_list(a) or _is_list(b):
        return tuple(a) == tuple(b)
    return a == b


def _show(value: Any) -> Any:
    """A value for a message: numpy scalars as Python values."""
    return value.item() if isinstance(value, np.generic) else value


def _table(rows: _Rows, ids: np.ndarray, id_name: str, who: str, features: Dict[str, np.ndarray]) -> Optional[Columns]:
    """One row per id (sorted ids) with each feature's value; a feature must be constant per id."""
    if not features:
        return None
    group, first = row_groups({id_name: ids}, [id_name])
    for column, values in features.items():
        reference = values[first[group]]
        if values.dtype == object:
            differs = np.array([not _same(a, b) for a, b in zip(values, reference)], dtype=bool)
        else:
            differs = values != reference
        if differs.any():
            position = int(np.flatnonzero(differs)[0])
            earlier = int(first[group[position]])
            raise rows.fail(
                position,
                f"{who} feature {column!r} changes within {who} {ids[position].item()!r}: "
                f"{_show(values[position])!r} here, {_show(values[earlier])!r} at {rows.at(earlier)}; a {who} feature must "
                f"be constant per {who} (declare it as the other side's feature, or drop it)",
            )
    table = {id_name: ids[first]}
    table.update({column: values[first] for column, values in features.items()})
    return table


def _check_declaration(
    columns: Sequence[str],
    user: str,
    item: str,
    timestamp: Optional[str],
    rating: Optional[str],
    label: Optional[str],
    user_features: Tuple[str, ...],
    item_features: Tuple[str, ...],
    list_features: Tuple[str, ...],
    duplicates: str,
    rows: _Rows,
) -> None:
    if duplicates not in DUPLICATE_POLICIES:
        raise InputError(f"duplicates={duplicates!r}: choose one of {', '.join(DUPLICATE_POLICIES)}")
    for argument, value in (("user", user), ("item", item)):
        if not isinstance(value, str) or not value:
            raise InputError(f"{argument} must name the {argument} id column, got {value!r}")
    roles = [("user", user), ("item", item), ("timestamp", timestamp), ("rating", rating), ("label", label)]
    roles += [("user_features", f) for f in user_features] + [("item_features", f) for f in item_features]
    seen: Dict[str, str] = {}
    for role, column in roles:
        if column is None:
            continue
        if column in seen:
            raise InputError(f"column {column!r} is declared twice (as {seen[column]} and as {role})")
        seen[column] = role
    for column in user_features + item_features:
        if column in RESERVED_NAMES:
            raise InputError(
                f"feature column {column!r} takes a reserved name ({', '.join(RESERVED_NAMES)}); rename the column"
            )
    stray = [name for name in list_features if name not in user_features + item_features]
    if stray:
        raise InputError(f"list_features {stray} are not declared user_features or item_features")
    missing = [column for _, column in roles if column is not None and column not in columns]
    if missing:
        raise rows.fail(None, f"missing column(s) {missing} (columns: {list(columns)})")


def _build(
    frame,
    rows: _Rows,
    user: str,
    item: str,
    timestamp: Optional[str],
    rating: Optional[str],
    label: Optional[str],
    user_features,
    item_features,
    list_features,
    list_separator: str,
    name: str,
    duplicates: str,
    notes: Dict[str, Any],
) -> RecDataset:
    user_features = _names(user_features, "user_features")
    item_features = _names(item_features, "item_features")
    list_features = _names(list_features, "list_features")
    if not isinstance(list_separator, str) or not list_separator:
        raise InputError(f"list_separator must be a non-empty string, got {list_separator!r}")
    columns = [str(c) for c in frame.columns]
    _check_declaration(
        columns, user, item, timestamp, rating, label, user_features, item_features, list_features, duplicates, rows
    )
    if len(frame) == 0:
        if rows.error is MalformedFileError:
            raise EmptyFileError(
                f"{rows.source}: the file holds no interactions; check that it is the right file and was copied "
                "completely"
            )
        raise MalformedDataError(f"{rows.source}: the DataFrame has no rows")
    interactions: Columns = {USER_ID: _ids(rows, user, frame[user]), ITEM_ID: _ids(rows, item, frame[item])}
    if timestamp is not None:
        interactions[TIMESTAMP] = _timestamps(rows, timestamp, frame[timestamp])
    if rating is not None:
        interactions[RATING] = _numbers(rows, rating, frame[rating], _finite, "float", np.float32)
    if label is not None:
        interactions[LABEL] = _labels(rows, label, frame[label])

    def features(names: Tuple[str, ...]) -> Dict[str, np.ndarray]:
        return {c: _feature(rows, c, frame[c], c in list_features, list_separator) for c in names}

    users = _table(rows, interactions[USER_ID], USER_ID, "user", features(user_features))
    items = _table(rows, interactions[ITEM_ID], ITEM_ID, "item", features(item_features))
    notes = {
        **notes,
        "columns": {
            "user": user,
            "item": item,
            "timestamp": timestamp,
            "rating": rating,
            "label": label,
            "user_features": list(user_features),
            "item_features": list(item_features),
            "list_features": list(list_features),
        },
    }
    return RecDataset(name, interactions, users, items, notes=notes).deduplicated(duplicates)


def from_dataframe(
    df,
    user: str,
    item: str,
    timestamp: Optional[str] = None,
    rating: Optional[str] = None,
    user_features: Sequence[str] = (),
    item_features: Sequence[str] = (),
    name: str = "own",
    duplicates: str = "drop",
    label: Optional[str] = None,
    list_features: Sequence[str] = (),
    list_separator: str = "|",
) -> RecDataset:
    """A ``RecDataset`` from a pandas DataFrame of interactions (one row per event).

    Args:
        df: the DataFrame; only the named columns are read.
        user, item: the user and item id columns (``user_id`` / ``item_id`` in the result).
        timestamp: the time column (whole numbers or ``datetime64``; None: no time).
        rating: the rating column (finite numbers; the CTR view's label is ``rating >= 4``).
        user_features: columns describing the user (constant per user) -> the user table.
        item_features: columns describing the item (constant per item) -> the item table.
            A column of Python lists / tuples / arrays is a list feature (e.g. genres).
        name: the data set's name.
        duplicates: exact duplicate rows: ``"drop"`` (default), ``"keep"`` or ``"error"``
            (``RecDataset.deduplicated``).
        label: a 0 / 1 click or like column (``label`` in the result; the CTR view reads it
            before ``rating``).
        list_features: text feature columns to split on ``list_separator``.
        list_separator: the separator of ``list_features`` (default ``"|"``).

    Returns:
        Interactions plus user / item tables (rows in sorted id order; None without
        features). ``notes`` record the source and the declared columns.

    Raises:
        MalformedDataError: a missing declared column (named), an empty id, a value of the
            wrong type, a user (item) feature that changes within a user (item); each names
            the column and the DataFrame row.
        InputError: a bad argument (a column declared twice, a reserved feature name, an
            unknown duplicates policy).
        DuplicateRowsError: ``duplicates="error"`` and the data holds duplicates.

    Example::

        df = pd.DataFrame({"u": ["a", "a", "b"], "i": [1, 2, 1], "stars": [5, 3, 4],
                           "genres": [["Drama"], ["Comedy", "Drama"], ["Drama"]]})
        ds = from_dataframe(df, user="u", item="i", rating="stars", item_features=["genres"])
        ds.items["genres"][1]   # ('Comedy', 'Drama')
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise InputError(f"from_dataframe expects a pandas DataFrame, got {type(df).__name__}")
    rows = _Rows("DataFrame", "frame", labels=df.index.tolist(), error=MalformedDataError)
    return _build(
        df.reset_index(drop=True),
        rows,
        user,
        item,
        timestamp,
        rating,
        label,
        user_features,
        item_features,
        list_features,
        list_separator,
        name,
        duplicates,
        {"source": "DataFrame", "layout": "dataframe"},
    )


def _format_of(path: str, format: Optional[str]) -> str:
    if format is not None:
        if format not in FORMATS:
            raise InputError(f"format={format!r}: choose one of {', '.join(FORMATS)}")
        return format
    base = path[:-3] if path.endswith(".gz") else path
    extension = os.path.splitext(base)[1].lower()
    if extension in _EXTENSIONS:
        return _EXTENSIONS[extension]
    if extension == ".txt":
        raise InputError(
            f"{path}: a .txt file may be format='pairs' (`user item` per line) or format='sequences' "
            "(`user item1 item2 ...` per line); pass format="
        )
    raise InputError(
        f"{path}: cannot tell the format from the extension {extension or '(none)'!r}; "
        f"pass format= (one of {', '.join(FORMATS)})"
    )


def _default_name(path: str) -> str:
    base = os.path.basename(path.rstrip(os.sep))
    for suffix in (".gz",) + tuple(_EXTENSIONS) + (".txt",):
        if base.lower().endswith(suffix):
            base = base[: -len(suffix)]
    return base or "own"


def _read_text(path: str, separator: str, encodings: Dict[str, str]):
    """A CSV / TSV file as a DataFrame of strings plus each row's line number (header = line 1)."""
    import pandas as pd

    quoting = csv.QUOTE_NONE if separator == "\t" else csv.QUOTE_MINIMAL
    lines = decoded_lines(path, UTF8, encodings)
    numbered = (text for _, text in lines)
    reader = csv.reader(numbered, delimiter=separator, quoting=quoting)
    header: Optional[List[str]] = None
    records: List[List[str]] = []
    line_numbers: List[int] = []
    try:
        for fields in reader:
            if not fields or (len(fields) == 1 and not fields[0].strip() and header is not None):
                continue  # a blank line
            if header is None:
                header = [name.strip() for name in fields]
                if len(set(header)) != len(header):
                    repeated = sorted({n for n in header if header.count(n) > 1})
                    raise MalformedFileError(f"{path}:{reader.line_num}: the header repeats column(s) {repeated}")
                continue
            if len(fields) != len(header):
                raise MalformedFileError(
                    f"{path}:{reader.line_num}: expected {len(header)} fields separated by {separator!r} "
                    f"(the header's), got {len(fields)}: {separator.join(fields)[:80]!r}"
                )
            records.append(fields)
            line_numbers.append(reader.line_num)
    except csv.Error as error:
        raise MalformedFileError(f"{path}:{reader.line_num}: {error}") from None
    if header is None:
        raise EmptyFileError(f"{path}: the file is empty; expected a header line naming the columns")
    frame = pd.DataFrame(records, columns=header, dtype=object) if records else pd.DataFrame(columns=header)
    return frame, line_numbers


def _read_parquet(path: str):
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except ImportError as error:
        raise InputError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow): {error}") from None
    except Exception as error:  # pyarrow raises ArrowInvalid / OSError subclasses for damaged files
        raise MalformedFileError(f"{path}: not a readable Parquet file: {error}") from None


def _read_sequences(path: str, name: str, duplicates: str) -> RecDataset:
    """``user item1 item2 ...`` per line: each line one user's items in time order."""
    encodings: Dict[str, str] = {}
    users, items, times, first_line = [], [], [], {}
    for number, line in nonblank_lines(path, UTF8, encodings):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) < 2:
            raise MalformedFileError(
                f"{path}:{number}: expected `user item1 item2 ...` (a user and at least one item), got {line[:80]!r}"
            )
        user = tokens[0]
        if user in first_line:
            raise MalformedFileError(
                f"{path}:{number}: user {user!r} already has a sequence at line {first_line[user]}; each user's "
                "items belong on one line"
            )
        first_line[user] = number
        for token in tokens[1:]:
            users.append(user)
            items.append(token)
            times.append(len(times) + 1)
    if not users:
        raise EmptyFileError(
            f"{path}: the file holds no interactions; check that it is the right file and was copied completely"
        )
    columns = {
        USER_ID: np.array(users, dtype=str),
        ITEM_ID: np.array(items, dtype=str),
        TIMESTAMP: np.array(times, dtype=np.int64),
    }
    notes = {"source": path, "layout": "sequences (one user per line)", "encodings": encodings}
    return RecDataset(name, columns, notes=notes).deduplicated(duplicates)


def from_files(
    path: str,
    user: str = "user_id",
    item: str = "item_id",
    timestamp: Optional[str] = None,
    rating: Optional[str] = None,
    user_features: Sequence[str] = (),
    item_features: Sequence[str] = (),
    format: Optional[str] = None,
    sep: Optional[str] = None,
    list_separator: str = "|",
    name: Optional[str] = None,
    duplicates: str = "drop",
    label: Optional[str] = None,
    list_features: Sequence[str] = (),
) -> RecDataset:
    """A ``RecDataset`` from a CSV, TSV, Parquet or sequence file.

    Args:
        path: the file (``.gz`` allowed for text formats).
        user, user ... list_features: as in ``from_dataframe`` (column names of the header).
        format: ``csv``, ``tsv``, ``parquet`` (default: from the extension ``.csv``,
            ``.tsv`` / ``.tab``, ``.parquet`` / ``.pq``), ``sequences`` (``user item1 item2
            ...`` per line, order = time) or ``pairs`` (``user item`` per line, file order =
            time: ``read_sequence_file``). The sequence formats take no column options.
        sep: the field separator of a text file (default ``,`` for CSV, tab for TSV).
        list_separator: separator of ``list_features`` values (default ``"|"``).
        name: the data set's name (default: the file name without its extensions).
        duplicates: ``"drop"`` (default), ``"keep"`` or ``"error"``.

    Raises:
        DataNotFoundError: no such file.
        MalformedFileError: a missing declared column (``path:1`` names it), a line with the
            wrong number of fields, an empty id, a bad value, a feature that is not
            constant per user / item: each names ``path:line`` (Parquet: ``path: row N``).
        EmptyFileError: the file holds no interaction.
        InputError: a bad argument (unknown format, a ``.txt`` file without ``format``).

    Example::

        ds = from_files("ratings.csv", user="userId", item="movieId", rating="rating", timestamp="timestamp")
        ds = from_files("sessions.txt", format="sequences")
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataNotFoundError(f"data file not found: {path}")
    if os.path.isdir(path):
        raise DataNotFoundError(f"{path} is a directory; point path at the data file")
    kind = _format_of(path, format)
    name = name or _default_name(path)
    if duplicates not in DUPLICATE_POLICIES:
        raise InputError(f"duplicates={duplicates!r}: choose one of {', '.join(DUPLICATE_POLICIES)}")
    if kind in ("sequences", "pairs"):
        given = {
            "user": user != "user_id",
            "item": item != "item_id",
            "timestamp": timestamp is not None,
            "rating": rating is not None,
            "label": label is not None,
            "user_features": bool(_names(user_features, "user_features")),
            "item_features": bool(_names(item_features, "item_features")),
            "list_features": bool(_names(list_features, "list_features")),
            "sep": sep is not None,
        }
        extra = [key for key, value in given.items() if value]
        if extra:
            raise InputError(f"format={kind!r} has no columns to name; drop {extra}")
        if kind == "pairs":
            return read_sequence_file(path, name=name).deduplicated(duplicates)
        return _read_sequences(path, name, duplicates)
    encodings: Dict[str, str] = {}
    if kind == "parquet":
        frame = _read_parquet(path)
        rows = _Rows(path, "parquet")
    else:
        separator = sep or _SEPARATORS[kind]
        if not isinstance(separator, str) or len(separator) != 1:
            raise InputError(f"sep={separator!r}: a CSV / TSV separator is one character (e.g. ',', ';', '\\t')")
        frame, lines = _read_text(path, separator, encodings)
        rows = _Rows(path, "text", lines=lines)
    notes: Dict[str, Any] = {"source": path, "layout": kind}
    if encodings:
        notes["encodings"] = encodings
    return _build(
        frame,
        rows,
        user,
        item,
        timestamp,
        rating,
        label,
        user_features,
        item_features,
        list_features,
        list_separator,
        name,
        duplicates,
        notes,
    )


def from_files_arguments() -> Tuple[str, ...]:
    """The keyword arguments ``from_files`` takes (what a data config may hold)."""
    return tuple(inspect.signature(from_files).parameters)


def read_data_config(path: str) -> Dict[str, Any]:
    """``from_files`` keyword arguments from a small JSON (or YAML, with PyYAML) file.

    The file holds one mapping of ``from_files``' arguments; ``path`` is required, and a
    relative ``path`` is resolved against the config file's folder. Use it as
    ``from_files(**read_data_config("data.json"))`` or ``TrainConfig(data=...)``.

    Raises:
        DataNotFoundError: no such config file.
        MalformedFileError: not valid JSON / YAML, or not a mapping.
        InputError: unknown keys (named, with the valid ones), or no ``path``.

    Example::

        # data.json: {"path": "ratings.csv", "user": "user", "item": "movie", "rating": "stars",
        #             "item_features": ["genres"], "list_features": ["genres"]}
        ds = from_files(**read_data_config("data.json"))
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataNotFoundError(f"data config not found: {path}")
    text = "".join(line for _, line in decoded_lines(path, UTF8))
    if path.lower().endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise InputError(
                f"{path}: reading a YAML data config needs PyYAML (pip install pyyaml); or use JSON"
            ) from None
        try:
            config = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise MalformedFileError(f"{path}: not valid YAML: {error}") from None
    else:
        try:
            config = json.loads(text)
        except json.JSONDecodeError as error:
            raise MalformedFileError(f"{path}:{error.lineno}: not valid JSON: {error.msg}") from None
    if not isinstance(config, dict):
        raise MalformedFileError(f"{path}: a data config is one mapping of from_files arguments, got {config!r:.80}")
    valid = from_files_arguments()
    unknown = sorted(set(config) - set(valid))
    if unknown:
        raise InputError(f"{path}: unknown data config key(s) {unknown}; valid keys: {', '.join(valid)}")
    if not isinstance(config.get("path"), str) or not config["path"]:
        raise InputError(f"{path}: the data config needs a 'path' naming the data file")
    config = dict(config)
    config["path"] = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)), config["path"]))
    return config
