"""A synthetic corpus where a bounded hidden state matters: reversing long sequences.

``reverse``: the source is a string of ``min_len``–``max_len`` symbols drawn uniformly
from ``alphabet`` (default ``a``–``j``), the reference the same symbols reversed and
space-separated (so a char source tokenizer and a whitespace target tokenizer fit, and
PER is the symbol error rate). Generated from ``seed``, so every run sees the same splits;
no source occurs in two splits. Issue 15's "why tanh?" trains on it.
"""

import random

from tfseq2seq.data.corpora import Corpus, Example

ALPHABET = "abcdefghij"


def load_reverse(train=20000, dev=1000, test=1000, min_len=30, max_len=60,
                 alphabet=ALPHABET, seed=0):
    """The ``reverse`` corpus (see the module docstring)."""
    for name, value in (("train", train), ("dev", dev), ("test", test), ("min_len", min_len)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"reverse corpus: `{name}` must be a positive integer, got {value!r}")
    if not isinstance(max_len, int) or max_len < min_len:
        raise ValueError(f"reverse corpus: `max_len`={max_len!r} must be >= min_len={min_len}")
    if len(set(alphabet)) < 2 or any(ch.isspace() for ch in alphabet):
        raise ValueError(f"reverse corpus: `alphabet` needs 2+ distinct non-space symbols, "
                         f"got {alphabet!r}")
    rng, seen, splits = random.Random(seed), set(), {}
    for split, count in (("train", train), ("dev", dev), ("test", test)):
        examples = []
        while len(examples) < count:
            source = "".join(rng.choice(alphabet) for _ in range(rng.randint(min_len, max_len)))
            if source not in seen:
                seen.add(source)
                examples.append(Example(source, (" ".join(reversed(source)),)))
        splits[split] = examples
    return Corpus(name="reverse", splits=splits)
