"""Time lsearray beside scipy.special, torch, jax, a numpy two-pass recipe and x.sum() in one run.

Usage::

    python asv_bench/side_by_side.py [--size 2e7] [--threads 1] [--repeat 7]
        [--cases 1d,2d,short,tall,softmax,small,relatives,grouped,torch,jax] [--accuracy] [--plot PATH] [--quick]
        [--only NAMES] [--json PATH] [--plot-only] [--scaling]

One run is one process: ``asv_bench/figures.py`` runs it several times and writes the
median and range of its ratios into the README and the documentation.

Cases (``--cases``, comma separated, default all); n is ``--size``:

- ``1d``: logsumexp of a 1-D float64 and a float32 array of n elements;
- ``2d``: logsumexp of a (n/1000, 1000) float64 array over axis 1 and over axis 0;
- ``short``: logsumexp of many short rows, (n/20, 10) float64 over axis 1;
- ``tall``: a tall reduction, (10, n/20) float64 over axis 0;
- ``softmax``: softmax and log_softmax of (n/1000, 1000) float64 and float32 over axis 1;
- ``small``: logsumexp and softmax of 10 float64 elements (call overhead, in microseconds);
- ``relatives``: float64 logaddexp of two arrays of n/2 elements against ``np.logaddexp``;
  logcumsumexp of n/2 elements and of a (1000, n/2000) array along axis 0 and 1 against
  ``np.logaddexp.accumulate`` and ``torch.logcumsumexp``; logmatmulexp of two (m, m) arrays,
  m = sqrt(n/5), against the naive ``log(exp(a) @ exp(b))`` and the shifted
  ``ma + mb + log(exp(a - ma) @ exp(b - mb))`` (ma the row maxima of a, mb the column maxima of b).
- ``grouped``: segment_logsumexp of n/2 float64 elements into n/200 segments (ids in random
  order, then sorted) and segment_softmax of them, against numpy's ``np.maximum.at`` and
  ``np.add.at`` recipe and torch's ``scatter_reduce`` / ``index_add`` one; softmax_average of
  (n/16000, 1000) logits and 16 features a value against ``softmax(a)[..., None, :] @ v`` in
  numpy and torch; logeinsumexp of a chain ``ij,jk,kl->il`` of three (m/2, m/2) arrays against
  the naive ``log(einsum(exp))`` with ``optimize=True``.
- ``torch``: lsearray on torch tensors (sharing the numpy data's memory) against torch's own
  function on the same tensors: logsumexp of n float64 elements, of (n/1000, 1000) over axis 1
  and of (64, 10) over axis 1 (a training step's logits: call overhead), softmax of
  (n/1000, 1000) over axis 1;
- ``jax``: lsearray on jax arrays against jax's own function, both inside ``jax.jit``:
  logsumexp of n float64 elements and of (n/1000, 1000) over axis 1, softmax over axis 1.

At the default n = 2e7 the 2-D shapes are (20000, 1000), (1e6, 10) and (10, 1e6); the
relatives take 1e7 elements, (1000, 10000) and (2000, 2000); the grouped cases 1e7 elements
into 1e5 segments, (1250, 1000) logits and a chain of (1000, 1000) arrays.
Contenders: lsearray; scipy.special; torch; jax (``jax.scipy.special.logsumexp``,
``jax.nn.softmax``, ``jax.nn.log_softmax``, jitted, with ``jax_enable_x64`` so float64 stays
float64, timed to ``block_until_ready``); the numpy two-pass recipe (max, then exp and sum);
``x.sum()`` (one read of the input: the floor) and ``np.exp(x, out=y)`` (one read, one write
and one exp per element). torch and jax are left out when not installed (or with
``--no-torch`` / ``--no-jax``).

Absolute times on shared machines drift, so every number in one table comes from one run:
each round calls every contender once per case (in a rotating order), and the best of
``--repeat`` rounds is reported, so drift hits all contenders alike. Small cases loop until
one sample takes ``--min-sample`` seconds. The tables give times and the ratios
"other / lsearray" (how many times lsearray is faster) and "lsearray / floor". A memory table
gives the peak extra memory of one call, traced by tracemalloc (numpy reports its
allocations to it; memory a C kernel takes with malloc does not show); for the relatives,
of logmatmulexp only. ``--accuracy`` adds the max ulp error against an mpmath reference
(50 digits) on hard float64 inputs, and with the relatives the max over the prefixes of
logcumsumexp (where a prefix crosses 0 the max and the log of the sum cancel).

``--plot PATH`` also writes a PNG of throughput (elements per second, log-log) against n,
from 1e3 to ``--size`` (about 8 points), for 1-D float64 logsumexp: lsearray on one thread (and on
``--threads`` threads when that is more than one), scipy, torch, jax, the two-pass recipe and
``x.sum()``. It needs matplotlib (the ``bench`` extra), imported only then, with the Agg backend.

``--scaling`` times lsearray alone instead, on one thread and on ``--threads`` threads in
the same interleaved rounds, and prints the speed-up for every selected case but the small
ones, the relatives and the grouped ones.

``--quick`` is a smoke run: n = 1e5 unless ``--size`` is given, one round unless
``--repeat`` is given, 2 ms samples unless ``--min-sample`` is given, 4 plot points.

Thread limits go to every library: OMP_NUM_THREADS (and the BLAS variables) are set
before numpy is imported, threadpoolctl.threadpool_limits(N) limits every OpenMP/BLAS pool
loaded, and torch.set_num_threads(N) limits torch. jax (XLA) has no thread limit, so unless
``--no-pin`` is given the process is pinned to N CPUs (os.sched_setaffinity) before jax is
imported. The exit status is 1 when a contender raised (it is reported, not timed).

The script reads its options and sets the thread limits; the rest is in ``sidebyside/`` beside
it: ``options`` (the command line), ``cases``, ``recipes`` (the numpy recipes),
``contenders``, ``timing`` (the protocol), ``agreement``, ``accuracy`` (with the test
suite's mpmath references, ``tests/reference.py``), ``throughput`` (the plot), ``report``
(tables, machine, JSON record) and ``run``.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from sidebyside.options import limit_threads_before_imports, parse_args  # beside this script

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run side_by_side.py with the options ``argv`` (default ``sys.argv[1:]``); its exit status."""
    config = limit_threads_before_imports(parse_args(argv, description=__doc__.splitlines()[0]))
    # Only now: numpy, scipy, lsearray, torch and jax size their thread pools when imported.
    from sidebyside.run import main as run

    return run(config)


if __name__ == "__main__":
    sys.exit(main())
