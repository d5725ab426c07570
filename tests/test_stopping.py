"""SIGTERM during a fit stops at the next batch boundary, keeps the last epoch's backup; outside a fit it unwinds at once."""

import os
import signal
import sys

import pytest
import tf_keras

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "workers"))
import tiny_models as tm  # noqa: E402

from tfrecs.core import stopping  # noqa: E402
from tfrecs.core.stopping import Stopped  # noqa: E402
from tfrecs.training.fit import fit  # noqa: E402


@pytest.fixture
def sigterm_handler():
    stopping.reset()
    previous = signal.signal(signal.SIGTERM, stopping.on_sigterm)
    yield
    signal.signal(signal.SIGTERM, previous)
    stopping.reset()


class _SigtermAt(tf_keras.callbacks.Callback):
    """Sends this process SIGTERM at the start of batch ``batch`` of epoch ``epoch``; counts batches after it."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch, self.sent, self.batches_after = (epoch, batch), 0, False, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.sent:
            self.batches_after += 1
        elif (self.epoch, batch) == self.at:
            self.sent = True
            os.kill(os.getpid(), signal.SIGTERM)


def _tiny_fit(run_dir, callback):
    tf_keras.utils.set_random_seed(0)
    model = tm.TinyRanking()
    model.compile(optimizer=tf_keras.optimizers.Adam(0.01))
    data = training_data()
    return model, fit(model, data, epochs=3, run_dir=run_dir, callbacks=[callback], tensorboard=False, verbose=0)


def training_data():
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(tm.interactions(256, seed=3)).batch(32)


def test_sigterm_inside_a_fit_stops_after_the_running_batch_and_keeps_the_backup(tmp_path, sigterm_handler):
    signaller = _SigtermAt(epoch=1, batch=3)
    with pytest.raises(Stopped):
        _tiny_fit(tmp_path, signaller)
    assert signaller.sent and signaller.batches_after == 0  # no batch began after the request
    chief = tmp_path / "backup" / "chief"
    assert chief.is_dir()  # BackupAndRestore's on_train_end (which deletes it) never ran
    import tensorflow as tf

    saved_epoch = tf.train.load_variable(
        tf.train.latest_checkpoint(str(chief)), "ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE"
    )
    assert int(saved_epoch) == 0  # epoch 0 completed and backed up; epoch 1 was interrupted


def test_sigterm_outside_a_fit_unwinds_at_once(sigterm_handler):
    with pytest.raises(Stopped):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs between bytecodes, well before this loop ends
            pass
    stopping.raise_if_requested()  # nothing left pending


def test_a_request_after_the_last_batch_still_stops_when_the_fit_returns(sigterm_handler):
    with pytest.raises(Stopped):
        with stopping.stop_at_batch_boundaries():
            os.kill(os.getpid(), signal.SIGTERM)  # only recorded: no batch boundary follows
            for _ in range(1000):
                pass
    stopping.raise_if_requested()
