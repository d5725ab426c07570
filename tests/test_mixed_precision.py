"""mixed_float16: float32 variables, float16 compute, loss scaling that learns and survives overflow;
mixed_bfloat16 CTR models: bf16 matmuls (cross layers included), float32 logits and losses, AUC as float32."""

import os
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs
import tf_keras

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "workers"))
import tiny_models as tm  # noqa: E402

from tfrecs import training  # noqa: E402
from tfrecs.models.base import ranking_task, retrieval_task  # noqa: E402


@pytest.fixture
def mixed_float16():
    with training.precision_scope("mixed_float16") as policy:
        yield policy


def _compiled(model, rows, learning_rate=0.05):
    model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate))
    model.build_from_batch(next(iter(tm.dataset(rows, 8))))
    return model


def test_variables_float32_compute_float16_outputs_float32(mixed_float16):
    rows = tm.interactions(16)
    ranking = _compiled(tm.TinyRanking(), rows)
    retrieval = _compiled(tm.TinyRetrieval(), rows)
    features = {k: tf.constant(v[:8]) for k, v in rows.items()}

    for model in (ranking, retrieval):
        assert model.variables and all(v.dtype == tf.float32 for v in model.trainable_variables)
        assert isinstance(model.optimizer, tf_keras.mixed_precision.LossScaleOptimizer)
        assert model.optimizer.dynamic
    assert ranking.hidden.compute_dtype == "float16"
    assert ranking(features).dtype == tf.float16  # the network itself runs in float16
    assert retrieval.compute_candidate_embeddings(features).dtype == tf.float16
    assert retrieval(features).dtype == tf.float32  # embeddings leave the model in float32
    assert ranking.compute_loss(features).dtype == tf.float32
    assert retrieval.compute_loss(features).dtype == tf.float32


def test_retrieval_top_k_metrics_evaluate_in_float32(mixed_float16):
    index = tfrs.layers.factorized_top_k.BruteForce(k=5)
    task = retrieval_task(metrics=[tfrs.metrics.FactorizedTopK(candidates=index, ks=(1, 5))], num_hard_negatives=6)
    rows = tm.interactions(64, seed=7)
    model = _compiled(tm.TinyRetrieval(task=task), rows)
    assert task.compute_dtype == "float32" and index.compute_dtype == "float32"
    model.fit(tm.dataset(rows, 16), epochs=1, verbose=0)
    items = tf.range(tm.NUM_ITEMS)
    index.index(model.candidate_embeddings({"item_id": items}), items)
    results = model.evaluate(tm.dataset(rows, 16), return_dict=True, verbose=0)
    top1, top5 = (
        results["factorized_top_k/top_1_categorical_accuracy"],
        results["factorized_top_k/top_5_categorical_accuracy"],
    )
    assert 0.0 <= top1 <= top5 <= 1.0 and top5 > 0.0
    assert np.isfinite(results["loss"])


def test_loss_decreases_on_learnable_task(mixed_float16):
    rows = tm.interactions(256, seed=2)
    model = _compiled(tm.TinyRanking(), rows)
    history = model.fit(tm.dataset(rows, 32), epochs=8, verbose=0)
    losses = history.history["loss"]
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.8 * losses[0], losses
    assert history.history["auc"][-1] > 0.75


def test_overflow_skips_step_and_lowers_loss_scale(mixed_float16):
    tasks = {"rating": ranking_task("regression")}
    rows = tm.interactions(16, seed=4)
    model = _compiled(tm.TinyRanking(tasks=tasks), rows, learning_rate=0.01)
    model.fit(tm.dataset(rows, 8), epochs=1, verbose=0)  # two normal steps
    optimizer = model.optimizer
    scale_before = float(optimizer.loss_scale.numpy())
    steps_before = int(optimizer.iterations.numpy())
    weights_before = [v.numpy() for v in model.trainable_variables]

    huge = dict(rows)
    huge["rating"] = np.full_like(rows["rating"], 1e20)  # squared error overflows float32
    history = model.fit(tm.dataset(huge, 16).take(1), epochs=1, verbose=0)

    assert not np.isfinite(history.history["loss"][0])
    assert float(optimizer.loss_scale.numpy()) == scale_before / 2
    assert int(optimizer.iterations.numpy()) == steps_before + 1  # counted, not applied
    for before, variable in zip(weights_before, model.trainable_variables):
        after = variable.numpy()
        assert np.all(np.isfinite(after))
        np.testing.assert_array_equal(after, before)

    # Training goes on normally afterwards.
    model.fit(tm.dataset(rows, 16).take(1), epochs=1, verbose=0)
    moved = max(float(np.abs(v.numpy() - b).max()) for v, b in zip(model.trainable_variables, weights_before))
    assert moved > 0 and all(np.all(np.isfinite(v.numpy())) for v in model.trainable_variables)


def test_mixed_bfloat16_trains_without_loss_scaling():
    with training.precision_scope("mixed_bfloat16"):
        rows = tm.interactions(64, seed=5)
        model = _compiled(tm.TinyRanking(), rows)
        assert not isinstance(model.optimizer, tf_keras.mixed_precision.LossScaleOptimizer)
        assert model.hidden.compute_dtype == "bfloat16"
        assert all(v.dtype == tf.float32 for v in model.trainable_variables)
        history = model.fit(tm.dataset(rows, 16), epochs=2, verbose=0)
        assert all(np.isfinite(history.history["loss"]))


def test_mixed_float16_under_two_replicas_matches_one_device():
    """Loss scaling and the global-batch rule together: 2 replicas ~ 1 device in float16."""
    rows = tm.interactions(8, seed=6)
    data = tm.dataset(rows, 8)
    results = []
    with training.precision_scope("mixed_float16"):
        for strategy in (tf.distribute.get_strategy(), tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])):
            with strategy.scope():
                model = tm.TinyRanking()
                model.compile(optimizer=tf_keras.optimizers.SGD(0.5))
                model.build_from_batch(next(iter(data)))
                if results:
                    for variable, value in zip(model.trainable_variables, results[0][0]):
                        variable.assign(value)
            before = [v.numpy() for v in model.trainable_variables]
            model.fit(data, epochs=1, verbose=0)
            results.append((before, [v.numpy() for v in model.trainable_variables]))
    moved = max(float(np.abs(a - b).max()) for a, b in zip(*results[0]))
    difference = max(float(np.abs(a - b).max()) for a, b in zip(results[0][1], results[1][1]))
    assert moved > 1e-3
    assert difference < 1e-3  # float16 rounding, far below the step size


@pytest.mark.parametrize("objective", ["ce", "gbce"])
def test_sasrec_learns_under_mixed_float16_with_float32_towers(mixed_float16, objective):
    """Attention and feed-forward run in float16; softmax / logits / losses and tower outputs in float32."""
    from tfrecs.data import make_split
    from tfrecs.data.synthetic import synthetic_sequences
    from tfrecs.models import SASRec
    from tfrecs.pipelines import SequenceData

    data = SequenceData.from_split(
        make_split(
            synthetic_sequences(
                num_users=120, num_items=30, min_length=10, max_length=16, follow_probability=0.9, seed=2
            ),
            "loo",
        )
    )
    tf_keras.utils.set_random_seed(0)
    model = SASRec(
        data.item_ids,
        data.counts,
        objective=objective,
        num_negatives=8,
        dim=16,
        max_len=10,
        num_blocks=1,
        num_heads=2,
        dropout=0.0,
    )
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-2))
    losses = model.fit(data.causal_batches(10, 64, seed=0), epochs=4, verbose=0).history["loss"]
    assert isinstance(model.optimizer, tf_keras.mixed_precision.LossScaleOptimizer)
    assert model.encoder.compute_dtype == "float16"
    assert all(np.isfinite(losses)) and losses[-1] < 0.9 * losses[0], losses
    query = model({"history": tf.constant(data.histories("test", 10)[:4])})
    assert query.dtype == tf.float32 and np.isfinite(query.numpy()).all()


CTR_WORLD = dict(vocabulary_sizes=30, num_crosses=3, cross_dim=4, cross_strength=4.0, seed=3)
CTR_TINY = {
    "deepfm": dict(embedding_dim=8, hidden_units=(32,), dropout=0.0),
    "dcn_v2": dict(embedding_dim=8, num_cross_layers=2, projection_dim=None, structure="stacked", hidden_units=(32,)),
}


@pytest.fixture(scope="module")
def ctr_data():
    from tfrecs.data import FeatureSpec
    from tfrecs.data.synthetic import criteo_feature_spec, synthetic_ctr, synthetic_ctr_world

    world = synthetic_ctr_world(**CTR_WORLD)
    rows = synthetic_ctr(10000, **CTR_WORLD)
    names = [f"C{f + 1}" for f in sorted({f for pair in world.crosses for f in pair})] + ["I1", "I2"]
    base = criteo_feature_spec()
    spec = FeatureSpec([base[n] for n in names]).fit({n: rows[n][:8000] for n in names})
    return rows, names, spec


def _ctr_fit_auc(name, precision, ctr_data):
    """(model, held-out AUC, logits, loss) of ``name`` trained with LazyAdam under ``precision``."""
    from tfrecs import models
    from tfrecs.evaluation import auc

    rows, names, spec = ctr_data

    def batches(lo, hi):
        return tf.data.Dataset.from_tensor_slices({n: rows[n][lo:hi] for n in names + ["label"]}).batch(500)

    with training.precision_scope(precision):
        tf_keras.utils.set_random_seed(0)
        model = models.get(name)(spec, names, **CTR_TINY[name])
        model.compile(optimizer=training.make_optimizer("lazy_adam", 0.01))
        model.fit(batches(0, 8000), epochs=3, verbose=0)
        probabilities = model.predict(batches(8000, 10000), verbose=0).reshape(-1)
        batch = next(iter(batches(8000, 8500)))
        logits = model({n: batch[n] for n in names})
        loss = model.compute_loss(batch)
    return model, auc(rows["label"][8000:], probabilities), logits, loss


@pytest.mark.parametrize("name", sorted(CTR_TINY))
def test_bfloat16_ctr_models_compute_in_bf16_keep_float32_outputs_and_learn_planted_crosses(name, ctr_data):
    model, bf16_auc, logits, loss = _ctr_fit_auc(name, "mixed_bfloat16", ctr_data)
    assert model.deep.hidden_layers[0].compute_dtype == "bfloat16"
    for layer in getattr(model, "cross_layers", ()):
        assert layer._dense.compute_dtype == "bfloat16"  # TFRS alone builds it float32 (docs/performance.md)
    assert all(v.dtype == tf.float32 for v in model.trainable_variables)
    assert logits.dtype == tf.float32 and loss.dtype == tf.float32
    assert np.isfinite(logits.numpy()).all() and np.isfinite(float(loss))
    _, float32_auc, _, _ = _ctr_fit_auc(name, "float32", ctr_data)
    assert bf16_auc > 0.7, bf16_auc  # the planted crosses are learnt (chance: 0.5)
    assert bf16_auc > float32_auc - 0.01, (bf16_auc, float32_auc)
