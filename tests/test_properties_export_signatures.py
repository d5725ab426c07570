"""Property (issue 15): an export's ``serving_default`` answers or names the input, and its process survives.

One tiny retrieval export (ScaNN index, titles) and one tiny two-task ranking export are
built once; ~30 generated requests (wrong dtype, missing input, extra input, wrong rank,
wrong sequence width, empty batch, huge strings, inputs of different batch sizes, and
valid ones) are fed to both in ONE fresh process (``tests/workers/property_serving.py``:
TensorFlow + ScaNN, no tfrecs). The process must survive every request; a request that
matches the signature must be answered with the documented outputs (retrieval:
``item_ids`` / ``scores`` / ``titles`` ``[batch, k]``; ranking: ``[batch]`` float32 per
task, probabilities in [0, 1]); any other must fail with a message naming the input at fault.
"""

import json
import os
import subprocess
import sys

import hypothesis_settings  # noqa: F401  - loads the shared profile
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import tfrecs  # noqa: F401

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "workers"))
from load_export_models import TinyRanking, TinyTwoTower, catalogue, feature_spec, fitted, interactions, titles  # noqa: E402

from tfrecs.export import EXCLUDE_INPUT, export_ranking, export_retrieval  # noqa: E402

K = 5
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workers", "property_serving.py")
NUM_REQUESTS = 30
OTHER_DTYPES = ("string", "int64", "int32", "float32", "float64", "bool")
VALUES = {
    "string": st.sampled_from(["u1", "i5", "drama", "", "never-seen", "ünïcödé", "x"]),
    "int64": st.sampled_from([0, 20, -1, 2**62]),
    "int32": st.sampled_from([0, 20]),
    "float32": st.sampled_from([0.5, -1.0]),
    "float64": st.sampled_from([0.5, 1e300]),
    "bool": st.booleans(),
}
# TensorFlow's own dtype check of a signature call (before the graph runs): it states both
# dtypes but names the input only by position, and no export can change that.
TF_DTYPE_CHECK = "tensor but is a"
MUTATIONS = (
    "none",
    "wrong_dtype",
    "missing",
    "extra",
    "wrong_rank",
    "wrong_width",
    "empty_batch",
    "huge_string",
    "batch_mismatch",
)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """``{"retrieval": ExportResult, "ranking": ExportResult}`` of tiny trained models."""
    rows = interactions()
    spec = feature_spec(rows)
    root = str(tmp_path_factory.mktemp("saved_models"))
    retrieval = export_retrieval(
        fitted(TinyTwoTower(spec), rows),
        catalogue(),
        root,
        "retrieval",
        feature_spec=spec,
        query_features=["user_id", "age"],
        index="scann",
        k=K,
        item_titles=titles(),
        columns=rows,
        warmup=False,
    )
    ranking = export_ranking(
        fitted(TinyRanking(spec), rows),
        root,
        "ranking",
        feature_spec=spec,
        features=list(TinyRanking.FEATURES),
        columns=rows,
        warmup=False,
    )
    return {"retrieval": retrieval, "ranking": ranking}


def signatures(exports) -> dict:
    """export -> input name -> (dtype, shape with None for unknown dimensions)."""
    return {
        name: {
            key: (entry["dtype"], [None if d == -1 else d for d in entry["shape"]])
            for key, entry in export.info["inputs"].items()
        }
        for name, export in exports.items()
    }


@st.composite
def request(draw, signature: dict, export: str, mutation: str) -> dict:
    """A request for ``export`` with one ``mutation``; ``culprits`` names the inputs at fault."""
    batch = 0 if mutation == "empty_batch" else draw(st.integers(1, 3))
    inputs = {}
    for name, (dtype, shape) in signature.items():
        width = shape[1] if len(shape) == 2 and shape[1] is not None else draw(st.integers(0, 3))
        rows = 1 if name == EXCLUDE_INPUT and draw(st.booleans()) else batch
        inputs[name] = {
            "dtype": dtype,
            "shape": [rows] + ([width] if len(shape) == 2 else []),
            "value": draw(VALUES[dtype]),
            "repeat": 1,
        }
    names = sorted(inputs)
    culprits = []
    if mutation == "wrong_dtype":
        name = draw(st.sampled_from(names))
        dtype = draw(st.sampled_from([d for d in OTHER_DTYPES if d != inputs[name]["dtype"]]))
        inputs[name].update(dtype=dtype, value=draw(VALUES[dtype]))
        culprits = [name]
    elif mutation == "missing":
        culprits = [draw(st.sampled_from(names))]
        del inputs[culprits[0]]
    elif mutation == "extra":
        culprits = [draw(st.sampled_from(["unexpected", "user_id_2", "labels"]))]
        inputs[culprits[0]] = {"dtype": "string", "shape": [batch], "value": "x", "repeat": 1}
    elif mutation == "wrong_rank":
        name = draw(st.sampled_from(names))
        shape = inputs[name]["shape"]
        inputs[name]["shape"] = shape + [1] if draw(st.booleans()) else shape[:-1]  # [B] -> [B, 1] or a scalar
        culprits = [name]
    elif mutation == "wrong_width":
        fixed = [n for n in names if len(signature[n][1]) == 2 and signature[n][1][1] is not None]
        if fixed:
            name = draw(st.sampled_from(fixed))
            inputs[name]["shape"][1] = signature[name][1][1] + draw(st.sampled_from([-1, 1, 5]))
            culprits = [name]
    elif mutation == "huge_string":
        strings = [n for n in names if inputs[n]["dtype"] == "string"]
        name = draw(st.sampled_from(strings))
        inputs[name]["repeat"] = draw(st.sampled_from([10_000, 1_000_000]))
    elif mutation == "batch_mismatch":
        batched = [n for n in names if n != EXCLUDE_INPUT]
        name = draw(st.sampled_from(batched))
        inputs[name]["shape"][0] = batch + draw(st.integers(1, 2))
        culprits = [name]
    return {"export": export, "mutation": mutation, "inputs": inputs, "culprits": culprits}


def matches(signature: dict, inputs: dict) -> bool:
    """Whether ``inputs`` satisfy the signature: names, dtypes, ranks, fixed widths and one batch size."""
    if set(inputs) != set(signature):
        return False
    batches = set()
    for name, (dtype, shape) in signature.items():
        given_shape = inputs[name]["shape"]
        if inputs[name]["dtype"] != dtype or len(given_shape) != len(shape):
            return False
        if any(want is not None and want != got for want, got in zip(shape, given_shape)):
            return False
        if name != EXCLUDE_INPUT:
            batches.add(given_shape[0])
    batch = next(iter(batches)) if len(batches) == 1 else None
    exclude = inputs.get(EXCLUDE_INPUT)
    return batch is not None and (exclude is None or exclude["shape"][0] in (1, batch))


def documented_outputs(export, kind: str, batch: int) -> dict:
    """Output name -> shape that the export's docs promise."""
    if kind == "retrieval":
        return {name: [batch, K] for name in export.info["outputs"]}
    return {name: [batch] for name in export.info["outputs"].values()}


def judge(exports, sigs, request_, result) -> str:
    """'' when the answer is right, else why not."""
    kind = request_["export"]
    inputs = request_["inputs"]
    if matches(sigs[kind], inputs):
        if not result["ok"]:
            return f"a valid request failed: {result['error'][:300]}"
        batch = inputs["user_id"]["shape"][0]
        expected = documented_outputs(exports[kind], kind, batch)
        shapes = {name: output["shape"] for name, output in result["outputs"].items()}
        if shapes != expected:
            return f"outputs {shapes}, documented {expected}"
        for name, output in result["outputs"].items():
            if not output["finite"]:
                return f"output {name} is not finite"
            low, high = output["min"], output["max"]
            if name.endswith("probability") and low is not None and not 0 <= low <= high <= 1:
                return f"{name} outside [0, 1]: {low}..{high}"
        return ""
    if result["ok"]:
        return f"an invalid request was answered: {result['outputs']}"
    culprits = request_["culprits"]
    if request_["mutation"] == "wrong_dtype" and TF_DTYPE_CHECK in result["error"]:
        return ""  # TensorFlow refuses it before any tfrecs code runs, by position and dtypes (docs)
    if culprits and not any(
        f"'{name}'" in result["error"]
        or f"{name}:" in result["error"]
        or f"`{name}`" in result["error"]
        or f"tensor {name} " in result["error"]
        for name in culprits
    ):
        return f"the error does not name {culprits}: {result['error'][:400]}"
    return ""


def generated_requests(sigs) -> list:
    """Every mutation once per export, then random ones: NUM_REQUESTS in all, from the shared profile.

    Hypothesis is used as a (derandomized) generator here: the examples are collected, then
    served by ONE worker process, instead of one process per example.
    """
    collected = []
    mutated = st.sampled_from(sorted(sigs)).flatmap(
        lambda kind: st.sampled_from(MUTATIONS).flatmap(lambda mutation: request(sigs[kind], kind, mutation))
    )

    @settings(max_examples=NUM_REQUESTS, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(generated=mutated)
    def collect(generated):
        if generated not in collected:
            collected.append(generated)

    collect()
    forced = []
    for kind in sorted(sigs):
        for mutation in MUTATIONS:

            @settings(max_examples=1, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
            @given(generated=request(sigs[kind], kind, mutation))
            def one(generated):
                forced.append(generated)

            one()
    return forced + collected[: NUM_REQUESTS - len(forced)]


def serve_in_fresh_process(exports, requests, directory) -> list:
    """Runs the worker once; returns (signature line, [result per request]); asserts it survived."""
    requests_path = os.path.join(directory, "requests.json")
    results_path = os.path.join(directory, "results.jsonl")
    with open(requests_path, "w", encoding="utf-8") as handle:
        json.dump(
            {
                "exports": {name: export.path for name, export in exports.items()},
                "requests": [{"export": r["export"], "inputs": r["inputs"]} for r in requests],
            },
            handle,
        )
    process = subprocess.run(
        [sys.executable, WORKER, requests_path, results_path], capture_output=True, text=True, timeout=600
    )
    lines = []
    if os.path.exists(results_path):
        with open(results_path, encoding="utf-8") as handle:
            lines = [json.loads(line) for line in handle]
    answered = len(lines) - 1
    assert process.returncode == 0 and answered == len(requests), (
        f"the serving process died (status {process.returncode}) after {max(answered, 0)} of {len(requests)} "
        f"requests; next request: {requests[max(answered, 0)] if answered < len(requests) else None}\n"
        f"{process.stderr[-3000:]}"
    )
    return lines[0]["signature"], lines[1:]


def test_every_generated_request_is_answered_or_names_its_input(exports, tmp_path_factory):
    sigs = signatures(exports)
    requests = generated_requests(sigs)
    loaded_signature, results = serve_in_fresh_process(exports, requests, str(tmp_path_factory.mktemp("requests")))
    assert {
        kind: {name: [dtype, shape] for name, (dtype, shape) in sig.items()} for kind, sig in sigs.items()
    } == loaded_signature, "the reloaded signature differs from export.info['inputs']"
    wrong = [
        f"{request_['export']}/{request_['mutation']} {request_['inputs']}: {why}"
        for request_, result in zip(requests, results)
        if (why := judge(exports, sigs, request_, result))
    ]
    assert not wrong, f"{len(wrong)} of {len(requests)} requests:\n" + "\n".join(wrong)
