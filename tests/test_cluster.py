"""The training image and the Kubeflow TFJob: pinned dependencies, and the manifest's worker command survives a kill.

There is no Docker engine in the test environment, so the image itself is not built here. What can be checked
without one is: the base image is the TensorFlow that setup.py requires and this environment runs, the pins are
the dependencies this suite runs with and satisfy setup.py, and the image the manifest names is the one the docs
build and push. The manifest's worker command is run as Kubernetes runs it, as two processes on 127.0.0.1.
"""
from __future__ import annotations

import ast
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tfzoo.cluster import local_tf_configs
from tfzoo.datasets.mnist import IDX_FILES, IDX_UBYTE, load_digits
from tfzoo.run_dir import CHECKPOINT_DIR, CONFIG_FILE, HISTORY_FILE, METRICS_FILE, MODEL_FILE

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
PINS = REPO / "cluster" / "requirements.txt"
MANIFEST = REPO / "cluster" / "tfjob.yaml"
CLUSTER_DOCS = REPO / "cluster" / "README.md"
ENV_BIN = Path(sys.executable).parent  # the environment running the suite; its `tfzoo` console script is here


# ------------------------------------------------------------------------------------------- the training image

def setup_keywords() -> dict:
    """The literal keyword arguments of setup.py's setup() call, read without running setup.py."""
    tree = ast.parse((REPO / "setup.py").read_text(encoding="utf-8"))
    call = next(node for node in ast.walk(tree)
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup")
    return {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords
            if keyword.arg in ("version", "install_requires")}


def pinned_versions() -> dict[str, str]:
    """cluster/requirements.txt as {canonical name: version}; every line must be an exact `name==version` pin."""
    pins = {}
    for line in PINS.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==" and not requirement.marker, f"not an exact pin: {line}"
            pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def installed_runtime_closure(requirements: list[Requirement]) -> dict[str, str]:
    """{canonical name: installed version} of `requirements` and everything they require here, extras left out."""
    found: dict[str, str] = {}
    pending = list(requirements)
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in found or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        distribution = metadata.distribution(requirement.name)
        found[name] = distribution.version
        pending.extend(Requirement(line) for line in distribution.requires or [])
    return found


def dockerfile_args() -> dict[str, str]:
    """The Dockerfile's build arguments with their defaults."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    return {name: default for name, default in re.findall(r"^ARG (\w+)=(\S*)$", text, re.M)}


def test_pins_are_the_tested_dependencies_within_setup_py_bounds():
    required = [Requirement(line) for line in setup_keywords()["install_requires"]]
    pins = pinned_versions()
    for requirement in required:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is in setup.py's install_requires but not pinned in {PINS}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{PINS} pins {name}=={pins[name]}, outside setup.py's {requirement}")
    tested = installed_runtime_closure(required)
    expected = "\n".join(f"{name}=={version}" for name, version in sorted(tested.items()))
    assert pins == tested, f"{PINS} must pin exactly the runtime dependencies this suite runs with:\n{expected}"


@pytest.mark.slow
def test_base_image_is_the_tensorflow_setup_py_requires_and_the_suite_runs():
    args = dockerfile_args()
    assert re.search(r"^FROM tensorflow/tensorflow:\$\{TF_VERSION\}\$\{VARIANT\}$",
                     DOCKERFILE.read_text(encoding="utf-8"), re.M)
    assert args["VARIANT"] == ""  # the CPU image unless --build-arg VARIANT=-gpu
    (tensorflow,) = [Requirement(line) for line in setup_keywords()["install_requires"]
                     if Requirement(line).name == "tensorflow"]
    assert tensorflow.specifier.contains(args["TF_VERSION"]), (args["TF_VERSION"], str(tensorflow))
    assert pinned_versions()["tensorflow"] == args["TF_VERSION"]
    # The image's own build-time check (`python -c "import tensorflow as tf; print(tf.__version__)"`), asked of this
    # process, which imported TensorFlow from this environment as that command would: the base's TensorFlow.
    assert tf.__version__ == args["TF_VERSION"]


def test_manifest_names_the_image_the_docs_build_and_push():
    image = worker_container()["image"]
    assert image.rsplit(":", 1)[1] == setup_keywords()["version"]  # the image is tagged with tfzoo's version
    docs = CLUSTER_DOCS.read_text(encoding="utf-8")
    assert f"docker build -t {image} ." in docs
    assert f"docker build --build-arg VARIANT=-gpu -t {image}-gpu ." in docs
    assert f"docker push {image}" in docs
    # Everything the Dockerfile copies is let through by .dockerignore, which lets nothing else through.
    allowed = {line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.startswith("!")}
    copied = {source.rstrip("/") for line in re.findall(r"^COPY (.+) \S+$", DOCKERFILE.read_text(), re.M)
              for source in line.split()}
    assert copied == allowed


# ------------------------------------------------------------------------------------ the TFJob's worker command

def worker_container() -> dict:
    """The container of the manifest's Worker replicas."""
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    (container,) = manifest["spec"]["tfReplicaSpecs"]["Worker"]["template"]["spec"]["containers"]
    return container


def operator_tf_configs(count: int) -> list[str]:
    """The TF_CONFIG the training operator gives Worker replica i (lower-case type, index, environment "cloud"),
    with free ports of 127.0.0.1 in place of the pods' service names."""
    configs = [json.loads(config) for config in local_tf_configs(count)]
    return [json.dumps({**config, "environment": "cloud"}) for config in configs]


def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, IDX_UBYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.round(array).astype(np.uint8).tobytes())


def write_small_mnist(folder: Path) -> None:
    """The four MNIST IDX files, holding scikit-learn's 1,797 real digits (28x28) so an epoch is a few steps."""
    digits = load_digits(seed=0)
    folder.mkdir(parents=True)
    write_idx(folder / IDX_FILES["train_images"], np.concatenate([digits.x_train, digits.x_val]))
    write_idx(folder / IDX_FILES["train_labels"], np.concatenate([digits.y_train, digits.y_val]))
    write_idx(folder / IDX_FILES["test_images"], digits.x_test)
    write_idx(folder / IDX_FILES["test_labels"], digits.y_test)


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


@pytest.mark.slow
def test_tfjob_worker_command_resumes_after_every_worker_is_killed(tmp_path):
    container = worker_container()
    # The pods see their volumes at the manifest's mount paths; here each mount is a folder of tmp_path.
    # Nothing else of the command changes: the worker command is the manifest's own.
    mounts = {mount["mountPath"]: tmp_path / mount["name"] for mount in container["volumeMounts"]}
    command = []
    for arg in [*container["command"], *container["args"]]:
        for mount_path, local in mounts.items():
            if arg == mount_path or arg.startswith(mount_path + "/"):
                arg = str(local) + arg[len(mount_path):]
        command.append(arg)
    run_dir, epochs = Path(flag(command, "--run-dir")), int(flag(command, "--epochs"))
    write_small_mnist(Path(flag(command, "--data-dir")))
    tf_configs = operator_tf_configs(2)
    # Each pod has its own devices; two workers on this one machine run on the CPU rather than share a GPU.
    environment = {**os.environ, "PATH": f"{ENV_BIN}{os.pathsep}{os.environ['PATH']}", "CUDA_VISIBLE_DEVICES": ""}

    def start(attempt: int) -> list[tuple[subprocess.Popen, Path]]:
        workers = []
        for index, tf_config in enumerate(tf_configs):  # a restarted pod keeps its name, so its address
            log = tmp_path / f"worker-{index}-{attempt}.log"
            with log.open("w") as output:
                workers.append((subprocess.Popen(command, env={**environment, "TF_CONFIG": tf_config},
                                                 cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT), log))
        return workers

    def logs(workers: list[tuple[subprocess.Popen, Path]]) -> str:
        return "\n".join(f"--- {log.name} ---\n{log.read_text()[-3000:]}" for _, log in workers)

    workers = start(0)
    deadline = time.monotonic() + 300  # a guard against a hung job, not a speed requirement
    while not (run_dir / CHECKPOINT_DIR / "checkpoint").exists():
        assert all(worker.poll() is None for worker, _ in workers), logs(workers)
        assert time.monotonic() < deadline, logs(workers)
        time.sleep(0.05)
    for worker, _ in workers:  # every pod dies at once, as when a node goes away
        worker.send_signal(signal.SIGKILL)
    for worker, _ in workers:
        assert worker.wait(timeout=60) == -signal.SIGKILL
    assert not (run_dir / MODEL_FILE).exists()  # killed before the end

    workers = start(1)  # the operator restarts the pods with the same command
    for worker, _ in workers:
        assert worker.wait(timeout=300) == 0, logs(workers)
    assert (run_dir / MODEL_FILE).is_file()
    config = json.loads((run_dir / CONFIG_FILE).read_text())
    assert len(config["resumed_at_epochs"]) == 1 and 1 <= config["resumed_at_epochs"][0] < epochs
    assert pd.read_csv(run_dir / HISTORY_FILE)["epoch"].tolist() == list(range(epochs))
    assert json.loads((run_dir / METRICS_FILE).read_text())["accuracy"] >= 0.8  # chance is 0.1
