"""Where isoscope caches derived files (dequantised models, sentence embeddings), and the
content hash of a model that keys them."""

from __future__ import annotations

import hashlib
import json
import os
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def cache_dir(*parts: str) -> Path:
    """Return (and create) a folder under the isoscope cache.

    The cache is ``$ISOSCOPE_CACHE`` if set, else ``$XDG_CACHE_HOME/isoscope``, else
    ``~/.cache/isoscope``.
    """
    root = os.environ.get("ISOSCOPE_CACHE")
    if root:
        base = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = Path(xdg) / "isoscope" if xdg else Path.home() / ".cache" / "isoscope"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


#: Config entries that say where or how a model was loaded, not what it computes.
_VOLATILE_CONFIG = {"_name_or_path", "transformers_version", "_commit_hash", "_attn_implementation",
                    "_attn_implementation_internal", "_experts_implementation", "name_or_path"}

_FINGERPRINTS: weakref.WeakKeyDictionary[Any, tuple[Any, str]] = weakref.WeakKeyDictionary()


def _config_json(config: Any) -> str:
    if config is None:
        return "null"
    data = config.to_dict() if hasattr(config, "to_dict") else dict(vars(config))
    data = {k: v for k, v in data.items() if k not in _VOLATILE_CONFIG}
    return json.dumps(data, sort_keys=True, default=str)


def _tensor_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """The state dict as plain tensors, by name.

    Entries that are not plain tensors come from quantised modules (torch's dynamic
    quantisation packs a layer's weight and bias into a tuple beside its dtype): a quantised
    tensor stands as its integer values, scale and zero point; a tuple or list as its items
    (``name.0``, ``name.1``, ...); anything else (a dtype) as the bytes of its ``repr``.
    """
    import torch

    out: dict[str, Any] = {}

    def add(name: str, value: Any) -> None:
        if isinstance(value, torch.Tensor) and value.is_quantized:
            out[name] = value.int_repr()
            if value.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
                out[f"{name}.scale"] = torch.tensor([value.q_scale()], dtype=torch.float64)
                out[f"{name}.zero_point"] = torch.tensor([value.q_zero_point()], dtype=torch.int64)
            else:
                out[f"{name}.scales"] = value.q_per_channel_scales()
                out[f"{name}.zero_points"] = value.q_per_channel_zero_points()
        elif isinstance(value, torch.Tensor):
            out[name] = value
        elif isinstance(value, tuple | list):
            for i, item in enumerate(value):
                add(f"{name}.{i}", item)
        elif value is not None:
            out[name] = torch.frombuffer(bytearray(repr(value).encode("utf-8")), dtype=torch.uint8)

    for key, value in state.items():
        add(str(key), value)
    return out


def model_fingerprint(model: Any) -> str:
    """SHA-256 of a model's config and weights: equal exactly when both are.

    The digest covers the config as sorted JSON (without the entries that only say where or
    how the model was loaded: its path, the transformers version, the attention kernel) and,
    in name order, every state-dict tensor's name, dtype, shape and raw bytes (hashed in
    place, without copies, for contiguous CPU tensors; quantised entries as in
    :func:`_tensor_state`). A model whose weights change in place
    gets a new digest (tensor versions are tracked, so an unchanged model is hashed once).

    Parameters
    ----------
    model : torch.nn.Module or object with a ``model`` attribute
        A torch model (with an optional Hugging Face ``config``) or an encoder from
        :func:`isoscope.models.load_encoder`.

    Returns
    -------
    str
        64 lowercase hexadecimal characters.
    """
    import torch

    module = model if isinstance(model, torch.nn.Module) else getattr(model, "model", None)
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"model_fingerprint needs a torch model or an encoder, not {type(model).__name__}")
    state = _tensor_state(module.state_dict())
    config = _config_json(getattr(module, "config", None))
    try:
        token: Any = (config, tuple((k, t.data_ptr(), t._version) for k, t in state.items()))
    except RuntimeError:  # inference tensors keep no version counter: hash every time
        token = None
    cached = _FINGERPRINTS.get(module)
    if token is not None and cached is not None and cached[0] == token:
        return cached[1]
    digest = hashlib.sha256()
    digest.update(config.encode("utf-8"))
    for name in sorted(state):
        tensor = state[name].detach()
        head = json.dumps([name, str(tensor.dtype), list(tensor.shape)])
        digest.update(len(head).to_bytes(8, "little") + head.encode("utf-8"))
        flat = tensor.cpu().contiguous().reshape(-1)
        if flat.numel():
            # A byte view of the tensor's memory: no copy for contiguous CPU tensors, any dtype.
            digest.update(memoryview(flat.view(torch.uint8).numpy()))
    hexdigest = digest.hexdigest()
    if token is not None:
        _FINGERPRINTS[module] = (token, hexdigest)
    return hexdigest
