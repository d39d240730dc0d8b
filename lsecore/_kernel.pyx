"""Log-sum-exp partials of 3-D strided views, accumulated in one read with OpenMP threads."""

from cython.parallel cimport prange
from libc.math cimport INFINITY, NAN, isnan
from libc.stdlib cimport free, malloc

__all__ = ["accumulate", "accumulate_weighted", "finalize", "max_threads", "merge"]

ctypedef fused a_t:
    float
    double

ctypedef fused b_t:
    float
    double

cdef extern from "_lse_blocks.h" nogil:
    int LSE_TILE
    int lse_max_threads()
    void lse_merge(double *m, double *w, double *t, double *c,
                   double m2, double w2, double t2, double c2, double inv_tau)
    void lse_log_abs_sum(double w, double t, double c, double *lh, double *ll, double *sign)
    double lse_shift_add(double m, double tau, double lh, double ll)
    double lse_div_dd(double x, double d, double *lo)
    void lse_row_dd(const double *a, Py_ssize_t sa, const double *b, Py_ssize_t sb,
                    Py_ssize_t n, double inv_tau, double *m, double *w, double *t, double *c)
    void lse_row_ff(const float *a, Py_ssize_t sa, const float *b, Py_ssize_t sb,
                    Py_ssize_t n, double inv_tau, double *m, double *w, double *t, double *c)
    void lse_row_fd(const float *a, Py_ssize_t sa, const double *b, Py_ssize_t sb,
                    Py_ssize_t n, double inv_tau, double *m, double *w, double *t, double *c)
    void lse_row_df(const double *a, Py_ssize_t sa, const float *b, Py_ssize_t sb,
                    Py_ssize_t n, double inv_tau, double *m, double *w, double *t, double *c)
    void lse_cols_dd(const double *a, Py_ssize_t sr, Py_ssize_t si,
                     const double *b, Py_ssize_t br, Py_ssize_t bi,
                     Py_ssize_t nr, Py_ssize_t ni, double inv_tau,
                     double *m, double *w, double *t, double *c)
    void lse_cols_ff(const float *a, Py_ssize_t sr, Py_ssize_t si,
                     const float *b, Py_ssize_t br, Py_ssize_t bi,
                     Py_ssize_t nr, Py_ssize_t ni, double inv_tau,
                     double *m, double *w, double *t, double *c)
    void lse_cols_fd(const float *a, Py_ssize_t sr, Py_ssize_t si,
                     const double *b, Py_ssize_t br, Py_ssize_t bi,
                     Py_ssize_t nr, Py_ssize_t ni, double inv_tau,
                     double *m, double *w, double *t, double *c)
    void lse_cols_df(const double *a, Py_ssize_t sr, Py_ssize_t si,
                     const float *b, Py_ssize_t br, Py_ssize_t bi,
                     Py_ssize_t nr, Py_ssize_t ni, double inv_tau,
                     double *m, double *w, double *t, double *c)

cdef enum:
    # Below this many elements a call runs on one thread: waking a team costs more.
    MIN_PARALLEL = 1 << 16

cdef struct View:
    # A 3-D strided view (outer, reduced, inner); strides in elements.
    Py_ssize_t n0, n1, n2
    Py_ssize_t s0, s1, s2


cdef inline void _block(const a_t *a, const View *va, const b_t *b, const View *vb,
                        Py_ssize_t o, Py_ssize_t r0, Py_ssize_t r1,
                        Py_ssize_t i0, Py_ssize_t i1, double inv_tau,
                        double *m, double *w, double *t, double *c) noexcept nogil:
    """Merge the partials of a[o, r0:r1, i0:i1] into m[i0:i1], w[i0:i1], t[i0:i1]."""
    cdef const a_t *ap = a + o * va.s0 + r0 * va.s1 + i0 * va.s2
    cdef const b_t *bp = NULL
    cdef Py_ssize_t bs0 = 0, bs1 = 0, bs2 = 0
    if b != NULL:
        bp = b + o * vb.s0 + r0 * vb.s1 + i0 * vb.s2
        bs1 = vb.s1
        bs2 = vb.s2
    if i1 - i0 == 1:
        if a_t is double and b_t is double:
            lse_row_dd(ap, va.s1, bp, bs1, r1 - r0, inv_tau, m + i0, w + i0, t + i0, c + i0)
        elif a_t is float and b_t is float:
            lse_row_ff(ap, va.s1, bp, bs1, r1 - r0, inv_tau, m + i0, w + i0, t + i0, c + i0)
        elif a_t is float and b_t is double:
            lse_row_fd(ap, va.s1, bp, bs1, r1 - r0, inv_tau, m + i0, w + i0, t + i0, c + i0)
        else:
            lse_row_df(ap, va.s1, bp, bs1, r1 - r0, inv_tau, m + i0, w + i0, t + i0, c + i0)
    else:
        if a_t is double and b_t is double:
            lse_cols_dd(ap, va.s1, va.s2, bp, bs1, bs2, r1 - r0, i1 - i0, inv_tau,
                        m + i0, w + i0, t + i0, c + i0)
        elif a_t is float and b_t is float:
            lse_cols_ff(ap, va.s1, va.s2, bp, bs1, bs2, r1 - r0, i1 - i0, inv_tau,
                        m + i0, w + i0, t + i0, c + i0)
        elif a_t is float and b_t is double:
            lse_cols_fd(ap, va.s1, va.s2, bp, bs1, bs2, r1 - r0, i1 - i0, inv_tau,
                        m + i0, w + i0, t + i0, c + i0)
        else:
            lse_cols_df(ap, va.s1, va.s2, bp, bs1, bs2, r1 - r0, i1 - i0, inv_tau,
                        m + i0, w + i0, t + i0, c + i0)


cdef int _run(const a_t *a, View va, const b_t *b, View vb, double inv_tau,
              double *m, double *w, double *t, double *c) except -1 nogil:
    """Merge the partials of a 3-D view, reduced over its middle axis, into the
    (n0, n2) C-contiguous partial arrays m, w, t, c.

    Threads take whole output tiles when there are enough of them; otherwise each
    thread reduces a slice of the reduced axis into its own partials, merged after.
    """
    cdef Py_ssize_t tile = LSE_TILE if va.n2 > 1 else 1
    cdef Py_ssize_t ntiles = (va.n2 + tile - 1) // tile
    cdef Py_ssize_t ntasks = va.n0 * ntiles
    cdef Py_ssize_t nout = va.n0 * va.n2
    cdef int nt = lse_max_threads()
    cdef Py_ssize_t k, o, i0, i1, r0, r1, j, per, q
    cdef double *buf
    if va.n0 * va.n1 * va.n2 < MIN_PARALLEL:
        nt = 1
    if nt > 1 and ntasks < 2 * nt and va.n1 >= 2 * nt:
        # Few outputs, long reductions: split the reduced axis between threads.
        # buf holds nt partials (m, w, t, c) of nout elements each, one after the other.
        buf = <double *> malloc(4 * nt * nout * sizeof(double))
        if buf == NULL:
            with gil:
                raise MemoryError()
        for j in range(4 * nt * nout):
            buf[j] = 0.0
        for q in range(nt):
            for j in range(nout):
                buf[4 * q * nout + j] = -INFINITY
        per = (va.n1 + nt - 1) // nt
        for k in prange(nt * ntasks, num_threads=nt, schedule="static"):
            q = k // ntasks
            r0 = q * per
            r1 = min(r0 + per, va.n1)
            o = (k % ntasks) // ntiles
            i0 = ((k % ntasks) % ntiles) * tile
            i1 = min(i0 + tile, va.n2)
            if r0 < r1:
                _block(a, &va, b, &vb, o, r0, r1, i0, i1, inv_tau,
                       buf + 4 * q * nout + o * va.n2,
                       buf + (4 * q + 1) * nout + o * va.n2,
                       buf + (4 * q + 2) * nout + o * va.n2,
                       buf + (4 * q + 3) * nout + o * va.n2)
        for q in range(nt):
            for j in range(nout):
                lse_merge(m + j, w + j, t + j, c + j,
                          buf[4 * q * nout + j], buf[(4 * q + 1) * nout + j],
                          buf[(4 * q + 2) * nout + j], buf[(4 * q + 3) * nout + j], inv_tau)
        free(buf)
    else:
        for k in prange(ntasks, num_threads=nt, schedule="static"):
            o = k // ntiles
            i0 = (k % ntiles) * tile
            i1 = min(i0 + tile, va.n2)
            _block(a, &va, b, &vb, o, 0, va.n1, i0, i1, inv_tau,
                   m + o * va.n2, w + o * va.n2, t + o * va.n2, c + o * va.n2)
    return 0


cdef inline View _view(const Py_ssize_t *shape, const Py_ssize_t *strides,
                       Py_ssize_t itemsize) noexcept:
    cdef View v
    v.n0, v.n1, v.n2 = shape[0], shape[1], shape[2]
    v.s0, v.s1, v.s2 = strides[0] // itemsize, strides[1] // itemsize, strides[2] // itemsize
    return v


def accumulate(const a_t[:, :, :] a, double inv_tau,
               double[:, ::1] m, double[:, ::1] w, double[:, ::1] t, double[:, ::1] c):
    """Merge the log-sum-exp partials of ``a`` over its middle axis into ``m, w, t``.

    Parameters
    ----------
    a : (n0, n1, n2) float32 or float64 memoryview, any strides    # IN
    inv_tau : float
        The inverse temperature, ``1 / tau``.
    m, w, t, c : (n0, n2) C-contiguous float64 arrays              # IN/OUT
        The running partial: max, weight of the maximal terms, and the scaled sum of
        the other terms with its compensation (see ``_lse_blocks.h``).
    """
    cdef View va = _view(a.shape, a.strides, sizeof(a_t))
    cdef View vb = va
    if a.shape[1] == 0 or a.shape[0] == 0 or a.shape[2] == 0:
        return
    with nogil:
        _run(&a[0, 0, 0], va, <const a_t *> NULL, vb, inv_tau,
             &m[0, 0], &w[0, 0], &t[0, 0], &c[0, 0])


def accumulate_weighted(const a_t[:, :, :] a, const b_t[:, :, :] b, double inv_tau,
                        double[:, ::1] m, double[:, ::1] w, double[:, ::1] t,
                        double[:, ::1] c):
    """Like `accumulate` with the weights ``b`` (same shape as ``a``, any strides,
    zero strides for broadcast weights)."""
    cdef View va = _view(a.shape, a.strides, sizeof(a_t))
    cdef View vb = _view(b.shape, b.strides, sizeof(b_t))
    if a.shape[1] == 0 or a.shape[0] == 0 or a.shape[2] == 0:
        return
    with nogil:
        _run(&a[0, 0, 0], va, &b[0, 0, 0], vb, inv_tau,
             &m[0, 0], &w[0, 0], &t[0, 0], &c[0, 0])


def finalize(const double[::1] m, const double[::1] w, const double[::1] t,
             const double[::1] c, double tau,
             double[::1] out, double[::1] sign, double[::1] log_sum,
             const double[::1] divisor=None):
    """Turn partials into ``out = m + tau log|S|``, ``sign = sign(S)`` and
    ``log_sum = log|S|`` for the scaled sum ``S = (w + t + c) / divisor``.

    The division (for means) is carried in double-double, so that it costs no
    accuracy. A slice whose max is -inf (empty, all -inf, or all weights zero) has a
    zero total: ``-inf`` with sign 0.  A nan result has a nan sign.
    """
    cdef Py_ssize_t j
    cdef double sg, lh, ll, lg, res, wj, tj, cj, lw, lt
    with nogil:
        for j in range(m.shape[0]):
            wj, tj, cj = w[j], t[j], c[j]
            if divisor is not None:
                wj = lse_div_dd(wj, divisor[j], &lw)
                tj = lse_div_dd(tj, divisor[j], &lt)
                cj = cj / divisor[j] + lw + lt
            lse_log_abs_sum(wj, tj, cj, &lh, &ll, &sg)
            lg = lh + ll
            res = lse_shift_add(m[j], tau, lh, ll)
            if m[j] == -INFINITY and not isnan(lg):
                res = -INFINITY
                sg = 0.0
            if isnan(res):
                sg = NAN
            out[j] = res
            sign[j] = sg
            log_sum[j] = lg


def merge(double[::1] m, double[::1] w, double[::1] t, double[::1] c,
          const double[::1] m2, const double[::1] w2, const double[::1] t2,
          const double[::1] c2, double inv_tau):
    """Merge the partials ``(m2, w2, t2, c2)`` into ``(m, w, t, c)``, elementwise.

    The merge is associative and commutative, so partials of blocks, threads and
    chunks combine in any order or tree; rescales carry their factor in
    double-double, so a merge costs no accuracy.
    """
    cdef Py_ssize_t j
    if not (m.shape[0] == w.shape[0] == t.shape[0] == c.shape[0] == m2.shape[0]
            == w2.shape[0] == t2.shape[0] == c2.shape[0]):
        raise ValueError("partials to merge must have the same length")
    with nogil:
        for j in range(m.shape[0]):
            lse_merge(&m[j], &w[j], &t[j], &c[j], m2[j], w2[j], t2[j], c2[j], inv_tau)


def max_threads():
    """The number of threads a large reduction uses (OpenMP's, 1 without OpenMP)."""
    return lse_max_threads()
