"""Executes a notebook in quick mode (``TFRECS_NOTEBOOK_QUICK=1``) and returns its outputs' text."""

import json
import os
from typing import List

import nbformat
from nbclient import NotebookClient

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_notebook(relative_path: str, timeout: int = 600) -> List[str]:
    """Runs ``notebooks/...`` top to bottom with the current interpreter's kernel.

    Returns:
        The text of every stream / text output, in order.
    """
    path = os.path.join(REPO, relative_path)
    notebook = nbformat.read(path, as_version=4)
    os.environ["TFRECS_NOTEBOOK_QUICK"] = "1"
    try:
        NotebookClient(
            notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": os.path.dirname(path)}}
        ).execute()
    finally:
        os.environ.pop("TFRECS_NOTEBOOK_QUICK", None)
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                texts.append(output.get("text", ""))
            elif "data" in output and "text/plain" in output["data"]:
                texts.append(output["data"]["text/plain"])
    return texts


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
