"""GPU settings for every test, and fixtures shared by the export and serving tests: one small trained run per
registered model, and one export of each."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

# XLA compiles the text generator's token loop at every new batch size, tens of times in the suite: its backend at
# optimization level 0 compiles in about two thirds of the time. Set before TensorFlow is imported (XLA reads its
# flags once) and inherited by the servers and validating processes the tests start; a user's XLA_FLAGS stay.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")

import tensorflow as tf  # noqa: E402

import tfzoo

# On a GPU machine, TensorFlow would give this process nearly all GPU memory at its first op, leaving none to the
# training and serving processes the tests start (they inherit the environment).
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
# The tests compare float32 results at CPU tolerances; GPUs from Ampere on would compute float32 matrix products
# in TF32 (10-bit mantissa) by default. Off here and in child processes (cuBLAS/cuDNN read the variable).
os.environ.setdefault("NVIDIA_TF32_OVERRIDE", "0")
tf.config.experimental.enable_tensor_float_32_execution(False)

# `make test-fast` runs `pytest -m "not slow"`: the tests that take seconds each are marked `slow` in their own
# files. A test that uses the session's trained runs, or a module's `tfzoo serve` process (`server`), is slow by that
# alone (the first to ask trains every model it names, the text generator for a minute).
SLOW_FIXTURES = {"trained_run", "exported", "server"}
# `make test` runs the suite in two processes (pytest-xdist, `--dist loadgroup`): each module runs whole in one of
# them, so its module-scoped servers and trainings happen once, and every test that uses the session's trained runs
# goes to the process that trained them, so no model is trained or exported twice.
SESSION_RUNS = {"trained_run", "exported"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if SLOW_FIXTURES & fixtures:
            item.add_marker(pytest.mark.slow)
        item.add_marker(pytest.mark.xdist_group("session_runs" if SESSION_RUNS & fixtures else item.module.__name__))


# Real data shipped with the tests (sources and licences in tests/data/README.md).
TEST_DATA = Path(__file__).resolve().parent / "data"
MNIST_T10K = TEST_DATA / "mnist-t10k"  # the real MNIST test set, IDX files
TF_SERVING_TESTDATA = TEST_DATA / "tf-serving-testdata"  # TF Serving's own test SavedModels and configs
# Offline data for the models whose default dataset may need a download.
OFFLINE_DATASET = {"mnist_mlp": "digits", "mnist_cnn": "digits"}
# Models whose defaults are slow or teach too little in 2 epochs: quick settings that learn (not converge) in a
# minute. The digit models' default batch of 32 takes 4x the steps of 128.
QUICK_TRAINING = {"mnist_mlp": {"batch_size": 128}, "mnist_cnn": {"batch_size": 128}}


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tfzoo.TrainResult]:
    """trained_run(name): the model trained for 2 epochs (with its QUICK_TRAINING) on its (offline) data, trained
    once per session."""
    runs: dict[str, tfzoo.TrainResult] = {}

    def get(name: str) -> tfzoo.TrainResult:
        if name not in runs:
            settings = {"epochs": 2, **QUICK_TRAINING.get(name, {})}
            runs[name] = tfzoo.train(name, dataset=OFFLINE_DATASET.get(name), **settings,
                                     run_dir=tmp_path_factory.mktemp(name) / "run", verbose=0)
        return runs[name]

    return get


class Exports:
    """exported(name): trained_run(name) exported by `tfzoo.export` (validated in a fresh process, as every export
    is) to `model_base`/NAME/1, once per session; returns the version folder that export returned.

    Many tests only read an export of a quickly trained model (its signatures, its answers, served or batched);
    each export spends seconds in its fresh validating process, so they share one. The folders are read-only to
    the tests: a test that changes an export, or serves it beside other versions, copies it first."""

    def __init__(self, trained_run: Callable[[str], tfzoo.TrainResult], model_base: Path):
        self.trained_run, self.model_base = trained_run, model_base
        self.versions: dict[str, Path] = {}

    def __call__(self, name: str) -> Path:
        if name not in self.versions:
            self.versions[name] = tfzoo.export(self.trained_run(name), self.model_base)
        return self.versions[name]


@pytest.fixture(scope="session")
def exported(trained_run, tmp_path_factory: pytest.TempPathFactory) -> Exports:
    return Exports(trained_run, tmp_path_factory.mktemp("exported") / "models")
