"""Small callback helpers: the monitored metric's direction and the best epoch of a history."""

import pandas as pd
import pytest

from tfrecs.training import best_epoch, metric_mode


def test_metric_direction_comes_from_its_name():
    assert metric_mode("val_ndcg@10") == "max" and metric_mode("val_logloss") == "min"
    with pytest.raises(ValueError, match="pass mode='min' or mode='max'"):
        metric_mode("val_something")


def test_best_epoch_reads_keras_histories_and_data_frames():
    history = {"val_ndcg@10": [0.20, 0.25, 0.24], "val_loss": [0.9, 0.7, 0.8]}
    assert best_epoch(history) == 2 and best_epoch(history, "val_loss") == 2
    frame = pd.DataFrame({"val_ndcg@10": [0.3, 0.2, 0.31], "loss": [1.0, 0.9, 0.8]})
    assert best_epoch(frame) == 3 and best_epoch(frame, "loss") == 3
    assert best_epoch({"loss": [1.0]}) is None and best_epoch(pd.DataFrame({"loss": [1.0]})) is None
