"""Argument validation shared by layers and the model: one clear message per bad value."""


def require_positive_int(name, value):
    """Returns ``value`` if it is a positive int, else raises ``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
    return value


def require_nonnegative_int(name, value):
    """Returns ``value`` if it is an int >= 0, else raises ``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative integer, got {value!r}")
    return value


def require_choice(name, value, choices):
    """Returns ``value`` if it is one of ``choices``, else raises ``ValueError`` naming it."""
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {options}; got {value!r}")
    return value


def require_probability(name, value):
    """Returns ``value`` as float if it lies in [0, 1], else raises ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"`{name}` must be a number in [0, 1], got {value!r}")
    return float(value)


def require_nonnegative_number(name, value):
    """Returns ``value`` as float if it is a number >= 0, else raises ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"`{name}` must be a number >= 0, got {value!r}")
    return float(value)
