"""Containers for evaluation data: sentence pairs, word pairs, analogies and labelled splits."""

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


@dataclass
class LabelledSplit:
    """One split of a classification task: texts (or text pairs) and their labels.

    Attributes
    ----------
    texts : list of str
        The sentence of each example (the first sentence for pair tasks).
    labels : list of str
        Each example's label as written in the file (``"0"``, ``"1"``, ``"positive"``...).
    texts2 : list of str, optional
        The second sentence of each example for pair tasks; None for single-sentence tasks.
    source : str
        Where the split came from (a file name, or how it was carved from another split).
    """

    texts: list[str]
    labels: list[str]
    texts2: list[str] | None = None
    source: str = ""

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def sentences(self) -> list[str]:
        """Every sentence of the split, first sides then second sides."""
        return [*self.texts, *(self.texts2 or [])]


@dataclass
class Classification:
    """A labelled classification task with train / optional validation / test splits.

    Attributes
    ----------
    task : str
        Task family: ``"sst2"``, ``"mrpc"``, ``"classify"`` or ``"classify-pairs"``.
    dataset : str
        Name used as a column label (folder or file stem).
    train, test : LabelledSplit
        Training split (classifier and repairs are fitted on it) and test split (scored).
    validation : LabelledSplit, optional
        Split on which the regularisation strength is chosen; None means cross-validation on
        the training split.
    path : pathlib.Path
        Where the data came from.
    f1 : bool
        Whether F1 is reported beside accuracy (paraphrase tasks).
    positive_label : str, optional
        The positive class for binary F1.
    """

    task: str
    dataset: str
    train: LabelledSplit
    test: LabelledSplit
    path: Path
    validation: LabelledSplit | None = None
    f1: bool = False
    positive_label: str | None = None

    def __len__(self) -> int:
        return len(self.test)

    @property
    def is_pair(self) -> bool:
        """True for sentence-pair tasks (features [u, v, |u - v|, u * v])."""
        return self.train.texts2 is not None

    @property
    def classes(self) -> list[str]:
        """Sorted labels of the training split."""
        return sorted(set(self.train.labels))

    @property
    def splits(self) -> dict[str, LabelledSplit]:
        """The present splits by name (``train``, ``validation``, ``test``)."""
        out = {"train": self.train}
        if self.validation is not None:
            out["validation"] = self.validation
        out["test"] = self.test
        return out

    @property
    def sentences(self) -> list[str]:
        """Distinct sentences of every split, in first-seen order."""
        return list(dict.fromkeys(s for sp in self.splits.values() for s in sp.sentences))


Task = SentencePairs | WordPairs | Analogies | Classification
