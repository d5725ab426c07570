"""``PinSageData``: the id view of a split plus the random-walk producer PinSage trains on.

An ``IdData`` (id spec, catalogue raw ids, ``score_fn``) with the training graph
(``tfrecs.data.random_walks.BipartiteGraph``), a ``RandomWalkSampler`` and each catalogue
item's genre multi-hot (the item node features). ``batches`` is the producer side of
PinSage's producer-consumer split: each training batch of (user, item) positives gets its
sampled computation graph (the item's neighbours hop by hop, the user's walk neighbourhood,
hard negatives ranked by walk visits) built in NumPy inside ``tf.data``
(``tf.numpy_function`` in a parallel ``map``, then ``prefetch``), so while the model trains on
batch ``b`` the pipeline is already walking for the next ones. Draws are keyed by (seed,
epoch, batch): a resumed run samples what an unbroken one does.

Example::

    data = PinSageData.from_split(make_split(load_dataset("ml-100k"), "random", seed=2020))
    ds = data.batches(512, num_layers=2, seed=2020, num_hard_negatives=2)
    batch = next(iter(ds))     # user_id, item_id, item_neighbors_1, item_neighbor_weights_1, ...
"""

from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tfrecs.core.errors import InputError
from tfrecs.data.dataset import ITEM_ID, USER_ID
from tfrecs.data.random_walks import (
    HARD_NEGATIVES,
    PADDING,
    USER_NEIGHBOR_WEIGHTS,
    USER_NEIGHBORS,
    BipartiteGraph,
    RandomWalkSampler,
    hop_keys,
    multi_hop,
    seed_words,
)
from tfrecs.data.splits import Split
from tfrecs.pipelines.id_view import IdData
from tfrecs.pipelines.negative_sampling import item_counts
from tfrecs.pipelines.transforms import batch_seeds, epoch_key, epoch_shuffled_batches

SAMPLING_PROBABILITY = "candidate_sampling_probability"


def genre_matrix(split: Split, feature: str = "genres") -> Tuple[np.ndarray, Tuple[str, ...]]:
    """``([num_items, G] float32 multi-hot in catalogue order, genre names)`` of the item table's
    ``feature`` column (tuples of strings); ``[num_items, 0]`` when the data has no such column."""
    train = split.train
    items = train.items
    if items is None or feature not in items:
        return np.zeros((train.num_items, 0), np.float32), ()
    rows = train.item_index.lookup(np.asarray(items[ITEM_ID]).astype(train.item_index.ids.dtype))
    values = [tuple(v) if isinstance(v, (tuple, list, np.ndarray)) else (v,) for v in items[feature]]
    names = tuple(sorted({str(g) for v in values for g in v if str(g)}))
    column = {name: i for i, name in enumerate(names)}
    matrix = np.zeros((train.num_items, len(names)), np.float32)
    for row, genres in zip(rows, values):
        for genre in genres:
            if str(genre) in column:
                matrix[row, column[str(genre)]] = 1.0
    return matrix, names


def hard_negatives_at(epoch: int, start: int, maximum: int) -> int:
    """Hard negatives per row in (0-based) ``epoch``: none before ``start``, then one more per epoch.

    Example::

        [hard_negatives_at(e, 1, 3) for e in range(5)]   # [0, 1, 2, 3, 3]
    """
    return int(min(max(epoch - start + 1, 0), maximum))


@dataclass
class PinSageData(IdData):
    """``IdData`` plus the training graph, its random-walk sampler and the item node features.

    Attributes:
        graph: ``BipartiteGraph`` of the training interactions (dense indices).
        sampler: the ``RandomWalkSampler`` the training batches draw from.
        item_features: ``[num_items, F]`` float32 node features in catalogue order (genres).
        item_feature_names: the ``F`` column names.
    """

    graph: Optional[BipartiteGraph] = None
    sampler: Optional[RandomWalkSampler] = None
    item_features: Optional[np.ndarray] = None
    item_feature_names: Tuple[str, ...] = ()

    @classmethod
    def from_split(
        cls,
        split: Split,
        num_walks: int = 16,
        walk_length: int = 2,
        num_neighbors: int = 10,
        seed: int = 0,
    ) -> "PinSageData":
        """The id view of ``split`` with a sampler over its training graph.

        Raises:
            EmptyGraphError: the training part has no interaction.
            InputError: ``num_walks``, ``walk_length`` or ``num_neighbors`` below 1 (names it).
        """
        base = IdData.from_split(split)
        train = split.train
        graph = BipartiteGraph(train.user_indices(), train.item_indices(), train.num_users, train.num_items)
        sampler = RandomWalkSampler(graph, num_walks, walk_length, num_neighbors, seed=seed)
        features, names = genre_matrix(split)
        return cls(base.split, base.spec, base.user_ids, base.item_ids, graph, sampler, features, names)

    def subgraph(
        self,
        users: np.ndarray,
        items: np.ndarray,
        seed: Sequence[int],
        num_layers: int,
        num_user_neighbors: int,
        num_hard_negatives: int = 0,
        hard_negative_ranks: Sequence[int] = (10, 100),
        user_walks: Optional[int] = None,
    ) -> Dict[str, np.ndarray]:
        """The sampled computation graph of a batch of (user, item) positives, in dense indices.

        Keys: ``item_neighbors_k`` / ``item_neighbor_weights_k`` for ``k = 1..num_layers``
        (``[B, N ** k]``), ``user_neighbors`` / ``user_neighbor_weights`` (``[B, num_user_neighbors]``)
        and, with ``num_hard_negatives``, ``hard_negative_item_id`` (``[B, H]``). Padding: -1.
        ``user_walks``: walks per user (default: the sampler's ``num_walks``).
        """
        seed = seed_words(seed)
        out: Dict[str, np.ndarray] = {}
        for hop, (neighbors, weights) in enumerate(multi_hop(self.sampler, items, num_layers, seed=seed), start=1):
            ids_key, weights_key = hop_keys(hop)
            out[ids_key], out[weights_key] = neighbors, weights
        out[USER_NEIGHBORS], out[USER_NEIGHBOR_WEIGHTS] = self.sampler.user_neighborhoods(
            users, seed=seed + [1], num_neighbors=num_user_neighbors, num_walks=user_walks
        )
        if num_hard_negatives:
            out[HARD_NEGATIVES] = self.sampler.hard_negatives(
                users, num_hard_negatives, hard_negative_ranks, seed=seed + [2]
            )
        return out

    def batches(
        self,
        batch_size: int,
        num_layers: int = 2,
        num_user_neighbors: int = 50,
        num_hard_negatives: int = 0,
        hard_negative_ranks: Sequence[int] = (10, 100),
        curriculum_start: int = 1,
        user_walks: Optional[int] = None,
        seed: int = 0,
        max_positives: Optional[int] = None,
        sampling_probability: bool = True,
    ) -> tf.data.Dataset:
        """Training batches of RAW ids with their sampled computation graphs (the producer).

        Args:
            batch_size: positives per batch (in-batch negatives).
            num_layers: hops of item neighbourhoods (the model's ``num_layers``).
            num_user_neighbors: items in each user's walk neighbourhood.
            num_hard_negatives: hard negatives per row from the user's walk ranks (0: none).
            hard_negative_ranks: the rank window ``[low, high)`` they are drawn from.
            curriculum_start: the (0-based) epoch that gets the first hard negative; each later
                epoch adds one more, up to ``num_hard_negatives`` (the curriculum: slots not yet
                active are padding, which the model masks). Keyed by the epoch, so a resumed
                run gets the epoch's count.
            user_walks: walks per user (default: the sampler's ``num_walks``); a user's
                neighbourhood is a sample of ``user_walks x walk_length`` visits.
            seed: seed of the epoch order and every walk (with the epoch and batch).
            max_positives: use only the first this many training interactions (quick runs).
            sampling_probability: add ``candidate_sampling_probability`` (item frequency, logQ).

        Raises:
            InputError: ``batch_size``, ``num_layers`` or ``num_user_neighbors`` below 1 (names it).
        """
        for name, value, low in (
            ("batch_size", batch_size, 1),
            ("num_layers", num_layers, 1),
            ("num_user_neighbors", num_user_neighbors, 1),
            ("num_hard_negatives", num_hard_negatives, 0),
            ("curriculum_start", curriculum_start, 0),
        ):
            if int(value) < low:
                raise InputError(f"{name} must be >= {low}, got {value}")
        train = self.split.train
        users, items = train.user_indices()[:max_positives], train.item_indices()[:max_positives]
        positives = epoch_shuffled_batches({USER_ID: users, ITEM_ID: items}, batch_size, seed)
        key = epoch_key(positives)
        seeds = batch_seeds(seed, key)
        epochs = key.epochs().flat_map(lambda epoch: tf.data.Dataset.from_tensors(epoch).repeat())
        n = self.sampler.num_neighbors
        keys = []
        for hop in range(1, num_layers + 1):
            keys += [(hop_keys(hop)[0], tf.int64, n**hop), (hop_keys(hop)[1], tf.float32, n**hop)]
        keys += [
            (USER_NEIGHBORS, tf.int64, num_user_neighbors),
            (USER_NEIGHBOR_WEIGHTS, tf.float32, num_user_neighbors),
        ]
        if num_hard_negatives:
            keys.append((HARD_NEGATIVES, tf.int64, num_hard_negatives))

        def produce(user_rows, item_rows, batch_seed, epoch):
            graph = self.subgraph(
                user_rows,
                item_rows,
                batch_seed,
                num_layers,
                num_user_neighbors,
                num_hard_negatives,
                hard_negative_ranks,
                user_walks,
            )
            if num_hard_negatives:
                active = hard_negatives_at(int(epoch), curriculum_start, num_hard_negatives)
                graph[HARD_NEGATIVES][:, active:] = PADDING
            return [graph[key].astype(np.int64 if dtype == tf.int64 else np.float32) for key, dtype, _ in keys]

        def add_subgraph(batch, batch_seed, epoch):
            values = tf.numpy_function(
                produce,
                [batch[USER_ID], batch[ITEM_ID], batch_seed, epoch],
                [dtype for _, dtype, _ in keys],
                stateful=False,
            )
            out = dict(batch)
            for (key, _, width), value in zip(keys, values):
                out[key] = tf.ensure_shape(value, [None, width])
            return out

        sampled = tf.data.Dataset.zip((positives, seeds, epochs)).map(
            add_subgraph, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
        return self._raw_graph(sampled, sampling_probability)

    def _raw_graph(self, batches: tf.data.Dataset, sampling_probability: bool) -> tf.data.Dataset:
        """Dense indices -> the raw ids the model reads (padding -1 -> the id dtype's padding)."""
        user_table, item_table = tf.constant(self.user_ids), tf.constant(self.item_ids)
        item_padding = tf.constant("" if item_table.dtype == tf.string else PADDING, item_table.dtype)
        counts = item_counts(self.split.train)
        probabilities = tf.constant(counts / max(counts.sum(), 1), tf.float32)

        def items_raw(rows):
            return tf.where(rows >= 0, tf.gather(item_table, tf.maximum(rows, 0)), item_padding)

        def to_raw(batch):
            out = {}
            for key, value in batch.items():
                if key == USER_ID:
                    out[key] = tf.gather(user_table, value)
                elif value.dtype == tf.int64:  # item_id, neighbours, hard negatives
                    out[key] = items_raw(value)
                else:
                    out[key] = value
            if sampling_probability:
                out[SAMPLING_PROBABILITY] = tf.gather(probabilities, batch[ITEM_ID])
            return out

        return batches.map(to_raw, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
