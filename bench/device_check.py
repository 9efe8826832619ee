"""GPU check: extraction with --device cuda equals the CPU store (tiny models, no downloads).

Run on a machine with a CUDA GPU:  PYTHONPATH=src python bench/device_check.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import TRAIN_TEXT, _bert_folder, _gpt2_folder  # noqa: E402

from isoscope.extract import extract  # noqa: E402

DEVICE = os.environ.get("ISOSCOPE_CHECK_DEVICE", "cuda")  # "cpu" for a dry run


def main() -> None:
    if DEVICE.startswith("cuda"):
        assert torch.cuda.is_available(), "no CUDA device"
        print("device:", torch.cuda.get_device_name(0), "torch", torch.__version__)
    root = Path(tempfile.mkdtemp())
    corpus = root / "c.txt"
    corpus.write_text("\n".join(TRAIN_TEXT * 20) + "\n")
    for make in (_bert_folder, _gpt2_folder):
        folder = make(root)
        stores = {}
        for device in ("cpu", DEVICE):
            t = time.perf_counter()
            stores[device] = extract(str(folder), str(corpus), root / f"{folder.name}-{device}-{len(stores)}",
                                     dtype="float32", device=device, progress=False)
            print(f"{folder.name} {device}: {stores[device].n_tokens} tokens in {time.perf_counter() - t:.2f} s")
        cpu, gpu = stores["cpu"], stores[DEVICE]
        assert cpu.tokens().equals(gpu.tokens()), "token tables differ"
        worst = max(float(np.abs(cpu.layer(i) - gpu.layer(i)).max()) for i in cpu.layers)
        print(f"{folder.name}: max |cpu - cuda| over all layers = {worst:.2e}")
        assert worst < 1e-3
        part = extract(str(folder), str(corpus), root / f"{folder.name}-part", layers="0,1",
                       dtype="float32", device=DEVICE, progress=False)
        np.testing.assert_allclose(part.layer(1), gpu.layer(1), atol=1e-5)
    print("DEVICE CHECK PASSED")


if __name__ == "__main__":
    main()
