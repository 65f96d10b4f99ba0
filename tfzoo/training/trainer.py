"""`train` and `evaluate`: one model, one dataset, one run dir with everything a user needs afterwards."""
from __future__ import annotations

import contextlib
import json
import math
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from tfzoo.datasets import Dataset, DataSplits, load_dataset
from tfzoo.datasets.base import steps_per_epoch
from tfzoo.files import atomic_path, remove_temporaries
from tfzoo.registry import check_hparams, create_model, get_spec
from tfzoo.run_dir import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    CURVES_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    MODEL_FILE,
    TENSORBOARD_DIR,
    as_json,
    default_run_dir,
    history_frame,
    holds_run,
    keep_history_rows,
    load_run,
    now,
    package_versions,
    read_config,
    read_history,
    refuse_used_run_dir,
    run_data,
    run_task,
    worker_scratch_dir,
    weights_digest,
    write_json,
)
from tfzoo.tables import table_model
from tfzoo.training.callbacks import EpochScalars
from tfzoo.training.checkpoints import EpochCheckpoint, Position, RunCheckpoint, StepCheckpoint
from tfzoo.training.fine_tune import (FRESH, check_architecture, check_table, keeps_architecture, load_source_weights,
                                     source_run)
from tfzoo.training.loop import distributed_evaluate, distributed_fit
from tfzoo.training.plots import plot_curves
from tfzoo.training.strategy import is_chief, resolve_strategy, strategy_name


@dataclass
class TrainResult:
    """What `train` produced: the run dir, the trained model, per-epoch history and held-out metrics."""

    run_dir: Path
    model: keras.Model
    history: dict[str, list[float]]
    metrics: dict[str, float]


def train(
    name: str,
    *,
    dataset: str | DataSplits | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    strategy: str | tf.distribute.Strategy = "auto",
    run_dir: str | Path | None = None,
    resume: bool = False,
    init_from: str | Path | None = None,
    seed: int | None = None,
    early_stopping: int | None = None,
    checkpoint_every: int | None = None,
    mixed_precision: bool | None = None,
    jit_compile: bool | None = None,
    callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: int | str = "auto",
    **hparams: Any,
) -> TrainResult:
    """Train a registered model under a tf.distribute strategy and write its run dir.

    `dataset` is a dataset name (see `tfzoo.datasets.list_datasets()`), a `DataSplits` from a loader such as
    `tfzoo.datasets.load_csv`, or None for the model's default. `batch_size` is the global batch size, split
    over the strategy's replicas. `strategy` is a name of `tfzoo.training.strategy.STRATEGIES` or a strategy.
    `seed` (default 0) drives the weights, the data split and the batch order.
    A checkpoint is saved after every epoch (and every `checkpoint_every` steps when set). `resume=True`
    continues the run in `run_dir` from its last checkpoint, repeating no step the checkpoint includes; data,
    hyperparameters and settings given again must match the run's config.json (left out, the stored ones are
    used; `epochs` may change the target), a run dir that holds no run yet starts the run, and a finished run
    given its own settings is returned as it stands (its weights, history and metrics). `early_stopping`
    is a patience in epochs on the validation loss (best weights are restored; patience and best weights start
    over at a resume). `mixed_precision` computes in float16 on GPU, bfloat16 on TPU and CPU (outputs stay
    float32); `jit_compile` compiles the steps with XLA. `callbacks` are extra Keras callbacks, run after
    tfzoo's own. The input shape (and class count) follow the data unless given as hyperparameters. Under a
    multi-worker strategy only the chief writes `run_dir`; the other workers write to temporary folders they
    remove. A factory hyperparameter `decay_steps` left out is set to the run's training steps (epochs x steps
    per epoch), so a learning rate that decays over the run (tfzoo.optimizers.WarmupCosineDecay) ends with it.
    `verbose` is Keras' (0 silent, 1 progress bar, 2 one line per epoch); "auto" is 1 on a terminal, else 2. A
    resumed run says where it resumes, unless verbose is 0.
    `init_from` fine-tunes: the run starts from the weights of that finished run of the same model (not its
    optimizer state: the optimizer and learning-rate schedule start afresh), with its hyperparameters (over them
    its config.json's `fine_tune_hparams`, when it names some) unless given here and but for those that follow the
    data; a model whose weights would differ in shape from the source's
    is refused (see tfzoo.training.fine_tune). config.json records the source (`init_from`, resolved) and the
    digest of its weights; a resume keeps it. Left out, a model with a starting point for the data starts there
    (text_generator on article/headline pairs: the pre-trained headline model tfzoo ships, see tfzoo.text.pretrained),
    unless the hyperparameters given change a weight's shape; `init_from="fresh"` starts from new weights.
    On a table (a dataset with a schema) with `epochs` left out, the run makes at least MIN_TABLE_STEPS updates,
    with early stopping (patience a tenth of the epochs, unless `early_stopping` is given): see `table_schedule`.
    """
    strategy = resolve_strategy(strategy)  # first: logical CPU devices can only be made before TensorFlow runs
    verbose = progress_verbosity(verbose)
    spec = get_spec(name)
    check_hparams(name, hparams)
    check_counts(epochs=epochs, batch_size=batch_size, checkpoint_every=checkpoint_every,
                 early_stopping=early_stopping)
    settings = {"batch_size": batch_size, "seed": seed, "early_stopping": early_stopping,
                "mixed_precision": mixed_precision, "jit_compile": jit_compile,
                "init_from": _source_path(init_from)}
    source = None  # the model of a fine-tune's source run, read when the fine-tune starts
    if resume and run_dir is None:
        raise ValueError("resume needs the run dir of the run to continue (--run-dir DIR)")
    if resume and not holds_run(Path(run_dir)):
        if verbose:
                print(f"tfzoo: {run_dir} holds no run yet; --resume starts it from the beginning", file=sys.stderr,
                  flush=True)
        resume = False
    if resume:
        config = resumed_config(Path(run_dir), name, settings, hparams)
        if (Path(run_dir) / MODEL_FILE).exists():
            return finished_run(Path(run_dir), config, dataset, epochs)
        data = resumed_data(Path(run_dir), config, dataset)
    else:
        settings = {**settings, "batch_size": batch_size or spec.batch_size, "seed": seed or 0,
                    "mixed_precision": bool(mixed_precision), "jit_compile": bool(jit_compile)}
        run_dir = Path(run_dir) if run_dir is not None else default_run_dir(name)
        refuse_used_run_dir(run_dir)
        data = (dataset if isinstance(dataset, Dataset)
                else load_dataset(dataset or spec.default_dataset, seed=settings["seed"]))
        if init_from is None and spec.starting_point is not None:  # e.g. a shipped pre-trained run for this data
            start = spec.starting_point(data)  # unless the hyperparameters given ask for another architecture
            init_from = start if start is not None and keeps_architecture(start, name, hparams) else None
        elif init_from == FRESH:
            init_from = None
        settings["init_from"] = _source_path(init_from)
        source_config, source = source_run(Path(init_from), name) if init_from is not None else ({}, None)
        # A fine-tune's hyperparameters are its source run's (those the factory still has), not the defaults, and
        # then those the source names for its fine-tunes (a shipped starting point's learning rate).
        source_hparams = {**source_config.get("hparams", {}), **source_config.get("fine_tune_hparams", {})}
        base_hparams = {**spec.hparams, **{key: value for key, value in source_hparams.items() if key in spec.hparams}}
        task = spec.task.run_task(spec, data)
        config = {"model": name, "task": task.name,
                  "hparams": {**base_hparams, **task.fit_hparams(spec, data, hparams)},
                  "dataset": data.source, "dataset_fingerprint": data.fingerprint, **settings}
        if source is not None:
            config["init_from_weights_sha256"] = weights_digest(source)
            check_table(source_config.get("table"), data.schema, source_dir=Path(init_from))
        if data.schema is not None:
            config["table"] = data.schema.to_json()
            if epochs is None:  # the user left the length to tfzoo: long enough to converge, stopped when it has
                steps = steps_per_epoch(data.num_examples("train"), config["batch_size"])
                epochs, patience = table_schedule(spec.epochs, steps)
                if config["early_stopping"] is None:
                    config["early_stopping"] = patience
    run_dir = Path(run_dir)
    epochs = config["epochs"] = epochs or config.get("epochs") or spec.epochs
    if not resume and "decay_steps" in spec.hparams and "decay_steps" not in hparams:
        # A learning rate that decays over the run needs its length; a resumed run keeps the one it started with.
        config["hparams"]["decay_steps"] = epochs * steps_per_epoch(data.num_examples("train"), config["batch_size"])
    given_hparams = set(hparams)  # the others follow the data, the source run of a fine-tune or the defaults
    seed, batch_size, hparams = config["seed"], config["batch_size"], config["hparams"]
    config.update(strategy=strategy_name(strategy), num_replicas=strategy.num_replicas_in_sync,
                  versions=package_versions(), created=config.get("created") or now())

    keras.utils.set_random_seed(seed)
    chief = is_chief(strategy)
    write_dir = run_dir if chief else worker_scratch_dir(run_dir)
    policy = mixed_precision_policy(strategy) if config["mixed_precision"] else None
    with precision_policy(policy), strategy.scope():
        model = create_model(name, **hparams)
        if data.schema is not None:  # a user's table: raw columns in, the preprocessing inside the model
            model = table_model(model, data.schema)
        model.jit_compile = config["jit_compile"]
        checkpoint = RunCheckpoint(model, write_dir / CHECKPOINT_DIR, restore_dir=run_dir / CHECKPOINT_DIR)
    if not resume and source is not None:  # before anything is written: a refused fine-tune leaves no run dir
        check_architecture(model, source, source_dir=Path(init_from), name=name, source_hparams=base_hparams,
                           hparams=hparams, given=given_hparams)
    try:
        position = checkpoint.restore() if resume else Position()
        if config.get("init_from") and position == Position():  # a fine-tune with nothing trained yet
            load_source_weights(model, strategy, config, source)  # (a later resume has the checkpoint's weights)
        started_epochs = position.epoch + (position.step > 0)
        if started_epochs > epochs:
            raise ValueError(f"epochs={epochs} is fewer than the {started_epochs} epochs {run_dir} has already "
                             f"started; give epochs >= {started_epochs}")
        if resume:
            if verbose:
                steps = steps_per_epoch(data.num_examples("train"), batch_size)
                print(f"tfzoo: resuming {run_dir} at epoch {position.epoch + 1} of {epochs}, step {position.step} of "
                      f"{steps} ({position.epoch} epochs and {position.step} steps already trained)",
                      file=sys.stderr, flush=True)
            config.setdefault("resumed_at_epochs", []).append(position.epoch)
            config.setdefault("resumed_at_steps", []).append(position.step)
        remove_temporaries(write_dir)  # of a predecessor killed while it wrote model.keras, config.json, ...
        keep_history_rows(write_dir / HISTORY_FILE, position.epoch)
        write_dir.mkdir(parents=True, exist_ok=True)
        write_json(write_dir / CONFIG_FILE, config)

        kept_history = history_frame(write_dir / HISTORY_FILE)
        all_callbacks: list[keras.callbacks.Callback] = [
            # First: it adds the learning rate to what the logger writes, unless a resumed history.csv lacks the column.
            EpochScalars(write_dir / TENSORBOARD_DIR,
                         rate_in_logs=kept_history.empty or "learning_rate" in kept_history.columns),
            keras.callbacks.CSVLogger(str(write_dir / HISTORY_FILE), append=True),  # the file is kept in step above
            StepCheckpoint(checkpoint, checkpoint_every) if checkpoint_every else EpochCheckpoint(checkpoint),
        ]
        if config["early_stopping"] is not None:
            all_callbacks.append(
                keras.callbacks.EarlyStopping(patience=config["early_stopping"], restore_best_weights=True))
        all_callbacks.extend(callbacks or [])
        fit_from(position, model, strategy, data, epochs=epochs, batch_size=batch_size, seed=seed,
                 callbacks=all_callbacks, verbose=verbose)
        if uses_custom_loop(strategy):
            metrics = distributed_evaluate(model, strategy, data.pipeline("test", batch_size))
        else:
            metrics = evaluate_model(model, data, batch_size)
        history = read_history(write_dir / HISTORY_FILE)

        write_json(write_dir / METRICS_FILE, metrics)
        if history:  # a worker resumed after the last epoch has no rows of its own
            plot_curves(history, write_dir / CURVES_FILE, title=f"{name} on {data.name}",
                        stopped_early=len(next(iter(history.values()))) < epochs)
        with atomic_path(write_dir / MODEL_FILE) as temporary:  # last: model.keras marks a finished run
            model.save(temporary)
    finally:
        if not chief:
            shutil.rmtree(write_dir, ignore_errors=True)
    return TrainResult(run_dir=run_dir, model=model, history=history, metrics=metrics)


def _source_path(init_from: str | Path | None) -> str | None:
    """config.json's `init_from`: the source run dir, resolved; None for new weights (None or FRESH)."""
    return None if init_from in (None, FRESH) else str(Path(init_from).resolve())


def progress_verbosity(verbose: int | str) -> int:
    """Keras' `verbose` for where stdout goes: "auto" is the progress bar (1) on a terminal and one line per epoch
    (2) into a file or pipe, where a bar's redraws would be thousands of lines."""
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return int(verbose)


# A table of a few hundred rows is a handful of batches an epoch: the factories' epoch counts (the source
# examples') then make a few hundred updates, too few to converge (measured in BENCHMARKS.md, "Your own tables").
MIN_TABLE_STEPS = 3000
MAX_TABLE_EPOCHS = 1000


def table_schedule(default_epochs: int, steps: int) -> tuple[int, int]:
    """(epochs, early-stopping patience) for a table when the user gives no epochs: at least MIN_TABLE_STEPS
    updates (and the model's own epochs), at most MAX_TABLE_EPOCHS; patience a tenth of the epochs, at least 10."""
    epochs = min(MAX_TABLE_EPOCHS, max(default_epochs, math.ceil(MIN_TABLE_STEPS / steps)))
    return epochs, max(10, epochs // 10)


def fit_from(position: Position, model: keras.Model, strategy: tf.distribute.Strategy, data: Dataset, *,
             epochs: int, batch_size: int, seed: int, callbacks: list[keras.callbacks.Callback],
             verbose: int | str) -> None:
    """Train from `position` to the end of epoch `epochs`, skipping the batches the position says were trained.

    The batches of an epoch depend on (seed, epoch) alone, so skipping the first `position.step` of them gives
    exactly the batches an uninterrupted run would train next. Keras' `fit` cannot start an epoch part-way, so
    an interrupted epoch is finished by tfzoo's loop and `fit` takes the whole epochs after it (callbacks then see
    two trainings, each with its on_train_begin and on_train_end).
    """
    steps = steps_per_epoch(data.num_examples("train"), batch_size)
    validation = data.pipeline("validation", batch_size)

    def batches(first_epoch: int, last_epoch: int) -> tf.data.Dataset:
        return data.training_pipeline(batch_size, seed=seed, epochs=range(first_epoch, last_epoch))

    first_whole_epoch = position.epoch
    if uses_custom_loop(strategy) or position.step:
        last = epochs if uses_custom_loop(strategy) else position.epoch + 1
        distributed_fit(model, strategy, batches(position.epoch, last).skip(position.step), validation,
                        epochs=last, initial_epoch=position.epoch, initial_step=position.step,
                        steps_per_epoch=steps, callbacks=callbacks, verbose=verbose)
        first_whole_epoch = last
    if first_whole_epoch < epochs and not model.stop_training:
        model.fit(batches(first_whole_epoch, epochs), validation_data=validation, epochs=epochs,
                  initial_epoch=first_whole_epoch, steps_per_epoch=steps, callbacks=callbacks, verbose=verbose,
                  shuffle=False)  # the pipeline already shuffles, each epoch by (seed, epoch)


def check_counts(**counts: int | None) -> None:
    """Refuse counts out of range, naming the argument and what it must be."""
    minimum = {"epochs": 1, "batch_size": 1, "checkpoint_every": 1, "early_stopping": 0}
    meaning = {"epochs": "a number of epochs", "batch_size": "the global batch size",
               "checkpoint_every": "a checkpoint every N training steps; leave it out to checkpoint after every "
                                   "epoch only",
               "early_stopping": "a patience in epochs; leave it out to train every epoch"}
    for key, value in counts.items():
        if value is not None and value < minimum[key]:
            raise ValueError(f"{key} must be >= {minimum[key]} ({meaning[key]}), got {value}")


def resumed_config(run_dir: Path, name: str, settings: dict[str, Any], hparams: dict[str, Any]) -> dict:
    """The stored config of the run to resume, after checking that what is given again matches it."""
    if not (run_dir / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{run_dir} holds checkpoints but no {CONFIG_FILE}, so its settings are unknown; "
                                "it cannot be resumed: start the run in another --run-dir")
    config = read_config(run_dir)
    if config["model"] != name:
        raise ValueError(f"{run_dir} is a run of {config['model']}, not {name}")
    given = {key: value for key, value in settings.items() if value is not None}
    given.update(hparams)
    stored = {**config["hparams"], **{key: config.get(key) for key in settings}}
    changed = [f"{key} is {stored.get(key)!r} in {CONFIG_FILE} but {value!r} was given"
               for key, value in given.items()
               if as_json(value) != stored.get(key)]
    if changed:
        raise ValueError(f"a resumed run keeps the hyperparameters and data it started with: {'; '.join(changed)}; "
                         f"give the stored values or leave them out (or start a new run in another --run-dir)")
    return config


def finished_run(run_dir: Path, config: dict[str, Any], dataset: str | Dataset | None,
                 epochs: int | None) -> TrainResult:
    """The result of a finished run resumed with its own settings (checked by `resumed_config` before), as a
    repeated export returns its version: a worker killed after writing model.keras, restarted with the same
    command line (a TFJob's restartPolicy: OnFailure), has nothing left to do and succeeds."""
    if dataset is not None:
        resumed_data(run_dir, config, dataset)  # other data given: refused
    if epochs is not None and epochs != config["epochs"]:
        raise ValueError(f"{run_dir} is a finished run of {config['epochs']} epochs, but epochs={epochs} was given; "
                         "a finished run trains no further: give its epochs or leave them out (or start a new run "
                         "in another --run-dir)")
    print(f"tfzoo: {run_dir} is a finished run with these settings ({MODEL_FILE} is written); nothing to resume, "
          "returning it", file=sys.stderr, flush=True)
    _, model = load_run(run_dir)
    metrics = json.loads((run_dir / METRICS_FILE).read_text(encoding="utf-8"))
    return TrainResult(run_dir=run_dir, model=model, history=read_history(run_dir / HISTORY_FILE), metrics=metrics)


def resumed_data(run_dir: Path, config: dict[str, Any], dataset: str | Dataset | None) -> Dataset:
    """The data of a resumed run: the data given again (or the stored source), checked against the fingerprint."""
    stored_name = config["dataset"]["name"]
    if isinstance(dataset, str) and dataset != stored_name:
        raise ValueError(f"a resumed run keeps the hyperparameters and data it started with: dataset is "
                         f"{stored_name!r} in {CONFIG_FILE} but {dataset!r} was given; give the same data or leave "
                         "it out (or start a new run in another --run-dir)")
    if dataset is None:
        return run_data(run_dir, config)
    data = dataset if isinstance(dataset, Dataset) else load_dataset(dataset, seed=config["seed"])
    if data.fingerprint != config["dataset_fingerprint"]:
        raise ValueError(f"a resumed run keeps the hyperparameters and data it started with: the data given "
                         f"({data.name}, fingerprint {data.fingerprint[:12]}) is not the data of {run_dir} "
                         f"({stored_name}, fingerprint {config['dataset_fingerprint'][:12]} in {CONFIG_FILE}), or it "
                         "changed since; give the same data (or start a new run in another --run-dir)")
    return data


def uses_custom_loop(strategy: tf.distribute.Strategy) -> bool:
    """Keras 3's fit fails under MultiWorkerMirroredStrategy (keras-team/keras#20585); tfzoo's loop does not."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def mixed_precision_policy(strategy: tf.distribute.Strategy) -> str:
    """float16 where GPUs have fast float16 math; bfloat16 on TPUs and CPUs."""
    on_gpu = tf.config.list_physical_devices("GPU") and not isinstance(strategy, tf.distribute.TPUStrategy)
    return "mixed_float16" if on_gpu else "mixed_bfloat16"


@contextlib.contextmanager
def precision_policy(policy: str | None) -> Iterator[None]:
    """Build layers under a dtype policy, then restore the global one (it is process-wide state)."""
    previous = keras.config.dtype_policy()
    if policy:
        keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def evaluate(run_dir: str | Path, *, verbose: int | str = "auto") -> dict[str, float]:
    """Reload a run's model and dataset and return its metrics on the held-out test split, with the scores its
    task adds (a headline run: ROUGE and BLEU of its headlines and of a lead baseline, see Task.held_out_scores)."""
    run_dir = Path(run_dir)
    config, model = load_run(run_dir)
    data = run_data(run_dir, config)
    metrics = evaluate_model(model, data, config["batch_size"], verbose=verbose)
    return {**metrics, **run_task(config).held_out_scores(model, data)}


def evaluate_model(model: keras.Model, data: DataSplits, batch_size: int, *,
                   verbose: int | str = 0) -> dict[str, float]:
    """Metrics of `model` on the test split, as plain floats."""
    results = model.evaluate(data.pipeline("test", batch_size), return_dict=True, verbose=verbose)
    return {key: float(value) for key, value in results.items()}
