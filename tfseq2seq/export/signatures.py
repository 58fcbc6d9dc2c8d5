"""What a SavedModel for TensorFlow Serving holds: string in, string out, all in-graph.

Two signatures, same input and outputs:

- ``serving_default``: greedy decoding; ``beam_search``: beam search with the beam width
  and length penalty fixed at export time.
- input ``text``: string ``[batch]``.
- outputs: ``text`` string ``[batch]`` (detokenized), ``tokens`` string
  ``[batch, out_len]`` ("" after ``lengths``), ``token_ids`` int32 ``[batch, out_len]``
  (0 after ``lengths``, no ``<end>``), ``lengths`` int32 ``[batch]``, ``scores`` float32
  ``[batch]`` (sum of log-probabilities, ``<end>`` included), ``attention`` float32
  ``[batch, out_len, in_len]``, where ``in_len = max(1, longest tokenized input)``.

Odd inputs (no tokens, over-long, invalid UTF-8, unknown symbols) follow the rules of
``text.pipeline``, as on every other path.
"""

import tensorflow as tf

from tfseq2seq.inference.text_decoder import TEXT_SPEC, TextDecoder

SIGNATURES = ("serving_default", "beam_search")
OUTPUT_KEYS = ("text", "tokens", "token_ids", "lengths", "scores", "attention")


class ServingModule(tf.Module):
    """What gets saved: the model's variables, the text pipeline (tokenizers and lookup
    tables) and one ``tf.function`` per signature, each a ``TextDecoder`` method. The
    Keras model itself is not tracked (only its variables), so optimizer state and Keras
    metadata stay out of the SavedModel.

    Args:
        model: a ``Seq2Seq``; pipeline: its ``TextPipeline`` (file-backed vocabularies,
            which ``tf.saved_model.save`` copies into ``assets/``);
        options: ``DecodingOptions``; greedy_graph: see ``TextDecoder``.
    """

    def __init__(self, model, pipeline, options=None, greedy_graph=None):
        super().__init__(name="tfseq2seq_serving")
        # The tf.Variables behind the Keras variables: tracking Keras variables makes
        # tf.saved_model.save add a second copy of each, which the C++ loader (TF Serving)
        # restores while the signatures read the uninitialized originals
        # (keras-team/keras#20095 / tensorflow/serving#2250; test_capi_* catches this).
        self.model_variables = [_tf_variable(v) for v in model.variables]
        self.pipeline = pipeline
        self._decoder = TextDecoder(model, pipeline, options, greedy_graph)

    @tf.function(input_signature=[TEXT_SPEC])
    def greedy(self, text):
        return _serving_outputs(self._decoder.greedy(text))

    @tf.function(input_signature=[TEXT_SPEC])
    def beam_search(self, text):
        return _serving_outputs(self._decoder.beam_search(text))

    def signatures(self):
        return {"serving_default": self.greedy.get_concrete_function(),
                "beam_search": self.beam_search.get_concrete_function()}


def _serving_outputs(outputs):
    return {key: outputs[key] for key in OUTPUT_KEYS}


def _tf_variable(variable):
    if isinstance(variable, tf.Variable):
        return variable
    inner = getattr(variable, "_value", None)  # keras.Variable on the TensorFlow backend
    if not isinstance(inner, tf.Variable):
        raise TypeError(f"cannot export variable {variable!r}: no tf.Variable behind it")
    return inner
