import keras
import numpy as np
import pytest
import tensorflow as tf

from tfseq2seq.decoder import Decoder
from tfseq2seq.encoder import Encoder

SOURCE = np.array([[5, 7, 3, 9], [4, 2, 0, 0]])
TARGET_IN = np.array([[1, 6, 8, 3, 4], [1, 9, 2, 0, 0]])


def _setup(**decoder_kwargs):
    encoder = Encoder(12, 6, 8, decoder_kwargs.get("cell", "gru"), num_layers=2)
    decoder = Decoder(10, 6, 8, num_layers=2, **decoder_kwargs)
    decoder.build()
    outputs, states, mask = encoder(SOURCE)
    return decoder, decoder.prepare_memory(outputs, states), mask, decoder.initial_state(states)


def _step_loop(decoder, memory, mask, state, feed):
    """Runs ``step`` once per position, choosing the next input with ``feed(t, logits)``."""
    prev, logits_all = tf.constant(TARGET_IN[:, 0], tf.int32), []
    for t in range(TARGET_IN.shape[1]):
        logits, state, _ = decoder.step(prev, state, memory, mask)
        logits_all.append(logits)
        prev = feed(t, logits)
    return tf.stack(logits_all, axis=1)


def _truth(t, logits):
    return tf.constant(TARGET_IN[:, min(t + 1, TARGET_IN.shape[1] - 1)], tf.int32)


@pytest.mark.parametrize("kwargs", [
    {"attention": "general"}, {"attention": "dot", "combine": "add"},
    {"attention": "concat", "combine": "mlp", "cell": "lstm"},
    {"attention": "general", "input_feeding": True}, {"attention": None}])
def test_step_loop_equals_training_forward_pass(kwargs):
    decoder, memory, mask, state = _setup(**kwargs)
    expected = _step_loop(decoder, memory, mask, state, _truth)
    logits = decoder.teacher_forced(tf.constant(TARGET_IN, tf.int32), state, memory, mask)
    assert logits.shape == (2, 5, 10)
    np.testing.assert_allclose(logits, expected, atol=1e-5)


def test_scheduled_sampling_extremes():
    decoder, memory, mask, state = _setup(attention="general")
    target = tf.constant(TARGET_IN, tf.int32)
    forced = decoder.teacher_forced(target, state, memory, mask)
    always_truth = decoder.scheduled(target, state, memory, mask, tf.constant(1.0))
    np.testing.assert_allclose(always_truth, forced, atol=1e-5)
    own = decoder.scheduled(target, state, memory, mask, tf.constant(0.0))
    expected = _step_loop(decoder, memory, mask, state,
                          lambda t, logits: tf.argmax(logits, -1, output_type=tf.int32))
    np.testing.assert_allclose(own, expected, atol=1e-5)
    assert not np.allclose(own, forced, atol=1e-3), "own predictions must differ from the truth here"


def test_scheduled_sampling_mixes_per_example():
    decoder, memory, mask, state = _setup(attention="general")
    target = tf.constant(np.repeat(TARGET_IN[:1], 64, axis=0), tf.int32)
    memory = {k: tf.repeat(v[:1], 64, axis=0) for k, v in memory.items()}
    mask = tf.repeat(mask[:1], 64, axis=0)
    state = tf.nest.map_structure(lambda s: tf.repeat(s[:1], 64, axis=0), state)
    forced = decoder.teacher_forced(target, state, memory, mask).numpy()
    mixed = decoder.scheduled(target, state, memory, mask, tf.constant(0.5),
                              seed=keras.random.SeedGenerator(7)).numpy()
    same = np.all(np.isclose(mixed, forced, atol=1e-5), axis=(1, 2))
    # with p = 0.5 over 4 decisions some rows are all-truth (1/16) and most are not
    assert 0 < same.sum() < 64


def test_attention_none_uses_final_encoder_state():
    decoder, memory, mask, state = _setup(attention=None)
    _, _, weights = decoder.step(tf.constant([1, 1]), state, memory, mask)
    assert weights.shape == (2, 4) and np.all(weights.numpy() == 0)
    context, _ = decoder._attend(tf.zeros([2, 8]), memory, mask)
    np.testing.assert_allclose(context, memory["final"])


def test_initial_state_with_fewer_encoder_layers():
    encoder = Encoder(12, 6, 8, "gru", num_layers=1)
    decoder = Decoder(10, 6, 8, num_layers=2)
    decoder.build()
    _, states, _ = encoder(SOURCE)
    state = decoder.initial_state(states)
    assert np.all(state["cells"][0][0].numpy() == 0)
    np.testing.assert_allclose(state["cells"][1][0], states[0][0])


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_bahdanau_timing_attends_with_the_previous_state_and_feeds_the_context(cell):
    """Bahdanau timing: a step's attention is computed from h_{t-1} (so the first step
    attends with the initial state) and its context enters the recurrent step; Luong
    timing attends with the new h_t."""
    keras.utils.set_random_seed(2)
    rng = np.random.default_rng(0)
    encoder = Encoder(12, 6, 8, cell)
    encoder.build()
    for w in encoder.weights:  # large enough weights that attention is far from uniform
        w.assign(rng.normal(0, 0.8, w.shape).astype("float32"))
    outputs, states, mask = encoder(np.array([[5, 7, 3, 9], [4, 2, 0, 0]]))
    prev = tf.constant([1, 1])
    for timing in ("bahdanau", "luong"):
        decoder = Decoder(10, 6, 8, cell, attention="general", attention_timing=timing)
        decoder.build()
        for w in decoder.weights:
            w.assign(rng.normal(0, 0.8, w.shape).astype("float32"))
        assert decoder.cells[0].kernel.shape[0] == 6 + (8 if timing == "bahdanau" else 0)
        memory, state = decoder.prepare_memory(outputs, states), decoder.initial_state(states)
        logits, new_state, weights = decoder.step(prev, state, memory, mask)
        query = state["cells"][-1][0] if timing == "bahdanau" else new_state["cells"][-1][0]
        _, expected = decoder.attention.attend(query, memory["keys"], memory["values"], mask)
        np.testing.assert_allclose(weights, expected, atol=1e-6)
        assert not np.allclose(weights, decoder.attention.attend(
            (new_state if timing == "bahdanau" else state)["cells"][-1][0],
            memory["keys"], memory["values"], mask)[1], atol=1e-4)
        assert Decoder.from_config(decoder.get_config()).attention_timing == timing
    with pytest.raises(ValueError, match="attention_timing"):
        Decoder(10, 6, 8, attention_timing="before")
