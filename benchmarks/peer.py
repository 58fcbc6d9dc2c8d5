"""The peer: what a user would hand-write with Keras built-ins (issue 5).

``Embedding(mask_zero=True)`` → ``GRU(return_sequences, return_state)`` encoder →
``GRU`` decoder started from the encoder state, teacher-forced →
``keras.layers.Attention()`` (dot) over the encoder outputs → ``Dense(units, "tanh")``
on ``[decoder; context]`` → ``Dense(vocab)``; Adam; sparse cross-entropy ignoring
padding. Decoding steps the same layers one token at a time in a ``tf.function``
greedy loop (strings in, strings out, like the exported signature).

``copy_from_project`` loads a tfseq2seq ``Seq2Seq(attention="dot", combine="concat")``'s
weights into the peer: the two then compute the same function, so decoding runs the
same number of steps on both sides.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers

START_ID, END_ID = 1, 2


class Peer:
    """The layers, the teacher-forced training model, and the greedy decoder."""

    def __init__(self, source_vocab_size, target_vocab_size, embedding_dim=64, units=256):
        self.units = units
        self.src_emb = layers.Embedding(source_vocab_size, embedding_dim, mask_zero=True)
        self.enc_gru = layers.GRU(units, return_sequences=True, return_state=True)
        self.tgt_emb = layers.Embedding(target_vocab_size, embedding_dim, mask_zero=True)
        self.dec_gru = layers.GRU(units, return_sequences=True, return_state=True)
        self.attention = layers.Attention()
        self.combine = layers.Dense(units, activation="tanh")
        self.logits = layers.Dense(target_vocab_size)
        src = keras.Input((None,), dtype="int32", name="source_ids")
        tgt = keras.Input((None,), dtype="int32", name="target_in_ids")
        enc_out, enc_state = self.enc_gru(self.src_emb(src))
        dec_out, _ = self.dec_gru(self.tgt_emb(tgt), initial_state=[enc_state])
        context = self.attention([dec_out, enc_out])
        out = self.logits(self.combine(layers.Concatenate()([dec_out, context])))
        self.model = keras.Model([src, tgt], out)

    def compile(self, jit_compile=False):
        self.model.compile(
            optimizer=keras.optimizers.Adam(),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
            jit_compile=jit_compile)

    def _step(self, prev_ids, state, enc_out, enc_mask):
        x = self.tgt_emb(prev_ids[:, tf.newaxis])
        out, state = self.dec_gru(x, initial_state=[state])
        context = self.attention([out, enc_out], mask=[None, enc_mask])
        logits = self.logits(self.combine(tf.concat([out, context], axis=-1)))
        return logits[:, 0, :], state

    def greedy_function(self, source_tokens, target_tokens):
        """A ``tf.function`` string ``[batch]`` → phoneme string ``[batch]`` (greedy)."""
        src_table = _table(source_tokens, tf.string, tf.int64, 3)
        tgt_table = _table(target_tokens, tf.int64, tf.string, "")

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def translate(words):
            chars = tf.strings.unicode_split(words, "UTF-8")
            ids = tf.cast(tf.ragged.map_flat_values(src_table.lookup, chars), tf.int32).to_tensor(0)
            enc_mask = tf.not_equal(ids, 0)
            enc_out, state = self.enc_gru(self.src_emb(ids), mask=enc_mask)
            batch, max_len = tf.shape(ids)[0], 2 * tf.shape(ids)[1] + 10
            prev = tf.fill([batch], START_ID)
            done = tf.zeros([batch], tf.bool)
            outputs = tf.TensorArray(tf.int32, size=0, dynamic_size=True)
            for t in tf.range(max_len):
                logits, state = self._step(prev, state, enc_out, enc_mask)
                prev = tf.where(done, 0, tf.argmax(logits, axis=-1, output_type=tf.int32))
                outputs = outputs.write(t, prev)
                done = done | tf.equal(prev, END_ID)
                if tf.reduce_all(done):
                    break
            out_ids = tf.transpose(outputs.stack())
            keep = out_ids > END_ID  # drops <pad>, <start> and <end>
            tokens = tgt_table.lookup(tf.cast(tf.ragged.boolean_mask(out_ids, keep), tf.int64))
            return tf.strings.reduce_join(tokens, axis=-1, separator=" ")

        return translate

    def copy_from_project(self, model):
        """Loads a ``Seq2Seq(cell="gru", attention="dot", combine="concat")``'s weights."""
        enc, dec = model.encoder, model.decoder
        cell_e, cell_d = enc.forward_cells[0], dec.cells[0]
        self.src_emb.set_weights([enc.embedding.embeddings.numpy()])
        self.enc_gru.set_weights([w.numpy() for w in (cell_e.kernel, cell_e.recurrent_kernel, cell_e.bias)])
        self.tgt_emb.set_weights([dec.embedding.embeddings.numpy()])
        self.dec_gru.set_weights([w.numpy() for w in (cell_d.kernel, cell_d.recurrent_kernel, cell_d.bias)])
        kernel = dec.combiner.kernel.numpy()  # rows: [context; hidden]; the peer's: [hidden; context]
        u = self.units
        self.combine.set_weights([np.concatenate([kernel[u:], kernel[:u]]), np.zeros(u, np.float32)])
        self.logits.set_weights([w.numpy() for w in dec.output_layer.weights])


def _table(tokens, key_dtype, value_dtype, default):
    ids = np.arange(len(tokens), dtype=np.int64)
    keys, values = (tf.constant(list(tokens)), ids) if key_dtype == tf.string else (ids, tf.constant(list(tokens)))
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values, key_dtype, value_dtype), default)
