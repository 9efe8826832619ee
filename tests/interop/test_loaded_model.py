"""Already loaded transformers models (modified in memory) through the Python API."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def loaded(tiny_bert):
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(1)
    model = BertModel(BertConfig.from_pretrained(str(tiny_bert)))  # built from a config, in memory
    return model, AutoTokenizer.from_pretrained(str(tiny_bert))


def test_modified_model_is_extracted_and_recorded(loaded, tmp_path, corpus_file):
    import torch

    from isoscope.evaluate import encode_sentences
    from isoscope.extract import extract
    from isoscope.models import from_loaded, model_fingerprint

    model, tok = loaded
    before = model_fingerprint(model)
    with torch.no_grad():
        model.encoder.layer[0].output.dense.weight.mul_(0.5)  # a local modification
    enc = from_loaded(model, tok, name="tiny-modified")
    store = extract(enc, f"text:{corpus_file}", tmp_path / "store", layers="all", dtype="float32")
    origin = store.manifest["model_origin"]
    assert origin["class"] == "transformers.models.bert.modeling_bert.BertModel"
    assert origin["weights_sha256"] == model_fingerprint(model) != before
    assert origin["dtypes"] == ["float32"] and origin["peft"] is None and origin["quantization"] is None
    assert store.manifest["model"] == "tiny-modified" and len(origin["config_sha256"]) == 64
    # the store holds the modified model's hidden states: compare with a direct forward pass
    table = store.tokens()
    first = table["sentence_id"].to_numpy() == table["sentence_id"].iloc[0]
    ids = torch.from_numpy(table["token_id"].to_numpy()[first].astype(np.int64))[None]
    with torch.no_grad():
        out = model(input_ids=ids, output_hidden_states=True)
    np.testing.assert_allclose(np.asarray(store.layer(2))[first], out.hidden_states[2][0].numpy(), atol=1e-4)
    assert encode_sentences(enc, ["the cat sat on the mat ."], cache=False).shape == (1, 32)


def test_head_model_is_read_below_its_head(loaded):
    from transformers import BertForSequenceClassification

    from isoscope.models import from_loaded

    model, tok = loaded
    head = BertForSequenceClassification(model.config)
    enc = from_loaded(head, tok)
    assert enc.model is head.bert and enc.origin["base_class"].endswith("BertModel")
    assert enc.origin["class"].endswith("BertForSequenceClassification")


def test_not_a_model_is_refused(loaded):
    from isoscope.errors import InputError
    from isoscope.models import from_loaded

    with pytest.raises(InputError, match="transformers model"):
        from_loaded(object(), loaded[1])


def test_lora_wrapped_model_is_extracted_analysed_and_recorded(loaded, tmp_path, corpus_file):
    import torch
    from peft import LoraConfig, get_peft_model

    import isoscope
    from isoscope.extract import extract
    from isoscope.models import from_loaded, model_fingerprint

    model, tok = loaded
    plain = model_fingerprint(model)
    torch.manual_seed(2)
    # init_lora_weights=False: random A and B, so the adapter changes the hidden states
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"], init_lora_weights=False)
    wrapped = get_peft_model(model, config)
    enc = from_loaded(wrapped, tok, name="tiny-lora")
    assert enc.model is wrapped.get_base_model()
    store = extract(enc, f"text:{corpus_file}", tmp_path / "store", layers="all", dtype="float32",
                    progress=False)
    origin = store.manifest["model_origin"]  # read back from the JSON manifest
    assert origin["class"] == "peft.peft_model.PeftModel"
    assert origin["base_class"] == "transformers.models.bert.modeling_bert.BertModel"
    lora = origin["peft"]["adapters"]["default"]
    assert (lora["peft_type"], lora["r"], lora["lora_alpha"]) == ("LORA", 4, 8)
    assert sorted(lora["target_modules"]) == ["query", "value"]
    assert origin["peft"]["active"] == ["default"] and origin["quantization"] is None
    assert origin["weights_sha256"] == model_fingerprint(wrapped.get_base_model()) != plain
    # the store holds the adapted model's hidden states, not the base model's
    table = store.tokens()
    first = table["sentence_id"].to_numpy() == table["sentence_id"].iloc[0]
    ids = torch.from_numpy(table["token_id"].to_numpy()[first].astype(np.int64))[None]
    with torch.no_grad():
        adapted = wrapped(input_ids=ids, output_hidden_states=True).hidden_states[2][0].numpy()
        with wrapped.disable_adapter():
            base = wrapped(input_ids=ids, output_hidden_states=True).hidden_states[2][0].numpy()
    stored = np.asarray(store.layer(2))[first]
    np.testing.assert_allclose(stored, adapted, atol=1e-4)
    assert np.abs(stored - base).max() > 1e-2
    result = isoscope.analyze(store, sample=100, seed=0, lid_k=5, k_range=[2, 3], progress=False)
    assert len(result.to_frame()) == store.manifest["n_layers"]


def test_torch_quantised_model_is_extracted_and_recorded(loaded, tmp_path, corpus_file):
    import warnings

    import torch

    from isoscope.extract import extract
    from isoscope.models import from_loaded, model_fingerprint

    model, tok = loaded
    with warnings.catch_warnings():  # torch >= 2.10 points eager-mode quantisation to torchao
        warnings.simplefilter("ignore")
        quantised = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    n_linear = sum(isinstance(m, torch.nn.Linear) for m in model.modules())
    enc = from_loaded(quantised, tok, name="tiny-qint8")
    store = extract(enc, f"text:{corpus_file}", tmp_path / "store", layers="all", dtype="float32",
                    progress=False)
    quant = store.manifest["model_origin"]["quantization"]
    assert quant["quant_method"] == "torch quantised modules" and quant["weight_dtypes"] == ["qint8"]
    assert quant["modules"]["torch.ao.nn.quantized.dynamic.modules.linear.Linear"] == n_linear
    assert all(".quantized." in name for name in quant["modules"])  # and their packed params
    # the fingerprint covers the packed int8 weights: a changed scale gives a new digest
    before = model_fingerprint(quantised)
    layer = quantised.encoder.layer[0].output.dense
    w, b = layer.weight(), layer.bias()
    layer.set_weight_bias(torch.quantize_per_tensor(w.dequantize(), w.q_scale() * 2, 0, torch.qint8), b)
    assert model_fingerprint(quantised) != before
    # the store holds the quantised model's hidden states
    table = store.tokens()
    first = table["sentence_id"].to_numpy() == table["sentence_id"].iloc[0]
    assert np.isfinite(np.asarray(store.layer(3))[first]).all()
    with torch.no_grad():
        ref = model(input_ids=torch.from_numpy(table["token_id"].to_numpy()[first].astype(np.int64))[None],
                    output_hidden_states=True).hidden_states[3][0].numpy()
    assert np.abs(np.asarray(store.layer(3))[first] - ref).max() > 0  # not the float model's vectors
