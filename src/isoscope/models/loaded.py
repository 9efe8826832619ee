"""Encoders from an already loaded ``transformers`` model and tokenizer.

:func:`from_loaded` wraps a model the user loaded themselves (a PEFT-wrapped, quantised or
locally modified one) in the same :class:`~isoscope.models.hf.HFEncoder` that
:func:`isoscope.models.load_encoder` returns, and records what can be known of it in
``encoder.origin`` (``isoscope.extract`` writes it into the store manifest as
``model_origin``): the model and base classes, a hash of the config, the parameter dtypes,
the weights hash (:func:`isoscope.models.model_fingerprint`; it covers the injected adapter
weights), the PEFT adapters (each one's configuration: type, rank, targets) and the
quantisation config.
"""

from __future__ import annotations

import enum
import hashlib
from collections import Counter
from typing import Any

from isoscope.errors import InputError


def _base(model: Any) -> Any:
    """The transformer below a PEFT wrapper and a task head."""
    inner = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model
    base = getattr(inner, "base_model", inner)
    return base if base is not None else inner


def _plain(value: Any) -> Any:
    """A PEFT config value as JSON: enums by their value, sets as sorted lists."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(str(v) for v in value)
    return value


def _peft_record(model: Any) -> dict[str, Any] | None:
    """The PEFT adapters of ``model``: each one's configuration by name, and the active ones.

    None for a model without adapters. Each configuration is PEFT's own ``to_dict()`` (adapter
    type, rank, alpha, target modules, ...) made JSON-ready.
    """
    from isoscope._jsonio import clean_json

    configs = getattr(model, "peft_config", None)
    if not isinstance(configs, dict) or not configs:
        return None
    adapters = {}
    for name, config in sorted(configs.items()):
        raw = config.to_dict() if callable(getattr(config, "to_dict", None)) else dict(vars(config))
        adapters[str(name)] = clean_json({str(k): _plain(v) for k, v in raw.items()})
    active = getattr(model, "active_adapters", None)
    active = active() if callable(active) else active
    names = [active] if isinstance(active, str) else active
    return {"adapters": adapters,
            "active": sorted(str(a) for a in names) if isinstance(names, list | tuple | set) else None}


def _quantization_record(config: Any, base: Any) -> dict[str, Any] | None:
    """The model's quantisation: its config's ``quantization_config`` (bitsandbytes, GPTQ, ...),
    else torch's quantised modules swapped in in memory (class counts and weight dtypes)."""
    quant = getattr(config, "quantization_config", None)
    if quant is not None:
        return quant.to_dict() if hasattr(quant, "to_dict") else quant
    counts: Counter[str] = Counter()
    dtypes: set[str] = set()
    for m in base.modules():
        if ".quantized" not in type(m).__module__:
            continue
        counts[f"{type(m).__module__}.{type(m).__qualname__}"] += 1
        weight = getattr(m, "weight", None)
        weight = weight() if callable(weight) else weight  # quantised Linear: a method
        if weight is not None and hasattr(weight, "dtype"):
            dtypes.add(str(weight.dtype).replace("torch.", ""))
    if not counts:
        return None
    return {"quant_method": "torch quantised modules", "modules": dict(sorted(counts.items())),
            "weight_dtypes": sorted(dtypes)}


def describe_loaded(model: Any, base: Any) -> dict[str, Any]:
    """What can be recorded of a loaded model (JSON-ready).

    Parameters
    ----------
    model : torch.nn.Module
        The model as the user passed it.
    base : torch.nn.Module
        The transformer whose hidden states are read.

    Returns
    -------
    dict
    """
    from isoscope.models.cache import _config_json, model_fingerprint

    config = getattr(base, "config", None)
    return {
        "loaded_in_memory": True,
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "base_class": f"{type(base).__module__}.{type(base).__qualname__}",
        "config_sha256": hashlib.sha256(_config_json(config).encode("utf-8")).hexdigest(),
        "name_or_path": str(getattr(config, "_name_or_path", "") or ""),
        "dtypes": sorted({str(p.dtype).replace("torch.", "") for p in base.parameters()}),
        "weights_sha256": model_fingerprint(base),
        "peft": _peft_record(model),
        "quantization": _quantization_record(config, base),
    }


def from_loaded(model: Any, tokenizer: Any, *, name: str | None = None, device: str | None = None,
                max_length: int | None = None) -> Any:
    """An isoscope encoder around an already loaded ``transformers`` model and tokenizer.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A base model, a model with a task head, or a PEFT-wrapped model; used as it is (its
        weights are not copied or reloaded).
    tokenizer : transformers.PreTrainedTokenizerFast
        Its fast tokenizer.
    name : str, optional
        Name recorded in stores and results (default: the model class and config hash).
    device : str, optional
        The model's device (default: where its parameters are).
    max_length : int, optional
        Truncate inputs at this many tokens.

    Returns
    -------
    isoscope.models.hf.HFEncoder
        With ``origin`` set to :func:`describe_loaded` of the model.
    """
    import torch

    from isoscope.models.hf import HFEncoder

    if not isinstance(model, torch.nn.Module) or getattr(model, "config", None) is None:
        raise InputError(f"from_loaded needs a transformers model, got {type(model).__name__}.")
    if not getattr(tokenizer, "is_fast", False):
        raise InputError("from_loaded needs a fast tokenizer (word ids and offsets align words).")
    base = _base(model)
    base.eval()
    origin = describe_loaded(model, base)
    where = device or str(next(base.parameters()).device)
    label = name or f"{type(model).__name__}@{origin['config_sha256'][:12]}"
    encoder = HFEncoder(base, tokenizer, name=label, source=f"in-memory {origin['class']}",
                        device=where, max_length=max_length)
    encoder.origin = origin
    return encoder
