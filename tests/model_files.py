"""Reading and writing the raw arrays and metadata of a model file, for tests that alter one."""

from __future__ import annotations

import json

import numpy as np

from fastdensity.io import METADATA_KEY


def read_archive(path):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return arrays, json.loads(str(arrays[METADATA_KEY][()]))


def write_archive(path, arrays, meta):
    arrays = dict(arrays)
    arrays[METADATA_KEY] = np.array(json.dumps(meta))
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path
