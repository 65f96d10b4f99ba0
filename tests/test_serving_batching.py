"""Server-side batching (`tfzoo.serving.batching`), as TF Serving's BatchingSession and SharedBatchScheduler do it.

Cases marked with a TF Serving test name are ported from tensorflow_serving/batching/batching_session_test.cc and
TensorFlow's shared_batch_scheduler_test.cc (expected batch sizes, padding and error texts). The rest check what
tfzoo promises beyond them: every registered model answers the same batched as unbatched, and one request's
failure never fails the other requests of its batch.
"""
from __future__ import annotations

import functools
import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
import tfs_models
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2, prediction_service_pb2_grpc

import tfzoo
from tfzoo.serving.batching import BatchingOptions, BatchScheduler, BatchStatistics
from tfzoo.serving.config import render_batching_config, render_monitoring_config
from tfzoo.serving.loader import load_servable
from tfzoo.serving.predict import run_predict
from tfzoo.serving.protocol.status import ServingError
from tfzoo.serving.protocol.tensor_proto import to_array, to_proto
from tfzoo.serving.servable import Servable
from tfzoo.serving.server import ModelServer, ServerOptions
from tfzoo.serving.warmup import read_warmup_records

WAIT = 30.0  # generous bound on a wait that should end at once; a hung test fails instead of hanging


class RecordedBatches(BatchStatistics):
    """The batch sizes a scheduler ran: (rows after padding, padding rows) per graph run."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, int]] = []

    def record_batch(self, execution_batch_size: int, padding_size: int) -> None:
        self.batches.append((execution_batch_size, padding_size))


@pytest.fixture
def scheduler() -> Iterator[Callable[..., BatchScheduler]]:
    """scheduler(**BatchingOptions): a BatchScheduler recording its batches in `.statistics`, stopped after the test."""
    made: list[BatchScheduler] = []

    def make(**options) -> BatchScheduler:
        made.append(BatchScheduler(BatchingOptions(**options), RecordedBatches()))
        return made[-1]

    yield make
    for each in made:
        each.stop()


@pytest.fixture(scope="module")
def probe_dir(tmp_path_factory) -> Path:
    return tfs_models.batch_probe(tmp_path_factory.mktemp("probe") / "1")


def predict_request(signature: str = "", **inputs: np.ndarray) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "probe"
    request.model_spec.signature_name = signature
    for alias, value in inputs.items():
        request.inputs[alias].CopyFrom(to_proto(np.asarray(value)))
    return request


def concurrently(call: Callable[[predict_pb2.PredictRequest], object],
                 requests: Sequence[predict_pb2.PredictRequest]) -> list[object]:
    """Send every request at once from its own thread; each answer, or the ServingError it raised, in order."""
    def attempt(request):
        try:
            return call(request)
        except ServingError as error:
            return error

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(attempt, requests, timeout=WAIT))


def outputs(response: predict_pb2.PredictResponse) -> dict[str, np.ndarray]:
    return {alias: to_array(proto) for alias, proto in response.outputs.items()}


# ------------------------------------------------------------------------------- TF Serving's batching session

def test_concurrent_requests_run_as_one_batch_and_get_their_own_rows(probe_dir, scheduler):
    # batching_session_test.cc, TEST(BatchingSessionTest, Basic): two requests, one run of the merged batch.
    batcher = scheduler(max_batch_size=4, batch_timeout_micros=10_000_000, num_batch_threads=1)
    servable = load_servable(probe_dir, "probe", 1, warm_up=False, batching=batcher)
    first = predict_request(x=np.array([[1.0, 2.0]], np.float32))
    second = predict_request(x=np.array([[3.0, 4.0], [5.0, 6.0], [7.0, 8.0]], np.float32))
    answers = concurrently(functools.partial(run_predict, servable), [first, second])  # 1 + 3 rows fill the batch: it runs at once
    np.testing.assert_array_equal(outputs(answers[0])["y"], [[2.5, 3.0]])
    np.testing.assert_array_equal(outputs(answers[1])["y"], [[3.5, 4.0], [4.5, 5.0], [5.5, 6.0]])
    assert outputs(answers[0])["rows"].tolist() == [4]  # the graph saw both requests' rows in one run
    assert batcher.statistics.batches == [(4, 0)]


def test_batches_are_padded_up_to_the_next_allowed_size(probe_dir, scheduler):
    # batching_session_test.cc, AllowedBatchSizesRequirePadding: 3 rows run as a batch of 4; padding is dropped.
    batcher = scheduler(max_batch_size=8, allowed_batch_sizes=[2, 4, 8], batch_timeout_micros=0, num_batch_threads=1)
    servable = load_servable(probe_dir, "probe", 1, warm_up=False, batching=batcher)
    answer = run_predict(servable, predict_request(x=np.array([[1.0], [2.0], [3.0]], np.float32)))
    assert outputs(answer)["rows"].tolist() == [4, 4, 4]
    np.testing.assert_array_equal(outputs(answer)["y"], [[2.5], [3.0], [3.5]])
    assert batcher.statistics.batches == [(4, 1)]


def test_allowed_sizes_need_no_padding_for_an_exact_batch(probe_dir, scheduler):
    # batching_session_test.cc, AllowedBatchSizesNoPaddingNeeded.
    batcher = scheduler(max_batch_size=4, allowed_batch_sizes=[2, 4], num_batch_threads=1)
    servable = load_servable(probe_dir, "probe", 1, warm_up=False, batching=batcher)
    answer = run_predict(servable, predict_request(x=np.ones((2, 1), np.float32)))
    assert outputs(answer)["rows"].tolist() == [2, 2]
    assert batcher.statistics.batches == [(2, 0)]


def test_variable_length_inputs_are_padded_with_the_first_element(probe_dir, scheduler):
    # batching_session_test.cc, PadVariableLengthInputs: [1, 2] and [1, 3] tensors run as one [2, 3] batch; each
    # request gets its row at the padded width (TF Serving does not cut the padding back off).
    batcher = scheduler(max_batch_size=2, batch_timeout_micros=10_000_000, num_batch_threads=1,
                        pad_variable_length_inputs=True)
    servable = load_servable(probe_dir, "probe", 1, warm_up=False, batching=batcher)
    answers = concurrently(functools.partial(run_predict, servable), [predict_request(x=np.array([[2.0, 4.0]], np.float32)),
                                              predict_request(x=np.array([[6.0, 8.0, 10.0]], np.float32))])
    np.testing.assert_array_equal(outputs(answers[0])["y"], [[3.0, 4.0, 3.0]])  # padded with x[0] = 2 -> 3
    np.testing.assert_array_equal(outputs(answers[1])["y"], [[5.0, 6.0, 7.0]])
    assert batcher.statistics.batches == [(2, 0)]


def test_without_padding_tensors_of_other_shapes_are_batched_apart(probe_dir, scheduler):
    # TF Serving merges them and fails the whole batch (batching_session_test.cc,
    # UnequalTensorShapesWithPaddingTurnedOff); tfzoo keeps them in separate batches, so both are answered.
    batcher = scheduler(max_batch_size=4, batch_timeout_micros=200_000, num_batch_threads=1)
    servable = load_servable(probe_dir, "probe", 1, warm_up=False, batching=batcher)
    answers = concurrently(functools.partial(run_predict, servable), [predict_request(x=np.array([[2.0, 4.0]], np.float32)),
                                              predict_request(x=np.array([[6.0, 8.0, 10.0]], np.float32))])
    np.testing.assert_array_equal(outputs(answers[0])["y"], [[3.0, 4.0]])
    np.testing.assert_array_equal(outputs(answers[1])["y"], [[5.0, 6.0, 7.0]])
    assert sorted(batcher.statistics.batches) == [(1, 0), (1, 0)]


@pytest.mark.parametrize("signature, inputs, message", [
    # ComputeTensorBatchSize (batching_util.h), as batching_session_test.cc's error cases expect them.
    ("pair", {"a": np.ones(2, np.float32), "b": np.ones(3, np.float32)},
     "Batching Run() input tensors must have equal 0th-dimension size"),
    ("scalar", {"scalar": np.float32(1.0)}, "Batching Run() input tensors must have at least one dimension"),
    # shared_batch_scheduler.h, Queue::ValidateBatchTaskQueueCapacity.
    ("", {"x": np.ones((5, 1), np.float32)}, "Task size 5 is larger than maximum input batch size 4"),
])
def test_requests_the_batcher_cannot_take_are_refused_as_tf_serving_refuses_them(probe_dir, scheduler, signature,
                                                                                 inputs, message):
    servable = load_servable(probe_dir, "probe", 1, warm_up=False,
                             batching=scheduler(max_batch_size=4, num_batch_threads=1))
    with pytest.raises(ServingError) as raised:
        run_predict(servable, predict_request(signature, **inputs))
    assert (raised.value.code, raised.value.message) == (grpc.StatusCode.INVALID_ARGUMENT, message)


def test_large_batch_splitting_runs_a_request_in_pieces_and_joins_them(probe_dir, scheduler):
    batcher = scheduler(max_batch_size=8, enable_large_batch_splitting=True, max_execution_batch_size=2,
                        max_enqueued_batches=8, num_batch_threads=1)
    servable = load_servable(probe_dir, "probe", 1, warm_up=False, batching=batcher)
    x = np.arange(5, dtype=np.float32).reshape(5, 1)
    answer = outputs(run_predict(servable, predict_request(x=x)))
    np.testing.assert_array_equal(answer["y"], x * 0.5 + 2)
    assert answer["rows"].tolist() == [2, 2, 2, 2, 1]  # three runs: 2 + 2 + 1 rows
    assert sorted(batcher.statistics.batches) == [(1, 0), (2, 0), (2, 0)]


def test_a_failing_request_does_not_fail_the_others_in_its_batch(probe_dir, scheduler):
    batcher = scheduler(max_batch_size=3, batch_timeout_micros=10_000_000, num_batch_threads=1)
    servable = load_servable(probe_dir, "probe", 1, warm_up=False, batching=batcher)
    good, bad = np.array([[2.0]], np.float32), np.array([[-1.0]], np.float32)
    answers = concurrently(functools.partial(run_predict, servable), [predict_request(x=good), predict_request(x=bad),
                                              predict_request(x=good)])
    assert isinstance(answers[1], ServingError) and answers[1].code == grpc.StatusCode.INVALID_ARGUMENT
    assert "x must be >= 0" in answers[1].message
    for answer in (answers[0], answers[2]):
        np.testing.assert_array_equal(outputs(answer)["y"], [[3.0]])
    assert batcher.statistics.batches[0] == (3, 0)  # they were batched, then run again one by one


def test_a_wrongly_typed_request_fails_alone_with_the_unbatched_message(probe_dir, scheduler):
    # The wrongly typed request is refused before it is queued, so the other one waits out the batch timeout alone:
    # a second is still far longer than the two concurrent requests take to arrive.
    batcher = scheduler(max_batch_size=2, batch_timeout_micros=1_000_000, num_batch_threads=1)
    batched = load_servable(probe_dir, "probe", 1, warm_up=False, batching=batcher)
    unbatched = load_servable(probe_dir, "probe", 1, warm_up=False)
    wrong = predict_request(x=np.array([[1]], np.int32))
    with pytest.raises(ServingError) as expected:
        run_predict(unbatched, wrong)
    answers = concurrently(functools.partial(run_predict, batched), [wrong, predict_request(x=np.ones((1, 1), np.float32))])
    assert (answers[0].code, answers[0].message) == (expected.value.code, expected.value.message)
    np.testing.assert_array_equal(outputs(answers[1])["y"], [[2.5]])


# ----------------------------------------------------------------------------- the shared scheduler's queue

FEEDS = {"x:0": np.ones((1, 1), np.float32)}


class HeldThread:
    """A scheduler with one batch thread, held by a first task until `release()`: its queue then fills exactly as
    the test sends. The run is a stand-in that returns its input (what is tested is the queueing)."""

    def __init__(self, scheduler: Callable[..., BatchScheduler], pool: ThreadPoolExecutor, **options):
        self.batcher = scheduler(max_batch_size=1, num_batch_threads=1, **options)
        self._released, started = threading.Event(), threading.Semaphore(0)

        def run(feeds: Mapping[str, np.ndarray], fetches: Sequence[str], timeout_ms: int) -> list[np.ndarray]:
            started.release()
            assert self._released.wait(WAIT)
            return [next(iter(feeds.values())) for _ in fetches]

        self.session = self.batcher.session(run, lambda feeds: None)
        self._pool = pool
        self.running = self.submit()
        assert started.acquire(timeout=WAIT)  # the first task holds the only thread

    def submit(self, timeout_ms: int = 0):
        return self._pool.submit(self.session.run, FEEDS, ["y:0"], timeout_ms)

    def wait_for_pending(self, count: int) -> None:
        """Until `count` tasks wait in the queues (none of them running)."""
        deadline = time.monotonic() + WAIT
        while True:
            with self.batcher.condition:
                if sum(len(batch.tasks) for queue in self.batcher._active for batch in queue.batches) == count:
                    return
            assert time.monotonic() < deadline, f"{count} tasks never queued"
            time.sleep(0.005)

    def release(self) -> None:
        self._released.set()


def test_a_full_queue_answers_unavailable(scheduler):
    # shared_batch_scheduler_test.cc, QueueCapacityInfo / the UNAVAILABLE case: with one thread busy and
    # max_enqueued_batches batches waiting, one more task is refused.
    with ThreadPoolExecutor(3) as pool:
        held = HeldThread(scheduler, pool, max_enqueued_batches=2)
        queued = [held.submit() for _ in range(2)]  # fill both enqueued batches
        held.wait_for_pending(2)
        with pytest.raises(ServingError) as refused:
            held.session.run(FEEDS, ["y:0"])
        held.release()
        assert [f.result(WAIT)[0].tolist() for f in (held.running, *queued)] == [[[1.0]]] * 3
    assert refused.value.code == grpc.StatusCode.UNAVAILABLE
    assert refused.value.message == "The batch scheduling queue to which this task was submitted is full"


def test_a_task_whose_timeout_passed_in_the_queue_is_not_run(scheduler):
    # batching_session.cc, ProcessBatch: RESOURCE_EXHAUSTED when every task of a batch timed out while queued.
    with ThreadPoolExecutor(2) as pool:
        held = HeldThread(scheduler, pool, max_enqueued_batches=4)
        late = held.submit(timeout_ms=1)  # over long before the thread is free
        held.wait_for_pending(1)
        time.sleep(0.01)  # past the 1 ms timeout for sure
        held.release()
        held.running.result(WAIT)
        with pytest.raises(ServingError) as timed_out:
            late.result(WAIT)
    assert (timed_out.value.code, timed_out.value.message) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED, "Run() timeout exceeded while waiting in batching queue")


def test_stopping_answers_queued_tasks_then_refuses_new_ones(scheduler):
    with ThreadPoolExecutor(3) as pool:
        held = HeldThread(scheduler, pool, max_enqueued_batches=4)
        queued = held.submit()
        held.wait_for_pending(1)
        stopping = pool.submit(held.batcher.stop)
        held.release()
        stopping.result(WAIT)
        assert [answer.result(WAIT)[0].tolist() for answer in (held.running, queued)] == [[[1.0]]] * 2
    with pytest.raises(ServingError) as refused:
        held.session.run(FEEDS, ["y:0"])
    assert refused.value.code == grpc.StatusCode.UNAVAILABLE


# ------------------------------------------------------------------------------------- every registered model

def warmup_requests(version_dir: Path) -> list[predict_pb2.PredictRequest]:
    """The export's own warm-up requests: real held-out inputs for every signature, at several batch sizes."""
    requests = []
    for record in read_warmup_records(version_dir / "assets.extra" / "tf_serving_warmup_requests"):
        log = prediction_log_pb2.PredictionLog.FromString(record)
        requests.append(log.predict_log.request)
    return requests


def assert_same_outputs(batched: Mapping[str, np.ndarray], unbatched: Mapping[str, np.ndarray]) -> None:
    assert batched.keys() == unbatched.keys()
    for alias, expected in unbatched.items():
        if expected.dtype.kind == "f":  # a batch runs other kernels' blocking: floats agree to rounding
            np.testing.assert_allclose(batched[alias], expected, rtol=1e-5, atol=1e-6, err_msg=alias)
        else:
            np.testing.assert_array_equal(batched[alias], expected, err_msg=alias)


@pytest.mark.parametrize("name", tfzoo.list_models())
def test_every_registered_model_answers_batched_as_unbatched(exported, scheduler, name):
    version_dir = exported(name)
    requests = warmup_requests(version_dir)
    assert requests, "the export wrote no warm-up requests to compare with"
    unbatched = load_servable(version_dir, name, 1, warm_up=False)
    expected = [outputs(run_predict(unbatched, request)) for request in requests]
    batcher = scheduler(max_batch_size=64, batch_timeout_micros=300_000, max_enqueued_batches=64,
                        num_batch_threads=2)
    batched: Servable = load_servable(version_dir, name, 1, warm_up=False, batching=batcher)
    answers = concurrently(functools.partial(run_predict, batched), requests * 2)  # each request twice: batches mix copies and others
    for answer, want in zip(answers, expected * 2):
        assert not isinstance(answer, ServingError), answer
        assert_same_outputs(outputs(answer), want)
    assert len(batcher.statistics.batches) < len(requests) * 2, "no two requests were merged into one batch"


# ------------------------------------------------------------------------------------ through tfzoo serve

def test_served_requests_from_both_protocols_share_batches_and_are_counted(probe_dir, tmp_path):
    """--enable_batching with a batching file and --monitoring_config_file, as tensorflow_model_server takes them:
    REST and gRPC requests run in shared batches, and the Prometheus page counts what was sent."""
    (tmp_path / "batching.config").write_text(render_batching_config(
        max_batch_size=8, batch_timeout_micros=300_000, max_enqueued_batches=100, num_batch_threads=1))
    (tmp_path / "monitoring.config").write_text(render_monitoring_config())
    options = ServerOptions(model_name="probe", model_base_path=str(probe_dir.parent), port=0, rest_api_port=0,
                            enable_batching=True, batching_parameters_file=str(tmp_path / "batching.config"),
                            monitoring_config_file=str(tmp_path / "monitoring.config"))
    with ModelServer(options) as server, grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

        def over_grpc(x: float) -> tuple[list[float], int]:
            answer = outputs(stub.Predict(predict_request(x=np.array([[x]], np.float32)), timeout=WAIT))
            return answer["y"].ravel().tolist(), int(answer["rows"][0])

        def over_rest(x: float) -> tuple[list[float], int]:
            body = json.dumps({"instances": [[x]]}).encode()
            request = urllib.request.Request(f"http://127.0.0.1:{server.rest_api_port}/v1/models/probe:predict", body)
            with urllib.request.urlopen(request, timeout=WAIT) as response:
                answer = json.loads(response.read())["predictions"][0]
            return answer["y"], answer["rows"]

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda call, x: call(x), [over_grpc, over_rest] * 4, range(8), timeout=WAIT))
        assert [y for y, _ in answers] == [[x * 0.5 + 2] for x in range(8)]
        assert max(rows for _, rows in answers) > 1, "no requests were merged"
        with pytest.raises(grpc.RpcError) as refused:  # a failing request is counted under its status
            stub.Predict(predict_request(x=np.array([[-1.0]], np.float32)), timeout=WAIT)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        url = f"http://127.0.0.1:{server.rest_api_port}/monitoring/prometheus/metrics"
        with urllib.request.urlopen(url, timeout=WAIT) as response:
            assert response.headers["Content-Type"] == "text/plain"
            page = response.read().decode().splitlines()
    values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in page if not line.startswith("#")}
    assert values[':tensorflow:serving:request_count{model_name="probe",status="OK"}'] == 8
    assert values[':tensorflow:serving:request_count{model_name="probe",status="INVALID_ARGUMENT"}'] == 1
    assert values[':tensorflow:serving:request_latency_count{model_name="probe",API="predict",entrypoint="REST"}'] == 4
    assert values[':tensorflow:serving:request_latency_count{model_name="probe",API="Predict",entrypoint="GRPC"}'] == 4
    runs = values[":tensorflow:serving:batching_session:wrapped_run_count{}"]
    assert 1 <= runs < 9  # 8 good requests in fewer runs (the failing one runs alone)
    assert values[":tensorflow:serving:batching_session:processed_batch_size_sum{}"] == 9  # every row, once
    assert values[':tfzoo:serving:model_version_state{model_name="probe",version="1",state="AVAILABLE"}'] == 1
