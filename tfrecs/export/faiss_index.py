"""Serve a FAISS export: the query tower's SavedModel answers the embedding, FAISS the neighbours.

An export written with ``index="faiss-hnsw"`` or ``"faiss-ivf"`` (``tfrecs export --index
faiss-hnsw``) is a TF Serving version directory whose ``serving_default`` maps the raw query
features to ``query_embeddings`` ``[batch, dim]`` float32; beside it, under ``assets.extra/``
(files TF Serving leaves alone), lie the FAISS index of the candidate embeddings
(``faiss.index``, inner-product metric, its search parameter stored inside) and the raw id of
each index row (``faiss_ids.npy``; ``faiss_titles.txt``, one per line, when titles were given).

This module is the loader. It imports only numpy, tensorflow and faiss (never tfrecs), so a
server can use it from tfrecs or copy this one file::

    from tfrecs.export.faiss_index import load_faiss_export

    export = load_faiss_export("saved_models/two_tower/1")           # or (..., ef_search=256)
    ids, scores = export.search({"user_id": ["196"], "age": [24]}, k=10, exclude=["242", "302"])

Exclusions are handled by over-fetching: the index is asked for ``k + m`` neighbours (``m``:
excluded ids in the catalogue) and the excluded ones dropped, so each answer holds exactly
``k`` ids whenever the catalogue has that many others: an IVF search that comes back short is
repeated with twice the probed lists (up to all of them), an HNSW search that comes back short
(items its graph does not reach) is answered exactly from the stored vectors. Missing places
hold the padding id (``""`` / ``-1``) and the lowest float32 score, as in the other retrieval
exports.
"""

import json
import os
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

FAISS_INDEX_KINDS = ("faiss-hnsw", "faiss-ivf")
INDEX_FILE = os.path.join("assets.extra", "faiss.index")
IDS_FILE = os.path.join("assets.extra", "faiss_ids.npy")
TITLES_FILE = os.path.join("assets.extra", "faiss_titles.txt")
INFO_FILE = os.path.join("assets", "export_info.json")
QUERY_OUTPUT = "query_embeddings"
# The search-time parameter of each kind (a stored index parameter, overridable at load).
SEARCH_PARAMETER = {"faiss-hnsw": "ef_search", "faiss-ivf": "nprobe"}
LOWEST_SCORE = float(np.finfo(np.float32).min)


def import_faiss(kind: str = "faiss") -> Any:
    """The ``faiss`` module; raises ``ImportError`` (one line: what to install) when it is missing."""
    try:
        import faiss
    except ImportError:
        raise ImportError(
            f"index {kind!r} needs the faiss package, which is not installed: "
            "pip install 'tfrecs[faiss]' (or pip install faiss-cpu)"
        ) from None
    return faiss


def set_search_parameter(index: Any, kind: str, value: int) -> None:
    """Sets ``ef_search`` (HNSW) or ``nprobe`` (IVF) on a FAISS index; it is saved with the index."""
    faiss = import_faiss(kind)
    if kind == "faiss-hnsw":
        faiss.downcast_index(index).hnsw.efSearch = int(value)
    else:
        faiss.extract_index_ivf(index).nprobe = int(value)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer")
    return int(value)


class FaissExport:
    """A loaded FAISS export: ``search`` maps raw query features to top-k raw item ids and scores.

    Attributes:
        path: the version directory.
        kind: ``"faiss-hnsw"`` or ``"faiss-ivf"``.
        k: the export's answers per query (``search``'s default).
        index: the ``faiss.Index`` (inner product; its ``ef_search`` / ``nprobe`` set).
        item_ids: ``[n]`` raw ids of the index rows (str or int64).
        titles: ``[n]`` titles, or None.
        params: the index parameters (export_info.json), with load-time overrides.
        inputs: name -> ``tf.TensorSpec`` of the query tower's raw features.
    """

    def __init__(self, path: str, **search_params: Any):
        import tensorflow as tf

        self.path = path
        missing = [name for name in (INDEX_FILE, IDS_FILE, INFO_FILE) if not os.path.isfile(os.path.join(path, name))]
        if missing:
            raise ValueError(
                f"{path}: not a FAISS export (missing {', '.join(missing)}); exports with a ScaNN or "
                "brute-force index answer neighbours themselves (tf.saved_model.load)"
            )
        with open(os.path.join(path, INFO_FILE), encoding="utf-8") as handle:
            info = json.load(handle)
        self.kind = info["index"]["kind"]
        self.k = int(info["k"])
        self.params = dict(info["index"].get("params") or {})
        faiss = import_faiss(self.kind)
        self.index = faiss.read_index(os.path.join(path, INDEX_FILE))
        self.item_ids = np.load(os.path.join(path, IDS_FILE), allow_pickle=False)
        titles = os.path.join(path, TITLES_FILE)
        self.titles = None
        if os.path.isfile(titles):
            with open(titles, encoding="utf-8") as handle:
                self.titles = np.asarray(handle.read().split("\n")[: len(self.item_ids)], dtype=object)
        if len(self.item_ids) != self.index.ntotal:
            raise ValueError(f"{path}: {IDS_FILE} has {len(self.item_ids)} ids but the index {self.index.ntotal} rows")
        allowed = SEARCH_PARAMETER[self.kind]
        unknown = sorted(set(search_params) - {allowed})
        if unknown:
            raise ValueError(f"unknown search parameter(s) {unknown} for a {self.kind} export; valid: [{allowed!r}]")
        for name, value in search_params.items():
            self.params[name] = _positive_int(name, value)
            set_search_parameter(self.index, self.kind, self.params[name])
        self._signature = tf.saved_model.load(path).signatures["serving_default"]
        self.inputs = dict(self._signature.structured_input_signature[1])
        self._rows: Optional[Dict[Any, int]] = None

    @property
    def padding_id(self) -> Any:
        return "" if self.item_ids.dtype.kind in "US" else -1

    def query_embeddings(self, features: Mapping[str, Any]) -> np.ndarray:
        """``[batch, dim]`` float32 query embeddings of raw features (batched values; extra keys ignored).

        Raises:
            ValueError: a query-tower input is missing (names it).
        """
        import tensorflow as tf

        missing = sorted(set(self.inputs) - set(features))
        if missing:
            raise ValueError(f"the query lacks the query-tower input(s) {missing} (has {sorted(features)})")
        tensors = {
            name: tf.constant(np.asarray(features[name]), dtype=spec.dtype) for name, spec in self.inputs.items()
        }
        return self._signature(**tensors)[QUERY_OUTPUT].numpy()

    def search(
        self, query_features: Mapping[str, Any], k: Optional[int] = None, exclude: Any = None
    ) -> Tuple[np.ndarray, np.ndarray]:
        """Top-``k`` raw item ids and float32 inner-product scores per query, best first.

        Args:
            query_features: raw query-tower features, batched (``{"user_id": ["196", "7"], ...}``).
            k: answers per query (default: the export's ``k``).
            exclude: ids never to return: one list for every query, or one list per query.

        Returns:
            ``(ids [batch, k], scores [batch, k])``; places left empty (the index found fewer
            than ``k`` other items) hold the padding id and the lowest float32 score.
        """
        rows, scores = self.search_embeddings(self.query_embeddings(query_features), k, exclude)
        ids = self.item_ids[np.maximum(rows, 0)]
        ids[rows < 0] = self.padding_id
        return ids, scores

    def search_embeddings(
        self, queries: np.ndarray, k: Optional[int] = None, exclude: Any = None
    ) -> Tuple[np.ndarray, np.ndarray]:
        """``(rows [batch, k] int64, scores [batch, k] float32)`` of query embeddings; -1 rows are empty places."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = self.k if k is None else _positive_int("k", k)
        total = int(self.index.ntotal)
        if k > total:
            raise ValueError(f"k={k} must be at most the number of indexed items ({total})")
        excluded = self._excluded_rows(exclude, len(queries))
        rows_out = np.full((len(queries), k), -1, dtype=np.int64)
        scores_out = np.full((len(queries), k), LOWEST_SCORE, dtype=np.float32)
        value = int(self.params.get(SEARCH_PARAMETER[self.kind]) or 1)
        lists = int(import_faiss().extract_index_ivf(self.index).nlist) if self.kind == "faiss-ivf" else 0
        pending, exact = np.arange(len(queries)), False
        while len(pending):
            fetch = min(total, k + max(len(excluded[q]) for q in pending))
            scores, rows = self._search(queries[pending], fetch, value, exact)
            short = []
            for position, query in enumerate(pending):
                keep = (rows[position] >= 0) & ~np.isin(rows[position], excluded[query])
                found = rows[position][keep][:k]
                rows_out[query, : len(found)] = found
                scores_out[query, : len(found)] = scores[position][keep][:k]
                if len(found) < k and (rows[position] < 0).any():
                    short.append(query)
            if not short or exact or value >= lists > 0:
                break
            if lists:
                value = min(lists, 2 * value)  # IVF: probe twice the lists
            else:
                exact = True  # HNSW: items the graph does not reach; score the stored vectors
            pending = np.asarray(short)
        return rows_out, scores_out

    def _search(self, queries: np.ndarray, fetch: int, value: int, exact: bool) -> Tuple[np.ndarray, np.ndarray]:
        faiss = import_faiss(self.kind)
        if exact:
            return faiss.downcast_index(self.index).storage.search(queries, fetch)
        if self.kind == "faiss-hnsw":
            params = faiss.SearchParametersHNSW(efSearch=value)
        else:
            params = faiss.SearchParametersIVF(nprobe=value)
        return self.index.search(queries, fetch, params=params)

    def _excluded_rows(self, exclude: Any, batch: int) -> list:
        """Per query, the index rows of the excluded ids (ids outside the catalogue are ignored)."""
        empty = np.zeros(0, dtype=np.int64)
        if exclude is None:
            return [empty] * batch
        if self._rows is None:
            self._rows = {value: row for row, value in enumerate(self.item_ids.tolist())}
        per_query = _per_query(exclude)
        if per_query is None:
            per_query = [exclude]
        if len(per_query) not in (1, batch):
            raise ValueError(f"exclude has {len(per_query)} lists for {batch} queries; give one list, or one per query")
        as_key = str if self.item_ids.dtype.kind in "US" else int
        rows = []
        for values in per_query:
            keys = (value.decode() if isinstance(value, bytes) else value for value in np.asarray(values).ravel())
            found = {self._rows.get(as_key(key)) for key in keys if _is_id(key)}
            rows.append(np.asarray(sorted(found - {None}), dtype=np.int64))
        return rows * batch if len(rows) == 1 else rows


def _is_id(value: Any) -> bool:
    return not (isinstance(value, (float, np.floating)) and np.isnan(value))


def _per_query(exclude: Any) -> Optional[Sequence]:
    """``exclude`` as one list per query when it is one (a 2-D array, a list of lists), else None."""
    if isinstance(exclude, np.ndarray) and exclude.ndim == 2:
        return list(exclude)
    items = list(np.asarray(exclude, dtype=object).ravel()) if isinstance(exclude, np.ndarray) else list(exclude)
    if items and all(isinstance(item, (list, tuple, np.ndarray)) for item in items):
        return items
    return None


def load_faiss_export(path: str, **search_params: Any) -> FaissExport:
    """Loads a FAISS export (query-tower SavedModel + FAISS index + id table) from its version directory.

    Args:
        path: ``<export_root>/<model_name>/<version>``.
        **search_params: ``ef_search=...`` (faiss-hnsw) or ``nprobe=...`` (faiss-ivf) instead of
            the stored value.

    Raises:
        ImportError: faiss is not installed (one line: what to install).
        ValueError: not a FAISS export, or an unknown search parameter.

    Example::

        export = load_faiss_export("saved_models/two_tower/1")
        ids, scores = export.search({"user_id": ["196"], "age": [24]}, k=10, exclude=["242"])
    """
    return FaissExport(path, **search_params)
