"""Generation mechanics on small untrained models: the cache, sampling, batches, stopping, context, caps, tracing,
the repetition controls, the one-line refusals of out-of-range controls (in Python, in the graph, served), and
the token budget (in process, in an export, served)."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

import tfzoo
from tfzoo.cli import SERVER_FLAGS, build_parser, main
from tfzoo.datasets import load_dataset
from tfzoo.export.saved_model import read_meta_graph, write_saved_model
from tfzoo.serving.client import Client
from tfzoo.serving.config import write_serving_configs
from tfzoo.serving.loader import xla_parts
from tfzoo.serving.server import ModelServer, ServerOptions
from tfzoo.text import generation, tokenizer
from tfzoo.text.generation import (
    CONTROLS,
    DEFAULTS,
    OFF,
    TOKENS_PER_REQUEST_RANGE,
    call_generate_signature,
    generate,
    generation_functions,
    prompt_tokens,
)
from tfzoo.text.tokenizer import BEGIN, END, PAD, SEPARATOR, VOCAB_SIZE, text_tokens

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


@pytest.mark.slow
def test_cached_and_uncached_greedy_decoding_give_the_same_tokens(model):
    budget = tf.fill([len(PROMPTS)], 30)
    tokens, lengths = prompt_tokens(tf.constant(PROMPTS), budget, max_length=64, headline=False)

    def greedy(logits: tf.Tensor, tokens: tf.Tensor, position: tf.Tensor) -> tf.Tensor:
        return tf.argmax(logits, axis=-1, output_type=tf.int32)

    cached, recomputed = (
        tf.function(lambda: generation.decode(model, tokens, lengths, budget, greedy, use_cache=use_cache))().numpy()
        for use_cache in (True, False))
    np.testing.assert_array_equal(cached, recomputed)
    assert (cached != PAD).sum() > (tokens.numpy() != PAD).sum()  # tokens were generated
    decoded = tokenizer.decode(tf.where(np.arange(64)[None, :] >= lengths[:, None], cached, PAD)).numpy()
    # With the repetition controls off, the generate signature is plain greedy decoding, as before they existed.
    assert generate(model, PROMPTS, max_new_tokens=30, **OFF) == [text.decode() for text in decoded]
    for sampling in ({}, {"temperature": 1.0, "top_p": 0.9, "seed": 2}):  # with the repetition controls on
        controls = {"max_new_tokens": 30, "repetition_penalty": 1.3, "no_repeat_ngram_size": 3, **sampling}
        assert generate(model, PROMPTS, **controls) == generate(model, PROMPTS, **controls, use_cache=False)


@pytest.mark.slow
def test_xla_gives_the_text_of_the_xla_free_graph(model):
    """The token loop compiled with XLA (generate's default) picks the tokens the XLA-free graph picks: the same
    greedy text, and the same seeded samples, since both sample with the same uniforms, drawn outside XLA (only
    float rounding at a boundary of the cumulative probabilities could tell them apart; none does here)."""
    headline = tfzoo.create_model("text_generator", **{**SMALL, "headline": True})
    sampled = {"temperature": 1.0, "top_p": 0.9, "seed": 2, "repetition_penalty": 1.3, "no_repeat_ngram_size": 3}
    for generator in (model, headline):
        for controls in (OFF, {}, sampled, {"temperature": 1.5, "top_k": 5, "seed": 3}):
            xla_free = generate(generator, PROMPTS, max_new_tokens=30, jit_compile=False, **controls)
            assert all(xla_free[:-1]), xla_free  # text was generated (the empty prompt's may end at once)
            assert generate(generator, PROMPTS, max_new_tokens=30, **controls) == xla_free, controls
    # Without the cache, XLA runs the whole padded context at every step: the same tokens again.
    assert (generate(model, PROMPTS, max_new_tokens=10, use_cache=False)
            == generate(model, PROMPTS, max_new_tokens=10, use_cache=False, jit_compile=False))
    # Only the jit_compile graph has a part that needs XLA.
    for jit_compile in (False, True):
        traced = generation_functions(model, jit_compile=jit_compile)["generate"].get_concrete_function()
        graph = meta_graph_pb2.MetaGraphDef(graph_def=traced.graph.as_graph_def())
        assert bool(xla_parts(graph)) == jit_compile


@pytest.mark.slow
def test_top_k_1_is_greedy_and_a_seed_reproduces_a_sample(model):
    greedy = generate(model, PROMPTS, max_new_tokens=20)
    assert generate(model, PROMPTS, max_new_tokens=20, temperature=1.5, top_k=1, seed=3) == greedy
    sample = generate(model, PROMPTS, max_new_tokens=20, temperature=1.5, seed=3)
    assert sample != greedy
    assert generate(model, PROMPTS, max_new_tokens=20, temperature=1.5, seed=3) == sample
    assert generate(model, PROMPTS, max_new_tokens=20, temperature=1.5, seed=4) != sample
    assert generate(model, PROMPTS, max_new_tokens=20, temperature=1.5, top_p=0.0, seed=5) == greedy  # nucleus of 1


@pytest.mark.slow
def test_each_prompt_of_a_batch_gets_what_it_would_get_alone(model):
    batch = generate(model, PROMPTS, max_new_tokens=25, temperature=1.0, top_p=0.9, seed=11)
    assert batch == [generate(model, [prompt], max_new_tokens=25, temperature=1.0, top_p=0.9, seed=11)[0]
                     for prompt in PROMPTS]


@pytest.mark.slow
def test_generation_stops_at_the_end_token_and_after_max_new_tokens():
    assert generate(biased_model(END, 1e4), PROMPTS, max_new_tokens=30) == [""] * len(PROMPTS)
    always_a = biased_model(ord("a"), 1e4)
    assert generate(always_a, ["x", "yy"], max_new_tokens=7, **OFF) == ["a" * 7] * 2
    assert generate(always_a, ["x"], max_new_tokens=0) == [""]
    # Past half the context, the prompt keeps only half for new tokens; generation stops when the context is full.
    assert generate(always_a, ["p" * 40], max_new_tokens=50, **OFF) == ["a" * 32]


def test_a_long_prompt_keeps_its_end_or_a_headline_article_its_beginning():
    prompt = tf.constant(["abcdefghij" * 10])
    tokens, lengths = prompt_tokens(prompt, tf.constant([16]), max_length=64, headline=False)
    assert int(lengths[0]) == 64 - 16  # room for the new tokens
    assert tokens[0, 0] == BEGIN and bytes(tokens[0, 1:48].numpy().astype(np.uint8)) == (b"abcdefghij" * 10)[-47:]
    tokens, lengths = prompt_tokens(prompt, tf.constant([100]), max_length=64, headline=True)
    assert int(lengths[0]) == 64 - 32  # at most half the context is kept for new tokens
    assert bytes(tokens[0, 1:31].numpy().astype(np.uint8)) == (b"abcdefghij" * 10)[:30]
    assert tokens[0, 31] == SEPARATOR and (tokens[0, 32:].numpy() == PAD).all()


@pytest.mark.slow
def test_unicode_prompts_and_invalid_bytes_give_valid_text():
    texts = generate(biased_model(0xE4, 1e4), ["中文新闻标题：", "日本語"], max_new_tokens=5, **OFF)
    assert texts == ["\ufffd" * 5] * 2  # lone lead bytes of a 3-byte character, each replaced


@pytest.mark.slow
@pytest.mark.parametrize("jit_compile", [False, True])
def test_new_prompt_lengths_and_batch_sizes_do_not_retrace(model, jit_compile):
    # With jit_compile, XLA compiles the traced token loop once per batch size; the graph is traced once.
    functions = generation_functions(model, jit_compile=jit_compile)
    for prompts in (["a"], ["b" * 50, "c"], ["中文"] * 5, [""]):
        generate(model, prompts, max_new_tokens=3, jit_compile=jit_compile)
        functions["serving_default"](prompt=tf.constant([p.encode() for p in prompts]))
    assert functions["generate"].experimental_get_tracing_count() == 1
    assert functions["serving_default"].experimental_get_tracing_count() == 1
    assert generation_functions(model, jit_compile=jit_compile) is functions  # compiled once per model
    assert generation_functions(model, jit_compile=not jit_compile) is not functions


@pytest.mark.slow
def test_hard_caps_hold_whatever_is_asked(model):
    assert generate(biased_model(ord("a"), 1e4), ["x"], max_new_tokens=10**6, **OFF) == ["a" * 62]  # context caps it
    controls = {name: tf.fill([2], tf.constant(DEFAULTS[name], dtype)) for name, dtype in CONTROLS.items()}
    with pytest.raises(tf.errors.InvalidArgumentError, match="one value per prompt"):
        generation_functions(model)["generate"](prompt=tf.constant(["a"]), **controls)
    too_many = generation.MAX_PROMPTS + 1
    controls = {name: tf.fill([too_many], tf.constant(DEFAULTS[name], dtype)) for name, dtype in CONTROLS.items()}
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"at most {generation.MAX_PROMPTS} prompts"):
        generation_functions(model)["generate"](prompt=tf.constant([""] * too_many), **controls)
    # The Python API runs more prompts than that in calls of at most MAX_PROMPTS; a text does not depend on its batch.
    prompts = [f"p{index}" for index in range(too_many)]
    texts = generate(model, prompts, max_new_tokens=2)
    assert len(texts) == too_many and texts[-1] == generate(model, prompts[-1:], max_new_tokens=2)[0]


def penalized(logits: list[float], text: list[int], *, penalty: float = 1.0, ngram: int = 0) -> np.ndarray:
    """penalize_repetition on one row: `logits` for the first len(logits) tokens (the rest 0), after `text`."""
    tokens = tf.constant([text + [PAD] * 4])
    row = tf.constant([logits + [0.0] * (VOCAB_SIZE - len(logits))])
    return generation.penalize_repetition(row, tokens, tf.constant([0]), tf.constant(len(text)), tf.constant([penalty]),
                                          tf.constant([ngram])).numpy()[0, :len(logits)]


def test_the_repetition_penalty_divides_positive_and_multiplies_negative_logits_of_seen_tokens():
    text = [BEGIN, 0, 2, 0]  # tokens 0 and 2 are in the text, 1 and 3 are not
    np.testing.assert_allclose(penalized([3.0, 2.0, -1.0, 0.5], text, penalty=2.0), [1.5, 2.0, -2.0, 0.5])
    np.testing.assert_array_equal(penalized([3.0, 2.0, -1.0, 0.5], text, penalty=1.0), [3.0, 2.0, -1.0, 0.5])
    # Greedy follows: the seen token 0 (3.0) loses to the unseen 1 (2.0) once divided by more than 1.5.
    def greedy(penalty: float) -> int:
        logits = tf.constant([penalized([3.0, 2.0], text, penalty=penalty)])
        return int(generation.next_tokens(logits, tf.zeros([1]), tf.zeros([1], tf.int32), tf.ones([1]),
                                          tf.zeros([1]))[0])

    assert {penalty: greedy(penalty) for penalty in (1.0, 1.4, 1.6)} == {1.0: 0, 1.4: 0, 1.6: 1}


def test_no_repeat_ngram_bans_exactly_the_tokens_that_would_repeat_an_ngram():
    text = [BEGIN, 1, 2, 3, 1, 2]  # "1 2" was followed by 3: with n = 3, 3 would repeat "1 2 3"
    banned = {n: set(np.flatnonzero(np.isneginf(penalized([0.0] * 6, text, ngram=n)))) for n in range(5)}
    assert banned == {0: set(), 1: {1, 2, 3}, 2: {3}, 3: {3}, 4: set()}  # n = 1: no token twice
    # A row's text starts at `first` (a headline's, after the article): n-grams before it do not count.
    tokens = tf.constant([text + [PAD] * 2])
    after = generation.penalize_repetition(tf.zeros([1, VOCAB_SIZE]), tokens, tf.constant([2]), tf.constant(6),
                                           tf.constant([1.0]), tf.constant([3]))
    assert not np.isneginf(after.numpy()).any()


def letters_model(headline: bool = False) -> tf.keras.Model:
    """A random model that only ever writes lowercase letters (their logits raised by 1e4), in no fixed pattern."""
    tf.keras.utils.set_random_seed(3)
    model = tfzoo.create_model("text_generator", **SMALL, headline=headline)
    raised = [[letter] for letter in range(ord("a"), ord("z") + 1)]
    model.head.bias.assign(tf.tensor_scatter_nd_add(model.head.bias, raised, [1e4] * len(raised)))
    return model


def repeated_ngrams(prompt: str, text: str, n: int) -> list[str]:
    """The n-grams of prompt + text that end inside `text` and occur earlier (ending earlier) too."""
    whole = prompt + text
    return [whole[end - n:end] for end in range(max(n, len(prompt) + 1), len(whole) + 1)
            if whole[end - n:end] in {whole[e - n:e] for e in range(n, end)}]


@pytest.mark.slow
def test_no_repeat_ngram_leaves_no_repeated_ngram_in_greedy_or_sampled_text():
    model = letters_model()
    prompts = ["abcab", "x", "the the the"]
    looping = generate(model, prompts, max_new_tokens=40, **OFF)
    assert any(repeated_ngrams(p, t, 3) for p, t in zip(prompts, looping))  # the control has something to do
    for sampling in ({}, {"temperature": 1.0, "seed": 7}):
        for n in (2, 3, 5):
            texts = generate(model, prompts, max_new_tokens=40, no_repeat_ngram_size=n, repetition_penalty=1.0,
                             **sampling)
            assert [len(text) for text in texts] == [40] * len(prompts)  # every token a letter, none stopped early
            assert [repeated_ngrams(p, t, n) for p, t in zip(prompts, texts)] == [[]] * len(prompts), (n, sampling)


@pytest.mark.slow
def test_a_long_prompt_is_read_from_its_end_for_a_language_model_and_its_start_for_a_headline_model():
    start, end = "0123456789" * 2000, "and this is the end of a long prompt, the last bytes it has"  # 20 KB, then 59
    lm, headline = letters_model(), letters_model(headline=True)
    sampled = {"max_new_tokens": 16, "temperature": 1.0, "seed": 1}  # follows the context more than greedy does
    # A language model with 16 new tokens keeps the last 64 - 1 - 16 = 47 bytes.
    assert generate(lm, [start + end], **sampled) == generate(lm, [end[-47:]], **sampled)
    assert generate(lm, [start + end], **sampled) != generate(lm, [start], **sampled)
    # A headline model with 16 new tokens keeps the first 64 - 2 - 16 = 46 bytes of the article.
    assert generate(headline, [start + end], **sampled) == generate(headline, [start[:46]], **sampled)
    assert generate(headline, [start + end], **sampled) != generate(headline, [end], **sampled)
    # Past MAX_PROMPT_BYTES (a context that long), a language model still reads the end of the string.
    tokens, lengths = prompt_tokens(tf.constant([start + end]), tf.constant([16]), max_length=20000, headline=False)
    assert int(lengths[0]) == 1 + generation.MAX_PROMPT_BYTES
    assert bytes(tokens[0, 1:int(lengths[0])].numpy().astype(np.uint8)) == (start + end).encode()[-16384:]


def test_a_character_cut_at_the_start_of_a_kept_prompt_loses_its_continuation_bytes():
    prompt = "中" * 30  # 90 bytes; 47 kept from the end would start inside a character, with 2 stray bytes
    tokens, lengths = prompt_tokens(tf.constant([prompt]), tf.constant([16]), max_length=64, headline=False)
    kept = bytes(tokens[0, 1:int(lengths[0])].numpy().astype(np.uint8))
    assert kept == ("中" * 15).encode()  # 45 bytes: the cut character's 2 bytes dropped
    # An uncut prompt is left as it is, even one that starts with a stray continuation byte.
    tokens, lengths = prompt_tokens(tf.constant([b"\x80ab"]), tf.constant([16]), max_length=64, headline=False)
    assert list(tokens[0, 1:int(lengths[0])].numpy()) == [0x80, ord("a"), ord("b")]


OUT_OF_RANGE = [("max_new_tokens", -1), ("temperature", -0.5), ("temperature", float("nan")), ("top_k", -5),
                ("top_p", 1.5), ("top_p", -0.1), ("top_p", float("nan")), ("repetition_penalty", 0.0),
                ("repetition_penalty", -1.2), ("repetition_penalty", float("nan")), ("no_repeat_ngram_size", -1)]


@pytest.mark.parametrize(("name", "value"), OUT_OF_RANGE)
def test_an_out_of_range_control_is_refused_in_one_line_naming_it(model, name, value):
    with pytest.raises(ValueError) as error:
        generate(model, ["a"], **{name: value})
    assert str(error.value).startswith(f"{name} must be ") and "\n" not in str(error.value)
    # The signature itself (as served) refuses it too, in an assertion whose text is the same line.
    controls = {other: tf.constant([DEFAULTS[other]], dtype) for other, dtype in CONTROLS.items()}
    controls[name] = tf.constant([DEFAULTS[name], value], CONTROLS[name])
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"assertion failed: \\[{name} must be "):
        generation_functions(model)["generate"](prompt=tf.constant(["a", "b"]),
                                                **{k: (v if k == name else tf.concat([v, v], 0))
                                                   for k, v in controls.items()})


@pytest.fixture(scope="module")
def served(model, tmp_path_factory):
    """The small model exported and served by tfzoo's ModelServer: (REST port, gRPC client)."""
    base = tmp_path_factory.mktemp("models")
    write_saved_model(model, generation_functions(model), base / "lm" / "1")
    config = write_serving_configs(base, tmp_path_factory.mktemp("config"))["models.config"]
    options = ServerOptions(model_config_file=str(config), port=0, rest_api_port=0, file_system_poll_wait_seconds=0.2)
    with ModelServer(options) as server, Client("127.0.0.1", server.port, protocol="grpc") as grpc:
        yield server.rest_api_port, grpc


def rest_generate(port: int, inputs: dict[str, list], model: str = "lm") -> tuple[int, dict]:
    """POST a columnar :predict of the generate signature; (HTTP status, JSON answer)."""
    body = json.dumps({"signature_name": "generate", "inputs": inputs}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/{model}:predict", body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.slow
def test_a_served_request_with_an_out_of_range_control_gets_a_400_whose_first_line_names_it(served):
    port, _ = served
    good = {"prompt": ["a", "b"], **{name: [value] * 2 for name, value in DEFAULTS.items()}}
    assert rest_generate(port, good)[0] == 200
    for name, value in [("top_k", -5), ("repetition_penalty", 0.0), ("no_repeat_ngram_size", -2), ("top_p", 2)]:
        status, answer = rest_generate(port, {**good, name: [DEFAULTS[name], value]})
        # The first line is the one line; TF's status adds the failing node on a second, as TF Serving's does.
        assert (status, answer["error"].splitlines()[0]) == (400, f"assertion failed: [{name} must be "
                                                                  f"{generation.RANGES[name][3]}]")
    status, answer = rest_generate(port, {**good, "seed": [1]})
    assert (status, answer["error"].splitlines()[0]) == (400, "assertion failed: [seed needs one value per prompt]")
    too_many = generation.MAX_PROMPTS + 1
    status, answer = rest_generate(port, {"prompt": ["a"] * too_many,
                                          **{name: [value] * too_many for name, value in DEFAULTS.items()}})
    assert (status, answer["error"].splitlines()[0]) == (400, f"assertion failed: [at most {too_many - 1} prompts "
                                                              "per request]")


@pytest.mark.slow
def test_an_empty_batch_gets_no_texts(served):
    port, grpc = served
    assert rest_generate(port, {"prompt": [], **{name: [] for name in CONTROLS}}) == (200, {"outputs": []})
    with Client("127.0.0.1", port, protocol="rest") as rest:
        for client in (rest, grpc):  # tfzoo's client types the empty lists from the signature
            texts = client.predict("lm", {"prompt": [], **{name: [] for name in CONTROLS}}, signature="generate")
            assert texts["text"].shape == (0,), client.protocol


def budget_message(prompts: int, tokens: int, budget: int = 1024) -> str:
    """The one line a request over the token budget gets (a prefix; the rest says what counts and what to do)."""
    return f"max_tokens_per_request {budget} exceeded: {prompts} prompts x {tokens} new tokens = {prompts * tokens} "


@pytest.mark.slow
def test_a_request_over_the_token_budget_is_refused_in_one_line_and_one_at_it_runs(model):
    functions = generation_functions(model, max_tokens_per_request=1024)
    assert generation_functions(model, max_tokens_per_request=1024) is functions  # compiled once per budget too
    assert generation_functions(model) is not functions
    at_budget = [f"p{index}" for index in range(32)]  # 32 prompts x 32 new tokens = 1024
    texts = call_generate_signature(functions["generate"], at_budget, max_new_tokens=32)
    assert texts == generate(model, at_budget, max_new_tokens=32)  # the budget changes no answer
    with pytest.raises(ValueError) as error:  # the Python API of a signature: the graph's one line
        call_generate_signature(functions["generate"], [*at_budget, "one more"], max_new_tokens=32)
    assert str(error.value).startswith(budget_message(33, 32)) and "\n" not in str(error.value)
    # A prompt counts the tokens the context leaves it: "x" in a 64-token context may make 62 (⟨begin⟩ x ...).
    assert len(call_generate_signature(functions["generate"], ["x"] * 16, max_new_tokens=10**6)) == 16  # 992
    controls = {name: tf.fill([17], tf.constant(10**6 if name == "max_new_tokens" else DEFAULTS[name], dtype))
                for name, dtype in CONTROLS.items()}
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"assertion failed: \\[{budget_message(17, 62)}"):
        functions["generate"](prompt=tf.constant(["x"] * 17), **controls)
    # serving_default (64 tokens each) has the budget too: 16 prompts fit 1024, 17 do not.
    assert functions["serving_default"](prompt=tf.constant(["x"] * 16))["text"].shape == (16,)
    with pytest.raises(tf.errors.InvalidArgumentError, match=budget_message(17, 62)):
        functions["serving_default"](prompt=tf.constant(["x"] * 17))
    # generate() splits its prompts into calls that fit its budget rather than refusing them.
    prompts = [f"q{index}" for index in range(40)]
    assert generate(model, prompts, max_new_tokens=100, max_tokens_per_request=1024) == \
        generate(model, prompts, max_new_tokens=100)
    for bad in (1023, TOKENS_PER_REQUEST_RANGE[1] + 1, 2048.0, True):
        with pytest.raises(ValueError, match=f"^max_tokens_per_request must be a whole number from 1024 .* to "
                                             f"{TOKENS_PER_REQUEST_RANGE[1]} .*, got {bad!r}$"):
            generate(model, ["x"], max_tokens_per_request=bad)


def train_tiny_text_generator(tmp_path) -> tfzoo.TrainResult:
    """A text_generator of SMALL's size trained one epoch on a few lines: a real run dir, made in seconds."""
    (tmp_path / "notes.txt").write_text("\n\n".join(f"Note {i}: a short text to model." for i in range(12)),
                                        encoding="utf-8")
    data = load_dataset("text_file", path=str(tmp_path / "notes.txt"), max_length=64)
    return tfzoo.train("text_generator", dataset=data, epochs=1, run_dir=tmp_path / "run", verbose=0, **SMALL)


@pytest.mark.slow
def test_the_export_flag_sets_the_budget_of_the_exported_graph_and_tfzoo_json(tmp_path, capsys):
    run = train_tiny_text_generator(tmp_path)
    base = tmp_path / "models"
    assert main(["export", str(run.run_dir), "--model-base", str(base), "--max-tokens-per-request", "1024"]) == 0
    version_dir = base / "text_generator" / "1"
    metadata = json.loads((version_dir / "assets.extra" / "tfzoo.json").read_text())
    # In the content too: an export of the same run with another budget is another version, not this one.
    assert metadata["serving_options"] == metadata["content"]["serving_options"] == {"max_tokens_per_request": 1024,
                                                                                    "xla": False}
    assert not xla_parts(read_meta_graph(version_dir))  # the default export needs no XLA
    # tfzoo generate on the export runs its 'generate' signature loaded afresh (tf.saved_model.load, as a server
    # sees it): 16 prompts x 62 tokens fit, 17 get one line and exit status 2.
    capsys.readouterr()
    assert main(["generate", str(version_dir), *["--prompt", "x"] * 16, "--max-new-tokens", "1000"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 16
    assert main(["generate", str(version_dir), *["--prompt", "x"] * 17, "--max-new-tokens", "1000"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"tfzoo generate: error: {budget_message(17, 62)}") and error.count("\n") == 1
    # Served: REST answers 400, the first line the same.
    config = write_serving_configs(base, tmp_path / "config")["models.config"]
    options = ServerOptions(model_config_file=str(config), port=0, rest_api_port=0, file_system_poll_wait_seconds=0)
    with ModelServer(options) as server:
        inputs = {name: [value] * 17 for name, value in {**DEFAULTS, "max_new_tokens": 1000}.items()}
        status, answer = rest_generate(server.rest_api_port, {"prompt": ["x"] * 17, **inputs},
                                       model="text_generator")
        assert (status, answer["error"].splitlines()[0].startswith(f"assertion failed: [{budget_message(17, 62)}")) \
            == (400, True)
        inputs = {name: values[:16] for name, values in inputs.items()}
        assert rest_generate(server.rest_api_port, {"prompt": ["x"] * 16, **inputs}, model="text_generator")[0] == 200


@pytest.mark.parametrize(("flags", "option", "value"), [(["--max-tokens-per-request", "2048"],
                                                         "max_tokens_per_request", 2048), (["--xla"], "xla", True)])
def test_only_a_language_model_export_takes_its_serving_options(trained_run, tmp_path, capsys, flags, option, value):
    run = trained_run("linear_regression")
    base = tmp_path / "models"
    assert main(["export", str(run.run_dir), "--model-base", str(base), *flags]) == 2
    error = capsys.readouterr().err
    assert error == (f"tfzoo export: error: {option} is an option of a language model's export (its "
                     "generation graph); a regression export has none: leave it out\n")
    assert not base.exists()  # refused before anything was written
    with pytest.raises(ValueError, match="an export without a task has none"):
        tfzoo.export_model(run.model, base, name="plain", examples=np.zeros((2, 1), np.float32), **{option: value})
    assert not base.exists()


@pytest.mark.slow
def test_an_xla_export_validates_and_is_served_only_with_xla_cpu_compilation_enabled(model, tmp_path, capsys):
    texts = ["The cat sat on the mat.", "def f(x): return x", "Hello world", "Numbers: 1 2 3"]
    examples = np.stack([np.pad(text_tokens(text), (0, 32 - len(text))) for text in texts])
    base = tmp_path / "models"
    version_dir = tfzoo.export_model(model, base, name="lm", examples=examples, task="language_model", xla=True)
    report = capsys.readouterr().out  # the fresh-process validation's, which replayed the XLA-free references
    assert "ok   core ops only" in report and "serve it with --xla_cpu_compilation_enabled=true" in report
    assert "ok   matches the trained model" in report and "=> valid for TF Serving" in report
    metadata = json.loads((version_dir / "assets.extra" / "tfzoo.json").read_text())
    assert metadata["serving_options"]["xla"] is metadata["content"]["serving_options"]["xla"] is True

    def serve_options(*flags: str) -> ServerOptions:  # as `tfzoo serve` parses its command line
        args = build_parser().parse_args(["serve", f"--model_base_path={base / 'lm'}", "--model_name=lm",
                                          "--port=0", "--file_system_poll_wait_seconds=0", *flags])
        return ServerOptions(**{name: getattr(args, name) for name in SERVER_FLAGS})

    prompts = ["The", "A much longer prompt, with punctuation."]
    with ModelServer(serve_options("--xla_cpu_compilation_enabled=true")) as server, \
            Client("127.0.0.1", server.port, protocol="grpc", timeout=120) as client:  # XLA compiles at the first call
        served = client.predict("lm", {"prompt": np.array([p.encode() for p in prompts], dtype=object)})
        assert [text.decode() for text in served["text"]] == generate(model, prompts, jit_compile=False)
    with ModelServer(serve_options()) as server, Client("127.0.0.1", server.port, protocol="grpc") as client:
        (status,) = client.status("lm")
    assert (status.state, status.error_code) == ("END", grpc.StatusCode.FAILED_PRECONDITION)
    assert status.error_message == (f"{version_dir} needs XLA (XLA-compiled calls: 1) and XLA compilation is off: "
                                    "start the server with --xla_cpu_compilation_enabled=true")

    # The same graph without the declaration in tfzoo.json fails validate's core ops check.
    metadata["serving_options"]["xla"] = False
    (version_dir / "assets.extra" / "tfzoo.json").write_text(json.dumps(metadata))
    assert main(["validate", str(version_dir)]) == 1
    assert "FAIL core ops only: needs XLA" in capsys.readouterr().out


def test_a_prompt_that_is_not_utf8_is_refused_in_one_line_naming_it(model, capsys):
    """`tfzoo generate RUN --prompt $'\\xff'` ended in a codec message that named neither the prompt nor UTF-8."""
    with pytest.raises(ValueError) as error:
        generate(model, ["fine", "\udcff"], max_new_tokens=2, jit_compile=False)  # argv's form of the byte 0xff
    assert str(error.value) == "prompt 1 (counting from 0) is not UTF-8 text: b'\\xff'; give prompts as UTF-8"
    # The signature itself (gRPC bytes, REST b64) refuses it too, in an assertion whose text is one line.
    serving_default = generation_functions(model, jit_compile=False)["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"assertion failed: \[prompt 2 \(counting from 0\) is not UTF-8 text; send prompts as "
                             r"UTF-8\]"):
        serving_default(prompt=tf.constant([b"ok", "中文".encode(), b"\xe4\xb8"]))
    assert serving_default(prompt=tf.constant(["中文".encode()]))["text"].shape == [1]
    assert serving_default(prompt=tf.constant([], tf.string))["text"].shape == [0]  # nothing to check
