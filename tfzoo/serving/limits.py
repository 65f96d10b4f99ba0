"""What one request may make `tfzoo serve` hold in memory, whatever it declares.

TensorFlow's TensorProto semantics let a request declare far more than it sends: a proto with fewer values than
its shape is filled in (missing values repeat the last one, or are zeros when it has none: Tensor::FromProto and
tf.make_ndarray alike), so a gRPC Predict of 42 bytes can declare [200000, 28, 28] floats (627 MB), and a graph
run on 200,000 images needs many times that again. TF Serving allocates whatever is declared. tfzoo bounds both:

1. What a request declares (`check_tensors`, `check_examples`). Every value a request really carries costs at
   least one byte on any wire (a varint or bool in a typed field, a string's length prefix, a digit of REST
   JSON; float_val and tensor_content cost more), and every byte of a string is carried. So tensors declaring
   more values, plus filled-in string bytes, than --max_request_bytes are mostly fill-in, which no request
   within the limit could have carried; they are refused as INVALID_ARGUMENT before anything is allocated.
   The bound counts values, not values x dtype size, because a legitimate request decodes to more than its
   own size (int64 token ids as 1-byte varints, REST's "0,": 2 bytes for a 4-byte float): refusing those
   would refuse requests that do carry every value. What a request's tensors decode to is thus at most
   --max_request_bytes values (8 bytes each for int64 and double, 16 for complex128). REST JSON cannot fill in (the
   shape is the nested lists' own, each value present); the one compact declaration on both APIs is
   Classify/Regress tf.Examples with a context, which the graph gets copied into every example.
2. Rows per graph run (`slice_rows`, `run_in_slices`). A legal request can still hold tens of thousands of
   rows, and a graph's activations are often tens of times its input (a conv layer's feature maps). Unbatched,
   a request whose inputs exceed MAX_RUN_INPUT_BYTES runs in slices of rows along the 0th dimension, outputs
   concatenated, as TF Serving's batching runs a large task in pieces of max_execution_batch_size rows
   (enable_large_batch_splitting), so a run's activations grow with the slice, not with the request. Like TF
   Serving's batching, this takes rows to be independent; it slices only where every fed and fetched tensor has
   a 0th dimension of unknown size (`batch_major`), and a slice whose outputs do not have its rows gives way to
   one run. With --enable_batching, the batching parameters' max_batch_size bounds each run's rows instead.
"""
from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import input_pb2

from tfzoo.serving.batching import RunFunction
from tfzoo.serving.protocol.status import ServingError

# Bytes of input per unbatched graph run. A bytes bound, because no one row count fits rows of every size: at
# 4 MiB, a million rows of one float still run as one graph run, and 224x224x3 float images 6 at a time. A model
# whose activations are 30x its input (mnist_cnn's first conv layer is 28x) then runs in about 120 MB. TF Serving
# bounds rows per run only through batching (max_batch_size), so this is a constant, not a flag.
MAX_RUN_INPUT_BYTES = 4 * 2**20


def min_request_bytes(proto: tensor_pb2.TensorProto) -> int:
    """The fewest bytes a request needs to carry `proto`'s values without fill-in: one per value, plus the bytes
    fill-in would repeat for a string tensor (the strings it does carry are already within the request)."""
    count = _count(proto)
    missing = count - len(proto.string_val)
    if proto.dtype == types_pb2.DT_STRING and proto.string_val and missing > 0:
        return count + missing * len(proto.string_val[-1])
    return count


def check_tensors(tensors: Mapping[str, tensor_pb2.TensorProto], max_request_bytes: int) -> None:
    """INVALID_ARGUMENT, before any array is made, when the tensors of one request together declare more than a
    request of `max_request_bytes` could carry (`min_request_bytes`); it names the largest of them."""
    sizes = {name: min_request_bytes(proto) for name, proto in tensors.items()}
    total = sum(sizes.values())
    if total <= max_request_bytes:
        return
    name = max(sizes, key=sizes.__getitem__)
    together = f", and the request's {len(sizes)} inputs need {total} bytes together" if len(sizes) > 1 else ""
    raise _too_large(f"{_declared(name, tensors[name])}{together}", max_request_bytes,
                     "at least a byte per value; the rest would be TensorFlow's fill-in", "values")


def check_examples(model_input: input_pb2.Input, max_request_bytes: int) -> None:
    """INVALID_ARGUMENT when Classify/Regress examples with a context would be more than a request of
    `max_request_bytes` could carry once the context is copied into each (as the graph gets them)."""
    if model_input.WhichOneof("kind") != "example_list_with_context":
        return  # a plain example list is carried whole, within the limit
    count = len(model_input.example_list_with_context.examples)
    context = model_input.example_list_with_context.context.ByteSize()
    if count * (1 + context) > max_request_bytes:
        raise _too_large(f"{count} tf.Examples with a context of {context} bytes: {count * context} bytes once the "
                         "context is copied into every example", max_request_bytes,
                         "were they sent without a context", "examples")


def batch_major(shapes: Iterable[tf.TensorShape]) -> bool:
    """Whether every shape has a 0th dimension of unknown size (a batch dimension), so its rows can be run apart."""
    return all(shape.rank is not None and shape.rank > 0 and shape[0] is None for shape in shapes)


def slice_rows(feeds: Mapping[str, np.ndarray]) -> int | None:
    """The rows per graph run for these feeds (MAX_RUN_INPUT_BYTES of them, at least one), or None when they
    run whole: within the bound, or without one 0th dimension that every feed shares."""
    batches = {value.shape[0] if value.ndim else None for value in feeds.values()}
    if len(batches) != 1 or None in batches:
        return None
    (batch,) = batches
    total = sum(_nbytes(value) for value in feeds.values())
    rows = max(1, MAX_RUN_INPUT_BYTES * batch // max(total, 1))
    return rows if batch > rows else None


def run_in_slices(run: RunFunction, feeds: Mapping[str, np.ndarray], fetches: Sequence[str], timeout_ms: int,
                  rows: int) -> list[np.ndarray]:
    """`run` on `rows` rows of the feeds at a time, the outputs concatenated along the 0th dimension.

    When a slice's outputs do not have one row per input row (tf.where's indices, a fixed-size summary), rows
    do not map one to one and the feeds run whole instead, for the graph's own answer. With `timeout_ms` > 0
    the slices share it: DEADLINE_EXCEEDED once it has passed with slices left.
    """
    batch = len(next(iter(feeds.values())))
    deadline = time.monotonic() + timeout_ms / 1000
    pieces = []
    for start in range(0, batch, rows):
        if pieces and timeout_ms > 0 and time.monotonic() > deadline:
            raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED,
                               f"Timed out after {timeout_ms} ms with {start} of {batch} rows run "
                               f"({rows} rows per graph run)")
        outputs = run({name: value[start:start + rows] for name, value in feeds.items()}, fetches, timeout_ms)
        if any(np.ndim(output) == 0 or len(output) != min(rows, batch - start) for output in outputs):
            return run(feeds, fetches, timeout_ms)
        pieces.append(outputs)
    return [np.concatenate(column) for column in zip(*pieces)]


def _nbytes(value: np.ndarray) -> int:
    """An input's bytes: a string tensor's (an object array of bytes) are its strings', not its pointers'."""
    return sum(map(len, value.flat)) if value.dtype == object else value.nbytes


def _count(proto: tensor_pb2.TensorProto) -> int:
    return math.prod(max(dim.size, 0) for dim in proto.tensor_shape.dim)  # negative sizes: to_array's parse error


def _declared(name: str, proto: tensor_pb2.TensorProto) -> str:
    """'input NAME declares shape [...] of DT_...: N values (B bytes)', for an error message."""
    shape = ",".join(str(dim.size) for dim in proto.tensor_shape.dim)
    count = _count(proto)
    try:
        dtype = tf.dtypes.as_dtype(proto.dtype)
    except TypeError:  # not a TensorFlow dtype (to_array would refuse it): its values are counted all the same
        return f"input '{name}' declares shape [{shape}] of dtype {proto.dtype}: {count} values"
    if dtype == tf.string:
        size = f"{min_request_bytes(proto) - count} bytes of them filled in"
    else:
        size = f"{count * dtype.size} bytes"
    return f"input '{name}' declares shape [{shape}] of {types_pb2.DataType.Name(proto.dtype)}: {count} values ({size})"


def _too_large(declared: str, max_request_bytes: int, how: str, what: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, (
        f"{declared}: more than a request within --max_request_bytes={max_request_bytes} can carry ({how}). "
        f"Send fewer {what} per request, or raise --max_request_bytes."))
