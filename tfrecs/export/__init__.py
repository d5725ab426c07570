"""Export: SavedModels with an embedded ScaNN / brute-force index, in TF Serving's layout.

* ``export_retrieval``: raw query features -> top-k item ids + scores (index inside).
* ``export_ranking``: raw features -> probability (one output per task for multi-task models).
* ``export_candidate_scoring``: a (user, item) scorer without towers (NeuMF): top-k over the
  whole catalogue, and a ``score_candidates`` signature for a given candidate list.
* ``export_two_stage``: retrieve with the index, re-rank with a ranking model, one SavedModel.
* ``export_trained``: any of them from a ``TrainResult`` (what ``tfrecs.recipes.train`` returns).
* ``index="faiss-hnsw"`` / ``"faiss-ivf"``: the query tower plus a FAISS index beside it
  (``faiss_export``); ``load_faiss_export`` serves it with tensorflow, faiss and numpy only.

Each writes ``<export_root>/<model_name>/<version>/`` atomically, with the FeatureSpec and
vocabularies as assets and a TF Serving warmup file, and rewrites ``<export_root>/models.config``.
Serving (TF Serving, REST / gRPC requests): docs/serving.md.

Example::

    from tfrecs.export import export_trained
    result = export_trained(train(TrainConfig(model="two_tower")), "saved_models", "two_tower", k=10)
    result.path      # saved_models/two_tower/1
"""

from tfrecs.export.artifacts import (  # noqa: F401
    CandidateScoringArtifacts,
    RankingArtifacts,
    RetrievalArtifacts,
    history_artifacts,
)
from tfrecs.export.faiss_export import export_faiss_retrieval, tune_faiss  # noqa: F401
from tfrecs.export.faiss_index import FAISS_INDEX_KINDS, load_faiss_export  # noqa: F401
from tfrecs.export.index import (
    INDEX_KINDS,
    CandidateIndex,
    IndexReport,
    ScannParams,  # noqa: F401
    build_index,
    tune_scann,
)
from tfrecs.export.layout import (
    model_versions,
    models_config_text,
    next_version,  # noqa: F401
    write_models_config,
    write_version,
)
from tfrecs.export.ranking import export_ranking, output_names, task_kinds  # noqa: F401
from tfrecs.export.request_examples import RequestExamples, request_examples  # noqa: F401
from tfrecs.export.retrieval import EXCLUDE_INPUT, export_retrieval  # noqa: F401
from tfrecs.export.saving import ExportResult  # noqa: F401
from tfrecs.export.scoring import export_candidate_scoring  # noqa: F401
from tfrecs.export.signature import example_features, feature_signature  # noqa: F401
from tfrecs.export.trained import export_trained  # noqa: F401
from tfrecs.export.two_stage import export_two_stage  # noqa: F401
from tfrecs.export.warmup import WARMUP_FILE, read_warmup, write_warmup  # noqa: F401
