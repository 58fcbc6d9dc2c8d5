"""Keras layers: token embedding, recurrent cells, Luong attention, context combination."""

from tfseq2seq.layers.attention import LuongAttention
from tfseq2seq.layers.cells import ElmanCell, GRUCell, LSTMCell
from tfseq2seq.layers.combine import ContextCombiner
from tfseq2seq.layers.embedding import TokenEmbedding
from tfseq2seq.util.checks import require_choice

CELL_TYPES = {"elman": ElmanCell, "gru": GRUCell, "lstm": LSTMCell}


def make_cell(kind, units, **kwargs):
    """A new cell of type ``kind`` (``"elman"``, ``"gru"`` or ``"lstm"``)."""
    require_choice("cell", kind, tuple(CELL_TYPES))
    return CELL_TYPES[kind](units, **kwargs)


__all__ = ["TokenEmbedding", "ElmanCell", "GRUCell", "LSTMCell", "LuongAttention",
           "ContextCombiner", "CELL_TYPES", "make_cell"]
