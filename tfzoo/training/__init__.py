"""Training: strategy resolution and the trainer that writes a run dir."""

# The --strategy names, here rather than in strategy.py so that `tfzoo train --help` lists them without TensorFlow.
STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker", "tpu")
