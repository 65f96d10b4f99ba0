"""tfzoo.training.plots: curves.png's scales, epoch numbers and marks, read back from the figure it draws."""
from __future__ import annotations

import matplotlib.pyplot as plt

from tfzoo.training.plots import best_epoch, draw_curves, plot_curves

# A spike at epoch 1, the best validation loss at epoch 2, then two epochs without improvement.
HISTORY = {"loss": [1.0, 50.0, 0.2, 0.15, 0.12], "accuracy": [0.5, 0.4, 0.8, 0.85, 0.9],
           "val_loss": [1.1, 60.0, 0.25, 0.3, 0.35], "val_accuracy": [0.5, 0.3, 0.8, 0.8, 0.79]}


def marks(axis) -> dict[str, float]:
    """The vertical marks of a panel: {legend label: epoch}."""
    return {line.get_label(): line.get_xdata()[0] for line in axis.get_lines()
            if line.get_label() not in ("train", "validation")}


def test_losses_are_on_a_log_scale_epochs_count_from_0_and_the_best_and_stopping_epochs_are_marked():
    """curves.png had a linear loss scale, no best-epoch or early-stop mark, and epochs counted from 1."""
    figure = draw_curves(HISTORY, title="t", stopped_early=True)
    loss, accuracy = figure.axes
    assert (loss.get_title(), loss.get_yscale(), accuracy.get_yscale()) == ("loss", "log", "linear")
    assert list(loss.get_lines()[0].get_xdata()) == [0, 1, 2, 3, 4]  # as history.csv's epoch column
    assert marks(loss) == marks(accuracy) == {"best epoch 2": 2, "early stop at epoch 4": 4}
    plt.close(figure)


def test_without_early_stopping_or_validation_only_the_best_training_loss_is_marked(tmp_path):
    history = {"loss": [0.5, 0.1, 0.2]}
    assert best_epoch(history) == 1 and best_epoch({"loss": [float("nan")]}) is None
    figure = draw_curves(history, title="t")
    assert marks(figure.axes[0]) == {"best epoch 1": 1}
    plt.close(figure)
    assert plot_curves(history, tmp_path / "curves.png", title="t").read_bytes().startswith(b"\x89PNG")


def test_a_loss_that_reaches_zero_or_below_keeps_a_linear_scale():
    figure = draw_curves({"loss": [1.0, 0.0]}, title="t")
    assert figure.axes[0].get_yscale() == "linear"
    plt.close(figure)
