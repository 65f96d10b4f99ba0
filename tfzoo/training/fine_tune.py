"""Fine-tuning: a run that starts from the weights of a finished run of the same model (`--init-from RUN_DIR`).

What a fine-tune may change is decided by the weights themselves, not by a list of hyperparameters: the model built
for the new run must have weights of the same shapes as the source run's, in the same order. So learning rate,
dropout, schedules, the optimizer, a text generator's `headline` or `max_length` (its positions are a constant, not a
weight) may differ, for any registered model, plug-ins included; what changes a weight's shape is refused.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from tfzoo.registry import create_model
from tfzoo.run_dir import CONFIG_FILE, MODEL_FILE, as_json, load_run, read_config, weights_digest
from tfzoo.tables.schema import TableSchema

ARCHITECTURE_RULE = "a fine-tune keeps the source run's architecture"
FRESH = "fresh"  # init_from (--init-from) meaning new weights, also where the model has a starting point for the data


def source_run(run_dir: Path, name: str) -> tuple[dict[str, Any], keras.Model]:
    """The config and trained model of the run a fine-tune of `name` starts from; one line saying what to do when
    `run_dir` is not a finished run of that model."""
    if not run_dir.is_dir():
        raise FileNotFoundError(f"--init-from {run_dir} does not exist; give the run dir of a finished run of {name}")
    if not (run_dir / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"--init-from {run_dir} is not a tfzoo run dir (no {CONFIG_FILE}); give the run dir "
                                f"of a finished run of {name}")
    model_name = read_config(run_dir)["model"]
    if model_name != name:
        raise ValueError(f"--init-from {run_dir} is a run of {model_name}, not {name}; a fine-tune starts from a "
                         f"run of the same model")
    if not (run_dir / MODEL_FILE).is_file():
        raise FileNotFoundError(f"--init-from {run_dir} is an unfinished run (no {MODEL_FILE} yet); finish it with "
                                f"`tfzoo train {name} --run-dir {run_dir} --resume` first")
    return load_run(run_dir)


def check_architecture(model: keras.Model, source: keras.Model, *, source_dir: Path, name: str,
                       source_hparams: dict[str, Any], hparams: dict[str, Any], given: set[str]) -> None:
    """Refuse in one line a model whose weights differ in shape (or number) from the source run's, naming the
    hyperparameters whose change alone changes a weight's shape (each with both values), else the first weight.

    `source_hparams` and `hparams` are the full hyperparameters of the source run and of this one; `given` names
    those the caller gave (the others followed the data or the source run), to say what to do about each.
    """
    if shapes(model) == shapes(source):
        return
    differing = [key for key in hparams if as_json(hparams[key]) != as_json(source_hparams.get(key))]
    source_shapes = built_shapes(name, source_hparams)
    causes = [key for key in differing if built_shapes(name, {**source_hparams, key: hparams[key]}) != source_shapes]
    reasons = [f"{key} is {as_json(source_hparams.get(key))!r} in {source_dir}, {as_json(hparams[key])!r} here"
               + ("" if key in given else " (from the data)") for key in causes]
    if not reasons:  # no one hyperparameter alone (several together, or a table's columns): name the first weight
        reasons = [first_difference(model, source, source_dir)]
    todo = [f"leave {key} out" if key in given else f"fine-tune on data that gives the same {key}" for key in causes]
    raise ValueError(f"{'; '.join(reasons)}: {ARCHITECTURE_RULE}; "
                     f"{', '.join(todo) or 'give the source run its own hyperparameters and data of its shape'}")


def check_table(source_table: dict[str, Any] | None, schema: TableSchema | None, *, source_dir: Path) -> None:
    """Refuse in one line a table fine-tune whose table is encoded otherwise than the source run's.

    The loaded weights learned the source's encoding: its columns, an embedding row or one-hot slot per category
    in the order of each vocabulary (by frequency in the source's rows), a hashed column's bins, one output per
    class. A table encoded otherwise would meet the weights with other meanings, often with no shape changing.
    Numeric statistics (a column's mean and variance, a regression target's) may differ: they are the new
    table's, a shift the fine-tune learns."""
    if source_table is None and schema is None:
        return
    if source_table is None or schema is None:
        raise ValueError(f"--init-from {source_dir} was {'not ' if source_table is None else ''}trained on a table "
                         f"and this run's data is {'a' if schema is not None else 'no'} table: a table fine-tune "
                         "starts from a run on a table of the same columns")
    source = TableSchema.from_json(source_table)

    def encoding(table: TableSchema) -> list[tuple[str, Any]]:
        return [("the columns", [(column.name, column.kind) for column in table.columns]),
                *((f"the categories of column {column.name!r}", (column.vocabulary, column.bins))
                  for column in table.columns),
                ("the classes", table.classes)]

    for (what, there), (_, here) in zip(encoding(source), encoding(schema)):
        if here != there:
            raise ValueError(f"{what} differ from {source_dir}'s ({_short(here)} here, {_short(there)} there): a "
                             "table fine-tune needs the source's columns, categories (in its order: most frequent "
                             "first) and classes; train a new run on this table instead")


def _short(value: Any, limit: int = 80) -> str:
    """A value for a one-line message, cut at `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def load_source_weights(model: keras.Model, strategy: tf.distribute.Strategy, config: dict[str, Any],
                        source: keras.Model | None = None) -> None:
    """Set `model`'s weights (built under `strategy`) to those of the fine-tune's source run, config["init_from"]:
    `source` when given, else its model.keras read again (a resumed fine-tune stopped before its first checkpoint),
    which must still hold the weights config.json's digest recorded. No optimizer state: the optimizer starts fresh."""
    if source is None:
        source_dir = Path(config["init_from"])
        _, source = source_run(source_dir, config["model"])
        if weights_digest(source) != config["init_from_weights_sha256"]:
            raise ValueError(f"the weights of --init-from {source_dir} changed since this fine-tune started from "
                             f"them (their sha256 is not init_from_weights_sha256 in {CONFIG_FILE}); start the "
                             "fine-tune again in another --run-dir")
    with strategy.scope():  # mirrored variables are assigned on every replica
        model.set_weights(source.get_weights())


def keeps_architecture(run_dir: Path, name: str, hparams: dict[str, Any]) -> bool:
    """Whether `name` built with the finished run's hyperparameters updated by `hparams` has its weight shapes."""
    source_hparams = read_config(run_dir)["hparams"]
    return built_shapes(name, {**source_hparams, **hparams}) == built_shapes(name, source_hparams)


def first_difference(model: keras.Model, source: keras.Model, source_dir: Path) -> str:
    """The first weight whose shape differs from the source's, or else the differing numbers of weights."""
    for ours, theirs in zip(model.weights, source.weights):
        if tuple(ours.shape) != tuple(theirs.shape):
            return f"weight {ours.path} is {tuple(theirs.shape)} in {source_dir}, {tuple(ours.shape)} here"
    return f"the model has {len(source.weights)} weights in {source_dir}, {len(model.weights)} here"


def shapes(model: keras.Model) -> list[tuple[int, ...]]:
    """The shape of every weight, in the model's order."""
    return [tuple(weight.shape) for weight in model.weights]


def built_shapes(name: str, hparams: dict[str, Any]) -> list[tuple[int, ...]] | None:
    """The weight shapes of `name` built with `hparams`; None when the factory refuses them (then that change
    alone cannot keep the source architecture either)."""
    try:
        return shapes(create_model(name, **hparams))
    except ValueError:
        return None
