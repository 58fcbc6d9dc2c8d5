"""Text in, text out with a trained model (the Python-side counterpart of the export)."""

import dataclasses

import numpy as np
import tensorflow as tf

from tfseq2seq.model import default_max_length
from tfseq2seq.progress import progress_bar
from tfseq2seq.text import lookup_ids


@dataclasses.dataclass
class Translation:
    """One decoded input: the source and output tokens and the attention between them."""

    source: str
    text: str
    source_tokens: list
    tokens: list
    score: float
    attention: np.ndarray  # [len(tokens), len(source_tokens)]


class Translator:
    """Tokenizes with the run's in-graph tokenizers and vocabularies, decodes, detokenizes.

    Args:
        run: a ``tfseq2seq.run_dir.Run`` with its model loaded.
        max_source_len: inputs with more tokens are truncated (default: the config's).
    """

    def __init__(self, run, max_source_len=None):
        self.run = run
        self.model = run.model
        self.max_source_len = max_source_len or run.config.data.max_source_len
        self._source_table = run.source_vocab.token_to_id_table()

    def encode(self, texts):
        """``(ids [batch, src_len] int32, source token lists)`` for a list of strings."""
        tokens = self.run.source_tokenizer.tokenize(tf.constant(list(texts), tf.string))
        if self.max_source_len:
            tokens = tokens[:, : self.max_source_len]
        ids = lookup_ids(tokens, self._source_table)
        token_lists = [[t.decode("utf-8") for t in row] for row in tokens.to_list()]
        return ids.to_tensor(0).numpy(), token_lists

    def translate(self, texts, beam_width=None, length_penalty=0.6, max_length=None,
                  batch_size=128, progress=False):
        """Translations of ``texts`` in order; ``beam_width`` None or 1 means greedy."""
        texts = list(texts)
        results = []
        bar = progress_bar(len(texts), "decoding", enabled=progress)
        for start in range(0, len(texts), batch_size):
            results.extend(self._batch(texts[start:start + batch_size], beam_width,
                                       length_penalty, max_length))
            bar.update(min(batch_size, len(texts) - start))
        bar.close()
        return results

    def _batch(self, texts, beam_width, length_penalty, max_length):
        ids, source_tokens = self.encode(texts)
        limit = max_length or default_max_length(ids.shape[1])
        if beam_width and beam_width > 1:
            out = self.model.beam_search(ids, beam_width, length_penalty, max_length=limit)
        else:
            out = self.model.greedy_decode(ids, max_length=limit)
        vocab = self.run.target_vocab
        token_lists = [vocab.tokens(row[:n]) for row, n in zip(out["token_ids"], out["lengths"])]
        flat = [t for toks in token_lists for t in toks]
        ragged = tf.RaggedTensor.from_row_lengths(
            tf.constant(flat, tf.string, shape=[len(flat)]), [len(t) for t in token_lists])
        detok = self.run.target_tokenizer.detokenize(ragged)
        return [Translation(text, out_text.decode("utf-8"), src, toks, float(score),
                            out["attention"][i, : len(toks), : len(src)])
                for i, (text, out_text, src, toks, score) in enumerate(zip(
                    texts, detok.numpy(), source_tokens, token_lists, out["scores"]))]
