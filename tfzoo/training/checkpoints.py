"""Fault tolerance: the run's weights, optimizer state and position saved so `--resume` picks up where it stopped."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

# Keras' global SeedGenerator: Keras exports no accessor of its own.
from keras.src.random.seed_generator import global_seed_generator


@dataclass(frozen=True)
class Position:
    """Where training stands: `epoch` epochs finished, and `step` training steps done in the next one."""

    epoch: int = 0
    step: int = 0


def random_states(model: keras.Model) -> list[keras.Variable]:
    """The state of every random generator a training step draws from: each layer's `keras.random.SeedGenerator`
    (dropout, noise, augmentation layers) and Keras' global one (`keras.random` calls without a seed, reset by
    `keras.utils.set_random_seed` and made here if no layer made it yet).

    A step's random numbers depend on these states alone (Keras' random ops are stateless, seeded from them), and
    each step advances them: restored with the weights, a resumed run draws the masks of the uninterrupted one.
    tf.train.Checkpoint does not see them through the model (a SeedGenerator is no Trackable), so they are listed.
    """
    layer_states = [variable for variable in model.variables if variable.name == "seed_generator_state"]
    return [*layer_states, global_seed_generator().state]


class RunCheckpoint:
    """tf.train.Checkpoint of model, optimizer (step count and slots included), random generator states and the
    training position.

    Every worker of a multi-worker job saves (saving may need collective ops), each to its own folder: the chief
    to the run dir, the others to temporary folders. Every worker restores from the chief's.
    """

    def __init__(self, model: keras.Model, save_dir: Path, restore_dir: Path, *, max_to_keep: int = 3) -> None:
        model.optimizer.build(model.trainable_variables)  # slots exist before a restore fills them
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="finished_epochs")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="steps_in_epoch")
        parts = {"model": model, "optimizer": model.optimizer, "finished_epochs": self.epoch,
                 "steps_in_epoch": self.step}
        self.checkpoint = tf.train.Checkpoint(**parts, random=random_states(model))
        self.without_random = tf.train.Checkpoint(**parts)  # for checkpoints of an earlier tfzoo
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(save_dir), max_to_keep=max_to_keep)
        self.restore_dir = restore_dir

    def restore(self) -> Position:
        """Restore the latest checkpoint of the restore folder and return its position.

        With no checkpoint yet (the run stopped before its first one) nothing is restored: Position(0, 0).
        """
        latest = tf.train.latest_checkpoint(str(self.restore_dir))
        if latest is None:
            return Position()
        checkpoint = self.checkpoint
        if not any(name.startswith("random/") for name, _ in tf.train.list_variables(latest)):
            print(f"tfzoo: {latest} holds no random generator state (an earlier tfzoo wrote it): the run resumes, "
                  "but its dropout masks from here on are not those of an uninterrupted run", file=sys.stderr,
                  flush=True)
            checkpoint = self.without_random
        checkpoint.restore(latest).assert_existing_objects_matched()
        return Position(int(self.epoch.numpy()), int(self.step.numpy()))

    def save(self, position: Position) -> None:
        self.epoch.assign(position.epoch)
        self.step.assign(position.step)
        self.manager.save()


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves a RunCheckpoint after every epoch. It has no batch hook: one would make `fit` sync every step."""

    def __init__(self, checkpoint: RunCheckpoint) -> None:
        super().__init__()
        self.checkpoint = checkpoint
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        self.checkpoint.save(Position(epoch + 1, 0))


class StepCheckpoint(EpochCheckpoint):
    """Also saves every `every_steps` training steps, with the position in the epoch.

    The batch index a loop passes to `on_train_batch_end` is the step's index within its epoch (tfzoo's loop
    passes it so for an epoch resumed part-way too), so a resumed run continues from the batch after the save.
    """

    def __init__(self, checkpoint: RunCheckpoint, every_steps: int) -> None:
        super().__init__(checkpoint)
        self.every_steps = every_steps

    def on_train_batch_end(self, batch, logs=None):
        if (batch + 1) % self.every_steps == 0:
            self.checkpoint.save(Position(self.epoch, batch + 1))
