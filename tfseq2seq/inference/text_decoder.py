"""Text in, decoded text out: the one function that the export's signatures and
``Translator`` (translate, evaluate, plot-attention, the dev metrics) all run.

``TextDecoder.greedy(text)`` / ``.beam_search(text)``: string ``[batch]`` -> the output
dict of ``TextPipeline.outputs`` plus ``source_tokens`` (string ``[batch, in_len]``, ""
after each row's tokens; not a serving output). Graph-compatible TF ops only: eager
callers wrap the methods in ``tf.function`` exactly as the export does.
"""

import tensorflow as tf

from tfseq2seq.decoding.options import DecodingOptions, default_max_length

TEXT_SPEC = tf.TensorSpec([None], tf.string, name="text")


class TextDecoder:
    """A model, its text pipeline and decoding options.

    Args:
        model: a ``Seq2Seq``.
        pipeline: the run's ``TextPipeline``.
        options: ``DecodingOptions`` (beam width and length penalty of ``beam_search``,
            the output limit of both).
        greedy_graph: replaces ``model.greedy_graph`` (the XLA export passes its compiled
            variant; same arguments and outputs).
    """

    def __init__(self, model, pipeline, options=None, greedy_graph=None):
        self.model, self.pipeline = model, pipeline
        self.options = (options or DecodingOptions()).validate()
        self._greedy_graph = greedy_graph or model.greedy_graph

    def greedy(self, text):
        return self._decode(text, self._greedy_graph)

    def beam_search(self, text):
        width, alpha = self.options.beam_width, float(self.options.length_penalty)
        return self._decode(text, lambda ids, limit: self.model.beam_graph(ids, limit, width, alpha))

    def _decode(self, text, decode):
        tokens = self.pipeline.source_tokens(text)
        source_ids, counts = self.pipeline.source_ids_of(tokens)
        limit = self.options.max_output_len
        max_length = (tf.constant(limit, tf.int32) if limit is not None
                      else default_max_length(tf.shape(source_ids)[1]))
        outputs = self.pipeline.outputs(decode(source_ids, max_length), counts)
        outputs["source_tokens"] = tokens.to_tensor("", shape=tf.shape(source_ids))
        return outputs
