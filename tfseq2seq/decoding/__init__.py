"""Decode loops, one per strategy (``greedy``, ``beam``), driven by a model-agnostic step
function, with their shared helpers (``loops``) and the decoding options (``options``).

The loops know nothing about the model. They call::

    step_fn(prev_ids, state) -> (logits, new_state, attention)
      prev_ids:  int32 [n]               previous output ids (first call: ``start_id``)
      state:     nested dict/list/tuple of tensors, each with leading dim n
      logits:    [n, vocab]              (cast to float32; vocab >= 2)
      attention: [n, src_len]            attention weights of this step

``n`` is the batch size for greedy decoding and ``batch * beam_width`` for beam search.
The memory (encoder outputs) is closed over by ``step_fn``; for beam search the caller
tiles it with :func:`tile_beams`, while ``initial_state`` is always given per example
(leading dim ``batch_size``) and tiled by :func:`beam_search` itself. Greedy decoding can
instead take the memory as ``constants`` (``step_fn(prev_ids, state, constants)``), which
lets it drop the rows that have ended (``compact_fraction``).

``batch_size``, ``src_len`` and ``max_length`` may be Python ints or scalar int32 tensors;
everything is plain TF ops inside ``tf.while_loop``, so it runs eagerly, in
``tf.function`` and in SavedModel signatures with unknown batch size and source length.
Both loops return a dict with (at least) these keys:

- ``token_ids`` int32 [batch, out_len]: generated ids, excluding ``<end>``; 0 from
  ``lengths`` on.
- ``lengths`` int32 [batch]: tokens before ``<end>`` (``max_length`` if never emitted).
- ``scores`` float32 [batch]: sum of the log-softmax probabilities of the emitted tokens,
  including the ``<end>`` token's.
- ``normalized_scores`` float32 [batch]: ``scores`` / length penalty (greedy: ``scores``).
- ``attention`` float32 [batch, out_len, src_len]: the attention row of the step that
  emitted each kept token (no row for ``<end>``); rows from ``lengths`` on are 0.

``out_len = max(lengths)`` (0 for an empty batch): trailing all-padding columns are cut.
The loop runs until every sequence has emitted ``<end>`` (beam search: every example is
done) or for ``max_length`` steps, whichever is first. Ended sequences never change again,
although ``step_fn`` keeps being called for them (greedy with ``compact_fraction``: until
the end of the phase in which they ended).

Buffers are preallocated time-major ``[max_length, n, ...]`` tensors written one step
at a time with ``tf.tensor_scatter_nd_update`` (cost O(n * src_len) per step, not
O(max_length * ...) like a one-hot write), and beam search reorders them with one
``tf.gather`` on the beam axis. This keeps the loop free of TensorArrays and Python state.
"""

from tfseq2seq.util.lazy import lazy_exports, names_by_module

__getattr__ = lazy_exports(__name__, names_by_module({  # the options need no TensorFlow
    "greedy": ("greedy_decode",), "beam": ("beam_search",),
    "loops": ("tile_beams", "gnmt_length_penalty"),
    "options": ("DecodingOptions", "default_max_length"),
}))
