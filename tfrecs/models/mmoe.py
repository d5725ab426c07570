"""MMoE (Ma et al., KDD 2018) and its shared-bottom baseline, multi-task on the ranking base.

All features are embedded (``FeatureEmbedding``) and concatenated. MMoE feeds them to shared
experts mixed per task by softmax gates (``MixtureOfExperts``); the shared-bottom baseline
feeds them to one shared MLP. Each task has its own tower (``MLP``) ending in one logit.
Default tasks, for the ML-100K CTR view: ``like`` (rating >= 4, binary: ``like/auc``,
``like/logloss``) and ``rating`` (the rating itself, regression: ``rating/rmse``,
``rating/mae``).

With ``uncertainty_weighting=True`` the task losses are weighted by learned
log-variances ``s_t`` (Kendall, Gal & Cipolla, CVPR 2018):
``sum_t c_t * exp(-s_t) * L_t + s_t / 2``, with ``c_t = 1/2`` for regression (Gaussian
likelihood) and ``1`` for binary tasks; ``L_t`` is the task's mean loss over the global batch.

Example::

    model = MMoE(spec, num_experts=4)                # tasks "like" and "rating"
    model = tfrecs.models.get("shared_bottom")(spec) # the baseline
    model.compile(optimizer="adam")
    model.fit(dataset)                               # batches hold "like" and "rating"
"""
from typing import Dict, Mapping, Optional, Sequence

import tensorflow as tf
import tensorflow_recommenders as tfrs
import tf_keras

from tfrecs.data.feature_spec import FeatureSpec
from tfrecs.layers.experts import MixtureOfExperts
from tfrecs.layers.feature_embedding import FeatureEmbedding
from tfrecs.layers.mlp import MLP
from tfrecs.models.base import RankingModel, ranking_task, summed
from tfrecs.core.registration import export
from tfrecs.core import cross_replica
from tfrecs.core.precision import to_float32


def default_tasks() -> Dict[str, tfrs.tasks.Ranking]:
    """``like`` (binary) and ``rating`` (regression), metric names prefixed by task."""
    return {"like": ranking_task("binary", metric_prefix="like/"),
            "rating": ranking_task("regression", metric_prefix="rating/")}


def is_binary_task(task: tfrs.tasks.Ranking) -> bool:
    """Whether a TFRS Ranking task's loss is binary cross-entropy (labels must be 0 / 1)."""
    return isinstance(getattr(task, "_loss", None), tf_keras.losses.BinaryCrossentropy)


def checked_binary_label(label: tf.Tensor, task_name: str, label_key: str) -> tf.Tensor:
    """``label`` after an in-graph check that it holds only 0 and 1.

    Raises:
        tf.errors.InvalidArgumentError: at run time, naming the task and its label feature.
    """
    valid = tf.reduce_all(tf.logical_or(tf.equal(label, 0.0), tf.equal(label, 1.0)))
    check = tf.debugging.Assert(valid, [f"task {task_name!r}: binary label feature {label_key!r} must hold only "
                                        "0 and 1; got values", label], summarize=8)
    with tf.control_dependencies([check]):
        return tf.identity(label)


@export("tfrecs.models.MMoE", name="mmoe")
class MMoE(RankingModel):
    """Multi-gate mixture of experts (or a shared bottom) with one tower per task.

    Args:
        spec: fitted ``FeatureSpec`` of the input features.
        features: features to embed (default: every spec feature).
        embedding_dim: embedding size.
        num_experts: experts of MMoE (ignored by the shared bottom).
        expert_units: hidden layers of each expert, and of the shared bottom.
        tower_units: hidden layers of each task tower (then one linear logit).
        dropout: dropout in experts / bottom and towers.
        tasks: task name -> ``ranking_task(...)`` (default ``default_tasks()``).
        label_keys: task name -> label feature (default: the task name).
        loss_weights: fixed task weights (ignored when ``uncertainty_weighting``).
        uncertainty_weighting: learn per-task log-variances that weight the losses.
        shared_bottom: one shared MLP instead of gated experts (the baseline).
        initial_bias: task name -> starting value of its logit's bias (e.g. the mean rating for
            a regression task, so training does not begin far off the target's scale).

    Raises:
        ValueError: ``loss_weights`` together with ``uncertainty_weighting``, or what
            ``RankingModel`` / ``MixtureOfExperts`` raise.
        KeyError: a feature not in the spec; at call time, a batch missing a feature.
        tf.errors.InvalidArgumentError: a binary task's label outside {0, 1} (training or
            evaluation).
    """

    def __init__(self, spec: FeatureSpec, features: Optional[Sequence[str]] = None, embedding_dim: int = 16,
                 num_experts: int = 4, expert_units: Sequence[int] = (64,), tower_units: Sequence[int] = (32,),
                 dropout: float = 0.0, tasks: Optional[Mapping[str, tfrs.tasks.Ranking]] = None,
                 label_keys: Optional[Mapping[str, str]] = None, loss_weights: Optional[Mapping[str, float]] = None,
                 uncertainty_weighting: bool = False, shared_bottom: bool = False,
                 initial_bias: Optional[Mapping[str, float]] = None, **kwargs):
        if uncertainty_weighting and loss_weights:
            raise ValueError("MMoE: pass either loss_weights or uncertainty_weighting=True, not both")
        super().__init__(tasks=tasks if tasks is not None else default_tasks(), label_keys=label_keys,
                         loss_weights=loss_weights, **kwargs)
        if features is not None:
            hidden_labels = sorted(set(features) & set(self.label_keys.values()))
            if hidden_labels:
                raise ValueError(f"MMoE: features {hidden_labels} are label features; a model cannot read its labels")
        else:
            features = [name for name in spec.names if name not in self.label_keys.values()]
        self.shared_bottom = shared_bottom
        self.uncertainty_weighting = uncertainty_weighting
        self.embedding = FeatureEmbedding(spec, embedding_dim, features=features, name="embedding")
        if shared_bottom:
            self.bottom = MLP(expert_units, dropout=dropout, name="shared_bottom")
        else:
            self.bottom = MixtureOfExperts(num_experts, expert_units, self.task_names, dropout=dropout, name="experts")
        unknown = sorted(set(initial_bias or {}) - set(self.task_names))
        if unknown:
            raise ValueError(f"initial_bias names unknown task(s) {unknown}; the tasks are {list(self.task_names)}")
        self.towers = {name: MLP(tower_units, dropout=dropout, output_units=1, name=f"tower_{name}")
                       for name in self.task_names}
        self.task_bias = self.add_weight("task_bias", shape=(len(self.task_names),), dtype=tf.float32,
                                         initializer=tf_keras.initializers.Constant(
                                             [float((initial_bias or {}).get(name, 0.0)) for name in self.task_names]))
        self.log_variances = None
        if uncertainty_weighting:
            self.log_variances = self.add_weight("log_variances", shape=(len(self.task_names),), initializer="zeros",
                                                 dtype=tf.float32)

    def gates(self, features) -> Dict[str, tf.Tensor]:
        """``{task: [B, num_experts]}`` gate weights (MMoE only).

        Raises:
            ValueError: the model is the shared-bottom baseline (it has no gates).
        """
        if self.shared_bottom:
            raise ValueError("the shared-bottom model has no gates")
        return self.bottom.gates(self.embedding.concatenated(features))

    def call(self, features, training: bool = False) -> Dict[str, tf.Tensor]:
        inputs = self.embedding.concatenated(features)
        if self.shared_bottom:
            shared = self.bottom(inputs, training=training)
            per_task = {name: shared for name in self.task_names}
        else:
            per_task = self.bottom(inputs, training=training)
        return {name: tf.cast(self.towers[name](per_task[name], training=training), tf.float32) + self.task_bias[i]
                for i, name in enumerate(self.task_names)}

    def task_weights(self) -> Dict[str, float]:
        """The current weight of each task's loss: ``c_t * exp(-s_t)`` or the fixed weight."""
        if self.log_variances is None:
            return dict(self.loss_weights)
        return {name: float(self._scale(name) * tf.exp(-self.log_variances[i]))
                for i, name in enumerate(self.task_names)}

    def _scale(self, name: str) -> float:
        return 1.0 if is_binary_task(self.ranking_tasks[name]) else 0.5

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        """This replica's share of the (fixed- or uncertainty-) weighted sum of task losses.

        Binary tasks' labels are checked to be 0 / 1.
        """
        features, labels, weights = self._split(inputs)
        logits = to_float32(self._logits_by_task(self(features, training=training)))
        weights = tf.cast(weights, tf.float32) if weights is not None else None
        total = tf.constant(0.0, tf.float32)
        local_batch = None
        for index, name in enumerate(self.task_names):
            task = self.ranking_tasks[name]
            label = tf.reshape(tf.cast(labels[name], tf.float32), [-1, 1])
            if is_binary_task(task):
                label = checked_binary_label(label, name, self.label_keys[name])
            loss = summed(task(labels=label, predictions=tf.reshape(logits[name], [-1, 1]),
                               sample_weight=weights, training=training))
            if local_batch is None:
                local_batch = cross_replica.batch_size(label)
            if self.log_variances is None:
                total += self.loss_weights[name] * loss
            else:
                log_variance = self.log_variances[index]
                # The regulariser s_t / 2 is per global batch: local rows / global rows of it here.
                total += self._scale(name) * tf.exp(-log_variance) * loss
                total += 0.5 * log_variance * tf.cast(local_batch, tf.float32)
        return self.replica_loss(total, local_batch)


@export("tfrecs.models.SharedBottom", name="shared_bottom")
class SharedBottom(MMoE):
    """The shared-bottom multi-task baseline: ``MMoE(..., shared_bottom=True)``.

    Example::

        model = SharedBottom(spec, expert_units=(64,), tower_units=(32,))
    """

    def __init__(self, spec: FeatureSpec, **kwargs):
        kwargs["shared_bottom"] = True
        super().__init__(spec, **kwargs)
