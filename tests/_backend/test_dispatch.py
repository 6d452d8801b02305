"""fastdensity._backend: array-kind detection, backend resolution, the op table, host
conversion, thread control, and an import that pulls in no heavy optional library."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import types
from pathlib import Path

import numba
import numpy as np
import pytest

import fastdensity
from fastdensity import _backend
from fastdensity._backend import (
    BACKENDS,
    OPS,
    ArrayKind,
    array_kind,
    common_kind,
    from_host_numpy,
    get_op,
    resolve_backend,
    resolve_n_jobs,
    threads,
    to_host_numpy,
    validate_backend,
)

NUMPY_CPU = ArrayKind("numpy", "cpu")
TORCH_CPU = ArrayKind("torch", "cpu")


@pytest.fixture
def fake_cupy(monkeypatch):
    """A stand-in ``cupy`` module in sys.modules: detection must go through sys.modules only."""
    module = types.ModuleType("cupy")

    class ndarray:  # noqa: N801 - mirrors cupy.ndarray
        pass

    module.ndarray = ndarray
    monkeypatch.setitem(sys.modules, "cupy", module)
    return module


@pytest.fixture
def fake_dask_array(monkeypatch):
    module = types.ModuleType("dask.array")

    class Array:
        pass

    module.Array = Array
    monkeypatch.setitem(sys.modules, "dask.array", module)
    return module


# ---------------------------------------------------------------------------- array_kind
@pytest.mark.parametrize("value", [np.zeros((2, 2)), np.float32(1.0), [[1.0, 2.0]], 3.0, (1, 2)],
                         ids=["ndarray", "numpy-scalar", "list", "float", "tuple"])
def test_array_kind_numpy_and_array_likes(value):
    kind = array_kind(value)
    assert kind == NUMPY_CPU and not kind.on_gpu


def test_array_kind_torch_cpu():
    torch = pytest.importorskip("torch")
    for dtype in (torch.float32, torch.float64, torch.int64):
        kind = array_kind(torch.zeros(3, 2, dtype=dtype))
        assert kind == TORCH_CPU and not kind.on_gpu


def test_array_kind_fake_gpu_and_dask_modules(fake_cupy, fake_dask_array):
    assert array_kind(fake_cupy.ndarray()) == ArrayKind("cupy", "cuda")
    assert array_kind(fake_cupy.ndarray()).on_gpu
    assert array_kind(fake_dask_array.Array()) == ArrayKind("dask", "cpu")


def test_array_kind_does_not_import_optional_libraries(monkeypatch):
    for name in ("cupy", "dask", "dask.array"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    array_kind(np.zeros(3))
    common_kind(np.zeros(3), [1.0])
    assert "cupy" not in sys.modules and "dask.array" not in sys.modules


# --------------------------------------------------------------------------- common_kind
def test_common_kind_numpy_only_and_empty():
    assert common_kind(np.zeros(2), [1.0, 2.0]) == NUMPY_CPU
    assert common_kind() == NUMPY_CPU
    assert common_kind(None, None) == NUMPY_CPU
    assert common_kind(np.zeros(2), None) == NUMPY_CPU


def test_common_kind_numpy_and_torch_cpu_answers_in_torch():
    torch = pytest.importorskip("torch")
    t = torch.zeros(2)
    assert common_kind(np.zeros(2), t) == TORCH_CPU
    assert common_kind(t, np.zeros(2), None) == TORCH_CPU
    assert common_kind(t, t) == TORCH_CPU


def test_common_kind_refuses_mixed_devices(fake_cupy):
    with pytest.raises(TypeError, match=r"inputs live on different devices \(cupy on cuda, numpy on cpu\)"):
        common_kind(np.zeros(2), fake_cupy.ndarray())


# ----------------------------------------------------------------------- resolve_backend
def test_resolve_backend_cpu_for_host_data():
    assert resolve_backend("auto", NUMPY_CPU) == "cpu"
    assert resolve_backend("cpu", NUMPY_CPU) == "cpu"
    assert resolve_backend("auto", TORCH_CPU) == "cpu"


def test_resolve_backend_cuda_requested_names_install_or_cpu():
    with pytest.raises(NotImplementedError, match="backend='cuda' is not available.*use backend='cpu'"):
        resolve_backend("cuda", NUMPY_CPU)


def test_resolve_backend_gpu_data_is_never_copied_to_the_host():
    gpu = ArrayKind("cupy", "cuda")
    with pytest.raises(NotImplementedError, match="use backend='cpu'"):
        resolve_backend("auto", gpu)
    with pytest.raises(TypeError, match="GPU arrays are never copied to the host silently"):
        resolve_backend("cpu", gpu)


def test_resolve_backend_dask_not_supported_yet():
    with pytest.raises(TypeError, match="Dask arrays are not supported yet; supported: NumPy"):
        resolve_backend("auto", ArrayKind("dask", "cpu"))


# Explicit ids: a test id "gpu" would be taken for the gpu marker by conftest's keyword check.
@pytest.mark.parametrize("backend", ["gpu", "CUDA", "", None, 1], ids=["str-gpu", "str-CUDA", "empty", "None", "int"])
def test_bad_backend_string(backend):
    with pytest.raises(ValueError, match=r"backend must be one of \('auto', 'cpu', 'cuda'\); got"):
        resolve_backend(backend, NUMPY_CPU)
    with pytest.raises(ValueError, match="backend must be one of"):
        validate_backend(backend)


def test_validate_backend_accepts_every_listed_backend():
    assert BACKENDS == ("auto", "cpu", "cuda")
    for backend in BACKENDS:
        assert validate_backend(backend) == backend


# -------------------------------------------------------------------------------- get_op
def test_get_op_unknown_op():
    with pytest.raises(KeyError, match="unknown op 'kde_nonsense'; known ops: .*kde_logsum"):
        get_op("kde_nonsense", "cpu")


def test_get_op_known_op_without_the_backend():
    # k-means++ seeding runs on the host whatever the data (the GMM fit stays on the CPU).
    with pytest.raises(NotImplementedError,
                       match=r"op 'kmeans_plusplus' has no 'cuda' implementation; available: \['cpu'\]"):
        get_op("kmeans_plusplus", "cuda")


def test_get_op_returns_the_cpu_engine():
    from fastdensity.kde import _kde_cpu

    assert get_op("kde_logsum", "cpu") is _kde_cpu.kde_logsum


@pytest.mark.parametrize(("name", "backend"), [(name, backend) for name, row in OPS.items() for backend in row])
def test_every_op_in_the_table_resolves(name, backend):
    module_name, func_name = OPS[name][backend].split(":")
    module = importlib.import_module(module_name)
    assert callable(getattr(module, func_name, None)), f"{OPS[name][backend]} does not exist"
    assert callable(get_op(name, backend))


# ----------------------------------------------------------------------- host conversion
def test_to_host_numpy_passes_numpy_through():
    x = np.arange(6.0).reshape(2, 3)
    assert to_host_numpy(x) is x
    np.testing.assert_array_equal(to_host_numpy([[1, 2]]), np.array([[1, 2]]))


def test_to_host_numpy_of_a_torch_tensor_is_zero_copy():
    torch = pytest.importorskip("torch")
    t = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    host = to_host_numpy(t)
    assert isinstance(host, np.ndarray) and host.dtype == np.float64 and host.shape == (3, 4)
    assert host.ctypes.data == t.data_ptr()
    t[1, 2] = -5.0  # a write through the tensor is seen by the view
    assert host[1, 2] == -5.0


def test_to_host_numpy_of_a_tensor_requiring_grad_is_zero_copy():
    torch = pytest.importorskip("torch")
    t = torch.ones(4, 2, dtype=torch.float32, requires_grad=True)
    host = to_host_numpy(t)
    assert host.dtype == np.float32 and host.ctypes.data == t.data_ptr()


def test_to_host_numpy_refuses_complex_tensors():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="complex tensors are not supported"):
        to_host_numpy(torch.zeros(2, dtype=torch.complex64))


def test_to_host_numpy_refuses_gpu_arrays(fake_cupy):
    with pytest.raises(TypeError, match="GPU arrays are never copied to the host silently"):
        to_host_numpy(fake_cupy.ndarray())


def test_from_host_numpy_round_trip():
    torch = pytest.importorskip("torch")
    result = np.linspace(0, 1, 5)
    assert from_host_numpy(result, NUMPY_CPU) is result
    t = from_host_numpy(result, TORCH_CPU)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float64
    assert t.data_ptr() == result.ctypes.data  # contiguous result: no copy
    with pytest.raises(TypeError, match="cannot return results as cupy on cuda"):
        from_host_numpy(result, ArrayKind("cupy", "cuda"))


# ---------------------------------------------------------------------------------- threads
def test_threads_sets_and_restores():
    before = numba.get_num_threads()
    with threads(1):
        assert numba.get_num_threads() == 1
        with fastdensity.threads(-1):
            assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before


def test_threads_none_leaves_the_enclosing_count_alone():
    with threads(1):
        with threads(None):
            assert numba.get_num_threads() == 1
        assert numba.get_num_threads() == 1


def test_threads_restores_after_an_exception():
    before = numba.get_num_threads()
    with pytest.raises(RuntimeError, match="boom"):
        with threads(1):
            raise RuntimeError("boom")
    assert numba.get_num_threads() == before


def test_threads_bad_argument_leaves_the_count_alone():
    before = numba.get_num_threads()
    with pytest.raises(ValueError, match="n_jobs must not be 0"):
        with threads(0):
            pass
    assert numba.get_num_threads() == before


def test_resolve_n_jobs_conventions():
    top = numba.config.NUMBA_NUM_THREADS
    assert resolve_n_jobs(None) == top
    assert resolve_n_jobs(-1) == top
    assert resolve_n_jobs(-2) == max(1, top - 1)
    assert resolve_n_jobs(-1000) == 1
    assert resolve_n_jobs(1) == 1
    assert resolve_n_jobs(10_000) == top


@pytest.mark.parametrize(("n_jobs", "exc", "match"), [
    (0, ValueError, "n_jobs must not be 0"),
    (1.5, TypeError, "n_jobs must be an int or None; got 1.5"),
    ("2", TypeError, "n_jobs must be an int or None; got '2'"),
    (True, TypeError, "n_jobs must be an int or None; got True"),
])
def test_resolve_n_jobs_errors(n_jobs, exc, match):
    with pytest.raises(exc, match=match):
        resolve_n_jobs(n_jobs)


def test_resolve_n_jobs_accepts_numpy_integers():
    assert resolve_n_jobs(np.int64(1)) == 1
    assert type(resolve_n_jobs(np.int32(-1))) is int


def test_public_names():
    assert set(_backend.__all__) >= {"array_kind", "common_kind", "get_op", "resolve_backend", "threads",
                                     "to_host_numpy", "from_host_numpy", "resolve_n_jobs"}
    assert fastdensity.threads is threads


# --------------------------------------------------------------------------- import hygiene
def test_import_fastdensity_imports_no_heavy_optional_library():
    root = Path(fastdensity.__file__).resolve().parent.parent
    code = (
        "import sys, fastdensity\n"
        "heavy = ('torch', 'cupy', 'dask', 'matplotlib')\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "", f"import fastdensity imported: {proc.stdout.strip()}"
