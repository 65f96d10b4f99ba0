"""The decoder-only Transformer text generator: byte tokens, sinusoidal positions, causal self-attention.

The attention is the source article's softmax(Q Kᵀ / √d_k) V and the positions its sinusoidal encoding; the
blocks are pre-layer-norm (normalise, attend or feed forward, add), which trains small models from scratch more
reliably than the original post-norm arrangement. `TextGenerator.call_with_cache` runs the same layers one step
at a time against a key/value cache; tfzoo.text.generation drives it. With the tokenizer and the generation
module beside it, this folder is the whole text generator.
"""
from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops

from tfzoo.optimizers import make_optimizer
from tfzoo.registry import register
from tfzoo.tasks import get_task
from tfzoo.text import task  # noqa: F401 (registers the language_model task this model trains with)
from tfzoo.text.pretrained import headline_starting_point
from tfzoo.text.tokenizer import VOCAB_SIZE

# A decoder block's key/value cache: (keys, values), each [batch, heads, max_length, head_dim].
LayerCache = tuple[Any, Any]
NEG_INF = -1e9  # added to the scores of future positions; softmax runs in float32, where exp() of it is 0


def sinusoidal_encoding(length: int, d_model: int) -> np.ndarray:
    """PE[pos, 2i] = sin(pos / 10000^(2i/d_model)), PE[pos, 2i+1] = cos(pos / 10000^(2i/d_model)); float32."""
    if d_model % 2:
        raise ValueError(f"d_model must be even for the sine/cosine pairs, got {d_model}")
    positions = np.arange(length, dtype=np.float64)[:, np.newaxis]
    two_i = np.arange(0, d_model, 2, dtype=np.float64)[np.newaxis, :]
    angles = positions / np.power(10000.0, two_i / d_model)
    encoding = np.empty((length, d_model), dtype=np.float64)
    encoding[:, 0::2] = np.sin(angles)
    encoding[:, 1::2] = np.cos(angles)
    return encoding.astype(np.float32)


@keras.saving.register_keras_serializable(package="tfzoo")
class PositionalEmbedding(keras.layers.Layer):
    """Token embeddings scaled by √d_model plus the fixed sinusoidal encoding of each position, then dropout."""

    def __init__(self, vocab_size: int, max_length: int, d_model: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.max_length, self.d_model, self.dropout_rate = vocab_size, max_length, d_model, dropout
        # N(0, 1/d_model) weights scaled by √d_model: unit-variance embeddings, on the scale of the encoding.
        self.token_embedding = keras.layers.Embedding(
            vocab_size, d_model, embeddings_initializer=keras.initializers.RandomNormal(stddev=d_model**-0.5),
            name="tokens")
        self.dropout = keras.layers.Dropout(dropout)
        self.encoding = sinusoidal_encoding(max_length, d_model)  # a constant, not a weight: nothing to train or save

    def build(self, input_shape) -> None:
        self.token_embedding.build(input_shape)

    def call(self, token_ids, start=0, training=None):
        """Embeddings of `token_ids` [B, T] at positions start .. start+T-1."""
        positions = ops.slice(ops.convert_to_tensor(self.encoding, self.compute_dtype), [start, 0],
                              [size(token_ids, 1), self.d_model])
        x = self.token_embedding(token_ids) * ops.cast(math.sqrt(self.d_model), self.compute_dtype)
        return self.dropout(x + positions, training=training)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.d_model)

    def get_config(self) -> dict:
        return {**super().get_config(), "vocab_size": self.vocab_size, "max_length": self.max_length,
                "d_model": self.d_model, "dropout": self.dropout_rate}


@keras.saving.register_keras_serializable(package="tfzoo")
class CausalSelfAttention(keras.layers.Layer):
    """Multi-head softmax(Q Kᵀ / √d_k) V where each position sees itself and the positions before it.

    With a cache, the keys and values of the T new positions start..start+T-1 are written into it and the new
    queries attend to everything cached so far: a decoding step computes one position, never the prefix again.
    """

    def __init__(self, num_heads: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.dropout_rate = num_heads, dropout
        self.dropout = keras.layers.Dropout(dropout)

    def build(self, input_shape) -> None:
        d_model = input_shape[-1]
        if d_model % self.num_heads:
            raise ValueError(f"d_model={d_model} must be a multiple of num_heads={self.num_heads}")
        self.head_dim = d_model // self.num_heads
        self.qkv = keras.layers.Dense(3 * d_model, name="qkv")  # Q, K and V projections in one matmul
        self.qkv.build(input_shape)
        self.projection = keras.layers.Dense(d_model, name="projection")
        self.projection.build(input_shape)

    def call(self, x, cache: LayerCache | None = None, start=0, training=None):
        """x [B, T, d_model] at positions start..start+T-1 -> output [B, T, d_model] (and the updated cache)."""
        length = size(x, 1)
        qkv = ops.reshape(positionwise(self.qkv, x), (-1, length, 3, self.num_heads, self.head_dim))
        qkv = ops.transpose(qkv, (2, 0, 3, 1, 4))  # [3, B, heads, T, head_dim]
        query, key, value = qkv[0], qkv[1], qkv[2]
        query_positions = ops.arange(length) + start
        if cache is not None:
            key, value = (write_positions(cached, new, start) for cached, new in zip(cache, (key, value)))
            cache = (key, value)
        key_positions = ops.arange(size(key, 2))
        scores = ops.matmul(query, ops.transpose(key, (0, 1, 3, 2))) / ops.cast(math.sqrt(self.head_dim), x.dtype)
        visible = key_positions[None, :] <= query_positions[:, None]  # [T, keys]
        scores = ops.where(visible, ops.cast(scores, "float32"), NEG_INF)
        weights = self.dropout(ops.cast(ops.softmax(scores, axis=-1), x.dtype), training=training)
        attended = ops.transpose(ops.matmul(weights, value), (0, 2, 1, 3))  # [B, T, heads, head_dim]
        output = positionwise(self.projection, ops.reshape(attended, (-1, length, self.num_heads * self.head_dim)))
        return output if cache is None else (output, cache)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "num_heads": self.num_heads, "dropout": self.dropout_rate}


def size(x, axis: int):
    """The size of a dimension: a Python int where the shape is static, a tensor otherwise (it costs ops in a graph)."""
    return x.shape[axis] if x.shape[axis] is not None else ops.shape(x)[axis]


def positionwise(function, x):
    """`function` of [positions, features] applied to x [B, T, d] as one 2-D batch of B·T positions.

    A Keras Dense on a 3-D input becomes a tensordot of about ten ops, and each generation step would run them
    for every dense layer; on the flattened positions it is one matmul.
    """
    y = function(ops.reshape(x, (-1, x.shape[-1])))
    return ops.reshape(y, (-1, size(x, 1), y.shape[-1]))


def write_positions(cached, new, start):
    """`cached` [B, H, S, D] with positions start..start+T-1 replaced by `new` [B, H, T, D].

    A scatter, not a dynamic-update-slice (in TensorFlow an XLA op, which the stock TF Serving binary may have no
    kernel for) nor a select over the whole cache: TensorScatterUpdate reuses its input's buffer when nothing else
    holds it, as in the decoding loop, so a step writes one position instead of copying the cache.
    """
    b, h, t = ops.meshgrid(ops.arange(size(new, 0)), ops.arange(new.shape[1]), ops.arange(size(new, 2)) + start,
                           indexing="ij")
    indices = ops.reshape(ops.stack([b, h, t], axis=-1), (-1, 3))
    return ops.scatter_update(cached, indices, ops.reshape(new, (-1, new.shape[3])))


@keras.saving.register_keras_serializable(package="tfzoo")
class DecoderBlock(keras.layers.Layer):
    """x + Attention(LayerNorm(x)), then + FeedForward(LayerNorm(.)); dropout on each branch."""

    def __init__(self, num_heads: int, ff_dim: int, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads, self.ff_dim, self.dropout_rate = num_heads, ff_dim, dropout
        self.attention_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="attention_norm")
        self.attention = CausalSelfAttention(num_heads, dropout, name="attention")
        self.feed_forward_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="feed_forward_norm")
        self.dropout = keras.layers.Dropout(dropout)

    def build(self, input_shape) -> None:
        d_model = input_shape[-1]
        self.hidden = keras.layers.Dense(self.ff_dim, activation="relu", name="hidden")
        self.output_dense = keras.layers.Dense(d_model, name="output")
        for layer in (self.attention_norm, self.attention, self.feed_forward_norm, self.hidden):
            layer.build(input_shape)
        self.output_dense.build((*input_shape[:-1], self.ff_dim))

    def call(self, x, cache: LayerCache | None = None, start=0, training=None):
        attended = self.attention(self.attention_norm(x), cache=cache, start=start, training=training)
        if cache is not None:
            attended, cache = attended
        x = x + self.dropout(attended, training=training)
        fed_forward = positionwise(lambda v: self.output_dense(self.hidden(self.feed_forward_norm(v))), x)
        x = x + self.dropout(fed_forward, training=training)
        return x if cache is None else (x, cache)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "num_heads": self.num_heads, "ff_dim": self.ff_dim,
                "dropout": self.dropout_rate}


@keras.saving.register_keras_serializable(package="tfzoo")
class TextGenerator(keras.Model):
    """Token ids [B, T] (T <= max_length) -> next-token logits [B, T, VOCAB_SIZE].

    A functional model (so `model.inputs`, `summary()` and saving work as for any other) that also decodes
    incrementally with `call_with_cache`. `headline` marks a model trained on article ⟨sep⟩ headline ⟨end⟩
    examples: generation then ends each prompt with ⟨sep⟩ (see tfzoo.text.generation).
    """

    def __init__(self, *, num_layers: int, d_model: int, num_heads: int, ff_dim: int, dropout: float,
                 max_length: int, headline: bool = False, **kwargs):
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        embedding = PositionalEmbedding(VOCAB_SIZE, max_length, d_model, dropout, name="embedding")
        blocks = [DecoderBlock(num_heads, ff_dim, dropout, name=f"decoder_{i}") for i in range(num_layers)]
        final_norm = keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm")
        head = keras.layers.Dense(VOCAB_SIZE, dtype="float32", name="logits")  # float32 logits under mixed precision
        x = embedding(token_ids)
        for block in blocks:
            x = block(x)
        super().__init__(token_ids, head(final_norm(x)), **kwargs)
        self.embedding, self.blocks, self.final_norm, self.head = embedding, blocks, final_norm, head
        self.hparams = {"num_layers": num_layers, "d_model": d_model, "num_heads": num_heads, "ff_dim": ff_dim,
                        "dropout": dropout, "max_length": max_length, "headline": headline}

    @property
    def max_length(self) -> int:
        return self.hparams["max_length"]

    @property
    def headline(self) -> bool:
        return self.hparams["headline"]

    def empty_cache(self, batch_size) -> list[LayerCache]:
        """Zero keys and values for every block: [batch, heads, max_length, head_dim] each."""
        num_heads = self.hparams["num_heads"]
        shape = (batch_size, num_heads, self.max_length, self.hparams["d_model"] // num_heads)
        dtype = self.embedding.compute_dtype  # every layer computes in the same dtype
        return [(ops.zeros(shape, dtype), ops.zeros(shape, dtype)) for _ in self.blocks]

    def call_with_cache(self, token_ids, cache: list[LayerCache], start):
        """Logits [B, T, VOCAB_SIZE] of `token_ids` [B, T] at positions start..start+T-1, and the updated cache.

        Positions before `start` must already be in `cache`; equal to `self(all tokens so far)[:, start:]`.
        """
        x = self.embedding(token_ids, start=start, training=False)
        updated = []
        for block, layer_cache in zip(self.blocks, cache):
            x, layer_cache = block(x, cache=layer_cache, start=start, training=False)
            updated.append(layer_cache)
        return positionwise(lambda v: self.head(self.final_norm(v)), x), updated

    def get_config(self) -> dict:
        return {"name": self.name, "trainable": self.trainable, **self.hparams}

    @classmethod
    def from_config(cls, config: dict, custom_objects=None) -> TextGenerator:
        return cls(**config)


@register("text_generator", task="language_model", default_dataset="python_docs", epochs=14, batch_size=8,
          starting_point=headline_starting_point)
def text_generator(
    *, num_layers: int = 2, d_model: int = 128, num_heads: int = 4, ff_dim: int = 512, dropout: float = 0.0,
    max_length: int = 256, headline: bool = False, optimizer: str = "adamw", learning_rate: float = 5e-3,
    warmup_steps: int = 200, decay_steps: int = 0, clipnorm: float = 1.0, weight_decay: float = 0.2,
) -> keras.Model:
    """Decoder-only Transformer over UTF-8 bytes: sinusoidal positions, causal self-attention, AdamW.

    `max_length` is the context in tokens (⟨begin⟩, prompt and generated bytes). `headline`: trained on
    article ⟨sep⟩ headline ⟨end⟩ examples (set from the data by tfzoo.train). The learning rate warms up over
    `warmup_steps`, then decays to a tenth along a cosine over `decay_steps` (tfzoo.train sets it to the run's
    length; 0: no decay); gradients are clipped to a global norm of `clipnorm` (0: no clipping); `weight_decay`
    is decoupled, as in AdamW (see tfzoo.optimizers.make_optimizer).
    """
    model = TextGenerator(num_layers=num_layers, d_model=d_model, num_heads=num_heads, ff_dim=ff_dim,
                          dropout=dropout, max_length=max_length, headline=headline, name="text_generator")
    optimizer = make_optimizer(optimizer, learning_rate, warmup_steps=warmup_steps, decay_steps=decay_steps,
                               clipnorm=clipnorm, weight_decay=weight_decay)
    return get_task("language_model").compile(model, optimizer)
