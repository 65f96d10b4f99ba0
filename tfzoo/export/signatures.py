"""Serving signatures of any Keras model under its own names: what `export_model` serves when no task is given.

The inputs keep the names the user gave them (`keras.Input(..., name=...)`; a subclassed model, which has none of
its own, takes the names of the examples it is exported with); an input left unnamed, which Keras calls
`keras_tensor_N`, is served as `inputs` (several: `input_0`, `input_1`, ...). The outputs keep a dict output's
keys, else the names of the layers that make them where the user named those layers; an unnamed one is `outputs`
when it is the only one, else `output_0`, `output_1`, ... (as `model.export` names them). Core TensorFlow ops only.
"""
from __future__ import annotations

import re
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
        # Examples may be keyed by Keras' own tensor names (keras_tensor_N) too.
        renamed = dict(zip(keras_input_names(model), input_names(model)))
        examples = {renamed.get(name, name): value for name, value in examples.items()}
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
        specs = [tf.TensorSpec([None, *tensor.shape[1:]], tf.as_dtype(tensor.dtype), name=name)
                 for tensor, name in zip(model.inputs, input_names(model))]
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


# What Keras calls a tensor or layer the user did not name: keras_tensor_3, dense, dense_2, batch_normalization_1.
_KERAS_TENSOR_NAME = re.compile(r"keras_tensor(_\d+)?")


def keras_input_names(model: keras.Model) -> list[str]:
    """Keras' names of the model's input tensors (none for a subclassed model)."""
    return [tensor.name for tensor in getattr(model, "inputs", None) or []]


def input_names(model: keras.Model) -> list[str]:
    """The served names of the model's inputs: the user's own, else `inputs` (several: input_0, input_1, ...)."""
    names = keras_input_names(model)
    unnamed = [_KERAS_TENSOR_NAME.fullmatch(name) is not None for name in names]
    default = ["inputs"] if len(names) == 1 else [f"input_{index}" for index in range(len(names))]
    return [fallback if auto else name for name, auto, fallback in zip(names, unnamed, default)]


def model_inputs(model: keras.Model, inputs: Mapping[str, Any]) -> Any:
    """Named inputs in the structure the model is called with: the one tensor, a dict by input name, or (inputs
    Keras named, which a dict cannot address) a list in the model's order."""
    if not getattr(model, "inputs", None):
        return dict(inputs)
    if len(inputs) == 1:
        return next(iter(inputs.values()))
    names = input_names(model)
    return dict(inputs) if names == keras_input_names(model) else [inputs[name] for name in names]


def user_named(layer: keras.layers.Layer) -> bool:
    """Whether a layer's name is the user's rather than Keras' default (its class in snake case, maybe _N)."""
    snake = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", type(layer).__name__))
    return re.fullmatch(rf"{snake.lower()}(_\d+)?", layer.name) is None


def output_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers that make a functional or sequential model's outputs, in order (none for a subclassed model)."""
    if isinstance(model, keras.Sequential):
        return model.layers[-1:]
    try:
        return [model.get_layer(name) for name in getattr(model, "output_names", None) or []]
    except ValueError:  # an output that is no layer's
        return []


def output_names(model: keras.Model, count: int) -> list[str]:
    """The names of `count` outputs: the names the user gave their layers, else `outputs` for a single output and
    output_0, output_1, ... for several."""
    layers = output_layers(model)
    names = [layer.name if user_named(layer) else None for layer in layers] if len(layers) == count else [None] * count
    if count == 1:
        return [names[0] or "outputs"]
    return [name or f"output_{index}" for index, name in enumerate(names)]


def name_outputs(model: keras.Model, outputs: Any) -> dict[str, Any]:
    """Whatever the model returns (a dict, a list or one tensor) as {output name: value}."""
    if isinstance(outputs, Mapping):
        return dict(outputs)
    values = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    return dict(zip(output_names(model, len(values)), values))


def named_outputs(model: keras.Model, inputs: Any) -> dict[str, tf.Tensor]:
    """The model called for inference, its outputs by name."""
    return name_outputs(model, model(inputs, training=False))
