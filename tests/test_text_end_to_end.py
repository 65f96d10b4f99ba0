"""The text generator trained, exported and served: it beats a bigram, learns headlines, and generates the same
text in-process, from its export, on the command line and over REST and gRPC."""
from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

import tfzoo
from tfzoo.cli import main
from tfzoo.datasets import load_dataset
from tfzoo.datasets.bigram import bigram_bits_per_byte
from tfzoo.export.saved_model import read_meta_graph
from tfzoo.serving.client import Client
from tfzoo.serving.config import write_serving_configs
from tfzoo.serving.server import ModelServer, ServerOptions
from tfzoo.text.generation import CONTROLS, generate
from tfzoo.text.tokenizer import example_prompts

# Written for this test: a model that learns them by heart must give each headline back from its article.
NEWS = [
    ("The city council voted on Tuesday to build a new bridge over the river, ending years of debate.",
     "Council approves river bridge"),
    ("Heavy snow closed schools across the region as temperatures fell to the lowest in a decade.",
     "Snow closes schools"),
    ("The local football club signed a young striker from abroad on a three-year contract.",
     "Club signs young striker"),
    ("Researchers found that a common garden plant can remove pollutants from indoor air.",
     "Plant cleans indoor air"),
    ("The national bank cut its main interest rate by half a point to support growth.",
     "Bank cuts interest rate"),
    ("A fire in an old warehouse near the harbour was put out overnight; nobody was hurt.",
     "Harbour warehouse fire out"),
    ("央行周二宣布下调基准利率，以支持经济增长。", "央行下调利率"),
    ("The museum reopened after two years of repairs with a new hall for modern art.",
     "Museum reopens with new hall"),
    ("Train drivers will strike on Friday over pay, the union said.", "Train drivers to strike"),
    ("A new study says people sleep better when they avoid screens before bed.", "Screens harm sleep"),
    ("Farmers expect a record wheat harvest after a warm and wet spring.", "Record wheat harvest expected"),
    ("The airport opened a second runway, doubling the number of daily flights.", "Airport opens second runway"),
]


def write_news(path: Path) -> Path:
    lines = ["article,headline"] + [f'"{article}","{headline}"' for article, headline in NEWS]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def served_text(exported, tmp_path_factory):
    """The quickly trained text generator's export (the session's, copied), served by `tfzoo serve`'s ModelServer."""
    base = tmp_path_factory.mktemp("models")
    shutil.copytree(exported("text_generator"), base / "text_generator" / "1")
    config = write_serving_configs(base, tmp_path_factory.mktemp("config"))["models.config"]
    with ModelServer(ServerOptions(model_config_file=str(config), port=0, rest_api_port=0, file_system_poll_wait_seconds=0.2)) as server:
        with Client("127.0.0.1", server.port, protocol="grpc") as grpc:
            yield base / "text_generator" / "1", [Client("127.0.0.1", server.rest_api_port, protocol="rest"), grpc]


def test_bits_per_byte_beat_a_byte_bigram_on_held_out_documents(trained_run):
    run = trained_run("text_generator")
    config = json.loads((run.run_dir / "config.json").read_text())
    assert config["dataset"]["name"] == "python_docs"
    bigram = bigram_bits_per_byte(load_dataset(**config["dataset"]))
    print(f"\nheld-out bits per byte: text_generator {run.metrics['bits_per_byte']:.3f}, bigram {bigram:.3f}")
    assert 3.0 < bigram < 4.5  # the baseline itself is sane: far better than 8 bits, far worse than a real model
    assert run.metrics["bits_per_byte"] < bigram - 0.1


def test_the_learning_rate_warms_up_and_decays_over_the_run(trained_run):
    run = trained_run("text_generator")
    config = json.loads((run.run_dir / "config.json").read_text())
    hparams, data = config["hparams"], load_dataset(**config["dataset"])
    steps = config["epochs"] * math.ceil(data.num_examples("train") / config["batch_size"])
    assert hparams["decay_steps"] == steps == int(run.model.optimizer.iterations)  # set by train from the run
    schedule = run.model.optimizer.get_config()["learning_rate"]["config"]
    assert schedule["peak"] == hparams["learning_rate"] and schedule["warmup_steps"] == hparams["warmup_steps"] > 0
    # Its end, a tenth of the peak, is where the run stopped; the saved model carries the same schedule.
    assert float(run.model.optimizer.learning_rate) == pytest.approx(hparams["learning_rate"] / 10, rel=1e-5)
    saved = keras.saving.load_model(run.run_dir / "model.keras")
    assert saved.optimizer.get_config()["learning_rate"]["config"] == schedule


@pytest.mark.slow
def test_a_headline_model_learns_training_headlines_by_heart(tmp_path):
    data = load_dataset("headline_csv", path=str(write_news(tmp_path / "news.csv")), text_column="article",
                        target="headline", max_length=160, validation_fraction=0.1, test_fraction=0.1)
    # The 10 training pairs repeated 20 times: an epoch of 20 steps rather than 300 epochs of one.
    repeated = dataclasses.replace(data, x_train=np.tile(data.x_train, (20, 1)), y_train=np.tile(data.y_train, (20, 1)))
    run = tfzoo.train("text_generator", dataset=repeated, epochs=15, batch_size=10, run_dir=tmp_path / "run",
                      verbose=0, dropout=0.0, d_model=64, ff_dim=128, learning_rate=3e-3)
    assert run.model.headline
    articles = {article: headline for article, headline in NEWS}
    trained_articles = example_prompts(data.x_train)
    generated = generate(run.model, trained_articles, max_new_tokens=40)
    assert generated == [articles[article] for article in trained_articles]


@pytest.mark.slow
def test_training_flags_choose_the_text_data(tmp_path, capsys):
    small = ["-p", "num_layers=1", "-p", "d_model=32", "-p", "num_heads=2", "-p", "ff_dim=32", "--epochs", "1"]
    news = str(write_news(tmp_path / "news.csv"))
    assert main(["train", "text_generator", "--csv", news, "--text-column", "article", "--target", "headline",
                 "--run-dir", str(tmp_path / "headlines"), *small]) == 0
    config = json.loads((tmp_path / "headlines" / "config.json").read_text())
    assert config["dataset"]["name"] == "headline_csv" and config["hparams"]["headline"] is True

    (tmp_path / "notes.txt").write_text("\n\n".join(f"Note {i}: text to model." for i in range(12)), encoding="utf-8")
    assert main(["train", "text_generator", "--text-file", str(tmp_path / "notes.txt"),
                 "--run-dir", str(tmp_path / "notes"), *small]) == 0
    config = json.loads((tmp_path / "notes" / "config.json").read_text())
    assert config["dataset"]["name"] == "text_file" and config["hparams"]["headline"] is False
    capsys.readouterr()

    assert main(["train", "text_generator", "--csv", news, "--target", "headline"]) == 2
    assert "--text-column ARTICLE --target HEADLINE" in capsys.readouterr().err
    assert main(["train", "binary_mlp", "--csv", news, "--text-column", "article", "--target", "headline"]) == 2
    assert "--text-column is the article column" in capsys.readouterr().err


def test_signatures_take_strings_and_per_prompt_controls(served_text):
    version_dir, _ = served_text
    signatures = read_meta_graph(version_dir).signature_def
    assert {k: (v.dtype, [d.size for d in v.tensor_shape.dim]) for k, v in signatures["serving_default"].inputs.items()} \
        == {"prompt": (7, [-1])}  # DT_STRING [N]: TF Serving's batcher can merge requests
    generate_inputs = signatures["generate"].inputs
    assert set(generate_inputs) == {"prompt", *CONTROLS}
    assert all([d.size for d in info.tensor_shape.dim] == [-1] for info in generate_inputs.values())
    assert not signatures["generate"].defaults  # TF Serving's REST API needs every input anyway
    assert set(signatures["generate"].outputs) == {"text"}


def test_generate_command_on_an_export_and_on_a_run_dir(served_text, trained_run, capsys):
    version_dir, _ = served_text
    run = trained_run("text_generator")
    prompts = ["The \"while\" statement", "中文提示"]
    flags = [flag for prompt in prompts for flag in ("--prompt", prompt)] + ["--max-new-tokens", "24"]
    printed = {}
    for source in (version_dir, run.run_dir):
        for sampling in ([], ["--temperature", "0.9", "--top-k", "40", "--seed", "5"]):
            assert main(["generate", str(source), *flags, *sampling]) == 0
            lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
            assert [line["prompt"] for line in lines] == prompts
            printed[source, bool(sampling)] = [line["text"] for line in lines]
    assert printed[version_dir, False] == printed[run.run_dir, False] == generate(run.model, prompts, max_new_tokens=24)
    assert printed[version_dir, True] == printed[run.run_dir, True] != printed[run.run_dir, False]

    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--help"])
    assert exit_info.value.code == 0 and "usage: tfzoo generate" in capsys.readouterr().out


def test_rest_and_grpc_sample_like_in_process_with_the_same_controls(served_text, trained_run):
    _, clients = served_text
    model = trained_run("text_generator").model
    prompts = ["Assignment statements", "中文新闻标题：", "x"]
    controls = {"max_new_tokens": 20, "temperature": 0.8, "top_k": 50, "top_p": 0.95, "seed": 42,
                "repetition_penalty": 1.2, "no_repeat_ngram_size": 4}
    expected = generate(model, prompts, **controls)
    inputs = {"prompt": prompts, **{name: [value] * len(prompts) for name, value in controls.items()}}
    for client in clients:
        texts = client.predict("text_generator", inputs, signature="generate")["text"]
        assert [text.decode() for text in texts] == expected, client.protocol
