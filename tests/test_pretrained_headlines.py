"""The pre-trained headline model tfzoo ships (tfzoo.text.pretrained): what it is, and that a headline fine-tune
starts from it unless told otherwise."""
from __future__ import annotations

import json

import numpy as np
import pytest
from test_init_from import write_headlines  # 20 article/headline pairs as a CSV

import tfzoo
from tfzoo.cli import main
from tfzoo.datasets import load_dataset
from tfzoo.registry import get_spec
from tfzoo.run_dir import load_run, weights_digest
from tfzoo.text.generation import generate
from tfzoo.text.pretrained import HEADLINE_RUN, headline_starting_point
from tfzoo.text.scores import rouge_l

ARCHITECTURE = ("num_layers", "d_model", "num_heads", "ff_dim")


@pytest.fixture(scope="module")
def shipped():
    return load_run(HEADLINE_RUN)


def test_the_shipped_model_is_a_default_text_generator_for_headlines_without_optimizer_state(shipped):
    config, model = shipped
    defaults = get_spec("text_generator").hparams
    assert config["model"] == "text_generator" and config["hparams"]["headline"] is True and model.headline
    assert {key: config["hparams"][key] for key in ARCHITECTURE} == {key: defaults[key] for key in ARCHITECTURE}
    assert config["dataset"]["name"] == "library_docs_headlines" and config["init_from"]  # its two stages
    assert getattr(model, "optimizer", None) is None
    assert (HEADLINE_RUN / "model.keras").stat().st_size < 2.5 * 2**20  # the weights alone, fit for the package


def test_the_shipped_model_writes_summary_lines_of_held_out_docstrings(shipped):
    """Held-out pairs of library_docs_headlines (packages its training never saw): its greedy headlines share more
    words with the references than a fresh model's, which are not words at all."""
    _, model = shipped
    pairs = [("This is exactly equivalent to put(item, block=False) and is only provided for compatibility with "
              "the Queue class.", "Put an item into the queue without blocking."),
             ("If the widget is currently selected, sets the option variable to the offvalue option and deselects "
              "the widget; otherwise, sets the option variable to the option onvalue.",
              "Toggles between the selected and deselected states.")]
    written = generate(model, [article for article, _ in pairs], max_new_tokens=60)
    assert all(text.strip() for text in written), written
    assert np.mean([rouge_l(text, headline) for text, (_, headline) in zip(written, pairs)]) > 0.1, written


@pytest.mark.slow
def test_headline_pairs_start_from_the_shipped_model_unless_told_otherwise(tmp_path, shipped):
    news = load_dataset("headline_csv", path=str(write_headlines(tmp_path / "news.csv")), text_column="article",
                        target="headline")
    assert headline_starting_point(news) == HEADLINE_RUN
    assert headline_starting_point(load_dataset("python_docs")) is None  # a language model has no starting point
    # A learning rate of 0 trains no step away from the weights the run starts from.
    run = tfzoo.train("text_generator", dataset=news, epochs=1, batch_size=8, learning_rate=0.0,
                      run_dir=tmp_path / "default", verbose=0)
    config = json.loads((tmp_path / "default" / "config.json").read_text())
    assert config["init_from"] == str(HEADLINE_RUN.resolve())
    # Its hyperparameters, and over them those it names for its fine-tunes, unless given.
    shipped_config = shipped[0]
    assert config["hparams"]["warmup_steps"] == shipped_config["hparams"]["warmup_steps"]
    tfzoo.train("text_generator", dataset=news, epochs=1, batch_size=8, run_dir=tmp_path / "tuned", verbose=0)
    assert json.loads((tmp_path / "tuned" / "config.json").read_text())["hparams"]["learning_rate"] == \
        shipped_config["fine_tune_hparams"]["learning_rate"] != shipped_config["hparams"]["learning_rate"]
    assert config["init_from_weights_sha256"] == weights_digest(run.model) == weights_digest(shipped[1])

    fresh = tfzoo.train("text_generator", dataset=news, epochs=1, batch_size=8, learning_rate=0.0,
                        run_dir=tmp_path / "fresh", verbose=0, init_from="fresh")
    assert json.loads((tmp_path / "fresh" / "config.json").read_text())["init_from"] is None
    assert weights_digest(fresh.model) != weights_digest(shipped[1])
    # Another architecture than the shipped one's starts afresh rather than being refused.
    assert main(["train", "text_generator", "--csv", str(tmp_path / "news.csv"), "--text-column", "article",
                 "--target", "headline", "-p", "d_model=32", "-p", "ff_dim=32", "--epochs", "1", "--run-dir",
                 str(tmp_path / "small"), "--quiet"]) == 0
    assert json.loads((tmp_path / "small" / "config.json").read_text())["init_from"] is None
