"""The text generator, whole: the byte tokenizer, the Transformer (model.py) and generation with a key/value cache.

`generate` and `generation_functions` are imported on first use (PEP 562): `tfzoo.text.limits` and
`tfzoo.text.vocabulary` are read without importing TensorFlow. The language_model task registers when
`tfzoo.text.task` is imported, which `tfzoo.text.model` (the registered `text_generator`) does."""
from __future__ import annotations

from tfzoo.lazy import lazy_names

__all__ = ["generate", "generation_functions"]
__getattr__, __dir__ = lazy_names(__name__, {name: "tfzoo.text.generation" for name in __all__})
