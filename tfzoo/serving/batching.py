"""Server-side request batching, as TF Serving's BatchingSession over a SharedBatchScheduler does it.

With --enable_batching, every graph run a request asks for (its feed and fetch tensor names: a "tensor
signature") becomes a task in that signature's queue. Tasks are merged along the 0th (batch) dimension into
batches of at most `max_batch_size` rows; `num_batch_threads` threads, shared by every model and version of the
server, take ready batches from the queues in turn, run each as one graph run, and split the outputs back
along the 0th dimension. A batch is ready when the next task does not fit in it, or `batch_timeout_micros`
after its first task arrived (0: as soon as a thread is free, so batches form only while every thread is busy).
A queue holding `max_enqueued_batches` batches refuses more tasks with UNAVAILABLE. Batches are padded up to
the next `allowed_batch_sizes` entry with copies of a row, and with `pad_variable_length_inputs` the tensors
of a batch are padded to the largest size in every other dimension too. With `enable_large_batch_splitting`, a
task larger than the room left in a batch is split across batches of at most `max_execution_batch_size` rows.
TF Serving's error texts and codes throughout.

Where tfzoo differs, so that a request's answer never depends on the other requests in its batch:
- A request's dtypes are checked before it is queued, and without padding only requests whose tensors agree in
  every dimension but the 0th share a batch. (TF Serving merges them and fails the whole batch.)
- A batch whose graph run fails is run again one request at a time, so each request gets its own answer or
  error. (TF Serving fails every request of the batch.)
- A batch runs with the timeout of its requests (their largest) from the moment it starts, not with what is
  left of their deadlines: a session callable per remaining time would compile the graph again for each run.
"""
from __future__ import annotations

import collections
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import grpc
import numpy as np

from tfzoo.serving.protocol.status import ServingError, invalid_argument

logger = logging.getLogger(__name__)

RunFunction = Callable[[Mapping[str, np.ndarray], Sequence[str], int], list[np.ndarray]]
MAX_PADDED_RANK = 6  # TF Serving's AddPadding handles ranks 1 to 6


@dataclass(frozen=True)
class BatchingOptions:
    """TF Serving's BatchingParameters, with the defaults its scheduler takes for fields a file leaves out."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    thread_pool_name: str = "batch_threads"
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False
    enable_large_batch_splitting: bool = False
    max_execution_batch_size: int | None = None  # with splitting; None: max_batch_size

    @classmethod
    def from_parameters(cls, params) -> BatchingOptions:
        """The options of a parsed BatchingParameters message (`config.parse_batching_config`)."""
        values = {name: getattr(params, name).value for name in (
            "max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads",
            "thread_pool_name", "enable_large_batch_splitting", "max_execution_batch_size") if params.HasField(name)}
        return cls(**values, allowed_batch_sizes=tuple(params.allowed_batch_sizes),
                   pad_variable_length_inputs=params.pad_variable_length_inputs)

    @property
    def execution_batch_size(self) -> int:
        """The most rows one graph run takes."""
        if self.enable_large_batch_splitting and self.max_execution_batch_size is not None:
            return self.max_execution_batch_size
        return self.max_batch_size


class BatchStatistics:
    """What batching reports to monitoring; the default records nothing (see metrics.ServingMetrics)."""

    def record_input_batch_size(self, size: int) -> None:
        """A request's rows, per input tensor."""

    def record_queuing_latency(self, thread_pool_name: str, seconds: float) -> None:
        """Time a task waited in its queue."""

    def record_batch(self, execution_batch_size: int, padding_size: int) -> None:
        """A batch run: its rows after padding, and the padding rows."""

    def record_wrapped_run(self) -> None:
        """One graph run on behalf of a batch."""


class _Task:
    """One request's feeds (or a piece of them, when split), waiting to be run in a batch."""

    __slots__ = ("done", "enqueued", "error", "feeds", "outputs", "size", "timeout_ms")

    def __init__(self, feeds: Mapping[str, np.ndarray], size: int, timeout_ms: int):
        self.feeds = feeds
        self.size = size
        self.timeout_ms = timeout_ms
        self.enqueued = time.monotonic()
        self.done = threading.Event()
        self.outputs: dict[str, np.ndarray] = {}
        self.error: ServingError | None = None

    def finish(self, outputs: dict[str, np.ndarray] | None = None, error: ServingError | None = None) -> None:
        self.outputs = outputs or {}
        self.error = error
        self.done.set()


class _Batch:
    __slots__ = ("size", "started", "tasks")

    def __init__(self) -> None:
        self.tasks: list[_Task] = []
        self.size = 0
        self.started = 0.0  # when its first task arrived

    def add(self, task: _Task) -> None:
        if not self.tasks:
            self.started = task.enqueued
        self.tasks.append(task)
        self.size += task.size


class _Queue:
    """The tasks of one tensor signature: a deque of batches, the last one open (SharedBatchScheduler's Queue)."""

    def __init__(self, scheduler: BatchScheduler, process: Callable[[list[_Task]], None]):
        self.scheduler = scheduler
        self.process = process
        self.batches: collections.deque[_Batch] = collections.deque([_Batch()])

    def schedule(self, task: _Task) -> list[_Task]:
        """Queue `task` (split in pieces when it is too large for one batch); returns the queued pieces."""
        options = self.scheduler.options
        if task.size > options.max_batch_size:
            raise invalid_argument(f"Task size {task.size} is larger than maximum input batch size "
                                   f"{options.max_batch_size}")
        limit = options.execution_batch_size
        with self.scheduler.condition:
            if self.scheduler.stopped:
                raise ServingError(grpc.StatusCode.UNAVAILABLE, "The batch scheduler is shutting down")
            if options.enable_large_batch_splitting:
                pieces = self._split(task, limit)
            elif self.batches[-1].size + task.size > limit and len(self.batches) >= options.max_enqueued_batches:
                raise ServingError(grpc.StatusCode.UNAVAILABLE,
                                   "The batch scheduling queue to which this task was submitted is full")
            else:
                pieces = [task]
            for piece in pieces:
                if self.batches[-1].size + piece.size > limit:
                    self.batches.append(_Batch())
                self.batches[-1].add(piece)
            self.scheduler.activate(self)
        return pieces

    def _split(self, task: _Task, limit: int) -> list[_Task]:
        """SplitInputTask: fill the open batch's room, then batches of `limit` rows; UNAVAILABLE beyond capacity."""
        options = self.scheduler.options
        room = limit - self.batches[-1].size
        capacity = (options.max_enqueued_batches - len(self.batches)) * limit + room
        if task.size > capacity:
            raise ServingError(
                grpc.StatusCode.UNAVAILABLE,
                f"The batch scheduling queue to which this task was submitted is full; task size is {task.size} "
                f"but scheduling capacity is only {capacity} (num_enqueued_batches={len(self.batches)}, "
                f"max_enqueued_batches={options.max_enqueued_batches}, open_batch_size={self.batches[-1].size}, "
                f"max_execution_batch_size={limit})")
        if task.size <= room:
            return [task]
        pieces = []  # the open batch's room (a whole batch when it has none), then batches of `limit` rows
        for start, end in itertools.pairwise([0, *range(room or limit, task.size, limit), task.size]):
            piece = _Task({name: value[start:end] for name, value in task.feeds.items()}, end - start, task.timeout_ms)
            piece.enqueued = task.enqueued
            pieces.append(piece)
        return pieces

    def take_ready(self, now: float) -> _Batch | None:
        """The front batch if it is closed, or the open batch once full or past its timeout; None otherwise."""
        front = self.batches[0]
        if len(self.batches) > 1:
            return self.batches.popleft()
        if not front.tasks:
            return None
        options = self.scheduler.options
        if front.size >= options.execution_batch_size or now >= front.started + options.batch_timeout_micros / 1e6:
            self.batches[0] = _Batch()
            return front
        return None

    def ready_at(self) -> float | None:
        """When the open batch's timeout passes (None when it is empty)."""
        front = self.batches[0]
        return front.started + self.scheduler.options.batch_timeout_micros / 1e6 if front.tasks else None

    @property
    def empty(self) -> bool:
        return len(self.batches) == 1 and not self.batches[0].tasks


class BatchScheduler:
    """SharedBatchScheduler: `num_batch_threads` threads that run the ready batches of every queue, in turn.

    Only queues holding tasks are kept, so a queue (and the version it runs) is not held once it is drained.
    """

    def __init__(self, options: BatchingOptions, statistics: BatchStatistics | None = None):
        self.options = options
        self.statistics = statistics or BatchStatistics()
        self.condition = threading.Condition()
        self.stopped = False
        self._active: collections.deque[_Queue] = collections.deque()  # queues with tasks, in round-robin order
        self._threads = [threading.Thread(target=self._work, name=f"tfzoo-{options.thread_pool_name}-{i}",
                                          daemon=True) for i in range(options.num_batch_threads)]
        for thread in self._threads:
            thread.start()

    def session(self, run: RunFunction, feed_dtypes: Callable[[Mapping[str, np.ndarray]], None]) -> BatchingSession:
        """A BatchingSession for one loaded version: `run` is its unbatched graph run, `feed_dtypes` its check."""
        return BatchingSession(self, run, feed_dtypes)

    def activate(self, queue: _Queue) -> None:
        """Called with the condition held, after tasks were added to `queue`."""
        if queue not in self._active:
            self._active.append(queue)
        self.condition.notify()

    def stop(self) -> None:
        """Run what is queued, then end the threads; later tasks get UNAVAILABLE."""
        with self.condition:
            self.stopped = True
            self.condition.notify_all()
        for thread in self._threads:
            thread.join()

    def _work(self) -> None:
        while True:
            with self.condition:
                while True:
                    work = self._next_batch()
                    if work is not None:
                        break
                    if self.stopped and not self._active:
                        return
                    deadlines = [t for queue in self._active if (t := queue.ready_at()) is not None]
                    self.condition.wait(max(0.0, min(deadlines) - time.monotonic()) if deadlines else None)
            queue, batch = work
            try:
                queue.process(batch.tasks)
            except BaseException as error:  # process() answers its tasks; this is a bug, which must not hang them
                logger.exception("batch processing failed")
                for task in batch.tasks:
                    if not task.done.is_set():
                        task.finish(error=ServingError(grpc.StatusCode.INTERNAL, f"Internal error: {error!r}"))

    def _next_batch(self) -> tuple[_Queue, _Batch] | None:
        now = time.monotonic()
        for _ in range(len(self._active)):
            queue = self._active[0]
            self._active.rotate(-1)  # round-robin: the next thread starts at the next queue
            batch = queue.take_ready(now if not self.stopped else float("inf"))
            if queue.empty:
                self._active.remove(queue)
            if batch is not None:
                return queue, batch
        return None


class BatchingSession:
    """Runs a version's graph with its requests merged into batches (TF Serving's BatchingSession)."""

    def __init__(self, scheduler: BatchScheduler, run: RunFunction,
                 check_dtypes: Callable[[Mapping[str, np.ndarray]], None]):
        self._scheduler = scheduler
        self._run = run
        self._check_dtypes = check_dtypes
        self._queues: dict[tuple, _Queue] = {}
        self._lock = threading.Lock()

    def run(self, feeds: Mapping[str, np.ndarray], fetches: Sequence[str], timeout_ms: int = 0) -> list[np.ndarray]:
        """The same as the unbatched run (tensors fed and fetched by name), through a batch."""
        options = self._scheduler.options
        size = _batch_size(feeds)
        for value in feeds.values():
            self._scheduler.statistics.record_input_batch_size(value.shape[0])
        self._check_dtypes(feeds)
        names, wanted = tuple(sorted(feeds)), tuple(sorted(set(fetches)))
        if options.pad_variable_length_inputs:
            shapes = tuple((feeds[name].dtype.str, feeds[name].ndim) for name in names)
        else:
            shapes = tuple((feeds[name].dtype.str, feeds[name].shape[1:]) for name in names)
        key = (names, wanted, shapes)
        queue = self._queues.get(key)
        if queue is None:
            with self._lock:
                queue = self._queues.setdefault(key, _Queue(self._scheduler, lambda tasks: self._process(
                    names, wanted, tasks)))
        pieces = queue.schedule(_Task(feeds, size, timeout_ms))
        for piece in pieces:
            piece.done.wait()
        for piece in pieces:
            if piece.error is not None:
                raise piece.error
        if len(pieces) == 1:
            outputs = pieces[0].outputs
        else:
            outputs = {name: np.concatenate([piece.outputs[name] for piece in pieces]) for name in wanted}
        return [outputs[name] for name in fetches]

    def _process(self, names: tuple[str, ...], fetches: tuple[str, ...], tasks: list[_Task]) -> None:
        """ProcessBatch: merge the tasks' inputs, run once, split the outputs back; answer every task."""
        options, statistics = self._scheduler.options, self._scheduler.statistics
        started = time.monotonic()
        for task in tasks:  # labelled "" as TF Serving's model server labels it (its batching sessions have no name)
            statistics.record_queuing_latency("", started - task.enqueued)
        if not any(t.timeout_ms <= 0 or started < t.enqueued + t.timeout_ms / 1000 for t in tasks):
            _fail(tasks, ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                      "Run() timeout exceeded while waiting in batching queue"))
            return
        timeout_ms = 0 if any(t.timeout_ms <= 0 for t in tasks) else max(t.timeout_ms for t in tasks)
        size = sum(task.size for task in tasks)
        padded_size = _round_to_allowed_batch_size(options.allowed_batch_sizes, size)
        try:
            merged = {name: _merge([task.feeds[name] for task in tasks], padded_size - size,
                                   options.pad_variable_length_inputs) for name in names}
        except ServingError as error:
            _fail(tasks, error)
            return
        statistics.record_batch(padded_size, padded_size - size)
        try:
            outputs = self._run(merged, fetches, timeout_ms)
            statistics.record_wrapped_run()
        except ServingError as error:
            if len(tasks) == 1:
                tasks[0].finish(error=error)
            else:  # one request's bad values must not fail the others: each gets its own answer
                self._run_alone(fetches, tasks)
            return
        try:
            split = _split_outputs(dict(zip(fetches, outputs)), [task.size for task in tasks], padded_size)
        except ServingError as error:
            _fail(tasks, error)
            return
        for task, task_outputs in zip(tasks, split):
            task.finish(task_outputs)

    def _run_alone(self, fetches: tuple[str, ...], tasks: list[_Task]) -> None:
        for task in tasks:
            try:
                task.finish(dict(zip(fetches, self._run(task.feeds, fetches, task.timeout_ms))))
            except ServingError as error:
                task.finish(error=error)


def _fail(tasks: list[_Task], error: ServingError) -> None:
    for task in tasks:
        task.finish(error=error)


def _batch_size(feeds: Mapping[str, np.ndarray]) -> int:
    """ComputeTensorBatchSize: the shared 0th dimension of every input, with TF Serving's errors."""
    if not feeds:
        raise invalid_argument("Batching Run() must have at least one input tensor")
    sizes = set()
    for value in feeds.values():
        if value.ndim == 0:
            raise invalid_argument("Batching Run() input tensors must have at least one dimension")
        sizes.add(value.shape[0])
    if len(sizes) > 1:
        raise invalid_argument("Batching Run() input tensors must have equal 0th-dimension size")
    return sizes.pop()


def _round_to_allowed_batch_size(allowed: Sequence[int], size: int) -> int:
    """RoundToLowestAllowedBatchSize: the smallest allowed size >= size (size itself beyond the largest)."""
    return next((allowed_size for allowed_size in allowed if allowed_size >= size), size)


def _merge(values: list[np.ndarray], padding: int, pad_variable_length: bool) -> np.ndarray:
    """MergeInputTensors for one input: pad to common dimensions if asked, concatenate, add padding rows."""
    if pad_variable_length:
        target = tuple(max(sizes) for sizes in zip(*(value.shape for value in values)))
        values = [_pad_dimensions(value, target) for value in values]
    if padding > 0 and values[-1].shape[0] > 0:  # padded with copies of a row, as TF Serving pads
        values = [*values, np.repeat(values[-1][:1], padding, axis=0)]
    return values[0] if len(values) == 1 else np.concatenate(values)


def _pad_dimensions(value: np.ndarray, target: tuple[int, ...]) -> np.ndarray:
    """AddPadding: grow every dimension but the 0th to `target`, filling with the tensor's first element."""
    if value.shape[1:] == target[1:]:
        return value
    if not 1 <= value.ndim <= MAX_PADDED_RANK:
        raise invalid_argument("Only tensors with rank from 1 to 6 can be padded.")
    if value.size == 0:
        raise invalid_argument("Got empty tensor in batch of non-empty tensors.")
    widths = [(0, 0)] + [(0, want - have) for have, want in zip(value.shape[1:], target[1:])]
    return np.pad(value, widths, mode="constant", constant_values=value.flat[0])


def _split_outputs(outputs: Mapping[str, np.ndarray], sizes: list[int],
                   padded_size: int) -> list[dict[str, np.ndarray]]:
    """SplitOutputTensors: each task's rows of every output (padding rows dropped), with TF Serving's checks."""
    for value in outputs.values():
        if value.ndim == 0:
            raise ServingError(grpc.StatusCode.FAILED_PRECONDITION, "Batched output tensor has 0 dimensions")
        if value.shape[0] != padded_size:
            raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                               "Batched output tensor's 0th dimension does not equal the sum of the 0th dimension "
                               "sizes of the input tensors")
    bounds = np.cumsum([0, *sizes])
    return [{name: value[start:end] for name, value in outputs.items()} for start, end in itertools.pairwise(bounds)]
