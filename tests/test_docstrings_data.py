"""library_docs and library_docs_headlines: docstrings read with ast from installed files, copies left out, split by
package, cached by fingerprint. Each test reads a few stdlib packages or a package written here, never the corpus."""
from __future__ import annotations

import inspect
import json
import sysconfig
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tfzoo.datasets import docstrings, load_dataset
from tfzoo.datasets.docstrings import (cached_corpus, headline_pair, module_docstrings, package_group, read_corpus,
                                       source_roots)
from tfzoo.datasets.splits import group_split_indices
from tfzoo.text.tokenizer import example_headlines, example_prompts

STDLIB = Path(sysconfig.get_paths()["stdlib"])
# Packages with several subpackages each, so a split by package has groups for all three splits.
SMALL_ROOTS = [STDLIB / name for name in ("email", "json", "xml", "textwrap.py", "importlib", "concurrent")]
PROSE = ("It reads the configuration once and keeps it, so later calls are cheap; callers that change the file "
         "must call reload() to see the change.")


def write_package(folder: Path, modules: dict[str, str]) -> Path:
    """A package `folder` with one module per {name: source}."""
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    for name, source in modules.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
    return folder


def function(name: str, docstring: str) -> str:
    """The source of a function with `docstring`."""
    return f"def {name}():\n    {json.dumps(docstring)}\n"


def test_the_docstrings_of_json_and_textwrap_are_read_from_their_files_in_source_order():
    corpus = read_corpus([STDLIB / "json", STDLIB / "textwrap.py"])
    documents = dict(corpus.documents)
    assert list(documents)[:2] == ["json", "json.decoder"] and "textwrap" in documents
    assert documents["json"].startswith(inspect.cleandoc(json.__doc__))
    text = documents["textwrap"]
    assert text.startswith(inspect.cleandoc(textwrap.__doc__))
    wrapper, wrap = inspect.cleandoc(textwrap.TextWrapper.__doc__), inspect.cleandoc(textwrap.wrap.__doc__)
    assert wrapper in text and wrap in text and text.index(wrapper) < text.index(wrap)  # class before later function
    pairs = {headline: (module, article) for module, article, headline in corpus.pairs}
    module, article = pairs["Wrap a single paragraph of text, returning a list of wrapped lines."]
    assert module == "textwrap" and article.startswith("Reformat the single paragraph in 'text' so it fits")
    assert "Optional keyword arguments" not in article  # the parameter section after the prose is not article


def test_licences_generated_code_doctests_and_parameter_lists_give_no_pair(tmp_path):
    package = write_package(tmp_path / "pkg", {
        "licensed": '"""Copyright 2020 Someone. Licensed under the Apache License, Version 2.0."""\n'
                    + function("kept", "A docstring after the licence."),
        "generated": '"""Generated protocol buffer code."""\n' + function("kept_out", "Load the file.\n\n" + PROSE),
        "mixed": function("good", "Load the configuration file.\n\n" + PROSE)
                 + function("doctest", "Add two numbers together.\n\n>>> add(1, 2)\n3\n>>> add(2, 2)\n4")
                 + function("parameters", "Add two numbers together.\n\nArgs:\n  a: the first number, an int.\n"
                                          "  b: the second number, an int; the sum is returned.\n")
                 + function("numpy", "Add two numbers together.\n\nParameters\n----------\na : int\n    The first "
                                     "number, which the function adds to the second number and returns.")
                 + function("licence", "Permission is hereby granted, free of charge, to any person obtaining it."),
    })
    assert module_docstrings((package / "licensed.py").read_bytes()) == ["A docstring after the licence."]
    assert module_docstrings((package / "generated.py").read_bytes()) == []
    assert len(module_docstrings((package / "mixed.py").read_bytes())) == 4  # the licence left out
    corpus = read_corpus([package])
    assert corpus.pairs == [("pkg.mixed", PROSE, "Load the configuration file.")]
    assert headline_pair("Short.\n\n" + PROSE) is None  # a one-word summary is no headline
    assert headline_pair("Load the configuration file\n\n" + PROSE) is None  # not a sentence


def test_copies_and_near_copies_are_kept_once_in_both_datasets(tmp_path):
    edited = PROSE.replace("cheap", "fast")
    package = write_package(tmp_path / "pkg", {
        "first": function("load", "Load the configuration file.\n\n" + PROSE),
        "second": function("load", "Load   the configuration\nfile.\n\n" + PROSE)  # the same but for spacing
                  + function("read", "Read the configuration file.\n\n" + edited)  # an edited copy
                  + function("parse", "Load the configuration file.\n\nA different description of a different "
                                      "function, long enough to be an article of its own, about parsing things.")
                  + function("save", "Save the configuration file.\n\nWrites the settings back where they were read, "
                                     "keeping the comments and the order of the keys as they were."),
    })
    corpus = read_corpus([package])
    assert [(module, headline) for module, _, headline in corpus.pairs] == [
        ("pkg.first", "Load the configuration file."), ("pkg.second", "Save the configuration file.")]
    assert "Read the configuration file." not in dict(corpus.documents)["pkg.second"]  # left out of documents too


def test_no_package_is_in_two_splits_and_both_datasets_split_alike():
    corpus = read_corpus(SMALL_ROOTS)
    groups = [package_group(module) for module, _, _ in corpus.pairs]
    assert package_group("email.mime.text") == "email.mime" and package_group("textwrap") == "textwrap"
    splits = group_split_indices(groups, seed=0, validation_fraction=0.15, test_fraction=0.15)
    assert sorted(np.concatenate(splits).tolist()) == list(range(len(groups)))
    packages = [{groups[i] for i in split} for split in splits]
    assert all(packages) and not (packages[0] & packages[1] or packages[0] & packages[2] or packages[1] & packages[2])
    # A group's split depends on (seed, group) alone: the documents' packages fall where the pairs' do.
    document_groups = [package_group(module) for module, _ in corpus.documents]
    document_splits = group_split_indices(document_groups, seed=0, validation_fraction=0.15, test_fraction=0.15)
    for pair_packages, split in zip(packages, document_splits):
        assert pair_packages <= {document_groups[i] for i in split}
    many = [f"package{i}" for i in range(100)]
    seeded = [group_split_indices(many, seed=seed, validation_fraction=0.15, test_fraction=0.15) for seed in (0, 1)]
    assert [set(split) for split in seeded[0]] != [set(split) for split in seeded[1]]
    # Adding groups moves none of the others (the split is per group), so a new package keeps the old ones in place.
    more = group_split_indices([*many, "new1", "new2"], seed=0, validation_fraction=0.15, test_fraction=0.15)
    assert [set(split) for split in seeded[0]] == [set(split) - {100, 101} for split in more]


def test_reading_is_deterministic_and_in_sorted_order():
    first, second = read_corpus(SMALL_ROOTS), read_corpus(SMALL_ROOTS)
    assert first == second and len(first.pairs) > 100
    roots = source_roots(["numpy", "not-an-installed-distribution"])
    assert roots == source_roots(["numpy", "not-an-installed-distribution"]) and roots[-1].name == "numpy"
    assert STDLIB / "json" in roots and not any(root.name in ("test", "site-packages") for root in roots)


def test_the_cache_is_read_back_and_keyed_by_the_versions(tmp_path, monkeypatch):
    roots = [STDLIB / "json"]
    built = []
    monkeypatch.setattr(docstrings, "read_corpus", lambda *args, **kwargs: built.append(1) or read_corpus(*args))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    corpus = cached_corpus(roots, {"numpy": "2.0"})
    assert built == [1] and len(list((tmp_path / "tfzoo").glob("library_docs-*.json"))) == 1
    assert cached_corpus(roots, {"numpy": "2.0"}) == corpus and built == [1]  # read back, not rebuilt
    assert cached_corpus(roots, {"numpy": "2.1"}) == corpus and built == [1, 1]  # another version: rebuilt
    assert len(list((tmp_path / "tfzoo").glob("library_docs-*.json"))) == 2
    assert not list((tmp_path / "tfzoo").glob(".*"))  # no temporary left behind


def test_the_datasets_are_headline_examples_and_windows_that_rebuild_from_their_source(monkeypatch):
    small = read_corpus(SMALL_ROOTS)
    monkeypatch.setattr(docstrings, "library_corpus", lambda: small)
    headlines = load_dataset("library_docs_headlines", seed=0, max_length=128)
    assert headlines.input_shape == (128,) and not headlines.stream_windows
    assert sum(headlines.num_examples(split) for split in ("train", "validation", "test")) == len(small.pairs)
    pairs = {(article, headline) for _, article, headline in small.pairs}
    for prompt, headline in zip(example_prompts(headlines.x_val), example_headlines(headlines.x_val)):
        assert any(h.startswith(headline) and a.startswith(prompt) for a, h in pairs)  # both may be cut
    source = json.loads(json.dumps(headlines.source))
    assert load_dataset(**source).fingerprint == headlines.fingerprint
    documents = load_dataset("library_docs", seed=0, max_length=64)
    assert documents.stream_windows and documents.x_train.dtype == np.int32 and documents.input_shape == (64,)
    assert str(len(small.documents)) in documents.description


@pytest.mark.parametrize("name", ["library_docs", "library_docs_headlines"])
def test_both_datasets_are_in_the_catalog(name):
    from tfzoo.datasets.catalog import list_datasets, loader

    assert name in list_datasets() and loader(name).__doc__
