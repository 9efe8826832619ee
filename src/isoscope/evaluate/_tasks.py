"""Containers for evaluation data: sentence pairs, word pairs and analogy questions."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class SentencePairs:
    """Sentence pairs with gold similarity scores (STS-B, SICK-R, STS12-16, user files).

    Attributes
    ----------
    task : str
        Task family, e.g. ``"stsb"``, ``"sick"``, ``"sts"``, ``"pairs"``.
    dataset : str
        Name of this data set (file stem or STS sub-set collection), used as a column label.
    sentences1, sentences2 : list of str
        The two sides of each pair.
    scores : numpy.ndarray
        Gold scores, float64, one per pair.
    subsets : list of str, optional
        Sub-set of each pair (STS12-16 files such as ``"MSRpar"``); None for single-file tasks.
    path : pathlib.Path
        Where the data came from.
    split : str, optional
        Split name when the source holds several (``"test"``, ``"train"``...).
    """

    task: str
    dataset: str
    sentences1: list[str]
    sentences2: list[str]
    scores: np.ndarray
    path: Path
    subsets: list[str] | None = None
    split: str | None = None

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def sentences(self) -> list[str]:
        """Every sentence of the task, first sides then second sides."""
        return [*self.sentences1, *self.sentences2]


@dataclass
class WordPairs:
    """Word pairs with gold similarity scores (WS-353, SimLex-999, RG-65, MEN...).

    Attributes
    ----------
    task, dataset : str
        Task family (``"wordsim"``) and data set name (file stem).
    word1, word2 : list of str
        The two words of each pair, as written in the file.
    scores : numpy.ndarray
        Gold scores, float64.
    path : pathlib.Path
        Where the data came from.
    n_comments : int
        Comment lines (``#``) skipped, as gensim skips them.
    """

    task: str
    dataset: str
    word1: list[str]
    word2: list[str]
    scores: np.ndarray
    path: Path
    n_comments: int = 0

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def words(self) -> list[str]:
        """Distinct words of the task in first-seen order."""
        return list(dict.fromkeys([*self.word1, *self.word2]))


@dataclass
class Analogies:
    """Analogy questions ``a : b :: c : d`` grouped in sections (Google analogy format).

    Attributes
    ----------
    task, dataset : str
        Task family (``"analogy"``) and data set name.
    sections : list of (str, list of tuple of 4 str)
        Section name and its questions ``(a, b, c, expected)`` in file order.
    path : pathlib.Path
        Where the data came from.
    """

    task: str
    dataset: str
    sections: list[tuple[str, list[tuple[str, str, str, str]]]] = field(default_factory=list)
    path: Path = Path()

    def __len__(self) -> int:
        return sum(len(q) for _, q in self.sections)

    @property
    def words(self) -> list[str]:
        """Distinct words of all questions in first-seen order."""
        return list(dict.fromkeys(w for _, qs in self.sections for q in qs for w in q))


Task = SentencePairs | WordPairs | Analogies
