"""What the findings run measures: models, corpora, sample sizes, repairs and tasks."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: Model families as the papers group them.
FAMILIES: dict[str, str] = {
    "minilm": "BERT family",
    "mpnet": "BERT family",
    "smollm2": "GPT family",
    "gemma3-270m": "GPT family",
    "glove-50d": "static",
}
DEFAULT_MODELS: tuple[str, ...] = tuple(FAMILIES)

#: Repairs compared for claim 7 (``none`` is always the baseline).
REPAIRS: tuple[str, ...] = ("abtt", "cluster", "learned", "whiten")

#: Word-similarity sets evaluated, and the disjoint ones that train learned removal.
WORD_TASKS: tuple[tuple[str, str], ...] = (
    ("wordsim", "word-sim/EN-WS-353-ALL.txt"),
    ("wordsim", "word-sim/EN-SIMLEX-999.txt"),
)
LEARN_ON: tuple[str, ...] = (
    "word-sim/EN-MTurk-287.txt",
    "word-sim/EN-RG-65.txt",
    "word-sim/EN-MC-30.txt",
    "word-sim/EN-YP-130.txt",
    "word-sim/EN-VERB-143.txt",
)
STS_TEST = "stsbenchmark/sts-test.csv"
STS_TRAIN = "stsbenchmark/sts-train.csv"
WIKITEXT = "wikitext-2/test.txt"

#: The repairs claim compares I(V) of unit-length vectors (``isotropy_partition_unit``): the
#: partition function is not scale-invariant and whitening inflates norms, so I(V) of raw or
#: centred vectors would rank repairs by their norms. The key says so wherever it is shown.
ISOTROPY_KEY = "isotropy_partition_unit_log10"
#: How the page names that number (table headers, checks, captions and figure labels).
ISOTROPY_LABEL = "I(V) of unit-length vectors"


def default_data_dir() -> Path:
    """``shared/data`` beside the project checkout (where the bundled data sets live)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent.parent / "shared" / "data"
        if (parent / "pyproject.toml").exists() and candidate.is_dir():
            return candidate
    return Path.cwd().parent / "shared" / "data"


@dataclass(frozen=True)
class FindingsPlan:
    """Settings of one findings run; recorded in every output and in the page.

    Attributes
    ----------
    models : tuple of str
        Short names (see ``isoscope models``).
    data_dir : str
        Folder holding ``wikitext-2/``, ``stsbenchmark/`` and ``word-sim/``.
    wikitext : str
        WikiText raw file or folder (default ``data_dir/wikitext-2/test.txt``).
    ptb_split : str
        Penn Treebank split (Mikolov's version, as Cai et al. used).
    max_tokens : int or None
        Tokens extracted per model and corpus (whole sentences; None = the whole corpus).
        The full plan stops at 100,000: every measure uses a 10,000-token sample per layer,
        and SmolLM2's 31 float16 layers of all 280,000 WikiText-2 tokens would take 10 GB.
    sample : int
        Tokens measured per layer (seeded uniform sample).
    fit_sentences : int or None
        STS-B training sentences that repairs are fitted on inductively (None = all).
    fit_words : int or None
        Most frequent English words (each encoded alone) that word-level repairs are fitted
        on inductively (static tables: their first rows). None (the full plan) is
        ``isoscope evaluate``'s default, the papers' protocol: a static table's whole
        vocabulary (Mu & Viswanath fit ABTT on every row), 50,000 words for a contextual
        model.
    cloud_points : int
        Points in each 3-D view.
    seed : int
        Seed of every sample, k-means and fit.
    quick : bool
        Whether this is the reduced ``--quick`` plan.
    families : tuple of (model, family) pairs
        Families of models that are not bundled ("BERT family" for encoders, "GPT family"
        for causal models, "static"); unlisted models count as encoders.
    """

    models: tuple[str, ...] = DEFAULT_MODELS
    data_dir: str = field(default_factory=lambda: str(default_data_dir()))
    wikitext: str | None = None
    ptb_split: str = "test"
    max_tokens: int | None = 100_000
    sample: int = 10_000
    fit_sentences: int | None = None
    fit_words: int | None = None
    cloud_points: int = 2_000
    seed: int = 0
    quick: bool = False
    families: tuple[tuple[str, str], ...] = ()

    def family(self, model: str) -> str:
        """'BERT family', 'GPT family' or 'static' (``families`` overrides the bundled ones)."""
        return dict(self.families).get(model) or FAMILIES.get(model, "BERT family")

    @classmethod
    def make(cls, quick: bool = False, **overrides: Any) -> FindingsPlan:
        """The full plan, or the ``quick`` one (10k tokens per corpus, 3k-token samples,
        repairs fitted on 2,000 sentences and 5,000 words)."""
        base: dict[str, Any] = (
            {"max_tokens": 10_000, "sample": 3_000, "fit_sentences": 2_000, "fit_words": 5_000,
             "cloud_points": 1_500}
            if quick
            else {}
        )
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(quick=quick, **base)

    def data(self, relative: str) -> Path:
        """A bundled data file."""
        return Path(self.data_dir) / relative

    @property
    def wikitext_path(self) -> Path:
        return Path(self.wikitext) if self.wikitext else self.data(WIKITEXT)

    def corpora(self) -> dict[str, str]:
        """Corpus name -> isoscope corpus spec."""
        return {"wikitext": f"wikitext:{self.wikitext_path}", "ptb": f"ptb:{self.ptb_split}"}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["models"] = list(self.models)
        d["families"] = {m: self.family(m) for m in self.models}
        d["wikitext"] = str(self.wikitext_path)
        return d

    def fingerprint(self, *keys: str) -> str:
        """Short hash of the settings a step depends on (all settings when no key is given)."""
        d = self.to_dict()
        chosen = {k: d[k] for k in keys} if keys else d
        return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:12]
