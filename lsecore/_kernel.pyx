"""Log-sum-exp partials of 3-D strided views, accumulated in one read with OpenMP threads."""

import numpy as np

from cpython.pycapsule cimport PyCapsule_New
from cython.parallel cimport prange
from libc.math cimport INFINITY, NAN, fma, log
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

__all__ = ["accumulate", "accumulate_weighted", "build_info", "exact_rows", "exp_shifted", "finalize",
           "id_range", "logaddexp", "logdiffexp", "matmul_finish", "max_threads", "merge", "normalize",
           "reduce_finalized", "refine_flags", "scan", "segment_exact", "segment_finalize",
           "segment_normalize", "segment_partials", "set_max_threads", "simd", "softmax_rows",
           "xla_handlers"]

ctypedef fused a_t:
    float
    double

ctypedef unsigned char mask_t  # a boolean mask's bytes, read as weights 0 and 1

ctypedef fused b_t:
    float
    double
    mask_t

cdef extern from "_lse_dispatch.h" nogil:
    void lse_dispatch_init()
    int LSE_TILE
    int lse_max_threads()
    int lse_thread_num()
    int lse_simd_avx512()
    int lse_built_openmp()
    int lse_built_avx512()
    int lse_built_clones()
    void lse_normalize_d(const double *a, Py_ssize_t ar, Py_ssize_t ai, double *out,
                         Py_ssize_t or_, Py_ssize_t oi, Py_ssize_t nr, Py_ssize_t ni,
                         const double *m, const double *s, const double *sl, double tau,
                         int log_mode)
    int LSE_ROW_BLOCK
    void lse_softmax_row_d(const double *a, double *out, double *buf, Py_ssize_t n,
                           double tau, int log_mode)
    void lse_softmax_row_f(const float *a, float *out, double *buf, Py_ssize_t n,
                           double tau, int log_mode)
    Py_ssize_t lse_masked_row_d(const double *a, const unsigned char *keep, double *row,
                                Py_ssize_t n)
    Py_ssize_t lse_masked_row_f(const float *a, const unsigned char *keep, float *row,
                                Py_ssize_t n)
    void lse_fill_left_out_d(double *out, const unsigned char *keep, Py_ssize_t n, double fill)
    void lse_fill_left_out_f(float *out, const unsigned char *keep, Py_ssize_t n, float fill)
    void lse_normalize_f(const float *a, Py_ssize_t ar, Py_ssize_t ai, float *out,
                         Py_ssize_t or_, Py_ssize_t oi, Py_ssize_t nr, Py_ssize_t ni,
                         const double *m, const double *s, const double *sl, double tau,
                         int log_mode)
    void lse_merge(double *m, double *w, double *t, double *c,
                   double m2, double w2, double t2, double c2, double inv_tau, double itl)
    void lse_finalize(Py_ssize_t n, const double *m, const double *w, const double *t,
                      const double *c, const double *divisor, double tau,
                      double *out, double *sign, double *log_sum)
    ctypedef enum lse_precision:
        LSE_EXACT
        LSE_COARSE
        LSE_COARSE_FLOAT32
    void lse_row_dd(const double *a, Py_ssize_t sa, const double *b, Py_ssize_t sb,
                    Py_ssize_t n, double inv_tau, double itl, double *m, double *w, double *t, double *c,
                    lse_precision precision)
    void lse_row_ff(const float *a, Py_ssize_t sa, const float *b, Py_ssize_t sb,
                    Py_ssize_t n, double inv_tau, double itl, double *m, double *w, double *t, double *c,
                    lse_precision precision)
    void lse_row_fd(const float *a, Py_ssize_t sa, const double *b, Py_ssize_t sb,
                    Py_ssize_t n, double inv_tau, double itl, double *m, double *w, double *t, double *c,
                    lse_precision precision)
    void lse_row_df(const double *a, Py_ssize_t sa, const float *b, Py_ssize_t sb,
                    Py_ssize_t n, double inv_tau, double itl, double *m, double *w, double *t, double *c,
                    lse_precision precision)
    void lse_cols_dd(const double *a, Py_ssize_t sr, Py_ssize_t si,
                     const double *b, Py_ssize_t br, Py_ssize_t bi,
                     Py_ssize_t nr, Py_ssize_t ni, double inv_tau, double itl,
                     double *m, double *w, double *t, double *c)
    void lse_cols_ff(const float *a, Py_ssize_t sr, Py_ssize_t si,
                     const float *b, Py_ssize_t br, Py_ssize_t bi,
                     Py_ssize_t nr, Py_ssize_t ni, double inv_tau, double itl,
                     double *m, double *w, double *t, double *c)
    void lse_cols_fd(const float *a, Py_ssize_t sr, Py_ssize_t si,
                     const double *b, Py_ssize_t br, Py_ssize_t bi,
                     Py_ssize_t nr, Py_ssize_t ni, double inv_tau, double itl,
                     double *m, double *w, double *t, double *c)
    void lse_cols_df(const double *a, Py_ssize_t sr, Py_ssize_t si,
                     const float *b, Py_ssize_t br, Py_ssize_t bi,
                     Py_ssize_t nr, Py_ssize_t ni, double inv_tau, double itl,
                     double *m, double *w, double *t, double *c)

    int lse_refine_flag(double m, double w, double t, double c, double tau, double out,
                        double eps_neg, double eps_pos, int bits, double n, int carried,
                        double lost)
    double lse_exact_slice_dd(const double *a, Py_ssize_t sa, const double *b, Py_ssize_t sb,
                              Py_ssize_t n, double tau, double divisor, double *sign)
    double lse_exact_slice_ff(const float *a, Py_ssize_t sa, const float *b, Py_ssize_t sb,
                              Py_ssize_t n, double tau, double divisor, double *sign)
    double lse_exact_slice_fd(const float *a, Py_ssize_t sa, const double *b, Py_ssize_t sb,
                              Py_ssize_t n, double tau, double divisor, double *sign)
    double lse_exact_slice_df(const double *a, Py_ssize_t sa, const float *b, Py_ssize_t sb,
                              Py_ssize_t n, double tau, double divisor, double *sign)
    double lse_exact_slice_dm(const double *a, Py_ssize_t sa, const mask_t *b, Py_ssize_t sb,
                              Py_ssize_t n, double tau, double divisor, double *sign)
    double lse_exact_slice_fm(const float *a, Py_ssize_t sa, const mask_t *b, Py_ssize_t sb,
                              Py_ssize_t n, double tau, double divisor, double *sign)

cdef extern from "_lse_scan.h" nogil:
    void lse_scan_row_d(const double *a, Py_ssize_t sa, const mask_t *mk, Py_ssize_t sm,
                        double *out, Py_ssize_t so, Py_ssize_t n, double tau)
    void lse_scan_row_f(const float *a, Py_ssize_t sa, const mask_t *mk, Py_ssize_t sm,
                        float *out, Py_ssize_t so, Py_ssize_t n, double tau)
    void lse_scan_cols_d(const double *a, Py_ssize_t sr, Py_ssize_t si,
                         const mask_t *mk, Py_ssize_t mr, Py_ssize_t mi, double *out,
                         Py_ssize_t or_, Py_ssize_t oi, Py_ssize_t nr, Py_ssize_t ni,
                         double tau)
    void lse_scan_cols_f(const float *a, Py_ssize_t sr, Py_ssize_t si,
                         const mask_t *mk, Py_ssize_t mr, Py_ssize_t mi, float *out,
                         Py_ssize_t or_, Py_ssize_t oi, Py_ssize_t nr, Py_ssize_t ni,
                         double tau)
    int lse_partial_dd_d(const double *a, Py_ssize_t sa, const mask_t *mk, Py_ssize_t sm,
                         Py_ssize_t n, double tau, double *p)
    int lse_partial_dd_f(const float *a, Py_ssize_t sa, const mask_t *mk, Py_ssize_t sm,
                         Py_ssize_t n, double tau, double *p)
    void lse_merge_dd(double *p, const double *q, double tau)
    Py_ssize_t lse_scan_block_d(const double *a, Py_ssize_t sa, const mask_t *mk, Py_ssize_t sm,
                                double *out, Py_ssize_t so, Py_ssize_t n, double tau,
                                const double *carry)
    Py_ssize_t lse_scan_block_f(const float *a, Py_ssize_t sa, const mask_t *mk, Py_ssize_t sm,
                                float *out, Py_ssize_t so, Py_ssize_t n, double tau,
                                const double *carry)
    void lse_exact_scan_d(const double *a, Py_ssize_t sa, const mask_t *mk, Py_ssize_t sm,
                          double *out, Py_ssize_t so, Py_ssize_t n, double tau, Py_ssize_t first)
    void lse_exact_scan_f(const float *a, Py_ssize_t sa, const mask_t *mk, Py_ssize_t sm,
                          float *out, Py_ssize_t so, Py_ssize_t n, double tau, Py_ssize_t first)
    void lse_logaddexp_d(const double *x, Py_ssize_t sx, const double *y, Py_ssize_t sy,
                         double *out, Py_ssize_t so, Py_ssize_t n, double tau)
    void lse_logaddexp_f(const float *x, Py_ssize_t sx, const float *y, Py_ssize_t sy,
                         float *out, Py_ssize_t so, Py_ssize_t n, double tau)

# The loops of this CPU's instruction set, chosen once (LSECORE_SIMD=generic: the portable ones).
lse_dispatch_init()

cdef enum:
    # Below this many elements a call runs on one thread: waking a team costs more.
    MIN_PARALLEL = 1 << 16
    # Rows up to this long are reduced as columns of a tile of rows, vectorized across
    # the rows: a row of its own would be too short for the vector loops.
    SHORT_ROW = 32
    # A reduction of fewer output tasks than SPLIT_TASKS splits its reduced axis into
    # chunks of at least SPLIT_MIN elements, at most MAX_SPLIT of them, merged in order:
    # the same chunks on any number of threads, so that the bits of every result do not
    # depend on the thread count.
    SPLIT_TASKS = 16
    SPLIT_MIN = 8192
    MAX_SPLIT = 64
    # Elements of a masked block gathered at a time (16 KiB of float64: in L1).
    MASK_BLOCK = 2048
    # A single lane of at least twice SCAN_SPLIT elements is scanned in blocks of at least
    # that many (at most MAX_SPLIT blocks): the same blocks on any number of threads.
    SCAN_SPLIT = 1 << 15
    # Elements of an elementwise pair function per thread task.
    PAIR_BLOCK = 8192

# How exact the sum of a partial from the reduction's loops is: its terms within 0.52 ulp
# (2^-52), and each rescale of a running sum, in a block's loops or in a merge, within 2^-56
# (an exp in double-double, lse_exp_dd, about 2^-60).
cdef double REDUCED_REL = 2.220446049250313e-16
cdef double RESCALE_REL = 1.3877787807814457e-17

cdef struct Tolerance:
    # How exact the fast loops' terms are (eps_pos where the max is >= 0), and the bits of
    # the result's float: what lse_refine_flag needs.
    double eps_neg, eps_pos
    int bits


cdef Tolerance _tolerance(int itemsize, bint float32_result, bint weighted) noexcept nogil:
    """The fast loops' term accuracy for input of ``itemsize`` bytes: float64 exps within
    0.7 ulp (0.52 with AVX-512; a weight's product adds half an ulp), float32 ones within
    2^-49, or 2^-33 in the coarse tier that float32 results take where the max is >= 0
    (LSE_COARSE_FLOAT32)."""
    cdef Tolerance tol
    tol.eps_neg = 0.75 * 2.0 ** -52 if itemsize == 8 else 2.0 ** -49
    if weighted:
        tol.eps_neg = 1.25 * 2.0 ** -52
    tol.eps_pos = 2.0 ** -33 if float32_result and itemsize == 4 else tol.eps_neg
    tol.bits = 24 if float32_result else 53
    return tol


cdef struct View:
    # A 3-D strided view (outer, reduced, inner); strides in elements.
    Py_ssize_t n0, n1, n2
    Py_ssize_t s0, s1, s2


cdef inline bint _short_rows(View v) noexcept nogil:
    """Whether ``v`` is many rows (n0 > 1, n2 == 1) of at most SHORT_ROW elements."""
    return v.n2 == 1 and v.n1 <= SHORT_ROW and v.n0 > 1


cdef inline View _transposed(View v) noexcept nogil:
    """The rows of ``v`` (n0, n1, 1) as the columns of one (1, n1, n0) view."""
    return View(1, v.n1, v.n0, 0, v.s1, v.s0)


cdef inline void _masked_block(const a_t *a, const View *va, const mask_t *b, const View *vb,
                               Py_ssize_t o, Py_ssize_t r0, Py_ssize_t r1,
                               Py_ssize_t i0, Py_ssize_t i1, double inv_tau, double itl,
                               double *m, double *w, double *t, double *c,
                               lse_precision precision) noexcept nogil:
    """`_block` for a mask: the elements it keeps, and -inf for the others, are gathered
    MASK_BLOCK at a time into a buffer in L1, which the unmasked vector loops reduce. The
    buffer is the only copy: a left-out element is never read as a number, and the result
    is the unmasked one of ``where(mask, a, -inf)``."""
    cdef a_t buf[MASK_BLOCK]
    cdef Py_ssize_t nj = i1 - i0, per = max(1, MASK_BLOCK // nj), r = r0, k, j, n
    cdef const a_t *ap
    cdef const mask_t *bp
    cdef a_t x
    while r < r1:
        n = min(per, r1 - r)
        if nj == 1 and va.s1 == 1 and vb.s1 == 1:
            # a contiguous row and mask: a select the compiler vectorizes, no branch
            ap = a + o * va.s0 + r + i0 * va.s2
            bp = b + o * vb.s0 + r + i0 * vb.s2
            for k in range(n):
                x = ap[k]
                buf[k] = x if bp[k] else <a_t> -INFINITY
        else:
            for k in range(n):
                ap = a + o * va.s0 + (r + k) * va.s1 + i0 * va.s2
                bp = b + o * vb.s0 + (r + k) * vb.s1 + i0 * vb.s2
                for j in range(nj):
                    x = ap[j * va.s2]
                    buf[k * nj + j] = x if bp[j * vb.s2] else <a_t> -INFINITY
        if nj == 1:
            if a_t is double:
                lse_row_dd(buf, 1, NULL, 0, n, inv_tau, itl, m + i0, w + i0, t + i0, c + i0, precision)
            else:
                lse_row_ff(buf, 1, NULL, 0, n, inv_tau, itl, m + i0, w + i0, t + i0, c + i0, precision)
        elif a_t is double:
            lse_cols_dd(buf, nj, 1, NULL, 0, 0, n, nj, inv_tau, itl, m + i0, w + i0, t + i0, c + i0)
        else:
            lse_cols_ff(buf, nj, 1, NULL, 0, 0, n, nj, inv_tau, itl, m + i0, w + i0, t + i0, c + i0)
        r += n


cdef inline void _block(const a_t *a, const View *va, const b_t *b, const View *vb,
                        Py_ssize_t o, Py_ssize_t r0, Py_ssize_t r1,
                        Py_ssize_t i0, Py_ssize_t i1, double inv_tau, double itl,
                        double *m, double *w, double *t, double *c, lse_precision precision) noexcept nogil:
    """Merge the partials of a[o, r0:r1, i0:i1] into m[i0:i1], w[i0:i1], t[i0:i1]
    (``precision``: LSE_EXACT, or LSE_COARSE_FLOAT32 for float32 results)."""
    cdef const a_t *ap = a + o * va.s0 + r0 * va.s1 + i0 * va.s2
    cdef const b_t *bp = NULL
    cdef Py_ssize_t bs0 = 0, bs1 = 0, bs2 = 0
    if b_t is mask_t:  # the fast loops never read a mask: it is gathered with the input
        if b != NULL:
            _masked_block(a, va, b, vb, o, r0, r1, i0, i1, inv_tau, itl, m, w, t, c, precision)
        else:
            _block(a, va, <const a_t *> NULL, va, o, r0, r1, i0, i1, inv_tau, itl, m, w, t, c,
                   precision)
        return
    else:
        if b != NULL:
            bp = b + o * vb.s0 + r0 * vb.s1 + i0 * vb.s2
            bs1 = vb.s1
            bs2 = vb.s2
        if i1 - i0 == 1:
            if a_t is double and b_t is double:
                lse_row_dd(ap, va.s1, bp, bs1, r1 - r0, inv_tau, itl, m + i0, w + i0, t + i0, c + i0,
                           precision)
            elif a_t is float and b_t is float:
                lse_row_ff(ap, va.s1, bp, bs1, r1 - r0, inv_tau, itl, m + i0, w + i0, t + i0, c + i0,
                           precision)
            elif a_t is float and b_t is double:
                lse_row_fd(ap, va.s1, bp, bs1, r1 - r0, inv_tau, itl, m + i0, w + i0, t + i0, c + i0,
                           precision)
            else:
                lse_row_df(ap, va.s1, bp, bs1, r1 - r0, inv_tau, itl, m + i0, w + i0, t + i0, c + i0,
                           precision)
        else:
            if a_t is double and b_t is double:
                lse_cols_dd(ap, va.s1, va.s2, bp, bs1, bs2, r1 - r0, i1 - i0, inv_tau, itl,
                            m + i0, w + i0, t + i0, c + i0)
            elif a_t is float and b_t is float:
                lse_cols_ff(ap, va.s1, va.s2, bp, bs1, bs2, r1 - r0, i1 - i0, inv_tau, itl,
                            m + i0, w + i0, t + i0, c + i0)
            elif a_t is float and b_t is double:
                lse_cols_fd(ap, va.s1, va.s2, bp, bs1, bs2, r1 - r0, i1 - i0, inv_tau, itl,
                            m + i0, w + i0, t + i0, c + i0)
            else:
                lse_cols_df(ap, va.s1, va.s2, bp, bs1, bs2, r1 - r0, i1 - i0, inv_tau, itl,
                            m + i0, w + i0, t + i0, c + i0)


cdef inline Py_ssize_t _chunks(View va, Py_ssize_t ntasks) noexcept nogil:
    """How many chunks the reduced axis of ``va`` is split into (1: none), whatever the
    thread count."""
    if va.n0 * va.n1 * va.n2 < MIN_PARALLEL or ntasks >= SPLIT_TASKS:
        return 1
    return max(1, min(<Py_ssize_t> MAX_SPLIT, va.n1 // SPLIT_MIN))


cdef int _run(const a_t *a, View va, const b_t *b, View vb, double inv_tau, double itl,
              double *m, double *w, double *t, double *c, lse_precision precision) except -1 nogil:
    """Merge the partials of a 3-D view, reduced over its middle axis, into the
    (n0, n2) C-contiguous partial arrays m, w, t, c.

    Threads take whole output tiles when there are enough of them; otherwise the
    reduced axis is split into chunks (`_chunks`) whose partials are merged after.
    """
    if _short_rows(va):
        va, vb = _transposed(va), _transposed(vb)
    cdef Py_ssize_t tile = LSE_TILE if va.n2 > 1 else 1
    cdef Py_ssize_t ntiles = (va.n2 + tile - 1) // tile
    cdef Py_ssize_t ntasks = va.n0 * ntiles
    cdef Py_ssize_t nout = va.n0 * va.n2
    cdef int nt = lse_max_threads()
    cdef Py_ssize_t nchunks = _chunks(va, ntasks)
    cdef Py_ssize_t k, o, i0, i1, r0, r1, j, per, q
    cdef double *buf
    if va.n0 * va.n1 * va.n2 < MIN_PARALLEL:
        nt = 1
    if nchunks > 1:
        # Few outputs, long reductions: the chunks of the reduced axis share the threads.
        # buf holds nchunks partials (m, w, t, c) of nout elements each, one after the other.
        buf = <double *> malloc(4 * nchunks * nout * sizeof(double))
        if buf == NULL:
            with gil:
                raise MemoryError()
        for j in range(4 * nchunks * nout):
            buf[j] = 0.0
        for q in range(nchunks):
            for j in range(nout):
                buf[4 * q * nout + j] = -INFINITY
        per = (va.n1 + nchunks - 1) // nchunks
        for k in prange(nchunks * ntasks, num_threads=nt, schedule="static"):
            q = k // ntasks
            r0 = q * per
            r1 = min(r0 + per, va.n1)
            o = (k % ntasks) // ntiles
            i0 = ((k % ntasks) % ntiles) * tile
            i1 = min(i0 + tile, va.n2)
            if r0 < r1:
                _block(a, &va, b, &vb, o, r0, r1, i0, i1, inv_tau, itl,
                       buf + 4 * q * nout + o * va.n2,
                       buf + (4 * q + 1) * nout + o * va.n2,
                       buf + (4 * q + 2) * nout + o * va.n2,
                       buf + (4 * q + 3) * nout + o * va.n2, precision)
        for q in range(nchunks):
            for j in range(nout):
                lse_merge(m + j, w + j, t + j, c + j,
                          buf[4 * q * nout + j], buf[(4 * q + 1) * nout + j],
                          buf[(4 * q + 2) * nout + j], buf[(4 * q + 3) * nout + j], inv_tau, itl)
        free(buf)
    else:
        for k in prange(ntasks, num_threads=nt, schedule="static"):
            o = k // ntiles
            i0 = (k % ntiles) * tile
            i1 = min(i0 + tile, va.n2)
            _block(a, &va, b, &vb, o, 0, va.n1, i0, i1, inv_tau, itl,
                   m + o * va.n2, w + o * va.n2, t + o * va.n2, c + o * va.n2, precision)
    return 0


cdef int _run_final(const a_t *a, View va, double inv_tau, double itl, double tau, double divisor,
                    double *out, lse_precision precision, const Tolerance *tol,
                    unsigned char *refine) except -1 nogil:
    """Reduce a 3-D view over its middle axis and finalize each tile of outputs as soon
    as it is complete: ``out[o, i] = tau log(S / divisor)`` (no division when
    ``divisor`` is 0), written to the (n0, n2) C-contiguous ``out``, with partials only
    per tile, or, where `_chunks` splits the reduced axis (few outputs), for all of them.
    """
    if _short_rows(va):
        va = _transposed(va)
    cdef Py_ssize_t tile = LSE_TILE if va.n2 > 1 else 1
    cdef Py_ssize_t ntiles = (va.n2 + tile - 1) // tile
    cdef Py_ssize_t ntasks = va.n0 * ntiles
    cdef Py_ssize_t nout = va.n0 * va.n2
    cdef int nt = lse_max_threads()
    cdef Py_ssize_t k, o, i0, i1, j, T = LSE_TILE
    cdef double *buf
    cdef double *p
    if _chunks(va, ntasks) > 1:
        # m, w, t, c and divisors of every output (few of them)
        buf = <double *> malloc(5 * nout * sizeof(double))
        if buf == NULL:
            with gil:
                raise MemoryError()
        for j in range(nout):
            buf[j] = -INFINITY
            buf[nout + j] = 0.0
            buf[2 * nout + j] = 0.0
            buf[3 * nout + j] = 0.0
            buf[4 * nout + j] = divisor
        _run(a, va, <const a_t *> NULL, va, inv_tau, itl, buf, buf + nout, buf + 2 * nout,
             buf + 3 * nout, precision)
        lse_finalize(nout, buf, buf + nout, buf + 2 * nout, buf + 3 * nout,
                     NULL if divisor == 0.0 else buf + 4 * nout, tau, out, NULL, NULL)
        for j in range(nout):
            refine[j] = lse_refine_flag(buf[j], buf[nout + j], buf[2 * nout + j],
                                        buf[3 * nout + j], tau, out[j], tol.eps_neg,
                                        tol.eps_pos, tol.bits, <double> va.n1, 1, 0.0)
        free(buf)
        return 0
    if va.n0 * va.n1 * va.n2 < MIN_PARALLEL:
        nt = 1
    # Per thread: the tile's m, w, t, c and divisors.
    buf = <double *> malloc(5 * nt * T * sizeof(double))
    if buf == NULL:
        with gil:
            raise MemoryError()
    for k in prange(ntasks, num_threads=nt, schedule="static"):
        p = buf + 5 * T * lse_thread_num()
        o = k // ntiles
        i0 = (k % ntiles) * tile
        i1 = min(i0 + tile, va.n2)
        for j in range(i1 - i0):
            p[j] = -INFINITY
            p[T + j] = 0.0
            p[2 * T + j] = 0.0
            p[3 * T + j] = 0.0
            p[4 * T + j] = divisor
        _block(a, &va, <const a_t *> NULL, &va, o, 0, va.n1, i0, i1, inv_tau, itl,
               p - i0, p + T - i0, p + 2 * T - i0, p + 3 * T - i0, precision)
        lse_finalize(i1 - i0, p, p + T, p + 2 * T, p + 3 * T,
                     NULL if divisor == 0.0 else p + 4 * T, tau,
                     out + o * va.n2 + i0, NULL, NULL)
        for j in range(i1 - i0):
            refine[o * va.n2 + i0 + j] = lse_refine_flag(
                p[j], p[T + j], p[2 * T + j], p[3 * T + j], tau, out[o * va.n2 + i0 + j],
                tol.eps_neg, tol.eps_pos, tol.bits, <double> va.n1, 1, 0.0)
    free(buf)
    return 0


cdef inline double _low_part(double tau, double inv_tau) noexcept nogil:
    """The rest of 1 / tau beyond inv_tau (0 when tau is 0: unknown, or 1)."""
    if tau == 0.0 or tau == 1.0:
        return 0.0
    return fma(-tau, inv_tau, 1.0) / tau


cdef inline View _view(const Py_ssize_t *shape, const Py_ssize_t *strides,
                       Py_ssize_t itemsize) noexcept:
    cdef View v
    v.n0, v.n1, v.n2 = shape[0], shape[1], shape[2]
    v.s0, v.s1, v.s2 = strides[0] // itemsize, strides[1] // itemsize, strides[2] // itemsize
    return v


def accumulate(const a_t[:, :, :] a not None, double inv_tau,
               double[:, ::1] m not None, double[:, ::1] w not None,
               double[:, ::1] t not None, double[:, ::1] c not None,
               bint float32_result=False, double tau=0.0):
    """Merge the log-sum-exp partials of ``a`` over its middle axis into ``m, w, t``.

    Parameters
    ----------
    a : (n0, n1, n2) float32 or float64 memoryview, any strides    # IN
    inv_tau : float
        The inverse temperature, ``1 / tau``.
    m, w, t, c : (n0, n2) C-contiguous float64 arrays              # IN/OUT
        The running partial: max, weight of the maximal terms, and the scaled sum of
        the other terms with its compensation (see ``_lse_common.h``).
    float32_result : bool
        The partials end as float32 log-sum-exps (no division, no float64 result):
        float32 input's exps may then be coarser where the max allows it
        (LSE_COARSE_FLOAT32 in ``_lse_common.h``). Without it every float32 term is
        exact to about 2^-50.
    tau : float
        The temperature ``inv_tau`` inverts, or 0 if unknown: given, the terms carry the
        rounding of ``inv_tau`` too, and are within an ulp whatever their distance to
        the max (`refine_flags`' ``carried``).
    """
    cdef View va = _view(a.shape, a.strides, sizeof(a_t))
    cdef View vb = va
    cdef lse_precision precision = LSE_COARSE_FLOAT32 if float32_result else LSE_EXACT
    if a.shape[1] == 0 or a.shape[0] == 0 or a.shape[2] == 0:
        return
    with nogil:
        _run(&a[0, 0, 0], va, <const a_t *> NULL, vb, inv_tau, _low_part(tau, inv_tau),
             &m[0, 0], &w[0, 0], &t[0, 0], &c[0, 0], precision)


cdef void _recompute_flagged(const a_t *a, View va, double tau, double divisor, double *out,
                             unsigned char *refine) noexcept nogil:
    """Recompute by the accurate tier, as `exact_rows` does, the results of the (n0, n2)
    C-contiguous ``out`` that ``refine`` flags, each from its slice of ``a`` read in place,
    and clear their flags."""
    cdef Py_ssize_t j, nout = va.n0 * va.n2
    cdef double r, sg
    cdef int nt = lse_max_threads()
    if nout * va.n1 < MIN_PARALLEL:
        nt = 1
    for j in prange(nout, num_threads=nt, schedule="static"):
        if refine[j]:
            if a_t is double:
                r = lse_exact_slice_dd(a + (j // va.n2) * va.s0 + (j % va.n2) * va.s2, va.s1,
                                       NULL, 0, va.n1, tau, divisor, &sg)
            else:
                r = lse_exact_slice_ff(a + (j // va.n2) * va.s0 + (j % va.n2) * va.s2, va.s1,
                                       NULL, 0, va.n1, tau, divisor, &sg)
            if r == r:
                out[j] = r
            refine[j] = 0


def reduce_finalized(const a_t[:, :, :] a not None, double inv_tau, double tau,
                     double[:, ::1] out not None, unsigned char[:, ::1] refine not None,
                     double divisor=0.0, bint float32_result=False, bint exact=False):
    """The log-sum-exp of ``a`` over its middle axis, finalized into ``out`` tile by
    tile, without partial arrays: ``out[o, i] = tau log(S[o, i] / divisor)`` for the sum
    ``S`` of ``exp(a[o, :, i] * inv_tau)`` shifted by its max, plus the max (as
    `finalize` computes it; ``divisor`` 0 divides by nothing).

    Few long reductions are split along the reduced axis into chunks whose partials are
    merged before they are finalized (the same chunks on any number of threads).

    Parameters
    ----------
    a : (n0, n1, n2) float32 or float64 memoryview, any strides, n1 > 0   # IN
    inv_tau, tau : float
    out : (n0, n2) C-contiguous float64 array                        # OUT
    refine : (n0, n2) C-contiguous uint8 array                       # OUT
        1 where the result may be off by more than an ulp (of float32 with
        ``float32_result``): `exact_rows` recomputes those.
    divisor : float
    float32_result : bool
        ``out`` is to be rounded to float32, as in `accumulate`; ignored with a divisor
        (a mean's log can cancel against its max).
    exact : bool
        Recompute the flagged results here, as `exact_rows` does, where the reduced axis
        is contiguous (``a`` is then read in place, as `exact_rows` reads its rows), and
        clear their flags: a small call then needs no second one.

    Returns
    -------
    flagged : bool
        Whether ``refine`` may hold a flag (False: no result is left to recompute).
    """
    cdef View va = _view(a.shape, a.strides, sizeof(a_t))
    cdef lse_precision precision = (LSE_COARSE_FLOAT32 if float32_result and divisor == 0.0
                                    else LSE_EXACT)
    cdef Tolerance tol = _tolerance(sizeof(a_t), precision == LSE_COARSE_FLOAT32, False)
    if out.shape[0] != a.shape[0] or out.shape[1] != a.shape[2]:
        raise ValueError(f"out must have shape {(a.shape[0], a.shape[2])}, got "
                         f"{(out.shape[0], out.shape[1])}")
    if refine.shape[0] != out.shape[0] or refine.shape[1] != out.shape[1]:
        raise ValueError("refine must have the shape of out")
    if a.shape[1] == 0:
        raise ValueError("reduce_finalized needs a non-empty reduced axis")
    if a.shape[0] == 0 or a.shape[2] == 0:
        return False
    with nogil:
        _run_final(&a[0, 0, 0], va, inv_tau, _low_part(tau, inv_tau), tau, divisor,
                   &out[0, 0], precision, &tol, &refine[0, 0])
    if not exact or a.strides[1] != sizeof(a_t):
        return True
    with nogil:
        _recompute_flagged(&a[0, 0, 0], va, tau, divisor, &out[0, 0], &refine[0, 0])
    return False


def accumulate_weighted(const a_t[:, :, :] a not None, const b_t[:, :, :] b not None,
                        double inv_tau, double[:, ::1] m not None, double[:, ::1] w not None,
                        double[:, ::1] t not None, double[:, ::1] c not None,
                        double tau=0.0):
    """Like `accumulate` with the weights ``b`` (same shape as ``a``, any strides,
    zero strides for broadcast weights; float32, float64, or uint8: a boolean mask's
    bytes, 0 leaving the element out as a zero weight does, whatever its value)."""
    cdef View va = _view(a.shape, a.strides, sizeof(a_t))
    cdef View vb = _view(b.shape, b.strides, sizeof(b_t))
    if a.shape[1] == 0 or a.shape[0] == 0 or a.shape[2] == 0:
        return
    with nogil:
        _run(&a[0, 0, 0], va, &b[0, 0, 0], vb, inv_tau, _low_part(tau, inv_tau),
             &m[0, 0], &w[0, 0], &t[0, 0], &c[0, 0], LSE_EXACT)


def finalize(const double[::1] m not None, const double[::1] w not None,
             const double[::1] t not None, const double[::1] c not None, double tau,
             double[::1] out not None,
             double[::1] sign=None, double[::1] log_sum=None,
             const double[::1] divisor=None):
    """Turn partials into ``out = m + tau log|S|``, ``sign = sign(S)`` and
    ``log_sum = log|S|`` for the scaled sum ``S = (w + t + c) / divisor``.

    ``sign``, ``log_sum`` and ``divisor`` are optional. The division (for means) is
    carried in double-double, so that it costs no accuracy. A slice whose max is -inf
    (empty, all -inf, or all weights zero) has a zero total: ``-inf`` with sign 0. A
    nan result has a nan sign.
    """
    cdef Py_ssize_t n = m.shape[0]
    for name, x in (("w", w), ("t", t), ("c", c), ("out", out), ("sign", sign),
                    ("log_sum", log_sum), ("divisor", divisor)):
        if x is not None and x.shape[0] != n:
            raise ValueError(f"{name} must have the length of m ({n}), got {x.shape[0]}")
    cdef const double *dp = NULL
    cdef double *sp = NULL
    cdef double *lp = NULL
    if n == 0:
        return
    if divisor is not None:
        dp = &divisor[0]
    if sign is not None:
        sp = &sign[0]
    if log_sum is not None:
        lp = &log_sum[0]
    with nogil:
        lse_finalize(n, &m[0], &w[0], &t[0], &c[0], dp, tau, &out[0], sp, lp)


def refine_flags(const double[::1] m not None, const double[::1] w not None,
                 const double[::1] t not None, const double[::1] c not None, double tau,
                 const double[::1] out not None, int itemsize, bint float32_result,
                 double max_weight, double count, bint carried,
                 unsigned char[::1] refine not None):
    """Flag (1 in ``refine``) the results ``out`` finalized from the partials that may be
    off by more than an ulp (of float32 with ``float32_result``) for input of ``itemsize``
    bytes, reduced over ``count`` elements each with weights up to ``max_weight`` in
    magnitude (0 for none); ``carried``: the partials were accumulated with their
    temperature (`accumulate`'s ``tau``), so that each term is within an ulp. `exact_rows`
    recomputes the flagged results (see ``_lse_exact.h.src``)."""
    cdef Py_ssize_t n = m.shape[0], j
    cdef Tolerance tol = _tolerance(itemsize, float32_result, max_weight != 0.0)
    if not (w.shape[0] == t.shape[0] == c.shape[0] == out.shape[0] == refine.shape[0] == n):
        raise ValueError(f"partials, out and refine must have the length of m ({n})")
    with nogil:
        for j in range(n):
            refine[j] = lse_refine_flag(m[j], w[j], t[j], c[j], tau, out[j], tol.eps_neg,
                                        tol.eps_pos, tol.bits, count, carried or tau == 1.0,
                                        max_weight * 2.0 ** -1021)


def merge(double[::1] m not None, double[::1] w not None, double[::1] t not None,
          double[::1] c not None, const double[::1] m2 not None, const double[::1] w2 not None,
          const double[::1] t2 not None, const double[::1] c2 not None, double inv_tau,
          double tau=0.0):
    """Merge the partials ``(m2, w2, t2, c2)`` into ``(m, w, t, c)``, elementwise.

    The merge is associative and commutative, so partials of blocks, threads and
    chunks combine in any order or tree; rescales carry their factor in
    double-double, and the difference of the maxima over ``tau`` exactly (``tau``:
    the temperature ``inv_tau`` inverts, 0 if unknown), so a merge costs no accuracy.
    """
    cdef Py_ssize_t j
    cdef double itl = _low_part(tau, inv_tau)
    if not (m.shape[0] == w.shape[0] == t.shape[0] == c.shape[0] == m2.shape[0]
            == w2.shape[0] == t2.shape[0] == c2.shape[0]):
        raise ValueError("partials to merge must have the same length")
    with nogil:
        for j in range(m.shape[0]):
            lse_merge(&m[j], &w[j], &t[j], &c[j], m2[j], w2[j], t2[j], c2[j], inv_tau, itl)


def normalize(const a_t[:, :, :] a not None, a_t[:, :, :] out not None,
              const double[:, ::1] m not None, const double[:, ::1] s not None, double tau,
              bint log_mode, const double[:, ::1] s_low=None):
    """Write the softmax (or, with ``log_mode``, log_softmax) of ``a`` over its middle
    axis into ``out``, from the reduction's max ``m`` and sum ``s`` (its log with
    ``log_mode``).

    ``out[o, r, i]`` is ``exp((a[o, r, i] - m[o, i]) / tau) / (s + s_low)[o, i]`` (nan
    where ``m`` is infinite), or ``(a[o, r, i] - m[o, i]) / tau - s[o, i]``; computed in
    float64 with the quotient in double-double, and rounded once to ``out``'s dtype.

    Parameters
    ----------
    a : (n0, n1, n2) float32 or float64 memoryview, any strides      # IN
    out : memoryview of a's shape and dtype, any strides, not overlapping a   # OUT
    m, s : (n0, n2) C-contiguous float64 arrays                      # IN
    tau : float
    log_mode : bool
    s_low : (n0, n2) C-contiguous float64 array, optional            # IN
        The sum's rounding error (softmax only): the division is corrected for it.
    """
    cdef Py_ssize_t n0 = a.shape[0], n1 = a.shape[1], n2 = a.shape[2]
    cdef Py_ssize_t k, o, r0, r1, per, nchunks
    cdef const double *sl
    cdef bint has_low = s_low is not None
    cdef Py_ssize_t isz = sizeof(a_t)
    cdef Py_ssize_t ar = a.strides[1] // isz, ai = a.strides[2] // isz
    cdef Py_ssize_t orr = out.strides[1] // isz, oi = out.strides[2] // isz
    cdef int nt = lse_max_threads()
    if out.shape[0] != n0 or out.shape[1] != n1 or out.shape[2] != n2:
        raise ValueError(f"out must have the shape of a {(n0, n1, n2)}, got "
                         f"{(out.shape[0], out.shape[1], out.shape[2])}")
    if m.shape[0] != n0 or m.shape[1] != n2 or s.shape[0] != n0 or s.shape[1] != n2:
        raise ValueError(f"m and s must have shape {(n0, n2)}, got "
                         f"{(m.shape[0], m.shape[1])} and {(s.shape[0], s.shape[1])}")
    if s_low is not None and (s_low.shape[0] != n0 or s_low.shape[1] != n2):
        raise ValueError(f"s_low must have shape {(n0, n2)}, got "
                         f"{(s_low.shape[0], s_low.shape[1])}")
    if n0 * n1 * n2 == 0:
        return
    if n0 * n1 * n2 < MIN_PARALLEL:
        nt = 1
    nchunks = nt if n0 < nt and n1 >= nt else 1
    per = (n1 + nchunks - 1) // nchunks
    with nogil:
        for k in prange(n0 * nchunks, num_threads=nt, schedule="static"):
            o = k // nchunks
            r0 = (k % nchunks) * per
            r1 = min(r0 + per, n1)
            if r0 < r1:
                sl = NULL
                if has_low:
                    sl = &s_low[o, 0]
                if a_t is double:
                    lse_normalize_d(&a[o, r0, 0], ar, ai, &out[o, r0, 0], orr, oi, r1 - r0,
                                    n2, &m[o, 0], &s[o, 0], sl, tau, log_mode)
                else:
                    lse_normalize_f(&a[o, r0, 0], ar, ai, &out[o, r0, 0], orr, oi, r1 - r0,
                                    n2, &m[o, 0], &s[o, 0], sl, tau, log_mode)


cdef int _softmax_rows(const a_t *a, const unsigned char *keep, a_t *out, Py_ssize_t n0,
                       Py_ssize_t n1, double tau, bint log_mode) noexcept nogil:
    """`softmax_rows` of the C-contiguous (n0, n1) ``a`` into ``out``, the elements whose
    byte in the (n0, n1) ``keep`` is 0 left out (NULL: none); -1 when memory runs out."""
    cdef Py_ssize_t o, k, kept
    cdef int nt = lse_max_threads()
    cdef double *buf = NULL
    cdef double *tbuf
    cdef a_t *rows = NULL
    cdef a_t *row
    cdef const a_t *src
    cdef a_t fill = -INFINITY if log_mode else 0.0
    if n0 * n1 == 0:
        return 0
    if n0 * n1 < MIN_PARALLEL:
        nt = 1
    if n1 <= LSE_ROW_BLOCK and not log_mode:
        # A row's exps, one row per thread: at most LSE_ROW_BLOCK doubles each.
        buf = <double *> malloc(nt * n1 * sizeof(double))
        if buf == NULL:
            return -1
    if keep != NULL:
        # A masked row as its kept elements and -inf, one row per thread, in cache.
        rows = <a_t *> malloc(nt * n1 * sizeof(a_t))
        if rows == NULL:
            free(buf)
            return -1
    for o in prange(n0, num_threads=nt, schedule="static"):
        tbuf = NULL if buf == NULL else buf + lse_thread_num() * n1
        src = a + o * n1
        if keep != NULL:
            row = rows + lse_thread_num() * n1
            if a_t is double:
                kept = lse_masked_row_d(src, keep + o * n1, row, n1)
            else:
                kept = lse_masked_row_f(src, keep + o * n1, row, n1)
            src = row
            if kept == 0:      # nothing kept: 0, or -inf for log_softmax
                for k in range(n1):
                    out[o * n1 + k] = fill
                continue
        if a_t is double:
            lse_softmax_row_d(src, out + o * n1, tbuf, n1, tau, log_mode)
        else:
            lse_softmax_row_f(src, out + o * n1, tbuf, n1, tau, log_mode)
        if keep != NULL:       # left out: 0 (-inf) even where a kept inf or nan made the row nan
            if a_t is double:
                lse_fill_left_out_d(out + o * n1, keep + o * n1, n1, fill)
            else:
                lse_fill_left_out_f(out + o * n1, keep + o * n1, n1, fill)
    free(buf)
    free(rows)
    return 0


cdef int _softmax_rows_of(const a_t[:, ::1] a, const unsigned char[:, ::1] keep, a_t[:, ::1] out,
                          double tau, bint log_mode) except -1:
    """`_softmax_rows` of memoryviews, their shapes checked."""
    cdef Py_ssize_t n0 = a.shape[0], n1 = a.shape[1]
    cdef const unsigned char *kp = NULL
    cdef int rc
    if out.shape[0] != n0 or out.shape[1] != n1:
        raise ValueError(f"out must have the shape of a {(n0, n1)}, got "
                         f"{(out.shape[0], out.shape[1])}")
    if keep is not None and (keep.shape[0] != n0 or keep.shape[1] != n1):
        raise ValueError(f"keep must have the shape of a {(n0, n1)}, got "
                         f"{(keep.shape[0], keep.shape[1])}")
    if n0 * n1 == 0:
        return 0
    if keep is not None:
        kp = &keep[0, 0]
    with nogil:
        rc = _softmax_rows(&a[0, 0], kp, &out[0, 0], n0, n1, tau, log_mode)
    if rc < 0:
        raise MemoryError()
    return 0


def softmax_rows(a, out, double tau, bint log_mode, keep=None):
    """Write the softmax (or, with ``log_mode``, log_softmax) of each row of ``a`` into
    ``out``: each row is reduced and then written while it is still in cache, so ``a``
    is read from memory once.

    Same values as `normalize` with the partials of `accumulate` and `finalize`: the
    row's sum ``w + t + c``, or its log. With ``keep``, the elements it leaves out are
    -inf in a row-sized buffer, and 0 (-inf for log_softmax) in ``out`` whatever the row
    (a row with nothing kept is 0 throughout).

    Parameters
    ----------
    a : (n0, n1) C-contiguous float32 or float64 ndarray              # IN
    out : (n0, n1) C-contiguous ndarray of a's dtype, not overlapping a   # OUT
    tau : float
    log_mode : bool
    keep : (n0, n1) C-contiguous uint8 (or bool) ndarray, or None      # IN
    """
    # Typed by hand rather than by a fused def: its dispatch would cost small calls more
    # than the work.
    if keep is not None and keep.dtype == np.bool_:
        keep = keep.view(np.uint8)
    if a.dtype == np.float64:
        _softmax_rows_of[double](a, keep, out, tau, log_mode)
    elif a.dtype == np.float32:
        _softmax_rows_of[float](a, keep, out, tau, log_mode)
    else:
        raise TypeError(f"softmax_rows expects float32 or float64, got {a.dtype}")


cdef int _scan_lane(const a_t *a, Py_ssize_t sa, const mask_t *mk, Py_ssize_t sm, a_t *out,
                    Py_ssize_t so, Py_ssize_t n, double tau) except -1 nogil:
    """Scan one long lane in blocks on the threads: the partials of every block but the
    last (one read, by the reduction's loops), merged in order into each block's carry,
    then every block scanned from its carry; the accurate tier, where a block flags an
    output, once over the lane from the first flag.

    The reduction's terms are within 0.52 ulp: carries that good leave the vector scan
    unable to vouch for prefixes near 0 (a log-CDF's), and each such block to the slower
    loops and the accurate tier. Where some block's prefixes (which only grow) come within
    4 tau of 0, the partials are made again in double-double (`lse_partial_dd_d`) and
    merged so, each carry with a bound on its error."""
    cdef Py_ssize_t nb = min(<Py_ssize_t> MAX_SPLIT, n // SCAN_SPLIT), per = (n + nb - 1) // nb
    cdef Py_ssize_t k, r0, first = -1
    cdef double inv_tau = 1.0 / tau, itl = _low_part(tau, inv_tau), lo, hi
    cdef int nt = lse_max_threads(), near_zero = 0, exact = 1
    cdef View va = View(1, n, 1, 0, sa, 0), vm = View(1, n, 1, 0, sm, 0)
    # per block (B doubles): its partial (4) and the bound on its sum's error, then its
    # carry (4) and bound, then its flag
    cdef Py_ssize_t B = 11
    # the reduction's loops rescale their running sum at most once a row block
    cdef double reduced_rel = REDUCED_REL + (per // LSE_ROW_BLOCK + 1) * RESCALE_REL
    cdef double *buf = <double *> malloc(B * nb * sizeof(double))
    cdef int *made = <int *> malloc(nb * sizeof(int))
    if buf == NULL or made == NULL:
        free(buf)
        free(made)
        with gil:
            raise MemoryError()
    for k in range(nb):
        buf[B * k], buf[B * k + 1], buf[B * k + 2], buf[B * k + 3] = -INFINITY, 0.0, 0.0, 0.0
        buf[B * k + 4] = reduced_rel
    for k in prange(nb - 1, num_threads=nt, schedule="static"):
        if mk == NULL:
            _block(a, &va, <const a_t *> NULL, &va, 0, k * per, (k + 1) * per, 0, 1, inv_tau, itl,
                   buf + B * k, buf + B * k + 1, buf + B * k + 2, buf + B * k + 3, LSE_EXACT)
        else:
            _block(a, &va, mk, &vm, 0, k * per, (k + 1) * per, 0, 1, inv_tau, itl,
                   buf + B * k, buf + B * k + 1, buf + B * k + 2, buf + B * k + 3, LSE_EXACT)
    _merge_carries(buf, B, nb, inv_tau, itl, tau, 0)
    # block k's prefixes lie between its carry's value and the next block's
    for k in range(1, nb):
        lo = _partial_value(buf + B * k + 5, tau)
        hi = _partial_value(buf + B * k + B + 5, tau) if k + 1 < nb else INFINITY
        if lo < 4 * tau and hi > -4 * tau:
            near_zero = 1
    if near_zero:
        for k in prange(nb - 1, num_threads=nt, schedule="static"):
            r0 = k * per
            if a_t is double:
                made[k] = lse_partial_dd_d(a + r0 * sa, sa, NULL if mk == NULL else mk + r0 * sm,
                                           sm, per, tau, buf + B * k)
            else:
                made[k] = lse_partial_dd_f(a + r0 * sa, sa, NULL if mk == NULL else mk + r0 * sm,
                                           sm, per, tau, buf + B * k)
        for k in range(nb - 1):
            exact = exact and made[k]
        # where a block kept the reduction's partial, the carries are as good as before
        _merge_carries(buf, B, nb, inv_tau, itl, tau, exact)
    free(made)
    for k in prange(nb, num_threads=nt, schedule="static"):
        r0 = k * per
        if a_t is double:
            buf[B * k + 10] = lse_scan_block_d(a + r0 * sa, sa, NULL if mk == NULL else mk + r0 * sm,
                                               sm, out + r0 * so, so, min(per, n - r0), tau,
                                               NULL if k == 0 else buf + B * k + 5)
        else:
            buf[B * k + 10] = lse_scan_block_f(a + r0 * sa, sa, NULL if mk == NULL else mk + r0 * sm,
                                               sm, out + r0 * so, so, min(per, n - r0), tau,
                                               NULL if k == 0 else buf + B * k + 5)
    for k in range(nb):
        if buf[B * k + 10] >= 0:
            first = k * per + <Py_ssize_t> buf[B * k + 10]
            break
    free(buf)
    if first >= 0 and <const void *> a != <const void *> out:
        if a_t is double:
            lse_exact_scan_d(a, sa, mk, sm, out, so, n, tau, first)
        else:
            lse_exact_scan_f(a, sa, mk, sm, out, so, n, tau, first)
    return 0


cdef void _merge_carries(double *buf, Py_ssize_t B, Py_ssize_t nb, double inv_tau, double itl,
                         double tau, bint exact) noexcept nogil:
    """Each block's carry (buf[B k + 5 ...]: the partial and its bound) from the partials
    before it, merged in order: by lse_merge_dd where the partials are `lse_partial_dd_d`'s
    (``exact``), else by lse_merge, the side it rescales then RESCALE_REL less exact."""
    cdef Py_ssize_t k, j
    cdef double mc, mp, rc, rp
    buf[5], buf[6], buf[7], buf[8], buf[9] = -INFINITY, 0.0, 0.0, 0.0, 0.0
    for k in range(1, nb):
        for j in range(5):
            buf[B * k + 5 + j] = buf[B * k - B + 5 + j] if k > 1 else buf[j]
        if k == 1:
            continue
        if exact:
            lse_merge_dd(buf + B * k + 5, buf + B * k - B, tau)
        else:
            mc, mp = buf[B * k + 5], buf[B * k - B]
            rc = buf[B * k + 9] + (RESCALE_REL if mp > mc > -INFINITY else 0.0)
            rp = buf[B * k - B + 4] + (RESCALE_REL if mc > mp > -INFINITY else 0.0)
            lse_merge(buf + B * k + 5, buf + B * k + 6, buf + B * k + 7, buf + B * k + 8,
                      buf[B * k - B], buf[B * k - B + 1], buf[B * k - B + 2], buf[B * k - B + 3],
                      inv_tau, itl)
            buf[B * k + 9] = rc if rc > rp else rp


cdef inline double _partial_value(const double *p, double tau) noexcept nogil:
    """The log-sum-exp m + tau log(w + t + c) of a partial; -inf where it is empty."""
    cdef double s = p[1] + p[2] + p[3]
    if not (p[0] > -INFINITY) or not (s > 0):
        return -INFINITY
    return p[0] + tau * log(s)


cdef int _scan_run(const a_t *a, View va, const mask_t *mk, View vm, a_t *out, View vo,
                   double tau) except -1 nogil:
    """Scan a 3-D view along its middle axis into the view ``out`` of the same shape
    (the elements the mask view ``mk`` leaves out adding nothing; NULL: none).

    Threads take whole lanes (or tiles of neighbouring lanes) when there are enough
    elements; a lane itself is one sequential pass.
    """
    if _short_rows(va):
        va, vm, vo = _transposed(va), _transposed(vm), _transposed(vo)
    cdef Py_ssize_t tile = LSE_TILE if va.n2 > 1 else 1
    cdef Py_ssize_t ntiles = (va.n2 + tile - 1) // tile
    cdef Py_ssize_t ntasks = va.n0 * ntiles
    cdef int nt = lse_max_threads()
    cdef Py_ssize_t k, o, i0, nj
    cdef const mask_t *mp
    if ntasks == 1 and tile == 1 and va.n1 >= 2 * SCAN_SPLIT:
        return _scan_lane(a, va.s1, mk, vm.s1, out, vo.s1, va.n1, tau)
    if va.n0 * va.n1 * va.n2 < MIN_PARALLEL:
        nt = 1
    for k in prange(ntasks, num_threads=nt, schedule="static"):
        o = k // ntiles
        i0 = (k % ntiles) * tile
        nj = min(tile, va.n2 - i0)
        mp = NULL if mk == NULL else mk + o * vm.s0 + i0 * vm.s2
        if a_t is double:
            if tile == 1:
                lse_scan_row_d(a + o * va.s0, va.s1, mp, vm.s1, out + o * vo.s0, vo.s1, va.n1, tau)
            else:
                lse_scan_cols_d(a + o * va.s0 + i0 * va.s2, va.s1, va.s2, mp, vm.s1, vm.s2,
                                out + o * vo.s0 + i0 * vo.s2, vo.s1, vo.s2, va.n1, nj, tau)
        else:
            if tile == 1:
                lse_scan_row_f(a + o * va.s0, va.s1, mp, vm.s1, out + o * vo.s0, vo.s1, va.n1, tau)
            else:
                lse_scan_cols_f(a + o * va.s0 + i0 * va.s2, va.s1, va.s2, mp, vm.s1, vm.s2,
                                out + o * vo.s0 + i0 * vo.s2, vo.s1, vo.s2, va.n1, nj, tau)
    return 0


def scan(const a_t[:, :, :] a not None, a_t[:, :, :] out not None, double tau,
         const mask_t[:, :, :] mask=None):
    """Write the running log-sum-exp of ``a`` along its middle axis into ``out``:
    ``out[o, r, i] = tau log(sum(exp(a[o, :r + 1, i] / tau)))``, over the elements whose
    ``mask`` byte is not 0 where a mask is given.

    Each lane carries the partial ``(m, w, t, c)`` of its prefix (see ``_lse_common.h``),
    rescaled in double-double when the max moves up, and every output is finalized from
    it as `finalize` does, then rounded once to ``out``'s dtype. -inf adds nothing; a nan
    makes the rest of its lane nan, and a +inf the rest +inf (or nan after a nan).

    Parameters
    ----------
    a : (n0, n1, n2) float32 or float64 memoryview, any strides          # IN
    out : memoryview of a's shape and dtype, any strides; may be a itself (then the
        outputs whose max and log cancel are not recomputed exactly)   # OUT
    tau : float
        The temperature, positive and finite.
    mask : uint8 memoryview of a's shape, any strides, or None          # IN
        A boolean mask's bytes: 0 leaves its element out, whatever its value.
    """
    cdef View va = _view(a.shape, a.strides, sizeof(a_t))
    cdef View vo = _view(out.shape, out.strides, sizeof(a_t))
    cdef View vm = va
    cdef const mask_t *mk = NULL
    if va.n0 != vo.n0 or va.n1 != vo.n1 or va.n2 != vo.n2:
        raise ValueError(f"out must have the shape of a {(va.n0, va.n1, va.n2)}, got "
                         f"{(vo.n0, vo.n1, vo.n2)}")
    if mask is not None:
        vm = _view(mask.shape, mask.strides, 1)
        if va.n0 != vm.n0 or va.n1 != vm.n1 or va.n2 != vm.n2:
            raise ValueError(f"mask must have the shape of a {(va.n0, va.n1, va.n2)}, got "
                             f"{(vm.n0, vm.n1, vm.n2)}")
    if va.n0 * va.n1 * va.n2 == 0:
        return
    if mask is not None:
        mk = &mask[0, 0, 0]
    with nogil:
        _scan_run(&a[0, 0, 0], va, mk, vm, &out[0, 0, 0], vo, tau)


def logaddexp(const a_t[:] x1 not None, const a_t[:] x2 not None, a_t[:] out not None,
              double tau):
    """Write ``tau log(exp(x1 / tau) + exp(x2 / tau))`` into ``out``, elementwise.

    The two-term partial is finalized as `finalize` does, with the difference of the
    arguments carried in double-double, and rounded once to ``out``'s dtype. Equal
    infinities give that infinity; a nan gives nan.

    Parameters
    ----------
    x1, x2 : float32 or float64 memoryviews of out's length, any strides (0 too)   # IN
    out : memoryview of x1's dtype, any strides                        # OUT
    tau : float
        The temperature, positive and finite.
    """
    cdef Py_ssize_t n = out.shape[0], isz = sizeof(a_t)
    if x1.shape[0] != n or x2.shape[0] != n:
        raise ValueError(f"x1 and x2 must have the length of out ({n}), got "
                         f"{x1.shape[0]} and {x2.shape[0]}")
    if n == 0:
        return
    cdef Py_ssize_t s1 = x1.strides[0] // isz, s2 = x2.strides[0] // isz, so = out.strides[0] // isz
    cdef Py_ssize_t k, i0, nb = (n + PAIR_BLOCK - 1) // PAIR_BLOCK
    cdef int nt = 1 if n < MIN_PARALLEL else lse_max_threads()
    with nogil:
        for k in prange(nb, num_threads=nt, schedule="static"):
            i0 = k * PAIR_BLOCK
            if a_t is double:
                lse_logaddexp_d(&x1[0] + i0 * s1, s1, &x2[0] + i0 * s2, s2, &out[0] + i0 * so, so,
                                min(<Py_ssize_t> PAIR_BLOCK, n - i0), tau)
            else:
                lse_logaddexp_f(&x1[0] + i0 * s1, s1, &x2[0] + i0 * s2, s2, &out[0] + i0 * so, so,
                                min(<Py_ssize_t> PAIR_BLOCK, n - i0), tau)


cdef inline double _exact_row(const a_t *a, Py_ssize_t sa, const b_t *b, Py_ssize_t sb,
                              Py_ssize_t n, double tau, double divisor,
                              double *sign) noexcept nogil:
    # Unweighted rows take the a_t-only functions, which have the vector loops.
    if a_t is double:
        if b == NULL:
            return lse_exact_slice_dd(a, sa, NULL, 0, n, tau, divisor, sign)
    else:
        if b == NULL:
            return lse_exact_slice_ff(a, sa, NULL, 0, n, tau, divisor, sign)
    if a_t is double and b_t is double:
        return lse_exact_slice_dd(a, sa, b, sb, n, tau, divisor, sign)
    elif a_t is float and b_t is float:
        return lse_exact_slice_ff(a, sa, b, sb, n, tau, divisor, sign)
    elif a_t is float and b_t is double:
        return lse_exact_slice_fd(a, sa, b, sb, n, tau, divisor, sign)
    elif a_t is double and b_t is mask_t:
        return lse_exact_slice_dm(a, sa, b, sb, n, tau, divisor, sign)
    elif a_t is float and b_t is mask_t:
        return lse_exact_slice_fm(a, sa, b, sb, n, tau, divisor, sign)
    else:
        return lse_exact_slice_df(a, sa, b, sb, n, tau, divisor, sign)


def exact_rows(const a_t[:, :] a not None, const b_t[:, :] b, double tau,
               const double[::1] divisor, double[::1] out not None,
               double[::1] sign not None):
    """The log-sum-exp of each row of ``a`` by the accurate tier (``_lse_exact.h.src``):
    ``out[i] = tau log(sum_j b[i, j] exp(a[i, j] / tau) / divisor[i])`` rounded once, and
    ``sign[i]`` the sum's sign; rows whose max or weights are not finite are left as
    they are (their fast results are exact).

    Parameters
    ----------
    a : (n, k) float32 or float64 memoryview, any strides             # IN
    b : memoryview of a's shape, any strides (zero for broadcast weights), or None   # IN
    tau : float
    divisor : (n,) float64, or None for none                         # IN
    out, sign : (n,) float64                                         # IN/OUT
    """
    cdef Py_ssize_t n = a.shape[0], k = a.shape[1], i
    cdef Py_ssize_t isa = sizeof(a_t), isb = sizeof(b_t)
    cdef double r, sg, dv
    cdef const b_t *bp
    if out.shape[0] != n or sign.shape[0] != n or (divisor is not None and divisor.shape[0] != n):
        raise ValueError(f"out, sign and divisor must have a's {n} rows")
    if b is not None and (b.shape[0] != n or b.shape[1] != k):
        raise ValueError(f"b must have a's shape {(n, k)}, got {(b.shape[0], b.shape[1])}")
    cdef int nt = lse_max_threads()
    if n == 0 or k == 0:
        return
    if n * k < MIN_PARALLEL:
        nt = 1
    with nogil:
        for i in prange(n, num_threads=nt, schedule="static"):
            bp = NULL if b is None else &b[i, 0]
            dv = 0.0 if divisor is None else divisor[i]
            r = _exact_row(&a[i, 0], a.strides[1] // isa, bp,
                           0 if b is None else b.strides[1] // isb, k, tau, dv, &sg)
            if r == r:
                out[i] = r
                sign[i] = sg


def simd():
    """The vector loops that large unweighted reductions run: ``"avx512"`` or
    ``"generic"`` (the portable loops, compiled for x86-64-v3, v4 and baseline where
    the compiler can; ``LSECORE_SIMD=generic`` in the environment selects them)."""
    return "avx512" if lse_simd_avx512() else "generic"


def build_info():
    """What this build of the kernel compiled in and what it runs here.

    Returns
    -------
    dict
        ``openmp`` (bool: threads compiled in), ``simd_compiled`` (the vector loops
        compiled in: ``"avx512"`` and the portable ``"generic"`` ones, built for
        x86-64-v4, v3 and baseline where the compiler can, ``"generic[x86-64-v4,v3]"``),
        ``simd`` (the loops chosen on this CPU, see `simd`) and ``max_threads``.
    """
    generic = "generic[x86-64-v4,v3]" if lse_built_clones() else "generic"
    return {
        "openmp": bool(lse_built_openmp()),
        "simd_compiled": (["avx512"] if lse_built_avx512() else []) + [generic],
        "simd": simd(),
        "max_threads": max_threads(),
    }


def max_threads():
    """The number of threads a large reduction uses (OpenMP's, 1 without OpenMP)."""
    return lse_max_threads()


cdef extern from *:
    """
    /* Sets the threads later parallel loops of the calling thread use (no-op without OpenMP). */
    static void lse_set_max_threads(int n)
    {
    #ifdef _OPENMP
        omp_set_num_threads(n);
    #else
        (void)n;
    #endif
    }
    """
    void lse_set_max_threads(int n) nogil


def set_max_threads(int n):
    """Set the threads that the calling thread's large reductions use from now on (OpenMP's
    ``omp_set_num_threads``; no effect without OpenMP) and return the previous number, to
    restore it with: ``previous = set_max_threads(4)``, then ``set_max_threads(previous)``."""
    if n < 1:
        raise ValueError(f"set_max_threads: the number of threads must be at least 1; got {n}")
    cdef int previous = lse_max_threads()
    lse_set_max_threads(n)
    return previous


cdef extern from "_lse_xla.h" nogil:
    ctypedef struct XLA_FFI_CallFrame:
        pass
    ctypedef struct XLA_FFI_Error:
        pass
    ctypedef int (*lse_xla_rows_fn)(int f64, const void *x, void *out, Py_ssize_t rows,
                                    Py_ssize_t n, double tau, int flag) except -1 nogil
    XLA_FFI_Error *lse_xla_call(XLA_FFI_CallFrame *frame, lse_xla_rows_fn rows, int flag)


cdef int _finalized_rows(const a_t *x, Py_ssize_t rows, Py_ssize_t n, double tau, double divisor,
                         double *out, unsigned char *refine) except -1 nogil:
    """`reduce_finalized` with ``exact`` of the C-contiguous rows ``x`` into ``out``, on
    the view `lsecore.reduce_finalized` takes of them, so that the bits are its bits."""
    cdef double inv_tau = 1.0 / tau
    # float32 rows whose log-sum-exp is rounded to float32 (see reduce_finalized)
    cdef lse_precision precision = (LSE_COARSE_FLOAT32 if a_t is float and divisor == 0.0
                                    else LSE_EXACT)
    cdef Tolerance tol = _tolerance(sizeof(a_t), precision == LSE_COARSE_FLOAT32, False)
    # one element a row: its elements as the columns of one row, as lsecore's run plan has it
    cdef View va = View(1, 1, rows, rows, rows, 1) if n == 1 else View(rows, n, 1, n, 1, 1)
    _run_final(x, va, inv_tau, _low_part(tau, inv_tau), tau, divisor, out, precision, &tol,
               refine)
    _recompute_flagged(x, va, tau, divisor, out, refine)
    return 0


cdef int _xla_rows(int f64, const void *x, void *out, Py_ssize_t rows, Py_ssize_t n,
                   double tau, int mean) except -1 nogil:
    """The ``lse_xla_rows_fn`` of ``_lse_xla.h``: float32 results go through float64 ones."""
    cdef double divisor = ((<double> n if n else NAN) if mean else 0.0)
    cdef double *res = <double *> out if f64 else <double *> malloc(rows * sizeof(double))
    cdef unsigned char *refine = <unsigned char *> malloc(rows)
    cdef Py_ssize_t j
    if res == NULL or refine == NULL:
        if not f64:
            free(res)
        free(refine)
        return -1
    if n == 0:
        # the sum of nothing (the mean of nothing: nan)
        for j in range(rows):
            res[j] = NAN if mean else -INFINITY
    elif f64:
        _finalized_rows(<const double *> x, rows, n, tau, divisor, res, refine)
    else:
        _finalized_rows(<const float *> x, rows, n, tau, divisor, res, refine)
    free(refine)
    if not f64:
        for j in range(rows):
            (<float *> out)[j] = <float> res[j]
        free(res)
    return 0


cdef int _xla_softmax_rows(int f64, const void *x, void *out, Py_ssize_t rows, Py_ssize_t n,
                           double tau, int log_mode) except -1 nogil:
    """The ``lse_xla_rows_fn`` of the softmax (``log_mode``: log_softmax): `softmax_rows`."""
    if f64:
        return _softmax_rows(<const double *> x, NULL, <double *> out, rows, n, tau, log_mode)
    return _softmax_rows(<const float *> x, NULL, <float *> out, rows, n, tau, log_mode)


cdef XLA_FFI_Error *_xla_logsumexp(XLA_FFI_CallFrame *frame) noexcept nogil:
    return lse_xla_call(frame, _xla_rows, 0)


cdef XLA_FFI_Error *_xla_logmeanexp(XLA_FFI_CallFrame *frame) noexcept nogil:
    return lse_xla_call(frame, _xla_rows, 1)


cdef XLA_FFI_Error *_xla_softmax(XLA_FFI_CallFrame *frame) noexcept nogil:
    return lse_xla_call(frame, _xla_softmax_rows, 0)


cdef XLA_FFI_Error *_xla_log_softmax(XLA_FFI_CallFrame *frame) noexcept nogil:
    return lse_xla_call(frame, _xla_softmax_rows, 1)


def xla_handlers():
    """The kernel's XLA FFI handlers (API version 1, CPU), by the custom-call target names
    to register them under with ``jax.ffi.register_ffi_target``.

    Returns
    -------
    dict of str to PyCapsule
        ``lsearray_logsumexp`` and ``lsearray_logmeanexp``: the log-sum-exp (log-mean-exp)
        of a float32/float64 array over its last axis at the float64 attribute ``tau``,
        in its dtype, bit for bit `reduce_finalized`'s; ``lsearray_softmax`` and
        ``lsearray_log_softmax``: its softmax (log_softmax) over the last axis, bit for
        bit `softmax_rows`'.
    """
    return {"lsearray_logsumexp": PyCapsule_New(<void *> _xla_logsumexp, NULL, NULL),
            "lsearray_logmeanexp": PyCapsule_New(<void *> _xla_logmeanexp, NULL, NULL),
            "lsearray_softmax": PyCapsule_New(<void *> _xla_softmax, NULL, NULL),
            "lsearray_log_softmax": PyCapsule_New(<void *> _xla_log_softmax, NULL, NULL)}


cdef extern from "_lse_diff.h" nogil:
    void lse_logdiffexp_d(const double *x, Py_ssize_t sx, const double *y, Py_ssize_t sy,
                          double *out, Py_ssize_t so, double *sign, Py_ssize_t ss,
                          Py_ssize_t n, double tau)
    void lse_logdiffexp_f(const float *x, Py_ssize_t sx, const float *y, Py_ssize_t sy,
                          float *out, Py_ssize_t so, float *sign, Py_ssize_t ss,
                          Py_ssize_t n, double tau)


def logdiffexp(const a_t[:] x1 not None, const a_t[:] x2 not None, a_t[:] out not None,
               a_t[:] sign, double tau):
    """Write ``tau log(exp(x1 / tau) - exp(x2 / tau))`` into ``out``, elementwise.

    ``x1 + tau log1mexp((x2 - x1) / tau)`` with the difference, the exp and the logs
    carried in double-double, rounded once to ``out``'s dtype. Without ``sign``,
    ``x1 < x2`` gives nan; with it, the log of ``|exp(x1 / tau) - exp(x2 / tau)|`` and its
    sign (+1, -1, 0 where equal, nan where the result is nan). Equal arguments give
    ``-inf``, but two ``+inf`` give nan; ``x2 = -inf`` gives ``x1``; a nan gives nan.

    Parameters
    ----------
    x1, x2 : float32 or float64 memoryviews of out's length, any strides (0 too)   # IN
    out : memoryview of x1's dtype, any strides                        # OUT
    sign : memoryview of x1's dtype and out's length, or None           # OUT
    tau : float
        The temperature, positive and finite.
    """
    cdef Py_ssize_t n = out.shape[0], isz = sizeof(a_t), ss = 0
    cdef a_t *sp = NULL
    if x1.shape[0] != n or x2.shape[0] != n:
        raise ValueError(f"x1 and x2 must have the length of out ({n}), got "
                         f"{x1.shape[0]} and {x2.shape[0]}")
    if sign is not None:
        if sign.shape[0] != n:
            raise ValueError(f"sign must have the length of out ({n}), got {sign.shape[0]}")
        if n > 0:
            sp = &sign[0]
            ss = sign.strides[0] // isz
    if n == 0:
        return
    cdef Py_ssize_t s1 = x1.strides[0] // isz, s2 = x2.strides[0] // isz, so = out.strides[0] // isz
    cdef Py_ssize_t k, i0, nb = (n + PAIR_BLOCK - 1) // PAIR_BLOCK
    # an element costs many times logaddexp's (double-double throughout): threads pay sooner
    cdef int nt = 1 if n < MIN_PARALLEL // 8 else lse_max_threads()
    with nogil:
        for k in prange(nb, num_threads=nt, schedule="static"):
            i0 = k * PAIR_BLOCK
            if a_t is double:
                lse_logdiffexp_d(&x1[0] + i0 * s1, s1, &x2[0] + i0 * s2, s2, &out[0] + i0 * so, so,
                                 NULL if sp == NULL else sp + i0 * ss, ss,
                                 min(<Py_ssize_t> PAIR_BLOCK, n - i0), tau)
            else:
                lse_logdiffexp_f(&x1[0] + i0 * s1, s1, &x2[0] + i0 * s2, s2, &out[0] + i0 * so, so,
                                 NULL if sp == NULL else sp + i0 * ss, ss,
                                 min(<Py_ssize_t> PAIR_BLOCK, n - i0), tau)


# ---- logmatmulexp ----------------------------------------------------------------------------

cdef extern from "_lse_matmul.h" nogil:
    void lse_exp_shifted_d(const double *x, Py_ssize_t sx, const double *s, Py_ssize_t ss,
                           double *out, Py_ssize_t so, Py_ssize_t n)
    void lse_exp_shifted_f(const float *x, Py_ssize_t sx, const double *s, Py_ssize_t ss,
                           double *out, Py_ssize_t so, Py_ssize_t n)
    Py_ssize_t lse_mm_finish_row_d(const double *p, Py_ssize_t sp, Py_ssize_t n, double ma,
                                   double sa, const double *mb, const double *sb,
                                   unsigned char *bad, double *out, Py_ssize_t so, double gap,
                                   double log_tiny)
    Py_ssize_t lse_mm_finish_row_f(const double *p, Py_ssize_t sp, Py_ssize_t n, double ma,
                                   double sa, const double *mb, const double *sb,
                                   unsigned char *bad, float *out, Py_ssize_t so, double gap,
                                   double log_tiny)


def exp_shifted(const a_t[:, :, :] x not None, const double[:, :, :] shift not None,
                double[:, :, :] out not None):
    """Write ``exp(x - shift)`` into ``out``, the rounding error of the difference carried.

    ``shift`` holds integers (0, or rounded maxima) and has ``x``'s shape, broadcast (a
    zero stride) along one of the last two axes. ``x - shift`` is computed in float64,
    ``x - (d + shift)`` is its rounding error exactly (``shift`` an integer) and joins the
    exp's argument: within 0.7 ulp of ``exp(x - shift)`` however large ``|x - shift|``.
    -inf gives 0, +inf gives +inf, nan stays nan; arguments above 709 give +inf (only
    shifts of 0, for rows whose max is not finite, reach them).

    Parameters
    ----------
    x : float32 or float64 memoryview (B, r, c), any strides              # IN
    shift : float64 memoryview of x's shape, any strides                   # IN
    out : float64 memoryview of x's shape, any strides                     # OUT
    """
    cdef Py_ssize_t nb = x.shape[0], nr = x.shape[1], nc = x.shape[2]
    for name, shape in (("shift", (shift.shape[0], shift.shape[1], shift.shape[2])),
                        ("out", (out.shape[0], out.shape[1], out.shape[2]))):
        if shape != (nb, nr, nc):
            raise ValueError(f"{name} must have x's shape {(nb, nr, nc)}, got {shape}")
    if nb == 0 or nr == 0 or nc == 0:
        return
    cdef Py_ssize_t isz = sizeof(a_t), ax = 2, ay = 1
    # the loop runs along the axis where x is contiguous (a transposed view's rows)
    if x.strides[2] != isz and x.strides[1] == isz:
        ax, ay = 1, 2
    cdef Py_ssize_t n = x.shape[ax], rows = x.shape[ay]
    cdef Py_ssize_t xb = x.strides[0] // isz, xr = x.strides[ay] // isz, xi = x.strides[ax] // isz
    cdef Py_ssize_t sb = shift.strides[0] // 8, sr = shift.strides[ay] // 8, si = shift.strides[ax] // 8
    cdef Py_ssize_t ob = out.strides[0] // 8, or_ = out.strides[ay] // 8, oi = out.strides[ax] // 8
    cdef const a_t *xp = &x[0, 0, 0]
    cdef const double *sp = &shift[0, 0, 0]
    cdef double *op = &out[0, 0, 0]
    cdef Py_ssize_t k, t, i
    cdef int nt = 1 if nb * nr * nc < MIN_PARALLEL else lse_max_threads()
    with nogil:
        for k in prange(nb * rows, num_threads=nt, schedule="static"):
            t = k // rows
            i = k - t * rows
            if a_t is double:
                lse_exp_shifted_d(xp + t * xb + i * xr, xi, sp + t * sb + i * sr, si,
                                  op + t * ob + i * or_, oi, n)
            else:
                lse_exp_shifted_f(xp + t * xb + i * xr, xi, sp + t * sb + i * sr, si,
                                  op + t * ob + i * or_, oi, n)


def matmul_finish(const double[:, :, :] p not None, const double[:, :] ma not None,
                  const double[:, :] mb not None, const double[:, :] sa not None,
                  const double[:, :] sb not None, unsigned char[:, :, ::1] bad not None,
                  a_t[:, :, :] out not None, double gap, double log_tiny):
    """Write a tile's result from its shifted products into ``out`` and flag the entries
    that must be recomputed; returns how many are flagged.

    ``out[t, i, j]`` is ``log p + (sa[t, i] + sb[t, j])`` (the log under 1 ulp) rounded once
    to ``out``'s dtype, and ``bad[t, i, j]`` 1 where ``log p < max(-gap max(|r|, 1),
    -log_tiny)`` (``r`` the float64 sum) or either is nan; where ``ma[t, i]`` or ``mb[t, j]``
    (the row's and the column's maxima, whose shifts are ``sa`` and ``sb``) is not finite,
    ``bad`` is 1 exactly where their sum is +inf. ``out`` may be ``p`` itself.

    Parameters
    ----------
    p : float64 (B, n, m), any strides: the shifted products                   # IN
    ma, sa : float64 (B, n), any strides                                         # IN
    mb, sb : float64 (B, m), any strides                                         # IN
    bad : uint8 of p's shape, C-contiguous                                       # OUT
    out : float32 or float64 of p's shape, any strides                           # OUT
    gap, log_tiny : float
    """
    cdef Py_ssize_t nb = p.shape[0], n = p.shape[1], m = p.shape[2]
    for name, got, shape in (("ma", (ma.shape[0], ma.shape[1]), (nb, n)),
                             ("sa", (sa.shape[0], sa.shape[1]), (nb, n)),
                             ("mb", (mb.shape[0], mb.shape[1]), (nb, m)),
                             ("sb", (sb.shape[0], sb.shape[1]), (nb, m)),
                             ("bad", (bad.shape[0], bad.shape[1], bad.shape[2]), (nb, n, m)),
                             ("out", (out.shape[0], out.shape[1], out.shape[2]), (nb, n, m))):
        if got != shape:
            raise ValueError(f"{name} must have shape {shape}, got {got}")
    if nb == 0 or n == 0 or m == 0:
        return 0
    # the columns' maxima and shifts, contiguous for the row loop
    cdef const double[:, ::1] mbc = np.ascontiguousarray(mb), sbc = np.ascontiguousarray(sb)
    cdef Py_ssize_t isz = sizeof(a_t), ob = out.strides[0] // isz, or_ = out.strides[1] // isz
    cdef Py_ssize_t oi = out.strides[2] // isz
    cdef a_t *op = &out[0, 0, 0]
    cdef const double *pp = &p[0, 0, 0]
    cdef Py_ssize_t lb = p.strides[0] // 8, lr = p.strides[1] // 8, li = p.strides[2] // 8
    cdef Py_ssize_t k, t, i, flagged = 0
    cdef int nt = 1 if nb * n * m < MIN_PARALLEL else lse_max_threads()
    with nogil:
        for k in prange(nb * n, num_threads=nt, schedule="static"):
            t = k // n
            i = k - t * n
            if a_t is double:
                flagged += lse_mm_finish_row_d(pp + t * lb + i * lr, li, m, ma[t, i], sa[t, i], &mbc[t, 0],
                                               &sbc[t, 0], &bad[t, i, 0], op + t * ob + i * or_, oi,
                                               gap, log_tiny)
            else:
                flagged += lse_mm_finish_row_f(pp + t * lb + i * lr, li, m, ma[t, i], sa[t, i], &mbc[t, 0],
                                               &sbc[t, 0], &bad[t, i, 0], op + t * ob + i * or_, oi,
                                               gap, log_tiny)
    return flagged


cdef extern from "_lse_segment.h" nogil:
    void lse_segment_id_range(const int64_t *ids, Py_ssize_t n, int64_t *lo, int64_t *hi)
    void lse_segment_rows_d(const double *a, Py_ssize_t sr, Py_ssize_t sj, const double *b,
                            Py_ssize_t br, Py_ssize_t bj, const int64_t *seg, Py_ssize_t nr,
                            Py_ssize_t nj, double *P, double inv_tau, double itl,
                            const double *top)
    void lse_segment_rows_f(const float *a, Py_ssize_t sr, Py_ssize_t sj, const double *b,
                            Py_ssize_t br, Py_ssize_t bj, const int64_t *seg, Py_ssize_t nr,
                            Py_ssize_t nj, double *P, double inv_tau, double itl,
                            const double *top)
    void lse_segment_runs_d(const double *a, Py_ssize_t sr, Py_ssize_t sj, const double *b,
                            Py_ssize_t br, Py_ssize_t bj, const int64_t *seg, Py_ssize_t nr,
                            Py_ssize_t nj, double *P, double *tile, double inv_tau, double itl)
    void lse_segment_runs_f(const float *a, Py_ssize_t sr, Py_ssize_t sj, const double *b,
                            Py_ssize_t br, Py_ssize_t bj, const int64_t *seg, Py_ssize_t nr,
                            Py_ssize_t nj, double *P, double *tile, double inv_tau, double itl)
    void lse_segment_gather(const double *msl, const int64_t *seg, Py_ssize_t n, double *g,
                            Py_ssize_t width)
    void lse_segment_normalize_d(const double *a, Py_ssize_t sa, double *out, Py_ssize_t so,
                                 Py_ssize_t n, const double *m, const double *s,
                                 const double *sl, double tau, int log_mode)
    void lse_segment_normalize_f(const float *a, Py_ssize_t sa, float *out, Py_ssize_t so,
                                 Py_ssize_t n, const double *m, const double *s,
                                 const double *sl, double tau, int log_mode)


cdef enum:
    # A segment reduction's rows are split into at most SEGMENT_CHUNKS chunks of at least
    # SEGMENT_PER_PARTIAL elements per partial they fill (each chunk has a partial of every
    # segment and column: 32 bytes each), merged in order after: the same chunks on any number
    # of threads, and their partials at most a sixth of a float64 input's size.
    SEGMENT_CHUNKS = 8
    SEGMENT_PER_PARTIAL = 24


cdef void _segment_task(const a_t *a, View va, const double *b, View vb, const int64_t *seg,
                        Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t o, double *P, double *tile,
                        double inv_tau, double itl, bint runs, const double *top) noexcept nogil:
    """Merge rows r0:r1 of the outer index o of ``a`` (and ``b``) into the partials ``P``
    (nseg, n2, 4): by runs (``tile``: 4 LSE_TILE doubles of scratch), or by blocks (``top``:
    the (nseg, n2) maxima the partials come in with, or NULL)."""
    cdef const a_t *ap = a + o * va.s0 + r0 * va.s1
    cdef const double *bp = NULL
    if b != NULL:
        bp = b + o * vb.s0 + r0 * vb.s1
    if runs:
        if a_t is double:
            lse_segment_runs_d(ap, va.s1, va.s2, bp, vb.s1, vb.s2, seg + r0, r1 - r0, va.n2, P,
                               tile, inv_tau, itl)
        else:
            lse_segment_runs_f(ap, va.s1, va.s2, bp, vb.s1, vb.s2, seg + r0, r1 - r0, va.n2, P,
                               tile, inv_tau, itl)
    elif a_t is double:
        lse_segment_rows_d(ap, va.s1, va.s2, bp, vb.s1, vb.s2, seg + r0, r1 - r0, va.n2, P,
                           inv_tau, itl, top)
    else:
        lse_segment_rows_f(ap, va.s1, va.s2, bp, vb.s1, vb.s2, seg + r0, r1 - r0, va.n2, P,
                           inv_tau, itl, top)


cdef inline void _empty_partials(double *p, Py_ssize_t n, const double *top) noexcept nogil:
    """Set the n partials (m, w, t, c) at p to empty ones: (-inf, 0, 0, 0), or, with the
    maxima ``top`` (not NULL), (top[k], 0, 0, 0)."""
    cdef Py_ssize_t k
    for k in range(n):
        p[4 * k] = -INFINITY if top == NULL else top[k]
        p[4 * k + 1] = 0.0
        p[4 * k + 2] = 0.0
        p[4 * k + 3] = 0.0


cdef inline void _merge_partials(double *p, const double *q, Py_ssize_t n, double inv_tau,
                                 double itl) noexcept nogil:
    """Merge the n partials at q into those at p, one by one."""
    cdef Py_ssize_t k
    for k in range(n):
        lse_merge(p + 4 * k, p + 4 * k + 1, p + 4 * k + 2, p + 4 * k + 3,
                  q[4 * k], q[4 * k + 1], q[4 * k + 2], q[4 * k + 3], inv_tau, itl)


def segment_partials(const a_t[:, :, :] a not None, const int64_t[::1] ids not None,
                     double[:, :, :, ::1] P not None, double tau, b=None, bint runs=False,
                     const double[:, :, ::1] top=None):
    """Merge the partials of ``a``'s middle axis grouped by ``ids`` into ``P``, reading each
    element once: ``P[o, k, i]`` is the partial ``(m, w, t, c)`` of ``a[o, r, i]`` over the
    rows ``r`` with ``ids[r] == k``.

    Parameters
    ----------
    a : (n0, n1, n2) float32 or float64 memoryview, any strides       # IN
    ids : (n1,) int64, every id in [0, nseg)                          # IN
    P : (n0, nseg, n2, 4) C-contiguous float64                        # IN/OUT
        Partials to merge into; (-inf, 0, 0, 0) for empty ones.
    tau : float
        The temperature, > 0.
    b : (n0, n1, n2) float64 memoryview of weights, any strides (zero for broadcast), or None
    runs : bool
        Reduce runs of equal ids with the row and column loops: fast where the ids are
        sorted, right whatever their order. Otherwise blocks of rows go through
        ``lse_segment_rows`` (``_lse_segment.h.src``).
    top : (n0, nseg, n2) C-contiguous float64, optional                # IN
        Each segment's max, known beforehand, with which ``P`` comes in as its ``m`` (and
        nothing else): the partials keep it, with the maximal terms in ``w``, as a softmax
        needs.

    Rows split into the same chunks on any number of threads, so that the bits of the
    partials do not depend on the thread count.
    """
    cdef View va = _view(a.shape, a.strides, sizeof(a_t))
    cdef View vb = va
    cdef const double[:, :, :] bv
    cdef const double *bp = NULL
    cdef Py_ssize_t n0 = a.shape[0], n1 = a.shape[1], n2 = a.shape[2], nseg = P.shape[1]
    cdef Py_ssize_t size = nseg * n2 * 4, nchunks, per, ntasks, k, o, q, r0, r1, j
    cdef double inv_tau = 1.0 / tau, itl = _low_part(tau, 1.0 / tau)
    cdef double *buf
    cdef double *dst
    cdef const double *tp = NULL
    cdef int nt = lse_max_threads()
    if ids.shape[0] != n1:
        raise ValueError(f"ids must have a's {n1} rows, got {ids.shape[0]}")
    if P.shape[0] != n0 or P.shape[2] != n2 or P.shape[3] != 4:
        raise ValueError(f"P must have shape {(n0, nseg, n2, 4)}, got "
                         f"{(P.shape[0], P.shape[1], P.shape[2], P.shape[3])}")
    if b is not None:
        bv = b
        if bv.shape[0] != n0 or bv.shape[1] != n1 or bv.shape[2] != n2:
            raise ValueError(f"b must have a's shape {(n0, n1, n2)}")
        vb = _view(bv.shape, bv.strides, sizeof(double))
    if top is not None and (top.shape[0] != n0 or top.shape[1] != nseg or top.shape[2] != n2):
        raise ValueError(f"top must have shape {(n0, nseg, n2)}")
    if n0 * n1 * n2 == 0:
        return
    if b is not None:
        bp = &bv[0, 0, 0]
    if top is not None:
        tp = &top[0, 0, 0]
    nchunks = max(1, min(<Py_ssize_t> SEGMENT_CHUNKS,
                         n1 * n2 // max(<Py_ssize_t> SPLIT_MIN, SEGMENT_PER_PARTIAL * nseg * n2)))
    per = (n1 + nchunks - 1) // nchunks
    ntasks = n0 * nchunks
    if n0 * n1 * n2 < MIN_PARALLEL:
        nt = 1
    if nt == 1:
        # one chunk after the other, each merged as soon as it is done: the same merges, in
        # the same order, as the threads' below, with one chunk's partials in memory
        buf = <double *> malloc(((size if nchunks > 1 else 0) + 4 * LSE_TILE) * sizeof(double))
        if buf == NULL:
            raise MemoryError()
        with nogil:
            for o in range(n0):
                for q in range(nchunks):
                    r0 = q * per
                    r1 = min(r0 + per, n1)
                    if r0 >= r1:
                        continue
                    dst = &P[o, 0, 0, 0] if q == 0 else buf
                    if q > 0:  # empty (but for the maxima)
                        _empty_partials(buf, nseg * n2, NULL if tp == NULL else tp + o * nseg * n2)
                    _segment_task(&a[0, 0, 0], va, bp, vb, &ids[0], r0, r1, o, dst,
                                  buf + (size if nchunks > 1 else 0), inv_tau, itl, runs,
                                  NULL if tp == NULL else tp + o * nseg * n2)
                    if q > 0:
                        _merge_partials(&P[o, 0, 0, 0], buf, nseg * n2, inv_tau, itl)
        free(buf)
        return
    # chunk 0 of each outer index merges into P, the others into partials of their own; then
    # every task's tile scratch
    buf = <double *> malloc(((nchunks - 1) * n0 * size + ntasks * 4 * LSE_TILE) * sizeof(double))
    if buf == NULL:
        raise MemoryError()
    with nogil:
        for q in range(1, nchunks):
            for o in range(n0):
                _empty_partials(buf + ((q - 1) * n0 + o) * size, nseg * n2,
                                NULL if tp == NULL else tp + o * nseg * n2)
        for k in prange(ntasks, num_threads=nt, schedule="dynamic"):
            o = k // nchunks
            q = k % nchunks
            r0 = q * per
            r1 = min(r0 + per, n1)
            dst = &P[o, 0, 0, 0] if q == 0 else buf + ((q - 1) * n0 + o) * size
            if r0 < r1:
                _segment_task(&a[0, 0, 0], va, bp, vb, &ids[0], r0, r1, o, dst,
                              buf + (nchunks - 1) * n0 * size + k * 4 * LSE_TILE, inv_tau, itl,
                              runs, NULL if tp == NULL else tp + o * nseg * n2)
        for q in range(1, nchunks):
            for o in prange(n0, num_threads=nt, schedule="static"):
                _merge_partials(&P[o, 0, 0, 0], buf + ((q - 1) * n0 + o) * size, nseg * n2,
                                inv_tau, itl)
    free(buf)


def segment_finalize(const double[:, ::1] P not None, double tau, double[::1] out not None,
                     unsigned char[::1] refine not None, int itemsize, bint float32_result,
                     double count, double max_weight=0.0):
    """Finalize the (n, 4) partials ``P`` of `segment_partials` into ``out = m + tau log S``
    (nan where a weighted sum is negative), and flag in ``refine`` the results that may be off
    by more than an ulp, as `refine_flags` does for ``count`` elements a segment at most and
    weights up to ``max_weight`` in magnitude (0: none)."""
    cdef Py_ssize_t n = P.shape[0], j0, j, nb
    cdef double tm[64]
    cdef double tw[64]
    cdef double tt[64]
    cdef double tc[64]
    cdef double sg[64]
    cdef Tolerance tol = _tolerance(itemsize, float32_result, max_weight != 0.0)
    if P.shape[1] != 4 or out.shape[0] != n or refine.shape[0] != n:
        raise ValueError(f"P must be (n, 4) and out and refine of length n; got P "
                         f"{(P.shape[0], P.shape[1])}, out {out.shape[0]}, refine {refine.shape[0]}")
    with nogil:
        for j0 in range(0, n, 64):
            nb = min(<Py_ssize_t> 64, n - j0)
            for j in range(nb):
                tm[j] = P[j0 + j, 0]
                tw[j] = P[j0 + j, 1]
                tt[j] = P[j0 + j, 2]
                tc[j] = P[j0 + j, 3]
            lse_finalize(nb, tm, tw, tt, tc, NULL, tau, &out[j0], sg, NULL)
            for j in range(nb):
                refine[j0 + j] = lse_refine_flag(tm[j], tw[j], tt[j], tc[j], tau, out[j0 + j],
                                                 tol.eps_neg, tol.eps_pos, tol.bits, count, 1,
                                                 max_weight * 2.0 ** -1021)
                if sg[j] < 0:
                    out[j0 + j] = NAN


def segment_exact(const a_t[:, :, :] a not None, const int64_t[::1] rows not None,
                  const int64_t[::1] start not None, const int64_t[:, ::1] flagged not None,
                  double tau, double[::1] out not None, b=None):
    """Recompute by the accurate tier the flagged segment results: ``flagged[q] = (o, k, i)``
    is ``out[q]``'s output, the log-sum-exp of ``a[o, r, i]`` (weights ``b[o, r, i]``) over
    the rows ``rows[start[k]:start[k + 1]]`` of segment ``k``; results the accurate tier
    leaves (nan: a slice it does not take) keep their fast value."""
    cdef Py_ssize_t nq = flagged.shape[0], q, o, k, i, n, r, longest = 0, nb = a.shape[0]
    cdef Py_ssize_t isa = sizeof(a_t)
    cdef const double[:, :, :] bv
    cdef bint weighted = b is not None
    cdef double *buf
    cdef double *xs
    cdef double res, sg
    cdef int nt = lse_max_threads()
    if out.shape[0] != nq or start.shape[0] < 1:
        raise ValueError("out must have one element per flagged result")
    if weighted:
        bv = b
    for k in range(start.shape[0] - 1):
        longest = max(longest, start[k + 1] - start[k])
    if nq == 0 or longest == 0:
        return
    buf = <double *> malloc(2 * nt * longest * sizeof(double))
    if buf == NULL:
        raise MemoryError()
    with nogil:
        for q in prange(nq, num_threads=nt, schedule="dynamic"):
            o = flagged[q, 0]
            k = flagged[q, 1]
            i = flagged[q, 2]
            n = start[k + 1] - start[k]
            xs = buf + 2 * lse_thread_num() * longest
            for r in range(n):
                xs[r] = a[o, rows[start[k] + r], i]
                if weighted:
                    xs[longest + r] = bv[o, rows[start[k] + r], i]
            res = lse_exact_slice_dd(xs, 1, xs + longest if weighted else NULL, 1, n, tau, 0.0,
                                     &sg)
            if res == res:
                out[q] = NAN if sg < 0 else res
    free(buf)


def segment_normalize(const a_t[:, :, :] a not None, const int64_t[::1] ids not None,
                      const double[:, :, :, ::1] msl not None, a_t[:, :, :] out not None,
                      double tau, bint log_mode):
    """softmax (or, with ``log_mode``, log_softmax) within segments: ``out[o, r, i]`` from
    ``a[o, r, i]`` and its segment's ``(m, s, s_low) = msl[o, ids[r], i]`` (the max, the sum
    of the terms against it or, with ``log_mode``, its log, and the sum's rounding error), as
    ``lse_segment_normalize`` (``_lse_segment.h.src``) writes it. Rows go in blocks whose
    segments' triples are gathered first, so that a column of ``a`` runs through a vector
    loop."""
    cdef Py_ssize_t n0 = a.shape[0], n1 = a.shape[1], n2 = a.shape[2], nseg = msl.shape[1]
    cdef Py_ssize_t isz = sizeof(a_t), nblocks, k, o, r0, r1, r, g, i, width
    cdef Py_ssize_t ar = a.strides[1] // isz, ai = a.strides[2] // isz
    cdef Py_ssize_t orr = out.strides[1] // isz, oi = out.strides[2] // isz
    cdef int nt = lse_max_threads()
    cdef double *buf
    cdef double *gm
    if out.shape[0] != n0 or out.shape[1] != n1 or out.shape[2] != n2 or ids.shape[0] != n1:
        raise ValueError("out must have a's shape, ids its middle axis' length")
    if msl.shape[0] != n0 or msl.shape[2] != n2 or msl.shape[3] != 3:
        raise ValueError(f"msl must have shape {(n0, nseg, n2, 3)}")
    if n0 * n1 * n2 == 0:
        return
    if n0 * n1 * n2 < MIN_PARALLEL:
        nt = 1
    nblocks = (n1 + MASK_BLOCK - 1) // MASK_BLOCK
    width = max(<Py_ssize_t> MASK_BLOCK, n2)  # a block's gathered triples, or one row's
    buf = <double *> malloc(3 * nt * width * sizeof(double))
    if buf == NULL:
        raise MemoryError()
    with nogil:
        for k in prange(n0 * nblocks, num_threads=nt, schedule="static"):
            o = k // nblocks
            r0 = (k % nblocks) * MASK_BLOCK
            r1 = min(r0 + MASK_BLOCK, n1)
            gm = buf + 3 * width * lse_thread_num()
            if n2 == 1:  # a block of a column, its segments' triples side by side
                lse_segment_gather(&msl[o, 0, 0, 0], &ids[r0], r1 - r0, gm, width)
                if a_t is double:
                    lse_segment_normalize_d(&a[o, r0, 0], ar, &out[o, r0, 0], orr, r1 - r0, gm,
                                            gm + width, gm + 2 * width, tau, log_mode)
                else:
                    lse_segment_normalize_f(&a[o, r0, 0], ar, &out[o, r0, 0], orr, r1 - r0, gm,
                                            gm + width, gm + 2 * width, tau, log_mode)
            else:
                for r in range(r0, r1):
                    g = ids[r]
                    for i in range(n2):
                        gm[i] = msl[o, g, i, 0]
                        gm[width + i] = msl[o, g, i, 1]
                        gm[2 * width + i] = msl[o, g, i, 2]
                    if a_t is double:
                        lse_segment_normalize_d(&a[o, r, 0], ai, &out[o, r, 0], oi, n2, gm,
                                                gm + width, gm + 2 * width, tau, log_mode)
                    else:
                        lse_segment_normalize_f(&a[o, r, 0], ai, &out[o, r, 0], oi, n2, gm,
                                                gm + width, gm + 2 * width, tau, log_mode)
    free(buf)


def id_range(const int64_t[::1] ids not None):
    """``(min(ids), max(ids))`` in one read, as Python ints; ``(0, -1)`` for no ids (the range
    of segment ids that a segment reduction checks before it writes a partial)."""
    cdef int64_t lo, hi
    if ids.shape[0] == 0:
        return 0, -1
    with nogil:
        lse_segment_id_range(&ids[0], ids.shape[0], &lo, &hi)
    return lo, hi
