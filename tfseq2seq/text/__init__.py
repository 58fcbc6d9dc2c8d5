"""Text: vocabularies (``vocab``), in-graph tokenizers (``tokenizers``), WordPiece
vocabulary learning (``wordpiece``) and the one text path (``pipeline.TextPipeline``).

Vocabularies need no TensorFlow; the other names are imported on first use, so
``from tfseq2seq.text import Vocabulary`` (e.g. to write a vocabulary file) does not
load TensorFlow.
"""

from tfseq2seq.text.vocab import (  # noqa: F401
                                  END,
                                  END_ID,
                                  PAD,
                                  PAD_ID,
                                  RESERVED_TOKENS,
                                  START,
                                  START_ID,
                                  UNK,
                                  UNK_ID,
                                  Vocabulary,
)
from tfseq2seq.util.files import write_text_atomic  # noqa: F401
from tfseq2seq.util.lazy import lazy_exports, names_by_module

__getattr__ = lazy_exports(__name__, names_by_module({
    "tokenizers": ("Tokenizer", "CharTokenizer", "WhitespaceTokenizer", "WordpieceTokenizer",
                   "TOKENIZERS", "make_tokenizer", "split_words", "SPACE_SYMBOL",
                   "WHITESPACE_RE", "NORMALIZATIONS"),
    "pipeline": ("TextPipeline", "OVERLONG", "lookup_ids", "decode_ids"),
    "wordpiece": ("learn_wordpiece_vocab",),
}))
