"""Dequantised GGUF models: a missing or unexpected weight fails instead of staying random."""

from __future__ import annotations

import pytest
import torch

from isoscope.errors import ModelNotAvailableError
from isoscope.models import gguf


def _tiny_llama(tied: bool = True):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32,
                         tie_word_embeddings=tied)
    return LlamaForCausalLM(config).eval()


def test_complete_weights_are_copied_and_a_tied_head_may_be_absent() -> None:
    source, target = _tiny_llama(), _tiny_llama()
    with torch.no_grad():
        for p in source.parameters():
            p.add_(1.0)  # differ from target's initialisation
    state = source.state_dict()
    state.pop("lm_head.weight")  # GGUF stores a tied head once
    state["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(4)  # recomputed from the config
    gguf.copy_weights(target, state, "tiny")
    for key, value in source.state_dict().items():
        torch.testing.assert_close(target.state_dict()[key], value, rtol=0, atol=0)
    assert target.lm_head.weight is target.model.embed_tokens.weight


@pytest.mark.parametrize("tied", [True, False])
def test_a_missing_weight_is_one_sentence(tied) -> None:
    state = _tiny_llama(tied).state_dict()
    state.pop("model.layers.1.mlp.down_proj.weight")
    with pytest.raises(ModelNotAvailableError, match=r"^The GGUF weights of tiny do not match its architecture: "
                       r"1 missing \(first 'model.layers.1.mlp.down_proj.weight'\) weights; reinstall"):
        gguf.copy_weights(_tiny_llama(tied), state, "tiny")


def test_an_untied_head_that_is_missing_fails() -> None:
    state = _tiny_llama(tied=False).state_dict()
    state.pop("lm_head.weight")
    with pytest.raises(ModelNotAvailableError, match="1 missing"):
        gguf.copy_weights(_tiny_llama(tied=False), state, "tiny")


def test_an_unexpected_weight_fails() -> None:
    state = _tiny_llama().state_dict()
    state["model.layers.2.mlp.up_proj.weight"] = torch.zeros(32, 16)
    with pytest.raises(ModelNotAvailableError, match=r"1 unexpected \(first 'model.layers.2.mlp.up_proj.weight'\)"):
        gguf.copy_weights(_tiny_llama(), state, "tiny")


def test_dequantising_a_model_that_lacks_a_tensor_fails_and_caches_nothing(tmp_path, monkeypatch) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("ISOSCOPE_CACHE", str(tmp_path))
    quantised = _tiny_llama()
    real_state_dict = quantised.state_dict

    def lacking(*args, **kwargs):
        state = real_state_dict(*args, **kwargs)
        state.pop("model.norm.weight")
        return state

    monkeypatch.setattr(quantised, "state_dict", lacking)
    monkeypatch.setitem(gguf.GGUF_SOURCES, "tinygguf", lambda: (tmp_path, "tiny.gguf"))
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", lambda *a, **k: quantised)
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", lambda *a, **k: object())
    with pytest.raises(ModelNotAvailableError, match=r"tinygguf do not match .* 'model.norm.weight'"):
        gguf.dequantised_folder("tinygguf")
    assert not (tmp_path / "models" / "tinygguf-f32").exists()
