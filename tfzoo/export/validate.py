"""`validate`: would the stock TF Serving binary load this version folder and answer like the trained model?"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow.python.framework import op_def_registry
from tensorflow_serving.apis import predict_pb2

from tfzoo.export.saved_model import METADATA_FILE, read_meta_graph
from tfzoo.export.signatures import IMAGE_BYTES_INPUT, PRIMARY_OUTPUT, decode_image
from tfzoo.export.warmup import read_warmup
from tfzoo.registry import get_spec
from tfzoo.serving.layout import ASSETS_EXTRA, MAX_WARMUP_RECORDS, WARMUP_FILE
from tfzoo.serving.protocol.status import ServingError
from tfzoo.serving.protocol.tensor_proto import to_array, to_proto
from tfzoo.serving.servable import PREDICT_METHOD, Servable, load_servable
from tfzoo.text.generation import TEXT, generation_functions

MAX_ABS_DIFFERENCE = 1e-5


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class ValidationReport:
    """The checks run on one version folder; `ok` when every one passed."""

    version_dir: Path
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> bool:
        self.checks.append(Check(name, ok, detail))
        return ok

    def render(self) -> str:
        lines = [f"validate {self.version_dir}"]
        lines += [f"  {'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}" for c in self.checks]
        lines.append("  => valid for TF Serving" if self.ok else "  => NOT valid: fix the FAIL lines above")
        return "\n".join(lines)


def graph_ops(meta_graph) -> set[str]:
    """Every op type in the graph and in its function library."""
    ops = {node.op for node in meta_graph.graph_def.node}
    for function in meta_graph.graph_def.library.function:
        ops.update(node.op for node in function.node_def)
    return ops


def non_core_ops(ops: Iterable[str]) -> list[str]:
    """Ops this TensorFlow does not register itself: custom or add-on ops the stock server may lack."""
    return sorted(op for op in ops if op_def_registry.get(op) is None)


def validate(version_dir: str | Path) -> ValidationReport:
    """Check layout, tag, signatures, ops, warm-up replay and parity with the trained Keras model."""
    version_dir = Path(version_dir)
    report = ValidationReport(version_dir)
    warmup_path = version_dir / ASSETS_EXTRA / WARMUP_FILE
    metadata_path = version_dir / ASSETS_EXTRA / METADATA_FILE
    required = [version_dir / "saved_model.pb", version_dir / "variables" / "variables.index", warmup_path,
                metadata_path]
    missing = [str(path.relative_to(version_dir)) for path in required if not path.is_file()]
    layout_ok = version_dir.name.isdigit() and not missing
    detail = (f"version {version_dir.name} holds saved_model.pb, variables/, {ASSETS_EXTRA}/" if layout_ok else
              f"{version_dir} is not a folder; pass a version folder such as MODEL_BASE/NAME/1"
              if not version_dir.is_dir() else
              f"version folder must be an integer (got {version_dir.name!r}) holding {', '.join(missing) or 'it all'}")
    if not report.add("layout", layout_ok, detail):
        return report

    try:
        meta_graph = read_meta_graph(version_dir)
    except DecodeError as error:
        report.add("saved_model.pb", False, f"{version_dir / 'saved_model.pb'} is truncated or corrupt ({error}); "
                                            "export the run again")
        return report
    except ValueError as error:
        report.add("tag serve", False, str(error))
        return report
    report.add("tag serve", True, "MetaGraph tagged 'serve'")
    signatures = {name: sig for name, sig in meta_graph.signature_def.items() if not name.startswith("__")}
    wrong_method = sorted(name for name, sig in signatures.items() if sig.method_name != PREDICT_METHOD)
    has_default = "serving_default" in signatures
    report.add("signatures", has_default and not wrong_method,
               f"{', '.join(sorted(signatures))} ({PREDICT_METHOD})" if has_default and not wrong_method else
               f"need serving_default and method {PREDICT_METHOD}; have {sorted(signatures)}, "
               f"wrong method: {wrong_method}")
    ops = graph_ops(meta_graph)
    unknown = non_core_ops(ops)
    report.add("core ops only", not unknown, f"{len(ops)} op types, all core TensorFlow" if not unknown else
               f"not core TensorFlow (the stock server may not have them): {', '.join(unknown)}")

    try:
        servable = load_servable(version_dir, version=int(version_dir.name), warm_up=False)
    except Exception as error:  # any load failure is the answer, whatever its type
        report.add("load", False, f"TF Serving's way of loading (session, restore, init ops) failed: {error}")
        return report
    report.add("load", True, "loaded as TF Serving loads it: serve MetaGraph in a session, variables restored")

    try:
        requests = read_warmup(warmup_path)
    except (tf.errors.OpError, DecodeError, ValueError) as error:
        report.add("warm-up replay", False, f"{warmup_path} is truncated or corrupt ({type(error).__name__}: not "
                                            "TFRecords of PredictionLog); export the run again")
        return report
    outputs = []
    try:
        for signature, inputs in requests:
            outputs.append(served_predict(servable, signature, inputs))
    except ServingError as error:  # a failing signature fails the check, as it fails TF Serving's load
        report.add("warm-up replay", False, f"{signature}: {error.code.name}: {error.message}")
        return report
    bad = [i for i, (request, output) in enumerate(zip(requests, outputs))
           if set(output) != set(signatures[request[0]].outputs)
           or any(len(v) != len(next(iter(request[1].values()))) for v in output.values())]
    report.add("warm-up replay", 0 < len(requests) <= MAX_WARMUP_RECORDS and not bad,
               f"{len(requests)} requests answered with the signature's outputs" if not bad else
               f"records {bad} answered with wrong output names or batch sizes")

    try:
        metadata = read_metadata(metadata_path)
    except ValueError as error:
        report.add(METADATA_FILE, False, str(error))
        return report
    model_file = Path(metadata["run_dir"]) / "model.keras"
    if not model_file.is_file():
        report.add("matches Keras", False, f"{model_file} is gone, so the export cannot be compared with it")
        return report
    try:
        keras_model = keras.saving.load_model(model_file)
    except Exception as error:  # a damaged model file fails in many ways; any of them ends the comparison
        report.add("matches Keras", False, f"{model_file} cannot be loaded ({type(error).__name__}), so the export "
                                           "cannot be compared with it")
        return report
    if get_spec(metadata["model"]).task == "language_model":
        return compare_generated_text(report, keras_model, requests, outputs)
    primary = PRIMARY_OUTPUT[get_spec(metadata["model"]).task]
    difference = max(float(np.max(np.abs(keras_predict(keras_model, inputs) - output[primary])))
                     for (_, inputs), output in zip(requests, outputs))
    report.add("matches Keras", difference <= MAX_ABS_DIFFERENCE,
               f"max |served - keras| = {difference:.2e} (limit {MAX_ABS_DIFFERENCE:.0e})")
    return report


def read_metadata(path: Path) -> dict[str, Any]:
    """An export's tfzoo.json (the model and run dir it came from); ValueError naming the file when it is damaged."""
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
        get_spec(metadata["model"])
        Path(metadata["run_dir"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is not the JSON object tfzoo export writes ({type(error).__name__}: {error}); "
                         "export the run again") from None
    return metadata


def compare_generated_text(
    report: ValidationReport, model: keras.Model, requests: list[tuple[str, dict[str, np.ndarray]]],
    outputs: list[dict[str, np.ndarray]],
) -> ValidationReport:
    """The served text must equal the trained model's in-process generation, request by request (greedy and
    seeded sampling alike: same prompts, controls and seeds give the same text)."""
    functions = generation_functions(model)
    differing = [index for index, ((signature, inputs), output) in enumerate(zip(requests, outputs))
                 if not np.array_equal(functions[signature](**inputs)[TEXT].numpy(), output[TEXT])]
    report.add("matches Keras", not differing,
               f"served text equals in-process generation for all {len(requests)} requests" if not differing else
               f"served text differs from in-process generation for warm-up records {differing}")
    return report


def served_predict(servable: Servable, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One Predict through the servable, as TF Serving answers it (typed-field protos), back as arrays."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = servable.name
    request.model_spec.signature_name = signature
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(to_proto(value))
    response = servable.predict(request)
    return {name: to_array(proto, name) for name, proto in response.outputs.items()}


def keras_predict(model: keras.Model, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """The trained model's predictions for one warm-up request's inputs."""
    if IMAGE_BYTES_INPUT in inputs:
        height, width = model.input_shape[1:]
        images = np.stack([decode_image(data, height, width).numpy() for data in inputs[IMAGE_BYTES_INPUT]])
        return model.predict(images, verbose=0)
    (batch,) = inputs.values()
    return model.predict(batch, verbose=0)
