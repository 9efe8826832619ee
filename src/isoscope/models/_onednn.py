"""Linear layers with weights pre-packed for oneDNN, kept only where they are right and faster.

PyTorch runs ``nn.Linear`` on the CPU through MKL's ``sgemm``, which re-packs the weight on
every call. oneDNN can take the weight packed once, ahead of time, in its blocked layout; on
the 2-core AVX2 machine this project is measured on, that runs the transformer blocks' linear
layers 5-10 % faster (``bench/extract.py`` prints both rates). The packed op is PyTorch's own
(``torch.ops.mkldnn``, the one ``torch.compile`` uses for CPU linear layers), but it is a
private op, the packed copy doubles the linear layers' weight memory, and whether it pays off
depends on the machine. So :func:`pack_if_faster` decides per loaded model, at load:

1. it runs a full forward pass of the model on a small fixed batch, unpatched and packed;
2. it keeps the packed layers only if every output (every hidden state) agrees with the
   unpatched pass within :data:`RTOL` (``max |packed - plain| <= RTOL * (1 + max |plain|)``,
   so models with large activations are held to the same relative precision) **and** the
   median of :data:`REPEATS` interleaved timed passes (the median shrugs off a pass slowed by
   another process) is strictly lower packed than plain;
3. otherwise it restores the model exactly as loaded (original classes, packed copies dropped).

The timings are taken once per model, check batch, torch version, thread count and CPU, and
kept in the isoscope cache, so that every later load on this machine (a resumed extraction in
particular) makes the same choice: a store is never written half with one kernel and half with
the other. The output check runs on every load.

Both measurements and the decision are returned as a :class:`KernelCheck`, which the encoder
reports and ``extract`` records in the store manifest (``extraction.linear_kernel_check``).

Each packed layer keeps its ``weight`` and ``bias`` parameters (state dict, parameter counts
and ``isinstance`` checks are untouched); only ``forward`` changes. The packed copy is not
refreshed if the weights change afterwards, so this is for frozen, inference-only models.
"""

from __future__ import annotations

import hashlib
import json
import platform
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from isoscope._jsonio import read_json, write_json
from isoscope.errors import InputError

#: Rows the packed layout is tuned for (one packed batch of ``extract``'s default size).
_BATCH_HINT = 2048
#: Relative tolerance of the output check (float32 GEMMs that block differently agree to
#: about 1e-6 per layer; 1e-4 leaves room for a deep stack, not for a wrong kernel).
RTOL = 1e-4
#: Timed passes of each kind (after one untimed warm-up each), interleaved plain / packed.
REPEATS = 5


def _ops_available() -> bool:
    mkldnn = getattr(torch.ops, "mkldnn", None)
    return (
        torch.backends.mkldnn.is_available()
        and hasattr(mkldnn, "_reorder_linear_weight")
        and hasattr(mkldnn, "_linear_pointwise")
    )


def _packed_linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


class OneDNNLinear(torch.nn.Linear):
    """An ``nn.Linear`` whose forward runs oneDNN on a weight packed once (see module doc)."""

    packed_weight: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32 or x.device.type != "cpu" or torch.is_grad_enabled():
            return F.linear(x, self.weight, self.bias)
        return _packed_linear(x, self.packed_weight, self.bias)


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
        return _packed_linear(x, self.packed_weight, self.bias)


@dataclass(frozen=True)
class KernelCheck:
    """What :func:`pack_if_faster` measured and decided.

    Attributes
    ----------
    used : bool
        Whether the model now runs on packed oneDNN weights.
    reason : str
        Why, in words.
    n_layers : int
        Linear layers that were (or would have been) packed.
    max_abs_diff : float or None
        Largest absolute difference between the packed and the plain forward pass.
    tolerance : float or None
        The bound ``max_abs_diff`` had to stay under (:data:`RTOL` ``* (1 + max |plain|)``).
    plain_s, packed_s : float or None
        Median seconds of one forward pass on the check batch, unpatched and packed.
    """

    used: bool
    reason: str
    n_layers: int = 0
    max_abs_diff: float | None = None
    tolerance: float | None = None
    plain_s: float | None = None
    packed_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


def _pack(weight_out_in: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._reorder_linear_weight(weight_out_in.detach().contiguous(), _BATCH_HINT)


def _eligible(model: torch.nn.Module) -> bool:
    """A CPU float32 model, and a torch build with oneDNN's packed linear op."""
    params = list(model.parameters())
    return bool(params) and all(p.device.type == "cpu" and p.dtype == torch.float32 for p in params) \
        and _ops_available()


def pack_linear_layers(model: torch.nn.Module) -> list[tuple[torch.nn.Module, type]]:
    """Switch a CPU float32 model's linear layers to packed oneDNN weights, in place.

    Use :func:`pack_if_faster` to keep them only where they pay off; this function packs
    unconditionally and returns what :func:`unpack_linear_layers` needs to undo it.

    Parameters
    ----------
    model : torch.nn.Module
        A model in eval mode, on the CPU, in float32. Other models are left alone.

    Returns
    -------
    list of (module, original class)
        The layers switched (empty where the model is not CPU float32 or the op is missing).
    """
    if not _eligible(model):
        return []
    from transformers.pytorch_utils import Conv1D

    switched: list[tuple[torch.nn.Module, type]] = []
    try:
        for module in model.modules():
            if type(module) is torch.nn.Linear:
                module.packed_weight = _pack(module.weight)
                switched.append((module, torch.nn.Linear))
                module.__class__ = OneDNNLinear
            elif type(module) is Conv1D:
                module.packed_weight = _pack(module.weight.t())
                switched.append((module, Conv1D))
                module.__class__ = OneDNNConv1D  # type: ignore[assignment]
    except RuntimeError:  # the op exists but refuses this build or CPU
        unpack_linear_layers(switched)
        return []
    return switched


def unpack_linear_layers(switched: Iterable[tuple[torch.nn.Module, type]]) -> None:
    """Give layers switched by :func:`pack_linear_layers` their original class back, dropping the packed copies."""
    for module, cls in switched:
        module.__class__ = cls
        if "packed_weight" in vars(module):
            del module.packed_weight


def _flatten(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        return [t for k in sorted(out) for t in _flatten(out[k])]
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _flatten(o)]
    return []


def _max_diff(got: list[torch.Tensor], want: list[torch.Tensor]) -> tuple[float, float]:
    """Largest |got - want| (inf where shapes differ or values are not finite) and the tolerance."""
    if len(got) != len(want) or any(g.shape != w.shape for g, w in zip(got, want, strict=True)):
        return float("inf"), 0.0
    diff, scale = 0.0, 0.0
    for g, w in zip(got, want, strict=True):
        d = (g.double() - w.double()).abs().max().item() if g.numel() else 0.0
        diff = max(diff, d if d == d else float("inf"))  # NaN counts as a mismatch
        scale = max(scale, w.double().abs().max().item() if w.numel() else 0.0)
    return diff, RTOL * (1.0 + scale)


def _timed(run: Callable[[], Any]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _median_times(run: Callable[[], Any], pack: Callable[[], Any], unpack: Callable[[], Any]) -> tuple[float, float]:
    """Median seconds of a plain and a packed pass, interleaved so that machine drift hits both."""
    plain: list[float] = []
    packed: list[float] = []
    for _ in range(REPEATS):
        unpack()
        plain.append(_timed(run))
        pack()
        packed.append(_timed(run))
    return statistics.median(plain), statistics.median(packed)


def _timings_path(key: str) -> Path:
    from isoscope.models.cache import cache_dir

    return cache_dir("kernels") / f"{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}.json"


def _load_timings(key: str | None) -> tuple[float, float] | None:
    """Timings measured before for ``key`` (None when absent or unreadable)."""
    if key is None:
        return None
    try:
        data = read_json(_timings_path(key), "kernel timings file")
        if data.get("key") != key:
            return None
        plain_s, packed_s = float(data["plain_s"]), float(data["packed_s"])
    except (InputError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return (plain_s, packed_s) if plain_s > 0 and packed_s > 0 else None


def _save_timings(key: str | None, timings: tuple[float, float]) -> None:
    if key is None:
        return
    try:
        write_json(_timings_path(key), {"key": key, "plain_s": timings[0], "packed_s": timings[1]},
                   indent=None)
    except OSError:  # a read-only cache only costs the next load a new measurement
        pass


def machine_key(model_id: str, batch: str) -> str:
    """What the timing decision depends on: the model, the check batch, torch and this CPU."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    return json.dumps([model_id, batch, torch.__version__, torch.get_num_threads(), cpu])


def pack_if_faster(model: torch.nn.Module, run: Callable[[], Any], timing_key: str | None = None) -> KernelCheck:
    """Pack ``model``'s linear layers only if that gives the same outputs and is faster here.

    Parameters
    ----------
    model : torch.nn.Module
        A loaded model in eval mode; only CPU float32 models are considered.
    run : callable
        Runs one full forward pass of ``model`` on a small fixed batch and returns its outputs
        (a tensor, or a dict / sequence of tensors).
    timing_key : str, optional
        Identifies the model, batch and machine (see :func:`machine_key`). Timings are then
        measured once per key, stored under the isoscope cache (``kernels/``) and reused, so
        every run and every resume of a store on this machine uses the same kernel (float32
        sums in another order differ in the last bits). The output check runs every time.

    Returns
    -------
    KernelCheck
        The decision and both measurements. Where packing is not kept, the model is exactly
        as it was (classes and state dict; the packed copies are freed).
    """
    if not _eligible(model):
        return KernelCheck(False, "not a CPU float32 model, or oneDNN's packed op is unavailable")
    with torch.inference_mode():
        want = _flatten(run())
        switched = pack_linear_layers(model)
        if not switched:
            return KernelCheck(False, "oneDNN could not pack this model's linear layers")
        n = len(switched)
        try:
            got = _flatten(run())
        except RuntimeError:
            unpack_linear_layers(switched)
            return KernelCheck(False, "the packed forward pass failed", n)
        diff, tol = _max_diff(got, want)
        if not diff <= tol:
            unpack_linear_layers(switched)
            return KernelCheck(False, "the packed outputs differ from the plain ones", n, diff, tol)
        classes = {id(m): type(m) for m, _ in switched}

        def repack() -> None:
            for m, _ in switched:
                m.__class__ = classes[id(m)]

        def plain() -> None:
            for m, cls in switched:
                m.__class__ = cls

        timings = _load_timings(timing_key)
        if timings is None:
            timings = _median_times(run, repack, plain)
            _save_timings(timing_key, timings)
        plain_s, packed_s = timings
        if packed_s < plain_s:
            repack()
            return KernelCheck(True, "same outputs and faster", n, diff, tol, plain_s, packed_s)
        unpack_linear_layers(switched)
        return KernelCheck(False, "not faster on this machine", n, diff, tol, plain_s, packed_s)
