"""Serving signatures: named inputs and outputs around a trained Keras model, core TensorFlow ops only."""
from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from tfzoo.registry import ModelSpec
from tfzoo.text.generation import generation_functions

IMAGE_BYTES_SIGNATURE = "predict_image_bytes"
IMAGE_BYTES_INPUT = "image_bytes"


# The output that carries the Keras model's predictions unchanged, per task.
PRIMARY_OUTPUT = {"regression": "prediction", "binary": "probability", "multiclass": "probabilities"}


def task_outputs(task: str, predictions: tf.Tensor) -> dict[str, tf.Tensor]:
    """The named outputs of a task (the README's signature table) from the model's predictions."""
    outputs = {PRIMARY_OUTPUT[task]: predictions}
    if task == "binary":
        outputs["class_id"] = tf.cast(predictions[:, 0] > 0.5, tf.int64)
    elif task == "multiclass":
        outputs["class_id"] = tf.argmax(predictions, axis=-1, output_type=tf.int64)
    return outputs


# The largest image predict_image_bytes decodes, in pixels (width x height as its header declares them). Decoders
# allocate what the header declares, and a small file can declare a lot: one 243 KB PNG of 16000 x 16000 raised a
# server's memory by 1.26 GB. So a larger image is refused from its header, before any decoding, in the graph
# (INVALID_ARGUMENT, HTTP 400), which the stock TF Serving binary runs too. 4096 x 4096 is far above the 28 x 28
# the digit models see.
MAX_IMAGE_SIDE = 4096
MAX_IMAGE_PIXELS = MAX_IMAGE_SIDE * MAX_IMAGE_SIDE
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
GIF_SIGNATURE = b"GIF8"
BMP_SIGNATURE = b"BM"
# decode_image also decodes JPEG XL (bare codestream or container), whose size is bit-packed behind variable-length
# fields: it is refused rather than decoded unchecked (a 7 KB JPEG XL decodes to 8000 x 8000).
JPEG_XL_SIGNATURES = (b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\x0a")
HEADER_BYTES = 26  # enough for the PNG (24), GIF (10) and BMP (26) fields read below


def starts_with(data: tf.Tensor, signature: bytes) -> tf.Tensor:
    return tf.strings.substr(data, 0, len(signature)) == signature


def declared_size(data: tf.Tensor) -> tf.Tensor:
    """[width, height] int64 that an image's header declares, read without decoding; [0, 0] for bytes too short
    to hold the header or of another format, which decode_image then refuses with its own error."""
    length = tf.strings.length(data)
    padded = tf.strings.substr(tf.strings.join([tf.strings.substr(data, 0, HEADER_BYTES), b"\0" * HEADER_BYTES]),
                               0, HEADER_BYTES)  # always HEADER_BYTES long, so every field below can be read
    head = tf.cast(tf.io.decode_raw(padded, tf.uint8), tf.int64)

    def unsigned(offset: int, size: int, big_endian: bool) -> tf.Tensor:
        weights = [256 ** i for i in range(size)]
        return tf.reduce_sum(head[offset:offset + size] * (weights[::-1] if big_endian else weights))

    def signed32(offset: int) -> tf.Tensor:  # BMP sizes are int32; a negative height means rows top to bottom
        value = unsigned(offset, 4, big_endian=False)
        return tf.abs(tf.where(value >= 2 ** 31, value - 2 ** 32, value))

    # libjpeg's own reading of the header (the markers before the frame vary), so the size is the decoder's.
    size = tf.cond(starts_with(data, JPEG_SIGNATURE),
                   lambda: tf.cast(tf.image.extract_jpeg_shape(data)[1::-1], tf.int64),
                   lambda: tf.zeros([2], tf.int64))
    for signature, header_end, width, height in [
        (PNG_SIGNATURE, 24, unsigned(16, 4, big_endian=True), unsigned(20, 4, big_endian=True)),  # IHDR
        # GIF's logical screen: decode_image(channels=1) refuses GIF (and BMP) before reading it, so this only
        # gives a too-large one the same answer. Were GIF decoded, this would not bound it: TF decodes to the
        # largest frame, which may exceed the screen.
        (GIF_SIGNATURE, 10, unsigned(6, 2, big_endian=False), unsigned(8, 2, big_endian=False)),
        (BMP_SIGNATURE, 26, signed32(18), signed32(22)),  # BITMAPINFOHEADER
    ]:
        size = tf.where(starts_with(data, signature) & (length >= header_end), tf.stack([width, height]), size)
    return size


def check_image_size(data: tf.Tensor) -> tf.Operation:
    """An assertion that fails (INVALID_ARGUMENT) for an image declaring more than MAX_IMAGE_PIXELS, or JPEG XL."""
    width, height = tf.unstack(declared_size(data))
    too_large = tf.strings.join([
        "image_bytes: the image is ", tf.strings.as_string(width), " x ", tf.strings.as_string(height),
        (f" pixels (width x height), more than the limit of {MAX_IMAGE_PIXELS} pixels "
         f"({MAX_IMAGE_SIDE} x {MAX_IMAGE_SIDE}): resize the image before sending it")])
    is_jpeg_xl = tf.reduce_any([starts_with(data, signature) for signature in JPEG_XL_SIGNATURES])
    message = tf.where(is_jpeg_xl, "image_bytes: JPEG XL is not accepted, as its size cannot be checked before "
                                   "decoding: send PNG or JPEG", too_large)
    # Each side clipped first, so that the product cannot overflow int64 (PNG sides go up to 2^32 - 1) and is
    # still above the limit exactly when the real one is.
    pixels = tf.minimum(width, MAX_IMAGE_PIXELS + 1) * tf.minimum(height, MAX_IMAGE_PIXELS + 1)
    return tf.debugging.Assert((pixels <= MAX_IMAGE_PIXELS) & ~is_jpeg_xl, [message])


def decode_image(data: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """PNG or JPEG bytes of up to MAX_IMAGE_PIXELS -> grayscale raw 0-255 float pixels [height, width]."""
    with tf.control_dependencies([check_image_size(data)]):  # before decode_image allocates anything
        image = tf.io.decode_image(data, channels=1, expand_animations=False)
    # Resized as uint8 (ResizeBilinear reads it as float itself): the same pixels out, without a float32 copy
    # of the full-size image.
    image = tf.image.resize(image, (height, width))
    return image[:, :, 0]


def serving_functions(model: keras.Model, spec: ModelSpec) -> dict[str, Callable[..., dict[str, tf.Tensor]]]:
    """Signature name -> tf.function with a fixed input signature and a dynamic batch dimension."""
    if spec.task == "language_model":  # strings in, strings out: the whole decoding loop is in the graph
        return generation_functions(model)
    example_shape = tuple(model.input_shape[1:])

    @tf.function(input_signature=[tf.TensorSpec([None, *example_shape], tf.float32, name=spec.serving_input)])
    def serve(inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        return task_outputs(spec.task, model(inputs, training=False))

    functions = {"serving_default": serve}
    if spec.serving_input == "image":
        height, width = example_shape

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=IMAGE_BYTES_INPUT)])
        def serve_image_bytes(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
            images = tf.map_fn(lambda data: decode_image(data, height, width), image_bytes,
                               fn_output_signature=tf.TensorSpec([height, width], tf.float32))
            return task_outputs(spec.task, model(images, training=False))

        functions[IMAGE_BYTES_SIGNATURE] = serve_image_bytes
    return functions
