"""The NeuMF and LightGCN notebooks run top to bottom in quick mode and end with their figures."""

import re

import pytest

from notebook_runner import last_json_line, run_notebook


@pytest.mark.parametrize("name", ["neumf", "lightgcn"])
def test_notebook_trains_plots_recommends_and_reports(name, ml100k):
    run = run_notebook(f"notebooks/{name}.ipynb")
    figures = last_json_line(run.texts)
    assert figures["model"] == name and figures["split"] == "test" and figures["protocol"] == "random-full"
    assert figures["quick"] is True and figures["epochs"] >= 1 and 1 <= figures["best_epoch"] <= figures["epochs"]
    assert 0.0 <= figures["ndcg@10"] <= 1.0 and "recall@20" in figures
    # The top-10 of user 196, as titles (not ids), shown as a table.
    assert figures["user"] == "196" and len(figures["top10"]) == 10
    assert all(re.search(r"[A-Za-z]", title) for title in figures["top10"]), figures["top10"]
    table = "".join(run.texts)
    assert all(title in table for title in figures["top10"])
