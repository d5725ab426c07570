"""Raw item ids -> sequence ids (``tfrecs.data.sequence_ids.SequenceIds``), inside a model.

The one id space of item sequences, shared with ``tfrecs.pipelines.windowing``:

* raw padding (``""`` for string catalogues, ``-1`` for integer ones, since integer
  catalogues may contain item 0) -> ``0``;
* catalogue item ``i`` (row ``i`` of ``item_ids``) -> ``i + 1``;
* ``num_items + 1`` is BERT4Rec's ``[mask]`` (no raw id maps to it);
* any raw id outside the catalogue -> ``num_items + 2`` (OOV);
* an embedding table over these ids has ``vocabulary_size = num_items + 3`` rows.

Example::

    lookup = ItemLookup(["a", "b"])
    lookup(tf.constant([["", "b", "zz"]]))   # -> [[0, 2, 4]]
    lookup.ids.vocabulary_size               # -> 5
"""

from typing import Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from tfrecs.core.config import ConfigFromInit
from tfrecs.core.registration import export
from tfrecs.data.feature_spec import SEQUENCE_PADDING
from tfrecs.data.histories import id_dtype
from tfrecs.data.sequence_ids import SequenceIds


def padding_value(item_ids: Sequence):
    """The raw id that pads histories of this catalogue: ``""`` (strings) or ``-1`` (integers)."""
    return SEQUENCE_PADDING[id_dtype(item_ids)]


@export("tfrecs.layers.ItemLookup")
class ItemLookup(ConfigFromInit, tf_keras.layers.Layer):
    """Maps raw item ids (any shape) to ``SequenceIds`` ids (int64).

    Args:
        item_ids: the catalogue's raw ids in catalogue order (strings, or non-negative
            integers).
        **kwargs: Keras ``Layer`` arguments.

    Attributes:
        ids: the ``SequenceIds`` of the catalogue (``mask``, ``oov``, ``vocabulary_size``).
        padding: the raw padding id (``""`` or ``-1``).

    Raises:
        ValueError: an empty catalogue, or a negative integer id.

    Example::

        ItemLookup(np.arange(5))(tf.constant([[-1, 0, 4, 99]]))   # -> [[0, 1, 5, 7]]
    """

    def __init__(self, item_ids: Sequence, **kwargs):
        super().__init__(**kwargs)
        item_ids = np.asarray(item_ids)
        if len(item_ids) == 0:
            raise ValueError("item_ids: the catalogue is empty")
        self.padding = padding_value(item_ids)
        if isinstance(self.padding, str):
            self.item_ids = item_ids.astype(str)
            self.table = tf_keras.layers.StringLookup(
                vocabulary=self.item_ids.tolist(), mask_token="", num_oov_indices=1
            )
        else:
            if np.any(item_ids < 0):
                raise ValueError("item_ids: integer catalogues must be non-negative (-1 pads histories)")
            self.item_ids = item_ids.astype(np.int64)
            self.table = tf_keras.layers.IntegerLookup(
                vocabulary=self.item_ids.tolist(), mask_token=-1, num_oov_indices=1
            )
        self.ids = SequenceIds(len(item_ids))

    def call(self, raw):
        if isinstance(self.padding, int) and raw.dtype != tf.int64:
            raw = tf.cast(raw, tf.int64)
        index = self.table(raw)  # 0 padding, 1 OOV, 2.. items
        return tf.where(index == 1, tf.constant(self.ids.oov, tf.int64), tf.maximum(index - 1, 0))
