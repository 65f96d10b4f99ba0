"""The epoch clock every training benchmark reads."""
from __future__ import annotations

import time

import keras


class EpochTimer(keras.callbacks.Callback):
    """Wall seconds of each epoch: its training and validation (callbacks listed before this one included)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seconds.append(time.perf_counter() - self.started)
