"""The scripts in pipelines/ run end to end (ML-100K, small synthetic data), end with one
JSON line, reproduce with a seed, and refuse bad arguments with exit status 2 and one line
naming the argument. (Kills and full disks: tests/test_faults.py.)"""

import filecmp
import importlib.util
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from tfrecs.pipelines import load_schema, read_tfrecords, script_utils

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = ("build_tfrecords", "sample_negatives", "window_sequences")


def run_script(name, *args, expect=0):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "pipelines", f"{name}.py"), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == expect, result.stderr[-2000:]
    return result


def figures(result):
    return json.loads(result.stdout.strip().splitlines()[-1])


OWN_DATA_OPTIONS = (
    "--data",
    "--data-config",
    "--user-col",
    "--item-col",
    "--timestamp-col",
    "--rating-col",
    "--label-col",
    "--user-features",
    "--item-features",
    "--list-features",
    "--format",
    "--sep",
    "--data-dir",
    "--cache-dir",
)


@pytest.mark.parametrize("name", SCRIPTS)
def test_help(name):
    out = run_script(name, "--help").stdout
    assert "--dataset" in out and "--output" in out and "--num-interactions" in out
    assert all(option in out for option in OWN_DATA_OPTIONS), out  # the command line's own data options


def _count(path):
    return sum(int(b["user_index"].shape[0]) for b in read_tfrecords(path, batch_size=8192, columns=["user_index"]))


def test_build_tfrecords_on_ml100k_loo(tmp_path):
    out = figures(
        run_script(
            "build_tfrecords",
            "--dataset",
            "ml-100k",
            "--split",
            "loo",
            "--fit-spec",
            "--shards",
            "2",
            "--output",
            tmp_path,
        )
    )
    assert (out["train_records"], out["valid_records"], out["test_records"]) == (98114, 943, 943)
    assert out["records"] == 100000 and out["shards"] == 6 and out["bytes"] > 0 and out["seconds"] > 0
    assert _count(str(tmp_path / "train")) == 98114
    spec = load_schema(str(tmp_path / "train")).feature_spec
    assert spec["occupation"].fitted and spec["genres"].kind == "sequence"


def test_sample_negatives_is_reproducible_and_excludes_positives(tmp_path):
    args = [
        "--dataset",
        "synthetic-implicit",
        "--num-interactions",
        "3000",
        "--num-items",
        "200",
        "--output-format",
        "pairwise",
        "--negatives",
        "2",
        "--shards",
        "2",
        "--seed",
        "5",
    ]
    first = figures(run_script("sample_negatives", *args, "--output", tmp_path / "a"))
    run_script("sample_negatives", *args, "--output", tmp_path / "b")
    assert first["records"] == 2 * first["positives"] == 6000
    for shard in load_schema(str(tmp_path / "a")).shards:
        assert filecmp.cmp(tmp_path / "a" / shard.file, tmp_path / "b" / shard.file, shallow=False)
    batch = next(iter(read_tfrecords(str(tmp_path / "a"), batch_size=6000)))
    users, negatives = batch["user_index"].numpy(), batch["negative_item_index"].numpy()
    positives = set(zip(users.tolist(), batch["item_index"].numpy().tolist()))
    assert not any((u, n) in positives for u, n in zip(users.tolist(), negatives.tolist()))


def test_window_sequences_on_ml100k_counts_every_training_target_once(tmp_path):
    out = figures(
        run_script(
            "window_sequences",
            "--dataset",
            "ml-100k",
            "--max-len",
            "50",
            "--negatives",
            "1",
            "--shards",
            "2",
            "--output",
            tmp_path,
        )
    )
    assert out["target_positions"] == 97171 and out["windows"] == out["train_records"] == 2412
    assert out["valid_records"] == out["test_records"] == 943
    batch = next(iter(read_tfrecords(str(tmp_path / "train"), batch_size=4096)))
    assert batch["inputs"].shape == (2412, 50) and batch["negatives"].shape == (2412, 50)
    assert float(np.sum(batch["target_mask"].numpy())) == 97171
    assert load_schema(str(tmp_path / "train")).metadata["mask_id"] == 1683


def test_bad_arguments_exit_2_with_a_message(tmp_path):
    result = run_script("window_sequences", "--dataset", "ml-100k", "--max-len", "1", "--output", tmp_path, expect=2)
    assert "--max-len must be >= 2" in result.stderr
    result = run_script(
        "build_tfrecords", "--dataset", "synthetic-ctr", "--split", "loo", "--output", tmp_path, expect=2
    )
    assert "--split" in result.stderr
    result = run_script(
        "sample_negatives",
        "--dataset",
        "synthetic-implicit",
        "--num-interactions",
        "100",
        "--num-items",
        "5",
        "--sampler",
        "uniform",
        "--negatives",
        "10",
        "--output",
        tmp_path,
        expect=2,
    )
    assert "cannot supply 10 negatives" in result.stderr
    run_script("window_sequences", "--dataset", "synthetic-ctr", "--output", tmp_path, expect=2)


def _script_module(name):
    spec = importlib.util.spec_from_file_location(f"pipeline_{name}", os.path.join(REPO, "pipelines", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def run_in_process(capsys):
    """Runs a script through ``script_utils.run`` here; returns (exit status, stderr)."""
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGXFSZ)}

    def run(name, *args):
        try:
            script_utils.run(_script_module(name).main, [str(a) for a in args])
            code = 0
        except SystemExit as stop:
            code = stop.code
        return code, capsys.readouterr().err

    yield run
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_option_has_help_text(name, monkeypatch):
    parsers = []
    make = script_utils.script_parser
    monkeypatch.setattr(script_utils, "script_parser", lambda *a, **k: parsers.append(make(*a, **k)) or parsers[-1])
    with pytest.raises(SystemExit):
        _script_module(name).main(["--help"])
    undocumented = [a.option_strings for a in parsers[0]._actions if a.option_strings and not a.help]
    assert not undocumented


SMALL = ("--dataset", "synthetic-implicit", "--num-interactions", "300", "--num-items", "50", "--shards", "1")


@pytest.mark.parametrize("name, extra", [("sample_negatives", ()), ("build_tfrecords", ("--split", "random"))])
def test_the_refusal_to_overwrite_names_the_flag(tmp_path, name, extra, run_in_process):
    output = tmp_path / "out"
    assert run_in_process(name, *SMALL, *extra, "--output", output)[0] == 0
    code, err = run_in_process(name, *SMALL, *extra, "--seed", "4", "--output", output)
    assert (
        code == 2
        and err.strip()
        == f"{os.path.basename(sys.argv[0])}: error: {output} already holds TFRecords "
        "(schema.json); pass --overwrite to replace them"
    )
    assert run_in_process(name, *SMALL, *extra, "--seed", "4", "--overwrite", "--output", output)[0] == 0
    assert load_schema(str(output / "train" if extra else output)).metadata["seed"] == 4
    assert sorted(os.listdir(tmp_path)) == ["out"]  # no staging directory left


@pytest.mark.parametrize(
    "argument, value, message",
    [
        ("--alpha", "-1", "--alpha must be a finite number >= 0, got -1.0"),
        ("--alpha", "nan", "--alpha must be a finite number >= 0, got nan"),
        ("--alpha", "inf", "--alpha must be a finite number >= 0, got inf"),
        ("--negatives", "0", "--negatives must be an integer >= 1, got 0"),
        ("--batch-size", "-5", "--batch-size must be an integer >= 1, got -5"),
        ("--shards", "0", "--shards must be an integer >= 1, got 0"),
    ],
)
def test_bad_sampler_arguments_are_one_line_naming_the_argument(tmp_path, argument, value, message, run_in_process):
    code, err = run_in_process("sample_negatives", *SMALL, argument, value, "--output", tmp_path / "out")
    assert code == 2 and err.strip().endswith(f"error: {message}") and len(err.strip().splitlines()) == 1
    assert os.listdir(tmp_path) == []  # nothing written


def test_any_known_dataset_and_data_dir_are_accepted(tmp_path, run_in_process):
    lines = [f"u{u} i{(u * 7 + t) % 40}" for u in range(30) for t in range(12)]
    (tmp_path / "mine.txt").write_text("\n".join(lines) + "\n")
    code, err = run_in_process(
        "window_sequences",
        "--dataset",
        "sequences",
        "--data-dir",
        tmp_path / "mine.txt",
        "--max-len",
        "5",
        "--shards",
        "1",
        "--output",
        tmp_path / "seq",
    )
    assert code == 0, err
    assert load_schema(str(tmp_path / "seq" / "test")).num_records == 30
    code, err = run_in_process(
        "build_tfrecords",
        "--dataset",
        "sequences",
        "--data-dir",
        tmp_path / "mine.txt",
        "--shards",
        "1",
        "--output",
        tmp_path / "rows",
    )
    assert code == 0 and load_schema(str(tmp_path / "rows")).num_records == 360, err
    code, err = run_in_process(
        "build_tfrecords", "--dataset", "ml-100k", "--data-dir", "/does/not/exist", "--output", tmp_path / "ml"
    )
    assert code == 2 and "/does/not/exist" in err and len(err.strip().splitlines()) == 1
    assert not os.path.exists(tmp_path / "ml")


def _ratings_csv(path, users=40, per_user=12, items=30):
    """A small ratings file with other column names than tfrecs' (and a user feature)."""
    rng = np.random.default_rng(0)
    lines = ["person;film;stars;when;age"]
    for user in range(users):
        for step, item in enumerate(rng.choice(items, per_user, replace=False)):
            lines.append(f"p{user};f{item};{rng.integers(1, 6)};{1000 + step};{20 + user % 7}")
    path.write_text("\n".join(lines) + "\n")
    return path


OWN = ("--user-col", "person", "--item-col", "film", "--rating-col", "stars", "--timestamp-col", "when", "--sep", ";")


def test_scripts_read_own_data_with_the_command_lines_options(tmp_path, run_in_process):
    ratings = _ratings_csv(tmp_path / "ratings.csv")
    code, err = run_in_process(
        "build_tfrecords", "--data", ratings, *OWN, "--user-features", "age", "--split", "random-global",
        "--shards", "1", "--output", tmp_path / "rows",
    )  # fmt: skip
    assert code == 0, err
    schema = load_schema(str(tmp_path / "rows" / "train"))
    assert schema.metadata["script"] == "build_tfrecords" and schema.metadata["dataset"] == "ratings"
    assert schema.metadata["data"] == {
        "path": str(ratings), "user": "person", "item": "film", "timestamp": "when", "rating": "stars",
        "user_features": ["age"], "sep": ";",
    }  # fmt: skip
    assert schema.metadata["part"] == "train" and schema.metadata["seed"] == 2020  # tfrecs train's default
    assert {"user_id", "item_id", "rating", "timestamp", "age"} <= {c.name for c in schema.columns}
    total = sum(load_schema(str(tmp_path / "rows" / part)).num_records for part in ("train", "valid", "test"))
    assert total == 40 * 12

    config = tmp_path / "data.json"
    config.write_text(json.dumps({"path": "ratings.csv", "user": "person", "item": "film", "sep": ";"}))
    code, err = run_in_process(
        "sample_negatives", "--data-config", config, "--dataset", "mine", "--split", "random", "--negatives", "2",
        "--shards", "1", "--output", tmp_path / "neg",
    )  # fmt: skip
    assert code == 0, err
    schema = load_schema(str(tmp_path / "neg" / "train"))  # --split: the training part, in train/
    assert schema.metadata["dataset"] == "mine" and schema.metadata["format"] == "pointwise"
    assert schema.metadata["data"]["path"] == str(ratings) and schema.num_records % 3 == 0

    code, err = run_in_process(
        "window_sequences", "--data", ratings, *OWN, "--max-len", "5", "--shards", "1", "--output", tmp_path / "seq"
    )
    assert code == 0, err
    assert load_schema(str(tmp_path / "seq" / "test")).num_records == 40
    assert load_schema(str(tmp_path / "seq" / "train")).metadata["max_len"] == 5


@pytest.mark.parametrize(
    "args, message",
    [
        (("--dataset", "ml-100k", "--format", "pairwise"), "the record layout is --output-format pairwise"),
        (("--output-format", "pairwise"), "--dataset NAME (ml-100k, "),
        (("--dataset", "ml-7m"), "--dataset ml-7m: not a data set here"),
        (("--dataset", "ml-100k", "--user-col", "u"), "--user-col describes a file given with --data"),
    ],
)
def test_bad_data_options_are_one_line(tmp_path, args, message, run_in_process):
    code, err = run_in_process("sample_negatives", *args, "--output", tmp_path / "out")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert os.listdir(tmp_path) == []
