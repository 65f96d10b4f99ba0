"""A `strategy.run` training loop over a compiled Keras model, for where `model.fit` cannot go.

Keras 3's `fit` fails at its first step under MultiWorkerMirroredStrategy (keras-team/keras#20585:
"Attempt to convert a value (PerReplica...)"). This loop drives the same model the same way: the model's
own `train_step` / `test_step` inside `strategy.run`, metrics aggregated across replicas by their variables,
and Keras callbacks (history, progress bar, CSV log, early stopping, checkpoints) called as `fit` calls them.
Under a single-device strategy it gives the same weights as `fit` (tested).
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf


def distributed_fit(
    model: keras.Model,
    strategy: tf.distribute.Strategy,
    train: tf.data.Dataset,
    validation: tf.data.Dataset,
    *,
    epochs: int,
    initial_epoch: int,
    steps_per_epoch: int,
    callbacks: list[keras.callbacks.Callback],
    verbose: int | str,
    initial_step: int = 0,
) -> keras.callbacks.History:
    """Train `model` (built and compiled in `strategy.scope()`) on globally batched datasets.

    `train` holds the batches of epochs initial_epoch..epochs back to back, less the first `initial_step` batches
    of epoch initial_epoch (trained before a resume); one iterator reads the remaining batches of each epoch from it
    (as `fit` does when given steps_per_epoch). Callbacks get each step's index within its epoch, so a resumed
    epoch's first batch is `initial_step`. The training metrics of an epoch cover the steps this call ran in it;
    an epoch with none left (stopped between its last step and its end) gets NaN training metrics and is only
    validated and logged.
    """
    train_batches = iter(strategy.experimental_distribute_dataset(train))
    validation_batches = strategy.experimental_distribute_dataset(validation)
    verbose = 1 if verbose == "auto" else verbose
    callback_list = keras.callbacks.CallbackList(
        callbacks, add_history=True, add_progbar=verbose != 0, model=model, verbose=verbose, epochs=epochs,
        steps=steps_per_epoch)
    history = next(c for c in callback_list.callbacks if isinstance(c, keras.callbacks.History))

    @tf.function(jit_compile=bool(model.jit_compile))
    def train_step(batch):
        strategy.run(model.train_step, args=(batch,))

    @tf.function(jit_compile=bool(model.jit_compile))
    def test_step(batch):
        strategy.run(model.test_step, args=(batch,))

    model.stop_training = False
    logs: dict[str, float] = {}
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        first_step = initial_step if epoch == initial_epoch else 0
        for step in range(first_step, steps_per_epoch):
            callback_list.on_train_batch_begin(step)
            train_step(next(train_batches))
            # No metrics per batch: reading them is a collective across every worker, each step.
            callback_list.on_train_batch_end(step, {})
        trained = metrics_result(model) if first_step < steps_per_epoch else None
        model.reset_metrics()
        for batch in validation_batches:
            test_step(batch)
        validated = metrics_result(model)
        logs = trained if trained is not None else dict.fromkeys(validated, math.nan)
        logs.update({f"val_{name}": value for name, value in validated.items()})
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end(logs)
    return history


def distributed_evaluate(model: keras.Model, strategy: tf.distribute.Strategy,
                         dataset: tf.data.Dataset) -> dict[str, float]:
    """Loss and metrics of `model` on a globally batched dataset, aggregated over every replica."""
    @tf.function
    def test_step(batch):
        strategy.run(model.test_step, args=(batch,))

    model.reset_metrics()
    for batch in strategy.experimental_distribute_dataset(dataset):
        test_step(batch)
    return metrics_result(model)


def metrics_result(model: keras.Model) -> dict[str, float]:
    return {name: float(value) for name, value in model.get_metrics_result().items()}
