"""The `tfzoo` command line: one subcommand per step of the flow data -> train -> export -> validate -> serve."""
from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import tfzoo
from tfzoo import quiet
from tfzoo.unused_imports import skip_unused_imports

# Only what the parser itself needs is imported here; TensorFlow and the modules that use it are imported by the
# commands that run it, so `tfzoo --help`, `tfzoo SUBCOMMAND --help` and `tfzoo predict` over REST start quickly.


def parse_param(text: str) -> tuple[str, Any]:
    """NAME=VALUE with VALUE a Python literal (3, 0.1, (32, 64), True), else kept as a string."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value


def column_list(text: str) -> tuple[str, ...]:
    """COL[,COL]: table column names."""
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected column names separated by commas, got {text!r}")
    return names


def parse_label(text: str) -> tuple[str, int]:
    """NAME=VERSION for a TF Serving version label."""
    name, sep, version = text.partition("=")
    if not sep or not name or not version.isdigit() or int(version) > INT64_MAX:
        raise argparse.ArgumentTypeError(f"expected NAME=VERSION such as stable=1 (VERSION from 0 to {INT64_MAX}), "
                                         f"got {text!r}")
    return name, int(version)


def parse_versions(text: str) -> int | tuple[str, list[int]]:
    """N (a version, for every model) or NAME=N[,N] (the versions of one model), for serving-config --versions."""
    name, sep, numbers = text.partition("=")
    if not sep:
        return VERSION(text)
    try:
        versions = [VERSION(number) for number in numbers.split(",")]
    except argparse.ArgumentTypeError:
        versions = []
    if not (name and versions):
        raise argparse.ArgumentTypeError(f"expected NAME=N[,N] such as mnist_cnn=1,2 (N from 0 to {INT64_MAX}), "
                                         f"got {text!r}")
    return name, versions


def parse_bool(text: str) -> bool:
    """A tensorflow_model_server boolean flag value: true/false (also 1/0)."""
    if text.lower() in ("true", "1"):
        return True
    if text.lower() in ("false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


INT32_MAX = 2**31 - 1  # TensorFlow's int32 tensors and tensorflow_model_server's int32 flags
INT64_MAX = 2**63 - 1  # TF Serving's version numbers are int64
MAX_EPOCHS = 1_000_000  # far beyond any run: catches a mistyped number
MAX_DEVICES = 1024
MAX_THREADS = 4096


@dataclass(frozen=True)
class Bounded:
    """An argparse `type=`: a whole number (or a float) within low..high, else argparse's one-line error naming the
    flag, the value and the range. `low_open` excludes low itself; `hint` says what a value means or what to do."""

    kind: type
    low: int | float
    high: int | float
    low_open: bool = False
    hint: str = ""

    def __call__(self, text: str) -> int | float:
        try:
            value = self.kind(text)
        except ValueError:
            value = None
        # NaN fails every comparison and infinity exceeds every high: both are refused here.
        if value is None or not (self.low < value if self.low_open else self.low <= value) or not value <= self.high:
            hint = f"; {self.hint}" if self.hint else ""
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}{hint}")
        return value

    def describe(self) -> str:
        """The valid range in words, e.g. 'a whole number from 1 to 1024'."""
        what = "a whole number" if self.kind is int else "a number"
        low = f"above {self.low} up" if self.low_open else f"from {self.low}"
        return f"{what} {low} to {self.high}"


def whole(low: int, high: int, hint: str = "") -> Bounded:
    """An integer flag's type: low..high inclusive."""
    return Bounded(int, low, high, hint=hint)


def real(low: float, high: float, hint: str = "", *, low_open: bool = False) -> Bounded:
    """A float flag's type: low..high (low excluded when `low_open`); NaN and infinity are refused."""
    return Bounded(float, low, high, low_open=low_open, hint=hint)


PORT = whole(0, 65535)
SECONDS_POLL = real(0, INT32_MAX, "0: once")
THREADS = whole(1, MAX_THREADS)
TF_THREADS = whole(0, MAX_THREADS, "0: TensorFlow chooses")
VERSION = whole(0, INT64_MAX)


class Parser(argparse.ArgumentParser):
    """argparse with the project's error form: one line `tfzoo CMD: error: ...` on stderr, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# tensorflow_model_server's flags that `tfzoo serve` takes: (flags, type, help). Each fills the ServerOptions
# field of its first name; the later names are tfzoo's earlier spellings, kept as aliases.
SERVER_FLAGS: dict[str, tuple[tuple[str, ...], Any, str]] = {
    "port": (("--port", "--grpc-port"), PORT, "gRPC port (default %(default)s)"),
    "rest_api_port": (("--rest_api_port", "--rest-port"), PORT, "REST port; 0 serves no REST API (default)"),
    "model_name": (("--model_name",), str, "name of the one model --model_base_path serves: letters, digits, '_', "
                   "'-' and '.' (not first) (default %(default)s)"),
    "model_base_path": (("--model_base_path",), str,
                        "folder holding the model's version folders; a file is refused, a folder that does not exist "
                        "yet is logged once and followed as TF Serving follows it (served once a version appears)"),
    "model_config_file": (("--model_config_file", "--model-config"), str,
                          "models.config (ModelServerConfig text format); instead of --model_name/--model_base_path"),
    "model_config_file_poll_wait_seconds": (("--model_config_file_poll_wait_seconds",), SECONDS_POLL,
                                            "seconds between reads of --model_config_file; 0 reads it once"),
    "file_system_poll_wait_seconds": (("--file_system_poll_wait_seconds", "--poll-interval"), SECONDS_POLL,
                                      "seconds between scans for new versions; 0 scans once (default %(default)s)"),
    "enable_batching": (("--enable_batching",), parse_bool,
                        "merge concurrent requests into batches along their 0th dimension (default %(default)s)"),
    "batching_parameters_file": (("--batching_parameters_file",), str,
                                 "BatchingParameters text file (max_batch_size, batch_timeout_micros, ...)"),
    "monitoring_config_file": (("--monitoring_config_file",), str,
                               "MonitoringConfig text file: Prometheus metrics on the REST port"),
    "enable_model_warmup": (("--enable_model_warmup",), parse_bool,
                            "replay assets.extra/tf_serving_warmup_requests at load (default %(default)s)"),
    "rest_api_timeout_in_ms": (("--rest_api_timeout_in_ms",), whole(1, INT32_MAX),
                               "bound on each REST request's graph runs, and on the wait for requests in flight "
                               "at shutdown (default %(default)s)"),
    "enable_serialization_as_tensor_content": (("--enable_serialization_as_tensor_content",), parse_bool,
                                               "answer Predict in tensor_content instead of typed fields"),
    "xla_cpu_compilation_enabled": (("--xla_cpu_compilation_enabled",), parse_bool,
                                    "compile XLA parts of graphs (an export made with tfzoo export --xla); without "
                                    "it a version that needs XLA fails to load (default %(default)s)"),
    "rest_api_num_threads": (("--rest_api_num_threads",), THREADS, "REST worker threads (default %(default)s)"),
    "grpc_max_threads": (("--grpc_max_threads",), THREADS, "gRPC worker threads (default %(default)s)"),
    "intra_op_parallelism": (("--tensorflow_intra_op_parallelism",), TF_THREADS, "0: TensorFlow chooses"),
    "inter_op_parallelism": (("--tensorflow_inter_op_parallelism",), TF_THREADS, "0: TensorFlow chooses"),
    "host": (("--host",), str, "address to bind; tfzoo's own flag (default %(default)s)"),
    "max_request_bytes": (("--max_request_bytes", "--max-request-bytes"), whole(1, INT32_MAX),  # gRPC's limit
                          "largest REST body / gRPC message accepted, and the most values a request's tensors "
                          "may declare (TensorFlow fills in values a tensor leaves out); tfzoo's own flag "
                          "(default %(default)s)"),
}


def add_server_flags(parser: argparse.ArgumentParser) -> None:
    """tensorflow_model_server's flags, defaults from ServerOptions; `--flag=value` and `--flag value` both work."""
    from tfzoo.serving.options import ServerOptions

    defaults = ServerOptions()
    for name, (flags, kind, text) in SERVER_FLAGS.items():
        default = getattr(defaults, name)
        extra = {"nargs": "?", "const": True} if kind is parse_bool else {}  # a bare --enable_batching means true
        parser.add_argument(*flags, dest=name, type=kind, default=0 if default is None else default, help=text,
                            metavar="true|false" if kind is parse_bool else name.upper(), **extra)


def _train_arguments(train: argparse.ArgumentParser) -> None:
    from tfzoo.datasets.catalog import named_datasets
    from tfzoo.training import STRATEGIES

    train.add_argument("model", help="registered model name (see `tfzoo list`)")
    data = train.add_argument_group("data (default: the model's own dataset)")
    data.add_argument("--dataset", choices=named_datasets(), help="a built-in dataset")
    data.add_argument("--csv", metavar="FILE",
                      help="your table as a CSV with a header: numbers, categories, missing values and labels of any "
                           "kind (preprocessing is learned and kept inside the model); needs --target. For "
                           "text_generator: article/headline pairs, with --text-column and --target")
    data.add_argument("--target", metavar="COLUMN",
                      help="the label column of --csv or of the --*-files (the headline for text_generator)")
    data.add_argument("--categorical", metavar="COL[,COL]", type=column_list, default=(),
                      help="columns of the table (--csv or --*-files) to treat as categories although they hold "
                           "numbers (codes, ids)")
    data.add_argument("--drop", metavar="COL[,COL]", type=column_list, default=(),
                      help="columns of the table (--csv or --*-files) to leave out (identifiers, names, free text, "
                           "dates)")
    data.add_argument("--positive-class", metavar="VALUE",
                      help="the positive class of a two-class --target, as written in the table (default: the second "
                           "of the two values in sorted order, as scikit-learn)")
    data.add_argument("--train-files", metavar="GLOB",
                      help="your table as CSV (.csv, .csv.gz) or TFRecord (.tfrecord[.gz]) files of tf.Example, "
                           "streamed for training and read as --csv is (numbers, categories, missing values, labels "
                           "of any kind), e.g. 'data/train-*.csv' or gs://...; needs --validation-files, "
                           "--test-files and --target")
    data.add_argument("--validation-files", metavar="GLOB", help="the validation files that go with --train-files")
    data.add_argument("--test-files", metavar="GLOB",
                      help="the held-out test files that go with --train-files (evaluate and export read them)")
    data.add_argument("--text-column", metavar="COLUMN", help="the article column of --csv, for text_generator")
    data.add_argument("--text-file", metavar="FILE",
                      help="a UTF-8 text file for text_generator to model; blank lines separate documents")
    data.add_argument("--data-dir", metavar="DIR", help="a folder of MNIST IDX files (gz or not) for the digit models")
    for split in ("validation", "test"):
        data.add_argument(f"--{split}-fraction", type=real(0, 1), metavar="F",
                          help=f"the share of --csv rows (--text-file documents) held out for {split} (default 0.15; "
                               "with --resume, the run's own)")
    train.add_argument("--epochs", type=whole(1, MAX_EPOCHS), help="epochs (default: the model's)")
    train.add_argument("--batch-size", type=whole(1, INT32_MAX), help="global batch size (default: the model's)")
    distribution = train.add_argument_group("distribution and speed")
    distribution.add_argument("--strategy", choices=STRATEGIES, default="auto",
                              help="tf.distribute strategy (default: auto: tpu if named, multi_worker if TF_CONFIG has "
                                   "several tasks, mirrored on several GPUs, else default)")
    distribution.add_argument("--num-devices", type=whole(1, MAX_DEVICES), metavar="N",
                              help="mirrored: use N GPUs, or N logical CPU devices on a machine without GPUs")
    distribution.add_argument("--tpu", metavar="NAME", help="TPU name or grpc:// address for --strategy tpu")
    distribution.add_argument("--mixed-precision", action="store_true", default=None,  # None: not given
                              help="float16 compute on GPU, bfloat16 on TPU/CPU; outputs stay float32")
    distribution.add_argument("--jit-compile", action="store_true", default=None,
                              help="compile the training step with XLA")
    train.add_argument("--quiet", action="store_true",
                       help="print only errors and the result lines (run dir, held-out metrics, weights digest); "
                            "default: a progress bar on a terminal, one line per epoch into a file or pipe")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --run-dir from its last checkpoint, or start it if the dir holds no "
                            "run yet; data, -p, --batch-size, --seed, --early-stopping, --mixed-precision, "
                            "--jit-compile and --init-from given again must match the run's (left out: the run's "
                            "own); --epochs may change the target")
    train.add_argument("--init-from", metavar="RUN_DIR",
                       help="fine-tune: start from the weights of this finished run of the same model (a fresh "
                            "optimizer), with its hyperparameters unless -p gives them; those that would change a "
                            "weight's shape (e.g. d_model, units) are refused, while learning_rate, dropout and the "
                            "like may change, and the input shape, classes and headline follow the data. Left out, "
                            "text_generator on article/headline pairs starts from tfzoo's pre-trained headline "
                            "model; 'fresh': new weights")
    train.add_argument("--checkpoint-every", metavar="STEPS",
                       type=whole(1, INT32_MAX, "leave the flag out to checkpoint after every epoch only"),
                       help="also checkpoint every STEPS training steps (default: after every epoch only)")
    train.add_argument("--run-dir", metavar="DIR", help="where to write the run (default: runs/MODEL/TIMESTAMP)")
    train.add_argument("--seed", type=whole(0, 2**32 - 1),  # NumPy's seed range; None: not given
                       help="seed for weights, data split and shuffling (default: 0; with --resume, the run's own)")
    train.add_argument("--early-stopping", type=whole(0, MAX_EPOCHS, "leave the flag out to train every epoch"),
                       metavar="PATIENCE",
                       help="stop after PATIENCE epochs without a better validation loss; keep the best weights")
    train.add_argument("-p", "--param", type=parse_param, action="append", default=[], metavar="NAME=VALUE",
                       help="a model hyperparameter, e.g. -p learning_rate=0.01 -p 'units=(64, 32)'")


def _export_arguments(export: argparse.ArgumentParser) -> None:
    from tfzoo.text.limits import DEFAULT_MAX_TOKENS_PER_REQUEST, TOKENS_PER_REQUEST_RANGE

    export.add_argument("run_dir", metavar="RUN_DIR")
    export.add_argument("--model-base", required=True, metavar="DIR", help="TF Serving's model base folder")
    export.add_argument("--name", help="model name under the base: letters, digits, '_', '-' and '.' (not first) "
                                       "(default: the registry name)")
    export.add_argument("--version", type=whole(1, INT64_MAX), metavar="N",
                        help="version number (default: the next free one, or the one already holding this export)")
    export.add_argument("--max-tokens-per-request", type=whole(*TOKENS_PER_REQUEST_RANGE), metavar="N",
                        help="text_generator only: the token budget built into the exported graph; a request for "
                             "more (prompts x new tokens each) is refused with INVALID_ARGUMENT, by the stock TF "
                             f"Serving too (default {DEFAULT_MAX_TOKENS_PER_REQUEST})")
    export.add_argument("--xla", action="store_true",
                        help="text_generator only: compile the generation signatures' token loop with XLA (faster); "
                             "only a server started with --xla_cpu_compilation_enabled=true (TF Serving or tfzoo "
                             "serve) loads it; recorded in tfzoo.json and checked by validate (default: no XLA)")


def _serving_config_arguments(configs: argparse.ArgumentParser) -> None:
    from tfzoo.serving.config import DEFAULT_METRICS_PATH, VERSION_POLICIES

    configs.add_argument("model_base", metavar="MODEL_BASE", help="folder holding NAME/VERSION/saved_model.pb")
    configs.add_argument("--out", required=True, metavar="DIR", help="folder to write the three files to")
    configs.add_argument("--version-policy", choices=VERSION_POLICIES, default="latest",
                         help="latest: newest version only (default); all; specific: exactly --versions")
    configs.add_argument("--versions", type=parse_versions, nargs="+", action="extend", metavar="N|NAME=N[,N]",
                         help="versions to serve with 'specific', for every model (--versions 1 2); or per model "
                              "(repeatable: --versions mnist_cnn=1,2 --versions text_generator=3): those models serve "
                              "exactly them, the others follow --version-policy")
    configs.add_argument("--label", type=parse_label, action="append", default=[], metavar="NAME=VERSION",
                         help="a version label such as stable=1 (repeatable); must point at a served version")
    configs.add_argument("--base-path-prefix", metavar="PATH",
                         help="where the server sees MODEL_BASE, e.g. /models in the tensorflow/serving container")
    configs.add_argument("--metrics-path", default=DEFAULT_METRICS_PATH, help="Prometheus path on the REST port")
    batching = {"--max-batch-size": whole(1, INT32_MAX), "--max-enqueued-batches": whole(1, INT32_MAX),
                "--batch-timeout-micros": whole(0, 60_000_000, "a partial batch waits at most a minute"),
                "--num-batch-threads": THREADS}
    for flag, kind in batching.items():
        configs.add_argument(flag, type=kind, metavar="N", help="see the comments in batching.config")


def _generate_arguments(generate: argparse.ArgumentParser) -> None:
    from tfzoo.text.limits import DEFAULTS as GENERATION_DEFAULTS
    from tfzoo.text.limits import MAX_NEW_TOKENS, MAX_PROMPTS
    from tfzoo.text.vocabulary import VOCAB_SIZE

    generate.add_argument("model_dir", metavar="VERSION_DIR")
    generate.add_argument("--prompt", action="append", required=True,
                          help=f"a prompt; repeat for a batch (run {MAX_PROMPTS} at a time)")
    generate.add_argument("--max-new-tokens", type=whole(1, MAX_NEW_TOKENS), metavar="N",
                          default=GENERATION_DEFAULTS["max_new_tokens"],
                          help=f"new tokens (bytes) per prompt, at most {MAX_NEW_TOKENS} (default: %(default)s)")
    generate.add_argument("--temperature", type=real(0, 100, "0 is greedy; above 10 is close to uniform"),
                          default=GENERATION_DEFAULTS["temperature"], metavar="T",
                          help="0: greedy (default); higher: more varied samples")
    generate.add_argument("--top-k", type=whole(0, VOCAB_SIZE), default=GENERATION_DEFAULTS["top_k"], metavar="K",
                          help="sample among the K most likely tokens (default 0: all)")
    generate.add_argument("--top-p", type=real(0, 1), default=GENERATION_DEFAULTS["top_p"], metavar="P",
                          help="sample among the most likely tokens whose probability reaches P (default 1: all)")
    generate.add_argument("--seed", type=whole(0, INT64_MAX), metavar="N",
                          help="seed for reproducible sampling (default: random)")
    generate.add_argument("--repetition-penalty", type=real(0, 100, "1 is off", low_open=True), metavar="R",
                          default=GENERATION_DEFAULTS["repetition_penalty"],
                          help="divide the logits of tokens already in the text by R (negative ones: multiply); "
                               "1: off (default: %(default)s)")
    generate.add_argument("--no-repeat-ngram-size", type=whole(0, MAX_NEW_TOKENS, "0 is off"), metavar="N",
                          default=GENERATION_DEFAULTS["no_repeat_ngram_size"],
                          help="never repeat a sequence of N tokens (bytes) already in the text; 0: off "
                               "(default: %(default)s)")
    generate.add_argument("--no-xla", dest="jit_compile", action="store_false",
                          help="run dir only: run the XLA-free graph the default export serves instead of the token "
                               "loop compiled with XLA (the same greedy text; XLA is faster, compiling once per "
                               "batch size)")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; given `command` ("" for none), the flags of the other commands (whose choices and
    defaults come from modules that import TensorFlow) are left out."""
    parser = Parser(prog="tfzoo", description=tfzoo.__doc__)
    parser.add_argument("--version", action="version", version=f"tfzoo {tfzoo.__version__}")
    verbose_help = (f"show TensorFlow's own log lines and warnings (default: hidden, unless {quiet.LOG_LEVEL_ENV} or "
                    f"{quiet.VERBOSE_ENV}=1 is set)")
    parser.add_argument("--verbose", action="store_true", help=verbose_help)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("list", help="list the registered models with their task and default dataset")

    train = commands.add_parser("train", help="train a model and write its run dir",
                                description="Train a registered model; writes model.keras, config.json, history.csv, "
                                            "curves.png, metrics.json and tensorboard/ to the run dir.")
    if command in (None, "train"):
        _train_arguments(train)

    evaluate = commands.add_parser("evaluate", help="print a run's metrics on its held-out test split")
    evaluate.add_argument("run_dir", metavar="RUN_DIR")

    export = commands.add_parser(
        "export", help="export a run for TF Serving as MODEL_BASE/NAME/VERSION/ and print that folder",
        description="Export a run dir as a versioned SavedModel (tag serve, serving_default and named signatures, "
                    "warm-up requests, tfzoo.json), validated in a fresh process before it is renamed into place.")
    if command in (None, "export"):
        _export_arguments(export)

    validate = commands.add_parser(
        "validate", help="check that TF Serving can load a version folder and answers like the trained model",
        description="Check layout, the serve tag, serving_default, that every op is core TensorFlow (and needs no "
                    "XLA, unless tfzoo.json declares an XLA export), replay the "
                    "warm-up requests and compare with the trained Keras model. Exit status 1 on any failure.")
    validate.add_argument("version_dir", metavar="VERSION_DIR")

    serve = commands.add_parser(
        "serve", help="serve SavedModels over TF Serving's gRPC and REST APIs (laptops and tests)",
        description="tensorflow_model_server's APIs, flags and defaults, for laptops and tests: "
                    "`tfzoo serve --model_name=mnist --model_base_path=/models/mnist --rest_api_port=8501`, or "
                    "--model_config_file=models.config. New versions are picked up without restart. Production "
                    "uses the tensorflow/serving image with the same flags and files (serving/README.md). Stops "
                    "cleanly on SIGTERM/SIGINT. Differences from TF Serving: see the README.")
    if command in (None, "serve"):
        add_server_flags(serve)

    predict = commands.add_parser(
        "predict", help="send a prediction request to TF Serving or tfzoo serve and print the outputs as JSON",
        description="Ask a TF Serving API (tfzoo serve or tensorflow_model_server) for a prediction. --json is "
                    "{INPUT: VALUES, ...}, plain VALUES for a one-input signature, or TF Serving's REST body "
                    '({"instances": [...]} or {"inputs": ...}); strings may be {"b64": "..."}. Inputs are '
                    "checked against the signature before anything is sent. Prints {\"outputs\": {NAME: VALUE, ...}}, "
                    "every output named.")
    predict.add_argument("--model", required=True, help="model name on the server")
    predict.add_argument("--server", metavar="HOST:PORT",
                         help="default 127.0.0.1:8501 for REST, 127.0.0.1:8500 with --grpc")
    predict.add_argument("--grpc", action="store_true", help="use gRPC instead of REST")
    predict.add_argument("--json", required=True, metavar="JSON_OR_@FILE", help="the inputs, inline or @file.json")
    predict.add_argument("--signature", default="serving_default", help="signature name (default: %(default)s)")
    route = predict.add_mutually_exclusive_group()
    route.add_argument("--version", type=VERSION, help="a specific version (default: the latest)")
    route.add_argument("--label", help="a version label such as stable or canary")
    predict.add_argument("--timeout", type=real(0, 86400, low_open=True), default=10.0,
                         help="seconds per request (default: %(default)s)")

    configs = commands.add_parser(
        "serving-config", help="write models.config, batching.config and monitoring.config for TF Serving",
        description="Write TF Serving's models.config (every model under MODEL_BASE), batching.config and "
                    "monitoring.config into --out, each checked against TF Serving's message definitions.")
    if command in (None, "serving-config"):
        _serving_config_arguments(configs)

    generate = commands.add_parser(
        "generate", help="continue prompts with a text_generator export (or run dir); one JSON line per prompt",
        description="Generate text in-process. VERSION_DIR is an export (its 'generate' signature runs: the graph "
                    "TF Serving serves) or a text_generator run dir (its token loop compiled with XLA unless "
                    "--no-xla). Greedy unless --temperature > 0; prompts "
                    "longer than the model's context are cut (see tfzoo.text.generation). Prints "
                    '{"prompt": ..., "text": ...} per prompt, text being the continuation only.')
    if command in (None, "generate"):
        _generate_arguments(generate)

    tfrecords = commands.add_parser(
        "tfrecords", help="write a CSV as TFRecord shards of tf.Example for --train-files and friends",
        description="Stream a CSV (optionally .gz) into N TFRecord files of tf.train.Example, one feature per column "
                    "(float_list for a column of numbers, bytes_list for text; a missing value left out), rows dealt "
                    "round-robin; the shards appear only when all are complete. Prints their paths.")
    tfrecords.add_argument("csv", metavar="CSV", help="a CSV with a header line of column names (local or gs://...)")
    tfrecords.add_argument("--out", required=True, metavar="DIR", help="folder for NAME-00000-of-0000N.tfrecord")
    tfrecords.add_argument("--shards", type=whole(1, 100_000), default=1, metavar="N",
                           help="number of files (default 1); at least one per worker lets multi-worker shard by file")
    for subparser in commands.choices.values():
        # --verbose after the command too; SUPPRESS keeps one given before it
        subparser.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose_help)
        for action in subparser._actions:  # each range said once, where it is checked
            if isinstance(action.type, Bounded) and action.help:
                action.help += f"; {action.type.describe()}"
    return parser


def command_list(args: argparse.Namespace) -> None:
    for name in tfzoo.list_models():
        spec = tfzoo.get_spec(name)
        print(f"{name:22} {spec.task.name:14} {spec.default_dataset:22} {spec.description}")


def command_train(args: argparse.Namespace) -> None:
    from tfzoo.datasets import choose_dataset
    from tfzoo.run_dir import weights_digest
    from tfzoo.training.strategy import resolve_strategy

    # The strategy comes first: logical CPU devices can only be made before TensorFlow runs anything.
    strategy = resolve_strategy(args.strategy, num_devices=args.num_devices, tpu=args.tpu)
    spec = tfzoo.get_spec(args.model)  # unknown model: fail before loading any data
    dataset = choose_dataset(
        task=spec.task.name, dataset=args.dataset, csv=args.csv, target=args.target, train_files=args.train_files,
        validation_files=args.validation_files, test_files=args.test_files, text_file=args.text_file,
        text_column=args.text_column, data_dir=args.data_dir, categorical=args.categorical, drop=args.drop,
        positive_class=args.positive_class, **data_settings(args),
    )
    result = tfzoo.train(
        args.model, dataset=dataset, epochs=args.epochs,
        batch_size=args.batch_size, strategy=strategy, run_dir=args.run_dir, resume=args.resume,
        init_from=args.init_from, seed=args.seed,
        early_stopping=args.early_stopping, checkpoint_every=args.checkpoint_every,
        mixed_precision=args.mixed_precision, jit_compile=args.jit_compile, verbose=0 if args.quiet else "auto",
        **dict(args.param),
    )
    print(f"run dir: {result.run_dir}")
    print("held-out metrics: " + json.dumps(result.metrics, sort_keys=True))
    print(f"weights sha256: {weights_digest(result.model)}")


def data_settings(args: argparse.Namespace) -> dict[str, Any]:
    """How the data is split: --seed and the fractions as given, else (left out on --resume) the run's stored ones,
    since the data must be the run's; else the seed 0 and the loader's fractions."""
    from pathlib import Path

    from tfzoo.run_dir import CONFIG_FILE, read_config

    settings = {"seed": args.seed, "validation_fraction": args.validation_fraction,
                "test_fraction": args.test_fraction}
    if args.resume and args.run_dir and (Path(args.run_dir) / CONFIG_FILE).is_file():
        config = read_config(Path(args.run_dir))
        # The stored fractions only for a file given again: left out, the data is rebuilt from config.json.
        stored = {**(config["dataset"] if args.csv or args.text_file else {}), "seed": config["seed"]}
        settings = {key: stored.get(key) if value is None else value for key, value in settings.items()}
    return {**settings, "seed": settings["seed"] or 0}


def command_evaluate(args: argparse.Namespace) -> None:
    print(json.dumps(tfzoo.evaluate(args.run_dir, verbose=0), indent=2, sort_keys=True))


def command_export(args: argparse.Namespace) -> None:
    if args.name is not None:
        from tfzoo.serving.config import check_model_name
        check_model_name(args.name, "--name")
    from tfzoo.export.saved_model import STAGING_PREFIX

    version_dir = None
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        try:
            version_dir = tfzoo.export(args.run_dir, args.model_base, name=args.name, version=args.version,
                                       max_tokens_per_request=args.max_tokens_per_request, xla=args.xla)
        finally:
            text = printed.getvalue()
    if version_dir is not None:  # the validation report names the staging folder it ran on: say where it went
        text = re.sub(rf"\S*{re.escape(STAGING_PREFIX)}[^/\s]+/\d+", lambda _: str(version_dir), text)
    print(text, end="")
    if version_dir is not None:
        print(version_dir)


def command_validate(args: argparse.Namespace) -> int:
    report = tfzoo.validate(args.version_dir)
    print(report.render())
    return 0 if report.ok else 1


def command_serve(args: argparse.Namespace) -> None:
    from tfzoo.serving.options import ServerOptions
    from tfzoo.serving.server import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = ServerOptions(**{name: getattr(args, name) for name in SERVER_FLAGS})
    options.rest_api_port = options.rest_api_port or None  # TF Serving: 0 serves no REST API
    options.check()  # TF Serving's own refusals first, in its words
    if options.port == 0:
        raise ValueError("--port must be set: tfzoo serve always serves gRPC (TF Serving: at least one of "
                         "--port or --grpc_socket_path)")
    serve(options)


def command_predict(args: argparse.Namespace) -> None:
    from tfzoo.serving.client import Client, inputs_from_json

    inputs = inputs_from_json(args.json)
    protocol = "grpc" if args.grpc else "rest"
    client = (Client.from_address(args.server, protocol=protocol, timeout=args.timeout) if args.server
              else Client(protocol=protocol, timeout=args.timeout))
    with client:
        outputs = client.predict(args.model, inputs, signature=args.signature, version=args.version, label=args.label)
    print(render_outputs(outputs))


def render_outputs(outputs: dict[str, Any]) -> str:
    """{"outputs": {name: value, ...}}: TF Serving's columnar answer, each value as its REST API writes it, but
    named even when there is one output (TF Serving then writes the value alone), as the Python client returns."""
    from tfzoo.serving.protocol.json_arrays import json_from_output_arrays

    named = {name: json.loads(json_from_output_arrays({name: array}))["outputs"]
             for name, array in sorted(outputs.items())}
    return json.dumps({"outputs": named}, indent=4, ensure_ascii=False)


def command_generate(args: argparse.Namespace) -> None:
    from tfzoo.text.generation import call_generate_signature
    from tfzoo.text.loading import load_generate_function

    function = load_generate_function(args.model_dir, jit_compile=args.jit_compile)
    controls = {"max_new_tokens": args.max_new_tokens, "temperature": args.temperature, "top_k": args.top_k,
                "top_p": args.top_p, "seed": args.seed, "repetition_penalty": args.repetition_penalty,
                "no_repeat_ngram_size": args.no_repeat_ngram_size}
    for prompt, text in zip(args.prompt, call_generate_signature(function, args.prompt, **controls)):
        print(json.dumps({"prompt": prompt, "text": text}, ensure_ascii=False))


def command_serving_config(args: argparse.Namespace) -> None:
    from tfzoo.serving.config import write_serving_configs

    batching = {name: getattr(args, name) for name in
                ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads")
                if getattr(args, name) is not None}
    versions = args.versions
    named = [item for item in versions or () if isinstance(item, tuple)]
    if named:
        if len(named) != len(versions) or len({name for name, _ in named}) != len(named):
            raise ValueError("--versions takes versions for every model (--versions 1 2) or per model, each model "
                             "once (--versions NAME=1,2 --versions OTHER=3), not both")
        versions = dict(named)
    written = write_serving_configs(
        args.model_base, args.out, version_policy=args.version_policy, versions=versions,
        labels=dict(args.label) or None, base_path_prefix=args.base_path_prefix, metrics_path=args.metrics_path,
        **batching,
    )
    for path in written.values():
        print(path)


def command_tfrecords(args: argparse.Namespace) -> None:
    from tfzoo.datasets import write_tfrecord_shards

    for path in write_tfrecord_shards(args.csv, args.out, args.shards):
        print(path)


COMMANDS = {"list": command_list, "train": command_train, "evaluate": command_evaluate, "export": command_export,
            "validate": command_validate, "serving-config": command_serving_config, "serve": command_serve,
            "predict": command_predict, "generate": command_generate, "tfrecords": command_tfrecords}


def user_errors() -> tuple[type[Exception], ...]:
    """The errors that are the user's to fix, reported in one line: OSError for missing files or a port in use;
    ExportError and ServerError where their modules were imported (else none of them was raised)."""
    errors: list[type[Exception]] = [ValueError, OSError]
    for module, name in (("tfzoo.export.saved_model", "ExportError"), ("tfzoo.serving.client", "ServerError")):
        if module in sys.modules:
            errors.append(getattr(sys.modules[module], name))
    return tuple(errors)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; user errors print a clear message and exit 2."""
    own_process = argv is None  # the `tfzoo` program, not a call from a Python session
    argv = sys.argv[1:] if argv is None else list(argv)
    quiet.configure(verbose="--verbose" in argv)  # before TensorFlow is imported (by train's flags, or a command)
    command = next((arg for arg in argv if not arg.startswith("-")), "")  # the top level has no valued flags
    if own_process and command in ("serve", "validate"):  # they only load and run SavedModels
        skip_unused_imports()
    args = build_parser(command if command in COMMANDS else "").parse_args(argv)
    try:
        return COMMANDS[args.command](args) or 0
    except user_errors() as error:
        message = " ".join(line.strip() for line in str(error).splitlines())  # one line, whatever the error holds
        print(f"tfzoo {args.command}: error: {message}", file=sys.stderr)
        return 2
