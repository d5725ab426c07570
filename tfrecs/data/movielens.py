"""MovieLens loading from every source a machine may have.

A named directory is the only source: when ``data_dir`` (argument, ``--data-dir``, or
``TFRECS_DATA_DIR``) is given, the data set is read from it, and a directory that does not
exist or holds none of the recognised files is a ``DataNotFoundError`` naming it (never a
silent fallback to the cache or the wheel). Recognised, in this order, in the directory or
in its sub-directory ``<name>``: a GroupLens layout (``u.data``/``u.user``/``u.item``,
ML-1M ``ratings.dat``/``users.dat``/``movies.dat``, ``ratings.csv``), RecBole's atomic
files ``<name>.inter/.user/.item``, or a sequence file ``<name>.txt`` / ``<name>.txt.gz``
(``user item`` per line, file order = time order; e.g. SASRec's ``ml-1m.txt.gz``).
``data_dir`` may also name a sequence file itself.

Without a named directory, sources are tried in this order:

1. The tfrecs cache (argument ``cache_dir``, else ``TFRECS_CACHE_DIR``, else
   ``~/.cache/tfrecs``), checksum-verified.
2. TFDS ``movielens/*-ratings`` if it is already prepared in the TFDS data directory.
3. ML-100K only: the RecBole 1.2.1 wheel from PyPI (``pip download --no-deps``), which
   ships ``ml-100k.{inter,user,item}``; the three files are extracted into the cache (a
   cache that cannot be written is a one-line ``CacheError`` naming the path).
4. TFDS with download from GroupLens, only with ``source="tfds"``.

When none works, the error names every place tried and why it failed. Whatever the source,
exact duplicate rows are then handled by the ``duplicates`` policy (``"drop"`` by default;
see ``RecDataset.deduplicated``), and ``ds.notes`` / ``ds.stats()`` say where the data
came from, which text encodings were used and how many duplicates were dropped.

Example::

    from tfrecs.data import load_movielens
    ml = load_movielens("ml-100k")
    ml.stats()["num_interactions"]  # -> 100000
"""

import glob
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from typing import List, Optional

import numpy as np

from tfrecs.core.errors import InputError, StorageError, TfrecsError
from tfrecs.data import readers
from tfrecs.data.dataset import DUPLICATE_POLICIES, RecDataset, object_column
from tfrecs.data.readers import DataNotFoundError
from tfrecs.data.sequence_file import SEQUENCE_SUFFIXES, is_sequence_file, read_sequence_file

MOVIELENS_NAMES = ("ml-100k", "ml-1m", "ml-20m", "ml-25m", "ml-latest-small")
SOURCES = ("auto", "dir", "cache", "recbole", "tfds")

RECBOLE_REQUIREMENT = "recbole==1.2.1"
RECBOLE_FILES = {  # file in the cache -> sha256 of the copy shipped in the recbole 1.2.1 wheel
    "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
    "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
}
RECBOLE_MEMBER_DIR = "recbole/dataset_example/ml-100k/"


class DatasetUnavailableError(TfrecsError, RuntimeError):
    """No source could provide the data set; the message lists every attempt."""


class ChecksumError(InputError):
    """A cached or downloaded file does not match its recorded checksum."""


class CacheError(StorageError):
    """The tfrecs cache directory cannot be created or written; the message names the path."""


def default_cache_dir(cache_dir: Optional[str] = None) -> str:
    """The cache root: the argument, else ``$TFRECS_CACHE_DIR``, else ``~/.cache/tfrecs``."""
    return os.path.expanduser(cache_dir or os.environ.get("TFRECS_CACHE_DIR") or "~/.cache/tfrecs")


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_recbole_files(directory: str) -> None:
    """Raises ``FileNotFoundError`` or ``ChecksumError`` unless the three ML-100K files are intact."""
    for file_name, expected in RECBOLE_FILES.items():
        path = os.path.join(directory, file_name)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} is missing")
        actual = _sha256(path)
        if actual != expected:
            raise ChecksumError(f"{path}: sha256 {actual} does not match the recorded {expected}")


def fetch_ml100k(cache_dir: Optional[str] = None, timeout: float = 300.0) -> str:
    """Makes sure ML-100K is in the cache, fetching the RecBole wheel from PyPI if needed.

    Nothing partial is left behind: the files are verified in a scratch directory inside
    the cache and only then moved into place.

    Returns:
        The cache directory holding ``ml-100k.{inter,user,item}``.

    Raises:
        DatasetUnavailableError: pip could not fetch the wheel, or its files are corrupt.
        CacheError: the cache directory cannot be created or written (path named).
    """
    target = os.path.join(default_cache_dir(cache_dir), "ml-100k")
    try:
        verify_recbole_files(target)
        return target
    except (FileNotFoundError, ChecksumError):
        pass
    try:
        _download_ml100k(target, timeout)
    except TfrecsError:
        raise
    except OSError as error:
        where = f" ({error.filename})" if error.filename and error.filename != target else ""
        raise CacheError(
            f"cannot write the tfrecs cache directory {target}{where}: {error.strerror or error}; "
            "point --cache-dir (or $TFRECS_CACHE_DIR) at a writable directory"
        ) from None
    return target


def _download_ml100k(target: str, timeout: float) -> None:
    """Downloads the RecBole wheel and moves its three verified ML-100K files into ``target``."""
    os.makedirs(target, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target) as scratch:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "--disable-pip-version-check",
            "--dest",
            scratch,
            RECBOLE_REQUIREMENT,
        ]
        try:
            completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise DatasetUnavailableError(f"`{' '.join(command)}` did not finish within {timeout:.0f} s") from None
        wheels = glob.glob(os.path.join(scratch, "recbole-*.whl"))
        if completed.returncode != 0 or not wheels:
            raise DatasetUnavailableError(
                f"`pip download {RECBOLE_REQUIREMENT}` failed (exit {completed.returncode}): {completed.stderr.strip()[-500:]}"
            )
        with zipfile.ZipFile(wheels[0]) as wheel:
            for file_name in RECBOLE_FILES:
                extracted = os.path.join(scratch, file_name)
                with wheel.open(RECBOLE_MEMBER_DIR + file_name) as source, open(extracted, "wb") as sink:
                    sink.write(source.read())
        try:
            verify_recbole_files(scratch)
        except ChecksumError as error:
            raise DatasetUnavailableError(f"the wheel from PyPI has unexpected contents: {error}") from None
        for file_name in RECBOLE_FILES:  # move into place only once all three are verified
            os.replace(os.path.join(scratch, file_name), os.path.join(target, file_name))


def _read_layout(directory: str, name: str) -> Optional[RecDataset]:
    """The data set in the first recognised layout of ``directory`` (module doc), else None."""
    encodings = {}
    for marker, reader in readers.LAYOUT_READERS.items():
        if os.path.exists(os.path.join(directory, marker)):
            tables = reader(directory, encodings=encodings)
            return RecDataset(name, *tables, notes={"source": directory, "layout": marker, "encodings": encodings})
    if os.path.exists(os.path.join(directory, f"{name}.inter")):
        tables = readers.read_recbole_movielens(directory, name, encodings=encodings)
        return RecDataset(name, *tables, notes={"source": directory, "layout": f"{name}.inter", "encodings": encodings})
    for suffix in SEQUENCE_SUFFIXES:
        path = os.path.join(directory, name + suffix)
        if os.path.isfile(path):
            return read_sequence_file(path, name)
    return None


def load_from_directory(name: str, data_dir: str) -> RecDataset:
    """Reads ``name`` from a directory the user named (module doc), or from a sequence file.

    Raises:
        DataNotFoundError: ``data_dir`` does not exist, or neither it nor ``data_dir/<name>``
            holds a recognised layout (the message lists the file names looked for).
        readers.MalformedFileError: a recognised file is malformed (file and line named).
    """
    if not os.path.exists(data_dir):
        raise DataNotFoundError(
            f"data directory {data_dir} does not exist; point --data-dir (or $TFRECS_DATA_DIR) "
            f"at the folder holding the {name} files"
        )
    if os.path.isfile(data_dir):
        if is_sequence_file(data_dir):
            return read_sequence_file(data_dir, name)
        raise DataNotFoundError(
            f"data directory {data_dir} is a file; name a directory, or a sequence file "
            f"(*{' or *'.join(SEQUENCE_SUFFIXES)})"
        )
    for directory in (data_dir, os.path.join(data_dir, name)):
        if os.path.isdir(directory):
            ds = _read_layout(directory, name)
            if ds is not None:
                return ds
    expected = list(readers.LAYOUT_READERS) + [f"{name}.inter"] + [name + s for s in SEQUENCE_SUFFIXES]
    raise DataNotFoundError(
        f"data directory {data_dir} holds none of {', '.join(expected)} (nor does "
        f"{os.path.join(data_dir, name)}); point --data-dir (or $TFRECS_DATA_DIR) at the folder "
        f"holding the {name} files"
    )


def _from_tfds(name: str, download: bool) -> RecDataset:
    """Builds the data set from TFDS ``movielens/<variant>-ratings`` (one row per rating)."""
    import tensorflow_datasets as tfds  # imported lazily: slow, and only this source needs it

    variant = name.replace("ml-", "")
    dataset = tfds.load(f"movielens/{variant}-ratings", split="train", download=download, batch_size=65536)
    columns = {
        "user_id": [],
        "item_id": [],
        "rating": [],
        "timestamp": [],
        "title": [],
        "genres": [],
        "age": [],
        "gender": [],
        "occupation": [],
        "zip_code": [],
    }
    for batch in tfds.as_numpy(dataset):
        columns["user_id"].append(batch["user_id"].astype(str))
        columns["item_id"].append(batch["movie_id"].astype(str))
        columns["rating"].append(batch["user_rating"].astype(np.float32))
        columns["timestamp"].append(batch["timestamp"].astype(np.int64))
        columns["title"].append(batch["movie_title"].astype(str))
        columns["genres"].extend(tuple(str(g) for g in row) for row in batch["movie_genres"])
        columns["age"].append(batch["bucketized_user_age"].astype(np.int64))
        columns["gender"].append(np.where(batch["user_gender"], "M", "F"))
        columns["occupation"].append(batch["user_occupation_text"].astype(str))
        columns["zip_code"].append(batch["user_zip_code"].astype(str))
    flat = {k: (np.concatenate(v) if k != "genres" else v) for k, v in columns.items()}
    interactions = {k: flat[k] for k in ("user_id", "item_id", "rating", "timestamp")}
    _, first_user = np.unique(flat["user_id"], return_index=True)
    users = {k: flat[k][first_user] for k in ("user_id", "age", "gender", "occupation", "zip_code")}
    _, first_item = np.unique(flat["item_id"], return_index=True)
    titles = [readers.split_title_year(t) for t in flat["title"][first_item]]
    genres = object_column(flat["genres"][i] for i in first_item)
    items = {
        "item_id": flat["item_id"][first_item],
        "title": np.array([t for t, _ in titles]),
        "release_year": np.array([y for _, y in titles], dtype=np.int64),
        "genres": genres,
    }
    return RecDataset(name, interactions, users, items)


def load_movielens(
    name: str = "ml-100k",
    data_dir: Optional[str] = None,
    cache_dir: Optional[str] = None,
    source: str = "auto",
    duplicates: str = "drop",
) -> RecDataset:
    """Loads a MovieLens release as a ``RecDataset``.

    Args:
        name: one of ``ml-100k``, ``ml-1m``, ``ml-20m``, ``ml-25m``, ``ml-latest-small``.
        data_dir: directory with the files in a GroupLens, RecBole or sequence-file layout,
            or a sequence file (else ``$TFRECS_DATA_DIR``). When given, it is the only
            source (module doc).
        cache_dir: tfrecs cache root (else ``$TFRECS_CACHE_DIR``, else ``~/.cache/tfrecs``).
        source: ``auto`` (every source in order), or only one of ``dir``, ``cache``,
            ``recbole``, ``tfds`` (``tfds`` may download from GroupLens).
        duplicates: exact duplicate rows: ``"drop"`` (default, counted in
            ``stats()["duplicates_dropped"]``), ``"keep"`` or ``"error"``.

    Returns:
        Interactions ``user_id``, ``item_id`` (str), ``rating`` (float32), ``timestamp``
        (int64); users ``user_id``, ``age``, ``gender``, ``occupation``, ``zip_code``; items
        ``item_id``, ``title``, ``release_year`` (0 if unknown), ``genres`` (tuples). A
        sequence file gives only ``user_id``, ``item_id`` and ``timestamp`` (line number).

    Raises:
        KeyError: unknown data set name or source.
        InputError: unknown ``duplicates`` policy.
        DataNotFoundError: the named ``data_dir`` does not exist or holds no known layout.
        DatasetUnavailableError: no source worked; lists each one tried and its error.
        CacheError: the cache cannot be written while fetching ML-100K.
        readers.MalformedFileError: a file was found but is malformed (file and line named).

    Example::

        ds = load_movielens("ml-1m", data_dir="../shared/data/ml-1m")  # finds ml-1m.txt.gz
    """
    if name not in MOVIELENS_NAMES:
        raise KeyError(f"unknown MovieLens data set {name!r}; known: {', '.join(MOVIELENS_NAMES)}")
    if source not in SOURCES:
        raise KeyError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")
    if duplicates not in DUPLICATE_POLICIES:
        raise InputError(f"duplicates={duplicates!r}: choose one of {', '.join(DUPLICATE_POLICIES)}")
    data_dir = data_dir or os.environ.get("TFRECS_DATA_DIR")
    if data_dir and source in ("auto", "dir"):
        ds = load_from_directory(name, data_dir)
    else:
        ds = _load_from_sources(name, cache_dir, source)
    return ds.deduplicated(duplicates)


def _load_from_sources(name: str, cache_dir: Optional[str], source: str) -> RecDataset:
    """The cache, TFDS and PyPI sources of the module doc, in order; the error lists each tried."""
    cache = os.path.join(default_cache_dir(cache_dir), name)
    attempts: List[str] = []

    def wanted(kind: str) -> bool:
        return source in ("auto", kind)

    if source == "dir":
        attempts.append("data directory: none given (argument data_dir or $TFRECS_DATA_DIR)")
    if name == "ml-100k" and wanted("cache"):
        try:
            verify_recbole_files(cache)
            encodings = {}
            tables = readers.read_recbole_movielens(cache, name, encodings=encodings)
            notes = {"source": cache, "layout": f"{name}.inter", "encodings": encodings}
            return RecDataset(name, *tables, notes=notes)
        except (FileNotFoundError, ChecksumError) as error:
            attempts.append(f"cache {cache}: {error}")
    if source == "auto" or (source == "tfds"):
        try:
            ds = _from_tfds(name, download=(source == "tfds"))
            ds.notes["source"] = f"TFDS movielens/{name[3:]}-ratings"
            return ds
        except Exception as error:  # noqa: BLE001 - TFDS raises many kinds; each is reported below
            attempts.append(
                f"TFDS movielens/{name[3:]}-ratings ({'download' if source == 'tfds' else 'prepared data only'}): "
                f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            )
    if name == "ml-100k" and wanted("recbole"):
        try:
            directory = fetch_ml100k(cache_dir)
            encodings = {}
            tables = readers.read_recbole_movielens(directory, name, encodings=encodings)
            notes = {"source": directory, "layout": f"{name}.inter", "encodings": encodings}
            return RecDataset(name, *tables, notes=notes)
        except DatasetUnavailableError as error:
            attempts.append(f"PyPI wheel {RECBOLE_REQUIREMENT}: {error}")
    if not attempts:
        attempts.append(f"source {source!r} does not provide {name}")
    raise DatasetUnavailableError(
        f"could not load {name}; tried:\n  - "
        + "\n  - ".join(attempts)
        + "\nPoint data_dir (or TFRECS_DATA_DIR) at a GroupLens download, or use source='tfds' where GroupLens is reachable."
    )
