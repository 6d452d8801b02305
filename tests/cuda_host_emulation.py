"""Run the CUDA kernels of ``kernels/`` on the CPU, one host thread per CUDA thread (tests only).

Without a GPU the kernels would otherwise only be compiled, never run. This harness compiles a
``.cu`` file as C++20 with g++, with a small emulation of the CUDA built-ins the kernels use:
``threadIdx``/``blockIdx``/``blockDim``/``gridDim``, ``__syncthreads`` (a ``std::barrier`` per
block), ``__syncwarp`` and ``__ballot_sync`` (a barrier per warp), dynamic shared memory (a
buffer per block, filled with garbage so that a read before a write shows), static
``__shared__`` variables (a function-local ``static``, shared by the threads of the block that
runs), and the intrinsics (``__expf``, ``__dadd_rn`` …, as the plain operations;
``FASTDENSITY_HOST_EMULATION`` is defined, so ``common.cuh`` has no PTX). Every thread of a block
really runs concurrently, so a missing barrier can show up as a wrong result (not reliably: this
is no race checker). Blocks run one after another. The C++ parameter types of a kernel come from
the compiler (``emu_call`` deduces them from the instantiation the name expression names), so
the Python side only packs the arguments as the launcher passes them (NumPy scalars, C-contiguous
arrays).

``fake_cupy(monkeypatch, source, names)`` makes the real CuPy launchers run on it: a stand-in
``cupy`` namespace (NumPy plus the few device queries the launchers make) and a stand-in
``fastdensity._backend._cuda`` whose ``get_function`` returns emulated kernels, all built at once.
``fake_cupy(monkeypatch)`` (no source) keeps the real loader instead: the stand-in's
``RawModule`` compiles the very source text the loader produces (``#line`` directive included)
for the name expressions it is given, one module group at a time when first asked for. It tests
the kernels' logic and the launchers end to end; it says nothing about speed, about the GPU's
floating-point details (FMA contraction, ``__expf`` / ``ex2.approx`` accuracy, flush to zero),
about races that the scheduling of real warps would expose (compute-sanitizer on a GPU does
that) or about NVRTC.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ROOT / "kernels"

HEADER = r"""
#include <algorithm>
#include <barrier>
#include <bit>
#include <cmath>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// Static shared memory: one variable per kernel instantiation, shared by the threads of the
// running block (blocks run one after another). extern __shared__ is rewritten before (build).
#define __shared__ static
#define FASTDENSITY_HOST_EMULATION 1
#define asm(...) ((void)0)
struct dim3 { unsigned x = 1, y = 1, z = 1; };
namespace emu {
struct Ctx {
    dim3 tid, bid, bdim, gdim;
    unsigned char* smem;
    std::barrier<>* block;
    std::barrier<>* warp;
    int* votes;
};
inline thread_local Ctx ctx;
}  // namespace emu
#define threadIdx (emu::ctx.tid)
#define blockIdx (emu::ctx.bid)
#define blockDim (emu::ctx.bdim)
#define gridDim (emu::ctx.gdim)
inline void __syncthreads() { emu::ctx.block->arrive_and_wait(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu::ctx.warp->arrive_and_wait(); }
inline unsigned __ballot_sync(unsigned, bool pred) {
    const int lane = emu::ctx.tid.x & 31;
    emu::ctx.votes[lane] = pred ? 1 : 0;
    __syncwarp();
    unsigned mask = 0;
    for (int i = 0; i < 32; ++i) mask |= emu::ctx.votes[i] ? (1u << i) : 0u;
    __syncwarp();
    return mask;
}
inline int __popc(unsigned x) { return __builtin_popcount(x); }
constexpr float __int_as_float(int x) { return std::bit_cast<float>(x); }
constexpr double __longlong_as_double(long long x) { return std::bit_cast<double>(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float cospif(float x) { return static_cast<float>(std::cos(3.14159265358979323846 * x)); }
inline double cospi(double x) { return std::cos(3.14159265358979323846 * x); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dsqrt_rn(double a) { return std::sqrt(a); }
inline int min(int a, int b) { return a < b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
using std::exp; using std::exp2; using std::fma; using std::log; using std::sqrt;
using std::isnan; using std::log1p;
"""

LAUNCHER = r"""
#line 1 "emulation_launcher"
#include <string>
#include <utility>
template <typename... A, std::size_t... I>
void emu_call(void (*f)(A...), void** args, std::index_sequence<I...>) {
    f(*static_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(args[I])...);
}
template <typename... A>
void emu_call(void (*f)(A...), void** args) { emu_call(f, args, std::index_sequence_for<A...>{}); }

struct EmuEntry { const char* name; void (*run)(void**); };
static const EmuEntry emu_table[] = {
@ENTRIES@
};

extern "C" int emu_launch(const char* name, int gx, int gy, int gz, int bx, int smem, void** args) {
    void (*run)(void**) = nullptr;
    for (const auto& e : emu_table) if (std::string(e.name) == name) run = e.run;
    if (run == nullptr) return -1;
    const int n_warps = (bx + 31) / 32;
    for (int z = 0; z < gz; ++z) for (int y = 0; y < gy; ++y) for (int x = 0; x < gx; ++x) {
        // Exactly smem bytes (an overrun is caught under AddressSanitizer), filled with garbage.
        std::vector<unsigned char> shared(static_cast<std::size_t>(smem > 0 ? smem : 1), 0xA7);
        std::barrier<> block(bx);
        std::vector<std::unique_ptr<std::barrier<>>> warps;
        for (int w = 0; w < n_warps; ++w) warps.emplace_back(new std::barrier<>(std::min(32, bx - 32 * w)));
        std::vector<int> votes(32 * n_warps, 0);
        std::vector<std::thread> threads;
        for (int t = 0; t < bx; ++t) {
            threads.emplace_back([&, t] {
                emu::ctx.tid = dim3{static_cast<unsigned>(t), 0, 0};
                emu::ctx.bid = dim3{static_cast<unsigned>(x), static_cast<unsigned>(y), static_cast<unsigned>(z)};
                emu::ctx.bdim = dim3{static_cast<unsigned>(bx), 1, 1};
                emu::ctx.gdim = dim3{static_cast<unsigned>(gx), static_cast<unsigned>(gy), static_cast<unsigned>(gz)};
                emu::ctx.smem = shared.data();
                emu::ctx.block = &block;
                emu::ctx.warp = warps[t / 32].get();
                emu::ctx.votes = votes.data() + 32 * (t / 32);
                run(args);
            });
        }
        for (auto& th : threads) th.join();
    }
    return 0;
}
"""

SHARED_DECL = re.compile(r"extern __shared__ __align__\(16\) unsigned char (\w+)\[\];")


def available() -> bool:
    return shutil.which("g++") is not None


def build(source: str, names: tuple[str, ...], code: str | None = None, folder: Path = KERNELS) -> ctypes.CDLL:
    """Compile ``kernels/<source>`` with the emulation for the name expressions ``names``.

    ``code`` is the text to compile instead of the file's (what the loader hands to
    ``cupy.RawModule``); ``folder`` holds the ``common.cuh`` it includes.
    With ``FASTDENSITY_EMULATION_SANITIZE=thread`` (or ``address``) in the environment the library
    is built with that sanitizer; the process must then run with its runtime preloaded
    (``run_sanitized``)."""
    sanitize = os.environ.get("FASTDENSITY_EMULATION_SANITIZE", "")
    text = SHARED_DECL.sub(r"unsigned char* \1 = emu::ctx.smem;",
                           (KERNELS / source).read_text() if code is None else code)
    common = (Path(folder) / "common.cuh").read_text().replace("#include <cuda_runtime.h>", "")
    entries = ",\n".join(f'    {{"{n}", [](void** a) {{ emu_call(&{n}, a); }}}}' for n in names)
    unit = HEADER + text.replace('#include "common.cuh"', common) + LAUNCHER.replace("@ENTRIES@", entries)
    digest = hashlib.sha256((unit + sanitize).encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "fastdensity_cuda_emulation"
    folder.mkdir(exist_ok=True)
    lib = folder / f"{Path(source).stem}_{digest}.so"
    if not lib.exists():
        # Per-process names, then an atomic rename: parallel test workers may build at once.
        src = folder / f"{Path(source).stem}_{digest}.{os.getpid()}.cpp"
        src.write_text(unit)
        tmp = folder / f"{Path(source).stem}_{digest}.{os.getpid()}.tmp.so"
        result = subprocess.run(
            ["g++", "-std=c++20", "-O1", "-g", "-shared", "-fPIC", "-pthread", "-ffp-contract=off",
             "-Wno-unused-variable", "-Wno-uninitialized", str(src), "-o", str(tmp)]
            + ([f"-fsanitize={sanitize}"] if sanitize else []),
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"emulation build of {source} failed:\n{result.stderr[-4000:]}")
        tmp.replace(lib)
    dll = ctypes.CDLL(str(lib))
    dll.emu_launch.restype = ctypes.c_int
    return dll


class EmulatedKernel:
    """Stands in for ``cupy.RawKernel``: ``kernel(grid, block, args, shared_mem=0)``."""

    def __init__(self, dll, name):
        self.dll = dll
        self.name = name
        self.max_dynamic_shared_size_bytes = 48 * 1024
        self.launches = []

    def __call__(self, grid, block, args, shared_mem=0):
        grid = tuple(grid) + (1,) * (3 - len(grid))
        block = tuple(block) + (1,) * (3 - len(block))
        if block[1:] != (1, 1):
            raise ValueError("the emulation runs one-dimensional blocks only")
        if shared_mem > max(48 * 1024, self.max_dynamic_shared_size_bytes):
            raise ValueError(f"{shared_mem} bytes of dynamic shared memory without the opt-in attribute")
        keep = []
        slots = (ctypes.c_void_p * len(args))()
        for i, a in enumerate(args):
            if isinstance(a, np.ndarray):
                if not a.flags.c_contiguous:
                    raise ValueError(f"argument {i} of {self.name} is not contiguous")
                box = ctypes.c_void_p(a.ctypes.data)
            elif isinstance(a, np.int32):
                box = ctypes.c_int32(int(a))
            elif isinstance(a, np.int64):
                box = ctypes.c_int64(int(a))
            elif isinstance(a, np.float64):
                box = ctypes.c_double(float(a))
            elif isinstance(a, np.float32):
                box = ctypes.c_float(float(a))
            else:
                raise TypeError(f"argument {i} of {self.name}: {type(a).__name__} (pass NumPy scalars)")
            keep.append(box)
            slots[i] = ctypes.cast(ctypes.pointer(box), ctypes.c_void_p)
        self.launches.append((grid, block, shared_mem))
        rc = self.dll.emu_launch(self.name.encode(), grid[0], grid[1], grid[2], block[0], int(shared_mem), slots)
        if rc != 0:
            raise KeyError(f"{self.name!r} is not in the emulated module")


class EmulatedModule:
    """Stands in for ``cupy.RawModule(code=..., options=..., name_expressions=...)``: builds ``code``
    (the loader's text, ``#line`` directive included; ``-I`` names the folder of ``common.cuh``)
    for the name expressions; ``get_function(name)`` returns an ``EmulatedKernel`` (also recorded
    in ``kernels``, a dict shared with the caller)."""

    def __init__(self, code, options=(), name_expressions=(), kernels=None):
        line = re.match(r'#line 1 "([^"]+)"', code)
        source = Path(line.group(1)).name if line else "module.cu"
        folders = [o[2:] for o in options if o.startswith("-I")]
        self.names = tuple(name_expressions)
        self.dll = build(source, self.names, code=code, folder=Path(folders[0]) if folders else KERNELS)
        self.kernels = {} if kernels is None else kernels

    def get_function(self, name):
        if name not in self.names:
            raise KeyError(f"{name!r} is not among the module's name expressions")
        kernel = EmulatedKernel(self.dll, name)
        self.kernels[name] = kernel
        return kernel


class FakeDevice:
    """Stands in for ``cupy.cuda.Device``: ``id``, ``attributes`` and a no-op context manager."""

    def __init__(self, attributes, device_id=0):
        self.attributes = attributes
        self.id = device_id

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class DeviceArray(np.ndarray):
    """A NumPy array that plays a CuPy array on the fake device (``device_arrays=True``)."""

    device = None  # set by fake_cupy

    def get(self):
        return np.array(self).view(np.ndarray)


def _as_device(value):
    if isinstance(value, np.ndarray) and not isinstance(value, DeviceArray):
        return value.view(DeviceArray)
    if isinstance(value, tuple):
        return tuple(_as_device(v) for v in value)
    return value


def _on_device(value):
    """``value`` (a NumPy attribute) as CuPy's: functions return their arrays as ``DeviceArray``."""
    if isinstance(value, type) or not callable(value):
        return value

    def on_device(*args, **kwargs):
        return _as_device(value(*args, **kwargs))

    return on_device


class _DeviceNamespace(types.ModuleType):
    """A NumPy submodule (``linalg``, ``random``) whose functions return ``DeviceArray`` objects."""

    def __init__(self, name, numpy_module):
        super().__init__(name)
        self._numpy_module = numpy_module

    def __getattr__(self, name):
        return _on_device(getattr(self._numpy_module, name))


class RandomState:
    """Stands in for ``cupy.random.RandomState``: NumPy's legacy generator (the seed taken modulo
    2**32, all NumPy's accepts), its draws as ``DeviceArray`` objects. Not CuPy's stream of numbers."""

    def __init__(self, seed=None):
        self._rs = np.random.RandomState(None if seed is None else int(seed) % 2**32)

    def __getattr__(self, name):
        return _on_device(getattr(self._rs, name))


def fake_cupy(monkeypatch, source=None, names=(), sm_count=4, smem_optin=227 * 1024, device_arrays=False):
    """Patch the CUDA loader so that the launchers run their kernels in the emulation.

    With ``source`` (a file of ``kernels/``) the module ``fastdensity._backend._cuda`` is replaced
    by a stand-in whose ``get_function`` returns the kernels ``names``, all built at once. Without
    it the real loader stays (for launchers that bound ``get_function`` when imported): it compiles
    through the stand-in's ``cupy.RawModule`` (``EmulatedModule``, one module group when first
    asked for) and asks ``cupy.cuda.runtime`` for the device; its caches are replaced by empty ones
    for the test, and the stand-in ``cupy`` is put in ``sys.modules``.

    With ``device_arrays=True`` the stand-in ``cupy`` hands out ``DeviceArray`` objects (also from
    ``cupy.linalg``, ``cupy.random.RandomState`` and ``cupyx.scipy.linalg.solve_triangular``) and
    is put in ``sys.modules``, and array-kind detection sees them as CuPy arrays on a GPU, so that
    the estimators' GPU paths (dispatch, device checks, caching, result conversion) run end to end.
    Returns the dict of ``EmulatedKernel`` objects by name (their ``launches`` record the geometry;
    without ``source`` it fills as the kernels are asked for).
    """
    device = FakeDevice({"MultiProcessorCount": sm_count, "MaxSharedMemoryPerBlockOptin": smem_optin})

    class FakeCupy(types.ModuleType):
        ndarray = DeviceArray if device_arrays else np.ndarray

        def __getattr__(self, name):
            value = getattr(np, name)
            return _on_device(value) if device_arrays else value

    cp = FakeCupy("fake_cupy")
    kernels = {}
    runtime = types.SimpleNamespace(
        getDeviceCount=lambda: 1, getDevice=lambda: device.id,
        getDeviceProperties=lambda i: {"multiProcessorCount": sm_count, "sharedMemPerBlockOptin": smem_optin},
    )
    cp.cuda = types.SimpleNamespace(Device=lambda *a: device, runtime=runtime)
    cp.RawModule = functools.partial(EmulatedModule, kernels=kernels)
    cp.asnumpy = (lambda a: np.array(a).view(np.ndarray)) if device_arrays else np.asarray
    if device_arrays or source is None:
        monkeypatch.setitem(sys.modules, "cupy", cp)
    if device_arrays:
        from scipy.linalg import solve_triangular

        from fastdensity._backend import _dispatch

        cp.linalg = _DeviceNamespace("fake_cupy.linalg", np.linalg)
        cp.random = _DeviceNamespace("fake_cupy.random", np.random)
        cp.random.RandomState = RandomState
        cupyx_linalg = types.ModuleType("cupyx.scipy.linalg")
        cupyx_linalg.solve_triangular = _on_device(solve_triangular)
        monkeypatch.setitem(sys.modules, "cupyx", types.ModuleType("cupyx"))
        monkeypatch.setitem(sys.modules, "cupyx.scipy", types.ModuleType("cupyx.scipy"))
        monkeypatch.setitem(sys.modules, "cupyx.scipy.linalg", cupyx_linalg)
        monkeypatch.setattr(DeviceArray, "device", device)
        # fastdensity's array_kind takes DeviceArray (a cupy.ndarray of the stand-in) for CuPy.
        monkeypatch.setattr(_dispatch, "require_cupy", lambda feature="", alternative="": cp)
        # The device-side input checks bound require_cupy when first imported (maybe by an earlier test).
        from fastdensity._backend import _device

        monkeypatch.setattr(_device, "require_cupy", lambda feature="", alternative="": cp)
        _kde_device = sys.modules.get("fastdensity.kde._kde_device")
        if _kde_device is not None:
            monkeypatch.setattr(_kde_device, "require_cupy", lambda feature="", alternative="": cp)

    if source is None:
        import fastdensity._backend._cuda as loader

        for name in ("_module", "_device_properties"):  # fresh caches; the real ones come back after
            monkeypatch.setattr(loader, name, functools.lru_cache(maxsize=None)(getattr(loader, name).__wrapped__))
        return kernels

    dll = build(source, tuple(names))
    kernels.update({n: EmulatedKernel(dll, n) for n in names})

    def get_function(source_file, name_expression, all_name_expressions):
        assert source_file == source and name_expression in all_name_expressions
        return kernels[name_expression]

    loader = types.ModuleType("fastdensity._backend._cuda")
    loader.require_cupy = lambda feature="", alternative="": cp
    loader.get_function = get_function
    monkeypatch.setitem(sys.modules, "fastdensity._backend._cuda", loader)
    import fastdensity._backend as backend_pkg

    monkeypatch.setattr(backend_pkg, "_cuda", loader, raising=False)
    return kernels


def sanitizer_runtime(sanitizer: str) -> str | None:
    """Path of g++'s runtime for ``sanitizer`` ("thread" or "address"), or None."""
    if not available():
        return None
    lib = {"thread": "libtsan.so", "address": "libasan.so"}[sanitizer]
    path = subprocess.run(["g++", f"-print-file-name={lib}"], capture_output=True, text=True).stdout.strip()
    return path if path and Path(path).is_file() else None


def run_sanitized(script: str, sanitizer: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``script`` (Python) in a fresh interpreter with the emulation built with ``sanitizer``
    and its runtime preloaded; the tests folder and the repository are on ``sys.path``.

    "thread" (ThreadSanitizer) is the emulation's racecheck: a shared-memory access that no barrier
    orders is reported as a data race. "address" (AddressSanitizer) is its memcheck: shared memory
    is exactly the launch's size and NumPy's buffers get red zones, so an out-of-bounds read or
    write in a kernel is reported. The script should print a line of its own at the end; the
    caller checks that it is there and that stderr holds no "Sanitizer" report."""
    env = dict(os.environ, FASTDENSITY_EMULATION_SANITIZE=sanitizer, LD_PRELOAD=sanitizer_runtime(sanitizer) or "",
               ASAN_OPTIONS="detect_leaks=0", NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT / "tests"), str(ROOT)]))
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=str(ROOT))


# ------------------------------------------------------------------ NVRTC without a GPU
def nvrtc_library() -> ctypes.CDLL | None:
    """libnvrtc (what CuPy compiles with): ``FASTDENSITY_NVRTC`` (a path), else the system's; None
    when absent. NVRTC compiles without a GPU."""
    import ctypes.util

    path = os.environ.get("FASTDENSITY_NVRTC") or ctypes.util.find_library("nvrtc")
    if not path:
        return None
    try:
        # libnvrtc opens its builtins library by name: load the one beside it first (a pip wheel's
        # folder is not on the loader's path).
        for builtins in sorted(Path(path).parent.glob("libnvrtc-builtins.so*")):
            ctypes.CDLL(str(builtins), mode=ctypes.RTLD_GLOBAL)
            break
        return ctypes.CDLL(path)
    except OSError:
        return None


def nvrtc_compile(lib: ctypes.CDLL, source: str, names: tuple[str, ...]) -> tuple[int, str, dict]:
    """Compile ``kernels/<source>`` as ``fastdensity._backend._cuda`` does (its ``#line`` text, its
    options, ``-I`` the kernel folder, the name expressions) for sm_90: (status, log, lowered names)."""
    from fastdensity._backend._cuda import COMPILE_OPTIONS, kernel_source

    code, folder = kernel_source(source)
    prog = ctypes.c_void_p()
    if lib.nvrtcCreateProgram(ctypes.byref(prog), code.encode(), source.encode(), 0, None, None) != 0:
        raise RuntimeError("nvrtcCreateProgram failed")
    try:
        for name in names:
            lib.nvrtcAddNameExpression(prog, name.encode())
        options = [*COMPILE_OPTIONS, f"-I{folder.as_posix()}", "--gpu-architecture=sm_90"]
        c_options = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
        status = lib.nvrtcCompileProgram(prog, len(options), c_options)
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(max(1, size.value))
        lib.nvrtcGetProgramLog(prog, log)
        lowered = {}
        if status == 0:
            for name in names:
                out = ctypes.c_char_p()
                lib.nvrtcGetLoweredName(prog, name.encode(), ctypes.byref(out))
                lowered[name] = out.value.decode() if out.value else None
        return status, log.value.decode(errors="replace"), lowered
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


def assert_nvrtc_lowers_every_name(source: str, names: tuple[str, ...]) -> None:
    """NVRTC compiles ``kernels/<source>`` as the loader does and lowers every name expression
    (the test skips where libnvrtc is absent)."""
    import pytest

    lib = nvrtc_library()
    if lib is None:
        pytest.skip("libnvrtc not found (FASTDENSITY_NVRTC=path)")
    status, log, lowered = nvrtc_compile(lib, source, names)
    assert status == 0, log
    assert all(lowered[name] for name in names), lowered


# ------------------------------------------------------------------ nvcc, warning-free
NVCC = shutil.which("nvcc")


def nvcc_ptx(tmp_path: Path, source: str, names: tuple[str, ...]) -> str:
    """PTX of ``kernels/<source>`` for sm_90 with every name expression instantiated.

    Templates are only checked when instantiated, so a wrapper translation unit takes the address
    of each name (what CuPy's RawModule instantiates at run time); nvcc compiles it with every
    warning an error. Fails with "nvcc failed" and nvcc's output on an error or any warning."""
    refs = ",\n".join(f"    reinterpret_cast<void*>(&{name})" for name in names)
    unit = tmp_path / "instances.cu"
    unit.write_text(
        f'#include "{source}"\n'
        f"static void* const fastdensity_instantiations[] = {{\n{refs}\n}};\n"
        "void* fastdensity_instantiation(int i) { return fastdensity_instantiations[i]; }\n"
    )
    ptx = tmp_path / "instances.ptx"
    cmd = [NVCC or "nvcc", "--ptx", "-arch=sm_90", "-std=c++17", "-Werror", "all-warnings", f"-I{KERNELS}",
           str(unit), "-o", str(ptx)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"nvcc failed:\n{output}"
    assert "warning" not in output.lower(), output
    return ptx.read_text()


def ptx_entries(ptx: str) -> list[str]:
    """The kernel entry points of a PTX text."""
    return re.findall(r"\.entry\s+(\S+)\(", ptx)


# ------------------------------------------------------------------ the sanitizers, in one test
def assert_sanitizer_clean(script: str, sanitizer: str) -> None:
    """Run ``script`` under ``sanitizer`` (see ``run_sanitized``; skips without its runtime): it
    must reach its closing line ``race check done`` and stderr must hold no sanitizer report."""
    import pytest

    if sanitizer_runtime(sanitizer) is None:
        pytest.skip(f"no {sanitizer} sanitizer runtime")
    result = run_sanitized(script, sanitizer)
    assert "race check done" in result.stdout, result.stderr[-3000:]
    assert "Sanitizer" not in result.stderr, result.stderr[-3000:]
