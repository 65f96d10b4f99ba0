"""tfzoo.train / tfzoo.evaluate: every model learns its task, and the run dir holds what the README promises."""
import csv
import json

import keras
import numpy as np
import pytest
from conftest import MNIST_T10K

import tfzoo
from tfzoo.datasets import load_dataset



@pytest.fixture(scope="module")
def linear_run(tmp_path_factory):
    return tfzoo.train("linear_regression", run_dir=tmp_path_factory.mktemp("linear") / "run", verbose=0)


def test_linear_regression_recovers_the_least_squares_coefficients(linear_run):
    data = load_dataset(**json.loads((linear_run.run_dir / "config.json").read_text())["dataset"])
    x, y = data.arrays("train")
    design = np.hstack([x, np.ones((len(x), 1), dtype=x.dtype)])
    solution = np.linalg.lstsq(design, y, rcond=None)[0]
    kernel, bias = linear_run.model.layers[-1].get_weights()
    np.testing.assert_allclose(kernel[:, 0], solution[:-1, 0], atol=0.05)
    np.testing.assert_allclose(bias, solution[-1], atol=0.05)


# The digit models train with batches of 128, a quarter of the steps of their default 32, to keep the suite fast,
# and for 15 and 20 epochs: measured on digits' test split after each epoch, mnist_mlp stays at 0.967-0.986 from
# epoch 10 to 30 (0.978 at 15) and mnist_cnn at 0.978-0.994 from epoch 13 to 30 (0.989 at 20).
@pytest.mark.slow
@pytest.mark.parametrize(
    "name, dataset, epochs, batch_size, threshold",
    [
        ("logistic_regression", None, None, None, 0.90),
        ("binary_mlp", None, None, None, 0.90),
        ("lstm_classifier", None, 8, None, 0.90),
        ("mnist_mlp", "digits", 15, 128, 0.95),
        ("mnist_cnn", "digits", 20, 128, 0.97),
    ],
)
def test_model_learns_its_task_on_held_out_data(tmp_path, name, dataset, epochs, batch_size, threshold):
    result = tfzoo.train(name, dataset=dataset, epochs=epochs, batch_size=batch_size, run_dir=tmp_path / "run",
                         verbose=0)
    assert result.metrics["accuracy"] >= threshold, result.metrics


@pytest.mark.slow
def test_mnist_cnn_reaches_97_percent_on_real_mnist(tmp_path):
    data = load_dataset("mnist", data_dir=str(MNIST_T10K))
    assert len(data.x_test) == 2000
    result = tfzoo.train("mnist_cnn", dataset=data, epochs=8, batch_size=128, run_dir=tmp_path / "run", verbose=0)
    assert result.metrics["accuracy"] >= 0.97, result.metrics


def test_run_dir_holds_model_config_history_curves_metrics_and_tensorboard(linear_run):
    run_dir = linear_run.run_dir
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"] == "linear_regression"
    assert config["epochs"] == tfzoo.get_spec("linear_regression").epochs
    assert config["hparams"]["input_shape"] == [10] and config["hparams"]["learning_rate"] == 0.01
    assert config["dataset"]["name"] == "synthetic_regression" and config["seed"] == 0
    assert {"tensorflow", "keras", "tfzoo"} <= set(config["versions"])

    with open(run_dir / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == config["epochs"]
    assert {"epoch", "loss", "val_loss", "mae", "val_mae"} <= set(rows[0])
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])

    assert json.loads((run_dir / "metrics.json").read_text()) == linear_run.metrics
    assert set(linear_run.metrics) == {"loss", "mae"}
    assert list((run_dir / "tensorboard").rglob("events.out.tfevents.*")), "no TensorBoard event files"

    curves = (run_dir / "curves.png").read_bytes()
    assert curves.startswith(b"\x89PNG")
    image = keras.utils.img_to_array(keras.utils.load_img(run_dir / "curves.png"))
    assert image.shape[1] > image.shape[0] > 200 and image.std() > 10  # two panels side by side, not blank


def test_saved_model_keras_reloads_and_predicts_the_same(linear_run):
    reloaded = keras.saving.load_model(linear_run.run_dir / "model.keras")
    x = np.random.default_rng(1).normal(size=(8, 10)).astype("float32")
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), linear_run.model.predict(x, verbose=0), atol=1e-6)


def test_evaluate_reproduces_the_held_out_metrics(linear_run):
    metrics = tfzoo.evaluate(linear_run.run_dir)
    assert metrics.keys() == linear_run.metrics.keys()
    for key, value in linear_run.metrics.items():
        assert metrics[key] == pytest.approx(value, rel=1e-5)


@pytest.mark.slow
def test_same_seed_gives_identical_metrics_and_another_seed_does_not(tmp_path):
    def run(seed, folder):
        return tfzoo.train("binary_mlp", epochs=3, seed=seed, run_dir=tmp_path / folder, verbose=0)

    first, second, other = run(7, "a"), run(7, "b"), run(8, "c")
    assert first.metrics == second.metrics
    assert first.history == second.history
    assert other.metrics != first.metrics


def test_early_stopping_stops_when_validation_loss_stalls(tmp_path):
    # learning_rate=0 freezes the weights, so the validation loss cannot improve after epoch 1.
    result = tfzoo.train("linear_regression", epochs=20, early_stopping=2, learning_rate=0.0,
                         run_dir=tmp_path / "run", verbose=0)
    assert len(result.history["loss"]) == 3


def test_csv_width_sets_the_model_input(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 7))
    header = ",".join(f"f{i}" for i in range(7)) + ",label"
    rows = [",".join(map(str, row)) + f",{int(row[0] + row[1] > 0)}" for row in x]
    (tmp_path / "data.csv").write_text("\n".join([header, *rows]) + "\n")
    data = tfzoo.datasets.load_csv(tmp_path / "data.csv", "label", task="binary")
    result = tfzoo.train("logistic_regression", dataset=data, epochs=2, run_dir=tmp_path / "run", verbose=0)
    assert {tensor.name: tuple(tensor.shape) for tensor in result.model.inputs} == {f"f{i}": (None,) for i in range(7)}
    assert result.model.get_layer("logistic_regression").input_shape == (None, 7)  # the factory's model: 7 wide


def test_evaluate_and_export_refuse_data_that_changed_since_training(tmp_path):
    rng = np.random.default_rng(0)
    rows = [",".join(map(str, row)) for row in rng.normal(size=(200, 4))]
    (tmp_path / "data.csv").write_text("\n".join(["a,b,c,y", *rows]) + "\n")
    data = tfzoo.datasets.load_csv(tmp_path / "data.csv", "y", task="regression")
    run = tfzoo.train("linear_regression", dataset=data, epochs=1, run_dir=tmp_path / "run", verbose=0).run_dir
    assert set(tfzoo.evaluate(run, verbose=0)) >= {"loss"}
    (tmp_path / "data.csv").write_text("\n".join(["a,b,c,y", *rows[:-1], "0,0,0,0"]) + "\n")  # one row edited
    for step in (lambda: tfzoo.evaluate(run, verbose=0), lambda: tfzoo.export(run, tmp_path / "models")):
        with pytest.raises(ValueError, match="the data behind .* changed since training"):
            step()
    assert not (tmp_path / "models").exists() or not list((tmp_path / "models").rglob("saved_model.pb"))


def test_model_and_data_task_mismatch_is_refused(tmp_path):
    with pytest.raises(ValueError, match="regression model but dataset 'digits' is a multiclass task"):
        tfzoo.train("linear_regression", dataset="digits", run_dir=tmp_path / "run")


def test_input_shape_that_contradicts_the_data_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"input_shape=\(4,\) does not match the data's example shape \(10,\)"):
        tfzoo.train("linear_regression", input_shape=(4,), run_dir=tmp_path / "run")


def test_a_finished_run_dir_is_never_overwritten(linear_run):
    with pytest.raises(FileExistsError, match="already holds a trained run"):
        tfzoo.train("linear_regression", run_dir=linear_run.run_dir)


def test_evaluate_on_a_folder_that_is_not_a_run_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing config.json, model.keras"):
        tfzoo.evaluate(tmp_path)
