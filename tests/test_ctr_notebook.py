"""notebooks/ctr_models.ipynb trains every CTR model in quick mode and reports AUC per model and the
MMoE / shared-bottom trade-off."""

from notebook_runner import image_count, last_json_line, run_notebook

CTR_MODELS = {"wide_deep", "deepfm", "xdeepfm", "dcn", "dcn_v2", "din", "mmoe", "shared_bottom", "mmoe_uncertainty"}


def test_ctr_notebook_trains_every_model_and_plots_the_tradeoff():
    run = run_notebook("notebooks/ctr_models.ipynb")
    figures = last_json_line(run.texts)
    assert figures["quick"] is True and figures["split"] == "test" and figures["protocol"] == "ctr-random-global"
    assert set(figures["auc"]) == CTR_MODELS and set(figures["gauc"]) == CTR_MODELS
    # Even one tiny epoch on 6,000 rows ranks better than chance (test positives 55 %).
    assert all(0.55 < value <= 1.0 for value in figures["auc"].values()), figures["auc"]
    assert all(0.3 < value < 0.75 for value in figures["logloss"].values()), figures["logloss"]
    assert figures["epochs"] == dict.fromkeys(CTR_MODELS, 1)
    # Two rating weights per architecture; the rating task learned something (std of ML-100K ratings: 1.13).
    for arch in ("mmoe", "shared_bottom"):
        assert [point[0] for point in figures["tradeoff"][arch]] == [1.0, 4.0]
    assert all(value < 1.13 for value in figures["rating_rmse"].values()), figures["rating_rmse"]
    # Training curves, then the AUC bars and the trade-off.
    assert image_count(run.notebook) == 2
