"""The byte-level tokenizer: UTF-8 bytes are tokens 0-255, then four special tokens.

Any language works unchanged (a Chinese character is its three UTF-8 bytes) and there is no vocabulary file to
ship: the graph functions below use core TensorFlow ops only, so the stock TF Serving binary runs them.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfzoo.text.vocabulary import BEGIN, END, NUM_BYTES, PAD, SEPARATOR, VOCAB_SIZE  # noqa: F401

# Each token's bytes: a byte token is that byte, a special token is nothing, so decoding drops them.
_TOKEN_BYTES = [bytes([value]) for value in range(NUM_BYTES)] + [b""] * (VOCAB_SIZE - NUM_BYTES)


def encode(texts: tf.Tensor) -> tf.RaggedTensor:
    """Strings [N] -> their UTF-8 bytes as int32 token ids, ragged [N, (bytes)]."""
    characters = tf.strings.bytes_split(texts)  # one-byte strings
    values = tf.reshape(tf.io.decode_raw(characters.flat_values, tf.uint8), [-1])
    return characters.with_flat_values(tf.cast(values, tf.int32))


def decode(token_ids: tf.Tensor) -> tf.Tensor:
    """Token ids [N, T] -> strings [N]: the byte tokens joined, special tokens dropped.

    Bytes that are not valid UTF-8 (a character cut by the end of generation, or a model that emits a stray
    continuation byte) become U+FFFD, so the text is always valid UTF-8 and JSON (TF Serving's REST API) can carry it.
    """
    pieces = tf.gather(tf.constant(_TOKEN_BYTES), token_ids)
    raw = tf.strings.reduce_join(pieces, axis=-1)
    return tf.strings.unicode_transcode(raw, input_encoding="UTF-8", output_encoding="UTF-8", errors="replace",
                                        replacement_char=0xFFFD)


def text_tokens(text: str, max_bytes: int | None = None) -> np.ndarray:
    """The UTF-8 bytes of `text` as int32 tokens, cut to at most `max_bytes` without splitting a character."""
    data = text.encode("utf-8")
    if max_bytes is not None and len(data) > max_bytes:
        data = data[:max_bytes].decode("utf-8", errors="ignore").encode("utf-8")
    return np.frombuffer(data, dtype=np.uint8).astype(np.int32)


def is_byte(token_ids: np.ndarray | tf.Tensor) -> np.ndarray | tf.Tensor:
    """True where a token is a byte (not a special token)."""
    return token_ids < NUM_BYTES


def holds_headlines(x: np.ndarray) -> bool:
    """Whether examples x [N, T] are article ⟨sep⟩ headline pairs (what makes a headline model)."""
    return bool(np.any(x == SEPARATOR))


def example_prompts(x: np.ndarray, max_bytes: int = 64) -> list[str]:
    """Prompts made of examples x [N, T]: a headline example's article, else the first `max_bytes` bytes of text.

    For warm-up requests and checks on held-out data; bytes cut inside a character are dropped.
    """
    prompts = []
    for row in x:
        separator = np.flatnonzero(row == SEPARATOR)
        tokens = row[1 : separator[0]] if len(separator) else row[:max_bytes]
        prompts.append(_byte_text(tokens))
    return prompts


def example_headlines(x: np.ndarray) -> list[str]:
    """The headlines of headline examples x [N, T]: the bytes after ⟨sep⟩ up to ⟨end⟩ (or the row's end); "" for
    a row without ⟨sep⟩. The references `example_prompts` go with, for scoring generated headlines."""
    headlines = []
    for row in x:
        separator = np.flatnonzero(row == SEPARATOR)
        tokens = row[separator[0] + 1 :] if len(separator) else row[:0]
        ends = np.flatnonzero(tokens == END)
        headlines.append(_byte_text(tokens[: ends[0]] if len(ends) else tokens))
    return headlines


def _byte_text(tokens: np.ndarray) -> str:
    """The text of a token row's byte tokens; bytes cut inside a character are dropped."""
    return bytes(tokens[is_byte(tokens)].astype(np.uint8)).decode("utf-8", errors="ignore")
