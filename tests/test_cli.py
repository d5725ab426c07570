"""The `tfrecs` command line: figures as a final JSON line, --help everywhere, clear errors."""

import json
import subprocess
import sys

import pytest

from tfrecs.cli import main
from tfrecs.data import make_split
from tfrecs.evaluation.protocols import evaluate_protocol
from tfrecs.models.popularity import Popularity


def _last_json(capsys):
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1])


def test_data_stats_prints_ml100k_counts(capsys):
    assert main(["data", "stats", "ml-100k", "--split", "loo"]) == 0
    figures = _last_json(capsys)
    assert (figures["num_users"], figures["num_items"], figures["num_interactions"]) == (943, 1682, 100000)
    assert figures["loo_test_interactions"] == 943


def test_evaluate_pop_matches_the_library_and_beats_nothing_by_accident(capsys, ml100k):
    assert main(["evaluate", "--model", "pop", "--dataset", "ml-100k", "--protocol", "loo-full"]) == 0
    figures = _last_json(capsys)
    split = make_split(ml100k, "loo")
    expected = evaluate_protocol(Popularity.from_dataset(split.train), split, "loo-full")
    assert figures["split"] == "test" and figures["model"] == "pop"
    for metric in ("hr@10", "ndcg@10", "mrr@10", "recall@20"):
        assert figures[metric] == pytest.approx(expected[metric])
    assert 0 < figures["ndcg@10"] < figures["hr@10"] <= 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["evaluate", "--model", "deepfmm"], "unknown model 'deepfmm'; known models: bert4rec, dcn"),
        (["evaluate", "--model", "pop", "--protocol", "leave-one-out"], "unknown protocol 'leave-one-out'"),
        (["evaluate", "--model", "pop", "--dataset", "ml-10k"], "unknown dataset 'ml-10k'"),
        (["data", "stats", "ml-100k", "--split", "lou"], "unknown split 'lou'"),
    ],
)
def test_bad_arguments_exit_2_with_a_message_naming_them(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [[], ["data"], ["data", "fetch"], ["data", "stats"], ["evaluate"], ["train"], ["export"]]
)
def test_every_command_has_help(argv):
    result = subprocess.run(
        [sys.executable, "-m", "tfrecs.cli", *argv, "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and "usage: tfrecs" in result.stdout


def _fake_train(monkeypatch, seen):
    """Replaces the recipes' ``train`` so the CLI's own work is tested without training."""
    import tfrecs.recipes
    from tfrecs.recipes import TrainResult

    def fake_train(config):
        seen["config"] = config
        figures = {"hr@10": 0.5, "ndcg@10": 0.25, "hr@20": 0.6, "split": "test", "epochs": 12, "best_epoch": 9}
        return TrainResult(model=None, figures=figures)

    monkeypatch.setattr(tfrecs.recipes, "train", fake_train)


def test_brief_train_says_what_it_does_in_one_line_per_step(monkeypatch, capsys):
    seen = {}
    _fake_train(monkeypatch, seen)
    assert main(["--brief", "train", "--model", "two_tower"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "training two_tower on ml-100k (40 epochs max) ...",
        "trained two_tower after 12 epochs (best 9); test hr@10 0.5000, ndcg@10 0.2500",
    ]
    assert seen["config"].verbose == 0 and seen["config"].data is None


def test_train_data_options_become_the_train_config_data(monkeypatch, capsys, tmp_path):
    seen = {}
    _fake_train(monkeypatch, seen)
    csv = tmp_path / "my_clicks.csv"
    csv.write_text("user,movie\nu1,m1\n")
    argv = ["train", "--model", "deepfm", "--data", str(csv), "--user-col", "user", "--item-col", "movie"]
    assert main(argv + ["--item-features", "genre, year", "--verbose", "2"]) == 0
    config = seen["config"]
    assert config.dataset == "my_clicks" and config.verbose == 2
    assert config.data == {"path": str(csv), "user": "user", "item": "movie", "item_features": ("genre", "year")}
    assert _last_json(capsys)["dataset"] == "my_clicks"
    assert main(argv + ["--dataset", "clicks"]) == 0
    assert seen["config"].dataset == "clicks" and seen["config"].data["name"] == "clicks"


def test_two_stage_export_shows_a_user_with_the_rankers_user_features(capsys, tmp_path, ml100k):
    """The re-ranker reads user features (age, gender, occupation, zip_code) the query tower does not."""
    argv = [
        "export",
        "--model",
        "two_tower",
        "--rerank",
        "deepfm",
        "--epochs",
        "1",
        "--num-candidates",
        "20",
        "--k",
        "5",
        "--index",
        "brute_force",
        "--export-root",
        str(tmp_path),
        "--show-user",
        "196",
        "--verbose",
        "0",
        "--no-warmup",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    shown = [line for line in out.splitlines() if line.strip()[:3].strip(". ").isdigit()]
    assert "top recommendations for user 196" in out and len(shown) == 5
