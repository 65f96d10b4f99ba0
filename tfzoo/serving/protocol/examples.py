"""tf.Examples for Classify and Regress from plain Python values, typed the way TF Serving's REST API types them.

A feature is a value or a list of values: integers and booleans make an int64 list, floats (or floats mixed with
integers) a float list, str/bytes a bytes list (json_tensor.cc's AddValueToFeature). The same features become the
same Example over gRPC (`to_input`) and over REST (`to_json_object`, which the server parses back into it).
"""
from __future__ import annotations

import base64
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from tensorflow.core.example import example_pb2
from tensorflow_serving.apis import input_pb2

Features = Mapping[str, Any]


def _typed_values(name: str, value: Any) -> tuple[str, list]:
    """("int64" | "float" | "bytes", values) for one feature; ValueError naming it when it has no one type."""
    values = value.tolist() if isinstance(value, np.ndarray) else value
    values = list(values) if isinstance(values, (list, tuple)) else [values]
    values = [item.item() if isinstance(item, np.generic) else item for item in values]
    if all(isinstance(item, (str, bytes)) for item in values):
        return "bytes", [item.encode("utf-8") if isinstance(item, str) else item for item in values]
    if all(isinstance(item, numbers.Integral) for item in values):
        return "int64", [int(item) for item in values]
    if all(isinstance(item, numbers.Real) for item in values):
        return "float", [float(item) for item in values]
    raise ValueError(f"feature {name!r} must hold only numbers or only strings (str/bytes), got {value!r:.80}")


def to_example(features: Features) -> example_pb2.Example:
    """One tf.Example from {feature name: value or list of values}."""
    example = example_pb2.Example()
    for name, value in features.items():
        kind, values = _typed_values(name, value)
        getattr(example.features.feature[name], f"{kind}_list").value.extend(values)
    return example


def to_input(examples: Sequence[Features], context: Features | None = None) -> input_pb2.Input:
    """The Input of a Classify/Regress request: an example list, or one with a context shared by every example."""
    if not examples:
        raise ValueError("give at least one example")
    model_input = input_pb2.Input()
    if context is None:
        model_input.example_list.examples.extend(to_example(features) for features in examples)
    else:
        model_input.example_list_with_context.context.CopyFrom(to_example(context))
        model_input.example_list_with_context.examples.extend(to_example(features) for features in examples)
    return model_input


def to_json_object(features: Features) -> dict[str, Any]:
    """One example as REST's JSON object: floats stay floats (1.0, not 1), bytes that are not UTF-8 go as b64."""
    obj = {}
    for name, value in features.items():
        kind, values = _typed_values(name, value)
        if kind == "bytes":
            values = [_text_or_b64(item) for item in values]
        obj[name] = values
    return obj


def _text_or_b64(item: bytes) -> str | dict[str, str]:
    try:
        return item.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(item).decode("ascii")}

