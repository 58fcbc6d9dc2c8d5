"""Ensembles: several trained ``Seq2Seq`` models decoded together as one model.

At every decoding step each member runs its own ``step`` on its own encoder memory and
state; the ensemble's next-token scores are the mean of the members' log-probabilities
(renormalized by the decode loop's ``log_softmax``) and its attention the mean of theirs.
An ``Ensemble`` has what the decode loops and the export need (``greedy_graph``,
``beam_graph``, ``variables``, the vocabulary sizes), so it exports as ONE SavedModel with
the usual two signatures. Members must share their vocabularies (same run data).
"""

import tensorflow as tf

from tfseq2seq.decoding.beam import beam_search
from tfseq2seq.decoding.greedy import greedy_decode
from tfseq2seq.decoding.loops import tile_beams
from tfseq2seq.model import COMPACT_FRACTION


class Ensemble:
    """Decodes with the mean log-probabilities of ``models`` (two or more ``Seq2Seq``)."""

    def __init__(self, models):
        self.models = list(models)
        if len(self.models) < 2:
            raise ValueError(f"an ensemble needs at least 2 models, got {len(self.models)}")
        first = self.models[0]
        for i, m in enumerate(self.models[1:], start=1):
            for name in ("source_vocab_size", "target_vocab_size", "start_id", "end_id"):
                if getattr(m, name) != getattr(first, name):
                    raise ValueError(f"model {i} has {name}={getattr(m, name)}, model 0 "
                                     f"{getattr(first, name)}: members must share vocabularies")
        self.source_vocab_size, self.target_vocab_size = first.source_vocab_size, first.target_vocab_size
        self.start_id, self.end_id = first.start_id, first.end_id

    @property
    def variables(self):
        return [v for m in self.models for v in m.variables]

    def encode(self, source_ids):
        """Each member's ``(memory, mask, state)``, as three tuples."""
        return tuple(zip(*(m.encode(source_ids) for m in self.models)))

    def step_fn(self, memories=None, masks=None):
        """The ensemble step, in the two forms of ``Seq2Seq.step_fn``: with the memories
        closed over, or (``memories=None``) taking ``((memory, mask), ...)`` as constants."""
        if memories is None:
            steps = [m.step_fn() for m in self.models]

            def step(ids, states, constants):
                return self._mean(ids, states, [lambda i, s, k=k, c=c: steps[k](i, s, c)
                                                for k, c in enumerate(constants)])
        else:
            closed = [m.step_fn(mem, mask) for m, mem, mask in zip(self.models, memories, masks)]

            def step(ids, states):
                return self._mean(ids, states, closed)

        return step

    @staticmethod
    def _mean(ids, states, steps):
        outs = [step(ids, state) for step, state in zip(steps, states)]
        log_probs = tf.add_n([tf.nn.log_softmax(tf.cast(o[0], tf.float32)) for o in outs])
        attention = tf.add_n([tf.cast(o[2], tf.float32) for o in outs])
        n = float(len(outs))
        return log_probs / n, tuple(o[1] for o in outs), attention / n

    def greedy_graph(self, source_ids, max_length):
        """Greedy decoding (graph ops), dropping ended rows like ``Seq2Seq.greedy_graph``."""
        memories, masks, states = self.encode(source_ids)
        return greedy_decode(
            self.step_fn(), states, tf.shape(source_ids)[0], tf.shape(source_ids)[1],
            max_length, self.start_id, self.end_id, constants=tuple(zip(memories, masks)),
            compact_fraction=COMPACT_FRACTION)

    def beam_graph(self, source_ids, max_length, beam_width, length_penalty):
        """Beam search (graph ops) over the ensemble's scores."""
        memories, masks, states = self.encode(source_ids)
        tiled = [tile_beams((mem, mask), beam_width) for mem, mask in zip(memories, masks)]
        return beam_search(
            self.step_fn([t[0] for t in tiled], [t[1] for t in tiled]), states,
            tf.shape(source_ids)[0], tf.shape(source_ids)[1], max_length, beam_width,
            length_penalty, self.start_id, self.end_id)
