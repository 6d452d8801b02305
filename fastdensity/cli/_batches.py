"""Row batches of a DATA file, read without loading the file: ``.npy`` (memory-mapped slices),
``.csv`` (byte ranges found in one first pass) and Parquet (pyarrow row groups).

:func:`open_rows` checks the file (its type, shape, numeric columns) before any work and returns
a :class:`RowSource`: ``n_rows`` and ``n_features`` are known up front (the CSV first pass counts
the lines and notes the byte offset of every batch start), ``batches(batch_size)`` yields the
batches in order as 2-D arrays, and ``parts(batch_size)`` describes each batch as a picklable
``(function, arguments, n_rows)`` that reads it from the file's path alone: a Dask task per batch,
so that the same batches run on a ``--workers N`` local cluster or on workers that see the path.

Memory is bounded by one batch (plus, for Parquet, the row groups it overlaps, and for the CSV
first pass, a fixed 4 MiB read buffer). A ``.npz`` file is compressed and cannot be sliced: it is
read whole (:func:`fastdensity.cli._files.read_array`).
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from ._files import _one_line, _suffix, is_number_row, read_array

PARQUET_SUFFIXES = (".parquet", ".pq")
STREAM_SUFFIXES = (".npy", ".csv") + PARQUET_SUFFIXES
_SCAN_BYTES = 1 << 22  # the CSV first pass reads 4 MiB at a time
_DEFAULT_SCAN_BATCH = 65536  # the batch size whose offsets open_rows notes (others: one more pass)


def require_pyarrow(path):
    """The ``pyarrow.parquet`` module, or a ValueError saying how to install it."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError(f"reading the Parquet file {os.fspath(path)!r} needs pyarrow: "
                         "pip install 'fastdensity[parquet]'") from None
    return pq


class RowSource:
    """The rows of one DATA file. Attributes: ``path``, ``n_rows``, ``n_features``, ``dtype``."""

    def __init__(self, path, n_rows, n_features, dtype, reader, spans):
        self.path, self.n_rows, self.n_features, self.dtype = os.fspath(path), n_rows, n_features, dtype
        self._reader = reader  # module-level function(path, *span) -> 2-D array
        self._spans = spans  # function(batch_size) -> list of (span args, n_rows)

    def parts(self, batch_size):
        """Per batch in order: ``(function, arguments, n_rows)``; ``function(*arguments)`` reads it."""
        return [(self._reader, (self.path,) + tuple(span), n) for span, n in self._spans(batch_size)]

    def batches(self, batch_size):
        """Yield the batches in order (2-D arrays of at most ``batch_size`` rows)."""
        for function, arguments, n in self.parts(batch_size):
            rows = function(*arguments)
            if rows.shape[0] != n:  # the file changed under us
                raise ValueError(f"DATA {self.path!r} changed while it was read: expected {n} rows "
                                 f"in a batch, read {rows.shape[0]}")
            yield rows


def open_rows(path, *, what="DATA", batch_size=None) -> RowSource:
    """Check ``path`` and return its :class:`RowSource` (ValueError naming the file if unreadable).

    ``batch_size``: the batches that will be asked for (the CSV first pass notes their offsets;
    another size costs one more pass)."""
    path = os.fspath(path)
    suffix = _suffix(path)
    if suffix == ".npy":
        return _npy_source(path, what)
    if suffix == ".csv":
        return _csv_source(path, what, batch_size or _DEFAULT_SCAN_BATCH)
    if suffix in PARQUET_SUFFIXES:
        return _parquet_source(path, what)
    arr = read_array(path, what=what)  # .npz: in memory; each part carries its own rows
    return RowSource(path, arr.shape[0], arr.shape[1], arr.dtype, _given_rows,
                     lambda b: [((arr[s:e],), m) for (s, e), m in _ranges(arr.shape[0], b)])


def read_whole(path, *, what="DATA", mmap=True):
    """All of DATA at once: :func:`read_array` for ``.npy``/``.npz``/``.csv``, Parquet's row groups
    concatenated."""
    if _suffix(path) not in PARQUET_SUFFIXES:
        return read_array(path, what=what, mmap=mmap)
    source = open_rows(path, what=what)
    return np.concatenate(list(source.batches(source.n_rows)))


def _ranges(n, batch_size):
    return [((s, min(s + batch_size, n)), min(s + batch_size, n) - s) for s in range(0, n, batch_size)]


def _given_rows(path, rows):
    return np.asarray(rows)


# ---------------------------------------------------------------------------------------- .npy


def _npy_rows(path, start, stop):
    arr = np.load(path, mmap_mode="r", allow_pickle=False)
    rows = np.array(arr[start:stop])
    return rows if rows.ndim == 2 else rows.reshape(-1, 1)


def _npy_source(path, what):
    arr = read_array(path, what=what)  # memory-mapped: checks dtype, shape, emptiness; reads nothing
    n, d = arr.shape
    return RowSource(path, n, d, arr.dtype, _npy_rows, lambda b: _ranges(n, b))


# ---------------------------------------------------------------------------------------- .csv


def _csv_source(path, what, batch_size):
    with open(path, "rb") as fh:
        first = fh.readline()
        if not first.strip():
            raise ValueError(f"cannot read {what} {path!r}: the file is empty")
        try:
            first_text = first.decode("utf-8").lstrip("\ufeff")
        except UnicodeDecodeError:
            raise ValueError(f"cannot read {what} {path!r}: line 1 is not UTF-8 text") from None
        header = not is_number_row(first_text)
        d = len(first_text.split(","))
        body = len(first) if header else (3 if first.startswith(b"\xef\xbb\xbf") else 0)
    first_line = 1 + int(header)
    scans = {}  # batch size -> (row count, byte offsets of the batch starts, end of file)

    def scan(batch_size):
        if batch_size not in scans:
            scans[batch_size] = _scan_csv(path, body, batch_size)
        return scans[batch_size]

    n, _, _ = scan(batch_size)
    if n == 0:
        raise ValueError(f"cannot read {what} {path!r}: it has a header row but no data rows")

    def spans(batch_size):
        n, starts, end = scan(batch_size)
        stops = list(starts[1:]) + [end]
        return [((int(a), int(b), first_line + i * batch_size, d, what), min(batch_size, n - i * batch_size))
                for i, (a, b) in enumerate(zip(starts, stops))]

    return RowSource(path, n, d, np.dtype(np.float64), _csv_rows, spans)


def _scan_csv(path, body, batch_size):
    """The first pass: count the rows after byte ``body`` and note the byte offset at which every
    ``batch_size``-th one starts, reading a fixed 4 MiB at a time (memory: one offset per batch)."""
    starts, newlines_seen, position, last_byte = [np.array([body], dtype=np.int64)], 0, body, b"\n"
    with open(path, "rb") as fh:
        fh.seek(body)
        while True:
            chunk = fh.read(_SCAN_BYTES)
            if not chunk:
                break
            newlines = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 10)
            # line i starts after newline i - 1: batch starts follow newlines b-1, 2b-1, ...
            index = newlines_seen + np.arange(len(newlines))
            starts.append(newlines[(index + 1) % batch_size == 0].astype(np.int64) + position + 1)
            newlines_seen += len(newlines)
            position += len(chunk)
            last_byte = chunk[-1:]
    n = newlines_seen + (last_byte != b"\n")  # an unterminated last line is a row too
    starts = np.concatenate(starts)
    return n, starts[: -(-n // batch_size)], position


def _csv_rows(path, start, stop, first_line, n_features, what="DATA"):
    """Parse the bytes [start, stop) of the CSV file ``path`` (whose first line is ``first_line``)."""
    with open(path, "rb") as fh:
        fh.seek(start)
        text = fh.read(stop - start).decode("utf-8", errors="replace")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            rows = np.loadtxt(text.splitlines(), delimiter=",", dtype=np.float64, ndmin=2, comments=None)
        if rows.shape[1] == n_features and rows.shape[0] == text.count("\n") + (not text.endswith("\n")):
            return rows
    except ValueError:
        pass
    _raise_csv_error(path, text, first_line, n_features, what)


def _raise_csv_error(path, text, first_line, n_features, what):
    """Find the first bad line of ``text`` and raise a ValueError naming its line number."""
    for offset, line in enumerate(text.split("\n")[: text.count("\n") + (not text.endswith("\n"))]):
        number = first_line + offset
        fields = line.rstrip("\r").split(",")
        if not line.strip():
            raise ValueError(f"cannot read {what} {path!r}: line {number} is empty")
        if len(fields) != n_features:
            raise ValueError(f"cannot read {what} {path!r}: line {number} has {len(fields)} fields; "
                             f"expected {n_features} (as on the first line)")
        for column, field in enumerate(fields, start=1):
            try:
                float(field)
            except ValueError:
                raise ValueError(f"cannot read {what} {path!r}: line {number}, column {column}: "
                                 f"{field.strip()[:40]!r} is not a number") from None
    raise ValueError(f"cannot read {what} {path!r}: lines {first_line}-{first_line + text.count(chr(10))} "
                     "could not be parsed")  # pragma: no cover - loadtxt and float() disagree


# ------------------------------------------------------------------------------------- Parquet


def _parquet_source(path, what):
    pq = require_pyarrow(path)
    try:
        meta = pq.ParquetFile(path)
    except Exception as exc:  # ArrowInvalid (not Parquet), OSError
        if isinstance(exc, OSError) and getattr(exc, "errno", None):
            raise
        raise ValueError(f"cannot read {what} {path!r}: {_one_line(exc)}") from None
    import pyarrow.types as pat

    schema = meta.schema_arrow
    bad = [f"{f.name} ({f.type})" for f in schema if not (pat.is_integer(f.type) or pat.is_floating(f.type)
                                                          or pat.is_boolean(f.type))]
    if bad:
        raise ValueError(f"{what} {path!r} has non-numeric columns: {', '.join(bad[:5])}")
    n, d = meta.metadata.num_rows, len(schema)
    if n == 0 or d == 0:
        raise ValueError(f"{what} {path!r} is empty ({n} rows, {d} columns)")
    group_rows = np.array([meta.metadata.row_group(i).num_rows for i in range(meta.num_row_groups)])
    group_starts = np.concatenate([[0], np.cumsum(group_rows)])
    dtype = np.result_type(*[f.type.to_pandas_dtype() for f in schema])

    def spans(batch_size):
        out = []
        for (start, stop), m in _ranges(n, batch_size):
            first = int(np.searchsorted(group_starts, start, side="right") - 1)
            last = int(np.searchsorted(group_starts, stop, side="left"))
            out.append(((start, stop, first, last, int(group_starts[first]), what), m))
        return out

    return RowSource(path, n, d, dtype, _parquet_rows, spans)


def _parquet_rows(path, start, stop, first_group, stop_group, group_start, what="DATA"):
    """Rows [start, stop) of the Parquet file, read from its row groups [first_group, stop_group)."""
    pq = require_pyarrow(path)
    table = pq.ParquetFile(path).read_row_groups(list(range(first_group, stop_group)))
    table = table.slice(start - group_start, stop - start)
    columns = []
    for name, column in zip(table.column_names, table.columns):
        if column.null_count:
            nulls = np.flatnonzero(np.asarray(column.is_null().to_numpy(zero_copy_only=False)))
            raise ValueError(f"cannot read {what} {path!r}: column {name!r} has a missing value in row "
                             f"{start + int(nulls[0])} (rows counted from 0)")
        columns.append(column.to_numpy())
    return np.column_stack(columns) if len(columns) > 1 else columns[0].reshape(-1, 1)
