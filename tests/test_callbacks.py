"""tfzoo.training.callbacks: what EpochScalars writes to TensorBoard and adds to the epoch's logs."""
from __future__ import annotations

import csv

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfzoo.optimizers import WarmupCosineDecay
from tfzoo.training.callbacks import EpochScalars


def scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} of every scalar in the event files under `log_dir`."""
    found: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(log_dir.rglob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                found.setdefault(value.tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
    return found


@pytest.mark.slow
def test_the_learning_rate_of_each_epoch_goes_to_tensorboard_and_history_csv(tmp_path):
    """The learning-rate schedule was in neither TensorBoard nor history.csv."""
    keras.utils.set_random_seed(0)
    schedule = WarmupCosineDecay(0.1, warmup_steps=2, decay_steps=8)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(learning_rate=schedule), loss="mse")
    x = np.random.default_rng(0).normal(size=(8, 2)).astype(np.float32)
    callbacks = [EpochScalars(tmp_path / "tensorboard"), keras.callbacks.CSVLogger(str(tmp_path / "history.csv"))]
    history = model.fit(x, x[:, :1], batch_size=4, epochs=3, callbacks=callbacks, verbose=0)  # 2 steps an epoch

    expected = [float(schedule(steps)) for steps in (2, 4, 6)]  # the rate after each epoch's steps
    logged = scalars(tmp_path / "tensorboard")["epoch_learning_rate"]
    assert [step for step, _ in logged] == [0, 1, 2]
    np.testing.assert_allclose([value for _, value in logged], expected, rtol=1e-6)
    with open(tmp_path / "history.csv", newline="") as handle:
        np.testing.assert_allclose([float(row["learning_rate"]) for row in csv.DictReader(handle)], expected,
                                   rtol=1e-6)
    np.testing.assert_allclose(history.history["learning_rate"], expected, rtol=1e-6)


@pytest.mark.slow
def test_a_history_csv_begun_without_the_rate_column_keeps_its_columns(tmp_path):
    """A run started before the rate was logged and resumed after: its history.csv must stay one table."""
    from tfzoo.run_dir import history_frame

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", loss="mse")
    (tmp_path / "history.csv").write_text("epoch,loss,val_loss\n0,1.0,NA\n")  # as CSVLogger writes it
    callbacks = [EpochScalars(tmp_path / "tensorboard", rate_in_logs=False),
                 keras.callbacks.CSVLogger(str(tmp_path / "history.csv"), append=True)]
    model.fit(np.ones((4, 2)), np.ones((4, 1)), initial_epoch=1, epochs=2, callbacks=callbacks, verbose=0)
    assert list(history_frame(tmp_path / "history.csv").columns) == ["epoch", "loss", "val_loss"]
    assert [step for step, _ in scalars(tmp_path / "tensorboard")["epoch_learning_rate"]] == [1]
