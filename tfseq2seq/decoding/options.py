"""Decoding options and their defaults: the one place they are written.

``DecodingOptions`` is the ``decoding`` section of a run's config; every command
(``evaluate``, ``translate``, ``plot-attention``, ``export``, ``demo``), the dev metrics
during training and ``Seq2Seq.beam_search`` take their defaults from it, and CLI flags
override single fields. No TensorFlow here.
"""

import dataclasses


@dataclasses.dataclass
class DecodingOptions:
    beam_width: int = 5                 # beam search (the ``beam_search`` signature)
    length_penalty: float = 0.6         # GNMT alpha
    max_output_len: int | None = None   # None: default_max_length(source length)

    def validate(self):
        """Returns ``self`` after checking every field (the error names the field)."""
        from tfseq2seq.util.checks import require_nonnegative_number, require_positive_int

        require_positive_int("decoding.beam_width", self.beam_width)
        require_nonnegative_number("decoding.length_penalty", self.length_penalty)
        if self.max_output_len is not None:
            require_positive_int("decoding.max_output_len", self.max_output_len)
        return self

    def replace(self, **changes):
        """A copy with the fields in ``changes`` that are not ``None`` replaced."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def default_max_length(src_len):
    """Default output limit for sources of length ``src_len`` (an int or a scalar tensor,
    so graph code uses it too): ``2 * src_len + 10``."""
    return 2 * src_len + 10
