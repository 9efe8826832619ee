"""Loading and running an encoder leaves transformers' global state as it found it."""

from __future__ import annotations

import pytest

from isoscope.models import load_encoder
from isoscope.models.hf import _PACKED_ATTENTION


def _registries() -> tuple[list[str], list[str]]:
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    return sorted(ALL_ATTENTION_FUNCTIONS.valid_keys()), sorted(ALL_MASK_ATTENTION_FUNCTIONS.valid_keys())


@pytest.mark.parametrize("name", ["tiny_bert", "tiny_gpt2"])
@pytest.mark.parametrize("verbosity", ["INFO", "WARNING"])
def test_log_level_progress_bars_and_attention_registry_are_restored(name, verbosity, request) -> None:
    from transformers.utils import logging as hf_logging

    path = str(request.getfixturevalue(name))
    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity(getattr(hf_logging, verbosity))
    hf_logging.enable_progress_bar()
    try:
        before = _registries()
        assert _PACKED_ATTENTION not in before[0]
        encoder = load_encoder(path)
        assert encoder.packs  # the packed attention was usable during the load ...
        assert hf_logging.get_verbosity() == getattr(hf_logging, verbosity)
        assert hf_logging.is_progress_bar_enabled()
        assert _registries() == before  # ... and is registered no longer
        assert encoder.model.config._attn_implementation == "sdpa"  # the model is as loaded
        flat = encoder.tokenize_flat(["the cat sat on the mat .", "a dog chased the cat !"])
        rows = encoder.encode_packed(flat.ids, flat.lengths, [0, encoder.n_layers - 1])
        assert rows[0].shape[0] == int(flat.lengths.sum())
        assert _registries() == before and encoder.model.config._attn_implementation == "sdpa"
        # The model still runs outside isoscope's own passes.
        encoder.model(**encoder.tokenizer(["a dog"], return_tensors="pt"))
    finally:
        hf_logging.set_verbosity(previous)
