"""Client.classify and Client.regress against `tfzoo serve`, over both protocols: tf.Examples from plain values."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import tfs_models

from tfzoo.serving.client import Client, InvalidInputError, ServerError
from tfzoo.serving.protocol.examples import to_example, to_json_object
from tfzoo.serving.server import ModelServer, ServerOptions

PROTOCOLS = ["rest", "grpc"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    base = tmp_path_factory.mktemp("models")
    tfs_models.half_plus_two(base / "half_plus_two" / "1")
    tfs_models.lookup_table(base / "labels" / "1")
    config = base / "models.config"
    config.write_text("model_config_list {\n" + "".join(
        f'  config {{ name: "{name}" base_path: "{base / name}" model_platform: "tensorflow" }}\n'
        for name in ("half_plus_two", "labels")) + "}\n")
    with ModelServer(ServerOptions(model_config_file=str(config), port=0, rest_api_port=0,
                                   file_system_poll_wait_seconds=0)) as running:
        yield running


def connect(server: ModelServer, protocol: str) -> Client:
    return Client("127.0.0.1", server.port if protocol == "grpc" else server.rest_api_port, protocol=protocol)


def test_features_are_typed_as_tf_servings_rest_api_types_them() -> None:
    example = to_example({"f": [1.5, 2], "i": np.int64(3), "b": True, "s": "\u00e9", "raw": b"\xff"})
    features = example.features.feature
    assert list(features["f"].float_list.value) == [1.5, 2.0]
    assert list(features["i"].int64_list.value) == [3] and list(features["b"].int64_list.value) == [1]
    assert list(features["s"].bytes_list.value) == ["\u00e9".encode()]
    # REST writes floats as floats (2.0, not 2: a JSON integer would make an int64 feature) and non-UTF-8 as b64.
    assert to_json_object({"f": [1.5, 2], "raw": b"\xff", "s": "x"}) == {
        "f": [1.5, 2.0], "raw": [{"b64": "/w=="}], "s": ["x"]}
    with pytest.raises(ValueError, match="'mixed'"):
        to_example({"mixed": [1.0, "a"]})


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_regress_and_classify_half_plus_two(server: ModelServer, protocol: str) -> None:
    with connect(server, protocol) as client:
        values = client.regress("half_plus_two", [{"x": 1.0}, {"x": 4.0}], signature="regress_x_to_y")
        np.testing.assert_allclose(values, [2.5, 4.0])
        assert values.dtype == np.float32
        # An integer makes an int64 feature (TF Serving's rule), which this graph's float "x" refuses.
        with pytest.raises(ServerError, match="Key: x.*int64 but expected type: float"):
            client.regress("half_plus_two", [{"x": 4}], signature="regress_x_to_y")
        # The context's features go into every example, and an example's own feature wins over the context's.
        values = client.regress("half_plus_two", [{"x2": 1.0}, {"x": 2.0}], context={"x": 10.0},
                                signature="regress_x_to_y")
        np.testing.assert_allclose(values, [7.0, 3.0])
        # A scores-only signature: labels are empty, as TF Serving answers.
        assert client.classify("half_plus_two", [{"x": 2.0}], signature="classify_x_to_y") == [[("", 3.0)]]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_classify_with_class_labels_from_a_lookup_table(server: ModelServer, protocol: str) -> None:
    logits = [0.5, -1.0, 2.0][:len(tfs_models.LABELS)]
    with connect(server, protocol) as client:
        result = client.classify("labels", [{"logits": logits}], signature="classify")
    assert [label for label, _ in result[0]] == list(tfs_models.LABELS)
    np.testing.assert_allclose([score for _, score in result[0]], logits)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bad_examples_fail_locally_and_server_errors_name_the_problem(server: ModelServer, protocol: str) -> None:
    with connect(server, protocol) as client:
        with pytest.raises(InvalidInputError, match="'x'"):
            client.regress("half_plus_two", [{"x": [1.0, "a"]}], signature="regress_x_to_y")
        with pytest.raises(InvalidInputError, match="at least one example"):
            client.classify("half_plus_two", [], signature="classify_x_to_y")
        with pytest.raises(ServerError, match="No signature was found with the name: nope") as raised:
            client.regress("half_plus_two", [{"x": 1.0}], signature="nope")
        assert raised.value.code.name == "INVALID_ARGUMENT"
