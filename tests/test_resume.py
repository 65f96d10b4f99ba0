"""--resume after a SIGKILL at any moment: the run ends with the steps and weights of an uninterrupted one."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import tfzoo
from tfzoo.cli import build_parser, main
from tfzoo.datasets import load_dataset
from tfzoo.training.checkpoints import Position, RunCheckpoint

# 280 training examples in batches of 70 (35 a worker on two): 4 steps an epoch, 12 in the run. With dropout: a
# resumed step must draw the masks the uninterrupted run drew there (the random generators' state is checkpointed).
RUN = {"epochs": 3, "batch_size": 70, "learning_rate": 0.01, "seed": 3, "dropout": 0.3}
DATA = {"name": "synthetic_binary", "num_examples": 400, "seed": 3}
STEPS_PER_EPOCH, TOTAL_STEPS = 4, 12

# Runs the jobs of argv[1] one after the other; a job is a list of trainings run together, each in its own process
# with its own environment. A training SIGKILLs itself after global step kill["at"], or after the callbacks of epoch
# kill["epoch_end"] (tfzoo's own callbacks, checkpoints included, run before the ones a caller adds). With
# kill["barrier"], a folder, it first waits there for the job's kill["workers"] trainings to reach the same point:
# a worker that died at once could still be owed its part of a collective by the other, which would then fail
# with "Socket closed" instead of being killed where the test says. Prints each job's exit codes. One TensorFlow import serves every training: each is a process forked before TensorFlow ran
# anything, so it starts like a fresh one.
TRAININGS = textwrap.dedent("""
    import json, os, signal, sys, time, traceback, keras, tfzoo
    from tfzoo.datasets import load_dataset

    class Kill(keras.callbacks.Callback):
        def __init__(self, kill):
            super().__init__()
            self.kill = kill

        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.optimizer.iterations.numpy()) == self.kill.get("at"):
                self.die()

        def on_epoch_end(self, epoch, logs=None):
            if epoch == self.kill.get("epoch_end"):
                self.die()

        def die(self):
            if "barrier" in self.kill:
                os.makedirs(self.kill["barrier"], exist_ok=True)
                open(os.path.join(self.kill["barrier"], str(os.getpid())), "w").close()
                while len(os.listdir(self.kill["barrier"])) < self.kill["workers"]:
                    time.sleep(0.01)
            os.kill(os.getpid(), signal.SIGKILL)

    def start(settings, environment):
        pid = os.fork()
        if pid == 0:
            try:
                os.environ.update(environment)
                kill, data = settings.pop("kill"), load_dataset(**settings.pop("data"))
                tfzoo.train("binary_mlp", dataset=data, resume=True, callbacks=[Kill(kill)], verbose=0, **settings)
            except BaseException:
                traceback.print_exc()
                os._exit(1)
            os._exit(0)
        return pid

    for job in json.loads(sys.argv[1]):
        pids = [start(settings, environment) for settings, environment in job]
        print(json.dumps([os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]), flush=True)
""")

KILLS = {  # id: (checkpoint_every, kill, position the resume starts from: (finished epochs, steps in the epoch))
    "first-epoch-before-any-checkpoint": (2, {"at": 1}, (0, 0)),
    "mid-epoch-after-a-step-checkpoint": (2, {"at": 3}, (0, 2)),
    "after-the-last-step-checkpoint-before-the-epoch-checkpoint": (2, {"at": 8}, (1, 4)),
    "mid-epoch-with-epoch-checkpoints-only": (None, {"at": 7}, (1, 0)),
    "right-after-an-epoch-checkpoint": (None, {"epoch_end": 0}, (1, 0)),
    "after-the-last-epoch-checkpoint": (2, {"epoch_end": 2}, (3, 0)),
}
MULTI_WORKER_KILL = {"at": 7}  # both workers, after the step checkpoint at (1, 2)


def train(run_dir: Path, checkpoint_every: int | None, **extra) -> tfzoo.training.trainer.TrainResult:
    return tfzoo.train("binary_mlp", dataset=load_dataset(**DATA), run_dir=run_dir, checkpoint_every=checkpoint_every,
                       verbose=0, **RUN, **extra)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for each in sockets:
        each.bind(("127.0.0.1", 0))
    ports = [each.getsockname()[1] for each in sockets]
    for each in sockets:
        each.close()
    return ports


@pytest.fixture(scope="module")
def killed_runs(tmp_path_factory) -> dict[str, Path]:
    """Every run of KILLS SIGKILLed at its point, and a two-worker run killed and restarted: id -> run dir."""
    root = tmp_path_factory.mktemp("killed")
    jobs = [[({**RUN, "data": DATA, "run_dir": str(root / name), "checkpoint_every": every, "kill": kill}, {})]
            for name, (every, kill, _) in KILLS.items()]
    ports = free_ports(2)
    workers = [{"TF_CONFIG": json.dumps({"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
                                         "task": {"type": "worker", "index": index}})} for index in range(2)]
    worker_run = {**RUN, "data": DATA, "run_dir": str(root / "multi_worker"), "checkpoint_every": 2,
                  "strategy": "multi_worker"}
    killed_together = {**MULTI_WORKER_KILL, "barrier": str(root / "kill-barrier"), "workers": len(workers)}
    jobs += [[({**worker_run, "kill": kill}, environment) for environment in workers]
             for kill in (killed_together, {})]  # killed, then restarted with the same arguments
    # Uninterrupted on two workers too: each replica draws its own dropout masks, so one device's run differs.
    jobs.append([({**worker_run, "run_dir": str(root / "multi_worker_uninterrupted"), "kill": {}}, environment)
                 for environment in workers])
    done = subprocess.run([sys.executable, "-c", TRAININGS, json.dumps(jobs)], capture_output=True, text=True,
                          timeout=400, env={**os.environ, "TMPDIR": str(root), "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    exit_codes = [json.loads(line) for line in done.stdout.splitlines()]
    assert exit_codes == [[-signal.SIGKILL]] * len(KILLS) + [[-signal.SIGKILL] * 2, [0, 0], [0, 0]], \
        done.stderr[-3000:]
    return {name: root / name for name in [*KILLS, "multi_worker", "multi_worker_uninterrupted"]}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return train(tmp_path_factory.mktemp("uninterrupted") / "run", checkpoint_every=None)


@pytest.mark.slow
@pytest.mark.parametrize("kill", KILLS)
def test_a_killed_run_resumes_to_the_uninterrupted_steps_and_weights(killed_runs, uninterrupted, kill):
    run_dir = killed_runs[kill]
    checkpoint_every, _, position = KILLS[kill]
    assert not (run_dir / "model.keras").exists()

    resumed = train(run_dir, checkpoint_every, resume=True)

    config = json.loads((run_dir / "config.json").read_text())
    assert (config["resumed_at_epochs"], config["resumed_at_steps"]) == ([position[0]], [position[1]])
    # The optimizer's step count comes back with the checkpoint and counts every step after it: equal to the
    # uninterrupted run's only if no step the checkpoint includes was trained again.
    assert int(resumed.model.optimizer.iterations.numpy()) == TOTAL_STEPS
    for got, expected in zip(resumed.model.get_weights(), uninterrupted.model.get_weights()):
        # Bit-identical on CPU (measured); the margin allows for a GPU's reduction order.
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    history = pd.read_csv(run_dir / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2]
    np.testing.assert_allclose(history["val_loss"], uninterrupted.history["val_loss"], rtol=1e-5)
    if position[1] == STEPS_PER_EPOCH:  # no training step was left in that epoch: it was only validated and logged
        assert history.loc[position[0], ["loss", "accuracy"]].isna().all()


@pytest.mark.slow
def test_two_workers_killed_mid_epoch_restart_with_the_same_arguments_and_finish_the_run(killed_runs):
    run_dir = killed_runs["multi_worker"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["strategy"] == "multi_worker" and config["num_replicas"] == 2
    assert (config["resumed_at_epochs"], config["resumed_at_steps"]) == ([1], [2])
    model = keras.saving.load_model(run_dir / "model.keras")
    assert int(model.optimizer.iterations.numpy()) == TOTAL_STEPS
    uninterrupted = keras.saving.load_model(killed_runs["multi_worker_uninterrupted"] / "model.keras")
    for got, expected in zip(model.get_weights(), uninterrupted.get_weights()):
        np.testing.assert_array_equal(got, expected)
    assert pd.read_csv(run_dir / "history.csv")["epoch"].tolist() == [0, 1, 2]
    # Worker 1 writes to a temporary folder named by run dir and task: the SIGKILLed worker's folder was cleared
    # by its restart, which removed it at the end.
    assert not [p for p in run_dir.parent.iterdir() if p.name.startswith("tfzoo-worker-")]


@pytest.mark.slow
def test_the_same_command_line_with_resume_continues_a_killed_run(tmp_path, capsys):
    run_dir = tmp_path / "run"
    command = ["train", "binary_mlp", "--dataset", "synthetic_binary", "--run-dir", str(run_dir), "--epochs", "8",
               "--batch-size", "700", "-p", "learning_rate=0.01", "--resume"]
    job = subprocess.Popen([sys.executable, "-m", "tfzoo", *command], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    while not (run_dir / "checkpoints" / "checkpoint").exists() and job.poll() is None:
        time.sleep(0.01)  # kill it once the first epoch is saved: 7 epochs before it ends
    os.kill(job.pid, signal.SIGKILL)
    _, stderr = job.communicate(timeout=60)
    assert job.returncode == -signal.SIGKILL, stderr[-3000:]
    assert "holds no run yet; --resume starts it from the beginning" in stderr

    for flag, value, difference in [("--batch-size", "350", "batch_size is 700 in config.json but 350 was given"),
                                    ("-p", "learning_rate=0.1", "learning_rate is 0.01 in config.json but 0.1 was"),
                                    ("--seed", "1", "seed is 0 in config.json but 1 was given")]:
        changed = list(command)
        if flag in changed:
            changed[changed.index(flag) + 1] = value
        else:
            changed += [flag, value]
        assert main(changed) == 2
        error = capsys.readouterr().err
        assert len(error.strip().splitlines()) == 1 and difference in error, error

    # What a writer killed mid-write leaves (atomic_path's hidden temporaries: a model.keras being saved, a
    # config.json): the restart removes them and nothing else.
    (run_dir / ".model.k1ll3d.tmp.keras").write_bytes(b"half a zip")
    (run_dir / ".config.k1ll3d.tmp.json").write_text("{")
    (run_dir / ".notes").write_text("the user's own")
    assert main(command) == 0
    config = json.loads((run_dir / "config.json").read_text())
    assert len(config["resumed_at_epochs"]) == 1
    assert sorted(path.name for path in run_dir.glob(".*")) == [".notes"]
    model = keras.saving.load_model(run_dir / "model.keras")
    assert int(model.optimizer.iterations.numpy()) == 8 * 2
    assert pd.read_csv(run_dir / "history.csv")["epoch"].tolist() == list(range(8))
    capsys.readouterr()
    # Restarted after it wrote model.keras (a TFJob's restartPolicy: OnFailure): the same line succeeds, saying so,
    # and leaves the finished run as it was; other settings are still refused.
    finished = (run_dir / "model.keras").read_bytes()
    assert main(command) == 0
    out, err = capsys.readouterr()
    assert "is a finished run with these settings" in err and f"run dir: {run_dir}" in out
    assert (run_dir / "model.keras").read_bytes() == finished
    assert json.loads((run_dir / "config.json").read_text())["resumed_at_epochs"] == config["resumed_at_epochs"]
    for changed, difference in [(["--batch-size", "350"], "batch_size is 700 in config.json but 350 was given"),
                                (["--epochs", "9"], "is a finished run of 8 epochs, but epochs=9 was given")]:
        line = list(command)
        line[line.index(changed[0]) + 1] = changed[1]
        assert main(line) == 2
        error = capsys.readouterr().err
        assert len(error.strip().splitlines()) == 1 and difference in error, error


def test_a_checkpoint_without_random_generator_state_still_resumes(tmp_path, capsys):
    def model() -> keras.Model:
        inputs = keras.Input((4,))
        return keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dropout(0.5)(inputs)))

    written = model()
    written.compile("adam", "mse")
    written.optimizer.build(written.trainable_variables)
    epochs = tf.Variable(2, dtype=tf.int64)
    earlier = tf.train.Checkpoint(model=written, optimizer=written.optimizer, finished_epochs=epochs,
                                  steps_in_epoch=tf.Variable(0, dtype=tf.int64))  # as tfzoo wrote them before
    tf.train.CheckpointManager(earlier, str(tmp_path), max_to_keep=1).save()
    resumed = model()
    resumed.compile("adam", "mse")
    assert RunCheckpoint(resumed, tmp_path / "new", restore_dir=tmp_path).restore() == Position(2, 0)
    assert "holds no random generator state" in capsys.readouterr().err


def test_train_flags_that_resume_compares_default_to_not_given() -> None:
    """`--seed` defaulted to 0, which resume compared with the stored seed: left out, it refused the resume."""
    args = build_parser().parse_args(["train", "binary_mlp"])
    assert [args.seed, args.batch_size, args.early_stopping, args.mixed_precision, args.jit_compile,
            args.validation_fraction, args.test_fraction] == [None] * 7


@pytest.mark.slow
def test_a_resume_without_seed_or_fractions_takes_the_stored_ones_for_the_data_and_the_run(tmp_path, capsys) -> None:
    table = tmp_path / "table.csv"
    table.write_text("a,b,y\n" + "".join(f"{i % 7},{i % 3},{i % 5 * 0.5}\n" for i in range(60)))
    run_dir = tmp_path / "run"
    command = ["train", "linear_regression", "--csv", str(table), "--target", "y", "--run-dir", str(run_dir)]
    assert main([*command, "--seed", "3", "--epochs", "1", "--validation-fraction", "0.3"]) == 0
    (run_dir / "model.keras").unlink()  # as if killed after its last checkpoint
    assert main([*command, "--resume", "--epochs", "2"]) == 0, capsys.readouterr().err
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["seed"], config["epochs"], config["resumed_at_epochs"]) == (3, 2, [1])
    assert (config["dataset"]["validation_fraction"], config["dataset"]["test_fraction"]) == (0.3, 0.15)


@pytest.mark.parametrize(
    "argument, value, message",
    [
        ("checkpoint_every", 0, "checkpoint_every must be >= 1"),
        ("checkpoint_every", -1, "checkpoint_every must be >= 1"),
        ("early_stopping", -1, "early_stopping must be >= 0"),
        ("batch_size", 0, "batch_size must be >= 1"),
        ("epochs", 0, "epochs must be >= 1"),
    ],
)
def test_counts_out_of_range_are_refused(tmp_path, argument, value, message):
    with pytest.raises(ValueError, match=message):
        tfzoo.train("linear_regression", run_dir=tmp_path / "run", **{argument: value})
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_resume_refuses_other_data_and_settings_and_uses_the_stored_ones_when_left_out(tmp_path):
    run_dir = tmp_path / "run"
    train(run_dir, None)
    (run_dir / "model.keras").unlink()  # as if killed after its last epoch checkpoint
    other = load_dataset(**{**DATA, "num_examples": 401})
    with pytest.raises(ValueError, match="the data given .* is not the data of"):
        tfzoo.train("binary_mlp", dataset=other, run_dir=run_dir, resume=True, verbose=0)
    with pytest.raises(ValueError, match="dataset is 'synthetic_binary' in config.json but 'digits' was given"):
        tfzoo.train("binary_mlp", dataset="digits", run_dir=run_dir, resume=True, verbose=0)
    with pytest.raises(ValueError, match="early_stopping is None in config.json but 2 was given"):
        tfzoo.train("binary_mlp", run_dir=run_dir, resume=True, early_stopping=2, verbose=0)
    with pytest.raises(ValueError, match="epochs=2 is fewer than the 3 epochs .* has already started"):
        tfzoo.train("binary_mlp", run_dir=run_dir, resume=True, epochs=2, verbose=0)
    # Left out, data and settings are the run's own; epochs raises the target.
    resumed = tfzoo.train("binary_mlp", run_dir=run_dir, resume=True, epochs=4, verbose=0)
    assert int(resumed.model.optimizer.iterations.numpy()) == TOTAL_STEPS + STEPS_PER_EPOCH
    assert pd.read_csv(run_dir / "history.csv")["epoch"].tolist() == [0, 1, 2, 3]
    assert json.loads((run_dir / "config.json").read_text())["epochs"] == 4
    # Finished: resumed again with its own settings, the run is returned as it stands; other settings are refused.
    again = tfzoo.train("binary_mlp", dataset=load_dataset(**DATA), run_dir=run_dir, resume=True, epochs=4, verbose=0,
                        **{key: value for key, value in RUN.items() if key != "epochs"})
    assert again.run_dir == run_dir and again.history == resumed.history and again.metrics == resumed.metrics
    for got, expected in zip(again.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match="early_stopping is None in config.json but 2 was given"):
        tfzoo.train("binary_mlp", run_dir=run_dir, resume=True, early_stopping=2, verbose=0)
    with pytest.raises(ValueError, match="the data given .* is not the data of"):
        tfzoo.train("binary_mlp", dataset=other, run_dir=run_dir, resume=True, verbose=0)
