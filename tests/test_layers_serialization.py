"""Custom layers are registered and round-trip through Keras serialization in safe mode."""

import keras
import numpy as np

from lstmtext.layers.reversible_embedding import ReversibleEmbedding
from lstmtext.lm.network import TokenNLL


def test_reversible_embedding_round_trip():
    layer = ReversibleEmbedding(20, 4, name="emb")
    ids = np.array([[1, 2, 3]])
    out = layer(layer(ids), reverse=True)
    assert tuple(out.shape) == (1, 3, 20)
    config = keras.saving.serialize_keras_object(layer)
    again = keras.saving.deserialize_keras_object(config, safe_mode=True)
    assert isinstance(again, ReversibleEmbedding) and again.get_config() == layer.get_config()


def test_token_nll_round_trip_and_value():
    layer = TokenNLL()
    logits = np.log(np.array([[[0.5, 0.25, 0.25]]], np.float32))
    nll = np.asarray(layer([logits, np.array([[1]])]))
    np.testing.assert_allclose(nll, [[np.log(4.0)]], rtol=1e-6)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer), safe_mode=True)
    assert isinstance(again, TokenNLL)
