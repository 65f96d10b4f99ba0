"""Debian package descriptions: each installed package's synopsis over its extended description.

Real article/headline pairs that tfzoo neither wrote nor trains on by default, on every Debian or Ubuntu machine
(CI included), read at run time from dpkg's database and never committed. By the Debian Policy (5.6.13) a package's
`Description` field is a one-line synopsis ("fast, scalable, distributed revision control system") followed by an
extended description of one or more paragraphs: a headline over its article, written by the package's maintainers,
of another kind than docstrings. Measured on this project's CI image (Debian 12): 716 packages, 664 pairs from 371
source packages once descriptions under 100 bytes are left out.
"""
from __future__ import annotations

from email import policy
from email.parser import HeaderParser
from pathlib import Path

from tfzoo.datasets.base import DataSplits
from tfzoo.datasets.splits import group_split_indices
from tfzoo.datasets.text import DEFAULT_LENGTH, MIN_ARTICLE_BYTES, headline_splits
from tfzoo.errors import DataError

DPKG_STATUS = Path("/var/lib/dpkg/status")
INSTALLED = "install ok installed"


def read_descriptions(status_file: str | Path = DPKG_STATUS) -> list[tuple[str, str, str]]:
    """(source package, extended description, synopsis) of every installed package of a dpkg status file whose
    extended description holds at least MIN_ARTICLE_BYTES bytes, in the file's order.

    The file is deb822: paragraphs of RFC 822 fields separated by blank lines, which the standard library's email
    parser reads (folded lines and all). The description's lines lose their leading space; a line " ." is a
    paragraph break; lines are joined with single spaces. The source is the `Source` field's name (binary packages
    built from one source share wording), else the package's own name.
    """
    path = Path(status_file)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise DataError(f"{path} not found: Debian package descriptions need a Debian or Ubuntu machine (dpkg's "
                        "database); use another dataset elsewhere") from None
    parser = HeaderParser(policy=policy.compat32)
    pairs = []
    for paragraph in text.split("\n\n"):
        fields = parser.parsestr(paragraph.strip("\n") + "\n")
        description, status = fields["Description"], fields["Status"]
        if description is None or fields["Package"] is None or (status is not None and status != INSTALLED):
            continue
        synopsis, *lines = description.split("\n")
        article = " ".join(line.strip() for line in lines if line.strip() not in ("", "."))
        if len(article.encode()) >= MIN_ARTICLE_BYTES and synopsis.strip():
            source = (fields["Source"] or fields["Package"]).split()[0]
            pairs.append((source, article, synopsis.strip()))
    if not pairs:
        raise DataError(f"{path} holds no installed package with an extended description of {MIN_ARTICLE_BYTES} "
                        "bytes or more; give a dpkg status file of a Debian or Ubuntu system")
    return pairs


def debian_descriptions(
    *, seed: int = 0, max_length: int = DEFAULT_LENGTH, status_file: str = str(DPKG_STATUS),
    validation_fraction: float = 0.15, test_fraction: float = 0.15,
) -> DataSplits:
    """Article/headline pairs of `read_descriptions`, split by source package (`group_split_indices`: no source
    in two splits); examples as in headline_csv."""
    pairs = read_descriptions(status_file)
    splits = group_split_indices([source for source, _, _ in pairs], seed=seed,
                                 validation_fraction=validation_fraction, test_fraction=test_fraction)
    return headline_splits(
        [[pairs[i][1:] for i in split] for split in splits], name="debian_descriptions", max_length=max_length,
        source={"name": "debian_descriptions", "seed": seed, "max_length": max_length, "status_file": status_file,
                "validation_fraction": validation_fraction, "test_fraction": test_fraction},
        description=f"Debian package synopses over their extended descriptions, from {status_file}: {len(pairs)} "
                    f"pairs from {len({source for source, _, _ in pairs})} source packages",
    )
