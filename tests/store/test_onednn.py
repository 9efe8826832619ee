"""oneDNN pre-packed linear layers: same outputs as PyTorch's default, same parameters."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from isoscope.models import load_encoder
from isoscope.models._onednn import OneDNNConv1D, OneDNNLinear, _ops_available, pack_linear_layers

pytestmark = pytest.mark.skipif(not _ops_available(), reason="this torch build has no oneDNN packed linear op")


def test_linear_and_conv1d_match_their_reference_ops() -> None:
    from transformers.pytorch_utils import Conv1D

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(24, 40), Conv1D(16, 40), torch.nn.Linear(16, 8, bias=False)).eval()
    ref = [(m.weight.detach().clone(), None if m.bias is None else m.bias.detach().clone()) for m in model]
    names, n_params = sorted(model.state_dict()), sum(p.numel() for p in model.parameters())
    assert pack_linear_layers(model) == 3
    assert [type(m) for m in model] == [OneDNNLinear, OneDNNConv1D, OneDNNLinear]
    assert sorted(model.state_dict()) == names and sum(p.numel() for p in model.parameters()) == n_params
    # A non-contiguous 3-D input, as attention outputs are.
    x = torch.randn(24, 3, 17).permute(1, 2, 0)
    h = F.linear(x, *ref[0])
    h = h @ ref[1][0] + ref[1][1]  # Conv1D computes x @ W + b with W of shape (in, out)
    expected = F.linear(h, ref[2][0])
    with torch.inference_mode():
        got = model(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    # With gradients on, the layers fall back to the default ops (the packed op has no backward).
    x.requires_grad_(True)
    model(x).sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape


def test_non_float32_models_are_left_alone() -> None:
    model = torch.nn.Linear(4, 4).to(torch.float64)
    assert pack_linear_layers(model) == 0 and type(model) is torch.nn.Linear


@pytest.mark.parametrize("name", ["tiny_bert", "tiny_gpt2"])
def test_packed_encoder_matches_the_default_one(name, request, monkeypatch) -> None:
    path = str(request.getfixturevalue(name))
    monkeypatch.setenv("ISOSCOPE_ONEDNN", "0")
    default = load_encoder(path)
    monkeypatch.setenv("ISOSCOPE_ONEDNN", "1")
    packed = load_encoder(path)
    assert (default.linear_kernel, packed.linear_kernel) == ("torch", "onednn-packed")
    flat = packed.tokenize_flat(["the cat sat on the mat .", "a dog chased the cat across the garden !"])
    layers = list(range(packed.n_layers))
    want = default.encode_packed(flat.ids, flat.lengths, layers)
    got = packed.encode_packed(flat.ids, flat.lengths, layers)
    for layer in layers:
        torch.testing.assert_close(got[layer], want[layer], rtol=1e-5, atol=1e-5)
