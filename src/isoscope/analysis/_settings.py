"""Typed analysis settings and the seeds derived from one seed."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from isoscope.errors import InputError

#: Named random streams derived from the analysis seed with ``SeedSequence(seed).spawn``, so
#: that the samples they draw are independent of each other (the measured sample itself is
#: drawn with ``default_rng(seed)``, as ``EmbeddingStore.sample`` does).
SEED_STREAMS: tuple[str, ...] = ("fit_rows", "word_types", "sentences", "lid_values",
                                 "neighbor_audit", "similarity")


def derived_seeds(seed: int) -> dict[str, int]:
    """One 32-bit seed per entry of :data:`SEED_STREAMS`, from ``SeedSequence(seed).spawn``."""
    children = np.random.SeedSequence(int(seed)).spawn(len(SEED_STREAMS))
    return {
        name: int(child.generate_state(1, dtype=np.uint32)[0])
        for name, child in zip(SEED_STREAMS, children, strict=True)
    }


@dataclass
class AnalysisSettings:
    """Every setting of :func:`isoscope.analysis.analyze`, recorded in ``results.json``.

    The defaults follow the papers (see the README's table of deviations); each field is
    documented in ``docs/results.md`` beside the measures that read it.
    """

    sample: int | None = 10000
    seed: int = 0
    include_special: bool | None = False
    drop_position_zero: bool | None = False
    #: Neighbour and cluster measures run on a sample of the layer's distinct vectors, drawn
    #: after removing exact duplicates (False: de-duplicate the shared sample instead).
    distinct_before_sampling: bool = True
    k_range: list[int] = field(default_factory=lambda: [2, 15])
    silhouette_sample: int | None = 3000
    # k-means++ with one initialisation per k (scikit-learn's n_init="auto"): on a
    # 10,000 x 384 sample about 3x faster than three restarts, which dominated the suite.
    kmeans_backend: str = "sklearn"
    kmeans_n_init: int = 1
    kmeans_max_iter: int = 50
    no_cluster_mms: float | None = 0.1
    lid_k: int = 20
    lid_metric: str = "euclidean"
    lid_variant: str = "amsaleg"
    lid_values_max: int = 2000
    twonn_discard_fraction: float = 0.1
    neighbor_backend: str = "auto"
    #: LID/TwoNN neighbours: "exact", or faiss "ivf"/"hnsw" audited against the exact search
    #: on ``neighbors_audit`` seeded points (keys knn_recall_at_k, knn_lid_difference).
    neighbors: str = "exact"
    neighbors_audit: int = 1000
    s_intra_key: str = "token"
    s_intra_min_occurrences: int = 5
    s_intra_cap: int = 50
    s_intra_max_types: int = 1000
    ethayarajh_sentences: int = 300
    isoscore_star_zeta: float = 0.2
    isoscore_star_reference: str = "layer"
    frequency_source: str = "word_count"
    frequency_components: int = 3
    rogue_top: int = 5
    #: Rows of the sample on which layers are compared (``layer_similarity``); 0 turns the
    #: section off, None uses the whole sample (memory: layers x rows² x 8 bytes).
    similarity_sample: int | None = 1000
    #: Neighbours of the mutual k-NN and χ overlaps.
    similarity_k: int = 10
    #: Also report debiased CKA (the unbiased HSIC estimator).
    similarity_debiased: bool = True
    #: Stream every selected token of each layer for the moment measures (False: the sample).
    full_layer_stats: bool = True
    chunk_rows: int = 32768
    #: I(V) over every selected token of each layer, streamed in two passes (False: the
    #: sample). A sketch store keeps a sample only, so it runs the extraction its manifest
    #: records twice more instead (the analysed layers only; see ``analysis._second_pass``).
    exact_partition: bool = False
    threads: int | None = None
    #: "local" (one process) or "ray": moment passes per row-range shard and the exact
    #: neighbour search in blocks, as Ray tasks (``ray_address``: None starts a local Ray).
    engine: str = "local"
    ray_address: str | None = None
    ray_workers: int | None = None

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every setting name."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_overrides(cls, overrides: dict[str, Any]) -> AnalysisSettings:
        """Defaults updated with ``overrides``, validated (one-sentence errors)."""
        unknown = sorted(set(overrides) - set(cls.names()))
        if unknown:
            hint = ""
            if "isotropy_normalisation" in unknown:
                hint = (" I(V) is now reported on raw, centred and unit vectors under its own "
                        "keys (isotropy_partition, _centered, _unit).")
            raise InputError(f"Unknown analysis setting(s): {', '.join(unknown)}.{hint}")
        s = cls(**overrides)
        s.validate()
        return s

    def validate(self) -> None:
        """Raise InputError for a value no measure can use."""
        from isoscope._validation import check_seed

        self.seed = check_seed(self.seed, option="seed")
        if self.sample is not None and int(self.sample) < 3:
            raise InputError(f"The sample size must be at least 3, got {self.sample}.")
        try:
            lo, hi = (int(v) for v in self.k_range)
        except (TypeError, ValueError):
            raise InputError(f"k_range takes two integers, got {self.k_range!r}.") from None
        if not 2 <= lo <= hi:
            raise InputError(f"k_range must satisfy 2 <= low <= high, got {self.k_range!r}.")
        self.k_range = [lo, hi]
        if int(self.lid_k) < 2:
            raise InputError(f"lid_k must be at least 2, got {self.lid_k}.")
        if self.lid_variant not in ("amsaleg", "levina_bickel"):
            raise InputError(
                f"Unknown LID variant {self.lid_variant!r}; use amsaleg or levina_bickel."
            )
        if self.isoscore_star_reference not in ("layer", "scaled_identity"):
            raise InputError("isoscore_star_reference must be layer or scaled_identity.")
        if self.s_intra_key not in ("token", "word"):
            raise InputError(f"Unknown s_intra_key {self.s_intra_key!r}; use token or word.")
        from isoscope.metrics._approx import NEIGHBOR_METHODS

        if self.neighbors not in NEIGHBOR_METHODS:
            raise InputError(f"Unknown neighbors option {self.neighbors!r}; use exact, ivf or hnsw.")
        if int(self.neighbors_audit) < 1:
            raise InputError(f"neighbors_audit must be at least 1, got {self.neighbors_audit}.")
        if self.engine not in ("local", "ray"):
            raise InputError(f"Unknown engine {self.engine!r}; use local or ray.")
        if self.ray_workers is not None and int(self.ray_workers) < 1:
            raise InputError(f"ray_workers must be at least 1, got {self.ray_workers}.")
        if self.similarity_sample is not None and int(self.similarity_sample) != 0 and (
            int(self.similarity_sample) <= max(int(self.similarity_k), 3)
        ):
            raise InputError(
                f"similarity_sample must be 0 (off), None (the whole sample) or more than "
                f"similarity_k and 3, got {self.similarity_sample}."
            )
        if int(self.similarity_k) < 1:
            raise InputError(f"similarity_k must be at least 1, got {self.similarity_k}.")
        if self.threads is not None and int(self.threads) < 1:
            raise InputError(f"threads must be at least 1, got {self.threads}.")

    def to_dict(self) -> dict[str, Any]:
        """Plain dictionary (as recorded in ``results.json``)."""
        return dataclasses.asdict(self)


#: Defaults as a plain dictionary (for callers that pass ``**settings``).
DEFAULT_SETTINGS: dict[str, Any] = AnalysisSettings().to_dict()
