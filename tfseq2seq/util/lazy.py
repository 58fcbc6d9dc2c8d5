"""Package ``__init__`` re-exports imported on first use, so importing a package (for
its TensorFlow-free parts, or for ``--help``) does not import TensorFlow."""

import importlib


def lazy_exports(package, where):
    """A module ``__getattr__`` for ``package`` that imports ``name`` from
    ``package + "." + where[name]`` when first asked for it."""

    def __getattr__(name):
        if name in where:
            return getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


def names_by_module(table):
    """``{module: (name, ...)}`` -> ``{name: module}``."""
    return {name: module for module, names in table.items() for name in names}
