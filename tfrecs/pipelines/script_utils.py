"""What the scripts in ``pipelines/`` share: arguments, data loading, progress bar, summary.

Each script builds its parser with ``script_parser`` (the data-source options are the
command line's own, ``tfrecs.cli.add_data_source_args``, handed in by the script: this
package sits below ``tfrecs.cli``), checks its numbers with ``check_positive`` /
``check_finite``, resolves a named data set or the user's own file with ``resolve_source``
(``tfrecs.cli.own_data``), loads it with ``load_source``, records what it read with
``source_metadata`` (what ``tfrecs train --tfrecords`` checks), writes with ``write_parts``
(atomically: a hidden staging directory renamed into place when every part is complete),
and ends with ``print_summary``: a human summary (records written, shards, bytes, time) and
one final JSON line of the same figures.

``run`` turns failures into one line on stderr: known errors (tfrecs errors, bad values,
unwritable paths) exit 2 with ``<script>: error: <message>``; SIGTERM or Ctrl-C remove the
partial output and exit 143 / 130 saying so. A file-size limit (``ulimit -f``) is reported
as a storage error instead of killing the process (SIGXFSZ is ignored).

Example::

    from tfrecs import cli

    parser = script_parser("Build TFRecords.", cli.add_data_source_args)
    args = parse_args(parser, argv)
    resolve_source(args, cli.own_data, cli.dataset_label)
    ds = load_source(args)
"""

import argparse
import json
import math
import os
import signal
import sys
import time
from typing import Any, Callable, Dict, Iterable, Iterator, Mapping, Optional, Sequence

from tfrecs.core.errors import InputError, TfrecsError
from tfrecs.data.registry import DATASET_NAMES, SYNTHETIC_NAMES

DATASETS = DATASET_NAMES
SYNTHETIC_INTERACTIONS_PER_USER = 30
OVERWRITE_FLAG = "--overwrite"
DEFAULT_SEED = 2020  # tfrecs train's: records to train from must share the run's split and seed


class Interrupted(BaseException):
    """SIGTERM arrived: unwinds like Ctrl-C so staging directories are removed on the way out."""


def script_parser(
    description: str, add_source_args: Callable[[argparse.ArgumentParser], None], datasets: Sequence[str] = DATASETS
) -> argparse.ArgumentParser:
    """A parser with the arguments every pipeline script takes (each with help text).

    Args:
        description: the script's one-line description.
        add_source_args: adds ``--data-dir`` / ``--cache-dir`` and the own-data options
            (``--data``, ``--data-config``, ``--user-col``, ...): the scripts pass
            ``tfrecs.cli.add_data_source_args``, so they take exactly what ``tfrecs train`` takes.
        datasets: the named data sets ``--dataset`` accepts (checked by ``resolve_source``).
    """
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument(
        "--dataset",
        metavar="NAME",
        help=f"data set to read, one of: {', '.join(datasets)}; with --data / --data-config: the name the "
        "records carry (default: the file's name, as tfrecs train names it)",
    )
    parser.add_argument(
        "--output", required=True, help="output directory; written atomically (renamed into place when complete)"
    )
    parser.add_argument(
        "--num-interactions",
        type=int,
        default=100_000,
        help="synthetic data sets: number of interactions (or CTR rows) to generate",
    )
    parser.add_argument("--num-items", type=int, default=2000, help="synthetic data sets: catalogue size")
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help="seed of generation, splitting and sampling (tfrecs train --tfrecords needs the run's --seed)",
    )
    parser.add_argument("--shards", type=int, default=8, help="TFRecord files per output directory")
    parser.add_argument("--compression", choices=("none", "gzip"), default="none", help="TFRecord compression")
    parser.add_argument(OVERWRITE_FLAG, action="store_true", help="replace a previous output in --output")
    add_source_args(parser)
    parser.set_defaults(known_datasets=tuple(datasets))
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parses the arguments and checks ``--output`` before any work is done.

    Raises:
        InputError: ``--output`` holds a previous output and ``--overwrite`` is not given,
            or it holds other files.
        StorageError: ``--output`` exists and is not a directory.
    """
    args = parser.parse_args(argv)  # before TensorFlow loads: --help stays instant
    from tfrecs.pipelines.tfrecord_writer import check_target

    check_positive(shards=args.shards)
    check_target(args.output, args.overwrite, OVERWRITE_FLAG)
    return args


def compression(args) -> Optional[str]:
    return None if args.compression == "none" else args.compression.upper()


def check_positive(**values: int) -> None:
    """Raises ``InputError`` naming the first argument that is not an integer >= 1."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"--{name.replace('_', '-')} must be an integer >= 1, got {value}")


def check_finite(minimum: float = 0.0, **values: float) -> None:
    """Raises ``InputError`` naming the first argument that is not a finite number >= ``minimum``."""
    for name, value in values.items():
        if not math.isfinite(value) or value < minimum:
            raise InputError(f"--{name.replace('_', '-')} must be a finite number >= {minimum:g}, got {value}")


def resolve_source(
    args: argparse.Namespace,
    own_data: Callable[[argparse.Namespace], Optional[Dict[str, Any]]],
    dataset_label: Callable[[argparse.Namespace, Optional[Dict[str, Any]]], str],
) -> None:
    """Sets ``args.source`` (the own data's ``from_files`` keywords, or None for a named data
    set) and ``args.dataset`` (the name the records carry), as ``tfrecs train`` does.

    Args:
        own_data, dataset_label: ``tfrecs.cli.own_data`` and ``tfrecs.cli.dataset_label``.

    Raises:
        InputError: neither ``--dataset`` nor ``--data`` / ``--data-config``, an unknown data
            set name, a column option without ``--data``, or ``--data-dir`` with it.
    """
    args.source = own_data(args)
    if args.source is None:
        known = args.known_datasets
        if args.dataset is None:
            raise InputError(f"--dataset NAME ({', '.join(known)}) or --data FILE is required")
        if args.dataset not in known:
            raise InputError(f"--dataset {args.dataset}: not a data set here; choose one of {', '.join(known)}")
    args.dataset = dataset_label(args, args.source)


def source_metadata(args: argparse.Namespace, script: str, **options: Any) -> Dict[str, Any]:
    """What ``schema.json`` records of a run: the script, the data it read (``tfrecs.pipelines.
    tfrecord_training.source_record``), the seed and the script's own ``options``; ``tfrecs
    train --tfrecords`` compares them with its run."""
    from tfrecs.pipelines.tfrecord_training import source_record

    return {"script": script, **source_record(args.dataset, args.source), "seed": args.seed, **options}


def load_source(args):
    """The ``RecDataset`` of ``--data`` (``tfrecs.data.from_files``) or ``--dataset`` (synthetic
    ones sized by ``--num-interactions``, any other name through ``tfrecs.data.load_dataset``
    with ``--data-dir``); ``resolve_source`` must have run."""
    from tfrecs.data import from_files, load_dataset, synthetic_implicit, synthetic_sequences

    if args.source is not None:
        return from_files(**args.source)
    check_positive(num_interactions=args.num_interactions, num_items=args.num_items)
    if args.dataset not in SYNTHETIC_NAMES:
        if args.dataset not in DATASET_NAMES:
            raise InputError(f"--dataset {args.dataset}: not an interaction data set here")
        return load_dataset(args.dataset, data_dir=args.data_dir, cache_dir=args.cache_dir, seed=args.seed)
    if args.data_dir:
        raise InputError(f"--data-dir {args.data_dir}: {args.dataset} is generated and reads no files; drop it")
    per_user = SYNTHETIC_INTERACTIONS_PER_USER
    num_users = max(1, -(-args.num_interactions // per_user))
    if args.dataset == "synthetic-implicit":
        return synthetic_implicit(
            num_users=num_users,
            num_items=args.num_items,
            interactions_per_user=min(per_user, args.num_items),
            seed=args.seed,
        )
    # lengths uniform in [10, 50]: 30 interactions per user on average
    return synthetic_sequences(num_users=num_users, num_items=args.num_items, seed=args.seed)


def first_rows(chunks: Iterable[Mapping[str, Any]], limit: Optional[int]) -> Iterator[Dict[str, Any]]:
    """The chunks (dicts of columns) cut after ``limit`` rows in all (None: every row).

    Example::

        list(first_rows([{"a": np.arange(3)}, {"a": np.arange(3)}], 4))  # chunks of 3 and 1 rows
    """
    left = limit
    for chunk in chunks:
        if left is not None and left <= 0:
            return
        rows = len(next(iter(chunk.values())))
        if left is not None and rows > left:
            chunk = {name: values[:left] for name, values in chunk.items()}
            rows = left
        if left is not None:
            left -= rows
        yield dict(chunk)


def progress_bar(total: Optional[int], description: str, unit: str = "rec"):
    """A tqdm bar on stderr (so stdout keeps the summary and the JSON line)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit=unit, unit_scale=True, file=sys.stderr, mininterval=0.5)


def human_bytes(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{count} B"
        count /= 1024
    return str(count)


def print_summary(title: str, figures: Dict[str, object], started: float) -> None:
    """Prints the summary lines, then one JSON line with every figure and ``seconds``."""
    figures = dict(figures)
    figures["seconds"] = round(time.perf_counter() - started, 2)
    if figures.get("records") and figures["seconds"] > 0:
        figures["records_per_second"] = round(figures["records"] / figures["seconds"], 1)
    print(title)
    for key, value in figures.items():
        if isinstance(value, (dict, list)):
            continue
        shown = human_bytes(value) if key.endswith("bytes") and isinstance(value, int) else value
        print(f"  {key:<28} {shown}")
    print(json.dumps(figures))


def write_parts(
    parts: Dict[str, Callable[[], Iterable]], output: str, totals: Dict[str, int], args, spec=None, metadata=None
) -> Dict[str, object]:
    """Writes each named part (a callable giving column chunks) under ``output/<part>`` (the
    part ``""``: ``output`` itself) with a progress bar; returns the summed figures (records,
    shards, bytes) and per-part records.

    The whole of ``output`` appears at once, when every part is complete (``staged_output``).
    A named part's ``schema.json`` metadata also records ``part`` (its name).

    Raises:
        InputError: ``output`` holds a previous output and ``--overwrite`` was not given.
        StorageError: ``output`` cannot be written (names the path; nothing is left behind).
    """
    from tfrecs.pipelines.tfrecord_writer import staged_output, write_tfrecords

    figures: Dict[str, object] = {"records": 0, "shards": 0, "bytes": 0}

    def write(name: str, directory: str, overwrite: bool) -> None:
        with progress_bar(totals.get(name), f"writing {name or 'records'}") as bar:
            schema = write_tfrecords(
                parts[name](),
                directory,
                spec=spec,
                num_shards=args.shards,
                compression=compression(args),
                overwrite=overwrite,
                progress=bar.update,
                metadata={**(metadata or {}), "part": name} if name else metadata,
                overwrite_flag=OVERWRITE_FLAG,
            )
        figures["records"] += schema.num_records
        figures["shards"] += len(schema.shards)
        figures["bytes"] += schema.num_bytes
        figures[f"{name or 'all'}_records"] = schema.num_records

    if list(parts) == [""]:
        write("", output, args.overwrite)
    else:
        with staged_output(output, args.overwrite, OVERWRITE_FLAG) as staging:
            for name in parts:
                write(name, os.path.join(staging, name), False)
    figures["output"] = output
    return figures


def _raise_interrupted(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def run(main: Callable[[Optional[Sequence[str]]], None], argv: Optional[Sequence[str]] = None) -> None:
    """Runs a script's ``main``; every failure ends in one line on stderr (module doc)."""
    from tfrecs.data import FeatureSpecError

    prog = os.path.basename(sys.argv[0]) or "pipelines"
    signal.signal(signal.SIGTERM, _raise_interrupted)
    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file-size limit becomes EFBIG, reported below
    try:
        main(argv)
    except (TfrecsError, ValueError, KeyError, OSError, FeatureSpecError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        if isinstance(error, OSError) and not isinstance(error, TfrecsError) and error.filename:
            message = f"{error.filename}: {error.strerror or error}"
        print(f"{prog}: error: {message}", file=sys.stderr)
        sys.exit(2)
    except (Interrupted, KeyboardInterrupt) as error:
        name = str(error) or "SIGINT"
        print(
            f"{prog}: interrupted by {name}: the partial output was removed and nothing was written; "
            "run again to start clean",
            file=sys.stderr,
        )
        sys.exit(143 if name == "SIGTERM" else 130)
