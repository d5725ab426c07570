"""Reusable Keras layers shared by the architectures; each small, tested and serializable.

Every layer is a plain Keras class registered as ``tfrecs>ClassName`` (so
``tf_keras.layers.deserialize`` and ``tf_keras.models.load_model`` find it), with flat
keyword hyper-parameters that ``get_config`` / ``from_config`` round-trip.

Example::

    import tfrecs.layers as layers

    embed = layers.FeatureEmbedding(spec, embedding_dim=16)
    logits = layers.MLP((64, 32), output_units=1)(embed.concatenated(batch))
    same = tf_keras.layers.deserialize(tf_keras.layers.serialize(layers.CIN((8, 8))))
"""

from tfrecs.layers.cin import CIN
from tfrecs.layers.compressed_embedding import (
    Float16Embedding,
    HashEmbedding,
    PQEmbedding,
    QREmbedding,
    pq_reconstruct,
    product_quantize,
)
from tfrecs.layers.cross import CrossV1
from tfrecs.layers.experts import MixtureOfExperts
from tfrecs.layers.feature_embedding import FeatureEmbedding, quantize_embeddings
from tfrecs.layers.fm import FMInteraction
from tfrecs.layers.graph_propagation import GraphPropagation
from tfrecs.layers.item_lookup import ItemLookup
from tfrecs.layers.mlp import MLP
from tfrecs.layers.target_attention import TargetAttention
from tfrecs.layers.transformer import SequenceEncoder, TransformerBlock

__all__ = [
    "CIN",
    "CrossV1",
    "FMInteraction",
    "FeatureEmbedding",
    "Float16Embedding",
    "GraphPropagation",
    "HashEmbedding",
    "ItemLookup",
    "MLP",
    "MixtureOfExperts",
    "PQEmbedding",
    "QREmbedding",
    "SequenceEncoder",
    "TargetAttention",
    "TransformerBlock",
    "pq_reconstruct",
    "product_quantize",
    "quantize_embeddings",
]
