"""Benchmark tables without training: mean ± std over seeds, ratio columns, the published ML-1M
figures, README's generated Results blocks, and where the ML-1M file is looked for.

Standard deviations are **sample** standard deviations (ddof=1, denominator n - 1) everywhere; the
expected values below are computed by hand with that denominator.
"""

import importlib
import importlib.util
import json
import math
import pathlib

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def tables():
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))
        yield importlib.import_module("readme_tables")


@pytest.fixture(scope="module")
def sequential(tables):
    """benchmarks/sequential_quality.py as a module (TensorFlow is already loaded by conftest)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))
        spec = importlib.util.spec_from_file_location(
            "benchmark_sequential_quality", BENCHMARKS / "sequential_quality.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module


# --- mean ± std over seeds ------------------------------------------------------------------


def test_mean_and_sample_std_by_hand(tables):
    mean, std = tables.mean_std([0.30, 0.31, 0.32])
    assert mean == pytest.approx(0.31)
    assert std == pytest.approx(0.01)  # sqrt((0.01^2 + 0 + 0.01^2) / (3 - 1)); ddof=0 would give 0.008165
    mean, std = tables.mean_std([0.1, 0.2, 0.6])
    assert mean == pytest.approx(0.3)
    assert std == pytest.approx(math.sqrt(0.14 / 2))  # squared deviations 0.04 + 0.01 + 0.09 over n - 1
    assert tables.mean_std([0.3031]) == (pytest.approx(0.3031), None)  # one seed: no spread is made up
    with pytest.raises(ValueError):
        tables.mean_std([])


def test_cells_say_how_many_seeds(tables):
    assert tables.cell(0.30311, None) == "0.3031"
    assert tables.cell(0.30311, 0.00123) == "0.3031 ± 0.0012"
    assert tables.cell(None) == "-"
    assert tables.seeds_text([2020]) == "1 seed: 2020"
    assert tables.seeds_text([2020, 2021, 2022]) == "seeds 2020, 2021, 2022"


def per_seed_rows():
    """Three hand-made seeds of one sequential row."""
    return [
        {
            "seed": seed,
            "loo-full": {"ndcg@10": ndcg, "hr@10": hr},
            "loo-sampled": {"ndcg@10": 0.5, "hr@10": 0.8},
            "epochs": epochs,
            "seconds_per_epoch": spe,
            "wall_seconds": wall,
        }
        for seed, ndcg, hr, epochs, spe, wall in [
            (2020, 0.17, 0.30, 50, 70.0, 3600.0),
            (2021, 0.18, 0.31, 60, 72.0, 4000.0),
            (2022, 0.19, 0.32, 70, 74.0, 5000.0),
        ]
    ]


def test_sequential_row_aggregates_its_seeds(sequential):
    row = sequential.aggregate({"model": "sasrec", "objective": "ce", "per_seed": per_seed_rows()})
    assert row["seeds"] == [2020, 2021, 2022]
    assert row["mean"]["loo-full"]["ndcg@10"] == pytest.approx(0.18)
    assert row["std"]["loo-full"]["ndcg@10"] == pytest.approx(0.01)
    assert row["mean"]["loo-full"]["hr@10"] == pytest.approx(0.31)
    assert row["std"]["loo-sampled"]["ndcg@10"] == pytest.approx(0.0)  # the same figure on every seed
    assert row["epochs"] == [50, 60, 70]
    assert row["seconds_per_epoch"] == pytest.approx(72.0)
    assert row["total_seconds"] == pytest.approx(12600.0)
    assert len(row["per_seed"]) == 3  # the .json keeps every seed's figures


def test_single_and_multi_seed_rows_render_honestly(tables):
    old = {"model": "sasrec", "objective": "ce", "loo-full": {"ndcg@10": 0.3031, "hr@10": 0.5}, "epochs": 52}
    new = {"model": "sasrec", "objective": "gbce", "per_seed": per_seed_rows(), "seeds": [2020, 2021, 2022]}
    new["mean"] = {"loo-full": {"ndcg@10": 0.18, "hr@10": 0.31}}
    new["std"] = {"loo-full": {"ndcg@10": 0.01, "hr@10": 0.01}}
    data = {"dataset": "ml-100k", "seed": 2020, "rows": [old, new]}
    text = "\n".join(tables.render_sequential(data, "sequential_ml100k"))
    assert "| 0.3031 |" in text and "| 1 seed: 2020 |" in text
    assert "| 0.1800 ± 0.0100 |" in text and "| seeds 2020, 2021, 2022 |" in text
    assert "| 50, 60, 70 |" in text
    assert "Rows differ in their seeds" in text


def test_variants_stay_out_of_readme(tables):
    assert tables.is_variant({"settings": "dropout=0.5 epochs<=200"})
    assert not tables.is_variant({"settings": " epochs<=200"})
    assert tables.is_variant({"variant": True, "settings": ""})
    assert not tables.is_variant({"variant": False, "settings": "max_len=200"})


# --- ratio columns --------------------------------------------------------------------------


def seeded(tables, ndcg_values):
    """A multi-seed retrieval row with these per-seed NDCG@10 figures (seeds 2020, 2021, ...)."""
    per_seed = [{"seed": 2020 + i, "ndcg@10": value} for i, value in enumerate(ndcg_values)]
    mean, std = tables.summarise(per_seed, ["ndcg@10"])
    return {"status": "ok", "seeds": [e["seed"] for e in per_seed], "per_seed": per_seed, "mean": mean, "std": std}


def test_retrieval_ratio_to_ease_is_a_ratio_of_means(tables):
    data = {
        "dataset": "ml-1m",
        "protocol": "random-full",
        "rows": {
            "ease": seeded(tables, [0.24, 0.25, 0.26]),
            "two_tower": seeded(tables, [0.29, 0.30, 0.31]),
            "pop": seeded(tables, [0.125]),
        },
    }
    lines = tables.render_retrieval(data, "retrieval_ml1m")
    assert "NDCG@10 / EASE" in lines[2]
    by_model = {line.split(" | ")[0].strip("| "): line for line in lines if line.startswith("| ")}
    assert by_model["two_tower"].split(" | ")[-2] == "1.20"  # 0.30 / 0.25
    assert by_model["ease"].split(" | ")[-2] == "1.00"
    assert by_model["pop"].split(" | ")[-2] == "0.50"  # 0.125 / 0.25
    no_bar = tables.render_retrieval({**data, "rows": {"pop": seeded(tables, [0.125])}}, "retrieval_ml1m")
    assert "NDCG@10 / EASE" not in no_bar[2] and any("No EASE row" in line for line in no_bar)


def test_sequential_ratio_to_the_published_figure(tables, sequential):
    row = sequential.aggregate({"model": "sasrec", "objective": "ce", "per_seed": per_seed_rows()})
    row["published"] = sequential.published_for("ml-1m", "sasrec", "ce")
    lines = tables.render_sequential({"dataset": "ml-1m", "rows": [row]}, "sequential_ml1m")
    header = [cell.strip() for cell in lines[2].strip("|").split("|")]
    cells = [cell.strip() for cell in next(line for line in lines if line.startswith("| sasrec")).strip("|").split("|")]
    assert dict(zip(header, cells))["published NDCG@10"] == "0.1821"
    assert cells[header.index("published NDCG@10") + 1] == "0.99"  # 0.18 / 0.1821 = 0.988
    assert dict(zip(header, cells))["published HR@10"] == "0.3152"
    assert cells[header.index("published HR@10") + 1] == "0.98"  # 0.31 / 0.3152 = 0.984
    assert dict(zip(header, cells))["published in"] == "Klenitskiy & Vasilev 2023"


# --- the published ML-1M table --------------------------------------------------------------

EXPECTED_PUBLISHED = {  # PUBLISHED.md sections A-D, copied by hand
    ("loo-full", "sasrec", "ce"): (0.3152, 0.1821),
    ("loo-full", "sasrec", "bce"): (0.2500, 0.1341),
    ("loo-full", "sasrec", "sampled_softmax"): (0.3159, 0.1857),
    ("loo-full", "sasrec", "gbce"): (0.3003, 0.1726),
    ("loo-full", "bert4rec", "cloze"): (0.2843, 0.1537),
    ("loo-sampled", "sasrec", "bce"): (0.8245, 0.5905),
    ("loo-sampled", "bert4rec", "cloze"): (0.8039, 0.6008),
}


def test_published_figures_are_in_the_script_with_their_sources(sequential):
    assert set(sequential.PUBLISHED) == set(EXPECTED_PUBLISHED)
    for key, (hr, ndcg) in EXPECTED_PUBLISHED.items():
        entry = sequential.PUBLISHED[key]
        assert entry.metrics == {"hr@10": hr, "ndcg@10": ndcg}, key
        assert entry.source and entry.setting and entry.short
    assert sequential.published_for("ml-100k", "sasrec", "ce") == {}  # published tables are ML-1M only
    assert set(sequential.published_for("ml-1m", "sasrec", "bce")) == {"loo-full", "loo-sampled"}


# --- README ---------------------------------------------------------------------------------


def test_committed_readme_is_in_sync_with_the_results(tables):
    assert tables.drift() == [], "run python benchmarks/readme_tables.py"


def test_regenerate_and_check_on_a_scratch_readme(tables, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    rows = {"pop": {"recall@10": 0.1, "ndcg@10": 0.125, "status": "ok"}}
    (results / "retrieval_ml100k.json").write_text(
        json.dumps({"dataset": "ml-100k", "protocol": "random-full", "seed": 2020, "rows": rows})
    )
    readme = tmp_path / "README.md"
    readme.write_text(
        "# x\n\n<!-- BEGIN GENERATED results/retrieval_ml100k.json -->\nstale\n"
        "<!-- END GENERATED results/retrieval_ml100k.json -->\n\n"
        "<!-- BEGIN GENERATED results/sequential_ml1m.json -->\n<!-- END GENERATED results/sequential_ml1m.json -->\n"
    )
    argv = ["--readme", str(readme), "--results", str(results)]
    assert tables.main(argv + ["--check"]) == 1
    assert tables.drift(readme, results) == ["retrieval_ml100k.json", "sequential_ml1m.json"]
    assert tables.main(argv) == 0
    assert tables.main(argv + ["--check"]) == 0
    text = readme.read_text()
    assert "| pop | 0.1000 | 0.1250 |" in text and "1 seed: 2020" in text and "stale" not in text
    assert "Not measured yet" in text and "--dataset ml-1m" in text
    assert text.startswith("# x\n")


def test_unbalanced_markers_are_refused(tables):
    with pytest.raises(ValueError, match="no END"):
        tables.check_markers("<!-- BEGIN GENERATED results/a.json -->\n")
    with pytest.raises(ValueError, match="without its BEGIN"):
        tables.check_markers("<!-- END GENERATED results/a.json -->\n")


# --- where the ML-1M file is looked for ------------------------------------------------------


def test_missing_ml1m_file_gives_a_clear_message(sequential, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(sequential.DataMissing) as given:
        sequential.resolve_data_dir("ml-1m", str(empty), environ={}, fallback=tmp_path / "absent")
    message = str(given.value)
    assert f"--data-dir {empty}" in message
    for hint in ("ml-1m.txt", "kang205/SASRec", "--data-dir DIR", "TFRECS_DATA_DIR", "sha256"):
        assert hint in message
    with pytest.raises(sequential.DataMissing) as nothing:
        sequential.resolve_data_dir("ml-1m", None, environ={}, fallback=tmp_path / "absent")
    assert "no --data-dir, no $TFRECS_DATA_DIR" in str(nothing.value) and str(tmp_path / "absent") in str(nothing.value)
    with pytest.raises(sequential.DataMissing, match=r"\$TFRECS_DATA_DIR"):
        sequential.resolve_data_dir("ml-1m", None, environ={"TFRECS_DATA_DIR": str(empty)}, fallback=empty)


def test_ml1m_file_is_found_in_order(sequential, tmp_path):
    given, env, fallback = (tmp_path / name for name in ("given", "env", "fallback"))
    for directory in (given, env / "ml-1m", fallback):
        directory.mkdir(parents=True)
        (directory / "ml-1m.txt.gz").write_bytes(b"")
    assert sequential.resolve_data_dir("ml-1m", str(given), {"TFRECS_DATA_DIR": str(env)}, fallback) == str(given)
    assert sequential.resolve_data_dir("ml-1m", None, {"TFRECS_DATA_DIR": str(env)}, fallback) == str(env)
    assert sequential.resolve_data_dir("ml-1m", None, {}, fallback) == str(fallback)
    assert sequential.resolve_data_dir("ml-100k", None, {}, tmp_path / "absent") is None  # ML-100K: the cache


def test_the_command_line_reports_the_missing_file(sequential, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TFRECS_DATA_DIR", raising=False)
    parser = sequential.build_parser()
    with pytest.raises(SystemExit) as exit_info:
        sequential.parse_args(parser, ["--dataset", "ml-1m", "--data-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "ML-1M data not found" in capsys.readouterr().err
