"""MMoE (Ma et al., KDD 2018) and its shared-bottom baseline, multi-task on the ranking base.

All features are embedded (``FeatureEmbedding``) and concatenated. MMoE feeds them to shared
experts mixed per task by softmax gates (``MixtureOfExperts``); the shared-bottom baseline
(``SharedBottom``) feeds them to one shared MLP. Each task has its own tower (``MLP``)
ending in one logit. Default tasks, for the ML-100K CTR view: ``like`` (rating >= 4,
binary: ``like/auc``, ``like/logloss``) and ``rating`` (the rating itself, regression:
``rating/rmse``, ``rating/mae``). ``predict`` returns a dict task -> probability (binary)
or value (regression).

With ``uncertainty_weighting=True`` the task losses are weighted by learned
log-variances ``s_t`` (Kendall, Gal & Cipolla, CVPR 2018):
``sum_t c_t * exp(-s_t) * L_t + s_t / 2``, with ``c_t = 1/2`` for regression (Gaussian
likelihood) and ``1`` for binary tasks; ``L_t`` is the task's mean loss over the global batch.

Example::

    model = MMoE(spec, num_experts=4)                # tasks "like" and "rating"
    model = SharedBottom(spec)                       # the baseline
    model.compile(optimizer="adam")
    model.fit(dataset)                               # batches hold "like" and "rating"
    model.predict(dataset)["like"]                   # [batch, 1] probabilities
"""

from typing import Dict, Mapping, Optional, Sequence

import tensorflow as tf
import tensorflow_recommenders as tfrs
import tf_keras

from tfrecs.core import cross_replica
from tfrecs.core.precision import to_float32
from tfrecs.core.registration import export
from tfrecs.data.feature_spec import FeatureSpec
from tfrecs.layers.experts import MixtureOfExperts
from tfrecs.layers.feature_embedding import FeatureEmbedding
from tfrecs.layers.mlp import MLP
from tfrecs.models.base import RankingModel, ranking_task, ranking_task_kind, require_inputs, summed
from tfrecs.models.ctr_base import checked_binary_label

DEFAULT_TASKS = {"like": "binary", "rating": "regression"}


def default_tasks(kinds: Optional[Mapping[str, str]] = None) -> Dict[str, tfrs.tasks.Ranking]:
    """Task name -> ``ranking_task(kind)``, metric names prefixed by the task (``like/auc``).

    Example::

        default_tasks()   # {"like": binary task, "rating": regression task}
    """
    return {name: ranking_task(kind, metric_prefix=f"{name}/") for name, kind in (kinds or DEFAULT_TASKS).items()}


@export("tfrecs.models.MMoE", name="mmoe")
class MMoE(RankingModel):
    """Multi-gate mixture of experts with one tower per task.

    Args:
        spec: fitted ``FeatureSpec`` of the input features (or its config dict).
        features: features to embed (default: every spec feature but the labels).
        embedding_dim: embedding size.
        num_experts: experts of MMoE (ignored by ``SharedBottom``).
        expert_units: hidden layers of each expert, and of the shared bottom.
        tower_units: hidden layers of each task tower (then one linear logit).
        dropout: dropout in experts / bottom and towers.
        tasks: task name -> kind, ``"binary"`` or ``"regression"`` (default
            ``{"like": "binary", "rating": "regression"}``); metrics are prefixed by the
            task name (``like/auc``).
        label_keys: task name -> label feature (default: the task name).
        loss_weights: fixed task weights (default 1.0 each; only 1.0 with
            ``uncertainty_weighting``).
        uncertainty_weighting: learn per-task log-variances that weight the losses.
        initial_bias: task name -> starting value of its logit's bias (e.g. the mean rating for
            a regression task, so training does not begin far off the target's scale).
        **kwargs: ``sample_weight_key`` and Keras ``name``.

    Raises:
        ValueError: loss weights other than 1.0 together with ``uncertainty_weighting``, an
            unknown task kind, or what ``RankingModel`` / ``MixtureOfExperts`` raise.
        KeyError: a feature not in the spec.
        MissingInputError: at call time, a batch missing a feature.
        tf.errors.InvalidArgumentError: a binary task's label outside {0, 1} (training or
            evaluation).
    """

    shared_bottom: bool = False

    def __init__(
        self,
        spec: FeatureSpec,
        features: Optional[Sequence[str]] = None,
        embedding_dim: int = 16,
        num_experts: int = 4,
        expert_units: Sequence[int] = (64,),
        tower_units: Sequence[int] = (32,),
        dropout: float = 0.0,
        tasks: Optional[Mapping[str, str]] = None,
        label_keys: Optional[Mapping[str, str]] = None,
        loss_weights: Optional[Mapping[str, float]] = None,
        uncertainty_weighting: bool = False,
        initial_bias: Optional[Mapping[str, float]] = None,
        **kwargs,
    ):
        if uncertainty_weighting and any(float(w) != 1.0 for w in (loss_weights or {}).values()):
            raise ValueError("MMoE: pass either loss_weights or uncertainty_weighting=True, not both")
        kinds = dict(tasks if tasks is not None else DEFAULT_TASKS)
        super().__init__(tasks=default_tasks(kinds), label_keys=label_keys, loss_weights=loss_weights, **kwargs)
        self.spec = FeatureSpec.coerce(spec)
        if features is not None:
            hidden_labels = sorted(set(features) & set(self.label_keys.values()))
            if hidden_labels:
                raise ValueError(f"MMoE: features {hidden_labels} are label features; a model cannot read its labels")
        else:
            features = [name for name in self.spec.names if name not in self.label_keys.values()]
        unknown = sorted(set(initial_bias or {}) - set(self.task_names))
        if unknown:
            raise ValueError(f"initial_bias names unknown task(s) {unknown}; the tasks are {list(self.task_names)}")
        self.features, self.embedding_dim, self.num_experts = list(features), int(embedding_dim), int(num_experts)
        self.expert_units, self.tower_units, self.dropout = tuple(expert_units), tuple(tower_units), float(dropout)
        self.tasks, self.uncertainty_weighting = kinds, uncertainty_weighting
        self.initial_bias = dict(initial_bias) if initial_bias else None
        self.embedding = FeatureEmbedding(self.spec, embedding_dim, features=features, name="embedding")
        if self.shared_bottom:
            self.bottom = MLP(expert_units, dropout=dropout, name="shared_bottom")
        else:
            self.bottom = MixtureOfExperts(num_experts, expert_units, self.task_names, dropout=dropout, name="experts")
        self.towers = {
            name: MLP(tower_units, dropout=dropout, output_units=1, name=f"tower_{name}") for name in self.task_names
        }
        self.task_bias = self.add_weight(
            "task_bias",
            shape=(len(self.task_names),),
            dtype=tf.float32,
            initializer=tf_keras.initializers.Constant(
                [float((initial_bias or {}).get(name, 0.0)) for name in self.task_names]
            ),
        )
        self.log_variances = None
        if uncertainty_weighting:
            self.log_variances = self.add_weight(
                "log_variances", shape=(len(self.task_names),), initializer="zeros", dtype=tf.float32
            )

    def _inputs(self, features) -> tf.Tensor:
        require_inputs(
            type(self).__name__,
            features,
            self.embedding.feature_names,
            how="Declare it in the FeatureSpec and put its column in the batch.",
        )
        return self.embedding.concatenated(features)

    def gates(self, features) -> Dict[str, tf.Tensor]:
        """``{task: [B, num_experts]}`` gate weights (MMoE only).

        Raises:
            ValueError: the model is the shared-bottom baseline (it has no gates).
        """
        if self.shared_bottom:
            raise ValueError("the shared-bottom model has no gates")
        return self.bottom.gates(self._inputs(features))

    def call(self, features, training: bool = False) -> Dict[str, tf.Tensor]:
        inputs = self._inputs(features)
        if self.shared_bottom:
            shared = self.bottom(inputs, training=training)
            per_task = {name: shared for name in self.task_names}
        else:
            per_task = self.bottom(inputs, training=training)
        return {
            name: tf.cast(self.towers[name](per_task[name], training=training), tf.float32) + self.task_bias[i]
            for i, name in enumerate(self.task_names)
        }

    def task_weights(self) -> Dict[str, float]:
        """The current weight of each task's loss: ``c_t * exp(-s_t)`` or the fixed weight."""
        if self.log_variances is None:
            return dict(self.loss_weights)
        return {
            name: float(self._scale(name) * tf.exp(-self.log_variances[i])) for i, name in enumerate(self.task_names)
        }

    def _scale(self, name: str) -> float:
        return 1.0 if ranking_task_kind(self.ranking_tasks[name]) == "binary" else 0.5

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
            if ranking_task_kind(task) == "binary":
                label = checked_binary_label(label, name, self.label_keys[name])
            loss = summed(
                task(
                    labels=label,
                    predictions=tf.reshape(logits[name], [-1, 1]),
                    sample_weight=weights,
                    training=training,
                )
            )
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
    """The shared-bottom multi-task baseline: one shared MLP (``expert_units``) instead of
    gated experts; the arguments are ``MMoE``'s (``num_experts`` is unused).

    Example::

        model = SharedBottom(spec, expert_units=(64,), tower_units=(32,))
    """

    shared_bottom = True
