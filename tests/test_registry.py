"""The registry: names, specs, hyperparameters and errors."""
import keras
import pytest

import tfzoo
from tfzoo.registry import register

EXPECTED_MODELS = [
    "binary_mlp", "linear_regression", "logistic_regression", "lstm_classifier", "mnist_cnn", "mnist_mlp",
]


def test_list_models_is_sorted_and_holds_the_classic_models():
    names = tfzoo.list_models()
    assert names == sorted(names)
    assert set(EXPECTED_MODELS) <= set(names)


def test_unknown_model_error_lists_known_names():
    with pytest.raises(ValueError, match="unknown model 'resnet'") as error:
        tfzoo.create_model("resnet")
    for name in EXPECTED_MODELS:
        assert name in str(error.value)


def test_unknown_hyperparameter_error_names_the_valid_ones():
    with pytest.raises(ValueError, match="no hyperparameter 'hidden'") as error:
        tfzoo.create_model("mnist_mlp", hidden=3)
    assert "dropout" in str(error.value) and "learning_rate" in str(error.value)


@pytest.mark.parametrize("name", tfzoo.list_models())
def test_a_hyperparameter_of_the_wrong_kind_is_refused_before_the_factory_runs(name):
    """`-p input_shape=5` once ended in a TypeError traceback deep in Keras; now one line names the fix."""
    defaults = tfzoo.get_spec(name).hparams
    tfzoo.registry.check_hparams(name, dict(defaults))  # every default is of its own kind
    for key, default in defaults.items():
        if default is None:  # a None default says nothing about the kind
            continue
        wrong = "text" if not isinstance(default, str) else 3
        with pytest.raises(ValueError, match=f"hyperparameter {key}={wrong!r} must be .* like its default"):
            tfzoo.create_model(name, **{key: wrong})


@pytest.mark.parametrize("name, key, value, bounds", [
    ("mnist_mlp", "dropout", -0.1, "[0, 1)"),
    ("mnist_mlp", "dropout", 1.0, "[0, 1)"),
    ("binary_mlp", "units", (10, 0), "[1, inf) (every element)"),
    ("mnist_cnn", "learning_rate", -0.01, "[0, inf)"),
    ("lstm_classifier", "lstm_units", -5, "[1, inf)"),
    ("text_generator", "max_length", 0, "[1, inf)"),
    ("text_generator", "warmup_steps", -1, "[0, inf)"),
    ("mnist_mlp", "dropout", float("nan"), "[0, 1)"),
])
def test_a_hyperparameter_out_of_its_range_is_refused_naming_it_its_range_and_the_value(name, key, value, bounds):
    """`-p dropout=-0.1` was accepted and stored in config.json."""
    with pytest.raises(ValueError) as error:
        tfzoo.registry.check_hparams(name, {key: value})
    assert str(error.value).startswith(f"{name}: hyperparameter {key}={value!r} is out of its range {bounds};")


def test_a_factory_declares_its_own_ranges_and_may_lift_a_standard_one():
    @tfzoo.register("ranged_model", task="binary", default_dataset="synthetic_binary", epochs=1, batch_size=8,
                    ranges={"scale": tfzoo.registry.Range(0, 2, low_open=True), "dropout": None})
    def ranged_model(*, scale: float = 1.0, dropout: float = 0.0, units: int = 4) -> keras.Model:
        """A factory for the test only."""

    try:
        tfzoo.registry.check_hparams("ranged_model", {"scale": 2, "dropout": -1.0, "units": 1})
        with pytest.raises(ValueError, match=r"scale=0 is out of its range \(0, 2\]"):
            tfzoo.registry.check_hparams("ranged_model", {"scale": 0})
        with pytest.raises(ValueError, match=r"units=0 is out of its range \[1, inf\)"):
            tfzoo.registry.check_hparams("ranged_model", {"units": 0})
    finally:
        tfzoo.registry._REGISTRY.pop("ranged_model")


def test_duplicate_registration_raises():
    with pytest.raises(ValueError, match="already registered"):
        @register("mnist_cnn", task="multiclass", default_dataset="digits", epochs=1, batch_size=1)
        def another_cnn() -> keras.Model:  # pragma: no cover - never called
            raise AssertionError


def test_factories_must_take_keyword_only_defaults():
    with pytest.raises(TypeError, match="keyword-only"):
        @register("bad_factory", task="binary", default_dataset="synthetic_binary", epochs=1, batch_size=1)
        def bad_factory(units):  # pragma: no cover - never called
            raise AssertionError
    assert "bad_factory" not in tfzoo.list_models()


def test_spec_holds_defaults_of_the_source_examples():
    spec = tfzoo.get_spec("linear_regression")
    assert spec.hparams == {"input_shape": (10,), "kernel_initializer": "random_normal",
                            "bias_initializer": "random_normal", "optimizer": "sgd", "learning_rate": 0.01}
    assert spec.task.name == "regression" and spec.default_dataset == "synthetic_regression"
    assert tfzoo.get_spec("mnist_mlp").hparams["units"] == (256, 128)
    assert tfzoo.get_spec("mnist_mlp").hparams["dropout"] == 0.2
    assert tfzoo.get_spec("lstm_classifier").hparams["lstm_units"] == 100
    assert tfzoo.get_spec("lstm_classifier").hparams["activation"] == "relu"
    assert all(tfzoo.get_spec(name).description for name in EXPECTED_MODELS)


def test_the_lstm_activation_and_regression_initializers_are_the_layers_own():
    lstm = {activation: next(layer for layer in tfzoo.create_model("lstm_classifier", activation=activation).layers
                             if isinstance(layer, keras.layers.LSTM))
            for activation in ("relu", "tanh")}
    assert lstm["relu"].cell.activation is keras.activations.relu
    assert lstm["tanh"].cell.activation is keras.activations.tanh
    for name in ("linear_regression", "logistic_regression"):
        kernel, bias = tfzoo.create_model(name, kernel_initializer="ones", bias_initializer="zeros").get_weights()
        assert (kernel == 1).all() and (bias == 0).all()
    kernel, bias = tfzoo.create_model("linear_regression", input_shape=(2000,)).get_weights()
    assert 0.045 < kernel.std() < 0.055 and (bias != 0).all()  # Keras' random_normal N(0, 0.05²), not glorot's 0.032


@pytest.mark.parametrize("name, key, kind", [("lstm_classifier", "activation", "activation"),
                                             ("linear_regression", "kernel_initializer", "initializer"),
                                             ("logistic_regression", "bias_initializer", "initializer")])
def test_an_unknown_keras_name_is_refused_naming_the_hyperparameter(name, key, kind):
    with pytest.raises(ValueError, match=f"hyperparameter {key}='nope' is not a Keras {kind} name; use one such as "):
        tfzoo.create_model(name, **{key: "nope"})


def test_create_model_is_compiled_with_the_task_loss():
    cnn = tfzoo.create_model("mnist_cnn")
    assert isinstance(cnn.loss, keras.losses.SparseCategoricalCrossentropy)  # the source's mismatch, fixed
    assert isinstance(tfzoo.create_model("binary_mlp").loss, keras.losses.BinaryCrossentropy)
    assert isinstance(tfzoo.create_model("linear_regression").loss, keras.losses.MeanSquaredError)


def test_default_architectures_match_the_source_examples():
    widths = [layer.units for layer in tfzoo.create_model("binary_mlp").layers if isinstance(layer, keras.layers.Dense)]
    assert widths == [10, 5, 1]
    cnn = tfzoo.create_model("mnist_cnn")
    assert [layer.filters for layer in cnn.layers if isinstance(layer, keras.layers.Conv2D)] == [32, 64]
    assert sum(isinstance(layer, keras.layers.MaxPooling2D) for layer in cnn.layers) == 2
    linear = tfzoo.create_model("linear_regression")
    assert linear.layers[-1].kernel.shape == (10, 1)
    assert tfzoo.create_model("linear_regression", input_shape=(7,)).layers[-1].kernel.shape == (7, 1)
