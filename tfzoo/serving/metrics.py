"""Prometheus metrics as TF Serving exposes them with `--monitoring_config_file` (prometheus_config { enable: true }).

Written here, not with prometheus_client (checked with 0.26.0): its text format appends `_total` to counters, so a
custom collector's CounterMetricFamily(":tensorflow:serving:request_count") becomes the series
`:tensorflow:serving:request_count_total`, which dashboards built on TF Serving do not query, and samples that
keep TF's name get a `# TYPE ..._total counter` line naming another metric, so scrapers read them untyped. (Its
parser reads TF's `request_count` counter as samples `request_count_total` too: the tests compare page text.)

A `MetricRegistry` holds one server's metrics (servers and tests in one process never share counts), of
TensorFlow's kinds (tensorflow/core/lib/monitoring), and renders them as TF Serving's PrometheusExporter::
GeneratePage (tensorflow_serving/util/prometheus_exporter.cc) does: sorted by TensorFlow name ("/" and any
character but [a-zA-Z0-9_] become ":"), a `# TYPE` line each, even with no label set yet, and no `# HELP`; label
sets in the order of their values; `name{} 3` without labels; only `\\` and `"` escaped in label values; doubles
"%.6g" (absl::StrCat), integers in full; a histogram's `le` values are TensorFlow's bucket limits, which are
exclusive: a sample equal to a limit counts in the next bucket (Prometheus' `le` is "less or equal").
`ServingMetrics` has the metrics TF Serving (and TensorFlow's SavedModel loader) records, under their names,
labels and buckets, and one method per place the server records something.
"""
from __future__ import annotations

import bisect
import itertools
import operator
import re
import sys
import threading
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, TypeVar

import grpc

from tfzoo.serving.batching import BatchStatistics

PROMETHEUS_PATH = "/monitoring/prometheus/metrics"  # PrometheusExporter::kPrometheusPath, the default path
CONTENT_TYPE = "text/plain"  # what http_server.cc's ProcessPrometheusRequest answers with
DBL_MAX = sys.float_info.max  # every Sampler's last bucket limit, written "+Inf"
VERSION_STATES = ("UNKNOWN", "START", "LOADING", "AVAILABLE", "UNLOADING", "END")  # ModelVersionStatus.State

_MetricT = TypeVar("_MetricT", bound="_Metric")


def exponential_buckets(scale: float, growth_factor: float, bucket_count: int) -> tuple[float, ...]:
    """Buckets::Exponential's finite limits, each the previous one times `growth_factor` as TensorFlow computes
    them (scale * growth**i can differ in the last bit, moving a sample that lies on a limit)."""
    return tuple(itertools.accumulate([growth_factor] * (bucket_count - 1), operator.mul, initial=float(scale)))


def format_double(value: float) -> str:
    """A double as absl::StrCat writes it: six significant digits, printf's "%g"."""
    return f"{value:.6g}"


def _sanitized(name: str, invalid: str, replacement: str) -> str:
    """GetPrometheusMetricName and SanatizeLabelName: invalid characters replaced, "_" before a leading digit."""
    name = re.sub(invalid, replacement, name)
    return "_" + name if name[:1].isdigit() else name


class _Metric:
    """A TensorFlow metric: one cell per label-value tuple, under a lock (requests record while a page is read)."""

    kind: ClassVar[str]

    def __init__(self, name: str, *label_names: str):
        self.name = name
        self.label_names = label_names
        self._lock = threading.Lock()
        self._cells: dict[tuple[str, ...], Any] = {}  # immutable values, replaced on each record

    def _key(self, label_values: Sequence[str]) -> tuple[str, ...]:
        if len(label_values) != len(self.label_names):
            raise ValueError(f"{self.name} takes the label values {self.label_names}, not {tuple(label_values)}")
        return tuple(label_values)

    def render(self) -> list[str]:
        """The metric's lines, as the exporter's SerializeMetric writes them."""
        name = _sanitized(self.name, r"[^a-zA-Z0-9_]", ":")
        label_names = [_sanitized(label, r"[^a-zA-Z0-9]", "_") for label in self.label_names]
        with self._lock:
            cells = sorted(self._cells.items())
        lines = [f"# TYPE {name} {self.kind}"]
        for label_values, cell in cells:
            values = [value.replace("\\", "\\\\").replace('"', '\\"') for value in label_values]  # only \ and "
            labels = [f'{label}="{value}"' for label, value in zip(label_names, values, strict=True)]
            lines += self._sample_lines(name, labels, cell)
        return lines

    def _sample_lines(self, name: str, labels: list[str], value: int) -> list[str]:
        return [f"{name}{{{','.join(labels)}}} {value:d}"]  # SerializeScalar


class Counter(_Metric):
    """monitoring::Counter: a cumulative int64 per label set."""

    kind = "counter"

    def increment(self, label_values: Sequence[str] = (), by: int = 1) -> None:
        """Adds `by` to the label set's count; by=0 still creates the cell (the page shows a 0), as GetCell does."""
        if not isinstance(by, int) or by < 0:  # CounterCell::IncrementBy: "Must not decrement cumulative metrics."
            raise ValueError(f"a counter grows by an int >= 0, not {by!r}")
        key = self._key(label_values)
        with self._lock:
            self._cells[key] = self._cells.get(key, 0) + by


class Gauge(_Metric):
    """monitoring::Gauge<int64>: the last value set per label set. Label sets can be removed (tfzoo's addition,
    for a model version that went away; TensorFlow's gauges keep every cell)."""

    kind = "gauge"

    def set(self, label_values: Sequence[str], value: int, replacing: Iterable[Sequence[str]] = ()) -> None:
        """Sets the label set's value, removing the label sets `replacing` in the same step (no page shows both)."""
        if not isinstance(value, int):  # the exporter writes int64 values
            raise TypeError(f"a gauge holds an int, not {value!r}")
        key, old = self._key(label_values), [self._key(labels) for labels in replacing]
        with self._lock:
            for labels in old:
                self._cells.pop(labels, None)
            self._cells[key] = value

    def remove(self, *label_sets: Sequence[str]) -> None:
        """Drops the label sets, so the page no longer lists them."""
        keys = [self._key(labels) for labels in label_sets]
        with self._lock:
            for key in keys:
                self._cells.pop(key, None)


class Sampler(_Metric):
    """monitoring::Sampler: a histogram per label set over `limits` and a last limit, DBL_MAX. A sample goes to
    the first bucket whose limit is greater than it (Histogram::Add's std::upper_bound); one >= DBL_MAX or NaN,
    which TensorFlow would count past its last bucket, to the last bucket."""

    kind = "histogram"

    def __init__(self, name: str, limits: Sequence[float], *label_names: str):
        super().__init__(name, *label_names)
        self.limits = (*map(float, limits), DBL_MAX)
        self._le = [f'le="{format_double(limit)}"' for limit in self.limits[:-1]] + ['le="+Inf"']

    def add(self, label_values: Sequence[str], sample: float) -> None:
        """One sample in the label set's histogram."""
        key, sample = self._key(label_values), float(sample)
        index = min(bisect.bisect_right(self.limits, sample), len(self.limits) - 1)
        with self._lock:
            counts, total = self._cells.get(key, ((0,) * len(self.limits), 0.0))
            self._cells[key] = (counts[:index] + (counts[index] + 1,) + counts[index + 1:], total + sample)

    def _sample_lines(self, name: str, labels: list[str], cell: tuple[tuple[int, ...], float]) -> list[str]:
        counts, total = cell
        cumulative = list(itertools.accumulate(counts))  # SerializeHistogram writes cumulative bucket counts
        lines = [f"{name}_bucket{{{','.join([*labels, le])}}} {count}"
                 for le, count in zip(self._le, cumulative, strict=True)]
        labels_text = ",".join(labels)
        return [*lines, f"{name}_sum{{{labels_text}}} {format_double(total)}",
                f"{name}_count{{{labels_text}}} {cumulative[-1]}"]


class MetricRegistry:
    """The metrics of one server: TensorFlow's CollectionRegistry, but not process-global."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}  # no lock: metrics are registered before the server serves a page

    def register(self, metric: _MetricT) -> _MetricT:
        """Adds a metric and returns it; a second metric of the same name is refused, as TensorFlow refuses it."""
        if metric.name in self._metrics:
            raise ValueError(f"Another metric with the same name already exists: {metric.name}")
        self._metrics[metric.name] = metric
        return metric

    def render(self) -> str:
        """The Prometheus page, as PrometheusExporter::GeneratePage writes it (a std::map keyed by TensorFlow name)."""
        return "\n".join(line for _, metric in sorted(self._metrics.items()) for line in metric.render()) + "\n"


# Bucket limits, with the file they come from.
LATENCY_BUCKETS = exponential_buckets(10, 1.8, 33)  # util.cc, saved_model_warmup_util.cc, TF loader.cc: ~20 min
EXAMPLE_COUNT_BUCKETS = exponential_buckets(1, 2, 15)  # util.cc: [1, 2, 4, ..., 16 * 1024, DBL_MAX]
QUEUING_LATENCY_BUCKETS = exponential_buckets(100, 1.2, 52)  # batching_session.cc: ~1 second
BATCH_SIZE_BUCKETS = exponential_buckets(1, 2, 14)  # batching_util.h: [1*2^0, ..., 1*2^13, DBL_MAX]


def _microseconds(seconds: float) -> int:
    """TF Serving measures with EnvTime::NowMicros differences: whole microseconds, never negative (clock skew)."""
    return max(0, round(seconds * 1_000_000))


class ServingMetrics(BatchStatistics):
    """The metrics tfzoo's server records; also the batching.BatchStatistics a BatchScheduler reports to."""

    def __init__(self, registry: MetricRegistry):
        self.registry = registry
        add, serving, batching = registry.register, "/tensorflow/serving", "/tensorflow/serving/batching_session"
        # tensorflow_serving/servables/tensorflow/util.cc
        self.request_count = add(Counter(f"{serving}/request_count", "model_name", "status"))
        self.request_latency = add(Sampler(f"{serving}/request_latency", LATENCY_BUCKETS,
                                           "model_name", "API", "entrypoint"))
        self.runtime_latency = add(Sampler(f"{serving}/runtime_latency", LATENCY_BUCKETS,
                                           "model_name", "API", "runtime"))
        self.example_counts = add(Sampler(f"{serving}/request_example_counts", EXAMPLE_COUNT_BUCKETS, "model"))
        self.example_count_total = add(Counter(f"{serving}/request_example_count_total", "model"))
        # tensorflow_serving/batching/batching_session.cc, and batching_util.h for BatchingSessionTask (whose
        # Name() is "batching_session")
        self.queuing_latency = add(Sampler(f"{batching}/queuing_latency", QUEUING_LATENCY_BUCKETS, "thread_pool_name"))
        self.wrapped_run_count = add(Counter(f"{batching}/wrapped_run_count"))
        self.padding_size = add(Sampler(f"{batching}/padding_size", BATCH_SIZE_BUCKETS, "execution_batch_size"))
        self.input_batch_size = add(Sampler(f"{batching}/input_batch_size", BATCH_SIZE_BUCKETS))
        self.processed_batch_size = add(Sampler(f"{batching}/processed_batch_size", BATCH_SIZE_BUCKETS))
        # tensorflow_serving/servables/tensorflow/saved_model_warmup_util.cc
        self.warmup_latency = add(Sampler(f"{serving}/model_warmup_latency", LATENCY_BUCKETS, "model_path", "status"))
        self.warmup_records_read = add(Counter(f"{serving}/model_warmup_records_read", "model_path", "status"))
        # tensorflow/cc/saved_model/loader.cc
        self.load_attempt_count = add(Counter("/tensorflow/cc/saved_model/load_attempt_count", "model_path", "status"))
        self.load_latency = add(Counter("/tensorflow/cc/saved_model/load_latency", "model_path"))
        # tfzoo's own: TF Serving has no metric for a version's state
        self.model_version_state = add(Gauge("/tfzoo/serving/model_version_state", "model_name", "version", "state"))

    def record_request(self, model_name: str, api: str, entrypoint: str, code: grpc.StatusCode,
                       latency_s: float) -> None:
        """request_count (status: the code's name, as error::Code_Name prints it), and request_latency when OK
        (http_server.cc, prediction_service_impl.cc). TF Serving records gRPC's Predict, Classify and Regress only
        (api "Predict", ...), and every REST request (api the URL's verb, "" for a GET; model_name "" if none)."""
        self.request_count.increment((model_name, code.name))
        if code == grpc.StatusCode.OK:
            self.request_latency.add((model_name, api, entrypoint), _microseconds(latency_s))

    def record_runtime(self, model_name: str, api: str, latency_s: float, runtime: str = "TF1") -> None:
        """runtime_latency: a Predict/Classify/Regress graph run that succeeded (predict_util.cc, classifier.cc,
        regressor.cc write runtime "TF1" for a Session; MultiInference records none)."""
        self.runtime_latency.add((model_name, api, runtime), _microseconds(latency_s))

    def record_examples(self, model_name: str, count: int) -> None:
        """request_example_counts and request_example_count_total: the tf.Examples of a request's Input. TF
        Serving records them for MultiInference only (multi_inference.cc, after its graph run succeeded)."""
        self.example_counts.add((model_name,), count)
        self.example_count_total.increment((model_name,), by=count)

    def record_input_batch_size(self, size: int) -> None:
        """input_batch_size: a request's 0th dimension, once per input tensor (BatchingSession::ComputeInputSize)."""
        self.input_batch_size.add((), size)

    def record_queuing_latency(self, thread_pool_name: str, seconds: float) -> None:
        """queuing_latency: a task's wait in its queue, per task of a batch (ProcessBatch). TF Serving's model
        server labels it thread_pool_name="" (bundle_factory_util.cc's CreateBatchingSession call)."""
        self.queuing_latency.add((thread_pool_name,), _microseconds(seconds))

    def record_batch(self, execution_batch_size: int, padding_size: int) -> None:
        """padding_size (labelled with the padded size) and processed_batch_size of a batch (MergeInputTensors)."""
        self.padding_size.add((str(execution_batch_size),), padding_size)
        self.processed_batch_size.add((), execution_batch_size)

    def record_wrapped_run(self) -> None:
        """wrapped_run_count: one graph run for a batch, whatever its outcome (BatchingSession::ProcessBatch)."""
        self.wrapped_run_count.increment()

    def record_load(self, model_path: str, succeeded: bool, latency_s: float) -> None:
        """A SavedModel load attempt (TensorFlow's LoadSavedModel): load_attempt_count, status "success" or "fail",
        and load_latency, a counter of microseconds, for failed loads too (despite its description)."""
        self.load_attempt_count.increment((model_path, "success" if succeeded else "fail"))
        self.load_latency.increment((model_path,), by=_microseconds(latency_s))

    def record_warmup(self, model_path: str, latency_s: float, records: int,
                      code: grpc.StatusCode = grpc.StatusCode.OK, message: str = "") -> None:
        """model_warmup_latency and model_warmup_records_read, labelled with the status as absl::Status::ToString
        writes it ("OK", or "INVALID_ARGUMENT: message"). As RunSavedModelWarmupUntracked, the server records
        nothing without a warmup file, nor when a record fails to parse or run (it returns first)."""
        status = "OK" if code == grpc.StatusCode.OK else f"{code.name}: {message}"
        self.warmup_latency.add((model_path, status), _microseconds(latency_s))
        self.warmup_records_read.increment((model_path, status), by=records)

    def set_version_state(self, model_name: str, version: int, state: str) -> None:
        """model_version_state: 1 for (model, version, state), the version's other states' cells removed; `state`
        is a ModelVersionStatus.State name, as GetModelStatus prints it."""
        if state not in VERSION_STATES:
            raise ValueError(f"unknown model version state {state!r}; expected one of {VERSION_STATES}")
        cells = [(model_name, str(version), other) for other in VERSION_STATES]
        self.model_version_state.set((model_name, str(version), state), 1, replacing=cells)

    def remove_version(self, model_name: str, version: int) -> None:
        """Drops a version's model_version_state cell (a version the server no longer reports at all)."""
        self.model_version_state.remove(*[(model_name, str(version), state) for state in VERSION_STATES])
