"""``fit``: ``model.fit`` with the checks and callbacks a tfrecs training run needs.

It checks the global batch against the number of replicas, builds the model's variables
before ``BackupAndRestore`` restores into them, adds the default callbacks (backup, last and
best checkpoints, TensorBoard, early stopping, learning-rate logging) and shows Keras progress
bars on the chief only.

Example::

    import tfrecs
    from tfrecs import training

    strategy = training.configure(strategy="mirrored", precision="mixed_float16")
    with strategy.scope():
        model = MyRankingModel()
        model.compile(optimizer=training.make_optimizer("adam", learning_rate=1e-3))
    history = training.fit(model, train_ds, validation_data=valid_ds, epochs=10,
                           run_dir="runs/exp1", monitor="val_auc", patience=2)

A killed run started again with the same ``run_dir`` resumes from its last backup: weights,
optimizer, the early-stopping state and best weights, best-checkpoint state and the epoch logs
so far (``ResumableBackup``); the returned ``History`` holds every epoch of the run, counted
from the original start, and a line on stderr says where it resumed. For a bit-identical
resume each epoch's data must be a function of the seed and the epoch only: the training
views of ``tfrecs.pipelines`` are (``epoch_shuffled_batches``: their order and their negative
and Cloze draws are keyed by ``(seed, epoch, batch)``), and ``fit`` pins their ``EpochKey`` to
the epoch it runs (``EpochSeed``). A ``Dataset.shuffle(..., reshuffle_each_iteration=True)``
restarts its sequence of orders in the new process; use ``epoch_shuffled_batches``, a fixed
order or no shuffle. Dropout and other stateful random ops in the model also restart, so a
model with dropout resumes to statistically equal, not identical, figures.
"""

import os
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import tensorflow as tf
import tf_keras

from tfrecs.core.errors import InputError
from tfrecs.pipelines.transforms import epoch_keys
from tfrecs.core.stopping import stop_at_batch_boundaries
from tfrecs.training.callbacks import (
    EpochSeed,
    ResumableBackup,
    StopWhenRequested,
    default_callbacks,
    merge_resumed_history,
)
from tfrecs.training.strategy import check_global_batch_size, is_chief, is_parameter_server


def infer_global_batch_size(dataset: Any) -> Optional[int]:
    """Global batch size of a batched ``tf.data.Dataset`` (static shape, else its first batch).

    Returns ``None`` for inputs that are not datasets or hold no element.
    """
    if not isinstance(dataset, tf.data.Dataset):
        return None
    leaves = [spec for spec in tf.nest.flatten(dataset.element_spec) if hasattr(spec, "shape")]
    for spec in leaves:
        if spec.shape.rank and spec.shape[0] is not None:
            return int(spec.shape[0])
    for batch in dataset.take(1):
        tensors = [t for t in tf.nest.flatten(batch) if hasattr(t, "shape") and t.shape.rank]
        return int(tf.shape(tensors[0])[0]) if tensors else None
    return None


def _batching(dataset: Any):
    """``(batch size, drop_remainder, rows before batching or None)`` of the last ``batch``
    step of a ``tf.data`` pipeline, or None when there is none."""
    node = dataset
    for _ in range(64):
        if node is None:
            return None
        if hasattr(node, "_batch_size") and hasattr(node, "_drop_remainder") and hasattr(node, "_input_dataset"):
            try:
                rows = int(node._input_dataset.cardinality())
                return int(node._batch_size), bool(node._drop_remainder), rows if rows >= 0 else None
            except (TypeError, ValueError):
                return None
        node = getattr(node, "_input_dataset", None)
    return None


def empty_data_error(name: str, dataset: Any) -> InputError:
    """The error for a dataset that yields no batch, naming the batch size and the data size."""
    batching = _batching(dataset)
    if batching is None:
        return InputError(f"{name} yields no batch: it is empty; check the data (and the batch size)")
    size, drop, rows = batching
    data = f"{rows} rows" if rows is not None else "fewer rows than one batch"
    if drop:
        return InputError(
            f"{name} yields no batch: batch size {size} with drop_remainder=True is larger than the "
            f"data ({data}); use a batch size <= the number of rows, or drop_remainder=False"
        )
    return InputError(f"{name} yields no batch: the data is empty ({data}, batch size {size})")


def check_not_empty(name: str, dataset: Any) -> None:
    """Raises ``InputError`` if ``dataset`` is a ``tf.data.Dataset`` known to yield no batch.

    Raises:
        InputError: names the batch size and the number of rows (e.g. a batch larger than
            the data with ``drop_remainder=True``, which Keras reports only as "Empty logs").
    """
    if isinstance(dataset, tf.data.Dataset) and int(dataset.cardinality()) == 0:
        raise empty_data_error(name, dataset)


def build_on_first_batch(model: tf_keras.Model, dataset: Any) -> None:
    """Creates an unbuilt tfrecs model's variables (and optimizer slots) from the first batch of
    ``dataset`` under the model's strategy, so a checkpoint can be restored into them."""
    if isinstance(dataset, tf_keras.utils.experimental.DatasetCreator):
        dataset = dataset(tf.distribute.InputContext())
    if model.built or not hasattr(model, "build_from_batch") or not isinstance(dataset, tf.data.Dataset):
        return
    for batch in dataset.take(1):
        with model.distribute_strategy.scope():
            model.build_from_batch(batch)


def _steps(name: str, dataset: Any, steps: Optional[int], steps_name: str) -> Optional[int]:
    """``steps`` or, under a parameter-server strategy, the number of batches of a finite dataset."""
    if steps is not None or dataset is None:
        return steps
    cardinality = int(dataset.cardinality()) if isinstance(dataset, tf.data.Dataset) else -1
    if cardinality < 1:
        raise InputError(
            f"strategy='parameter_server' needs {steps_name}=: {name} is a "
            f"{type(dataset).__name__} whose number of batches is unknown or infinite"
        )
    return cardinality


def parameter_server_inputs(
    train_data: Any,
    validation_data: Any,
    steps_per_epoch: Optional[int],
    validation_steps: Optional[int],
    verbose: Union[str, int],
):
    """``model.fit`` arguments for a ``ParameterServerStrategy`` (``fit`` calls this).

    Each worker reads its own copy of the data, repeated (workers step asynchronously and
    must not run dry), and an epoch is ``steps_per_epoch`` steps over all workers (default: the
    number of batches of a finite ``train_data``, so one epoch still sees about the data's
    size); ``DatasetCreator`` inputs pass through. Keras' per-batch progress bar is not
    available (``verbose=1`` becomes 2).
    """
    steps_per_epoch = _steps("train_data", train_data, steps_per_epoch, "steps_per_epoch")
    validation_steps = _steps("validation_data", validation_data, validation_steps, "validation_steps")
    if isinstance(train_data, tf.data.Dataset):
        train_data = train_data.repeat()
    if isinstance(validation_data, tf.data.Dataset):
        validation_data = validation_data.repeat()
    return train_data, validation_data, steps_per_epoch, validation_steps, 2 if verbose == 1 else verbose


def fit(
    model: tf_keras.Model,
    train_data: Any,
    *,
    epochs: int = 1,
    validation_data: Any = None,
    run_dir: Optional[Union[str, os.PathLike]] = None,
    monitor: Optional[str] = None,
    mode: str = "auto",
    patience: Optional[int] = 3,
    evaluate_fn: Optional[Callable[[tf_keras.Model], Mapping[str, float]]] = None,
    evaluate_every: int = 1,
    backup: bool = True,
    backup_freq: Union[str, int] = "epoch",
    checkpoints: bool = True,
    tensorboard: bool = True,
    callbacks: Sequence[tf_keras.callbacks.Callback] = (),
    steps_per_epoch: Optional[int] = None,
    validation_steps: Optional[int] = None,
    validation_freq: int = 1,
    global_batch_size: Optional[int] = None,
    verbose: Union[str, int] = "auto",
) -> tf_keras.callbacks.History:
    """Trains a compiled tfrecs model; resumes from ``run_dir/backup`` if a run was killed.

    Args:
        model: a compiled model, built and compiled under its strategy's scope.
        train_data: a batched ``tf.data.Dataset`` of feature dicts (global batches). Under
            ``ParameterServerStrategy`` also a ``tf_keras.utils.experimental.DatasetCreator``;
            each worker then reads its own repeated copy (``parameter_server_inputs``).
        epochs: total epochs (a resumed run does only the missing ones).
        validation_data: batched dataset evaluated every ``validation_freq`` epochs.
        run_dir: where backup, checkpoints and TensorBoard logs go (see
            ``default_callbacks``); ``None`` disables them.
        monitor, mode, patience: early stopping and best checkpoint on a validation metric,
            e.g. ``monitor="val_auc"`` or ``"val_ndcg@10"`` (from ``evaluate_fn``).
        evaluate_fn, evaluate_every: extra validation figures, ``model -> {name: value}``.
        backup, backup_freq, checkpoints, tensorboard: switch the default callbacks.
        callbacks: more callbacks, run after the default ones. When ``train_data`` is built
            from epoch-keyed batches (``tfrecs.pipelines.transforms.epoch_shuffled_batches``,
            every training view) an ``EpochSeed`` is added, so each epoch's order is a
            function of the seed and the epoch, resumed runs included.
        steps_per_epoch, validation_steps, validation_freq: as in ``model.fit`` (under
            ``ParameterServerStrategy`` the steps default to the datasets' batch counts).
        global_batch_size: skips inferring it from ``train_data``.
        verbose: Keras progress-bar mode; non-chief workers are always silent.

    Returns:
        The Keras ``History``.

    Raises:
        ValueError: ``epochs < 1``, or a global batch smaller than the number of replicas.
        InputError: ``train_data`` or ``validation_data`` yields no batch (e.g. a batch size
            larger than the data with ``drop_remainder=True``); names the batch size and the
            number of rows.

    Example::

        history = fit(model, train_ds, epochs=3, run_dir="runs/two_tower")
        print(history.history["loss"])
    """
    if isinstance(epochs, bool) or int(epochs) < 1:
        raise InputError(f"epochs={epochs} must be >= 1.")
    check_not_empty("train_data", train_data)
    check_not_empty("validation_data", validation_data)
    strategy = model.distribute_strategy
    batch = global_batch_size if global_batch_size is not None else infer_global_batch_size(train_data)
    if batch is not None:
        check_global_batch_size(batch, strategy)
    build_on_first_batch(model, train_data)
    all_callbacks = default_callbacks(
        run_dir,
        monitor=monitor,
        mode=mode,
        patience=patience,
        evaluate_fn=evaluate_fn,
        evaluate_every=evaluate_every,
        backup=backup,
        backup_freq=backup_freq,
        checkpoints=checkpoints,
        tensorboard=tensorboard,
        extra=list(callbacks),
    )
    keys = epoch_keys(train_data) if isinstance(train_data, tf.data.Dataset) else []
    if keys and not any(isinstance(c, EpochSeed) for c in all_callbacks):
        all_callbacks.append(EpochSeed(keys))  # after the backup has restored the epoch
    if is_parameter_server(strategy):
        train_data, validation_data, steps_per_epoch, validation_steps, verbose = parameter_server_inputs(
            train_data, validation_data, steps_per_epoch, validation_steps, verbose
        )
    all_callbacks.append(StopWhenRequested())  # last: an ended epoch is backed up before a stop
    try:
        with stop_at_batch_boundaries():
            history = model.fit(
                train_data,
                epochs=int(epochs),
                validation_data=validation_data,
                callbacks=all_callbacks,
                steps_per_epoch=steps_per_epoch,
                validation_steps=validation_steps,
                validation_freq=validation_freq,
                verbose=verbose if is_chief(strategy) else 0,
            )
    except ValueError as error:
        if "Empty logs" in str(error):  # Keras' word for a dataset that yielded no batch
            raise empty_data_error("train_data", train_data) from None
        raise
    merge_resumed_history(history, next((c for c in all_callbacks if isinstance(c, ResumableBackup)), None))
    return history
