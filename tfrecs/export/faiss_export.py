"""FAISS exports: the query tower as a TF Serving SavedModel, the candidates in a FAISS index beside it.

``export_retrieval(..., index="faiss-hnsw")`` (or ``"faiss-ivf"``; ``tfrecs export --index
faiss-hnsw``) comes here. The version directory is a valid TF Serving model whose
``serving_default`` answers ``query_embeddings`` ``[batch, dim]`` float32 for the raw query
features; the neighbours come from FAISS, out of the SavedModel::

    <version>/
      saved_model.pb, variables/, fingerprint.pb
      assets/                      feature_spec.json, vocab_<feature>.txt, export_info.json
      assets.extra/
        tf_serving_warmup_requests
        faiss.index                faiss.write_index of the candidate embeddings (inner product)
        faiss_ids.npy              raw item id of each index row (str or int64; no pickle)
        faiss_titles.txt           titles of the rows, one per line (when titles were given)

Index parameters (``tune_faiss``, each overridable, ``--index-param key=value``):

* ``faiss-hnsw``: ``HNSW<m>,Flat`` with ``m=32``, ``ef_construction=200`` and
  ``ef_search=max(128, 4 k)`` (stored in the index; FAISS raises it to the number of answers
  asked when that is larger).
* ``faiss-ivf``: ``IVF<nlist>,Flat`` with ``nlist = round(4 sqrt(n))``, at most ``n // 39``
  (FAISS's k-means wants 39 training points per list) and at least 1, and ``nprobe`` = 2% of
  the lists, at least 8 (at most all), stored in the index.

``export_info.json`` records the index kind, its parameters, the metric, the build seconds,
the files and their sizes, and the FAISS version. Serving: ``tfrecs.export.faiss_index``
(``load_faiss_export``) and docs/serving.md.
"""

import math
import os
import tempfile
import time
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tfrecs.core.errors import InputError
from tfrecs.data.feature_spec import FeatureSpec
from tfrecs.export.faiss_index import (
    FAISS_INDEX_KINDS,
    IDS_FILE,
    INDEX_FILE,
    QUERY_OUTPUT,
    TITLES_FILE,
    import_faiss,
    set_search_parameter,
)
from tfrecs.export.layout import resolve_version
from tfrecs.export.retrieval import (
    candidate_embeddings,
    check_candidates,
    check_query_tower,
    dense_candidates,
    query_embeddings,
)
from tfrecs.export.saving import ExportResult, save_export, trackable_parts, warmup_batches
from tfrecs.export.signature import checked_features, describe, example_features, feature_signature

FAISS_PARAMETERS = {"faiss-hnsw": ("m", "ef_construction", "ef_search"), "faiss-ivf": ("nlist", "nprobe")}
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_MIN_EF_SEARCH = 128
IVF_LISTS_PER_SQRT_N = 4
IVF_MIN_POINTS_PER_LIST = 39  # faiss.ClusteringParameters().min_points_per_centroid
IVF_PROBE_SHARE = 0.02
IVF_MIN_PROBES = 8


def check_faiss_params(kind: str, params: Optional[Mapping[str, Any]]) -> Dict[str, int]:
    """``params`` checked by name and type (positive integers) for index ``kind``.

    Raises:
        InputError: an unknown kind, an unknown parameter (lists the valid ones) or a value
            that is not a positive integer.
    """
    if kind not in FAISS_INDEX_KINDS:
        raise InputError(f"index={kind!r} is not a FAISS index kind; choose one of {', '.join(FAISS_INDEX_KINDS)}")
    params = dict(params or {})
    valid = FAISS_PARAMETERS[kind]
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise InputError(f"unknown {kind} parameter(s) {unknown}; valid: {', '.join(valid)}")
    for name, value in params.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"{kind} parameter {name}={value!r} must be a positive integer")
    return {name: int(value) for name, value in params.items()}


def tune_faiss(kind: str, num_candidates: int, k: int, **overrides: Any) -> Dict[str, int]:
    """FAISS index parameters for ``num_candidates`` items and top-``k`` answers (see the module doc).

    Raises:
        InputError: an unknown or non-integer override, ``m`` below 2, ``nlist`` above the
            candidate count or ``nprobe`` above ``nlist``.

    Example::

        tune_faiss("faiss-ivf", 1_000_000, 10)   # {"nlist": 4000, "nprobe": 80}
    """
    overrides = check_faiss_params(kind, overrides)
    n = int(num_candidates)
    if kind == "faiss-hnsw":
        params = {"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef_search": max(HNSW_MIN_EF_SEARCH, 4 * k)}
        params.update(overrides)
        if params["m"] < 2:
            raise InputError(f"faiss-hnsw parameter m={params['m']} must be at least 2 (graph neighbours per item)")
        return params
    lists = max(1, min(round(IVF_LISTS_PER_SQRT_N * math.sqrt(n)), n // IVF_MIN_POINTS_PER_LIST))
    nlist = overrides.get("nlist", lists)
    if nlist > n:
        raise InputError(f"faiss-ivf parameter nlist={nlist} must be at most the candidate count {n}")
    nprobe = overrides.get("nprobe", min(nlist, max(IVF_MIN_PROBES, math.ceil(IVF_PROBE_SHARE * nlist))))
    if nprobe > nlist:
        raise InputError(f"faiss-ivf parameter nprobe={nprobe} must be at most nlist={nlist}")
    return {"nlist": nlist, "nprobe": nprobe}


def build_faiss_index(
    embeddings: np.ndarray, kind: str, k: int, params: Optional[Mapping[str, Any]] = None
) -> Tuple[Any, Dict[str, Any]]:
    """An inner-product FAISS index over ``[n, dim]`` candidate embeddings, rows in catalogue order.

    Returns:
        (the ``faiss.Index``, its report: kind, num_candidates, dimension, metric, params,
        build_seconds, faiss version).

    Raises:
        ImportError: faiss is not installed.
        InputError: bad parameters, or embeddings that are not finite ``[n, dim]``.
    """
    faiss = import_faiss(kind)
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or not np.isfinite(embeddings).all():
        raise InputError(f"candidate embeddings must be finite [num_candidates, dim], got shape {embeddings.shape}")
    n, dim = embeddings.shape
    tuned = tune_faiss(kind, n, k, **dict(params or {}))
    started = time.perf_counter()
    if kind == "faiss-hnsw":
        index = faiss.index_factory(dim, f"HNSW{tuned['m']},Flat", faiss.METRIC_INNER_PRODUCT)
        faiss.downcast_index(index).hnsw.efConstruction = tuned["ef_construction"]
        index.add(embeddings)
        set_search_parameter(index, kind, tuned["ef_search"])
    else:
        index = faiss.index_factory(dim, f"IVF{tuned['nlist']},Flat", faiss.METRIC_INNER_PRODUCT)
        index.train(embeddings)
        index.add(embeddings)
        set_search_parameter(index, kind, tuned["nprobe"])
    report = {
        "kind": kind,
        "num_candidates": int(n),
        "dimension": int(dim),
        "metric": "inner_product",
        "params": tuned,
        "build_seconds": round(time.perf_counter() - started, 3),
        "faiss": faiss.__version__,
    }
    return index, report


class QueryTowerModule(tf.Module):
    """Serving module of a FAISS export: raw query features -> ``query_embeddings`` ``[batch, dim]`` float32."""

    def __init__(self, model: Any, query_signature: Mapping[str, tf.TensorSpec]):
        super().__init__(name="query_tower")
        self.model_parts = trackable_parts(model)

        def serve(features):
            features = checked_features(features, query_signature)
            return {QUERY_OUTPUT: query_embeddings(model, features)}

        self.serving_default = tf.function(serve, input_signature=[dict(query_signature)])


def _plain_ids(ids: np.ndarray) -> np.ndarray:
    """Raw ids as an array ``np.load`` reads without pickle: fixed-width str, or int64."""
    ids = np.asarray(ids)
    if ids.dtype.kind in "iu":
        return ids.astype(np.int64)
    return np.asarray([value.decode() if isinstance(value, bytes) else str(value) for value in ids], dtype=str)


def export_faiss_retrieval(
    model: Any,
    candidates: Mapping[str, Any],
    export_root: str,
    model_name: str,
    feature_spec: Optional[FeatureSpec] = None,
    query_features: Optional[Sequence[str]] = None,
    index: str = "faiss-hnsw",
    k: int = 10,
    index_params: Optional[Mapping[str, Any]] = None,
    item_titles: Optional[Sequence[str]] = None,
    columns: Optional[Mapping[str, np.ndarray]] = None,
    signature_overrides: Optional[Mapping[str, tf.TensorSpec]] = None,
    candidate_id_key: str = "item_id",
    version: Optional[int] = None,
    warmup: bool = True,
    base_path_prefix: Optional[str] = "/models",
    candidate_batch_size: int = 4096,
    extra_info: Optional[Mapping[str, Any]] = None,
) -> ExportResult:
    """Exports the query tower as a SavedModel plus a FAISS index of the candidates (see the module doc).

    Arguments as ``export_retrieval``; ``index`` is ``"faiss-hnsw"`` or ``"faiss-ivf"``,
    ``index_params`` overrides ``tune_faiss``, ``k`` is the loader's default answer count.

    Returns:
        ExportResult of kind ``faiss_retrieval``; ``info["index"]`` holds the kind, parameters,
        build seconds and ``file_bytes`` of the index file.

    Raises:
        ImportError: faiss is not installed (one line naming the extra to install).
        ValueError: as ``export_retrieval``, and bad FAISS parameters.
    """
    started = time.perf_counter()
    import_faiss(index)
    check_faiss_params(index, index_params)
    resolve_version(export_root, model_name, version)  # fail before any work
    num_candidates = check_candidates(candidates, candidate_id_key, k)
    tune_faiss(index, num_candidates, k, **dict(index_params or {}))  # bad values fail before embedding
    names = list(query_features or (signature_overrides or {}))
    signature = feature_signature(feature_spec, names, columns=columns, overrides=signature_overrides)
    examples = example_features(signature, feature_spec, num_rows=4, columns=columns)
    if item_titles is not None and len(item_titles) != num_candidates:
        raise ValueError(f"item_titles has {len(item_titles)} entries but there are {num_candidates} candidates.")
    query_dim = check_query_tower(model, examples)
    dense = dense_candidates(candidates, feature_spec, signature_overrides)
    embeddings = candidate_embeddings(model, dense, candidate_batch_size)
    if embeddings.shape[1] != query_dim:
        raise ValueError(
            f"query embeddings have {query_dim} dimensions but candidate embeddings have "
            f"{embeddings.shape[1]}; the towers must agree."
        )
    faiss = import_faiss(index)
    built, report = build_faiss_index(embeddings, index, k, index_params)
    module = QueryTowerModule(model, signature)
    with tempfile.TemporaryDirectory() as scratch:
        files = {INDEX_FILE: os.path.join(scratch, "faiss.index"), IDS_FILE: os.path.join(scratch, "faiss_ids.npy")}
        faiss.write_index(built, files[INDEX_FILE])
        np.save(files[IDS_FILE], _plain_ids(dense[candidate_id_key]))
        if item_titles is not None:
            files[TITLES_FILE] = os.path.join(scratch, "faiss_titles.txt")
            with open(files[TITLES_FILE], "w", encoding="utf-8") as handle:
                handle.write("\n".join(" ".join(str(title).splitlines()) for title in item_titles))
        report["file_bytes"] = os.path.getsize(files[INDEX_FILE])
        report["files"] = {name: os.path.getsize(path) for name, path in files.items()}
        info = {
            "k": k,
            "candidate_id_key": candidate_id_key,
            "index": report,
            "inputs": describe(signature),
            "outputs": [QUERY_OUTPUT],
            "serving": "TF Serving answers query_embeddings; FAISS answers the neighbours: "
            "tfrecs.export.faiss_index.load_faiss_export (docs/serving.md)",
        }
        requests = warmup_batches(examples) if warmup else None
        return save_export(
            module,
            export_root,
            model_name,
            "faiss_retrieval",
            info,
            feature_spec,
            requests,
            version,
            base_path_prefix,
            started,
            extra_info,
            extra_files=files,
        )
