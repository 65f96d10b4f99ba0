"""tfzoo: classic Keras models, trained with tf.distribute and exported for TensorFlow Serving."""
__version__ = "0.1.0"

from tfzoo.export import export, export_model, validate  # noqa: E402
from tfzoo.registry import ModelSpec, create_model, get_spec, list_models, load_builtin_models, register  # noqa: E402
from tfzoo.training.trainer import TrainResult, evaluate, train  # noqa: E402

__all__ = ["ModelSpec", "TrainResult", "create_model", "evaluate", "export", "export_model", "get_spec", "list_models",
           "register", "train", "validate"]

load_builtin_models()  # the built-in models and their Keras classes (so keras.saving.load_model knows them)
