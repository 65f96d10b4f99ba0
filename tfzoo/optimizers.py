"""The optimizer as a hyperparameter: every model factory builds its optimizer by name through `make_optimizer`.

The source examples the zoo reproduces train with plain SGD, momentum, AdaGrad, RMSprop, Adam and AdamW; one
name-to-builder table lets any model be trained with any of them (`-p optimizer=sgd -p learning_rate=0.01`)
while each factory keeps its example's default. A factory may also warm the learning rate up, decay it over the
run (`WarmupCosineDecay`) and clip gradients: the text generator's recipe does.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from numbers import Integral, Real

import keras
from keras import ops

# Name -> builder taking the learning rate as a keyword; a fresh optimizer per call, since a Keras optimizer binds
# to the variables of the one model it first trains.
OPTIMIZERS: dict[str, Callable[..., keras.optimizers.Optimizer]] = {
    "adam": keras.optimizers.Adam,
    "sgd": keras.optimizers.SGD,
    # 0.9: the momentum of the classic TF1 tf.train.MomentumOptimizer examples.
    "momentum": partial(keras.optimizers.SGD, momentum=0.9),
    "rmsprop": keras.optimizers.RMSprop,
    "adagrad": keras.optimizers.Adagrad,
    "adamw": keras.optimizers.AdamW,  # Keras' own default weight decay
}


def make_optimizer(
    name: str, learning_rate: float, *, warmup_steps: int = 0, decay_steps: int = 0, clipnorm: float = 0.0,
    weight_decay: float | None = None,
) -> keras.optimizers.Optimizer:
    """A new optimizer `name` (one of OPTIMIZERS) with the given learning rate; ValueError on a bad argument.

    `warmup_steps` and `decay_steps` > 0 make the rate a `WarmupCosineDecay` with `learning_rate` as its peak;
    `clipnorm` > 0 scales each step's gradients down to that global norm when they exceed it (0: no clipping);
    `weight_decay` shrinks every weight by learning rate x weight_decay each step, decoupled from the gradient
    as in AdamW, for any of the optimizers (None: the optimizer's own default, none but for adamw's).
    """
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ValueError(f"optimizer {name!r} is not one of {', '.join(OPTIMIZERS)}; pass -p optimizer=adam "
                         f"(or another of those names)")
    # 0 is allowed: it freezes the weights.
    check_number("learning_rate", learning_rate, example="-p learning_rate=0.001")
    check_number("clipnorm", clipnorm, example="-p clipnorm=1.0 (0: no clipping)")
    decay = {}
    if weight_decay is not None:
        check_number("weight_decay", weight_decay, example="-p weight_decay=0.01 (0: none)")
        decay = {"weight_decay": float(weight_decay)}
    for key, value in (("warmup_steps", warmup_steps), ("decay_steps", decay_steps)):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
            raise ValueError(f"{key}={value!r} is not a whole number >= 0; pass e.g. -p {key}=100 (0: off)")
    rate: float | WarmupCosineDecay = float(learning_rate)
    if warmup_steps or decay_steps:
        rate = WarmupCosineDecay(float(learning_rate), warmup_steps=int(warmup_steps), decay_steps=int(decay_steps))
    return OPTIMIZERS[name](learning_rate=rate, global_clipnorm=float(clipnorm) or None, **decay)


def check_number(key: str, value: float, *, example: str) -> None:
    """ValueError, one line, unless `value` is a finite real number >= 0 (a bool is a mistake, not 1 or 0)."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{key}={value!r} is not a finite number >= 0; pass e.g. {example}")


@keras.saving.register_keras_serializable(package="tfzoo")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """The learning rate at optimizer step s (counted from 0): a linear warm-up to `peak` over the first
    `warmup_steps`, then half a cosine from `peak` down to `final_fraction * peak` at step `decay_steps`, then
    constant. `decay_steps` 0: no decay, `peak` after the warm-up.

    The rate depends on the optimizer's step count alone, which checkpoints keep, so a resumed run continues the
    schedule exactly; training past `decay_steps` goes on at the final rate.
    """

    def __init__(self, peak: float, *, warmup_steps: int = 0, decay_steps: int = 0, final_fraction: float = 0.1):
        self.peak, self.warmup_steps, self.decay_steps = peak, warmup_steps, decay_steps
        self.final_fraction = final_fraction

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warm = ops.minimum(1.0, (step + 1.0) / max(self.warmup_steps, 1))  # the first step already moves
        length = max(self.decay_steps - self.warmup_steps, 1)
        progress = ops.clip((step - self.warmup_steps) / length, 0.0, 1.0) if self.decay_steps else 0.0
        cosine = 0.5 * (1.0 + ops.cos(math.pi * progress))
        return self.peak * warm * (self.final_fraction + (1.0 - self.final_fraction) * cosine)

    def get_config(self) -> dict:
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "decay_steps": self.decay_steps,
                "final_fraction": self.final_fraction}
