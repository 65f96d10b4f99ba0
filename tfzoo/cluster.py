"""The TF_CONFIG cluster a process belongs to: read by the strategies (who is chief) and by file datasets (which
files this worker reads), and written for local multi-worker jobs."""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass


class TFConfigError(ValueError):
    """TF_CONFIG is missing or malformed; the message shows what was found and a valid example."""


@dataclass(frozen=True)
class Cluster:
    """The parts of TF_CONFIG tfzoo relies on."""

    jobs: dict[str, list[str]]
    task_type: str
    task_index: int

    @property
    def num_tasks(self) -> int:
        return sum(len(addresses) for job, addresses in self.jobs.items() if job in ("chief", "worker"))

    @property
    def is_chief(self) -> bool:
        """The task that writes: the chief, or worker 0 when the cluster has no chief."""
        if "chief" in self.jobs:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0


def cluster_from_tf_config() -> Cluster:
    """TF_CONFIG parsed and checked: a cluster of chief/worker addresses and this process's task."""
    raw = os.environ.get("TF_CONFIG")
    example = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}')
    if not raw:
        raise TFConfigError("multi_worker needs the TF_CONFIG environment variable, e.g. " + example +
                            "; to try it on one machine run scripts/launch_local_workers.py")
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise TFConfigError(f"TF_CONFIG is not valid JSON ({error}); expected e.g. {example}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise TFConfigError(f"TF_CONFIG needs a 'cluster' and a 'task' object; found {raw!r}. Example: {example}")
    jobs = {job: addresses for job, addresses in cluster.items()}
    bad = [job for job, addresses in jobs.items()
           if not isinstance(addresses, list) or not all(isinstance(a, str) and ":" in a for a in addresses)]
    if bad or not ({"worker", "chief"} & set(jobs)):
        raise TFConfigError(f"TF_CONFIG's cluster must map 'worker' (and optionally 'chief') to lists of "
                            f"'host:port' addresses; found {cluster!r}")
    task_type, task_index = task.get("type"), task.get("index", 0)
    if task_type not in jobs or not isinstance(task_index, int) or not 0 <= task_index < len(jobs[task_type]):
        raise TFConfigError(f"TF_CONFIG's task {task!r} is not in the cluster {sorted(jobs)} "
                            "(type must be one of its jobs, index within that job's list)")
    return Cluster(jobs=jobs, task_type=task_type, task_index=task_index)


def local_tf_configs(num_workers: int) -> list[str]:
    """TF_CONFIG values (JSON) for `num_workers` workers on free ports of 127.0.0.1; worker 0 is the chief.

    The ports are ones the OS just handed out, closed again at once so the workers can bind them.
    """
    sockets = [socket.socket() for _ in range(num_workers)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    addresses = [f"127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]
    for sock in sockets:
        sock.close()
    return [json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}})
            for index in range(num_workers)]
