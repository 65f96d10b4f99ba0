"""Loading a SavedModel version as TF Serving's saved_model_bundle_factory.cc and loader.cc load it: the `serve`
MetaGraph into a new session, variables restored, init ops run, then the warm-up replayed."""
from __future__ import annotations

import os
from pathlib import Path

import grpc
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2

from tfzoo.serving.batching import BatchScheduler
from tfzoo.serving.layout import SERVE_TAG
from tfzoo.serving.metrics import ServingMetrics
from tfzoo.serving.options import DEFAULT_MAX_REQUEST_BYTES
from tfzoo.serving.protocol.status import ServingError
from tfzoo.serving.servable import Servable
from tfzoo.serving.warmup import warm_up as replay_warmup


def load_servable(path: str | os.PathLike[str], name: str = "", version: int = 0, *,
                  warm_up: bool = True, intra_op_threads: int = 0, inter_op_threads: int = 0,
                  batching: BatchScheduler | None = None, metrics: ServingMetrics | None = None,
                  xla_cpu_compilation_enabled: bool = False,
                  max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> Servable:
    """Load the `serve` MetaGraph of the SavedModel at `path` into a new session, as TF Serving does.

    With `warm_up`, replays the version's warm-up requests before returning (a failing one fails the load).
    Thread counts of 0 let TensorFlow choose, as TF Serving's defaults do. With `batching`, graph runs are
    merged with other requests' by that (server-wide) scheduler, warm-up included. `metrics` records graph runs
    and the warm-up (TF Serving's runtime_latency, model_warmup_latency, ...). A graph that needs XLA
    (`xla_parts`) loads only with `xla_cpu_compilation_enabled` (--xla_cpu_compilation_enabled); without it,
    FAILED_PRECONDITION in one line naming the flag (TF Serving fails such a graph at its first compile).
    `max_request_bytes` bounds what each request, warm-up records included, may declare (`limits`).
    """
    path = Path(path)
    graph = tf.Graph()
    config = config_pb2.ConfigProto(intra_op_parallelism_threads=intra_op_threads,
                                    inter_op_parallelism_threads=inter_op_threads)
    session = tf.compat.v1.Session(graph=graph, config=config)
    try:
        with graph.as_default():
            meta_graph = tf.compat.v1.saved_model.loader.load(session, [SERVE_TAG], str(path))
        needs_xla = xla_parts(meta_graph)
        if needs_xla and not xla_cpu_compilation_enabled:
            raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"{path} needs XLA (XLA-compiled calls: {len(needs_xla)}) and XLA compilation is off: "
                               "start the server with --xla_cpu_compilation_enabled=true")
        servable = Servable(name, version, path, session, meta_graph, batching, metrics, max_request_bytes)
        if warm_up:
            replay_warmup(servable)
    except BaseException:
        session.close()
        raise
    return servable


def xla_parts(meta_graph: meta_graph_pb2.MetaGraphDef) -> list[str]:
    """What needs XLA: Xla* ops, and function calls marked to compile with XLA (jit_compile=True). The stock
    tensorflow_model_server compiles nothing unless started with --xla_cpu_compilation_enabled."""
    nodes = list(meta_graph.graph_def.node)
    for function in meta_graph.graph_def.library.function:
        nodes.extend(function.node_def)
    ops = {node.op for node in nodes if node.op.lstrip("_").startswith("Xla")}
    compiled = {f"{node.op} {node.name} (jit_compile)" for node in nodes
                if "_XlaMustCompile" in node.attr and node.attr["_XlaMustCompile"].b}
    return sorted(ops | compiled)
