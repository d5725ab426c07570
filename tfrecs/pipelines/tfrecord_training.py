"""Training batches from what a ``pipelines/`` script wrote: ``tfrecs train --tfrecords DIR``.

A recipe given ``TrainConfig.tfrecords`` keeps its own split of the data set for validation
and test (so its figures compare with a run without ``--tfrecords``) and reads only its
TRAINING batches, from ``DIR/train/``:

=============  =========================================================  ==============================
models         written by (with the run's data set and ``--seed``)        columns read
=============  =========================================================  ==============================
CTR models     ``build_tfrecords.py --split random-global``               the model's features, label
                                                                          (or rating >= 4), rating (MMoE)
din            the same with ``--history-length 50``                      + ``history``
neumf          ``sample_negatives.py --split random``                     user_index, item_index, label
               ``--output-format pointwise``
lightgcn       ``sample_negatives.py --split random``                     user_index, item_index,
               ``--output-format pairwise`` (objective ``bpr``)           negative_item_index
sasrec         ``window_sequences.py --mode causal --max-len 50``         inputs, targets
bert4rec       ``window_sequences.py --mode cloze --max-len 50``          inputs (Cloze positions drawn
                                                                          per batch, as without records)
=============  =========================================================  ==============================

``DIR`` is checked before anything is read. It must be a complete output (a ``train/``
directory whose ``schema.json`` and every shard of the size it records are there; a
killed script leaves only a hidden staging directory, never ``DIR``), written by the script
the model reads, with the columns it reads, from the data set, split and seed of the run
(``schema.json`` metadata, ``source_record``). Otherwise an ``InputError`` names the
directory, what is missing or differs, and the command that writes the right records. The
recipe's own sampling settings (``num_negatives``, ``negative_sampler``, ``stride``) do
not apply: the records are the training data.

The records are loaded into memory in the order they were written (the views hold their
split in memory too) and batched by ``epoch_shuffled_batches``: each epoch's order (and
BERT4Rec's Cloze positions) is a function of (seed, epoch), so a run resumed at epoch k
reads what an unbroken one reads.

Example::

    run = RunSource("ml-100k", seed=2020)
    train_ds = ctr_batches("out/ctr", load_ctr_data(split), "deepfm", batch_size=1024, run=run)
    model.fit(train_ds, epochs=2)
"""

import glob
import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf

from tfrecs.core.errors import InputError
from tfrecs.data.dataset import ITEM_ID, RATING, USER_ID
from tfrecs.data.feature_spec import SEQUENCE_PADDING
from tfrecs.pipelines.ctr_view import CTR_SPLIT, HISTORY, LABEL, POSITIVE_RATING, CtrData, check_binary_labels
from tfrecs.pipelines.id_view import NEGATIVE_KEY, IdData
from tfrecs.pipelines.sequence_view import TARGETS, SequenceData
from tfrecs.pipelines.tfrecord_reader import check_shards, read_tfrecords
from tfrecs.pipelines.tfrecord_schema import SCHEMA_FILE, TFRecordSchema, load_schema
from tfrecs.pipelines.tfrecord_writer import notice
from tfrecs.pipelines.transforms import epoch_shuffled_batches
from tfrecs.pipelines.windowing import cloze_positions

TRAIN_PART = "train"
ID_FORMATS = ("pointwise", "pairwise")
SEQUENCE_MODES = ("causal", "cloze")
# schema.json metadata key -> the script option that sets it
OPTIONS = {
    "dataset": "--dataset",
    "data": "--data",
    "split": "--split",
    "seed": "--seed",
    "format": "--output-format",
    "mode": "--mode",
    "max_len": "--max-len",
    "history_length": "--history-length",
}
NUMBER = "number"  # a column need: any numeric dtype
SETTABLE = ("max_len", "history_length")  # options a run can match with --set instead


@dataclass(frozen=True)
class RunSource:
    """What the records must have been written from: the run's data set name, seed and own data.

    Attributes:
        dataset: the data set's name (``TrainConfig.dataset``; for own data the name figures use).
        seed: the seed of the run's split.
        data: own data's ``tfrecs.data.from_files`` keywords (``TrainConfig.data``), or None.
    """

    dataset: str
    seed: int
    data: Optional[Mapping[str, Any]] = None

    @classmethod
    def of(cls, config: Any) -> "RunSource":
        """The source of a ``TrainConfig`` (any object with ``dataset``, ``seed`` and ``data``)."""
        return cls(config.dataset, int(config.seed), config.data)

    def record(self) -> Dict[str, Any]:
        return source_record(self.dataset, self.data)


def source_record(dataset: str, data: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """How the scripts record their input in ``schema.json`` and the recipes compare it.

    ``{"dataset": name, "data": None}`` for a named data set; for own data ``data`` holds the
    ``from_files`` keywords with the path made absolute (``name`` is ``dataset`` already).

    Example::

        source_record("ratings", {"path": "ratings.csv", "user": "u"})
        # {"dataset": "ratings", "data": {"path": "/work/ratings.csv", "user": "u"}}
    """
    if not data:
        return {"dataset": dataset, "data": None}
    own = {key: value for key, value in data.items() if key != "name" and value is not None}
    if "path" in own:
        own["path"] = os.path.abspath(os.path.expanduser(str(own["path"])))
    return {"dataset": dataset, "data": json.loads(json.dumps(own, default=str))}  # tuples -> lists


def _command(script: str, run: RunSource, options: Mapping[str, Any], directory: str) -> str:
    source = f"--dataset {run.dataset}"
    if run.data:
        source = f"--data {run.data.get('path')} (and the run's column options)"
    flags = " ".join(f"{OPTIONS.get(key, '--' + key.replace('_', '-'))} {value}" for key, value in options.items())
    return f"python pipelines/{script}.py {source} {flags} --output {directory} --overwrite"


def _shown(key: str, value: Any, other: Any = None) -> str:
    """``--split loo``; own data as ``--data PATH`` and the ``from_files`` keywords that differ from ``other``'s."""
    if key != "data":
        return f"{OPTIONS.get(key, key)} {value}"
    if not isinstance(value, Mapping):
        return "a named data set (no --data)"
    other = other if isinstance(other, Mapping) else {}
    keys = [name for name in {**value, **other} if name != "path" and value.get(name) != other.get(name)]
    read = ", ".join(f"{name}={value.get(name)!r}" for name in keys)
    return f"--data {value.get('path')}" + (f" read with {read}" if read else "")


def _writer(metadata: Mapping[str, Any]) -> str:
    """``sample_negatives.py (pairwise)``: the script of ``metadata`` and its layout option."""
    script = metadata.get("script")
    if not script:
        return "no pipelines/ script its schema.json records (written by write_tfrecords, or an older script)"
    layout = metadata.get("format") or metadata.get("mode") or metadata.get("split")
    return f"{script}.py ({layout})" if layout else f"{script}.py"


def training_part(directory: str, model: str, command: str) -> Tuple[str, TFRecordSchema]:
    """``(DIR/train, its schema)`` once the output is complete: the schema, and every shard at its size.

    Raises:
        InputError: no directory (naming the staging directory of an interrupted write when
            one is there), no ``train/`` part, no ``schema.json``, missing or resized shards.
    """
    again = f"{model} reads a complete output: run {command}"
    if not os.path.isdir(directory):
        parent, name = os.path.split(os.path.abspath(directory))
        staged = sorted(glob.glob(os.path.join(parent, f".{name}.partial-*")))
        if staged:
            raise InputError(
                f"{directory}: no complete output, only {staged[0]}, the staging directory of a write that did "
                f"not finish (killed?); {again}"
            )
        raise InputError(f"{directory}: no such directory; {again}")
    train = os.path.join(directory, TRAIN_PART)
    if not os.path.isdir(train):
        if os.path.exists(os.path.join(directory, SCHEMA_FILE)):
            if load_schema(directory).metadata.get("part") == TRAIN_PART:
                raise InputError(
                    f"{directory} is the train/ part itself; pass the directory holding it "
                    f"({os.path.dirname(os.path.abspath(directory))})"
                )
            raise InputError(
                f"{directory} holds one part written without --split (no train/ directory), so nothing is held "
                f"out; {model} trains on its split's training part: run {command}"
            )
        raise InputError(f"{directory}: no train/ directory, so not a complete output of a pipelines/ script; {again}")
    if not os.path.exists(os.path.join(train, SCHEMA_FILE)):
        raise InputError(f"{train}: no {SCHEMA_FILE} (the scripts write it last): an incomplete output; {again}")
    try:
        schema = load_schema(train)
    except ValueError as error:
        raise InputError(f"{error}; {again}") from None
    problems = check_shards(train, schema)
    if problems:
        raise InputError(f"{train} is incomplete or damaged: {'; '.join(problems)}; {again}")
    if schema.num_records == 0:
        raise InputError(f"{train} holds no records; {again}")
    return train, schema


def check_writer(directory: str, schema: TFRecordSchema, model: str, script: str, command: str) -> None:
    """Raises ``InputError`` unless ``schema``'s metadata says ``script`` wrote it (names the writer)."""
    if schema.metadata.get("script") != script:
        raise InputError(
            f"{directory} was written by {_writer(schema.metadata)}; {model} reads {script}.py records: run {command}"
        )


def check_options(
    directory: str, schema: TFRecordSchema, model: str, options: Mapping[str, Any], run: RunSource, command: str
) -> None:
    """Raises unless ``schema``'s metadata records the run's data set (``source_record``) and
    ``options`` (``{}``: the data set only).

    Raises:
        InputError: the values that differ, as written and as the model needs them, and the
            command that writes the right records.
    """
    metadata = schema.metadata
    wanted = {**run.record(), **options}
    differ = [key for key, value in wanted.items() if metadata.get(key) != value]
    if differ:
        written = ", ".join(_shown(key, metadata.get(key), wanted[key]) for key in differ)
        needed = ", ".join(_shown(key, wanted[key], metadata.get(key)) for key in differ)
        why = (
            " (the run's data, split and seed, so figures compare)"
            if {"dataset", "data", "split", "seed"} & set(differ)
            else ""
        )
        settable = [f"--set {key}={metadata.get(key)}" for key in differ if key in SETTABLE and metadata.get(key)]
        alternative = f" (or train with {' '.join(settable)})" if settable else ""
        raise InputError(
            f"{directory} was written with {written}; {model} here needs {needed}{why}: run {command}{alternative}"
        )


def _dtype(values: np.ndarray) -> str:
    kind = np.asarray(values).dtype.kind
    return "int64" if kind in "iub" else (NUMBER if kind == "f" else "string")


def check_columns(
    train: str, schema: TFRecordSchema, model: str, needs: Mapping[str, Tuple[str, bool]], writes: str
) -> None:
    """Raises unless every needed column is there with the dtype and layout the model reads.

    Args:
        needs: column -> ``(dtype, is_list)``; dtype ``"string"``, ``"int64"`` or ``NUMBER``
            (int64 or float32).
        writes: how to write the columns (the script and its options), for the message.

    Raises:
        InputError: missing columns (all named), or one of another dtype or layout.
    """
    present = {column.name: column for column in schema.columns}
    missing = [name for name in needs if name not in present]
    if missing:
        raise InputError(
            f"{train} lacks the feature(s) {missing} that {model} reads (it has {sorted(present)}); {writes}"
        )
    for name, (dtype, is_list) in needs.items():
        column = present[name]
        stored_list = column.shape != "scalar"
        fits = column.dtype in ("int64", "float32") if dtype == NUMBER else column.dtype == dtype
        if not fits or stored_list != is_list:
            layout = lambda listed: "lists" if listed else "one value per row"  # noqa: E731
            raise InputError(
                f"{train}: feature {name!r} holds {column.dtype} {layout(stored_list)}, {model} reads "
                f"{'numbers' if dtype == NUMBER else dtype} {layout(is_list)} (ids of another data set?); {writes}"
            )


def load_columns(train: str, schema: TFRecordSchema, names: List[str]) -> Dict[str, Any]:
    """Every record of ``names``, in the order written: numpy arrays (``tf.RaggedTensor`` for ragged columns).

    Raises:
        InputError: a shard that is corrupt or ends early (the reader names it).
    """
    pieces: Dict[str, list] = {name: [] for name in names}
    batches = read_tfrecords(train, batch_size=65536, columns=names, deterministic=True, cycle_length=1)
    try:
        for batch in batches:
            for name in names:
                pieces[name].append(batch[name])
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as error:
        reason = str(getattr(error, "message", error)).strip().splitlines()[0]
        raise InputError(f"{train}: cannot be read whole ({reason}); write it again") from None
    columns = {}
    for name in names:
        if isinstance(pieces[name][0], tf.RaggedTensor):
            columns[name] = tf.concat(pieces[name], axis=0)
        else:
            columns[name] = np.concatenate([piece.numpy() for piece in pieces[name]])
    return columns


def _padded(values, width: int, dtype: str, train: str, name: str) -> np.ndarray:
    """A list column as ``[rows, width]`` raw values, padded with the raw padding (``""`` / ``-1``)."""
    if not isinstance(values, tf.RaggedTensor):
        values = tf.RaggedTensor.from_tensor(values)
    longest = int(tf.reduce_max(values.row_lengths())) if values.nrows() else 0
    if longest > width:
        raise InputError(f"{train}: feature {name!r} holds rows of {longest} values, the model reads {width}")
    padding = tf.constant(SEQUENCE_PADDING[dtype], values.dtype)
    return values.to_tensor(default_value=padding, shape=[None, width]).numpy()


def _announce(train: str, schema: TFRecordSchema) -> None:
    notice(f"training batches from {train}: {schema.num_records} records written by {_writer(schema.metadata)}")


def ctr_batches(directory: str, data: CtrData, model: str, batch_size: int, run: RunSource) -> tf.data.Dataset:
    """The CTR recipe's training batches from ``build_tfrecords.py --split random-global`` records.

    Batches hold ``data.features`` (as the view's columns: same dtypes, lists padded to the
    same width) and ``data.labels``: ``label`` from the records' 0 / 1 ``label`` column, else
    ``rating >= 4``, as the view labels.

    Raises:
        InputError: see the module doc.
    """
    reference = data.columns["train"]
    history = {"history_length": reference[HISTORY].shape[1]} if HISTORY in data.features else {}
    options = {"split": CTR_SPLIT, "seed": run.seed, **history}
    command = _command("build_tfrecords", run, options, directory)
    train, schema = training_part(directory, model, command)
    check_writer(directory, schema, model, "build_tfrecords", command)
    check_options(directory, schema, model, {}, run, command)  # the data set before its columns
    needs = {}
    for name in data.features:
        feature = data.spec.features.get(name)
        if feature is not None and feature.kind == "numeric":
            needs[name] = (NUMBER, False)
        else:
            needs[name] = (_dtype(reference[name]), reference[name].ndim == 2)
    stored = {column.name for column in schema.columns}
    needs[LABEL if LABEL in stored else RATING] = (NUMBER, False)
    if RATING in data.labels:
        needs[RATING] = (NUMBER, False)
    writes = f"run {command}" + (" (--history-length writes DIN's history)" if history else "")
    check_columns(train, schema, model, needs, writes)
    check_options(directory, schema, model, options, run, command)
    loaded = load_columns(train, schema, list(needs))
    columns = {}
    for name in data.features:
        values = loaded[name]
        if needs[name][1]:
            width = reference[name].shape[1]
            if isinstance(values, np.ndarray) and values.shape[1] != width:
                raise InputError(
                    f"{train}: feature {name!r} holds {values.shape[1]} values per row, {model} reads {width}; "
                    f"run {command}"
                )
            values = _padded(values, width, needs[name][0], train, name)
        columns[name] = values.astype(reference[name].dtype) if needs[name][0] == NUMBER else values
    if LABEL in loaded:
        columns[LABEL] = check_binary_labels(loaded[LABEL], f"{train}: label")
    else:
        columns[LABEL] = (loaded[RATING] >= POSITIVE_RATING).astype(np.float32)
    if RATING in data.labels:
        columns[RATING] = loaded[RATING].astype(np.float32)
    _announce(train, schema)
    return epoch_shuffled_batches(columns, batch_size, run.seed).prefetch(tf.data.AUTOTUNE)


def id_batches(
    directory: str, data: IdData, model: str, output: str, batch_size: int, run: RunSource
) -> tf.data.Dataset:
    """NeuMF's (``output="pointwise"``) or LightGCN's (``"pairwise"``) training batches from
    ``sample_negatives.py`` records, dense indices mapped to the catalogue's raw ids (the view's
    keys: ``user_id``, ``item_id`` and ``label`` or ``negative_item_id``).

    Raises:
        InputError: see the module doc; ``output`` other than pointwise / pairwise (a model
            trained on in-batch negatives has no use for sampled ones).
    """
    if output not in ID_FORMATS:
        raise InputError(
            f"--tfrecords {directory}: {model} with objective {output} trains on positives only (its negatives are "
            "the batch's or the whole catalogue), so sampled ones do not apply; use --set objective=bpr (sample_negatives.py --output-format pairwise records) "
            "or drop --tfrecords"
        )
    options = {"split": data.split.protocol, "seed": run.seed, "format": output}
    command = _command("sample_negatives", run, options, directory)
    train, schema = training_part(directory, model, command)
    check_writer(directory, schema, model, "sample_negatives", command)
    check_options(directory, schema, model, options, run, command)
    third = (LABEL, (NUMBER, False)) if output == "pointwise" else ("negative_item_index", ("int64", False))
    needs = {"user_index": ("int64", False), "item_index": ("int64", False), third[0]: third[1]}
    check_columns(train, schema, model, needs, f"run {command}")
    loaded = load_columns(train, schema, list(needs))
    tables = {"user_index": data.user_ids, "item_index": data.item_ids, "negative_item_index": data.item_ids}
    for name in set(needs) & set(tables):
        if loaded[name].min() < 0 or loaded[name].max() >= len(tables[name]):
            raise InputError(
                f"{train}: {name} runs to {loaded[name].max()}, beyond the run's {len(tables[name])} "
                f"{'users' if name == 'user_index' else 'items'} (records of other data?); run {command}"
            )
    columns = {USER_ID: data.user_ids[loaded["user_index"]], ITEM_ID: data.item_ids[loaded["item_index"]]}
    if output == "pointwise":
        columns[LABEL] = check_binary_labels(loaded[LABEL], f"{train}: label")
    else:
        columns[NEGATIVE_KEY] = data.item_ids[loaded["negative_item_index"]]
    _announce(train, schema)
    return epoch_shuffled_batches(columns, batch_size, run.seed).prefetch(tf.data.AUTOTUNE)


def sequence_batches(
    directory: str,
    data: SequenceData,
    model: str,
    mode: str,
    max_len: int,
    batch_size: int,
    run: RunSource,
    mask_probability: float = 0.2,
) -> tf.data.Dataset:
    """SASRec's (``mode="causal"``: ``history``, ``targets``) or BERT4Rec's (``"cloze"``:
    ``history``, ``label_mask`` drawn per batch) training batches, in raw ids, from
    ``window_sequences.py`` windows of ``max_len`` (the leave-one-out split, so no seed).

    Raises:
        InputError: see the module doc.
    """
    if mode not in SEQUENCE_MODES:
        raise InputError(f"mode must be one of {SEQUENCE_MODES}, got {mode!r}")
    options = {"mode": mode, "max_len": int(max_len)}
    command = _command("window_sequences", run, options, directory)  # the script always splits loo
    options["split"] = "loo"
    train, schema = training_part(directory, model, command)
    check_writer(directory, schema, model, "window_sequences", command)
    check_options(directory, schema, model, options, run, command)
    names = ["inputs", TARGETS] if mode == "causal" else ["inputs"]
    check_columns(train, schema, model, {name: ("int64", True) for name in names}, f"run {command}")
    if schema.metadata.get("num_items") != data.ids.num_items:
        raise InputError(
            f"{train}: windows of a catalogue of {schema.metadata.get('num_items')} items, the run's has "
            f"{data.ids.num_items}; run {command}"
        )
    windows = load_columns(train, schema, names)
    for name, values in windows.items():
        if not isinstance(values, np.ndarray) or values.shape[1] != max_len:
            raise InputError(f"{train}: {name!r} is not a [windows, {max_len}] column; run {command}")
    ds = epoch_shuffled_batches(windows, batch_size, run.seed)
    _announce(train, schema)
    if mode == "causal":
        return data.raw_batches(ds, {"inputs": HISTORY, TARGETS: TARGETS}).prefetch(2)
    ds = cloze_positions(ds, mask_probability=mask_probability, seed=run.seed)
    return data.raw_batches(ds, {"inputs": HISTORY}).prefetch(2)
