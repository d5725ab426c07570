"""notebooks/two_tower.ipynb runs top to bottom in quick mode and reports its figures."""

from notebook_runner import last_json_line, run_notebook


def test_two_tower_notebook_trains_and_recommends_titles():
    run = run_notebook("notebooks/two_tower.ipynb")
    figures = last_json_line(run.texts)
    assert figures["quick"] is True and figures["split"] == "test" and figures["protocol"] == "random-full"
    assert figures["epochs"] == 2 and figures["seed"] == 2020 and figures["seconds_per_epoch"] > 0
    assert 0.0 < figures["ndcg@10"] <= 1.0 and 0.0 < figures["pop_ndcg@10"] <= 1.0
    # The top-10 of user 196 with titles, shown as a table.
    assert figures["user"] == "196" and len(figures["top10"]) == 10
    output = "\n".join(run.texts)
    assert "recently watched:" in output and all(title in output for title in figures["top10"])
