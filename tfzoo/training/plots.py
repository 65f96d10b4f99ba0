"""Learning curves as a PNG: one panel per metric, training and validation together.

Epochs are counted from 0, as history.csv and TensorBoard count them. Loss panels have a log scale, so that one
spike does not flatten the rest of the curve; every panel marks the best epoch (the lowest validation loss, or
training loss without validation) and, when early stopping ended the run, the epoch it stopped at.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # runs on servers and in CI: no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from tfzoo.files import atomic_path  # noqa: E402


def best_epoch(history: dict[str, list[float]]) -> int | None:
    """The epoch (from 0) of the lowest validation loss, else of the lowest training loss; None without a finite one."""
    losses = history.get("val_loss") or history.get("loss") or []
    finite = [(value, epoch) for epoch, value in enumerate(losses) if math.isfinite(value)]
    return min(finite)[1] if finite else None


def draw_curves(history: dict[str, list[float]], *, title: str, stopped_early: bool = False) -> Figure:
    """The figure of `plot_curves`: every metric per epoch (train solid, validation dashed), marks included."""
    names = [key for key in history if not key.startswith("val_") and key != "learning_rate"]
    best = best_epoch(history)
    figure, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.6), squeeze=False)
    for axis, name in zip(axes[0], names):
        epochs = range(len(history[name]))  # history.csv's epoch column
        axis.plot(epochs, history[name], marker="o", label="train")
        if f"val_{name}" in history:
            axis.plot(epochs, history[f"val_{name}"], marker="o", linestyle="--", label="validation")
        values = [v for key in (name, f"val_{name}") for v in history.get(key, []) if math.isfinite(v)]
        if "loss" in name and values and min(values) > 0:
            axis.set_yscale("log")
        if best is not None:
            axis.axvline(best, color="tab:green", alpha=0.6, label=f"best epoch {best}")
        if stopped_early:
            axis.axvline(len(epochs) - 1, color="tab:red", linestyle=":", label=f"early stop at epoch {len(epochs) - 1}")
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_curves(history: dict[str, list[float]], path: Path, *, title: str, stopped_early: bool = False) -> Path:
    """Plot every metric of a Keras history per epoch to `path` (see the module docstring); `stopped_early`: early
    stopping ended the run at its last epoch."""
    figure = draw_curves(history, title=title, stopped_early=stopped_early)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100)
    plt.close(figure)
    return path
