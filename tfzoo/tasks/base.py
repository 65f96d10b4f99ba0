"""What a task is: everything that follows from what a model predicts, asked of one object instead of a string.

A task owns its loss and metrics, its output head, its serving signatures, the warm-up requests and reference
outputs an export records, how a model's hyperparameters follow the data, and what its labels must hold. Training,
export, validation and the datasets ask the task; none of them compares task names.
"""
from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from tfzoo.images import IMAGE_BYTES_INPUT, IMAGE_BYTES_SIGNATURE, decode_image
from tfzoo.tables import serving as table_serving
from tfzoo.tables.features import table_schema

if TYPE_CHECKING:
    from tfzoo.registry import ModelSpec

# A serving request as the export records it: (signature name, {input name: batch}).
Request = tuple[str, dict[str, np.ndarray]]
WARMUP_BATCH_SIZES = (1, 2, 4, 8, 16, 32)  # the sizes TF Serving's batcher is likely to form


class Task(abc.ABC):
    """One kind of prediction: regression, binary or multiclass classification, language modelling."""

    name: ClassVar[str]
    reads_text: ClassVar[bool] = False  # learns from text (documents, article/headline pairs), not numeric tables
    # The keyword options serving_functions takes, with their defaults (a language model's token budget); an
    # export records them and refuses any other.
    serving_options: ClassVar[dict[str, Any]] = {}

    @abc.abstractmethod
    def loss(self) -> keras.losses.Loss:
        """The training loss."""

    @abc.abstractmethod
    def metrics(self) -> list[keras.metrics.Metric]:
        """The metrics reported in history.csv and metrics.json."""

    def compile(self, model: keras.Model, optimizer: keras.optimizers.Optimizer) -> keras.Model:
        """Compile `model` with the task's loss and metrics and return it."""
        model.compile(optimizer=optimizer, loss=self.loss(), metrics=self.metrics())
        return model

    def run_task(self, spec: ModelSpec, data: Any) -> Task:
        """The task a run of `spec` on `data` trains: this one, unless the task lets the data decide (a binary
        model on a table of several classes trains as multiclass, see BinaryClassification)."""
        return self

    @abc.abstractmethod
    def fit_hparams(self, spec: ModelSpec, data: Any, hparams: dict[str, Any]) -> dict[str, Any]:
        """`hparams` with those that follow the data (shapes, classes) filled in; ValueError on a mismatch."""

    @abc.abstractmethod
    def serving_functions(self, model: keras.Model) -> dict[str, Callable[..., dict[str, tf.Tensor]]]:
        """Signature name -> tf.function with a fixed input signature (dynamic batch) and named outputs; a task
        with serving_options also takes those as keywords."""

    @abc.abstractmethod
    def warmup_requests(self, model: keras.Model, held_out: np.ndarray) -> list[Request]:
        """Requests built from held-out examples that exercise every signature, for TF Serving's warm-up."""

    @abc.abstractmethod
    def reference_outputs(self, model: keras.Model, request: Request) -> dict[str, np.ndarray]:
        """What the trained model itself answers to `request`, computed in this process: the served outputs of
        these names must match them (see tfzoo.export.validate)."""

    def held_out_scores(self, model: keras.Model, data: Any) -> dict[str, float]:
        """Scores of `model` on the test split of `data` beyond the Keras metrics, for `tfzoo evaluate`; none unless
        the task has some (a headline model's ROUGE and BLEU)."""
        return {}

    def labels(self, values: np.ndarray, target: str) -> tuple[np.ndarray, int | None]:
        """Labels read from a table column (float64 [N]) in the dtype and shape the task trains on, and the class
        count (None when the task has no classes); ValueError saying what the column must hold otherwise."""
        raise ValueError(f"a {self.name} task does not read its labels from a table column")

    # A task was once named by a string (ModelSpec.task == "binary"); comparing with, hashing and printing as its
    # name keeps such code working.
    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return other == self.name
        return isinstance(other, Task) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<task {self.name}>"


class PredictionTask(Task):
    """Tensors in, named tensors out: the model's predictions under `primary_output`, and what derives from them.

    The model's one input names the signature's input. A model whose input is named `image` and is [height,
    width] raw 0-255 grayscale pixels also gets `predict_image_bytes`, which takes PNG or JPEG bytes.
    """

    primary_output: ClassVar[str]
    activation: ClassVar[str | None]

    def head(self, units: int = 1, **dense_options: Any) -> keras.layers.Dense:
        """The model's last layer, named after the primary output; float32 even under a mixed-precision policy,
        so the outputs and the loss keep full precision while the layers before compute in float16 or bfloat16.
        `dense_options` go to the Dense layer (its initializers, for example)."""
        return keras.layers.Dense(units, activation=self.activation, name=self.primary_output, dtype="float32",
                                  **dense_options)

    def named_outputs(self, predictions: tf.Tensor) -> dict[str, tf.Tensor]:
        """The signature's outputs (the README's signature table) from the model's predictions."""
        return {self.primary_output: predictions}

    def fit_hparams(self, spec: ModelSpec, data: Any, hparams: dict[str, Any]) -> dict[str, Any]:
        check_data_task(self, spec, data)
        fitted = dict(hparams)
        if "input_shape" in spec.hparams:
            given_shape = tuple(fitted.setdefault("input_shape", data.input_shape))
            if given_shape != tuple(data.input_shape):
                raise ValueError(f"input_shape={given_shape} does not match the data's example shape "
                                 f"{tuple(data.input_shape)}; leave input_shape out and tfzoo takes it from the data")
            fitted["input_shape"] = list(data.input_shape)  # JSON-friendly; factories take any sequence
        return fitted

    def serving_functions(self, model: keras.Model) -> dict[str, Callable[..., dict[str, tf.Tensor]]]:
        """serving_default under the model's one input name (and predict_image_bytes for an image model); a table
        model's signatures take its columns (tfzoo.tables.serving)."""
        schema = table_schema(model)
        if schema is not None:
            return table_serving.serving_functions(model, schema, self.named_outputs)
        (model_input,) = model.inputs
        example_shape = tuple(model_input.shape[1:])

        @tf.function(input_signature=[tf.TensorSpec([None, *example_shape], tf.float32, name=model_input.name)])
        def serve(inputs: tf.Tensor) -> dict[str, tf.Tensor]:
            return self.named_outputs(model(inputs, training=False))

        functions = {"serving_default": serve}
        if is_image_input(model):
            height, width = example_shape

            @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=IMAGE_BYTES_INPUT)])
            def serve_image_bytes(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
                images = tf.map_fn(lambda data: decode_image(data, height, width), image_bytes,
                                   fn_output_signature=tf.TensorSpec([height, width], tf.float32))
                return self.named_outputs(model(images, training=False))

            functions[IMAGE_BYTES_SIGNATURE] = serve_image_bytes
        return functions

    def warmup_requests(self, model: keras.Model, held_out: Any) -> list[Request]:
        schema = table_schema(model)
        if schema is not None:
            return table_serving.warmup_requests(schema, held_out, WARMUP_BATCH_SIZES)
        (model_input,) = model.inputs
        sizes = sorted({min(size, len(held_out)) for size in WARMUP_BATCH_SIZES})
        requests = [("serving_default", {model_input.name: held_out[:size].astype(np.float32)}) for size in sizes]
        if is_image_input(model):
            pixels = np.clip(np.rint(held_out[:8]), 0, 255).astype(np.uint8)[..., np.newaxis]
            png = np.array([tf.io.encode_png(image).numpy() for image in pixels], dtype=object)
            requests += [(IMAGE_BYTES_SIGNATURE, {IMAGE_BYTES_INPUT: png[:size]}) for size in (1, len(png))]
        return requests

    def reference_outputs(self, model: keras.Model, request: Request) -> dict[str, np.ndarray]:
        """The Keras model's own predictions (`model.predict`, not the serving graph) as the primary output;
        derived outputs such as class ids are left to the graph, as they could flip on a tie."""
        schema = table_schema(model)
        if schema is not None:
            return table_serving.reference_outputs(model, schema, request, self.primary_output)
        _, inputs = request
        if IMAGE_BYTES_INPUT in inputs:
            height, width = model.input_shape[1:]
            batch = np.stack([decode_image(data, height, width).numpy() for data in inputs[IMAGE_BYTES_INPUT]])
        else:
            (batch,) = inputs.values()
        return {self.primary_output: model.predict(batch, verbose=0)}


def is_image_input(model: keras.Model) -> bool:
    """Whether the model takes one [height, width] grayscale image named `image` (then it is also served from bytes)."""
    return len(model.inputs) == 1 and model.inputs[0].name == "image" and len(model.inputs[0].shape) == 3


def check_data_task(task: Task, spec: ModelSpec, data: Any) -> None:
    """Refuse training a model on data of another task, naming the model's default dataset."""
    if data.task != task.name:
        raise ValueError(f"{spec.name} is a {task.name} model but dataset {data.name!r} is a {data.task} task; "
                         f"use a {task.name} dataset (default: {spec.default_dataset})")


def shown_values(found: np.ndarray) -> str:
    """Up to ten distinct label values, for an error message."""
    return ", ".join(f"{v:g}" for v in found[:10]) + (", ..." if len(found) > 10 else "")
