"""Save / load round trips (safetensors + JSON) and use inside scikit-learn pipelines."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import save_file
from sklearn.pipeline import Pipeline, make_pipeline

from isoscope.errors import InputError
from isoscope.transforms import (
    LearnedRemoval,
    MeanCenter,
    Whitening,
    available_transforms,
    from_spec,
    load_transform,
    save_transform,
)


def _fit(spec: str, X: np.ndarray):
    est = from_spec(spec)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LearnedRemoval was fitted without")
        if spec.startswith("zipf"):
            return est.fit(X, sample_weight=np.arange(1, len(X) + 1, dtype=float))
        return est.fit(X)


@pytest.mark.parametrize(
    "spec",
    [*available_transforms(), "cluster:n_clusters=4,n_components=2", "whiten:n_components=3"],
)
def test_save_load_transform_is_identical(tmp_path, cone, cone_eval, spec):
    est = _fit(spec, cone)
    est.set_fit_info(store="stores/minilm-ptb", layer=3, seed=0, mode="inductive")
    path = save_transform(est, tmp_path / "sub" / "t.safetensors")
    loaded = load_transform(path)
    assert type(loaded) is type(est)
    assert loaded.get_params() == est.get_params()
    np.testing.assert_array_equal(loaded.transform(cone_eval), est.transform(cone_eval))
    assert loaded.fit_info_ == est.fit_info_
    assert loaded.fit_info_["layer"] == 3 and loaded.fit_info_["n_samples"] == len(cone)
    assert loaded.fit_info_["transform"] == est.fit_info_["transform"]
    assert list(loaded.get_feature_names_out()) == list(est.get_feature_names_out())
    with pytest.raises(InputError, match="expecting 16 features"):
        loaded.transform(cone_eval[:, :4])


def test_save_load_keeps_learned_weights_and_pair_fingerprints(tmp_path, cone):
    rng = np.random.default_rng(0)
    A, B = cone[rng.integers(0, 400, 30)], cone[rng.integers(0, 400, 30)]
    s = -np.abs(A[:, 0] - B[:, 0])
    est = LearnedRemoval(n_components=3).fit(cone, pairs=(A, B, s))
    loaded = load_transform(save_transform(est, tmp_path / "l.safetensors"))
    np.testing.assert_array_equal(loaded.weights_, est.weights_)
    assert loaded.trained_ and loaded.train_spearman_ == est.train_spearman_
    with pytest.raises(InputError, match="were used to train"):
        loaded.check_disjoint(A[:3], B[:3])


def test_saved_file_is_safetensors_with_a_readable_json_header(tmp_path, cone):
    from safetensors import safe_open

    path = save_transform(_fit("abtt:n_components=2", cone), tmp_path / "a.safetensors")
    with safe_open(str(path), framework="numpy") as fh:
        header = json.loads(fh.metadata()["isoscope_transform"])
        assert set(fh.keys()) == {"mean_", "components_", "explained_variance_"}
    assert header["class"] == "AllButTheTop"
    assert header["params"] == {"n_components": 2}
    assert b"pickle" not in path.read_bytes()[:200]


def test_feature_names_survive_save_load(tmp_path, cone):
    df = pd.DataFrame(cone, columns=[f"dim{i}" for i in range(16)])
    est = MeanCenter().fit(df)
    loaded = load_transform(save_transform(est, tmp_path / "m.safetensors"))
    assert list(loaded.get_feature_names_out()) == [f"dim{i}" for i in range(16)]


def test_load_rejects_other_files(tmp_path):
    with pytest.raises(InputError, match="No saved transform"):
        load_transform(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match="not a readable safetensors transform file"):
        load_transform(tmp_path / "junk.safetensors")
    save_file({"x": np.zeros(3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(InputError, match="not an isoscope transform"):
        load_transform(tmp_path / "other.safetensors")


def test_save_rejects_unfitted_and_foreign_estimators(tmp_path):
    from sklearn.exceptions import NotFittedError
    from sklearn.preprocessing import StandardScaler

    with pytest.raises(NotFittedError):
        save_transform(MeanCenter(), tmp_path / "x.safetensors")
    with pytest.raises(InputError, match="Only isoscope repairs"):
        save_transform(StandardScaler().fit(np.eye(3)), tmp_path / "x.safetensors")


def test_repairs_compose_in_a_pipeline(cone, cone_eval):
    pipe = make_pipeline(from_spec("abtt:n_components=2"), Whitening(n_components=4))
    Z = pipe.fit(cone).transform(cone_eval)
    assert Z.shape == (400, 4)
    assert list(pipe.get_feature_names_out()) == [f"whitening{i}" for i in range(4)]
    np.testing.assert_allclose(np.cov(pipe.transform(cone).T), np.eye(4), atol=1e-8)


def test_learned_removal_pairs_are_routed_through_a_pipeline(cone):
    rng = np.random.default_rng(1)
    A, B = cone[rng.integers(0, 400, 40)], cone[rng.integers(0, 400, 40)]
    s = -np.abs(A[:, 0] - B[:, 0])
    pipe = Pipeline([("learned", LearnedRemoval(n_components=3))])
    pipe.fit(cone, learned__pairs=(A, B, s))
    assert pipe.named_steps["learned"].trained_
    assert pipe.named_steps["learned"].n_train_pairs_ == 40
