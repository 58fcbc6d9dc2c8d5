"""Keras layers: token embedding, recurrent cells, Luong attention, context combination."""

from tfseq2seq.layers.attention import LuongAttention
from tfseq2seq.layers.cells import ElmanCell, GRUCell, LSTMCell
from tfseq2seq.layers.combine import ContextCombiner
from tfseq2seq.layers.embedding import TokenEmbedding
from tfseq2seq.util.checks import require_choice

CELL_TYPES = {"elman": ElmanCell, "gru": GRUCell, "lstm": LSTMCell}


def make_cell(kind, units, activation="tanh", **kwargs):
    """A new cell of type ``kind`` (``"elman"``, ``"gru"`` or ``"lstm"``); ``activation``
    is the Elman cell's (GRU and LSTM have their gates' activations; only ``"tanh"``)."""
    require_choice("cell", kind, tuple(CELL_TYPES))
    if kind == "elman":
        return ElmanCell(units, activation=activation, **kwargs)
    if activation != "tanh":
        raise ValueError(f"`activation`={activation!r} is the elman cell's option; "
                         f"the {kind} cell takes only 'tanh'")
    return CELL_TYPES[kind](units, **kwargs)


__all__ = ["TokenEmbedding", "ElmanCell", "GRUCell", "LSTMCell", "LuongAttention",
           "ContextCombiner", "CELL_TYPES", "make_cell"]
