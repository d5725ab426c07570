"""Serves FAISS exports in a fresh process that imports only TensorFlow, FAISS and numpy, as a server would.

    python load_faiss_export.py CONFIG.json

CONFIG holds ``cwd`` (the directory holding ``saved_models/``), ``exports`` (name -> version
directory, relative to cwd), ``snippet`` (docs/serving.md's code without tfrecs, which loads
``saved_models/two_tower/1``), ``helper`` (the path of tfrecs/export/faiss_index.py, loaded as
a plain file, not as part of the tfrecs package), ``queries`` (an npz of batched raw
features), ``k``, ``seen`` (one exclusion set for the snippet), ``exclude`` (one list per
query for the loader) and ``outputs`` (the npz to write). For each export it writes:

* ``doc/<name>/{plain,seen}/{ids,scores}``: the doc snippet's ``top_k``;
* ``helper/<name>/{plain,exclude}/{ids,scores}``: ``load_faiss_export(...).search``;
* ``tf1/<name>``: ``query_embeddings`` through the TF1 session loader (the path TF
  Serving's C++ loader resembles);
* ``stored/<name>``: the search parameter stored in ``faiss.index`` (efSearch / nprobe).
"""

import importlib.util
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import faiss  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def doc_answers(snippet: str, path: str, queries: dict, k: int, seen: frozenset) -> dict:
    namespace = {}
    exec(compile(snippet.replace("saved_models/two_tower/1", path), "<docs/serving.md>", "exec"), namespace)
    results = {}
    for case, excluded in (("plain", frozenset()), ("seen", seen)):
        answers = namespace["top_k"](queries, k=k, seen=excluded)
        results[f"{case}/ids"] = np.asarray([[str(item) for item, _ in row] for row in answers])
        results[f"{case}/scores"] = np.asarray([[score for _, score in row] for row in answers], np.float32)
    return results


def session_embeddings(path: str, queries: dict) -> np.ndarray:
    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
        signature = meta_graph.signature_def["serving_default"]
        feeds = {info.name: queries[name] for name, info in signature.inputs.items()}
        return session.run(signature.outputs["query_embeddings"].name, feeds)


def stored_parameter(path: str) -> int:
    index = faiss.read_index(os.path.join(path, "assets.extra", "faiss.index"))
    if isinstance(index, faiss.IndexHNSW):
        return int(index.hnsw.efSearch)
    return int(faiss.extract_index_ivf(index).nprobe)


def main(config_path: str) -> None:
    with open(config_path, encoding="utf-8") as handle:
        config = json.load(handle)
    os.chdir(config["cwd"])
    queries = dict(np.load(config["queries"]))
    spec = importlib.util.spec_from_file_location("faiss_index_copy", config["helper"])
    helper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helper)
    results = {}
    for name, path in config["exports"].items():
        for key, value in doc_answers(config["snippet"], path, queries, config["k"], frozenset(config["seen"])).items():
            results[f"doc/{name}/{key}"] = value
        export = helper.load_faiss_export(path)
        for case, exclude in (("plain", None), ("exclude", config["exclude"])):
            ids, scores = export.search(queries, config["k"], exclude=exclude)
            results[f"helper/{name}/{case}/ids"], results[f"helper/{name}/{case}/scores"] = ids.astype(str), scores
        results[f"tf1/{name}"] = session_embeddings(
            path, {key: value.astype("S") if value.dtype.kind == "U" else value for key, value in queries.items()}
        )
        results[f"stored/{name}"] = np.asarray(stored_parameter(path))
    assert "tfrecs" not in sys.modules, "serving a FAISS export imported tfrecs"
    np.savez(config["outputs"], **results)


if __name__ == "__main__":
    main(sys.argv[1])
