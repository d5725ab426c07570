"""Data sets, feature specs and splits: everything before ``tf.data``.

Example::

    from tfrecs.data import load_dataset, make_split
    split = make_split(load_dataset("ml-100k"), "loo")

    # your own data: a DataFrame, a CSV / TSV / Parquet file or a sequence file
    from tfrecs.data import from_files
    split = make_split(from_files("ratings.csv", user="user", item="movie", rating="stars"), "random")
"""

from tfrecs.data.dataset import (
    DUPLICATE_POLICIES,
    DuplicateRowsError,
    IdIndex,
    RecDataset,  # noqa: F401
    joined_columns,
    object_column,
)
from tfrecs.data.frames import MalformedDataError, from_dataframe, from_files, read_data_config  # noqa: F401
from tfrecs.data.feature_spec import Feature, FeatureSpec, FeatureSpecError  # noqa: F401
from tfrecs.data.movielens import CacheError, DatasetUnavailableError, fetch_ml100k, load_movielens  # noqa: F401
from tfrecs.data.readers import DataNotFoundError, EmptyFileError, MalformedFileError  # noqa: F401
from tfrecs.data.registry import DATASET_NAMES, fetch_dataset, load_dataset  # noqa: F401
from tfrecs.data.sequence_file import read_sequence_file  # noqa: F401
from tfrecs.data.splits import (
    EmptySplitError,
    Split,
    k_core,
    leave_one_out,
    make_split,  # noqa: F401
    random_split,
    temporal_split,
    to_implicit,
)
from tfrecs.data.synthetic import (
    criteo_feature_spec,
    iter_synthetic_ctr,
    iter_synthetic_implicit,  # noqa: F401
    iter_synthetic_sequences,
    synthetic_ctr,
    synthetic_ctr_world,
    synthetic_implicit,
    synthetic_sequences,
)
