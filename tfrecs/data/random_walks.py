"""Random-walk neighbourhoods on the user-item bipartite graph (PinSage, Ying et al., KDD 2018).

``BipartiteGraph`` holds the training interactions as two CSR adjacencies (user -> items,
item -> users) over dense catalogue indices. ``RandomWalkSampler`` runs, for each start node,
``num_walks`` short walks of ``walk_length`` item -> user -> item hops (a user's walk starts
with a user -> item step), counts the items visited, and keeps the ``num_neighbors`` most
visited as the node's neighbourhood with their normalised visit counts as importance weights
(they sum to 1 per node). The walkers of a whole batch move together (vectorised NumPy), so
the cost of a batch is ``batch x num_walks x walk_length`` steps whatever the graph's size;
every draw comes from ``numpy.random.default_rng([seed, ...])``, so a seed gives the same
neighbourhoods in every process.

Pure NumPy: ``tfrecs.pipelines.pinsage_view`` runs it in ``tf.data`` (the producer), and
``tfrecs.models.PinSage`` keeps a frozen neighbourhood table from it for serving.

Example::

    graph = BipartiteGraph(user_indices, item_indices, num_users, num_items)
    sampler = RandomWalkSampler(graph, num_walks=32, walk_length=2, num_neighbors=10)
    neighbors, weights = sampler.item_neighborhoods(np.array([0, 5]), seed=7)   # [2, 10] each
"""

from typing import List, Optional, Sequence, Tuple

import numpy as np

from tfrecs.core.errors import InputError

PADDING = -1  # neighbour index of an empty slot (its weight is 0)

# Batch features of a sampled computation graph (raw ids; ``tfrecs.pipelines.pinsage_view``
# writes them, ``tfrecs.models.PinSage`` reads them).
USER_NEIGHBORS = "user_neighbors"
USER_NEIGHBOR_WEIGHTS = "user_neighbor_weights"
HARD_NEGATIVES = "hard_negative_item_id"


def hop_keys(hop: int) -> Tuple[str, str]:
    """``(neighbour ids, weights)`` batch features of hop ``hop`` (1-based) of the candidate item."""
    return f"item_neighbors_{hop}", f"item_neighbor_weights_{hop}"


class EmptyGraphError(InputError):
    """The interaction graph has no edge: there is nothing to walk on."""


def _check_at_least(name: str, value, minimum: int = 1) -> int:
    if value is None or int(value) != value or int(value) < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _csr(rows: np.ndarray, columns: np.ndarray, num_rows: int) -> Tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((columns, rows))
    indptr = np.zeros(num_rows + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=num_rows), out=indptr[1:])
    return indptr, columns[order].astype(np.int64)


class BipartiteGraph:
    """The user-item interaction graph as CSR adjacencies in both directions (duplicates count once).

    Args:
        user_indices, item_indices: dense indices of the interactions (``[E]`` each).
        num_users, num_items: sizes of the two sides (indices must be below them).

    Raises:
        EmptyGraphError: no interaction.
        InputError: lengths differ, or an index outside ``[0, num_users)`` / ``[0, num_items)``
            (names the argument).

    Example::

        graph = BipartiteGraph(np.array([0, 0, 1]), np.array([0, 1, 1]), num_users=2, num_items=2)
        graph.num_edges   # 3
    """

    def __init__(self, user_indices, item_indices, num_users: int, num_items: int):
        users = np.asarray(user_indices, np.int64).reshape(-1)
        items = np.asarray(item_indices, np.int64).reshape(-1)
        self.num_users = _check_at_least("num_users", num_users)
        self.num_items = _check_at_least("num_items", num_items)
        if len(users) != len(items):
            raise InputError(f"user_indices and item_indices differ in length: {len(users)} vs {len(items)}")
        if len(users) == 0:
            raise EmptyGraphError("the interaction graph is empty: random walks need at least one (user, item) edge")
        for name, values, size in (("user_indices", users, self.num_users), ("item_indices", items, self.num_items)):
            if values.min() < 0 or values.max() >= size:
                bad = values[(values < 0) | (values >= size)][0]
                raise InputError(f"{name} holds {bad}, outside [0, {size})")
        keys = np.unique(users * self.num_items + items)
        users, items = keys // self.num_items, keys % self.num_items
        self.edge_keys = keys  # sorted user * num_items + item: membership tests
        self.user_indptr, self.user_items = _csr(users, items, self.num_users)
        self.item_indptr, self.item_users = _csr(items, users, self.num_items)

    @property
    def num_edges(self) -> int:
        """Distinct (user, item) pairs."""
        return int(len(self.edge_keys))

    def has_edge(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Bool array: whether each ``(users[n], items[n])`` is an edge (a training interaction)."""
        keys = np.asarray(users, np.int64) * self.num_items + np.asarray(items, np.int64)
        positions = np.minimum(np.searchsorted(self.edge_keys, keys), len(self.edge_keys) - 1)
        return self.edge_keys[positions] == keys

    def item_degrees(self) -> np.ndarray:
        """Users per item (``[num_items]``)."""
        return np.diff(self.item_indptr)


def _step(indptr: np.ndarray, targets: np.ndarray, nodes: np.ndarray, alive: np.ndarray, rng) -> np.ndarray:
    """One uniform hop from each live node along a CSR adjacency; dead ends kill the walker."""
    degree = indptr[nodes + 1] - indptr[nodes]
    alive &= degree > 0
    offsets = np.floor(rng.random(len(nodes)) * degree).astype(np.int64)
    nxt = np.where(alive, targets[np.minimum(indptr[nodes] + offsets, max(len(targets) - 1, 0))], 0)
    return nxt


class RandomWalkSampler:
    """Importance-weighted neighbourhoods from short random walks (see the module docstring).

    Args:
        graph: the ``BipartiteGraph`` to walk on.
        num_walks: walks ``T`` per start node.
        walk_length: item -> user -> item hops per walk (``1``: the 2-hop neighbours).
        num_neighbors: ``N``, the most visited items kept per node.
        seed: default seed of the draws (a call may pass its own, e.g. one per batch).

    Raises:
        InputError: ``num_walks``, ``walk_length`` or ``num_neighbors`` below 1 (names it).

    Example::

        sampler = RandomWalkSampler(graph, num_walks=32, walk_length=2, num_neighbors=10, seed=2020)
        neighbors, weights = sampler.item_neighborhoods(np.arange(graph.num_items))
    """

    def __init__(self, graph: BipartiteGraph, num_walks: int, walk_length: int, num_neighbors: int, seed: int = 0):
        if not isinstance(graph, BipartiteGraph):
            raise InputError(f"graph must be a BipartiteGraph, got {type(graph).__name__}")
        self.graph = graph
        self.num_walks = _check_at_least("num_walks", num_walks)
        self.walk_length = _check_at_least("walk_length", walk_length)
        self.num_neighbors = _check_at_least("num_neighbors", num_neighbors)
        self.seed = int(seed)

    def _rng(self, seed, salt: int):
        return np.random.default_rng([*seed_words(self.seed if seed is None else seed), salt])

    def _check_nodes(self, nodes, size: int, name: str) -> np.ndarray:
        nodes = np.asarray(nodes, np.int64).reshape(-1)
        if len(nodes) and (nodes.min() < 0 or nodes.max() >= size):
            bad = nodes[(nodes < 0) | (nodes >= size)][0]
            raise InputError(f"{name} holds {bad}, which is not a node of the graph (indices are in [0, {size}))")
        return nodes

    # -- walks --------------------------------------------------------------------------------------------
    def item_visits(self, items, seed=None) -> Tuple[np.ndarray, np.ndarray]:
        """``(start row, visited item)`` of every step of ``num_walks`` walks from each item.

        A walk never counts its own start item.

        Raises:
            InputError: an item index outside the graph (argument ``items``).
        """
        items = self._check_nodes(items, self.graph.num_items, "items")
        rng = self._rng(seed, 1)
        rows = np.repeat(np.arange(len(items), dtype=np.int64), self.num_walks)
        current = np.repeat(items, self.num_walks)
        alive = np.ones(len(current), bool)
        return self._walk(rows, current, alive, items[rows], rng)

    def user_visits(self, users, seed=None, num_walks: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
        """``(start row, visited item)`` of ``num_walks`` walks from each user (user -> item first);
        ``num_walks`` defaults to the sampler's.

        Raises:
            InputError: a user index outside the graph (argument ``users``).
        """
        users = self._check_nodes(users, self.graph.num_users, "users")
        walks = self.num_walks if num_walks is None else _check_at_least("num_walks", num_walks)
        rng = self._rng(seed, 2)
        g = self.graph
        rows = np.repeat(np.arange(len(users), dtype=np.int64), walks)
        alive = np.ones(len(rows), bool)
        first = _step(g.user_indptr, g.user_items, np.repeat(users, walks), alive, rng)
        visits_rows, visits_items = [rows[alive]], [first[alive]]
        if self.walk_length > 1:
            walk_rows, walk_items = self._walk(rows, first, alive, None, rng, self.walk_length - 1)
            visits_rows.append(walk_rows)
            visits_items.append(walk_items)
        return np.concatenate(visits_rows), np.concatenate(visits_items)

    def _walk(self, rows, current, alive, start, rng, length: Optional[int] = None):
        g = self.graph
        visits_rows, visits_items = [], []
        for _ in range(self.walk_length if length is None else length):
            user = _step(g.item_indptr, g.item_users, current, alive, rng)
            current = _step(g.user_indptr, g.user_items, user, alive, rng)
            keep = alive if start is None else alive & (current != start)
            visits_rows.append(rows[keep])
            visits_items.append(current[keep])
        return np.concatenate(visits_rows), np.concatenate(visits_items)

    # -- neighbourhoods -------------------------------------------------------------------------------
    def item_neighborhoods(self, items, seed=None) -> Tuple[np.ndarray, np.ndarray]:
        """``(neighbours [B, N] int64, weights [B, N] float32)`` of each item (catalogue indices).

        Neighbours are the ``N`` most visited items (ties: lower index first), padded with
        ``-1`` and weight 0; a node's weights sum to 1 (0 for an isolated node).

        Raises:
            InputError: an item index outside the graph (argument ``items``).
        """
        items = self._check_nodes(items, self.graph.num_items, "items")
        rows, visited = self.item_visits(items, seed)
        return top_visited(rows, visited, len(items), self.num_neighbors, self.graph.num_items)

    def user_neighborhoods(
        self, users, seed=None, num_neighbors: Optional[int] = None, num_walks: Optional[int] = None
    ) -> Tuple[np.ndarray, np.ndarray]:
        """As ``item_neighborhoods`` for users (items reached by walks from each user); ``num_neighbors``
        and ``num_walks`` default to the sampler's.

        Raises:
            InputError: a user index outside the graph (argument ``users``).
        """
        users = self._check_nodes(users, self.graph.num_users, "users")
        rows, visited = self.user_visits(users, seed, num_walks)
        n = self.num_neighbors if num_neighbors is None else _check_at_least("num_neighbors", num_neighbors)
        return top_visited(rows, visited, len(users), n, self.graph.num_items)

    def hard_negatives(self, users, num: int, ranks: Sequence[int], seed=None) -> np.ndarray:
        """``[B, num]`` items ranked in ``[ranks[0], ranks[1])`` by walk visits from each user,
        among items the user has not interacted with: related, but not the closest.

        Rows whose walks reached fewer than ``ranks[0] + 1`` such items take uniformly drawn
        items instead (which may be the user's own: the model masks a negative equal to the
        row's positive only).

        Raises:
            InputError: ``num < 1``, a bad ``ranks`` window, or an unknown user index.
        """
        num = _check_at_least("num", num)
        low, high = (int(r) for r in ranks)
        if low < 0 or high <= low:
            raise InputError(f"ranks must be a window [low, high) with 0 <= low < high, got {tuple(ranks)}")
        users = self._check_nodes(users, self.graph.num_users, "users")
        rows, visited = self.user_visits(users, seed)
        fresh = ~self.graph.has_edge(users[rows], visited)
        ranked, _ = top_visited(rows[fresh], visited[fresh], len(users), high, self.graph.num_items)
        window = ranked[:, low:]
        available = (window != PADDING).sum(axis=1)
        rng = self._rng(seed, 3)
        picks = np.floor(rng.random((len(users), num)) * np.maximum(available, 1)[:, None]).astype(np.int64)
        chosen = np.take_along_axis(window, picks, axis=1) if window.shape[1] else np.full_like(picks, PADDING)
        uniform = rng.integers(0, self.graph.num_items, size=chosen.shape)
        return np.where((available > 0)[:, None], chosen, uniform)


def seed_words(seed) -> List[int]:
    """A seed (an int or a sequence of ints, negative ones too: ``tf`` stateless seeds) as
    non-negative words for ``numpy.random.default_rng``."""
    words = seed.tolist() if isinstance(seed, np.ndarray) else seed
    words = list(words) if isinstance(words, (list, tuple)) else [words]
    return [int(word) % 2**64 for word in words]


def top_visited(rows, visited, num_rows: int, n: int, num_items: int) -> Tuple[np.ndarray, np.ndarray]:
    """The ``n`` most visited items per row and their visit shares among those kept.

    Args:
        rows, visited: one entry per visit (start row, item index).
        num_rows: rows of the output.
        n: neighbours per row.
        num_items: item indices are below it.

    Returns:
        ``(items [num_rows, n] int64 padded with -1, weights [num_rows, n] float32)``.

    Example::

        top_visited(np.array([0, 0, 0]), np.array([4, 4, 2]), 1, 2, 5)   # ([[4, 2]], [[2/3, 1/3]])
    """
    neighbors = np.full((num_rows, n), PADDING, np.int64)
    weights = np.zeros((num_rows, n), np.float32)
    if len(rows) == 0:
        return neighbors, weights
    keys, counts = np.unique(np.asarray(rows, np.int64) * num_items + np.asarray(visited, np.int64), return_counts=True)
    key_rows, key_items = keys // num_items, keys % num_items
    order = np.lexsort((key_items, -counts, key_rows))
    key_rows, key_items, counts = key_rows[order], key_items[order], counts[order]
    rank = np.arange(len(key_rows)) - np.searchsorted(key_rows, key_rows, side="left")
    keep = rank < n
    neighbors[key_rows[keep], rank[keep]] = key_items[keep]
    weights[key_rows[keep], rank[keep]] = counts[keep]
    totals = weights.sum(axis=1, keepdims=True)
    np.divide(weights, totals, out=weights, where=totals > 0)
    return neighbors, weights


def multi_hop(sampler: RandomWalkSampler, items, num_hops: int, seed=None):
    """The sampled computation graph of ``items``: per hop ``k = 1..num_hops`` the neighbours of
    every node of hop ``k - 1``, flattened: ``[B, N ** k]`` indices and weights.

    A padded slot (``-1``) has padded neighbours. Each hop's walks take their own seed.

    Example::

        (n1, w1), (n2, w2) = multi_hop(sampler, np.array([3, 9]), 2, seed=1)   # [2, N], [2, N * N]
    """
    num_hops = _check_at_least("num_hops", num_hops, 0)
    frontier = np.asarray(items, np.int64).reshape(-1)
    batch = len(frontier)
    hops = []
    for hop in range(num_hops):
        real = frontier != PADDING
        neighbors = np.full((len(frontier), sampler.num_neighbors), PADDING, np.int64)
        weights = np.zeros((len(frontier), sampler.num_neighbors), np.float32)
        hop_seed = None if seed is None else [*seed_words(seed), 100 + hop]
        if real.any():
            neighbors[real], weights[real] = sampler.item_neighborhoods(frontier[real], seed=hop_seed)
        hops.append((neighbors.reshape(batch, -1), weights.reshape(batch, -1)))
        frontier = neighbors.reshape(-1)
    return hops
