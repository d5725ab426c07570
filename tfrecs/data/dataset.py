"""The in-memory form of a recommendation data set: columnar numpy tables.

A ``RecDataset`` holds interactions (one row per user-item event) plus optional user and
item feature tables. Columns are numpy arrays of equal length; ids keep their raw values
(strings for MovieLens, int64 for synthetic data). Dense indices for models and
evaluation come from ``IdIndex``, built over the catalogue (every user / item the tables
know, not only those that appear in training).

Duplicate rows (see ``docs/data_policies.md``): an exact duplicate is an interaction row
whose (``user_id``, ``item_id``, ``timestamp``) equals an earlier row's (without a
timestamp column: whose (``user_id``, ``item_id``)). ``RecDataset.deduplicated(policy)``
drops them (``"drop"``, what every loader does by default), keeps them (``"keep"``) or
refuses them (``"error"``); the count is recorded in ``notes`` and ``stats()``.
"""

import logging
from dataclasses import dataclass, field, replace
from typing import Dict, Iterable, Optional, Sequence, Tuple

import numpy as np

from tfrecs.core.errors import InputError

LOG = logging.getLogger("tfrecs.data")

Columns = Dict[str, np.ndarray]

USER_ID = "user_id"
ITEM_ID = "item_id"
RATING = "rating"
TIMESTAMP = "timestamp"

DUPLICATE_POLICIES = ("drop", "keep", "error")


class DuplicateRowsError(InputError):
    """``duplicates="error"`` and the interactions hold exact duplicate rows (count and example named)."""


def object_column(values) -> np.ndarray:
    """A 1-D object array of list-valued entries (numpy would otherwise build a 2-D array)."""
    values = list(values)
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


def take_rows(columns: Columns, rows: np.ndarray) -> Columns:
    """Selects ``rows`` (indices or a boolean mask) from every column."""
    return {name: values[rows] for name, values in columns.items()}


def check_columns(columns: Columns, required: Iterable[str], where: str) -> None:
    """Raises if a required column is missing or the columns differ in length.

    Raises:
        KeyError: a required column is missing; names the column and ``where``.
        ValueError: columns have different lengths.
    """
    for name in required:
        if name not in columns:
            raise KeyError(f"{where}: missing column {name!r} (has {sorted(columns)})")
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{where}: columns have different lengths {lengths}")


def row_groups(columns: Columns, names: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """Groups rows by equal values in the columns ``names``.

    Returns:
        ``(group, first)``: ``group[r]`` the group number of row ``r``, and ``first`` the
        row index of each group's first row in file order (``first[group[r]] <= r``).

    Example::

        row_groups({"u": np.array(["a", "b", "a"])}, ["u"])  # -> ([0, 1, 0], [0, 1])
    """
    count = len(columns[names[0]]) if names else 0
    if count == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    keys = [np.unique(columns[name], return_inverse=True)[1].reshape(-1) for name in names]
    rows = np.arange(count)
    order = np.lexsort([rows] + keys[::-1])  # by names[0], names[1], ..., then file order
    sorted_keys = np.stack([key[order] for key in keys])
    starts = np.r_[True, np.any(sorted_keys[:, 1:] != sorted_keys[:, :-1], axis=0)]
    group = np.empty(count, dtype=np.int64)
    group[order] = np.cumsum(starts) - 1
    return group, order[starts]


def duplicate_keys(columns: Columns) -> Tuple[str, ...]:
    """The columns that make two interaction rows exact duplicates (see the module doc)."""
    return (USER_ID, ITEM_ID, TIMESTAMP) if TIMESTAMP in columns else (USER_ID, ITEM_ID)


def duplicate_rows(columns: Columns) -> np.ndarray:
    """Boolean mask of the rows that repeat an earlier row's ``duplicate_keys``."""
    group, first = row_groups(columns, duplicate_keys(columns))
    repeated = np.ones(len(group), dtype=bool)
    repeated[first] = False
    return repeated


class IdIndex:
    """Maps raw ids to dense indices ``0..n-1`` in catalogue order.

    Example::

        index = IdIndex(np.array(["10", "7", "3"]))
        index.lookup(np.array(["3", "10"]))  # -> array([2, 0])
    """

    def __init__(self, ids: np.ndarray, name: str = "id"):
        self.ids = np.asarray(ids)
        self.name = name
        if len(np.unique(self.ids)) != len(self.ids):
            raise ValueError(f"{name}: the catalogue has duplicate ids")
        self._order = np.argsort(self.ids, kind="stable")
        self._sorted = self.ids[self._order]

    def __len__(self) -> int:
        return len(self.ids)

    def lookup(self, values: np.ndarray) -> np.ndarray:
        """Returns the dense index of each value.

        Raises:
            KeyError: some values are not in the catalogue; names a few of them.
        """
        values = np.asarray(values)
        if len(self.ids) == 0:
            raise KeyError(f"{self.name}: the catalogue is empty")
        if values.dtype.kind != self.ids.dtype.kind and not (values.dtype.kind in "iu" and self.ids.dtype.kind in "iu"):
            raise TypeError(
                f"{self.name}: ids of dtype {values.dtype} cannot match a catalogue of dtype {self.ids.dtype}"
            )
        positions = np.searchsorted(self._sorted, values)
        positions = np.clip(positions, 0, len(self._sorted) - 1)
        found = self._sorted[positions] == values
        if not np.all(found):
            unknown = np.unique(values[~found])
            raise KeyError(f"{self.name}: {len(unknown)} unknown id(s), e.g. {unknown[:5].tolist()}")
        return self._order[positions].astype(np.int64)


@dataclass
class RecDataset:
    """Interactions plus optional user / item feature tables.

    Args:
        name: data set name, e.g. ``"ml-100k"``.
        interactions: columns ``user_id``, ``item_id`` and usually ``rating``, ``timestamp``.
        users: user table keyed by ``user_id`` (None when there are no user features).
        items: item table keyed by ``item_id`` (None when there are no item features).
        notes: what loading did, for ``stats()`` and logs: ``source`` (file or directory
            read), ``encodings`` (file -> encoding used), ``duplicates_dropped`` /
            ``duplicates_kept``. Parts made by ``select`` start with no notes.

    Example::

        ds = RecDataset("toy", {"user_id": np.array(["a", "b"]), "item_id": np.array(["x", "x"])})
        ds.stats()["num_items"]  # -> 1
    """

    name: str
    interactions: Columns
    users: Optional[Columns] = None
    items: Optional[Columns] = None
    notes: Dict[str, object] = field(default_factory=dict, compare=False)
    _user_index: Optional[IdIndex] = field(default=None, repr=False, compare=False)
    _item_index: Optional[IdIndex] = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        check_columns(self.interactions, (USER_ID, ITEM_ID), f"{self.name} interactions")
        if self.users is not None:
            check_columns(self.users, (USER_ID,), f"{self.name} users")
        if self.items is not None:
            check_columns(self.items, (ITEM_ID,), f"{self.name} items")

    def __len__(self) -> int:
        return len(self.interactions[USER_ID])

    @property
    def user_index(self) -> IdIndex:
        """Dense user indices over the user table (or every user seen, without one)."""
        if self._user_index is None:
            ids = self.users[USER_ID] if self.users is not None else np.unique(self.interactions[USER_ID])
            self._user_index = IdIndex(ids, name=f"{self.name} user_id")
        return self._user_index

    @property
    def item_index(self) -> IdIndex:
        """Dense item indices over the item table (or every item seen, without one)."""
        if self._item_index is None:
            ids = self.items[ITEM_ID] if self.items is not None else np.unique(self.interactions[ITEM_ID])
            self._item_index = IdIndex(ids, name=f"{self.name} item_id")
        return self._item_index

    @property
    def num_users(self) -> int:
        return len(self.user_index)

    @property
    def num_items(self) -> int:
        return len(self.item_index)

    def user_indices(self) -> np.ndarray:
        """Dense user index of every interaction row."""
        return self.user_index.lookup(self.interactions[USER_ID])

    def item_indices(self) -> np.ndarray:
        """Dense item index of every interaction row."""
        return self.item_index.lookup(self.interactions[ITEM_ID])

    def with_interactions(self, interactions: Columns, name: Optional[str] = None) -> "RecDataset":
        """Same user / item tables (and catalogue indices), other interaction rows.

        The catalogue is the parent's even without user / item tables, so every split part
        indexes users and items the same way.
        """
        return replace(
            self,
            name=name or self.name,
            interactions=interactions,
            notes={},
            _user_index=self.user_index,
            _item_index=self.item_index,
        )

    def select(self, rows: np.ndarray, name: Optional[str] = None) -> "RecDataset":
        """The data set restricted to the interaction ``rows`` (indices or mask)."""
        return self.with_interactions(take_rows(self.interactions, rows), name=name)

    def deduplicated(self, policy: str = "drop") -> "RecDataset":
        """Applies a duplicate policy to exact duplicate interaction rows (module doc).

        Args:
            policy: ``"drop"`` (keep each row's first occurrence, file order kept),
                ``"keep"`` (leave them; a warning is logged) or ``"error"``.

        Returns:
            The data set with ``notes["duplicates_dropped"]`` (``"drop"``) or
            ``notes["duplicates_kept"]`` (``"keep"``) set to the count.

        Raises:
            InputError: unknown policy.
            DuplicateRowsError: ``policy="error"`` and there are duplicates.

        Example::

            ds = load_dataset("ml-100k", duplicates="keep").deduplicated("drop")
            ds.stats()["duplicates_dropped"]  # -> 0
        """
        if policy not in DUPLICATE_POLICIES:
            raise InputError(f"duplicates={policy!r}: choose one of {', '.join(DUPLICATE_POLICIES)}")
        repeated = duplicate_rows(self.interactions)
        count = int(repeated.sum())
        keys = ", ".join(duplicate_keys(self.interactions))
        if count and policy == "error":
            row = int(np.flatnonzero(repeated)[0])
            example = ", ".join(f"{k}={self.interactions[k][row].item()!r}" for k in duplicate_keys(self.interactions))
            raise DuplicateRowsError(
                f"{self.name}: {count} exact duplicate interaction row(s) ({keys}), e.g. row {row + 1}: {example}; "
                "pass duplicates='drop' to drop them or 'keep' to keep them"
            )
        if count:
            LOG.warning(
                "%s: %s %d exact duplicate interaction row(s) (%s)",
                self.name,
                "dropped" if policy == "drop" else "kept",
                count,
                keys,
            )
        result = self.select(~repeated) if policy == "drop" and count else self
        note = "duplicates_kept" if policy == "keep" else "duplicates_dropped"
        return replace(result, notes={**self.notes, note: count})

    def stats(self) -> Dict[str, object]:
        """Counts and density, as printed by ``tfrecs data stats`` (plus the load ``notes``)."""
        n = len(self)
        active_users = len(np.unique(self.interactions[USER_ID]))
        active_items = len(np.unique(self.interactions[ITEM_ID]))
        result: Dict[str, object] = {
            "dataset": self.name,
            "num_users": self.num_users,
            "num_items": self.num_items,
            "num_interactions": n,
            "active_users": active_users,
            "active_items": active_items,
            "density": n / max(1, self.num_users * self.num_items),
        }
        if RATING in self.interactions and n:
            ratings = self.interactions[RATING]
            result["rating_mean"] = float(np.mean(ratings))
            values, counts = np.unique(ratings, return_counts=True)
            result["rating_counts"] = {str(v.item()): int(c) for v, c in zip(values, counts)}
        if TIMESTAMP in self.interactions and n:
            result["timestamp_min"] = int(np.min(self.interactions[TIMESTAMP]))
            result["timestamp_max"] = int(np.max(self.interactions[TIMESTAMP]))
        if n:
            per_user = np.unique(self.interactions[USER_ID], return_counts=True)[1]
            result["interactions_per_user_min"] = int(per_user.min())
            result["interactions_per_user_median"] = float(np.median(per_user))
        result.update(self.notes)
        return result


def joined_columns(ds: RecDataset) -> Columns:
    """Interaction rows with their user's and item's features attached: the flat
    ``feature name -> column`` view that a ``FeatureSpec`` is fitted on and batches use.

    Example::

        columns = joined_columns(split.train)
        columns["occupation"][:3]
    """
    columns = dict(ds.interactions)
    if ds.users is not None:
        rows = ds.user_index.lookup(ds.interactions[USER_ID])
        columns.update({k: v[rows] for k, v in ds.users.items() if k != USER_ID})
    if ds.items is not None:
        rows = ds.item_index.lookup(ds.interactions[ITEM_ID])
        columns.update({k: v[rows] for k, v in ds.items.items() if k != ITEM_ID})
    return columns
