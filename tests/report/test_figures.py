"""Static figures built from synthetic results dicts."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from isoscope.errors import InputError  # noqa: E402
from isoscope.report import (  # noqa: E402
    FAMILIES,
    PALETTE,
    curve_families,
    evaluation_table,
    layer_positions,
    plot_layer_curves,
    plot_lid_distribution,
    plot_pca_spectrum,
    plot_silhouette,
    plot_transform_panels,
)
from isoscope.report._figures import mpl_text  # noqa: E402
from isoscope.report._style import NOT_A_CURVE  # noqa: E402


def visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]


def assert_labelled(fig):
    for ax in visible_axes(fig):
        assert ax.get_title(loc="left") or ax.get_title(), "every panel needs a title"
        assert ax.get_ylabel(), f"panel {ax.get_title(loc='left')!r} has no y label"


def test_every_scalar_measure_gets_exactly_one_panel(make_results):
    res = make_results(5)
    fams = curve_families(res)
    keys = [k for f in fams for k in f.keys]
    assert len(keys) == len(set(keys))
    numeric = {
        k
        for lay in res["layers"]
        for k, v in lay.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    missing = numeric - set(keys) - NOT_A_CURVE
    assert not missing
    assert "my_new_measure" in keys  # unknown keys are not dropped


def test_layer_curves_single_model_panels_labels_and_data(make_results):
    res = make_results(6)
    fig = plot_layer_curves(res, ncols=4)
    axes = visible_axes(fig)
    assert len(axes) == len(curve_families(res))
    assert_labelled(fig)
    by_title = {ax.get_title(loc="left"): ax for ax in axes}
    lid = by_title["Local intrinsic dimension"]
    y = lid.get_lines()[0].get_ydata()
    np.testing.assert_allclose(y, [lay["lid_mle"] for lay in res["layers"]])
    assert lid.get_xlabel().startswith("layer")
    # A null value (s_intra at layer 0) is left out, not drawn as 0.
    intra = by_title["Same-word similarity"].get_lines()[0]
    assert len(intra.get_xdata()) == 5 and intra.get_xdata()[0] == 1
    colours = {
        matplotlib.colors.to_hex(ln.get_color()).upper() for ax in axes for ln in ax.get_lines()
    }
    assert colours <= {c.upper() for c in PALETTE}


def test_layer_curves_compare_normalises_depth(make_results):
    a, b = make_results(7, 0, "small"), make_results(13, 1, "deep")
    fig = plot_layer_curves([a, b])
    ax = next(ax for ax in visible_axes(fig) if ax.get_title(loc="left") == "Mean vector length")
    xs = [ln.get_xdata() for ln in ax.get_lines()]
    assert len(xs) == 2
    for x in xs:
        assert x[0] == 0.0 and x[-1] == pytest.approx(1.0)
    assert "relative depth" in ax.get_xlabel()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["small", "deep"]
    np.testing.assert_allclose(layer_positions(b, True), np.arange(13) / 12)


def test_layer_curves_select_measures_and_errors(make_results):
    fig = plot_layer_curves(make_results(3), measures=["isoscore"])
    assert [ax.get_title(loc="left") for ax in visible_axes(fig)] == ["IsoScore"]
    with pytest.raises(InputError):
        plot_layer_curves({"layers": [{"layer": 0}]})
    with pytest.raises(InputError):
        plot_layer_curves([])


def test_pca_spectrum_cumulative_reaches_total(make_results):
    res = make_results(4)
    fig = plot_pca_spectrum(res, layers=[0, 3])
    ax1, ax2 = visible_axes(fig)
    assert ax1.get_yscale() == "log"
    labelled = {ln.get_label(): ln for ln in ax2.get_lines() if not ln.get_label().startswith("_")}
    assert set(labelled) == {"layer 0", "layer 3"}
    cum = labelled["layer 0"].get_ydata()
    evr = np.asarray(res["layers"][0]["details"]["explained_variance_ratio"])
    np.testing.assert_allclose(cum, np.cumsum(evr) * 100)
    assert "%" in ax2.get_ylabel()


def test_silhouette_marks_best_k_and_cluster_shares_sum_to_100(make_results):
    res = make_results(3)
    fig = plot_silhouette(res)
    ax1, ax2 = visible_axes(fig)
    assert ax1.get_ylabel() and ax1.get_xlabel() and ax2.get_xlabel()
    curve = res["layers"][0]["details"]["silhouette_curve"]
    star = [ln for ln in ax1.get_lines() if ln.get_marker() == "*"][0]
    assert star.get_xdata()[0] == curve["k"][int(np.argmax(curve["score"]))]
    widths = [p.get_width() for p in ax2.patches if p.get_y() < 0.5]  # first row (layer 0)
    assert sum(widths) == pytest.approx(100.0)


def test_lid_distribution_one_violin_per_layer(make_results):
    res = make_results(5)
    fig = plot_lid_distribution(res)
    (ax,) = visible_axes(fig)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2", "3", "4"]
    assert "dimension" in ax.get_ylabel()
    assert "300 points" in ax.get_title(loc="left")
    res["layers"][2]["details"].pop("lid_values")
    assert len(visible_axes(plot_lid_distribution(res))[0].get_xticklabels()) == 4
    with pytest.raises(InputError):
        plot_lid_distribution(make_results(2) | {"layers": [{"layer": 0, "details": {}}]})


def test_transform_panels_before_and_after_values(make_results):
    res = make_results(4)
    fig = plot_transform_panels(res, measures=["isoscore", "s_inter"])
    axes = visible_axes(fig)
    assert [ax.get_title(loc="left") for ax in axes][0].startswith("IsoScore")
    heights = [p.get_height() for p in axes[0].patches]
    t0, t1 = res["transforms"]
    np.testing.assert_allclose(
        heights, [t0["before"]["isoscore"], t0["after"]["isoscore"], t1["after"]["isoscore"]]
    )
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["original", "abtt(n_components=3) [inductive]", "whiten [transductive]"]
    with pytest.raises(InputError):
        plot_transform_panels(make_results(2, transforms=False))


def test_evaluation_table_rows_repairs_columns_tasks(make_results):
    res = make_results(2)
    table = evaluation_table(res)
    assert list(table.index) == ["none", "abtt [inductive]", "whiten [transductive]"]
    assert list(table.columns) == ["sts / stsb-test", "wordsim / EN-SIMLEX-999"]
    row = next(r for r in res["evaluation"] if r["transform"] == "abtt" and r["task"] == "wordsim")
    # Correlations stored in -1..1 are shown x 100.
    assert table.loc["abtt [inductive]", "wordsim / EN-SIMLEX-999"] == pytest.approx(
        100 * row["spearman"]
    )
    assert evaluation_table({"layers": []}).empty


def test_catalogue_is_consistent():
    for fam in FAMILIES:
        assert len(fam.keys) == len(fam.labels) and fam.help and fam.ylabel


def test_matplotlib_text_escapes_mathtext():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.subplots()
    ax.set_title(mpl_text("costs $5 and $6"))
    fig.savefig(io.BytesIO(), format="png", dpi=30)  # would raise on unbalanced mathtext
    assert mpl_text("$5") == r"\$5"


def test_evaluation_table_reads_evaluate_records():
    # Records as isoscope.evaluate writes them: x 100, a column name, STS sub-sets, analogy.
    base = {"task": "sts", "dataset": "sts12", "fit": None, "pearson": 50.0, "n": 10, "oov": 0}
    rows = [
        {
            **base,
            "transform": "none",
            "column": "sts12 (all)",
            "subset": None,
            "aggregate": "all (pooled pairs)",
            "spearman": 61.0,
        },
        {
            **base,
            "transform": "none",
            "column": "sts12/MSRpar",
            "subset": "MSRpar",
            "aggregate": None,
            "spearman": 40.0,
        },
        {
            **base,
            "transform": "none",
            "column": "sts12 (mean)",
            "subset": None,
            "aggregate": "mean of sub-sets",
            "spearman": 55.0,
        },
        {
            **base,
            "task": "analogy",
            "dataset": "google",
            "transform": "none",
            "column": "analogy:google",
            "subset": None,
            "aggregate": None,
            "spearman": None,
            "accuracy": 33.3,
        },
        {
            **base,
            "transform": "abtt",
            "fit": "inductive",
            "column": "sts12 (all)",
            "subset": None,
            "aggregate": "all (pooled pairs)",
            "spearman": 63.5,
        },
    ]
    table = evaluation_table(rows)
    assert list(table.columns) == ["sts12 (all)", "analogy:google"]
    assert table.loc["none", "sts12 (all)"] == 61.0
    assert table.loc["none", "analogy:google"] == pytest.approx(33.3)
    assert table.loc["abtt [inductive]", "sts12 (all)"] == 63.5
    assert np.isnan(table.loc["abtt [inductive]", "analogy:google"])


def test_accepts_analysis_result_objects(make_results):
    class Result:  # stands in for isoscope.metrics.AnalysisResult
        def to_dict(self):
            return make_results(3)

    fig = plot_layer_curves(Result(), measures=["lid_mle"])
    assert [ax.get_title(loc="left") for ax in visible_axes(fig)] == ["Local intrinsic dimension"]
