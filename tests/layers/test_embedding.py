import numpy as np
import pytest
import tensorflow as tf

from tfseq2seq.layers.embedding import TokenEmbedding, load_word_vectors


def test_lookup_returns_rows_and_masks_padding():
    layer = TokenEmbedding(10, 4)
    ids = np.array([[3, 1, 0, 0], [9, 0, 0, 0]])
    out = layer(ids).numpy()
    matrix = layer.embeddings.numpy()
    np.testing.assert_array_equal(out[0, 0], matrix[3])
    np.testing.assert_array_equal(out[1, 0], matrix[9])
    np.testing.assert_array_equal(layer.compute_mask(ids).numpy(), ids != 0)


def test_initial_matrix_trainable_and_frozen():
    matrix = np.arange(12, dtype="float32").reshape(6, 2)
    frozen = TokenEmbedding(6, 2, initial_matrix=matrix, trainable=False)
    np.testing.assert_array_equal(frozen(np.array([[5]]))[0, 0], matrix[5])
    assert frozen.trainable_weights == [] and len(frozen.non_trainable_weights) == 1
    trainable = TokenEmbedding(6, 2, initial_matrix=matrix)
    trainable.build()
    assert len(trainable.trainable_weights) == 1
    with pytest.raises(ValueError, match=r"initial_matrix has shape \(6, 2\)"):
        TokenEmbedding(7, 2, initial_matrix=matrix)


def test_bad_ids_and_arguments():
    layer = TokenEmbedding(5, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="vocab_size"):
        layer(np.array([[1, 5]]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="negative"):
        layer(np.array([[-1]]))
    with pytest.raises(ValueError, match="integers"):
        layer(np.array([[1.0]], dtype="float32"))
    with pytest.raises(ValueError, match="vocab_size"):
        TokenEmbedding(0, 3)


def test_load_word_vectors(tmp_path):
    path = tmp_path / "vec.txt"
    path.write_text("2 3\ncat 1 2 3\n猫 4 5 6\n", encoding="utf-8")
    tokens = ["<pad>", "<start>", "<end>", "<unk>", "cat", "dog", "猫"]
    matrix, found = load_word_vectors(path, tokens, 3)
    assert found == 2 and matrix.shape == (7, 3)
    np.testing.assert_array_equal(matrix[4], [1, 2, 3])
    np.testing.assert_array_equal(matrix[6], [4, 5, 6])
    np.testing.assert_array_equal(matrix[0], 0)
    path.write_text("cat 1 2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="vec.txt:1"):
        load_word_vectors(path, tokens, 3)
