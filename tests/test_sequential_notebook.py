"""The sequential notebook runs in quick mode and ends with its JSON line of test figures."""

import math

from notebook_runner import last_json_line, run_notebook


def test_sequential_notebook_quick_run():
    run = run_notebook("notebooks/sequential.ipynb")
    figures = last_json_line(run.texts)
    assert figures["split"] == "test" and figures["protocol"] == "loo-full"
    assert figures["quick"] is True and figures["mode"] == "quick"
    for name in ("sasrec_ndcg@10", "bert4rec_ndcg@10", "sasrec_hr@10", "bert4rec_hr@10"):
        assert 0.0 <= figures[name] <= 1.0 and not math.isnan(figures[name]), name
    assert figures["sasrec_epochs"] == 2 and figures["bert4rec_epochs"] == 2
    assert 0.0 < figures["pop_ndcg@10"] < 1.0
    # User 196's next-movie recommendations, as titles, next to what they watched.
    joined = "\n".join(run.texts)
    assert "last five movies:" in joined and "watched next (test item):" in joined
    assert figures["user"] == "196" and len(figures["sasrec_top10"]) == 10
    assert all(title in joined for title in figures["sasrec_top10"])
