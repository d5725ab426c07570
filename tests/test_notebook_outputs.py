"""The notebooks read well: on the public API, with figures, and committed with their outputs.

Executed notebooks come from ``notebook_runner.run_notebook`` (quick mode, one execution per notebook per
session, shared with the per-notebook tests). Committed notebooks are read from disk, not executed.
"""

import glob
import os

import nbformat
import pytest

from notebook_runner import NOTEBOOKS, REPO, notebook_path, output_problems, run_notebook, source_problems


def test_every_notebook_is_checked():
    paths = glob.glob(os.path.join(REPO, "notebooks", "*.ipynb"))
    assert {os.path.splitext(os.path.basename(path))[0] for path in paths} == set(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_executed_notebook_shows_figures_without_errors(name, ml100k):  # ml100k: fetched here, not in the kernel
    run = run_notebook(f"notebooks/{name}.ipynb")
    assert output_problems(run.notebook, committed=False) == []
    assert source_problems(run.notebook) == []


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_is_executed_and_readable(name):
    notebook = nbformat.read(notebook_path(name), as_version=4)
    assert source_problems(notebook) == []
    assert output_problems(notebook, committed=True) == []
    first = notebook.cells[0]
    assert first.cell_type == "markdown" and "How the outputs below were made" in first.source, (
        "the first cell says which settings produced the committed outputs"
    )
