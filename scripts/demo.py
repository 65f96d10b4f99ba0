"""`make demo`: the main job of tfzoo, end to end, on data that needs no download.

Trains `mnist_cnn` (real MNIST when the Keras cache has it, otherwise the real handwritten digits that
scikit-learn ships), evaluates it on held-out images, exports it for TF Serving (validated before it goes
live), writes the serving configs, starts `tfzoo serve` on 127.0.0.1, asks it for predictions of held-out
digits over REST and over gRPC, prints them beside the true classes, and stops the server.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import tfzoo
from tfzoo.datasets import load_dataset
from tfzoo.datasets.mnist import keras_mnist_cache
from tfzoo.serving.client import Client
from tfzoo.serving.config import write_serving_configs
from tfzoo.serving.server import server_process

MODEL = "mnist_cnn"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default="runs/demo", help="where everything goes (default: runs/demo)")
    args = parser.parse_args()
    workdir = Path(args.workdir) / time.strftime("%Y%m%d-%H%M%S")

    dataset, epochs = ("mnist", 2) if keras_mnist_cache().is_file() else ("digits", 30)
    print(f"[1/5] training {MODEL} on {dataset!r} for {epochs} epochs (2 CPU cores are enough)")
    started = time.perf_counter()
    result = tfzoo.train(MODEL, dataset=dataset, epochs=epochs, run_dir=workdir / "run", verbose=2)
    print(f"      trained in {time.perf_counter() - started:.0f} s; run dir: {result.run_dir}")
    print(f"      held-out accuracy {result.metrics['accuracy']:.4f} (images never seen in training)")

    print("[2/5] exporting for TF Serving (validated in a fresh process before it goes live)")
    version_dir = tfzoo.export(result, workdir / "models")
    print(f"      exported: {version_dir}")

    print("[3/5] writing TF Serving's configs")
    for path in write_serving_configs(workdir / "models", workdir / "serving").values():
        print(f"      {path}")

    print("[4/5] starting `tfzoo serve` (TF Serving's REST and gRPC APIs) on 127.0.0.1")
    with server_process(f"--model_config_file={workdir / 'serving' / 'models.config'}") as (rest_port, grpc_port):
        print(f"      tfzoo serve: REST on 127.0.0.1:{rest_port}, gRPC on 127.0.0.1:{grpc_port}")
        config = json.loads((result.run_dir / "config.json").read_text())
        images, labels = load_dataset(**config["dataset"]).arrays("test")
        picks = np.random.default_rng().choice(len(images), size=8, replace=False)
        print(f"[5/5] asking the server about {len(picks)} held-out digits")
        with Client("127.0.0.1", rest_port, protocol="rest") as rest, \
                Client("127.0.0.1", grpc_port, protocol="grpc") as grpc:
            by_rest = rest.predict(MODEL, {"image": images[picks]})["class_id"]
            by_grpc = grpc.predict(MODEL, {"image": images[picks]})["class_id"]
        print(f"      true class     {labels[picks].tolist()}")
        print(f"      REST  predicts {by_rest.tolist()}")
        print(f"      gRPC  predicts {by_grpc.tolist()}")
        print(f"      {int(np.sum(by_rest == labels[picks]))}/{len(picks)} right")
    print("      server stopped")
    print(f"done. Production: serve {workdir / 'models'} with the tensorflow/serving image and the files in "
          f"{workdir / 'serving'} (serving/README.md)")


if __name__ == "__main__":
    main()
