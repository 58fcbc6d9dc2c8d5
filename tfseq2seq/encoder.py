"""The encoder: embedding, then 1..N (optionally bidirectional) recurrent layers."""

import keras
import tensorflow as tf

from tfseq2seq.layers import make_cell
from tfseq2seq.layers.embedding import TokenEmbedding, checked_ids, use_input_table
from tfseq2seq.unroll import unroll
from tfseq2seq.util.checks import require_choice, require_positive_int

MERGES = ("sum", "concat")


@keras.saving.register_keras_serializable(package="tfseq2seq")
class Encoder(keras.layers.Layer):
    """Encodes padded source ids into the attention memory and final states.

    Bidirectional layers run a forward and a backward cell and merge them:

    * ``merge="sum"``: each direction has ``units`` units; outputs and states are added.
    * ``merge="concat"``: each direction has ``units // 2`` units (``units`` must be even);
      outputs and states are concatenated, so the result again has ``units`` features.

    Either way every layer's output and state has ``units`` features, which is what lets
    the decoder start from the encoder state and the ``dot`` score compare them.

    Args:
        vocab_size, embedding_dim: source embedding size.
        units: output size of every layer.
        cell: ``"elman"``, ``"gru"`` or ``"lstm"``.
        num_layers: stacked layers; layer ``i > 0`` reads the (dropped-out) output of ``i-1``.
        bidirectional, merge: see above.
        dropout: rate applied to the embeddings and between layers while training.
        embedding_matrix, trainable_embedding: optional pretrained source embeddings.

    Call:
        source_ids: int ``[batch, src_len]``, 0-padded at the end.
        fixed_shapes: keep every row in every step's computation (needed under XLA);
            by default inference computes only the non-padding rows of each step.
        returns ``(outputs, final_states, mask)``: ``[batch, src_len, units]`` (zeros at
        padding), a list with one state list per layer (each tensor ``[batch, units]``),
        and the bool mask ``[batch, src_len]``.
    """

    def __init__(self, vocab_size, embedding_dim, units, cell="gru", num_layers=1,
                 bidirectional=False, merge="sum", dropout=0.0, embedding_matrix=None,
                 trainable_embedding=True, activation="tanh", **kwargs):
        super().__init__(**kwargs)
        self.activation = activation
        self.units = require_positive_int("units", units)
        self.cell_type = cell
        self.num_layers = require_positive_int("encoder_layers", num_layers)
        self.bidirectional = bool(bidirectional)
        self.merge = require_choice("bidirectional_merge", merge, MERGES)
        if self.bidirectional and merge == "concat" and units % 2:
            raise ValueError(f"bidirectional_merge='concat' splits units in two; units={units} is odd")
        self.dropout_rate = float(dropout)
        self.embedding = TokenEmbedding(
            vocab_size, embedding_dim, initial_matrix=embedding_matrix,
            trainable=trainable_embedding, name="source_embedding")
        cell_units = units // 2 if self.bidirectional and merge == "concat" else units
        self.forward_cells = [make_cell(cell, cell_units, activation, name=f"forward_{i}")
                              for i in range(num_layers)]
        self.backward_cells = [make_cell(cell, cell_units, activation, name=f"backward_{i}")
                               for i in range(num_layers)] if self.bidirectional else []
        self.dropout = keras.layers.Dropout(self.dropout_rate)

    def build(self, input_shape=None):
        self.embedding.build()
        input_dim = self.embedding.dim
        for i in range(self.num_layers):
            self.forward_cells[i].build((None, input_dim))
            if self.bidirectional:
                self.backward_cells[i].build((None, input_dim))
            input_dim = self.units
        self.built = True

    def call(self, source_ids, training=None, fixed_shapes=False):
        training = bool(training)
        skip_padding = not (training or fixed_shapes)
        mask = self.embedding.compute_mask(source_ids)
        ids = None
        if use_input_table(self.embedding, training and self.dropout_rate > 0):
            ids, x = checked_ids(source_ids, self.embedding.vocab_size, self.embedding.name), None
        else:
            x = self.dropout(self.embedding(source_ids), training=training)
        final_states = []
        for i in range(self.num_layers):
            if i > 0:
                x = self.dropout(x, training=training)
            x, state = self._run_layer(i, x, mask, training, ids if i == 0 else None,
                                       skip_padding)
            final_states.append(state)
        return x, final_states, mask

    def _run_layer(self, i, x, mask, training, ids=None, skip_padding=False):
        """Layer ``i`` over ``x``, or over the embeddings of ``ids`` via input tables."""
        def run(cell, reverse=False):
            projected = (None if ids is None
                         else tf.gather(cell.input_table(self.embedding.embeddings), ids))
            return unroll(cell, x, mask, reverse=reverse, training=training, projected=projected,
                          skip_padding=skip_padding)

        outputs, state = run(self.forward_cells[i])
        if not self.bidirectional:
            return outputs, state
        b_outputs, b_state = run(self.backward_cells[i], reverse=True)
        if self.merge == "sum":
            return outputs + b_outputs, [f + b for f, b in zip(state, b_state)]
        return (tf.concat([outputs, b_outputs], -1),
                [tf.concat([f, b], -1) for f, b in zip(state, b_state)])

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.embedding.vocab_size, embedding_dim=self.embedding.dim,
            units=self.units, cell=self.cell_type, num_layers=self.num_layers,
            bidirectional=self.bidirectional, merge=self.merge, dropout=self.dropout_rate,
            embedding_matrix=None, trainable_embedding=self.embedding.trainable,
            activation=self.activation)
        return config
