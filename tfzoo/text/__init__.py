"""The text generator, whole: the byte tokenizer, the Transformer (model.py) and generation with a key/value cache.

`generate` and `generation_functions` are imported on first use (PEP 562): `tfzoo.text.limits` and
`tfzoo.text.vocabulary` are read without importing TensorFlow. The language_model task registers when
`tfzoo.text.task` is imported, which `tfzoo.text.model` (the registered `text_generator`) does."""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["generate", "generation_functions"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'tfzoo.text' has no attribute {name!r}")
    value = getattr(importlib.import_module("tfzoo.text.generation"), name)
    globals()[name] = value
    return value
