"""Base classes every tfrecs architecture builds on: ``RetrievalModel`` and ``RankingModel``.

Both extend ``tfrs.Model`` and keep its contract (``compute_loss(inputs, training)`` returns
the loss and updates metrics) while owning what ``tfrs.Model`` gets wrong for the product:

* the train step scales the loss through a ``LossScaleOptimizer`` under ``mixed_float16``
  (dynamic loss scale, unscaled gradients, a step with non-finite gradients is skipped and
  the scale lowered);
* scores, logits and losses are cast to float32 before the TFRS task, whatever the policy;
* each replica sums its examples' losses and divides by the *global* batch size, so N
  replicas take the same step as one device with the same global batch;
* retrieval gathers candidate embeddings (with ids and sampling probabilities) from every
  replica, so in-batch negatives are global, not per replica.

Subclasses only describe the network:

* retrieval: set ``query_tower`` / ``candidate_tower`` (layers taking the features dict), or
  override ``compute_query_embeddings(features, training)`` and
  ``compute_candidate_embeddings(features, training)``;
* ranking: implement ``call(features, training) -> logits`` (a tensor for one task, or a dict
  task name -> logits for several).

Example::

    class MatrixFactorization(RetrievalModel):
        def __init__(self, num_users, num_items, dim=32):
            super().__init__(candidate_id_key="item_id")
            self.query_tower = tf_keras.layers.Embedding(num_users, dim)
            self.candidate_tower = tf_keras.layers.Embedding(num_items, dim)

        def compute_query_embeddings(self, features, training=False):
            return self.query_tower(features["user_id"])

        def compute_candidate_embeddings(self, features, training=False):
            return self.candidate_tower(features["item_id"])
"""

import json
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import tensorflow as tf
import tensorflow_recommenders as tfrs
import tf_keras

from tfrecs.core import cross_replica
from tfrecs.core.config import ConfigFromInit
from tfrecs.core.precision import force_float32, is_loss_scale_optimizer, to_float32
from tfrecs.core.errors import TfrecsError
from tfrecs.core.tasks import (  # noqa: F401  - re-exported for model authors
    accidental_hit_mask,
    check_task_loss,
    float32_policy,
    ranking_task,
    ranking_task_kind,
    retrieval_task,
    summed,
)

Features = Mapping[str, tf.Tensor]


class MissingInputError(TfrecsError, KeyError):
    """A batch lacks a feature the model reads; the message names it and how to provide it."""

    # Autograph re-raises an error from inside fit() with its own type only when the type's
    # __init__ is Exception.__init__; otherwise users would see a StagingError.
    __init__ = Exception.__init__

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def require_inputs(model_name: str, features: Features, names, how: str = "") -> None:
    """Raises ``MissingInputError`` naming every feature of ``names`` that ``features`` lacks.

    Example::

        require_inputs("DeepFM", batch, ["user_id", "age"], how="declare it in the FeatureSpec")
    """
    missing = [name for name in names if name not in features]
    if missing:
        hint = f" {how}" if how else ""
        raise MissingInputError(
            f"{model_name} reads input(s) {missing}, which the batch lacks; the batch has {sorted(features)}.{hint}"
        )


class BaseModel(ConfigFromInit, tfrs.Model):
    """Shared train/test steps: loss scaling, float32 losses, global-batch normalisation.

    Subclasses implement ``compute_loss(inputs, training)`` returning *this replica's share*
    of the loss: the sum of its examples' losses divided by the global batch size (use
    ``self.replica_loss``). ``RetrievalModel`` and ``RankingModel`` already do this.

    The ``loss``, ``regularization_loss`` and ``total_loss`` reported to Keras are epoch
    means of the global-batch loss, the same under any number of replicas.

    Example (a custom loss on top of a ranking model)::

        class Pairwise(RankingModel):
            def compute_loss(self, inputs, training=False):
                features, labels, _ = self._split(inputs)
                logits = tf.cast(self(features, training=training), tf.float32)
                per_example = tf.nn.softplus(-logits[:, 0] * (2 * labels["label"] - 1))
                return self.replica_loss(tf.reduce_sum(per_example), tf.shape(logits)[0])
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._build_features_json = ""  # JSON: a str attribute is not wrapped by Keras tracking
        self.loss_tracker = tf_keras.metrics.Mean(name="loss")
        self.regularization_loss_tracker = tf_keras.metrics.Mean(name="regularization_loss")
        self.total_loss_tracker = tf_keras.metrics.Mean(name="total_loss")

    # -- Keras contract --------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, **kwargs):
        """Keras ``compile``; the loss is the model's own (its TFRS task), so ``loss=`` is refused.

        ``metrics=`` is honoured by ranking models (each metric sees labels and probabilities);
        retrieval models compute their top-K metrics in their task and refuse it.

        Raises:
            ValueError: ``loss=`` given (or ``metrics=`` for a model that cannot honour it).
        """
        if loss is not None:
            raise ValueError(
                f"{type(self).__name__} computes its own loss ({self._loss_description()}); "
                "compile(loss=...) would be ignored, so it is refused. Choose the objective with "
                "the model's constructor arguments instead."
            )
        metrics = self._accept_compiled_metrics(metrics)
        super().compile(optimizer=optimizer, **kwargs)

    def _loss_description(self) -> str:
        return "its TFRS task"

    def _accept_compiled_metrics(self, metrics):
        if metrics:
            raise ValueError(
                f"{type(self).__name__} computes its own metrics in its TFRS task; compile(metrics=...) "
                "is not supported for it."
            )
        return None

    # -- helpers for subclasses ------------------------------------------------------------
    @staticmethod
    def replica_loss(loss_sum: tf.Tensor, local_batch_size: tf.Tensor) -> tf.Tensor:
        """This replica's share of a summed loss: ``loss_sum / global_batch_size``."""
        return cross_replica.per_replica_loss(loss_sum, cross_replica.global_batch_size(local_batch_size))

    def build_from_batch(self, batch: Any) -> None:
        """Creates the variables (and optimizer slots, if compiled) from one batch.

        ``BackupAndRestore`` restores into existing variables, so ``tfrecs.training.fit`` calls
        this before fitting. Call it under the strategy's scope.
        """
        self._forward_for_build(batch)
        self._remember_build_features(batch)
        self.built = True
        optimizer = getattr(self, "optimizer", None)
        if optimizer is not None and callable(getattr(optimizer, "build", None)):
            optimizer.build(self.trainable_variables)

    def _forward_for_build(self, batch: Any) -> None:
        raise NotImplementedError

    def _remember_build_features(self, batch: Any) -> None:
        features = batch[0] if isinstance(batch, tuple) else batch
        if isinstance(features, Mapping):
            self._build_features_json = json.dumps(
                {
                    name: {"dtype": tf.as_dtype(value.dtype).name, "shape": [None] + list(value.shape[1:])}
                    for name, value in features.items()
                }
            )

    def get_build_config(self) -> Optional[Dict[str, Any]]:
        """The input features' dtypes and shapes, so a ``.keras`` reload can build the model."""
        return {"features": json.loads(self._build_features_json)} if self._build_features_json else None

    def build_from_config(self, config: Dict[str, Any]) -> None:
        """Builds the variables from a batch of one placeholder row per recorded feature."""
        features = {}
        for name, entry in config["features"].items():
            shape = [1] + [dim or 1 for dim in entry["shape"][1:]]
            dtype = tf.as_dtype(entry["dtype"])
            features[name] = tf.fill(shape, "") if dtype == tf.string else tf.zeros(shape, dtype)
        self.build_from_batch(features)

    def __call__(self, *args, **kwargs):
        if not self._build_features_json and args:
            self._remember_build_features(args[0])
        return super().__call__(*args, **kwargs)

    # -- Keras steps -----------------------------------------------------------------------
    def train_step(self, inputs):
        """One optimisation step; scales the loss when the optimizer is a LossScaleOptimizer."""
        optimizer = self.optimizer
        scaled = is_loss_scale_optimizer(optimizer)
        with tf.GradientTape() as tape:
            loss = tf.cast(self.compute_loss(inputs, training=True), tf.float32)
            regularization = cross_replica.regularization_share(self.losses)
            total = loss + regularization
            objective = optimizer.get_scaled_loss(total) if scaled else total
        variables = self.trainable_variables
        gradients = tape.gradient(objective, variables)
        if scaled:
            gradients = optimizer.get_unscaled_gradients(gradients)
        optimizer.apply_gradients(zip(gradients, variables))
        return self._record(loss, regularization)

    def test_step(self, inputs):
        """One evaluation step: the same loss, no update."""
        loss = tf.cast(self.compute_loss(inputs, training=False), tf.float32)
        regularization = cross_replica.regularization_share(self.losses)
        return self._record(loss, regularization)

    def _record(self, loss: tf.Tensor, regularization: tf.Tensor) -> Dict[str, tf.Tensor]:
        # Each replica holds its share; the Mean over replicas and steps of share * replicas is
        # the mean over steps of the global-batch loss, exact for uneven splits too.
        replicas = float(cross_replica.num_replicas())
        self.loss_tracker.update_state(loss * replicas)
        self.regularization_loss_tracker.update_state(regularization * replicas)
        self.total_loss_tracker.update_state((loss + regularization) * replicas)
        results: Dict[str, tf.Tensor] = {}
        for metric in self.metrics:
            value = metric.result()
            if isinstance(value, dict):
                results.update(value)
            else:
                results[metric.name] = value
        return results


class Recommender:
    """Mixin: ``recommend`` = top-k of ``self(inputs)`` against ``self.catalogue()``, in raw ids.

    A subclass's ``call`` returns query vectors and ``catalogue()`` the raw ids and candidate
    vectors of every item; scores are their dot products.
    """

    def catalogue(self) -> Tuple[tf.Tensor, tf.Tensor]:
        """``(raw ids [N], candidate embeddings [N, dim])`` that ``recommend`` ranks.

        Models that own their item table (sequential models, LightGCN) return it; others
        return what ``index_candidates`` set.

        Raises:
            ValueError: the model has no catalogue yet.
        """
        catalogue = getattr(self, "_catalogue", None)
        if catalogue is None:
            raise ValueError(
                f"{type(self).__name__}.recommend needs a catalogue: call "
                "model.index_candidates(item_features) first (every item's candidate-tower features)."
            )
        return catalogue

    def recommend(self, inputs: Features, k: int = 10, exclude: Any = None) -> Tuple[tf.Tensor, tf.Tensor]:
        """Top-``k`` raw item ids and their float32 scores for each query row.

        Args:
            inputs: query features (a dict of batched tensors).
            k: how many items per query (at most the catalogue size).
            exclude: raw ids to leave out, per query: a list of lists, a ragged or a padded
                dense tensor (ids outside the catalogue are ignored).

        Returns:
            ``(item_ids [batch, k], scores [batch, k])``, best first.

        Example::

            model.index_candidates(items)                    # or a model with its own catalogue
            ids, scores = model.recommend({"user_id": tf.constant(["196"])}, k=10)
        """
        if k < 1:
            raise ValueError(f"recommend: k must be >= 1, got {k}")
        ids, embeddings = self.catalogue()
        queries = to_float32(self(inputs, training=False))
        scores = tf.matmul(queries, tf.cast(embeddings, tf.float32), transpose_b=True)
        if exclude is not None:
            scores = tf.where(excluded_positions(ids, exclude, tf.shape(scores)[0]), -float("inf"), scores)
        top = tf.math.top_k(scores, k=min(int(k), int(ids.shape[0])))
        return tf.gather(ids, top.indices), top.values


class RetrievalModel(Recommender, BaseModel):
    """Two-tower retrieval base: query tower, candidate tower and a TFRS Retrieval task.

    Each row of a batch is a (query, positive candidate) pair; every other candidate of the
    *global* batch is a negative (``cross_replica_negatives=True``), and a negative with the
    positive's id is masked when ids are given.

    Args:
        query_tower: layer mapping the features dict to ``[batch, dim]`` query embeddings
            (or override ``compute_query_embeddings``).
        candidate_tower: layer mapping the features dict to ``[batch, dim]`` candidate
            embeddings (or override ``compute_candidate_embeddings``).
        task: a ``tfrs.tasks.Retrieval`` with a SUM or NONE loss (default:
            ``retrieval_task(...)`` with ``temperature`` and accidental-hit removal).
        candidate_id_key: feature holding candidate ids (accidental hits, id-based metrics).
        sampling_probability_key: feature holding candidates' sampling probabilities
            (logQ correction).
        sample_weight_key: feature holding per-example weights.
        cross_replica_negatives: gather candidates from all replicas (default True).
        remove_accidental_hits: default: True when ``candidate_id_key`` is given.
        temperature: softmax temperature of the default task.
        compute_metrics_in_training: evaluate factorized top-K metrics in training too
            (slow; off by default, they run in ``evaluate``).

    Raises:
        ValueError: accidental-hit removal without ``candidate_id_key``, or a task loss that
            averages.

    Example::

        class TwoTower(RetrievalModel):
            def __init__(self):
                super().__init__(candidate_id_key="item_id")
                self.query_tower = tf_keras.layers.Embedding(1000, 16)
                self.candidate_tower = tf_keras.layers.Embedding(500, 16)

            def compute_query_embeddings(self, features, training=False):
                return self.query_tower(features["user_id"])

            def compute_candidate_embeddings(self, features, training=False):
                return self.candidate_tower(features["item_id"])
    """

    def __init__(
        self,
        query_tower: Optional[tf_keras.layers.Layer] = None,
        candidate_tower: Optional[tf_keras.layers.Layer] = None,
        task: Optional[tfrs.tasks.Retrieval] = None,
        candidate_id_key: Optional[str] = None,
        sampling_probability_key: Optional[str] = None,
        sample_weight_key: Optional[str] = None,
        cross_replica_negatives: bool = True,
        remove_accidental_hits: Optional[bool] = None,
        temperature: Optional[float] = None,
        compute_metrics_in_training: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if task is None:
            task = retrieval_task(temperature=temperature)
        check_task_loss(task, "RetrievalModel(task=...)")
        if getattr(task, "_remove_accidental_hits", False):
            # Taken over: TFRS builds a Keras layer per call for it, which would compute in
            # float16 under mixed precision; a score mask does the same in float32.
            task._remove_accidental_hits = False
            remove_accidental_hits = True
        if remove_accidental_hits is None:
            remove_accidental_hits = candidate_id_key is not None
        if remove_accidental_hits and candidate_id_key is None:
            raise ValueError(
                "remove_accidental_hits=True needs candidate_id_key, the feature that holds "
                "candidate ids; pass candidate_id_key='item_id' (or your id feature)."
            )
        force_float32(task)
        if not task.built:
            task.build(None)  # weightless; built here so a model whose objective never calls it saves fully
        self.remove_accidental_hits = bool(remove_accidental_hits)
        self.query_tower = query_tower
        self.candidate_tower = candidate_tower
        self.task = task
        self.candidate_id_key = candidate_id_key
        self.sampling_probability_key = sampling_probability_key
        self.sample_weight_key = sample_weight_key
        self.cross_replica_negatives = cross_replica_negatives
        self.compute_metrics_in_training = compute_metrics_in_training

    def compute_query_embeddings(self, features: Features, training: bool = False) -> tf.Tensor:
        """``[batch, dim]`` query embeddings; default: ``self.query_tower(features)``."""
        if self.query_tower is None:
            raise NotImplementedError(
                f"{type(self).__name__} must set self.query_tower or override compute_query_embeddings"
            )
        return self.query_tower(features, training=training)

    def compute_candidate_embeddings(self, features: Features, training: bool = False) -> tf.Tensor:
        """``[batch, dim]`` candidate embeddings; default: ``self.candidate_tower(features)``."""
        if self.candidate_tower is None:
            raise NotImplementedError(
                f"{type(self).__name__} must set self.candidate_tower or override compute_candidate_embeddings"
            )
        return self.candidate_tower(features, training=training)

    def call(self, features: Features, training: bool = False) -> tf.Tensor:
        """Query embeddings (float32), so ``predict`` and exports serve the query side."""
        return to_float32(self.compute_query_embeddings(features, training=training))

    def candidate_embeddings(self, features: Features) -> tf.Tensor:
        """float32 candidate embeddings, e.g. to build a top-K index for evaluation or export."""
        return to_float32(self.compute_candidate_embeddings(features, training=False))

    def _forward_for_build(self, batch: Any) -> None:
        features = batch[0] if isinstance(batch, tuple) else batch
        self.compute_query_embeddings(features)
        self.compute_candidate_embeddings(features)

    # -- recommend ---------------------------------------------------------------------------
    def index_candidates(self, candidates: Features, ids: Any = None) -> None:
        """Sets the catalogue that ``recommend`` ranks: candidate features (one row per item).

        Args:
            candidates: features of every candidate, as the candidate tower reads them.
            ids: raw ids of the rows (default: ``candidates[candidate_id_key]``).

        Raises:
            ValueError: no ids given and the model has no ``candidate_id_key``.
        """
        if ids is None:
            if not self.candidate_id_key or self.candidate_id_key not in candidates:
                raise ValueError(
                    f"{type(self).__name__}.index_candidates: pass ids=..., or include the candidate id "
                    f"feature {self.candidate_id_key!r} in the candidates."
                )
            ids = candidates[self.candidate_id_key]
        embeddings = self.candidate_embeddings(candidates)
        self._catalogue = (tf.convert_to_tensor(ids), embeddings)

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        """This replica's share of the in-batch softmax loss (sum / global batch size)."""
        features = inputs[0] if isinstance(inputs, tuple) else inputs
        queries = to_float32(self.compute_query_embeddings(features, training=training))
        candidates = to_float32(self.compute_candidate_embeddings(features, training=training))
        ids = features[self.candidate_id_key] if self.candidate_id_key else None
        probabilities = (
            tf.cast(features[self.sampling_probability_key], tf.float32) if self.sampling_probability_key else None
        )
        weights = tf.cast(features[self.sample_weight_key], tf.float32) if self.sample_weight_key else None
        local_candidates, local_ids = candidates, ids
        if self.cross_replica_negatives:
            candidates, ids, probabilities = cross_replica.gather_candidates(candidates, ids, probabilities)

        score_mask = accidental_hit_mask(ids, tf.shape(queries)[0]) if self.remove_accidental_hits else None
        with float32_policy():
            loss = self.task(
                queries,
                candidates,
                sample_weight=weights,
                candidate_sampling_probability=probabilities,
                candidate_ids=ids,
                compute_metrics=False,
                compute_batch_metrics=True,
                score_mask=score_mask,
            )
        if not training or self.compute_metrics_in_training:
            # Factorized metrics score this replica's own pairs (TFRS would pass the gathered
            # ids, whose length no longer matches the queries).
            for metric in self.task.factorized_metrics:
                metric.update_state(queries, local_candidates, true_candidate_ids=local_ids, sample_weight=weights)
        return self.replica_loss(summed(loss), cross_replica.batch_size(queries))


class RankingModel(BaseModel):
    """Ranking / CTR base: ``call`` returns logits, TFRS Ranking tasks turn them into losses.

    Args:
        tasks: task name -> ``tfrs.tasks.Ranking`` with a SUM or NONE loss. Default: one
            binary task named ``"label"`` (``ranking_task("binary")``).
        label_keys: task name -> feature holding its label (default: the task name).
        loss_weights: task name -> weight of its loss in the total (default 1.0 each).
        sample_weight_key: feature holding per-example weights.

    Batches are dicts (labels are features named by ``label_keys`` and are not passed to
    ``call``) or ``(features, labels)`` / ``(features, labels, weights)`` tuples, where
    ``labels`` is a tensor (one task) or a dict task name -> tensor.

    Raises:
        ValueError: a loss weight or label key for an unknown task, or a task loss that
            averages.

    Example::

        class LogisticRegression(RankingModel):
            def __init__(self):
                super().__init__()                      # binary task on features["label"]
                self.weights_ = tf_keras.layers.Embedding(1000, 1)

            def call(self, features, training=False):
                return tf.reduce_sum(self.weights_(features["ids"]), axis=1)   # logits
    """

    def __init__(
        self,
        tasks: Optional[Mapping[str, tfrs.tasks.Ranking]] = None,
        label_keys: Optional[Mapping[str, str]] = None,
        loss_weights: Optional[Mapping[str, float]] = None,
        sample_weight_key: Optional[str] = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        tasks = dict(tasks) if tasks is not None else {"label": ranking_task("binary")}
        if not tasks:
            raise ValueError("tasks must name at least one ranking task.")
        for name, task in tasks.items():
            check_task_loss(task, f"RankingModel(tasks={{{name!r}: ...}})")
            force_float32(task)
        label_keys = dict(label_keys or {})
        loss_weights = dict(loss_weights or {})
        for argument, mapping in (("label_keys", label_keys), ("loss_weights", loss_weights)):
            unknown = sorted(set(mapping) - set(tasks))
            if unknown:
                raise ValueError(f"{argument} names unknown task(s) {unknown}; the tasks are {sorted(tasks)}.")
        self.task_names: Tuple[str, ...] = tuple(tasks)
        self.ranking_tasks = tasks
        self.label_keys = {name: label_keys.get(name, name) for name in tasks}
        self.loss_weights = {name: float(loss_weights.get(name, 1.0)) for name in tasks}
        self.sample_weight_key = sample_weight_key

    def call(self, features: Features, training: bool = False) -> Union[tf.Tensor, Dict[str, tf.Tensor]]:
        """Logits: a tensor (single task) or a dict task name -> logits. Subclasses implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement call(features, training) -> logits")

    def _split(self, inputs) -> Tuple[Dict[str, tf.Tensor], Dict[str, tf.Tensor], Optional[tf.Tensor]]:
        """(features without labels, labels by task, sample weights) from a batch."""
        if isinstance(inputs, tuple):
            features, labels, weights = tf_keras.utils.unpack_x_y_sample_weight(inputs)
            if not isinstance(labels, Mapping):
                if len(self.task_names) != 1:
                    raise ValueError(
                        f"a batch with one label tensor fits one task; this model has {self.task_names}: "
                        "pass labels as a dict task name -> tensor."
                    )
                labels = {self.task_names[0]: labels}
            return dict(features), dict(labels), weights
        missing = sorted({key for key in self.label_keys.values() if key not in inputs})
        if missing:
            raise ValueError(
                f"the batch has no label feature(s) {missing} (label_keys={self.label_keys}); "
                f"its features are {sorted(inputs)}."
            )
        label_columns = set(self.label_keys.values())
        hidden = label_columns | ({self.sample_weight_key} if self.sample_weight_key else set())
        features = {key: value for key, value in inputs.items() if key not in hidden}
        labels = {name: inputs[key] for name, key in self.label_keys.items()}
        weights = inputs[self.sample_weight_key] if self.sample_weight_key else None
        return features, labels, weights

    def _logits_by_task(self, outputs) -> Dict[str, tf.Tensor]:
        if isinstance(outputs, Mapping):
            missing = [name for name in self.task_names if name not in outputs]
            if missing:
                raise ValueError(f"call() returned no logits for task(s) {missing}; it returned {sorted(outputs)}.")
            return {name: outputs[name] for name in self.task_names}
        if len(self.task_names) != 1:
            raise ValueError(f"call() returned one tensor but the model has tasks {self.task_names}; return a dict.")
        return {self.task_names[0]: outputs}

    def _forward_for_build(self, batch: Any) -> None:
        self(self._features_only(batch))

    def _features_only(self, batch: Any) -> Features:
        """The model inputs of a batch: labels and sample weights left out (they may be absent)."""
        features = tf_keras.utils.unpack_x_y_sample_weight(batch)[0] if isinstance(batch, tuple) else batch
        if isinstance(features, Mapping):
            hidden = set(self.label_keys.values()) | ({self.sample_weight_key} if self.sample_weight_key else set())
            features = {key: value for key, value in features.items() if key not in hidden}
        return features

    def _loss_description(self) -> str:
        kinds = {name: ranking_task_kind(task) for name, task in self.ranking_tasks.items()}
        return ", ".join(
            f"{name}: {'sigmoid cross-entropy on logits' if kind == 'binary' else 'squared error'}"
            for name, kind in kinds.items()
        )

    def _accept_compiled_metrics(self, metrics):
        """``compile(metrics=...)``: a list (every task) or a dict task -> list, fed probabilities."""
        if not metrics:
            return None
        by_task = metrics if isinstance(metrics, Mapping) else {name: metrics for name in self.task_names}
        unknown = sorted(set(by_task) - set(self.task_names))
        if unknown:
            raise ValueError(f"compile(metrics=...) names unknown task(s) {unknown}; the tasks are {self.task_names}")
        self.compiled_task_metrics = {name: [_as_metric(m) for m in items] for name, items in by_task.items()}
        return None

    def predictions(self, features: Features, training: bool = False) -> Union[tf.Tensor, Dict[str, tf.Tensor]]:
        """What ``predict`` returns: probabilities for binary tasks, values for regression tasks."""
        logits = to_float32(self._logits_by_task(self(features, training=training)))
        out = {
            name: tf.sigmoid(value) if ranking_task_kind(self.ranking_tasks[name]) == "binary" else value
            for name, value in logits.items()
        }
        return out[self.task_names[0]] if len(self.task_names) == 1 else out

    def predict_step(self, data):
        return self.predictions(self._features_only(data))

    def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
        """This replica's share of the weighted sum of task losses (sum / global batch size)."""
        features, labels, weights = self._split(inputs)
        logits = to_float32(self._logits_by_task(self(features, training=training)))
        if weights is not None:
            weights = tf.cast(weights, tf.float32)
        total = tf.constant(0.0, tf.float32)
        local_batch = None
        for name in self.task_names:
            prediction = logits[name]
            label = tf.cast(labels[name], tf.float32)
            if prediction.shape.rank == 1:
                prediction = prediction[:, None]
            if label.shape.rank == 1:
                label = label[:, None]
            loss = self.ranking_tasks[name](
                labels=label, predictions=prediction, sample_weight=weights, training=training
            )
            compiled = getattr(self, "compiled_task_metrics", {}).get(name, ())
            if compiled:
                values = (
                    tf.sigmoid(prediction) if ranking_task_kind(self.ranking_tasks[name]) == "binary" else prediction
                )
                for metric in compiled:
                    metric.update_state(label, values, sample_weight=weights)
            total += self.loss_weights[name] * summed(loss)
            if local_batch is None:
                local_batch = cross_replica.batch_size(label)
        return self.replica_loss(total, local_batch)


def _as_metric(metric) -> tf_keras.metrics.Metric:
    """A Keras metric from what ``compile(metrics=...)`` accepts (instance, name or function)."""
    if isinstance(metric, tf_keras.metrics.Metric):
        return metric
    resolved = tf_keras.metrics.get(metric)
    if isinstance(resolved, tf_keras.metrics.Metric):
        return resolved
    if isinstance(resolved, type):
        return resolved()
    name = metric if isinstance(metric, str) else getattr(resolved, "__name__", "metric")
    return tf_keras.metrics.MeanMetricWrapper(resolved, name=name)


def excluded_positions(ids: tf.Tensor, exclude: Any, num_queries: tf.Tensor) -> tf.Tensor:
    """``[batch, N]`` bool: True where catalogue row ``n`` holds an id ``exclude`` lists for the query.

    Example::

        excluded_positions(tf.constant(["a", "b"]), [["b"], []], 2)   # [[False, True], [False, False]]
    """
    padding = "" if ids.dtype == tf.string else -1
    if isinstance(exclude, tf.RaggedTensor):
        exclude = exclude.to_tensor(padding)
    elif not isinstance(exclude, tf.Tensor):
        rows = [list(row) for row in exclude]
        width = max([len(row) for row in rows] + [1])
        exclude = tf.constant([row + [padding] * (width - len(row)) for row in rows], dtype=ids.dtype)
    exclude = tf.cast(exclude, ids.dtype) if ids.dtype != tf.string else exclude
    matches = tf.equal(exclude[:, :, None], ids[None, None, :])  # [batch, E, N]
    return tf.reduce_any(matches, axis=1)
