"""debian_descriptions: installed packages' synopses over their extended descriptions, read from a dpkg status file
(deb822), split by source package. The tests write their own status files."""
from __future__ import annotations

from pathlib import Path

import pytest

from tfzoo.datasets import load_dataset
from tfzoo.datasets.debian import read_descriptions
from tfzoo.errors import DataError
from tfzoo.text.tokenizer import example_headlines, example_prompts

LONG = ("The library reads and writes the format in streaming fashion, so files larger than memory are handled; "
        "it is used by the archive tools of the system.")


def package(name: str, synopsis: str, description: str, *, source: str | None = None,
            status: str = "install ok installed") -> str:
    """One deb822 paragraph of a dpkg status file."""
    lines = [f"Package: {name}", f"Status: {status}", "Priority: optional"]
    if source:
        lines.append(f"Source: {source}")
    lines.append(f"Description: {synopsis}")
    lines += [" " + line if line != "." else " ." for line in description.split("\n")]
    return "\n".join(lines) + "\n"


def write_status(path: Path, paragraphs: list[str]) -> Path:
    path.write_text("\n".join(paragraphs), encoding="utf-8")
    return path


def test_the_synopsis_is_the_headline_and_the_extended_description_the_article(tmp_path):
    status = write_status(tmp_path / "status", [
        package("libarchive13", "multi-format archive and compression library (shared library)",
                f"{LONG}\n.\nThis package contains:\n  * the shared library\n  * its translations",
                source="libarchive (3.6.2-1)"),
        package("zstd", "fast lossless compression algorithm -- CLI tool", LONG),
        package("removed", "a package whose files are gone", LONG, status="deinstall ok config-files"),
        package("tiny", "a package with a short description", "Too short to be an article."),
    ])
    assert read_descriptions(status) == [
        ("libarchive", f"{LONG} This package contains: * the shared library * its translations",
         "multi-format archive and compression library (shared library)"),
        ("zstd", LONG, "fast lossless compression algorithm -- CLI tool"),  # no Source: the package is its source
    ]


def test_a_missing_status_file_or_one_without_descriptions_is_refused_in_one_line(tmp_path):
    with pytest.raises(DataError, match=r"not found: Debian package descriptions need a Debian or Ubuntu machine"):
        read_descriptions(tmp_path / "absent")
    status = write_status(tmp_path / "status", [package("tiny", "short", "Too short to be an article.")])
    with pytest.raises(DataError, match="holds no installed package with an extended description of 100 bytes"):
        read_descriptions(status)


def test_the_dataset_keeps_each_source_package_in_one_split(tmp_path):
    paragraphs = [package(f"lib{source}{kind}", f"{source} {kind} synopsis", f"{LONG} Source {source}, {kind}.",
                          source=f"src{source}")
                  for source in range(24) for kind in ("1", "-dev")]
    status = write_status(tmp_path / "status", paragraphs)
    data = load_dataset("debian_descriptions", status_file=str(status), validation_fraction=0.25, test_fraction=0.25)
    sources = [{prompt.rsplit("Source ", 1)[1].split(",")[0] for prompt in example_prompts(x, max_bytes=1000)}
               for x in (data.x_train, data.x_val, data.x_test)]
    assert all(sources) and not (sources[0] & sources[1] or sources[0] & sources[2] or sources[1] & sources[2])
    assert sum(len(x) for x in (data.x_train, data.x_val, data.x_test)) == 48
    headlines = set(example_headlines(data.x_train))
    assert headlines and all(headline.endswith(" synopsis") for headline in headlines)
