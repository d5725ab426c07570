"""Executes the notebooks and checks that they read well.

``run_notebook`` executes a notebook in quick mode (``TFRECS_NOTEBOOK_QUICK=1``), once per test
session: the result is cached, so the per-notebook tests and ``test_notebook_outputs.py`` share one
execution. ``source_problems`` / ``output_problems`` list what makes a notebook unfit to commit.

Re-executing the committed notebooks (normal settings, in place, one at a time)::

    .venv/bin/python tests/notebook_runner.py notebooks/neumf.ipynb [notebooks/...]
"""

import json
import os
import re
import sys
import time
from dataclasses import dataclass
from typing import Dict, List

import nbformat
from nbclient import NotebookClient

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = ("ctr_models", "two_tower", "neumf", "lightgcn", "sequential")
QUICK_ENV = "TFRECS_NOTEBOOK_QUICK"

# The notebooks use the public API: these modules (``tfrecs.logs`` quietens TensorFlow as the CLI does), never
# the recipes (the notebooks show the library, not the jobs) and no private name.
PUBLIC_MODULES = {"tfrecs", "tfrecs.logs"} | {
    f"tfrecs.{name}" for name in ("models", "layers", "data", "pipelines", "training", "evaluation", "export")
}
RECIPES_IMPORT = re.compile(
    r"^\s*(from|import)\s+tfrecs\.recipes\b|^\s*from\s+tfrecs\s+import\s+[^\n#]*\brecipes\b", re.M
)
TFRECS_MODULE = re.compile(r"^\s*(?:from|import)\s+(tfrecs(?:\.\w+)*)", re.M)
PRIVATE_NAME = re.compile(r"\b\w+\._(?!_)\w+|^\s*from\s+tfrecs[\w.]*\s+import\s+[^\n#]*\b_\w+", re.M)
AGG_BACKEND = re.compile(r"matplotlib\.use\(|MPLBACKEND")
# TensorFlow / absl log lines: "2026-01-01 00:00:00.000000: I tensorflow/...", "W0000 00:00:... file.cc:12] ...".
LOG_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] |[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ |WARNING:tensorflow:)", re.M
)
ABSOLUTE_PATH = re.compile(r"(?<![\w.])(?:/(?:home|Users|root|tmp|work|usr|opt|var|private)/|[A-Z]:\\)")


@dataclass
class NotebookRun:
    """An executed notebook and the text of its stream / text outputs, in order."""

    notebook: nbformat.NotebookNode
    texts: List[str]


_RUNS: Dict[str, NotebookRun] = {}


def execute(path: str, quick: bool, timeout: int = 600, record_timing: bool = True) -> nbformat.NotebookNode:
    """Runs the notebook at ``path`` top to bottom in a fresh kernel (cwd: its directory) and returns it."""
    notebook = nbformat.read(path, as_version=4)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TFRECS_NOTEBOOK_")}
    if quick:
        env[QUICK_ENV] = "1"
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        record_timing=record_timing,
        resources={"metadata": {"path": os.path.dirname(path)}},
    )
    client.execute(env=env)
    return notebook


def run_notebook(relative_path: str, timeout: int = 600) -> NotebookRun:
    """Runs ``notebooks/...`` in quick mode with the current interpreter's kernel, once per session."""
    if relative_path not in _RUNS:
        notebook = execute(os.path.join(REPO, relative_path), quick=True, timeout=timeout)
        _RUNS[relative_path] = NotebookRun(notebook, output_texts(notebook))
    return _RUNS[relative_path]


def notebook_path(name: str) -> str:
    return os.path.join(REPO, "notebooks", f"{name}.ipynb")


def output_texts(notebook: nbformat.NotebookNode) -> List[str]:
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                texts.append(output.get("text", ""))
            elif "data" in output and "text/plain" in output["data"]:
                texts.append(output["data"]["text/plain"])
    return texts


def image_count(notebook: nbformat.NotebookNode) -> int:
    """How many ``image/png`` outputs (figures) the notebook shows."""
    return sum("image/png" in output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", []))


def last_json_line(texts: List[str]) -> dict:
    """The last line of the outputs that parses as a JSON object."""
    for text in reversed(texts):
        for line in reversed(text.strip().splitlines()):
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except json.JSONDecodeError:
                    continue
    raise AssertionError("the notebook printed no JSON line of figures")


def source_problems(notebook: nbformat.NotebookNode) -> List[str]:
    """Code that a notebook on the public API must not contain."""
    problems = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        for pattern, what in (
            (RECIPES_IMPORT, "imports tfrecs.recipes"),
            (PRIVATE_NAME, "uses a private name"),
            (AGG_BACKEND, "sets a non-inline matplotlib backend"),
        ):
            match = pattern.search(cell.source)
            if match:
                problems.append(f"cell {index} {what}: {match.group(0).strip()!r}")
        for module in TFRECS_MODULE.findall(cell.source):
            if module not in PUBLIC_MODULES:
                problems.append(
                    f"cell {index} imports {module}, not one of the public modules {sorted(PUBLIC_MODULES)}"
                )
    return problems


def output_problems(notebook: nbformat.NotebookNode, committed: bool) -> List[str]:
    """What keeps a notebook's outputs from being read: errors, no figure; committed: unexecuted cells, noise.

    Args:
        committed: also require every code cell executed in order, no stderr, no TensorFlow / absl log
            line and no absolute path of the machine that ran it.
    """
    problems, counts = [], []
    machine_paths = {REPO, os.path.expanduser("~"), sys.prefix, "/tmp/", "site-packages"} - {"", "/"}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        counts.append(cell.get("execution_count"))
        for output in cell.get("outputs", []):
            kind = output.get("output_type")
            if kind == "error":
                problems.append(f"cell {index} raised {output.get('ename')}: {output.get('evalue')}")
            data = output.get("data", {})
            if not committed:
                continue
            if kind == "stream" and output.get("name") == "stderr":
                problems.append(f"cell {index} wrote to stderr: {output.get('text', '')[:200]!r}")
            text = output.get("text", "") + "".join(
                value if isinstance(value, str) else "".join(value)
                for mime, value in data.items()
                if mime.startswith("text/")
            )
            log = LOG_LINE.search(text)
            if log:
                problems.append(f"cell {index} shows a TensorFlow log line: {text[log.start() : log.start() + 120]!r}")
            match = ABSOLUTE_PATH.search(text)
            path = next((p for p in machine_paths if p in text), match.group(0) if match else None)
            if path:
                problems.append(f"cell {index} shows an absolute path: {path!r}")
    if image_count(notebook) == 0:
        problems.append("no image/png output (no figure was shown)")
    if committed and counts != list(range(1, len(counts) + 1)):
        problems.append(f"code cells were not executed once each, top to bottom: execution counts {counts}")
    return problems


def main(paths: List[str]) -> int:
    """Executes each notebook with its normal settings, in place, and reports seconds and problems."""
    status = 0
    for path in paths:
        started = time.perf_counter()
        notebook = execute(os.path.abspath(path), quick=False, timeout=3600, record_timing=False)
        seconds = time.perf_counter() - started
        nbformat.write(notebook, path)
        problems = source_problems(notebook) + output_problems(notebook, committed=True)
        print(f"{path}: executed in {seconds:.0f} s" + "".join(f"\n  problem: {p}" for p in problems))
        status |= bool(problems)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
