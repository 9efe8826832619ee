"""Sentence vectors from any encoder with a named pooling, cached on disk.

Poolings (``pooling=``):

- ``mean`` (default): average of the token vectors under the attention mask. Special tokens
  ([CLS], [SEP], <s>...) are **included** by default, as sentence-transformers' mean pooling
  does (this is how the published all-MiniLM-L6-v2 figures were obtained);
  ``include_special=False`` drops them.
- ``cls``: the vector at position 0, which must be a special token ([CLS] / <s>); a model
  that prepends none (GPT-2, SmolLM2) is refused rather than silently pooled on a word.
- ``last``: the last real token: the last non-padding, non-special token (for BERT the word
  piece before [SEP]; for a causal model without EOS, the last token of the input). It is the
  natural choice for causal models, where only the last position has seen the whole sentence.
- ``first_last``: defined exactly as the mean pooling (same special-token rule) of the average
  of hidden state 1 (the output of the first transformer layer) and the last hidden state,
  as in the SimCSE / BERT-whitening code. The literature also uses "embedding output + last"
  and "first + last layer outputs averaged after pooling"; for mean pooling the last two agree.

``drop_position_zero=True`` leaves the token at position 0 out of ``mean`` / ``first_last`` /
``last`` pooling (and out of token-level fits). Causal models without a BOS token (SmolLM2)
put massive activations on the first position, which then dominates a mean; every result
records whether it was dropped. It is off by default.

``layer`` picks the hidden state (0 = embedding output, ``n_layers - 1`` = last, negative
counts from the end), or a list of hidden states whose token vectors are averaged before
pooling. The default is the last hidden state.

Embeddings are cached under ``$ISOSCOPE_CACHE/evaluate`` (or a given folder), one folder per
(model, hash of its config and weights, sentences hash, pooling, layers, special-token rule),
as ``.npy`` arrays read with ``allow_pickle=False`` and a JSON manifest holding each array's
shape, dtype and checksum, so comparing repairs never re-runs the model. A retrained model has
another weights hash, so it never reuses its predecessor's vectors; an entry that disagrees
with its manifest is recomputed and replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from isoscope._jsonio import read_json, write_json
from isoscope.errors import InputError, IsoscopeError

POOLINGS = ("mean", "cls", "last", "first_last")
_CACHE_VERSION = 2


@dataclass(frozen=True)
class Pooling:
    """A resolved pooling: its name, the hidden states averaged, and the special-token rule.

    Attributes
    ----------
    name : str
        One of :data:`POOLINGS`.
    layers : tuple of int
        Hidden-state indices whose token vectors are averaged before pooling.
    include_special : bool
        Whether special tokens enter ``mean`` / ``first_last`` pooling.
    drop_position_zero : bool
        Whether the token at position 0 is left out of pooling.
    """

    name: str
    layers: tuple[int, ...]
    include_special: bool
    drop_position_zero: bool = False

    @property
    def special_tokens(self) -> str:
        """How special tokens are treated, in words (recorded in results)."""
        if self.name == "cls":
            return "cls token only"
        if self.name == "last":
            return "excluded (last non-special token)"
        return "included" if self.include_special else "excluded"

    def describe(self) -> dict[str, Any]:
        """JSON-ready description."""
        return {
            "pooling": self.name,
            "layers": list(self.layers),
            "special_tokens": self.special_tokens,
            "drop_position_zero": self.drop_position_zero,
        }


def resolve_pooling(
    pooling: str = "mean",
    layer: int | Sequence[int] | None = None,
    *,
    n_layers: int,
    include_special: bool | None = None,
    drop_position_zero: bool = False,
) -> Pooling:
    """Validate a pooling name and layer choice against a model with ``n_layers`` hidden states.

    Parameters
    ----------
    pooling : {"mean", "cls", "last", "first_last"}
        Pooling name.
    layer : int, sequence of int or None
        Hidden state(s); None means the last (for ``first_last``: hidden states 1 and last).
    n_layers : int
        Hidden states of the model, including the embedding output.
    include_special : bool, optional
        Special tokens in mean pooling; default True.
    drop_position_zero : bool
        Leave the token at position 0 out of pooling (not allowed with ``cls``).

    Returns
    -------
    Pooling
    """
    name = pooling.strip().lower().replace("-", "_")
    if name not in POOLINGS:
        raise InputError(f"Unknown pooling {pooling!r}; use one of {', '.join(POOLINGS)}.")

    def norm(i: int) -> int:
        j = int(i) + n_layers if int(i) < 0 else int(i)
        if not 0 <= j < n_layers:
            raise InputError(f"Layer {i} is outside 0..{n_layers - 1} for this model.")
        return j

    if name == "first_last":
        if layer is not None:
            raise InputError("first_last pooling fixes its layers (1 and the last); drop --layer.")
        if n_layers < 2:
            raise InputError("first_last pooling needs a model with at least one transformer layer.")
        layers: tuple[int, ...] = (1, n_layers - 1) if n_layers > 2 else (1,)
    elif layer is None:
        layers = (n_layers - 1,)
    elif isinstance(layer, (int, np.integer)):
        layers = (norm(int(layer)),)
    else:
        layers = tuple(dict.fromkeys(norm(i) for i in layer))
        if not layers:
            raise InputError("The list of layers to average is empty.")
    if drop_position_zero and name == "cls":
        raise InputError("cls pooling reads position 0, so it cannot drop position 0.")
    return Pooling(name, layers, True if include_special is None else bool(include_special),
                   bool(drop_position_zero))


@dataclass
class TokenVectors:
    """Token vectors of many sentences, concatenated.

    Attributes
    ----------
    vectors : numpy.ndarray
        (n_tokens, d) float32, padding removed, averaged over the requested hidden states.
    offsets : numpy.ndarray
        (n_sentences + 1,) int64; sentence i owns rows ``offsets[i]:offsets[i+1]``.
    special : numpy.ndarray
        (n_tokens,) bool, True on special tokens.
    """

    vectors: np.ndarray
    offsets: np.ndarray
    special: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def position_zero(self) -> np.ndarray:
        """(n_tokens,) bool, True on the first token of each sentence."""
        mask = np.zeros(len(self.special), dtype=bool)
        mask[self.offsets[:-1][np.diff(self.offsets) > 0]] = True
        return mask

    def sentence(self, i: int) -> np.ndarray:
        """Token vectors of sentence ``i``."""
        return self.vectors[self.offsets[i] : self.offsets[i + 1]]


def _lengths(encoder: Any, sentences: Sequence[str]) -> np.ndarray:
    fn = getattr(encoder, "token_lengths", None)
    if callable(fn):
        return np.asarray(fn(sentences)[0])
    return np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))


def encode_tokens(
    encoder: Any,
    sentences: Sequence[str],
    layers: Sequence[int],
    *,
    batch_size: int = 64,
    progress: bool = False,
) -> TokenVectors:
    """Run ``encoder`` over ``sentences`` and keep every real token's vector.

    Sentences are de-duplicated and processed in length-sorted batches; the output follows the
    input order. The token vectors of the hidden states in ``layers`` are averaged.

    Parameters
    ----------
    encoder : object
        Anything with ``encode(sentences, layers=...)`` returning ``hidden_states`` (dict of
        (B, T, d) tensors), ``attention_mask`` and ``special_mask`` (see
        :func:`isoscope.models.load_encoder`).
    sentences : sequence of str
        The sentences.
    layers : sequence of int
        Hidden-state indices to average.
    batch_size : int
        Sentences per forward pass.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    TokenVectors
    """
    if not sentences:
        raise InputError("There are no sentences to encode.")
    if batch_size < 1:
        raise InputError(f"The batch size must be at least 1, got {batch_size}.")
    unique = list(dict.fromkeys(sentences))
    order = np.argsort(-_lengths(encoder, unique), kind="stable")
    per_sentence: list[np.ndarray] = [np.empty(0)] * len(unique)
    specials: list[np.ndarray] = [np.empty(0)] * len(unique)
    wanted = sorted(set(int(i) for i in layers))
    starts: Iterable[int] = range(0, len(unique), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="encoding", unit="batch")
    for start in starts:
        idx = order[start : start + batch_size]
        out = encoder.encode([unique[i] for i in idx], layers=wanted)
        stacked = sum(out.hidden_states[i].float() for i in wanted) / len(wanted)
        hs = stacked.detach().cpu().numpy().astype(np.float32, copy=False)
        mask = np.asarray(out.attention_mask.cpu().numpy(), dtype=bool)
        spec = np.asarray(out.special_mask.cpu().numpy(), dtype=bool)
        for row, i in enumerate(idx):
            keep = mask[row]
            per_sentence[i] = hs[row][keep]
            specials[i] = spec[row][keep]
    pos = {s: i for i, s in enumerate(unique)}
    rows = [pos[s] for s in sentences]
    lengths = np.array([len(per_sentence[i]) for i in rows], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    vectors = np.concatenate([per_sentence[i] for i in rows], axis=0)
    special = np.concatenate([specials[i] for i in rows], axis=0)
    return TokenVectors(np.ascontiguousarray(vectors, dtype=np.float32), offsets, special)


def pool_tokens(tokens: TokenVectors, pooling: Pooling | str = "mean") -> np.ndarray:
    """Pool token vectors into one vector per sentence.

    Parameters
    ----------
    tokens : TokenVectors
        Output of :func:`encode_tokens`.
    pooling : Pooling or str
        The pooling; a bare name means mean pooling rules with special tokens included.

    Returns
    -------
    numpy.ndarray
        (n_sentences, d) float32.
    """
    if isinstance(pooling, str):
        pooling = Pooling(pooling, (0,), True)
    name = pooling.name
    n, d = len(tokens), tokens.vectors.shape[1]
    out = np.empty((n, d), dtype=np.float32)
    for i in range(n):
        lo, hi = int(tokens.offsets[i]), int(tokens.offsets[i + 1])
        if hi <= lo:
            raise InputError(f"Sentence {i} has no tokens to pool.")
        vec = tokens.vectors[lo:hi]
        spec = tokens.special[lo:hi]
        if pooling.drop_position_zero and name != "cls" and hi - lo > 1:
            vec, spec = vec[1:], spec[1:]
        if name == "cls":
            if not spec[0]:
                raise InputError(
                    "cls pooling needs a model that puts a special token first; use mean or last."
                )
            out[i] = vec[0]
        elif name == "last":
            real = np.flatnonzero(~spec)
            out[i] = vec[real[-1]] if real.size else vec[-1]
        else:  # mean and first_last
            if pooling.include_special or spec.all():
                out[i] = vec.mean(axis=0, dtype=np.float64)
            else:
                out[i] = vec[~spec].mean(axis=0, dtype=np.float64)
    return out


# --------------------------------------------------------------------------------------- cache
def default_cache_dir() -> Path:
    """``$ISOSCOPE_CACHE/evaluate`` (or the platform cache folder when the variable is unset)."""
    try:
        from isoscope.models.cache import cache_dir

        return cache_dir("evaluate")
    except ImportError:  # pragma: no cover - models module absent
        root = os.environ.get("ISOSCOPE_CACHE") or str(Path.home() / ".cache" / "isoscope")
        path = Path(root) / "evaluate"
        path.mkdir(parents=True, exist_ok=True)
        return path


def encoder_identity(encoder: Any) -> dict[str, Any]:
    """What identifies an encoder in cache keys and results.

    ``weights`` is :func:`isoscope.models.model_fingerprint` of the encoder's torch model (a
    hash of its config and weights), so a model retrained in place never reuses cached
    vectors; it is None for encoders without a torch ``model``.
    """
    weights = None
    if getattr(encoder, "model", None) is not None:
        from isoscope.models.cache import model_fingerprint

        try:
            weights = model_fingerprint(encoder)
        except TypeError:  # a ``model`` attribute that is not a torch model
            weights = None
    return {
        "model": str(getattr(encoder, "name", type(encoder).__name__)),
        "source": str(getattr(encoder, "source", "")),
        "n_layers": int(getattr(encoder, "n_layers", 0)),
        "hidden_size": int(getattr(encoder, "hidden_size", 0)),
        "weights": weights,
    }


def sentences_hash(sentences: Sequence[str]) -> str:
    """SHA-256 of the sentence list (order and content)."""
    h = hashlib.sha256()
    for s in sentences:
        data = s.encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


class EmbeddingCache:
    """Arrays cached on disk under a key dict: ``<root>/<sha>/NAME.npy`` plus ``meta.json``.

    Parameters
    ----------
    root : path, optional
        Cache folder; :func:`default_cache_dir` when omitted.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()

    @staticmethod
    def _digest(key: dict[str, Any]) -> str:
        payload = json.dumps({"v": _CACHE_VERSION, **key}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]

    def get(self, key: dict[str, Any]) -> dict[str, np.ndarray] | None:
        """The cached arrays for ``key``, or None.

        An entry counts as missing when it is damaged: unreadable, or an array whose shape,
        dtype or content checksum disagrees with the entry's ``meta.json``.
        """
        folder = self.root / self._digest(key)
        meta_path = folder / "meta.json"
        if not meta_path.is_file():
            return None
        try:
            meta = read_json(meta_path, "embedding cache entry")
            if meta.get("key") != _as_json(key):
                return None
            out = {}
            for name, info in meta["arrays"].items():
                arr = np.load(folder / f"{name}.npy", allow_pickle=False)
                if (list(arr.shape) != info["shape"] or str(arr.dtype) != info["dtype"]
                        or _checksum(arr) != info["blake2b"]):
                    return None
                out[name] = arr
            return out
        except (IsoscopeError, OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def put(self, key: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
        """Store ``arrays`` under ``key``, replacing any entry there.

        Atomic: readers see the old complete entry, no entry, or the new complete one.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        folder = self.root / self._digest(key)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        try:
            info = {}
            for name, arr in arrays.items():
                arr = np.ascontiguousarray(arr)
                np.save(tmp / f"{name}.npy", arr, allow_pickle=False)
                info[name] = {"shape": list(arr.shape), "dtype": str(arr.dtype), "blake2b": _checksum(arr)}
            write_json(tmp / "meta.json", {"key": _as_json(key), "arrays": info}, indent=1)
            if folder.exists():
                # Move the old entry aside first: a directory cannot be replaced in one rename.
                old = Path(tempfile.mkdtemp(prefix=".old-", dir=self.root))
                os.replace(folder, old / "entry")
                shutil.rmtree(old, ignore_errors=True)
            try:
                os.replace(tmp, folder)
            except OSError:
                if not folder.is_dir():  # not another writer that got there first
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return folder


def _as_json(key: dict[str, Any]) -> Any:
    """``key`` as it reads back from meta.json (objects JSON cannot hold become strings)."""
    return json.loads(json.dumps(key, default=str))


def _checksum(arr: np.ndarray) -> str:
    """BLAKE2b of an array's bytes (C order)."""
    return hashlib.blake2b(np.ascontiguousarray(arr).reshape(-1).view(np.uint8).data).hexdigest()


def _valid_tokens(hit: dict[str, np.ndarray], n_sentences: int, width: int) -> bool:
    """Whether cached token arrays fit ``n_sentences`` sentences of vectors of ``width``."""
    vectors, offsets, special = hit.get("vectors"), hit.get("offsets"), hit.get("special")
    if vectors is None or offsets is None or special is None:
        return False
    return bool(
        vectors.ndim == 2 and (width <= 0 or vectors.shape[1] == width) and vectors.dtype == np.float32
        and offsets.shape == (n_sentences + 1,) and offsets[0] == 0 and offsets[-1] == len(vectors)
        and (np.diff(offsets) >= 0).all() and special.shape == (len(vectors),)
    )


def _valid_sentences(hit: dict[str, np.ndarray], n_sentences: int, width: int) -> bool:
    """Whether cached sentence vectors have one row of ``width`` per sentence."""
    vectors = hit.get("vectors")
    return bool(vectors is not None and vectors.ndim == 2 and vectors.shape[0] == n_sentences
                and (width <= 0 or vectors.shape[1] == width) and vectors.dtype == np.float32)


def _cache_for(cache: bool | str | os.PathLike[str] | EmbeddingCache | None) -> EmbeddingCache | None:
    if cache is None or cache is False:
        return None
    if isinstance(cache, EmbeddingCache):
        return cache
    if cache is True:
        return EmbeddingCache()
    return EmbeddingCache(cache)


def token_vectors(
    encoder: Any,
    sentences: Sequence[str],
    pooling: Pooling,
    *,
    cache: bool | str | os.PathLike[str] | EmbeddingCache | None = True,
    batch_size: int = 64,
    progress: bool = False,
) -> TokenVectors:
    """Token vectors of ``sentences`` for ``pooling.layers``, from the cache when present."""
    store = _cache_for(cache)
    key = {
        "kind": "tokens",
        **encoder_identity(encoder),
        "sentences": sentences_hash(sentences),
        "n_sentences": len(sentences),
        "layers": list(pooling.layers),
    }
    if store is not None:
        hit = store.get(key)
        if hit is not None and _valid_tokens(hit, len(sentences), key["hidden_size"]):
            return TokenVectors(hit["vectors"], hit["offsets"], hit["special"])
    tv = encode_tokens(encoder, sentences, pooling.layers, batch_size=batch_size, progress=progress)
    if store is not None:
        store.put(key, {"vectors": tv.vectors, "offsets": tv.offsets, "special": tv.special})
    return tv


def encode_sentences(
    encoder: Any,
    sentences: Sequence[str],
    pooling: str | Pooling = "mean",
    layer: int | Sequence[int] | None = None,
    *,
    include_special: bool | None = None,
    drop_position_zero: bool = False,
    cache: bool | str | os.PathLike[str] | EmbeddingCache | None = True,
    batch_size: int = 64,
    progress: bool = False,
) -> np.ndarray:
    """Sentence vectors with a named pooling, cached on disk.

    Parameters
    ----------
    encoder : object
        From :func:`isoscope.models.load_encoder` (or any object with the same ``encode``).
    sentences : sequence of str
        Sentences to embed.
    pooling : str or Pooling
        ``mean`` (default), ``cls``, ``last`` or ``first_last`` (see the module docstring).
    layer : int, sequence of int or None
        Hidden state, or hidden states to average; default the last.
    include_special : bool, optional
        Special tokens in mean pooling (default True, as sentence-transformers).
    drop_position_zero : bool
        Leave the token at position 0 out of pooling (for causal models without BOS).
    cache : bool, path or EmbeddingCache
        True: ``$ISOSCOPE_CACHE/evaluate``; a path: that folder; False/None: no cache.
    batch_size : int
        Sentences per forward pass.
    progress : bool
        Show a progress bar while encoding.

    Returns
    -------
    numpy.ndarray
        (n_sentences, hidden_size) float32.
    """
    if not isinstance(pooling, Pooling):
        pooling = resolve_pooling(
            pooling, layer, n_layers=int(encoder.n_layers), include_special=include_special,
            drop_position_zero=drop_position_zero,
        )
    store = _cache_for(cache)
    key = {
        "kind": "sentences",
        **encoder_identity(encoder),
        "sentences": sentences_hash(sentences),
        "n_sentences": len(sentences),
        **pooling.describe(),
    }
    if store is not None:
        hit = store.get(key)
        if hit is not None and _valid_sentences(hit, len(sentences), key["hidden_size"]):
            return hit["vectors"]
    tv = encode_tokens(encoder, sentences, pooling.layers, batch_size=batch_size, progress=progress)
    out = pool_tokens(tv, pooling)
    if store is not None:
        store.put(key, {"vectors": out})
    return out
