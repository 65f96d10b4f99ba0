"""Text generation: prompts in, text out, the whole decoding loop in one TensorFlow graph (core ops; XLA optional).

Decoding is incremental: the prompts run once through the model to fill a key/value cache, then each step feeds
only the newest token, whose queries attend to the cached keys and values (TextGenerator.call_with_cache); the
prefix is never computed again. Prompts of different lengths share a batch: they are right-padded, and every
step writes one position for every prompt, the prompt's own token while the position is still inside it.

Context: the model sees at most `max_length` tokens: ⟨begin⟩, the prompt (then ⟨sep⟩ for a headline model) and
what it generates. A prompt keeps room for min(max_new_tokens, max_length // 2) new tokens; a longer prompt is
cut, a language model keeping its last bytes (those nearest the continuation; the string is read from its end,
and the continuation bytes of a character cut at the start are dropped) and a headline model its first (an
article's opening, as in training). Generation stops at ⟨end⟩, after max_new_tokens, or when the context is full.
Whatever a request asks, a call reads at most MAX_PROMPT_BYTES bytes of a prompt, makes at most MAX_NEW_TOKENS
tokens per prompt and takes at most MAX_PROMPTS prompts.

Token budget: a request may generate at most `max_tokens_per_request` tokens, counted as its number of prompts
times the most tokens one of them may generate (its max_new_tokens, up to MAX_NEW_TOKENS and to what the context
leaves after its prompt): the decoding loop runs every prompt of a batch until the last one is done. A request
over the budget fails with one line naming the budget and what it asks, before any decoding step. The budget is
a constant of the compiled graph (`generation_functions`), so an export carries the one it was exported with
(`tfzoo export --max-tokens-per-request`): the stock TF Serving runs the graph as it is and has no such option.
It lies in TOKENS_PER_REQUEST_RANGE: at least one prompt at MAX_NEW_TOKENS (so a single prompt always fits, and
so do the export's warm-up requests), at most MAX_PROMPTS of them (beyond that the hard caps hold alone).
The default, DEFAULT_MAX_TOKENS_PER_REQUEST, lets serving_default's largest request through (MAX_PROMPTS prompts
x DEFAULTS["max_new_tokens"]). With TF Serving's --enable_batching the graph sees the merged batch, so the
budget bounds a merged batch: keep it at least max_batch_size x the max_new_tokens clients use. The Python API
(`generate`) splits its prompts into calls that fit the budget instead of refusing them.

Choosing a token, per prompt. First the repetition controls, on the text so far (a language model: prompt and
generated text; a headline model: the headline alone, since a headline copies words from its article):
repetition_penalty (CTRL's: 1 is off) divides the logit of every token already there by the penalty if positive
and multiplies it if negative; no_repeat_ngram_size n (0 is off) gives -inf to every token that would complete an
n-token sequence already there, so no n-gram repeats. Tokens are bytes, so n counts bytes. Then temperature 0 is
greedy (the most likely token); otherwise the logits are divided by the temperature, cut to the top_k most likely
tokens (top_k 0: no cut) and to the smallest set of them whose probability reaches top_p (top_p 1: no cut), and
sampled with the prompt's seed (a negative seed: a random one). The same prompt, controls and seed give the same
text, whatever else is in the batch, so TF Serving's request batching does not change answers. A control out of
its range (RANGES) fails the request with one line naming it, as do more than MAX_PROMPTS prompts and a control
with more or fewer values than prompts, and a request over the token budget.

The returned text is the generated continuation only, valid UTF-8 (see tokenizer.decode).

XLA: with jit_compile (`generate`'s default, and `generation_functions(..., jit_compile=True)`, which
`tfzoo export --xla` exports), the token loop (`fill_tokens`: tokens [N, max_length] int32, prompt lengths and
controls -> tokens) runs as a tf.function compiled with XLA inside the graph; the string ops (tokenizer, prompt
cutting), the checks (Assert) and the random draws (one uniform per prompt and position) run outside it, which XLA
could not compile or would draw differently. Inside, every shape is fixed by the batch size: the cache is filled
from the whole padded [N, max_length] array (`decode`'s static_shapes). XLA compiles once per batch size. The
tokens are the XLA-free graph's: greedy text and seeded samples alike, up to float rounding at a boundary of the
cumulative probabilities. The XLA-free graph (the default export) runs on any TensorFlow Serving; the XLA one only
where XLA compilation is on (TF Serving's --xla_cpu_compilation_enabled).

Signatures: "serving_default" takes the prompts alone (greedy, with the DEFAULTS repetition controls); "generate"
adds the controls, one value per prompt, all required. Not optional scalars, because of what the stock TF Serving
does: it fills a missing input from the SignatureDef's `defaults` over gRPC only (its REST JSON parser demands every
input), and with --enable_batching (serving/docker-compose.yml) it refuses inputs without a batch dimension and
merges requests along it.
"""
from __future__ import annotations

import numbers
import weakref
from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from tfzoo.text import tokenizer
from tfzoo.text.limits import (
    DEFAULT_MAX_TOKENS_PER_REQUEST,
    DEFAULTS,
    MAX_NEW_TOKENS,
    MAX_PROMPT_BYTES,
    MAX_PROMPTS,
    TOKENS_PER_REQUEST_RANGE,
)
from tfzoo.text.tokenizer import BEGIN, END, PAD, SEPARATOR, VOCAB_SIZE

PROMPT, TEXT = "prompt", "text"
ASSERTION = "assertion failed: ["  # how a failed check's message starts, in process and in TF Serving's answer
GENERATE_SIGNATURE = "generate"  # prompt and per-prompt controls; serving_default is prompt alone, greedy
CONTROLS = {"max_new_tokens": tf.int32, "temperature": tf.float32, "top_k": tf.int32, "top_p": tf.float32,
            "seed": tf.int64, "repetition_penalty": tf.float32, "no_repeat_ngram_size": tf.int32}
OFF = {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0}  # the repetition controls' values that change nothing
# Each control's valid values: (lowest, lowest excluded, highest or None, in words). NaN is outside every range.
RANGES = {"max_new_tokens": (0, False, None, f"a whole number >= 0 (above {MAX_NEW_TOKENS}: {MAX_NEW_TOKENS})"),
          "temperature": (0.0, False, None, "a number >= 0 (0: greedy)"),
          "top_k": (0, False, None, "a whole number >= 0 (0: no cut)"),
          "top_p": (0.0, False, 1.0, "a number from 0 to 1 (1: no cut)"),
          "repetition_penalty": (0.0, True, None, "a number above 0 (1: off)"),
          "no_repeat_ngram_size": (0, False, None, "a whole number >= 0 (0: off)")}

# Compiled functions per model, built on first use. Weak keys (and a weak reference inside the functions):
# a model that is no longer used elsewhere is freed with its functions.
_COMPILED: weakref.WeakKeyDictionary[keras.Model, dict[tuple[bool, int, bool], dict[str, Any]]] = (
    weakref.WeakKeyDictionary())


def generation_functions(
    model: keras.Model, *, use_cache: bool = True, max_tokens_per_request: int = DEFAULT_MAX_TOKENS_PER_REQUEST,
    jit_compile: bool = False,
) -> dict[str, Any]:
    """The model's generation signatures as tf.functions, built once per model, cache setting, token budget and
    jit_compile setting.

    "serving_default": `prompt` string [N] -> `text` string [N], greedy, DEFAULTS["max_new_tokens"] tokens.
    "generate": `prompt` and one value per prompt of each control in CONTROLS, all [N] -> `text` [N].
    Each is traced once: its shapes are dynamic, so new prompt lengths and batch sizes reuse the same graph.
    `use_cache=False` recomputes the whole prefix at every step instead (for comparison and tests).
    `max_tokens_per_request` is the graph's token budget (see the module docstring); ValueError outside
    TOKENS_PER_REQUEST_RANGE. `jit_compile=True` runs the token loop as an XLA-compiled function inside the graph
    (see the module docstring): faster, but the stock TF Serving runs it only with --xla_cpu_compilation_enabled.
    """
    key = (use_cache, check_tokens_per_request(max_tokens_per_request), bool(jit_compile))
    compiled = _COMPILED.setdefault(model, {})
    if key not in compiled:
        compiled[key] = _compile(weakref.ref(model), *key)
    return compiled[key]


def check_tokens_per_request(value: Any) -> int:
    """`value` as a token budget; ValueError, one line, unless a whole number in TOKENS_PER_REQUEST_RANGE."""
    low, high = TOKENS_PER_REQUEST_RANGE
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        raise ValueError(f"max_tokens_per_request must be a whole number from {low} (one prompt at the most new "
                         f"tokens) to {high} ({MAX_PROMPTS} of them), got {value!r}")
    return int(value)


def generate(
    model: keras.Model,
    prompts: str | Sequence[str],
    *,
    max_new_tokens: int = DEFAULTS["max_new_tokens"],
    temperature: float = DEFAULTS["temperature"],
    top_k: int = DEFAULTS["top_k"],
    top_p: float = DEFAULTS["top_p"],
    seed: int | None = None,
    repetition_penalty: float = DEFAULTS["repetition_penalty"],
    no_repeat_ngram_size: int = DEFAULTS["no_repeat_ngram_size"],
    use_cache: bool = True,
    max_tokens_per_request: int = DEFAULT_MAX_TOKENS_PER_REQUEST,
    jit_compile: bool = True,
) -> list[str]:
    """Continue each prompt with a trained text generator; the same controls apply to every prompt.

    Greedy by default (temperature 0), with the default repetition controls (OFF turns them off). `seed` makes
    sampling reproducible; None draws a random one. Runs the compiled "generate" signature with the token budget
    `max_tokens_per_request`, in as many calls as that budget needs: by default its token loop compiled with XLA
    (faster; XLA compiles it once per batch size), `jit_compile=False` the XLA-free graph the default export
    serves (the same greedy text). Out-of-range controls or budget raise ValueError.
    """
    function = generation_functions(model, use_cache=use_cache, max_tokens_per_request=max_tokens_per_request,
                                    jit_compile=jit_compile)[GENERATE_SIGNATURE]
    return call_generate_signature(function, prompts, max_new_tokens=max_new_tokens, temperature=temperature,
                                   top_k=top_k, top_p=top_p, seed=seed, repetition_penalty=repetition_penalty,
                                   no_repeat_ngram_size=no_repeat_ngram_size,
                                   max_tokens_per_request=max_tokens_per_request)


def call_generate_signature(
    function: Any,
    prompts: str | Sequence[str],
    *,
    max_new_tokens: int = DEFAULTS["max_new_tokens"],
    temperature: float = DEFAULTS["temperature"],
    top_k: int = DEFAULTS["top_k"],
    top_p: float = DEFAULTS["top_p"],
    seed: int | None = None,
    repetition_penalty: float = DEFAULTS["repetition_penalty"],
    no_repeat_ngram_size: int = DEFAULTS["no_repeat_ngram_size"],
    max_tokens_per_request: int | None = None,
) -> list[str]:
    """Run a "generate" signature (compiled here, or of a loaded export) with one set of controls for every prompt.

    Prompts go MAX_PROMPTS to a call (the signature's cap), or as many as fit `max_tokens_per_request`, the
    signature's token budget when the caller knows it: a prompt's text does not depend on its batch.
    A control out of its range raises ValueError before anything runs; so does a call the signature refuses
    (over its token budget), with the signature's one line."""
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    controls = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_k": top_k, "top_p": top_p,
                "seed": -1 if seed is None else seed, "repetition_penalty": repetition_penalty,
                "no_repeat_ngram_size": no_repeat_ngram_size}
    for name, value in controls.items():
        dtype = CONTROLS[name]
        if name in RANGES and not _in_range(name, value):
            raise ValueError(f"{name} must be {RANGES[name][3]}, got {value!r}")
        if dtype.is_integer and not dtype.min <= value <= dtype.max:  # it would wrap around silently
            raise ValueError(f"{name}={value} is outside {dtype.name}'s range {dtype.min}..{dtype.max}")
    per_call = MAX_PROMPTS
    if max_tokens_per_request is not None:  # each prompt counts at most its max_new_tokens (the graph's count)
        per_call = min(per_call, max(1, max_tokens_per_request // max(1, min(max_new_tokens, MAX_NEW_TOKENS))))
    texts = []
    for start in range(0, len(prompts), per_call):
        batch = prompts[start:start + per_call]
        inputs = {name: tf.fill([len(batch)], tf.constant(value, CONTROLS[name])) for name, value in controls.items()}
        try:
            outputs = function(prompt=tf.constant([prompt_bytes(start + index, text)
                                                   for index, text in enumerate(batch)], tf.string), **inputs)
        except tf.errors.InvalidArgumentError as error:
            raise ValueError(refusal(error)) from None
        texts += [text.decode("utf-8") for text in outputs[TEXT].numpy()]
    return texts


def prompt_bytes(index: int, text: str) -> bytes:
    """A prompt as UTF-8; ValueError, one line, naming the prompt for text that has no UTF-8 form (bytes that were
    not UTF-8, e.g. a command-line argument, come to Python as lone surrogates)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")  # the bytes as they were given
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "backslashreplace")
    raise ValueError(f"prompt {index} (counting from 0) is not UTF-8 text: {raw!r}; give prompts as UTF-8")


def refusal(error: tf.errors.InvalidArgumentError) -> str:
    """The one line of a request the graph refused (a check's message), or the error's first line."""
    lines = str(error.message).splitlines()
    found = [line.strip() for line in lines if line.strip().startswith(ASSERTION)]
    return found[0][len(ASSERTION):].removesuffix("]") if found else next(filter(None, lines), "")


def _in_range(name: str, value: Any) -> Any:
    """Whether a control's value (a Python number or a tensor) is in RANGES[name]; NaN never is."""
    low, low_open, high, _ = RANGES[name]
    above = low < value if low_open else low <= value
    return above if high is None else above & (value <= high)


def _checks(prompt: tf.Tensor, controls: dict[str, tf.Tensor]) -> list[tf.Operation]:
    """Graph asserts on a request, each failing with one line that names what is wrong."""
    def check(condition: tf.Tensor, message: str) -> tf.Operation:
        return tf.debugging.Assert(condition, [message], name="check")

    checks = [check(tf.size(prompt) <= MAX_PROMPTS, f"at most {MAX_PROMPTS} prompts per request")]
    # Bytes that are not UTF-8 (gRPC bytes, REST b64) would be read as byte tokens the model never trained on.
    utf8 = tf.equal(tf.strings.unicode_transcode(prompt, "UTF-8", "UTF-8", errors="ignore"), prompt)
    first_bad = tf.strings.as_string(  # a 0 appended: an empty batch has no index to find
        tf.argmin(tf.concat([tf.cast(utf8, tf.int32), [0]], 0), output_type=tf.int32))
    checks.append(check(tf.reduce_all(utf8), tf.strings.join(
        ["prompt ", first_bad, " (counting from 0) is not UTF-8 text; send prompts as UTF-8"])))
    checks += [check(tf.reduce_all(tf.equal(tf.shape(value), tf.shape(prompt))),
                     f"{name} needs one value per prompt") for name, value in controls.items()]
    with tf.control_dependencies(checks):  # a range is checked on values of the right shape
        checks += [check(tf.reduce_all(_in_range(name, controls[name])), f"{name} must be {RANGES[name][3]}")
                   for name in RANGES]
    return checks


def _budget_check(max_new_tokens: tf.Tensor, lengths: tf.Tensor, max_length: int, budget: int) -> tf.Operation:
    """Graph assert: prompts x the most tokens one may generate (max_new_tokens within the context) <= budget."""
    may_generate = tf.minimum(max_new_tokens, max_length - lengths)
    prompts = tf.size(lengths, out_type=tf.int64)
    most = tf.cast(tf.reduce_max(tf.concat([[0], may_generate], 0)), tf.int64)  # 0 for no prompts
    asked = prompts * most
    message = tf.strings.join([  # no quotes: the assertion's text would escape them
        f"max_tokens_per_request {budget} exceeded: ", tf.strings.as_string(prompts), " prompts x ",
        tf.strings.as_string(most), " new tokens = ", tf.strings.as_string(asked), " (prompts x the most new tokens "
        "one may make: its max_new_tokens, within the context); send fewer prompts or a smaller max_new_tokens"])
    return tf.debugging.Assert(asked <= budget, [message], name="check")


def _compile(model_ref: weakref.ref, use_cache: bool, budget: int, jit_compile: bool) -> dict[str, Any]:
    prompt_spec = tf.TensorSpec([None], tf.string, name=PROMPT)
    control_specs = [tf.TensorSpec([None], dtype, name=name) for name, dtype in CONTROLS.items()]

    @tf.function(input_signature=[prompt_spec, *control_specs], autograph=False)
    def generate_with_controls(prompt, max_new_tokens, temperature, top_k, top_p, seed, repetition_penalty,
                               no_repeat_ngram_size):
        return {TEXT: generate_text(model_ref(), prompt, max_new_tokens, temperature, top_k, top_p, seed,
                                    repetition_penalty, no_repeat_ngram_size, use_cache=use_cache,
                                    max_tokens_per_request=budget, jit_compile=jit_compile)}

    @tf.function(input_signature=[prompt_spec], autograph=False)
    def serving_default(prompt):
        batch = tf.shape(prompt)[:1]
        controls = {name: tf.fill(batch, tf.constant(DEFAULTS[name], dtype)) for name, dtype in CONTROLS.items()}
        return {TEXT: generate_text(model_ref(), prompt, **controls, use_cache=use_cache,
                                    max_tokens_per_request=budget, jit_compile=jit_compile)}

    return {"serving_default": serving_default, GENERATE_SIGNATURE: generate_with_controls}


def generate_text(
    model: keras.Model, prompt: tf.Tensor, max_new_tokens: tf.Tensor, temperature: tf.Tensor, top_k: tf.Tensor,
    top_p: tf.Tensor, seed: tf.Tensor, repetition_penalty: tf.Tensor, no_repeat_ngram_size: tf.Tensor, *,
    use_cache: bool = True, max_tokens_per_request: int = DEFAULT_MAX_TOKENS_PER_REQUEST, jit_compile: bool = False,
) -> tf.Tensor:
    """Graph code: prompts [N] and per-prompt controls [N] -> generated text [N] (see the module docstring).

    The checks, the strings and the random draws run here; the token loop (`fill_tokens`) runs in a function
    compiled with XLA when `jit_compile` (XLA has no string ops and no Assert), inline otherwise.
    """
    controls = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_k": top_k, "top_p": top_p,
                "seed": seed, "repetition_penalty": repetition_penalty, "no_repeat_ngram_size": no_repeat_ngram_size}
    with tf.control_dependencies(_checks(prompt, controls)):
        max_new_tokens = tf.clip_by_value(max_new_tokens, 0, MAX_NEW_TOKENS)
    tokens, lengths = prompt_tokens(prompt, max_new_tokens, max_length=model.max_length, headline=model.headline)
    with tf.control_dependencies([_budget_check(max_new_tokens, lengths, model.max_length, max_tokens_per_request)]):
        tokens = tf.identity(tokens)  # decoding reads the tokens: no step runs before the budget is checked
    # A negative seed asks for a random one. One uniform per prompt and position, drawn from the prompt's own
    # seed only, keeps a prompt's sample independent of the rest of the batch. Drawn outside XLA, whose
    # stateless random numbers need not equal TensorFlow's: both graphs sample with the same uniforms.
    seed = tf.where(seed < 0, tf.random.uniform(tf.shape(seed), maxval=tf.int64.max, dtype=tf.int64), seed)
    uniforms = tf.map_fn(lambda s: tf.random.stateless_uniform([model.max_length], seed=tf.stack([s, 0])), seed,
                         fn_output_signature=tf.float32)

    def token_loop(*loop_inputs: tf.Tensor) -> tf.Tensor:
        return fill_tokens(model, *loop_inputs, use_cache=use_cache, static_shapes=jit_compile)

    if jit_compile:
        token_loop = tf.function(token_loop, jit_compile=True, autograph=False)
    tokens = token_loop(tokens, lengths, max_new_tokens, temperature, top_k, top_p, uniforms, repetition_penalty,
                        no_repeat_ngram_size)
    generated = tf.range(model.max_length)[None, :] >= lengths[:, None]
    return tokenizer.decode(tf.where(generated, tokens, PAD))


def fill_tokens(
    model: keras.Model, tokens: tf.Tensor, lengths: tf.Tensor, max_new_tokens: tf.Tensor, temperature: tf.Tensor,
    top_k: tf.Tensor, top_p: tf.Tensor, uniforms: tf.Tensor, repetition_penalty: tf.Tensor,
    no_repeat_ngram_size: tf.Tensor, *, use_cache: bool = True, static_shapes: bool = False,
) -> tf.Tensor:
    """Graph code, no strings: prompt tokens [N, max_length] and their `lengths` [N], the controls [N] and one
    uniform per prompt and position [N, max_length] -> the tokens with each prompt's generated ones after it.
    `static_shapes`: every tensor's shape fixed by the batch size, as XLA needs (see `decode`)."""
    # The text the repetition controls look at starts at ⟨begin⟩, or after ⟨sep⟩ for a headline.
    first = lengths if model.headline else tf.zeros_like(lengths)

    def choose(logits: tf.Tensor, tokens: tf.Tensor, position: tf.Tensor) -> tf.Tensor:
        logits = penalize_repetition(logits, tokens, first, position, repetition_penalty, no_repeat_ngram_size)
        return next_tokens(logits, temperature, top_k, top_p, tf.gather(uniforms, position, axis=1))

    return decode(model, tokens, lengths, max_new_tokens, choose, use_cache=use_cache, static_shapes=static_shapes)


def prompt_tokens(
    prompt: tf.Tensor, max_new_tokens: tf.Tensor, *, max_length: int, headline: bool
) -> tuple[tf.Tensor, tf.Tensor]:
    """Prompts [N] -> (tokens [N, max_length] int32, right-padded with PAD; prompt lengths [N] in tokens).

    Each prompt becomes ⟨begin⟩ bytes (⟨sep⟩ for a headline model), its bytes cut to leave room for
    min(max_new_tokens, max_length // 2) new tokens: a language model keeps the last bytes (read from the
    string's end, less a cut character's continuation bytes), a headline model the first.
    """
    specials = 2 if headline else 1
    room = tf.minimum(max_new_tokens, max_length // 2)
    budget = tf.minimum(max_length - specials - room, MAX_PROMPT_BYTES)  # >= 1 byte for any max_length >= 6
    size = tf.strings.length(prompt)
    start = tf.zeros_like(size) if headline else tf.maximum(size - budget, 0)
    data = tokenizer.encode(tf.strings.substr(prompt, start, budget))
    if not headline:  # 0b10xxxxxx bytes continue a character; those before the first other byte lost theirs
        continuation = tf.bitwise.bitwise_and(data, 0xC0) == 0x80
        leading = tf.cast(tf.math.cumsum(tf.cast(~continuation, tf.int32), axis=1) == 0, tf.int32)
        cut = tf.where(start > 0, tf.reduce_sum(leading, axis=1), 0)
        data = tf.ragged.boolean_mask(data, tf.ragged.range(data.row_lengths()) >= tf.cast(cut, tf.int64)[:, None])
    batch = tf.shape(prompt)[0]
    parts = [tf.fill([batch, 1], BEGIN), data] + ([tf.fill([batch, 1], SEPARATOR)] if headline else [])
    tokens = tf.concat(parts, axis=1)
    return tokens.to_tensor(default_value=PAD, shape=[None, max_length]), tf.cast(tokens.row_lengths(), tf.int32)


def penalize_repetition(logits: tf.Tensor, tokens: tf.Tensor, first: tf.Tensor, position: tf.Tensor,
                        repetition_penalty: tf.Tensor, no_repeat_ngram_size: tf.Tensor) -> tf.Tensor:
    """Logits [N, V] for the token at `position` after the repetition controls (see the module docstring).

    The text so far of row r is tokens[r, first[r]:position]; each control is [N]. Rows with the controls off
    keep their logits exactly; a batch with both off for every row skips the work.
    """
    index = tf.range(tf.shape(tokens)[1])[None, :]
    written = (index >= first[:, None]) & (index < position)

    def present(mask: tf.Tensor) -> tf.Tensor:  # [N, V]: whether each token is at a position where mask holds
        # The op itself with a constant size: tf.math.bincount computes the size from the values, which XLA
        # cannot compile. Values >= size (the masked-out positions) are not counted.
        counts = tf.raw_ops.DenseBincount(input=tf.where(mask, tokens, VOCAB_SIZE), size=VOCAB_SIZE,
                                          weights=tf.zeros([0], tf.int32), binary_output=True)
        return counts > 0

    def penalize(logits: tf.Tensor) -> tf.Tensor:
        penalty = repetition_penalty[:, None]
        return tf.where(present(written), tf.where(logits > 0, logits / penalty, logits * penalty), logits)

    def ban_ngrams(logits: tf.Tensor) -> tf.Tensor:
        # Token tokens[j] completes a repeated n-gram when the n - 1 tokens before j equal the last n - 1 written
        # (all inside the text): compared one offset k at a time, while any candidate j still matches.
        n = no_repeat_ngram_size[:, None]
        candidates = written & (n > 0) & (index >= first[:, None] + n - 1)

        def compare(k, matches):
            last = tf.gather(tokens, tf.maximum(position - k, 0), axis=1)[:, None]
            return k + 1, matches & ((k >= n) | (tf.roll(tokens, k, axis=1) == last))

        def unfinished(k, matches):
            return (k < tf.reduce_max(n)) & tf.reduce_any(matches)

        _, matches = tf.while_loop(unfinished, compare, (tf.constant(1), candidates))
        return tf.where(present(matches), float("-inf"), logits)

    logits = tf.cond(tf.reduce_any(repetition_penalty != 1), lambda: penalize(logits), lambda: logits)
    return tf.cond(tf.reduce_any(no_repeat_ngram_size > 0), lambda: ban_ngrams(logits), lambda: logits)


def next_tokens(logits: tf.Tensor, temperature: tf.Tensor, top_k: tf.Tensor, top_p: tf.Tensor,
                uniforms: tf.Tensor) -> tf.Tensor:
    """The next token of each row [N] from its logits [N, V]: greedy, or sampled with the row's uniform in [0, 1)."""
    greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)

    def sample() -> tf.Tensor:
        # Sorted by probability, the tokens that survive top-k and top-p are a prefix; the best one always does.
        scaled = logits / tf.maximum(temperature, 1e-6)[:, None]
        sorted_logits, order = tf.math.top_k(scaled, k=VOCAB_SIZE)
        probabilities = tf.nn.softmax(sorted_logits)
        rank = tf.range(VOCAB_SIZE)[None, :]
        better = tf.cumsum(probabilities, axis=-1, exclusive=True)  # probability of the tokens ranked above
        keep = (rank == 0) | ((better < top_p[:, None]) & ((top_k[:, None] <= 0) | (rank < top_k[:, None])))
        kept = tf.where(keep, probabilities, 0.0)
        cdf = tf.cumsum(kept, axis=-1) / tf.reduce_sum(kept, axis=-1, keepdims=True)
        choice = tf.reduce_sum(tf.cast(cdf < uniforms[:, None], tf.int32), axis=-1)  # inverse-CDF sampling
        choice = tf.minimum(choice, tf.reduce_sum(tf.cast(keep, tf.int32), axis=-1) - 1)  # rounding at the top
        return tf.where(temperature > 0, tf.gather(order, choice, batch_dims=1), greedy)

    return tf.cond(tf.reduce_any(temperature > 0), sample, lambda: greedy)


def decode(
    model: keras.Model, tokens: tf.Tensor, lengths: tf.Tensor, max_new_tokens: tf.Tensor, choose: Any, *,
    use_cache: bool = True, static_shapes: bool = False,
) -> tf.Tensor:
    """Graph code: fill `tokens` [N, max_length] after each row's prompt (`lengths` [N]) with generated tokens.

    `choose(logits [N, V], tokens [N, max_length], position)` picks the token for `position` (tokens before it
    are the row's prompt and generated text). Rows stop at ⟨end⟩ or after their
    max_new_tokens (later positions stay PAD); the loop stops when every row has, or the context is full.
    `static_shapes` (for XLA, which needs shapes that do not depend on values): the prompts fill the cache by
    running the whole padded [N, max_length] array once instead of the positions every prompt has, and the
    uncached model runs the whole array at each step instead of the prefix. The results are the same: attention
    is causal, so the positions before one are exact, and each step overwrites its position in the cache.
    """
    size = model.max_length
    start = tf.minimum(tf.reduce_min(lengths), size)  # positions before it are prompt tokens in every row

    def prefix(tokens: tf.Tensor, end: tf.Tensor) -> tf.Tensor:  # what the model reads for positions before `end`
        return tokens if static_shapes else tokens[:, :end]

    if use_cache:
        cache = model.empty_cache(tf.shape(tokens)[0])
        logits, cache = model.call_with_cache(prefix(tokens, start), cache, 0)
    else:
        cache, logits = (), model(prefix(tokens, start), training=False)

    def next_logits(tokens: tf.Tensor, token: tf.Tensor, position: tf.Tensor, cache: Any) -> tuple[tf.Tensor, Any]:
        if use_cache:
            logits, cache = model.call_with_cache(token[:, None], cache, position)
            return logits[:, -1], cache
        logits = model(prefix(tokens, position + 1), training=False)  # the whole prefix again
        return tf.gather(logits, position, axis=1), cache

    def step(position, tokens, done, logits, cache):
        in_prompt = position < lengths
        token = tf.where(in_prompt, tf.gather(tokens, position, axis=1),
                         tf.where(done, PAD, choose(logits, tokens, position)))
        tokens = tf.where(tf.range(size)[None, :] == position, token[:, None], tokens)
        made = position - lengths + 1  # tokens generated so far, this one included
        done = done | (~in_prompt & ((token == END) | (made >= max_new_tokens)))
        logits, cache = next_logits(tokens, token, position, cache)
        return position + 1, tokens, done, logits, cache

    def unfinished(position, tokens, done, logits, cache):
        return (position < size) & ~tf.reduce_all(done)

    done = max_new_tokens <= 0
    _, tokens, *_ = tf.while_loop(unfinished, step, (start, tokens, done, tf.gather(logits, start - 1, axis=1), cache))
    return tokens
