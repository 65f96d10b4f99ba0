"""A table model's serving signatures, warm-up requests and reference outputs.

`serving_default` takes one input per column ([N] float32 for numbers, NaN for a missing value; [N] string for
categories), so TF Serving's REST row format (`{"instances": [{"age": 29, "sex": "female"}]}`), its columnar
format and gRPC all work; a classifier also answers `label`, the predicted class as it appears in the table. TF
Serving's native API for structured data is served too: `classify` (classification) or `regress` (regression)
over serialized tf.Example, with the column names as feature keys; a feature left out of an Example is missing
(imputed). Numeric features are float_list values, categories bytes_list values.
"""
from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from tfzoo.tables.schema import NUMERIC, TableSchema

CLASSIFY_SIGNATURE, REGRESS_SIGNATURE = "classify", "regress"
# TF Serving runs Classify and Regress only on signatures of these methods (tf.saved_model.save writes predict).
SIGNATURE_METHODS = {CLASSIFY_SIGNATURE: "tensorflow/serving/classify", REGRESS_SIGNATURE: "tensorflow/serving/regress"}
EXAMPLES_INPUT = "inputs"  # TF Serving's input key of classify and regress signatures
EXAMPLE_BATCH_SIZES = (1, 8)

Outputs = Callable[[tf.Tensor], dict[str, tf.Tensor]]


def input_specs(schema: TableSchema) -> list[tf.TensorSpec]:
    """One [N] tensor per column, named by its serving input name."""
    return [tf.TensorSpec([None], tf.float32 if column.kind == NUMERIC else tf.string, name=column.input)
            for column in schema.columns]


def parse_examples(schema: TableSchema, serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Serialized tf.Examples -> the model's inputs; a feature an Example lacks is NaN (numeric) or '' (category)."""
    features = {column.name: tf.io.FixedLenFeature([], tf.float32, default_value=float("nan"))
                if column.kind == NUMERIC else tf.io.FixedLenFeature([], tf.string, default_value="")
                for column in schema.columns}
    parsed = tf.io.parse_example(serialized, features)
    return {column.input: parsed[column.name] for column in schema.columns}


def serving_functions(model: keras.Model, schema: TableSchema,
                      named_outputs: Outputs) -> dict[str, Callable[..., dict[str, tf.Tensor]]]:
    """serving_default (one input per column) and classify or regress (tf.Example), see the module docstring."""
    inputs = [column.input for column in schema.columns]
    classes = tf.constant(schema.classes) if schema.classes else None

    def answer(columns: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        outputs = named_outputs(model(columns, training=False))
        if classes is not None:
            outputs["label"] = tf.gather(classes, outputs["class_id"])
        return outputs

    @tf.function(input_signature=input_specs(schema))
    def serve(*columns: tf.Tensor) -> dict[str, tf.Tensor]:
        return answer(dict(zip(inputs, columns)))

    examples_spec = [tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)]
    if classes is None:
        @tf.function(input_signature=examples_spec)
        def regress(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"outputs": model(parse_examples(schema, serialized), training=False)}

        return {"serving_default": serve, REGRESS_SIGNATURE: regress}

    @tf.function(input_signature=examples_spec)
    def classify(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        scores = class_scores(model(parse_examples(schema, serialized), training=False))
        return {"scores": scores, "classes": tf.tile(classes[None, :], [tf.shape(scores)[0], 1])}

    return {"serving_default": serve, CLASSIFY_SIGNATURE: classify}


def class_scores(predictions: tf.Tensor) -> tf.Tensor:
    """A score per class in `classes` order: a binary model's [1 - p, p], a multiclass model's probabilities."""
    return tf.concat([1.0 - predictions, predictions], axis=1) if predictions.shape[-1] == 1 else predictions


def to_examples(schema: TableSchema, columns: dict[str, np.ndarray]) -> np.ndarray:
    """Rows as serialized tf.Examples keyed by column name, a missing value left out (the signature imputes it)."""
    examples = []
    for row in range(len(next(iter(columns.values())))):
        example = tf.train.Example()
        for column in schema.columns:
            value = columns[column.input][row]
            feature = example.features.feature
            if column.kind == NUMERIC:
                if not np.isnan(value):
                    feature[column.name].float_list.value.append(float(value))
            elif value != "":
                feature[column.name].bytes_list.value.append(str(value).encode("utf-8"))
        examples.append(example.SerializeToString())
    return np.array(examples, dtype=object)


def warmup_requests(schema: TableSchema, held_out: dict[str, np.ndarray],
                    batch_sizes: tuple[int, ...]) -> list[tuple[str, dict[str, np.ndarray]]]:
    """Held-out rows for every signature: serving_default at `batch_sizes`, one batch with the first row's numbers
    missing (served with the training imputation), and the rows as tf.Examples for classify or regress."""
    rows = len(next(iter(held_out.values())))
    sizes = sorted({min(size, rows) for size in batch_sizes})
    requests = [("serving_default", {key: values[:size] for key, values in held_out.items()}) for size in sizes]
    gaps = {key: values[:2].copy() for key, values in held_out.items()}
    for column in schema.columns:
        gaps[column.input][0] = np.nan if column.kind == NUMERIC else ""
    requests.append(("serving_default", gaps))
    signature = CLASSIFY_SIGNATURE if schema.classes else REGRESS_SIGNATURE
    examples = to_examples(schema, held_out)
    requests += [(signature, {EXAMPLES_INPUT: examples[:size]})
                 for size in sorted({min(size, rows) for size in EXAMPLE_BATCH_SIZES})]
    return requests


def reference_outputs(model: keras.Model, schema: TableSchema, request: tuple[str, dict[str, np.ndarray]],
                      primary_output: str) -> dict[str, np.ndarray]:
    """What the Keras model answers to a request: its predictions, as `scores` (classify), `outputs` (regress) or
    the primary output (serving_default). Examples are read back with the signature's own parsing, in the model's
    eager call."""
    signature, inputs = request
    if signature == "serving_default":
        return {primary_output: model.predict(inputs, verbose=0)}
    predictions = model(parse_examples(schema, tf.constant(inputs[EXAMPLES_INPUT])), training=False)
    if signature == CLASSIFY_SIGNATURE:
        return {"scores": class_scores(predictions).numpy()}
    return {"outputs": predictions.numpy()}
