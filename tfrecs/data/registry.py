"""Data sets by name, as the CLI and benchmarks name them.

Names: the MovieLens releases (``ml-100k``, ``ml-1m``, ...; see ``load_movielens``),
``sequences`` (your own sequence file: ``user item`` per line, file order = time order;
``data_dir`` names the file or a directory holding exactly one ``*.txt`` / ``*.txt.gz``),
and the generated ``synthetic-implicit`` / ``synthetic-sequences``.

Example::

    ds = load_dataset("ml-100k")
    ds = load_dataset("ml-1m", data_dir="../shared/data/ml-1m")       # SASRec's ml-1m.txt.gz
    ds = load_dataset("sequences", data_dir="my_sessions.txt.gz")
    ds = load_dataset("synthetic-implicit", seed=3)
"""

import os
from typing import Optional

from tfrecs.core.errors import InputError
from tfrecs.data.dataset import DUPLICATE_POLICIES, RecDataset
from tfrecs.data.movielens import MOVIELENS_NAMES, fetch_ml100k, load_movielens
from tfrecs.data.sequence_file import read_sequence_file
from tfrecs.data.synthetic import synthetic_implicit, synthetic_sequences

SEQUENCE_NAME = "sequences"
SYNTHETIC_NAMES = ("synthetic-implicit", "synthetic-sequences")
DATASET_NAMES = MOVIELENS_NAMES + (SEQUENCE_NAME,) + SYNTHETIC_NAMES


def load_dataset(
    name: str,
    data_dir: Optional[str] = None,
    cache_dir: Optional[str] = None,
    seed: int = 0,
    source: str = "auto",
    duplicates: str = "drop",
) -> RecDataset:
    """Loads a data set by name.

    Args:
        name: one of ``DATASET_NAMES`` (module doc).
        data_dir: directory (or sequence file) to read; when given it is the only source,
            and a path that does not exist is an error naming it. ``sequences`` needs it
            (or ``$TFRECS_DATA_DIR``); synthetic data sets refuse it.
        cache_dir: tfrecs cache root (MovieLens only).
        seed: seed of the synthetic data sets.
        source: MovieLens source (see ``load_movielens``).
        duplicates: exact duplicate interaction rows: ``"drop"`` (default; the count is
            ``stats()["duplicates_dropped"]``), ``"keep"`` or ``"error"``.

    Raises:
        KeyError: unknown name (the message lists the known ones).
        InputError: a bad ``duplicates`` policy, ``sequences`` without a path, or a
            ``data_dir`` given for a synthetic data set.
        DataNotFoundError, MalformedFileError, DatasetUnavailableError: see ``load_movielens``
            and ``read_sequence_file``.
    """
    if name not in DATASET_NAMES:
        raise KeyError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASET_NAMES)}")
    if duplicates not in DUPLICATE_POLICIES:
        raise InputError(f"duplicates={duplicates!r}: choose one of {', '.join(DUPLICATE_POLICIES)}")
    if name in MOVIELENS_NAMES:
        return load_movielens(name, data_dir=data_dir, cache_dir=cache_dir, source=source, duplicates=duplicates)
    if name == SEQUENCE_NAME:
        path = data_dir or os.environ.get("TFRECS_DATA_DIR")
        if not path:
            raise InputError(
                "the 'sequences' data set reads your own file: give data_dir (--data-dir) as a "
                "`user item` per line file or a directory holding one"
            )
        return read_sequence_file(path).deduplicated(duplicates)
    if data_dir:
        raise InputError(f"{name} is generated and reads no files; drop data_dir ({data_dir})")
    generate = synthetic_implicit if name == "synthetic-implicit" else synthetic_sequences
    return generate(seed=seed).deduplicated(duplicates)


def fetch_dataset(name: str, data_dir: Optional[str] = None, cache_dir: Optional[str] = None) -> str:
    """Makes a data set available offline and returns where it lives.

    ML-100K is fetched into the cache; other data sets are checked to load from
    ``data_dir`` (or TFDS); synthetic data sets need nothing.
    """
    if name == "ml-100k" and not data_dir:
        return fetch_ml100k(cache_dir)
    if name in SYNTHETIC_NAMES:
        return f"{name} is generated on demand; nothing to fetch"
    ds = load_dataset(name, data_dir=data_dir, cache_dir=cache_dir)
    return f"{name}: {len(ds)} interactions available from {ds.notes.get('source', 'unknown source')}"
