"""Bridges out of isoscope: repaired models as sentence-transformers models, layers as datasets.

Both need the ``hf`` extra (``pip install 'isoscope[hf]'``: sentence-transformers, datasets).
:func:`layer_to_dataset` writes one store layer with its token table to Parquet, a chunk of
the layer's memory map at a time, and opens it as a memory-mapped ``datasets.Dataset``.

:func:`to_sentence_transformer` builds a :class:`sentence_transformers.SentenceTransformer`
from an isoscope encoder and a fitted repair, with three modules:

1. sentence-transformers' own ``Transformer`` (the encoder's weights and tokenizer, the same
   truncation length as the isoscope encoder);
2. a pooling module: sentence-transformers' own ``Pooling`` where it computes what isoscope's
   pooling does (``mean`` with special tokens over the last hidden state, ``cls`` on the last
   hidden state), else :class:`IsoscopePooling` (any hidden state or average of hidden
   states, special tokens left out, ``last``, ``first_last``, position 0 dropped), as defined
   in :mod:`isoscope.evaluate._encode`;
3. the repair of the pooled vectors: sentence-transformers' own ``Dense`` module (identity
   activation) for the repairs that are affine maps ``y = x @ A + b`` of the pooled vector
   (``none``, ``center``, ``abtt``, ``learned``, ``whiten``, ``zipf``, ``standardize``: ``A``
   and ``b`` come from the fitted repair's :meth:`~isoscope.transforms.IsotropyTransform.affine_`
   in float64 and are stored as float32), else :class:`RepairModule`, which applies the fitted
   repair in numpy (``cluster``, whose map depends on each vector's k-means cluster).

Saved with ``model.save(path)``, ``modules.json`` names the module classes by their import
path. With sentence-transformers' own pooling and a ``Dense`` repair every class is
sentence-transformers', so ``SentenceTransformer(path)`` loads the folder with no flag and
without isoscope. :class:`RepairModule` writes its repair with
:func:`isoscope.transforms.save_transform` (one safetensors file whose JSON header holds the
class and parameters; no pickle); a folder holding it or :class:`IsoscopePooling` loads with
``SentenceTransformer(path, trust_remote_code=True)`` and isoscope installed. The flag is
sentence-transformers' requirement, not isoscope's: since 6.0 (checked with 6.3.0)
``sentence_transformers.util.misc.import_module_class`` refuses to import any ``modules.json``
class outside the ``sentence_transformers.*`` namespace without it, even an installed one from
a local folder, and there is no public way to register one (5.x trusted a local folder
implicitly). No code stored in the folder runs: the classes come from the installed isoscope.

:class:`RepairModule` runs the repair in numpy on the pooled vectors (as
:func:`isoscope.evaluate.evaluate` applies it), so gradients do not flow through it; the
``Dense`` repair is a float32 torch layer (fine-tuning would train it like any other).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from isoscope._jsonio import read_json, write_json
from isoscope.errors import InputError

try:  # sentence-transformers >= 6
    from sentence_transformers.base.modules import Dense as _STDense
    from sentence_transformers.base.modules import Module as _STModule
    from sentence_transformers.base.modules import Transformer as _STTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling as _STPooling
except ImportError:  # sentence-transformers 5.x
    from sentence_transformers.models import Dense as _STDense  # type: ignore[no-redef]
    from sentence_transformers.models import Module as _STModule  # type: ignore[no-redef]
    from sentence_transformers.models import Pooling as _STPooling  # type: ignore[no-redef]
    from sentence_transformers.models import Transformer as _STTransformer  # type: ignore[no-redef]

__all__ = [
    "IsoscopePooling",
    "RepairModule",
    "fit_sentence_repair",
    "layer_to_dataset",
    "needs_trust_remote_code",
    "to_sentence_transformer",
]

log = logging.getLogger(__name__)

_REPAIR_FILE = "repair.safetensors"


class IsoscopePooling(_STModule):
    """isoscope's sentence pooling as a sentence-transformers module.

    Computes :func:`isoscope.evaluate._encode.pool_tokens` of the hidden states
    :func:`isoscope.evaluate._encode.encode_tokens` averages, from the features the
    sentence-transformers ``Transformer`` module returns (``all_layer_embeddings`` when the
    model config has ``output_hidden_states``).

    Parameters
    ----------
    embedding_dimension : int
        Width of the token vectors.
    pooling : {"mean", "cls", "last", "first_last"}
        Pooling name (``first_last`` is ``mean`` over the averaged hidden states).
    layers : sequence of int
        Hidden-state indices averaged before pooling (0 = embedding output).
    include_special : bool
        Whether special tokens enter ``mean`` / ``first_last`` pooling.
    drop_position_zero : bool
        Leave the first token out of pooling.
    special_ids : sequence of int
        Token ids the tokenizer adds around a sentence ([CLS], [SEP], <s>, ...).
    """

    config_keys = ["embedding_dimension", "pooling", "layers", "include_special",
                   "drop_position_zero", "special_ids"]
    config_file_name = "isoscope_pooling.json"

    def __init__(self, embedding_dimension: int, pooling: str = "mean", layers: Sequence[int] = (-1,),
                 include_special: bool = True, drop_position_zero: bool = False,
                 special_ids: Sequence[int] = ()) -> None:
        super().__init__()
        if pooling not in ("mean", "cls", "last", "first_last"):
            raise InputError(f"Unknown pooling {pooling!r} in an isoscope pooling module.")
        self.embedding_dimension = int(embedding_dimension)
        self.pooling = str(pooling)
        self.layers = [int(i) for i in layers]
        self.include_special = bool(include_special)
        self.drop_position_zero = bool(drop_position_zero)
        self.special_ids = [int(i) for i in special_ids]

    def _states(self, features: dict[str, Any]) -> torch.Tensor:
        layers = features.get("all_layer_embeddings")
        if layers is None:
            if self.layers != [-1]:
                raise InputError("The transformer module returns no hidden states; its config "
                                 "needs output_hidden_states=True for this pooling.")
            return features["token_embeddings"].float()
        return sum(layers[i].float() for i in self.layers) / len(self.layers)

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Pool ``features`` into ``features["sentence_embedding"]``."""
        hs = self._states(features)
        mask = features["attention_mask"].bool()
        ids = features["input_ids"]
        special = torch.isin(ids, torch.tensor(self.special_ids, dtype=ids.dtype, device=ids.device)) & mask
        first = mask.int().argmax(dim=1)  # first real position (padding may sit on either side)
        rows = torch.arange(mask.shape[0], device=mask.device)
        if self.pooling == "cls":
            if not bool(special[rows, first].all()):
                raise InputError("cls pooling needs a model that puts a special token first; use mean or last.")
            out = hs[rows, first]
        else:
            keep = mask.clone()
            if self.drop_position_zero:
                dropable = mask.sum(dim=1) > 1
                keep[rows[dropable], first[dropable]] = False
            if self.pooling == "last":
                real = keep & ~special
                use = torch.where(real.any(dim=1, keepdim=True), real, keep)
                positions = torch.arange(mask.shape[1], device=mask.device).expand_as(use)
                last = torch.where(use, positions, torch.full_like(positions, -1)).max(dim=1).values
                out = hs[rows, last]
            else:
                if not self.include_special:
                    plain = keep & ~special
                    keep = torch.where(plain.any(dim=1, keepdim=True), plain, keep)
                w = keep.to(torch.float64).unsqueeze(-1)
                out = ((hs.to(torch.float64) * w).sum(dim=1) / w.sum(dim=1)).to(torch.float32)
        features["sentence_embedding"] = out
        return features

    def get_embedding_dimension(self) -> int:
        """Width of the pooled vectors."""
        return self.embedding_dimension

    get_sentence_embedding_dimension = get_embedding_dimension  # sentence-transformers 5.x

    def save(self, output_path: str, *args: Any, **kwargs: Any) -> None:
        """Write the module's JSON configuration into ``output_path``."""
        write_json(Path(output_path) / self.config_file_name, self.get_config_dict(), indent=2)


class RepairModule(_STModule):
    """A fitted isoscope repair applied to ``sentence_embedding``.

    Parameters
    ----------
    repair : IsotropyTransform
        A fitted repair (from :func:`isoscope.transforms.fit_repair` or
        :func:`isoscope.transforms.load_transform`).
    """

    config_file_name = "isoscope_repair.json"

    def __init__(self, repair: Any) -> None:
        super().__init__()
        from sklearn.utils.validation import check_is_fitted

        from isoscope.transforms import IsotropyTransform

        if not isinstance(repair, IsotropyTransform):
            raise InputError(f"A repair module needs a fitted isoscope repair, got {type(repair).__name__}.")
        check_is_fitted(repair)
        self.repair = repair
        self.embedding_dimension = int(
            np.asarray(repair.transform(np.zeros((1, repair.n_features_in_), dtype=np.float32))).shape[1])

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Replace ``features["sentence_embedding"]`` by its repaired vectors."""
        emb = features["sentence_embedding"]
        X = emb.detach().to(torch.float32).cpu().numpy()
        out = np.asarray(self.repair.transform(X), dtype=np.float32)
        features["sentence_embedding"] = torch.from_numpy(np.ascontiguousarray(out)).to(emb.device)
        return features

    def get_embedding_dimension(self) -> int:
        """Width of the repaired vectors."""
        return self.embedding_dimension

    get_sentence_embedding_dimension = get_embedding_dimension  # sentence-transformers 5.x

    def get_config_dict(self) -> dict[str, Any]:
        """What the saved module holds (the repair itself lives in ``repair.safetensors``)."""
        return {"repair_file": _REPAIR_FILE, "class": type(self.repair).__name__,
                "spec_name": type(self.repair).spec_name,
                "embedding_dimension": self.embedding_dimension}

    def save(self, output_path: str, *args: Any, **kwargs: Any) -> None:
        """Write the repair (safetensors with a JSON header) and a JSON note into ``output_path``."""
        from isoscope.transforms import save_transform

        save_transform(self.repair, Path(output_path) / _REPAIR_FILE)
        write_json(Path(output_path) / self.config_file_name, self.get_config_dict(), indent=2)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", token: bool | str | None = None,
             cache_folder: str | None = None, revision: str | None = None,
             local_files_only: bool = False, init_defaults: dict[str, Any] | None = None,
             **kwargs: Any) -> RepairModule:
        """Read the module saved by :meth:`save` (through :func:`isoscope.transforms.load_transform`).

        The fitted repair is the module's whole state, so ``init_defaults`` has nothing to fill.
        """
        from isoscope.transforms import load_transform

        where: dict[str, Any] = dict(subfolder=subfolder, token=token, cache_folder=cache_folder, revision=revision,
                     local_files_only=local_files_only)
        config_path = cls.load_file_path(model_name_or_path, cls.config_file_name, **where)
        name = read_json(config_path, "isoscope repair module").get("repair_file", _REPAIR_FILE) \
            if config_path else _REPAIR_FILE
        path = cls.load_file_path(model_name_or_path, str(name), **where)
        if path is None:
            raise InputError(f"{model_name_or_path}/{subfolder} holds no {name} repair file.")
        return cls(load_transform(path))


def _repair_module(repair: Any) -> Any:
    """sentence-transformers' ``Dense`` for an affine repair, else a :class:`RepairModule`.

    The weight and bias are the repair's own ``affine_()`` (float64), stored as float32.
    """
    from sklearn.utils.validation import check_is_fitted

    from isoscope.transforms import IsotropyTransform

    if not isinstance(repair, IsotropyTransform):
        raise InputError(f"A repair module needs a fitted isoscope repair, got {type(repair).__name__}.")
    check_is_fitted(repair)
    affine = repair.affine_()
    if affine is None:
        return RepairModule(repair)
    A, b = affine
    return _STDense(int(A.shape[0]), int(A.shape[1]), bias=True, activation_function=torch.nn.Identity(),
                    init_weight=torch.from_numpy(np.ascontiguousarray(A.T, dtype=np.float32)),
                    init_bias=torch.from_numpy(np.ascontiguousarray(b, dtype=np.float32)))


def _special_ids(tokenizer: Any) -> list[int]:
    """Ids the tokenizer adds around one sentence (what its special-token mask marks)."""
    enc = tokenizer("isoscope", add_special_tokens=True, return_special_tokens_mask=True)
    return sorted({int(i) for i, s in zip(enc["input_ids"], enc["special_tokens_mask"], strict=True) if s})


def _load(model: Any) -> Any:
    if isinstance(model, (str, os.PathLike)):
        from isoscope.models import load_encoder

        return load_encoder(str(model))
    if not (hasattr(model, "model") and hasattr(model, "tokenizer") and hasattr(model, "n_layers")):
        raise InputError(f"Cannot export {type(model).__name__}: it is not an isoscope Hugging Face encoder.")
    return model


def _pooling_module(encoder: Any, pool: Any) -> tuple[Any, bool]:
    """The pooling module for ``pool`` and whether it needs every hidden state."""
    last = int(encoder.n_layers) - 1
    d = int(encoder.hidden_size)
    plain = pool.layers == (last,) and not pool.drop_position_zero
    if plain and pool.name == "mean" and pool.include_special:
        return _STPooling(d, pooling_mode="mean"), False
    specials = _special_ids(encoder.tokenizer)
    if plain and pool.name == "cls":
        probe = encoder.tokenizer("isoscope", add_special_tokens=True)["input_ids"]
        if probe and int(probe[0]) in specials:
            return _STPooling(d, pooling_mode="cls"), False
        raise InputError("cls pooling needs a model that puts a special token first; use mean or last.")
    layers = [int(i) for i in pool.layers]
    module = IsoscopePooling(d, pool.name, layers if layers != [last] else [-1], pool.include_special,
                             pool.drop_position_zero, specials)
    return module, layers != [last]


def to_sentence_transformer(
    model: Any,
    repair: Any,
    *,
    pooling: str = "mean",
    layer: int | Sequence[int] | None = None,
    include_special: bool | None = None,
    drop_position_zero: bool = False,
    device: str | None = None,
) -> Any:
    """A sentence-transformers model whose last module applies a fitted isoscope repair.

    An affine repair (all but ``cluster``) becomes sentence-transformers' own ``Dense`` module,
    the ``cluster`` repair an isoscope :class:`RepairModule` (see the module docstring).
    Its ``encode`` gives the vectors of :func:`isoscope.evaluate.encode_sentences` with the same
    pooling, passed through ``repair.transform``.

    Parameters
    ----------
    model : str or HFEncoder
        A model name for :func:`isoscope.models.load_encoder`, or a loaded encoder.
    repair : IsotropyTransform or None
        A fitted repair (None: no repair module, the plain pooled model).
    pooling, layer, include_special, drop_position_zero
        The sentence pooling, as in :func:`isoscope.evaluate.encode_sentences`.
    device : str, optional
        Torch device of the returned model (default: the encoder's).

    Returns
    -------
    sentence_transformers.SentenceTransformer
        Save it with ``.save(path)``; ``SentenceTransformer(path)`` loads it back when every
        module is sentence-transformers' (``mean`` or ``cls`` pooling of the last layer and an
        affine repair). The ``cluster`` repair (:class:`RepairModule`) and isoscope's other
        poolings (:class:`IsoscopePooling`) need ``trust_remote_code=True`` with
        sentence-transformers >= 6 (see the module docstring).
    """
    from sentence_transformers import SentenceTransformer

    from isoscope.evaluate._encode import resolve_pooling

    encoder = _load(model)
    pool = resolve_pooling(pooling, layer, n_layers=int(encoder.n_layers), include_special=include_special,
                           drop_position_zero=drop_position_zero)
    pool_module, every_layer = _pooling_module(encoder, pool)
    modules: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="isoscope-export-") as tmp:
        from isoscope.models.hf import quiet_transformers

        # a copy through a temporary folder: no "Writing shards" / "Loading weights" bars
        with quiet_transformers():
            encoder.model.save_pretrained(tmp)
            encoder.tokenizer.save_pretrained(tmp)
            config_kwargs = {"output_hidden_states": True} if every_layer else {}
            modules.append(_STTransformer(tmp, max_seq_length=int(encoder.max_length),
                                          config_kwargs=config_kwargs))
    modules.append(pool_module)
    if repair is not None:
        rep = _repair_module(repair)
        if repair.n_features_in_ != int(encoder.hidden_size):
            raise InputError(f"The repair was fitted on {repair.n_features_in_}-d vectors, but "
                             f"{encoder.name} pools {encoder.hidden_size}-d ones.")
        modules.append(rep)
    st = SentenceTransformer(modules=modules, device=device or str(getattr(encoder, "device", "cpu")))
    log.info("exported %s with %s pooling of layers %s and repair %s", encoder.name, pool.name,
             list(pool.layers), type(repair).__name__ if repair is not None else None)
    return st


def needs_trust_remote_code(st: Any) -> bool:
    """Whether ``SentenceTransformer(path)`` of the saved ``st`` needs ``trust_remote_code=True``.

    True when a module's class lives outside the ``sentence_transformers`` namespace
    (:class:`RepairModule`, :class:`IsoscopePooling`), which sentence-transformers >= 6
    imports only with the flag.

    Parameters
    ----------
    st : sentence_transformers.SentenceTransformer
        A model from :func:`to_sentence_transformer`.

    Returns
    -------
    bool
    """
    return any(not type(m).__module__.startswith("sentence_transformers.") for m in st)


def fit_sentence_repair(
    encoder: Any,
    spec: str,
    sentences: Sequence[str],
    *,
    pooling: str = "mean",
    layer: int | Sequence[int] | None = None,
    include_special: bool | None = None,
    drop_position_zero: bool = False,
    max_sentences: int | None = None,
    seed: int = 0,
    cache: Any = True,
    batch_size: int = 64,
    progress: bool = False,
) -> Any:
    """Fit a repair on the pooled sentence vectors of ``sentences``, as ``isoscope evaluate`` does.

    Parameters
    ----------
    encoder : HFEncoder
        The encoder.
    spec : str
        Repair spec for :func:`isoscope.transforms.fit_repair` (one needing no extra inputs).
    sentences : sequence of str
        Fit sentences (duplicates kept, as evaluate's inductive fit).
    pooling, layer, include_special, drop_position_zero
        The sentence pooling.
    max_sentences : int, optional
        At most this many sentences, sampled with ``seed`` (default: evaluate's fit limit).
    seed : int
        Seed of the sample and of seeded repairs.
    cache, batch_size, progress
        As in :func:`isoscope.evaluate.encode_sentences`.

    Returns
    -------
    IsotropyTransform
        The fitted repair; its ``fit_info_`` records the fit.
    """
    from isoscope.evaluate._encode import encode_sentences, resolve_pooling
    from isoscope.evaluate._run import _MAX_FIT_SENTENCES, _sample_rows
    from isoscope.transforms import fit_repair

    if not sentences:
        raise InputError("There are no sentences to fit the repair on.")
    pool = resolve_pooling(pooling, layer, n_layers=int(encoder.n_layers), include_special=include_special,
                           drop_position_zero=drop_position_zero)
    rows = _sample_rows(len(sentences), max_sentences or _MAX_FIT_SENTENCES, seed)
    chosen = [sentences[i] for i in rows]
    X = encode_sentences(encoder, chosen, pool, cache=cache, batch_size=batch_size, progress=progress)
    log.info("fitting %s on %d pooled sentence vectors", spec, X.shape[0])
    return fit_repair(spec, X, random_state=seed)


def layer_to_dataset(store: Any, layer: int, out: str | os.PathLike[str], *, chunk_rows: int = 65536) -> Any:
    """One store layer and its token table as a Parquet file and a memory-mapped ``datasets.Dataset``.

    The layer is read from the store's memory map ``chunk_rows`` rows at a time (never whole);
    ``datasets`` then memory-maps the Arrow data, so neither step holds the layer in RAM.

    Parameters
    ----------
    store : EmbeddingStore or path
        A store, or its folder.
    layer : int
        Hidden-state index (negative counts from the last stored layer).
    out : path
        Folder for ``layer_<L>.parquet`` (and the ``datasets`` Arrow cache beside it).
    chunk_rows : int
        Rows per chunk and Parquet row group.

    Returns
    -------
    datasets.Dataset
        One row per token: the token table's columns and ``vector`` (float32 list of the layer width).
    """
    import datasets

    from isoscope._hf import layer_to_parquet
    from isoscope.store import open_store

    if isinstance(store, (str, os.PathLike)):
        store = open_store(store)
    index = store._check_layer(int(layer))
    folder = Path(out)
    path = layer_to_parquet(store, index, folder / f"layer_{index}.parquet", chunk_rows=chunk_rows)
    log.info("wrote layer %d of %s (%d tokens) to %s", index, store.path, store.n_tokens, path)
    return datasets.Dataset.from_parquet(str(path), cache_dir=str(folder / ".datasets-cache"))
