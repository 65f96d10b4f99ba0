"""Text for the text generator, as byte tokens: documents for a language model, or article/headline pairs.

x is int32 token ids [N, T] and y the int32 next-token targets [N, T]; a target equal to the padding token
is not trained on. Train, validation and test never share a document (nor a CSV row, nor a topic of
python_docs_headlines).
"""
from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tfzoo.datasets.base import DataError, DataSplits
from tfzoo.datasets.splits import group_split_indices, split_indices
from tfzoo.datasets.tabular import read_csv_file
from tfzoo.text.tokenizer import BEGIN, END, PAD, SEPARATOR, text_tokens

DEFAULT_LENGTH = 256  # tokens per example; the text generator's context follows it
MIN_ARTICLE_BYTES = 100  # a shorter text is a line, not an article to write a headline for
PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")
SECTION_HEADING = re.compile(r"^(?P<heading>\S[^\n]*)\n(?P<rule>([*=~^-])\3+[ \t]*)$", re.MULTILINE)


def python_docs(*, seed: int = 0, max_length: int = DEFAULT_LENGTH) -> DataSplits:
    """The Python Language Reference topics that CPython ships for `help()` (module pydoc_data.topics).

    Real English technical prose with code, written by the Python documentation authors, and on every machine
    that has Python: 79 documents, about 465 KB in Python 3.11. Split 70/15/15 by document, then packed into
    windows of `max_length` tokens.
    """
    topics = python_topics()
    names = sorted(topics)
    return language_model_splits(
        [topics[name] for name in names], name="python_docs", seed=seed, max_length=max_length,
        validation_fraction=0.15, test_fraction=0.15,
        source={"name": "python_docs", "seed": seed, "max_length": max_length},
        description=f"Python {sys.version_info.major}.{sys.version_info.minor} language reference topics "
                    f"(pydoc_data.topics): {len(names)} documents",
    )


def python_docs_headlines(*, seed: int = 0, max_length: int = DEFAULT_LENGTH) -> DataSplits:
    """Article/headline pairs from the topics of `python_docs`: each section's heading is the headline of its body.

    A heading is a line underlined with a run of *, =, -, ~ or ^ as long as itself; a section's body is the text up
    to the next heading, its whitespace runs made single spaces. Several topics repeat a section: reading the topics
    in name order, a heading or a body seen before is left out, as is an empty body. In Python 3.11: 168 pairs from
    67 topics, headings of 2.5 words on average. Split 70/15/15 by topic, as python_docs, so no heading or body is
    in two splits; examples as in headline_csv.
    """
    topics = python_topics()
    seen: set[str] = set()
    pairs_by_topic = {}
    for name in sorted(topics):
        pairs = []
        for heading, body in _sections(topics[name]):
            if body and heading not in seen and body not in seen:
                pairs.append((body, heading))
            seen.update((heading, body))
        if pairs:
            pairs_by_topic[name] = pairs
    names = list(pairs_by_topic)
    splits = split_indices(len(names), seed=seed, validation_fraction=0.15, test_fraction=0.15)
    return headline_splits(
        [[pair for i in split for pair in pairs_by_topic[names[i]]] for split in splits],
        name="python_docs_headlines", max_length=max_length,
        source={"name": "python_docs_headlines", "seed": seed, "max_length": max_length},
        description=f"Python {sys.version_info.major}.{sys.version_info.minor} language reference sections "
                    f"(pydoc_data.topics): {sum(map(len, pairs_by_topic.values()))} body/heading pairs from "
                    f"{len(names)} topics, {max_length} byte tokens each",
    )


def python_topics() -> dict[str, str]:
    """pydoc_data.topics: topic name -> text, or DataError saying how to get it."""
    try:
        from pydoc_data.topics import topics
    except ImportError as error:  # some Linux distributions move it to a separate package
        raise DataError("this Python lacks pydoc_data (the text behind help()); install your distribution's full "
                        "Python standard library, or train on your own text with --text-file FILE") from error
    return topics


def _sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) of each section of a reStructuredText-like text, bodies with their whitespace collapsed."""
    headings = [match for match in SECTION_HEADING.finditer(text)
                if len(match.group("rule").rstrip()) == len(match.group("heading"))]
    ends = [match.start() for match in headings[1:]] + [len(text)]
    return [(match.group("heading"), " ".join(text[match.end():end].split())) for match, end in zip(headings, ends)]


def text_file(
    path: str | Path, *, seed: int = 0, max_length: int = DEFAULT_LENGTH, validation_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> DataSplits:
    """Any UTF-8 text file as a language model; documents are separated by blank lines (paragraphs)."""
    path = Path(path).expanduser().resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"text file not found: {path}; check the path and the file name") from None
    except UnicodeDecodeError as error:
        raise DataError(f"{path} is not UTF-8 text ({error}); save it as UTF-8") from None
    documents = [part.strip() for part in PARAGRAPH_BREAK.split(text) if part.strip()]
    return language_model_splits(
        documents, name="text_file", seed=seed, max_length=max_length,
        validation_fraction=validation_fraction, test_fraction=test_fraction,
        source={"name": "text_file", "seed": seed, "path": str(path), "max_length": max_length,
                "validation_fraction": validation_fraction, "test_fraction": test_fraction},
        description=f"{path}: {len(documents)} documents (paragraphs separated by blank lines)",
    )


def headline_csv(
    path: str | Path, text_column: str, target: str, *, seed: int = 0, max_length: int = DEFAULT_LENGTH,
    validation_fraction: float = 0.15, test_fraction: float = 0.15,
) -> DataSplits:
    """A CSV of article/headline pairs, one example per row: ⟨begin⟩ article ⟨sep⟩ headline ⟨end⟩.

    The loss is on the headline and its ⟨end⟩ only. A headline keeps at most max_length // 2 - 1 bytes and the
    article what is left, from its beginning (where news articles put what the headline says).
    """
    path = Path(path).expanduser().resolve()
    frame = read_csv_file(path)
    missing = [column for column in (text_column, target) if column not in frame.columns]
    if missing:
        raise DataError(f"{path} has no column {', '.join(map(repr, missing))}; its columns are "
                        f"{', '.join(map(str, frame.columns))}. Pass them as --text-column ARTICLE --target HEADLINE")
    empty = frame[[text_column, target]].isna().any(axis=1)
    if empty.any():
        raise DataError(f"{path}: {int(empty.sum())} of {len(frame)} rows have no {text_column!r} or no {target!r}; "
                        "fill them or drop those rows (df.dropna()), and save the CSV again")
    pairs = [(str(article), str(headline)) for article, headline in zip(frame[text_column], frame[target])]
    splits = split_indices(len(pairs), seed=seed, validation_fraction=validation_fraction,
                           test_fraction=test_fraction)
    return headline_splits(
        [[pairs[i] for i in split] for split in splits], name="headline_csv", max_length=max_length,
        source={"name": "headline_csv", "seed": seed, "path": str(path), "text_column": text_column,
                "target": target, "max_length": max_length, "validation_fraction": validation_fraction,
                "test_fraction": test_fraction},
        description=f"{path}: {len(frame)} article/headline pairs ({text_column!r} -> {target!r})",
    )


def headline_splits(
    splits: Sequence[list[tuple[str, str]]], *, name: str, max_length: int, source: dict[str, Any], description: str,
) -> DataSplits:
    """DataSplits of (article, headline) pairs already cut into (train, validation, test); examples as headline_csv."""
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (_headline_arrays(pairs, max_length) for pairs in splits)
    return DataSplits(name=name, task="language_model", x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
                      x_test=x_test, y_test=y_test, source=source, description=description)


def _headline_arrays(pairs: list[tuple[str, str]], max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) [N, max_length] of (article, headline) pairs."""
    if max_length < 8:
        raise DataError(f"max_length must be at least 8 tokens to hold an article and a headline, got {max_length}")
    examples = [_headline_example(article, headline, max_length) for article, headline in pairs]
    if not examples:  # an empty split: DataSplits then says so
        return np.zeros((0, max_length), np.int32), np.zeros((0, max_length), np.int32)
    x, y = (np.stack(arrays) for arrays in zip(*examples))
    return x, y


def _headline_example(article: str, headline: str, length: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of one pair, padded to `length`; y is PAD up to the ⟨sep⟩ so only the headline is learnt."""
    head = text_tokens(headline, length // 2 - 1)
    body = text_tokens(article, length + 1 - 3 - len(head))  # ⟨begin⟩, ⟨sep⟩, ⟨end⟩ take 3 of the length + 1
    sequence = np.concatenate([[BEGIN], body, [SEPARATOR], head, [END]])
    sequence = np.pad(sequence, (0, length + 1 - len(sequence)), constant_values=PAD).astype(np.int32)
    x, y = sequence[:-1], sequence[1:].copy()
    y[: len(body) + 1] = PAD  # targets up to the ⟨sep⟩: the article, given at generation time
    return x, y


def language_model_splits(
    documents: list[str], *, name: str, seed: int, max_length: int, validation_fraction: float,
    test_fraction: float, source: dict[str, Any], description: str, groups: Sequence[str] | None = None,
) -> DataSplits:
    """Documents split by document (or, given each document's group, by group: `group_split_indices`), each split
    packed into windows of `max_length` tokens."""
    if max_length < 2:
        raise DataError(f"max_length must be at least 2 tokens, got {max_length}")
    if groups is not None:
        indices = group_split_indices(groups, seed=seed, validation_fraction=validation_fraction,
                                      test_fraction=test_fraction)
    else:
        try:
            indices = split_indices(len(documents), seed=seed, validation_fraction=validation_fraction,
                                    test_fraction=test_fraction)
        except DataError as error:
            raise DataError(f"{name}: {error} (the splits are by document: separate documents with a blank line)"
                            ) from None
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
        _windows([documents[i] for i in split], max_length) for split in indices)
    return DataSplits(name=name, task="language_model", x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
                      x_test=x_test, y_test=y_test, source=source, stream_windows=True,
                      description=f"{description}, windows of {max_length} byte tokens")


def _windows(documents: list[str], length: int) -> tuple[np.ndarray, np.ndarray]:
    """Documents as one stream ⟨begin⟩ doc ⟨end⟩ ⟨begin⟩ doc ⟨end⟩ ..., cut into (x, y) windows of `length`."""
    stream = np.concatenate([np.concatenate([[BEGIN], text_tokens(text), [END]]) for text in documents])
    count = -(-(len(stream) - 1) // length)
    stream = np.pad(stream, (0, count * length + 1 - len(stream)), constant_values=PAD).astype(np.int32)
    x, y = stream[:-1].reshape(count, length), stream[1:].reshape(count, length)  # views, not a copy per window
    return x, np.where(y == BEGIN, PAD, y)  # ⟨begin⟩ is always given, never predicted
