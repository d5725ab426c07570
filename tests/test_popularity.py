"""The popularity baseline through the real protocol code, against figures computed by hand."""

import math

import numpy as np
import pytest

from tfrecs import models
from tfrecs.data import RecDataset, make_split
from tfrecs.evaluation.protocols import evaluate_protocol
from tfrecs.models.popularity import Popularity


def _toy_split():
    # u1: x, z, y | u2: x, y, z | u3: x, y, z, w  (in time order) -> LOO:
    # train u1{x} u2{x} u3{x, y}; valid u1 z, u2 y, u3 z; test u1 y, u2 z, u3 w.
    rows = [
        ("u1", "x", 1),
        ("u1", "z", 2),
        ("u1", "y", 3),
        ("u2", "x", 1),
        ("u2", "y", 2),
        ("u2", "z", 3),
        ("u3", "x", 1),
        ("u3", "y", 2),
        ("u3", "z", 3),
        ("u3", "w", 4),
    ]
    users, items, times = zip(*rows)
    return make_split(
        RecDataset("toy", {"user_id": np.array(users), "item_id": np.array(items), "timestamp": np.array(times)}), "loo"
    )


def test_popularity_counts_training_interactions_in_catalogue_order():
    split = _toy_split()
    pop = Popularity.from_dataset(split.train)  # catalogue w, x, y, z
    np.testing.assert_array_equal(pop(np.array([0, 2])).numpy(), [[0, 3, 1, 0]] * 2)
    assert models.get("pop") is Popularity


def test_popularity_on_test_masks_training_and_validation_items():
    # Test ranks: u1 -> y first (w, z masked? no: x, z masked; y=1 beats w=0); u2 -> x, y masked,
    # w and z tie at 0 and w has the lower index, so z is 2nd; u3 -> only w is left, 1st.
    figures = evaluate_protocol(Popularity.from_dataset(_toy_split().train), _toy_split(), "loo-full", ks=(1, 2))
    assert figures["hr@1"] == pytest.approx(2 / 3)
    assert figures["hr@2"] == pytest.approx(1.0)
    assert figures["mrr@2"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert figures["ndcg@2"] == pytest.approx((1 + 1 / math.log2(3) + 1) / 3)
    assert figures["precision@2"] == pytest.approx(0.5)
    assert (figures["split"], figures["num_users"]) == ("test", 3)


def test_popularity_on_validation_masks_training_items_only():
    # Valid ranks: u1 -> y, w, z: z 3rd; u2 -> y 1st; u3 -> x, y masked, w, z: z 2nd.
    split = _toy_split()
    figures = evaluate_protocol(Popularity.from_dataset(split.train), split, "loo-full", stage="valid", ks=(2, 3))
    assert figures["hr@2"] == pytest.approx(2 / 3)
    assert figures["mrr@3"] == pytest.approx((1 / 3 + 1 + 1 / 2) / 3)


def test_protocol_and_split_must_agree():
    with pytest.raises(ValueError, match="protocol 'random-full' needs a 'random' split, got a 'loo' split"):
        evaluate_protocol(Popularity.from_dataset(_toy_split().train), _toy_split(), "random-full")
    with pytest.raises(KeyError, match="unknown protocol 'loo'"):
        evaluate_protocol(Popularity.from_dataset(_toy_split().train), _toy_split(), "loo")
