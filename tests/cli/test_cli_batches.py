"""The batch readers of ``fastdensity.cli._batches``: every format gives the file's rows, in order,
in batches of the asked size, and a bad file is refused with its line, column or row named."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest

from fastdensity.cli._batches import open_rows

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _rows(n=1003, d=3, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d))


def _write(tmp_path, X, fmt, **kw):
    path = tmp_path / f"x.{fmt}"
    if fmt == "npy":
        np.save(path, X)
    elif fmt == "csv":
        header = kw.get("header", True)
        np.savetxt(path, X, delimiter=",", fmt="%.17g", comments="",
                   header=",".join(f"c{j}" for j in range(X.shape[1])) if header else "")
    else:
        pq.write_table(pa.table({f"c{j}": X[:, j] for j in range(X.shape[1])}), path,
                       row_group_size=kw.get("row_group_size", 300))
    return path


@pytest.mark.parametrize("fmt", ["npy", "csv", "parquet"])
@pytest.mark.parametrize("batch", [1, 7, 300, 1002, 1003, 5000])
def test_batches_are_the_rows_in_order(tmp_path, fmt, batch):
    X = _rows()
    source = open_rows(_write(tmp_path, X, fmt))
    assert (source.n_rows, source.n_features) == X.shape
    batches = list(source.batches(batch))
    assert [len(b) for b in batches] == [min(batch, len(X) - s) for s in range(0, len(X), batch)]
    # %.17g round-trips float64 exactly, so every format gives the same bits
    np.testing.assert_array_equal(np.concatenate(batches), X)


@pytest.mark.parametrize("fmt", ["npy", "csv", "parquet"])
def test_parts_read_their_batch_from_the_path_alone(tmp_path, fmt):
    X = _rows(n=500)
    parts = open_rows(_write(tmp_path, X, fmt)).parts(120)
    assert [n for _, _, n in parts] == [120, 120, 120, 120, 20]
    function, arguments, _ = pickle.loads(pickle.dumps(parts[3]))  # what a Dask task carries
    np.testing.assert_array_equal(function(*arguments), X[360:480])


def test_csv_without_header_crlf_and_no_final_newline(tmp_path):
    X = _rows(n=11, d=2)
    lines = [",".join(repr(float(v)) for v in row) for row in X]
    (tmp_path / "crlf.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    (tmp_path / "open.csv").write_text("\n".join(lines))
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfa,b\n" + "\n".join(lines).encode())
    for name in ("crlf.csv", "open.csv", "bom.csv"):
        source = open_rows(tmp_path / name, batch_size=4)
        assert source.n_rows == 11
        for batch in (4, 1, 11, 12):  # 4 from the first pass, the others from another one each
            batches = list(source.batches(batch))
            assert [len(b) for b in batches] == [min(batch, 11 - s) for s in range(0, 11, batch)]
            np.testing.assert_array_equal(np.concatenate(batches), X)
    np.save(tmp_path / "v.npy", X[:, 0])
    assert open_rows(tmp_path / "v.npy").n_features == 1
    np.testing.assert_array_equal(next(open_rows(tmp_path / "v.npy").batches(5)), X[:5, :1])


@pytest.mark.parametrize("body, message", [
    ("a,b\n1,2\n3,4\n5,x\n", r"line 4, column 2: 'x' is not a number"),
    ("1,2\n3,4,5\n", r"line 2 has 3 fields; expected 2"),
    ("1,2\n\n3,4\n", r"line 2 is empty"),
    ("a,b\n", r"header row but no data rows"),
    ("", r"the file is empty"),
])
def test_bad_csv_names_the_line(tmp_path, body, message):
    (tmp_path / "bad.csv").write_text(body)
    with pytest.raises(ValueError, match=message):
        list(open_rows(tmp_path / "bad.csv").batches(2))


def test_bad_csv_line_in_a_later_batch(tmp_path):
    X = _rows(n=50, d=2)
    path = _write(tmp_path, X, "csv")
    lines = path.read_text().split("\n")
    lines[38] = "1.0,oops"  # line 39 of the file: row 38 after the header
    path.write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"line 39, column 2: 'oops'"):
        list(open_rows(path).batches(10))


def test_bad_parquet_is_refused(tmp_path):
    pq.write_table(pa.table({"a": [1.0, None, 3.0], "b": [1, 2, 3]}), tmp_path / "nulls.parquet")
    with pytest.raises(ValueError, match=r"column 'a' has a missing value in row 1"):
        list(open_rows(tmp_path / "nulls.parquet").batches(2))
    pq.write_table(pa.table({"a": [1.0], "s": ["x"]}), tmp_path / "text.parquet")
    with pytest.raises(ValueError, match=r"non-numeric columns: s \(string\)"):
        open_rows(tmp_path / "text.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ValueError, match=r"cannot read DATA .*junk.parquet"):
        open_rows(tmp_path / "junk.parquet")


def test_parquet_without_pyarrow_says_how_to_install(tmp_path, monkeypatch):
    path = _write(tmp_path, _rows(n=5), "parquet")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # import fails
    with pytest.raises(ValueError, match=r"needs pyarrow: pip install 'fastdensity\[parquet\]'"):
        open_rows(path)
