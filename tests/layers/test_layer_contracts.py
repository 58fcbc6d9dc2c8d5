"""Every layer of the package (and ``Seq2Seq``) through ``run_layer_test``: build, config
round-trip, output shapes, graph mode, a training step and ``.keras`` saving."""

import numpy as np
import pytest
from layer_checks import run_layer_test

from tfseq2seq.decoder import Decoder
from tfseq2seq.encoder import Encoder
from tfseq2seq.layers import ContextCombiner, ElmanCell, GRUCell, LSTMCell, LuongAttention
from tfseq2seq.layers.embedding import TokenEmbedding
from tfseq2seq.model import Seq2Seq
from tfseq2seq.schedules import ScheduledSampling

V, E, U, B, S, T = 12, 6, 8, 3, 5, 4  # vocab, embedding, units, batch, source/target length
SRC = np.array([[3, 4, 5, 6, 7], [8, 9, 10, 0, 0], [11, 0, 0, 0, 0]], "int32")
TGT = np.array([[1, 3, 4, 5], [1, 6, 7, 0], [1, 8, 0, 0]], "int32")
MASK = SRC != 0
_rng = np.random.default_rng(0)


def _floats(*shape):
    return _rng.normal(size=shape).astype("float32")


def cell_call(layer, inputs, training):
    return layer(inputs[0], inputs[1], training=training)


def positional_call(layer, inputs, training):
    return layer(*inputs)


def decoder_call(layer, inputs, training):
    """Memory and state from fixed encoder outputs; teacher-forced logits and one step."""
    target_in, values, encoder_states, mask = inputs
    memory = layer.prepare_memory(values, encoder_states)
    state = layer.initial_state(encoder_states)
    logits = layer.teacher_forced(target_in, state, memory, mask, training=training)
    step_logits, new_state, _ = layer.step(target_in[:, 0], state, memory, mask, training)
    return logits, step_logits, new_state


def _cell(cls, n_states):
    inputs = (_floats(B, E), [_floats(B, U) for _ in range(n_states)])
    return (cls, {"units": U}, inputs, ((B, U), [(B, U)] * n_states),
            {"call": cell_call, "build_shapes": ((B, E),), "expected_num_trainable_weights": 3})


def _attention(score, weights, memory_dim):
    kwargs = {"score": score, "attention_units": 5 if score == "concat" else None}
    return (LuongAttention, kwargs, (_floats(B, T, U), _floats(B, S, memory_dim), MASK),
            ((B, T, memory_dim), (B, T, S)),
            {"call": positional_call, "build_shapes": ((B, T, U), (B, S, memory_dim)),
             "expected_num_trainable_weights": weights})


def _combiner(combine, weights, context_dim):
    return (ContextCombiner, {"units": U, "combine": combine},
            (_floats(B, T, context_dim), _floats(B, T, U)), (B, T, U),
            {"call": positional_call, "expected_num_trainable_weights": weights})


def _encoder(weights, states, **kwargs):
    return (Encoder, {"vocab_size": V, "embedding_dim": E, "units": U, "num_layers": 2, **kwargs},
            SRC, ((B, S, U), states, (B, S)), {"expected_num_trainable_weights": weights})


def _decoder(attention, input_feeding, cell, layers, weights):
    n = 2 if cell == "lstm" else 1
    kwargs = {"vocab_size": V, "embedding_dim": E, "units": U, "cell": cell,
              "num_layers": layers, "attention": attention, "input_feeding": input_feeding}
    encoder_states = [[_floats(B, U) for _ in range(n)] for _ in range(layers)]
    state = {"cells": [[(B, U)] * n] * layers, **({"feed": (B, U)} if input_feeding else {})}
    return (Decoder, kwargs, (TGT, _floats(B, S, U), encoder_states, MASK),
            ((B, T, V), (B, V), state),
            {"call": decoder_call, "build_shapes": (), "expected_num_trainable_weights": weights})


def _seq2seq(weights, **kwargs):
    return (Seq2Seq, {"source_vocab_size": V, "target_vocab_size": V, "embedding_dim": E,
                      "units": U, **kwargs}, (SRC, TGT), (B, T, V),
            {"build_shapes": (((B, S), (B, T)),), "expected_num_trainable_weights": weights})


CASES = {
    "embedding": (TokenEmbedding, {"vocab_size": V, "dim": E}, SRC, (B, S, E), {}),
    "embedding-frozen": (TokenEmbedding, {"vocab_size": V, "dim": E, "trainable": False}, SRC,
                         (B, S, E), {"expected_num_trainable_weights": 0,
                                     "expected_num_non_trainable_weights": 1}),
    "elman": _cell(ElmanCell, 1),
    "gru": _cell(GRUCell, 1),
    "lstm": _cell(LSTMCell, 2),
    "attention-dot": _attention("dot", 0, U),
    "attention-general": _attention("general", 1, 7),
    "attention-concat": _attention("concat", 3, 7),
    "combine-concat": _combiner("concat", 1, 7),
    "combine-add": _combiner("add", 0, U),
    "combine-mlp": _combiner("mlp", 2, 7),
    # embedding + 3 per cell
    "encoder-lstm-2": _encoder(1 + 2 * 3, [[(B, U)] * 2] * 2, cell="lstm"),
    "encoder-bi-concat-gru-2": _encoder(1 + 4 * 3, [[(B, U)]] * 2, bidirectional=True,
                                        merge="concat"),
    # embedding + cells + attention + combiner + logits (kernel, bias)
    "decoder-general": _decoder("general", False, "gru", 1, 1 + 3 + 1 + 1 + 2),
    "decoder-general-feeding-lstm-2": _decoder("general", True, "lstm", 2, 1 + 6 + 1 + 1 + 2),
    "decoder-no-attention": _decoder(None, False, "gru", 1, 1 + 3 + 1 + 2),
    "decoder-no-attention-feeding": _decoder(None, True, "gru", 1, 1 + 3 + 1 + 2),
    "seq2seq": _seq2seq(12),
    # encoder 1 + 2 layers x 2 directions x 3; decoder 1 + 3 + concat score 3 + mlp 2 + 2
    "seq2seq-full": _seq2seq(24, cell="lstm", encoder_layers=2, decoder_layers=1,
                             bidirectional=True, bidirectional_merge="concat",
                             attention="concat", attention_units=5, combine="mlp",
                             input_feeding=True, dropout=0.2, seed=3,
                             sampling=ScheduledSampling("linear", mode="sample", steps=10)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_layer_contract(name):
    layer_cls, init_kwargs, input_data, expected_shape, options = CASES[name]
    run_layer_test(layer_cls, init_kwargs, input_data, expected_shape, **options)
