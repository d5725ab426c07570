"""The one id space of item sequences, shared by windowing and the sequential models.

For a catalogue of ``num_items`` items (catalogue index ``0..num_items-1``, the order of
``RecDataset.item_index``):

* ``PADDING_ID = 0`` pads sequences on the left;
* catalogue item ``i`` is id ``i + ITEM_OFFSET`` (``i + 1``);
* ``mask = num_items + 1`` is BERT4Rec's ``[mask]`` token;
* ``oov = num_items + 2`` is any raw id outside the catalogue (serving only);
* an embedding table over these ids has ``vocabulary_size = num_items + 3`` rows.

Example::

    ids = SequenceIds(1682)
    ids.padding, ids.mask, ids.oov, ids.vocabulary_size   # -> 0, 1683, 1684, 1685
    ids.encode(np.array([0, 5]))                          # -> [1, 6]
"""

from dataclasses import dataclass

PADDING_ID = 0
ITEM_OFFSET = 1


@dataclass(frozen=True)
class SequenceIds:
    """The reserved ids of sequence tensors for a catalogue of ``num_items`` items."""

    num_items: int

    padding = PADDING_ID
    offset = ITEM_OFFSET

    @property
    def mask(self) -> int:
        return self.num_items + ITEM_OFFSET

    @property
    def oov(self) -> int:
        return self.num_items + ITEM_OFFSET + 1

    @property
    def vocabulary_size(self) -> int:
        return self.num_items + ITEM_OFFSET + 2

    def encode(self, items):
        """Catalogue indices -> sequence ids."""
        return items + ITEM_OFFSET

    def decode(self, ids):
        """Sequence ids -> catalogue indices (padding -> -1)."""
        return ids - ITEM_OFFSET
