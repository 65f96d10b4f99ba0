"""Headline evaluation: the python_docs_headlines pairs are real headings and bodies, and `tfzoo evaluate` on a
headline run reports ROUGE and BLEU of the model's headlines beside the lead baseline's."""
from __future__ import annotations

import json
from pydoc_data.topics import topics

import numpy as np
import pytest

import tfzoo
from tfzoo.cli import main
from tfzoo.datasets import load_dataset
from tfzoo.datasets.text import _headline_example
from tfzoo.registry import create_model
from tfzoo.text.scores import lead
from tfzoo.text.task import LanguageModel
from tfzoo.text.tokenizer import END, example_headlines, example_prompts

SPLITS = ("train", "val", "test")
TINY = {"num_layers": 1, "d_model": 32, "num_heads": 2, "ff_dim": 32}
SCORES = [f"{system}_{name}" for system in ("headline", "lead") for name in ("rouge1", "rouge2", "rougeL", "bleu")]


def pairs(data, split: str) -> list[tuple[str, str]]:
    x = getattr(data, f"x_{split}")
    return list(zip(example_prompts(x), example_headlines(x)))


@pytest.fixture(scope="module")
def headlines():
    return load_dataset("python_docs_headlines")


def test_pairs_are_headings_of_the_python_docs_over_their_bodies(headlines):
    every = [pair for split in SPLITS for pair in pairs(headlines, split)]
    assert len(every) > 100
    collapsed = [" ".join(text.split()) for text in topics.values()]
    for article, headline in every:
        # Underlined in the reStructuredText way, in some topic, and the article is the text that follows it.
        rules = [rule * len(headline) for rule in "*=-~^"]
        assert any(f"{headline}\n{rule}\n" in text for rule in rules for text in topics.values()), headline
        assert any(f"{headline} {rule} {article}" in text for rule in rules for text in collapsed), headline
    assert dict((headline, article) for article, headline in every)['The "assert" statement'].startswith(
        "Assert statements are a convenient way to insert debugging assertions into a program:")


def test_splits_are_disjoint_and_follow_the_seed(headlines):
    by_split = {split: pairs(headlines, split) for split in SPLITS}
    for first, second in [("train", "val"), ("train", "test"), ("val", "test")]:
        for side in (0, 1):  # neither an article nor a headline is in two splits
            assert not {pair[side] for pair in by_split[first]} & {pair[side] for pair in by_split[second]}
    again = load_dataset("python_docs_headlines")
    assert all(np.array_equal(getattr(headlines, f"x_{split}"), getattr(again, f"x_{split}")) for split in SPLITS)
    other = load_dataset("python_docs_headlines", seed=1)
    assert set(example_headlines(other.x_test)) != set(example_headlines(headlines.x_test))


def test_example_headlines_read_the_bytes_after_the_separator():
    x, _ = _headline_example("Heavy snow closed schools across the region.", "Snow closes schools", 64)
    # At 16 tokens the ⟨end⟩ falls past x (x is the sequence but its last token): the headline runs to the row's end.
    # A row without ⟨sep⟩ has no headline.
    cut, _ = _headline_example("Heavy snow closed schools across the region.", "Snow", 16)
    assert example_headlines(np.stack([x, np.full(64, 65)])) == ["Snow closes schools", ""]
    assert cut[-1] != END and example_headlines(cut[np.newaxis]) == ["Snow"]


def test_lead_takes_the_first_words_as_written():
    article = 'The "if" statement is used for conditional execution: if_stmt ::= ...'
    assert lead(article, 3) == 'The "if" statement'
    assert lead(article, 1) == "The"
    assert lead("Two words", 8) == "Two words"
    assert lead("", 3) == lead("Some text", 0) == ""


@pytest.mark.slow
def test_evaluate_reports_headline_and_lead_scores(tmp_path, headlines, capsys):
    run = tfzoo.train("text_generator", dataset="python_docs_headlines", epochs=4, run_dir=tmp_path / "run",
                      verbose=0, learning_rate=3e-3, **TINY)
    assert run.model.headline
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "run")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {"loss", "accuracy", "bits_per_byte", *SCORES} <= set(printed)
    assert all(0.0 <= printed[key] <= 1.0 for key in SCORES), printed
    # Many headings open their section's body ("Assignment statements are used to ..."): the lead scores.
    assert printed["lead_rouge1"] > 0.0

    # The lead baseline reads the articles alone: an untrained model of the same shape gets the same lead scores.
    fresh = create_model("text_generator", max_length=256, headline=True, **TINY)
    scores = LanguageModel().held_out_scores(fresh, headlines)
    assert {key: value for key, value in scores.items() if key.startswith("lead_")} == \
        {key: printed[key] for key in SCORES if key.startswith("lead_")}
    assert LanguageModel().held_out_scores(create_model("text_generator", max_length=256, headline=False, **TINY),
                                           headlines) == {}
