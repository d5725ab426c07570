"""Train / validation / test splits that never leak test interactions into training.

Protocols (names as used by the CLI's ``--split``):
    * ``loo``: leave-one-out by time, per user: last interaction -> test, second-to-last ->
      validation, the rest -> train (RecBole ``LS: valid_and_test``, ``order: TO``). Ties in
      timestamp keep file order. Users with 2 interactions give one to test, users with 1
      keep it in train (as RecBole does).
    * ``random``: per-user random ratio split, 80/10/10 by default (RecBole ``RS`` with
      ``group_by: user``), RecBole's rounding: validation and test get ``floor(r * n)``
      each, and a part whose share is between 0 and 1 interaction gets one while train keeps
      more than one. On ML-100K: 80,808 / 9,596 / 9,596.
    * ``random-global``: the same ratio cut over all rows at once (the CTR view: 80,000 /
      10,000 / 10,000 on ML-100K).
    * Both random splits assign (user, item) pairs, not rows: when a pair occurs more than
      once (re-consumption at different times, or duplicates kept with
      ``duplicates="keep"``), every copy lands in the part its first occurrence draws, so no
      pair is in two parts; the ratios then count distinct pairs. Without repeated pairs
      (ML-100K) this is the row-wise split above, row for row.
    * ``temporal``: global temporal split: the earliest 80 % of all interactions train, the
      next 10 % validate, the last 10 % test.
    * ``loo`` and ``temporal`` split by time: a pair consumed again later may have its later
      event in validation / test (that is the protocol: the user did repeat it).

Example::

    split = make_split(load_movielens("ml-100k"), "loo")
    len(split.test)  # -> 943
"""

from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from tfrecs.core.errors import InputError
from tfrecs.data.dataset import ITEM_ID, RATING, TIMESTAMP, USER_ID, RecDataset, row_groups

SPLIT_NAMES = ("loo", "random", "random-global", "temporal")
DEFAULT_RATIOS = (0.8, 0.1, 0.1)


class EmptySplitError(InputError):
    """A split part that must hold interactions is empty."""


@dataclass
class Split:
    """Three disjoint views of one data set, sharing its user / item tables."""

    train: RecDataset
    valid: RecDataset
    test: RecDataset
    protocol: str

    def part(self, name: str) -> RecDataset:
        """``"train"``, ``"valid"`` or ``"test"``."""
        if name not in ("train", "valid", "test"):
            raise KeyError(f"unknown split part {name!r}; choose train, valid or test")
        return getattr(self, name)

    def sizes(self) -> Dict[str, int]:
        return {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}


def _make(ds: RecDataset, part_of_row: np.ndarray, protocol: str, required=("train", "valid", "test")) -> Split:
    """Builds a Split from a per-row part label 0/1/2, failing on a required empty part."""
    parts = [
        ds.select(part_of_row == code, name=f"{ds.name}/{name}") for code, name in enumerate(("train", "valid", "test"))
    ]
    split = Split(*parts, protocol=protocol)
    for name in required:
        if len(split.part(name)) == 0:
            raise EmptySplitError(f"{ds.name}: the {name} part of the {protocol!r} split is empty ({split.sizes()})")
    return split


def _require_interactions(ds: RecDataset, protocol: str) -> None:
    if len(ds) == 0:
        raise EmptySplitError(f"{ds.name}: cannot make the {protocol!r} split: the data set has no interactions")


def _order_within_user(users: np.ndarray, sort_key: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorts rows by (user, key, row); returns the order, each sorted row's position in its
    user's group, and that group's size."""
    rows = np.arange(len(users))
    order = np.lexsort((rows, sort_key, users))
    sorted_users = users[order]
    starts = np.r_[0, np.flatnonzero(sorted_users[1:] != sorted_users[:-1]) + 1]
    sizes = np.diff(np.r_[starts, len(users)])
    group_of_row = np.repeat(np.arange(len(starts)), sizes)
    position = rows - starts[group_of_row]
    return order, position, sizes[group_of_row]


def leave_one_out(ds: RecDataset) -> Split:
    """Leave-one-out by time: last -> test, second-to-last -> valid, per user."""
    _require_interactions(ds, "loo")
    if TIMESTAMP not in ds.interactions:
        raise InputError(
            f"{ds.name}: leave-one-out by time needs a {TIMESTAMP!r} column; give your data's time column "
            "(from_files(..., timestamp=...) or --timestamp-col), or use a random split"
        )
    order, position, size = _order_within_user(ds.user_indices(), ds.interactions[TIMESTAMP])
    part_sorted = np.zeros(len(ds), dtype=np.int8)
    part_sorted[(position == size - 1) & (size >= 2)] = 2
    part_sorted[(position == size - 2) & (size >= 3)] = 1
    part = np.empty_like(part_sorted)
    part[order] = part_sorted
    return _make(ds, part, "loo", required=("train", "test"))


def recbole_counts(totals: np.ndarray, ratios: Sequence[float]) -> np.ndarray:
    """Rows per part for groups of ``totals`` rows, with RecBole's rounding (see module doc).

    Returns:
        int array ``[len(totals), len(ratios)]``.
    """
    totals = np.asarray(totals, dtype=np.int64)
    counts = np.stack([np.floor(r * totals.astype(np.float64)).astype(np.int64) for r in ratios], axis=1)
    counts[:, 0] = totals - counts[:, 1:].sum(axis=1)
    for i in range(1, len(ratios)):
        share = ratios[-i] * totals
        bump = (counts[:, 0] > 1) & (share > 0) & (share < 1)
        counts[bump, -i] += 1
        counts[bump, 0] -= 1
    return counts


def _check_ratios(ratios: Sequence[float]) -> Tuple[float, float, float]:
    if len(ratios) != 3 or any(r < 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6:
        raise ValueError(f"ratios must be three non-negative numbers summing to 1, got {tuple(ratios)}")
    return tuple(float(r) for r in ratios)


def _part_from_position(position: np.ndarray, counts: np.ndarray) -> np.ndarray:
    return np.where(position < counts[:, 0], 0, np.where(position < counts[:, 0] + counts[:, 1], 1, 2)).astype(np.int8)


def _random_parts(
    users: np.ndarray, key: np.ndarray, ratios: Tuple[float, float, float], group_by_user: bool
) -> np.ndarray:
    """Part 0/1/2 of each row, cut by ``ratios`` in the order of the random ``key``."""
    part = np.empty(len(key), dtype=np.int8)
    if not group_by_user:
        order = np.argsort(key, kind="stable")
        counts = recbole_counts(np.array([len(key)]), ratios)
        part[order] = _part_from_position(np.arange(len(key)), np.repeat(counts, len(key), axis=0))
        return part
    order, position, size = _order_within_user(users, key)
    part[order] = _part_from_position(position, recbole_counts(size, ratios))
    return part


def random_split(
    ds: RecDataset, ratios: Sequence[float] = DEFAULT_RATIOS, seed: int = 2020, group_by_user: bool = True
) -> Split:
    """Random ratio split, per user (default) or over all rows; RecBole's rounding.

    Every copy of a repeated (user, item) pair goes to the same part (module doc).
    """
    ratios = _check_ratios(ratios)
    _require_interactions(ds, "random" if group_by_user else "random-global")
    key = np.random.default_rng(seed).random(len(ds))
    required = tuple(name for name, r in zip(("train", "valid", "test"), ratios) if r > 0)
    users = ds.user_indices()
    group, first = row_groups({USER_ID: users, ITEM_ID: ds.item_indices()}, (USER_ID, ITEM_ID))
    if len(first) == len(ds):  # no repeated pair: split the rows themselves
        part = _random_parts(users, key, ratios, group_by_user)
    else:
        part = _random_parts(users[first], key[first], ratios, group_by_user)[group]
    return _make(ds, part, "random" if group_by_user else "random-global", required)


def temporal_split(ds: RecDataset, ratios: Sequence[float] = DEFAULT_RATIOS) -> Split:
    """Global temporal split: earliest rows train, latest rows test (ties keep file order)."""
    ratios = _check_ratios(ratios)
    _require_interactions(ds, "temporal")
    if TIMESTAMP not in ds.interactions:
        raise KeyError(f"{ds.name}: a temporal split needs a {TIMESTAMP!r} column")
    order = np.argsort(ds.interactions[TIMESTAMP], kind="stable")
    counts = recbole_counts(np.array([len(ds)]), ratios)
    part = np.empty(len(ds), dtype=np.int8)
    part[order] = _part_from_position(np.arange(len(ds)), np.repeat(counts, len(ds), axis=0))
    return _make(ds, part, "temporal", tuple(n for n, r in zip(("train", "valid", "test"), ratios) if r > 0))


def make_split(ds: RecDataset, name: str, ratios: Sequence[float] = DEFAULT_RATIOS, seed: int = 2020) -> Split:
    """Splits ``ds`` by protocol name (see module doc).

    Raises:
        KeyError: unknown split name (the message lists the known ones).
        EmptySplitError: a required part came out empty.
    """
    if name == "loo":
        return leave_one_out(ds)
    if name == "random":
        return random_split(ds, ratios, seed, group_by_user=True)
    if name == "random-global":
        return random_split(ds, ratios, seed, group_by_user=False)
    if name == "temporal":
        return temporal_split(ds, ratios)
    raise KeyError(f"unknown split {name!r}; known splits: {', '.join(SPLIT_NAMES)}")


def to_implicit(ds: RecDataset, min_rating: Optional[float] = None) -> RecDataset:
    """Implicit feedback: every interaction (``min_rating=None``) or those rated >= ``min_rating``."""
    if min_rating is None:
        return ds
    if RATING not in ds.interactions:
        raise KeyError(f"{ds.name}: min_rating={min_rating} needs a {RATING!r} column")
    return ds.select(ds.interactions[RATING] >= min_rating)


def k_core(ds: RecDataset, min_user_interactions: int = 5, min_item_interactions: int = 5) -> RecDataset:
    """Repeatedly drops users and items with too few interactions until none is left."""
    keep = np.ones(len(ds), dtype=bool)
    users, items = ds.interactions[USER_ID], ds.interactions[ITEM_ID]
    while True:
        before = keep.sum()
        for ids, minimum in ((users, min_user_interactions), (items, min_item_interactions)):
            values, inverse, counts = np.unique(ids[keep], return_inverse=True, return_counts=True)
            kept_rows = np.flatnonzero(keep)
            keep[kept_rows[counts[inverse] < minimum]] = False
        if keep.sum() == before:
            break
    return ds.select(keep)
