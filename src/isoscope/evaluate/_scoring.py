"""Scorers: correlation of cosine similarity with gold scores, and 3CosAdd analogy accuracy.

Word look-ups follow gensim's ``KeyedVectors.evaluate_word_pairs`` and
``evaluate_word_analogies``: only the first ``restrict_vocab`` words of the table are used, look-ups
are case-insensitive by upper-casing (the first, most frequent, case variant wins), and a pair or
question with an out-of-vocabulary word is skipped and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from isoscope.errors import InputError

#: gensim's default vocabulary restriction for word similarity and analogies.
DEFAULT_RESTRICT_VOCAB = 300_000


def row_cosines(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of ``A`` with the same row of ``B`` (float64).

    A zero vector has cosine 0 with everything (as gensim's ``unitvec`` gives).
    """
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    na = np.linalg.norm(A, axis=1)
    nb = np.linalg.norm(B, axis=1)
    denom = na * nb
    dots = np.einsum("ij,ij->i", A, B)
    return np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)


def correlations(predicted: Sequence[float] | np.ndarray, gold: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Spearman and Pearson correlation x 100 between predictions and gold scores.

    Returns
    -------
    spearman, pearson : float
        Both x 100; NaN when fewer than two pairs or a constant input leaves them undefined.
    """
    pred = np.asarray(predicted, dtype=np.float64)
    ref = np.asarray(gold, dtype=np.float64)
    if pred.shape != ref.shape:
        raise InputError(f"Got {pred.size} predictions for {ref.size} gold scores.")
    if pred.size < 2 or np.ptp(pred) == 0 or np.ptp(ref) == 0:
        return float("nan"), float("nan")
    rho = stats.spearmanr(ref, pred).statistic
    r = stats.pearsonr(ref, pred).statistic
    return 100.0 * float(rho), 100.0 * float(r)


def vocabulary_index(
    words: Sequence[str], *, restrict_vocab: int | None = DEFAULT_RESTRICT_VOCAB, case_insensitive: bool = True
) -> dict[str, int]:
    """Map look-up keys to rows, as gensim builds ``ok_vocab``.

    Parameters
    ----------
    words : sequence of str
        Table vocabulary in row order (most frequent first for GloVe/word2vec).
    restrict_vocab : int or None
        Only the first ``restrict_vocab`` rows are searchable (None: all).
    case_insensitive : bool
        Keys are upper-cased; when several case variants exist the first row wins.
    """
    ok = words[:restrict_vocab] if restrict_vocab is not None else words
    index: dict[str, int] = {}
    for i, w in enumerate(ok):
        index.setdefault(w.upper() if case_insensitive else w, i)
    return index


@dataclass
class PairScore:
    """Correlation of model similarities with gold scores on one set of pairs.

    Attributes
    ----------
    spearman, pearson : float
        Correlations x 100 over the scored pairs.
    n : int
        Pairs in the correlation (with ``dummy4unknown`` this includes the OOV pairs).
    oov : int
        Pairs skipped (or given similarity 0 with ``dummy4unknown``) because a word was missing.
    similarities : numpy.ndarray
        Model cosine of each scored pair.
    """

    spearman: float
    pearson: float
    n: int
    oov: int = 0
    similarities: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    dummy4unknown: bool = False

    @property
    def oov_ratio(self) -> float:
        """Percentage of out-of-vocabulary pairs, computed exactly as gensim's ``oov_ratio``."""
        total = self.n if self.dummy4unknown else self.n + self.oov
        return 100.0 * self.oov / total if total else 0.0


def score_sentence_pairs(E1: np.ndarray, E2: np.ndarray, gold: np.ndarray) -> PairScore:
    """Spearman/Pearson x 100 of the cosine between paired sentence vectors and gold scores."""
    if E1.shape != E2.shape or E1.shape[0] != len(gold):
        raise InputError(
            f"Sentence vectors of shapes {E1.shape} and {E2.shape} do not match {len(gold)} gold scores."
        )
    sims = row_cosines(E1, E2)
    rho, r = correlations(sims, gold)
    return PairScore(rho, r, int(len(gold)), 0, sims)


def score_word_pairs(
    words: Sequence[str],
    vectors: np.ndarray,
    word1: Sequence[str],
    word2: Sequence[str],
    gold: np.ndarray,
    *,
    restrict_vocab: int | None = DEFAULT_RESTRICT_VOCAB,
    case_insensitive: bool = True,
    dummy4unknown: bool = False,
    index: dict[str, int] | None = None,
) -> PairScore:
    """Word similarity: correlation of cosine with gold, OOV handled as gensim does.

    Parameters
    ----------
    words, vectors : sequence of str, ndarray (V, d)
        The word table (row order matters for ``restrict_vocab``).
    word1, word2, gold : sequences
        The pairs and their human scores.
    restrict_vocab : int or None
        Only the first rows are known (gensim's default 300,000).
    case_insensitive : bool
        Upper-case look-ups, first case variant wins.
    dummy4unknown : bool
        Give OOV pairs similarity 0 instead of skipping them.
    index : dict, optional
        A prebuilt :func:`vocabulary_index` (for speed when scoring many sets).

    Returns
    -------
    PairScore
    """
    if index is None:
        index = vocabulary_index(words, restrict_vocab=restrict_vocab, case_insensitive=case_insensitive)
    key = (lambda w: w.upper()) if case_insensitive else (lambda w: w)
    rows_a: list[int] = []
    rows_b: list[int] = []
    kept_gold: list[float] = []
    dummy_at: list[int] = []
    oov = 0
    for a, b, g in zip(word1, word2, np.asarray(gold, dtype=np.float64), strict=True):
        ia, ib = index.get(key(a)), index.get(key(b))
        if ia is None or ib is None:
            oov += 1
            if dummy4unknown:
                dummy_at.append(len(kept_gold))
                rows_a.append(0)
                rows_b.append(0)
                kept_gold.append(float(g))
            continue
        rows_a.append(ia)
        rows_b.append(ib)
        kept_gold.append(float(g))
    if not kept_gold:
        raise InputError("Every word pair is out of vocabulary, so no similarity can be scored.")
    V = np.asarray(vectors)
    sims = row_cosines(V[rows_a], V[rows_b])
    sims[dummy_at] = 0.0
    rho, r = correlations(sims, kept_gold)
    return PairScore(rho, r, len(kept_gold), oov, sims, dummy4unknown)


@dataclass
class AnalogyScore:
    """3CosAdd analogy accuracy.

    Attributes
    ----------
    accuracy : float
        Correct / answered over all sections (a fraction, as gensim returns).
    n : int
        Questions answered (all four words in the restricted vocabulary).
    oov : int
        Questions skipped for out-of-vocabulary words.
    sections : list of dict
        ``{"section", "correct", "n"}`` per section in file order.
    """

    accuracy: float
    n: int
    oov: int
    sections: list[dict[str, object]]


def solve_analogies(
    words: Sequence[str],
    vectors: np.ndarray,
    sections: Sequence[tuple[str, Sequence[tuple[str, str, str, str]]]],
    *,
    restrict_vocab: int | None = DEFAULT_RESTRICT_VOCAB,
    case_insensitive: bool = True,
    batch_size: int = 256,
) -> AnalogyScore:
    """Answer ``a : b :: c : ?`` by 3CosAdd over the first ``restrict_vocab`` words.

    The answer is the word whose unit vector has the largest cosine with
    ``unit(b) + unit(c) - unit(a)``, excluding the three question words (any case variant),
    exactly as gensim's ``most_similar(positive=[b, c], negative=[a])``. Questions with an
    out-of-vocabulary word are skipped and counted.

    Returns
    -------
    AnalogyScore
    """
    limit = len(words) if restrict_vocab is None else min(restrict_vocab, len(words))
    index = vocabulary_index(words, restrict_vocab=limit, case_insensitive=case_insensitive)
    key = (lambda w: w.upper()) if case_insensitive else (lambda w: w)
    V = np.asarray(vectors[:limit], dtype=np.float32)
    norms = np.linalg.norm(V, axis=1, keepdims=True)
    U = np.divide(V, norms, out=np.zeros_like(V), where=norms > 0)
    # For excluding every case variant of a question word, group rows by their key.
    row_keys = [key(w) for w in words[:limit]]
    variants: dict[str, list[int]] = {}
    for i, k in enumerate(row_keys):
        variants.setdefault(k, []).append(i)

    questions: list[tuple[int, tuple[int, int, int], int, tuple[str, str, str]]] = []
    per_section: list[dict[str, object]] = []
    oov = 0
    for s, (name, qs) in enumerate(sections):
        per_section.append({"section": name, "correct": 0, "n": 0})
        for a, b, c, d in qs:
            ka, kb, kc, kd = key(a), key(b), key(c), key(d)
            if any(k not in index for k in (ka, kb, kc, kd)):
                oov += 1
                continue
            questions.append((s, (index[ka], index[kb], index[kc]), index[kd], (ka, kb, kc)))
    for start in range(0, len(questions), batch_size):
        chunk = questions[start : start + batch_size]
        ia = np.array([q[1][0] for q in chunk])
        ib = np.array([q[1][1] for q in chunk])
        ic = np.array([q[1][2] for q in chunk])
        target = U[ib] + U[ic] - U[ia]
        sims = target @ U.T
        for j, (_, _, _, ks) in enumerate(chunk):
            for k in ks:
                sims[j, variants[k]] = -np.inf
        best = np.argmax(sims, axis=1)
        for j, (s, _, expected, _) in enumerate(chunk):
            per_section[s]["n"] = int(per_section[s]["n"]) + 1  # type: ignore[call-overload]
            if row_keys[best[j]] == row_keys[expected]:
                per_section[s]["correct"] = int(per_section[s]["correct"]) + 1  # type: ignore[call-overload]
    n = len(questions)
    correct = sum(int(s["correct"]) for s in per_section)  # type: ignore[call-overload]
    return AnalogyScore(correct / n if n else float("nan"), n, oov, per_section)
