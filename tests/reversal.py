"""A synthetic task for learning tests: reverse a string of digits."""

import numpy as np

START, END, OFFSET = 1, 2, 3  # digit d has id d + OFFSET
VOCAB = 10 + OFFSET


def reversal_data(n, min_len, max_len, seed):
    """``(source, target_in, target_out)`` 0-padded int32 arrays for ``n`` random strings."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len + 1, size=n)
    source = np.zeros((n, max_len), np.int32)
    target_in = np.zeros((n, max_len + 1), np.int32)
    target_out = np.zeros((n, max_len + 1), np.int32)
    for i, length in enumerate(lengths):
        digits = rng.integers(0, 10, size=length) + OFFSET
        source[i, :length] = digits
        target_in[i, 0], target_in[i, 1:length + 1] = START, digits[::-1]
        target_out[i, :length], target_out[i, length] = digits[::-1], END
    return source, target_in, target_out


def exact_match(decoded, target_out):
    """Fraction of rows whose decoded ids (before ``<end>``) equal the reference."""
    hits = 0
    for ids, length, ref in zip(decoded["token_ids"], decoded["lengths"], target_out):
        ref = ref[: list(ref).index(END)]
        hits += int(length == len(ref) and np.array_equal(ids[:length], ref))
    return hits / len(target_out)
