"""ROUGE and BLEU against published values: ROUGE-1.5.5 (the official Perl ROUGE) as recorded in the rouge-score
package's tests, the examples of the ROUGE and BLEU papers, and small cases computed by hand in the comments."""
from __future__ import annotations

import math

import pytest

from tfzoo.text.scores import corpus_bleu, distinct_n, headline_scores, repeats_ngram, rouge_l, rouge_n, words

# google-research/google-research rouge/testdata/{target,prediction}.txt, lines 1 and 2: random strings whose
# F1 scores rouge/rouge_scorer_test.py records from manual runs of ROUGE-1.5.5 (testRouge1AgainstRouge155,
# testRouge2AgainstRouge155, testRougeLAgainstRouge155).
TARGETS = [
    "ZfbCUIUuePaiLVUlCaUXxkpu XPeWing tUHfPMuZ',-Xd Y BrUgVJing M-HV.-DgdDaY.rFDJCRing Ht-LM EKBDXkME,yz'RBr q'wtion "
    "wIojNbN wL,b .a-'XdQggyFl jB-RPP'iyOIcUxer tKM L",
    "KsJdPByEtAor fE-Qg Dpdbring cw-WeFyu vC MoBL Xdn g wkvcEiGvKtion BDFhrpMtion psing sbKao Q m qiing LMmer "
    "HqqLFXe,XPY,J XsurkMer ,ed nB'wH'bWVHjWFEing tQ.saefZwJtKrTlixYpMMsJing UCAPwNHeYVjDing c T BUySKtion gMPfJpwGw "
    "p'NvxAoping eu pBwMBKV'I DNxqelhu,PHPxDEq,mtion SN",
]
PREDICTIONS = [
    "rFDJCRtion Ht-LM EKtDXkME,yz'RBr q'wer wrojNbN wL,b .a-'XdQggyFl jB-RPP'iyOIcUxi",
    "n cw-WeFyu vC MoBL Xdn g wkvcEiGvKtion BDFhrpMer pstion sbKao Q m qier LMmed HqqLFXe,XPY,J XsurkMeo ,ed "
    "nB'wH'bWVHjWFEer tQ.saefZwJtKrTlixYpMMNJtion UCAPwNHeYVjD",
]


@pytest.mark.parametrize("index, rouge1, rouge2, rougeL", [(0, 0.51163, 0.39024, 0.51163),
                                                           (1, 0.50000, 0.36364, 0.50000)])
def test_rouge_matches_rouge_155(index, rouge1, rouge2, rougeL):
    prediction, target = PREDICTIONS[index], TARGETS[index]
    assert rouge_n(prediction, target, 1) == pytest.approx(rouge1, abs=5e-6)
    assert rouge_n(prediction, target, 2) == pytest.approx(rouge2, abs=5e-6)
    assert rouge_l(prediction, target) == pytest.approx(rougeL, abs=5e-6)


def test_rouge_small_cases_of_the_rouge_score_tests_and_the_rouge_paper():
    # rouge_scorer_test.py: testRouge1 (F 1/2), testRouge2 (F 2/3), testRougeLNonConsecutive (F 4/5), testRougeEmpty.
    assert rouge_n("testing", "testing one two", 1) == pytest.approx(1 / 2)
    assert rouge_n("testing one", "testing one two", 2) == pytest.approx(2 / 3)
    assert rouge_l("testing two", "testing one two") == pytest.approx(4 / 5)
    assert rouge_n("", "testing one two", 1) == rouge_l("", "testing one two") == 0.0
    # Lin 2004, section 3.1: reference S1 "police killed the gunman"; S2 and S3 have the same ROUGE-2 (1 bigram of
    # 3) but ROUGE-L tells them apart: LCS "police the gunman" (3 of 4 words) against "the gunman" (2 of 4).
    reference = "police killed the gunman"
    assert rouge_n("police kill the gunman", reference, 2) == rouge_n("the gunman kill police", reference, 2)
    assert rouge_n("police kill the gunman", reference, 2) == pytest.approx(1 / 3)
    assert rouge_l("police kill the gunman", reference) == pytest.approx(3 / 4)
    assert rouge_l("the gunman kill police", reference) == pytest.approx(2 / 4)


def test_words_are_lowercase_and_drop_punctuation():
    assert words('The "if" Statement, again!') == ["the", "if", "statement", "again"]
    assert rouge_n("THE IF STATEMENT", 'The "if" statement', 2) == 1.0


def test_bleu_modified_precision_of_the_bleu_paper():
    # Papineni et al. 2002, section 2.1.1: "the the the the the the the" against "the cat is on the mat": "the"
    # is clipped to its 2 occurrences in the reference, a modified unigram precision of 2/7. The candidate is
    # longer than the reference, so there is no brevity penalty and unigram BLEU is that precision.
    assert corpus_bleu(["the the the the the the the"], ["the cat is on the mat"], max_order=1) == pytest.approx(2 / 7)


def test_bleu_by_hand():
    # "the cat sat on the mat" against "the cat is on the mat": unigrams 5/6 (the x2, cat, on, mat); bigrams 3 of 5
    # (the cat, on the, the mat), trigrams 1 of 4 (on the mat), 4-grams 0 of 3, each plus one: 4/6, 2/5, 1/4;
    # equal lengths, no penalty: (5/6 * 4/6 * 2/5 * 1/4) ** (1/4) = (1/18) ** (1/4).
    assert corpus_bleu(["the cat sat on the mat"], ["the cat is on the mat"]) == pytest.approx((1 / 18) ** 0.25)
    # Every n-gram matches but 4 words stand for 6: brevity penalty exp(1 - 6/4).
    assert corpus_bleu(["a b c d"], ["a b c d e f"]) == pytest.approx(math.exp(-0.5))
    # Corpus level, counts summed before dividing: 1-grams 4/6, 2-grams (3+1)/(4+1), 3-grams (2+1)/(2+1), 4-grams
    # (1+1)/(1+1). The second pair alone has no word in common and would score 0.
    assert corpus_bleu(["a b c d", "x y"], ["a b c d", "a b"]) == pytest.approx((4 / 6 * 4 / 5) ** 0.25)
    assert corpus_bleu(["x y"], ["a b"]) == 0.0
    assert corpus_bleu(["a b c d"], ["a b c d"]) == 1.0
    # Short candidates still score: no 4-gram anywhere is (0+1)/(0+1); 3 words for 7, penalty exp(1 - 7/3).
    assert corpus_bleu(["a b c", ""], ["a b c", "d e f g"]) == pytest.approx(math.exp(1 - 7 / 3))
    assert corpus_bleu([""], ["a b"]) == 0.0
    assert corpus_bleu(["case Punctuation, ignored!"], ["Case punctuation ignored"], max_order=3) == 1.0


def test_headline_scores_average_rouge_over_pairs():
    scores = headline_scores(["police kill the gunman", "testing"], ["police killed the gunman", "testing one two"])
    assert scores["rouge1"] == pytest.approx((3 / 4 + 1 / 2) / 2)
    assert scores["rouge2"] == pytest.approx((1 / 3 + 0) / 2)
    assert scores["rougeL"] == pytest.approx((3 / 4 + 1 / 2) / 2)
    # BLEU: 5 candidate words for 7, penalty exp(1 - 7/5); 1-grams 4/5, 2-grams (1+1)/(3+1), 3-grams (0+1)/(2+1),
    # 4-grams (0+1)/(1+1).
    assert scores["bleu"] == pytest.approx(math.exp(-0.4) * (4 / 5 * 1 / 2 * 1 / 3 * 1 / 2) ** 0.25)
    with pytest.raises(ValueError, match="2 candidates but 1 references"):
        headline_scores(["a", "b"], ["a"])


def test_distinct_n_counts_word_ngrams_over_all_texts():
    # "the cat the cat" has bigrams (the cat), (cat the), (the cat): 2 distinct of 3. With "a dog" added: 3 of 4.
    assert distinct_n(["the cat the cat"], 2) == pytest.approx(2 / 3)
    assert distinct_n(["The cat, the cat.", "a dog"], 2) == pytest.approx(3 / 4)
    assert distinct_n(["one two three"], 1) == 1.0
    assert distinct_n(["one", ""], 2) == 0.0  # no bigram at all


def test_a_loop_repeats_its_ngrams():
    loop = "the value of the value of the value of"
    assert repeats_ngram(loop, 3) and distinct_n([loop], 3) == pytest.approx(3 / 7)
    assert not repeats_ngram("the value of an object", 3)
