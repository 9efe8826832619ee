"""Shared fixtures: tiny BERT-like and GPT-2-like models built offline from configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

TRAIN_TEXT = [
    "the cat sat on the mat .",
    "a dog chased the cat across the garden !",
    "language models map words to vectors in a narrow cone .",
    "isotropy means every direction is equally likely .",
    "unbelievably , the transformers tokenised everything into subwords .",
    "frequent words and rare words live in different regions .",
] * 20


def shared_data(*parts: str) -> Path:
    """Path under ../shared/data, skipping the test with a clear reason when absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"test data {path} not found (the shared/data folder beside the checkout)")
    return path


def _bert_folder(root: Path) -> Path:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=120, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tok.train_from_iterator(TRAIN_TEXT, trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=64,
    )
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=3,
                        num_attention_heads=4, intermediate_size=64, max_position_embeddings=64)
    import torch

    torch.manual_seed(0)
    model = BertModel(config)
    folder = root / "tiny-bert"
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def _gpt2_folder(root: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2Model, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TRAIN_TEXT, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>",
                                   unk_token="<|endoftext|>", model_max_length=64)
    config = GPT2Config(vocab_size=tok.get_vocab_size(), n_embd=32, n_layer=3, n_head=4, n_positions=64,
                        bos_token_id=0, eos_token_id=0)
    import torch

    torch.manual_seed(0)
    model = GPT2Model(config)
    folder = root / "tiny-gpt2"
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a randomly initialised 3-layer BERT (width 32) with a trained WordPiece tokenizer."""
    return _bert_folder(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a randomly initialised 3-layer GPT-2 (width 32) with a trained byte-level BPE."""
    return _gpt2_folder(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep test caches out of the user's cache directory, unless the caller chose one."""
    os.environ.setdefault("ISOSCOPE_CACHE", str(tmp_path_factory.mktemp("cache")))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def corpus_file(tmp_path: Path) -> Path:
    """A small plain-text corpus, one sentence per line."""
    path = tmp_path / "corpus.txt"
    lines = [
        "the cat sat on the mat .",
        "unbelievably , the transformers tokenised everything .",
        "",
        "a dog chased the cat across the garden !",
        "language models map words to vectors .",
        "isotropy means every direction is equally likely in the space of all vectors .",
    ] * 5
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
