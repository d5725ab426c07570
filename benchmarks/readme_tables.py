"""README's Results tables, regenerated from ``benchmarks/results/*.json``; and the seed arithmetic they share.

Each table in README's Results section sits between two markers naming its results file::

    <!-- BEGIN GENERATED results/retrieval_ml100k.json -->
    ...   (written by this script; edits by hand are overwritten)
    <!-- END GENERATED results/retrieval_ml100k.json -->

``python benchmarks/readme_tables.py`` rewrites every marked block from its file (a file not
measured yet gives a one-line "not measured yet" block with the command that measures it);
``--check`` writes nothing and exits 1, naming the blocks, when README is out of date.

Figures over seeds (the benchmark scripts import ``summarise`` from here): the mean and the
**sample** standard deviation (``ddof=1``, denominator n - 1; ``statistics.stdev``) of the
per-seed figures. One seed has no standard deviation (``None``), and its figures are shown as
single-seed ("1 seed: 2020"), never with a made-up spread. Ratios between rows are ratios of
their means.

Results files come in two shapes, both rendered: a row with ``per_seed`` / ``seeds`` /
``mean`` / ``std`` (the scripts since issue 14) and an older single-seed row whose figures sit
in the row itself with one ``seed`` (or the file's ``seed``).

No TensorFlow here: this module runs in a second and is what ``tests/test_benchmark_tables.py`` checks.
"""

import argparse
import json
import math
import pathlib
import re
import statistics
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
README = REPO / "README.md"
STD_NOTE = "mean ± sample standard deviation (n - 1 denominator) over the seeds listed"
BLOCK = re.compile(
    r"(?P<begin><!-- BEGIN GENERATED results/(?P<file>[\w.-]+\.json) -->\n)(?P<body>.*?)(?P<end><!-- END GENERATED results/(?P=file) -->)",
    re.S,
)
MARKER = re.compile(r"<!-- (BEGIN|END) GENERATED results/([\w.-]+\.json) -->")
# The command that writes each results file (shown in a block whose file is not there yet).
COMMANDS = {
    "sequential_ml100k": "python benchmarks/sequential_quality.py --seeds 2020 2021 2022",
    "sequential_ml1m": "python benchmarks/sequential_quality.py --dataset ml-1m --seeds 2020 2021 2022",
    "retrieval_ml100k": "python benchmarks/retrieval_quality.py --seeds 2020 2021 2022",
    "retrieval_ml1m": "python benchmarks/retrieval_quality.py --dataset ml-1m --seeds 2020 2021 2022",
    "ctr_ml100k": "python benchmarks/ctr_quality.py --seeds 2020 2021 2022",
}
DATASET_NAMES = {"ml-100k": "ML-100K", "ml-1m": "ML-1M (SASRec's `ml-1m.txt`)"}
GBCE_DEFAULT_NEGATIVES = 128  # SASRec's num_negatives default (rows written before labels were stored)


# --- seeds: aggregation and cells -------------------------------------------------------------


def mean_std(values: Sequence[float]):
    """``(mean, sample std)`` of ``values``; the std is ``None`` for a single value.

    Raises:
        ValueError: no values.
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_std of no values")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def summarise(per_seed: Sequence[Dict[str, object]], names: Iterable[str], group: Optional[str] = None):
    """``(mean, std)`` dicts of the figures ``names`` over ``per_seed`` entries (read from ``entry[group]``
    when ``group`` is given); a name missing from some entry is left out."""
    mean, std = {}, {}
    for name in names:
        values = [(entry[group] if group else entry).get(name) for entry in per_seed]
        if not values or any(not isinstance(v, (int, float)) or isinstance(v, bool) for v in values):
            continue
        mean[name], std[name] = mean_std(values)
    return mean, std


def cell(mean: Optional[float], std: Optional[float] = None, digits: int = 4) -> str:
    """``0.3031`` (one seed) or ``0.3031 ± 0.0012``; ``-`` when there is no figure."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def seeds_text(seeds: Sequence[int]) -> str:
    """``1 seed: 2020`` or ``seeds 2020, 2021, 2022``."""
    seeds = list(seeds)
    if len(seeds) == 1:
        return f"1 seed: {seeds[0]}"
    return "seeds " + ", ".join(str(s) for s in seeds)


def ratio(numerator: Optional[float], denominator: Optional[float]) -> Optional[float]:
    """``numerator / denominator``, ``None`` without both (or with a zero denominator)."""
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def ratio_cell(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f}"


def duration(seconds: Optional[float]) -> str:
    """``42 s``, ``12 min``, ``3.4 h``."""
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class Figures:
    """One row's figures as a table shows them: the seeds, the mean and std of each figure."""

    seeds: List[int]
    mean: Dict[str, float]
    std: Dict[str, Optional[float]] = field(default_factory=dict)

    def cell(self, name: str, digits: int = 4) -> str:
        return cell(self.mean.get(name), self.std.get(name), digits)


def figures(row: Dict[str, object], group: Optional[str] = None, file_seed: Optional[int] = None) -> Figures:
    """The figures of a results row, multi-seed (``per_seed``) or single-seed (older files).

    Args:
        row: the row.
        group: where the metrics sit inside the row (``"loo-full"``), if not at its top level.
        file_seed: the seed of a single-seed row that does not name its own (the file's ``seed``).
    """
    if "per_seed" in row:
        mean, std = row.get("mean") or {}, row.get("std") or {}
        if group:
            mean, std = mean.get(group) or {}, std.get(group) or {}
        return Figures(list(row["seeds"]), dict(mean), dict(std))
    source = (row.get(group) or {}) if group else row
    seed = row.get("seed", file_seed)
    numbers = {k: float(v) for k, v in source.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return Figures([seed] if seed is not None else [], numbers, {})


def epochs_text(row: Dict[str, object]) -> str:
    """``52`` (one seed) or ``52, 52, 58`` (per seed); ``-`` for closed-form rows."""
    if "per_seed" in row:
        epochs = [entry.get("epochs") for entry in row["per_seed"]]
        return ", ".join(str(e) for e in epochs) if any(e is not None for e in epochs) else "-"
    return "-" if row.get("epochs") is None else str(row["epochs"])


def seconds_per_epoch(row: Dict[str, object]) -> Optional[float]:
    """Mean seconds per epoch over the row's seeds (``None`` for closed-form rows)."""
    if "per_seed" in row:
        values = [e["seconds_per_epoch"] for e in row["per_seed"] if e.get("seconds_per_epoch")]
        return statistics.fmean(values) if values else None
    return row.get("seconds_per_epoch") or None


def total_seconds(row: Dict[str, object]) -> Optional[float]:
    """Wall time of the row, all seeds together (training and evaluation)."""
    if "per_seed" in row:
        values = [e.get("wall_seconds") for e in row["per_seed"]]
        return sum(values) if values and all(v is not None for v in values) else None
    return row.get("wall_seconds")


def objective_label(model: str, objective: Optional[str], hparams: Optional[Dict[str, object]] = None) -> str:
    """What a sequential row's objective column says (``gbce (256 negatives)``, ``ce (full softmax)``)."""
    hparams = hparams or {}
    if model == "pop":
        return "-"
    if model in ("ease", "itemknn"):
        return "closed form"
    if model == "bert4rec" or objective == "cloze":
        return "cloze"
    if objective == "bce":
        return "bce (1 negative)"
    if objective == "gbce":
        return f"gbce ({hparams.get('num_negatives', GBCE_DEFAULT_NEGATIVES)} negatives)"
    if objective == "ce":
        return "ce (full softmax)"
    if objective == "sampled_softmax":
        return "sampled_softmax (in-batch, logQ)"
    return str(objective)


def is_variant(row: Dict[str, object]) -> bool:
    """True for a row run with settings other than the benchmark's defaults (kept in the .md, not in README).

    Newer rows say so (``variant``); older ones list their overrides in ``settings``
    (``"dropout=0.5 epochs<=200"``; the epoch budget is not an override).
    """
    if "variant" in row:
        return bool(row["variant"])
    tokens = str(row.get("settings", "")).split()
    return any("=" in token and not token.startswith("epochs<=") for token in tokens)


# --- the README blocks ---------------------------------------------------------------------


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> List[str]:
    return ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)] + [
        "| " + " | ".join(row) + " |" for row in rows
    ]


def _sort_key(view: Figures, metric: str):
    value = view.mean.get(metric)
    return (value is None, value if value is not None else 0.0)


def _smoke_line(data: Dict[str, object]) -> List[str]:
    smoke = data.get("smoke")
    if not smoke:
        return []
    return [f"**Smoke run ({smoke}), not a benchmark result.**", ""]


def _seeds_line(views: Iterable[Figures]) -> List[str]:
    """``["", note]`` when the rows were measured over different seeds, ``[]`` otherwise."""
    if len({tuple(view.seeds) for view in views}) > 1:
        return ["", "Rows differ in their seeds (last column): compare them, and their ratios, with that in mind."]
    return []


def _busy_line(rows: Iterable[Dict[str, object]], names: Iterable[str]) -> List[str]:
    """``["", warning]`` naming the rows measured on a busy machine, ``[]`` when there are none."""
    busy = [name for name, row in zip(names, rows) if row.get("machine_quiet") is False]
    return ["", f"Rows measured on a busy machine (speeds not comparable): {', '.join(busy)}."] if busy else []


def render_retrieval(data: Dict[str, object], name: str) -> List[str]:
    """Retrieval rows by NDCG@10 (ascending) with their seeds; NDCG@10 / EASE when EASE was measured."""
    file_seed = data.get("seed")
    rows = {k: r for k, r in data["rows"].items() if r.get("status", "ok") == "ok"}
    views = {k: figures(r, file_seed=file_seed) for k, r in rows.items()}
    ease = views.get("ease")
    metrics = [("Recall@10", "recall@10"), ("NDCG@10", "ndcg@10"), ("HR@10", "hr@10"), ("MRR@10", "mrr@10")]
    metrics.append(("NDCG@20", "ndcg@20"))
    header = ["model"] + [label for label, _ in metrics] + (["NDCG@10 / EASE"] if ease else []) + ["seeds"]
    order = sorted(views, key=lambda k: _sort_key(views[k], "ndcg@10"))
    lines = [
        f"Retrieval on {DATASET_NAMES.get(data['dataset'], data['dataset'])}, `{data['protocol']}` (per-user random "
        "80/10/10, full ranking, training and validation items masked; the seed draws the split and the "
        f"initialisation; `benchmarks/results/{name}.md`):",
        "",
        *_smoke_line(data),
    ]
    table = []
    for key in order:
        view = views[key]
        cells = [key] + [view.cell(metric) for _, metric in metrics]
        if ease:
            cells.append(ratio_cell(ratio(view.mean.get("ndcg@10"), ease.mean.get("ndcg@10"))))
        table.append(cells + [seeds_text(view.seeds)])
    lines += _table(header, table)
    if not ease:
        lines += ["", "No EASE row in this file yet: the NDCG@10 / EASE column appears once it is measured."]
    return lines + _seeds_line(views.values()) + _busy_line(rows.values(), rows)


def _published(row: Dict[str, object], protocol: str) -> Optional[Dict[str, object]]:
    return (row.get("published") or {}).get(protocol)


def render_sequential(data: Dict[str, object], name: str) -> List[str]:
    """Sequential rows (defaults only, variants stay in the .md) by full NDCG@10; beside the published
    figures when the file carries them (ML-1M)."""
    file_seed = data.get("seed")
    rows = [r for r in data["rows"] if not is_variant(r)]
    views = [figures(r, "loo-full", file_seed) for r in rows]
    order = sorted(range(len(rows)), key=lambda i: _sort_key(views[i], "ndcg@10"))
    published = any(_published(r, "loo-full") for r in rows)
    dataset = DATASET_NAMES.get(data["dataset"], data["dataset"])
    lines = [
        f"Sequential on {dataset}, `loo-full` (leave-one-out in time order, full ranking over all items, the "
        "user's earlier items masked), early stopping on validation NDCG@10 "
        f"(`benchmarks/results/{name}.md`):",
        "",
        *_smoke_line(data),
    ]
    header = ["model", "objective", "HR@10", "NDCG@10", "NDCG@20"]
    if published:
        header += ["published NDCG@10", "ratio", "published HR@10", "ratio", "published in"]
    header += ["epochs"] + (["s/epoch", "total time"] if published else []) + ["seeds"]
    table = []
    for i in order:
        row, view = rows[i], views[i]
        cells = [row["model"], row.get("label") or objective_label(row["model"], row.get("objective"))]
        cells += [view.cell("hr@10"), view.cell("ndcg@10"), view.cell("ndcg@20")]
        if published:
            cells += _published_cells(view, _published(row, "loo-full"))
        cells.append(epochs_text(row))
        if published:
            spe = seconds_per_epoch(row)
            cells += ["-" if spe is None else f"{spe:.1f}", duration(total_seconds(row))]
        table.append(cells + [seeds_text(view.seeds)])
    lines += _table(header, table)
    if any(_published(r, "loo-sampled") for r in rows):
        lines += [
            "",
            "The same models on the sampled protocol (`loo-sampled`: the test item among 100 uniform negatives "
            "the user never interacted with), beside the published sampled figures:",
            "",
        ]
        sampled = [figures(r, "loo-sampled", file_seed) for r in rows]
        table = []
        for i in sorted(range(len(rows)), key=lambda i: _sort_key(sampled[i], "ndcg@10")):
            row, view = rows[i], sampled[i]
            cells = [row["model"], row.get("label") or objective_label(row["model"], row.get("objective"))]
            cells += [view.cell("hr@10"), view.cell("ndcg@10")]
            table.append(cells + _published_cells(view, _published(row, "loo-sampled")) + [seeds_text(view.seeds)])
        header = ["model", "objective", "HR@10", "NDCG@10", "published NDCG@10", "ratio", "published HR@10"]
        lines += _table(header + ["ratio", "published in", "seeds"], table)
    if published:
        lines += [
            "",
            "Ratio = tfrecs mean / published figure. Published figures and their exact settings: "
            "`benchmarks/sequential_quality.py` (`PUBLISHED`) and the notes of the .md.",
        ]
    names = [f"{r['model']}/{r.get('objective', '-')}" for r in rows]
    return lines + _seeds_line(views) + _busy_line(rows, names)


def _published_cells(view: Figures, published: Optional[Dict[str, object]]) -> List[str]:
    if not published:
        return ["-", "-", "-", "-", "-"]
    ndcg, hr = published.get("ndcg@10"), published.get("hr@10")
    return [
        cell(ndcg),
        ratio_cell(ratio(view.mean.get("ndcg@10"), ndcg)),
        cell(hr),
        ratio_cell(ratio(view.mean.get("hr@10"), hr)),
        str(published.get("short", published.get("source", ""))),
    ]


def render_ctr(data: Dict[str, object], name: str) -> List[str]:
    """CTR rows by AUC (ascending) with their seeds."""
    file_seed = data.get("seed")
    rows = {k: r for k, r in data["models"].items() if r.get("status") == "ok"}
    views = {k: figures(r, file_seed=file_seed) for k, r in rows.items()}
    order = sorted(views, key=lambda k: _sort_key(views[k], "auc"))
    lines = [
        f"CTR view on {DATASET_NAMES.get(data['dataset'], data['dataset'])} (label rating >= 4, `random-global` "
        f"80/10/10 split; the seed draws the split and the initialisation; `benchmarks/results/{name}.md`):",
        "",
        *_smoke_line(data),
    ]
    table = [
        [k, views[k].cell("auc"), views[k].cell("gauc"), views[k].cell("logloss"), epochs_text(rows[k])]
        + [seeds_text(views[k].seeds)]
        for k in order
    ]
    lines += _table(["model", "AUC", "GAUC", "LogLoss", "epochs", "seeds"], table)
    return lines + _seeds_line(views.values()) + _busy_line(rows.values(), rows)


RENDERERS: Dict[str, Callable[[Dict[str, object], str], List[str]]] = {
    "retrieval_": render_retrieval,
    "sequential_": render_sequential,
    "ctr_": render_ctr,
}


def render_block(file_name: str, results_dir: pathlib.Path = RESULTS) -> str:
    """The text between the markers of ``results/<file_name>`` (ends with a newline)."""
    stem = file_name[: -len(".json")]
    renderer = next((r for prefix, r in RENDERERS.items() if stem.startswith(prefix)), None)
    if renderer is None:
        raise KeyError(f"no README table for results/{file_name}; known prefixes: {', '.join(RENDERERS)}")
    path = pathlib.Path(results_dir) / file_name
    if not path.exists():
        command = COMMANDS.get(stem)
        how = f": `{command}` writes it" if command else ""
        return f"Not measured yet (`benchmarks/results/{file_name}` is not there){how}.\n"
    data = json.loads(path.read_text(encoding="utf-8"))
    return "\n".join(renderer(data, stem)) + "\n"


def check_markers(text: str) -> List[str]:
    """The files named by README's markers, in order.

    Raises:
        ValueError: a BEGIN without its END (or the reverse), or nested / repeated blocks.
    """
    names, open_name = [], None
    for kind, file_name in MARKER.findall(text):
        if kind == "BEGIN":
            if open_name is not None:
                raise ValueError(f"README: block results/{open_name} is not closed before results/{file_name} begins")
            if file_name in names:
                raise ValueError(f"README: results/{file_name} has two blocks")
            open_name = file_name
        else:
            if open_name != file_name:
                raise ValueError(f"README: END of results/{file_name} without its BEGIN")
            names.append(file_name)
            open_name = None
    if open_name is not None:
        raise ValueError(f"README: block results/{open_name} has no END marker")
    return names


def regenerate(text: str, results_dir: pathlib.Path = RESULTS) -> str:
    """``text`` (README) with every generated block rewritten from ``results_dir``."""
    check_markers(text)
    return BLOCK.sub(
        lambda m: m.group("begin") + render_block(m.group("file"), results_dir) + m.group("end"),
        text,
    )


def drift(readme: pathlib.Path = README, results_dir: pathlib.Path = RESULTS) -> List[str]:
    """The blocks of ``readme`` whose text differs from what ``results_dir`` gives (``[]``: in sync)."""
    text = pathlib.Path(readme).read_text(encoding="utf-8")
    check_markers(text)
    return [
        m.group("file") for m in BLOCK.finditer(text) if m.group("body") != render_block(m.group("file"), results_dir)
    ]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when README is out of date")
    parser.add_argument("--readme", default=str(README), help="the README to rewrite or check")
    parser.add_argument("--results", default=str(RESULTS), help="the directory of the results .json files")
    args = parser.parse_args(argv)
    readme, results = pathlib.Path(args.readme), pathlib.Path(args.results)
    text = readme.read_text(encoding="utf-8")
    names = check_markers(text)
    if not names:
        print(f"{readme}: no GENERATED blocks", file=sys.stderr)
        return 1
    if args.check:
        stale = drift(readme, results)
        if stale:
            print(
                f"{readme} is out of date for {', '.join('results/' + n for n in stale)}: "
                "run python benchmarks/readme_tables.py",
                file=sys.stderr,
            )
            return 1
        print(f"{readme}: {len(names)} generated blocks up to date")
        return 0
    updated = regenerate(text, results)
    if updated != text:
        readme.write_text(updated, encoding="utf-8")
    print(f"{readme}: {len(names)} generated blocks {'rewritten' if updated != text else 'already up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
