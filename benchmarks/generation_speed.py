"""Text generation speed: the key/value cache against recomputing the prefix, and the export in-process vs served.

The model is text_generator's default architecture with a 384-token context, untrained (speed does not depend on
the weights), its ⟨end⟩ logit pushed far down so that every run makes exactly the tokens asked for. Greedy,
prompts of 64 bytes, 256 new tokens, batch 1 and 8:
- cached: the compiled generation loop (tf.while_loop) runs the prompt once, then one token per step against
  the key/value cache;
- recompute: the same compiled loop runs the whole prefix through the model at every step, which is what the
  classic Keras miniature-GPT example does (it also pads each step to the full context and loops in Python);
- first call: the first call's wall time, tracing and graph optimisation included (later calls reuse the graph).
Then the exported "generate" signature, same requests: in-process (tf.saved_model.load) vs REST and gRPC through
`tfzoo serve` in a child process on 127.0.0.1 (plain TF Serving API calls, as in serving_latency.py).

    python benchmarks/generation_speed.py --repeats 5
"""
from __future__ import annotations

import argparse
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
from tfzoo.text.tokenizer import END

PROMPT_BYTES, NEW_TOKENS, CONTEXT = 64, 256, 384
BATCHES = (1, 8)
PROMPT = ("The quick brown fox jumps over the lazy dog. " * 2)[:PROMPT_BYTES]


def device_name() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
    return f"CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()})"


def timed(call: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(first call's seconds, median seconds of `repeats` further calls)."""
    started = time.perf_counter()
    call()
    first = time.perf_counter() - started
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return first, statistics.median(times)


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


def generation_seconds(model: keras.Model, batch: int, controls: dict[str, float | int], use_cache: bool,
                       repeats: int) -> tuple[float, float]:
    """`timed` on the compiled generation loop (key/value cache or recomputing the prefix) for `batch` prompts."""
    function = generation_functions(model, use_cache=use_cache)[GENERATE_SIGNATURE]
    return timed(lambda: call_generate_signature(function, [PROMPT] * batch, **controls), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per figure, after the first")
    args = parser.parse_args()

    model = benchmark_generator(CONTEXT)
    controls = greedy_controls(NEW_TOKENS)

    print(f"device: {device_name()}; TensorFlow {tf.__version__}")
    print(f"text_generator (default architecture, {CONTEXT}-token context), prompt {PROMPT_BYTES} bytes, "
          f"{NEW_TOKENS} new tokens, greedy; median of {args.repeats} calls after the first")
    print(f"{'batch':>5} {'decoding':10} {'call s':>8} {'tokens/s':>9} {'cached speed-up (goal >= 5x)':>29}")
    first_calls = {}
    for batch in BATCHES:
        seconds = {}
        for name, use_cache in (("cached", True), ("recompute", False)):
            first, seconds[name] = generation_seconds(model, batch, controls, use_cache, args.repeats)
            first_calls.setdefault(name, first)  # the first call of all traces the graph; later ones reuse it
        for name, value in seconds.items():
            speedup = f"{seconds['recompute'] / value:28.1f}x" if name == "cached" else ""
            print(f"{batch:5d} {name:10} {value:8.3f} {batch * NEW_TOKENS / value:9.0f} {speedup:>29}")
    print("first call (tracing and graph optimisation, then batch 1): "
          + ", ".join(f"{name} {first:.2f} s" for name, first in first_calls.items()))

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
                seconds = {path: timed(lambda: call(inputs), args.repeats)[1]
                           for path, call in (("in-process", in_process), ("REST", rest), ("gRPC", grpc_call))}
                for path, value in seconds.items():
                    print(f"{batch:5d} {path:11} {value:8.3f} {batch * NEW_TOKENS / value:9.0f} "
                          f"{value / seconds['in-process']:13.2f}x")
            channel.close()


if __name__ == "__main__":
    main()
