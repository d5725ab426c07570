"""The NeuMF and LightGCN notebooks run top to bottom in quick mode and end with their figures."""

import re

import pytest

from notebook_runner import last_json_line, run_notebook


@pytest.mark.parametrize("name", ["neumf", "lightgcn"])
def test_notebook_trains_plots_recommends_and_reports(name, ml100k):
    texts = run_notebook(f"notebooks/{name}.ipynb")
    figures = last_json_line(texts)
    assert figures["model"] == name and figures["split"] == "test" and figures["protocol"] == "random-full"
    assert figures["epochs"] >= 1 and 0.0 <= figures["ndcg@10"] <= 1.0 and "recall@20" in figures
    recommendations = "".join(texts)
    assert "user 1:" in recommendations and " 10. " in recommendations
    assert re.search(r" 1\. [^\n]*[A-Za-z]", recommendations)  # titles, not numeric ids
