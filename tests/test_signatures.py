"""tfzoo.export.signatures: the names a Keras model's serving_default takes and answers under (no export here)."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from tfzoo.export.signatures import KerasSignatures


def served_names(model: keras.Model, examples: dict[str, np.ndarray]) -> tuple[list[str], list[str]]:
    """(input names, output names) of the model's serving_default, from its traced signature."""
    signatures = KerasSignatures(model, examples)
    function = signatures.serving_functions()["serving_default"]
    concrete = function.get_concrete_function()
    inputs = [spec.name for spec in concrete.structured_input_signature[0]]
    return inputs, sorted(concrete.structured_outputs)


def test_an_unnamed_sequential_is_served_as_inputs_and_outputs():
    """It was served as `keras_tensor` with the output `output_0`."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(2)])
    x = np.ones((2, 3), np.float32)
    # Examples keyed by Keras' own tensor name (what export_model does with an array) or by the served name.
    assert served_names(model, {model.inputs[0].name: x}) == (["inputs"], ["outputs"])
    signatures = KerasSignatures(model, {"inputs": x})
    np.testing.assert_allclose(signatures.reference_outputs(("serving_default", {"inputs": x}))["outputs"],
                               model.predict(x, verbose=0))


def test_names_the_user_gave_are_kept():
    model = keras.Sequential([keras.Input((3,), name="features"), keras.layers.Dense(2, name="scores")])
    assert served_names(model, {"features": np.ones((2, 3))}) == (["features"], ["scores"])
    inputs = keras.Input((3,))
    two = keras.Model(inputs, [keras.layers.Dense(2)(inputs), keras.layers.Dense(1, name="risk")(inputs)])
    assert served_names(two, {"inputs": np.ones((2, 3))}) == (["inputs"], ["output_0", "risk"])


def test_several_unnamed_inputs_are_numbered_and_fed_in_order():
    left, right = keras.Input((3,)), keras.Input((2,))
    model = keras.Model([left, right], keras.layers.Concatenate()([left, right * 10]))
    x = {"input_0": np.ones((2, 3), np.float32), "input_1": np.full((2, 2), 2, np.float32)}
    assert served_names(model, x) == (["input_0", "input_1"], ["outputs"])
    served = KerasSignatures(model, x).serving_functions()["serving_default"](x["input_0"], x["input_1"])
    np.testing.assert_array_equal(served["outputs"], [[1, 1, 1, 20, 20]] * 2)


@pytest.mark.parametrize("name", ["model_0", "dense_out"])
def test_a_layer_name_that_only_looks_like_keras_own_is_kept(name):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name=name)])
    assert served_names(model, {"inputs": np.ones((1, 3))})[1] == [name]
