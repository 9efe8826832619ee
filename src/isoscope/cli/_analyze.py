"""``isoscope analyze``: every geometry measure per layer, a table and a JSON file."""

from __future__ import annotations

from pathlib import Path

import typer

from isoscope.cli.app import (
    app,
    drop_position_zero_option,
    echo,
    progress_option,
    seed_option,
    show_progress,
    transductive_option,
    user_errors,
)


@app.command("analyze")
@user_errors
def analyze_command(
    source: Path = typer.Argument(..., help="An embedding store folder or a .npy file (n x d)."),
    layers: str = typer.Option(
        "all", "--layers", "-l", help="'all', 'last', 0,3,6, a range 0-6 or a mix (0,3,8-10)."
    ),
    sample: int = typer.Option(
        10000, "--sample", "-n", help="Seeded sample of tokens per layer (0: all)."
    ),
    seed: int = seed_option("the sample, k-means and subsamples"),
    out: Path = typer.Option(None, "--out", "-o", help="Write results JSON here."),
    lid_k: int = typer.Option(20, "--lid-k", help="Neighbours for the LID estimate."),
    lid_metric: str = typer.Option("euclidean", "--lid-metric", help="euclidean or cosine."),
    lid_variant: str = typer.Option(
        "amsaleg",
        "--lid-variant",
        help="amsaleg (k / sum log(d_k/d_i), as Cai et al.) or levina_bickel ((k-1) / sum).",
    ),
    k_min: int = typer.Option(2, "--k-min", help="Smallest k for k-means."),
    k_max: int = typer.Option(15, "--k-max", help="Largest k for k-means."),
    silhouette_sample: int = typer.Option(
        3000, "--silhouette-sample", help="Points for the silhouette."
    ),
    include_special: bool = typer.Option(
        False, "--include-special", help="Measure special tokens too."
    ),
    drop_position_zero: bool = drop_position_zero_option("the measures"),
    transform: list[str] = typer.Option(
        None, "--transform", "-t", help="Repair to evaluate, e.g. abtt:n_components=3 (repeatable)."
    ),
    transductive: bool = transductive_option("the measured sample", "default: a disjoint one"),
    threads: int = typer.Option(
        None, "--threads", help="Limit BLAS/OpenMP/faiss threads (helps on a busy shared CPU)."
    ),
    progress: bool = progress_option(),
    verify: bool = typer.Option(
        False, "--verify", help="Re-read the whole store against its checksums before measuring."
    ),
    engine: str = typer.Option(
        "local", "--engine", help="local (one process) or ray (shards and kNN blocks as Ray tasks)."
    ),
    address: str = typer.Option(
        None, "--address", help="Ray cluster address (auto, HOST:PORT); default: a local Ray."
    ),
    workers: int = typer.Option(
        None, "--workers", help="Ray shards/blocks per layer (default: the cluster's CPUs)."
    ),
    neighbors: str = typer.Option(
        "exact", "--neighbors",
        help="exact, or faiss ivf/hnsw with recall@k and LID difference on an audited subsample.",
    ),
    neighbors_audit: int = typer.Option(
        1000, "--neighbors-audit", help="Points searched exactly to audit ivf/hnsw neighbours."
    ),
    exact_partition: bool = typer.Option(
        False, "--exact-partition",
        help="I(V) over every selected token (two streamed passes per layer) instead of the "
             "sample; a sketch store (--keep sample:N) runs its model over its corpus twice more.",
    ),
) -> None:
    """Measure anisotropy, clusters, LID and frequency structure of every layer."""
    from isoscope._validation import check_output_file, parse_layers

    chosen = parse_layers(layers)
    if out is not None:
        check_output_file(out)
    if verify:
        from isoscope.errors import InputError
        from isoscope.store import EmbeddingStore

        if not source.is_dir():
            raise InputError(f"--verify checks a store folder, and {source} is not one.")
        EmbeddingStore(source).verify()
    from isoscope.metrics import analyze

    result = analyze(
        source,
        chosen,
        sample=sample or None,
        seed=seed,
        transforms=list(transform) if transform else None,
        transductive=transductive,
        progress=show_progress(progress),
        lid_k=lid_k,
        lid_variant=lid_variant,
        lid_metric=lid_metric,
        k_range=[k_min, k_max],
        silhouette_sample=silhouette_sample,
        include_special=include_special,
        drop_position_zero=drop_position_zero,
        threads=threads,
        engine=engine,
        ray_address=address,
        ray_workers=workers,
        neighbors=neighbors,
        neighbors_audit=neighbors_audit,
        exact_partition=exact_partition,
    )
    echo(result.format_table())
    for t in result.transforms:
        b, a = t["before"], t["after"]
        echo(
            f"{t['spec']} ({t['fit']}, layer {t['layer']}): S_inter {b['s_inter']:.3f} -> {a['s_inter']:.3f}, "
            f"IsoScore {b['isoscore']:.3f} -> {a['isoscore']:.3f}, "
            f"log10 I(V) {b['isotropy_partition_log10']:.3g} -> {a['isotropy_partition_log10']:.3g}"
        )
    if out is not None:
        path = result.to_json(out)
        echo(f"wrote {path}")
