"""A smoothed byte-bigram model: the baseline that a language model over the same tokens has to beat.

P(next | previous) = λ · count(previous, next) / count(previous) + (1 − λ) · P(next), where P(next) is the add-one
smoothed unigram probability and λ is chosen on the validation split. It is scored exactly like the Keras
metric BitsPerByte: bits summed over every target that is not padding, divided by the number of byte targets.
"""
from __future__ import annotations

import numpy as np

from tfzoo.datasets import DataSplits
from tfzoo.text.tokenizer import PAD, VOCAB_SIZE, is_byte

WEIGHTS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)  # λ candidates


def bigram_bits_per_byte(data: DataSplits) -> float:
    """Test-split bits per byte of the bigram fitted to the training split, λ picked on the validation split."""
    counts = np.zeros((VOCAB_SIZE, VOCAB_SIZE))
    np.add.at(counts, _pairs(*data.arrays("train")), 1)
    unigram = (counts.sum(axis=0) + 1) / (counts.sum() + VOCAB_SIZE)
    seen = counts.sum(axis=1, keepdims=True)
    conditional = np.divide(counts, seen, out=np.zeros_like(counts), where=seen > 0)

    def bits_per_byte(weight: float, split: str) -> float:
        # An unseen previous token has no conditional distribution: the unigram alone predicts after it.
        mixed = np.where(seen > 0, weight * conditional + (1 - weight) * unigram, unigram)
        previous, following = _pairs(*data.arrays(split))
        return float(-np.log2(mixed[previous, following]).sum() / is_byte(following).sum())

    best = min(WEIGHTS, key=lambda weight: bits_per_byte(weight, "validation"))
    return bits_per_byte(best, "test")


def _pairs(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(previous token, target) of every target that is not padding."""
    targets = y != PAD
    return x[targets], y[targets]
