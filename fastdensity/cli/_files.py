"""The command line's files: numeric arrays in and out (``.npy``, ``.npz``, ``.csv``), PNG figures,
every one written atomically, and the one-line form of an error that names the file."""

from __future__ import annotations

import csv
import os
import warnings
import zipfile

import numpy as np

DATA_SUFFIXES = (".npy", ".npz", ".csv", ".parquet", ".pq")
OUTPUT_SUFFIXES = (".npy", ".csv")


def _suffix(path) -> str:
    return os.path.splitext(os.fspath(path))[1].lower()


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        return f"cannot access {os.fspath(exc.filename)!r}: {exc.strerror}"
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def read_array(path, *, what: str = "DATA", mmap: bool = True, max_ndim: int = 2) -> np.ndarray:
    """Read a numeric array from ``.npy`` (memory-mapped when ``mmap``), ``.npz`` (one array) or
    ``.csv`` (Parquet: ``._batches.read_whole``); 1-D arrays become one column. ``max_ndim`` > 2 also admits stacks of images
    ((n, h, w) or (n, c, h, w)). Raises ValueError naming the file; OSError when it cannot be
    opened."""
    path = os.fspath(path)
    suffix = _suffix(path)
    try:
        if suffix == ".npy":
            arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                if not hasattr(npz, "files"):
                    raise ValueError("not an .npz archive")
                if len(npz.files) != 1:
                    raise ValueError(
                        f"an .npz data file must hold exactly one array; it holds {len(npz.files)}"
                        + (f" ({', '.join(npz.files[:5])})" if npz.files else "")
                    )
                arr = npz[npz.files[0]]
        elif suffix == ".csv":
            arr = _read_csv(path)
        else:
            raise ValueError(f"unsupported file type {suffix or '(none)'!r}; use one of {', '.join(DATA_SUFFIXES)}")
    except (ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"cannot read {what} {path!r}: {_one_line(exc)}") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        dtype = getattr(arr, "dtype", type(arr).__name__)
        raise ValueError(f"{what} {path!r} is not a numeric array (dtype {dtype})")
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if max_ndim == 2 and arr.ndim != 2:
        raise ValueError(f"{what} {path!r} must be a 2-D array (rows × features); got shape {arr.shape}")
    if not 2 <= arr.ndim <= max_ndim:
        raise ValueError(f"{what} {path!r} must be 2-D (rows × features) or a stack of images (n, h, w) / "
                         f"(n, c, h, w); got shape {arr.shape}")
    if 0 in arr.shape:
        raise ValueError(f"{what} {path!r} is empty (shape {arr.shape})")
    return arr


def _read_csv(path: str) -> np.ndarray:
    with open(path, newline="", encoding="utf-8") as fh:
        first = fh.readline()
        if not first.strip():
            raise ValueError("the file is empty")
        header = not is_number_row(first)
        fh.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            return np.loadtxt(fh, delimiter=",", skiprows=int(header), dtype=np.float64, ndmin=2)


def is_number_row(line: str) -> bool:
    """Whether a CSV line is comma-separated numbers (else it is taken as a header row)."""
    try:
        [float(field) for field in line.split(",")]
    except ValueError:
        return False
    return True


def write_array(path, arr: np.ndarray, header=None) -> None:
    """Write ``arr`` to ``.npy`` or ``.csv`` atomically. A 1-D array is one CSV column."""
    from ..io import atomic_path

    with atomic_path(path) as tmp:
        if _suffix(path) == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)
        else:
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                if header is not None:
                    csv.writer(fh, lineterminator="\n").writerow(header)
                np.savetxt(fh, arr, delimiter=",", fmt="%.17g")




def save_figure(fig, path) -> None:
    """Write a matplotlib figure as PNG, atomically."""
    from ..io import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fig.savefig(fh, format="png", dpi=100)
