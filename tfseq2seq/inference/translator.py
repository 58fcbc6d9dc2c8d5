"""Text in, text out with a trained run: what ``translate``, ``evaluate``,
``plot-attention``, the demo and the dev metrics during training call.

It runs ``TextDecoder`` (the function the export's signatures run) in ``tf.function``,
with the run's ``TextPipeline`` and its config's ``decoding`` section as defaults, so its
outputs are the exported model's outputs for the same texts.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from tfseq2seq.inference.text_decoder import TEXT_SPEC, TextDecoder
from tfseq2seq.text.pipeline import TextPipeline
from tfseq2seq.util.progress import progress_bar


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
    """Decodes texts with a run's model, text pipeline and decoding options.

    Args:
        run: a ``tfseq2seq.run_dir.Run`` with its model loaded.
        overlong: ``"truncate"`` (default) or ``"reject"`` inputs over
            ``max_source_len`` (the run's ``data.max_source_len`` unless given).
        decoding: ``DecodingOptions`` (default: the run's ``config.decoding``).
    """

    def __init__(self, run, overlong="truncate", max_source_len=None, decoding=None):
        self.run, self.model = run, run.model
        self.pipeline = TextPipeline.from_run(run, overlong, max_source_len)
        self.decoding = (decoding or run.config.decoding).validate()
        self._functions = {}

    def translate(self, texts, beam_width=None, length_penalty=None, max_output_len=None,
                  batch_size=128, progress=False):
        """Translations of ``texts`` in order. ``beam_width`` ``None`` or 1: greedy; else
        beam search of that width. ``length_penalty`` and ``max_output_len`` default to
        the decoding options'."""
        texts = list(texts)
        beam = beam_width is not None and beam_width > 1
        decode = self._function(beam, self.decoding.replace(
            beam_width=beam_width if beam else None, length_penalty=length_penalty,
            max_output_len=max_output_len))
        results = []
        bar = progress_bar(len(texts), "decoding", enabled=progress)
        for start in range(0, len(texts), batch_size):
            batch = texts[start:start + batch_size]
            results.extend(_translations(batch, decode(tf.constant(batch, tf.string))))
            bar.update(len(batch))
        bar.close()
        return results

    def _function(self, beam, options):
        key = (beam, options.beam_width if beam else None, options.length_penalty if beam else None,
               options.max_output_len)
        if key not in self._functions:
            decoder = TextDecoder(self.model, self.pipeline, options)
            method = decoder.beam_search if beam else decoder.greedy
            self._functions[key] = tf.function(method, input_signature=[TEXT_SPEC])
        return self._functions[key]


def _translations(texts, outputs):
    out = {k: v.numpy() for k, v in outputs.items()}
    results = []
    for i, text in enumerate(texts):
        n = int(out["lengths"][i])
        source = [t.decode("utf-8") for t in out["source_tokens"][i] if t]
        results.append(Translation(
            text, out["text"][i].decode("utf-8"), source,
            [t.decode("utf-8") for t in out["tokens"][i, :n]], float(out["scores"][i]),
            out["attention"][i, :n, :len(source)]))
    return results
