"""CLI numbers are checked at parse time and --set values against each hyper-parameter's type.

Every failure is one line on stderr with exit status 2 that names the argument or key.
"""

import pytest

from tfrecs.cli import main
from tfrecs.core.errors import InputError
from tfrecs.recipes.config import TrainConfig, split_overrides, typed_override


@pytest.mark.parametrize(
    "argv, named",
    [
        (["train", "--model", "deepfm", "--batch-size", "0"], "--batch-size"),
        (["train", "--model", "deepfm", "--batch-size", "-5"], "--batch-size"),
        (["train", "--model", "deepfm", "--epochs", "0"], "--epochs"),
        (["train", "--model", "deepfm", "--learning-rate", "nan"], "--learning-rate"),
        (["train", "--model", "deepfm", "--learning-rate", "-1e-3"], "--learning-rate"),
        (["export", "--model", "two_tower", "--k", "0"], "--k"),
        (["evaluate", "--model", "pop", "--negatives", "abc"], "--negatives"),
    ],
)
def test_bad_numbers_are_refused_before_anything_runs(capsys, argv, named):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert named in capsys.readouterr().err


@pytest.mark.parametrize(
    "field, value",
    [("epochs", 0), ("batch_size", -5), ("learning_rate", float("nan")), ("learning_rate", 0.0), ("epochs", 2.5)],
)
def test_train_config_refuses_what_would_be_replaced_by_a_default(field, value):
    with pytest.raises(InputError, match=field):
        TrainConfig(model="deepfm", **{field: value})


@pytest.mark.parametrize(
    "key, value, default, message",
    [
        ("embedding_dim", "abc", 10, "embedding_dim.*whole number"),
        ("dropout", "high", 0.5, "dropout.*finite number"),
        ("dropout", float("inf"), 0.5, "dropout.*finite number"),
        ("l2_normalize", 3, True, "l2_normalize.*true or false"),
        ("hidden_units", ("a", "b"), (400, 400), "hidden_units.*numbers"),
    ],
)
def test_set_values_are_checked_against_the_hyper_parameter_type(key, value, default, message):
    with pytest.raises(InputError, match=message):
        typed_override(key, value, default, "some_model")


def test_set_values_of_the_right_type_are_converted():
    assert typed_override("dropout", 0, 0.5, "m") == 0.0 and isinstance(typed_override("dropout", 0, 0.5, "m"), float)
    assert typed_override("hidden_units", 64, (400, 400), "m") == (64,)


def test_split_overrides_names_unknown_keys_and_routes_known_ones():
    from dataclasses import dataclass

    class Model:
        def __init__(self, spec, embedding_dim: int = 10, dropout: float = 0.5, **kwargs):
            pass

    @dataclass
    class Settings:
        epochs: int = 20
        patience: int = 2

    kwargs, settings = split_overrides({"dropout": 0.1, "patience": 5}, Model, Settings(), "m", {"embedding_dim": 16})
    assert kwargs == {"embedding_dim": 16, "dropout": 0.1} and settings.patience == 5
    with pytest.raises(ValueError, match=r"\['nope'\].*embedding_dim.*patience"):
        split_overrides({"nope": 1}, Model, Settings(), "m")


def test_every_recipe_lists_its_set_keys_with_defaults_and_meanings(capsys):
    from tfrecs.recipes.registry import recipe_names, recipe_parameters

    for name in recipe_names():
        rows = recipe_parameters(name)
        kinds = {kind for _, _, kind, _ in rows}
        assert kinds == {"model", "training"}, (name, kinds)
        assert all(meaning for _, _, _, meaning in rows if _ in ("epochs", "batch_size")), name
    assert main(["train", "--model", "deepfm", "--list-params"]) == 0
    out = capsys.readouterr().out
    assert "hidden_units" in out and "400,400,400" in out and "patience" in out
