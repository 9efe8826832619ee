"""Evaluation: STS-B, SICK-R, STS12-16, word similarity and analogy, before and after repairs.

>>> from isoscope.evaluate import evaluate
>>> res = evaluate("minilm", {"stsb": "sts-test.csv"}, transforms="none,abtt")  # doctest: +SKIP
>>> print(res)                                                                # doctest: +SKIP
>>> res.to_json("eval.json")                                                  # doctest: +SKIP

Loaders (:func:`load_task` and one function per format) return :class:`SentencePairs`,
:class:`WordPairs` or :class:`Analogies`; scorers compute Spearman / Pearson x 100 of cosine
similarity against gold scores (gensim's OOV rules for word tasks) and 3CosAdd accuracy;
:func:`encode_sentences` pools any encoder's token vectors (``mean``, ``cls``, ``last``,
``first_last``, one layer or an average of layers) with an on-disk cache.
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
from isoscope.evaluate._loaders import (
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
from isoscope.evaluate._run import EvaluationResults, evaluate, parse_transforms
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
from isoscope.evaluate._tasks import Analogies, SentencePairs, WordPairs
from isoscope.evaluate._words import (
    WordTable,
    encoded_words,
    input_embedding_words,
    static_table,
    store_words,
)

__all__ = [
    "DEFAULT_RESTRICT_VOCAB",
    "POOLINGS",
    "TASK_KINDS",
    "AnalogyScore",
    "Analogies",
    "EmbeddingCache",
    "EvaluationResults",
    "PairScore",
    "Pooling",
    "SentencePairs",
    "TokenVectors",
    "WordPairs",
    "WordTable",
    "correlations",
    "default_cache_dir",
    "encode_sentences",
    "encode_tokens",
    "encoded_words",
    "evaluate",
    "input_embedding_words",
    "load_analogies",
    "load_pairs",
    "load_sick",
    "load_sts",
    "load_stsb",
    "load_task",
    "load_word_similarity",
    "parse_transforms",
    "pool_tokens",
    "resolve_pooling",
    "row_cosines",
    "score_sentence_pairs",
    "score_word_pairs",
    "solve_analogies",
    "static_table",
    "store_words",
    "task_kind",
    "token_vectors",
    "vocabulary_index",
]
