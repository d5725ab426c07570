"""Sequential models, leave-one-out: SASRec (each objective), BERT4Rec, EASE, popularity, over seeds.

Data sets (``--dataset``): ``ml-100k`` (default; results ``sequential_ml100k``) and ``ml-1m``
(results ``sequential_ml1m``): SASRec's preprocessed ``ml-1m.txt`` (6,040 users, 3,416 items,
999,611 lines, file order = time order), the file behind the published ML-1M tables, read from
``--data-dir`` (default ``$TFRECS_DATA_DIR``, else ``../shared/data/ml-1m`` beside the repository
when it is there; ``resolve_data_dir`` says how to get the file otherwise).

Protocols, the papers' (``PUBLISHED`` lists them with their sources): leave-one-out in time
(file) order, each user's last item is the test item and the second-to-last the validation
item; the test input holds every earlier item (validation item included), the model's last
``max_len`` of them (``max_len`` 200 on ML-1M as in the papers, the recipe's 50 on ML-100K).
``loo-full`` ranks all items with the user's earlier items masked (seen items filtered);
``loo-sampled`` ranks the test item among 100 uniform negatives the user never interacted with
(one draw, seed 0, for every row and seed). Each model is trained once per seed by its recipe
(early stopping on validation NDCG@10; EASE: ``tfrecs train --model ease --set protocol=loo-full``,
``l2`` searched on validation) and the same weights are scored on both protocols.

Seeds (``--seeds``, default 2020 2021 2022): the seed draws the initialisation, batches and
negatives (the leave-one-out split does not depend on it, so popularity and EASE come out the
same for every seed). Every row is the mean ± sample standard deviation (ddof=1) over its seeds,
with the seed list; the .json keeps each seed's figures, epochs, seconds per epoch and wall
time. Results go to ``benchmarks/results/<name>.{md,json}`` after every seed of every row, so a
cut-short run leaves its finished seeds. On a busy machine nothing more is written
(``--allow-busy`` writes the rows marked busy; rule in ``benchmarks/machine.py``).

Each ``--runs`` entry is ``model:k=v,k=v`` (``--set`` overrides: model keywords and the recipe's
training settings; ``sasrec``, ``bert4rec``, ``ease``, ``itemknn``); the data set's defaults
(``max_len``) apply unless an entry sets them. SASRec runs share one epoch budget and BERT4Rec
runs another, both with early stopping, so rows differ in how long they *needed*. The best
validation NDCG@10 of each row is recorded, so variants are chosen on validation, never on
test; an entry that is not one of the data set's default runs is marked ``variant`` (in the .md,
not in README).

Usage::

    python benchmarks/sequential_quality.py --seeds 2020 2021 2022                    # ML-100K
    python benchmarks/sequential_quality.py --dataset ml-1m --seeds 2020 2021 2022
    python benchmarks/sequential_quality.py --append --runs sasrec:objective=ce,dropout=0.5
    # smoke test of the wiring (a few hundred users, 1 epoch; never into benchmarks/results):
    python benchmarks/sequential_quality.py --dataset ml-1m --max-users 300 --epochs 1 \
        --seeds 2020 2021 --allow-busy --out /tmp/seq-smoke
"""

import argparse
import gzip
import json
import os
import pathlib
import shutil
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np

import tfrecs  # noqa: F401  - before tensorflow
import tensorflow as tf
from tfrecs.data import load_dataset, make_split
from tfrecs.evaluation import evaluate_protocol
from tfrecs.models import Popularity
from tfrecs.pipelines import SequenceData
from tfrecs.recipes import TrainConfig, train
from tfrecs.recipes.sequential_common import sequential_score_fn

import machine  # benchmarks/machine.py: load watch and results gate
import readme_tables as tables  # benchmarks/readme_tables.py: mean ± std over seeds, table cells

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = str(REPO / "benchmarks" / "results")
OBJECTIVES = ("ce", "bce", "gbce", "sampled_softmax")
METRICS = ("hr@10", "ndcg@10", "mrr@10", "hr@20", "ndcg@20", "mrr@20")
SAMPLED = ("hr@10", "ndcg@10", "mrr@10")
SEEDS = (2020, 2021, 2022)
SAMPLED_SETTINGS = {"num_negatives": 100, "negative_distribution": "uniform", "seed": 0}
SEQUENTIAL_MODELS = ("sasrec", "bert4rec")
ITEM_ITEM_MODELS = ("ease", "itemknn")
ANCHORS = (
    "Public anchors (ML-1M, full ranking, not this data set): SASRec NDCG@10 0.1286 (RecBole leaderboard), "
    "gSASRec 0.1726 (Petrov & Macdonald, RecSys 2023)."
)

# --- the ML-1M file ----------------------------------------------------------------------------

ML1M_FILES = ("ml-1m.txt", "ml-1m.txt.gz")
DEFAULT_ML1M_DIR = REPO.parent / "shared" / "data" / "ml-1m"
ML1M_HOW = (
    "The ML-1M benchmarks read SASRec's preprocessed ml-1m.txt (6,040 users, 3,416 items, 999,611 "
    "`user item` lines in time order): data/ml-1m.txt of github.com/kang205/SASRec (commit e3738967; the "
    "same file ships in FeiSun/BERT4Rec, pmixer/SASRec.pytorch and asash/gSASRec-pytorch), sha256 of the "
    "uncompressed file b725f3acb3986fe3130bffd1e77a74d182a1f51799567a236dbd60270f95b0a2. Put ml-1m.txt "
    "(or ml-1m.txt.gz) in a directory and pass --data-dir DIR, or set TFRECS_DATA_DIR=DIR. MovieLens data "
    "is for research use under GroupLens' terms: keep it out of this repository."
)


class DataMissing(Exception):
    """The ML-1M sequence file is not where the benchmark looked; the message says how to get it."""


def ml1m_file(path) -> Optional[str]:
    """The sequence file ``path`` names: itself, or ``ml-1m.txt(.gz)`` in it or in its ``ml-1m/``; else None."""
    path = pathlib.Path(path)
    if path.is_file():
        return str(path) if path.name.endswith((".txt", ".txt.gz")) else None
    for where in (path, path / "ml-1m"):
        for name in ML1M_FILES:
            if (where / name).is_file():
                return str(where / name)
    return None


def holds_ml1m(path) -> bool:
    """True when ``path`` is a sequence file, or a directory holding ``ml-1m.txt(.gz)`` (or ``ml-1m/`` with it)."""
    return ml1m_file(path) is not None


def resolve_data_dir(
    dataset: str,
    given: Optional[str] = None,
    environ: Optional[Mapping[str, str]] = None,
    fallback: Optional[pathlib.Path] = None,
) -> Optional[str]:
    """Where ``dataset`` is read from: ``given`` (``--data-dir``), else ``$TFRECS_DATA_DIR``, else
    ``fallback`` (``../shared/data/ml-1m`` beside the repository) when it holds the file.

    ML-100K keeps ``given`` (``None``: the tfrecs cache, fetched from the RecBole wheel).

    Raises:
        DataMissing: ML-1M and no place holds ``ml-1m.txt`` / ``ml-1m.txt.gz``; the message names
            where it looked and how to obtain the file.
    """
    if dataset != "ml-1m":
        return given
    environ = os.environ if environ is None else environ
    fallback = DEFAULT_ML1M_DIR if fallback is None else pathlib.Path(fallback)
    for where, path in (("--data-dir", given), ("$TFRECS_DATA_DIR", environ.get("TFRECS_DATA_DIR"))):
        if path:
            if holds_ml1m(path):
                return str(path)
            raise DataMissing(f"ML-1M data not found: {where} {path} holds no {' or '.join(ML1M_FILES)}. {ML1M_HOW}")
    if holds_ml1m(fallback):
        return str(fallback)
    raise DataMissing(
        f"ML-1M data not found: no --data-dir, no $TFRECS_DATA_DIR, and {fallback} holds no "
        f"{' or '.join(ML1M_FILES)}. {ML1M_HOW}"
    )


def smoke_data_dir(dataset: str, data_dir: Optional[str], max_users: int, out: str) -> str:
    """A data directory under ``out`` with only the first ``max_users`` users of ``dataset`` (smoke runs).

    ML-1M: those users' lines of the sequence file (file order). ML-100K: those users' rows of the
    RecBole ``ml-100k.inter`` (first users in file order) with the whole user and item tables.
    """
    from tfrecs.data import fetch_ml100k

    target = pathlib.Path(out) / "smoke-data" / f"{dataset}-{max_users}-users"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    if dataset == "ml-1m":
        source = ml1m_file(data_dir)
        opener = gzip.open if source.endswith(".gz") else open
        with opener(source, "rt", encoding="utf-8") as handle:
            lines = _first_users(handle, max_users, header=False)
        (target / "ml-1m.txt").write_text("".join(lines), encoding="utf-8")
    elif dataset == "ml-100k":
        source = pathlib.Path(data_dir or fetch_ml100k())
        if not (source / "ml-100k.inter").is_file():
            raise DataMissing(f"--max-users on ml-100k reads RecBole's ml-100k.inter; {source} has none")
        with open(source / "ml-100k.inter", encoding="utf-8") as handle:
            lines = _first_users(handle, max_users, header=True)
        (target / "ml-100k.inter").write_text("".join(lines), encoding="utf-8")
        for name in ("ml-100k.user", "ml-100k.item"):
            shutil.copyfile(source / name, target / name)
    else:
        raise KeyError(f"--max-users: no subset writer for {dataset!r}")
    return str(target)


def _first_users(handle, max_users: int, header: bool) -> List[str]:
    """The lines of the first ``max_users`` users (first field, in order of first appearance)."""
    kept, users = [], set()
    for number, line in enumerate(handle):
        if header and number == 0:
            kept.append(line)
            continue
        fields = line.split()
        if not fields:
            continue
        if fields[0] not in users:
            if len(users) == max_users:
                continue
            users.add(fields[0])
        kept.append(line)
    return kept


# --- the published ML-1M figures -----------------------------------------------------------------
# Copied from /work/shared/data/ml-1m/PUBLISHED.md (sections A-D; all on the same SAS ml-1m.txt,
# metrics at 10, HR@10 = Recall@10 with one target per user). Not parsed: the file is the source
# these figures were checked against, and a change there should be a reviewed change here.


@dataclass(frozen=True)
class Published:
    """One published figure pair and exactly where it comes from."""

    model: str
    metrics: Dict[str, float]
    short: str  # the table's "published in" column
    source: str
    setting: str


PUBLISHED: Dict[Tuple[str, str, str], Published] = {
    ("loo-full", "sasrec", "ce"): Published(
        "SASRec+ (full-softmax cross-entropy)",
        {"hr@10": 0.3152, "ndcg@10": 0.1821},
        "Klenitskiy & Vasilev 2023",
        "Klenitskiy & Vasilev, RecSys 2023, antklen/sasrec-bert4rec-recsys23 @ 29c272e1 README",
        "dim 64, 2 blocks, 1 head, dropout 0.1, max_len 200, batch 128, patience 10; 540 s, best epoch 63",
    ),
    ("loo-full", "sasrec", "bce"): Published(
        "SASRec (BCE, 1 negative)",
        {"hr@10": 0.2500, "ndcg@10": 0.1341},
        "Klenitskiy & Vasilev 2023",
        "Klenitskiy & Vasilev, RecSys 2023, antklen/sasrec-bert4rec-recsys23 @ 29c272e1 README",
        "as SASRec+, BCE with 1 negative; 486 s, best epoch 53 (gSASRec-pytorch README: 0.2392 / 0.1259)",
    ),
    ("loo-full", "sasrec", "sampled_softmax"): Published(
        "SASRec+ 3000 (sampled CE, 3000 uniform negatives)",
        {"hr@10": 0.3159, "ndcg@10": 0.1857},
        "Klenitskiy & Vasilev 2023",
        "Klenitskiy & Vasilev, RecSys 2023, antklen/sasrec-bert4rec-recsys23 @ 29c272e1 README",
        "3000 uniform negatives per position; tfrecs' sampled_softmax uses the batch's targets (logQ-corrected) "
        "instead, so this row compares objectives of the same family, not the same negatives; 769 s, best epoch 85",
    ),
    ("loo-full", "sasrec", "gbce"): Published(
        "gSASRec (gBCE, 256 negatives, t 0.75)",
        {"hr@10": 0.3003, "ndcg@10": 0.1726},
        "Petrov & Macdonald 2023",
        "Petrov & Macdonald, RecSys 2023, asash/gSASRec-pytorch @ 7e350285 README (pre-trained checkpoint)",
        "dim 128, 2 blocks, 1 head, dropout 0.5, max_len 200, batch 128, separate output embeddings; "
        "validation on 512 users",
    ),
    ("loo-full", "bert4rec", "cloze"): Published(
        "BERT4Rec",
        {"hr@10": 0.2843, "ndcg@10": 0.1537},
        "Klenitskiy & Vasilev 2023",
        "Klenitskiy & Vasilev, RecSys 2023, antklen/sasrec-bert4rec-recsys23 @ 29c272e1 README",
        "1409 s, best epoch 197 (bert4rec_repro README, unsampled: 0.2821 / 0.1516)",
    ),
    ("loo-sampled", "sasrec", "bce"): Published(
        "SASRec (paper, BCE)",
        {"hr@10": 0.8245, "ndcg@10": 0.5905},
        "Kang & McAuley 2018",
        "Kang & McAuley, ICDM 2018 (kang205/SASRec @ e3738967 protocol; value as listed by a "
        "Papers-with-Code-style entry)",
        "dim 50, 2 blocks, 1 head, dropout 0.2, max_len 200; 100 uniform negatives not in the training items "
        "(pmixer/SASRec.pytorch runs: 0.5897 / 0.8190, 0.5918 / 0.8225)",
    ),
    ("loo-sampled", "bert4rec", "cloze"): Published(
        "BERT4Rec (HF-transformers implementation)",
        {"hr@10": 0.8039, "ndcg@10": 0.6008},
        "Petrov & Macdonald 2022",
        "Petrov & Macdonald, RecSys 2022, asash/bert4rec_repro @ 76f15e73 README",
        "uniformly sampled, 100 negatives; sequence length 50 or 100 (the README does not say which)",
    ),
}


def published_for(dataset: str, model: str, objective: str) -> Dict[str, Dict[str, object]]:
    """``{protocol: {"hr@10", "ndcg@10", "short", "source", "setting", "model"}}`` for a row (ML-1M only)."""
    if dataset != "ml-1m":
        return {}
    out = {}
    for (protocol, key_model, key_objective), entry in PUBLISHED.items():
        if (key_model, key_objective) == (model, objective):
            out[protocol] = {
                **entry.metrics,
                "model": entry.model,
                "short": entry.short,
                "source": entry.source,
                "setting": entry.setting,
            }
    return out


# --- data sets and runs --------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    """A data set's benchmark: results name, per-model defaults and default runs."""

    name: str
    title: str
    defaults: Dict[str, Dict[str, object]]
    runs: Tuple[str, ...]


LOO = {"protocol": "loo-full"}  # the closed-form recipes' protocol setting
DATASETS = {
    "ml-100k": Setup(
        "sequential_ml100k",
        "ML-100K",
        {"ease": LOO, "itemknn": LOO},
        tuple(f"sasrec:objective={o}" for o in OBJECTIVES) + ("bert4rec:", "ease:"),
    ),
    "ml-1m": Setup(
        "sequential_ml1m",
        "ML-1M, SASRec's ml-1m.txt",
        {"sasrec": {"max_len": 200}, "bert4rec": {"max_len": 200}, "ease": LOO, "itemknn": LOO},
        (
            "sasrec:objective=ce",
            "sasrec:objective=bce",
            "sasrec:objective=gbce,num_negatives=256",  # gSASRec's ML-1M setting (t = 0.75 is the default)
            "sasrec:objective=sampled_softmax",
            "bert4rec:",
            "ease:",
        ),
    ),
}


@dataclass(frozen=True)
class Run:
    model: str
    hparams: Dict[str, object]
    variant: bool

    @property
    def objective(self) -> str:
        if self.model in ITEM_ITEM_MODELS:
            return "closed form"
        return str(self.hparams.get("objective", "cloze" if self.model == "bert4rec" else "ce"))

    @property
    def settings(self) -> str:
        return " ".join(f"{k}={v}" for k, v in sorted(self.hparams.items()) if k != "objective")

    @property
    def key(self) -> str:
        return f"{self.model}:{self.objective}:{self.settings}"


def parse_run(entry: str, setup: Setup) -> Run:
    """``"sasrec:objective=gbce,num_negatives=256"`` -> a ``Run`` with the data set's defaults filled in.

    Raises:
        ValueError: an unknown model, an EASE / ItemKNN protocol other than ``loo-full``, or a
            ``num_negatives`` on SASRec's sampled_softmax (which draws from the batch's targets).
    """
    from tfrecs.recipes.config import parse_overrides

    model, _, settings = entry.partition(":")
    if model not in SEQUENTIAL_MODELS + ITEM_ITEM_MODELS:
        raise ValueError(f"--runs {entry!r}: model must be one of {', '.join(SEQUENTIAL_MODELS + ITEM_ITEM_MODELS)}")
    given = parse_overrides([s for s in settings.split(",") if s])
    hparams = {**setup.defaults.get(model, {}), **given}
    if model in ITEM_ITEM_MODELS and hparams.get("protocol") != "loo-full":
        raise ValueError(f"--runs {entry!r}: {model} is measured here on protocol=loo-full")
    if model == "sasrec" and hparams.get("objective") == "sampled_softmax" and "num_negatives" in given:
        raise ValueError(
            f"--runs {entry!r}: SASRec's sampled_softmax scores the batch's targets (logQ-corrected) and ignores "
            "num_negatives; a fixed number of uniform negatives (the paper's 3000) needs a change in "
            "tfrecs/models/sasrec.py"
        )
    defaults = {}
    for default in setup.runs:
        default_model, _, default_settings = default.partition(":")
        if default_model == model:
            overrides = parse_overrides([s for s in default_settings.split(",") if s])
            defaults[default] = {**setup.defaults.get(model, {}), **overrides}
    return Run(model, hparams, variant=hparams not in defaults.values())


def row_key(row: Dict[str, object]) -> str:
    """The run a row measured (rows of older files: model, objective and their ``settings`` overrides)."""
    if "key" in row:
        return str(row["key"])
    tokens = [t for t in str(row.get("settings", "")).split() if not t.startswith("epochs<=")]
    return f"{row['model']}:{row.get('objective', '-')}:{' '.join(sorted(tokens))}"


# --- measuring -----------------------------------------------------------------------------------


def pick(figures, names):
    return {name: float(figures[name]) for name in names}


def item_item_score_fn(model, split):
    """EASE / ItemKNN scores on the test input: each user's training + validation items (as the recipe's
    ``loo-full`` test) times the solved item-item matrix, in catalogue order."""
    seen = np.zeros((split.train.num_users, split.train.num_items), dtype=np.float32)
    for part in (split.train, split.valid):
        seen[part.user_indices(), part.item_indices()] = 1.0
    seen = tf.constant(seen)
    return lambda users: tf.matmul(tf.gather(seen, users), model.item_matrix_weight)


def aggregate(row: Dict[str, object]) -> Dict[str, object]:
    """Fills a row's ``seeds``, ``mean``, ``std`` (sample, ddof=1; ``None`` for one seed), mean seconds
    per epoch, epochs per seed and total wall time from its ``per_seed`` entries."""
    per_seed = row["per_seed"]
    row["seeds"] = [entry["seed"] for entry in per_seed]
    row["mean"], row["std"] = {}, {}
    for protocol, names in (("loo-full", METRICS), ("loo-sampled", SAMPLED)):
        row["mean"][protocol], row["std"][protocol] = tables.summarise(per_seed, names, protocol)
    row["epochs"] = [entry.get("epochs") for entry in per_seed]
    row["seconds_per_epoch"] = tables.seconds_per_epoch(row)
    row["total_seconds"] = round(sum(entry["wall_seconds"] for entry in per_seed), 1)
    row["machine_quiet"] = all(entry.get("machine_quiet", True) for entry in per_seed)
    return row


def measure_seed(run: Run, seed: int, args, split, data, epochs: Optional[int]) -> Dict[str, object]:
    """One seed of one run: train by the recipe, score both protocols; the per-seed entry."""
    start = time.perf_counter()
    config = TrainConfig(
        model=run.model,
        dataset=args.dataset,
        data_dir=args.data_dir,
        epochs=epochs,
        seed=seed,
        hparams=dict(run.hparams),
        precision=args.precision,
        verbose=0,
    )
    result = train(config)
    figures = result.figures
    if run.model in SEQUENTIAL_MODELS:
        score_fn = sequential_score_fn(result.model, data.histories("test", result.model.max_len))
    else:
        score_fn = item_item_score_fn(result.model, split)
    sampled = evaluate_protocol(score_fn, split, "loo-sampled", ks=(10,), **SAMPLED_SETTINGS)
    curve = [round(v, 4) for v in result.history.get("val_ndcg@10", [])]
    entry = {
        "seed": seed,
        "loo-full": pick(figures, METRICS),
        "loo-sampled": pick(sampled, SAMPLED),
        "epochs": figures.get("epochs"),
        "best_epoch": figures.get("best_epoch"),
        "seconds_per_epoch": round(figures["seconds_per_epoch"], 2) if figures.get("seconds_per_epoch") else None,
        "wall_seconds": round(time.perf_counter() - start, 1),
        "best_val_ndcg@10": max(curve) if curve else None,
        "val_ndcg@10": curve,
        "model_hyperparameters": result.record.get("model_hyperparameters"),
        "training_settings": result.record.get("training_settings"),
    }
    if run.model in ITEM_ITEM_MODELS:
        entry["search"] = figures.get("search")
        key = "l2" if run.model == "ease" else "neighbours"
        entry[key] = figures.get(key)
    return entry


def measure(args, watch, setup: Setup, runs: List[Run]):
    """Scores popularity and every run over the seeds; writes the results after each seed of each row."""
    split = make_split(load_dataset(args.dataset, data_dir=args.data_dir), "loo", seed=args.seeds[0])
    data = SequenceData.from_split(split)
    pop = Popularity.from_dataset(split.train)
    info = {"num_users": split.train.num_users, "num_items": split.train.num_items, "sizes": split.sizes()}
    rows: List[Dict[str, object]] = []
    path = os.path.join(args.out, f"{args.name}.json")
    if args.append and os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            kept = json.load(handle)["rows"]
        now = {run.key for run in runs}
        rows += [row for row in kept if row["model"] != "pop" and row_key(row) not in now]
    pop_row = {"model": "pop", "objective": "-", "label": "-", "key": "pop:-:", "variant": False, "per_seed": []}
    pop_row["published"] = {}
    rows.insert(0, pop_row)
    for seed in args.seeds:
        start = time.perf_counter()
        full = pick(evaluate_protocol(pop, split, "loo-full"), METRICS)
        sampled = pick(evaluate_protocol(pop, split, "loo-sampled", ks=(10,), **SAMPLED_SETTINGS), SAMPLED)
        entry = {"seed": seed, "loo-full": full, "loo-sampled": sampled}
        entry["wall_seconds"] = round(time.perf_counter() - start, 1)
        record = machine.record_or_exit(watch, args.allow_busy)
        pop_row["per_seed"].append({**entry, "machine_quiet": record["quiet"]})
    aggregate(pop_row)
    write(rows, args, info, record)
    budgets = {"sasrec": args.sasrec_epochs, "bert4rec": args.bert4rec_epochs}
    for run in runs:
        row = {
            "model": run.model,
            "objective": run.objective,
            "label": tables.objective_label(run.model, run.objective, run.hparams),
            "key": run.key,
            "variant": run.variant,
            "hparams": run.hparams,
            "settings": run.settings,
            "epoch_budget": budgets.get(run.model),
            "precision": args.precision,
            "published": published_for(args.dataset, run.model, run.objective),
            "per_seed": [],
        }
        rows.append(row)
        for seed in args.seeds:
            entry = measure_seed(run, seed, args, split, data, budgets.get(run.model))
            record = machine.record_or_exit(watch, args.allow_busy)
            row["per_seed"].append({**entry, "machine_quiet": record["quiet"]})
            aggregate(row)
            shown = ("seed", "loo-full", "loo-sampled", "epochs", "seconds_per_epoch", "wall_seconds")
            print(json.dumps({"row": run.key, **{k: entry[k] for k in shown}}), flush=True)
            write(rows, args, info, record)
    return rows


# --- writing -------------------------------------------------------------------------------------


def row_name(row) -> str:
    return f"{row['model']}/{row.get('objective', '-')}"


def markdown(payload: Dict[str, object]) -> str:
    """The .md: every row with all metrics (mean ± std over its seeds), then the published comparison."""
    rows, record = payload["rows"], payload["machine"]
    file_seed = payload.get("seed")
    setup = DATASETS[payload["dataset"]]
    smoke = payload.get("smoke")
    lines = [
        f"# Sequential models on {setup.title} (leave-one-out by time)",
        "",
        *([f"> **Smoke run ({smoke}): wiring check, not a benchmark result.**", ""] if smoke else []),
        *machine.warning_lines(record, [row_name(r) for r in rows if r.get("machine_quiet") is False]),
        f"Test split; `loo-full` = full ranking over all {payload.get('num_items', '?')} items with the user's "
        "train + valid items masked (RecBole-compatible HR/NDCG/MRR); `loo-sampled` = the test item among "
        "100 uniform negatives the user never interacted with (one draw, seed 0, shared by every row). "
        f"Every figure is the {tables.STD_NOTE} (one seed: the figure itself). Early stopping on validation "
        f"NDCG@10. Precision {payload.get('precision', 'float32')}. Machine: {machine.describe(record)}.",
        "",
    ]
    header = ["model", "objective"] + [f"full {m}" for m in METRICS] + [f"sampled {m}" for m in SAMPLED]
    header += ["best valid ndcg@10", "epochs", "s/epoch", "total time", "seeds", "settings"]
    table = []
    for row in rows:
        full, sampled = tables.figures(row, "loo-full", file_seed), tables.figures(row, "loo-sampled", file_seed)
        if "per_seed" in row:
            best = [e.get("best_val_ndcg@10") for e in row["per_seed"]]
            best = ", ".join(str(b) for b in best) if any(b is not None for b in best) else "-"
        else:
            best = row.get("best_val_ndcg@10") or "-"
        spe = tables.seconds_per_epoch(row)
        table.append(
            [row["model"], row.get("label") or tables.objective_label(row["model"], row.get("objective"))]
            + [full.cell(m) for m in METRICS]
            + [sampled.cell(m) for m in SAMPLED]
            + [str(best), tables.epochs_text(row), "-" if spe is None else f"{spe:.1f}"]
            + [tables.duration(tables.total_seconds(row)), tables.seeds_text(full.seeds)]
            + [(row.get("settings") or "").strip() + (" (variant)" if tables.is_variant(row) else "")]
        )
    lines += tables._table(header, table)
    published = [(row, protocol, p) for row in rows for protocol, p in (row.get("published") or {}).items()]
    if published:
        lines += [
            "",
            "## Beside the published figures",
            "",
            "Same data file and protocol family (`/work/shared/data/ml-1m/PUBLISHED.md`); ratio = tfrecs mean / "
            "published.",
            "",
        ]
        table = []
        for row, protocol, p in published:
            view = tables.figures(row, protocol, file_seed)
            table.append(
                [row["model"], row.get("label", ""), protocol, view.cell("ndcg@10"), tables.cell(p["ndcg@10"])]
                + [tables.ratio_cell(tables.ratio(view.mean.get("ndcg@10"), p["ndcg@10"])), view.cell("hr@10")]
                + [tables.cell(p["hr@10"]), tables.ratio_cell(tables.ratio(view.mean.get("hr@10"), p["hr@10"]))]
                + [f"{p['model']}: {p['source']}; {p['setting']}"]
            )
        header = ["model", "objective", "protocol", "NDCG@10", "published", "ratio", "HR@10", "published", "ratio"]
        lines += tables._table(header + ["published row, source and its settings"], table)
        lines += ["", *PROTOCOL_NOTES]
    else:
        lines += ["", ANCHORS]
    return "\n".join(lines) + "\n"


PROTOCOL_NOTES = (
    "Where this run departs from the published set-ups:",
    "",
    "- Hyper-parameters are the tfrecs recipes' (dim 64, 2 blocks, 2 heads, dropout 0.2, batch 128, Adam 1e-3; "
    "BERT4Rec post-norm, dropout 0.1, mask probability 0.2) with max_len 200; the published rows use their own "
    "(listed beside each).",
    "- Validation uses every user (as Klenitskiy & Vasilev); gSASRec validates on 512 users and bert4rec_repro "
    "on 2048.",
    "- sampled_softmax: tfrecs scores the batch's targets (logQ-corrected, accidental hits masked), not 3000 "
    "uniform negatives as SASRec+ 3000.",
    "- Sampled protocol: the 100 negatives avoid the user's training and validation items (kang205/SASRec "
    "avoids the training items only), drawn once with seed 0.",
)


def write(rows, args, info: Dict[str, object], record):
    os.makedirs(args.out, exist_ok=True)
    payload = {
        "dataset": args.dataset,
        "data_source": args.data_dir or "tfrecs cache",
        "split": "test",
        "protocols": ["loo-full", "loo-sampled"],
        "sampled": SAMPLED_SETTINGS,
        "seeds": list(args.seeds),
        "std": "sample standard deviation over seeds (ddof=1); null for one seed",
        "precision": args.precision,
        **info,
        "command": "python benchmarks/sequential_quality.py " + " ".join(args.argv),
        "machine": record,
        "rows": rows,
    }
    if args.max_users:
        payload["smoke"] = f"first {args.max_users} users"
    if not any(row.get("published") for row in rows):
        payload["anchors"] = ANCHORS
    with open(os.path.join(args.out, f"{args.name}.json"), "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=1)
    with open(os.path.join(args.out, f"{args.name}.md"), "w", encoding="utf-8") as handle:
        handle.write(markdown(payload))


# --- command line --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="ml-100k")
    parser.add_argument(
        "--data-dir",
        help="ml-1m: directory (or file) holding ml-1m.txt(.gz); default $TFRECS_DATA_DIR, else ../shared/data/ml-1m",
    )
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=int, nargs="+", help=f"seeds of every row (default {' '.join(map(str, SEEDS))})")
    seeds.add_argument("--seed", type=int, help="one seed (same as --seeds SEED)")
    parser.add_argument("--runs", nargs="+", help="model:k=v,k=v entries (default: the data set's default runs)")
    parser.add_argument("--sasrec-epochs", type=int, default=200)
    parser.add_argument("--bert4rec-epochs", type=int, default=400)
    parser.add_argument("--epochs", type=int, help="one epoch budget for every model (overrides the two above)")
    parser.add_argument("--precision", default="float32", choices=("float32", "mixed_float16", "mixed_bfloat16"))
    parser.add_argument("--append", action="store_true", help="keep the rows of other runs already in the file")
    parser.add_argument("--name", help="results file name (default: sequential_ml100k / sequential_ml1m)")
    parser.add_argument("--out", default=RESULTS, help="directory of NAME.{md,json} (default benchmarks/results)")
    parser.add_argument(
        "--max-users",
        type=int,
        help="smoke run: only the first N users (a subset file under --out); needs --out outside benchmarks/results",
    )
    return machine.add_argument(parser)


def parse_args(parser, argv):
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    setup = DATASETS[args.dataset]
    args.seeds = [args.seed] if args.seed is not None else list(args.seeds or SEEDS)
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds {args.seeds}: a seed twice")
    args.name = args.name or setup.name
    if args.epochs:
        args.sasrec_epochs = args.bert4rec_epochs = args.epochs
    try:
        runs = [parse_run(entry, setup) for entry in (args.runs or setup.runs)]
        args.data_dir = resolve_data_dir(args.dataset, args.data_dir)
    except (ValueError, DataMissing) as error:
        parser.error(str(error))
    if args.max_users:
        if os.path.realpath(args.out) == os.path.realpath(RESULTS):
            parser.error("--max-users is a smoke run: give --out a directory outside benchmarks/results")
        args.data_dir = smoke_data_dir(args.dataset, args.data_dir, args.max_users, args.out)
    return args, setup, runs


def main(argv=None):
    parser = build_parser()
    args, setup, runs = parse_args(parser, argv)
    with machine.Watch() as watch:
        machine.record_or_exit(watch, args.allow_busy)  # a busy machine: refuse before the minutes of work
        rows = measure(args, watch, setup, runs)
    print(
        json.dumps(
            {
                "split": "test",
                "rows": len(rows),
                "seeds": args.seeds,
                **{f"{row_name(r)}/ndcg@10": tables.figures(r, "loo-full").mean.get("ndcg@10") for r in rows},
            }
        )
    )
    return rows


if __name__ == "__main__":
    main()
