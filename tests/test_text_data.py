"""Text data: the byte tokenizer in the graph, language-model windows split by document, headline pairs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfzoo.datasets import DataError, load_dataset
from tfzoo.datasets.text import language_model_splits
from tfzoo.text import tokenizer
from tfzoo.text.tokenizer import BEGIN, END, PAD, SEPARATOR, example_prompts


def write_headlines(path: Path, rows: list[tuple[str, str]]) -> Path:
    lines = ["article,headline"] + [f'"{article}","{headline}"' for article, headline in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_tokenizer_round_trips_any_language_in_the_graph():
    texts = ["héllo", "中文新闻标题", "", "tab\there", "emoji 🙂"]
    ids = tokenizer.encode(tf.constant(texts))
    assert ids.to_list()[0] == list("héllo".encode())
    special = tf.fill([len(texts), 1], SEPARATOR)  # special tokens decode to nothing
    padded = tf.concat([special, ids, special], axis=1).to_tensor(default_value=PAD)
    assert [t.decode() for t in tokenizer.decode(padded).numpy()] == texts
    # A character cut in half is replaced, so the output is always valid UTF-8.
    cut = tf.constant([list("中".encode())[:2] + [ord("a")]])
    assert tokenizer.decode(cut).numpy()[0].decode() == "\ufffda"


def test_text_tokens_cut_between_characters():
    assert tokenizer.text_tokens("中文", 4).tolist() == list("中".encode())
    assert tokenizer.text_tokens("abc").tolist() == [97, 98, 99]


def test_language_model_windows_split_by_document_and_lose_no_text():
    documents = [f"document {i}: " + "words " * (i % 7 * 20) for i in range(40)]
    data = language_model_splits(documents, name="docs", seed=4, max_length=32, validation_fraction=0.2,
                                  test_fraction=0.2, source={}, description="")
    found = {}
    for split in ("train", "validation", "test"):
        x, y = data.arrays(split)
        assert x.dtype == y.dtype == np.int32 and x.shape[1] == y.shape[1] == 32
        np.testing.assert_array_equal(x[:, 1:], np.where(y[:, :-1] == PAD, x[:, 1:], y[:, :-1]))  # y is x shifted
        assert BEGIN not in y  # given, never predicted
        text = bytes(x[(x < 256)].astype(np.uint8)).decode()
        found[split] = {i for i in range(40) if f"document {i}: " in text}
    assert sorted(set.union(*found.values())) == list(range(40))
    assert sum(map(len, found.values())) == 40  # each document in exactly one split
    targets = sum(int((data.arrays(split)[1] != PAD).sum()) for split in ("train", "validation", "test"))
    assert targets == sum(len(d.encode()) + 1 for d in documents)  # every byte and every ⟨end⟩ is a target


def test_python_docs_is_real_text_that_rebuilds_from_its_source():
    data = load_dataset("python_docs", seed=1)
    assert data.task == "language_model" and data.input_shape == (256,)
    assert len(data.x_train) > 1000 and len(data.x_test) > 100
    source = json.loads(json.dumps(data.source))
    assert load_dataset(**source).fingerprint == data.fingerprint
    assert load_dataset(**{**source, "seed": 2}).fingerprint != data.fingerprint
    assert any("statement" in prompt for prompt in example_prompts(data.x_train[:50], max_bytes=256))


def test_text_file_documents_are_paragraphs(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text("\n\n".join(f"Paragraph {i}, line one.\nLine two." for i in range(20)), encoding="utf-8")
    data = load_dataset("text_file", path=str(path), max_length=64)
    assert "20 documents" in data.description and data.input_shape == (64,)
    (tmp_path / "one.txt").write_text("a single paragraph")
    with pytest.raises(DataError, match="blank line"):
        load_dataset("text_file", path=str(tmp_path / "one.txt"))
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        load_dataset("text_file", path=str(tmp_path / "latin1.txt"))


def test_headline_pairs_train_on_the_headline_only(tmp_path):
    rows = [(f"Article number {i} says a lot about topic {i}.", f"Topic {i} explained") for i in range(12)]
    rows.append(("股市今天上涨，投资者欢迎。" * 40, "股市上涨"))  # a long article: its beginning is kept
    data = load_dataset("headline_csv", path=str(write_headlines(tmp_path / "news.csv", rows)), text_column="article",
                        target="headline", max_length=96, validation_fraction=0.1, test_fraction=0.1)
    x = np.concatenate([data.x_train, data.x_val, data.x_test])
    y = np.concatenate([data.y_train, data.y_val, data.y_test])
    for row_x, row_y in zip(x, y):
        separator = int(np.flatnonzero(row_x == SEPARATOR)[0])
        article = bytes(row_x[1:separator].astype(np.uint8)).decode()
        headline = bytes(row_x[separator + 1 : list(row_x).index(END)].astype(np.uint8)).decode()
        assert row_x[0] == BEGIN and (article, headline) in [(a[: len(article)], h) for a, h in rows]
        assert (row_y[:separator] == PAD).all()  # no loss on the article
        assert bytes(row_y[separator : separator + len(headline.encode())].astype(np.uint8)).decode() == headline
        assert row_y[separator + len(headline.encode())] == END
    assert all(any(a.startswith(prompt) for a, _ in rows) for prompt in example_prompts(x))
    with pytest.raises(DataError, match="the validation split is empty; provide more rows"):  # said in one line
        load_dataset("headline_csv", path=str(tmp_path / "news.csv"), text_column="article", target="headline",
                     max_length=96, validation_fraction=0.0, test_fraction=0.1)


def test_headline_csv_errors_name_the_fix(tmp_path):
    path = write_headlines(tmp_path / "news.csv", [("a", "b")] * 10)
    with pytest.raises(DataError, match="no column 'title'.*article, headline"):
        load_dataset("headline_csv", path=str(path), text_column="article", target="title")
    path.write_text("article,headline\nsome text,\nmore,words\n")
    with pytest.raises(DataError, match="1 of 2 rows have no"):
        load_dataset("headline_csv", path=str(path), text_column="article", target="headline")


def epoch_rows(data, epoch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The training windows of one epoch, in the pipeline's order."""
    batches = list(data.training_pipeline(4, seed=seed, epochs=range(epoch, epoch + 1)))
    return tuple(np.concatenate([batch[part].numpy() for batch in batches]) for part in (0, 1))


def test_language_model_windows_are_cut_anew_each_epoch_keeping_every_pair():
    documents = [f"Document {i}: " + " ".join(f"word{i}x{j}" for j in range(30)) for i in range(20)]
    data = language_model_splits(documents, name="docs", seed=0, max_length=16, validation_fraction=0.1,
                                 test_fraction=0.1, source={}, description="test")
    assert data.stream_windows
    stream_x, stream_y = data.x_train.reshape(-1), data.y_train.reshape(-1)
    pairs = sorted(zip(stream_x.tolist(), stream_y.tolist()))
    starts = []
    for epoch in range(4):
        x, y = epoch_rows(data, epoch)
        assert x.shape == data.x_train.shape  # still N windows: the stream wraps around
        assert sorted(zip(x.reshape(-1).tolist(), y.reshape(-1).tolist())) == pairs  # no pair made up or lost
        # Each window is 16 consecutive tokens of the (wrapped) stream: find where the first one starts.
        wrapped = np.concatenate([stream_x, stream_x])
        offsets = {int(np.flatnonzero([np.array_equal(wrapped[i:i + 16], row) for i in range(len(stream_x))])[0] % 16)
                   for row in x[:8]}
        assert len(offsets) == 1  # one offset per epoch, the same for all its windows
        starts.append(offsets.pop())
    assert len(set(starts)) > 1  # a new cut in later epochs
    # The cut depends on (seed, epoch) alone: a resumed run sees the same windows.
    assert all(np.array_equal(a, b) for a, b in zip(epoch_rows(data, 2), epoch_rows(data, 2)))
    assert not np.array_equal(epoch_rows(data, 2)[0], epoch_rows(data, 2, seed=1)[0])


def test_headline_examples_are_never_cut(tmp_path):
    data = load_dataset("headline_csv", path=str(write_headlines(tmp_path / "news.csv", [
        (f"Article number {i} about something.", f"Headline {i}") for i in range(12)])), text_column="article",
        target="headline", max_length=48, validation_fraction=0.2, test_fraction=0.2)
    assert not data.stream_windows
    x, _ = epoch_rows(data, 1)
    assert sorted(map(tuple, x.tolist())) == sorted(map(tuple, data.x_train.tolist()))
