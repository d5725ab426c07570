"""EASE and ItemKNN: closed forms against NumPy, raw-id recommend, Keras fit entry point."""

import numpy as np
import pytest
import tensorflow as tf

from tfrecs.models import EASE, ItemKNN

ITEMS = np.array(["a", "b", "c", "d", "e"])
HISTORIES = np.array([["a", "b", ""], ["b", "c", "d"], ["a", "c", "e"], ["d", "e", ""], ["a", "zz", ""]])


def _multi_hot(histories):
    x = np.zeros((len(histories), len(ITEMS)))
    for row, items in enumerate(histories):
        for item in items:
            if item in ITEMS:
                x[row, list(ITEMS).index(item)] = 1.0
    return x


def _fit(model):
    model.fit(tf.data.Dataset.from_tensor_slices({"history": HISTORIES}).batch(2))
    return model


def test_ease_matches_the_numpy_closed_form():
    l2 = 2.0
    model = _fit(EASE(ITEMS, l2=l2))
    x = _multi_hot(HISTORIES)
    p = np.linalg.inv(x.T @ x + l2 * np.eye(len(ITEMS)))
    expected = np.eye(len(ITEMS)) - p / np.diag(p)[None, :]
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(model.item_matrix_weight.numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(model.scores({"history": HISTORIES}).numpy(), x @ expected, atol=1e-5)


def test_itemknn_keeps_the_top_neighbours_of_each_item():
    model = _fit(ItemKNN(ITEMS, neighbours=2))
    x = _multi_hot(HISTORIES)
    gram = x.T @ x
    norms = np.sqrt(np.diag(gram))
    cosine = gram / np.outer(norms, norms)
    np.fill_diagonal(cosine, 0.0)
    weights = model.item_matrix_weight.numpy()
    for j in range(len(ITEMS)):
        kept = np.flatnonzero(weights[:, j])
        assert len(kept) <= 2 or len(set(np.round(cosine[kept, j], 6))) < len(kept)  # ties may keep more
        np.testing.assert_allclose(weights[kept, j], cosine[kept, j], atol=1e-6)
        assert cosine[kept, j].min() >= np.sort(cosine[:, j])[-2] - 1e-9


def test_recommend_returns_raw_ids_and_honours_exclusions():
    model = _fit(EASE(ITEMS, l2=1.0))
    query = {"history": HISTORIES[:2]}
    ids, scores = model.recommend(query, k=5, exclude=[["a", "b"], ["b", "c", "d"]])
    ids = ids.numpy().astype(str)
    assert "a" not in ids[0][:3] and "b" not in ids[0][:3]
    assert set(ids[1][:2]) == {"a", "e"}
    expected = model.scores(query).numpy()
    top = np.argsort(-np.where(np.isin(ITEMS, ["a", "b"]), -np.inf, expected[0]))[:3]
    assert list(ids[0][:3]) == list(ITEMS[top])
    assert np.all(np.diff(scores.numpy()[0][:3]) <= 0)


def test_solve_after_a_regularisation_change_needs_no_second_pass():
    model = _fit(EASE(ITEMS, l2=1.0))
    model.l2 = 50.0
    model.solve()
    again = _fit(EASE(ITEMS, l2=50.0))
    np.testing.assert_allclose(model.item_matrix_weight.numpy(), again.item_matrix_weight.numpy(), atol=1e-6)


def test_bad_hyper_parameters_and_missing_history_are_named():
    with pytest.raises(ValueError, match="l2"):
        EASE(ITEMS, l2=0.0)
    with pytest.raises(ValueError, match="neighbours"):
        ItemKNN(ITEMS, neighbours=0)
    with pytest.raises(KeyError, match="history"):
        EASE(ITEMS)({"user_id": tf.constant(["u"])})
