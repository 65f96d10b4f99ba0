"""The checks every registered model must pass, driven by its spec and its task alone.

`check_registered_model(name, tmp_path)` runs them on any registered name: a built-in model, a plug-in's, or one
a test or a user registered with `@tfzoo.register(...)` (call it once the registering module is imported):

- it builds with its defaults, is named `name`, and is compiled with its task's loss and metrics;
- it trains a few steps on random data of its task's form: the loss is finite and the weights move;
- it predicts finite outputs for the batch asked (and a prediction head's activation holds: softmax rows sum
  to 1, sigmoid outputs lie in [0, 1]);
- its default hyperparameters are accepted back; a factory that takes `optimizer` builds "sgd", "adam" and
  "rmsprop" as asked, one that takes `learning_rate` applies it;
- saved as .keras and loaded back, it predicts the same;
- its task's serving functions answer the task's warm-up requests (made from random held-out examples) with the
  batch asked, and `tfzoo.export_model(..., task=spec.task)` publishes a version that passes `tfzoo.validate`
  (run by the export itself, in a fresh process) and serves every signature of the task.

The random data follows from the model and the task, never from tables of model or task names. Inputs take the
model's input shape and dtype: float [height, width] images named `image` (the form the task serves from image
bytes) are 0-255 pixels, other floats standard normal, integers token ids below the output width (the vocabulary
a next-token model predicts over), dynamic lengths DYNAMIC_LENGTH. Labels are random values that the task's
`labels` accepts: real numbers, else class ids below the output width (at least two classes). A task that reads
no labels from a table column (the language model) is trained on a class id per output position, the form of a
sparse cross-entropy over the last axis.

`hparams` overrides the defaults for every build (a smaller model for speed); the defaults are still checked to
build and be accepted back.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import keras
import numpy as np

import tfzoo
from tfzoo.export.saved_model import signature_summary
from tfzoo.optimizers import make_optimizer
from tfzoo.registry import ModelSpec
from tfzoo.tasks import PredictionTask, Task
from tfzoo.tasks.base import WARMUP_BATCH_SIZES, is_image_input

DYNAMIC_LENGTH = 8  # the length of a dynamic (None) input dimension, e.g. a text model's tokens
EXAMPLES = max(WARMUP_BATCH_SIZES)  # enough held-out examples for every warm-up batch size
TRAIN_BATCH = 8  # EXAMPLES / TRAIN_BATCH training steps
PREDICT_BATCH = 5  # not a training or warm-up batch size, so a fixed batch dimension would show
OPTIMIZER_NAMES = ("sgd", "adam", "rmsprop")
# What a prediction head's activation guarantees of its outputs.
ACTIVATION_HOLDS = {
    "softmax": lambda p: np.allclose(p.sum(axis=-1), 1.0, rtol=1e-5),
    "sigmoid": lambda p: bool(np.all((p >= 0) & (p <= 1))),
}


def check_registered_model(name: str, tmp_path: Path, hparams: dict[str, Any] | None = None) -> None:
    """Run every check of the module docstring on the registered model `name`, writing under `tmp_path`. A failed
    check raises an AssertionError naming the model and what failed; a step that breaks (a load, an export) raises
    its own error."""
    spec = tfzoo.get_spec(name)
    hparams = dict(hparams or {})
    rng = np.random.default_rng(0)
    check_hparams_accepted(spec)
    model = check_build(spec, hparams)
    x = random_inputs(model, EXAMPLES, rng)
    y = random_labels(spec.task, model, x, rng)
    check_training(spec, model, x, y)
    check_predictions(spec, model, x[:PREDICT_BATCH])
    check_optimizers(spec, hparams)
    check_save_load(spec, model, x[:PREDICT_BATCH], tmp_path / "model.keras")
    held_out = random_inputs(model, EXAMPLES, rng)
    check_serving_functions(spec, model, held_out)
    check_export(spec, model, held_out, tmp_path / "models")


def random_inputs(model: keras.Model, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` random examples of the model's one input, in its shape and dtype (see the module docstring)."""
    (model_input,) = model.inputs
    shape = (count, *(DYNAMIC_LENGTH if dim is None else dim for dim in model_input.shape[1:]))
    dtype = np.dtype(keras.backend.standardize_dtype(model_input.dtype))
    if np.issubdtype(dtype, np.integer):
        return rng.integers(0, output_width(model), size=shape).astype(dtype)
    if is_image_input(model):
        return rng.integers(0, 256, size=shape).astype(dtype)
    return rng.normal(size=shape).astype(dtype)


def random_labels(task: Task, model: keras.Model, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random labels for inputs `x` in the form the task trains on (see the module docstring)."""
    count, width = len(x), output_width(model)
    candidates = [rng.normal(size=count), rng.integers(0, max(width, 2), size=count).astype(np.float64)]
    for values in candidates:
        try:
            labels, classes = task.labels(values, "y")
        except ValueError:
            continue
        assert len(labels) == count, f"{task}: labels() gave {len(labels)} labels for {count} values"
        assert classes is None or classes <= max(width, 2), f"{task}: {classes} classes for {width} outputs"
        return labels
    output_shape = model.predict(x[:1], verbose=0).shape
    return rng.integers(0, width, size=(count, *output_shape[1:-1]))


def output_width(model: keras.Model) -> int:
    """The size of the model's output's last axis (classes, vocabulary, or 1)."""
    (output,) = model.outputs
    return output.shape[-1]


def check_hparams_accepted(spec: ModelSpec) -> None:
    """The defaults build, and passed back explicitly they build the same weights."""
    defaults = [tuple(weight.shape) for weight in tfzoo.create_model(spec.name).weights]
    explicit = [tuple(weight.shape) for weight in tfzoo.create_model(spec.name, **spec.hparams).weights]
    assert explicit == defaults, (
        f"{spec.name}: its default hyperparameters passed back build other weights ({explicit}, not {defaults})")


def check_build(spec: ModelSpec, hparams: dict[str, Any]) -> keras.Model:
    """The model built from `hparams` is named after its registration and compiled with its task's loss."""
    model = tfzoo.create_model(spec.name, **hparams)
    assert model.name == spec.name, f"{spec.name}: the model is named {model.name!r}"
    assert len(model.inputs) == 1, f"{spec.name}: a task's model takes one input, not {len(model.inputs)}"
    expected = spec.task.loss()
    assert type(model.loss) is type(expected) and model.loss.get_config() == expected.get_config(), (
        f"{spec.name}: compiled with loss {type(model.loss).__name__} {model.loss.get_config()}, not its task's "
        f"{type(expected).__name__} {expected.get_config()}")
    return model


def check_training(spec: ModelSpec, model: keras.Model, x: np.ndarray, y: np.ndarray) -> None:
    """A few steps on random data: finite loss, the weights move, the task's metrics are reported."""
    before = [weight.copy() for weight in model.get_weights()]
    history = model.fit(x, y, batch_size=TRAIN_BATCH, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0]), f"{spec.name}: training loss {history['loss'][0]}"
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights())), f"{spec.name}: no weight moved"
    metrics = sorted(metric.name for metric in spec.task.metrics())
    assert sorted(history) == sorted(["loss", *metrics]), (
        f"{spec.name}: training reported {sorted(history)}, not the loss and its task's metrics {metrics}")


def check_predictions(spec: ModelSpec, model: keras.Model, x: np.ndarray) -> None:
    """Finite predictions, one per example asked; a prediction head's activation holds of them."""
    predictions = model.predict(x, verbose=0)
    assert predictions.shape[0] == len(x), f"{spec.name}: {predictions.shape[0]} predictions for {len(x)} examples"
    assert np.all(np.isfinite(predictions)), f"{spec.name}: predictions are not all finite"
    (output,) = model.outputs
    assert all(dim in (None, size) for dim, size in zip(output.shape[1:], predictions.shape[1:], strict=True)), (
        f"{spec.name}: predictions of shape {predictions.shape} from an output of shape {output.shape}")
    if isinstance(spec.task, PredictionTask):
        holds = ACTIVATION_HOLDS.get(spec.task.activation)
        assert holds is None or holds(predictions), (
            f"{spec.name}: {spec.task.activation} outputs that break its range:\n{predictions}")


def check_optimizers(spec: ModelSpec, hparams: dict[str, Any]) -> None:
    """`optimizer` builds the optimizer of that name and `learning_rate` is applied, when the factory takes them."""
    if "optimizer" in spec.hparams:
        for name in OPTIMIZER_NAMES:
            optimizer = tfzoo.create_model(spec.name, **{**hparams, "optimizer": name}).optimizer
            expected = type(make_optimizer(name, 0.01))
            assert type(optimizer) is expected, f"{spec.name}: optimizer={name!r} built {type(optimizer).__name__}"
    if "learning_rate" in spec.hparams:
        rate = 0.125  # exact in float32, and no factory's default
        optimizer = tfzoo.create_model(spec.name, **{**hparams, "learning_rate": rate}).optimizer
        assert math.isclose(peak_learning_rate(optimizer), rate, rel_tol=1e-6), (
            f"{spec.name}: learning_rate={rate} gave an optimizer with {peak_learning_rate(optimizer)}")


def peak_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    """The optimizer's learning rate; for a schedule (a warm-up starts low), its highest over 10,000 steps."""
    rate = optimizer.get_config()["learning_rate"]
    if not isinstance(rate, dict):
        return float(rate)
    schedule = keras.saving.deserialize_keras_object(rate)
    return float(keras.ops.max(schedule(keras.ops.arange(10_000))))


def check_save_load(spec: ModelSpec, model: keras.Model, x: np.ndarray, path: Path) -> None:
    """Saved as .keras and loaded back (a fresh object), the model predicts the same."""
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded is not model
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6,
                               err_msg=f"{spec.name}: the reloaded .keras model predicts otherwise")


def check_serving_functions(spec: ModelSpec, model: keras.Model, held_out: np.ndarray) -> None:
    """Every warm-up request of the task gets an answer from its signature with one row per example."""
    functions = spec.task.serving_functions(model)
    requests = spec.task.warmup_requests(model, held_out)
    assert {signature for signature, _ in requests} == set(functions), (
        f"{spec.name}: the warm-up requests do not exercise every signature of {sorted(functions)}")
    for signature, inputs in requests:
        function = functions[signature]
        outputs = function(*(inputs[tensor.name] for tensor in function.input_signature))
        batch = len(next(iter(inputs.values())))
        for output_name, value in outputs.items():
            assert value.shape[0] == batch, (
                f"{spec.name}: {signature} answered {batch} examples with {output_name} of shape {value.shape}")


def check_export(spec: ModelSpec, model: keras.Model, held_out: np.ndarray, model_base: Path) -> None:
    """The task's export of the model validates and is published with every signature of the task.

    `export_model` runs `tfzoo.validate` on the staged folder in a fresh process and raises ExportError with its
    report unless it passes; validating the published folder again here would repeat that (seconds for a text
    model), so the check is that the export went through, and what it published."""
    version_dir = tfzoo.export_model(model, model_base, name=spec.name, examples=held_out, task=spec.task)
    assert version_dir == model_base / spec.name / "1"
    signatures = set(signature_summary(version_dir))
    assert signatures == set(spec.task.serving_functions(model)), (
        f"{spec.name}: the export serves {sorted(signatures)}, not its task's signatures")
