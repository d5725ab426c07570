"""benchmarks/tune.py: trials scored on validation only, recorded as they finish, replayed on a rerun."""

import importlib
import json
import pathlib

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def tune():
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))
        yield importlib.import_module("tune")


def test_ease_trials_are_recorded_with_the_best_on_validation_and_a_rerun_continues(tune, tmp_path):
    args = tune.build_parser().parse_args(["--model", "ease", "--trials", "2", "--out", str(tmp_path), "--allow-busy"])
    tune.tune(args)
    path = tmp_path / "ease_ml-100k.json"
    record = json.loads(path.read_text())
    assert [sorted(t["values"]) for t in record["trials"]] == [["l2"], ["l2"]]
    assert all(10.0 <= t["values"]["l2"] <= 3000.0 for t in record["trials"])
    assert record["best"] == max(record["trials"], key=lambda t: t["valid"]["ndcg@10"])
    assert record["metric"] == "valid ndcg@10" and "test" not in json.dumps(record)

    tune.tune(
        tune.build_parser().parse_args(["--model", "ease", "--trials", "1", "--out", str(tmp_path), "--allow-busy"])
    )
    again = json.loads(path.read_text())
    assert again["trials"][:2] == record["trials"] and len(again["trials"]) == 3
    assert isinstance(again["trials"][2]["machine_quiet"], bool) and "quiet" in again["machine"]
    assert not (tmp_path / "ease_ml-100k.json.partial").exists()


def test_space_options_are_checked(tune):
    assert tune.parse_space("lightgcn", ["objective=bpr,full_softmax"])["objective"] == (
        "categorical",
        ["bpr", "full_softmax"],
    )
    assert tune.parse_space("x", ["dim=32,64"]) == {"dim": ("categorical", [32, 64])}
    with pytest.raises(SystemExit, match="expected KEY=V1,V2"):
        tune.parse_space("two_tower", ["temperature"])
    with pytest.raises(SystemExit, match="no search space for 'x'"):
        tune.parse_space("x", [])
    assert tune.split_overrides({"learning_rate": 0.01, "dim": 8}) == {"learning_rate": 0.01, "hparams": {"dim": 8}}
