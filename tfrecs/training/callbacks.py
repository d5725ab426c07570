"""Callbacks for tfrecs fits: resume, checkpoints, TensorBoard, early stopping, evaluation.

``default_callbacks(run_dir, ...)`` builds the usual set with this layout::

    run_dir/backup/          resume state after a crash (removed at the end of a complete fit):
                             chief/ the weights, optimizer and epoch (Keras BackupAndRestore),
                             state/ the epoch logs so far, early-stopping and best-checkpoint
                             state and the best weights (``ResumableBackup``)
    run_dir/checkpoints/     last.* (every epoch) and best.* (by the monitored metric) weights
    run_dir/logs/            TensorBoard event files

Example::

    callbacks = default_callbacks("runs/deepfm", monitor="val_auc", patience=2)
    model.fit(train, validation_data=valid, epochs=20, callbacks=callbacks)
"""

import json
import math
import os
import shutil
import sys
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import tf_keras

from tfrecs.core import stopping
from tfrecs.training.optimizers import current_learning_rate

_MIN_WORDS = ("loss", "rmse", "mse", "mae", "error")
_MAX_WORDS = ("auc", "acc", "ndcg", "hr@", "hit", "recall", "precision", "mrr", "map@", "coverage")


def metric_mode(monitor: str) -> str:
    """``"min"`` or ``"max"``: the direction in which ``monitor`` improves, from its name.

    Raises:
        ValueError: the name says neither; pass ``mode`` explicitly.

    Example::

        metric_mode("val_ndcg@10")   # "max"
        metric_mode("val_logloss")   # "min"
    """
    name = monitor.lower()
    if any(word in name for word in _MIN_WORDS):
        return "min"
    if any(word in name for word in _MAX_WORDS):
        return "max"
    raise ValueError(
        f"cannot tell whether monitor={monitor!r} improves upwards or downwards; pass mode='min' or mode='max'."
    )


def _resolve_mode(monitor: str, mode: str) -> str:
    if mode == "auto":
        return metric_mode(monitor)
    if mode not in ("min", "max"):
        raise ValueError(f"mode={mode!r} is not valid; choose 'auto', 'min' or 'max'.")
    return mode


def early_stopping(
    monitor: str = "val_loss",
    patience: int = 3,
    mode: str = "auto",
    min_delta: float = 0.0,
    restore_best_weights: bool = True,
) -> tf_keras.callbacks.EarlyStopping:
    """Stops when ``monitor`` (e.g. ``val_auc``, ``val_ndcg@10``) stops improving.

    Example::

        early_stopping("val_factorized_top_k/top_10_categorical_accuracy", patience=2)
    """
    return tf_keras.callbacks.EarlyStopping(
        monitor=monitor,
        patience=patience,
        mode=_resolve_mode(monitor, mode),
        min_delta=min_delta,
        restore_best_weights=restore_best_weights,
    )


class EvaluationCallback(tf_keras.callbacks.Callback):
    """Adds the figures of ``evaluate_fn(model)`` to the epoch logs (e.g. full-ranking NDCG).

    Place it before callbacks that read the figures (early stopping, checkpoints,
    TensorBoard); ``default_callbacks`` does.

    Args:
        evaluate_fn: ``model -> {name: float}``, e.g. ``{"ndcg@10": 0.31}``.
        prefix: prepended to each name (``"val_"`` -> ``val_ndcg@10``).
        every: evaluate every this many epochs (and always on the last one).

    Example::

        EvaluationCallback(lambda m: {"ndcg@10": full_ranking_ndcg(m, valid)}, prefix="val_")
    """

    def __init__(
        self, evaluate_fn: Callable[[tf_keras.Model], Mapping[str, float]], prefix: str = "val_", every: int = 1
    ):
        super().__init__()
        if every < 1:
            raise ValueError(f"every={every} must be >= 1.")
        self.evaluate_fn = evaluate_fn
        self.prefix = prefix
        self.every = every

    def on_epoch_end(self, epoch, logs=None):
        last = self.params.get("epochs") is not None and epoch + 1 == self.params["epochs"]
        if logs is None or ((epoch + 1) % self.every and not last):
            return
        for name, value in dict(self.evaluate_fn(self.model)).items():
            logs[f"{self.prefix}{name}"] = float(value)


class LearningRateLogger(tf_keras.callbacks.Callback):
    """Adds the current ``learning_rate`` to the epoch logs (so TensorBoard plots it)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and getattr(self.model, "optimizer", None) is not None:
            logs["learning_rate"] = current_learning_rate(self.model.optimizer)


_TRACKED_FIELDS = {"EarlyStopping": ("wait", "best", "best_epoch", "stopped_epoch"), "ModelCheckpoint": ("best",)}


def _number(value: Any) -> Optional[float]:
    try:
        return float(np.asarray(value))
    except (TypeError, ValueError):
        return None


class ResumableBackup(tf_keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` that also resumes what Keras forgets: the epoch logs of the run so
    far, the state of early stopping (best value, best epoch, patience used, best weights) and
    of best-only checkpoints, so a killed run restarted with the same ``backup_dir`` ends
    exactly as an unbroken one (given the same data order per epoch).

    After every epoch it writes ``<backup_dir>/state/state.json`` (and the early-stopping
    best weights as ``best-*.npz`` when they change) BEFORE the Keras backup of that epoch,
    so the state is never behind the backup; on restart it restores the snapshot of the
    last epoch the backup completed. Put it after the callbacks it tracks (it reads their
    state at the end of each epoch); ``default_callbacks`` does. Everything is removed when
    the fit completes.

    Args:
        backup_dir: the backup directory (``run_dir/backup``).
        tracked: the callbacks whose state to keep (``EarlyStopping`` and ``ModelCheckpoint``
            instances are kept, others ignored).
        save_freq: as in ``BackupAndRestore``.
        announce: print one line on stderr when a run is resumed.

    Attributes:
        initial_epoch: the 0-based epoch this process started at (0: a fresh run).
        restored_logs: the logs of the epochs before ``initial_epoch``, one dict per epoch.

    Example::

        stop = early_stopping("val_auc", patience=2)
        model.fit(data, epochs=9, callbacks=[stop, ResumableBackup("runs/x/backup", [stop])])
    """

    def __init__(
        self,
        backup_dir: str,
        tracked: Sequence[tf_keras.callbacks.Callback] = (),
        save_freq: Union[str, int] = "epoch",
        announce: bool = True,
    ):
        super().__init__(backup_dir, save_freq=save_freq)
        self.state_dir = os.path.join(os.fspath(backup_dir), "state")
        kinds = (tf_keras.callbacks.EarlyStopping, tf_keras.callbacks.ModelCheckpoint)
        self.tracked = {
            f"{type(cb).__name__}-{i}": cb for i, cb in enumerate(cb for cb in tracked if isinstance(cb, kinds))
        }
        self.announce = announce
        self.initial_epoch = 0
        self.restored_logs: List[Dict[str, float]] = []
        self._logs: List[Dict[str, float]] = []
        self._state: Optional[Dict[str, Any]] = None
        self._pending_restore = False
        self._weights_files: Dict[str, str] = {}

    def _writes(self) -> bool:
        return bool(getattr(self.model.distribute_strategy.extended, "should_checkpoint", True))

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        path = os.path.join(self.state_dir, "state.json")
        self._state = None
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                self._state = json.load(handle)
        self._logs, self.restored_logs, self.initial_epoch = [], [], 0
        self._pending_restore = True

    def on_epoch_begin(self, epoch, logs=None):
        if self._pending_restore:
            self._pending_restore = False
            self._restore(epoch)
        super().on_epoch_begin(epoch, logs)

    def _restore(self, epoch: int) -> None:
        self.initial_epoch = epoch
        if epoch == 0:
            return
        snapshot = (self._state or {}).get("snapshots", {}).get(str(epoch - 1))
        if snapshot is None:
            print(
                f"tfrecs: WARNING: resuming at epoch {epoch + 1} without the state of epoch {epoch} in "
                f"{self.state_dir}: early stopping and best checkpoints restart from scratch",
                file=sys.stderr,
            )
            return
        self._logs = [dict(row) for row in self._state["history"][:epoch]]
        self.restored_logs = [dict(row) for row in self._logs]
        for key, fields in snapshot["callbacks"].items():
            callback = self.tracked.get(key)
            if callback is None:
                continue
            for name, value in fields.items():
                if name != "best_weights":
                    setattr(callback, name, value)
            if fields.get("best_weights"):
                with np.load(os.path.join(self.state_dir, fields["best_weights"])) as stored:
                    callback.best_weights = [stored[f"arr_{i}"] for i in range(len(stored.files))]
                self._weights_files[key] = fields["best_weights"]
        if self.announce:
            print(
                f"tfrecs: resuming {os.path.dirname(self.state_dir)} at epoch {epoch + 1}: {epoch} epoch(s) "
                f"restored{self._best_text()}",
                file=sys.stderr,
                flush=True,
            )

    def _best_text(self) -> str:
        for callback in self.tracked.values():
            if isinstance(callback, tf_keras.callbacks.EarlyStopping) and math.isfinite(callback.best):
                return f", best so far epoch {callback.best_epoch + 1} ({callback.monitor} = {callback.best:.6g})"
        return ""

    def on_epoch_end(self, epoch, logs=None):
        row = {name: _number(value) for name, value in (logs or {}).items()}
        self._logs = self._logs[:epoch] + [{k: v for k, v in row.items() if v is not None}]
        if self._writes():
            self._save_state(epoch)
        super().on_epoch_end(epoch, logs)  # the Keras backup of this epoch, after the state

    def _save_state(self, epoch: int) -> None:
        os.makedirs(self.state_dir, exist_ok=True)
        callbacks = {}
        for key, callback in self.tracked.items():
            kind = "EarlyStopping" if isinstance(callback, tf_keras.callbacks.EarlyStopping) else "ModelCheckpoint"
            fields = {name: _number(getattr(callback, name, None)) for name in _TRACKED_FIELDS[kind]}
            for name in ("wait", "best_epoch", "stopped_epoch"):
                if fields.get(name) is not None:
                    fields[name] = int(fields[name])
            if kind == "EarlyStopping" and getattr(callback, "best_weights", None) is not None:
                fields["best_weights"] = self._best_weights_file(key, callback)
            callbacks[key] = fields
        snapshots = dict((self._state or {}).get("snapshots", {}))
        snapshots[str(epoch)] = {"callbacks": callbacks}
        snapshots = {k: v for k, v in snapshots.items() if epoch - 1 <= int(k) <= epoch}
        self._state = {"epoch": epoch, "history": self._logs, "snapshots": snapshots}
        _write_atomically(
            os.path.join(self.state_dir, "state.json"), lambda handle: handle.write(json.dumps(self._state).encode())
        )
        keep = {f.get("best_weights") for snap in snapshots.values() for f in snap["callbacks"].values()}
        for name in os.listdir(self.state_dir):
            if name.endswith(".npz") and name not in keep:
                os.remove(os.path.join(self.state_dir, name))

    def _best_weights_file(self, key: str, callback) -> str:
        name = f"best-{key}-epoch{int(callback.best_epoch) + 1:05d}.npz"
        if self._weights_files.get(key) != name:
            _write_atomically(
                os.path.join(self.state_dir, name), lambda handle: np.savez(handle, *callback.best_weights)
            )
            self._weights_files[key] = name
        return name

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        if self._writes():
            shutil.rmtree(self.state_dir, ignore_errors=True)


class EpochSeed(tf_keras.callbacks.Callback):
    """Tells epoch-keyed datasets (``tfrecs.pipelines.transforms.EpochKey``) which epoch the fit is in.

    The training views shuffle (and seed their negative and Cloze draws) by ``(seed, epoch)``;
    this callback pins their key to the epoch Keras runs, including the epoch a resumed run
    starts at, so a resumed run reads each epoch in the order an unbroken run does. The key
    is pinned before each epoch's iterator is made (at the start of the fit, from the restored
    backup, and at the end of every epoch for the next one), again at ``on_epoch_begin``, and
    released when the fit ends. ``tfrecs.training.fit`` adds it when the training data carries
    a key; with a plain ``model.fit`` add it yourself.

    Example::

        train = data.dataset("train", 1024, shuffle=True, seed=1)
        model.fit(train, epochs=5, callbacks=[EpochSeed(epoch_keys(train))])
    """

    def __init__(self, keys: Sequence[Any]):
        super().__init__()
        self.keys = list(keys)

    def _pin(self, epoch: int) -> None:
        for key in self.keys:
            key.pin(epoch)

    def _starting_epoch(self) -> int:
        state = getattr(self.model, "_training_state", None)  # set by BackupAndRestore at train begin
        if state is None:
            return 0
        try:
            from tf_keras.src.utils.mode_keys import ModeKeys

            epoch, _ = state.maybe_load_initial_counters_from_ckpt(self.params.get("steps"), 0, mode=ModeKeys.TRAIN)
            return max(int(epoch), 0)
        except (AttributeError, ImportError, TypeError, ValueError):
            return 0  # on_epoch_begin pins the right epoch before the first batch is read

    def on_train_begin(self, logs=None):
        self._pin(self._starting_epoch())

    def on_epoch_begin(self, epoch, logs=None):
        self._pin(epoch)

    def on_epoch_end(self, epoch, logs=None):
        self._pin(epoch + 1)  # the next epoch's iterator is made before its on_epoch_begin

    def on_train_end(self, logs=None):
        for key in self.keys:
            key.release()


def _write_atomically(path: str, write: Callable[[Any], None]) -> None:
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "wb") as handle:
        write(handle)
    os.replace(temporary, path)


def merge_resumed_history(history: tf_keras.callbacks.History, backup: Optional[ResumableBackup]) -> None:
    """Prepends the epochs a resumed run did before its restart to ``history`` (epochs and logs),
    so it reads like the history of an unbroken run."""
    if backup is None or not backup.restored_logs:
        return
    before = backup.restored_logs
    names = list(dict.fromkeys([k for row in before for k in row] + list(history.history)))
    current = len(history.epoch)
    merged = {}
    for name in names:
        later = list(history.history.get(name, [float("nan")] * current))
        merged[name] = [row.get(name, float("nan")) for row in before] + later
    history.history = merged
    history.epoch = list(range(backup.initial_epoch)) + list(history.epoch)


def default_callbacks(
    run_dir: Optional[Union[str, os.PathLike]] = None,
    *,
    monitor: Optional[str] = None,
    mode: str = "auto",
    patience: Optional[int] = 3,
    evaluate_fn: Optional[Callable[[tf_keras.Model], Mapping[str, float]]] = None,
    evaluate_every: int = 1,
    backup: bool = True,
    backup_freq: Union[str, int] = "epoch",
    checkpoints: bool = True,
    tensorboard: bool = True,
    log_learning_rate: bool = True,
    extra: Sequence[tf_keras.callbacks.Callback] = (),
) -> List[tf_keras.callbacks.Callback]:
    """The standard callbacks of a tfrecs fit, in the order that makes them cooperate.

    Args:
        run_dir: directory for backup, checkpoints and logs; ``None`` keeps only the
            in-memory callbacks (evaluation, learning rate, early stopping).
        monitor: metric for early stopping and the ``best`` checkpoint, e.g. ``"val_auc"``.
        mode: ``"auto"`` (from the name, see ``metric_mode``), ``"min"`` or ``"max"``.
        patience: epochs without improvement before stopping; ``None`` disables early
            stopping (the best checkpoint is still kept).
        evaluate_fn, evaluate_every: an ``EvaluationCallback`` adding ``val_<name>`` figures.
        backup: add ``ResumableBackup`` (resume after a crash with the early-stopping and
            best-checkpoint state and the epoch logs of the run so far).
        backup_freq: ``"epoch"`` or a number of steps between backups.
        checkpoints: save ``last`` (each epoch) and ``best`` weights.
        tensorboard: write TensorBoard logs.
        log_learning_rate: add ``learning_rate`` to the logs.
        extra: callbacks appended at the end.

    Raises:
        ValueError: a bad ``mode`` or a monitor whose direction cannot be inferred.

    Example::

        callbacks = default_callbacks("runs/exp1", monitor="val_ndcg@10",
                                      evaluate_fn=lambda m: {"ndcg@10": my_ndcg(m)})
    """
    resolved_mode = _resolve_mode(monitor, mode) if monitor else None
    callbacks: List[tf_keras.callbacks.Callback] = []
    if evaluate_fn is not None:
        callbacks.append(EvaluationCallback(evaluate_fn, prefix="val_", every=evaluate_every))
    if log_learning_rate:
        callbacks.append(LearningRateLogger())
    if checkpoints and run_dir is not None:
        folder = os.path.join(os.fspath(run_dir), "checkpoints")
        callbacks.append(tf_keras.callbacks.ModelCheckpoint(os.path.join(folder, "last"), save_weights_only=True))
        if monitor:
            callbacks.append(
                tf_keras.callbacks.ModelCheckpoint(
                    os.path.join(folder, "best"),
                    monitor=monitor,
                    mode=resolved_mode,
                    save_best_only=True,
                    save_weights_only=True,
                )
            )
    if tensorboard and run_dir is not None:
        callbacks.append(
            tf_keras.callbacks.TensorBoard(log_dir=os.path.join(os.fspath(run_dir), "logs"), profile_batch=0)
        )
    if monitor and patience is not None:
        callbacks.append(early_stopping(monitor, patience=patience, mode=resolved_mode))
    callbacks.extend(extra)
    if backup and run_dir is not None:
        # Last, so at the end of an epoch it reads the state the others have just updated and
        # saves it before its own backup of that epoch (see ResumableBackup).
        callbacks.append(
            ResumableBackup(os.path.join(os.fspath(run_dir), "backup"), tracked=callbacks, save_freq=backup_freq)
        )
    return callbacks


class StopWhenRequested(tf_keras.callbacks.Callback):
    """Raises ``tfrecs.core.stopping.Stopped`` at the first batch or epoch boundary after a
    SIGTERM, never inside a step; ``fit`` adds it last, so an epoch that has ended is backed up
    before the stop. Used with ``stopping.stop_at_batch_boundaries`` (see that module).

    Example::

        with stop_at_batch_boundaries():
            model.fit(data, epochs=5, callbacks=[StopWhenRequested()])
    """

    def __init__(self):
        super().__init__()
        # It reads no logs: Keras then neither converts each batch's logs to NumPy for it (a sync
        # per step) nor refuses its batch hooks under ParameterServerStrategy.
        self._supports_tf_logs = True

    def on_train_batch_end(self, batch, logs=None):
        stopping.raise_if_requested()

    def on_test_batch_end(self, batch, logs=None):
        stopping.raise_if_requested()

    def on_epoch_end(self, epoch, logs=None):
        stopping.raise_if_requested()


class EpochTimer(tf_keras.callbacks.Callback):
    """Records the wall seconds of every epoch (``seconds``), evaluation callbacks included.

    Example::

        timer = EpochTimer()
        model.fit(data, epochs=3, callbacks=[timer])
        timer.seconds  # [12.1, 3.4, 3.3]
    """

    def __init__(self):
        super().__init__()
        self.seconds: List[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def best_epoch(history: Mapping[str, Sequence[float]], monitor: str = "val_ndcg@10") -> Optional[int]:
    """1-based epoch with the best ``monitor`` value (the one early stopping restores), or None.

    ``history`` is ``History.history`` or anything mapping names to per-epoch values, e.g.
    ``pandas.DataFrame(history.history)``.

    Example::

        best_epoch({"val_ndcg@10": [0.20, 0.25, 0.24]})   # 2
    """
    column = history[monitor] if monitor in history else None
    values = [] if column is None else [float(v) for v in column]
    if not values:
        return None
    pick = max if metric_mode(monitor) == "max" else min
    return values.index(pick(values)) + 1
