"""Precision, recall, density and coverage of feature sets held as dask arrays (``prdc``).

The training sets stay sharded: each row block of the real and of the fake features is a shard
of the kNN engine's sharded search (``knn/_sharded``: the CPU engine per shard, top-k lists merged
in a tree), which gives

* the radii r(x): the (k + 1)-th nearest distance of each point within its own set, itself
  included (the in-memory call, so the values are its own);
* for the coverage, each real point's nearest fake distance (k = 1 over the fake shards);

and the ball counts run per (query chunk, centre shard) pair with the in-memory
``ball_counts`` (exact decisions, so a count does not depend on the sharding) and are summed over
the shards in a tree. Per query chunk only four integers are kept (points in some ball, balls
counted, points covered), summed in a tree: one ``compute`` returns them, and the four
fractions are formed as the in-memory reductions form them, so the results are the in-memory
ones exactly. Values are checked finite by the tasks that read each block.
"""

from __future__ import annotations

import numpy as np

from .._backend._threads import threads
from ..knn._sharded import query_parts, shards_of
from ._dask_features import FINITE_MESSAGE, dask_features


def _column(part, j):
    return np.ascontiguousarray(part[0][:, j], dtype=np.float64)


def _source(state):
    return np.ascontiguousarray(state.source, dtype=np.float64)


def _ball_counts(queries, centres, radii, batch_size, n_jobs, ball_counts):
    with threads(n_jobs):
        return ball_counts(np.ascontiguousarray(queries, dtype=np.float64), centres, radii, batch_size)


def _add(a, b):
    return a + b


def _fake_totals(counts):
    return np.array([np.count_nonzero(counts > 0), int(counts.sum()), 0, 0], dtype=np.int64)


def _real_totals(counts, nn, radii):
    return np.array([0, 0, np.count_nonzero(counts > 0), np.count_nonzero(nn < radii)], dtype=np.int64)


def check_dask_pair(real_features, fake_features, k):
    """(real, fake) as float64 dask arrays, checked before any task (as the in-memory ``prdc``)."""
    real = dask_features(real_features, "real_features", min_samples=k + 1)
    fake = dask_features(fake_features, "fake_features", min_samples=k + 1)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"real_features has {real.shape[1]} features and fake_features {fake.shape[1]}; they must match"
        )
    return real, fake


def prdc_dask(real, fake, k, batch_size, algorithms, n_jobs, ball_counts):
    """The four PRDC numbers of the checked dask arrays ``real`` and ``fake`` (``algorithms``:
    the kNN search for each set, ``ball_counts`` the in-memory counting function)."""
    import dask

    from .._backend._dask import tree_reduce

    names = ("real_features", "fake_features")
    shards_real = shards_of(real, algorithms[0], n_jobs, names[0], FINITE_MESSAGE)
    shards_fake = shards_of(fake, algorithms[1], n_jobs, names[1], FINITE_MESSAGE)
    # The radii of each shard: its points' (k + 1)-th nearest within the set, self included.
    radii_real = [dask.delayed(_column)(p, k) for p in query_parts(shards_real, real, k + 1, n_jobs, names[0], FINITE_MESSAGE) if p is not None]
    radii_fake = [dask.delayed(_column)(p, k) for p in query_parts(shards_fake, fake, k + 1, n_jobs, names[1], FINITE_MESSAGE) if p is not None]
    nn_real = [dask.delayed(_column)(p, 0) for p in query_parts(shards_fake, real, 1, n_jobs, names[0], FINITE_MESSAGE) if p is not None]
    centres_real = [dask.delayed(_source)(s) for s in shards_real.states]
    centres_fake = [dask.delayed(_source)(s) for s in shards_fake.states]

    def counts(queries, centres, radii):
        parts = [dask.delayed(_ball_counts)(queries, c, r, batch_size, n_jobs, ball_counts)
                 for c, r in zip(centres, radii)]
        return tree_reduce(parts, _add)

    totals = [dask.delayed(_fake_totals)(counts(q, centres_real, radii_real)) for q in centres_fake]
    totals += [dask.delayed(_real_totals)(counts(q, centres_fake, radii_fake), nn, r)
               for q, nn, r in zip(centres_real, nn_real, radii_real)]
    # fakes in some real ball, (fake, real ball) pairs, reals in some fake ball, reals covered
    precise, pairs, recalled, covered = (int(v) for v in dask.compute(tree_reduce(totals, _add))[0])
    n_real, n_fake = real.shape[0], fake.shape[0]
    # As the in-memory means of 0/1 and integer arrays: an exact float64 sum over n.
    return {
        "precision": float(np.float64(precise) / n_fake),
        "recall": float(np.float64(recalled) / n_real),
        "density": float((1.0 / float(k)) * (np.float64(pairs) / n_fake)),
        "coverage": float(np.float64(covered) / n_real),
    }
