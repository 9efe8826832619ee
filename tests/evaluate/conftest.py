"""Fixtures for the evaluation tests: a fake encoder, a tiny word table, data paths."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@dataclass
class FakeBatch:
    hidden_states: dict[int, torch.Tensor]
    attention_mask: torch.Tensor
    special_mask: torch.Tensor
    input_ids: torch.Tensor
    word_ids: list[list[int]]
    n_truncated: int = 0


def token_vector(token: str, layer: int, dim: int) -> np.ndarray:
    """Deterministic vector of a token at a hidden state (independent of the batch)."""
    rng = np.random.default_rng(zlib.crc32(token.encode()) + 7919 * layer)
    return rng.normal(size=dim).astype(np.float32) + (1.0 + layer)


@dataclass
class FakeEncoder:
    """Whitespace 'tokenizer', [CLS] w1 ... wn [SEP] (or bare words when causal); pads with junk.

    Each token's vector depends only on the token and the layer, so pooling results can be
    computed by hand. ``calls`` counts encode calls (for cache tests).
    """

    name: str = "fake-encoder"
    n_layers: int = 3
    hidden_size: int = 4
    is_causal: bool = False
    calls: list[int] = field(default_factory=list)

    def tokens(self, sentence: str) -> tuple[list[str], list[bool]]:
        words = sentence.lower().split()
        if self.is_causal:
            return words, [False] * len(words)
        return ["[CLS]", *words, "[SEP]"], [True, *([False] * len(words)), True]

    def encode(self, sentences, layers=None):
        self.calls.append(len(sentences))
        wanted = list(range(self.n_layers)) if layers is None else list(layers)
        toks = [self.tokens(s) for s in sentences]
        T = max(len(t) for t, _ in toks)
        B = len(sentences)
        mask = torch.zeros(B, T, dtype=torch.long)
        special = torch.zeros(B, T, dtype=torch.bool)
        states = {}
        for layer in wanted:
            arr = np.full((B, T, self.hidden_size), 1e3, dtype=np.float32)  # padding junk
            for b, (t, _) in enumerate(toks):
                for j, tok in enumerate(t):
                    arr[b, j] = token_vector(tok, layer, self.hidden_size)
            states[layer] = torch.from_numpy(arr)
        for b, (t, sp) in enumerate(toks):
            mask[b, : len(t)] = 1
            special[b, : len(t)] = torch.tensor(sp)
        return FakeBatch(states, mask, special, torch.zeros(B, T, dtype=torch.long), [[]] * B)


@dataclass
class TinyTable:
    """A static word table with the attributes of ``isoscope.models.load_static``'s result."""

    words: list[str]
    vectors: np.ndarray
    name: str = "tiny"


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture
def fake_encoder_cls() -> type[FakeEncoder]:
    return FakeEncoder


@pytest.fixture
def token_vec():
    return token_vector


@pytest.fixture
def tiny_table() -> TinyTable:
    rng = np.random.default_rng(0)
    words = ["the", "cat", "dog", "car", "truck", "king", "queen", "man", "woman", "tiger",
             "Cat", "apple", "fruit", "road", "animal"]
    return TinyTable(words, rng.normal(size=(len(words), 6)).astype(np.float32))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} not found")
    return SHARED_DATA


@pytest.fixture
def stsb_dir(shared_data: Path) -> Path:
    d = shared_data / "stsbenchmark"
    if not (d / "sts-test.csv").is_file():
        pytest.skip(f"STS-B test file not found under {d}")
    return d


@pytest.fixture
def wordsim_dir(shared_data: Path) -> Path:
    d = shared_data / "word-sim"
    if not d.is_dir():
        pytest.skip(f"word-sim folder {d} not found")
    return d
