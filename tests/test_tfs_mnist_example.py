"""TF Serving's MNIST example end to end on `tfzoo serve` (tensorflow_serving/example/).

mnist_saved_model.py trains a softmax regression on MNIST in a TF1 graph and exports it with
SavedModelBuilder: feature "x" [784] parsed from serialized tf.Examples, a top-10 index-to-string lookup table
initialised by the main_op, and two signatures: `predict_images` (images -> scores) and `serving_default`
(classify: inputs -> classes, scores). mnist_client.py then sends one Predict per test image through
`stub.Predict.future(request, 5.0)` and reports the error rate from `outputs['scores'].float_val`.

Here the same graph is built and trained briefly (a few hundred SGD steps) on real digits: the shared MNIST
t10k file (the first 8,000 images train, the next 300 are held out), or scikit-learn's digits where that file is
absent. `tfzoo serve` runs it with the tensorflow/serving image's command line; a client doing what
mnist_client.py does must see the error rate the model has in-process on the same images, and REST :predict,
REST :classify and gRPC must agree on every image's top class.
"""
from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest
import tensorflow as tf
from conftest import MNIST_T10K
from tensorflow.core.framework import types_pb2
from tensorflow.python.ops import lookup_ops
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tfzoo.datasets.mnist import IDX_FILES, read_idx
from tfzoo.serving.server import server_process

v1 = tf.compat.v1
MNIST_DIR = MNIST_T10K
TRAIN_IMAGES = 8000
HELD_OUT = 300
TRAINING_STEPS = 400  # mnist_saved_model.py's --training_iteration (default 1000), batches of 50
BATCH = 50
CONCURRENCY = 4  # mnist_client.py's --concurrency
MAX_ERROR_RATE = 0.2
TIE = 1e-4  # images whose two best in-process scores are closer than this may rank differently across batch sizes


# ------------------------------------------------------------------------------------------------ data and model

@pytest.fixture(scope="module")
def digits() -> dict[str, np.ndarray]:
    """Flattened [N, 784] float32 images in [0, 1] (as mnist_input_data.py gives them) and int labels."""
    images = read_idx(MNIST_DIR / (IDX_FILES["test_images"] + ".gz")).reshape(-1, 784).astype(np.float32) / 255.0
    labels = read_idx(MNIST_DIR / (IDX_FILES["test_labels"] + ".gz")).astype(np.int64)
    train, test = slice(0, TRAIN_IMAGES), slice(TRAIN_IMAGES, TRAIN_IMAGES + HELD_OUT)
    return {"x_train": images[train], "y_train": labels[train], "x_test": images[test], "y_test": labels[test]}


@pytest.fixture(scope="module")
def mnist_model(digits: dict[str, np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """mnist_saved_model.py: train, then export version 1 under a base path. Returns the base path and the
    in-process scores and classes of the held-out images."""
    base = tmp_path_factory.mktemp("mnist")
    with tf.Graph().as_default(), v1.Session() as session:
        serialized_tf_example = v1.placeholder(tf.string, name="tf_example")
        tf_example = tf.io.parse_example(serialized_tf_example, {"x": tf.io.FixedLenFeature([784], tf.float32)})
        x = tf.identity(tf_example["x"], name="x")
        y_ = v1.placeholder("float", shape=[None, 10])
        w = tf.Variable(tf.zeros([784, 10]))
        b = tf.Variable(tf.zeros([10]))
        session.run(v1.global_variables_initializer())
        y = tf.nn.softmax(tf.matmul(x, w) + b, name="y")
        cross_entropy = -tf.math.reduce_sum(y_ * tf.math.log(y))
        train_step = v1.train.GradientDescentOptimizer(0.01).minimize(cross_entropy)
        values, indices = tf.nn.top_k(y, 10)
        table = lookup_ops.index_to_string_table_from_tensor(tf.constant([str(i) for i in range(10)]))
        prediction_classes = table.lookup(tf.dtypes.cast(indices, tf.int64))

        rng = np.random.default_rng(0)
        one_hot = np.eye(10, dtype=np.float32)[digits["y_train"]]
        for _ in range(TRAINING_STEPS):
            batch = rng.choice(len(digits["x_train"]), BATCH, replace=False)
            session.run(train_step, feed_dict={x: digits["x_train"][batch], y_: one_hot[batch]})
        session.run(v1.tables_initializer())
        scores, classes = session.run([y, prediction_classes], feed_dict={x: digits["x_test"]})

        info = v1.saved_model.utils.build_tensor_info
        classification_signature = v1.saved_model.signature_def_utils.build_signature_def(
            inputs={v1.saved_model.signature_constants.CLASSIFY_INPUTS: info(serialized_tf_example)},
            outputs={v1.saved_model.signature_constants.CLASSIFY_OUTPUT_CLASSES: info(prediction_classes),
                     v1.saved_model.signature_constants.CLASSIFY_OUTPUT_SCORES: info(values)},
            method_name=v1.saved_model.signature_constants.CLASSIFY_METHOD_NAME)
        prediction_signature = v1.saved_model.signature_def_utils.build_signature_def(
            inputs={"images": info(x)}, outputs={"scores": info(y)},
            method_name=v1.saved_model.signature_constants.PREDICT_METHOD_NAME)
        builder = v1.saved_model.Builder(str(base / "1"))
        builder.add_meta_graph_and_variables(
            session, [v1.saved_model.tag_constants.SERVING],
            signature_def_map={"predict_images": prediction_signature,
                               v1.saved_model.signature_constants.DEFAULT_SERVING_SIGNATURE_DEF_KEY:
                                   classification_signature},
            main_op=v1.tables_initializer(), strip_default_attrs=True)
        builder.save()
    return {"base": base, "scores": scores, "classes": classes}


# ------------------------------------------------------------------------------------------------ the client

class _ResultCounter:
    """mnist_client.py's _ResultCounter: at most `concurrency` requests in flight; here it also keeps each answer."""

    def __init__(self, num_tests: int, concurrency: int):
        self._num_tests = num_tests
        self._concurrency = concurrency
        self._active = 0
        self._condition = threading.Condition()
        self.responses: dict[int, predict_pb2.PredictResponse] = {}
        self.failures: dict[int, BaseException] = {}

    def done(self, index: int, future: grpc.Future) -> None:
        with self._condition:
            exception = future.exception()
            if exception is not None:
                self.failures[index] = exception
            else:
                self.responses[index] = future.result()
            self._active -= 1
            self._condition.notify_all()

    def throttle(self) -> None:
        with self._condition:
            while self._active == self._concurrency:
                self._condition.wait()
            self._active += 1

    def wait(self) -> None:
        with self._condition:
            while len(self.responses) + len(self.failures) != self._num_tests:
                self._condition.wait()


def do_inference(grpc_port: int, images: np.ndarray) -> list[predict_pb2.PredictResponse]:
    """mnist_client.py's do_inference: one Predict on signature predict_images per image, a [1, 784] float
    TensorProto, sent with stub.Predict.future(request, 5.0); returns the answers in image order."""
    counter = _ResultCounter(len(images), CONCURRENCY)
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for index, image in enumerate(images):
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "mnist"
            request.model_spec.signature_name = "predict_images"
            request.inputs["images"].CopyFrom(tf.make_tensor_proto(image, shape=[1, image.size]))
            counter.throttle()
            future = stub.Predict.future(request, 5.0)
            future.add_done_callback(lambda done, index=index: counter.done(index, done))
        counter.wait()
    assert not counter.failures, next(iter(counter.failures.values()))
    return [counter.responses[index] for index in range(len(images))]


def error_rate(predicted: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(predicted != labels))


def rest_post(rest_port: int, verb: str, body: dict) -> Any:
    request = urllib.request.Request(f"http://127.0.0.1:{rest_port}/v1/models/mnist:{verb}",
                                     data=json.dumps(body).encode())
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200
        return json.loads(response.read())


# ------------------------------------------------------------------------------------------------ the servers

@pytest.fixture(scope="module")
def server(mnist_model: dict[str, Any]) -> Iterator[tuple[int, int]]:
    """tfzoo serve --port=P --rest_api_port=R --model_name=mnist --model_base_path=DIR (server_process adds the
    ports); yields (REST port, gRPC port)."""
    with server_process("--model_name=mnist", f"--model_base_path={mnist_model['base']}") as ports:
        yield ports


@pytest.fixture(scope="module")
def grpc_answers(server: tuple[int, int], digits: dict[str, np.ndarray]) -> list[predict_pb2.PredictResponse]:
    return do_inference(server[1], digits["x_test"])


def ties(scores: np.ndarray) -> np.ndarray:
    """The images whose two best scores are within TIE of each other."""
    best_two = np.sort(scores, axis=1)[:, -2:]
    return (best_two[:, 1] - best_two[:, 0]) < TIE


# ------------------------------------------------------------------------------------------------ the tests

def test_client_error_rate_is_the_models(grpc_answers: list[predict_pb2.PredictResponse],
                                         mnist_model: dict[str, Any], digits: dict[str, np.ndarray]) -> None:
    # mnist_client.py's _callback: numpy.argmax(outputs['scores'].float_val) against the label.
    scores = np.array([answer.outputs["scores"].float_val for answer in grpc_answers])
    assert scores.shape == (HELD_OUT, 10)
    for answer in grpc_answers:
        assert (answer.model_spec.name, answer.model_spec.signature_name, answer.model_spec.version.value) == (
            "mnist", "predict_images", 1)
    served = np.argmax(scores, axis=1)
    local = np.argmax(mnist_model["scores"], axis=1)
    near = ties(mnist_model["scores"])
    assert near.mean() < 0.02
    np.testing.assert_array_equal(served[~near], local[~near])
    np.testing.assert_allclose(scores, mnist_model["scores"], rtol=1e-4, atol=1e-6)
    served_rate, local_rate = error_rate(served, digits["y_test"]), error_rate(local, digits["y_test"])
    assert abs(served_rate - local_rate) <= near.mean()  # equal, but for images the batch size could flip
    assert served_rate < MAX_ERROR_RATE


def test_rest_predict_classify_and_grpc_agree(server: tuple[int, int], grpc_answers: list[predict_pb2.PredictResponse],
                                              mnist_model: dict[str, Any], digits: dict[str, np.ndarray]) -> None:
    images = digits["x_test"]
    predictions = rest_post(server[0], "predict", {"signature_name": "predict_images",
                                                    "instances": images.tolist()})["predictions"]
    results = rest_post(server[0], "classify", {"examples": [{"x": image.tolist()} for image in images]})["results"]
    assert np.array(predictions).shape == (HELD_OUT, 10)
    assert len(results) == HELD_OUT and all(len(result) == 10 for result in results)

    rest_scores = np.array(predictions)
    # serving_default's classes are the top-10 digits as strings, best first, with their scores.
    classify_classes = np.array([[int(label) for label, _ in result] for result in results])
    classify_scores = np.array([[score for _, score in result] for result in results])
    assert (np.sort(classify_classes, axis=1) == np.arange(10)).all()
    assert (np.diff(classify_scores, axis=1) <= 0).all()
    np.testing.assert_allclose(classify_scores, -np.sort(-rest_scores, axis=1), rtol=1e-5, atol=1e-7)
    # the same batch in both REST calls: the same top class for every image
    np.testing.assert_array_equal(classify_classes[:, 0], np.argmax(rest_scores, axis=1))
    local_top = np.array([int(row[0]) for row in mnist_model["classes"]])  # the in-process lookup table's answer
    np.testing.assert_array_equal(local_top, np.argmax(mnist_model["scores"], axis=1))
    near = ties(rest_scores)
    np.testing.assert_array_equal(classify_classes[~near, 0], local_top[~near])

    grpc_top = np.argmax([answer.outputs["scores"].float_val for answer in grpc_answers], axis=1)
    np.testing.assert_array_equal(grpc_top[~near], classify_classes[~near, 0])
    assert error_rate(classify_classes[:, 0], digits["y_test"]) < MAX_ERROR_RATE


@pytest.mark.slow
def test_tensor_content_serialization(mnist_model: dict[str, Any], digits: dict[str, np.ndarray],
                                      grpc_answers: list[predict_pb2.PredictResponse]) -> None:
    # --enable_serialization_as_tensor_content: the same scores, in tensor_content; the typed float_val that
    # mnist_client.py reads is then empty.
    flags = ("--model_name=mnist", f"--model_base_path={mnist_model['base']}",
             "--enable_serialization_as_tensor_content=true")
    with server_process(*flags) as (_, grpc_port):
        answers = do_inference(grpc_port, digits["x_test"])
    for typed, packed in zip(grpc_answers, answers):
        typed_scores, packed_scores = typed.outputs["scores"], packed.outputs["scores"]
        assert typed_scores.tensor_content == b"" and len(typed_scores.float_val) == 10
        assert len(packed_scores.float_val) == 0 and len(packed_scores.tensor_content) == 10 * 4
        assert packed_scores.dtype == typed_scores.dtype == types_pb2.DT_FLOAT
        assert [d.size for d in packed_scores.tensor_shape.dim] == [d.size for d in typed_scores.tensor_shape.dim] == [
            1, 10]
        np.testing.assert_allclose(tf.make_ndarray(packed_scores), tf.make_ndarray(typed_scores), rtol=1e-6, atol=0)
