"""A quiet, discoverable `tfrecs` command (issue 13, item 7; the CLI side of item 1).

* no line from TensorFlow's / absl's / ScaNN's C++ logging by default, `--log-level info` brings
  them back, Python's own stderr (tfrecs' one-line errors) is never filtered;
* `tfrecs --version`, and `tfrecs --help` listing models, data sets and protocols without
  importing TensorFlow;
* `--data FILE` with column options (or `--data-config`) on `data stats` and `evaluate`.
"""

import json
import os
import re
import subprocess
import sys
from importlib import metadata

import pytest

import tfrecs
from tfrecs import cli, logs
from tfrecs.cli import main

# A line from TensorFlow's C++ logging (2026-01-01 12:00:00.000: I tensorflow/...), an absl / glog
# line (I0000 00:00:17.5  123 file.cc:58] ...), or one of the start-up banners.
NOISE = re.compile(
    r"^\d{4}-\d\d-\d\d .*[IWEF] (tensorflow|external)/|^[IWEF]\d{4} |oneDNN|cuda|absl::InitializeLog|"
    r"rebuild TensorFlow|Local rendezvous|PredictCost|Skipping full serialization",
    re.IGNORECASE | re.MULTILINE,
)
TIMEOUT = 300


def _tfrecs_command():
    """The installed console script (the real entry point), else ``python -m tfrecs.cli``."""
    script = os.path.join(os.path.dirname(sys.executable), "tfrecs")
    return [script] if os.access(script, os.X_OK) else [sys.executable, "-m", "tfrecs.cli"]


def run_tfrecs(*argv, cwd=None):
    """Runs ``tfrecs argv`` in a fresh process with the user's default logging environment."""
    env = {
        key: value for key, value in os.environ.items() if key not in ("TF_CPP_MIN_LOG_LEVEL", "TF_CPP_MAX_VLOG_LEVEL")
    }
    return subprocess.run(
        [*_tfrecs_command(), *argv], capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=cwd
    )


def noise_lines(result):
    return [line for line in (result.stdout + result.stderr).splitlines() if NOISE.search(line)]


def write_ratings_csv(path):
    """30 users x 12 distinct items each, with ratings, timestamps and a per-user feature."""
    rows = ["user,movie,stars,ts,country"]
    for user in range(30):
        for step in range(12):
            item = (user * 7 + step * 3) % 40
            rows.append(
                f"u{user},m{item},{1 + (user + step) % 5},{1000 + user * 100 + step},{'fr' if user % 2 else 'de'}"
            )
    path.write_text("\n".join(rows) + "\n")
    return path


OWN_COLUMNS = ["--user-col", "user", "--item-col", "movie", "--rating-col", "stars", "--timestamp-col", "ts"]


# quiet by default --------------------------------------------------------------------------------


def test_data_stats_prints_no_tensorflow_line():
    result = run_tfrecs("data", "stats", "ml-100k")
    assert result.returncode == 0, result.stderr
    assert noise_lines(result) == [] and result.stderr == "", result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["num_interactions"] == 100000


def test_evaluate_prints_no_tensorflow_line_and_log_level_info_brings_them_back():
    quiet = run_tfrecs("evaluate", "--model", "pop", "--protocol", "random-full")
    assert quiet.returncode == 0, quiet.stderr
    assert noise_lines(quiet) == [] and quiet.stderr == "", quiet.stderr
    figures = json.loads(quiet.stdout.splitlines()[-1])
    assert figures["model"] == "pop" and 0 < figures["ndcg@10"] < 1

    loud = run_tfrecs("evaluate", "--model", "pop", "--protocol", "random-full", "--log-level", "info")
    assert loud.returncode == 0, loud.stderr
    assert noise_lines(loud), loud.stderr  # e.g. "I tensorflow/core/util/port.cc:153] oneDNN custom operations"
    assert json.loads(loud.stdout.splitlines()[-1]) == figures


def test_errors_stay_one_line_under_the_stderr_filter(tmp_path):
    result = run_tfrecs("evaluate", "--model", "pop", "--data", str(tmp_path / "missing.csv"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"tfrecs: error: --data {tmp_path / 'missing.csv'}: no such file"]


ABSL_INFO = b"I0000 00:00:1796185026.759408   23338 partitioner_factory_base.cc:58] Size of sampled dataset: 1682\n"
ABSL_WARNING = (
    b"W0000 00:00:1796185026.762683   23338 gmm_utils.cc:1026] Could not normalize centroid due to zero norm\n"
)
ABSL_ERROR = b"E1202 04:18:02.815437   23338 scann_ops.cc:51] a real ScaNN error\n"
ABSL_BANNER = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"


@pytest.mark.parametrize(
    "level, kept",
    [
        ("error", [ABSL_ERROR]),
        ("warning", [ABSL_WARNING, ABSL_ERROR]),
        ("info", [ABSL_BANNER, ABSL_INFO, ABSL_WARNING, ABSL_ERROR]),
    ],
)
def test_the_fd_filter_drops_absl_lines_below_the_level_and_passes_everything_else(level, kept):
    """ScaNN's and grappler's absl lines ignore TF_CPP_MIN_LOG_LEVEL: C-level writes to fd 2 are
    filtered by line; Python's sys.stderr (tfrecs' errors) bypasses the filter."""
    script = (
        "import os, sys\n"
        "from tfrecs import logs\n"
        f"logs.setup({level!r})\n"
        f"for line in {[ABSL_BANNER, ABSL_INFO, ABSL_WARNING, ABSL_ERROR]!r}:\n"
        "    os.write(2, line)\n"
        "os.write(2, b'a plain C line\\n')\n"
        "print('tfrecs: error: ours', file=sys.stderr)\n"
        "print('tensorflow' in sys.modules)\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"False\n"
    lines = result.stderr.splitlines(keepends=True)
    assert b"tfrecs: error: ours\n" in lines
    assert [line for line in lines if line != b"tfrecs: error: ours\n"] == kept + [b"a plain C line\n"]


def test_log_levels_map_onto_tensorflow_and_respect_the_users_setting(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    assert logs.effective_level(None) == "error"
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    assert logs.effective_level(None) == "info"
    assert logs.effective_level("warning") == "warning"
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        logs.effective_level("loud")
    assert logs.dropped_lines("info") is None and logs.dropped_lines("debug") is None


@pytest.mark.parametrize(
    "argv",
    [
        ["-v", "data", "stats", "ml-100k"],
        ["data", "stats", "ml-100k", "-v"],
        ["--log-level", "info", "data", "stats", "ml-100k"],
    ],
)
def test_v_and_log_level_work_before_or_after_the_command(argv):
    args = cli.build_parser().parse_args(argv)
    assert args.log_level == "info" and args.brief is False
    assert cli.build_parser().parse_args(["data", "stats", "x"]).log_level is None


def test_keras_progress_bars_in_a_terminal_one_line_per_epoch_otherwise(monkeypatch):
    parser = cli.build_parser()
    args = parser.parse_args(["train", "--model", "two_tower"])
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    assert cli.keras_verbose(args) == 1
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False, raising=False)
    assert cli.keras_verbose(args) == 2
    assert cli.keras_verbose(parser.parse_args(["train", "--model", "two_tower", "--brief"])) == 0
    assert cli.keras_verbose(parser.parse_args(["train", "--model", "two_tower", "--brief", "--verbose", "1"])) == 1


# discoverable ------------------------------------------------------------------------------------


def test_version_names_tfrecs_and_its_stack():
    result = run_tfrecs("--version")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"tfrecs {tfrecs.__version__}"
    shown = dict(line.split() for line in lines[1:])
    for package in ("tensorflow", "tf-keras", "tensorflow-recommenders", "scann"):
        assert shown[package] == metadata.version(package)
    assert shown["tensorflow"].startswith("2.20")


def test_help_lists_models_data_sets_and_protocols_without_importing_tensorflow():
    from tfrecs.data import DATASET_NAMES

    result = run_tfrecs("--help")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    text = " ".join(result.stdout.split())
    for name in (*cli.MODEL_NAMES, *DATASET_NAMES, *cli.PROTOCOL_NAMES, "--list-params", "--log-level", "--data"):
        assert name in text, name
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from tfrecs.cli import build_parser; build_parser().format_help(); "
            "print(sorted(m for m in ('tensorflow', 'tf_keras', 'scann') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.stdout.strip() == "[]", probe.stderr


def test_the_static_name_lists_of_help_match_the_registries():
    import tfrecs.models
    from tfrecs.evaluation.protocols import PROTOCOLS

    assert cli.MODEL_NAMES == tuple(tfrecs.models.names())
    assert cli.PROTOCOL_NAMES == tuple(PROTOCOLS)


# own data ----------------------------------------------------------------------------------------


def test_data_stats_on_a_csv_written_here(tmp_path):
    csv = write_ratings_csv(tmp_path / "ratings.csv")
    result = run_tfrecs(
        "data", "stats", "--data", str(csv), *OWN_COLUMNS, "--user-features", "country", "--split", "loo"
    )
    assert result.returncode == 0, result.stderr
    assert noise_lines(result) == []
    figures = json.loads(result.stdout.splitlines()[-1])
    assert figures["dataset"] == "ratings"  # the file's name
    assert (figures["num_users"], figures["num_items"], figures["num_interactions"]) == (30, 40, 360)
    assert figures["loo_test_interactions"] == 30 and figures["timestamp_min"] == 1000


def test_data_config_and_brief_output(tmp_path, capsys):
    write_ratings_csv(tmp_path / "ratings.csv")
    config = tmp_path / "data.json"
    config.write_text(json.dumps({"path": "ratings.csv", "user": "user", "item": "movie", "timestamp": "ts"}))
    assert main(["--brief", "data", "stats", "mine", "--data-config", str(config)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["mine: 30 users, 40 items, 360 interactions (density 30.00%)"]


def test_evaluate_on_own_data_names_it_after_the_file(tmp_path, capsys):
    csv = write_ratings_csv(tmp_path / "clicks.csv")
    assert main(["evaluate", "--model", "pop", "--protocol", "loo-full", "--data", str(csv), *OWN_COLUMNS]) == 0
    figures = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert figures["dataset"] == "clicks" and figures["split"] == "test" and 0 <= figures["hr@10"] <= 1


def test_own_data_options_build_the_from_files_keywords(tmp_path):
    csv = write_ratings_csv(tmp_path / "ratings.csv")
    args = cli.build_parser().parse_args(
        ["train", "--model", "deepfm", "--data", str(csv), *OWN_COLUMNS, "--user-features", "country", "--sep", ","]
    )
    assert cli.own_data(args) == {
        "path": str(csv),
        "user": "user",
        "item": "movie",
        "rating": "stars",
        "timestamp": "ts",
        "user_features": ("country",),
        "sep": ",",
    }
    assert cli.dataset_label(args, cli.own_data(args)) == "ratings"
    assert cli.own_data(cli.build_parser().parse_args(["train", "--model", "deepfm"])) is None


@pytest.mark.parametrize(
    "argv, message",
    [
        (["data", "stats", "--data", "{tmp}/nope.csv"], "--data {tmp}/nope.csv: no such file"),
        (["data", "stats", "--data", "{tmp}/ratings.csv", "--user-col", "usr"], "missing column(s) ['usr'"),
        (
            ["evaluate", "--model", "pop", "--data", "{tmp}/ratings.csv", "--user-col", "user", "--item-col", "film"],
            "'film'",
        ),
        (["data", "stats", "--data-config", "{tmp}/nope.json"], "data config not found"),
        (["data", "stats", "ml-100k", "--user-col", "user"], "--user-col describes a file given with --data"),
        (
            ["data", "stats", "--data", "{tmp}/ratings.csv", "--data-dir", "{tmp}"],
            "--data-dir locates a named data set",
        ),
        (["data", "stats"], "name a data set"),
    ],
)
def test_own_data_mistakes_are_one_line_exit_2(tmp_path, capsys, argv, message):
    write_ratings_csv(tmp_path / "ratings.csv")
    argv = [part.format(tmp=tmp_path) for part in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tfrecs: error:") and message.format(tmp=tmp_path) in err[0], err


def make_run_commands():
    """The commands of the Makefile's ``run`` target, as argument lists after ``tfrecs``."""
    makefile = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Makefile")
    lines = open(makefile, encoding="utf-8").read().split("\nrun:", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    commands = [line.strip().lstrip("@") for line in lines if line.startswith("\t")]
    assert commands and all(command.startswith("$(BIN)/tfrecs ") for command in commands), commands
    return [command.split()[1:] for command in commands]


def test_make_run_prints_a_few_readable_lines_and_no_tensorflow_line(tmp_path):
    # The README's main job, with one training epoch instead of up to 40 (the output's shape is the point).
    printed = []
    for argv in make_run_commands():
        if "export" in argv:
            argv = [*argv, "--epochs", "1", "--export-root", str(tmp_path / "saved_models")]
        result = run_tfrecs(*argv)
        assert result.returncode == 0, result.stderr[-2000:]
        assert noise_lines(result) == [], noise_lines(result)
        printed += (result.stdout + result.stderr).splitlines()
    assert len(printed) <= 25, printed
    top = [line for line in printed if re.match(r"^\s+\d+\. ", line)]
    assert len(top) == 10 and all("(item " in line for line in top), printed
    assert any(line.startswith("top recommendations for user 196") for line in printed), printed
