"""Numba's threading layer: which one runs fastdensity's kernels, and a guard at the one place
every parallel region is entered.

Every ``prange`` region of every Numba function (fastdensity's and anyone else's in the process)
is started by one call of the native symbol ``numba_parallel_for``, which Numba binds to the
layer's ``parallel_for`` when the layer is loaded and resolves when it links compiled or cached
code. Numba releases the GIL around that call, so Python threads really do enter it concurrently.
The layers differ in what they survive:

============  =====================================  ==========================================
layer          concurrent calls from Python threads   a ``fork()`` after use (multiprocessing)
============  =====================================  ==========================================
workqueue      aborts the process ("Concurrent        works (the pool is rebuilt in the child)
               access has been detected")
omp (GNU)      safe                                   the child is killed by SIGTERM at its
                                                      first parallel region; a Pool then hangs
tbb            safe                                   works
============  =====================================  ==========================================

:func:`configure` (called once when fastdensity is imported) loads the layer and, where the
layer needs it, rebinds ``numba_parallel_for`` to a small native wrapper compiled here with
llvmlite. The wrapper reads a mode word on each call:

* ``SERIALISE`` (workqueue): a process-wide mutex around the region, so concurrent callers take
  turns instead of aborting the process. A region started from inside a task of a region (nested
  parallelism, which workqueue cannot run) is recognised by a thread-local mark set by the
  wrapper's task trampoline and passed straight to the layer, which reports it as before instead
  of deadlocking on the mutex.
* ``IN_CALLER`` (a child forked from a process that loaded GNU OpenMP): the region's tasks run
  on the calling thread, in order, without touching OpenMP: one call of the task over the whole
  schedule, as workqueue hands each thread its share. Parfor reductions keep one partial per
  thread id; on the calling thread that is id 0, and the partials are combined as usual.
* ``PASS``: straight to the layer (GNU OpenMP in the process that loaded it).

``os.register_at_fork`` re-initialises the mutex in a child (another thread may have held it at
the fork) and switches a GNU OpenMP child to ``IN_CALLER``. TBB and non-GNU OpenMP need no guard.

When the user has not chosen a layer (neither ``NUMBA_THREADING_LAYER`` nor
``NUMBA_THREADING_LAYER_PRIORITY`` set, ``numba.config.THREADING_LAYER`` left at "default"),
fastdensity keeps Numba's "default" but with the priority :data:`DEFAULT_PRIORITY`: TBB where it
is installed, as Numba would pick, else workqueue instead of Numba's next choice, OpenMP. The
measurements behind that are in the README ("Threads and processes"). When TBB may be picked and
the ``tbb`` wheel sits in this environment's ``lib/`` (where the dynamic loader does not look),
its library is loaded first so that Numba finds it.

The guard is POSIX-only (pthread mutex and keys, called through their addresses). Elsewhere
:func:`configure` leaves Numba's choice of layer alone and installs nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys
import warnings

PASS, SERIALISE, IN_CALLER = 0, 1, 2
_MODE_NAMES = {PASS: "pass", SERIALISE: "serialise", IN_CALLER: "in-caller"}

#: Numba's layer priority when the user has chosen none: OpenMP last (see the README's numbers).
DEFAULT_PRIORITY = ["tbb", "workqueue", "omp"]

_LIBTBB = {"linux": "libtbb.so.12", "darwin": "libtbb.12.dylib"}

_state: dict = {"configured": False, "layer": None, "guard": None, "chosen_by": None}


class _Guard:
    """The native wrapper of ``numba_parallel_for`` and the process-wide state it reads."""

    def __init__(self, real_parallel_for: int, mode: int):
        from llvmlite import ir

        libc = ctypes.CDLL(None)
        self._libc = libc
        self.mode = ctypes.c_int(mode)
        self.task = ctypes.c_void_p(0)  # the task function of the region under way (SERIALISE)
        # pthread_mutex_t is 40 bytes on x86-64 glibc, 48 on aarch64, 64 on macOS: room for all.
        self.mutex = (ctypes.c_uint64 * 16)()
        key_t = ctypes.c_ulong if sys.platform == "darwin" else ctypes.c_uint
        self.key = key_t(0)
        self._init_mutex()
        if libc.pthread_key_create(ctypes.byref(self.key), None) != 0:
            raise OSError("pthread_key_create failed")

        def addr(f) -> int:
            return ctypes.cast(f, ctypes.c_void_p).value

        i8p = ir.IntType(8).as_pointer()
        intp = ir.IntType(ctypes.sizeof(ctypes.c_void_p) * 8)
        i32 = ir.IntType(32)
        key_ty = ir.IntType(ctypes.sizeof(key_t) * 8)
        void = ir.VoidType()
        pf_ty = ir.FunctionType(void, [i8p] * 5 + [intp] * 3)  # as Numba declares it
        task_ty = ir.FunctionType(void, [i8p] * 4)  # (args, dims, steps, data)
        lock_ty = ir.FunctionType(i32, [i8p])
        getspec_ty = ir.FunctionType(i8p, [key_ty])
        setspec_ty = ir.FunctionType(i32, [key_ty, i8p])

        def const_ptr(builder, address, ty):
            return builder.inttoptr(intp(address), ty.as_pointer())

        module = ir.Module(name="fastdensity_parallel_guard")

        # The trampoline each task of a serialised region runs through: marks its thread as
        # inside a task (so that a nested region is recognised) and calls the region's task.
        tramp = ir.Function(module, task_ty, name="fastdensity_parallel_task")
        b = ir.IRBuilder(tramp.append_basic_block("entry"))
        key = b.load(const_ptr(b, ctypes.addressof(self.key), key_ty))
        setspec = const_ptr(b, addr(libc.pthread_setspecific), setspec_ty)
        b.call(setspec, [key, b.inttoptr(intp(1), i8p)])
        task = b.load(const_ptr(b, ctypes.addressof(self.task), i8p))
        b.call(b.bitcast(task, task_ty.as_pointer()), list(tramp.args))
        b.call(setspec, [key, ir.Constant(i8p, None)])
        b.ret_void()

        fn = ir.Function(module, pf_ty, name="fastdensity_parallel_for")
        task_fn, args, dims, steps, data, inner_ndim, array_count, n_threads = fn.args
        entry = fn.append_basic_block("entry")
        passthrough = fn.append_basic_block("pass")
        serialise = fn.append_basic_block("serialise")
        locked = fn.append_basic_block("locked")
        in_caller = fn.append_basic_block("in_caller")
        b = ir.IRBuilder(entry)
        mode_word = b.load(const_ptr(b, ctypes.addressof(self.mode), i32))
        switch = b.switch(mode_word, passthrough)
        switch.add_case(i32(SERIALISE), serialise)
        switch.add_case(i32(IN_CALLER), in_caller)

        b = ir.IRBuilder(passthrough)
        real = const_ptr(b, real_parallel_for, pf_ty)
        b.call(real, list(fn.args))
        b.ret_void()

        b = ir.IRBuilder(serialise)
        key = b.load(const_ptr(b, ctypes.addressof(self.key), key_ty))
        mark = b.call(const_ptr(b, addr(libc.pthread_getspecific), getspec_ty), [key])
        nested = b.icmp_unsigned("!=", mark, ir.Constant(i8p, None))
        b.cbranch(nested, passthrough, locked)  # nested: let the layer report it, as before

        b = ir.IRBuilder(locked)
        mutex = b.inttoptr(intp(ctypes.addressof(self.mutex)), i8p)
        b.call(const_ptr(b, addr(libc.pthread_mutex_lock), lock_ty), [mutex])
        b.store(task_fn, const_ptr(b, ctypes.addressof(self.task), i8p))
        tramp_ptr = b.bitcast(tramp, i8p)
        b.call(const_ptr(b, real_parallel_for, pf_ty),
               [tramp_ptr, args, dims, steps, data, inner_ndim, array_count, n_threads])
        b.call(const_ptr(b, addr(libc.pthread_mutex_unlock), lock_ty), [mutex])
        b.ret_void()

        b = ir.IRBuilder(in_caller)
        b.call(b.bitcast(task_fn, task_ty.as_pointer()), [args, dims, steps, data])
        b.ret_void()

        from numba.core.compiler_lock import global_compiler_lock
        from numba.core.registry import cpu_target

        with global_compiler_lock:
            codegen = cpu_target.target_context.codegen()
            library = codegen.create_library("fastdensity_parallel_guard")
            library.add_ir_module(module)
            library.finalize()
        self._library = library  # keeps the machine code alive
        self.address = library.get_pointer_to_function("fastdensity_parallel_for")

    def _init_mutex(self):
        ctypes.memset(self.mutex, 0, ctypes.sizeof(self.mutex))
        if self._libc.pthread_mutex_init(self.mutex, None) != 0:
            raise OSError("pthread_mutex_init failed")

    def after_fork_in_child(self, child_mode: int):
        # The thread that held the mutex at the fork does not exist here: start unlocked.
        self._init_mutex()
        self.mode.value = child_mode


def _requested_layer() -> tuple[str, str]:
    """(layer asked for, by whom): the user's NUMBA_THREADING_LAYER(_PRIORITY) / numba.config,
    or "numba" when nothing was chosen."""
    from numba.core import config

    if os.environ.get("NUMBA_THREADING_LAYER"):
        return str(config.THREADING_LAYER).lower(), "NUMBA_THREADING_LAYER"
    if str(config.THREADING_LAYER).lower() != "default":
        return str(config.THREADING_LAYER).lower(), "numba.config.THREADING_LAYER"
    if os.environ.get("NUMBA_THREADING_LAYER_PRIORITY"):
        return "default", "NUMBA_THREADING_LAYER_PRIORITY"
    if list(config.THREADING_LAYER_PRIORITY) != ["tbb", "omp", "workqueue"]:  # Numba's own order
        return "default", "numba.config.THREADING_LAYER_PRIORITY"
    return "default", "numba"


def _preload_tbb_from_environment():
    """Load the ``tbb`` wheel's library from ``sys.prefix/lib`` if the loader cannot find it."""
    name = _LIBTBB.get(sys.platform)
    if name is None:
        return
    try:
        ctypes.CDLL(name)
        return  # the loader finds it by itself
    except OSError:
        pass
    path = os.path.join(sys.prefix, "lib", name)
    if os.path.exists(path):
        try:
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            pass  # Numba then reports that TBB is missing, as it would have


def configure() -> dict:
    """Choose and load Numba's threading layer and install the guard it needs (once).

    Returns :func:`describe`. Safe to call again; does nothing after the first call.
    """
    if _state["configured"]:
        return describe()
    _state["configured"] = True
    if os.name != "posix":
        return describe()
    import numba
    from numba.core import config
    from numba.np.ufunc import parallel

    if getattr(parallel, "_is_initialized", False):
        # Someone loaded the layer before fastdensity was imported: keep it; code linked from now
        # on (fastdensity's kernels) is still guarded.
        _state["chosen_by"] = "already loaded"
    else:
        layer, who = _requested_layer()
        if who == "numba":
            config.THREADING_LAYER_PRIORITY = list(DEFAULT_PRIORITY)
            who = "fastdensity"
        _state["chosen_by"] = who
        if layer in ("tbb", "safe", "threadsafe", "default"):
            _preload_tbb_from_environment()
        try:
            numba.get_num_threads()  # loads the layer (Numba's public way to do so)
        except ValueError:
            # No such layer here (e.g. tbb asked for, not installed): Numba raises the same error
            # with its hint at the first parallel call, as it always did.
            return describe()
    layer = numba.threading_layer()
    _state["layer"] = layer
    if layer == "workqueue":
        from numba.np.ufunc import workqueue as lib

        parent_mode, child_mode = SERIALISE, SERIALISE
    elif layer == "omp":
        from numba.np.ufunc import omppool as lib

        if getattr(lib, "openmp_vendor", "GNU") != "GNU":
            return describe()  # Intel / LLVM OpenMP: thread- and fork-safe
        parent_mode, child_mode = PASS, IN_CALLER
    else:
        return describe()  # tbb: thread- and fork-safe
    import llvmlite.binding as llvm

    try:
        guard = _Guard(lib.parallel_for, parent_mode)
    except Exception as exc:  # a Numba or llvmlite that differs from the one this was written for
        warnings.warn(
            f"fastdensity could not install its guard around Numba's parallel regions ({exc!r}); "
            f"with the {layer} threading layer, "
            + ("concurrent calls from several threads may abort the process"
               if layer == "workqueue" else "a process forked after a parallel call may hang"),
            RuntimeWarning, stacklevel=2)
        return describe()
    llvm.add_symbol("numba_parallel_for", guard.address)
    _state["guard"] = guard
    os.register_at_fork(after_in_child=lambda: guard.after_fork_in_child(child_mode))
    return describe()


def describe() -> dict:
    """What :func:`configure` did: the layer, who chose it and the guard's mode in this process."""
    guard = _state["guard"]
    return {
        "layer": _state["layer"],
        "chosen_by": _state["chosen_by"],
        "guard": None if guard is None else _MODE_NAMES[guard.mode.value],
    }
