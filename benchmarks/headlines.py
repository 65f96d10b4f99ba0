"""Headlines on real pairs: the default headline command against the lead baseline, scored on held-out pairs.

    python benchmarks/headlines.py                          # both pair sets
    python benchmarks/headlines.py --sets debian            # one; --max-pairs N, --seed S
    python benchmarks/headlines.py --train-arg=--epochs=20  # a recipe experiment: extra `tfzoo train` arguments

Pair sets, each split by source so that no source has pairs on both sides (`group_split_indices`, --seed):
- `library_docs_headlines` (the development set): docstring summaries over their descriptions, its own train
  split to fine-tune on (its first --max-pairs pairs) and its test split held out (other packages).
- `debian`: Debian package synopses over their extended descriptions, of the packages installed on this machine
  (`tfzoo.datasets.debian`): real pairs of another kind that tfzoo never trains on, half the source packages to
  fine-tune on and half held out.
For each set the fine-tune pairs are written as pairs.csv (article, headline) and the default headline command runs
as a subprocess, timed: `python -m tfzoo train text_generator --csv pairs.csv --text-column article --target
headline --run-dir DIR --quiet` (plus any --train-arg). Then `python -m tfzoo export DIR --model-base BASE`, and the
export's `serving_default`, loaded with tf.saved_model.load as TF Serving would load it, writes a headline for each
held-out article. Scores (tfzoo.text.scores): ROUGE-1/2/L F1 averaged over the pairs and corpus BLEU, beside
lead-k, the article's first k words, for k = 5, 8, 10; the last column is ROUGE-L minus the best lead-k's.
"""
from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tensorflow as tf

from tfzoo.datasets.debian import read_descriptions
from tfzoo.datasets.docstrings import library_corpus, package_group
from tfzoo.datasets.splits import group_split_indices
from tfzoo.text.scores import headline_scores, lead

LEAD_WORDS = (5, 8, 10)
SETS = ("library_docs_headlines", "debian")
Pair = tuple[str, str]  # (article, headline)


def pair_halves(name: str, max_pairs: int, seed: int) -> tuple[list[Pair], list[Pair]]:
    """(fine-tune pairs, held-out pairs) of a pair set, split by source."""
    if name == "debian":
        rows = read_descriptions()
        fine_tune, _, held_out = group_split_indices([source for source, _, _ in rows], seed=seed,
                                                     validation_fraction=0.0, test_fraction=0.5)
    else:
        rows = library_corpus().pairs
        fine_tune, _, held_out = group_split_indices([package_group(module) for module, _, _ in rows], seed=seed,
                                                     validation_fraction=0.15, test_fraction=0.15)
    return [rows[i][1:] for i in fine_tune[:max_pairs]], [rows[i][1:] for i in held_out]


def headlines(version_dir: Path, articles: list[str], batch: int = 32) -> list[str]:
    """The headlines the exported model's serving_default writes for `articles`."""
    function = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    texts = []
    for start in range(0, len(articles), batch):
        outputs = function(prompt=tf.constant(articles[start:start + batch]))
        texts += [text.decode("utf-8", "replace") for text in outputs["text"].numpy()]
    return texts


def run_set(name: str, args: argparse.Namespace, folder: Path) -> None:
    fine_tune, held_out = pair_halves(name, args.max_pairs, args.seed)
    pairs_csv = folder / f"{name}.csv"
    with pairs_csv.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["article", "headline"])
        writer.writerows(fine_tune)
    run_dir, model_base = folder / f"{name}-run", folder / f"{name}-models"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tfzoo", "train", "text_generator", "--csv", str(pairs_csv),
                    "--text-column", "article", "--target", "headline", "--run-dir", str(run_dir), "--quiet",
                    *args.train_arg], check=True)
    seconds = time.perf_counter() - started
    subprocess.run([sys.executable, "-m", "tfzoo", "export", str(run_dir), "--model-base", str(model_base)],
                   check=True, stdout=subprocess.DEVNULL)
    version_dir = max((model_base / "text_generator").iterdir(), key=lambda path: int(path.name))
    articles, references = [article for article, _ in held_out], [headline for _, headline in held_out]
    generated = headlines(version_dir, articles)
    systems = {"tfzoo": generated, **{f"lead-{k}": [lead(article, k) for article in articles] for k in LEAD_WORDS}}
    scores = {system: headline_scores(texts, references) for system, texts in systems.items()}
    best_lead = max(scores[f"lead-{k}"]["rougeL"] for k in LEAD_WORDS)
    print(f"{name}: fine-tuned on {len(fine_tune)} pairs in {seconds:.0f} s, scored on {len(held_out)} held-out "
          f"pairs of other sources")
    print(f"  {'system':8} {'ROUGE-1':>8} {'ROUGE-2':>8} {'ROUGE-L':>8} {'BLEU':>6} {'L - best lead':>14}")
    for system, score in scores.items():
        print(f"  {system:8} {score['rouge1']:8.3f} {score['rouge2']:8.3f} {score['rougeL']:8.3f} {score['bleu']:6.3f} "
              f"{score['rougeL'] - best_lead:+14.3f}")
    for (article, reference), text in list(zip(held_out, generated))[:args.examples]:
        print(f"    {text!r} <- reference {reference!r}")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated pair sets (default %(default)s)")
    parser.add_argument("--max-pairs", type=int, default=2000, help="fine-tune pairs at most (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="split seed (default %(default)s)")
    parser.add_argument("--examples", type=int, default=5, help="headlines printed per set (default %(default)s)")
    parser.add_argument("--train-arg", action="append", default=[], metavar="ARG",
                        help="an extra `tfzoo train` argument, e.g. --train-arg=--epochs=20 (repeatable)")
    args = parser.parse_args()
    unknown = set(args.sets.split(",")) - set(SETS)
    if unknown:
        parser.error(f"unknown pair sets {sorted(unknown)}; choose from {', '.join(SETS)}")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.sets.split(","):
            run_set(name, args, Path(folder))


if __name__ == "__main__":
    main()
