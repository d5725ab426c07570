"""The recipe seam behind `tfrecs train`: overrides parsing, unknown names, unknown hyper-parameters."""

from dataclasses import dataclass

import pytest

from tfrecs.cli import main
from tfrecs.recipes import apply_overrides, get_recipe, parse_overrides


def test_overrides_are_parsed_with_types():
    assert parse_overrides(["dim=64", "l2=1e-5", "norm=true", "name=gru", "k=none"]) == {
        "dim": 64,
        "l2": 1e-5,
        "norm": True,
        "name": "gru",
        "k": None,
    }
    assert parse_overrides(["hidden_units=256, 128", "rates=0.5,1e-3,"]) == {
        "hidden_units": (256, 128),
        "rates": (0.5, 1e-3),
    }
    with pytest.raises(ValueError, match="--set expects key=value, got 'dim'"):
        parse_overrides(["dim"])


def test_unknown_hyper_parameters_are_named_with_the_valid_ones():
    @dataclass
    class Hparams:
        embedding_dim: int = 32
        l2: float = 0.0

    assert apply_overrides(Hparams(), {"l2": 1e-4}, "toy") == Hparams(32, 1e-4)
    with pytest.raises(
        ValueError, match=r"unknown hyper-parameter\(s\) \['dim'\] for model 'toy'; valid: \['embedding_dim', 'l2'\]"
    ):
        apply_overrides(Hparams(), {"dim": 8}, "toy")


def test_unknown_model_has_no_recipe(capsys):
    with pytest.raises(KeyError, match="no training recipe for model 'nope'"):
        get_recipe("nope")
    assert main(["train", "--model", "nope"]) == 2
    assert "no training recipe for model 'nope'" in capsys.readouterr().err


def test_ctr_recipes_map_set_onto_model_keywords_and_training_settings():
    from tfrecs.recipes import TrainConfig, recipe_names
    from tfrecs.recipes.config import split_overrides
    from tfrecs.recipes.ctr import CTR_RECIPES

    assert set(CTR_RECIPES) <= set(recipe_names())
    xdeepfm = CTR_RECIPES["xdeepfm"]
    kwargs, settings = split_overrides(
        {"dropout": 0.2, "patience": 5}, xdeepfm.model, xdeepfm.settings, "xdeepfm", xdeepfm.model_defaults
    )
    assert kwargs == {"cin_layer_sizes": (100, 100), "dropout": 0.2} and settings.patience == 5
    din = CTR_RECIPES["din"]
    assert split_overrides({"history_length": 20}, din.model, din.settings, "din")[1].history_length == 20
    # The real recipe refuses an unknown key before it loads any data, naming both lists.
    with pytest.raises(
        ValueError,
        match=r"\['history_length'\] for model 'deepfm'; model keywords: .*'hidden_units'.*"
        r"training settings: \['batch_size', 'epochs', 'features', 'learning_rate', 'patience'\]",
    ):
        get_recipe("deepfm")(TrainConfig(model="deepfm", hparams={"history_length": 20}))
