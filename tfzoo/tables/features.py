"""A table's preprocessing as a Keras layer, and the table model: raw columns in, the core model's predictions out.

`TableFeatures` turns one tensor per column into the encoded feature vector with Keras' own preprocessing layers,
built from the schema's training statistics: numeric columns are imputed with their training median (plus a
missing indicator where training had gaps) and normalised with `Normalization`; categories go through
`StringLookup` (one-hot, or an `Embedding` for large vocabularies) and ID-like declared categories through
`Hashing` and an `Embedding`. The statistics come from tfzoo.tables.schema's one pass over the training rows rather
than from each layer's `adapt()`: `adapt` would read the data once per layer (a full pass per column for streamed
files), and the schema must be recorded anyway (config.json, tfzoo.json). Median imputation is written here
because Keras has no imputation layer.

The layer keeps the schema in its config, so model.keras and the SavedModel carry it: `table_schema(model)` finds it.
"""
from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from tfzoo.tables.schema import HASHED, NUMERIC, TableSchema


@keras.saving.register_keras_serializable(package="tfzoo")
class TableFeatures(keras.layers.Layer):
    """{input name: [N] float32 or string} -> float32 [N, schema.width], the encoding described in the module."""

    def __init__(self, schema: TableSchema | dict[str, Any], **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")  # preprocessing stays float32 under a mixed-precision policy
        super().__init__(**kwargs)
        self.schema = schema if isinstance(schema, TableSchema) else TableSchema.from_json(schema)
        numeric = [column for column in self.schema.columns if column.kind == NUMERIC]
        self.numeric = numeric
        self.medians = [column.median for column in numeric]
        self.normalization = None
        if numeric:
            self.normalization = keras.layers.Normalization(mean=[c.mean for c in numeric],
                                                            variance=[c.variance for c in numeric], dtype="float32")
            # Built here, outside any traced function: Normalization makes its mean and variance constants at build.
            self.normalization.build((None, len(numeric)))
        # Every sublayer is built here, so the layer has no state left to build when Keras first calls it.
        self.lookups: dict[str, keras.layers.Layer] = {}
        self.embeddings: dict[str, keras.layers.Embedding] = {}
        for column in self.schema.columns:
            if column.kind == NUMERIC:
                continue
            if column.kind == HASHED:
                self.lookups[column.input] = keras.layers.Hashing(num_bins=column.bins)
            else:
                self.lookups[column.input] = keras.layers.StringLookup(
                    vocabulary=list(column.vocabulary), num_oov_indices=1,
                    output_mode="one_hot" if column.one_hot else "int")
            if not column.one_hot:
                size = column.bins if column.kind == HASHED else len(column.vocabulary) + 1
                self.embeddings[column.input] = keras.layers.Embedding(size, column.embedding_dim)
                self.embeddings[column.input].build((None,))

    def build(self, input_shape: Any) -> None:
        self.built = True  # the sublayers were built in __init__

    def call(self, inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        parts = []
        if self.numeric:
            values = tf.stack([tf.cast(inputs[column.input], tf.float32) for column in self.numeric], axis=1)
            missing = tf.math.is_nan(values)
            parts.append(self.normalization(tf.where(missing, tf.constant([self.medians], tf.float32), values)))
            indicators = [i for i, column in enumerate(self.numeric) if column.missing]
            if indicators:
                parts.append(tf.cast(tf.gather(missing, indicators, axis=1), tf.float32))
        for column in self.schema.columns:
            if column.kind == NUMERIC:
                continue
            encoded = self.lookups[column.input](inputs[column.input])
            if column.input in self.embeddings:
                encoded = self.embeddings[column.input](encoded)
            parts.append(tf.cast(encoded, tf.float32))
        return tf.concat(parts, axis=1)

    def compute_output_shape(self, input_shape: Any) -> tuple[int | None, int]:
        return (None, self.schema.width)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "schema": self.schema.to_json()}


def table_inputs(schema: TableSchema) -> dict[str, keras.KerasTensor]:
    """One Keras input per column, [N]: float32 for numeric columns, string for the others."""
    return {column.input: keras.Input(shape=(), dtype="float32" if column.kind == NUMERIC else "string",
                                      name=column.input)
            for column in schema.columns}


def table_model(core: keras.Model, schema: TableSchema) -> keras.Model:
    """The model users train, save and serve: raw columns -> TableFeatures -> `core` (built for schema.width
    features) -> for regression, the target's units again. Compiled as `core` was (its optimizer, loss and metrics).

    A regression core learns the standardised target: its output is mapped back with `Normalization(invert=True)`
    and the loss is weighted by 1 / the target's variance, so the loss (and with it the gradients) is that of the
    standardised target while predictions and metrics are in the target's own units.
    """
    inputs = table_inputs(schema)
    outputs = core(TableFeatures(schema, name="table_features")(inputs))
    compile_config = core.get_compile_config()
    if schema.task == "regression":
        outputs = keras.layers.Normalization(mean=schema.target_mean, variance=schema.target_variance, invert=True,
                                             dtype="float32", name="target_units")(outputs)
        compile_config["loss_weights"] = 1.0 / schema.target_variance
    model = keras.Model(inputs, outputs, name=core.name)
    if compile_config:
        model.compile_from_config(compile_config)
        # The core trains as a part of `model` only. Left compiled, model.keras would also hold the core's own,
        # never-built optimizer, and loading would then skip the trained optimizer state (Keras warns and resets it).
        core.compiled, core.optimizer, core._compile_config = False, None, None  # noqa: SLF001 (Keras has no uncompile)
    return model


def table_schema(model: keras.Model) -> TableSchema | None:
    """The schema of a table model (its TableFeatures layer's), or None for a model of another kind."""
    for layer in model.layers:
        if isinstance(layer, TableFeatures):
            return layer.schema
    return None
