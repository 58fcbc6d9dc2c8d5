import keras
import numpy as np
import pytest

from tfseq2seq.encoder import Encoder
from tfseq2seq.layers import make_cell
from tfseq2seq.unroll import unroll

SOURCE = np.array([[5, 7, 3, 9, 0], [4, 2, 0, 0, 0], [8, 0, 0, 0, 0]])


def _padded(ids, extra):
    return np.pad(ids, [(0, 0), (0, extra)])


@pytest.mark.parametrize("cell", ["elman", "gru", "lstm"])
@pytest.mark.parametrize("bidirectional,merge", [(False, "sum"), (True, "sum"), (True, "concat")])
def test_appending_padding_changes_nothing(cell, bidirectional, merge):
    encoder = Encoder(12, 6, 8, cell, num_layers=2, bidirectional=bidirectional, merge=merge)
    out1, states1, mask1 = encoder(SOURCE)
    out2, states2, mask2 = encoder(_padded(SOURCE, 4))
    assert out1.shape == (3, 5, 8) and out2.shape == (3, 9, 8)
    np.testing.assert_allclose(out1, out2[:, :5], atol=1e-6)
    assert np.all(out2.numpy()[:, 5:] == 0)
    assert np.all(out1.numpy()[~(SOURCE != 0)] == 0), "padded steps must emit zeros"
    for layer1, layer2 in zip(states1, states2):
        for s1, s2 in zip(layer1, layer2):
            assert s1.shape == (3, 8)
            np.testing.assert_allclose(s1, s2, atol=1e-6)


def test_final_state_is_state_after_last_real_token():
    encoder = Encoder(12, 6, 8, "gru")
    _, states, _ = encoder(SOURCE)
    # the second sentence alone, unpadded, must end in the same state
    _, alone, _ = encoder(SOURCE[1:2, :2])
    np.testing.assert_allclose(states[0][0][1], alone[0][0][0], atol=1e-6)


def test_bidirectional_concat_halves_are_forward_and_reversed_backward():
    encoder = Encoder(12, 6, 8, "gru", bidirectional=True, merge="concat")
    outputs, _, _ = encoder(SOURCE[:1, :4])
    embedded = encoder.embedding(SOURCE[:1, :4])
    forward, _ = unroll(encoder.forward_cells[0], embedded)
    backward, _ = unroll(encoder.backward_cells[0], embedded[:, ::-1])
    np.testing.assert_allclose(outputs[..., :4], forward, atol=1e-6)
    np.testing.assert_allclose(outputs[..., 4:], backward[:, ::-1], atol=1e-6)


def test_unroll_equals_keras_rnn_over_the_same_cell(rng):
    cell = make_cell("lstm", 5)
    x = rng.normal(size=(2, 7, 3)).astype("float32")
    ours, ours_state = unroll(cell, x)
    keras_out = keras.layers.RNN(cell, return_sequences=True, return_state=True)(x)
    np.testing.assert_allclose(ours, keras_out[0], atol=1e-5)
    np.testing.assert_allclose(ours_state[1], keras_out[2], atol=1e-5)


def test_config_round_trip_and_validation():
    encoder = Encoder(12, 6, 8, "lstm", 2, True, "concat", 0.1)
    clone = Encoder.from_config(encoder.get_config())
    assert clone.get_config() == encoder.get_config()
    with pytest.raises(ValueError, match="odd"):
        Encoder(12, 6, 7, bidirectional=True, merge="concat")
    with pytest.raises(ValueError, match="cell"):
        Encoder(12, 6, 8, "transformer")
    with pytest.raises(ValueError, match="bidirectional_merge"):
        Encoder(12, 6, 8, merge="max")
