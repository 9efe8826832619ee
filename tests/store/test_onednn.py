"""oneDNN pre-packed linear layers: kept only where outputs match and the pass is faster."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from isoscope.models import _onednn, load_encoder
from isoscope.models._onednn import (
    OneDNNConv1D,
    OneDNNLinear,
    _ops_available,
    pack_if_faster,
    pack_linear_layers,
    unpack_linear_layers,
)

pytestmark = pytest.mark.skipif(not _ops_available(), reason="this torch build has no oneDNN packed linear op")


def _toy() -> torch.nn.Sequential:
    from transformers.pytorch_utils import Conv1D

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(24, 40), Conv1D(16, 40), torch.nn.Linear(16, 8, bias=False)).eval()


def _snapshot(model: torch.nn.Module) -> tuple[list[type], dict[str, tuple[int, torch.Tensor]]]:
    classes = [type(m) for m in model.modules()]
    state = {k: (v.data_ptr(), v.detach().clone()) for k, v in model.state_dict().items()}
    return classes, state


def _assert_as_loaded(model: torch.nn.Module, snapshot) -> None:
    classes, state = snapshot
    assert [type(m) for m in model.modules()] == classes
    assert not any(type(m) in (OneDNNLinear, OneDNNConv1D) for m in model.modules())
    assert not any("packed_weight" in vars(m) for m in model.modules())  # the packed copies are freed
    now = model.state_dict()
    assert sorted(now) == sorted(state)
    for key, (ptr, value) in state.items():
        assert now[key].data_ptr() == ptr
        torch.testing.assert_close(now[key], value, rtol=0, atol=0)


def test_linear_and_conv1d_match_their_reference_ops() -> None:
    model = _toy()
    ref = [(m.weight.detach().clone(), None if m.bias is None else m.bias.detach().clone()) for m in model]
    names, n_params = sorted(model.state_dict()), sum(p.numel() for p in model.parameters())
    assert len(pack_linear_layers(model)) == 3
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


def test_unpack_restores_classes_and_state_dict() -> None:
    model = _toy()
    before = _snapshot(model)
    unpack_linear_layers(pack_linear_layers(model))
    _assert_as_loaded(model, before)


def test_non_float32_models_are_left_alone() -> None:
    model = torch.nn.Linear(4, 4).to(torch.float64)
    assert pack_linear_layers(model) == [] and type(model) is torch.nn.Linear
    check = pack_if_faster(model, lambda: model(torch.ones(2, 4, dtype=torch.float64)))
    assert not check.used and type(model) is torch.nn.Linear


def test_wrong_packed_output_is_rejected_and_the_model_restored(monkeypatch) -> None:
    model = _toy()
    before = _snapshot(model)
    x = torch.randn(5, 24)
    monkeypatch.setattr(_onednn, "_packed_linear", lambda x, packed, bias: torch.full(
        (*x.shape[:-1], packed.shape[0]), 7.0))
    check = pack_if_faster(model, lambda: model(x))
    assert not check.used and check.reason == "the packed outputs differ from the plain ones"
    assert check.max_abs_diff is not None and check.tolerance is not None and check.max_abs_diff > check.tolerance
    assert check.plain_s is None and check.packed_s is None  # never timed
    _assert_as_loaded(model, before)


@pytest.mark.parametrize(("plain_s", "packed_s", "used"), [(2.0, 1.0, True), (1.0, 2.0, False), (1.0, 1.0, False)])
def test_packing_is_kept_only_where_faster(monkeypatch, plain_s, packed_s, used) -> None:
    model = _toy()
    before = _snapshot(model)
    x = torch.randn(5, 24)
    monkeypatch.setattr(_onednn, "_median_times", lambda run, pack, unpack: (plain_s, packed_s))
    check = pack_if_faster(model, lambda: model(x))
    assert check.used is used and (check.plain_s, check.packed_s) == (plain_s, packed_s)
    assert check.max_abs_diff is not None and check.max_abs_diff <= check.tolerance
    if used:
        assert [type(m) for m in model] == [OneDNNLinear, OneDNNConv1D, OneDNNLinear]
    else:
        assert check.reason == "not faster on this machine"
        _assert_as_loaded(model, before)


def test_timing_interleaves_and_leaves_the_packed_classes_on_for_the_decision() -> None:
    model = _toy()
    x = torch.randn(64, 24)
    check = pack_if_faster(model, lambda: model(x))
    assert check.plain_s is not None and check.packed_s is not None and check.plain_s > 0 and check.packed_s > 0
    want = [OneDNNLinear, OneDNNConv1D, OneDNNLinear] if check.used else [torch.nn.Linear, type(model[1]),
                                                                           torch.nn.Linear]
    assert [type(m) for m in model] == want and check.used is (check.packed_s < check.plain_s)


@pytest.mark.parametrize("name", ["tiny_bert", "tiny_gpt2"])
def test_packed_encoder_matches_the_default_one(name, request, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("ISOSCOPE_CACHE", str(tmp_path))  # no timings from earlier tests
    path = str(request.getfixturevalue(name))
    monkeypatch.setenv("ISOSCOPE_ONEDNN", "0")
    default = load_encoder(path)
    assert default.linear_kernel == "torch" and default.linear_kernel_check is None
    monkeypatch.setenv("ISOSCOPE_ONEDNN", "1")
    monkeypatch.setattr(_onednn, "_median_times", lambda run, pack, unpack: (2.0, 1.0))
    packed = load_encoder(path)
    assert packed.linear_kernel == "onednn-packed"
    check = packed.linear_kernel_check
    assert check is not None and check["used"] and check["n_layers"] > 0
    assert check["max_abs_diff"] <= check["tolerance"] and (check["plain_s"], check["packed_s"]) == (2.0, 1.0)
    flat = packed.tokenize_flat(["the cat sat on the mat .", "a dog chased the cat across the garden !"])
    layers = list(range(packed.n_layers))
    want = default.encode_packed(flat.ids, flat.lengths, layers)
    got = packed.encode_packed(flat.ids, flat.lengths, layers)
    for layer in layers:
        torch.testing.assert_close(got[layer], want[layer], rtol=1e-5, atol=1e-5)


def test_encoder_with_a_wrong_packed_op_stays_as_loaded(tiny_bert, monkeypatch) -> None:
    monkeypatch.setenv("ISOSCOPE_ONEDNN", "0")
    before = _snapshot(load_encoder(str(tiny_bert)).model)
    monkeypatch.setenv("ISOSCOPE_ONEDNN", "1")
    monkeypatch.setattr(_onednn, "_packed_linear", lambda x, packed, bias: torch.rand(
        *x.shape[:-1], packed.shape[0]))
    encoder = load_encoder(str(tiny_bert))
    assert encoder.linear_kernel == "torch"
    assert encoder.linear_kernel_check is not None and not encoder.linear_kernel_check["used"]
    assert encoder.linear_kernel_check["reason"] == "the packed outputs differ from the plain ones"
    classes, state = before
    assert [type(m) for m in encoder.model.modules()] == classes
    now = encoder.model.state_dict()
    assert sorted(now) == sorted(state)
    for key, (_, value) in state.items():
        torch.testing.assert_close(now[key], value, rtol=0, atol=0)


def test_the_store_manifest_records_the_check(tiny_bert, corpus_file, tmp_path, monkeypatch) -> None:
    from isoscope.extract import extract

    monkeypatch.setenv("ISOSCOPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(_onednn, "_median_times", lambda run, pack, unpack: (1.0, 2.0))
    store = extract(str(tiny_bert), str(corpus_file), tmp_path / "s", progress=False)
    extraction = store.manifest["extraction"]
    assert extraction["linear_kernel"] == "torch"
    check = extraction["linear_kernel_check"]
    assert check["used"] is False and check["reason"] == "not faster on this machine"
    assert (check["plain_s"], check["packed_s"]) == (1.0, 2.0) and check["max_abs_diff"] <= check["tolerance"]


def test_timings_are_measured_once_per_machine_key_and_reused(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ISOSCOPE_CACHE", str(tmp_path))
    calls: list[int] = []

    def measured(run, pack, unpack):
        calls.append(1)
        return (2.0, 1.0)

    monkeypatch.setattr(_onednn, "_median_times", measured)
    key = _onednn.machine_key("toy", "x=5x24")
    x = torch.randn(5, 24)
    first_model, second_model = _toy(), _toy()
    first = pack_if_faster(first_model, lambda: first_model(x), key)
    second = pack_if_faster(second_model, lambda: second_model(x), key)
    assert calls == [1] and first == second and second.used
    other = _toy()
    assert pack_if_faster(other, lambda: other(x), _onednn.machine_key("toy", "x=6x24")).used
    assert calls == [1, 1]  # another batch (or model, torch, thread count, CPU) is measured anew
    # The output check still runs on every load: a wrong op is refused despite the stored timings.
    monkeypatch.setattr(_onednn, "_packed_linear", lambda x, packed, bias: torch.zeros(*x.shape[:-1], packed.shape[0]))
    wrong = _toy()
    assert not pack_if_faster(wrong, lambda: wrong(x), key).used
