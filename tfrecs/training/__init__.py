"""Training: strategies, precision, optimizers, callbacks and a resumable ``fit``.

The pieces a training script needs, each selectable by name::

    import tfrecs
    from tfrecs import training

    strategy = training.configure(strategy="auto", precision="mixed_float16")
    with strategy.scope():
        model = MyModel()
        model.compile(optimizer=training.make_optimizer("adam", learning_rate=1e-3))
    training.fit(model, train_ds, validation_data=valid_ds, epochs=10,
                 run_dir="runs/exp1", monitor="val_auc")

See docs/training.md for how loss scaling, global-batch losses, cross-replica negatives
and resume work.
"""

from tfrecs.training.callbacks import (  # noqa: F401
    EpochSeed,
    EpochTimer,
    EvaluationCallback,
    best_epoch,
    LearningRateLogger,
    ResumableBackup,
    StopWhenRequested,
    default_callbacks,
    early_stopping,
    merge_resumed_history,
    metric_mode,
)
from tfrecs.training.configure import configure  # noqa: F401
from tfrecs.core.cross_replica import gather_candidates, global_batch_size  # noqa: F401
from tfrecs.training.fit import fit, infer_global_batch_size  # noqa: F401
from tfrecs.training.optimizers import (  # noqa: F401
    OPTIMIZERS,
    SCHEDULES,
    current_learning_rate,
    learning_rate_schedule,
    make_optimizer,
)
from tfrecs.core.precision import (  # noqa: F401
    PRECISIONS,
    current_precision,
    precision_scope,
    set_precision,
)
from tfrecs.training.strategy import (  # noqa: F401
    STRATEGIES,
    check_global_batch_size,
    get_strategy,
    is_chief,
    is_parameter_server,
    read_parameter_server_config,
    read_tf_config,
    serve_cluster_task,
)

__all__ = [
    "EpochSeed",
    "EpochTimer",
    "EvaluationCallback",
    "best_epoch",
    "LearningRateLogger",
    "ResumableBackup",
    "StopWhenRequested",
    "OPTIMIZERS",
    "PRECISIONS",
    "SCHEDULES",
    "STRATEGIES",
    "check_global_batch_size",
    "configure",
    "current_learning_rate",
    "current_precision",
    "default_callbacks",
    "early_stopping",
    "fit",
    "gather_candidates",
    "get_strategy",
    "global_batch_size",
    "infer_global_batch_size",
    "is_chief",
    "is_parameter_server",
    "learning_rate_schedule",
    "make_optimizer",
    "merge_resumed_history",
    "metric_mode",
    "precision_scope",
    "read_parameter_server_config",
    "read_tf_config",
    "serve_cluster_task",
    "set_precision",
]
