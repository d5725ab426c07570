"""Property (issue 15): ``FeatureSpec.fit`` gives finite statistics and right vocabularies, or names the feature.

Random columns (inf, -inf, NaN, huge and tiny numbers, empty columns and lists, unicode,
wrong and mixed types) for numeric, categorical, sequence and text features. The outcome
is either a fitted spec whose numbers are finite where they are used (the float32
``Normalization`` layer maps every training value to a finite number) and whose vocabulary
holds exactly the values seen, or a ``FeatureSpecError`` / ``InputError`` naming the
feature (and, for non-finite numbers, how many there are). Never a silent wrong result and
never another exception. See ``docs/data_policies.md`` ("Property tests").
"""

import math
from fractions import Fraction

import hypothesis_settings  # noqa: F401  - loads the shared profile
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import tfrecs  # noqa: F401  - selects tf_keras before TensorFlow loads
from tfrecs.core.errors import InputError, TfrecsError
from tfrecs.data.feature_spec import SEQUENCE_PADDING, Feature, FeatureSpec, FeatureSpecError, text_tokens

NAME = "the_feature"  # the culprit every error must name (a second, valid feature follows it)
INT64 = st.integers(-(2**63), 2**63 - 1)
TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=8)


def fit(kind: str, column, **options):
    """Fits a spec of ``NAME`` on ``column`` and of a valid ``other`` feature."""
    spec = FeatureSpec([Feature(NAME, kind, **options), Feature("other", "categorical")])
    return spec.fit({"other": np.array(["a"] * len(column), dtype=str), NAME: column})


def fit_or_error(kind: str, column, **options):
    """``(spec, None)`` or ``(None, error)`` for a FeatureSpecError / InputError naming the feature."""
    try:
        return fit(kind, column, **options), None
    except (FeatureSpecError, InputError) as error:
        assert NAME in str(error), str(error)
        return None, error


def object_column(values) -> np.ndarray:
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


# Numeric ----------------------------------------------------------------------------------

FLOATS = st.floats(allow_nan=True, allow_infinity=True)
NUMERIC_COLUMNS = st.one_of(
    st.lists(FLOATS, max_size=8).map(lambda v: np.array(v, dtype=np.float64)),
    st.lists(st.floats(width=32), max_size=8).map(lambda v: np.array(v, dtype=np.float32)),
    st.lists(INT64, max_size=8).map(lambda v: np.array(v, dtype=np.int64)),
    st.lists(st.sampled_from([1e308, -1e308, 3.5e38, 1e200, 5e-324, 0.0]), min_size=1, max_size=4).map(np.array),
)


def _exact_mean(values: np.ndarray) -> float:
    return float(sum(Fraction(float(v)) for v in values) / len(values))


def check_numeric(column: np.ndarray, num_buckets=None) -> None:
    spec, error = fit_or_error("numeric", column, num_buckets=num_buckets)
    as_float = column.astype(np.float64) if column.dtype.kind in "fiub" else None
    non_finite = int((~np.isfinite(as_float)).sum()) if as_float is not None and len(as_float) else 0
    if len(column) == 0 or non_finite:
        assert error is not None, f"fitted {spec[NAME] if spec else None} on {column!r}"
        if non_finite:
            assert str(non_finite) in str(error), f"the count {non_finite} is not in: {error}"
        return
    if error is not None:  # refusing finite numbers is allowed only when they do not fit float32 statistics
        assert np.abs(as_float).max() > np.finfo(np.float32).max / 4, f"refused finite {column!r}: {error}"
        return
    feature = spec[NAME]
    assert math.isfinite(feature.mean) and math.isfinite(feature.std) and feature.std >= 0, feature
    assert math.isclose(feature.mean, _exact_mean(column), rel_tol=1e-6, abs_tol=1e-300), feature
    if num_buckets:
        assert all(math.isfinite(b) for b in feature.boundaries) and feature.boundaries == sorted(feature.boundaries)
    import tensorflow as tf

    normalised = spec.normalization_layer(NAME)(tf.constant(column.astype(np.float32)[:, None])).numpy()
    assert np.isfinite(normalised).all(), f"mean {feature.mean}, std {feature.std} -> {normalised.ravel()}"


@given(column=NUMERIC_COLUMNS, num_buckets=st.sampled_from([None, 2, 5]))
@example(column=np.array([1.0, np.inf, 2.0]), num_buckets=None)  # the issue's case: mean inf, std nan
@example(column=np.array([1.0, -np.inf, np.nan]), num_buckets=None)
@example(column=np.array([1e308, 1e308]), num_buckets=None)  # the float64 sum overflows
@example(column=np.array([1e200, -1e200]), num_buckets=None)  # std ** 2 overflows in normalization_layer
@example(column=np.array([3e38, 3.3e38]), num_buckets=2)
def test_numeric_features_fit_finite_statistics_or_name_the_feature_and_count(column, num_buckets):
    check_numeric(column, num_buckets)


def test_the_issue_case_positive_infinity_is_refused_with_feature_and_count():
    with pytest.raises((FeatureSpecError, InputError)) as error:
        fit("numeric", np.array([1.0, np.inf, np.inf, 2.0]))
    assert NAME in str(error.value) and "2" in str(error.value)


@given(values=st.lists(st.one_of(TEXT, st.none(), st.booleans(), INT64, FLOATS), min_size=1, max_size=6))
def test_numeric_features_refuse_wrong_types_naming_the_feature(values):
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        values = values + ["x"]
    _, error = fit_or_error("numeric", object_column(values))
    assert error is not None, values


# Categorical ------------------------------------------------------------------------------


def check_vocabulary(feature: Feature, tokens: list) -> None:
    padding = SEQUENCE_PADDING[feature.dtype] if feature.kind == "sequence" else None
    seen = [t for t in tokens if t != padding]
    assert sorted(map(repr, feature.vocabulary)) == sorted(map(repr, set(seen))), (feature.vocabulary, tokens)
    counts = [seen.count(value) for value in feature.vocabulary]
    assert counts == sorted(counts, reverse=True), "the vocabulary is not in frequency order"


@given(values=st.lists(TEXT, min_size=1, max_size=8), as_object=st.booleans())
def test_string_categorical_vocabulary_is_every_value(values, as_object):
    column = object_column(values) if as_object else np.array(values, dtype=str)
    spec, error = fit_or_error("categorical", column)
    assert error is None, error
    check_vocabulary(spec[NAME], values)


@given(values=st.lists(INT64, min_size=1, max_size=8))
def test_int64_categorical_vocabulary_is_every_value(values):
    spec, error = fit_or_error("categorical", np.array(values, dtype=np.int64), dtype="int64")
    assert error is None, error
    check_vocabulary(spec[NAME], values)
    assert all(type(v) is int for v in spec[NAME].vocabulary)


MIXED = st.lists(st.one_of(TEXT, INT64, FLOATS, st.none(), st.booleans(), st.just([1])), min_size=1, max_size=6)


@given(values=MIXED, dtype=st.sampled_from(["string", "int64"]))
@example(values=["1", 1], dtype="string")  # the str and the int both fit as "1"
@example(values=["a", None], dtype="string")  # None becomes the id "None"
@example(values=[1.5, 2.0], dtype="int64")
@example(values=[1, 2**64], dtype="int64")
def test_categorical_features_refuse_wrong_or_mixed_types_naming_the_feature(values, dtype):
    expected = str if dtype == "string" else int
    if all(type(v) is expected for v in values):
        return  # a valid column: covered above
    spec, error = fit_or_error("categorical", object_column(values), dtype=dtype)
    assert error is not None, f"fitted vocabulary {spec[NAME].vocabulary} from {values!r}"


def test_an_empty_column_is_refused_naming_the_feature():
    for kind in ("categorical", "numeric", "sequence", "text"):
        dtype = np.float64 if kind == "numeric" else str
        column = object_column([]) if kind == "sequence" else np.array([], dtype=dtype)
        _, error = fit_or_error(kind, column)
        assert error is not None, kind


# Sequence ---------------------------------------------------------------------------------


@given(rows=st.lists(st.lists(TEXT, max_size=4), min_size=1, max_size=5))
def test_string_sequence_vocabulary_is_every_item_but_padding(rows):
    spec, error = fit_or_error("sequence", object_column([tuple(r) for r in rows]))
    tokens = [t for row in rows for t in row]
    if error is not None:  # only a column with no item at all may be refused
        assert not [t for t in tokens if t != ""], error
        return
    check_vocabulary(spec[NAME], tokens)


@given(rows=st.lists(st.lists(INT64, max_size=4), min_size=1, max_size=5))
def test_int64_sequence_vocabulary_is_every_item_but_padding(rows):
    spec, error = fit_or_error("sequence", object_column([list(r) for r in rows]), dtype="int64")
    tokens = [t for row in rows for t in row]
    if error is not None:
        assert not [t for t in tokens if t != -1], error
        return
    check_vocabulary(spec[NAME], tokens)


@given(rows=st.lists(MIXED, min_size=1, max_size=4), dtype=st.sampled_from(["string", "int64"]))
@example(rows=[["a", 1]], dtype="string")  # the int is fitted as the string "1"
@example(rows=[["a"]], dtype="int64")  # numpy's ValueError, not a FeatureSpecError
def test_sequence_features_refuse_wrong_or_mixed_items_naming_the_feature(rows, dtype):
    expected = str if dtype == "string" else int
    if all(type(t) is expected for row in rows for t in row):
        return
    spec, error = fit_or_error("sequence", object_column([list(r) for r in rows]), dtype=dtype)
    assert error is not None, f"fitted vocabulary {spec[NAME].vocabulary} from {rows!r}"


# Text -------------------------------------------------------------------------------------


@given(values=st.lists(TEXT, min_size=1, max_size=6), as_object=st.booleans())
def test_text_vocabulary_is_every_token(values, as_object):
    column = object_column(values) if as_object else np.array(values, dtype=str)
    spec, error = fit_or_error("text", column)
    assert error is None, error
    assert sorted(spec[NAME].vocabulary) == sorted({t for v in values for t in text_tokens(v)})


@given(values=st.lists(st.one_of(TEXT, INT64, FLOATS, st.none()), min_size=1, max_size=5))
@example(values=["a title", None])  # None becomes the token "none"
def test_text_features_refuse_non_strings_naming_the_feature(values):
    if all(isinstance(v, str) for v in values):
        return
    spec, error = fit_or_error("text", object_column(values))
    assert error is not None, f"fitted vocabulary {spec[NAME].vocabulary} from {values!r}"


def test_feature_spec_errors_are_tfrecs_input_errors():
    """Issue 15, item 2: library errors are tfrecs classes, so ``except TfrecsError`` catches them."""
    assert issubclass(FeatureSpecError, InputError) and issubclass(FeatureSpecError, TfrecsError)
