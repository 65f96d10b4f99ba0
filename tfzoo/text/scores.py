"""ROUGE and BLEU of generated text against one reference each, in pure Python (no scoring package needed).

Text is compared as lowercase word tokens: `words(text)` is `re.findall(r"\\w+", text.lower())`, so punctuation
and case do not count (for ASCII text the tokens are those of the `rouge-score` package without stemming).

ROUGE (Lin 2004, "ROUGE: A Package for Automatic Evaluation of Summaries"): per pair, ROUGE-N counts the n-grams
of the candidate that are also in the reference (clipped by the reference's count), recall = overlap / reference
n-grams, precision = overlap / candidate n-grams; ROUGE-L takes the longest common subsequence as the overlap of
unigrams. Each pair's F1 (2PR / (P + R), 0 when nothing overlaps) is averaged over the pairs.

BLEU (Papineni et al. 2002): corpus-level, the clipped n-gram matches and candidate n-grams of every pair summed
first, then modified precisions p1..p4, their geometric mean, times the brevity penalty exp(1 - r / c) when the
candidates' c words are fewer than the references' r. Smoothing: add one to the matches and to the candidate
n-grams of each order n > 1, p_n = (matches + 1) / (n-grams + 1), as BLEU+1 does (Lin & Och 2004; Chen & Cherry
2014, smoothing 2). Headlines are short: unsmoothed, a corpus of 3-word headlines would score 0 for having no
4-grams, and one 4-gram order without a match would zero everything else. p1 is not smoothed, so candidates with
no word of their references score 0. Every score is in [0, 1].

`lead` is the usual baseline of headline and summary scores: the article's first words.

Diversity, with no reference: `distinct_n` (Li et al. 2016, "A Diversity-Promoting Objective Function for Neural
Conversation Models") is the share of the texts' word n-grams that are distinct, over all texts together; text
stuck in a loop repeats its n-grams and scores low. `repeats_ngram` tells whether one text repeats a word n-gram.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

BLEU_ORDER = 4
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """The lowercase word tokens every score compares."""
    return _WORD.findall(text.lower())


def rouge_n(candidate: str, reference: str, n: int) -> float:
    """ROUGE-N F1 of one candidate against its reference."""
    candidate_grams, reference_grams = _ngrams(words(candidate), n), _ngrams(words(reference), n)
    overlap = sum((candidate_grams & reference_grams).values())
    return _f1(overlap, sum(candidate_grams.values()), sum(reference_grams.values()))


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 of one candidate against its reference: the longest common subsequence of their words."""
    candidate_words, reference_words = words(candidate), words(reference)
    return _f1(_lcs_length(candidate_words, reference_words), len(candidate_words), len(reference_words))


def corpus_bleu(candidates: Sequence[str], references: Sequence[str], max_order: int = BLEU_ORDER) -> float:
    """BLEU of all candidates against their references (one each), with n-grams up to `max_order`."""
    _check_pairs(candidates, references)
    matches, totals = [0] * max_order, [0] * max_order
    candidate_length = reference_length = 0
    for candidate, reference in zip(candidates, references):
        candidate_words, reference_words = words(candidate), words(reference)
        candidate_length += len(candidate_words)
        reference_length += len(reference_words)
        for n in range(1, max_order + 1):
            candidate_grams = _ngrams(candidate_words, n)
            matches[n - 1] += sum((candidate_grams & _ngrams(reference_words, n)).values())
            totals[n - 1] += sum(candidate_grams.values())
    if matches[0] == 0:  # no word in common (or no candidate word at all)
        return 0.0
    log_precision = math.log(matches[0] / totals[0]) + sum(
        math.log((match + 1) / (total + 1)) for match, total in zip(matches[1:], totals[1:]))
    log_brevity = min(0.0, 1 - reference_length / candidate_length)  # a penalty only for too few words
    return math.exp(log_brevity + log_precision / max_order)


def headline_scores(candidates: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """rouge1, rouge2, rougeL (mean F1 over the pairs) and bleu (corpus) of candidates against references."""
    _check_pairs(candidates, references)
    pairs = list(zip(candidates, references))
    if not pairs:
        raise ValueError("no candidate/reference pairs to score")
    return {"rouge1": sum(rouge_n(c, r, 1) for c, r in pairs) / len(pairs),
            "rouge2": sum(rouge_n(c, r, 2) for c, r in pairs) / len(pairs),
            "rougeL": sum(rouge_l(c, r) for c, r in pairs) / len(pairs),
            "bleu": corpus_bleu(candidates, references)}


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct word n-grams over all n-grams of `texts` (each text's n-grams, counted together); 0 when none."""
    grams = Counter()
    for text in texts:
        grams.update(_ngrams(words(text), n))
    return len(grams) / sum(grams.values()) if grams else 0.0


def repeats_ngram(text: str, n: int) -> bool:
    """Whether some word n-gram occurs more than once in `text`."""
    return any(count > 1 for count in _ngrams(words(text), n).values())


def lead(text: str, count: int) -> str:
    """The lead baseline: `text` up to the end of its `count`-th word, as written (all of it when shorter)."""
    ends = [match.end() for match in _WORD.finditer(text)]
    return text[: ends[min(count, len(ends)) - 1]] if ends and count > 0 else ""


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _f1(overlap: int, candidate_count: int, reference_count: int) -> float:
    if overlap == 0:
        return 0.0
    precision, recall = overlap / candidate_count, overlap / reference_count
    return 2 * precision * recall / (precision + recall)


def _lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence, by dynamic programming over one row at a time."""
    row = [0] * (len(b) + 1)
    for token in a:
        previous_diagonal = 0
        for j, other in enumerate(b, start=1):
            previous_diagonal, row[j] = row[j], (previous_diagonal + 1 if token == other
                                                 else max(row[j], row[j - 1]))
    return row[-1]


def _check_pairs(candidates: Sequence[str], references: Sequence[str]) -> None:
    if len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} candidates but {len(references)} references; give one reference each")
