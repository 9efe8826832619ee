"""model_fingerprint: a hash of config and weights, not of the model's name or folder."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch

from isoscope.models import load_encoder, model_fingerprint
from isoscope.models.cache import _config_json


def test_same_weights_same_digest_wherever_they_live(tiny_bert, tmp_path) -> None:
    copy = tmp_path / "elsewhere"
    shutil.copytree(tiny_bert, copy)
    a, b = load_encoder(str(tiny_bert)), load_encoder(str(copy))
    digest = model_fingerprint(a)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert digest == model_fingerprint(b) == model_fingerprint(a.model)


def test_digest_is_sha256_over_config_and_tensors_in_name_order() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    h = hashlib.sha256(_config_json(None).encode())
    for name in sorted(model.state_dict()):
        t = model.state_dict()[name]
        head = json.dumps([name, str(t.dtype), list(t.shape)])
        h.update(len(head).to_bytes(8, "little") + head.encode())
        h.update(t.numpy().tobytes())
    assert model_fingerprint(model) == h.hexdigest()


def test_an_in_place_weight_change_or_a_config_change_changes_the_digest(tiny_bert) -> None:
    encoder = load_encoder(str(tiny_bert))
    first = model_fingerprint(encoder)
    with torch.no_grad():
        encoder.model.encoder.layer[1].output.dense.weight[0, 0] += 1e-3
    second = model_fingerprint(encoder)
    assert second != first
    encoder.model.config.layer_norm_eps = 1e-6
    assert model_fingerprint(encoder) not in {first, second}


def test_not_a_model_is_refused() -> None:
    with pytest.raises(TypeError, match="needs a torch model"):
        model_fingerprint(object())
