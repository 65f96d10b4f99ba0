"""Serving signatures of any Keras model under its own names: what `export_model` serves when no task is given.

The inputs keep the model's input names (a subclassed model, which has none of its own, takes the names of the
examples it is exported with); the outputs keep its output names (a dict output's keys; a model that returns one
unnamed tensor has it as `output_0`, as `model.export` names it). Core TensorFlow ops only.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfzoo.tasks.base import WARMUP_BATCH_SIZES, Request


class KerasSignatures:
    """`serving_default` for one Keras model with named inputs, with its warm-up requests and reference outputs."""

    def __init__(self, model: keras.Model, examples: Mapping[str, np.ndarray]) -> None:
        self.model = model
        self.input_specs = input_specs(model, examples)
        self.examples = {spec.name: example_batch(spec, examples[spec.name]) for spec in self.input_specs}

    def serving_functions(self) -> dict[str, Callable[..., dict[str, tf.Tensor]]]:
        """`serving_default`: the model's named inputs -> its named outputs."""
        model, names = self.model, [spec.name for spec in self.input_specs]

        @tf.function(input_signature=self.input_specs)
        def serve(*tensors: tf.Tensor) -> dict[str, tf.Tensor]:
            return named_outputs(model, model_inputs(model, dict(zip(names, tensors))))

        return {"serving_default": serve}

    def warmup_requests(self) -> list[Request]:
        """The first 1, 2, 4, ... examples (up to 32) as `serving_default` requests."""
        count = len(next(iter(self.examples.values())))
        sizes = sorted({min(size, count) for size in WARMUP_BATCH_SIZES})
        return [("serving_default", {name: batch[:size] for name, batch in self.examples.items()}) for size in sizes]

    def reference_outputs(self, request: Request) -> dict[str, np.ndarray]:
        """The model's own predictions (`model.predict`) for one request, under the signature's output names."""
        _, inputs = request
        predictions = self.model.predict(model_inputs(self.model, inputs), verbose=0)
        return {name: np.asarray(value) for name, value in name_outputs(self.model, predictions).items()}


def input_specs(model: keras.Model, examples: Mapping[str, np.ndarray]) -> list[tf.TensorSpec]:
    """One TensorSpec per model input, batch dimension free: from the model's inputs when it has them (functional
    and sequential models), else from the examples (a subclassed model); ValueError when examples and inputs differ.
    """
    if getattr(model, "inputs", None):
        specs = [tf.TensorSpec([None, *tensor.shape[1:]], tf.as_dtype(tensor.dtype), name=tensor.name)
                 for tensor in model.inputs]
    else:
        specs = [tf.TensorSpec([None, *np.shape(value)[1:]], tf.as_dtype(np.asarray(value).dtype), name=name)
                 for name, value in examples.items()]
    names = [spec.name for spec in specs]
    if sorted(names) != sorted(examples):
        raise ValueError(f"examples name the inputs {sorted(examples)} but the model's inputs are {names}; "
                         "pass examples as {input name: array} for every input")
    if len(set(names)) != len(names) or not all(names):
        raise ValueError(f"the model's inputs must have distinct names to become signature inputs, got {names}; "
                         "name them with keras.Input(..., name=...)")
    counts = {name: len(value) for name, value in examples.items()}
    if len(set(counts.values())) != 1 or not min(counts.values()):
        raise ValueError(f"every input's examples must hold the same number (at least 1) of examples, got {counts}")
    return specs


def example_batch(spec: tf.TensorSpec, values: Any) -> np.ndarray:
    """The examples of one input in its dtype; ValueError naming the input when they have another shape or kind."""
    try:
        batch = np.asarray(values).astype(spec.dtype.as_numpy_dtype)
    except (TypeError, ValueError) as error:
        raise ValueError(f"examples[{spec.name!r}] cannot be read as {spec.dtype.name} ({error}); pass the "
                         f"{spec.dtype.name} values the model takes") from None
    if not spec.shape.is_compatible_with(batch.shape):
        expected = ["N" if dim is None else dim for dim in spec.shape.as_list()]
        raise ValueError(f"examples[{spec.name!r}] has shape {list(batch.shape)} but the input takes {expected}; "
                         "pass examples of the input's shape, N of them")
    return batch


def model_inputs(model: keras.Model, inputs: Mapping[str, Any]) -> Any:
    """Named inputs in the structure the model is called with: the one tensor, or a dict by input name."""
    return next(iter(inputs.values())) if len(inputs) == 1 and getattr(model, "inputs", None) else dict(inputs)


def output_names(model: keras.Model, count: int) -> list[str]:
    """The names of `count` outputs: the model's own when it has them, else output_0, output_1, ..."""
    names = list(getattr(model, "output_names", None) or [])
    return names if len(names) == count else [f"output_{index}" for index in range(count)]


def name_outputs(model: keras.Model, outputs: Any) -> dict[str, Any]:
    """Whatever the model returns (a dict, a list or one tensor) as {output name: value}."""
    if isinstance(outputs, Mapping):
        return dict(outputs)
    values = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    return dict(zip(output_names(model, len(values)), values))


def named_outputs(model: keras.Model, inputs: Any) -> dict[str, tf.Tensor]:
    """The model called for inference, its outputs by name."""
    return name_outputs(model, model(inputs, training=False))
