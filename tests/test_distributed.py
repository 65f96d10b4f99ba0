"""Distribution strategies, the strategy.run loop, checkpoints, --resume, and multi-worker jobs on 127.0.0.1."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import tfzoo
from tfzoo.cli import main
from tfzoo.cluster import TFConfigError
from tfzoo.datasets import load_dataset
from tfzoo.datasets.base import steps_per_epoch
from tfzoo.training.loop import distributed_fit
from tfzoo.training.strategy import StrategyError, auto_strategy_name, configure_logical_cpus, resolve_strategy

REPO = Path(__file__).resolve().parents[1]
LAUNCHER = REPO / "scripts" / "launch_local_workers.py"
TWO_WORKERS = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 0}}
GPUS = tf.config.list_physical_devices("GPU")
NEEDS_A_GPU = pytest.mark.skipif(not GPUS, reason="no GPU on this machine: the GPU case runs where one is present")


def run_python(code: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **env})


# ------------------------------------------------------------------------------------------- strategy resolution

@pytest.mark.parametrize(
    "tf_config, message",
    [
        (None, "multi_worker needs the TF_CONFIG environment variable"),
        ("{not json", "TF_CONFIG is not valid JSON"),
        ('{"cluster": {"worker": ["a:1"]}}', "needs a 'cluster' and a 'task'"),
        ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "must map 'worker'"),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}', "is not in the cluster"),
        ('{"cluster": {"worker": ["nohostport"]}, "task": {"type": "worker", "index": 0}}', "'host:port'"),
    ],
)
def test_bad_tf_config_gets_a_clear_error(monkeypatch, tf_config, message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(TFConfigError, match=re.escape(message)):
        resolve_strategy("multi_worker")


def test_strategy_name_and_option_errors():
    with pytest.raises(StrategyError, match="unknown strategy 'horovod'; choose one of auto, default"):
        resolve_strategy("horovod")
    with pytest.raises(StrategyError, match="applies to the mirrored strategy only"):
        resolve_strategy("one_device", num_devices=2)


@pytest.mark.skipif(bool(tf.config.list_physical_devices("TPU") or os.environ.get("TPU_NAME")),
                    reason="a TPU is here: the error for a missing TPU cannot happen")
def test_missing_tpu_gets_a_clear_error():
    with pytest.raises(StrategyError, match="no TPU found .* --tpu"):
        resolve_strategy("tpu")


def test_logical_cpus_cannot_be_made_once_tensorflow_runs():
    tf.constant(1.0) + 1.0  # TensorFlow is initialized now
    with pytest.raises(StrategyError, match="already ran in this process"):
        configure_logical_cpus(3)


def test_auto_picks_by_what_is_configured(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv("TPU_NAME", raising=False)
    several_gpus = len(GPUS) > 1
    assert auto_strategy_name(None) == ("mirrored" if several_gpus else "default")
    assert resolve_strategy("auto").num_replicas_in_sync == (len(GPUS) if several_gpus else 1)  # every GPU
    assert auto_strategy_name("my-tpu") == "tpu"
    monkeypatch.setenv("TF_CONFIG", json.dumps(TWO_WORKERS))
    assert auto_strategy_name(None) == "multi_worker"
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker"}}))
    assert auto_strategy_name(None) == "default"
    assert isinstance(resolve_strategy("one_device"), tf.distribute.OneDeviceStrategy)


# --------------------------------------------------------------------------------------------- training paths

@pytest.mark.slow
@pytest.mark.parametrize("device", ["CPU", pytest.param("GPU", marks=NEEDS_A_GPU)])
def test_strategy_run_loop_gives_the_same_weights_as_fit(device):
    # One named device for both paths: under the default strategy, Keras turns XLA on for fit on a GPU ("auto").
    strategy = tf.distribute.OneDeviceStrategy(f"/{device.lower()}:0")
    data = load_dataset("synthetic_binary")
    steps = steps_per_epoch(len(data.x_train), 32)
    # GPU kernels may sum in a different order from run to run; a CPU gives the same bits.
    tolerance = {"CPU": 1e-6, "GPU": 1e-5}[device]

    def trained(use_fit: bool):
        keras.utils.set_random_seed(3)
        with strategy.scope():
            model = tfzoo.create_model("binary_mlp")
        initial = [w.copy() for w in model.get_weights()]
        train = data.training_pipeline(32, seed=3, epochs=range(0, 3))
        validation = data.pipeline("validation", 32)
        if use_fit:
            history = model.fit(train, validation_data=validation, epochs=3, steps_per_epoch=steps, shuffle=False,
                                verbose=0)
        else:
            history = distributed_fit(model, strategy, train, validation, epochs=3, initial_epoch=0,
                                      steps_per_epoch=steps, callbacks=[], verbose=0)
        return initial, model.get_weights(), history.history

    initial, fit_weights, fit_history = trained(use_fit=True)
    _, loop_weights, loop_history = trained(use_fit=False)
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(initial, fit_weights)) > 0.01  # it trained
    for a, b in zip(fit_weights, loop_weights):
        np.testing.assert_allclose(a, b, atol=tolerance)
    assert loop_history.keys() == fit_history.keys()
    for key in fit_history:
        np.testing.assert_allclose(loop_history[key], fit_history[key], rtol=10 * tolerance)


def test_training_order_depends_on_seed_and_epoch_only():
    data = load_dataset("synthetic_logistic")

    def labels(pipeline) -> np.ndarray:
        return np.concatenate([y.numpy()[:, 0] for _, y in pipeline])

    steps = steps_per_epoch(len(data.x_train), 64)
    whole = labels(data.training_pipeline(64, seed=5, epochs=range(0, 3)))
    resumed = labels(data.training_pipeline(64, seed=5, epochs=range(2, 3)))
    assert len(whole) == 3 * len(data.x_train)
    np.testing.assert_array_equal(whole[2 * len(data.x_train):], resumed)  # epoch 2 as if never interrupted
    first, second = whole[: len(data.x_train)], whole[len(data.x_train): 2 * len(data.x_train)]
    assert not np.array_equal(first, second)  # a new order each epoch
    assert sum(1 for _ in data.training_pipeline(64, seed=5, epochs=range(0, 1))) == steps


@pytest.mark.slow
@pytest.mark.parametrize("device", ["CPU", pytest.param("GPU", marks=NEEDS_A_GPU)])
def test_mirrored_matches_one_device(tmp_path, device):
    """Mirrored on 2 logical CPUs (on any machine), or on 2 GPUs (1 where there is one), against one such device:
    the same math up to rounding. (That every GPU is used by default is test_auto_picks_by_what_is_configured's.)"""
    # A fresh process: logical CPU devices exist only if made before TensorFlow runs.
    result = run_python("""
        import json, os, numpy as np, tensorflow as tf, tfzoo
        from tfzoo.training.strategy import configure_logical_cpus, resolve_strategy
        tmp, device = os.environ["RUNS"], os.environ["DEVICE"]
        if device == "GPU":
            mirrored = resolve_strategy("mirrored", num_devices=min(2, len(tf.config.list_physical_devices("GPU"))))
        elif tf.config.list_physical_devices("GPU"):  # tfzoo's mirrored would take the GPUs: name the CPUs
            configure_logical_cpus(2)
            mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        else:
            mirrored = resolve_strategy("mirrored", num_devices=2)
        one = tf.distribute.OneDeviceStrategy(mirrored.extended.worker_devices[0])  # the first of those devices
        out = {"devices": [tf.DeviceSpec.from_string(d).device_type for d in mirrored.extended.worker_devices]}
        for name, dataset, hparams in [("binary_mlp", None, {"learning_rate": 0.01}),
                                       ("mnist_mlp", "digits", {"dropout": 0.0})]:
            runs = [tfzoo.train(name, dataset=dataset, epochs=2, batch_size=64, strategy=strategy, seed=1,
                                run_dir=f"{tmp}/{name}-{label}", verbose=0, **hparams)
                    for label, strategy in [("one", one), ("mirrored", mirrored)]]
            out[name] = {
                "replicas": [json.load(open(f"{tmp}/{name}-{label}/config.json"))["num_replicas"]
                             for label in ("one", "mirrored")],
                "max_diff": max(float(np.max(np.abs(a - b))) for a, b in
                                zip(runs[0].model.get_weights(), runs[1].model.get_weights())),
                "accuracy": runs[1].metrics["accuracy"]}
        print("RESULT", json.dumps(out))
    """, RUNS=str(tmp_path), DEVICE=device)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.split("RESULT ", 1)[1])
    replicas = min(2, len(GPUS)) if device == "GPU" else 2
    assert out.pop("devices") == [device] * replicas  # one replica on each device of the kind
    for name, figures in out.items():
        assert figures["replicas"] == [1, replicas], name
        # Same math, split over the devices; GPU all-reduces may sum in another order from run to run.
        assert figures["max_diff"] <= {"CPU": 1e-5, "GPU": 1e-4}[device], (name, figures)
    assert out["mnist_mlp"]["accuracy"] >= 0.8 and out["binary_mlp"]["accuracy"] >= 0.7  # both learned, past chance


@pytest.mark.slow
def test_mixed_precision_computes_in_half_precision_with_float32_variables_and_outputs(tmp_path):
    result = tfzoo.train("binary_mlp", mixed_precision=True, run_dir=tmp_path / "run", verbose=0)
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored
    x = load_dataset("synthetic_binary").arrays("test")[0][:4]
    hidden = result.model.layers[1](tf.constant(x))
    device = tf.DeviceSpec.from_string(hidden.device).device_type
    # Where the math ran decides the half type: float16 on a GPU (fast there), bfloat16 on a CPU (or TPU).
    assert hidden.dtype == {"GPU": tf.float16, "CPU": tf.bfloat16}[device], (device, hidden.dtype)
    assert {weight.dtype for weight in result.model.weights} == {"float32"}  # variables stay float32
    # float16 gradients underflow without loss scaling; Keras wraps the optimizer for mixed_float16 only.
    loss_scaled = isinstance(result.model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert loss_scaled == (hidden.dtype == tf.float16)
    assert result.model.layers[-1].dtype_policy.name == "float32"
    assert result.model.predict(x, verbose=0).dtype == np.float32
    assert result.metrics["accuracy"] >= 0.85
    assert json.loads((tmp_path / "run" / "config.json").read_text())["mixed_precision"] is True


@pytest.mark.slow
def test_jit_compile_trains_to_the_same_place(tmp_path):
    plain = tfzoo.train("logistic_regression", epochs=3, run_dir=tmp_path / "plain", verbose=0)
    jitted = tfzoo.train("logistic_regression", epochs=3, jit_compile=True, run_dir=tmp_path / "xla", verbose=0)
    assert jitted.model.jit_compile is True
    assert jitted.metrics["accuracy"] == pytest.approx(plain.metrics["accuracy"], abs=0.01)


# ---------------------------------------------------------------------------------------------- checkpoints

@pytest.mark.slow
def test_resume_after_sigkill_continues_to_the_last_epoch(tmp_path):
    run_dir = tmp_path / "run"
    killed = run_python("""
        import os, signal, keras, tfzoo

        class KillAfterTwoEpochs(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1:  # tfzoo's checkpoint of epoch 2 ran before this callback
                    os.kill(os.getpid(), signal.SIGKILL)

        tfzoo.train("binary_mlp", epochs=4, learning_rate=0.01, run_dir=os.environ["RUN"],
                    callbacks=[KillAfterTwoEpochs()], verbose=0)
    """, RUN=str(run_dir))
    assert killed.returncode == -signal.SIGKILL
    assert len(pd.read_csv(run_dir / "history.csv")) == 2 and not (run_dir / "model.keras").exists()

    assert main(["train", "binary_mlp", "--epochs", "1", "--run-dir", str(run_dir)]) == 2  # no silent restart
    assert main(["train", "binary_mlp", "--run-dir", str(run_dir), "--resume"]) == 0
    history = pd.read_csv(run_dir / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2, 3]  # 4 epochs, not 6
    config = json.loads((run_dir / "config.json").read_text())
    assert config["resumed_at_epochs"] == [2]
    steps = steps_per_epoch(len(load_dataset("synthetic_binary").x_train), config["batch_size"])
    model = keras.saving.load_model(run_dir / "model.keras")
    assert int(model.optimizer.iterations.numpy()) == 4 * steps  # the optimizer's step count was restored
    assert json.loads((run_dir / "metrics.json").read_text())["accuracy"] >= 0.8  # the resumed run kept learning


def test_resume_refuses_what_it_cannot_continue(tmp_path, capsys):
    assert main(["train", "binary_mlp", "--resume"]) == 2
    assert "resume needs the run dir" in capsys.readouterr().err
    done = tfzoo.train("logistic_regression", epochs=1, run_dir=tmp_path / "done", verbose=0).run_dir
    assert main(["train", "logistic_regression", "--resume", "--run-dir", str(done)]) == 0  # finished: nothing to do
    assert "is a finished run with these settings" in capsys.readouterr().err
    assert main(["train", "logistic_regression", "--resume", "--run-dir", str(done), "--epochs", "2"]) == 2
    assert "is a finished run of 1 epochs, but epochs=2 was given" in capsys.readouterr().err
    (done / "model.keras").unlink()
    assert main(["train", "logistic_regression", "--resume", "--run-dir", str(done), "-p", "learning_rate=1"]) == 2
    assert "keeps the hyperparameters and data it started with" in capsys.readouterr().err


def test_step_checkpoints_are_written_during_the_epoch(tmp_path):
    tfzoo.train("logistic_regression", epochs=1, checkpoint_every=10, run_dir=tmp_path / "run", verbose=0)
    steps = steps_per_epoch(len(load_dataset("synthetic_logistic").x_train), 32)
    saved = tf.train.get_checkpoint_state(str(tmp_path / "run" / "checkpoints")).all_model_checkpoint_paths
    assert saved[-1].endswith(f"ckpt-{steps // 10 + 1}")  # a save every 10 steps, and one at the epoch's end


# -------------------------------------------------------------------------------------------- multi-worker

def launch(run_dir: Path, tmp_root: Path, *train_args: str) -> subprocess.Popen:
    """scripts/launch_local_workers.py with 2 workers; worker temp folders go under `tmp_root`.

    The workers run on the CPU even where GPUs exist: both would otherwise compute on GPU:0 at once, unlike a
    cluster's workers (a GPU set each), and NCCL, where TensorFlow picks it, refuses two ranks on one GPU.
    """
    return subprocess.Popen(
        [sys.executable, str(LAUNCHER), "--workers", "2", "--", "binary_mlp", "--run-dir", str(run_dir),
         "-p", "learning_rate=0.01", *train_args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "TMPDIR": str(tmp_root), "CUDA_VISIBLE_DEVICES": ""})


@pytest.mark.slow
def test_two_real_workers_train_and_only_the_chief_writes(tmp_path):
    run_dir, tmp_root = tmp_path / "run", tmp_path / "tmp"
    tmp_root.mkdir()
    job = launch(run_dir, tmp_root, "--epochs", "8")
    output, _ = job.communicate(timeout=400)
    assert job.returncode == 0, output[-4000:]
    assert output.count("[launcher] worker") == 2
    digests = re.findall(r"\[worker (\d)\] weights sha256: (\w+)", output)
    assert sorted(worker for worker, _ in digests) == ["0", "1"]
    assert digests[0][1] == digests[1][1]  # every worker ends with the same weights
    assert {p.name for p in run_dir.iterdir()} >= {"model.keras", "config.json", "history.csv", "metrics.json"}
    config = json.loads((run_dir / "config.json").read_text())
    assert config["strategy"] == "multi_worker" and config["num_replicas"] == 2
    assert json.loads((run_dir / "metrics.json").read_text())["accuracy"] >= 0.90
    assert list(tmp_root.iterdir()) == []  # worker 1 wrote only to a temporary folder, and removed it
