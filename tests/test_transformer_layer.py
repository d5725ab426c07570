"""Transformer block / encoder: masks (causal, bidirectional, padding), norms, bad arguments."""

import numpy as np
import pytest
import tensorflow as tf

from tfrecs.layers.item_lookup import ItemLookup
from tfrecs.layers.transformer import SequenceEncoder, TransformerBlock, attention_mask


def _encoder(causal, pre_norm=True):
    tf.random.set_seed(0)
    return SequenceEncoder(num_blocks=2, num_heads=2, dim=8, max_len=6, dropout=0.0, causal=causal, pre_norm=pre_norm)


def test_attention_mask_by_hand():
    mask = attention_mask(tf.constant([[False, True, True]]), causal=True)[0].numpy().astype(int)
    # padded key 0 is hidden from every query but itself; causal lower triangle on the rest
    np.testing.assert_array_equal(mask, [[1, 0, 0], [0, 1, 0], [0, 1, 1]])
    both = attention_mask(tf.constant([[False, True, True]]), causal=False)[0].numpy().astype(int)
    np.testing.assert_array_equal(both, [[1, 1, 1], [0, 1, 1], [0, 1, 1]])


@pytest.mark.parametrize("pre_norm", [True, False])
def test_causal_future_item_changes_no_earlier_output(pre_norm):
    encoder = _encoder(causal=True, pre_norm=pre_norm)
    x = tf.random.normal([2, 6, 8], seed=1)
    mask = tf.constant([[True] * 6, [False, False, True, True, True, True]])
    before = encoder(x, mask).numpy()
    changed = tf.tensor_scatter_nd_update(x, [[0, 4], [1, 4]], tf.random.normal([2, 8], seed=2))
    after = encoder(changed, mask).numpy()
    np.testing.assert_allclose(after[:, :4], before[:, :4], atol=1e-6)
    assert np.abs(after[:, 4:] - before[:, 4:]).max() > 1e-3  # the change does reach later positions


def test_bidirectional_future_item_changes_earlier_output():
    encoder = _encoder(causal=False)
    x = tf.random.normal([1, 6, 8], seed=1)
    mask = tf.ones([1, 6], tf.bool)
    changed = tf.tensor_scatter_nd_update(x, [[0, 5]], tf.random.normal([1, 8], seed=2))
    assert np.abs(encoder(changed, mask).numpy()[0, 0] - encoder(x, mask).numpy()[0, 0]).max() > 1e-3


def test_padding_never_contributes():
    encoder = _encoder(causal=True)
    mask = tf.constant([[False, False, True, True, True, True]])
    x = tf.random.normal([1, 6, 8], seed=1)
    noisy = tf.concat([tf.random.normal([1, 2, 8], seed=9) * 100.0, x[:, 2:]], axis=1)
    out, out_noisy = encoder(x, mask).numpy(), encoder(noisy, mask).numpy()
    np.testing.assert_allclose(out_noisy, out, atol=1e-5)  # padded inputs are invisible
    np.testing.assert_array_equal(out[0, :2], 0.0)  # padded outputs are zero


def test_heads_must_divide_dim():
    with pytest.raises(ValueError, match="num_heads"):
        TransformerBlock(num_heads=3, dim=8)


@pytest.mark.parametrize(
    "layer",
    [
        lambda: TransformerBlock(
            num_heads=2, dim=8, ffn_dim=16, dropout=0.1, causal=False, pre_norm=False, activation="gelu"
        ),
        lambda: SequenceEncoder(num_blocks=2, num_heads=2, dim=8, max_len=6, dropout=0.0, causal=True),
        lambda: ItemLookup(["a", "b", "c"]),
    ],
)
def test_config_round_trip_and_public_path(layer):
    import json

    import tfrecs.layers  # noqa: F401

    original = layer()
    config = json.loads(json.dumps(original.get_config()))
    assert type(original).from_config(config).get_config() == config
    assert type(original).public_path == f"tfrecs.layers.{type(original).__name__}"
