"""Generation mechanics on small untrained models: the cache, sampling, batches, stopping, context, caps, tracing."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import tfzoo
from tfzoo.text import generation
from tfzoo.text.generation import generate, generation_functions, prompt_tokens
from tfzoo.text.tokenizer import BEGIN, END, PAD, SEPARATOR

SMALL = {"num_layers": 2, "d_model": 32, "num_heads": 4, "ff_dim": 64, "dropout": 0.0, "max_length": 64}
PROMPTS = ["The", "A much longer prompt, with punctuation.", "中文新闻标题", ""]


@pytest.fixture(scope="module")
def model():
    tf.keras.utils.set_random_seed(7)
    return tfzoo.create_model("text_generator", **SMALL)


def biased_model(token: int, bias: float) -> tf.keras.Model:
    """A model whose logit for `token` is shifted by `bias`: +1e4 makes it the only choice, -1e4 never."""
    model = tfzoo.create_model("text_generator", **SMALL)
    model.head.bias.assign(tf.tensor_scatter_nd_update(model.head.bias, [[token]], [bias]))
    return model


def test_cached_and_uncached_greedy_decoding_give_the_same_tokens(model):
    budget = tf.fill([len(PROMPTS)], 30)
    tokens, lengths = prompt_tokens(tf.constant(PROMPTS), budget, max_length=64, headline=False)

    def greedy(logits: tf.Tensor, position: tf.Tensor) -> tf.Tensor:
        return tf.argmax(logits, axis=-1, output_type=tf.int32)

    cached, recomputed = (
        tf.function(lambda: generation.decode(model, tokens, lengths, budget, greedy, use_cache=use_cache))().numpy()
        for use_cache in (True, False))
    np.testing.assert_array_equal(cached, recomputed)
    assert (cached != PAD).sum() > (tokens.numpy() != PAD).sum()  # tokens were generated
    texts = generate(model, PROMPTS, max_new_tokens=30)
    assert texts == generate(model, PROMPTS, max_new_tokens=30, use_cache=False)


def test_top_k_1_is_greedy_and_a_seed_reproduces_a_sample(model):
    greedy = generate(model, PROMPTS, max_new_tokens=20)
    assert generate(model, PROMPTS, max_new_tokens=20, temperature=1.5, top_k=1, seed=3) == greedy
    sample = generate(model, PROMPTS, max_new_tokens=20, temperature=1.5, seed=3)
    assert sample != greedy
    assert generate(model, PROMPTS, max_new_tokens=20, temperature=1.5, seed=3) == sample
    assert generate(model, PROMPTS, max_new_tokens=20, temperature=1.5, seed=4) != sample
    assert generate(model, PROMPTS, max_new_tokens=20, temperature=1.5, top_p=0.0, seed=5) == greedy  # nucleus of 1


def test_each_prompt_of_a_batch_gets_what_it_would_get_alone(model):
    batch = generate(model, PROMPTS, max_new_tokens=25, temperature=1.0, top_p=0.9, seed=11)
    assert batch == [generate(model, [prompt], max_new_tokens=25, temperature=1.0, top_p=0.9, seed=11)[0]
                     for prompt in PROMPTS]


def test_generation_stops_at_the_end_token_and_after_max_new_tokens():
    assert generate(biased_model(END, 1e4), PROMPTS, max_new_tokens=30) == [""] * len(PROMPTS)
    always_a = biased_model(ord("a"), 1e4)
    assert generate(always_a, ["x", "yy"], max_new_tokens=7) == ["a" * 7] * 2
    assert generate(always_a, ["x"], max_new_tokens=0) == [""]
    # Past half the context, the prompt keeps only half for new tokens; generation stops when the context is full.
    assert generate(always_a, ["p" * 40], max_new_tokens=50) == ["a" * 32]


def test_a_long_prompt_keeps_its_end_or_a_headline_article_its_beginning():
    prompt = tf.constant(["abcdefghij" * 10])
    tokens, lengths = prompt_tokens(prompt, tf.constant([16]), max_length=64, headline=False)
    assert int(lengths[0]) == 64 - 16  # room for the new tokens
    assert tokens[0, 0] == BEGIN and bytes(tokens[0, 1:48].numpy().astype(np.uint8)) == (b"abcdefghij" * 10)[-47:]
    tokens, lengths = prompt_tokens(prompt, tf.constant([100]), max_length=64, headline=True)
    assert int(lengths[0]) == 64 - 32  # at most half the context is kept for new tokens
    assert bytes(tokens[0, 1:31].numpy().astype(np.uint8)) == (b"abcdefghij" * 10)[:30]
    assert tokens[0, 31] == SEPARATOR and (tokens[0, 32:].numpy() == PAD).all()


def test_unicode_prompts_and_invalid_bytes_give_valid_text():
    texts = generate(biased_model(0xE4, 1e4), ["中文新闻标题：", "日本語"], max_new_tokens=5)
    assert texts == ["\ufffd" * 5] * 2  # lone lead bytes of a 3-byte character, each replaced


def test_new_prompt_lengths_and_batch_sizes_do_not_retrace(model):
    functions = generation_functions(model)
    for prompts in (["a"], ["b" * 50, "c"], ["中文"] * 5, [""]):
        generate(model, prompts, max_new_tokens=3)
        functions["serving_default"](prompt=tf.constant([p.encode() for p in prompts]))
    assert functions["generate"].experimental_get_tracing_count() == 1
    assert functions["serving_default"].experimental_get_tracing_count() == 1
    assert generation_functions(model) is functions  # compiled once per model


def test_hard_caps_hold_whatever_is_asked(model):
    assert generate(biased_model(ord("a"), 1e4), ["x"], max_new_tokens=10**6) == ["a" * 62]  # the context caps it
    controls = {name: tf.zeros([2], dtype) for name, dtype in generation.CONTROLS.items()}
    with pytest.raises(tf.errors.InvalidArgumentError, match="one value per prompt"):
        generation_functions(model)["generate"](prompt=tf.constant(["a"]), **controls)
    too_many = generation.MAX_PROMPTS + 1
    controls = {name: tf.zeros([too_many], dtype) for name, dtype in generation.CONTROLS.items()}
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"at most {generation.MAX_PROMPTS} prompts"):
        generation_functions(model)["generate"](prompt=tf.constant([""] * too_many), **controls)
    # The Python API runs more prompts than that in calls of at most MAX_PROMPTS; a text does not depend on its batch.
    prompts = [f"p{index}" for index in range(too_many)]
    texts = generate(model, prompts, max_new_tokens=2)
    assert len(texts) == too_many and texts[-1] == generate(model, prompts[-1:], max_new_tokens=2)[0]
