"""The CUDA side of dispatch that can be checked without a GPU: the install error, backend
resolution, the op table, the module loader (with a stand-in CuPy) and host/device conversion
refusals. The GPU behaviour itself is in tests/kde/test_kde_cuda.py (marked gpu)."""

from __future__ import annotations

import subprocess
import sys
import types

import numpy as np
import pytest

from fastdensity._backend import OPS, ArrayKind, get_op, resolve_backend
from fastdensity._backend import _cuda
from fastdensity._backend._convert import from_device_cupy, to_device_cupy
from fastdensity._backend._cuda import CudaUnavailableError, get_function, kernel_dir, kernel_source, require_cupy

NUMPY_CPU = ArrayKind("numpy", "cpu")


def _fake_cupy(monkeypatch, n_devices=1, device=0):
    """A stand-in ``cupy`` module with a runtime that reports ``n_devices`` GPUs."""
    module = types.ModuleType("cupy")

    class ndarray:  # noqa: N801 - mirrors cupy.ndarray
        def __init__(self, value=None):
            self.value = value

        def get(self):
            return np.asarray(self.value)

    class RawModule:
        built = []

        def __init__(self, code, options, name_expressions):
            self.code, self.options, self.name_expressions = code, options, name_expressions
            RawModule.built.append(self)

        def get_function(self, name):
            return ("kernel", name, self)

    runtime = types.SimpleNamespace(getDeviceCount=lambda: n_devices, getDevice=lambda: device)
    module.ndarray = ndarray
    module.RawModule = RawModule
    module.cuda = types.SimpleNamespace(runtime=runtime)
    module.asarray = lambda x, dtype=None: ndarray(np.asarray(x, dtype=dtype))
    monkeypatch.setitem(sys.modules, "cupy", module)
    _cuda._module.cache_clear()
    return module


@pytest.fixture(autouse=True)
def _fresh_module_cache():
    # Modules built from a stand-in CuPy must not outlive the test.
    _cuda._module.cache_clear()
    yield
    _cuda._module.cache_clear()


@pytest.fixture
def no_cupy(monkeypatch):
    # A None entry in sys.modules makes ``import cupy`` raise ImportError.
    monkeypatch.setitem(sys.modules, "cupy", None)


def test_require_cupy_without_cupy_says_how_to_install(no_cupy):
    with pytest.raises(CudaUnavailableError, match=r"CuPy is not installed.*pip install fastdensity\[cuda12\].*"
                                                   r"fastdensity\[cuda13\].*backend='cpu'"):
        require_cupy("backend='cuda'")


def test_the_install_error_is_an_import_error_and_a_not_implemented_error(no_cupy):
    with pytest.raises(ImportError, match="CuPy is not installed"):
        require_cupy()
    with pytest.raises(NotImplementedError, match="CuPy is not installed"):
        require_cupy()


def test_require_cupy_without_a_usable_runtime(monkeypatch):
    module = types.ModuleType("cupy")  # no cupy.cuda at all: as broken as a missing driver
    monkeypatch.setitem(sys.modules, "cupy", module)
    with pytest.raises(CudaUnavailableError, match=r"no usable CUDA GPU \(AttributeError.*backend='cpu'"):
        require_cupy()


def test_require_cupy_with_no_device(monkeypatch):
    _fake_cupy(monkeypatch, n_devices=0)
    with pytest.raises(CudaUnavailableError, match="has no CUDA GPU; use backend='cpu'"):
        require_cupy()


def test_require_cupy_returns_the_module_when_a_gpu_is_there(monkeypatch):
    fake = _fake_cupy(monkeypatch, n_devices=2)
    assert require_cupy() is fake


def test_resolve_backend_without_cupy(no_cupy):
    with pytest.raises(CudaUnavailableError, match=r"^backend='cuda' is not available: CuPy is not installed"):
        resolve_backend("cuda", NUMPY_CPU)
    with pytest.raises(CudaUnavailableError, match=r"^the data is a torch array on the GPU, but backend='cuda' is not"):
        resolve_backend("auto", ArrayKind("torch", "cuda"))


def test_resolve_backend_with_a_gpu(monkeypatch):
    _fake_cupy(monkeypatch)
    assert resolve_backend("cuda", NUMPY_CPU) == "cuda"
    assert resolve_backend("cuda", ArrayKind("torch", "cpu")) == "cuda"
    assert resolve_backend("auto", ArrayKind("cupy", "cuda")) == "cuda"
    assert resolve_backend("auto", ArrayKind("torch", "cuda")) == "cuda"
    assert resolve_backend("auto", NUMPY_CPU) == "cpu"  # auto never moves host data to the GPU
    with pytest.raises(TypeError, match="GPU arrays are never copied to the host silently"):
        resolve_backend("cpu", ArrayKind("cupy", "cuda"))
    with pytest.raises(TypeError, match="Dask arrays are not supported yet; supported with backend='cuda': CuPy"):
        resolve_backend("cuda", ArrayKind("dask", "cpu"))


def test_op_table_has_the_cuda_kde_launcher_and_it_imports_without_cupy(no_cupy):
    assert OPS["kde_logsum"]["cuda"] == "fastdensity.kde._kde_cuda:kde_logsum"
    assert OPS["kde_loo_logsum_grid"]["cuda"] == "fastdensity.kde._kde_cuda:kde_loo_logsum_grid"
    assert get_op("kde_loo_logsum_grid", "cuda").__name__ == "kde_loo_logsum_grid"
    launcher = get_op("kde_logsum", "cuda")
    from fastdensity.kde import _kde_cpu

    assert launcher.__name__ == _kde_cpu.kde_logsum.__name__ == "kde_logsum"
    # Calling it is where the install error comes.
    with pytest.raises(CudaUnavailableError, match="the CUDA KDE engine is not available"):
        launcher(np.zeros((2, 1)), np.ones((3, 1)))


@pytest.mark.parametrize("name", sorted(name for name, row in OPS.items() if "cuda" in row))
def test_every_cuda_row_imports_without_cupy_and_mirrors_the_cpu_op(no_cupy, name):
    cuda, cpu = get_op(name, "cuda"), get_op(name, "cpu")
    assert cuda.__name__ == cpu.__name__ == name
    assert cuda.__module__.endswith("_cuda") and cpu.__module__.endswith(("_cpu",))


def test_the_cuda_rows_are_the_gpu_ops():
    assert sorted(name for name, row in OPS.items() if "cuda" in row) == [
        "gmm_estep", "gmm_log_prob", "gmm_log_prob_norm", "kde_logsum", "kde_loo_logsum_grid", "knn_distances"]


def test_kernel_sources_are_found_and_carry_a_line_directive():
    folder = kernel_dir()
    assert (folder / "kde.cu").is_file() and (folder / "common.cuh").is_file()
    code, where = kernel_source("kde.cu")
    first, rest = code.split("\n", 1)
    assert first == f'#line 1 "{(folder / "kde.cu").as_posix()}"'
    assert rest == (folder / "kde.cu").read_text(encoding="utf-8")
    assert where == folder


def test_get_function_builds_one_module_per_group_and_device(monkeypatch):
    fake = _fake_cupy(monkeypatch)
    group = ("kde_logsum_gaussian<float, 1, false>", "kde_logsum_finish_log")
    kernel = get_function("kde.cu", group[0], group)
    again = get_function("kde.cu", group[1], group)
    assert kernel[:2] == ("kernel", group[0]) and again[1] == group[1]
    assert len(fake.RawModule.built) == 1  # memoised
    module = fake.RawModule.built[0]
    assert module.name_expressions == list(group)
    assert module.options[0] == "-std=c++17" and module.options[1] == f"-I{kernel_dir().as_posix()}"
    assert module.code.startswith('#line 1 "')
    fake.cuda.runtime.getDevice = lambda: 1  # another device: its own module
    get_function("kde.cu", group[0], group)
    assert len(fake.RawModule.built) == 2


def test_get_function_refuses_a_name_outside_the_group(monkeypatch):
    _fake_cupy(monkeypatch)
    with pytest.raises(ValueError, match="is not among the module's name expressions"):
        get_function("kde.cu", "kde_logsum_gaussian<float, 2, false>", ("kde_logsum_gaussian<float, 1, false>",))


def test_to_device_cupy_needs_cupy(no_cupy):
    with pytest.raises(CudaUnavailableError, match="pip install fastdensity"):
        to_device_cupy(np.ones((2, 2)))


def test_to_device_cupy_uploads_host_data_and_refuses_other_devices(monkeypatch):
    torch = pytest.importorskip("torch")
    fake = _fake_cupy(monkeypatch)
    x = np.arange(6.0).reshape(3, 2)
    up = to_device_cupy(x)
    assert isinstance(up, fake.ndarray) and np.array_equal(up.value, x)
    t = torch.arange(6.0, dtype=torch.float64).reshape(3, 2).requires_grad_()
    assert np.array_equal(to_device_cupy(t).value, x)
    with pytest.raises(TypeError, match="torch tensors on meta are not supported; supported: CuPy arrays"):
        to_device_cupy(torch.empty(2, 2, device="meta"))
    with pytest.raises(TypeError, match="complex tensors are not supported"):
        to_device_cupy(torch.ones(2, dtype=torch.complex64))


def test_from_device_cupy_returns_the_callers_type(monkeypatch):
    torch = pytest.importorskip("torch")
    fake = _fake_cupy(monkeypatch)
    result = fake.ndarray(np.array([1.5, -2.0]))
    assert from_device_cupy(result, ArrayKind("cupy", "cuda")) is result
    host = from_device_cupy(result, NUMPY_CPU)
    assert type(host) is np.ndarray and np.array_equal(host, [1.5, -2.0])
    tensor = from_device_cupy(result, ArrayKind("torch", "cpu"))
    assert isinstance(tensor, torch.Tensor) and tensor.device.type == "cpu" and tensor.tolist() == [1.5, -2.0]
    with pytest.raises(TypeError, match="cannot return results as dask on cpu"):
        from_device_cupy(result, ArrayKind("dask", "cpu"))


def test_kernel_density_cuda_backend_without_a_gpu_names_the_install(no_cupy):
    from fastdensity.kde._kde import KernelDensity

    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(CudaUnavailableError, match=r"pip install fastdensity\[cuda12\].*backend='cpu'"):
        KernelDensity(backend="cuda").fit(X)
    # The CPU is unaffected.
    assert np.all(np.isfinite(KernelDensity(backend="cpu").fit(X).score_samples(X)))


def test_importing_fastdensity_and_the_launcher_imports_no_cupy_and_prints_nothing():
    code = (
        "import sys, fastdensity, fastdensity.kde._kde_cuda, fastdensity._backend._cuda\n"
        "from fastdensity._backend import get_op\n"
        "get_op('kde_logsum', 'cuda')\n"
        "assert 'cupy' not in sys.modules, 'cupy was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
