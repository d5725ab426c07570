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
