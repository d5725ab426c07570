"""The sequence-file format: one ``user item`` pair per line, file order = time order.

This is the layout of SASRec's preprocessed data sets (e.g. ``ml-1m.txt``: 6,040 users,
3,416 items, 999,611 lines), used by SASRec, BERT4Rec and gSASRec. Each line holds exactly
two whitespace-separated tokens (any non-whitespace text; ids stay strings, as the
MovieLens readers keep them); blank lines are skipped; ``.gz`` files are decompressed on
the fly; text is UTF-8. The ``timestamp`` column is the line number, so leave-one-out by
time is leave-one-out in file order (``make_split(ds, "loo")``: each user's last line ->
test, second-to-last -> validation).

Example::

    from tfrecs.data import read_sequence_file, make_split
    ds = read_sequence_file("../shared/data/ml-1m/ml-1m.txt.gz")
    ds.num_users, ds.num_items, len(ds)  # -> (6040, 3416, 999611)
    split = make_split(ds, "loo")
"""

import os
from typing import List, Optional

import numpy as np

from tfrecs.data.dataset import ITEM_ID, TIMESTAMP, USER_ID, RecDataset
from tfrecs.data.readers import UTF8, DataNotFoundError, MalformedFileError, nonblank_lines, require_rows

SEQUENCE_SUFFIXES = (".txt", ".txt.gz")


def is_sequence_file(path: str) -> bool:
    """True when ``path`` names a file with a sequence-file suffix (``.txt`` / ``.txt.gz``)."""
    return path.endswith(SEQUENCE_SUFFIXES)


def dataset_name(path: str) -> str:
    """``".../ml-1m.txt.gz"`` -> ``"ml-1m"``."""
    base = os.path.basename(path)
    for suffix in sorted(SEQUENCE_SUFFIXES, key=len, reverse=True):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def find_sequence_file(path: str) -> str:
    """The sequence file ``path`` names: the file itself, or the only ``*.txt(.gz)`` in a directory.

    Raises:
        DataNotFoundError: ``path`` does not exist, or the directory holds no sequence file.
        MalformedFileError: the directory holds several, so the choice would be a guess.
    """
    if not os.path.exists(path):
        raise DataNotFoundError(f"sequence file or directory {path} does not exist")
    if os.path.isfile(path):
        return path
    found: List[str] = sorted(name for name in os.listdir(path) if is_sequence_file(name))
    if not found:
        raise DataNotFoundError(
            f"data directory {path} holds no sequence file (*.txt or *.txt.gz with "
            "`user item` lines); point data_dir at the file itself"
        )
    if len(found) > 1:
        raise MalformedFileError(
            f"data directory {path} holds several sequence files {found}; point data_dir at the one to read"
        )
    return os.path.join(path, found[0])


def read_sequence_file(path: str, name: Optional[str] = None) -> RecDataset:
    """Reads a ``user item`` per line file (``.gz`` allowed) into a ``RecDataset``.

    Args:
        path: the file, or a directory holding exactly one ``*.txt`` / ``*.txt.gz``.
        name: data set name (default: the file name without its suffix, e.g. ``ml-1m``).

    Returns:
        Interactions ``user_id``, ``item_id`` (str) and ``timestamp`` (int64, the line
        number: file order is time order); no user or item tables; ``notes`` give the
        ``source`` file and its encoding.

    Raises:
        DataNotFoundError: no such file (or no sequence file in the directory).
        MalformedFileError: a line without exactly two tokens, or not UTF-8 (file:line).
        EmptyFileError: the file holds no line.

    Example::

        ds = read_sequence_file("ml-1m.txt.gz")
        make_split(ds, "loo").sizes()["test"]  # -> 6040
    """
    path = find_sequence_file(path)
    encodings = {}
    users, items, lines = [], [], []
    for number, line in nonblank_lines(path, UTF8, encodings):
        fields = line.split()
        if len(fields) != 2:
            if not fields:  # whitespace only: a blank line
                continue
            raise MalformedFileError(
                f"{path}:{number}: expected 2 whitespace-separated fields `user item`, got {len(fields)}: {line[:80]!r}"
            )
        users.append(fields[0])
        items.append(fields[1])
        lines.append(number)
    columns = require_rows(
        path,
        {
            USER_ID: np.array(users, dtype=str),
            ITEM_ID: np.array(items, dtype=str),
            TIMESTAMP: np.array(lines, dtype=np.int64),
        },
    )
    return RecDataset(
        name or dataset_name(path), columns, notes={"source": path, "layout": "sequence file", "encodings": encodings}
    )
