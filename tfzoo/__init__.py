"""tfzoo: classic Keras models, trained with tf.distribute and exported for TensorFlow Serving."""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import types
from typing import Any

from tfzoo.lazy import lazy_names

__version__ = "0.1.0"

# The Python API, imported on first use (PEP 562): `import tfzoo` alone loads no TensorFlow, so that `tfzoo --help`
# and `tfzoo predict` over REST start in a fraction of a second.
_API = {
    "export": "tfzoo.export", "export_model": "tfzoo.export", "validate": "tfzoo.export",
    "ModelSpec": "tfzoo.registry", "create_model": "tfzoo.registry", "get_spec": "tfzoo.registry",
    "list_models": "tfzoo.registry", "load_builtin_models": "tfzoo.registry", "register": "tfzoo.registry",
    "TrainResult": "tfzoo.training.trainer", "evaluate": "tfzoo.training.trainer", "train": "tfzoo.training.trainer",
}

__all__ = ["ModelSpec", "TrainResult", "create_model", "evaluate", "export", "export_model", "get_spec", "list_models",
           "register", "train", "validate"]


__getattr__, __dir__ = lazy_names(__name__, _API)


class _Package(types.ModuleType):
    """`tfzoo.export` is the function, as the API says, although a subpackage has that name too: the import
    system sets a package's subpackages as its attributes, which here would hide the function."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


class _BuiltinModelsWithKeras(importlib.abc.MetaPathFinder):
    """Registers the built-in models (and their Keras classes) once Keras is imported, so that after `import tfzoo`
    `keras.saving.load_model` reads a tfzoo model.keras, as it did when `import tfzoo` loaded them.

    It waits for the import that brought Keras in to finish when that was a tfzoo module's: the built-in modules
    import tfzoo modules, which must be complete by then (tfzoo.text.model needs the task tfzoo.text.task adds)."""

    def __init__(self) -> None:
        self.depth = 0  # tfzoo and Keras modules being executed, one inside the other

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name != "keras" and not name.startswith("tfzoo."):
            return None
        spec = next((spec for finder in sys.meta_path if finder is not self and hasattr(finder, "find_spec")
                     for spec in [finder.find_spec(name, path, target)] if spec is not None), None)
        if spec is None or spec.loader is None:
            return spec
        loader_exec = spec.loader.exec_module

        def exec_module(module: types.ModuleType) -> None:
            self.depth += 1
            try:
                loader_exec(module)
            finally:
                self.depth -= 1
            if self.depth == 0 and "keras" in sys.modules and self in sys.meta_path:
                sys.meta_path.remove(self)  # once
                __getattr__("load_builtin_models")()

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if os.environ.get("TFZOO_VERBOSE") == "0":  # a process a quiet tfzoo command started: export's validation, a server
    from tfzoo import quiet

    quiet.configure()

if "keras" in sys.modules:
    __getattr__("load_builtin_models")()
else:
    sys.meta_path.insert(0, _BuiltinModelsWithKeras())
