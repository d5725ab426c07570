"""Recommender models: every architecture as a Keras class, and by snake_case name.

Each class registers itself where it is defined (``tfrecs.core.registration.export``), so
it is serializable as plain Keras and reachable by the name the CLI, notebooks and
benchmarks use.

Example::

    import tfrecs.models as models
    model = models.DeepFM(spec, embedding_dim=10)
    same_class = models.get("deepfm")
"""

from typing import List

from tfrecs.core.registration import model_class, model_names
from tfrecs.models.base import BaseModel, MissingInputError, RankingModel, RetrievalModel
from tfrecs.models.bert4rec import BERT4Rec
from tfrecs.models.ctr_base import CTRModel
from tfrecs.models.dcn import DCN, DCNv2
from tfrecs.models.deepfm import DeepFM
from tfrecs.models.din import DIN
from tfrecs.models.item_item import EASE, ItemItemModel, ItemKNN
from tfrecs.models.lightgcn import LightGCN
from tfrecs.models.mmoe import MMoE, SharedBottom
from tfrecs.models.neumf import GMF, NCFMLP, NeuMF
from tfrecs.models.pinsage import PinSage
from tfrecs.models.popularity import Popularity
from tfrecs.models.sasrec import SASRec
from tfrecs.models.sequential import SequentialRetrievalModel
from tfrecs.models.two_tower import TwoTower
from tfrecs.models.wide_deep import WideDeep
from tfrecs.models.xdeepfm import XDeepFM


def get(name: str) -> type:
    """The model class registered as ``name`` (``"deepfm"`` -> ``DeepFM``).

    Raises:
        KeyError: ``name`` is not a known model; the message lists the known ones.
    """
    return model_class(name)


def names() -> List[str]:
    """Sorted names of every registered model."""
    return model_names()


__all__ = [
    "BERT4Rec",
    "BaseModel",
    "CTRModel",
    "DCN",
    "DCNv2",
    "DIN",
    "DeepFM",
    "EASE",
    "ItemItemModel",
    "ItemKNN",
    "LightGCN",
    "MMoE",
    "MissingInputError",
    "GMF",
    "NCFMLP",
    "NeuMF",
    "PinSage",
    "Popularity",
    "RankingModel",
    "RetrievalModel",
    "SASRec",
    "SequentialRetrievalModel",
    "SharedBottom",
    "TwoTower",
    "WideDeep",
    "XDeepFM",
    "get",
    "names",
]
