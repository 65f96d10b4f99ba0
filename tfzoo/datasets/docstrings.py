"""Docstrings of the Python standard library and of the distributions tfzoo installs: a language-model corpus
(`library_docs`) and docstring summary/description pairs (`library_docs_headlines`).

Everything is read at run time from the installed .py files with `ast`, never imported (importing is slow, has side
effects and may fail), so the data is whatever this machine has installed: the same on two machines with the same
Python and the same distribution versions, and never committed to the repository. Reading it all takes about a
minute (55-70 s on 2 cores), so the corpus is kept in `$XDG_CACHE_HOME/tfzoo/` (default `~/.cache/tfzoo/`; 30 MB
of JSON), written atomically, one file per fingerprint of what was read: the Python version, the versions of the
distributions, the folders read and `CORPUS_FORMAT`. A new version of any of them builds a new file.

Sizes below were measured on Python 3.11.7 with the distributions of tfzoo's install (TensorFlow 2.21, Keras 3.15,
NumPy 2.4, pandas 3.1, SciPy 1.17, scikit-learn 1.9, Matplotlib 3.11, ...).
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import sys
import sysconfig
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from tfzoo.datasets.base import DataSplits
from tfzoo.datasets.splits import group_split_indices
from tfzoo.datasets.text import (DEFAULT_LENGTH, MIN_ARTICLE_BYTES, PARAGRAPH_BREAK, headline_splits,
                                 language_model_splits, python_topics)
from tfzoo.files import write_text_atomic

# tfzoo's requirements (setup.py) and the distributions they pull in, as pip installs them for tfzoo on Python 3.11.
# Left out: setuptools and wheel (build tools, whose vendored copies of other packages would only add duplicates).
DISTRIBUTIONS = (
    "absl-py", "astunparse", "certifi", "charset-normalizer", "cloudpickle", "contourpy", "cycler", "flatbuffers",
    "fonttools", "gast", "google-pasta", "grpcio", "h11", "h5py", "idna", "joblib", "keras", "kiwisolver", "libclang",
    "markdown", "markdown-it-py", "markupsafe", "matplotlib", "mdurl", "ml-dtypes", "namex", "narwhals", "numpy",
    "opt-einsum", "optree", "packaging", "pandas", "pillow", "protobuf", "pygments", "pyparsing", "python-dateutil",
    "requests", "rich", "scikit-learn", "scipy", "six", "tensorboard", "tensorflow", "tensorflow-serving-api",
    "termcolor", "threadpoolctl", "urllib3", "werkzeug", "wrapt",
)
# Raise it whenever what is extracted changes, so caches built by older code are not read.
CORPUS_FORMAT = 1
# Folders that hold tests (docstrings about the tests, not the library) or copies of other projects (duplicates).
SKIPPED_FOLDERS = frozenset({"test", "tests", "idle_test", "_vendor", "externals", "array_api_compat"})
# A docstring that is a licence or says it was generated is no one's prose; a module whose docstring says it was
# generated (protobuf's _pb2 modules, TensorFlow's gen_*_ops wrappers and API namespaces) is left out whole.
LICENCE = re.compile(r"copyright (\(c\)|\d{4})|licensed under|permission is hereby granted|spdx-license-identifier",
                     re.IGNORECASE)
GENERATED = re.compile(r"(auto|machine|automatically)[- ]?generated|generated (by|protocol buffer)|do not edit"
                       r"|^public api for ", re.IGNORECASE)
# Where a docstring's prose ends: a section of parameters or examples (Google or NumPy style), a field list, a
# directive, a doctest, a table or rule, or a code block (indented or fenced).
SECTION_START = re.compile(r"[^\n]*\n *(-{3,}|={3,}) *(\n|$)|[A-Z][\w ()]{0,30}:\n|[A-Z]\w*( \w+){0,2}:$|:\w|\.\. |>>>"
                           r"|```|[-=*#+|]{3}|\s")
# The end of a summary's first sentence: a period, then the capital that starts the next one.
SENTENCE_END = re.compile(r"\.\s+(?=[A-Z])")
SUMMARY_WORDS = (3, 20)
# An article is prose when most of its whitespace-separated words are words of letters, with their punctuation and
# inline markup (`name`, *emphasis*, "quotes").
WORD = re.compile(r"[(\"'`*]*[A-Za-z][a-z'-]*[)\"'`*]*[.,;:!?]?[)\"'`*]*")
MIN_WORD_SHARE = 0.6
DEDUP_PREFIX_BYTES = 200
SHINGLE_WORDS = 5
NEAR_COPY_SHARE = 0.5


@dataclass(frozen=True)
class Corpus:
    """What `read_corpus` extracts: documents (module, text) and headline pairs (module, article, headline)."""

    documents: list[tuple[str, str]]
    pairs: list[tuple[str, str, str]]


def library_docs(*, seed: int = 0, max_length: int = DEFAULT_LENGTH) -> DataSplits:
    """Language-model documents: each module's docstrings, of the standard library and of `DISTRIBUTIONS`.

    A document is one module's docstrings in source order (the module's, then each class's and function's, a
    nested one after its parent's), separated by blank lines. Left out: a docstring seen before anywhere (same
    words, case and punctuation aside) or a near-copy of an earlier headline pair (see `library_docs_headlines`),
    licences and generated text (`LICENCE`, `GENERATED`), test folders and vendored copies. The Python Language
    Reference topics of `python_docs` come too, one document each (so python_docs_headlines' sections are in here,
    all in one split). Measured: 4,874 documents, 25.3 MB; 55-70 s to read the first time, then 7 s from the cache
    (with the TensorFlow import and the windows). Split by package as `library_docs_headlines` (`package_group`), so
    with the same seed a model pre-trained on this training split never saw a validation or test pair of the
    headlines; with seed 0 the splits hold 71/18/11% of the bytes. Packed into windows of `max_length` tokens:
    99,024 windows of 256, x and y 203 MB together as int32 (the dtype every language-model dataset has).
    """
    corpus = library_corpus()
    modules = [module for module, _ in corpus.documents]
    return language_model_splits(
        [text for _, text in corpus.documents], name="library_docs", seed=seed, max_length=max_length,
        validation_fraction=0.15, test_fraction=0.15, groups=[package_group(module) for module in modules],
        source={"name": "library_docs", "seed": seed, "max_length": max_length},
        description=f"docstrings of the Python {sys.version_info.major}.{sys.version_info.minor} standard library "
                    f"and of {len(installed_versions())} installed distributions: {len(modules)} documents",
    )


def library_docs_headlines(*, seed: int = 0, max_length: int = DEFAULT_LENGTH) -> DataSplits:
    """Article/headline pairs from the docstrings of `library_docs`: the summary over the extended description.

    PEP 257 makes a docstring's first line its summary: the headline is the first sentence of the first paragraph
    (3 to 20 words, ending in a period); the article is the prose that follows it, up to the first section of
    parameters, examples, directives, tables or code, whitespace runs made single spaces: at least 100 bytes and
    mostly words (`is_prose`). So docstrings that are only parameters or doctests give no pair. Many docstrings are
    copied between modules and packages, often with small edits, and templates are filled in for sibling functions:
    reading in order, a pair is left out when it is a near-copy of one kept before (`PairIndex`: the same headline,
    the same article start, or half the article's word 5-grams in common). So no near-copy is left for a split to
    share, and the pairs are split by package (`package_group`: a hash of the package's name and the seed picks its
    split, the same for both datasets), which keeps what is merely alike (sibling modules, one author's wording)
    together too. Measured: 9,817 pairs from 586 packages, 6,822/1,841/1,154 with seed 0; examples as in
    headline_csv.
    """
    corpus = library_corpus()
    groups = [package_group(module) for module, _, _ in corpus.pairs]
    splits = group_split_indices(groups, seed=seed, validation_fraction=0.15, test_fraction=0.15)
    return headline_splits(
        [[corpus.pairs[i][1:] for i in split] for split in splits], name="library_docs_headlines",
        max_length=max_length,
        source={"name": "library_docs_headlines", "seed": seed, "max_length": max_length},
        description=f"docstring summaries over their descriptions, from the Python {sys.version_info.major}."
                    f"{sys.version_info.minor} standard library and {len(installed_versions())} installed "
                    f"distributions: {len(corpus.pairs)} pairs from {len(set(groups))} packages",
    )


def package_group(module: str) -> str:
    """The unit of the split: the package a module is in ('json' of 'json.decoder', 'email' of 'email.mime'), so
    sibling modules, which share wording and templates, stay in one split; a top-level module is its own."""
    return module.rpartition(".")[0] or module


def library_corpus() -> Corpus:
    """The corpus of the standard library and the installed `DISTRIBUTIONS`, from the cache when it was built."""
    return cached_corpus(source_roots(), installed_versions(), topics=True)


def cached_corpus(roots: Sequence[Path], versions: dict[str, str], *, topics: bool = False) -> Corpus:
    """`read_corpus(roots, topics)`, kept in $XDG_CACHE_HOME/tfzoo (default ~/.cache/tfzoo) under a fingerprint of
    the Python version, `versions`, the roots, `topics` and CORPUS_FORMAT: other versions make another file."""
    key = {"format": CORPUS_FORMAT, "python": sys.version, "versions": versions,
           "roots": [str(root) for root in roots], "topics": topics}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tfzoo" / f"library_docs-{digest}.json"
    if path.exists():
        cached = json.loads(path.read_text(encoding="utf-8"))
        return Corpus([tuple(item) for item in cached["documents"]], [tuple(item) for item in cached["pairs"]])
    corpus = read_corpus(roots, topics=topics)
    write_text_atomic(path, json.dumps({"key": key, "documents": corpus.documents, "pairs": corpus.pairs}))
    return corpus


def source_roots(distributions: Sequence[str] = DISTRIBUTIONS) -> list[Path]:
    """The top-level packages and modules of the standard library, then of the installed `distributions`, each
    sorted by name (a distribution not installed is left out)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    roots = [path for path in sorted(stdlib.iterdir())
             if (path.suffix == ".py" or (path / "__init__.py").exists()) and path.name not in SKIPPED_FOLDERS]
    found = set()
    for name in distributions:
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        # RECORD lists every file; a .py file's first path part is its top-level package (or the module itself).
        found.update(Path(distribution.locate_file(file.parts[0])) for file in distribution.files or []
                     if file.suffix == ".py" and ".." not in file.parts)
    return roots + sorted(found)


def installed_versions(distributions: Sequence[str] = DISTRIBUTIONS) -> dict[str, str]:
    """{name: version} of the `distributions` installed here."""
    versions = {}
    for name in distributions:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def read_corpus(roots: Sequence[Path], *, topics: bool = False) -> Corpus:
    """Documents and pairs of the modules under `roots` (packages or single modules), read in order; with `topics`
    the Python Language Reference topics (`python_docs`) come first, one document each."""
    documents = [(f"pydoc_data.topics.{name}", text) for name, text in sorted(python_topics().items()) if topics]
    pairs = []
    seen: set[str] = set()
    kept = PairIndex()
    for module, path in module_files(roots):
        docstrings = []
        for docstring in module_docstrings(path.read_bytes()):
            key = normalized(docstring)
            if key in seen:
                continue
            seen.add(key)
            pair = headline_pair(docstring)
            if pair and not kept.add(*pair):
                continue  # a near-copy: in neither dataset, so no split holds a copy of another split's text
            docstrings.append(docstring)
            if pair:
                pairs.append((module, *pair))
        if docstrings:
            documents.append((module, "\n\n".join(docstrings)))
    return Corpus(documents, pairs)


class PairIndex:
    """The (article, headline) pairs kept so far, to tell a near-copy of one of them from a new pair."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.shingle_counts: list[int] = []
        self.pairs_with: dict[tuple[str, ...], list[int]] = {}  # word shingle -> kept pairs whose article has it

    def add(self, article: str, headline: str) -> bool:
        """Keep the pair and return True, unless it is a near-copy of a kept one: the same headline, the same
        first DEDUP_PREFIX_BYTES of article (both `normalized`), or articles sharing NEAR_COPY_SHARE of their word
        SHINGLE_WORDS-grams (Jaccard; copies edited in a few words, or one template filled in twice)."""
        keys = {"headline " + normalized(headline), "article " + normalized(article[:DEDUP_PREFIX_BYTES])}
        shingles = word_shingles(article)
        shared = Counter(i for shingle in shingles for i in self.pairs_with.get(shingle, ()))
        if keys & self.keys or any(count >= NEAR_COPY_SHARE * (len(shingles) + self.shingle_counts[i] - count)
                                   for i, count in shared.items()):
            return False
        self.keys.update(keys)
        for shingle in shingles:
            self.pairs_with.setdefault(shingle, []).append(len(self.shingle_counts))
        self.shingle_counts.append(len(shingles))
        return True


def word_shingles(text: str) -> set[tuple[str, ...]]:
    """The runs of SHINGLE_WORDS consecutive `normalized` words of `text` (the whole text when shorter)."""
    words = normalized(text).split()
    return {tuple(words[i : i + SHINGLE_WORDS]) for i in range(max(1, len(words) - SHINGLE_WORDS + 1))}


def module_files(roots: Sequence[Path]) -> list[tuple[str, Path]]:
    """(dotted module name, path) of every .py file under `roots`, in root order then path order, leaving out test
    folders, test_*.py files and vendored copies (`SKIPPED_FOLDERS`)."""
    files = []
    for root in roots:
        paths = sorted(root.rglob("*.py"), key=lambda path: path.relative_to(root).parts) if root.is_dir() else [root]
        for path in paths:
            parts = (root.name, *path.relative_to(root).parts) if root.is_dir() else (root.name,)
            if SKIPPED_FOLDERS.intersection(parts[:-1]) or path.name.startswith("test_"):
                continue
            names = [*parts[:-1], path.stem] if path.stem != "__init__" else list(parts[:-1])
            files.append((".".join(names), path))
    return files


def module_docstrings(source: bytes) -> list[str]:
    """The docstrings of a module's source in source order, cleaned (inspect.cleandoc): the module's, then each
    class's and function's, a nested one after its parent's. None that is a LICENCE or GENERATED, none at all of a
    module whose own docstring says it was GENERATED or of a file that does not parse."""
    try:
        with warnings.catch_warnings():  # invalid escapes in old code warn; they are not ours to fix
            warnings.simplefilter("ignore")
            tree = ast.parse(source)
    except (SyntaxError, ValueError):  # Python 2 files, templates, NUL bytes
        return []
    module_docstring = ast.get_docstring(tree)
    if module_docstring and GENERATED.search(module_docstring):
        return []
    found = []

    def visit(node: ast.AST) -> None:
        docstring = ast.get_docstring(node)
        if docstring and not LICENCE.search(docstring) and not GENERATED.search(docstring):
            found.append(docstring)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child)

    visit(tree)
    return found


def headline_pair(docstring: str) -> tuple[str, str] | None:
    """(article, headline) of a docstring: the first sentence of its summary paragraph over the prose that follows
    (the rest of that paragraph, then the paragraphs up to the first `SECTION_START`), or None when that sentence
    is not `SUMMARY_WORDS` words ending in a period, or what follows is not prose (`is_prose`)."""
    paragraphs = PARAGRAPH_BREAK.split(docstring)
    summary = " ".join(paragraphs[0].split())
    end = SENTENCE_END.search(summary)
    headline, prose = (summary[: end.start() + 1], [summary[end.end():]]) if end else (summary, [])
    if (not SUMMARY_WORDS[0] <= len(headline.split()) <= SUMMARY_WORDS[1] or not headline.endswith(".")
            or not headline[0].isalpha() or SECTION_START.match(paragraphs[0])):
        return None
    for paragraph in paragraphs[1:]:
        if SECTION_START.match(paragraph):
            break
        prose.append(" ".join(paragraph.split()))
    if prose and prose[-1].endswith(":"):  # it introduces what was cut ("For example:")
        prose.pop()
    article = " ".join(prose)
    return (article, headline) if is_prose(article) else None


def is_prose(text: str) -> bool:
    """At least MIN_ARTICLE_BYTES bytes, MIN_WORD_SHARE of them in words of letters."""
    words = text.split()
    return (len(text.encode()) >= MIN_ARTICLE_BYTES
            and sum(len(word) for word in words if WORD.fullmatch(word)) >= MIN_WORD_SHARE * sum(map(len, words)))


def normalized(text: str) -> str:
    """Lower-case words of `text`, punctuation and spacing dropped: the key under which near-copies are equal."""
    return " ".join(re.findall(r"\w+", text.lower()))
