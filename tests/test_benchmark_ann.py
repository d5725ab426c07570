"""benchmarks/ann.py --quick runs end to end at tiny sizes and writes nothing; its summary picks
the fastest setting that reaches the recall target (no speed is asserted: benchmarks, not timed tests)."""

import importlib.util
import pathlib

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def ann():
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))
        spec = importlib.util.spec_from_file_location("benchmark_ann", BENCHMARKS / "ann.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module


def test_quick_run_measures_every_index_on_both_data_sets_and_writes_nothing(ann, tmp_path):
    tiny = ["--num-candidates", "1000", "--num-queries", "100", "--search-shares", "1.0", "--reorder", "200"]
    tiny += ["--ef-search", "32", "--nprobe", "4", "--ivf-lists", "1", "--out", str(tmp_path)]
    figures = ann.main(["--quick", *tiny])
    assert list(tmp_path.iterdir()) == []  # --quick never writes results
    assert [d["dataset"] for d in figures["datasets"]] == ["clustered", "overlap"]
    for dataset in figures["datasets"]:
        rows = {row["index"]: row for row in dataset["rows"]}
        assert {row["family"] for row in rows.values()} == set(ann.FAMILIES)
        assert rows["tfrecs-bf"]["recall@10"] == 1.0  # the reference is the exact export
        leaves = dataset["scann_params"]["num_leaves"]
        every_leaf = rows[f"scann_l{leaves}_r200"]  # the export searching every leaf, re-scoring 200 of 1000
        assert every_leaf["recall@10"] >= 0.98 and rows[f"raw_l{leaves}_r200"]["recall@10"] >= 0.98
        assert all(row["qps"] > 0 and row["build_seconds"] >= 0 for row in rows.values())
        summary = dataset["summary"]
        best = summary["best"]["tfrecs-scann"]
        eligible = [r for r in rows.values() if r["family"] == "tfrecs-scann" and r["recall@10"] >= 0.98]
        assert best["qps"] == max(r["qps"] for r in eligible)
        assert summary["scann_vs_brute_force"] == round(best["qps"] / rows["tfrecs-bf"]["qps"], 2)
    assert "quiet" in figures["machine"]


def test_summary_says_when_an_index_never_reaches_the_target(ann):
    rows = [
        {"family": "tfrecs-scann", "index": "a", "qps": 10.0, "recall@10": 0.5, "build_seconds": 1.0},
        {"family": "tfrecs-bf", "index": "bf", "qps": 1.0, "recall@10": 1.0, "build_seconds": 0.0},
        {"family": "faiss-hnsw", "index": "h", "qps": 5.0, "recall@10": 0.99, "build_seconds": 2.0},
    ]
    summary = ann.summarize(rows, 0.98)
    assert summary["best"]["tfrecs-scann"] is None and summary["scann_vs_best_faiss"] is None
    assert summary["best_faiss"] == "h" and summary["scann_build_vs_hnsw_build"] == 0.5
