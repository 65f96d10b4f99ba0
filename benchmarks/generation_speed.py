"""Text generation speed: XLA or not, the key/value cache against recomputing the prefix, KerasHub's GPT-2
generate beside tfzoo in the same process, and the export in-process vs served.

The model is text_generator's default architecture (2 blocks, d_model 128, 4 heads, feed-forward 512) with a
512-token context, untrained (speed does not depend on the weights), its ⟨end⟩ logit pushed far down so that
every run makes exactly the tokens asked for. Greedy, prompts of 64 bytes, 256 new tokens, batch 1 and 8:
- tfzoo XLA: `tfzoo.text.generate`'s default, the token loop compiled with XLA (jit_compile=True);
- tfzoo cached: the XLA-free graph the default export serves (tf.while_loop): the prompt runs once, then one
  token per step against the key/value cache;
- tfzoo recompute: the same XLA-free loop running the whole prefix through the model at every step, which is
  what the classic Keras miniature-GPT example does (it also pads each step to the full context and loops in
  Python);
- KerasHub and KerasHub XLA (when keras-hub is installed, `pip install -e .[bench]`): KerasHub's GPT2CausalLM at
  the same dimensions (GPT2Backbone: 2 layers, 4 heads, hidden 128, intermediate 512, 512 positions, tfzoo's
  byte vocabulary), untrained, greedy sampler, generate on token ids (the 64 prompt bytes padded to 320 tokens,
  no stop token, so it makes the same 256 tokens), compiled as it is by default on a CPU (no XLA) and with
  jit_compile=True;
- first call: the first call's wall time at that batch size, tracing and compilation included where it happens
  (later calls reuse them; XLA compiles once per batch size, the XLA-free graphs are traced once for all).
Each figure is the median (and the least, "best") of --repeats calls after the first, the calls of the rows
compared taken in turns, so that load on a shared machine slows them alike. Then the exported "generate"
signature (the default, XLA-free export), same requests: in-process (tf.saved_model.load) vs REST and gRPC through
`tfzoo serve` in a child process on 127.0.0.1 (plain TF Serving API calls, as in serving_latency.py).

    python benchmarks/generation_speed.py --repeats 5
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import keras
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

import tfzoo
from tfzoo.export.saved_model import write_saved_model
from tfzoo.serving.config import write_serving_configs
from tfzoo.serving.server import server_process
from tfzoo.text.generation import CONTROLS, GENERATE_SIGNATURE, call_generate_signature, generation_functions
from tfzoo.text.tokenizer import END, VOCAB_SIZE, text_tokens

PROMPT_BYTES, NEW_TOKENS, CONTEXT = 64, 256, 512
BATCHES = (1, 8)
PROMPT = ("The quick brown fox jumps over the lazy dog. " * 2)[:PROMPT_BYTES]


def device_name() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
    return f"CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()})"


def seconds(call: Callable[[], object]) -> float:
    """The wall time of one call."""
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def timed(call: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(first call's seconds, median seconds of `repeats` further calls)."""
    first = seconds(call)
    return first, statistics.median(seconds(call) for _ in range(repeats))


def interleaved(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, tuple[float, float, float]]:
    """{name: (first call's seconds, median and least seconds of `repeats` further calls)}, the further calls taken
    in turns (one of each, `repeats` times), so that a burst of load on a shared machine slows them all alike."""
    firsts = {name: seconds(call) for name, call in calls.items()}
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            times[name].append(seconds(call))
    return {name: (firsts[name], statistics.median(times[name]), min(times[name])) for name in calls}


def benchmark_generator(context: int) -> keras.Model:
    """text_generator's default architecture with a `context`-token window, untrained (speed does not depend on
    the weights), its ⟨end⟩ logit pushed far down so that every call makes exactly the tokens asked for."""
    keras.utils.set_random_seed(0)
    model = tfzoo.create_model("text_generator", max_length=context)
    model.head.bias.assign(tf.tensor_scatter_nd_update(model.head.bias, [[END]], [-1e4]))  # never ends early
    return model


def greedy_controls(new_tokens: int) -> dict[str, float | int]:
    """Generation controls for plain greedy decoding of `new_tokens` tokens (no repetition controls, as the
    other generators compared here have none)."""
    return {"max_new_tokens": new_tokens, "temperature": 0.0, "top_k": 0, "top_p": 1.0, "seed": 0,
            "repetition_penalty": 1.0, "no_repeat_ngram_size": 0}


def generation_call(model: keras.Model, batch: int, controls: dict[str, float | int], use_cache: bool,
                    jit_compile: bool = False) -> Callable[[], object]:
    """A call of the compiled generation loop (key/value cache or recomputing the prefix, XLA or not) on `batch`
    prompts."""
    function = generation_functions(model, use_cache=use_cache, jit_compile=jit_compile)[GENERATE_SIGNATURE]
    return lambda: call_generate_signature(function, [PROMPT] * batch, **controls)


def generation_seconds(model: keras.Model, batch: int, controls: dict[str, float | int], use_cache: bool,
                       repeats: int) -> tuple[float, float]:
    """`timed` on `generation_call` (XLA-free)."""
    return timed(generation_call(model, batch, controls, use_cache), repeats)


def keras_hub_causal_lm(context: int) -> keras.Model | None:
    """KerasHub's GPT2CausalLM at text_generator's default dimensions, untrained, greedy; None without keras-hub."""
    try:
        import keras_hub
    except ImportError:
        return None
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.GPT2Backbone(vocabulary_size=VOCAB_SIZE, num_layers=2, num_heads=4, hidden_dim=128,
                                             intermediate_dim=512, max_sequence_length=context)
    return keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)


def keras_hub_call(causal_lm: keras.Model, batch: int) -> Callable[[], object]:
    """A call of KerasHub's generate (compiled as `causal_lm.jit_compile` says) on `batch` prompts of PROMPT's
    bytes, NEW_TOKENS greedy tokens each; RuntimeError if it made fewer or was not compiled as asked."""
    jit_compile = causal_lm.jit_compile
    token_ids = np.zeros((batch, PROMPT_BYTES + NEW_TOKENS), np.int32)
    token_ids[:, :PROMPT_BYTES] = text_tokens(PROMPT)
    padding_mask = np.arange(PROMPT_BYTES + NEW_TOKENS)[None, :].repeat(batch, 0) < PROMPT_BYTES
    inputs = {"token_ids": token_ids, "padding_mask": padding_mask}

    def call() -> None:
        # No stop token: every row runs to the padded length, NEW_TOKENS new tokens.
        output = causal_lm.generate(inputs, stop_token_ids=None)
        if not np.all(np.sum(output["padding_mask"], axis=1) == PROMPT_BYTES + NEW_TOKENS):
            raise RuntimeError("KerasHub generated fewer tokens than asked")
        compiled = getattr(causal_lm.generate_function, "_jit_compile", None)  # the tf.function's own setting
        if bool(compiled) != jit_compile:
            raise RuntimeError(f"KerasHub's generate function has jit_compile={compiled}, not {jit_compile}")

    return call


def keras_hub_causal_lms(context: int) -> dict[str, keras.Model]:
    """{"KerasHub": compiled as by default (no XLA on a CPU), "KerasHub XLA": jit_compile=True}, two models (each
    keeps its own compiled generate function); {} without keras-hub."""
    models = {}
    for name, jit_compile in (("KerasHub", False), ("KerasHub XLA", True)):
        causal_lm = keras_hub_causal_lm(context)
        if causal_lm is None:
            return {}
        causal_lm.compile(sampler="greedy")
        causal_lm.jit_compile = jit_compile  # what CausalLM.make_generate_function passes to tf.function
        models[name] = causal_lm
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per figure, after the first")
    args = parser.parse_args()

    model = benchmark_generator(CONTEXT)
    controls = greedy_controls(NEW_TOKENS)
    causal_lms = keras_hub_causal_lms(CONTEXT)

    print(f"device: {device_name()}; TensorFlow {tf.__version__}")
    print(f"text_generator (default architecture, {CONTEXT}-token context), prompt {PROMPT_BYTES} bytes, "
          f"{NEW_TOKENS} new tokens, greedy; median of {args.repeats} calls after the first, taken in turns")
    if not causal_lms:
        print("keras-hub is not installed (pip install -e .[bench]): no KerasHub rows")
    print(f"{'batch':>5} {'generator':16} {'call s':>8} {'tokens/s':>9} {'best s':>8} {'first call s':>13}")
    for batch in BATCHES:
        calls = {"tfzoo XLA": generation_call(model, batch, controls, True, True),
                 "tfzoo cached": generation_call(model, batch, controls, True),
                 "tfzoo recompute": generation_call(model, batch, controls, False),
                 **{name: keras_hub_call(causal_lm, batch) for name, causal_lm in causal_lms.items()}}
        median, best = {}, {}
        for name, (first, median[name], best[name]) in interleaved(calls, args.repeats).items():
            print(f"{batch:5d} {name:16} {median[name]:8.3f} {batch * NEW_TOKENS / median[name]:9.0f} "
                  f"{best[name]:8.3f} {first:13.2f}")
        ratios = [("tfzoo XLA / tfzoo cached", "tfzoo cached", "tfzoo XLA"),
                  ("tfzoo cached / tfzoo recompute (goal >= 5x)", "tfzoo recompute", "tfzoo cached")]
        if causal_lms:
            ratios += [("tfzoo XLA / KerasHub XLA (goal >= 1x)", "KerasHub XLA", "tfzoo XLA"),
                       ("tfzoo cached / KerasHub", "KerasHub", "tfzoo cached")]
        print("      speed ratios of medians (of best calls): " + "; ".join(
            f"{text} {median[slower] / median[faster]:.2f}x ({best[slower] / best[faster]:.2f}x)"
            for text, slower, faster in ratios))

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        functions = tfzoo.get_spec("text_generator").task.serving_functions(model)
        write_saved_model(model, functions, folder / "models" / "text_generator" / "1")
        write_serving_configs(folder / "models", folder / "config")
        exported = tf.saved_model.load(str(folder / "models" / "text_generator" / "1"), tags=["serve"])
        signature = exported.signatures[GENERATE_SIGNATURE]

        def request(batch: int) -> dict[str, np.ndarray]:
            return {"prompt": np.array([PROMPT.encode()] * batch, dtype=object),
                    **{name: np.full(batch, value, CONTROLS[name].as_numpy_dtype) for name, value in controls.items()}}

        with server_process(f"--model_config_file={folder / 'config' / 'models.config'}") as (rest_port, grpc_port):
            url = f"http://127.0.0.1:{rest_port}/v1/models/text_generator:predict"
            channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

            def in_process(inputs: dict[str, np.ndarray]) -> object:
                return signature(**{name: tf.constant(value) for name, value in inputs.items()})

            def rest(inputs: dict[str, np.ndarray]) -> object:
                columns = {name: [v.decode() if isinstance(v, bytes) else v.item() for v in value]
                           for name, value in inputs.items()}
                body = json.dumps({"signature_name": GENERATE_SIGNATURE, "inputs": columns}).encode()
                call = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(call, timeout=300) as response:
                    return json.load(response)

            def grpc_call(inputs: dict[str, np.ndarray]) -> object:
                call = predict_pb2.PredictRequest()
                call.model_spec.name, call.model_spec.signature_name = "text_generator", GENERATE_SIGNATURE
                for name, value in inputs.items():
                    call.inputs[name].CopyFrom(tf.make_tensor_proto(value))
                return stub.Predict(call, timeout=300)

            print(f"\nexported '{GENERATE_SIGNATURE}' signature, same requests; seconds per request")
            print(f"{'batch':>5} {'path':11} {'call s':>8} {'tokens/s':>9} {'vs in-process':>14}")
            for batch in BATCHES:
                inputs = request(batch)
                paths = {"in-process": in_process, "REST": rest, "gRPC": grpc_call}
                median = {path: times[1] for path, times in interleaved(
                    {path: functools.partial(call, inputs) for path, call in paths.items()}, args.repeats).items()}
                for path, value in median.items():
                    print(f"{batch:5d} {path:11} {value:8.3f} {batch * NEW_TOKENS / value:9.0f} "
                          f"{value / median['in-process']:13.2f}x")
            channel.close()


if __name__ == "__main__":
    main()
