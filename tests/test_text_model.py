"""The Transformer text generator: the sinusoidal encoding, causal attention, the key/value cache, metrics, saving."""
from __future__ import annotations

import math

import keras
import numpy as np
import pytest

import tfzoo
from tfzoo.text.model import TextGenerator, sinusoidal_encoding
from tfzoo.text.task import BitsPerByte, TokenAccuracy
from tfzoo.text.tokenizer import END, PAD, VOCAB_SIZE

SMALL = {"num_layers": 2, "d_model": 32, "num_heads": 4, "ff_dim": 64, "dropout": 0.0, "max_length": 40}


def test_positional_encoding_equals_the_formula():
    length, d_model = 50, 16
    expected = np.zeros((length, d_model))
    for pos in range(length):
        for i in range(d_model // 2):
            expected[pos, 2 * i] = math.sin(pos / 10000 ** (2 * i / d_model))
            expected[pos, 2 * i + 1] = math.cos(pos / 10000 ** (2 * i / d_model))
    np.testing.assert_allclose(sinusoidal_encoding(length, d_model), expected, atol=1e-6)

    # The model adds exactly this to the √d_model-scaled token embeddings, at the positions it is given.
    model = tfzoo.create_model("text_generator", **{**SMALL, "d_model": d_model, "num_heads": 2, "max_length": length})
    tokens = np.random.default_rng(0).integers(0, 256, size=(2, 9)).astype("int32")
    embedded = np.asarray(model.embedding(tokens, start=7))
    scaled_tokens = np.asarray(model.embedding.token_embedding(tokens)) * math.sqrt(d_model)
    np.testing.assert_allclose(embedded - scaled_tokens, np.broadcast_to(expected[7:16], (2, 9, d_model)), atol=1e-5)

    with pytest.raises(ValueError, match="even"):
        sinusoidal_encoding(4, 7)


def test_a_position_never_sees_the_positions_after_it():
    model = tfzoo.create_model("text_generator", **SMALL)
    rng = np.random.default_rng(1)
    tokens = rng.integers(0, 256, size=(2, 30)).astype("int32")
    changed = tokens.copy()
    changed[:, 12:] = rng.integers(0, 256, size=(2, 18))
    before, after = np.asarray(model(tokens)), np.asarray(model(changed))
    np.testing.assert_allclose(before[:, :12], after[:, :12], atol=1e-5)
    assert np.abs(before[:, 12:] - after[:, 12:]).max() > 1e-3


def test_cached_steps_equal_the_full_forward_pass():
    model = tfzoo.create_model("text_generator", **SMALL)
    tokens = np.random.default_rng(2).integers(0, 256, size=(3, 25)).astype("int32")
    full = np.asarray(model(tokens))
    cache = model.empty_cache(3)
    logits, cache = model.call_with_cache(tokens[:, :10], cache, 0)  # the prompt at once
    steps = [np.asarray(logits)]
    for position in range(10, 25):  # then one token at a time
        logits, cache = model.call_with_cache(tokens[:, position : position + 1], cache, position)
        steps.append(np.asarray(logits))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-4)


def test_saved_model_loads_with_its_hyperparameters_and_weights(tmp_path):
    model = tfzoo.create_model("text_generator", **SMALL, headline=True)
    tokens = np.random.default_rng(3).integers(0, 256, size=(2, 12)).astype("int32")
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert isinstance(loaded, TextGenerator) and loaded.name == "text_generator"
    assert loaded.hparams == {**SMALL, "headline": True}
    np.testing.assert_allclose(np.asarray(loaded(tokens)), np.asarray(model(tokens)), atol=1e-6)
    assert loaded.loss.ignore_class == PAD  # compiled as trained: padding targets are not learnt


def test_metrics_leave_padding_out_and_count_bytes():
    targets = np.array([[65, 66, END, PAD]])
    logits = np.zeros((1, 4, VOCAB_SIZE), "float32")  # uniform: log2(260) bits for every token
    logits[0, 0, 65] = logits[0, 1, 1] = logits[0, 3, 65] = 10.0  # right, wrong, (uniform), padding
    bits = BitsPerByte()
    bits.update_state(targets, logits)
    per_target = [-np.log2(np.exp(10) / (np.exp(10) + 259)), -np.log2(1 / (np.exp(10) + 259)), np.log2(260)]
    assert float(bits.result()) == pytest.approx(sum(per_target) / 2, rel=1e-5)  # 3 targets, 2 of them bytes
    accuracy = TokenAccuracy()
    accuracy.update_state(targets, logits)
    assert float(accuracy.result()) == pytest.approx(1 / 3)  # the padding target's right guess does not count
