"""The sequential notebook runs in quick mode and ends with its JSON line of test figures."""

import math

from notebook_runner import last_json_line, run_notebook


def test_sequential_notebook_quick_run():
    texts = run_notebook("notebooks/sequential.ipynb")
    figures = last_json_line(texts)
    assert figures["split"] == "test" and figures["protocol"] == "loo-full" and figures["quick"] is True
    for name in ("sasrec_ndcg@10", "bert4rec_ndcg@10", "sasrec_hr@10", "bert4rec_hr@10"):
        assert 0.0 <= figures[name] <= 1.0 and not math.isnan(figures[name]), name
    assert figures["sasrec_epochs"] == 2 and figures["bert4rec_epochs"] == 2
    joined = "\n".join(texts)
    assert "last watched:" in joined and "recommended:" in joined
