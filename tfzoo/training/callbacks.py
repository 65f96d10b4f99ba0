"""Keras callbacks of tfzoo's own, where the stock ones cost training speed."""
from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf


class EpochScalars(keras.callbacks.Callback):
    """Per-epoch loss, metrics and learning rate as TensorBoard scalars, under the tags Keras' TensorBoard callback
    uses (`epoch_learning_rate`: the optimizer's rate at the epoch's end, a schedule's included). The rate is also
    added to the epoch's logs as `learning_rate`, so callbacks after this one (CSVLogger: history.csv) record it.

    keras.callbacks.TensorBoard hooks every training batch; a callback with batch hooks makes `fit` sync
    with the device after each step, which cost ~30% of the throughput of a small model on CPU. This one
    only acts at the end of an epoch.
    """

    def __init__(self, log_dir: str | Path, *, rate_in_logs: bool = True) -> None:
        super().__init__()
        self.log_dir = Path(log_dir)
        self.rate_in_logs = rate_in_logs  # False: TensorBoard only (a history.csv begun without the column)
        self.writers: dict[str, tf.summary.SummaryWriter] = {}

    def on_train_begin(self, logs=None):
        self.writers = {split: tf.summary.create_file_writer(str(self.log_dir / split))
                        for split in ("train", "validation")}

    def on_epoch_end(self, epoch, logs=None):
        logs = {} if logs is None else logs  # the dict every callback of the epoch sees
        scalars = dict(logs)
        if getattr(self.model, "optimizer", None) is not None:
            scalars["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            if self.rate_in_logs:
                logs["learning_rate"] = scalars["learning_rate"]
        for name, value in scalars.items():
            split, metric = ("validation", name[4:]) if name.startswith("val_") else ("train", name)
            with self.writers[split].as_default():
                tf.summary.scalar(f"epoch_{metric}", value, step=epoch)
        for writer in self.writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self.writers.values():
            writer.close()
