"""Evaluation: STS-B, SICK-R, STS12-16, word similarity, analogy and classification probes,
before and after repairs.

>>> from isoscope.evaluate import evaluate
>>> res = evaluate("minilm", {"stsb": "sts-test.csv"}, transforms="none,abtt")  # doctest: +SKIP
>>> print(res)                                                                # doctest: +SKIP
>>> res.to_json("eval.json")                                                  # doctest: +SKIP

Loaders (:func:`load_task` and one function per format) return :class:`SentencePairs`,
:class:`WordPairs` or :class:`Analogies`; scorers compute Spearman / Pearson x 100 of cosine
similarity against gold scores (gensim's OOV rules for word tasks) and 3CosAdd accuracy;
:func:`encode_sentences` pools any encoder's token vectors (``mean``, ``cls``, ``last``,
``first_last``, one layer or an average of layers) with an on-disk cache. Learned removal
trains on :func:`learning_pairs` (word-similarity files not being evaluated), turned into its
``pairs`` fit input by :func:`learning_pair_vectors`.

Classification tasks (:func:`load_sst2`, :func:`load_mrpc`, :func:`load_labelled`,
:func:`load_labelled_pairs`) return :class:`Classification` splits, scored by :func:`probe`: a
SentEval-style logistic-regression probe on frozen (optionally repaired) sentence vectors, with
``C`` chosen on the validation split or by seeded cross-validation; pair tasks use
:func:`pair_features` ``[u, v, |u - v|, u * v]``.
"""

from isoscope.evaluate._encode import (
    POOLINGS,
    EmbeddingCache,
    Pooling,
    TokenVectors,
    default_cache_dir,
    encode_sentences,
    encode_tokens,
    pool_tokens,
    resolve_pooling,
    token_vectors,
)
from isoscope.evaluate._labelled import (
    carve_validation,
    load_labelled,
    load_labelled_pairs,
    load_mrpc,
    load_sst2,
    split_files,
)
from isoscope.evaluate._loaders import (
    CLASSIFICATION_KINDS,
    TASK_KINDS,
    load_analogies,
    load_pairs,
    load_sick,
    load_sts,
    load_stsb,
    load_task,
    load_word_similarity,
    task_kind,
)
from isoscope.evaluate._probe import DEFAULT_CS, ProbeScore, pair_features, probe
from isoscope.evaluate._run import (
    EvaluationResults,
    evaluate,
    learning_pair_vectors,
    learning_pairs,
    parse_transforms,
)
from isoscope.evaluate._scoring import (
    DEFAULT_RESTRICT_VOCAB,
    AnalogyScore,
    PairScore,
    correlations,
    row_cosines,
    score_sentence_pairs,
    score_word_pairs,
    solve_analogies,
    vocabulary_index,
)
from isoscope.evaluate._tasks import (
    Analogies,
    Classification,
    LabelledSplit,
    SentencePairs,
    WordPairs,
)
from isoscope.evaluate._words import (
    WordTable,
    encoded_words,
    input_embedding_words,
    static_table,
    store_words,
)

__all__ = [
    "CLASSIFICATION_KINDS",
    "DEFAULT_CS",
    "DEFAULT_RESTRICT_VOCAB",
    "POOLINGS",
    "TASK_KINDS",
    "AnalogyScore",
    "Analogies",
    "Classification",
    "EmbeddingCache",
    "EvaluationResults",
    "LabelledSplit",
    "PairScore",
    "Pooling",
    "ProbeScore",
    "SentencePairs",
    "TokenVectors",
    "WordPairs",
    "WordTable",
    "carve_validation",
    "correlations",
    "default_cache_dir",
    "encode_sentences",
    "encode_tokens",
    "encoded_words",
    "evaluate",
    "input_embedding_words",
    "learning_pair_vectors",
    "learning_pairs",
    "load_analogies",
    "load_labelled",
    "load_labelled_pairs",
    "load_mrpc",
    "load_pairs",
    "load_sick",
    "load_sst2",
    "load_sts",
    "load_stsb",
    "load_task",
    "load_word_similarity",
    "pair_features",
    "parse_transforms",
    "pool_tokens",
    "probe",
    "resolve_pooling",
    "row_cosines",
    "score_sentence_pairs",
    "score_word_pairs",
    "solve_analogies",
    "split_files",
    "static_table",
    "store_words",
    "task_kind",
    "token_vectors",
    "vocabulary_index",
]
