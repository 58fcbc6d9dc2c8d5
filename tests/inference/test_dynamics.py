"""Per-position hidden-state and gradient norms (issue 15, question 1)."""

import keras
import numpy as np

import tfseq2seq as ts
from tfseq2seq.inference.dynamics import recurrent_norms

T = 12
SOURCE = np.tile(np.arange(4, 4 + T, dtype=np.int32) % 10 + 4, (3, 1))
TARGET_IN = np.concatenate([np.ones((3, 1), np.int32), SOURCE[:, :4]], axis=1)
TARGET_OUT = np.concatenate([SOURCE[:, :4], np.full((3, 1), 2, np.int32)], axis=1)


def elman(activation, recurrent_scale):
    keras.utils.set_random_seed(0)
    model = ts.Seq2Seq(16, 16, embedding_dim=8, units=8, cell="elman", activation=activation)
    cell = model.encoder.forward_cells[0]
    cell.recurrent_kernel.assign(recurrent_scale * np.eye(8, dtype="float32"))
    return model


def test_an_unbounded_state_grows_along_the_sequence_and_tanh_bounds_it():
    identity = recurrent_norms(elman("identity", 1.5), SOURCE, TARGET_IN, TARGET_OUT)
    tanh = recurrent_norms(elman("tanh", 1.5), SOURCE, TARGET_IN, TARGET_OUT)
    assert identity["hidden_norm"].shape == (T,) and identity["grad_norm"].shape == (T,)
    assert identity["hidden_norm"][-1] > 20 * identity["hidden_norm"][0]  # ~1.5^t growth
    assert np.all(tanh["hidden_norm"] <= np.sqrt(8) + 1e-5)  # |tanh| < 1 per unit
    # early inputs reach the loss through more recurrence steps: with U = 1.5·I and no
    # squashing, their gradient is larger than the last input's
    assert identity["grad_norm"][0] > identity["grad_norm"][-1]
    assert np.isfinite(tanh["loss"]) and np.all(np.isfinite(tanh["grad_norm"]))


def test_padded_positions_do_not_count():
    model = elman("tanh", 0.5)
    padded = SOURCE.copy()
    padded[0, 6:] = 0  # row 0 ends after 6 tokens
    norms = recurrent_norms(model, padded, TARGET_IN, TARGET_OUT)
    rows = recurrent_norms(model, SOURCE[1:], TARGET_IN[1:], TARGET_OUT[1:])
    np.testing.assert_allclose(norms["hidden_norm"][6:], rows["hidden_norm"][6:], rtol=1e-5)


def test_the_probe_computes_the_models_own_loss():
    model = ts.Seq2Seq(16, 16, embedding_dim=8, units=8, cell="gru", encoder_layers=2,
                       bidirectional=True, bidirectional_merge="concat")
    expected = float(ts.MaskedCrossEntropy()(TARGET_OUT, model((SOURCE, TARGET_IN))))
    got = recurrent_norms(model, SOURCE, TARGET_IN, TARGET_OUT)["loss"]
    assert abs(got - expected) < 1e-5


def test_redrawn_embeddings_change_only_the_embeddings_and_the_outputs():
    from tfseq2seq.inference.dynamics import with_redrawn_embeddings

    model = elman("tanh", 0.5)
    before = [w.numpy().copy() for w in model.weights]
    redrawn = with_redrawn_embeddings(model, sides=("target",), seed=7)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, model.weights))  # untouched
    changed = [w.path for w, a in zip(redrawn.weights, before) if not np.array_equal(a, w.numpy())]
    assert changed == [redrawn.decoder.embedding.embeddings.path]
    assert not np.allclose(redrawn.greedy_decode(SOURCE)["scores"], model.greedy_decode(SOURCE)["scores"])
