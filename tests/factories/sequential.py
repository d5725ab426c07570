"""Serialization cases of the sequential family: SASRec (each architecture variant) and BERT4Rec.

A catalogue of 20 items, histories of at most 6, dim 8; string ids for SASRec, integer ids
(padding -1) for BERT4Rec. The probe compares the query embeddings and the whole catalogue
(``catalogue()``: item table + popularity dimension), so a reload must restore both towers.
"""

import numpy as np
import tensorflow as tf
import tf_keras

from factories import Case
from tfrecs.models import BERT4Rec, SASRec

NUM_ITEMS, MAX_LEN, ROWS = 20, 6, 8
COUNTS = np.arange(NUM_ITEMS) % 7


def _sequences(item_ids, padding):
    """``ROWS`` left-padded windows of ``MAX_LEN + 1`` items (1 to 5 padding positions each)."""
    rng = np.random.default_rng(0)
    rows = np.full((ROWS, MAX_LEN + 1), padding, dtype=item_ids.dtype)
    for row in range(ROWS):
        length = 2 + row % (MAX_LEN - 1)
        rows[row, -length:] = rng.choice(item_ids, size=length, replace=False)
    return rows


def _probe(model, batch):
    return {
        "query": np.asarray(model({"history": batch["history"]}, training=False)),
        "catalogue": np.asarray(model.catalogue()[1]),
    }


def _sasrec(**kwargs):
    tf_keras.utils.set_random_seed(0)
    items = np.array([f"m{i}" for i in range(NUM_ITEMS)])
    windows = _sequences(items, "")
    batch = {"history": tf.constant(windows[:, :-1]), "targets": tf.constant(windows[:, 1:])}
    model = SASRec(items, COUNTS, dim=8, max_len=MAX_LEN, num_blocks=1, num_heads=2, dropout=0.1, **kwargs)
    return Case(model, batch, probe=_probe)


def _bert4rec():
    tf_keras.utils.set_random_seed(0)
    items = np.arange(NUM_ITEMS, dtype=np.int64)
    windows = _sequences(items, -1)[:, 1:]
    label_mask = np.zeros(windows.shape, np.float32)
    label_mask[:, -1] = 1.0
    label_mask[::2, -3] = 1.0
    batch = {"history": tf.constant(windows), "label_mask": tf.constant(label_mask)}
    model = BERT4Rec(items, COUNTS, dim=8, max_len=MAX_LEN, num_blocks=1, num_heads=2, dropout=0.1)
    return Case(model, batch, probe=_probe)


FACTORIES = {
    "sasrec": lambda: _sasrec(objective="ce"),
    "sasrec_gbce": lambda: _sasrec(objective="gbce", num_negatives=4),  # + a learned logit offset
    "sasrec_bce": lambda: _sasrec(objective="bce"),
    "sasrec_untied": lambda: _sasrec(objective="ce", tie_output=False),  # + its own output table
    "bert4rec": _bert4rec,
}
