"""asv benchmarks: lsearray categorical, gumbel_softmax and gumbel_topk beside their numpy recipes.

Every class builds its seeded, cached logits in ``setup`` (``common.py``), a seeded
``numpy.random.Generator`` for the draws, and limits the OpenMP/BLAS pools to one thread
with threadpoolctl; ``teardown`` restores the limits. The ``time_*`` (lsearray) and
``time_numpy_*`` (the recipes, Gumbel noise from ``Generator.gumbel``) methods of a class
draw from the same logits under the same limits, so asv results read as ratios.
"""
import numpy as np
from scipy import special

import lsearray

from .common import DTYPES, SEED, ThreadLimited, get_2d, limit_threads

__all__ = ["Categorical", "GumbelSoftmax", "GumbelTopK"]

ELEMENTS = 1_000_000  # rows x categories


def _rows(categories):
    """Rows of ``categories`` logits that make ``ELEMENTS`` in all."""
    return ELEMENTS // categories


class Categorical(ThreadLimited):
    """One draw per row of (rows, categories) logits, 1e6 in all, along the last axis.

    The recipes: the Gumbel-max trick in numpy (``argmax(logits + G)``), and inverse
    transform sampling (the cumulated softmax, searched at one uniform per row).
    """
    params = [DTYPES, [10, 1000]]
    param_names = ["dtype", "categories"]

    def setup(self, dtype, categories):
        self.logits = get_2d((_rows(categories), categories), dtype)
        self.rng = np.random.default_rng(SEED)
        limit_threads(self, 1)

    def time_categorical(self, dtype, categories):
        lsearray.categorical(self.logits, rng=self.rng)

    def time_numpy_gumbel_max(self, dtype, categories):
        np.argmax(self.logits + self.rng.gumbel(size=self.logits.shape), axis=-1)

    def time_numpy_inverse_cdf(self, dtype, categories):
        cdf = np.cumsum(special.softmax(self.logits, axis=-1), axis=-1)
        u = self.rng.random((len(cdf), 1)) * cdf[:, -1:]
        (u > cdf).sum(axis=-1)


class GumbelSoftmax(ThreadLimited):
    """A relaxed sample of (rows, categories) logits, 1e6 in all, at temperature 0.5.

    The recipe: ``scipy.special.softmax((logits + G) / temperature)``, and with ``hard``
    the one-hot vector of its argmax.
    """
    params = [DTYPES, [10, 1000], [False, True]]
    param_names = ["dtype", "categories", "hard"]

    def setup(self, dtype, categories, hard):
        self.logits = get_2d((_rows(categories), categories), dtype)
        self.rng = np.random.default_rng(SEED)
        limit_threads(self, 1)

    def time_gumbel_softmax(self, dtype, categories, hard):
        lsearray.gumbel_softmax(self.logits, temperature=0.5, hard=hard, rng=self.rng)

    def time_numpy_gumbel_softmax(self, dtype, categories, hard):
        noise = self.rng.gumbel(size=self.logits.shape).astype(self.logits.dtype)
        y = special.softmax((self.logits + noise) / 0.5, axis=-1)
        if hard:
            one_hot = np.zeros_like(y)
            np.put_along_axis(one_hot, y.argmax(axis=-1)[:, None], 1.0, axis=-1)


class GumbelTopK(ThreadLimited):
    """k draws without replacement per row of (rows, categories) logits, 1e6 in all.

    The recipes: the Gumbel-top-k trick by a full sort in numpy
    (``argsort(-(logits + G))[:, :k]``), and ``Generator.choice(replace=False, p=...)``
    row by row on the first 100 rows (its per-row cost, for scale).
    """
    params = [DTYPES, [10, 1000], [1, 8]]
    param_names = ["dtype", "categories", "k"]

    def setup(self, dtype, categories, k):
        self.logits = get_2d((_rows(categories), categories), dtype)
        self.probs = special.softmax(self.logits[:100].astype(np.float64), axis=-1)
        self.rng = np.random.default_rng(SEED)
        limit_threads(self, 1)

    def time_gumbel_topk(self, dtype, categories, k):
        lsearray.gumbel_topk(self.logits, k, rng=self.rng)

    def time_categorical_without_replacement(self, dtype, categories, k):
        lsearray.categorical(self.logits, shape=(k, len(self.logits)), replace=False, rng=self.rng)

    def time_numpy_argsort(self, dtype, categories, k):
        np.argsort(-(self.logits + self.rng.gumbel(size=self.logits.shape)), axis=-1)[:, :k]

    def time_numpy_choice_100_rows(self, dtype, categories, k):
        for p in self.probs:
            self.rng.choice(categories, size=k, replace=False, p=p)
