"""Whether the machine was quiet while a benchmark measured, and the gate before its results are written.

A :class:`Watch` samples the 1-minute load average (``os.getloadavg``) when it starts, every
second while it runs (background thread) and when it stops, together with this process' own
share of that load. :func:`record_or_exit` is the one call every script makes before writing
``benchmarks/results/*``: it returns the ``machine`` record to store with the results, or,
when the machine was busy, writes nothing and exits with a one-line message naming the load
figures and the threshold (unless ``--allow-busy``; then the record says ``"quiet": false``
and :func:`warning_lines` gives the markdown a visible warning).

Rule (``RULE``): the run is quiet when, at every sample, the 1-minute load average minus this
process' own share of it stays below ``THRESHOLD_PER_CPU`` (0.5) x the CPUs this process may
use (``os.sched_getaffinity``). The raw load cannot be judged at the end: a benchmark's own
threads put it near the CPU count by themselves. The own share is this process' runnable
(and uninterruptible) threads, counted from ``/proc/self/task`` at each sample and averaged
with the kernel's 1-minute decay, i.e. what this process adds to the figure the kernel
reports; without ``/proc`` it is the process' CPU time per wall second (``time.process_time``)
instead. Before the watch starts (imports, data loading) the share is estimated from the CPU
time the process used since it started. Threads of this process that wait for a CPU count as
its own, so others are never blamed for them; others' threads that wait count against the run.

Example::

    import machine  # benchmarks/machine.py, next to the scripts

    parser = argparse.ArgumentParser()
    machine.add_argument(parser)  # --allow-busy
    args = parser.parse_args()
    with machine.Watch() as watch:
        machine.record_or_exit(watch, args.allow_busy)  # refuse at once if already busy
        figures = measure()
    figures["machine"] = machine.record_or_exit(watch, args.allow_busy)
    write(figures)  # markdown: title, *machine.warning_lines(figures["machine"]), ...
"""

import argparse
import dataclasses
import datetime
import math
import os
import platform
import threading
import time
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from tfrecs.core.versions import package_versions

THRESHOLD_PER_CPU = 0.5
DECAY_SECONDS = 60.0  # the kernel's 1-minute load average: exponential decay with a 60 s time constant
RULE = (
    f"quiet = at every sample (start, each second, end) the 1-minute load average minus this process' own "
    f"runnable threads (averaged like the kernel's 1-minute load) is below {THRESHOLD_PER_CPU} x CPUs"
)


def cpu_count() -> int:
    """CPUs this process may run on (its affinity mask), else ``os.cpu_count()``."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclasses.dataclass(frozen=True)
class Sample:
    """One look at the machine: ``seconds`` since the watch started, ``load`` = ``os.getloadavg()``
    (1, 5, 15 minutes), ``own`` = this process' estimated share of the 1-minute figure."""

    seconds: float
    load: Tuple[float, float, float]
    own: float

    @property
    def others(self) -> float:
        """The 1-minute load of everything but this process."""
        return max(0.0, self.load[0] - self.own)


def verdict(samples: Sequence[Sample], threshold: float) -> bool:
    """True (quiet) when every sample's load of other processes is below ``threshold``."""
    if not samples:
        raise ValueError("no load samples: the watch never started")
    return all(sample.others < threshold for sample in samples)


def own_runnable(exclude: Optional[int] = None) -> Optional[int]:
    """Threads of this process that count in the load now (state R or D), ``exclude`` (a native
    thread id, the sampler's) left out; None without ``/proc``."""
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return None
    count = 0
    for tid in tids:
        if exclude is not None and tid == str(exclude):
            continue
        try:
            with open(f"/proc/self/task/{tid}/stat") as handle:
                state = handle.read().rpartition(")")[2].split()[0]
        except (OSError, IndexError):  # the thread ended meanwhile
            continue
        count += state in ("R", "D")
    return count


def own_history() -> float:
    """This process' share of the 1-minute load when a watch starts: its CPU time per wall second
    since it started, decayed like the load average (0.0, the cautious guess, without ``/proc``)."""
    try:
        with open("/proc/self/stat") as handle:
            started_ticks = float(handle.read().rpartition(")")[2].split()[19])
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
        age = uptime - started_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0
    if age <= 0:
        return 0.0
    return time.process_time() / age * (1.0 - math.exp(-age / DECAY_SECONDS))


class Watch:
    """Samples the machine's load from ``start()`` (or ``with``) to ``stop()``; see the module doc."""

    def __init__(self, threshold_per_cpu: float = THRESHOLD_PER_CPU, interval: float = 1.0):
        self.cpus = cpu_count()
        self.threshold_per_cpu = threshold_per_cpu
        self.threshold = round(threshold_per_cpu * self.cpus, 3)
        self.interval = interval
        self.samples: List[Sample] = []
        self.own_method = "runnable threads"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._sampler_tid: Optional[int] = None

    def __enter__(self) -> "Watch":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "Watch":
        self.date = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        self._started = self._last_time = time.monotonic()
        self._last_cpu = time.process_time()
        self._own = own_history()
        self.samples = [Sample(0.0, tuple(os.getloadavg()), self._own)]
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="machine-watch", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        self._sampler_tid = threading.get_native_id()
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> Sample:
        """Takes one sample now (the background thread calls this every ``interval`` seconds)."""
        with self._lock:
            now, cpu = time.monotonic(), time.process_time()
            elapsed = now - self._last_time
            if elapsed <= 0:
                return self.samples[-1]
            running = own_runnable(exclude=self._sampler_tid)
            if running is None:
                self.own_method = "cpu time"
                running = (cpu - self._last_cpu) / elapsed
            keep = math.exp(-elapsed / DECAY_SECONDS)
            self._own = self._own * keep + running * (1.0 - keep)
            self._last_time, self._last_cpu = now, cpu
            sample = Sample(round(now - self._started, 3), tuple(os.getloadavg()), self._own)
            self.samples.append(sample)
            return sample

    def stop(self) -> None:
        """Stops the sampler and takes the end sample (again: no-op)."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        self.sample()

    def record(self) -> Dict[str, object]:
        """The ``machine`` record of the run so far (a running watch takes a sample now as the end)."""
        if not self.samples:
            raise RuntimeError("Watch.record() before Watch.start()")
        if self.running:
            self.sample()
        with self._lock:
            samples = list(self.samples)
        first, last = samples[0], samples[-1]
        return {
            "quiet": verdict(samples, self.threshold),
            "cpus": self.cpus,
            "threshold": self.threshold,
            "threshold_per_cpu": self.threshold_per_cpu,
            "load_start": [round(x, 2) for x in first.load],
            "load_end": [round(x, 2) for x in last.load],
            "load_max": round(max(s.load[0] for s in samples), 2),
            "others_load_start": round(first.others, 2),
            "others_load_end": round(last.others, 2),
            "others_load_max": round(max(s.others for s in samples), 2),
            "own_share_method": self.own_method,
            "samples": len(samples),
            "seconds": round(last.seconds, 1),
            "rule": RULE,
            "date": self.date,
            "platform": platform.platform(),
            "versions": package_versions(),
        }


def add_argument(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds ``--allow-busy`` to a benchmark's parser."""
    parser.add_argument(
        "--allow-busy",
        action="store_true",
        help='write results even when the machine was busy (marked "quiet": false, with a warning line)',
    )
    return parser


def busy_message(record: Dict[str, object]) -> str:
    """One line: why the results of a busy run are not written, with the load figures."""
    return (
        f"machine busy, benchmark results not written: load of other processes (1-minute load average minus "
        f"this run's own threads) {record['others_load_start']} at start, {record['others_load_max']} at most, "
        f"{record['others_load_end']} at the end (raw 1-minute load {record['load_start'][0]} / "
        f"{record['load_max']} / {record['load_end'][0]}), threshold {record['threshold']} "
        f"({record['threshold_per_cpu']} x {record['cpus']} CPUs); rerun when the machine is quiet, "
        "or pass --allow-busy to write them marked busy"
    )


def record_or_exit(watch: Watch, allow_busy: bool) -> Dict[str, object]:
    """The gate before results are written: the ``machine`` record to store with them; on a busy
    machine, without ``allow_busy``, writes nothing and exits (status 1) with :func:`busy_message`."""
    record = watch.record()
    if not record["quiet"] and not allow_busy:
        raise SystemExit(busy_message(record))
    return record


def describe(record: Dict[str, object]) -> str:
    """The record in one markdown-friendly sentence (older records without a verdict: as they are)."""
    if "quiet" not in record:
        return str(record)
    versions = record.get("versions", {})
    return (
        f"{record['cpus']} CPUs, 1-minute load {record['load_start'][0]} at start, {record['load_max']} at most, "
        f"{record['load_end'][0]} at the end; other processes' share at most {record['others_load_max']} "
        f"(threshold {record['threshold']}): {'quiet' if record['quiet'] else 'BUSY'}; {record['date']}, "
        f"Python {versions.get('python', '?')}, TensorFlow {versions.get('tensorflow', '?')}"
    )


def warning_lines(record: Dict[str, object], busy_rows: Iterable[str] = ()) -> List[str]:
    """Markdown lines (warning + blank line) when the run, or rows kept from an earlier run, were
    measured on a busy machine; ``[]`` otherwise."""
    busy_rows = list(busy_rows)
    if record.get("quiet") is False:
        text = (
            f"**Warning: measured on a busy machine** (other processes' 1-minute load reached "
            f"{record['others_load_max']}, threshold {record['threshold']}; written with --allow-busy): "
            "speeds and times here are not comparable with quiet runs."
        )
    elif busy_rows:
        text = f"**Warning: rows measured on a busy machine (written with --allow-busy): {', '.join(busy_rows)}.**"
    else:
        return []
    return [f"> {text}", ""]
