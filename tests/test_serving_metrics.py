"""Prometheus metrics (`tfzoo.serving.metrics`), as TF Serving's PrometheusExporter writes them.

Cases marked with a TF Serving test name are ported from tensorflow_serving/util/prometheus_exporter_test.cc (its
expected strings, unchanged, compared as text: see the module docstring of tfzoo.serving.metrics for why not as
parsed families). Bucket limits and bucket assignment are checked against TensorFlow's own monitoring library
where it is installed, and against the limits TF Serving's comments state. The ServingMetrics cases check the
names, labels and units each recording method writes, as the TF Serving source files named in them record. The
metric checks read the page, as a scraper does.
"""
from __future__ import annotations

import inspect
import itertools
import sys
import threading
import uuid

import grpc
import numpy as np
import pytest

from tfzoo.serving.batching import BatchingOptions, BatchScheduler, BatchStatistics
from tfzoo.serving.metrics import (
    DBL_MAX,
    Counter,
    Gauge,
    MetricRegistry,
    Sampler,
    ServingMetrics,
    exponential_buckets,
    format_double,
)


def page(*lines: str) -> str:
    """An exposition page as GeneratePage joins it: lines joined by newlines, and a trailing newline."""
    return "\n".join(lines) + "\n"


def lines_of(registry: MetricRegistry) -> list[str]:
    return registry.render().split("\n")


def values_of(registry: MetricRegistry) -> dict[str, float]:
    """The page's samples, {series with its labels: value}, as the serving tests read them."""
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in lines_of(registry)
            if line and not line.startswith("#")}


def cumulative_buckets(registry: MetricRegistry, series: str) -> list[int]:
    """The values of `series`'s `_bucket` lines, in page order (cumulative counts, the last one le="+Inf")."""
    return [int(value) for key, value in values_of(registry).items() if key.startswith(f"{series}_bucket")]


@pytest.fixture
def registry() -> MetricRegistry:
    return MetricRegistry()


@pytest.fixture
def serving(registry: MetricRegistry) -> ServingMetrics:
    return ServingMetrics(registry)


# --- the exposition format: ported from prometheus_exporter_test.cc ---------------------------------------------------

def test_counter(registry: MetricRegistry) -> None:
    # PrometheusExporterTest.Counter
    counter = registry.register(Counter("/test/path/total", "name"))
    counter.increment(("abc",), by=2)
    assert registry.render() == page("# TYPE :test:path:total counter", ':test:path:total{name="abc"} 2')


def test_gauge(registry: MetricRegistry) -> None:
    # PrometheusExporterTest.Gauge
    gauge = registry.register(Gauge("/test/path/gague", "x", "y"))
    gauge.set(("abc", "def"), 5)
    assert registry.render() == page("# TYPE :test:path:gague gauge", ':test:path:gague{x="abc",y="def"} 5')


def test_histogram(registry: MetricRegistry) -> None:
    # PrometheusExporterTest.Histogram
    histogram = registry.register(Sampler("/test/path/histogram", exponential_buckets(1, 2, 10), "status"))
    histogram.add(("good",), 2)
    histogram.add(("good",), 20)
    histogram.add(("good",), 200)
    assert registry.render() == page(
        "# TYPE :test:path:histogram histogram",
        ':test:path:histogram_bucket{status="good",le="1"} 0',
        ':test:path:histogram_bucket{status="good",le="2"} 0',
        ':test:path:histogram_bucket{status="good",le="4"} 1',
        ':test:path:histogram_bucket{status="good",le="8"} 1',
        ':test:path:histogram_bucket{status="good",le="16"} 1',
        ':test:path:histogram_bucket{status="good",le="32"} 2',
        ':test:path:histogram_bucket{status="good",le="64"} 2',
        ':test:path:histogram_bucket{status="good",le="128"} 2',
        ':test:path:histogram_bucket{status="good",le="256"} 3',
        ':test:path:histogram_bucket{status="good",le="512"} 3',
        ':test:path:histogram_bucket{status="good",le="+Inf"} 3',
        ':test:path:histogram_sum{status="good"} 222',
        ':test:path:histogram_count{status="good"} 3')


def test_sanitize_label_value(registry: MetricRegistry) -> None:
    # PrometheusExporterTest.SanitizeLabelValue: the label value is "abc\" with the quotes
    counter = registry.register(Counter("/test/path/total", "name"))
    counter.increment(('"abc\\"',), by=2)
    assert registry.render() == page("# TYPE :test:path:total counter", ':test:path:total{name="\\"abc\\\\\\""} 2')


def test_sanitize_label_name(registry: MetricRegistry) -> None:
    # PrometheusExporterTest.SanitizeLabelName
    counter = registry.register(Counter("/test/path/total", "my-name+1"))
    counter.increment(("abc",), by=2)
    assert registry.render() == page("# TYPE :test:path:total counter", ':test:path:total{my_name_1="abc"} 2')


def test_sanitize_metric_name(registry: MetricRegistry) -> None:
    # PrometheusExporterTest.SanitizeMetricName
    counter = registry.register(Counter("0/path-total_count", "name"))
    counter.increment(("abc",), by=2)
    assert registry.render() == page("# TYPE _0:path:total_count counter", '_0:path:total_count{name="abc"} 2')


# --- the exposition format: what the exporter's code does beyond its tests -------------------------------------------

def test_label_name_with_leading_digit_and_newline_in_value_kept(registry: MetricRegistry) -> None:
    # SanatizeLabelName prefixes "_" to a leading digit; SanitizeLabelValue escapes only \ and ", not a newline
    registry.register(Counter("/t", "9lives")).increment(("a\nb",))
    assert registry.render() == page("# TYPE :t counter", ':t{_9lives="a', 'b"} 1')


def test_metrics_without_labels(registry: MetricRegistry) -> None:
    # SerializeScalar writes "{}" for no labels; SerializeHistogram writes the bucket lines without a comma
    registry.register(Counter("/c")).increment(by=3)
    registry.register(Gauge("/g")).set((), -7)
    registry.register(Sampler("/h", [10, 20])).add((), 15.25)
    assert registry.render() == page(
        "# TYPE :c counter", ":c{} 3",
        "# TYPE :g gauge", ":g{} -7",
        "# TYPE :h histogram", ':h_bucket{le="10"} 0', ':h_bucket{le="20"} 1', ':h_bucket{le="+Inf"} 1',
        ":h_sum{} 15.25", ":h_count{} 1")


def test_metric_without_cells_has_its_type_line_only(registry: MetricRegistry) -> None:
    # CollectMetrics makes a point set for every registered metric, cells or not
    registry.register(Sampler("/h", [1], "x"))
    registry.register(Counter("/c", "x"))
    assert registry.render() == page("# TYPE :c counter", "# TYPE :h histogram")


def test_empty_registry() -> None:
    assert MetricRegistry().render() == "\n"


def test_sorted_by_tensorflow_name_then_label_values(registry: MetricRegistry) -> None:
    # GeneratePage walks a std::map keyed by TensorFlow name: "/a.c" < "/a/b", though ":a:b" < ":a:c"
    first = registry.register(Counter("/a/b", "x", "y"))
    registry.register(Counter("/a.c")).increment()
    for labels in [("b", "x"), ("a", "z"), ("a", "y")]:  # each metric's cells: a std::map keyed by label values
        first.increment(labels)
    assert registry.render() == page(
        "# TYPE :a:c counter", ":a:c{} 1",
        "# TYPE :a:b counter", ':a:b{x="a",y="y"} 1', ':a:b{x="a",y="z"} 1', ':a:b{x="b",y="x"} 1')


@pytest.mark.parametrize(("value", "text"), [
    # absl::StrCat(double): SixDigitsToBuffer in absl/strings/numbers.cc, "%.6g"
    (222.0, "222"), (0.5, "0.5"), (32.4, "32.4"), (58.32, "58.32"), (104.976, "104.976"),
    (188.9568, "188.957"),  # 10 * 1.8**5: six significant digits, rounded
    (612.220032, "612.22"),  # trailing zeros dropped
    (1101.9960576, "1102"),  # rounds up to "1102.00", then the zeros and the point go
    (123456.0, "123456"), (999999.4, "999999"), (999999.5, "1e+06"),  # seven digits: exponent form
    (1e6, "1e+06"), (1234567.0, "1.23457e+06"), (1474755971.2960682, "1.47476e+09"), (1e100, "1e+100"),
    (0.0001, "0.0001"), (0.00001, "1e-05"), (0.000123456789, "0.000123457"),
    (0.0, "0"), (-0.0, "-0"), (-2.5, "-2.5"), (float("inf"), "inf"), (float("-inf"), "-inf"), (float("nan"), "nan"),
])
def test_format_double(value: float, text: str) -> None:
    assert format_double(value) == text


# --- buckets ----------------------------------------------------------------------------------------------------------

def test_exponential_buckets_as_tf_serving_comments_state() -> None:
    # util.cc: "so the limits are [1, 2, 4, 8, ..., 16 * 1024, DBL_MAX]" (a Sampler adds the DBL_MAX)
    assert exponential_buckets(1, 2, 15) == (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
                                             2048.0, 4096.0, 8192.0, 16384.0)
    # batching_util.h: "Exponential buckets [1*2^0, ..., 1*2^13, DBL_MAX]"
    assert exponential_buckets(1, 2, 14) == (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
                                             2048.0, 4096.0, 8192.0)
    assert Sampler("/h", exponential_buckets(1, 2, 14)).limits[-1] == DBL_MAX == 1.7976931348623157e308


def test_latency_bucket_limits_on_the_page(registry: MetricRegistry, serving: ServingMetrics) -> None:
    # Exponential(10, 1.8, 33) (util.cc); the exact values are 10 * 1.8**i: 188.9568, 340.12224, 612.220032,
    # 1101.9960576, ..., 1474755971.296 for i = 32, then DBL_MAX, written "+Inf"
    serving.record_request("m", "Predict", "GRPC", grpc.StatusCode.OK, 0.0)
    limits = [line.split('le="')[1].split('"')[0] for line in lines_of(registry) if "request_latency_bucket" in line]
    assert len(limits) == 34
    assert limits[:9] == ["10", "18", "32.4", "58.32", "104.976", "188.957", "340.122", "612.22", "1102"]
    assert limits[-2:] == ["1.47476e+09", "+Inf"]


def test_queuing_latency_bucket_limits_on_the_page(registry: MetricRegistry, serving: ServingMetrics) -> None:
    # Exponential(100, 1.2, 52) (batching_session.cc, "~1 second"): the last finite limit is 100 * 1.2**51,
    # exactly 1092052.578...
    serving.record_queuing_latency("", 0.0)
    limits = [line.split('le="')[1].split('"')[0] for line in lines_of(registry) if "queuing_latency_bucket" in line]
    assert limits[:4] == ["100", "120", "144", "172.8"]
    assert limits[-2:] == ["1.09205e+06", "+Inf"]
    assert len(limits) == 53


def test_bucket_assignment(registry: MetricRegistry) -> None:
    # Histogram::Add uses std::upper_bound: bucket i holds [limit[i-1], limit[i]), so a sample on a limit goes up
    sampler = registry.register(Sampler("/h", exponential_buckets(1, 2, 4)))  # limits 1, 2, 4, 8, DBL_MAX
    for sample in [-5, 0, 0.999, 1, 1.5, 2, 7.999, 8, 1e300, DBL_MAX, float("inf"), float("nan")]:
        sampler.add((), sample)
    # samples >= DBL_MAX and NaN: TensorFlow writes past its last bucket (they vanish); tfzoo counts them in it
    assert cumulative_buckets(registry, ":h") == [3, 5, 6, 7, 12]
    assert values_of(registry)[":h_count{}"] == 12


def test_bucket_limits_and_assignment_match_tensorflow() -> None:
    """The same samples land in the same buckets as in TensorFlow's own monitoring::Sampler."""
    monitoring = pytest.importorskip("tensorflow.python.eager.monitoring")
    for scale, growth, count in [(10, 1.8, 33), (1, 2, 15), (100, 1.2, 52), (1, 2, 14)]:
        finite = exponential_buckets(scale, growth, count)
        samples = [-1.0, 0.0, *finite, *(limit * (1 - 1e-15) for limit in finite),
                   *(limit * (1 + 1e-15) for limit in finite), 1e300]
        reference = monitoring.Sampler(f"/tfzoo/test/metrics/{uuid.uuid4().hex}",
                                       monitoring.ExponentialBuckets(scale, growth, count), "reference", "x")
        cell = reference.get_cell("x")
        registry = MetricRegistry()
        ours = registry.register(Sampler("/h", finite))
        for sample in samples:
            cell.add(sample)
            ours.add((), sample)
        expected = cell.value()
        assert tuple(expected.bucket_limit) == ours.limits
        assert cumulative_buckets(registry, ":h") == list(itertools.accumulate(int(n) for n in expected.bucket))
        assert values_of(registry)[":h_sum{}"] == float(format_double(expected.sum))


# --- metric kinds -----------------------------------------------------------------------------------------------------

def test_counter_increments_and_errors(registry: MetricRegistry) -> None:
    counter = registry.register(Counter("/c", "a", "b"))
    counter.increment(("x", "y"), by=0)  # GetCell creates the cell: the page shows a 0
    assert registry.render() == page("# TYPE :c counter", ':c{a="x",b="y"} 0')
    counter.increment(("x", "y"))
    counter.increment(("x", "y"), by=4)
    with pytest.raises(ValueError, match="takes the label values"):
        counter.increment(("x",))
    with pytest.raises(ValueError):
        counter.increment(("x", "y"), by=-1)  # CounterCell::IncrementBy: "Must not decrement cumulative metrics."
    with pytest.raises(ValueError):
        counter.increment(("x", "y"), by=1.5)  # type: ignore[arg-type]
    assert registry.render() == page("# TYPE :c counter", ':c{a="x",b="y"} 5')


def test_gauge_set_replace_and_remove(registry: MetricRegistry) -> None:
    gauge = registry.register(Gauge("/g", "version"))
    gauge.set(("1",), 10)
    gauge.set(("1",), 3)
    gauge.set(("2",), 4)
    assert registry.render() == page("# TYPE :g gauge", ':g{version="1"} 3', ':g{version="2"} 4')
    gauge.remove(("1",), ("9",))  # a label set never set: nothing to remove
    assert registry.render() == page("# TYPE :g gauge", ':g{version="2"} 4')
    gauge.set(("3",), 1, replacing=[("2",)])
    gauge.set(("4",), 2, replacing=[("4",)])
    assert registry.render() == page("# TYPE :g gauge", ':g{version="3"} 1', ':g{version="4"} 2')
    with pytest.raises(TypeError):
        gauge.set(("5",), 0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        gauge.set((), 1)


def test_sampler_label_values_checked(registry: MetricRegistry) -> None:
    sampler = registry.register(Sampler("/s", [1, 10], "x"))
    with pytest.raises(ValueError, match="takes the label values"):
        sampler.add((), 5)
    assert registry.render() == page("# TYPE :s histogram")


@pytest.fixture
def frequent_thread_switches():
    """Switch threads every microsecond, so that an unguarded read-modify-write would lose updates."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def run_threads(count: int, target) -> None:
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_counter_is_thread_safe(registry: MetricRegistry, frequent_thread_switches) -> None:
    counter = registry.register(Counter("/c", "model"))

    def work() -> None:
        for _ in range(20_000):
            counter.increment(("m",))

    run_threads(8, work)
    assert values_of(registry)[':c{model="m"}'] == 160_000


def test_sampler_is_thread_safe(registry: MetricRegistry, frequent_thread_switches) -> None:
    sampler = registry.register(Sampler("/s", exponential_buckets(1, 2, 4), "model"))

    def work() -> None:
        for i in range(10_000):
            sampler.add(("m",), i % 3)  # 0, 1, 2: buckets 0, 1 and 2

    run_threads(8, work)
    assert cumulative_buckets(registry, ":s") == [26_672, 53_336, 80_000, 80_000, 80_000]
    assert values_of(registry)[':s_sum{model="m"}'] == 8 * (3333 * 1 + 3333 * 2)


def test_render_while_recording(registry: MetricRegistry, frequent_thread_switches) -> None:
    # rendering copies each metric's cells under its lock, so label sets added meanwhile do not break it
    counter = registry.register(Counter("/c", "n"))
    sampler = registry.register(Sampler("/s", [1], "n"))
    done = threading.Event()

    def work() -> None:
        for i in range(20_000):
            sampler.add((str(i),), i)
        counter.increment(("last",))
        done.set()

    worker = threading.Thread(target=work)
    worker.start()
    try:
        while not done.is_set():
            registry.render()
    finally:
        worker.join()
    lines = lines_of(registry)
    assert sum(line.startswith(":s_count{") for line in lines) == 20_000
    assert ':c{n="last"} 1' in lines


def test_registries_do_not_share_counts() -> None:
    first, second = MetricRegistry(), MetricRegistry()
    ServingMetrics(first).record_examples("m", 4)
    ServingMetrics(second)
    assert "request_example_count_total{" not in second.render()
    assert ':tensorflow:serving:request_example_count_total{model="m"} 4' in lines_of(first)


def test_a_name_registers_once(registry: MetricRegistry) -> None:
    registry.register(Counter("/c"))
    with pytest.raises(ValueError, match="already exists"):
        registry.register(Gauge("/c"))
    with pytest.raises(ValueError):
        ServingMetrics(MetricRegistry()).registry.register(Counter("/tensorflow/serving/request_count"))


# --- ServingMetrics ---------------------------------------------------------------------------------------------------

def test_serving_metrics_names_and_kinds(registry: MetricRegistry, serving: ServingMetrics) -> None:
    # names from util.cc, batching_session.cc, batching_util.h (BatchingSessionTask::Name() is
    # "batching_session"), saved_model_warmup_util.cc and TensorFlow's cc/saved_model/loader.cc
    assert registry.render() == page(
        "# TYPE :tensorflow:cc:saved_model:load_attempt_count counter",
        "# TYPE :tensorflow:cc:saved_model:load_latency counter",
        "# TYPE :tensorflow:serving:batching_session:input_batch_size histogram",
        "# TYPE :tensorflow:serving:batching_session:padding_size histogram",
        "# TYPE :tensorflow:serving:batching_session:processed_batch_size histogram",
        "# TYPE :tensorflow:serving:batching_session:queuing_latency histogram",
        "# TYPE :tensorflow:serving:batching_session:wrapped_run_count counter",
        "# TYPE :tensorflow:serving:model_warmup_latency histogram",
        "# TYPE :tensorflow:serving:model_warmup_records_read counter",
        "# TYPE :tensorflow:serving:request_count counter",
        "# TYPE :tensorflow:serving:request_example_count_total counter",
        "# TYPE :tensorflow:serving:request_example_counts histogram",
        "# TYPE :tensorflow:serving:request_latency histogram",
        "# TYPE :tensorflow:serving:runtime_latency histogram",
        "# TYPE :tfzoo:serving:model_version_state gauge")


def test_record_request(registry: MetricRegistry, serving: ServingMetrics) -> None:
    # http_server.cc / prediction_service_impl.cc: latency only for OK requests, the count for every request
    serving.record_request("mnist", "Predict", "GRPC", grpc.StatusCode.OK, 0.000123)
    serving.record_request("mnist", "Predict", "GRPC", grpc.StatusCode.INVALID_ARGUMENT, 0.5)
    serving.record_request("mnist", "predict", "REST", grpc.StatusCode.OK, 2.0)
    lines = lines_of(registry)
    assert ':tensorflow:serving:request_count{model_name="mnist",status="INVALID_ARGUMENT"} 1' in lines
    assert ':tensorflow:serving:request_count{model_name="mnist",status="OK"} 2' in lines
    grpc_labels = 'model_name="mnist",API="Predict",entrypoint="GRPC"'
    assert f':tensorflow:serving:request_latency_bucket{{{grpc_labels},le="104.976"}} 0' in lines
    assert f':tensorflow:serving:request_latency_bucket{{{grpc_labels},le="188.957"}} 1' in lines
    assert f":tensorflow:serving:request_latency_sum{{{grpc_labels}}} 123" in lines  # microseconds
    assert f":tensorflow:serving:request_latency_count{{{grpc_labels}}} 1" in lines
    rest_labels = 'model_name="mnist",API="predict",entrypoint="REST"'
    assert f":tensorflow:serving:request_latency_sum{{{rest_labels}}} 2e+06" in lines
    assert [line for line in lines if line.startswith(":tensorflow:serving:request_latency_count")] == [
        f":tensorflow:serving:request_latency_count{{{grpc_labels}}} 1",
        f":tensorflow:serving:request_latency_count{{{rest_labels}}} 1"]


@pytest.mark.parametrize(("code", "name"), [
    # error::Code_Name: the names of tensorflow/core/protobuf/error_codes.proto (absl's StatusCodeToString)
    (grpc.StatusCode.OK, "OK"), (grpc.StatusCode.CANCELLED, "CANCELLED"), (grpc.StatusCode.UNKNOWN, "UNKNOWN"),
    (grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED"), (grpc.StatusCode.NOT_FOUND, "NOT_FOUND"),
    (grpc.StatusCode.FAILED_PRECONDITION, "FAILED_PRECONDITION"),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, "RESOURCE_EXHAUSTED"), (grpc.StatusCode.UNIMPLEMENTED, "UNIMPLEMENTED"),
    (grpc.StatusCode.INTERNAL, "INTERNAL"), (grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE"),
    (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED"),
])
def test_request_status_names(registry: MetricRegistry, serving: ServingMetrics, code: grpc.StatusCode,
                              name: str) -> None:
    serving.record_request("m", "Regress", "GRPC", code, 0.001)
    assert [line for line in lines_of(registry) if line.startswith(":tensorflow:serving:request_count")] == [
        f':tensorflow:serving:request_count{{model_name="m",status="{name}"}} 1']


def test_record_runtime(registry: MetricRegistry, serving: ServingMetrics) -> None:
    serving.record_runtime("mnist", "Classify", 0.0105)  # predict_util.cc etc.: runtime "TF1" for a Session
    serving.record_runtime("mnist", "Classify", -0.001)  # clock skew: 0, as GetLatencyMicroseconds
    labels = 'model_name="mnist",API="Classify",runtime="TF1"'
    assert f":tensorflow:serving:runtime_latency_sum{{{labels}}} 10500" in lines_of(registry)
    assert f':tensorflow:serving:runtime_latency_bucket{{{labels},le="10"}} 1' in lines_of(registry)


def test_record_examples(registry: MetricRegistry, serving: ServingMetrics) -> None:
    serving.record_examples("census", 3)
    serving.record_examples("census", 4)
    lines = lines_of(registry)
    assert ':tensorflow:serving:request_example_count_total{model="census"} 7' in lines
    assert ':tensorflow:serving:request_example_counts_bucket{model="census",le="2"} 0' in lines
    assert ':tensorflow:serving:request_example_counts_bucket{model="census",le="4"} 1' in lines  # 3
    assert ':tensorflow:serving:request_example_counts_bucket{model="census",le="8"} 2' in lines  # 4: on a limit
    assert ':tensorflow:serving:request_example_counts_count{model="census"} 2' in lines


def test_record_batching(registry: MetricRegistry, serving: ServingMetrics) -> None:
    serving.record_input_batch_size(3)
    serving.record_queuing_latency("", 0.0025)
    serving.record_batch(8, 5)
    serving.record_wrapped_run()
    serving.record_wrapped_run()
    lines = lines_of(registry)
    prefix = ":tensorflow:serving:batching_session"
    assert f"{prefix}:wrapped_run_count{{}} 2" in lines
    assert f"{prefix}:input_batch_size_sum{{}} 3" in lines
    assert f'{prefix}:queuing_latency_sum{{thread_pool_name=""}} 2500' in lines  # microseconds
    assert f'{prefix}:padding_size_sum{{execution_batch_size="8"}} 5' in lines
    assert f'{prefix}:padding_size_bucket{{execution_batch_size="8",le="4"}} 0' in lines
    assert f'{prefix}:padding_size_bucket{{execution_batch_size="8",le="8"}} 1' in lines
    assert f"{prefix}:processed_batch_size_sum{{}} 8" in lines


def test_serving_metrics_is_batch_statistics() -> None:
    # batching.BatchStatistics: ServingMetrics is passed as a scheduler's statistics, and overrides each method
    for name, method in inspect.getmembers(BatchStatistics, inspect.isfunction):
        if not name.startswith("_"):
            assert getattr(ServingMetrics, name) is not method, f"{name} records nothing"
            assert inspect.signature(getattr(ServingMetrics, name)) == inspect.signature(method), name


def test_batch_scheduler_records(registry: MetricRegistry, serving: ServingMetrics) -> None:
    scheduler = BatchScheduler(BatchingOptions(max_batch_size=4, allowed_batch_sizes=(2, 4), num_batch_threads=1,
                                               thread_pool_name="pool"), serving)
    try:
        session = scheduler.session(lambda feeds, fetches, timeout_ms: [feeds["x"] * 2], lambda feeds: None)
        [result] = session.run({"x": np.arange(3.0)}, ["x"])
    finally:
        scheduler.stop()
    assert result.tolist() == [0.0, 2.0, 4.0]
    prefix = ":tensorflow:serving:batching_session"
    assert cumulative_buckets(registry, f"{prefix}:input_batch_size")[:3] == [0, 0, 1]  # 3 rows: [2, 4)
    values = values_of(registry)
    assert values[f"{prefix}:processed_batch_size_sum{{}}"] == 4  # padded up to the allowed size 4
    assert [key for key in values if key.startswith(f"{prefix}:padding_size_sum")] == [
        f'{prefix}:padding_size_sum{{execution_batch_size="4"}}']
    assert values[f'{prefix}:padding_size_sum{{execution_batch_size="4"}}'] == 1
    assert values[f"{prefix}:wrapped_run_count{{}}"] == 1
    # labelled "" as TF Serving's model server labels it
    assert values[f'{prefix}:queuing_latency_count{{thread_pool_name=""}}'] == 1


def test_record_load(registry: MetricRegistry, serving: ServingMetrics) -> None:
    # loader.cc: an attempt counted as "success" or "fail"; load_latency counts microseconds of every attempt
    serving.record_load("/models/mnist/1", True, 2.5)
    serving.record_load("/models/mnist/1", False, 0.5)
    lines = lines_of(registry)
    assert ':tensorflow:cc:saved_model:load_attempt_count{model_path="/models/mnist/1",status="fail"} 1' in lines
    assert ':tensorflow:cc:saved_model:load_attempt_count{model_path="/models/mnist/1",status="success"} 1' in lines
    assert ':tensorflow:cc:saved_model:load_latency{model_path="/models/mnist/1"} 3000000' in lines


def test_record_warmup(registry: MetricRegistry, serving: ServingMetrics) -> None:
    # saved_model_warmup_util.cc: labelled with status.ToString()
    serving.record_warmup("/models/mnist/1", 0.05, 3)
    serving.record_warmup("/models/mnist/2", 0.01, 0, grpc.StatusCode.INVALID_ARGUMENT, "Failed to parse")
    lines = lines_of(registry)
    assert ':tensorflow:serving:model_warmup_records_read{model_path="/models/mnist/1",status="OK"} 3' in lines
    failed = 'model_path="/models/mnist/2",status="INVALID_ARGUMENT: Failed to parse"'
    assert f":tensorflow:serving:model_warmup_records_read{{{failed}}} 0" in lines
    assert ':tensorflow:serving:model_warmup_latency_sum{model_path="/models/mnist/1",status="OK"} 50000' in lines
    assert f":tensorflow:serving:model_warmup_latency_count{{{failed}}} 1" in lines


def test_version_states(registry: MetricRegistry, serving: ServingMetrics) -> None:
    serving.set_version_state("mnist", 1, "START")
    serving.set_version_state("mnist", 1, "LOADING")
    serving.set_version_state("mnist", 2, "LOADING")
    serving.set_version_state("mnist", 1, "AVAILABLE")
    state = ":tfzoo:serving:model_version_state"
    assert [line for line in lines_of(registry) if line.startswith(state)] == [
        f'{state}{{model_name="mnist",version="1",state="AVAILABLE"}} 1',
        f'{state}{{model_name="mnist",version="2",state="LOADING"}} 1']
    serving.set_version_state("mnist", 1, "UNLOADING")
    serving.set_version_state("mnist", 1, "END")
    serving.remove_version("mnist", 2)
    serving.remove_version("mnist", 3)  # never seen: nothing to remove
    assert [line for line in lines_of(registry) if line.startswith(state)] == [
        f'{state}{{model_name="mnist",version="1",state="END"}} 1']
    with pytest.raises(ValueError, match="unknown model version state"):
        serving.set_version_state("mnist", 1, "READY")


def test_version_state_has_one_cell_under_concurrency(registry: MetricRegistry, serving: ServingMetrics,
                                                     frequent_thread_switches) -> None:
    # the previous state's cell goes in the same step as the new one comes: no page shows both, or neither
    states = ["START", "LOADING", "AVAILABLE", "UNLOADING", "END"]
    serving.set_version_state("m", 1, "START")

    def work() -> None:
        for i in range(10_000):
            serving.set_version_state("m", 1, states[i % 5])

    writers = [threading.Thread(target=work) for _ in range(4)]
    for writer in writers:
        writer.start()
    pages = []
    while any(writer.is_alive() for writer in writers):
        pages.append(sum(line.startswith(":tfzoo:serving:model_version_state{") for line in lines_of(registry)))
    for writer in writers:
        writer.join()
    assert set(pages) == {1}
    assert sum(line.startswith(":tfzoo:serving:model_version_state{") for line in lines_of(registry)) == 1
