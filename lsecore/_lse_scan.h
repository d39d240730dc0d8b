/* Running log-sum-exp (scans) and the two-term log-sum-exp, from the partials of _lse_blocks.h. */
#ifndef LSECORE_LSE_SCAN_H
#define LSECORE_LSE_SCAN_H

#include "_lse_blocks.h"
#include "_lse_exact.h"

/*
 * A scan carries the partial (m, w, t, c) of its prefix and finalizes it after every
 * element.  A block of a row (or a row of a tile of lanes) is done in three passes: the
 * running max gives every element's term or rescale factor, which are then computed
 * together (8 at a time with AVX-512), merged into the partials in order, and the
 * partials finalized together by lse_finalize, whose libm calls and Newton steps then
 * run many at a time.
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

#ifdef LSE_HAVE_AVX512
/* lse_term_dd of n pairs (x[k] <= y[k]), 8 at a time; lanes whose quotient is outside
 * lse512_exp_dd's range (or not finite) are redone by lse_term_dd. */
LSE512 void lse512_terms(ptrdiff_t n, const double *x, const double *y, double tau,
                         double inv_tau, double *e, double *lo)
{
    const __m512d tv = _mm512_set1_pd(tau), iv = _mm512_set1_pd(inv_tau);
    for (ptrdiff_t k = 0; k < n; k += 8) {
        __mmask8 km = n - k >= 8 ? 0xff : (__mmask8)((1u << (n - k)) - 1);
        __m512d xv = _mm512_maskz_loadu_pd(km, x + k), yv = _mm512_maskz_loadu_pd(km, y + k);
        __m512d d, dl, el;
        lse512_two_sum(xv, _mm512_sub_pd(_mm512_setzero_pd(), yv), &d, &dl);
        __m512d zh = _mm512_mul_pd(d, iv);
        __m512d zl = _mm512_mul_pd(_mm512_add_pd(_mm512_fnmadd_pd(zh, tv, d), dl), iv);
        __mmask8 ok = _mm512_cmp_pd_mask(zh, _mm512_set1_pd(-708.0), _CMP_GT_OQ)
                    & _mm512_cmp_pd_mask(zh, _mm512_set1_pd(708.0), _CMP_LT_OQ);
        __m512d eh = lse512_exp_dd(zh, &el);
        _mm512_mask_storeu_pd(e + k, km, eh);
        _mm512_mask_storeu_pd(lo + k, km, _mm512_fmadd_pd(eh, zl, el));
        for (unsigned bad = km & ~ok; bad; bad &= bad - 1) {
            ptrdiff_t i = k + __builtin_ctz(bad);
            e[i] = lse_term_dd(x[i], y[i], tau, inv_tau, lo + i);
        }
    }
}
#endif

/* e[k] + lo[k] = exp((x[k] - y[k]) / tau) for n pairs x[k] <= y[k], as lse_term_dd. */
LSE_INLINE void lse_terms(ptrdiff_t n, const double *x, const double *y, double tau,
                          double inv_tau, double *e, double *lo)
{
#ifdef LSE_HAVE_AVX512
    if (lse_use_avx512()) {
        lse512_terms(n, x, y, tau, inv_tau, e, lo);
        return;
    }
#endif
    for (ptrdiff_t k = 0; k < n; k++) e[k] = lse_term_dd(x[k], y[k], tau, inv_tau, lo + k);
}

/*
 * The pair whose term the element x brings to the running partial of max m: exp((m - x)
 * / tau), the rescale, for a new max; exp((x - m) / tau) otherwise (unused for a tie).
 */
LSE_INLINE void lse_scan_pair(double x, double m, double *lo_arg, double *hi_arg)
{
    *lo_arg = x > m ? m : x;
    *hi_arg = x > m ? x : m;
}

/*
 * Merge the element x, whose term (or rescale factor) lse_scan_pair's pair gave as e + lo,
 * into the running partial (m, w, t, c): a new max rescales the sum (the old maximal
 * terms join t), a tie adds to w, a smaller term goes into the compensated sum.  -inf adds
 * nothing; nan and +inf make the rest nan and +inf, as the exact sums do (lse_finalize
 * reads them so).
 */
LSE_INLINE void lse_scan_apply(double x, double e, double lo,
                               double *m, double *w, double *t, double *c)
{
    if (x > *m) {
        lse_rescale_by(w, t, c, e, lo);
        *m = x;
        *w = 1.0;
    } else if (x == *m) {
        *w += 1.0;
    } else {
        lse_neumaier(t, c, e);
        *c += lo;
    }
}

/*
 * A scan's terms are exact to about 2^-60 and each rescale of its partial costs as much:
 * lse_refine_flag with this eps flags the outputs whose max and log cancel.
 */
#define LSE_SCAN_EPS 0x1p-56

/*
 * The accurate tier for a scan: the lane a[i sa], i < n, carried in double-double (the
 * maxima's count w, the others' sum t, rescaled exactly when the max moves up), and each
 * output from `first` on whose fast value out[i so] lse_refine_flag would flag (with twice
 * the eps, so that it errs towards recomputing) replaced by the exact prefix's result.
 */
#define LSE_EXACT_SCAN_DEFINE(SUF, A_T)                                                   \
static void lse_exact_scan_##SUF(const A_T *a, ptrdiff_t sa, A_T *out, ptrdiff_t so,      \
                                 ptrdiff_t n, double tau, ptrdiff_t first)                \
{                                                                                         \
    double m = -INFINITY;                                                                 \
    lse_exact_sum acc = {{0.0, 0.0}, {0.0, 0.0}, {0.0, 0.0}, 0, 0};                       \
    for (ptrdiff_t i = 0; i < n; i++) {                                                   \
        double x = (double)a[i * sa];                                                     \
        if (!(x < INFINITY)) return;             /* nan or +inf: the rest is exact */     \
        if (x > m) {                                                                      \
            if (m > -INFINITY) {                 /* the old sum times exp((m - x)/tau) */ \
                int q;                                                                    \
                lse_dd f = lse_exp_exact(lse_quotient_exact(m, x, tau), &q, NULL);        \
                lse_dd old = lse_dd_add(acc.w, acc.t);                                    \
                acc.t = lse_dd_ldexp(lse_dd_mul(old, f), q);                              \
            }                                                                             \
            acc.w = (lse_dd){1.0, 0.0};                                                   \
            acc.any = 1;                                                                  \
            m = x;                                                                        \
        } else if (x == m) {                                                              \
            acc.w.h += 1.0;                      /* a count: exact */                     \
        } else if (x > -INFINITY) {                                                       \
            int q;                                                                        \
            lse_dd e = lse_exp_exact(lse_quotient_exact(x, m, tau), &q, NULL);            \
            acc.t = lse_dd_add(acc.t, lse_dd_ldexp(e, q));                                \
        }                                                                                 \
        if (i < first || m == -INFINITY) continue;                                        \
        double fast = (double)out[i * so];                                                \
        if (!lse_refine_flag(m, acc.w.h, acc.t.h, acc.t.l, tau, fast, 2 * LSE_SCAN_EPS,   \
                             2 * LSE_SCAN_EPS, sizeof(A_T) == 4 ? 24 : 53, 0.0, 1, 0.0))  \
            continue;                                                                     \
        lse_exact_sum r = acc;                                                            \
        double sign;                                                                      \
        out[i * so] = (A_T)lse_exact_result(&r, m, tau, 0.0, &sign);                      \
    }                                                                                     \
}

LSE_EXACT_SCAN_DEFINE(d, double)
LSE_EXACT_SCAN_DEFINE(f, float)

/* The index of the first of n finalized outputs (partials p*, results res) to recompute,
 * or -1. */
LSE_INLINE ptrdiff_t lse_scan_first_flag(ptrdiff_t n, const double *pm, const double *pw,
                                         const double *pt, const double *pc,
                                         const double *res, double tau, int bits)
{
    for (ptrdiff_t k = 0; k < n; k++)
        if (lse_refine_flag(pm[k], pw[k], pt[k], pc[k], tau, res[k], LSE_SCAN_EPS,
                            LSE_SCAN_EPS, bits, 0.0, 1, 0.0))
            return k;
    return -1;
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
    double x[LSE_SCAN_BLOCK], ya[LSE_SCAN_BLOCK], yb[LSE_SCAN_BLOCK];                     \
    double e[LSE_SCAN_BLOCK], lo[LSE_SCAN_BLOCK], res[LSE_SCAN_BLOCK];                    \
    ptrdiff_t first = -1;                                                                 \
    for (ptrdiff_t i0 = 0; i0 < n; i0 += LSE_SCAN_BLOCK) {                                \
        ptrdiff_t len = n - i0 < LSE_SCAN_BLOCK ? n - i0 : LSE_SCAN_BLOCK;                \
        double mk = m;                           /* the running max, ahead of the sums */ \
        for (ptrdiff_t k = 0; k < len; k++) {                                             \
            x[k] = (double)a[(i0 + k) * sa];                                              \
            lse_scan_pair(x[k], mk, ya + k, yb + k);                                      \
            mk = x[k] > mk ? x[k] : mk;                                                   \
        }                                                                                 \
        lse_terms(len, ya, yb, tau, inv_tau, e, lo);                                      \
        for (ptrdiff_t k = 0; k < len; k++) {                                             \
            lse_scan_apply(x[k], e[k], lo[k], &m, &w, &t, &c);                            \
            pm[k] = m;                                                                    \
            pw[k] = w;                                                                    \
            pt[k] = t;                                                                    \
            pc[k] = c;                                                                    \
        }                                                                                 \
        lse_finalize(len, pm, pw, pt, pc, NULL, tau, res, NULL, NULL);                    \
        for (ptrdiff_t k = 0; k < len; k++) out[(i0 + k) * so] = (A_T)res[k];             \
        if (first < 0) {                                                                  \
            ptrdiff_t k = lse_scan_first_flag(len, pm, pw, pt, pc, res, tau,              \
                                              sizeof(A_T) == 4 ? 24 : 53);                \
            first = k < 0 ? -1 : i0 + k;                                                  \
        }                                                                                 \
    }                                                                                     \
    if (first >= 0 && (const void *)a != (const void *)out)                               \
        lse_exact_scan_##SUF(a, sa, out, so, n, tau, first);                              \
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
    double x[LSE_TILE], ya[LSE_TILE], yb[LSE_TILE], e[LSE_TILE], lo[LSE_TILE];            \
    double inv_tau = 1.0 / tau;                                                           \
    ptrdiff_t first[LSE_TILE];                                                            \
    for (ptrdiff_t j = 0; j < nj; j++) {                                                  \
        m[j] = -INFINITY;                                                                 \
        w[j] = t[j] = c[j] = 0.0;                                                         \
        first[j] = -1;                                                                    \
    }                                                                                     \
    for (ptrdiff_t r = 0; r < nr; r++) {                                                  \
        const A_T *ar = a + r * sr;                                                       \
        for (ptrdiff_t j = 0; j < nj; j++) {                                              \
            x[j] = (double)ar[j * si];                                                    \
            lse_scan_pair(x[j], m[j], ya + j, yb + j);                                    \
        }                                                                                 \
        lse_terms(nj, ya, yb, tau, inv_tau, e, lo);                                       \
        for (ptrdiff_t j = 0; j < nj; j++)                                                \
            lse_scan_apply(x[j], e[j], lo[j], m + j, w + j, t + j, c + j);                \
        lse_finalize(nj, m, w, t, c, NULL, tau, res, NULL, NULL);                         \
        for (ptrdiff_t j = 0; j < nj; j++) {                                              \
            out[r * or_ + j * oi] = (A_T)res[j];                                          \
            if (first[j] < 0 && lse_refine_flag(m[j], w[j], t[j], c[j], tau, res[j],      \
                                                LSE_SCAN_EPS, LSE_SCAN_EPS,               \
                                                sizeof(A_T) == 4 ? 24 : 53, 0.0, 1, 0.0)) \
                first[j] = r;                                                             \
        }                                                                                 \
    }                                                                                     \
    for (ptrdiff_t j = 0; j < nj; j++)                                                    \
        if (first[j] >= 0 && (const void *)a != (const void *)out)                        \
            lse_exact_scan_##SUF(a + j * si, sr, out + j * oi, or_, nr, tau, first[j]);   \
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
    double lo[LSE_SCAN_BLOCK], res[LSE_SCAN_BLOCK], inv_tau = 1.0 / tau;                  \
    for (ptrdiff_t i0 = 0; i0 < n; i0 += LSE_SCAN_BLOCK) {                                \
        ptrdiff_t len = n - i0 < LSE_SCAN_BLOCK ? n - i0 : LSE_SCAN_BLOCK;                \
        for (ptrdiff_t k = 0; k < len; k++) {    /* the pair's partial: max, 1, term */   \
            double u = (double)x[(i0 + k) * sx], v = (double)y[(i0 + k) * sy];            \
            pm[k] = u > v ? u : v;                                                        \
            lo[k] = u > v ? v : u;                                                        \
            pw[k] = 1.0;                                                                  \
        }                                                                                 \
        lse_terms(len, lo, pm, tau, inv_tau, pt, pc);                                     \
        for (ptrdiff_t k = 0; k < len; k++)      /* equal infinities: a term of 1 */      \
            if (lo[k] == pm[k]) {                                                         \
                pt[k] = 1.0;                                                              \
                pc[k] = 0.0;                                                              \
            }                                                                             \
        lse_finalize(len, pm, pw, pt, pc, NULL, tau, res, NULL, NULL);                    \
        for (ptrdiff_t k = 0; k < len; k++) {                                             \
            if (lse_refine_flag(pm[k], pw[k], pt[k], pc[k], tau, res[k], LSE_SCAN_EPS,    \
                                LSE_SCAN_EPS, sizeof(A_T) == 4 ? 24 : 53, 0.0, 1, 0.0)) { \
                double pair[2] = {lo[k], pm[k]}, sign;                                    \
                res[k] = lse_exact_slice_dd(pair, 1, NULL, 0, 2, tau, 0.0, &sign);        \
            }                                                                             \
            out[(i0 + k) * so] = (A_T)res[k];                                             \
        }                                                                                 \
    }                                                                                     \
}

LSE_SCAN_DEFINE(d, double)
LSE_SCAN_DEFINE(f, float)

#endif
