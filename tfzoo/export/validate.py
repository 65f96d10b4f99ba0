"""`validate`: would the stock TF Serving binary load this version folder and answer like the trained model?

It needs the version folder alone (moved or copied, it validates the same): the trained model's answers are the
reference outputs the export recorded beside it, not a model reloaded from elsewhere or a registry.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow.python.framework import op_def_registry
from tensorflow_serving.apis import predict_pb2

from tfzoo.export.saved_model import METADATA_FILE, read_meta_graph
from tfzoo.export.warmup import REFERENCE_FILE, read_logs, read_warmup
from tfzoo.serving.layout import ASSETS_EXTRA, MAX_WARMUP_RECORDS, WARMUP_FILE
from tfzoo.serving.loader import load_servable, xla_parts
from tfzoo.serving.predict import run_predict
from tfzoo.serving.protocol.status import ServingError
from tfzoo.serving.protocol.tensor_proto import to_array, to_proto
from tfzoo.serving.servable import CLASSIFY_METHOD, PREDICT_METHOD, REGRESS_METHOD, Servable

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


METHODS = (PREDICT_METHOD, CLASSIFY_METHOD, REGRESS_METHOD)  # the signature methods TF Serving runs


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
                                            "export again")
        return report
    except ValueError as error:
        report.add("tag serve", False, str(error))
        return report
    report.add("tag serve", True, "MetaGraph tagged 'serve'")
    signatures = {name: sig for name, sig in meta_graph.signature_def.items() if not name.startswith("__")}
    # serving_default is a predict signature; others may also be TF Serving's classify and regress (tf.Example in).
    wrong_method = sorted(name for name, sig in signatures.items()
                          if sig.method_name not in ((PREDICT_METHOD,) if name == "serving_default" else METHODS))
    has_default = "serving_default" in signatures
    methods = ", ".join(f"{name} ({sig.method_name})" for name, sig in sorted(signatures.items()))
    report.add("signatures", has_default and not wrong_method,
               methods if has_default and not wrong_method else
               f"need serving_default of method {PREDICT_METHOD}, others of {', '.join(METHODS)}; have {methods}")
    try:  # checked after the warm-up replay, as before; read here for what it declares (an XLA export)
        metadata, metadata_error = read_metadata(metadata_path), None
    except ValueError as error:
        metadata, metadata_error = {}, str(error)
    declared_xla = metadata.get("serving_options", {}).get("xla") is True
    ops = graph_ops(meta_graph)
    unknown, xla = non_core_ops(ops), xla_parts(meta_graph)
    problems = ([f"not core TensorFlow (the stock server may not have them): {', '.join(unknown)}"] * bool(unknown)
                + [f"needs XLA (the stock server runs it only when started with --xla_cpu_compilation_enabled), "
                   f"which its {METADATA_FILE} does not declare: {', '.join(xla)}"] * bool(xla and not declared_xla))
    needs = (f"; XLA-compiled calls: {len(xla)}, as its {METADATA_FILE} declares: serve it with "
             "--xla_cpu_compilation_enabled=true (TF Serving and tfzoo serve)" if xla else ", none needing XLA")
    report.add("core ops only", not problems, f"{len(ops)} op types, all core TensorFlow{needs}"
               if not problems else "; ".join(problems))

    try:
        servable = load_servable(version_dir, version=int(version_dir.name), warm_up=False,
                                 xla_cpu_compilation_enabled=declared_xla)
    except Exception as error:  # any load failure is the answer, whatever its type
        report.add("load", False, f"TF Serving's way of loading (session, restore, init ops) failed: {error}")
        return report
    report.add("load", True, "loaded as TF Serving loads it: serve MetaGraph in a session, variables restored")

    try:
        requests = read_warmup(warmup_path)
    except (tf.errors.OpError, DecodeError, ValueError) as error:
        report.add("warm-up replay", False, damaged_log(warmup_path, error))
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

    if metadata_error:
        report.add(METADATA_FILE, False, metadata_error)
        return report
    replayed = list(zip(requests, outputs))

    def answer(signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The served answer to a request: the warm-up replay's when it was the same request (the export records
        the same requests in both files, and a run of the graph can take seconds), else a new Predict."""
        for (known_signature, known_inputs), output in replayed:
            if known_signature == signature and same_inputs(known_inputs, inputs):
                return output
        return served_predict(servable, signature, inputs)

    return compare_with_reference(report, answer, version_dir / ASSETS_EXTRA / REFERENCE_FILE)


def same_inputs(first: dict[str, np.ndarray], second: dict[str, np.ndarray]) -> bool:
    """Whether two requests' inputs are equal, name by name (dtype and values)."""
    return first.keys() == second.keys() and all(
        first[name].dtype == second[name].dtype and np.array_equal(first[name], second[name]) for name in first)


def read_metadata(path: Path) -> dict[str, Any]:
    """An export's tfzoo.json; ValueError naming the file when it is damaged."""
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
            raise ValueError("not an object with the model's name")
    except ValueError as error:
        raise ValueError(f"{path} is not the JSON object tfzoo export writes ({error}); export again") from None
    return metadata


def damaged_log(path: Path, error: Exception) -> str:
    """What to say of a prediction-log file that cannot be read."""
    return f"{path} is truncated or corrupt ({type(error).__name__}: not TFRecords of PredictionLog); export again"


def compare_with_reference(
    report: ValidationReport, answer: Callable[[str, dict[str, np.ndarray]], dict[str, np.ndarray]], path: Path,
) -> ValidationReport:
    """The served `answer` to each request recorded with the trained model's own outputs; every recorded output
    must be served alike: numbers within MAX_ABS_DIFFERENCE, strings (generated text) and integers exactly."""
    if not path.is_file():
        report.add("matches the trained model", False, f"{path} is missing, so there is nothing to compare the "
                                                       "served answers with; export again")
        return report
    try:
        records = read_logs(path)
    except (tf.errors.OpError, DecodeError, ValueError) as error:
        report.add("matches the trained model", False, damaged_log(path, error))
        return report
    difference, differing = 0.0, []
    for index, (signature, inputs, expected) in enumerate(records):
        try:
            served = answer(signature, inputs)
        except ServingError as error:
            differing.append(f"record {index} ({signature}): {error.code.name}: {error.message}")
            continue
        for name, value in expected.items():
            if name not in served or served[name].shape != value.shape:
                differing.append(f"record {index} output {name!r} is missing or of another shape")
            elif np.issubdtype(value.dtype, np.floating):
                difference = max(difference, float(np.max(np.abs(served[name] - value), initial=0.0)))
            elif not np.array_equal(served[name], value):
                differing.append(f"record {index} output {name!r} differs")
    if not records:
        differing.append("the file records no requests")
    if difference > MAX_ABS_DIFFERENCE:
        differing.append(f"served numbers differ from the trained model's by up to {difference:.2e}")
    closeness = f"max |served - trained| = {difference:.2e}, limit {MAX_ABS_DIFFERENCE:.0e}"
    report.add("matches the trained model", not differing,
               f"{len(records)} recorded requests answered as the trained model answered them in the exporting "
               f"process ({closeness})" if not differing else f"{'; '.join(differing)} ({closeness})")
    return report


def served_predict(servable: Servable, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One Predict through the servable, as TF Serving answers it (typed-field protos), back as arrays."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = servable.name
    request.model_spec.signature_name = signature
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(to_proto(value))
    response = run_predict(servable, request)
    return {name: to_array(proto, name) for name, proto in response.outputs.items()}


def main(argv: list[str] | None = None) -> int:
    """`python -m tfzoo.export.validate VERSION_DIR`: print the report; exit status 0 when valid, else 1.
    The exporter runs it in a fresh process."""
    (version_dir,) = sys.argv[1:] if argv is None else argv
    report = validate(version_dir)
    print(report.render())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
