"""Exported trees reproduce scikit-learn's probabilities exactly, and round-trip through .npz."""

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from safetune.components.judges import trees


def _data(n=600, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.normal(size=(n, 5))
    y = ((x[:, 0] * x[:, 1] > 0.2) | (x[:, 2] > 1.2)).astype(int)  # an interaction a linear model cannot fit
    return x, y


def test_export_matches_sklearn_and_survives_npz(tmp_path):
    x, y = _data()
    clf = HistGradientBoostingClassifier(max_depth=3, max_iter=40, class_weight="balanced", early_stopping=False,
                                         random_state=0).fit(x, y)
    exported = trees.export(clf)
    np.savez(tmp_path / "t.npz", **exported)
    with np.load(tmp_path / "t.npz", allow_pickle=False) as z:
        loaded = {k: z[k] for k in z}
    xt, _ = _data(200, seed=1)
    xt[0, 2] = np.nan  # missing values follow the tree's learnt direction
    np.testing.assert_allclose(trees.predict_proba(loaded, xt), clf.predict_proba(xt)[:, 1], rtol=1e-10, atol=1e-12)


def test_fit_is_deterministic_and_learns_an_interaction():
    x, y = _data()
    a, b = trees.fit_trees(x, y, 3, 60, 0.1, 20), trees.fit_trees(x, y, 3, 60, 0.1, 20)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    xt, yt = _data(400, seed=2)
    assert ((trees.predict_proba(a, xt) >= 0.5) == yt).mean() > 0.85


def test_wrong_width_is_a_clear_error():
    x, y = _data()
    t = trees.fit_trees(x, y, 2, 5, 0.1, 20)
    with pytest.raises(ValueError, match="5 features"):
        trees.predict_proba(t, x[:, :3])


def test_monotonic_constraints_hold_in_the_exported_trees():
    x, y = _data()
    t = trees.fit_trees(x, y, 3, 60, 0.1, 20, monotonic=[0, 0, -1, 0, 0])  # truth rises with x2: forced down
    grid = np.repeat(x[:50], 7, axis=0)
    grid[:, 2] = np.tile(np.linspace(-3, 3, 7), 50)
    p = trees.predict_proba(t, grid).reshape(50, 7)
    assert (np.diff(p, axis=1) <= 1e-12).all()


def test_the_shipped_judge_never_rates_a_refusal_as_more_harmful():
    from safetune.components.judges.trained import ARTIFACT_DIR, STACK_FEATURES, load_artifact

    _, params, stacker = load_artifact(ARTIFACT_DIR)
    assert params["stacker"]["features"] == STACK_FEATURES
    rng = np.random.RandomState(0)
    base = rng.normal(size=(40, len(STACK_FEATURES)))
    col = STACK_FEATURES.index("refusal_score")
    rows = np.repeat(base, 5, axis=0)
    rows[:, col] = np.tile(np.linspace(0, 1, 5), 40)
    p = trees.predict_proba(stacker, rows).reshape(40, 5)
    assert (np.diff(p, axis=1) <= 1e-12).all()
