import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tfseq2seq.layers.cells import ElmanCell, GRUCell, LSTMCell  # noqa: E402

INPUT_DIM, UNITS, BATCH, STEPS = 7, 5, 3, 4

PAIRS = {
    "elman": (ElmanCell, lambda: keras.layers.SimpleRNNCell(UNITS)),
    "gru": (GRUCell, lambda: keras.layers.GRUCell(UNITS, reset_after=True)),
    "lstm": (LSTMCell, lambda: keras.layers.LSTMCell(UNITS)),
}


def _rng(seed=0):
    return np.random.default_rng(seed)


def _make_pair(kind, seed=0):
    """Our cell and the Keras cell, both built, sharing random weights."""
    cls, keras_factory = PAIRS[kind]
    ours, ref = cls(UNITS), keras_factory()
    ours.build((None, INPUT_DIM))
    ref.build((None, INPUT_DIM))
    rng = _rng(seed)
    # Random weights everywhere, including nonzero biases.
    weights = [
        rng.normal(scale=0.5, size=w.shape).astype("float32")
        for w in ref.get_weights()
    ]
    ref.set_weights(weights)
    ours.set_weights(ref.get_weights())
    return ours, ref


def _random_states(kind, rng):
    n = 2 if kind == "lstm" else 1
    return [rng.normal(size=(BATCH, UNITS)).astype("float32") for _ in range(n)]


@pytest.mark.parametrize("kind", sorted(PAIRS))
def test_weights_match_keras_layout(kind):
    ours, ref = _make_pair(kind)
    assert [v.name for v in ours.weights] == ["kernel", "recurrent_kernel", "bias"]
    assert [v.name for v in ours.weights] == [v.name for v in ref.weights]
    assert [tuple(v.shape) for v in ours.weights] == [
        tuple(v.shape) for v in ref.weights
    ]


@pytest.mark.parametrize("kind", sorted(PAIRS))
def test_steps_match_keras(kind):
    ours, ref = _make_pair(kind, seed=1)
    rng = _rng(2)
    s_ours = _random_states(kind, rng)
    s_ref = list(s_ours)
    for _ in range(STEPS):
        x = rng.normal(size=(BATCH, INPUT_DIM)).astype("float32")
        out_ours, s_ours = ours(x, s_ours)
        out_ref, s_ref = ref(x, s_ref)
        assert isinstance(s_ours, list) and len(s_ours) == len(ours.state_size)
        np.testing.assert_allclose(out_ours, out_ref, atol=1e-5)
        for a, b in zip(s_ours, s_ref):
            np.testing.assert_allclose(a, b, atol=1e-5)
    # The states actually evolved (guards against a no-op comparison).
    assert not np.allclose(out_ours, 0.0)


@pytest.mark.parametrize("kind", sorted(PAIRS))
def test_step_of_projection_equals_call(kind):
    ours, _ = _make_pair(kind, seed=3)
    rng = _rng(4)
    x = rng.normal(size=(BATCH, INPUT_DIM)).astype("float32")
    states = _random_states(kind, rng)
    out_a, st_a = ours.step(ours.project_inputs(x), states)
    out_b, st_b = ours(x, states)
    np.testing.assert_allclose(out_a, out_b, atol=1e-6)
    for a, b in zip(st_a, st_b):
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("kind", sorted(PAIRS))
def test_project_inputs_rank3_equals_per_step(kind):
    ours, _ = _make_pair(kind, seed=5)
    x = _rng(6).normal(size=(BATCH, STEPS, INPUT_DIM)).astype("float32")
    proj = keras.ops.convert_to_numpy(ours.project_inputs(x))
    gates = ours.kernel.shape[-1]
    assert proj.shape == (BATCH, STEPS, gates)
    for t in range(STEPS):
        np.testing.assert_allclose(
            proj[:, t], ours.project_inputs(x[:, t]), atol=1e-5
        )


@pytest.mark.parametrize("kind", sorted(PAIRS))
def test_inside_keras_rnn_matches_keras_cell(kind):
    ours, ref = _make_pair(kind, seed=7)
    x = _rng(8).normal(size=(BATCH, STEPS, INPUT_DIM)).astype("float32")
    rnn_ours = keras.layers.RNN(ours, return_sequences=True, return_state=True)
    rnn_ref = keras.layers.RNN(ref, return_sequences=True, return_state=True)
    res_ours, res_ref = rnn_ours(x), rnn_ref(x)
    assert len(res_ours) == len(res_ref) == 1 + len(ours.state_size)
    for a, b in zip(res_ours, res_ref):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert tuple(res_ours[0].shape) == (BATCH, STEPS, UNITS)


@pytest.mark.parametrize("kind", sorted(PAIRS))
def test_initial_state(kind):
    cell = PAIRS[kind][0](UNITS)
    states = cell.get_initial_state(batch_size=BATCH)
    assert isinstance(states, list)
    assert len(states) == len(cell.state_size) == (2 if kind == "lstm" else 1)
    assert cell.state_size == [UNITS] * len(states)
    assert cell.output_size == UNITS
    for s in states:
        assert tuple(s.shape) == (BATCH, UNITS)
        assert s.dtype == "float32"
        assert not np.any(keras.ops.convert_to_numpy(s))


def test_lstm_unit_forget_bias_init():
    cell = LSTMCell(UNITS)
    cell.build((None, INPUT_DIM))
    expected = np.concatenate(
        [np.zeros(UNITS), np.ones(UNITS), np.zeros(2 * UNITS)]
    )
    np.testing.assert_array_equal(cell.bias.numpy(), expected)
    plain = LSTMCell(UNITS, unit_forget_bias=False)
    plain.build((None, INPUT_DIM))
    np.testing.assert_array_equal(plain.bias.numpy(), np.zeros(4 * UNITS))


def test_no_bias():
    cell = GRUCell(UNITS, use_bias=False)
    cell.build((None, INPUT_DIM))
    assert [v.name for v in cell.weights] == ["kernel", "recurrent_kernel"]
    x = np.ones((BATCH, INPUT_DIM), "float32")
    out, _ = cell(x, cell.get_initial_state(BATCH))
    assert tuple(out.shape) == (BATCH, UNITS)


@pytest.mark.parametrize(
    "cell",
    [
        ElmanCell(3, use_bias=False, name="enc_cell"),
        GRUCell(4, kernel_initializer="he_normal"),
        LSTMCell(6, unit_forget_bias=False, bias_initializer="ones"),
    ],
    ids=["elman", "gru", "lstm"],
)
def test_config_and_serialization_round_trip(cell):
    config = cell.get_config()
    clone = type(cell).from_config(config)
    assert clone.get_config() == config
    serialized = keras.saving.serialize_keras_object(cell)
    assert serialized["registered_name"] == f"tfseq2seq>{type(cell).__name__}"
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is type(cell)
    assert restored.get_config() == config


@pytest.mark.parametrize("cls", [ElmanCell, GRUCell, LSTMCell])
@pytest.mark.parametrize("units", [0, -3, "5", 2.0, True])
def test_invalid_units(cls, units):
    with pytest.raises(ValueError, match="units"):
        cls(units)


@pytest.mark.parametrize("activation, keras_name", [
    ("tanh", "tanh"), ("identity", "linear"), ("relu", "relu"), ("sigmoid", "sigmoid"),
    ("hard_tanh", "hard_tanh")])
def test_elman_activations_equal_simple_rnn_and_their_gradients_autodiff(activation, keras_name):
    """``ElmanCell(activation=...)`` computes ``SimpleRNNCell(activation=...)``, and its
    hand-written backward pass (what training runs) equals automatic differentiation."""
    import tensorflow as tf

    from tfseq2seq.layers import ElmanCell
    from tfseq2seq.unroll import unroll

    rng = np.random.default_rng(4)
    x = tf.constant(rng.normal(size=(3, 6, 5)) * 2.0, tf.float32)  # pre-activations beyond ±1
    cell = ElmanCell(4, activation=activation)
    cell.build((None, 5))
    reference = keras.layers.SimpleRNN(4, activation=keras_name, return_sequences=True)
    reference.build((None, 6, 5))
    reference.set_weights(cell.get_weights())
    np.testing.assert_allclose(unroll(cell, x)[0], reference(x), atol=1e-5)
    grads = []
    for training in (True, False):  # hand-written backward vs autodiff of the plain loop
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.sin(unroll(cell, x, training=training)[0]))
        grads.append(tape.gradient(loss, [x, *cell.trainable_variables]))
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert ElmanCell.from_config(cell.get_config()).activation == activation
    with pytest.raises(ValueError, match="activation"):
        ElmanCell(4, activation="softsign")
