"""Writes the request examples of docs/serving.md from real exports (tfrecs.export.request_examples).

    .venv/bin/python docs/generate_serving_examples.py                   # train (1 epoch) into a temp root
    .venv/bin/python docs/generate_serving_examples.py --export-root R   # exports already in R (missing ones trained)
    .venv/bin/python docs/generate_serving_examples.py --check           # exit 1 if the doc has drifted

It builds (or reads) the four exports the doc shows, on ML-100K: the Two-Tower ScaNN export of
`make run`, a DeepFM ranking export, the two-stage export (`--rerank deepfm`) and MMoE. For each
it reads the signature and the warmup rows from disk, runs the request through
``tf.saved_model.load`` for the answer, and replaces the text between
``<!-- BEGIN GENERATED <name> -->`` and ``<!-- END GENERATED <name> -->`` in docs/serving.md.
Signatures do not depend on the number of epochs, so one epoch is enough; answers do.

``--check`` compares what no retraining changes: input and output names, dtypes and shapes and
the inputs each rendering sends. ``tests/test_serving_docs.py`` runs the same comparison on
small exports and runs every rendering, and the doc's own snippets, against them.
"""

import argparse
import json
import os
import re
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence

import tfrecs  # noqa: F401  - selects tf_keras before TensorFlow loads

import numpy as np
import tensorflow as tf

from tfrecs.export.request_examples import RequestExamples, TensorInfo, request_examples

DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "serving.md")
BEGIN = "<!-- BEGIN GENERATED {name} (docs/generate_serving_examples.py; do not edit by hand) -->"
END = "<!-- END GENERATED {name} -->"
_SECTION = re.compile(r"<!-- BEGIN GENERATED (\S+) [^>]*-->\n(.*?)<!-- END GENERATED \1 -->", re.S)


@dataclass(frozen=True)
class Example:
    """One export the doc shows: its TF Serving name, heading, command and server."""

    name: str
    title: str
    command: str
    server: str


EXAMPLES = (
    Example(
        "two_tower",
        "retrieval with a ScaNN index, the export of `make run`",
        "tfrecs export --model two_tower --dataset ml-100k --index scann --k 10",
        "a TF Serving build linked with the ScaNN ops (see [Which TF Serving](#which-tf-serving)); with "
        "`--index brute_force` the same signature serves on stock `tensorflow/serving`",
    ),
    Example(
        "deepfm",
        "ranking with DeepFM, one binary task",
        "tfrecs export --model deepfm --dataset ml-100k",
        "stock `tensorflow/serving`",
    ),
    Example(
        "two_tower_then_deepfm",
        "two-stage, retrieve 100 with ScaNN, re-rank with DeepFM, keep 10",
        "tfrecs export --model two_tower --rerank deepfm --dataset ml-100k --index scann --k 10 --num-candidates 100",
        "a TF Serving build linked with the ScaNN ops; with `--index brute_force`, stock `tensorflow/serving`",
    ),
    Example(
        "mmoe",
        "multi-task ranking with MMoE, one output per task",
        "tfrecs export --model mmoe --dataset ml-100k",
        "stock `tensorflow/serving`",
    ),
)


# -- exports -------------------------------------------------------------------------------------


def build_exports(
    export_root: str,
    epochs: int = 1,
    data_dir: Optional[str] = None,
    names: Optional[Sequence[str]] = None,
    verbose: int = 0,
) -> Dict[str, str]:
    """Trains the recipes and writes the doc's exports under ``export_root``; returns name -> version dir.

    What ``tfrecs export`` does for each ``Example.command`` (the two-stage export reuses the
    Two-Tower and DeepFM runs). ``data_dir``: ML-100K files to read instead of the cache (the
    tests pass a small part of ML-100K with the same columns, so the signatures are the same).
    """
    from tfrecs.export import export_trained
    from tfrecs.recipes import TrainConfig, train

    wanted = list(names or [example.name for example in EXAMPLES])
    runs: Dict[str, Any] = {}

    def run(model: str):
        if model not in runs:
            config = TrainConfig(model=model, dataset="ml-100k", epochs=epochs, data_dir=data_dir, verbose=verbose)
            runs[model] = train(config)
        return runs[model]

    paths = {}
    for name in wanted:
        if name == "two_tower":
            result = export_trained(run("two_tower"), export_root, name, index="scann", k=10)
        elif name == "two_tower_then_deepfm":
            result = export_trained(
                run("two_tower"), export_root, name, index="scann", k=10, rerank=run("deepfm"), num_candidates=100
            )
        elif name in ("deepfm", "mmoe"):
            result = export_trained(run(name), export_root, name)
        else:
            raise ValueError(f"unknown example export {name!r}; known: {[e.name for e in EXAMPLES]}")
        paths[name] = result.path
    return paths


def run_tf2(examples: RequestExamples) -> Dict[str, np.ndarray]:
    """The export's answer to the example request, through ``tf.saved_model.load`` (scann imported if needed)."""
    if examples.needs_scann:
        import scann  # noqa: F401  - registers the ScaNN ops

    loaded = tf.saved_model.load(examples.export_dir)
    serve = loaded.signatures[examples.signature_name]
    inputs = {info.name: tf.constant(examples.request[info.name], tf.as_dtype(info.dtype)) for info in examples.inputs}
    return {name: value.numpy() for name, value in serve(**inputs).items()}


# -- markdown ------------------------------------------------------------------------------------


def _shape(info: TensorInfo) -> str:
    dims = []
    for position, size in enumerate(info.shape):
        if position == 0 and size == -1:
            shared = info.optional and info.default.shape[0] == 1
            dims.append("batch or 1" if shared else "batch")
        else:
            dims.append("m" if size == -1 else str(size))
    return f"`[{', '.join(dims)}]`"


def _tables(examples: RequestExamples) -> str:
    lines = ["| input | dtype | shape | |", "| --- | --- | --- | --- |"]
    for info in examples.inputs:
        note = f"optional; default: empty `{list(info.default.shape)}`" if info.optional else ""
        lines.append(f"| `{info.name}` | {info.dtype} | {_shape(info)} | {note} |")
    lines += ["", "| output | dtype | shape |", "| --- | --- | --- |"]
    lines += [f"| `{info.name}` | {info.dtype} | {_shape(info)} |" for info in examples.outputs]
    return "\n".join(lines)


def _source(examples: RequestExamples) -> str:
    if examples.source == "warmup":
        return (
            f"The request is the first {examples.batch_size} rows of the export's warmup record "
            f"(`assets.extra/tf_serving_warmup_requests`: real training rows)"
        )
    if examples.source == "feature_spec":
        return f"The request holds {examples.batch_size} rows of frequent values from the export's `feature_spec.json`"
    return f"The request holds {examples.batch_size} rows of placeholders (zeros and empty strings)"


def _prose(text: str) -> str:
    return textwrap.fill(text, width=95, break_long_words=False, break_on_hyphens=False)


def render_section(example: Example, examples: RequestExamples, outputs: Mapping[str, Any]) -> str:
    """The markdown of one export (without the markers): signature, request in four forms, answer."""
    scann = (
        " Python needs `import scann` before loading it (the ScaNN ops are custom ops)."
        if examples.needs_scann
        else " It uses only stock TensorFlow ops."
    )
    rounded = ", floats rounded to 4 decimals" if any(o.dtype.startswith("float") for o in examples.outputs) else ""
    unwrap = (
        f" With one output, TF Serving answers its values directly under `outputs`, without the name "
        f"`{examples.outputs[0].name}` (gRPC and Python keep the name)."
        if len(examples.outputs) == 1
        else ""
    )
    parts = [
        f"### `{example.name}`: {example.title}",
        "",
        _prose(f"`{example.command}` writes `{examples.display_dir}`. Serve it with {example.server}.{scann}"),
        "",
        f"Signature `{examples.signature_name}`:",
        "",
        _tables(examples),
        "",
        _prose(f"{_source(examples)}. REST, columnar `inputs`:"),
        "",
        "```sh",
        examples.curl(),
        "```",
        "",
        _prose(f"The answer: {examples.describe_answer()} (this run's values{rounded}).{unwrap}"),
        "",
        "```json",
        examples.rest_answer(outputs),
        "```",
        "",
        "gRPC (`tensorflow-serving-api`, installed with tfrecs):",
        "",
        "```python",
        examples.grpc_python(),
        "```",
        "",
        "Without a server, TF2 (`tf.saved_model.load`):",
        "",
        "```python",
        examples.python_tf2(),
        "```",
        "",
        "TF1 session loader (`tf.compat.v1.saved_model.loader.load`; optional inputs may be left unfed):",
        "",
        "```python",
        examples.python_tf1(),
        "```",
        "",
    ]
    return "\n".join(parts)


def example_for(export_dir: str, name: str) -> RequestExamples:
    """The doc's request for an export: 2 rows, paths shown as ``saved_models/<name>/<version>``."""
    version = os.path.basename(os.path.normpath(export_dir))
    return request_examples(export_dir, rows=2, display_dir=f"saved_models/{name}/{version}", model_name=name)


def read_sections(text: str) -> Dict[str, str]:
    """Generated sections of a doc, name -> text between its markers."""
    return {match.group(1): match.group(2) for match in _SECTION.finditer(text)}


def replace_sections(text: str, sections: Mapping[str, str]) -> str:
    """``text`` with each named section's body replaced.

    Raises:
        ValueError: a section has no markers in ``text``.
    """
    missing = [name for name in sections if name not in read_sections(text)]
    if missing:
        raise ValueError(f"docs/serving.md has no generated section markers for {missing}")

    def body(match: "re.Match") -> str:
        name = match.group(1)
        if name not in sections:
            return match.group(0)
        return f"{BEGIN.format(name=name)}\n{sections[name]}{END.format(name=name)}"

    return _SECTION.sub(body, text)


# -- what must not drift -------------------------------------------------------------------------

_TABLE_ROW = re.compile(r"^\| `([^`]+)` \| (\w+) \| `\[([^\]]*)\]` \|", re.M)
_BLOCK = re.compile(r"```(\w+)\n(.*?)\n```", re.S)


def code_blocks(section: str) -> Dict[str, str]:
    """The section's code: ``curl``, ``answer``, ``grpc``, ``tf2``, ``tf1`` (in the order rendered)."""
    blocks = [body for _, body in _BLOCK.findall(section)]
    if len(blocks) != 5:
        raise ValueError(f"expected 5 code blocks in a generated section, found {len(blocks)}")
    return dict(zip(("curl", "answer", "grpc", "tf2", "tf1"), blocks))


def rest_request(curl: str) -> Dict[str, Any]:
    """URL and JSON body of a rendered curl command (the here-document between ``<<'JSON'`` and ``JSON``)."""
    url = re.search(r"curl -s -X POST (\S+)", curl).group(1)
    body = curl.split("<<'JSON'\n", 1)[1].rsplit("\nJSON", 1)[0]
    return {"url": url, "body": json.loads(body)}


def skeleton(section: str) -> Dict[str, Any]:
    """What no retraining changes: tables (name, dtype, shape) and the input names each rendering sends."""
    rows = _TABLE_ROW.findall(section)
    blocks = code_blocks(section)
    rest = rest_request(blocks["curl"])
    return {
        "table": rows,
        "url": rest["url"],
        "rest": sorted(rest["body"]["inputs"]),
        "grpc": sorted(re.findall(r'request\.inputs\["([^"]+)"\]', blocks["grpc"])),
        "tf2": sorted(re.findall(r'^    "([^"]+)": tf\.constant\(', blocks["tf2"], re.M)),
        "tf1": sorted(re.findall(r'^    "([^"]+)": np\.array\(', blocks["tf1"], re.M)),
        "scann": "import scann" in blocks["tf2"],
    }


def drift(doc_text: str, sections: Mapping[str, str]) -> List[str]:
    """Differences (one line each) between the doc's generated sections and freshly rendered ones."""
    in_doc = read_sections(doc_text)
    problems = []
    for name, fresh in sections.items():
        if name not in in_doc:
            problems.append(f"{name}: no generated section in docs/serving.md")
            continue
        old, new = skeleton(in_doc[name]), skeleton(fresh)
        for key in new:
            if old[key] != new[key]:
                problems.append(f"{name}: {key} is {old[key]!r} in the doc but {new[key]!r} in a fresh export")
    return problems


# -- command line --------------------------------------------------------------------------------


def _existing(export_root: str, name: str) -> Optional[str]:
    from tfrecs.export import model_versions

    versions = model_versions(os.path.join(export_root, name))
    return os.path.join(export_root, name, str(versions[-1])) if versions else None


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export-root", help="exports to read (missing ones are trained there); default: a temp dir")
    parser.add_argument("--epochs", type=int, default=1, help="epochs of the recipes trained for missing exports")
    parser.add_argument("--data-dir", help="ML-100K files to train on (default: the tfrecs cache)")
    parser.add_argument("--doc", default=DOC, help="the doc to rewrite (default docs/serving.md)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the doc has drifted")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        root = args.export_root or scratch
        paths = {name: _existing(root, name) for name in (e.name for e in EXAMPLES)}
        missing = [name for name, path in paths.items() if path is None]
        if missing:
            print(f"training and exporting {missing} into {root} ({args.epochs} epoch(s)) ...", flush=True)
            paths.update(build_exports(root, epochs=args.epochs, data_dir=args.data_dir, names=missing))
        sections = {}
        for example in EXAMPLES:
            examples = example_for(paths[example.name], example.name)
            sections[example.name] = render_section(example, examples, run_tf2(examples))
            print(f"{example.name}: {paths[example.name]} ({examples.source} rows)", flush=True)

    with open(args.doc, encoding="utf-8") as handle:
        text = handle.read()
    if args.check:
        problems = drift(text, sections)
        for problem in problems:
            print(problem)
        print("docs/serving.md is in sync" if not problems else f"{len(problems)} difference(s)")
        return 1 if problems else 0
    with open(args.doc, "w", encoding="utf-8") as handle:
        handle.write(replace_sections(text, sections))
    print(f"rewrote {len(sections)} sections of {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
