"""Property (issue 15): a CLI number is accepted with the right type and range, or refused naming it.

Random strings and numbers for every numeric option (``--batch-size``, ``--epochs``,
``--learning-rate``, ``--k``, ``--negatives``, ``--num-candidates``) go through the real
parser: accepted values have the option's type and range (a whole number >= 1, a finite
number > 0), refused ones exit with status 2 and an error line naming the option. Refused
ones also go through ``tfrecs.cli.main`` (they fail at parse time, so nothing trains).
``--set key=value`` values go through ``parse_overrides`` and ``split_overrides`` (what
``tfrecs train`` does before building a model): accepted values have the hyper-parameter's
type and range, refused ones are an ``InputError`` naming the key. Nothing is ever trained.
"""

import contextlib
import io
import math
import re

import hypothesis_settings  # noqa: F401  - loads the shared profile
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tfrecs.cli import build_parser, main
from tfrecs.core.errors import InputError, TfrecsError

# option -> (a command line the option belongs to, the args attribute, "int" or "float")
OPTIONS = {
    "--batch-size": (["train", "--model", "deepfm"], "batch_size", "int"),
    "--epochs": (["train", "--model", "deepfm"], "epochs", "int"),
    "--learning-rate": (["train", "--model", "deepfm"], "learning_rate", "float"),
    "--k": (["export", "--model", "two_tower"], "k", "int"),
    "--num-candidates": (["export", "--model", "two_tower", "--rerank", "deepfm"], "num_candidates", "int"),
    "--negatives": (["evaluate", "--model", "pop"], "negatives", "int"),
    "--evaluate-k": (["evaluate", "--model", "pop"], "k", "int"),  # nargs="+" cut-offs
}

NUMBER_TEXT = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.text(max_size=6),
    st.sampled_from(
        [
            "nan",
            "NaN",
            "inf",
            "-inf",
            "Infinity",
            "1e3",
            "1e400",
            "1e-400",
            "0x10",
            "1_000",
            "+5",
            " 7 ",
            "",
            "-0",
            "0",
            "1.0",
            "2.5",
            "1,5",
            "٣",
            "1e-3",
            "0.0",
            "true",
        ]
    ),
)


def parse(argv):
    """``(namespace, "")`` or ``(None, stderr)`` of the real parser, without running anything."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            return build_parser().parse_args(argv), ""
        except SystemExit as exit_info:
            assert exit_info.code == 2, (argv, exit_info.code, stderr.getvalue())
            return None, stderr.getvalue()


def run_main(argv):
    """Exit status and stderr of ``tfrecs.cli.main`` for arguments the parser refuses."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = main(argv)
        except SystemExit as exit_info:
            status = exit_info.code
    return status, stderr.getvalue()


def _plain_number(text: str, kind: str) -> bool:
    """True for text any user means as a valid value: plain decimal digits (int) or a positive float literal."""
    if kind == "int":
        return re.fullmatch(r"\+?[0-9]+", text) is not None and int(text) >= 1
    try:
        value = float(text)
    except ValueError:
        return False
    return re.fullmatch(r"[0-9.eE+-]+", text) is not None and math.isfinite(value) and value > 0


def check_option(option: str, text: str) -> None:
    prefix, attribute, kind = OPTIONS[option]
    flag = "--k" if option == "--evaluate-k" else option
    argv = prefix + [f"{flag}={text}"]
    args, stderr = parse(argv)
    if args is not None:
        value = getattr(args, attribute)
        value = value[0] if isinstance(value, list) else value
        if kind == "int":
            assert type(value) is int and value >= 1, (text, value)
        else:
            assert type(value) is float and math.isfinite(value) and value > 0, (text, value)
        return
    assert not _plain_number(text, kind), f"{flag}={text!r} refused: {stderr}"
    error_lines = [line for line in stderr.splitlines() if "error:" in line]
    assert len(error_lines) == 1 and flag in error_lines[0], stderr
    status, main_stderr = run_main(argv)
    assert status == 2 and flag in main_stderr, (status, main_stderr)


@pytest.mark.parametrize("option", list(OPTIONS))
@given(text=NUMBER_TEXT)
@example(text="0")
@example(text="-5")
@example(text="nan")
@example(text="inf")
@example(text="1e-400")
def test_numeric_options_give_the_right_type_and_range_or_exit_2_naming_the_option(option, text):
    check_option(option, text)


@pytest.mark.parametrize(
    "argv, option",
    [
        (["train", "--model", "deepfm", "--batch-size=0"], "--batch-size"),
        (["train", "--model", "deepfm", "--learning-rate=nan"], "--learning-rate"),
        (["export", "--model", "two_tower", "--k=abc"], "--k"),
    ],
)
def test_a_parse_error_is_one_stderr_line_in_the_tfrecs_style(argv, option):
    """Issue 15, item 2: exit 2 and ONE line ``tfrecs: error: <what> (<argument>): <how to fix>``
    (argparse's default prints the usage block first and prefixes the sub-command)."""
    status, stderr = run_main(argv)
    lines = stderr.strip().splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith("tfrecs: error:") and option in lines[0], stderr


# --set key=value ----------------------------------------------------------------------------

# key -> (the range a value must fall in, described), for DeepFM's keywords and CtrSettings.
SET_RANGES = {
    "embedding_dim": (lambda v: v >= 1, ">= 1"),
    "hidden_units": (lambda v: all(u >= 1 for u in v), "every unit >= 1"),
    "dropout": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "l2": (lambda v: v >= 0, ">= 0"),
    "epochs": (lambda v: v >= 1, ">= 1"),
    "batch_size": (lambda v: v >= 1, ">= 1"),
    "learning_rate": (lambda v: v > 0, "> 0"),
    "patience": (lambda v: v >= 0, ">= 0"),
}
SET_TEXT = st.one_of(
    NUMBER_TEXT,
    st.lists(st.integers(-3, 5).map(str), max_size=3).map(",".join),
    st.sampled_from(["none", "null", "True", "false", "64,abc", ",", "1e3", "-1", "0"]),
)


def overrides(key: str, text: str):
    """``(model kwargs, settings)`` of ``--set key=text`` for DeepFM, or the error raised."""
    from tfrecs.models.deepfm import DeepFM
    from tfrecs.recipes.config import parse_overrides, split_overrides
    from tfrecs.recipes.ctr import CtrSettings

    return split_overrides(parse_overrides([f"{key}={text}"]), DeepFM, CtrSettings(), "deepfm")


REFUSED = object()


def _accepted_value(key: str, text: str):
    """The value ``--set key=text`` resolves to, or REFUSED after checking the refusal names the key."""
    try:
        kwargs, settings = overrides(key, text)
    except TfrecsError as error:
        assert f"--set {key}=" in str(error), str(error)
        return REFUSED
    return kwargs[key] if key in kwargs else getattr(settings, key)


@pytest.mark.parametrize("key", list(SET_RANGES))
@given(text=SET_TEXT)
@example(text="abc")
@example(text="none")
def test_set_values_have_the_hyper_parameter_type_or_name_the_key(key, text):
    from tfrecs.models.deepfm import DeepFM
    from tfrecs.recipes.config import model_parameters
    from tfrecs.recipes.ctr import CtrSettings

    default = {**model_parameters(DeepFM), **vars(CtrSettings())}[key]
    value = _accepted_value(key, text)
    if value is REFUSED:
        return
    if isinstance(default, tuple):
        assert isinstance(value, tuple) and all(type(u) is int for u in value), (text, value)
    elif isinstance(default, float):
        assert type(value) is float and math.isfinite(value), (text, value)
    else:
        assert type(value) is type(default), (text, value)


@pytest.mark.parametrize("key", list(SET_RANGES))
@given(text=SET_TEXT)
@example(text="0")
@example(text="-1")
@example(text="5")
def test_set_values_are_in_the_hyper_parameter_range_or_name_the_key(key, text):
    """``--set batch_size=0`` must not do what ``--batch-size 0`` is refused for."""
    value = _accepted_value(key, text)
    if value is REFUSED:
        return
    in_range, described = SET_RANGES[key]
    assert in_range(value), f"--set {key}={text} accepted as {value!r}; expected {described}"


@pytest.mark.parametrize("pair", ["embedding_dim", "=64", "", "embedding_dim64"])
def test_a_malformed_set_pair_is_a_tfrecs_error(pair):
    from tfrecs.recipes.config import parse_overrides

    with pytest.raises(InputError, match="--set"):
        parse_overrides([pair])
