/* Running log-sum-exp (scans) and the two-term log-sum-exp, from the partials of _lse_blocks.h. */
#ifndef LSECORE_LSE_SCAN_H
#define LSECORE_LSE_SCAN_H

#include "_lse_blocks.h"

/*
 * A scan carries the partial (m, w, t, c) of its prefix and finalizes it after every
 * element.  The partials of a block of outputs are kept in small arrays and finalized
 * together by lse_finalize, whose libm calls and Newton steps then run many at a time.
 */
#define LSE_SCAN_BLOCK 128  /* outputs of a row finalized together */

/*
 * exp((x - y) / tau) for x <= y (or -inf, or nan) as the returned value plus *lo, to about
 * 2^-60 relative: the difference and its quotient by tau are carried in double-double (the
 * quotient's remainder by one fma), so that a term is exact even where they round.
 */
LSE_INLINE double lse_term_dd(double x, double y, double tau, double inv_tau, double *lo)
{
    double d = x - y;                            /* -inf on overflow; nan with a nan */
    double dl = isfinite(d) ? lse_two_sum_err(x, -y, d) : 0.0;
    double zh = d * inv_tau;
    double zl = isfinite(zh) ? (fma(-zh, tau, d) + dl) * inv_tau : 0.0;
    double el, eh = lse_exp_dd(zh, &el);
    *lo = el + eh * zl;
    return eh;
}

/*
 * Merge the term exp(x / tau) into the running partial (m, w, t, c), for any x: a new max
 * rescales the sum (the old maximal terms join t), a tie adds to w, a smaller term goes
 * into the compensated sum.  -inf adds nothing; nan and +inf make the rest nan and +inf,
 * as the exact sums do (lse_finalize reads them so).
 */
LSE_INLINE void lse_scan_step(double x, double tau, double inv_tau,
                              double *m, double *w, double *t, double *c)
{
    double lo, e;
    if (x > *m) {
        e = lse_term_dd(*m, x, tau, inv_tau, &lo);
        lse_rescale_by(w, t, c, e, lo);
        *m = x;
        *w = 1.0;
    } else if (x == *m) {
        *w += 1.0;
    } else {
        e = lse_term_dd(x, *m, tau, inv_tau, &lo);
        lse_neumaier(t, c, e);
        *c += lo;
    }
}

/* The partial of the two terms exp(x / tau) and exp(y / tau); equal infinities give a
 * term of 1, not nan. */
LSE_INLINE void lse_pair_partial(double x, double y, double tau, double inv_tau,
                                 double *m, double *w, double *t, double *c)
{
    double hi = x > y ? x : y, lo = x > y ? y : x;
    *m = hi;
    *w = 1.0;
    *c = 0.0;
    *t = x == y ? 1.0 : lse_term_dd(lo, hi, tau, inv_tau, c);
}

/*
 * LSE_SCAN_DEFINE(SUF, A_T) defines, for input and output of type A_T (strides in
 * elements, any sign; out may be a itself: each element is read before it is written):
 *
 * lse_scan_row_SUF(a, sa, out, so, n, tau)
 *     out[i so] = tau log(sum_{j <= i} exp(a[j sa] / tau)), i < n: one lane.
 * lse_scan_cols_SUF(a, sr, si, out, or_, oi, nr, ni, tau)
 *     the same down each of ni lanes a[r sr + j si], r < nr, a tile of LSE_TILE lanes at
 *     a time, row by row (rows of a tile are contiguous where si is 1).
 * lse_logaddexp_SUF(x, sx, y, sy, out, so, n, tau)
 *     out[i so] = tau log(exp(x[i sx] / tau) + exp(y[i sy] / tau)), i < n.
 *
 * Every output is finalized from its partial by lse_finalize and rounded once to A_T.
 */
#define LSE_SCAN_DEFINE(SUF, A_T)                                                         \
                                                                                          \
LSE_INLINE void lse_scan_row_impl_##SUF(const A_T *a, ptrdiff_t sa, A_T *out, ptrdiff_t so, \
                                        ptrdiff_t n, double tau)                          \
{                                                                                         \
    double m = -INFINITY, w = 0.0, t = 0.0, c = 0.0, inv_tau = 1.0 / tau;                 \
    double pm[LSE_SCAN_BLOCK], pw[LSE_SCAN_BLOCK], pt[LSE_SCAN_BLOCK], pc[LSE_SCAN_BLOCK]; \
    double res[LSE_SCAN_BLOCK];                                                           \
    for (ptrdiff_t i0 = 0; i0 < n; i0 += LSE_SCAN_BLOCK) {                                \
        ptrdiff_t len = n - i0 < LSE_SCAN_BLOCK ? n - i0 : LSE_SCAN_BLOCK;                \
        for (ptrdiff_t k = 0; k < len; k++) {                                             \
            lse_scan_step((double)a[(i0 + k) * sa], tau, inv_tau, &m, &w, &t, &c);        \
            pm[k] = m;                                                                    \
            pw[k] = w;                                                                    \
            pt[k] = t;                                                                    \
            pc[k] = c;                                                                    \
        }                                                                                 \
        lse_finalize(len, pm, pw, pt, pc, NULL, tau, res, NULL, NULL);                    \
        for (ptrdiff_t k = 0; k < len; k++) out[(i0 + k) * so] = (A_T)res[k];             \
    }                                                                                     \
}                                                                                         \
                                                                                          \
LSE_CLONES void lse_scan_row_##SUF(const A_T *a, ptrdiff_t sa, A_T *out, ptrdiff_t so,    \
                                   ptrdiff_t n, double tau)                               \
{                                                                                         \
    if (sa == 1 && so == 1) lse_scan_row_impl_##SUF(a, 1, out, 1, n, tau);                \
    else lse_scan_row_impl_##SUF(a, sa, out, so, n, tau);                                 \
}                                                                                         \
                                                                                          \
LSE_INLINE void lse_scan_cols_impl_##SUF(const A_T *a, ptrdiff_t sr, ptrdiff_t si,        \
                                         A_T *out, ptrdiff_t or_, ptrdiff_t oi,           \
                                         ptrdiff_t nr, ptrdiff_t nj, double tau)          \
{                                                                                         \
    double m[LSE_TILE], w[LSE_TILE], t[LSE_TILE], c[LSE_TILE], res[LSE_TILE];             \
    double inv_tau = 1.0 / tau;                                                           \
    for (ptrdiff_t j = 0; j < nj; j++) {                                                  \
        m[j] = -INFINITY;                                                                 \
        w[j] = t[j] = c[j] = 0.0;                                                         \
    }                                                                                     \
    for (ptrdiff_t r = 0; r < nr; r++) {                                                  \
        const A_T *ar = a + r * sr;                                                       \
        for (ptrdiff_t j = 0; j < nj; j++)                                                \
            lse_scan_step((double)ar[j * si], tau, inv_tau, m + j, w + j, t + j, c + j);  \
        lse_finalize(nj, m, w, t, c, NULL, tau, res, NULL, NULL);                         \
        for (ptrdiff_t j = 0; j < nj; j++) out[r * or_ + j * oi] = (A_T)res[j];           \
    }                                                                                     \
}                                                                                         \
                                                                                          \
LSE_CLONES void lse_scan_cols_##SUF(const A_T *a, ptrdiff_t sr, ptrdiff_t si,             \
                                    A_T *out, ptrdiff_t or_, ptrdiff_t oi,                \
                                    ptrdiff_t nr, ptrdiff_t ni, double tau)               \
{                                                                                         \
    for (ptrdiff_t j0 = 0; j0 < ni; j0 += LSE_TILE) {                                     \
        ptrdiff_t nj = ni - j0 < LSE_TILE ? ni - j0 : LSE_TILE;                           \
        if (si == 1 && oi == 1)                                                           \
            lse_scan_cols_impl_##SUF(a + j0, sr, 1, out + j0, or_, 1, nr, nj, tau);       \
        else                                                                              \
            lse_scan_cols_impl_##SUF(a + j0 * si, sr, si, out + j0 * oi, or_, oi, nr, nj, \
                                     tau);                                                \
    }                                                                                     \
}                                                                                         \
                                                                                          \
LSE_CLONES void lse_logaddexp_##SUF(const A_T *x, ptrdiff_t sx, const A_T *y, ptrdiff_t sy, \
                                    A_T *out, ptrdiff_t so, ptrdiff_t n, double tau)      \
{                                                                                         \
    double pm[LSE_SCAN_BLOCK], pw[LSE_SCAN_BLOCK], pt[LSE_SCAN_BLOCK], pc[LSE_SCAN_BLOCK]; \
    double res[LSE_SCAN_BLOCK], inv_tau = 1.0 / tau;                                      \
    for (ptrdiff_t i0 = 0; i0 < n; i0 += LSE_SCAN_BLOCK) {                                \
        ptrdiff_t len = n - i0 < LSE_SCAN_BLOCK ? n - i0 : LSE_SCAN_BLOCK;                \
        for (ptrdiff_t k = 0; k < len; k++)                                               \
            lse_pair_partial((double)x[(i0 + k) * sx], (double)y[(i0 + k) * sy], tau,     \
                             inv_tau, pm + k, pw + k, pt + k, pc + k);                    \
        lse_finalize(len, pm, pw, pt, pc, NULL, tau, res, NULL, NULL);                    \
        for (ptrdiff_t k = 0; k < len; k++) out[(i0 + k) * so] = (A_T)res[k];             \
    }                                                                                     \
}

LSE_SCAN_DEFINE(d, double)
LSE_SCAN_DEFINE(f, float)

#endif
