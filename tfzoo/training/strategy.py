"""One function from a short name to a tf.distribute strategy, in the spirit of TF Model Garden's distribute_utils."""
from __future__ import annotations

import os

import tensorflow as tf

from tfzoo.cluster import cluster_from_tf_config
from tfzoo.training import STRATEGIES


class StrategyError(ValueError):
    """A strategy that cannot run here; the message says what was found and what to do."""


def resolve_strategy(
    name: str | tf.distribute.Strategy = "auto", *, num_devices: int | None = None, tpu: str | None = None
) -> tf.distribute.Strategy:
    """The strategy called `name`; a strategy object passes through unchanged.

    - default: TensorFlow's default strategy (one device, no distribution).
    - one_device: GPU:0 when there is one, else CPU:0.
    - mirrored: all local GPUs (or the first `num_devices`); on a machine without GPUs, `num_devices` logical CPU
      devices (set before TensorFlow runs its first op), so data parallelism can be tried anywhere.
    - multi_worker: MultiWorkerMirroredStrategy over the cluster in the TF_CONFIG environment variable.
    - tpu: TPUStrategy on the TPU named by `tpu` (or the TPU_NAME environment variable, or a TPU VM's local TPU).
    - auto: tpu when one is named, else multi_worker when TF_CONFIG lists several tasks, else mirrored on
      several GPUs, else default.
    """
    if isinstance(name, tf.distribute.Strategy):
        return name
    if name not in STRATEGIES:
        raise StrategyError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    if num_devices is not None and (num_devices < 1 or name not in ("mirrored", "auto")):
        raise StrategyError(f"num_devices={num_devices} applies to the mirrored strategy only, as a positive count")
    if name == "auto":
        name = auto_strategy_name(tpu)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if tf.config.list_physical_devices("GPU") else "/cpu:0")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=mirrored_devices(num_devices))
    if name == "multi_worker":
        cluster_from_tf_config()  # validates TF_CONFIG with a clear message before TensorFlow reads it
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tpu_strategy(tpu)


def auto_strategy_name(tpu: str | None) -> str:
    if tpu or os.environ.get("TPU_NAME"):
        return "tpu"
    if "TF_CONFIG" in os.environ and cluster_from_tf_config().num_tasks > 1:
        return "multi_worker"
    return "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "default"


def mirrored_devices(num_devices: int | None) -> list[str]:
    """Device names for MirroredStrategy: local GPUs, else logical CPUs made for the purpose."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        if num_devices is not None and num_devices > len(gpus):
            raise StrategyError(f"--num-devices {num_devices} asks for more GPUs than the {len(gpus)} found")
        return [f"/gpu:{i}" for i in range(num_devices or len(gpus))]
    count = num_devices or len(tf.config.list_logical_devices("CPU"))
    configure_logical_cpus(count)
    return [f"/cpu:{i}" for i in range(count)]


def configure_logical_cpus(count: int) -> None:
    """Split the host CPU into `count` logical devices; only possible before TensorFlow initializes."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if (len(current) if current else 1) == count:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        raise StrategyError(
            f"no GPU here, and {count} logical CPU devices cannot be made any more: TensorFlow already ran in this "
            "process. Resolve the mirrored strategy (tfzoo.training.strategy.resolve_strategy('mirrored', "
            f"num_devices={count})) before running any TensorFlow op, as `tfzoo train --num-devices` does"
        ) from None


def tpu_strategy(tpu: str | None) -> tf.distribute.Strategy:
    """TPUStrategy after connecting to and initializing the TPU system."""
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    # A name that is not a grpc:// address is looked up through the Cloud TPU API over HTTP: off GCP that is a
    # URLError (an OSError), which must say what to do like the other failures.
    except (ValueError, RuntimeError, OSError, tf.errors.OpError) as error:
        raise StrategyError(f"no TPU found ({error}); name one with --tpu NAME_OR_GRPC_ADDRESS (or TPU_NAME), "
                            "or run on a TPU VM; see the README's TPU section") from None
    return tf.distribute.TPUStrategy(resolver)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run dir: always, except on non-chief workers of a multi-worker job."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and "TF_CONFIG" in os.environ:
        return cluster_from_tf_config().is_chief
    return True


def strategy_name(strategy: tf.distribute.Strategy) -> str:
    """The short name of a strategy object, as `resolve_strategy` takes it."""
    kinds = [(tf.distribute.MultiWorkerMirroredStrategy, "multi_worker"), (tf.distribute.MirroredStrategy, "mirrored"),
             (tf.distribute.TPUStrategy, "tpu"), (tf.distribute.OneDeviceStrategy, "one_device")]
    return next((name for kind, name in kinds if isinstance(strategy, kind)), "default")
