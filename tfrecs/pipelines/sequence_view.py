"""``SequenceData``: a leave-one-out split as the raw-id batches and histories sequential models read.

SASRec and BERT4Rec (``tfrecs.models``) read RAW item ids, left-padded with ``""`` (string
catalogues) or ``-1`` (integer ones). Windows are cut in ``SequenceIds`` space by
``tfrecs.pipelines.windowing`` (padding 0, item ``i`` -> ``i + 1``) from the training part
only, and each batch is mapped back to raw ids with ``raw_table``. Histories for scoring
are each user's chronological training items (``"valid"``) or training + validation items
(``"test"``), their last ``length`` items, left-padded (``tfrecs.data.histories``).

Example::

    data = SequenceData.from_split(make_split(load_dataset("ml-100k"), "loo"))
    model = SASRec(data.item_ids, data.counts, max_len=50)
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    model.fit(data.causal_batches(max_len=50, batch_size=128), epochs=2)
    test_histories = data.histories("test", 50)               # [num_users, 50] raw ids
"""

from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from tfrecs.data.dataset import ITEM_ID
from tfrecs.data.feature_spec import SEQUENCE_PADDING, Feature, FeatureSpec
from tfrecs.data.histories import id_dtype, user_histories
from tfrecs.data.sequence_ids import SequenceIds
from tfrecs.data.splits import Split
from tfrecs.pipelines.negative_sampling import item_counts
from tfrecs.pipelines.transforms import epoch_shuffled_batches
from tfrecs.pipelines.windowing import causal_windows, cloze_positions, cloze_windows, history_part, user_sequences

HISTORY = "history"
TARGETS = "targets"
LABEL_MASK = "label_mask"


@dataclass
class SequenceData:
    """A leave-one-out ``Split`` seen as item sequences in raw ids.

    Attributes:
        split: a ``make_split(dataset, "loo")`` split.
        item_ids: raw ids of the catalogue (row = catalogue index).
        counts: training interactions per catalogue item (the models' popularity fallback
            and logQ correction).

    Raises:
        ValueError: (``from_split``) the split is not leave-one-out.

    Example::

        data = SequenceData.from_split(split)
        batch = next(iter(data.cloze_batches(max_len=50, batch_size=128)))   # history, label_mask
    """

    split: Split
    item_ids: np.ndarray
    counts: np.ndarray

    @classmethod
    def from_split(cls, split: Split) -> "SequenceData":
        """The view of a leave-one-out split (training counts from ``split.train``)."""
        if split.protocol != "loo":
            raise ValueError(f"sequence data needs a 'loo' split, got {split.protocol!r}")
        return cls(split, np.asarray(split.train.item_index.ids), item_counts(split.train))

    @property
    def ids(self) -> SequenceIds:
        """The sequence ids of the catalogue (padding, mask, OOV, vocabulary size)."""
        return SequenceIds(len(self.item_ids))

    @property
    def dtype(self) -> str:
        """``"string"`` or ``"int64"``: the raw id dtype (``tfrecs.data.histories.id_dtype``)."""
        return id_dtype(self.item_ids)

    @property
    def raw_table(self) -> np.ndarray:
        """``raw_table[sequence id]`` = raw id; ``raw_table[0]`` is the raw padding (``""`` or ``-1``)."""
        padding = np.asarray([SEQUENCE_PADDING[self.dtype]])
        items = self.item_ids.astype(str) if self.dtype == "string" else self.item_ids.astype(np.int64)
        return np.concatenate([padding.astype(items.dtype), items])

    def raw(self, ids) -> np.ndarray:
        """Sequence ids -> raw ids (padding -> the raw padding)."""
        return self.raw_table[np.asarray(ids)]

    def raw_batches(self, batches: tf.data.Dataset, keys: Dict[str, str]) -> tf.data.Dataset:
        """Maps the sequence-id features ``keys`` (source -> output name) of each batch to raw ids."""
        table = tf.constant(self.raw_table)

        def to_raw(batch):
            out = {name: value for name, value in batch.items() if name not in keys}
            out.update({keys[name]: tf.gather(table, batch[name]) for name in keys})
            return out

        return batches.map(to_raw, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def causal_batches(
        self, max_len: int, batch_size: int, seed: int = 0, stride: Optional[int] = None
    ) -> tf.data.Dataset:
        """Shuffled batches of ``history`` / ``targets`` (raw ids) for SASRec.

        Windows of ``max_len + 1`` training items (``causal_windows``, every ``stride`` items,
        default ``max_len``); every real next item is a target. Each epoch's order is a function
        of ``(seed, epoch)`` (``epoch_shuffled_batches``), so a resumed run reads what an unbroken one does.

        Raises:
            ValueError: ``max_len < 2`` or ``stride < 1``.
        """
        windows = causal_windows(user_sequences(self.split.train), max_len, stride)
        ds = epoch_shuffled_batches({"inputs": windows["inputs"], TARGETS: windows["targets"]}, batch_size, seed)
        return self.raw_batches(ds, {"inputs": HISTORY, TARGETS: TARGETS}).prefetch(2)

    def cloze_batches(
        self, max_len: int, batch_size: int, mask_probability: float = 0.2, seed: int = 0, stride: Optional[int] = None
    ) -> tf.data.Dataset:
        """Shuffled batches of unmasked ``history`` (raw ids) and a fresh Cloze ``label_mask`` for BERT4Rec.

        Windows of ``max_len`` training items (``cloze_windows``); positions are drawn by
        ``cloze_positions`` (fresh each epoch); the model puts its ``[mask]`` there. Order and
        positions are functions of ``(seed, epoch, batch)``, so a resumed run draws what an unbroken one does.

        Raises:
            ValueError: ``max_len < 2``, ``stride < 1`` or ``mask_probability`` outside [0, 1].
        """
        windows = cloze_windows(user_sequences(self.split.train), max_len, stride)
        ds = epoch_shuffled_batches({"inputs": windows["inputs"]}, batch_size, seed)
        ds = cloze_positions(ds, mask_probability=mask_probability, seed=seed)
        return self.raw_batches(ds, {"inputs": HISTORY}).prefetch(2)

    def histories(self, stage: str, length: int) -> np.ndarray:
        """``[num_users, length]`` raw histories (catalogue user order), left-padded.

        Args:
            stage: ``"valid"`` (training items) or ``"test"`` (training + validation items).
            length: columns (a model's ``max_len``); longer histories keep their last items.

        Raises:
            ValueError: unknown ``stage``.
        """
        return user_histories(history_part(self.split, stage), length, align="end")

    def feature_spec(self, length: int) -> FeatureSpec:
        """Fitted spec of the served features: ``history`` (sequence of ``length``) and ``item_id``."""
        history = np.empty(len(self.item_ids), dtype=object)
        for row, item in enumerate(self.item_ids.tolist()):
            history[row] = [item]
        columns = {HISTORY: history, ITEM_ID: self.item_ids}
        return FeatureSpec(
            [
                Feature(HISTORY, "sequence", dtype=self.dtype, max_length=length),
                Feature(ITEM_ID, "categorical", dtype=self.dtype),
            ]
        ).fit(columns)
