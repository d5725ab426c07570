"""benchmarks/machine.py: the quiet / busy verdict, the gate before results are written, and
``--allow-busy`` on every benchmark script (no benchmark is run; load samples are faked)."""

import importlib
import importlib.util
import json
import math
import pathlib
import time

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(path for path in BENCHMARKS.glob("*.py") if path.name not in ("machine.py", "readme_tables.py"))


@pytest.fixture(scope="module")
def machine():
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))
        yield importlib.import_module("machine")


@pytest.fixture(scope="module")
def scripts(machine):
    """Every benchmark script imported as a module (TensorFlow is already loaded by conftest)."""
    loaded = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCHMARKS))
        for path in SCRIPTS:
            spec = importlib.util.spec_from_file_location(f"benchmark_{path.stem}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            loaded[path.stem] = module
    return loaded


class FakeClock:
    """Stands in for the ``time`` module inside machine.py: wall and CPU seconds set by the test."""

    def __init__(self):
        self.now = 0.0
        self.cpu = 0.0

    def monotonic(self):
        return self.now

    def process_time(self):
        return self.cpu


def watched(machine, monkeypatch, loads, own=2.0, step=60.0, cpu_per_second=None):
    """A stopped Watch on 2 CPUs whose samples saw the 1-minute ``loads`` ``step`` seconds apart
    (first = start, last = end), this process keeping ``own`` threads runnable (``None``: no /proc)."""
    clock = FakeClock()
    monkeypatch.setattr(machine, "time", clock)
    monkeypatch.setattr(machine, "cpu_count", lambda: 2)
    monkeypatch.setattr(machine, "own_history", lambda: 0.0)
    monkeypatch.setattr(machine, "own_runnable", lambda exclude=None: own)
    pending = list(loads)
    monkeypatch.setattr(machine.os, "getloadavg", lambda: (pending.pop(0), 0.5, 0.5))
    watch = machine.Watch(interval=3600).start()  # the background thread never wakes: samples by hand
    for index in range(len(loads) - 1):
        clock.now += step
        clock.cpu += step * (cpu_per_second or 0.0)
        if index == len(loads) - 2:
            watch.stop()  # takes the end sample
        else:
            watch.sample()
    assert not pending
    return watch


def test_verdict_judges_every_sample_by_the_load_of_other_processes(machine):
    def sample(load, own):
        return machine.Sample(0.0, (load, 0.0, 0.0), own)

    # Raw load far above the threshold, all of it this process' own threads: quiet.
    assert machine.verdict([sample(0.4, 0.0), sample(2.3, 2.0), sample(2.5, 2.0)], threshold=1.0)
    assert not machine.verdict([sample(1.2, 0.1), sample(2.3, 2.0)], threshold=1.0)  # busy at the start
    assert not machine.verdict([sample(0.4, 0.0), sample(3.5, 2.0), sample(2.1, 2.0)], threshold=1.0)  # mid-run
    assert not machine.verdict([sample(0.4, 0.0), sample(3.0, 2.0)], threshold=1.0)  # at the threshold is busy
    assert sample(0.5, 2.0).others == 0.0  # never negative
    with pytest.raises(ValueError):
        machine.verdict([], threshold=1.0)


def test_watch_subtracts_its_own_threads_averaged_like_the_kernel(machine, monkeypatch):
    watch = watched(machine, monkeypatch, [0.3, 1.9, 2.4])
    own_after_one_minute = 2.0 * (1 - math.exp(-1))
    own_after_two = own_after_one_minute * math.exp(-1) + own_after_one_minute
    assert [s.own for s in watch.samples] == pytest.approx([0.0, own_after_one_minute, own_after_two])
    record = watch.record()
    assert record["quiet"] is True
    assert record["cpus"] == 2 and record["threshold"] == 1.0 and record["threshold_per_cpu"] == 0.5
    assert record["load_start"] == [0.3, 0.5, 0.5] and record["load_end"] == [2.4, 0.5, 0.5]
    assert record["load_max"] == 2.4  # above the threshold, but it is this run's own load
    assert record["others_load_max"] == round(2.4 - own_after_two, 2)
    assert record["samples"] == 3 and record["own_share_method"] == "runnable threads"
    assert {"date", "platform", "rule"} <= set(record)
    assert {"python", "tensorflow"} <= set(record["versions"])


@pytest.mark.parametrize("loads", [[1.2, 1.9, 2.4], [0.3, 3.5, 2.4], [0.3, 1.9, 3.2]], ids=["start", "mid", "end"])
def test_watch_is_busy_when_others_load_crosses_the_threshold(machine, monkeypatch, loads):
    assert watched(machine, monkeypatch, loads).record()["quiet"] is False


def test_without_proc_the_own_share_is_cpu_time_per_wall_second(machine, monkeypatch):
    watch = watched(machine, monkeypatch, [0.2, 1.6, 1.6], own=None, cpu_per_second=1.5)
    assert watch.samples[-1].own == pytest.approx(1.5 * (1 - math.exp(-2)))
    record = watch.record()
    assert record["own_share_method"] == "cpu time"
    assert record["quiet"] is True


def test_background_sampler_catches_a_spike_between_start_and_end(machine, monkeypatch):
    calls = []

    def loadavg():
        calls.append(None)
        return (5.0 if 2 <= len(calls) <= 3 else 0.2, 0.2, 0.2)

    monkeypatch.setattr(machine.os, "getloadavg", loadavg)
    monkeypatch.setattr(machine, "own_runnable", lambda exclude=None: 0)
    with machine.Watch(interval=0.01) as watch:
        deadline = time.monotonic() + 10
        while len(watch.samples) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
    record = watch.record()
    assert record["samples"] >= 5
    assert record["load_start"][0] == 0.2 and record["load_end"][0] == 0.2
    assert record["load_max"] == 5.0 and record["quiet"] is False


def write_figures(machine, watch, allow_busy, directory):
    """What every script does: the gate, then the results files."""
    record = machine.record_or_exit(watch, allow_busy)
    (directory / "bench.json").write_text(json.dumps({"figure": 1.0, "machine": record}))
    (directory / "bench.md").write_text("\n".join(["# bench", "", *machine.warning_lines(record), "figure 1.0"]))


def test_gate_refuses_on_a_busy_machine_and_names_the_figures(machine, monkeypatch, tmp_path):
    watch = watched(machine, monkeypatch, [0.3, 3.5, 2.4])
    with pytest.raises(SystemExit) as exit_info:
        write_figures(machine, watch, allow_busy=False, directory=tmp_path)
    assert list(tmp_path.iterdir()) == []
    message = str(exit_info.value.code)
    record = watch.record()
    assert "\n" not in message and message.startswith("machine busy")
    for figure in ("0.3", str(record["others_load_max"]), "3.5", "2.4", "threshold 1.0", "2 CPUs", "--allow-busy"):
        assert figure in message


def test_gate_writes_busy_results_marked_under_allow_busy(machine, monkeypatch, tmp_path):
    watch = watched(machine, monkeypatch, [0.3, 3.5, 2.4])
    write_figures(machine, watch, allow_busy=True, directory=tmp_path)
    stored = json.loads((tmp_path / "bench.json").read_text())
    assert stored["machine"]["quiet"] is False and stored["machine"]["load_max"] == 3.5
    markdown = (tmp_path / "bench.md").read_text()
    assert "**Warning: measured on a busy machine**" in markdown


def test_gate_writes_quiet_results_without_a_warning(machine, monkeypatch, tmp_path):
    watch = watched(machine, monkeypatch, [0.3, 1.9, 2.4])
    write_figures(machine, watch, allow_busy=False, directory=tmp_path)
    assert json.loads((tmp_path / "bench.json").read_text())["machine"]["quiet"] is True
    assert "Warning" not in (tmp_path / "bench.md").read_text()


def test_warning_names_busy_rows_kept_from_an_earlier_run(machine, monkeypatch):
    quiet = watched(machine, monkeypatch, [0.3, 1.9, 2.4]).record()
    assert machine.warning_lines(quiet) == []
    (line, blank) = machine.warning_lines(quiet, ["din", "mmoe"])
    assert "busy" in line and "din, mmoe" in line and blank == ""
    assert machine.warning_lines({"cpus": 2, "load_average": [1, 1, 1]}) == []  # records older than the verdict
    assert "BUSY" in machine.describe({**quiet, "quiet": False})


def test_own_runnable_counts_this_thread_on_linux(machine):
    if not pathlib.Path("/proc/self/task").is_dir():
        pytest.skip("no /proc")
    assert machine.own_runnable() >= 1  # the calling thread is running
    assert machine.own_history() >= 0.0


def test_every_benchmark_script_is_covered():
    names = {path.stem for path in SCRIPTS}
    assert {"ann", "ctr_quality", "ctr_throughput", "evaluation_speed"} <= names
    assert {"pipeline_throughput", "retrieval_quality", "sequential_quality"} <= names


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda path: path.stem)
def test_script_accepts_allow_busy_and_leaves_the_load_to_machine(scripts, path):
    parser = scripts[path.stem].build_parser()
    assert parser.parse_args([]).allow_busy is False
    assert parser.parse_args(["--allow-busy"]).allow_busy is True
    source = path.read_text()
    assert "getloadavg" not in source  # no ad-hoc load records: benchmarks/machine.py owns them
    assert "machine.record_or_exit(watch, args.allow_busy)" in source


def test_script_markdown_carries_the_warning(scripts, machine, monkeypatch, tmp_path):
    busy = watched(machine, monkeypatch, [0.3, 3.5, 2.4]).record()
    warning = "**Warning: measured on a busy machine**"
    ann = {"num_candidates": 10, "dim": 2, "num_queries": 3, "k": 1, "batch_size": 1, "seed": 0, "runs": []}
    scripts["ann"].write_results(tmp_path, {**ann, "scann_recall@10": 1.0, "qps_ratio": 1.0, "machine": busy})
    assert warning in (tmp_path / "ann.md").read_text()
    assert json.loads((tmp_path / "ann.json").read_text())["machine"]["quiet"] is False
    ctr = {"command": "python benchmarks/ctr_quality.py", "machine": busy, "models": {}}
    assert warning in scripts["ctr_quality"].markdown(ctr)
    kept = {"deepfm": {"status": "ok", "auc": 0.8, "machine_quiet": False}}
    quiet = {**busy, "quiet": True}
    assert "deepfm" in scripts["ctr_quality"].markdown({**ctr, "machine": quiet, "models": kept}).split("\n")[2]
