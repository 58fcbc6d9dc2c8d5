"""Ensembles decode with the members' mean log-probabilities, in every decode path and
the export."""

import numpy as np
import pytest
import tensorflow as tf

import tfseq2seq as ts
from tfseq2seq import export, text
from tfseq2seq.ensemble import Ensemble

SOURCE = np.array([[5, 7, 3, 9], [4, 6, 0, 0], [8, 8, 8, 0]], np.int32)


def member(seed, **kwargs):
    import keras

    keras.utils.set_random_seed(seed)
    model = ts.Seq2Seq(12, 12, embedding_dim=6, units=8, **kwargs)
    for w in model.weights:  # far from uniform, so members disagree
        w.assign(np.random.default_rng(seed).normal(0, 0.6, w.shape).astype("float32"))
    return model


def graphs(model, beam=False):
    limit = tf.constant(7)
    if beam:
        return model.beam_graph(tf.constant(SOURCE), limit, 3, 0.6)
    return model.greedy_graph(tf.constant(SOURCE), limit)


@pytest.mark.parametrize("beam", [False, True])
def test_an_ensemble_of_one_model_twice_is_that_model(beam):
    model = member(0, attention="general")
    alone, twice = graphs(model, beam), graphs(Ensemble([model, model]), beam)
    np.testing.assert_array_equal(alone["token_ids"], twice["token_ids"])
    np.testing.assert_allclose(alone["scores"], twice["scores"], atol=1e-5)
    np.testing.assert_allclose(alone["attention"], twice["attention"], atol=1e-6)


def test_each_step_scores_with_the_mean_log_probabilities():
    a, b = member(1), member(2, attention="dot", cell="lstm")  # members may differ in shape
    ensemble = Ensemble([a, b])
    memories, masks, states = ensemble.encode(tf.constant(SOURCE))
    start = tf.fill([3], 1)
    log_probs, new_states, attention = ensemble.step_fn(memories, masks)(start, states)
    expected = [tf.nn.log_softmax(m.step_fn(mem, mask)(start, s)[0])
                for m, mem, mask, s in zip((a, b), memories, masks, states)]
    np.testing.assert_allclose(log_probs, (expected[0] + expected[1]) / 2, atol=1e-5)
    assert len(new_states) == 2 and attention.shape == (3, 4)
    greedy = {k: v.numpy() for k, v in graphs(ensemble).items()}
    first = np.argmax(tf.nn.log_softmax(log_probs), axis=1)
    started = greedy["lengths"] > 0
    np.testing.assert_array_equal(greedy["token_ids"][started, 0], first[started])
    assert not np.array_equal(graphs(a)["token_ids"], graphs(b)["token_ids"])


def test_an_ensemble_exports_as_one_model_with_both_signatures():
    ensemble = Ensemble([member(3), member(4, input_feeding=True)])
    vocab = text.Vocabulary(text.RESERVED_TOKENS + tuple("abcdefgh"))
    pipeline = text.TextPipeline(text.CharTokenizer(), text.CharTokenizer(), vocab, vocab)
    module = export.ServingModule(ensemble, pipeline)
    assert len(module.model_variables) == len(ensemble.models[0].variables) + len(
        ensemble.models[1].variables)
    words = tf.constant(["abc", "hgfe", ""])
    ids, counts = pipeline.source_ids(words)
    limit = 2 * int(ids.shape[1]) + 10
    for served, direct in ((module.greedy, ensemble.greedy_graph(ids, limit)),
                           (module.beam_search, ensemble.beam_graph(ids, limit, 5, 0.6))):
        out = served(words)
        n = int(out["lengths"][0])
        np.testing.assert_array_equal(out["token_ids"][0, :n], direct["token_ids"][0, :n])
        np.testing.assert_allclose(out["scores"][:2], direct["scores"][:2], atol=1e-5)
        assert out["lengths"][2] == 0 and out["text"][2] == b""


def test_members_must_share_vocabularies():
    with pytest.raises(ValueError, match="target_vocab_size"):
        Ensemble([member(0), ts.Seq2Seq(12, 13, embedding_dim=6, units=8)])
    with pytest.raises(ValueError, match="at least 2"):
        Ensemble([member(0)])
