"""The attentional decoder. ``step`` is the one function every decoding loop calls."""

import keras
import tensorflow as tf

from tfseq2seq.layers import make_cell
from tfseq2seq.layers.attention import SCORES, LuongAttention
from tfseq2seq.layers.combine import ContextCombiner
from tfseq2seq.layers.embedding import TokenEmbedding, checked_ids, use_input_table
from tfseq2seq.unroll import same_shapes, unroll
from tfseq2seq.util.checks import require_choice, require_positive_int

TIMINGS = ("luong", "bahdanau")  # c_t from h_t (after the step) | from h_{t-1} (into it)


@keras.saving.register_keras_serializable(package="tfseq2seq")
class Decoder(keras.layers.Layer):
    """Target embedding → N recurrent layers → Luong attention → combine → vocabulary logits.

    The decoder state is a dict with a fixed structure::

        {"cells": [state list of layer 0, ...],   # each tensor [batch, units]
         "feed":  h̃_{t-1} [batch, units]}        # only with input feeding: the
                                                   # attentional output of the last step

    With ``input_feeding`` the next input is ``[embedding(y_{t-1}); h̃_{t-1}]``.
    ``attention_timing``: ``"luong"`` computes the context ``c_t`` from the new top-layer
    state ``h_t`` (after the recurrent step); ``"bahdanau"`` computes it from ``h_{t-1}``
    and feeds it into the step, whose input is then ``[embedding(y_{t-1}); (h̃_{t-1};) c_t]``.
    Both combine ``c_t`` with ``h_t`` into ``h̃_t``.
    With ``attention=None`` the context is the encoder's final (top layer) state at every
    step: the plain encoder–decoder.

    The memory is a dict made once per source batch by ``prepare_memory``::

        {"values": [batch, src_len, units],  "keys": [batch, src_len, key_dim],
         "final":  [batch, units]}
    """

    def __init__(self, vocab_size, embedding_dim, units, cell="gru", num_layers=1,
                 attention="general", attention_units=None, combine="concat",
                 input_feeding=False, dropout=0.0, embedding_matrix=None,
                 trainable_embedding=True, activation="tanh", attention_timing="luong",
                 **kwargs):
        super().__init__(**kwargs)
        self.activation = activation
        self.attention_timing = require_choice("attention_timing", attention_timing, TIMINGS)
        self.vocab_size = require_positive_int("target_vocab_size", vocab_size)
        self.units = require_positive_int("units", units)
        self.cell_type = cell
        self.num_layers = require_positive_int("decoder_layers", num_layers)
        if attention is not None:
            require_choice("attention", attention, SCORES + (None,))
        self.attention_score = attention
        self.attention_units = attention_units
        self.input_feeding = bool(input_feeding)
        self.dropout_rate = float(dropout)
        self.embedding = TokenEmbedding(
            vocab_size, embedding_dim, initial_matrix=embedding_matrix,
            trainable=trainable_embedding, name="target_embedding")
        self.cells = [make_cell(cell, units, activation, name=f"cell_{i}") for i in range(num_layers)]
        self.attention = (LuongAttention(attention, attention_units, name="attention")
                          if attention is not None else None)
        self.combiner = ContextCombiner(units, combine, name="combine")
        self.dropout = keras.layers.Dropout(self.dropout_rate)
        self.output_layer = keras.layers.Dense(vocab_size, name="logits")

    @property
    def bahdanau(self):
        """Bahdanau timing: ``c_t`` from ``h_{t-1}``, fed into the step's input."""
        return self.attention_timing == "bahdanau"

    def build(self, input_shape=None):
        self.embedding.build()
        extras = int(self.input_feeding) + int(self.bahdanau)
        input_dim = self.embedding.dim + extras * self.units
        for cell in self.cells:
            cell.build((None, input_dim))
            input_dim = self.units
        if self.attention is not None:
            self.attention.build((None, self.units), (None, None, self.units))
        self.combiner.build((None, self.units), (None, self.units))
        self.output_layer.build((None, self.units))
        self.built = True

    def prepare_memory(self, encoder_outputs, encoder_states):
        """The memory dict (see class docstring); keys are projected once here."""
        keys = (self.attention.project_memory(encoder_outputs)
                if self.attention is not None else encoder_outputs)
        return {"values": encoder_outputs, "keys": keys, "final": encoder_states[-1][0]}

    def initial_state(self, encoder_states):
        """Decoder layer ``i`` starts from the state of the encoder layer at the same depth
        counted from the top; layers with no counterpart start from zeros."""
        batch = tf.shape(encoder_states[-1][0])[0]
        offset = len(encoder_states) - self.num_layers
        cells = [list(encoder_states[i + offset]) if i + offset >= 0
                 else cell.get_initial_state(batch) for i, cell in enumerate(self.cells)]
        if not self.input_feeding:  # nothing reads it: not carried through decode loops
            return {"cells": cells}
        return {"cells": cells, "feed": tf.zeros([batch, self.units])}

    def input_table(self):
        """The first layer's ``[vocab, G*units]`` input table (``cell.input_table``), or
        ``None`` for a large vocabulary (``use_input_table``). Decode loops compute it once,
        outside the loop, and pass it to every ``step``."""
        if not use_input_table(self.embedding):
            return None
        return self.cells[0].input_table(self.embedding.embeddings)

    def step(self, prev_ids, state, memory, memory_mask, training=False, input_table=None):
        """One decoding step.

        Args:
            prev_ids: int ``[batch]``, the previous target token (``<start>`` first).
            state: the decoder state dict.
            memory: the dict from ``prepare_memory``; ``memory_mask`` bool ``[batch, src_len]``.
            input_table: optional ``input_table()``, computed once by the caller.

        Returns:
            ``(logits [batch, vocab], new_state, attention [batch, src_len])``.
        """
        # Raw lookups, without the embedding layer's per-call id assertions: inside a
        # decode loop the ids are the model's own outputs (CPU gathers still reject
        # out-of-range ids); sequences of given ids are checked once by their callers.
        extras = [state["feed"]] if self.input_feeding else []  # inputs after the embedding
        if self.bahdanau:  # attend with the top layer's previous state
            context, weights = self._attend(state["cells"][-1][0], memory, memory_mask)
            extras.append(context)
        extra = None if not extras else extras[0] if len(extras) == 1 else tf.concat(extras, -1)
        if input_table is None:
            x = tf.gather(self.embedding.embeddings, prev_ids)
            x = x if extra is None else tf.concat([x, extra], axis=-1)
        new_cells = []
        for i, cell in enumerate(self.cells):
            if i == 0 and input_table is not None:
                x_proj = tf.gather(input_table, prev_ids)
                if extra is not None:
                    x_proj += cell.project_extra(extra, self.embedding.dim)
            else:
                x_proj = cell.project_inputs(self.dropout(x, training=training) if i > 0 else x)
            x, cell_state = cell.step(x_proj, state["cells"][i])
            new_cells.append(cell_state)
        if not self.bahdanau:  # Luong timing: attend with the new state h_t
            context, weights = self._attend(x, memory, memory_mask)
        attentional = self.combiner(context, x)
        logits = self.output_layer(self.dropout(attentional, training=training))
        new_state = {"cells": new_cells}
        if self.input_feeding:
            new_state["feed"] = attentional
        return logits, new_state, weights

    def teacher_forced(self, target_in_ids, state, memory, memory_mask, training=False):
        """Logits ``[batch, tgt_len, vocab]`` when every input is the ground truth.

        Without input feeding the recurrent layers do not depend on attention, so they run
        over the whole target at once and attention is one batched matmul; this computes
        exactly what calling ``step`` once per position computes.
        """
        if self.input_feeding or self.bahdanau:  # attention feeds the recurrence: step by step
            return self.scheduled(target_in_ids, state, memory, memory_mask, None, training=training)
        table = self.input_table()
        x = None if table is not None else self.embedding(target_in_ids)
        for i, cell in enumerate(self.cells):
            projected = None
            if i == 0 and table is not None:
                projected = tf.gather(table, checked_ids(
                    target_in_ids, self.vocab_size, self.embedding.name))
            elif i > 0:
                x = self.dropout(x, training=training)
            x, _ = unroll(cell, x, initial_state=state["cells"][i], training=bool(training),
                          projected=projected)
        context, _ = self._attend(x, memory, memory_mask)
        return self.output_layer(self.dropout(self.combiner(context, x), training=training))

    def scheduled(self, target_in_ids, state, memory, memory_mask, teacher_forcing_p,
                  sample=False, seed=None, training=False):
        """Logits ``[batch, tgt_len, vocab]`` with scheduled sampling (Bengio et al., 2015).

        Before step ``t > 0`` each example independently feeds the true token
        ``target_in_ids[:, t]`` with probability ``teacher_forcing_p`` (a scalar tensor;
        ``None`` means always), else the model's own prediction from step ``t - 1``:
        its argmax, or a draw from its softmax when ``sample``.

        The fed tokens carry no gradient, so without input feeding the tokens are chosen by
        a forward-only ``step`` loop and the logits are then the teacher-forced pass over
        those tokens: the same values and gradients as differentiating through the loop,
        at the cost of one inference loop plus the batched teacher-forced pass. With
        dropout, the model's own tokens are its predictions without dropout (what it
        predicts when decoding) and the teacher-forced pass applies dropout; the
        reference loop (``_step_loop``, taken with input feeding) predicts with dropout.
        """
        target_in_ids = checked_ids(  # once, not in every step
            target_in_ids, self.vocab_size, self.embedding.name)
        if teacher_forcing_p is None or self.input_feeding or self.bahdanau:
            return self._step_loop(target_in_ids, state, memory, memory_mask, teacher_forcing_p,
                                   sample, seed, training)
        fed = self.sampled_inputs(target_in_ids, state, memory, memory_mask, teacher_forcing_p,
                                  sample, seed)
        return self.teacher_forced(fed, state, memory, memory_mask, training)

    def sampled_inputs(self, target_in_ids, state, memory, memory_mask, teacher_forcing_p,
                       sample=False, seed=None):
        """The tokens scheduled sampling feeds, int ``[batch, tgt_len]`` (column 0 is
        ``target_in_ids[:, 0]``); a forward-only ``step`` loop, no gradient."""
        target_in_ids = tf.cast(target_in_ids, tf.int32)
        state, memory = tf.nest.map_structure(tf.stop_gradient, (state, memory))
        steps = tf.shape(target_in_ids)[1]
        fed_ta = tf.TensorArray(tf.int32, size=steps, element_shape=[None])
        fed_ta = fed_ta.write(0, target_in_ids[:, 0])
        table = self.input_table()
        table = None if table is None else tf.stop_gradient(table)

        def body(t, prev_ids, state, fed_ta):
            logits, new_state, _ = self.step(prev_ids, state, memory, memory_mask, input_table=table)
            state = same_shapes(new_state, state)
            chosen = self._choose(logits, target_in_ids[:, t + 1], teacher_forcing_p, sample, seed)
            return t + 1, chosen, state, fed_ta.write(t + 1, chosen)

        _, _, _, fed_ta = tf.while_loop(
            lambda t, *_: t < steps - 1, body, (tf.constant(0), target_in_ids[:, 0], state, fed_ta),
            maximum_iterations=tf.maximum(steps - 1, 0))
        return tf.transpose(fed_ta.stack(), [1, 0])

    @staticmethod
    def _choose(logits, truth, teacher_forcing_p, sample, seed):
        """The truth with probability ``teacher_forcing_p``, else the model's own token,
        shaped as ``truth`` (so a static batch size survives the decoding loop)."""
        if teacher_forcing_p is None:
            return truth
        if sample:
            own = tf.cast(keras.random.categorical(logits, 1, seed=seed)[:, 0], truth.dtype)
        else:
            own = tf.argmax(logits, axis=-1, output_type=truth.dtype)
        use_truth = keras.random.uniform(tf.shape(truth), seed=seed) < teacher_forcing_p
        return same_shapes(tf.where(use_truth, truth, own), truth)

    def _step_loop(self, target_in_ids, state, memory, memory_mask, teacher_forcing_p,
                   sample, seed, training):
        """The reference path: ``step`` once per position, differentiated through the loop."""
        steps = tf.shape(target_in_ids)[1]
        logits_ta = tf.TensorArray(tf.float32, size=steps, element_shape=[None, self.vocab_size])
        table = self.input_table()

        def body(t, prev_ids, state, logits_ta):
            logits, new_state, _ = self.step(prev_ids, state, memory, memory_mask, training, table)
            state = same_shapes(new_state, state)
            truth = target_in_ids[:, tf.minimum(t + 1, steps - 1)]
            chosen = self._choose(logits, truth, teacher_forcing_p, sample, seed)
            return t + 1, chosen, state, logits_ta.write(t, logits)

        _, _, _, logits_ta = tf.while_loop(
            lambda t, *_: t < steps, body, (tf.constant(0), target_in_ids[:, 0], state, logits_ta),
            maximum_iterations=steps)
        return tf.transpose(logits_ta.stack(), [1, 0, 2])

    def _attend(self, query, memory, memory_mask):
        """Context and weights for ``query [batch, (tq,) units]``."""
        if self.attention is not None:
            return self.attention.attend(query, memory["keys"], memory["values"], memory_mask)
        # Plain encoder–decoder: the context is the final encoder state; no weights.
        src_len = tf.shape(memory["values"])[1]
        if query.shape.rank == 2:
            return memory["final"], tf.zeros([tf.shape(query)[0], src_len])
        steps = tf.shape(query)[1]
        context = tf.tile(memory["final"][:, tf.newaxis, :], [1, steps, 1])
        return context, tf.zeros([tf.shape(query)[0], steps, src_len])

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size, embedding_dim=self.embedding.dim, units=self.units,
            cell=self.cell_type, num_layers=self.num_layers, attention=self.attention_score,
            attention_units=self.attention_units, combine=self.combiner.combine,
            input_feeding=self.input_feeding, dropout=self.dropout_rate,
            embedding_matrix=None, trainable_embedding=self.embedding.trainable,
            activation=self.activation, attention_timing=self.attention_timing)
        return config
