"""Token embedding: a ``[vocab_size, dim]`` matrix read with ``tf.nn.embedding_lookup``."""

import keras
import numpy as np
import tensorflow as tf

from tfseq2seq.util.checks import require_positive_int

PAD_ID = 0


@keras.saving.register_keras_serializable(package="tfseq2seq")
class TokenEmbedding(keras.layers.Layer):
    """Maps token ids to vectors; id 0 is padding and produces a ``False`` mask.

    Args:
        vocab_size: number of rows of the matrix (ids must be in ``[0, vocab_size)``).
        dim: embedding size.
        initial_matrix: optional ``[vocab_size, dim]`` array (e.g. pretrained word
            vectors) used to initialise the matrix instead of ``initializer``.
        trainable: ``False`` freezes the matrix (common with pretrained vectors).
        initializer: Keras initializer used when ``initial_matrix`` is ``None``.

    Call:
        ids: int ``[batch, time]`` or ``[batch]``.
        returns: float ``ids.shape + [dim]``.
    """

    def __init__(self, vocab_size, dim, initial_matrix=None, initializer="uniform", **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = require_positive_int("vocab_size", vocab_size)
        self.dim = require_positive_int("dim", dim)
        if initial_matrix is not None:
            initial_matrix = np.asarray(initial_matrix, dtype="float32")
            if initial_matrix.shape != (self.vocab_size, self.dim):
                raise ValueError(
                    f"initial_matrix has shape {initial_matrix.shape}, expected "
                    f"(vocab_size, dim) = ({self.vocab_size}, {self.dim})"
                )
        self.initial_matrix = initial_matrix
        self.initializer = keras.initializers.get(initializer)
        self.supports_masking = True

    def build(self, input_shape=None):
        init = self.initializer
        if self.initial_matrix is not None:
            init = keras.initializers.Constant(self.initial_matrix)
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.vocab_size, self.dim), initializer=init,
            trainable=self.trainable)
        self.built = True

    def call(self, ids):
        return tf.nn.embedding_lookup(self.embeddings, checked_ids(ids, self.vocab_size, self.name))

    def compute_mask(self, ids, mask=None):
        return tf.not_equal(ids, PAD_ID)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.dim,)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size, dim=self.dim,
            # The pretrained matrix lives in the weights file; the config only
            # records the initializer so a reloaded model gets the same shapes.
            initial_matrix=None,
            initializer=keras.initializers.serialize(self.initializer),
        )
        return config


# Vocabularies up to this size (characters, phonemes, small subword sets) feed the first
# recurrent layer from a [vocab, G*units] table of projected embeddings: computing the
# table costs vocab matmul rows per call, which a batch of training tokens or a decode
# loop outweighs; larger vocabularies keep embedding + matmul per token.
INPUT_TABLE_MAX_VOCAB = 512


def use_input_table(embedding, dropout_active=False):
    """Whether the first recurrent layer reads ``embedding`` through an input table
    (not with dropout on the embeddings: the table holds the undropped rows)."""
    return embedding.vocab_size <= INPUT_TABLE_MAX_VOCAB and not dropout_active


def checked_ids(ids, vocab_size, name):
    """int32 ``ids``, asserted to lie in ``[0, vocab_size)``: eagerly this raises right
    here; in a graph the returned tensor depends on the assertion ops."""
    ids = tf.convert_to_tensor(ids)
    if not ids.dtype.is_integer:
        raise ValueError(f"{name}: token ids must be integers, got dtype {ids.dtype.name}")
    ids = tf.cast(ids, tf.int32)
    checks = [
        tf.debugging.assert_less(ids, vocab_size, message=f"{name}: token id >= vocab_size ({vocab_size})"),
        tf.debugging.assert_non_negative(ids, message=f"{name}: negative token id"),
    ]
    with tf.control_dependencies([c for c in checks if c is not None]):
        return tf.identity(ids)


def load_word_vectors(path, vocabulary_tokens, dim, seed=0):
    """Reads word2vec/GloVe text vectors into a ``[len(vocabulary_tokens), dim]`` matrix.

    Lines are ``token v1 v2 ...``; a word2vec header line (``count dim``) is skipped.
    Tokens missing from the file get small random vectors; row 0 (padding) is zero.
    Returns ``(matrix, found_count)``.
    """
    index = {tok: i for i, tok in enumerate(vocabulary_tokens)}
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, 0.1, size=(len(vocabulary_tokens), dim)).astype("float32")
    matrix[PAD_ID] = 0.0
    found = 0
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.rstrip("\n").split(" ")
            if lineno == 1 and len(parts) == 2:
                continue
            if parts[0] not in index:
                continue
            if len(parts) - 1 != dim:
                raise ValueError(f"{path}:{lineno}: vector has {len(parts) - 1} values, expected {dim}")
            matrix[index[parts[0]]] = np.asarray(parts[1:], dtype="float32")
            found += 1
    return matrix, found
