"""make_optimizer: each name builds the right Keras optimizer with the given learning rate, momentum and AdamW's
weight decay act as specified, every optimizer trains a real model, and bad names or rates give one-line errors."""
from __future__ import annotations

import inspect
import math

import keras
import numpy as np
import pytest

from tfzoo.optimizers import OPTIMIZERS, WarmupCosineDecay, make_optimizer

# The names of issue 11, in its order, and the Keras class each must build.
EXPECTED_CLASS = {
    "adam": keras.optimizers.Adam,
    "sgd": keras.optimizers.SGD,
    "momentum": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
    "adagrad": keras.optimizers.Adagrad,
    "adamw": keras.optimizers.AdamW,
}


def moves(optimizer: keras.optimizers.Optimizer, gradient: float, steps: int, start: float = 1.0) -> list[float]:
    """How far each of `steps` updates with a constant `gradient` moves a one-element variable (signed)."""
    variable = keras.Variable([start])
    values = [start]
    for _ in range(steps):
        optimizer.apply_gradients([(keras.ops.convert_to_tensor([gradient]), variable)])
        values.append(float(keras.ops.convert_to_numpy(variable)[0]))
    return [after - before for before, after in zip(values, values[1:])]


def test_names_in_issue_order() -> None:
    assert list(OPTIMIZERS) == list(EXPECTED_CLASS)


@pytest.mark.parametrize("name", list(EXPECTED_CLASS))
def test_class_and_learning_rate(name: str) -> None:
    optimizer = make_optimizer(name, 0.0125)
    assert type(optimizer) is EXPECTED_CLASS[name]
    assert float(optimizer.learning_rate) == pytest.approx(0.0125, rel=1e-6)
    # A fresh optimizer per call: a Keras optimizer binds to the variables of the first model it trains.
    assert make_optimizer(name, 0.0125) is not optimizer


@pytest.mark.parametrize("learning_rate", [1, np.float32(0.25)])
def test_learning_rate_of_other_numeric_types(learning_rate: float) -> None:
    optimizer = make_optimizer("adam", learning_rate)
    assert float(optimizer.learning_rate) == pytest.approx(float(learning_rate))


def test_sgd_moves_by_learning_rate_times_gradient_every_step() -> None:
    assert moves(make_optimizer("sgd", 0.1), gradient=1.0, steps=2) == pytest.approx([-0.1, -0.1], rel=1e-5)


def test_momentum_is_0_9_by_its_effect() -> None:
    # With momentum m the second step adds m times the first: lr*g, then lr*g*(1 + m).
    assert moves(make_optimizer("momentum", 0.1), gradient=1.0, steps=2) == pytest.approx([-0.1, -0.19], rel=1e-5)


def test_adamw_weight_decay_shrinks_a_weight_with_zero_gradient() -> None:
    adamw = make_optimizer("adamw", 0.1)
    keras_default = inspect.signature(keras.optimizers.AdamW).parameters["weight_decay"].default
    assert adamw.weight_decay == keras_default > 0
    (shrink,) = moves(adamw, gradient=0.0, steps=1, start=2.0)
    assert shrink == pytest.approx(-2.0 * 0.1 * keras_default, rel=1e-4)
    # Plain Adam leaves it alone: the shrinking is the decay, not the Adam update.
    assert moves(make_optimizer("adam", 0.1), gradient=0.0, steps=1, start=2.0) == [0.0]


@pytest.mark.parametrize("name", list(EXPECTED_CLASS))
def test_model_trains_and_loss_decreases(name: str) -> None:
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype("float32")
    y = x @ np.array([[1.0], [-2.0], [0.5], [3.0]], dtype="float32")
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(1)])
    model.compile(optimizer=make_optimizer(name, 0.05), loss="mse")
    before = [w.copy() for w in model.get_weights()]
    losses = [float(model.train_on_batch(x, y))]  # the loss before this step's update
    assert any(not np.array_equal(b, a) for b, a in zip(before, model.get_weights()))
    losses += [float(model.train_on_batch(x, y)) for _ in range(4)]
    assert int(model.optimizer.iterations) == 5
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("name", ["adamax", "Adam", "", None])
def test_unknown_name_is_one_line_listing_the_valid_names(name: object) -> None:
    with pytest.raises(ValueError) as error:
        make_optimizer(name, 0.01)
    message = str(error.value)
    assert "\n" not in message
    assert repr(name) in message
    assert "adam, sgd, momentum, rmsprop, adagrad, adamw" in message
    assert "-p optimizer=adam" in message


@pytest.mark.parametrize("learning_rate", [-0.01, math.nan, math.inf, -math.inf, "0.01", None, True])
def test_bad_learning_rate_is_one_line_naming_it(learning_rate: object) -> None:
    with pytest.raises(ValueError) as error:
        make_optimizer("adam", learning_rate)
    message = str(error.value)
    assert "\n" not in message
    assert f"learning_rate={learning_rate!r}" in message
    assert "-p learning_rate=" in message


def test_warmup_then_cosine_decay_to_a_tenth() -> None:
    optimizer = make_optimizer("adam", 0.01, warmup_steps=10, decay_steps=110, clipnorm=1.0)
    assert float(optimizer.learning_rate) == pytest.approx(0.001)  # step 0: the first of 10 warm-up steps
    schedule = keras.saving.deserialize_keras_object(optimizer.get_config()["learning_rate"])
    assert isinstance(schedule, WarmupCosineDecay)
    rates = [float(schedule(step)) for step in (4, 9, 10, 60, 110, 500)]
    # Linear to the peak by step 9; half-way through the cosine (step 60 of 10..110) the mean of peak and end.
    assert rates == pytest.approx([0.005, 0.01, 0.01, 0.0055, 0.001, 0.001], rel=1e-5)
    assert optimizer.global_clipnorm == 1.0


def test_clipping_bounds_the_step_of_a_huge_gradient() -> None:
    # SGD moves by learning_rate x gradient: a gradient of norm 1000 clipped to 1 moves 0.1, not 100.
    assert moves(make_optimizer("sgd", 0.1, clipnorm=1.0), gradient=1000.0, steps=1) == pytest.approx([-0.1])
    assert moves(make_optimizer("sgd", 0.1), gradient=1000.0, steps=1) == pytest.approx([-100.0])


@pytest.mark.parametrize(("key", "value"), [("warmup_steps", -1), ("decay_steps", 1.5), ("clipnorm", -1.0),
                                            ("clipnorm", math.nan), ("warmup_steps", True),
                                            ("weight_decay", -0.1)])
def test_bad_schedule_or_clipping_is_one_line_naming_it(key: str, value: object) -> None:
    with pytest.raises(ValueError) as error:
        make_optimizer("adam", 0.01, **{key: value})
    assert "\n" not in str(error.value) and f"{key}={value!r}" in str(error.value) and f"-p {key}=" in str(error.value)


@pytest.mark.parametrize("name", ["adam", "sgd", "adamw"])
def test_weight_decay_is_decoupled_for_any_optimizer(name: str) -> None:
    # A zero gradient leaves only the decay: the weight shrinks by learning_rate x weight_decay of itself.
    (shrink,) = moves(make_optimizer(name, 0.1, weight_decay=0.5), gradient=0.0, steps=1, start=2.0)
    assert shrink == pytest.approx(-2.0 * 0.1 * 0.5, rel=1e-4)
