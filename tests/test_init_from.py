"""Fine-tuning with --init-from: a run starts from a finished run's weights, keeps its architecture, records it."""
from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

import tfzoo
from tfzoo.cli import main
from tfzoo.datasets import load_csv, load_dataset
from tfzoo.run_dir import load_run, weights_digest

# 600 examples in batches of 50: 8 training steps an epoch; a learning rate at which 3 epochs clearly learn.
DATA = {"name": "synthetic_binary", "num_examples": 600, "seed": 1}
SOURCE = {"epochs": 3, "batch_size": 50, "learning_rate": 0.02}


class Stop(Exception):
    """Raised by StopAfterEpoch: a run stopped after a checkpoint, like a killed one."""


class StopAfterEpoch(keras.callbacks.Callback):
    """Stops the run at the end of the first epoch, after tfzoo's own callbacks (its checkpoint) have run."""

    def on_epoch_end(self, epoch, logs=None):
        raise Stop


class LossAtStart(keras.callbacks.Callback):
    """The model's loss on the test split before its first training step."""

    def __init__(self, data) -> None:
        super().__init__()
        self.data, self.loss = data, None

    def on_train_begin(self, logs=None):
        self.loss = self.model.evaluate(self.data.pipeline("test", 50), return_dict=True, verbose=0)["loss"]


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A finished binary_mlp run to fine-tune from."""
    run_dir = tmp_path_factory.mktemp("source") / "run"
    tfzoo.train("binary_mlp", dataset=load_dataset(**DATA), run_dir=run_dir, verbose=0, **SOURCE)
    return run_dir


def fine_tune(run_dir: Path, source: Path | None, **settings) -> tfzoo.TrainResult:
    settings = {"epochs": 2, "batch_size": 50, "learning_rate": 0.001, **settings}
    return tfzoo.train("binary_mlp", dataset=load_dataset(**DATA), run_dir=run_dir, init_from=source, verbose=0,
                       **settings)


@pytest.mark.slow
def test_a_fine_tune_starts_at_the_source_runs_held_out_loss(source, tmp_path):
    data = load_dataset(**DATA)
    tuned, fresh = LossAtStart(data), LossAtStart(data)
    fine_tune(tmp_path / "tuned", source, callbacks=[tuned])  # another learning rate: a training setting
    fine_tune(tmp_path / "fresh", None, callbacks=[fresh])
    source_loss = json.loads((source / "metrics.json").read_text())["loss"]
    assert tuned.loss == pytest.approx(source_loss, rel=1e-5)
    assert tuned.loss < fresh.loss - 0.05


def test_a_fine_tune_of_another_architecture_is_refused_in_one_line(source, tmp_path, capsys):
    run_dir = tmp_path / "tuned"
    assert main(["train", "binary_mlp", "--init-from", str(source), "--run-dir", str(run_dir), "--epochs", "1",
                 "-p", "units=(12, 5)", "-p", "learning_rate=0.1"]) == 2
    assert capsys.readouterr().err == (f"tfzoo train: error: units is [10, 5] in {source}, [12, 5] here: a fine-tune "
                                       "keeps the source run's architecture; leave units out\n")
    assert not run_dir.exists()
    other_shape = load_dataset(**{**DATA, "num_features": 5})  # the input shape follows the data
    with pytest.raises(ValueError, match=r"^input_shape is \[8\] in .*, \[5\] here \(from the data\): a fine-tune "
                                         r"keeps the source run's architecture; fine-tune on data that gives the "
                                         r"same input_shape$"):
        tfzoo.train("binary_mlp", dataset=other_shape, run_dir=run_dir, init_from=source, verbose=0)
    assert not run_dir.exists()


def test_a_source_that_is_no_finished_run_of_the_model_is_refused_in_one_line(source, tmp_path, capsys):
    unfinished = tmp_path / "unfinished"
    shutil.copytree(source, unfinished)
    (unfinished / "model.keras").unlink()
    refusals = {
        tmp_path / "missing": f"--init-from {tmp_path / 'missing'} does not exist; give the run dir of a finished run "
                              "of binary_mlp",
        unfinished: f"--init-from {unfinished} is an unfinished run (no model.keras yet); finish it with `tfzoo train "
                    f"binary_mlp --run-dir {unfinished} --resume` first",
    }
    for source_dir, message in refusals.items():
        assert main(["train", "binary_mlp", "--init-from", str(source_dir), "--run-dir", str(tmp_path / "run")]) == 2
        assert capsys.readouterr().err == f"tfzoo train: error: {message}\n"
    assert main(["train", "logistic_regression", "--init-from", str(source), "--run-dir", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err == (f"tfzoo train: error: --init-from {source} is a run of binary_mlp, not "
                                       "logistic_regression; a fine-tune starts from a run of the same model\n")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_config_records_the_source_and_a_resume_keeps_it_and_its_own_checkpoint(source, tmp_path, monkeypatch):
    monkeypatch.chdir(source.parent)  # a relative --init-from is recorded resolved
    stopped = tmp_path / "stopped"
    with pytest.raises(Stop):
        fine_tune(stopped, Path(source.name), callbacks=[StopAfterEpoch()])
    config = json.loads((stopped / "config.json").read_text())
    _, source_model = load_run(source)
    recorded = str(source.resolve())
    assert config["init_from"] == recorded and config["init_from_weights_sha256"] == weights_digest(source_model)

    other = re.escape(f"init_from is '{recorded}' in config.json but '{tmp_path.resolve()}' was given")
    with pytest.raises(ValueError, match=f"^a resumed run keeps the hyperparameters and data it started with: "
                                         f"{other}; "):
        fine_tune(stopped, tmp_path, resume=True)
    resumed = fine_tune(stopped, None, resume=True)  # left out: the stored source; weights: the checkpoint's
    uninterrupted = fine_tune(tmp_path / "uninterrupted", source)
    config = json.loads((stopped / "config.json").read_text())
    assert config["init_from"] == recorded and config["resumed_at_epochs"] == [1]
    assert weights_digest(resumed.model) == weights_digest(uninterrupted.model)


def write_headlines(path: Path) -> Path:
    rows = [(f"Article {i}: the river town council met on day {i} and voted on the bridge budget.",
             f"Council votes on bridge, day {i}") for i in range(20)]
    with path.open("w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows([("article", "headline"), *rows])
    return path


@pytest.mark.slow
def test_a_language_model_fine_tunes_into_a_headline_model_from_the_command_line(tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("\n\n".join(f"Note {i}: a short text about modules and functions." for i in range(16)),
                    encoding="utf-8")
    language = tfzoo.train("text_generator", dataset=load_dataset("text_file", path=str(text), max_length=64),
                           run_dir=tmp_path / "language", epochs=1, batch_size=8, verbose=0, num_layers=1, d_model=32,
                           num_heads=2, ff_dim=32)
    assert not language.model.headline
    # A learning rate of 0 trains no step away from the weights the fine-tune starts from: the source's.
    assert main(["train", "text_generator", "--csv", str(write_headlines(tmp_path / "news.csv")), "--text-column",
                 "article", "--target", "headline", "--init-from", str(tmp_path / "language"), "--run-dir",
                 str(tmp_path / "headlines"), "--epochs", "1", "--batch-size", "8", "-p", "learning_rate=0.0",
                 "--quiet"]) == 0
    digest = weights_digest(language.model)
    assert f"weights sha256: {digest}" in capsys.readouterr().out
    config = json.loads((tmp_path / "headlines" / "config.json").read_text())
    assert config["hparams"]["headline"] is True and config["hparams"]["max_length"] == 256  # from the new data
    assert (config["hparams"]["num_layers"], config["hparams"]["d_model"]) == (1, 32)  # from the source run
    assert config["init_from_weights_sha256"] == digest
    _, tuned = load_run(tmp_path / "headlines")
    assert tuned.headline
    np.testing.assert_array_equal(tuned.get_weights()[0], language.model.get_weights()[0])


def test_a_table_fine_tune_needs_the_sources_encoding_and_refuses_another(tmp_path):
    """Weights learned on a table's categories in one order must not meet another order (same shapes, wrong
    meaning): a table whose categories rank otherwise is refused in one line; new numbers are fine."""
    rng = np.random.default_rng(0)

    def table(path: Path, colors: dict[str, float], scale: float = 1.0) -> tfzoo.TrainResult:
        frame = pd.DataFrame({"size": rng.normal(size=200) * scale,
                              "color": rng.choice(list(colors), 200, p=list(colors.values()))})
        frame["label"] = np.where(frame["size"] > 0, "yes", "no")
        frame.to_csv(path, index=False)
        return load_csv(path, "label", task="binary")

    source = tmp_path / "source"
    tfzoo.train("binary_mlp", dataset=table(tmp_path / "a.csv", {"red": 0.8, "green": 0.2}), epochs=1,
                run_dir=source, verbose=0)
    rescaled = table(tmp_path / "b.csv", {"red": 0.7, "green": 0.3}, scale=50.0)
    tuned = tfzoo.train("binary_mlp", dataset=rescaled, epochs=1, run_dir=tmp_path / "tuned", init_from=source,
                        verbose=0)
    assert json.loads((tuned.run_dir / "config.json").read_text())["init_from"] == str(source.resolve())
    flipped = table(tmp_path / "c.csv", {"red": 0.2, "green": 0.8})  # the same two colours, ranked the other way
    with pytest.raises(ValueError) as error:
        tfzoo.train("binary_mlp", dataset=flipped, epochs=1, run_dir=tmp_path / "refused", init_from=source, verbose=0)
    assert str(error.value).startswith("the categories of column 'color' differ from ")
    assert "\n" not in str(error.value) and not (tmp_path / "refused").exists()
