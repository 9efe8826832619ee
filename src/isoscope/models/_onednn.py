"""Linear layers with weights pre-packed for oneDNN, for float32 inference on the CPU.

PyTorch runs ``nn.Linear`` on the CPU through MKL's ``sgemm``, which re-packs the weight on
every call. oneDNN can take the weight packed once, ahead of time, in its blocked layout;
on the 2-core AVX2 machine this project is measured on, that runs the transformer blocks'
linear layers 5-10 % faster (``bench/extract.py`` prints both rates). The packed op is
PyTorch's own (``torch.ops.mkldnn``, the one ``torch.compile`` uses for CPU linear layers);
where it is missing or disagrees with ``F.linear`` on a probe, nothing is changed.

Each packed layer keeps its ``weight`` and ``bias`` parameters (state dict, parameter counts
and ``isinstance`` checks are untouched); only ``forward`` changes. The packed copy is not
refreshed if the weights change afterwards, so this is for frozen, inference-only models.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: Rows the packed layout is tuned for (one packed batch of ``extract``'s default size).
_BATCH_HINT = 2048


def _ops_available() -> bool:
    mkldnn = getattr(torch.ops, "mkldnn", None)
    return (
        torch.backends.mkldnn.is_available()
        and hasattr(mkldnn, "_reorder_linear_weight")
        and hasattr(mkldnn, "_linear_pointwise")
    )


class OneDNNLinear(torch.nn.Linear):
    """An ``nn.Linear`` whose forward runs oneDNN on a weight packed once (see module doc)."""

    packed_weight: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32 or x.device.type != "cpu" or torch.is_grad_enabled():
            return F.linear(x, self.weight, self.bias)
        return torch.ops.mkldnn._linear_pointwise(x, self.packed_weight, self.bias, "none", [], "")


class OneDNNConv1D(torch.nn.Module):
    """GPT-2's ``Conv1D`` (``x @ W + b`` with W of shape (in, out)) on a packed weight."""

    weight: torch.nn.Parameter
    bias: torch.nn.Parameter
    nf: int
    packed_weight: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32 or x.device.type != "cpu" or torch.is_grad_enabled():
            out = torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight)
            return out.view(*x.shape[:-1], self.nf)
        return torch.ops.mkldnn._linear_pointwise(x, self.packed_weight, self.bias, "none", [], "")


def _pack(weight_out_in: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._reorder_linear_weight(weight_out_in.detach().contiguous(), _BATCH_HINT)


def _probe() -> bool:
    """Whether the packed op runs here and matches ``F.linear`` (float32 rounding aside)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(37, 24, generator=gen)
    w = torch.randn(40, 24, generator=gen)
    b = torch.randn(40, generator=gen)
    try:
        with torch.inference_mode():
            got = torch.ops.mkldnn._linear_pointwise(x, _pack(w), b, "none", [], "")
    except RuntimeError:
        return False
    return bool(torch.allclose(got, F.linear(x, w, b), rtol=1e-5, atol=1e-5))


def pack_linear_layers(model: torch.nn.Module) -> int:
    """Switch a CPU float32 model's linear layers to packed oneDNN weights, in place.

    Parameters
    ----------
    model : torch.nn.Module
        A model in eval mode, on the CPU, in float32. Other models are left alone.

    Returns
    -------
    int
        The number of layers switched (0 where oneDNN's packed op is unavailable).
    """
    params = list(model.parameters())
    if not params or any(p.device.type != "cpu" or p.dtype != torch.float32 for p in params):
        return 0
    if not _ops_available() or not _probe():
        return 0
    from transformers.pytorch_utils import Conv1D

    switched = 0
    for module in model.modules():
        if type(module) is torch.nn.Linear:
            module.packed_weight = _pack(module.weight)
            module.__class__ = OneDNNLinear
        elif type(module) is Conv1D:
            module.packed_weight = _pack(module.weight.t())
            module.__class__ = OneDNNConv1D
        else:
            continue
        switched += 1
    return switched

