"""TFRS tasks for tfrecs models: summed losses, float32 compute, accidental-hit masks.

The base models (``tfrecs.models.base``) need every task loss summed, not averaged, so they
can divide by the global batch size themselves, and need tasks to compute in float32 under
mixed precision. The factories here build such tasks; the checks refuse tasks that would not
work.

Example::

    from tfrecs.core.tasks import ranking_task, retrieval_task
    ctr = ranking_task("binary")                  # metrics: auc, logloss
    retrieval = retrieval_task(temperature=0.05)
"""

import contextlib
from typing import Any, Iterator, Optional, Sequence

import tensorflow as tf
import tensorflow_recommenders as tfrs
import tf_keras

from tfrecs.core.precision import current_precision, precision_scope

_ALLOWED_REDUCTIONS = (tf_keras.losses.Reduction.SUM, tf_keras.losses.Reduction.NONE)


def check_task_loss(task: tf_keras.layers.Layer, where: str) -> None:
    """Raises ``ValueError`` if a TFRS task's Keras loss averages (wrong under a strategy)."""
    loss = getattr(task, "_loss", None)
    reduction = getattr(loss, "reduction", None)
    if reduction is not None and reduction not in _ALLOWED_REDUCTIONS:
        raise ValueError(
            f"{where}: the task's loss has reduction={reduction!r}; tfrecs needs "
            "reduction='sum' or 'none' (the base model divides by the global batch size "
            "itself). Build the loss with reduction=tf_keras.losses.Reduction.SUM, or use "
            "tfrecs.models.base.ranking_task / retrieval_task."
        )


@contextlib.contextmanager
def float32_policy() -> Iterator[None]:
    """Runs a TFRS task call under the float32 policy.

    ``Retrieval.call`` creates Keras layers on the fly (hard-negative mining), which take the
    global policy and would compute in float16. The switch happens while tracing; it is safe
    under MirroredStrategy because its replica threads run one at a time between merge calls,
    and a task call makes none.
    """
    if current_precision() == "float32":
        yield
        return
    with precision_scope("float32"):
        yield


def accidental_hit_mask(candidate_ids: tf.Tensor, num_queries: tf.Tensor) -> tf.Tensor:
    """``[queries, candidates]`` mask, False where a negative has its query's positive id.

    Row ``i``'s positive is candidate ``i`` (local rows come first after gathering).
    """
    positive_ids = candidate_ids[:num_queries]
    same_id = tf.equal(positive_ids[:, None], candidate_ids[None, :])
    is_positive = tf.cast(tf.eye(num_queries, tf.shape(candidate_ids)[0]), tf.bool)
    return tf.logical_or(tf.logical_not(same_id), is_positive)


def summed(loss: tf.Tensor) -> tf.Tensor:
    """Sum of a task loss, whether it came back reduced (SUM) or per example (NONE)."""
    return tf.reduce_sum(tf.cast(loss, tf.float32))


def retrieval_task(
    metrics: Optional[Sequence[Any]] = None,
    batch_metrics: Optional[Sequence[tf_keras.metrics.Metric]] = None,
    temperature: Optional[float] = None,
    num_hard_negatives: Optional[int] = None,
    name: Optional[str] = None,
) -> tfrs.tasks.Retrieval:
    """A TFRS ``Retrieval`` task whose softmax cross-entropy is summed (not averaged).

    Args:
        metrics: ``tfrs.metrics.FactorizedTopK`` objects (evaluated on the replica's own
            query/candidate pairs).
        batch_metrics: Keras metrics on the in-batch score matrix.
        temperature: softmax temperature.
        num_hard_negatives: keep only this many hardest negatives per query.
        name: task name.

    Accidental hits are removed by ``RetrievalModel`` itself (``remove_accidental_hits``), so
    that it works across replicas and under mixed precision.

    Example::

        task = retrieval_task(metrics=tfrs.metrics.FactorizedTopK(candidates=index))
    """
    loss = tf_keras.losses.CategoricalCrossentropy(from_logits=True, reduction=tf_keras.losses.Reduction.SUM)
    return tfrs.tasks.Retrieval(
        loss=loss,
        metrics=list(metrics) if metrics else None,
        batch_metrics=list(batch_metrics) if batch_metrics else None,
        temperature=temperature,
        num_hard_negatives=num_hard_negatives,
        name=name,
    )


def ranking_task(
    kind: str = "binary",
    metrics: Optional[Sequence[tf_keras.metrics.Metric]] = None,
    metric_prefix: str = "",
    name: Optional[str] = None,
) -> tfrs.tasks.Ranking:
    """A TFRS ``Ranking`` task on logits with a summed loss and the usual metrics.

    Args:
        kind: ``"binary"`` (sigmoid cross-entropy on logits; metrics ``auc``, ``logloss``) or
            ``"regression"`` (squared error; metrics ``rmse``, ``mae``).
        metrics: replaces the default metrics.
        metric_prefix: prepended to the default metric names (``"click/"`` -> ``click/auc``);
            use it when a model has several tasks.
        name: task name.

    Raises:
        ValueError: unknown ``kind``.

    Example::

        tasks = {"click": ranking_task("binary", metric_prefix="click/"),
                 "rating": ranking_task("regression", metric_prefix="rating/")}
    """
    sum_ = tf_keras.losses.Reduction.SUM
    if kind == "binary":
        loss = tf_keras.losses.BinaryCrossentropy(from_logits=True, reduction=sum_)
        default = [
            tf_keras.metrics.AUC(from_logits=True, name=f"{metric_prefix}auc"),
            tf_keras.metrics.BinaryCrossentropy(from_logits=True, name=f"{metric_prefix}logloss"),
        ]
    elif kind == "regression":
        loss = tf_keras.losses.MeanSquaredError(reduction=sum_)
        default = [
            tf_keras.metrics.RootMeanSquaredError(name=f"{metric_prefix}rmse"),
            tf_keras.metrics.MeanAbsoluteError(name=f"{metric_prefix}mae"),
        ]
    else:
        raise ValueError(f"kind={kind!r} is not a ranking task kind; choose 'binary' or 'regression'.")
    return tfrs.tasks.Ranking(loss=loss, metrics=list(metrics) if metrics is not None else default, name=name)


def ranking_task_kind(task: tfrs.tasks.Ranking) -> str:
    """``"binary"`` when the task's loss is a binary cross-entropy on logits, else ``"regression"``.

    Example::

        ranking_task_kind(ranking_task("binary"))   # "binary"
    """
    loss = getattr(task, "_loss", None)
    return "binary" if isinstance(loss, tf_keras.losses.BinaryCrossentropy) else "regression"
