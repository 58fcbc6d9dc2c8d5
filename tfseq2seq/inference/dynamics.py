"""Recurrent dynamics of a trained model, per source position: the size of the
encoder's hidden state ``‖h_t‖`` and of the loss gradient reaching each input
``‖∂L/∂x_t‖`` (through attention and back through time) — what issue 15's "why tanh?"
plots for bounded and unbounded activations.

``recurrent_norms(model, source_ids, target_in_ids, target_out_ids)`` runs the encoder's
layers like ``Encoder.call`` (without the input-table shortcut, so that the embedded
inputs ``x_t`` exist as a tensor to differentiate), the teacher-forced decoder and the
model's loss, and returns the per-position means over the rows where that position is
not padding.
"""

import numpy as np
import tensorflow as tf

from tfseq2seq.losses import MaskedCrossEntropy


def recurrent_norms(model, source_ids, target_in_ids, target_out_ids):
    """``{"hidden_norm": [src_len], "grad_norm": [src_len], "loss": float}`` (numpy)."""
    source_ids = tf.convert_to_tensor(source_ids, tf.int32)
    encoder, decoder = model.encoder, model.decoder
    mask = encoder.embedding.compute_mask(source_ids)
    with tf.GradientTape() as tape:
        x = tf.gather(encoder.embedding.embeddings, source_ids)
        tape.watch(x)
        outputs, states = x, []
        for i in range(encoder.num_layers):
            outputs, state = encoder._run_layer(i, outputs, mask, training=False)
            states.append(state)
        memory = decoder.prepare_memory(outputs, states)
        logits = decoder.teacher_forced(tf.convert_to_tensor(target_in_ids, tf.int32),
                                        decoder.initial_state(states), memory, mask)
        loss = MaskedCrossEntropy()(tf.convert_to_tensor(target_out_ids), logits)
    grads = tape.gradient(loss, x)
    valid = tf.cast(mask, tf.float32)
    count = tf.maximum(tf.reduce_sum(valid, axis=0), 1.0)

    def per_position(t):
        return (tf.reduce_sum(tf.norm(t, axis=-1) * valid, axis=0) / count).numpy()

    return {"hidden_norm": per_position(outputs), "grad_norm": per_position(grads),
            "loss": float(np.asarray(loss))}


def with_redrawn_embeddings(model, sides=("source", "target"), seed=0):
    """A copy of ``model`` whose embedding matrices (of ``sides``) are drawn anew from
    their initializer, every other weight as trained: the note's claim that decoding with
    another embedding matrix than the trained one gives gibberish, made testable. The
    input tables of small vocabularies are computed from the matrix at each call, so
    they follow."""
    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    layers = {"source": copy.encoder.embedding, "target": copy.decoder.embedding}
    for offset, side in enumerate(sides):
        if side not in layers:
            raise ValueError(f"`sides` holds {side!r}; choose from {sorted(layers)}")
        embedding = layers[side]
        initializer = type(embedding.initializer).from_config(
            {**embedding.initializer.get_config(), "seed": seed + offset})
        embedding.embeddings.assign(initializer(embedding.embeddings.shape))
    return copy
