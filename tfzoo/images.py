"""Images in serving graphs: PNG or JPEG bytes decoded to the raw grayscale pixels a digit model takes, after
checking the size the header declares (core TensorFlow ops only, so the stock TF Serving binary runs them)."""
from __future__ import annotations

import tensorflow as tf

IMAGE_BYTES_SIGNATURE = "predict_image_bytes"
IMAGE_BYTES_INPUT = "image_bytes"

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
