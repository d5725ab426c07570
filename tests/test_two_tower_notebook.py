"""notebooks/two_tower.ipynb runs top to bottom in quick mode and reports its figures."""

from notebook_runner import last_json_line, run_notebook


def test_two_tower_notebook_trains_and_recommends_titles():
    texts = run_notebook("notebooks/two_tower.ipynb")
    figures = last_json_line(texts)
    assert figures["quick"] is True and figures["split"] == "test" and figures["protocol"] == "random-full"
    assert figures["epochs"] == 2 and figures["users_shown"] == 3 and figures["seed"] == 2020
    assert 0.0 < figures["ndcg@10"] <= 1.0 and figures["seconds_per_epoch"] > 0
    output = "\n".join(texts)
    assert " 1. " in output and "10. " in output  # a top-10 list with titles was printed
