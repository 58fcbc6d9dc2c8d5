"""The training loop (hand-written backward through time) against automatic
differentiation of the plain loop: same outputs, same gradients for every input,
initial state and weight, with and without padding, in both directions."""

import numpy as np
import pytest
import tensorflow as tf

from tfseq2seq.layers import make_cell
from tfseq2seq.unroll import unroll

CASES = [(cell, masked, reverse, given_state)
         for cell in ("elman", "gru", "lstm")
         for masked, reverse, given_state in ((False, False, False), (True, False, True),
                                              (True, True, False), (False, True, True))]


def _setup(kind, seed=0, batch=3, steps=5, dim=4, units=6):
    rng = np.random.default_rng(seed)
    cell = make_cell(kind, units)
    cell.build((None, dim))
    for w in cell.weights:  # non-zero biases so their gradients are exercised
        w.assign(rng.normal(0, 0.5, w.shape).astype("float32"))
    x = tf.constant(rng.normal(size=(batch, steps, dim)), tf.float32)
    lengths = np.array([steps, 2, 0][:batch])
    mask = tf.constant(np.arange(steps)[None, :] < lengths[:, None])
    state = [tf.constant(rng.normal(size=(batch, units)), tf.float32) for _ in cell.state_size]
    # random output weights, so every output position and final state matters differently
    w_out = tf.constant(rng.normal(size=(batch, steps, units)), tf.float32)
    w_states = [tf.constant(rng.normal(size=(batch, units)), tf.float32) for _ in cell.state_size]
    return cell, x, mask, state, w_out, w_states


def _value_and_grads(cell, x, mask, state, w_out, w_states, reverse, training):
    variables = cell.trainable_variables
    with tf.GradientTape() as tape:
        tape.watch([x] + (state or []))
        outputs, final = unroll(cell, x, mask=mask, initial_state=state, reverse=reverse,
                             training=training)
        loss = tf.reduce_sum(outputs * w_out) + sum(
            tf.reduce_sum(s * w) for s, w in zip(final, w_states))
    grads = tape.gradient(loss, [x] + (state or []) + list(variables))
    return outputs, final, grads


@pytest.mark.parametrize("kind,masked,reverse,given_state", CASES)
def test_training_loop_matches_autodiff(kind, masked, reverse, given_state):
    cell, x, mask, state, w_out, w_states = _setup(kind)
    mask = mask if masked else None
    state = state if given_state else None
    ref = _value_and_grads(cell, x, mask, state, w_out, w_states, reverse, training=False)
    got = _value_and_grads(cell, x, mask, state, w_out, w_states, reverse, training=True)
    np.testing.assert_allclose(got[0], ref[0], atol=1e-6)
    for g, r in zip(got[1], ref[1]):
        np.testing.assert_allclose(g, r, atol=1e-6)
    assert len(got[2]) == len(ref[2])
    for g, r in zip(got[2], ref[2]):
        assert g is not None and r is not None
        np.testing.assert_allclose(tf.convert_to_tensor(g), tf.convert_to_tensor(r),
                                   rtol=1e-4, atol=1e-5)


def test_training_loop_in_a_graph_with_unknown_shapes():
    """Inside ``tf.function`` with unknown batch and time (as in ``fit``), including an
    empty sequence axis, and when only the final state is used (no output gradient)."""
    cell, x, mask, state, w_out, w_states = _setup("gru")

    def gradient_fn(training):
        @tf.function(input_signature=[tf.TensorSpec([None, None, 4]),
                                      tf.TensorSpec([None, None], tf.bool)])
        def grads(x, mask):
            with tf.GradientTape() as tape:
                tape.watch(x)
                _, final = unroll(cell, x, mask=mask, training=training)
                loss = tf.reduce_sum(final[0] ** 2)
            return tape.gradient(loss, [x] + list(cell.trainable_variables))
        return grads

    grads, reference = gradient_fn(True), gradient_fn(False)
    for g, r in zip(grads(x, mask), reference(x, mask)):
        np.testing.assert_allclose(tf.convert_to_tensor(g), tf.convert_to_tensor(r), rtol=1e-4, atol=1e-5)
    empty = grads(x[:, :0], mask[:, :0])
    assert empty[0].shape == (3, 0, 4)
    assert all(float(tf.reduce_max(tf.abs(tf.convert_to_tensor(g)))) == 0.0 for g in empty[1:])


@pytest.mark.parametrize("kind", ["elman", "gru", "lstm"])
@pytest.mark.parametrize("reverse", [False, True])
def test_skipping_padded_rows_equals_selecting(kind, reverse):
    """Inference with ``skip_padding`` (only the non-padding rows of each step computed)
    == the select path, in a graph with unknown shapes; rows of length 0 keep their state."""
    cell, x, mask, state, _, _ = _setup(kind)

    @tf.function(input_signature=[tf.TensorSpec([None, None, 4]), tf.TensorSpec([None, None], tf.bool)])
    def run(x, mask):
        return (unroll(cell, x, mask=mask, initial_state=state, reverse=reverse),
                unroll(cell, x, mask=mask, initial_state=state, reverse=reverse, skip_padding=True))

    (want, want_state), (got, got_state) = run(x, mask)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert not np.any(got.numpy()[2])  # the empty row emits zeros
    for g, w, s in zip(got_state, want_state, state):
        np.testing.assert_allclose(g, w, atol=1e-6)
        np.testing.assert_allclose(g[2], s[2])  # ... and keeps its initial state


@pytest.mark.parametrize("kind", ["gru", "lstm"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("jit", [False, True])
def test_inference_skips_steps_that_are_padding_in_every_row(kind, reverse, jit):
    """Columns of padding only (XLA pads the batch to a multiple of 8 columns) are not
    run at inference: outputs and final states equal the training loop's, which runs
    every step; a batch of padding only keeps its states and emits zeros."""
    cell, x, _, state, _, _ = _setup(kind, steps=7)
    run = tf.function(lambda x, mask, **kw: unroll(cell, x, mask=mask, initial_state=state,
                                                   reverse=reverse, **kw), jit_compile=jit)
    for lengths in ([4, 2, 0], [0, 0, 0], [7, 1, 3]):
        mask = tf.constant(np.arange(7)[None, :] < np.array(lengths)[:, None])
        want, want_state = unroll(cell, x, mask=mask, initial_state=state, reverse=reverse,
                                  training=True)
        got, got_state = run(x, mask)
        np.testing.assert_allclose(got, want, atol=1e-6)
        assert not np.any(got.numpy()[:, max(lengths):])
        for g, w in zip(got_state, want_state):
            np.testing.assert_allclose(g, w, atol=1e-6)
    np.testing.assert_allclose(run(x, tf.zeros([3, 7], tf.bool))[1][0], state[0])
