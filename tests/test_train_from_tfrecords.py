"""``tfrecs train --tfrecords DIR`` trains from what the pipelines/ scripts wrote.

Each script -> model pair runs the script (in this process, a subset of rows so the count
proves the records were read), then ``tfrecs.cli.main(["train", ...])``; the training data
set handed to ``tfrecs.training.fit`` is counted. Mismatches (another script, a missing
feature, another seed) and incomplete outputs are ``InputError``s naming the directory.
"""

import importlib.util
import json
import os
import shutil
import signal

import numpy as np
import pytest

from tfrecs import cli, training
from tfrecs.core.errors import InputError
from tfrecs.data import from_files, make_split
from tfrecs.pipelines import epoch_key, load_schema, script_utils
from tfrecs.pipelines.ctr_view import load_ctr_data
from tfrecs.pipelines.tfrecord_training import RunSource, ctr_batches
from tfrecs.recipes import TrainConfig, train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_CTR = ("--set", "embedding_dim=4", "--set", "hidden_units=16")


def _script_module(name):
    spec = importlib.util.spec_from_file_location(f"pipeline_{name}", os.path.join(REPO, "pipelines", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def script(capsys):
    """Runs a pipelines/ script in this process; returns its final JSON line."""
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGXFSZ)}

    def run(name, *args):
        try:
            script_utils.run(_script_module(name).main, [str(a) for a in args])
        except SystemExit as stop:
            pytest.fail(f"{name} exited {stop.code}: {capsys.readouterr().err[-2000:]}")
        return json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    yield run
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


@pytest.fixture
def consumed(monkeypatch):
    """Counts the examples of one pass over the training data set each ``fit`` is given."""
    counts = []
    fit = training.fit

    def counting_fit(model, train_ds, *args, **kwargs):
        counts.append(sum(int(next(iter(batch.values())).shape[0]) for batch in train_ds))
        return fit(model, train_ds, *args, **kwargs)

    monkeypatch.setattr(training, "fit", counting_fit)
    return counts


def _train(capsys, *args):
    """``tfrecs train ...`` in this process; returns its figures (the JSON line)."""
    status = cli.main(["train", "--verbose", "0", *map(str, args)])
    captured = capsys.readouterr()
    assert status == 0, captured.err[-2000:]
    assert "training batches from" in captured.err  # the recipe says where its batches come from
    return json.loads(captured.out.strip().splitlines()[-1])


def test_build_tfrecords_feeds_deepfm(tmp_path, script, consumed, capsys):
    out = tmp_path / "ctr"
    written = script(
        "build_tfrecords", "--dataset", "ml-100k", "--split", "random-global", "--fit-spec",
        "--max-rows", "3000", "--shards", "2", "--output", out,
    )  # fmt: skip
    assert written["train_records"] == 3000
    figures = _train(capsys, "--model", "deepfm", "--tfrecords", out, "--epochs", "1", *TINY_CTR)
    assert consumed == [3000]  # the 3,000 records written, not the split's 80,000 training rows
    assert figures["split"] == "test" and figures["protocol"] == "ctr-random-global" and figures["epochs"] == 1
    assert 0.5 < figures["auc"] <= 1 and 0 < figures["logloss"] < 1


def test_sample_negatives_feeds_neumf(tmp_path, script, consumed, capsys):
    out = tmp_path / "neg"
    written = script(
        "sample_negatives", "--dataset", "ml-100k", "--split", "random", "--negatives", "4",
        "--max-positives", "1000", "--shards", "2", "--output", out,
    )  # fmt: skip
    assert written["train_records"] == 5000  # each positive and its 4 negatives
    figures = _train(
        capsys, "--model", "neumf", "--tfrecords", out, "--epochs", "1", "--set", "gmf_dim=4", "--set", "mlp_units=8,4"
    )
    assert consumed == [5000]
    assert figures["split"] == "test" and figures["protocol"] == "random-full" and figures["num_users"] == 943
    assert 0 <= figures["ndcg@10"] <= figures["hr@10"] <= 1


def test_window_sequences_feeds_sasrec(tmp_path, script, consumed, capsys):
    out = tmp_path / "seq"
    written = script(
        "window_sequences", "--dataset", "ml-100k", "--max-len", "20", "--max-windows", "300", "--shards", "2",
        "--output", out,
    )  # fmt: skip
    assert written["train_records"] == 300
    figures = _train(
        capsys, "--model", "sasrec", "--tfrecords", out, "--epochs", "1", "--set", "max_len=20", "--set", "dim=16"
    )
    assert consumed == [300]
    assert figures["split"] == "test" and figures["protocol"] == "loo-full" and figures["objective"] == "ce"
    assert 0 <= figures["ndcg@10"] <= figures["hr@10"] <= 1


def _ratings_csv(path, users=50, per_user=14, items=36):
    rng = np.random.default_rng(1)
    lines = ["person,film,stars,when,age"]
    for user in range(users):
        for step, item in enumerate(rng.choice(items, per_user, replace=False)):
            lines.append(f"p{user},f{item},{rng.integers(1, 6)},{1000 + step},{20 + user % 9}")
    path.write_text("\n".join(lines) + "\n")
    return path


OWN = ("--user-col", "person", "--item-col", "film", "--rating-col", "stars", "--timestamp-col", "when")


@pytest.fixture
def own(tmp_path):
    """A small ratings file and the ``TrainConfig.data`` of it (what ``tfrecs train --data`` gives)."""
    path = _ratings_csv(tmp_path / "ratings.csv")
    return path, {"path": str(path), "user": "person", "item": "film", "rating": "stars", "timestamp": "when"}


def test_own_data_records_give_the_views_batches_epoch_by_epoch(tmp_path, script, own, capsys):
    path, data = own
    out = tmp_path / "rows"
    script("build_tfrecords", "--data", path, *OWN, "--split", "random-global", "--shards", "3", "--output", out)
    view = load_ctr_data(make_split(from_files(**data), "random-global", seed=2020))
    records = ctr_batches(str(out), view, "deepfm", 64, RunSource("ratings", 2020, data))
    expected = view.dataset("train", 64, shuffle=True, seed=2020)
    for epoch in (0, 3):  # what tfrecs.training.fit pins: a resumed run reads the same epochs
        for batches in (records, expected):
            epoch_key(batches).pin(epoch)
        pairs = list(zip(records, expected))
        assert len(pairs) == -(-len(view.columns["train"]["label"]) // 64)
        for got, want in pairs:
            assert sorted(got) == sorted(want)
            for name in want:
                assert got[name].dtype == want[name].dtype
                np.testing.assert_array_equal(got[name].numpy(), want[name].numpy())
    first = next(iter(records))["user_id"].numpy()
    epoch_key(records).pin(1)
    assert not np.array_equal(first, next(iter(records))["user_id"].numpy())  # each epoch its own order

    figures = _train(capsys, "--model", "deepfm", "--data", path, *OWN, "--tfrecords", out, "--epochs", "1", *TINY_CTR)
    assert figures["dataset"] == "ratings" and 0 <= figures["auc"] <= 1


def _refusal(model, directory, data=None, seed=2020, **hparams):
    """The message of the ``InputError`` a run with ``--tfrecords directory`` stops with."""
    dataset = "ratings" if data else "ml-100k"
    config = TrainConfig(model=model, dataset=dataset, data=data, seed=seed, tfrecords=str(directory), hparams=hparams)
    with pytest.raises(InputError) as error:
        train(config)
    return str(error.value)


def test_mismatches_name_the_directory_the_feature_and_the_fix(tmp_path, script, own):
    path, data = own
    rows, neg, bpr = tmp_path / "rows", tmp_path / "neg", tmp_path / "bpr"
    script("build_tfrecords", "--data", path, *OWN, "--split", "random-global", "--shards", "1", "--output", rows)
    sampled = ("--data", path, *OWN, "--split", "random", "--negatives", "1", "--shards", "1")
    script("sample_negatives", *sampled, "--output", neg)
    script("sample_negatives", *sampled, "--output-format", "pairwise", "--output", bpr)

    message = _refusal("deepfm", neg, data)  # another script
    assert message.startswith(f"{neg} was written by sample_negatives.py (pointwise); deepfm reads build_tfrecords.py")
    message = _refusal("neumf", bpr, data)  # the wrong layout
    assert message.startswith(f"{bpr} was written with --output-format pairwise; neumf here needs --output-format "
                              "pointwise")  # fmt: skip
    assert "python pipelines/sample_negatives.py --data" in message and "--output-format pointwise" in message
    message = _refusal("din", rows, data)  # a missing feature
    assert message.startswith(f"{rows}/train lacks the feature(s) ['history'] that din reads")
    assert "--history-length 50" in message
    message = _refusal("deepfm", rows, data, seed=7)  # another split
    assert message.startswith(f"{rows} was written with --seed 2020; deepfm here needs --seed 7")
    other = dict(data, user_features=("age",))  # read with other columns
    assert "user_features=['age']" in _refusal("deepfm", rows, other)
    message = _refusal("deepfm", rows)  # ml-100k, not the records' file
    assert "--dataset ml-100k, a named data set (no --data)" in message
    message = _refusal("sasrec", rows, data)
    assert f"{rows} was written by build_tfrecords.py (random-global); sasrec reads window_sequences.py" in message
    message = _refusal("lightgcn", bpr, data, objective="softmax")
    assert "trains on positives only" in message and "--set objective=bpr" in message


def test_an_incomplete_output_is_refused_never_read(tmp_path, script, own):
    path, data = own
    whole = tmp_path / "whole"
    script("build_tfrecords", "--data", path, *OWN, "--split", "random-global", "--shards", "2", "--output", whole)

    killed = tmp_path / "killed"  # a killed script leaves only its hidden staging directory
    staging = tmp_path / ".killed.partial-999999-0badcafe"
    shutil.copytree(whole, staging)
    os.remove(staging / "test" / "schema.json")
    message = _refusal("deepfm", killed, data)
    assert message.startswith(f"{killed}: no complete output, only {staging}") and "did not finish" in message

    no_schema = tmp_path / "no_schema"
    shutil.copytree(whole, no_schema)
    os.remove(no_schema / "train" / "schema.json")
    message = _refusal("deepfm", no_schema, data)
    assert message.startswith(f"{no_schema}/train: no schema.json") and "incomplete output" in message

    no_shard = tmp_path / "no_shard"
    shutil.copytree(whole, no_shard)
    shard = load_schema(str(no_shard / "train")).shards[1].file
    os.remove(no_shard / "train" / shard)
    message = _refusal("deepfm", no_shard, data)
    assert message.startswith(f"{no_shard}/train is incomplete or damaged: {no_shard}/train/{shard}: shard is missing")

    truncated = tmp_path / "truncated"
    shutil.copytree(whole, truncated)
    with open(truncated / "train" / shard, "r+b") as handle:
        handle.truncate(100)
    assert "shard is 100 bytes, the schema records" in _refusal("deepfm", truncated, data)

    unsplit = tmp_path / "unsplit"
    script("build_tfrecords", "--data", path, *OWN, "--shards", "1", "--output", unsplit)
    assert "written without --split" in _refusal("deepfm", unsplit, data)
    assert "is the train/ part itself" in _refusal("deepfm", whole / "train", data)
    assert _refusal("deepfm", tmp_path / "nowhere", data).startswith(f"{tmp_path / 'nowhere'}: no such directory")
