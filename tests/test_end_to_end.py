"""Train -> export -> serving configs -> server -> client: served answers equal the trained model's.

The same checks run against `tfzoo serve` always, and against a real TensorFlow Serving when one is given:
    TFZOO_TF_SERVING=HOST:GRPC_PORT:REST_PORT          a running tensorflow_model_server
    TFZOO_TF_SERVING_MODEL_BASE=DIR                    the model base its models.config points at
(e.g. `docker compose -f serving/docker-compose.yml up` with TFZOO_MODEL_BASE=DIR; see serving/README.md).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

import tfzoo
from tfzoo.cli import main
from tfzoo.datasets import load_dataset
from tfzoo.serving.client import Client
from tfzoo.serving.config import write_serving_configs
from tfzoo.serving.server import ModelServer, ServerOptions
from tfzoo.text.generation import generate
from tfzoo.text.tokenizer import example_prompts


def held_out(run: tfzoo.TrainResult, count: int = 6) -> np.ndarray:
    config = json.loads((run.run_dir / "config.json").read_text())
    return load_dataset(**config["dataset"]).arrays("test")[0][:count]


def assert_served_like_trained(clients: list[Client], name: str, run: tfzoo.TrainResult, **route) -> None:
    """Over every client: the primary output equals the Keras model's prediction, class ids agree."""
    spec = tfzoo.get_spec(name)
    if spec.task == "language_model":  # served like trained: the same greedy text, Unicode prompts included
        prompts = example_prompts(held_out(run)) + ["新闻标题：", "Ünïcödé ✓"]
        expected = generate(run.model, prompts)
        for client in clients:
            texts = client.predict(name, {"prompt": prompts}, **route)["text"]
            assert [text.decode() for text in texts] == expected, client.protocol
        return
    x = held_out(run)
    expected = run.model.predict(x, verbose=0)
    for client in clients:
        outputs = client.predict(name, {run.model.inputs[0].name: x}, **route)
        primary = next(key for key in ("prediction", "probability", "probabilities") if key in outputs)
        np.testing.assert_allclose(outputs[primary], expected, atol=1e-5, err_msg=client.protocol)
        if "class_id" in outputs:
            expected_ids = expected.argmax(-1) if spec.task == "multiclass" else (expected[:, 0] > 0.5)
            np.testing.assert_array_equal(outputs["class_id"], expected_ids.astype(np.int64))


def wait_for_version(client: Client, name: str, version: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        states = {status.version: status.state for status in client.status(name)}
        if states.get(version) == "AVAILABLE":
            return
        time.sleep(0.25)
    raise AssertionError(f"{name} version {version} not AVAILABLE after {seconds} s: {states}")


@pytest.fixture(scope="module")
def served(exported, tmp_path_factory):
    """Every registered model exported (the session's export of its trained run, copied) to one base and served by
    `tfzoo serve`'s ModelServer."""
    base = tmp_path_factory.mktemp("models")
    for name in tfzoo.list_models():
        shutil.copytree(exported(name), base / name / "1")
    config = write_serving_configs(base, tmp_path_factory.mktemp("config"))["models.config"]
    with ModelServer(ServerOptions(model_config_file=str(config), port=0, rest_api_port=0, file_system_poll_wait_seconds=0.2)) as server:
        rest = Client("127.0.0.1", server.rest_api_port, protocol="rest")
        grpc = Client("127.0.0.1", server.port, protocol="grpc")
        yield base, [rest, grpc]
        grpc.close()


@pytest.mark.parametrize("name", tfzoo.list_models())
def test_rest_and_grpc_answer_like_the_trained_model(served, trained_run, name):
    _, clients = served
    assert_served_like_trained(clients, name, trained_run(name))


def test_metadata_shows_named_signatures_over_both_protocols(served):
    _, (rest, grpc) = served
    for client in (rest, grpc):
        signatures = client.metadata("mnist_cnn")
        assert set(signatures) == {"serving_default", "predict_image_bytes"}
        assert set(signatures["serving_default"].outputs) == {"probabilities", "class_id"}
    assert rest.metadata("mnist_cnn") == grpc.metadata("mnist_cnn")


def test_new_export_is_served_without_restart(served, tmp_path):
    base, clients = served
    retrained = tfzoo.train("linear_regression", epochs=1, seed=11, learning_rate=0.001,
                            run_dir=tmp_path / "run", verbose=0)
    assert tfzoo.export(retrained, base).name == "2"
    for client in clients:
        wait_for_version(client, "linear_regression", 2)
    assert_served_like_trained(clients, "linear_regression", retrained)  # latest policy: version 2 answers


@pytest.mark.skipif("TFZOO_TF_SERVING" not in os.environ or "TFZOO_TF_SERVING_MODEL_BASE" not in os.environ,
                    reason="no real TF Serving given (set TFZOO_TF_SERVING=HOST:GRPC_PORT:REST_PORT and "
                           "TFZOO_TF_SERVING_MODEL_BASE=DIR)")
def test_real_tf_serving_answers_like_the_trained_model(trained_run):
    host, grpc_port, rest_port = os.environ["TFZOO_TF_SERVING"].rsplit(":", 2)
    base = Path(os.environ["TFZOO_TF_SERVING_MODEL_BASE"])
    run = trained_run("mnist_cnn")
    version = int(tfzoo.export(run, base).name)
    with Client(host, int(grpc_port), protocol="grpc", retries=10) as grpc:
        rest = Client(host, int(rest_port), protocol="rest", retries=10)
        wait_for_version(rest, "mnist_cnn", version, seconds=180)
        assert_served_like_trained([rest, grpc], "mnist_cnn", run, version=version)


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_predict_command_line(served, trained_run, protocol, tmp_path, capsys):
    _, clients = served
    address = next(client.address for client in clients if client.protocol == protocol)
    run = trained_run("binary_mlp")
    x = held_out(run, 3)
    expected = run.model.predict(x, verbose=0)
    flags = ["--grpc"] if protocol == "grpc" else []
    bodies = [json.dumps({"features": x.tolist()}), json.dumps({"instances": x.tolist()})]
    (tmp_path / "request.json").write_text(json.dumps({"inputs": {"features": x.tolist()}}))
    for body in [*bodies, "@" + str(tmp_path / "request.json")]:
        assert main(["predict", "--model", "binary_mlp", "--server", address, "--json", body, *flags]) == 0
        outputs = json.loads(capsys.readouterr().out)["outputs"]
        np.testing.assert_allclose(outputs["probability"], expected, atol=1e-5)
        assert outputs["class_id"] == (expected[:, 0] > 0.5).astype(int).tolist()

    assert main(["predict", "--model", "binary_mlp", "--server", address, "--json", '{"feature": [[1]]}', *flags]) == 2
    error = capsys.readouterr().err
    assert "feature" in error and "features" in error
    assert main(["predict", "--model", "nope", "--server", address, "--json", "[[1]]", *flags]) == 2
    assert "nope" in capsys.readouterr().err
