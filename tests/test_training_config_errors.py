"""Bad training configuration fails early with a ValueError that names the argument."""

import json
import os
import sys

import pytest
import tensorflow as tf
import tf_keras

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "workers"))
import tiny_models as tm  # noqa: E402

from tfrecs import training  # noqa: E402
from tfrecs.models.base import RankingModel, RetrievalModel, ranking_task  # noqa: E402
import tensorflow_recommenders as tfrs  # noqa: E402


def test_unknown_strategy_lists_choices():
    with pytest.raises(ValueError, match=r"strategy='tpu'.*'auto', 'one_device', 'mirrored', 'multi_worker'"):
        training.get_strategy("tpu")


def test_unknown_precision_lists_choices():
    with pytest.raises(ValueError, match=r"precision='float16'.*'float32', 'mixed_float16', 'mixed_bfloat16'"):
        training.set_precision("float16")


def test_configure_checks_both_names_before_changing_anything():
    before = training.current_precision()
    with pytest.raises(ValueError, match="strategy="):
        training.configure(strategy="gpu", precision="mixed_float16")
    with pytest.raises(ValueError, match="precision="):
        training.configure(strategy="one_device", precision="half")
    assert training.current_precision() == before


def test_multi_worker_without_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="strategy='multi_worker' needs the TF_CONFIG environment variable"):
        training.get_strategy("multi_worker")


@pytest.mark.parametrize(
    "value, message",
    [
        ("{not json", "TF_CONFIG is not valid JSON"),
        (json.dumps({"task": {"type": "worker", "index": 0}}), "no 'cluster' with a 'worker' list"),
        (json.dumps({"cluster": {"worker": ["127.0.0.1:1"]}}), "no 'task' with 'type' and 'index'"),
        (
            json.dumps({"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}),
            "not in the cluster",
        ),
    ],
)
def test_malformed_tf_config(monkeypatch, value, message):
    monkeypatch.setenv("TF_CONFIG", value)
    with pytest.raises(ValueError, match=message):
        training.get_strategy("multi_worker")


def test_devices_only_for_mirrored():
    with pytest.raises(ValueError, match="devices=.*strategy='mirrored' only"):
        training.get_strategy("one_device", devices=["/cpu:0"])


def test_global_batch_smaller_than_replicas():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with pytest.raises(ValueError, match=r"global_batch_size=1 is smaller than the number of replicas \(2\)"):
        training.check_global_batch_size(1, strategy)
    rows = tm.interactions(4)
    with strategy.scope():
        model = tm.TinyRanking()
        model.compile(optimizer="sgd")
    with pytest.raises(ValueError, match="global_batch_size=1"):
        training.fit(model, tm.dataset(rows, 1), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="global_batch_size=1"):  # found from the first batch
        unknown_batch = tm.dataset(rows, 1).filter(lambda row: True)
        training.fit(model, unknown_batch, epochs=1, verbose=0)


def test_one_replica_accepts_batch_of_one():
    assert training.check_global_batch_size(1, tf.distribute.get_strategy()) == 1


def test_task_loss_that_averages_is_refused():
    averaging = tfrs.tasks.Ranking(loss=tf_keras.losses.BinaryCrossentropy())
    with pytest.raises(ValueError, match="reduction='sum' or 'none'"):
        RankingModel(tasks={"label": averaging})
    with pytest.raises(ValueError, match="reduction='sum' or 'none'"):
        RetrievalModel(task=tfrs.tasks.Retrieval(loss=tf_keras.losses.CategoricalCrossentropy()))


def test_ranking_arguments_name_unknown_tasks():
    with pytest.raises(ValueError, match=r"loss_weights names unknown task\(s\) \['ctr'\]"):
        RankingModel(tasks={"label": ranking_task()}, loss_weights={"ctr": 1.0})
    with pytest.raises(ValueError, match="kind='ordinal'"):
        ranking_task("ordinal")


def test_accidental_hits_need_candidate_ids():
    with pytest.raises(ValueError, match="remove_accidental_hits=True needs candidate_id_key"):
        RetrievalModel(remove_accidental_hits=True)


def test_optimizer_schedule_and_monitor_errors():
    with pytest.raises(ValueError, match="optimizer name='lamb'"):
        training.make_optimizer("lamb")
    with pytest.raises(ValueError, match="schedule='linear'"):
        training.make_optimizer("adam", schedule="linear")
    with pytest.raises(ValueError, match="needs decay_steps > 0"):
        training.make_optimizer("adam", schedule="cosine")
    with pytest.raises(ValueError, match="monitor='val_score'"):
        training.early_stopping("val_score")
    with pytest.raises(ValueError, match="mode='up'"):
        training.early_stopping("val_auc", mode="up")
    with pytest.raises(ValueError, match="epochs=0"):
        training.fit(tm.TinyRanking(), tm.dataset(tm.interactions(4), 2), epochs=0)


def test_missing_label_feature_is_named():
    model = tm.TinyRanking()
    with pytest.raises(ValueError, match=r"no label feature\(s\) \['label'\]"):
        model.compute_loss({"user_id": tf.constant([1]), "item_id": tf.constant([2])})


def test_strategy_names_select_strategies(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert training.get_strategy("one_device") is tf.distribute.get_strategy()
    assert training.get_strategy("auto").num_replicas_in_sync == 1  # no GPU, no cluster
    mirrored = training.get_strategy("mirrored", devices=["/cpu:0", "/cpu:1"])
    assert isinstance(mirrored, tf.distribute.MirroredStrategy) and mirrored.num_replicas_in_sync == 2
    assert training.get_strategy(mirrored) is mirrored
    with training.precision_scope("float32"):
        assert training.configure("one_device", "mixed_bfloat16") is tf.distribute.get_strategy()
        assert training.current_precision() == "mixed_bfloat16"
    assert training.current_precision() == "float32"
