"""A Hugging Face transformer that yields every hidden state for a batch of sentences."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from isoscope.errors import InputError, ModelNotAvailableError

# Model types whose base model is autoregressive (each position sees only its prefix).
_CAUSAL_HINTS = ("ForCausalLM", "LMHeadModel")

#: Model types whose sentences can run packed into one row without padding: absolute
#: positions taken from ``position_ids`` and attention through transformers' attention
#: interface. Each is checked against padded batches in tests/store/test_models.py.
_PACKABLE = {"bert", "gpt2"}
_PACKED_ATTENTION = "isoscope_packed"


class _StopForward(Exception):
    """Raised from a forward hook once the deepest requested layer has run."""


@dataclass
class EncodedBatch:
    """Hidden states of one padded batch.

    Attributes
    ----------
    hidden_states : dict of int to torch.Tensor
        Hidden-state index (0 = embedding output, i = output of layer i) to a float32
        tensor of shape (batch, seq, hidden).
    input_ids, attention_mask : torch.Tensor
        (batch, seq) token ids and the 1/0 padding mask (right padding).
    special_mask : torch.Tensor
        (batch, seq) bool, True on special tokens ([CLS], [SEP], <s>, ...).
    word_ids : list of list of int
        For each real token, the index of the word it belongs to in its sentence (-1 for specials).
    offsets : list of list of tuple
        Character span of each real token in its sentence.
    n_truncated : int
        Sentences of this batch cut at the model's maximum length.
    """

    hidden_states: dict[int, torch.Tensor]
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    special_mask: torch.Tensor
    word_ids: list[list[int]]
    offsets: list[list[tuple[int, int]]] = field(default_factory=list)
    n_truncated: int = 0


@dataclass
class FlatTokens:
    """Tokenised sentences as flat arrays (one entry per token, sentences back to back).

    Attributes
    ----------
    ids : ndarray of int32
        Token ids.
    lengths : ndarray of int64
        Tokens per sentence (after truncation).
    offsets : ndarray of int32, shape (n_tokens, 2)
        Character span of each token in its sentence.
    word_ids : ndarray of int32
        Index of the word each token belongs to in its sentence (-1 for none).
    special : ndarray of bool
        True on special tokens.
    truncated : ndarray of bool
        Per sentence: cut at the model's maximum length.
    """

    ids: np.ndarray
    lengths: np.ndarray
    offsets: np.ndarray
    word_ids: np.ndarray
    special: np.ndarray
    truncated: np.ndarray

    @property
    def starts(self) -> np.ndarray:
        """Index of each sentence's first token (plus the total at the end)."""
        return np.concatenate([[0], np.cumsum(self.lengths)])

    @staticmethod
    def concat(parts: Sequence[FlatTokens]) -> FlatTokens:
        """Sentences of several parts, in order."""
        return FlatTokens(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                            ("ids", "lengths", "offsets", "word_ids", "special", "truncated")))

    def select(self, start: int, stop: int) -> FlatTokens:
        """Sentences ``start`` to ``stop`` (exclusive)."""
        starts = self.starts
        a, b = int(starts[start]), int(starts[stop])
        return FlatTokens(self.ids[a:b], self.lengths[start:stop], self.offsets[a:b],
                          self.word_ids[a:b], self.special[a:b], self.truncated[start:stop])


#: Sentences of a packed row share one attention call while their padded size stays within
#: this factor of their real tokens (see :func:`_attention_groups`); ``None``: one call per
#: sentence. Off unless ``ISOSCOPE_GROUP_ATTENTION=1``: on the 2-core benchmark machine it was
#: steadier under CPU contention but 8 % slower without it (docs/benchmarks/extract.md).
_GROUP_PADDING: float | None = 1.25 if os.environ.get("ISOSCOPE_GROUP_ATTENTION", "0") == "1" else None


def _attention_groups(bounds: Sequence[tuple[int, int]], padding: float | None) -> list[list[tuple[int, int]]]:
    """Sentence spans grouped by length, so that each group runs as one padded attention call.

    Spans are taken longest first; a group takes the next span while (spans x longest) stays
    within ``padding`` times the group's real tokens. ``None``: each span alone, in order.
    """
    if padding is None:
        return [[span] for span in bounds]
    groups: list[list[tuple[int, int]]] = []
    real = 0
    for a, b in sorted(bounds, key=lambda s: s[0] - s[1]):  # longest first, stable
        if groups and (len(groups[-1]) + 1) * (groups[-1][0][1] - groups[-1][0][0]) <= \
                padding * (real + b - a):
            groups[-1].append((a, b))
            real += b - a
        else:
            groups.append([(a, b)])
            real = b - a
    return groups


def _packed_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: Any, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, None]:
    """SDPA, or, for packed rows (``isoscope_bounds`` given), SDPA on each sentence's span.

    Packed rows hold several sentences back to back in one batch row, so the linear layers
    run on real tokens only (no padding) and each sentence attends only to itself. Sentences
    of similar length can run as one padded call (:data:`_GROUP_PADDING`; padded keys masked,
    padded query rows dropped): every call is a parallel region whose threads meet at a
    barrier, and one call per sentence made extraction wait at hundreds of barriers per batch,
    which costs a scheduler time slice each whenever another process holds one of the cores.
    """
    bounds = kwargs.get("isoscope_bounds")
    if bounds is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, *args, **kwargs)
    causal = kwargs.get("is_causal")
    causal = bool(getattr(module, "is_causal", True) if causal is None else causal)
    scaling = kwargs.get("scaling")
    batch, heads, length, _ = query.shape
    out = query.new_empty(batch, length, heads, value.shape[-1])  # the layout the caller reshapes
    for group in _attention_groups(bounds, _GROUP_PADDING):
        if len(group) == 1:
            (a, b), = group
            out[:, a:b] = torch.nn.functional.scaled_dot_product_attention(
                query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], is_causal=causal, scale=scaling
            ).transpose(1, 2)
            continue
        starts = torch.tensor([a for a, _ in group])
        lens = torch.tensor([b - a for a, b in group])
        width = int(lens.max())
        steps = torch.arange(width)
        valid = steps[None, :] < lens[:, None]  # (sentences, width)
        # Padding repeats each sentence's last token: its keys are masked, its rows dropped.
        rows = (starts[:, None] + torch.minimum(steps[None, :], lens[:, None] - 1)).reshape(-1)

        def gather(t: torch.Tensor, rows: torch.Tensor = rows, n: int = len(group), w: int = width) -> torch.Tensor:
            return t.index_select(2, rows).view(batch, t.shape[1], n, w, t.shape[-1]).transpose(1, 2) \
                .reshape(batch * n, t.shape[1], w, t.shape[-1])

        # Causal rows see only earlier keys, which are all real; others mask the padded keys.
        mask = None if causal else valid.repeat(batch, 1)[:, None, None, :]
        o = torch.nn.functional.scaled_dot_product_attention(
            gather(query), gather(key), gather(value), attn_mask=mask, is_causal=causal, scale=scaling)
        o = o.transpose(1, 2).reshape(batch, len(group) * width, heads, value.shape[-1])
        keep = valid.reshape(-1).nonzero().squeeze(1)
        out.index_copy_(1, rows[keep], o.index_select(1, keep))
    return out, None


#: Held through every packed pass: the attention switch is per model and the registration
#: class-wide, so packed passes from several threads run one after the other.
_packed_lock = threading.RLock()
_packed_depth = 0


@contextmanager
def _packed_attention_on(model: Any) -> Iterator[None]:
    """Run ``model`` on the packed attention inside the block; afterwards it is as loaded.

    transformers looks attention functions up by name on every forward pass, in class-wide
    registries. isoscope's entry (and its mask function) is registered only while one of its
    packed passes runs, and the model is switched back to its own attention after, so
    transformers' registries and the model are as before outside the block.
    """
    global _packed_depth
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    with _packed_lock:
        if _packed_depth == 0:
            AttentionInterface.register(_PACKED_ATTENTION, _packed_attention)
            AttentionMaskInterface.register(_PACKED_ATTENTION, sdpa_mask)
        _packed_depth += 1
        before = model.config._attn_implementation
        try:
            model.set_attn_implementation(_PACKED_ATTENTION)
            yield
        finally:
            model.set_attn_implementation(before)
            _packed_depth -= 1
            if _packed_depth == 0:
                # transformers has no public unregister; ``register`` writes to this mapping.
                AttentionInterface._global_mapping.pop(_PACKED_ATTENTION, None)
                AttentionMaskInterface._global_mapping.pop(_PACKED_ATTENTION, None)


def _use_packed_attention(model: Any) -> bool:
    """Whether a model can run packed rows (packable type on SDPA; checked by switching once)."""
    config = model.config
    if config.model_type not in _PACKABLE or config._attn_implementation != "sdpa":
        return False
    with _packed_attention_on(model):
        return bool(model.config._attn_implementation == _PACKED_ATTENTION)


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' logging and progress bars inside the block, restoring both after."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _find_layer_list(model: torch.nn.Module, n_layers: int) -> torch.nn.ModuleList:
    """The ModuleList holding the transformer blocks (the longest one of length ``n_layers``)."""
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n_layers:
            return module
    raise RuntimeError("could not locate the transformer blocks of this model")


class HFEncoder:
    """Every hidden state of a Hugging Face encoder or decoder model.

    Use :func:`isoscope.models.load_encoder` to build one.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        The base model (no task head), in eval mode.
    tokenizer : transformers.PreTrainedTokenizerFast
        A fast tokenizer (word ids and offsets are needed for word alignment).
    name : str
        Name recorded in stores and results.
    source : str
        Where the weights came from (path or hub name).
    device : str
        Torch device of the model.
    max_length : int, optional
        Longest input in tokens; longer sentences are truncated (and counted).
    """

    #: What :func:`isoscope.models.from_loaded` recorded of a model loaded by the caller.
    origin: dict[str, Any] | None = None

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        source: str,
        device: str = "cpu",
        max_length: int | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.source = source
        self.device = device
        config = model.config
        self.hidden_size = int(config.hidden_size)
        self.n_blocks = int(config.num_hidden_layers)
        self.n_layers = self.n_blocks + 1
        archs = tuple(getattr(config, "architectures", None) or ())
        self.is_causal = bool(
            getattr(config, "is_decoder", False)
            or any(h in a for a in archs for h in _CAUSAL_HINTS)
            or config.model_type in {"gpt2", "llama", "gemma", "gemma2", "gemma3_text", "mistral",
                                     "qwen2", "qwen3", "phi", "phi3", "gpt_neox", "opt", "falcon"}
        )
        if max_length is not None:
            _check_max_length(int(max_length), tokenizer, config, name)
        limit = max_length or _model_max_length(tokenizer, config)
        self.max_length = int(limit)
        if tokenizer.pad_token is None:
            # Decoder tokenizers often lack a pad token; padding is masked out, so any id works.
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        tokenizer.padding_side = "right"
        self._blocks: torch.nn.ModuleList | None = None
        #: Padding factor of grouped packed attention, or ``None`` (one call per sentence).
        self.attention_grouping = _GROUP_PADDING
        #: Whether :meth:`encode_packed` runs sentences back to back without padding.
        self.packs = _use_packed_attention(model)
        #: ``"onednn-packed"`` where the linear layers run on pre-packed oneDNN weights, else
        #: ``"torch"``: packing is kept only where a full forward pass gives the same outputs
        #: and is faster on this machine (see :mod:`isoscope.models._onednn`); set
        #: ``ISOSCOPE_ONEDNN=0`` to keep PyTorch's default without checking.
        self.linear_kernel = "torch"
        #: What that check measured and decided (``None`` when ``ISOSCOPE_ONEDNN=0``).
        self.linear_kernel_check: dict[str, Any] | None = None
        if os.environ.get("ISOSCOPE_ONEDNN", "1") != "0":
            from isoscope.models._onednn import _eligible, machine_key, pack_if_faster
            from isoscope.models.cache import model_fingerprint

            ids, lengths = self._check_batch()
            key = None
            if _eligible(model):  # the timings are stored per model (by content) and machine
                key = machine_key(model_fingerprint(model), f"packs={self.packs} lengths={lengths.tolist()}")
            check = pack_if_faster(model, lambda: self.encode_packed(ids, lengths, range(self.n_layers)), key)
            self.linear_kernel_check = check.to_dict()
            if check.used:
                self.linear_kernel = "onednn-packed"

    def _check_batch(self) -> tuple[np.ndarray, np.ndarray]:
        """A small fixed batch of token ids (4 sentences of up to 128 tokens, fixed seed)."""
        length = max(1, min(128, self.max_length))
        vocab = int(getattr(self.model.config, "vocab_size", 0) or len(self.tokenizer))
        rng = np.random.default_rng(0)
        lengths = np.array([length, length, max(1, length // 2), max(1, length // 4)], dtype=np.int64)
        return rng.integers(0, vocab, size=int(lengths.sum())), lengths

    @property
    def model_type(self) -> str:
        """``"decoder"`` for causal models, ``"encoder"`` otherwise."""
        return "decoder" if self.is_causal else "encoder"

    def tokenize(self, sentences: Sequence[str]) -> Any:
        """Tokenize with truncation at :attr:`max_length`, keeping offsets and special masks."""
        return self.tokenizer(
            list(sentences),
            truncation=True,
            max_length=self.max_length,
            padding=False,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
            return_attention_mask=False,
        )

    def token_lengths(self, sentences: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token counts after truncation, and a flag per sentence that was truncated."""
        enc = self.tokenize(sentences)
        lengths = np.fromiter((len(ids) for ids in enc["input_ids"]), dtype=np.int64)
        truncated = np.fromiter((bool(e.overflowing) for e in enc.encodings), dtype=bool)
        return lengths, truncated

    def tokenize_flat(self, sentences: Sequence[str]) -> FlatTokens:
        """Tokenise sentences (truncated at :attr:`max_length`) into flat arrays."""
        from itertools import chain

        enc = self.tokenize(sentences)
        lengths = np.fromiter(map(len, enc["input_ids"]), dtype=np.int64, count=len(sentences))
        total = int(lengths.sum())
        # int32 keeps the plan at 13 bytes a token (offsets count characters within a sentence).
        ids = np.fromiter(chain.from_iterable(enc["input_ids"]), dtype=np.int32, count=total)
        special = np.fromiter(chain.from_iterable(enc["special_tokens_mask"]), dtype=bool, count=total)
        offsets = np.fromiter(chain.from_iterable(chain.from_iterable(enc["offset_mapping"])),
                              dtype=np.int32, count=2 * total).reshape(total, 2)
        word_ids = np.fromiter((-1 if w is None else w for e in enc.encodings for w in e.word_ids),
                               dtype=np.int32, count=total)
        truncated = np.fromiter((bool(e.overflowing) for e in enc.encodings), dtype=bool,
                                count=len(sentences))
        return FlatTokens(ids, lengths, offsets, word_ids, special, truncated)

    def encode_packed(
        self, ids: np.ndarray, lengths: np.ndarray, layers: Sequence[int]
    ) -> dict[int, torch.Tensor]:
        """Hidden states of already tokenised sentences, one row per real token.

        Parameters
        ----------
        ids : ndarray of int
            Token ids of the sentences, back to back.
        lengths : ndarray of int
            Tokens per sentence.
        layers : sequence of int
            Sorted hidden-state indices; blocks above the deepest are not run.

        Returns
        -------
        dict of int to torch.Tensor
            Hidden-state index to a float32 (n_tokens, hidden_size) CPU tensor, rows in input order.
        """
        wanted = sorted(set(int(i) for i in layers))
        lengths = np.asarray(lengths, dtype=np.int64)
        if self.packs:
            # One row, no padding: positions restart at every sentence, attention stays inside it.
            starts = np.concatenate([[0], np.cumsum(lengths)])
            positions = np.arange(starts[-1]) - np.repeat(starts[:-1], lengths)
            kwargs: dict[str, Any] = {
                "input_ids": torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64))[None].to(self.device),
                "position_ids": torch.from_numpy(positions)[None].to(self.device),
                "isoscope_bounds": list(zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True)),
            }
            with _packed_attention_on(self.model):
                return {i: h[0] for i, h in self._forward(kwargs, wanted).items()}
        width = int(lengths.max())
        mask = np.arange(width)[None, :] < lengths[:, None]
        padded = np.full((len(lengths), width), self.tokenizer.pad_token_id or 0, dtype=np.int64)
        padded[mask] = ids
        keep = torch.from_numpy(mask)
        kwargs = {"input_ids": torch.from_numpy(padded).to(self.device),
                  "attention_mask": keep.long().to(self.device)}
        return {i: h[keep] for i, h in self._forward(kwargs, wanted).items()}

    def encode(self, sentences: Sequence[str], layers: Sequence[int] | None = None) -> EncodedBatch:
        """Run the model on a batch and return the requested hidden states.

        Parameters
        ----------
        sentences : sequence of str
            Raw sentences; padded on the right and masked.
        layers : sequence of int, optional
            Hidden-state indices to return (0..n_layers-1); all when None. Blocks above the
            deepest requested index are not computed.

        Returns
        -------
        EncodedBatch
        """
        if not sentences:
            raise InputError("Cannot encode an empty batch of sentences.")
        wanted = list(range(self.n_layers)) if layers is None else sorted(set(int(i) for i in layers))
        if wanted and (wanted[0] < 0 or wanted[-1] >= self.n_layers):
            raise InputError(
                f"Layer indices must lie in 0..{self.n_layers - 1} for {self.name}, got {wanted}."
            )
        enc = self.tokenize(sentences)
        n_truncated = sum(bool(e.overflowing) for e in enc.encodings)
        word_ids = [[-1 if w is None else int(w) for w in enc.word_ids(i)] for i in range(len(sentences))]
        offsets = [list(map(tuple, o)) for o in enc["offset_mapping"]]
        padded = self.tokenizer.pad(
            {"input_ids": enc["input_ids"], "special_tokens_mask": enc["special_tokens_mask"]},
            padding=True,
            return_tensors="pt",
        )
        input_ids = padded["input_ids"].to(self.device)
        attention_mask = padded["attention_mask"].to(self.device)
        special = padded["special_tokens_mask"].bool() & attention_mask.bool().cpu()
        states = self._forward({"input_ids": input_ids, "attention_mask": attention_mask}, wanted)
        return EncodedBatch(
            hidden_states=states,
            input_ids=input_ids.cpu(),
            attention_mask=attention_mask.cpu(),
            special_mask=special,
            word_ids=word_ids,
            offsets=offsets,
            n_truncated=n_truncated,
        )

    def _forward(self, kwargs: dict[str, Any], wanted: list[int]) -> dict[int, torch.Tensor]:
        kwargs = dict(kwargs)
        if self.is_causal:
            kwargs["use_cache"] = False
        deepest = wanted[-1]
        with torch.inference_mode():
            if deepest == self.n_layers - 1:
                out = self.model(**kwargs, output_hidden_states=True)
                hs = out.hidden_states
                return {i: hs[i].float().cpu() for i in wanted}
            return self._forward_truncated(kwargs, wanted)

    def _forward_truncated(self, kwargs: dict[str, Any], wanted: list[int]) -> dict[int, torch.Tensor]:
        """Stop the forward pass after block ``deepest - 1``: the blocks above are never run.

        Hidden state 0 is the input of block 0 and hidden state i the output of block i-1, as in
        ``output_hidden_states`` (whose last entry alone may carry a final norm; it is never
        requested here because the full path serves it).
        """
        if self._blocks is None:
            self._blocks = _find_layer_list(self.model, self.n_blocks)
        blocks = self._blocks
        deepest = wanted[-1]
        captured: dict[int, torch.Tensor] = {}

        def pre_hook(_module: Any, args: tuple, kw: dict) -> None:
            x = args[0] if args else kw.get("hidden_states")
            if isinstance(x, torch.Tensor):  # block 0 always gets its input hidden states
                captured[0] = x

        def make_hook(index: int) -> Any:
            def hook(_module: Any, _args: Any, output: Any) -> None:
                captured[index + 1] = output[0] if isinstance(output, tuple) else output
                if index + 1 == deepest:
                    raise _StopForward

            return hook

        handles = [blocks[0].register_forward_pre_hook(pre_hook, with_kwargs=True)]
        handles += [blocks[j].register_forward_hook(make_hook(j)) for j in range(deepest)]
        try:
            self.model(**kwargs)
        except _StopForward:
            pass
        finally:
            for h in handles:
                h.remove()
        return {i: captured[i].float().cpu() for i in wanted}

    def __repr__(self) -> str:
        return (
            f"HFEncoder(name={self.name!r}, type={self.model_type}, n_layers={self.n_layers}, "
            f"hidden_size={self.hidden_size}, max_length={self.max_length})"
        )


def _position_limit(config: Any) -> int | None:
    pos = getattr(config, "max_position_embeddings", None)
    if not pos:
        return None
    # RoBERTa-style models reserve two positions for the padding offset.
    return int(pos) - (2 if config.model_type in {"roberta", "xlm-roberta", "camembert"} else 0)


def _check_max_length(max_length: int, tokenizer: Any, config: Any, name: str) -> None:
    """A requested length must hold the special tokens plus one token, and fit the positions."""
    low = int(tokenizer.num_special_tokens_to_add(pair=False)) + 1
    high = _position_limit(config)
    if max_length < low or (high is not None and max_length > high):
        span = f"{low}..{high}" if high is not None else f"at least {low}"
        raise InputError(f"--max-length for {name} must be {span} tokens, not {max_length}.")


def _model_max_length(tokenizer: Any, config: Any) -> int:
    """A sane maximum input length: the tokenizer's unless it is a placeholder, capped by positions."""
    limits = []
    tok_max = getattr(tokenizer, "model_max_length", None)
    if tok_max and tok_max < 1_000_000:
        limits.append(int(tok_max))
    pos = _position_limit(config)
    if pos:
        limits.append(pos)
    return min(limits) if limits else 512


#: Files that hold a tokenizer's vocabulary (fast JSON, WordPiece, BPE, SentencePiece).
_TOKENIZER_FILES = (
    "tokenizer.json", "vocab.txt", "vocab.json", "tokenizer.model", "spiece.model",
    "sentencepiece.bpe.model",
)


def _refuse_tokenizer_code(folder: Path, source: str) -> None:
    """Refuse a folder whose ``tokenizer_config.json`` names tokenizer code (``auto_map``).

    Without ``trust_remote_code`` transformers does not import those Python files but silently
    loads a built-in tokenizer class instead, which need not be the tokenizer the folder names;
    so the folder is refused without the flag, before transformers reads it.
    """
    from isoscope._jsonio import read_json
    from isoscope.errors import InputError

    path = folder / "tokenizer_config.json"
    if not path.is_file():
        return
    try:
        config = read_json(path, "tokenizer configuration")
    except InputError as exc:
        raise ModelNotAvailableError(str(exc)) from None
    auto_map = config.get("auto_map") if isinstance(config, dict) else None
    if auto_map:
        raise ModelNotAvailableError(
            f"Model {source!r} ships its own tokenizer code (auto_map in tokenizer_config.json), which "
            "isoscope runs only with --trust-remote-code (trust_remote_code=True); check that code first."
        )


def load_hf(
    path_or_name: str | os.PathLike[str],
    *,
    name: str | None = None,
    device: str = "cpu",
    trust_remote_code: bool = False,
    max_length: int | None = None,
    gguf_file: str | None = None,
) -> HFEncoder:
    """Load a Hugging Face base model and its fast tokenizer.

    Parameters
    ----------
    path_or_name : str or path
        A local folder or a hub name (the hub needs network access or a warm HF cache).
    name : str, optional
        Name recorded in results (default: ``path_or_name``).
    device : str
        ``"cpu"`` or ``"cuda"`` (or any torch device).
    trust_remote_code : bool
        Run code shipped with the model; off unless the user asks for it.
    max_length : int, optional
        Override the maximum input length.
    gguf_file : str, optional
        File name of GGUF weights inside the folder.

    Returns
    -------
    HFEncoder
    """
    with quiet_transformers():
        return _load_hf(path_or_name, name=name, device=device, trust_remote_code=trust_remote_code,
                        max_length=max_length, gguf_file=gguf_file)


def _load_hf(
    path_or_name: str | os.PathLike[str],
    *,
    name: str | None,
    device: str,
    trust_remote_code: bool,
    max_length: int | None,
    gguf_file: str | None,
) -> HFEncoder:
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    source = str(path_or_name)
    local = Path(source).expanduser()
    if local.exists():
        if not local.is_dir():
            raise ModelNotAvailableError(f"Model path {source} is a file; give the model's folder.")
        if gguf_file is None and not (local / "config.json").is_file():
            raise ModelNotAvailableError(
                f"Model folder {source} has no config.json, so it is not a Hugging Face model folder."
            )
        # Without tokenizer files transformers builds an empty tokenizer that maps every word
        # to the unknown token, which would silently fill a store with [UNK] vectors.
        if gguf_file is None and not any((local / f).is_file() for f in _TOKENIZER_FILES):
            raise ModelNotAvailableError(
                f"Model folder {source} has no tokenizer files ({', '.join(_TOKENIZER_FILES[:3])}, ...)."
            )
        if not trust_remote_code:
            _refuse_tokenizer_code(local, source)
        source = str(local)
    extra: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if gguf_file:
        extra["gguf_file"] = gguf_file
    try:
        config = AutoConfig.from_pretrained(source, **extra)
        tokenizer = AutoTokenizer.from_pretrained(source, use_fast=True, **extra)
        model = AutoModel.from_pretrained(source, config=config, **extra)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "custom code" in first and not trust_remote_code:
            raise ModelNotAvailableError(
                f"Model {source!r} ships its own code, which isoscope runs only with "
                "--trust-remote-code (trust_remote_code=True); check that code first."
            ) from None
        raise ModelNotAvailableError(
            f"Could not load model {source!r} (no bundled short name, local folder or reachable hub "
            f"copy matched): {first}"
        ) from None
    except Exception as exc:  # corrupt weights surface as many exception types
        if type(exc).__name__ == "UnpicklingError":
            raise ModelNotAvailableError(
                f"Model {source!r} has a pickle checkpoint that holds more than plain weights; "
                "isoscope never unpickles code, so convert it to safetensors where it is trusted."
            ) from None
        raise ModelNotAvailableError(
            f"Could not load model {source!r}: its files look damaged ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})."
        ) from None
    if not getattr(tokenizer, "is_fast", False):
        raise ModelNotAvailableError(
            f"Model {source!r} has no fast tokenizer, which isoscope needs for word alignment."
        )
    if getattr(config, "hidden_size", None) is None or getattr(config, "num_hidden_layers", None) is None:
        raise ModelNotAvailableError(f"Model {source!r} does not declare hidden_size and num_hidden_layers.")
    model.eval()
    try:
        model.to(torch.device(device))
    except (AssertionError, RuntimeError) as exc:  # unknown device string, no CUDA build or GPU
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"Device {device!r} is not available here ({first}).") from None
    return HFEncoder(model, tokenizer, name=name or source, source=source, device=device,
                     max_length=max_length)
