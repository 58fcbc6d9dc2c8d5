import keras
import numpy as np
import pytest
import tensorflow as tf

from tfseq2seq.layers.attention import LuongAttention


def _inputs(rng, batch=3, tq=4, src=6, units=8):
    query = rng.normal(size=(batch, tq, units)).astype("float32")
    memory = rng.normal(size=(batch, src, units)).astype("float32")
    lengths = np.array([6, 3, 1])[:batch]
    mask = np.arange(src)[None, :] < lengths[:, None]
    return query, memory, mask


@pytest.mark.parametrize("score", ["dot", "general", "concat"])
def test_weights_sum_to_one_and_are_zero_on_padding(rng, score):
    query, memory, mask = _inputs(rng)
    context, weights = LuongAttention(score)(query, memory, mask)
    weights = weights.numpy()
    assert weights.shape == (3, 4, 6) and context.shape == (3, 4, 8)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    assert np.all(weights[~np.broadcast_to(mask[:, None, :], weights.shape)] == 0.0)
    # the context is the weighted average of the memory rows
    np.testing.assert_allclose(context, np.einsum("bts,bsu->btu", weights, memory), atol=1e-5)


@pytest.mark.parametrize("score", ["dot", "general", "concat"])
def test_padding_content_does_not_leak(rng, score):
    query, memory, mask = _inputs(rng)
    layer = LuongAttention(score)
    c1, w1 = layer(query, memory, mask)
    noisy = np.where(mask[:, :, None], memory, 100.0 * rng.normal(size=memory.shape)).astype("float32")
    c2, w2 = layer(query, noisy, mask)
    np.testing.assert_allclose(c1, c2, atol=1e-5)
    np.testing.assert_allclose(w1, w2, atol=1e-6)


def test_dot_equals_keras_attention(rng):
    query, memory, mask = _inputs(rng)
    ours_c, ours_w = LuongAttention("dot")(query, memory, mask)
    keras_c, keras_w = keras.layers.Attention()(
        [query, memory], mask=[None, mask], return_attention_scores=True)
    np.testing.assert_allclose(ours_c, keras_c, atol=1e-6)
    np.testing.assert_allclose(ours_w, keras_w, atol=1e-6)


@pytest.mark.parametrize("score", ["dot", "general", "concat"])
def test_rank2_query_equals_one_step_of_rank3(rng, score):
    query, memory, mask = _inputs(rng)
    layer = LuongAttention(score)
    c3, w3 = layer(query, memory, mask)
    c2, w2 = layer(query[:, 1], memory, mask)
    np.testing.assert_allclose(c2, c3[:, 1], atol=1e-6)
    np.testing.assert_allclose(w2, w3[:, 1], atol=1e-6)


def test_general_score_uses_the_bilinear_form(rng):
    query, memory, mask = _inputs(rng)
    layer = LuongAttention("general")
    _, weights = layer(query, memory)
    w_a = layer.memory_kernel.numpy()
    scores = np.einsum("btq,bsm,mq->bts", query, memory, w_a)
    expected = np.exp(scores - scores.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(weights, expected, atol=1e-5)


def test_fully_masked_memory_gives_zeros(rng):
    query, memory, _ = _inputs(rng)
    mask = np.zeros((3, 6), bool)
    context, weights = LuongAttention("general")(query, memory, mask)
    assert np.all(weights.numpy() == 0) and np.all(context.numpy() == 0)


def test_config_round_trip_and_bad_arguments():
    layer = LuongAttention("concat", attention_units=7)
    clone = LuongAttention.from_config(layer.get_config())
    assert clone.score == "concat" and clone.attention_units == 7
    with pytest.raises(ValueError, match="score"):
        LuongAttention("bahdanau")
    with pytest.raises(ValueError, match="same size"):
        LuongAttention("dot")(tf.zeros([2, 4]), tf.zeros([2, 3, 5]))
    with pytest.raises(ValueError, match="rank"):
        LuongAttention("dot")(tf.zeros([4]), tf.zeros([2, 3, 4]))
