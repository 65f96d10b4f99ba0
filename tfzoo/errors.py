"""The error every data check raises, in a module of its own so that any part of tfzoo can raise it."""
from __future__ import annotations


class DataError(ValueError):
    """Bad or missing input data. The message names the problem and how to fix it."""
