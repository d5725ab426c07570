"""Install tfrecs: ``pip install -e ".[dev]"`` gives the library, the ``tfrecs`` command and the test tools."""
from setuptools import find_packages, setup

# These move together: scann 1.4.2 is compiled against TensorFlow 2.20 and TFRS 0.7.7
# needs tf-keras of the same minor version as TensorFlow.
STACK = [
    "tensorflow==2.20.*",
    "tf-keras==2.20.*",
    "tensorflow-recommenders==0.7.7",
    "scann==1.4.2",
    "tensorflow-serving-api==2.20.*",  # warmup records (PredictionLog) in exports
    "tensorflow-datasets>=4.9,<5",
    "numpy>=1.26,<3",
    "tqdm>=4.60",
    "pandas>=2",  # tfrecs.data.from_dataframe / from_files (your own data)
    "pyarrow>=14",  # Parquet files
]

setup(
    name="tfrecs",
    version="0.1.0",
    description="TensorFlow / Keras recommenders on TFRS: every modern architecture, trained, exported with ScaNN.",
    python_requires=">=3.10",
    packages=find_packages(include=["tfrecs", "tfrecs.*"]),
    install_requires=STACK,
    extras_require={
        # ruff is pinned: its formatter's output is part of what `make test` checks.
        "dev": ["pytest>=7", "nbformat>=5.9", "nbclient>=0.9", "ipykernel>=6", "matplotlib>=3.7",
                "ruff==0.17.6", "import-linter>=2.1,<3", "hypothesis>=6.100", "faiss-cpu==1.15.*",
                "optuna>=4.1,<5"],
        # FAISS exports (--index faiss-hnsw / faiss-ivf) and their loader, tfrecs.export.faiss_index.
        "faiss": ["faiss-cpu==1.15.*"],
        # Peer libraries the benchmarks measure against in the same run (benchmarks/ann.py: FAISS;
        # its recall / speed plot: matplotlib).
        "bench": ["deepctr==0.9.4", "optuna>=4.1,<5", "faiss-cpu==1.15.*", "matplotlib>=3.7"],
    },
    entry_points={"console_scripts": ["tfrecs=tfrecs.cli:main"]},
)
