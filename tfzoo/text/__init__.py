"""The text generator, whole: the byte tokenizer, the Transformer (model.py) and generation with a key/value cache."""
from tfzoo.text import task  # noqa: F401 (registers the language_model task)
from tfzoo.text.generation import generate, generation_functions

__all__ = ["generate", "generation_functions"]
