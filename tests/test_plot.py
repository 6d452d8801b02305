"""fastdensity.plot: lazy matplotlib import, the Q-Q plot and its errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from fastdensity.parametric import Gamma, MultivariateNormal, Normal, Poisson
from fastdensity.plot import qq_plot


def test_importing_the_module_does_not_import_matplotlib():
    code = "import sys, fastdensity.plot; print('matplotlib' in sys.modules)"
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert result.stdout.strip() == "False"


@pytest.fixture
def agg():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def test_qq_plot_writes_a_figure(agg, tmp_path):
    x = np.random.default_rng(0).gamma(2.0, 1.5, size=200)
    model = Gamma().fit(x)
    ax = qq_plot(model, x)
    path = tmp_path / "qq.png"
    ax.figure.savefig(path)
    assert path.stat().st_size > 1000
    theoretical, sample = ax.collections[0].get_offsets().T
    np.testing.assert_allclose(sample, np.sort(x))
    np.testing.assert_allclose(theoretical, model.ppf((np.arange(1, 201) - 0.5) / 200))
    assert "Gamma" in ax.get_xlabel()


def test_qq_plot_draws_on_a_given_axes_and_handles_discrete_and_column_data(agg):
    _, ax = agg.subplots()
    counts = np.random.default_rng(1).poisson(3.0, size=(50, 1)).astype(float)
    assert qq_plot(Poisson().fit(counts), counts, ax=ax) is ax
    assert len(ax.collections[0].get_offsets()) == 50


def test_qq_plot_errors(agg):
    x = np.random.default_rng(2).normal(size=20)
    with pytest.raises(TypeError, match="univariate fastdensity.parametric estimator with a ppf"):
        qq_plot(MultivariateNormal().fit(x[:, None]), x)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        qq_plot(Normal(), x)
    model = Normal().fit(x)
    with pytest.raises(ValueError, match=r"shape \(n_samples,\) or \(n_samples, 1\); got shape \(10, 2\)"):
        qq_plot(model, x.reshape(10, 2))
    with pytest.raises(ValueError, match="finite values"):
        qq_plot(model, np.r_[x, np.nan])
    with pytest.raises(ValueError, match="at least one value"):
        qq_plot(model, np.array([]))


def test_qq_plot_without_matplotlib_says_how_to_install_it(monkeypatch):
    model = Normal().fit([0.0, 1.0, 3.0])
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install fastdensity\[plot\]"):
        qq_plot(model, [0.5, 1.0])
