"""tfzoo.export / tfzoo.validate: TF Serving's layout, named signatures, atomic versions, real checks."""
from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import zlib

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import graph_pb2

import tfzoo
from tfzoo.cli import main
from tfzoo.datasets import load_dataset
from tfzoo.export.saved_model import read_meta_graph
from tfzoo.export.validate import graph_ops, non_core_ops, served_predict, xla_parts
from tfzoo.export.warmup import REFERENCE_FILE, read_logs, read_warmup, write_reference
from tfzoo.images import MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE
from tfzoo.serving.loader import load_servable
from tfzoo.serving.protocol.status import ServingError
from tfzoo.text.generation import generate
from tfzoo.text.tokenizer import example_prompts

# The README's signature table: serving_default inputs and outputs with their dtypes.
EXPECTED_SIGNATURES = {
    "linear_regression": ({"features": "float32"}, {"prediction": "float32"}),
    "logistic_regression": ({"features": "float32"}, {"probability": "float32", "class_id": "int64"}),
    "binary_mlp": ({"features": "float32"}, {"probability": "float32", "class_id": "int64"}),
    "mnist_mlp": ({"image": "float32"}, {"probabilities": "float32", "class_id": "int64"}),
    "mnist_cnn": ({"image": "float32"}, {"probabilities": "float32", "class_id": "int64"}),
    "lstm_classifier": ({"sequence": "float32"}, {"probability": "float32", "class_id": "int64"}),
    "text_generator": ({"prompt": "string"}, {"text": "string"}),
}


def held_out(run: tfzoo.TrainResult) -> np.ndarray:
    config = json.loads((run.run_dir / "config.json").read_text())
    return load_dataset(**config["dataset"]).arrays("test")[0]


@pytest.mark.parametrize("name", tfzoo.list_models())
def test_every_model_exports_named_signatures_that_validate(name, trained_run, exported):
    run = trained_run(name)
    version_dir = exported(name)  # tfzoo.export(run, exported.model_base), shared with the serving tests
    assert version_dir == exported.model_base / name / "1"
    assert [p.name for p in (exported.model_base / name).iterdir()] == ["1"]  # no staging left behind
    assert tfzoo.validate(version_dir).ok

    signature = read_meta_graph(version_dir).signature_def["serving_default"]
    inputs, outputs = EXPECTED_SIGNATURES[name]
    assert {k: tf.dtypes.as_dtype(v.dtype).name for k, v in signature.inputs.items()} == inputs
    assert {k: tf.dtypes.as_dtype(v.dtype).name for k, v in signature.outputs.items()} == outputs
    assert all(v.tensor_shape.dim[0].size == -1 for v in signature.inputs.values())  # dynamic batch

    loaded = tf.saved_model.load(str(version_dir), tags=["serve"])
    if tfzoo.get_spec(name).task.name == "language_model":  # served like trained: the same greedy text, Unicode too
        prompts = example_prompts(held_out(run)[:4]) + ["新闻标题：", ""]
        served = loaded.signatures["serving_default"](prompt=tf.constant([p.encode() for p in prompts]))
        assert [text.decode() for text in served["text"].numpy()] == generate(run.model, prompts)
        return
    x = held_out(run)[:5]
    served = loaded.signatures["serving_default"](**{next(iter(inputs)): tf.constant(x)})
    primary = next(iter(outputs))
    np.testing.assert_allclose(served[primary].numpy(), run.model.predict(x, verbose=0), atol=1e-5)


def test_tfzoo_json_and_warmup_hold_what_was_trained(trained_run, tmp_path):
    run = trained_run("binary_mlp")
    version_dir = tfzoo.export(run, tmp_path / "models", name="diabetes", version=7)
    assert version_dir == tmp_path / "models" / "diabetes" / "7"
    metadata = json.loads((version_dir / "assets.extra" / "tfzoo.json").read_text())
    config = json.loads((run.run_dir / "config.json").read_text())
    assert metadata["model"] == "binary_mlp" and metadata["name"] == "diabetes" and metadata["version"] == 7
    assert metadata["metrics"] == run.metrics
    assert metadata["dataset_fingerprint"] == config["dataset_fingerprint"]
    assert metadata["hparams"] == config["hparams"]
    assert metadata["signatures"]["serving_default"]["inputs"] == {"features": {"dtype": "float32", "shape": [None, 8]}}
    assert {"tensorflow", "keras", "tfzoo"} <= set(metadata["versions"])

    requests = read_warmup(version_dir / "assets.extra" / "tf_serving_warmup_requests")
    assert 0 < len(requests) <= 1000
    assert {signature for signature, _ in requests} == {"serving_default"}
    largest = max((inputs["features"] for _, inputs in requests), key=len)
    np.testing.assert_array_equal(largest, held_out(run)[: len(largest)])  # real held-out examples


def test_versions_count_up_and_are_never_overwritten(trained_run, tmp_path):
    linear, logistic = trained_run("linear_regression"), trained_run("logistic_regression")
    assert tfzoo.export(linear, tmp_path, name="m").name == "1"
    assert tfzoo.export(logistic, tmp_path, name="m").name == "2"  # another run: the next version
    before = (tmp_path / "m" / "1" / "saved_model.pb").stat().st_mtime_ns
    with pytest.raises(FileExistsError, match="already exists with another export; versions are never overwritten"):
        tfzoo.export(logistic, tmp_path, name="m", version=1)
    assert tfzoo.export(linear, tmp_path, name="m", version=1).name == "1"  # the same export: returned as it is
    assert tfzoo.export(linear, tmp_path, name="m").name == "1"  # exported again: found, not published as 3
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["1", "2"]
    assert (tmp_path / "m" / "1" / "saved_model.pb").stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="positive integer"):
        tfzoo.export(linear, tmp_path, version=0)
    with pytest.raises(ValueError, match="model name 'a/b'"):
        tfzoo.export(linear, tmp_path, name="a/b")


def test_a_copied_version_validates_alone_and_fails_when_it_differs_from_the_trained_model(trained_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run("logistic_regression").run_dir, run_dir)
    exported = tfzoo.export(run_dir, tmp_path / "models")
    shutil.rmtree(run_dir)  # validation needs the version folder alone: no run dir, no registry lookup
    version_dir = tmp_path / "elsewhere" / "logistic_regression" / "3"
    shutil.copytree(exported, version_dir)
    assert tfzoo.validate(version_dir).ok

    other = tfzoo.train("logistic_regression", epochs=1, seed=5, run_dir=tmp_path / "other", verbose=0)
    records = read_logs(version_dir / "assets.extra" / REFERENCE_FILE)
    requests = [(signature, inputs) for signature, inputs, _ in records]
    answers = [{"probability": other.model.predict(inputs["features"], verbose=0)} for _, inputs in requests]
    write_reference(version_dir / "assets.extra" / REFERENCE_FILE, "logistic_regression", requests, answers)
    report = tfzoo.validate(version_dir)  # the served answers are no longer those recorded as the trained model's
    assert [check.name for check in report.checks if not check.ok] == ["matches the trained model"]
    assert "max |served - trained|" in report.render()


def test_validate_reports_what_is_wrong_and_exits_1(exported, tmp_path, capsys):
    version_dir = tmp_path / "models" / "linear_regression" / "1"
    shutil.copytree(exported("linear_regression"), version_dir)
    (version_dir / "assets.extra" / "tf_serving_warmup_requests").unlink()
    assert main(["validate", str(version_dir)]) == 1
    out = capsys.readouterr().out
    assert "FAIL layout" in out and "tf_serving_warmup_requests" in out and "NOT valid" in out
    assert main(["validate", str(tmp_path / "models" / "linear_regression")]) == 1
    assert "version folder must be an integer" in capsys.readouterr().out


def test_non_core_ops_are_flagged():
    graph = graph_pb2.GraphDef()
    graph.node.add(name="a", op="MatMul")
    graph.node.add(name="b", op="Addons>GeluGrad")
    assert non_core_ops(node.op for node in graph.node) == ["Addons>GeluGrad"]


def test_graphs_that_need_xla_are_flagged(tmp_path):
    """A jit_compile function runs on the stock server only with --xla_cpu_compilation_enabled: flagged, while
    the same function without it is not."""
    for jit_compile in (False, True):
        module = tf.Module()
        module.double = tf.function(lambda x: {"y": 2 * x}, jit_compile=jit_compile,
                                    input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        folder = tmp_path / str(jit_compile)
        tf.saved_model.save(module, str(folder), signatures={"serving_default": module.double})
        flagged = xla_parts(read_meta_graph(folder))
        assert bool(flagged) == jit_compile and all("jit_compile" in part for part in flagged), flagged


def test_image_bytes_signature_decodes_png_and_jpeg_of_any_size(trained_run, exported):
    run = trained_run("mnist_cnn")
    loaded = tf.saved_model.load(str(exported("mnist_cnn")), tags=["serve"])
    images = np.clip(np.rint(held_out(run)[:6]), 0, 255).astype(np.uint8)
    png = [tf.io.encode_png(image[..., None]).numpy() for image in images]
    by_bytes = loaded.signatures["predict_image_bytes"](image_bytes=tf.constant(png))
    by_pixels = loaded.signatures["serving_default"](image=tf.constant(images.astype(np.float32)))
    np.testing.assert_allclose(by_bytes["probabilities"].numpy(), by_pixels["probabilities"].numpy(), atol=1e-6)
    np.testing.assert_array_equal(by_bytes["class_id"].numpy(), by_pixels["class_id"].numpy())

    large = tf.image.resize(images[..., None].astype(np.float32), (56, 56)).numpy().astype(np.uint8)
    jpeg = [tf.io.encode_jpeg(image, quality=100).numpy() for image in large]
    by_jpeg = loaded.signatures["predict_image_bytes"](image_bytes=tf.constant(jpeg))
    agreement = np.mean(by_jpeg["class_id"].numpy() == by_pixels["class_id"].numpy())
    assert by_jpeg["probabilities"].shape == (6, 10) and agreement >= 5 / 6


def test_export_cli_prints_the_version_folder(trained_run, tmp_path):
    run = trained_run("logistic_regression")
    result = subprocess.run([sys.executable, "-m", "tfzoo", "export", str(run.run_dir), "--model-base",
                             str(tmp_path), "--version", "3"], capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(tmp_path / "logistic_regression" / "3")
    assert "valid for TF Serving" in result.stdout


def png(width: int, height: int, rows: int = 0) -> bytes:
    """A grayscale PNG whose header says width x height, with `rows` black rows of data (all of them for a
    decodable image, none for a header that must be refused before decoding)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * (width + 1) * rows)  # each row: filter byte 0, then its pixels
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_image_bytes_signature_refuses_too_many_pixels_before_decoding(exported):
    version_dir = exported("mnist_cnn")
    ops = graph_ops(read_meta_graph(version_dir))
    assert not non_core_ops(ops) and not xla_parts(read_meta_graph(version_dir))
    assert not {op for op in ops if "PyFunc" in op}
    servable = load_servable(version_dir, version=1, warm_up=False)  # a session, as the stock TF Serving runs it

    def predict(data: bytes) -> dict[str, np.ndarray]:
        return served_predict(servable, "predict_image_bytes", {"image_bytes": np.array([data], dtype=object)})

    jpeg = tf.io.encode_jpeg(np.zeros((8, 8, 1), np.uint8)).numpy()
    sof = jpeg.index(b"\xff\xc0")  # baseline frame header: length, precision, then height and width
    too_large = {
        (16000, 16000): png(16000, 16000),  # 16000 x 16000 decodes to 256 MB; the file is a few hundred bytes
        (MAX_IMAGE_SIDE + 1, MAX_IMAGE_SIDE): png(MAX_IMAGE_SIDE + 1, MAX_IMAGE_SIDE),
        (2**32 - 1, 2**32 - 1): png(2**32 - 1, 2**32 - 1),  # their product overflows int64
        (16000, 9000): jpeg[:sof + 5] + struct.pack(">HH", 9000, 16000) + jpeg[sof + 9:],
        (20000, 1000): b"GIF89a" + struct.pack("<HH", 20000, 1000) + bytes(20),
        (5000, 4000): b"BM" + bytes(16) + struct.pack("<ii", 5000, -4000) + bytes(30),  # top-down rows
    }
    for (width, height), data in too_large.items():
        with pytest.raises(ServingError) as refused:
            predict(data)
        assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT and refused.value.http_status == 400
        assert (f"the image is {width} x {height} pixels (width x height), more than the limit of {MAX_IMAGE_PIXELS} "
                f"pixels ({MAX_IMAGE_SIDE} x {MAX_IMAGE_SIDE}): resize the image before sending it"
                in refused.value.message)
    with pytest.raises(ServingError, match="JPEG XL is not accepted"):
        predict(b"\xff\x0a" + bytes(30))

    at_limit = predict(png(MAX_IMAGE_SIDE, MAX_IMAGE_SIDE, rows=MAX_IMAGE_SIDE))  # a real decode: 16 MB, cheap
    assert at_limit["probabilities"].shape == (1, 10)
    # Bytes too short for a header, or of no known format, get decode_image's own error, not the limit's.
    for data, error in [(png(16000, 16000)[:20], "Invalid PNG"), (b"GIF89a\xff", "for GIF"),
                        (b"not an image", "Unknown image file format"), (b"", "Input is empty")]:
        with pytest.raises(ServingError, match=error) as refused:
            predict(data)
        assert "limit" not in refused.value.message
