/* Blocked single-pass log-sum-exp partials: a vectorizable exp and the row and column block loops. */
#ifndef LSECORE_LSE_BLOCKS_H
#define LSECORE_LSE_BLOCKS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* The number of the calling thread in its OpenMP team; 0 without OpenMP. */
static inline int lse_thread_num(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* The number of threads OpenMP would use (OMP_NUM_THREADS, threadpoolctl); 1 without OpenMP. */
static inline int lse_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/*
 * A partial of a set of (a_i, b_i) is (m, w, t, c):
 *   m = max a_i (over b_i != 0), -inf for an empty set,
 *   w = sum of b_i over the elements with a_i == m (their exp factor is exactly 1),
 *   t + c = sum of b_i * exp((a_i - m) / tau) over the other elements, as a float64
 *           sum t and the compensation c that Kahan/Neumaier summation carries.
 * The sum is exp(m / tau) * (w + t + c).  Keeping the maximal terms out of t lets the
 * finalizer use log1p(t + c) when t is below one ulp of w, and ties and merges stay exact.
 *
 * The loops below keep LSE_LANES independent Kahan accumulators so that the
 * compiler vectorizes them without reassociating a floating-point reduction.
 */

#define LSE_LANES 32        /* independent accumulators in the exp pass */
/*
 * A block is read once from memory by its max pass and again, from cache (128 KiB for
 * float64, in L2), by its exp pass.  Long blocks keep rescales of the running sum rare:
 * each costs up to an ulp of what was summed before it.
 */
#define LSE_ROW_BLOCK 16384 /* elements of a row per block */
#define LSE_TILE 64         /* columns of a column tile */
#define LSE_TILE_ROWS 256   /* rows of a column tile per block */

/* target_clones needs the loader's ifunc, which glibc has and musl has not. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__) \
    && !defined(LSE_NO_CLONES)
#define LSE_HAVE_CLONES 1
#define LSE_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LSE_CLONES
#endif

#if defined(__GNUC__)
#define LSE_INLINE static inline __attribute__((always_inline))
#else
#define LSE_INLINE static inline
#endif

LSE_INLINE uint64_t lse_asuint64(double x) { uint64_t u; memcpy(&u, &x, sizeof u); return u; }
LSE_INLINE double lse_asdouble(uint64_t u) { double x; memcpy(&x, &u, sizeof x); return x; }

/* 1/k!, the Taylor coefficients of the exps below. */
static const double LSE_INV_FACT[16] = {
    1.0, 1.0, 1.0 / 2.0, 1.0 / 6.0, 1.0 / 24.0, 1.0 / 120.0, 1.0 / 720.0, 1.0 / 5040.0,
    1.0 / 40320.0, 1.0 / 362880.0, 1.0 / 3628800.0, 1.0 / 39916800.0, 1.0 / 479001600.0,
    1.0 / 6227020800.0, 1.0 / 87178291200.0, 1.0 / 1307674368000.0};

/*
 * exp(x + xl) for x <= 0, -inf or nan (xl a low part, |xl| < 2^-40, 0 where x is not
 * finite), without a libm call: x = k ln2 + r, |r| <= ln2/2,
 * exp(r) by a degree-13 Taylor polynomial (truncation below 5e-18) whose leading 1 + r is
 * carried exactly, 2^k by exponent bits: under 0.7 ulp.  Results below 2^-1022 are
 * correctly rounded subnormals (0 below e^-745.2).
 */
LSE_INLINE double lse_exp_nonpos2(double x, double xl)
{
    const double shift = 0x1.8p52;
    const double inv_ln2 = 0x1.71547652b82fep0;
    const double ln2_hi = 0x1.62e42fefa3800p-1;
    const double ln2_lo = 0x1.ef35793c76730p-45;
    x = -746.0 > x ? -746.0 : x;                 /* nan stays nan, -inf becomes -746 */
    double kd = x * inv_ln2 + shift;
    uint64_t ki = lse_asuint64(kd);
    kd -= shift;
    double rh = x - kd * ln2_hi;                 /* exact: ln2_hi has 11 trailing zero bits */
    double tl = kd * ln2_lo;
    double r = rh - tl;
    double rl = ((rh - r) - tl) + xl;            /* r + rl = x + xl - k ln2 */
    double q = LSE_INV_FACT[13];
    for (int k = 12; k >= 2; k--) q = q * r + LSE_INV_FACT[k];
    double hi = 1.0 + r;                         /* exp(r + rl) = 1 + r + r^2 q + rl exp(r): */
    double lo = (1.0 - hi) + r;                  /* the leading sum kept exactly, one */
    double r2q = (r * r) * q;                    /* rounding at the end (rl holds xl, up */
    double p = hi + (lo + (rl * (1.0 + (r + r2q)) + r2q));   /* to 2^-50: its factor counts) */
    double scaled = p * lse_asdouble((ki + 1023) << 52);
    /* below 2^-1022: scaled exactly to 2^60 times the result, then rounded once */
    double tiny = (p * lse_asdouble((ki + 1083) << 52)) * 0x1p-60;
    return x < -708.0 ? (x < -745.2 ? 0.0 : tiny) : scaled;
}

LSE_INLINE double lse_exp_nonpos(double x) { return lse_exp_nonpos2(x, 0.0); }

/* ln2 = N1 + N2 + N3 to about 2^-155, N1 with 40 bits (E N1 exact for |E| < 2^13). */
#define LSE_N1 0x1.62e42fefa2000p-1
#define LSE_N2 0x1.9ef35793c7673p-41
#define LSE_N3 0x1.f97b57a079a19p-103

/* Knuth's two-sum: the rounding error of s = x + y. */
LSE_INLINE double lse_two_sum_err(double x, double y, double s)
{
    double yy = s - x;
    return (x - (s - yy)) + (y - yy);
}

/* (w + t) + c as *sh + *sl: *sh the sum rounded once, *sl its rounding error (0 where the
 * sum is not finite). */
LSE_INLINE void lse_split_sum(double w, double t, double c, double *sh, double *sl)
{
    double st = w + t;
    if (!isfinite(st)) {
        *sh = st;
        *sl = 0.0;
        return;
    }
    double lo = lse_two_sum_err(w, t, st) + c;
    *sh = st + lo;
    *sl = isfinite(*sh) ? lo - (*sh - st) : 0.0;
}

/* e / (s + sl): the quotient y = e / s corrected by the residual (e - y s - y sl) / s, so
 * that a softmax output is off by its term's error and one rounding, not also the sum's
 * rounding and the division's. */
LSE_INLINE double lse_div_corrected(double e, double s, double sl)
{
    double y = e / s;
    return fma(fma(-y, sl, fma(-y, s, e)), 1.0 / s, y);
}

/* 1/tau as *inv_tau plus the returned low part (0 at a unit temperature). */
LSE_INLINE double lse_inv_tau(double tau, double *inv_tau)
{
    *inv_tau = 1.0 / tau;
    return tau == 1.0 ? 0.0 : fma(-tau, *inv_tau, 1.0) / tau;
}

/* (x - m) / tau as the returned value plus *lo (0 where it is not finite): the
 * roundings of the difference, of its product by inv_tau and of inv_tau (itl its low
 * part, lse_inv_tau) carried to first order. */
LSE_INLINE double lse_quotient(double x, double m, double inv_tau, double itl, double *lo)
{
    double d = x - m, z = d * inv_tau;
    int finite = isfinite(d) && isfinite(z);
    double dl = finite ? lse_two_sum_err(x, -m, d) * inv_tau : 0.0;
    *lo = inv_tau == 1.0 || !finite ? dl : dl + (fma(d, inv_tau, -z) + d * itl);
    return z;
}

/* exp((x - m) / tau) for x <= m, the argument as lse_quotient carries it: within 0.7 ulp
 * however far x is below m.  x = -inf or nan: exp's 0 or nan. */
LSE_INLINE double lse_term(double x, double m, double inv_tau, double itl)
{
    double zl, z = lse_quotient(x, m, inv_tau, itl, &zl);
    return lse_exp_nonpos2(z, z > -746.0 ? zl : 0.0);   /* moot (and maybe large) below */
}

/* Neumaier's compensated add of x into (*s, *c); the sum is *s + *c. */
LSE_INLINE void lse_neumaier(double *s, double *c, double x)
{
    double u = *s + x;
    double e = fabs(*s) >= fabs(x) ? (*s - u) + x : (x - u) + *s;
    *c += e == e ? e : 0.0;                      /* an infinite sum has no error */
    *s = u;
}

/* Kahan's compensated add of e into (*s, *c); the sum is *s - *c.  An infinite
 * sum has no rounding error to carry (and inf - inf would poison the next adds). */
LSE_INLINE void lse_kahan(double *s, double *c, double e)
{
    double y = e - *c;
    double u = *s + y;
    double err = (u - *s) - y;
    *c = err == err ? err : 0.0;
    *s = u;
}


/* The two-product: x * y = p + *e exactly (for |x|, |y| < 2^995); *e = 0 when p is not
 * finite.  fma is one instruction where the CPU has it (x86-64-v3 and up, aarch64). */
LSE_INLINE double lse_two_prod(double x, double y, double *e)
{
    double p = x * y;
    *e = isfinite(p) ? fma(x, y, -p) : 0.0;
    return p;
}

/*
 * exp(x), |x| < 708, as hi + *lo, about 2^-60 relative: the factor of the rare rescales
 * of a running sum, which must not cost an ulp each, and the finalizer's Newton step.  exp(r) = 1 + r + r^2/2 + r^3 q
 * with the first three terms summed exactly.
 */
static inline double lse_exp_dd(double x, double *lo)
{
    const double inv_ln2 = 0x1.71547652b82fep0;
    const double ln2_hi = 0x1.62e42fefa3800p-1;
    const double ln2_lo = 0x1.ef35793c76730p-45;
    *lo = 0.0;
    if (!(x > -708.0 && x < 708.0)) return exp(x);  /* +-inf, nan, the extreme ranges */
    double kd = nearbyint(x * inv_ln2);
    double rh = x - kd * ln2_hi;
    double tl = kd * ln2_lo;
    double r = rh - tl;
    double rl = (rh - r) - tl;
    double q = LSE_INV_FACT[15];                 /* 1/15!, then down to 1/3! */
    for (int k = 14; k >= 3; k--) q = q * r + LSE_INV_FACT[k];
    double r2l, r2h = lse_two_prod(r, r, &r2l);
    double h = 1.0 + r;
    double l = (1.0 - h) + r;
    double h2 = h + 0.5 * r2h;
    double l2 = lse_two_sum_err(h, 0.5 * r2h, h2);
    double small = l + l2 + 0.5 * r2l + r * r2h * q + rl * (1.0 + r);
    double p = h2 + small;
    double plo = (h2 - p) + small;
    double scale = lse_asdouble((uint64_t)((int64_t)kd + 1023) << 52);  /* |kd| <= 1022 */
    *lo = plo * scale;
    return p * scale;
}

/* Add x * (fh + fl) to the compensated sum (*t, *c). */
LSE_INLINE void lse_add_scaled(double *t, double *c, double x, double fh, double fl)
{
    double e, p = lse_two_prod(x, fh, &e);
    lse_neumaier(t, c, p);
    *c += e + x * fl;
}

/* Rescale the partial's sum by the factor fh + fl < 1 when its max moves up: the
 * maximal terms join t. */
LSE_INLINE void lse_rescale_by(double *w, double *t, double *c, double fh, double fl)
{
    double e, p = lse_two_prod(*t, fh, &e);
    double cc = *c * fh + e + *t * fl;
    *t = p;
    *c = cc;
    lse_add_scaled(t, c, *w, fh, fl);
    *w = 0.0;
}

/* exp((x - y) / tau) as the returned value plus *fl (x <= y), the roundings of x - y, of its
 * product by inv_tau and of inv_tau (itl, lse_inv_tau) carried: a rescale then costs no
 * accuracy however far the max moves. */
LSE_INLINE double lse_exp_quotient(double x, double y, double inv_tau, double itl, double *fl)
{
    double zl, z = lse_quotient(x, y, inv_tau, itl, &zl);
    double fh = lse_exp_dd(z, fl);
    *fl += fh * zl;
    return fh;
}

/* Rescale the partial's sum when its max moves up from mo to mn: by exp((mo - mn) / tau). */
LSE_INLINE void lse_rescale(double *w, double *t, double *c, double mo, double mn,
                            double inv_tau, double itl)
{
    double fl, fh = lse_exp_quotient(mo, mn, inv_tau, itl, &fl);
    lse_rescale_by(w, t, c, fh, fl);
}

/* Merge the partial (m2, w2, t2, c2) into (*m, *w, *t, *c). Associative and commutative. */
LSE_INLINE void lse_merge(double *m, double *w, double *t, double *c,
                          double m2, double w2, double t2, double c2, double inv_tau,
                          double itl)
{
    if (m2 > *m) {
        lse_rescale(w, t, c, *m, m2, inv_tau, itl);
        *m = m2;
        *w = w2;
        lse_neumaier(t, c, t2);
        *c += c2;
    } else if (m2 == *m) {
        double sw = *w + w2;                /* the maxima's weights: their error to c */
        if (isfinite(sw)) *c += lse_two_sum_err(*w, w2, sw);
        *w = sw;
        lse_neumaier(t, c, t2);
        *c += c2;
    } else {
        double fl, fh = lse_exp_quotient(m2, *m, inv_tau, itl, &fl);
        lse_add_scaled(t, c, w2, fh, fl);
        lse_add_scaled(t, c, t2, fh, fl);
        *c += c2 * fh;
    }
}

/*
 * Weights that make a term infinite, as the exact sum has them: b = +-inf on a finite or
 * +inf x is a term of +-inf, taken as an element at +inf (the max) with weight b; b = +-inf
 * on x = -inf is 0 inf, nan.  b = 0 removes the element (-inf).  Other elements stay.
 */
LSE_INLINE double lse_weighted_x(double x, double b)
{
    if (b == 0) return -INFINITY;
    if (isinf(b)) return x == -INFINITY ? NAN : INFINITY;
    return x;
}

/* The weight an element adds to the maxima's w: b where x is the max m (b inf where m is
 * +inf, so that maxima of both signs give inf - inf = nan, as their exact sum), else 0. */
LSE_INLINE double lse_top_weight(double x, double m, double b)
{
    if (x != m || b == 0) return 0.0;
    return m == INFINITY ? b * INFINITY : b;
}

/* *w += x + extra, the rounding error of the add into *c (the partial's compensation),
 * so that many small weights tied at the max are not lost against a large one. */
LSE_INLINE void lse_add_weight(double *w, double *c, double x, double extra)
{
    double s = *w + x;
    double err = lse_two_sum_err(*w, x, s) + extra;
    *c += isfinite(err) ? err : 0.0;
    *w = s;
}

/*
 * LSE_DEFINE(SUF, A_T, B_T) defines, for input a of type A_T and weights b of type B_T,
 * the portable loops (lse_row_generic_SUF, lse_cols_generic_SUF):
 *
 * lse_row_SUF(a, sa, b, sb, n, inv_tau, &m, &w, &t)
 *     merges the partial of a[0], a[sa], ... a[(n-1) sa] (strides in elements, any sign)
 *     into (m, w, t).  b == NULL means unit weights.
 * lse_cols_SUF(a, sr, si, b, br, bi, nr, ni, inv_tau, m, w, t)
 *     merges, for each column j < ni, the partial of a[r sr + j si], r < nr, into
 *     (m[j], w[j], t[j]) (contiguous float64 arrays).
 *
 * The *_impl functions are always inlined; calling them with literal unit strides or a
 * literal NULL b lets the compiler emit the contiguous, unweighted loops separately.
 */
#define LSE_DEFINE(SUF, A_T, B_T)                                                         \
                                                                                          \
LSE_INLINE double lse_block_max_##SUF(const A_T *a, ptrdiff_t sa, const B_T *b,           \
                                      ptrdiff_t sb, ptrdiff_t n)                          \
{                                                                                         \
    double mx[LSE_LANES];                                                                 \
    ptrdiff_t i = 0;                                                                      \
    for (int j = 0; j < LSE_LANES; j++) mx[j] = -INFINITY;                                \
    for (; i + LSE_LANES <= n; i += LSE_LANES)                                            \
        for (int j = 0; j < LSE_LANES; j++) {                                             \
            double x = (double)a[(i + j) * sa];                                           \
            if (b != NULL) x = lse_weighted_x(x, (double)b[(i + j) * sb]);                 \
            mx[j] = x > mx[j] ? x : mx[j];                                                \
        }                                                                                 \
    for (; i < n; i++) {                                                                  \
        double x = (double)a[i * sa];                                                     \
        if (b != NULL) x = lse_weighted_x(x, (double)b[i * sb]);                           \
        mx[0] = x > mx[0] ? x : mx[0];                                                    \
    }                                                                                     \
    double m = -INFINITY;                                                                 \
    for (int j = 0; j < LSE_LANES; j++) m = mx[j] > m ? mx[j] : m;                        \
    return m;                                                                             \
}                                                                                         \
                                                                                          \
/* Adds the block's terms, shifted by m (the running max, >= every a_i), to the */        \
/* compensated sum (*t, *tc) and the maximal terms' weights to *w. */                     \
LSE_INLINE void lse_block_sum_##SUF(const A_T *a, ptrdiff_t sa, const B_T *b,             \
                                    ptrdiff_t sb, ptrdiff_t n, double m, double inv_tau,  \
                                    double itl, double *w, double *t, double *tc)                     \
{                                                                                         \
    double s[LSE_LANES], c[LSE_LANES], ww[LSE_LANES], wc[LSE_LANES];                      \
    ptrdiff_t i = 0;                                                                      \
    for (int j = 0; j < LSE_LANES; j++) { s[j] = 0.0; c[j] = 0.0; ww[j] = 0.0; wc[j] = 0.0; } \
    for (; i + LSE_LANES <= n; i += LSE_LANES)                                            \
        for (int j = 0; j < LSE_LANES; j++) {                                             \
            double x = (double)a[(i + j) * sa];                                           \
            double bj = b == NULL ? 1.0 : (double)b[(i + j) * sb];                        \
            if (b != NULL) x = bj != 0 ? lse_weighted_x(x, bj) : x;                       \
            int top = x == m;                                                             \
            double e = bj * lse_term(x, m, inv_tau, itl);                                      \
            e = (top || bj == 0) ? 0.0 : e;                                               \
            lse_kahan(ww + j, wc + j, lse_top_weight(x, m, bj));                          \
            lse_kahan(s + j, c + j, e);                                                   \
        }                                                                                 \
    for (; i < n; i++) {                                                                  \
        double x = (double)a[i * sa];                                                     \
        double bj = b == NULL ? 1.0 : (double)b[i * sb];                                  \
        if (b != NULL) x = bj != 0 ? lse_weighted_x(x, bj) : x;                           \
        int top = x == m;                                                                 \
        double e = bj * lse_term(x, m, inv_tau, itl);                                          \
        e = (top || bj == 0) ? 0.0 : e;                                                   \
        lse_kahan(ww, wc, lse_top_weight(x, m, bj));                                      \
        lse_kahan(s, c, e);                                                               \
    }                                                                                     \
    for (int j = 0; j < LSE_LANES; j++) {                                                 \
        lse_add_weight(w, tc, ww[j], -wc[j]);                                             \
        lse_neumaier(t, tc, s[j]);                                                        \
        lse_neumaier(t, tc, -c[j]);                                                       \
    }                                                                                     \
}                                                                                         \
                                                                                          \
LSE_INLINE void lse_row_impl_##SUF(const A_T *a, ptrdiff_t sa, const B_T *b, ptrdiff_t sb, \
                                   ptrdiff_t n, double inv_tau, double itl,               \
                                   double *m, double *w, double *t, double *c)            \
{                                                                                         \
    for (ptrdiff_t i0 = 0; i0 < n; i0 += LSE_ROW_BLOCK) {                                 \
        ptrdiff_t len = n - i0 < LSE_ROW_BLOCK ? n - i0 : LSE_ROW_BLOCK;                  \
        const A_T *ab = a + i0 * sa;                                                      \
        const B_T *bb = b == NULL ? NULL : b + i0 * sb;                                   \
        double bm = lse_block_max_##SUF(ab, sa, bb, sb, len);                             \
        if (bm > *m) {                                                                    \
            lse_rescale(w, t, c, *m, bm, inv_tau, itl);                                   \
            *m = bm;                                                                      \
        }                                                                                 \
        lse_block_sum_##SUF(ab, sa, bb, sb, len, *m, inv_tau, itl, w, t, c);                   \
    }                                                                                     \
}                                                                                         \
                                                                                          \
LSE_CLONES void lse_row_generic_##SUF(const A_T *a, ptrdiff_t sa, const B_T *b, ptrdiff_t sb,     \
                              ptrdiff_t n, double inv_tau, double itl,                    \
                              double *m, double *w, double *t, double *c)                 \
{                                                                                         \
    if (b == NULL) {                                                                      \
        if (sa == 1) lse_row_impl_##SUF(a, 1, NULL, 0, n, inv_tau, itl, m, w, t, c);            \
        else lse_row_impl_##SUF(a, sa, NULL, 0, n, inv_tau, itl, m, w, t, c);                   \
    } else {                                                                              \
        if (sa == 1 && sb == 1) lse_row_impl_##SUF(a, 1, b, 1, n, inv_tau, itl, m, w, t, c);    \
        else lse_row_impl_##SUF(a, sa, b, sb, n, inv_tau, itl, m, w, t, c);                     \
    }                                                                                     \
}                                                                                         \
                                                                                          \
LSE_INLINE void lse_cols_impl_##SUF(const A_T *a, ptrdiff_t sr, ptrdiff_t si,             \
                                    const B_T *b, ptrdiff_t br, ptrdiff_t bi,             \
                                    ptrdiff_t nr, ptrdiff_t nj, double inv_tau, double itl, \
                                    double *mt, double *wt, double *tt, double *ct)       \
{                                                                                         \
    double bm[LSE_TILE], s[LSE_TILE], c[LSE_TILE];                                        \
    for (ptrdiff_t j = 0; j < nj; j++) { s[j] = tt[j]; c[j] = -ct[j]; }                   \
    for (ptrdiff_t r0 = 0; r0 < nr; r0 += LSE_TILE_ROWS) {                                \
        ptrdiff_t r1 = nr - r0 < LSE_TILE_ROWS ? nr : r0 + LSE_TILE_ROWS;                 \
        for (ptrdiff_t j = 0; j < nj; j++) bm[j] = -INFINITY;                             \
        for (ptrdiff_t r = r0; r < r1; r++)                                               \
            for (ptrdiff_t j = 0; j < nj; j++) {                                          \
                double x = (double)a[r * sr + j * si];                                    \
                if (b != NULL) x = lse_weighted_x(x, (double)b[r * br + j * bi]);          \
                bm[j] = x > bm[j] ? x : bm[j];                                            \
            }                                                                             \
        for (ptrdiff_t j = 0; j < nj; j++) {                                              \
            if (bm[j] > mt[j]) {                                                          \
                double cj = -c[j];                                                        \
                lse_rescale(wt + j, s + j, &cj, mt[j], bm[j], inv_tau, itl);              \
                c[j] = -cj;                                                               \
                mt[j] = bm[j];                                                            \
            }                                                                             \
        }                                                                                 \
        for (ptrdiff_t r = r0; r < r1; r++)                                               \
            for (ptrdiff_t j = 0; j < nj; j++) {                                          \
                double x = (double)a[r * sr + j * si];                                    \
                double bj = b == NULL ? 1.0 : (double)b[r * br + j * bi];                 \
                if (b != NULL) x = bj != 0 ? lse_weighted_x(x, bj) : x;                   \
                int top = x == mt[j];                                                     \
                double werr = 0.0;                                                        \
                double e = bj * lse_term(x, mt[j], inv_tau, itl);                              \
                e = (top || bj == 0) ? 0.0 : e;                                           \
                lse_add_weight(wt + j, &werr, lse_top_weight(x, mt[j], bj), 0.0);         \
                c[j] -= werr;                   /* the sum is s - c */                    \
                lse_kahan(s + j, c + j, e);                                               \
            }                                                                             \
    }                                                                                     \
    for (ptrdiff_t j = 0; j < nj; j++) { tt[j] = s[j]; ct[j] = -c[j]; }                   \
}                                                                                         \
                                                                                          \
LSE_CLONES void lse_cols_generic_##SUF(const A_T *a, ptrdiff_t sr, ptrdiff_t si,                  \
                               const B_T *b, ptrdiff_t br, ptrdiff_t bi,                  \
                               ptrdiff_t nr, ptrdiff_t ni, double inv_tau, double itl,    \
                               double *m, double *w, double *t, double *c)                \
{                                                                                         \
    for (ptrdiff_t j0 = 0; j0 < ni; j0 += LSE_TILE) {                                     \
        ptrdiff_t nj = ni - j0 < LSE_TILE ? ni - j0 : LSE_TILE;                           \
        const A_T *at = a + j0 * si;                                                      \
        if (b == NULL) {                                                                  \
            if (si == 1) lse_cols_impl_##SUF(at, sr, 1, NULL, 0, 0, nr, nj, inv_tau, itl, \
                                             m + j0, w + j0, t + j0, c + j0);                     \
            else lse_cols_impl_##SUF(at, sr, si, NULL, 0, 0, nr, nj, inv_tau, itl,        \
                                     m + j0, w + j0, t + j0, c + j0);                             \
        } else {                                                                          \
            lse_cols_impl_##SUF(at, sr, si, b + j0 * bi, br, bi, nr, nj, inv_tau, itl,    \
                                m + j0, w + j0, t + j0, c + j0);                                  \
        }                                                                                 \
    }                                                                                     \
}

LSE_DEFINE(dd, double, double)
LSE_DEFINE(ff, float, float)
LSE_DEFINE(fd, float, double)
LSE_DEFINE(df, double, float)

/*
 * How exact the float32 loops' exps must be (the float64 loops' always are, to 0.52 ulp):
 * LSE_EXACT: about 2^-50 relative, so that a float32 log-sum-exp m + tau log S stays
 * within 1 ulp even where m and tau log S nearly cancel.  LSE_COARSE: 2^-34, for sums
 * needed only relative to themselves (log_softmax).  LSE_COARSE_FLOAT32: coarse in a
 * block where the running max m is >= 0, exact elsewhere, for a float32 log-sum-exp.
 * With m >= 0 the result m + tau log S is at least tau log S >= tau t / S (S = w + t,
 * w >= 1), and terms off by 2^-34 relative move it by at most tau 2^-34 t / S: 2^-34 of
 * itself, whatever the data.  The final max is at least the running one, so a block's
 * choice holds whatever follows, threads and merges included.  Only for float32
 * results: partials that may end in float64 (or divided, for a mean) stay exact.
 */
enum { LSE_EXACT = 0, LSE_COARSE = 1, LSE_COARSE_FLOAT32 = 2 };

#include "_lse_avx512.h"

/*
 * lse_row_SUF and lse_cols_SUF: the AVX-512 loops where the CPU has them and the input
 * is unweighted (and, for rows, contiguous), the portable ones otherwise.
 */
#ifdef LSE_HAVE_AVX512
#define LSE_DISPATCH(SUF, A_T, FAST)                                                      \
void lse_row_##SUF##SUF(const A_T *a, ptrdiff_t sa, const A_T *b, ptrdiff_t sb,           \
                        ptrdiff_t n, double inv_tau, double itl,                          \
                        double *m, double *w, double *t, double *c, int coarse)           \
{                                                                                         \
    if (b == NULL && sa == 1 && lse_use_avx512())                                         \
        lse512_row_##FAST(a, n, inv_tau, itl, m, w, t, c, coarse);                             \
    else                                                                                  \
        lse_row_generic_##SUF##SUF(a, sa, b, sb, n, inv_tau, itl, m, w, t, c);                 \
}                                                                                         \
                                                                                          \
void lse_cols_##SUF##SUF(const A_T *a, ptrdiff_t sr, ptrdiff_t si,                        \
                         const A_T *b, ptrdiff_t br, ptrdiff_t bi,                        \
                         ptrdiff_t nr, ptrdiff_t ni, double inv_tau, double itl,          \
                         double *m, double *w, double *t, double *c)                      \
{                                                                                         \
    if (b == NULL && lse_use_avx512())                                                    \
        lse512_cols_##FAST(a, sr, si, nr, ni, inv_tau, itl, m, w, t, c);                       \
    else                                                                                  \
        lse_cols_generic_##SUF##SUF(a, sr, si, b, br, bi, nr, ni, inv_tau, itl, m, w, t, c);   \
}
LSE_DISPATCH(d, double, d)
LSE_DISPATCH(f, float, f)
#else
/* coarse asks the AVX-512 loops for coarser exps where allowed: the portable ones ignore it */
#define lse_row_dd(a, sa, b, sb, n, inv_tau, itl, m, w, t, c, coarse) \
    lse_row_generic_dd(a, sa, b, sb, n, inv_tau, itl, m, w, t, c)
#define lse_row_ff(a, sa, b, sb, n, inv_tau, itl, m, w, t, c, coarse) \
    lse_row_generic_ff(a, sa, b, sb, n, inv_tau, itl, m, w, t, c)
#define lse_cols_dd lse_cols_generic_dd
#define lse_cols_ff lse_cols_generic_ff
#endif
/* What this build compiled in (lsecore.build_info): OpenMP, the AVX-512 loops, the x86-64-v3/v4 clones. */
static inline int lse_built_openmp(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

static inline int lse_built_avx512(void)
{
#ifdef LSE_HAVE_AVX512
    return 1;
#else
    return 0;
#endif
}

static inline int lse_built_clones(void)
{
#ifdef LSE_HAVE_CLONES
    return 1;
#else
    return 0;
#endif
}

/* Whether the AVX-512 loops run (1) or the portable ones (0). */
static inline int lse_simd_avx512(void)
{
#ifdef LSE_HAVE_AVX512
    return lse_use_avx512();
#else
    return 0;
#endif
}

#define lse_row_fd lse_row_generic_fd
#define lse_row_df lse_row_generic_df
#define lse_cols_fd lse_cols_generic_fd
#define lse_cols_df lse_cols_generic_df

/*
 * lse_normalize_SUF(a, ar, ai, out, or_, oi, nr, ni, m, s, sl, tau, log_mode) writes
 * the output pass of softmax or log_softmax over an (nr, ni) slice reduced over r:
 *     log_mode 0: out[r, i] = exp((a[r, i] - m[i]) / tau) / (s[i] + sl[i])  (the sum,
 *                 sl its low part or NULL),
 *                 nan where m[i] is +-inf;
 *     log_mode 1: out[r, i] = (a[r, i] - m[i]) / tau - s[i]        (s its log).
 * The quotient is carried in double-double (lse_quotient), so each output is rounded
 * from an exact argument.  Strides are in elements; out never aliases a.
 */
#define LSE_NORMALIZE_DEFINE(SUF, A_T, FAST)                                              \
LSE_INLINE void lse_normalize_impl_##SUF(const A_T *a, ptrdiff_t ar, ptrdiff_t ai,        \
                                         A_T *out, ptrdiff_t or_, ptrdiff_t oi,           \
                                         ptrdiff_t nr, ptrdiff_t ni, const double *m,     \
                                         const double *s, const double *sl, double tau,   \
                                         int log_mode)                                    \
{                                                                                         \
    double inv_tau, itl = lse_inv_tau(tau, &inv_tau);                                     \
    for (ptrdiff_t r = 0; r < nr; r++)                                                    \
        for (ptrdiff_t i = 0; i < ni; i++) {                                              \
            double zl, z = lse_quotient(a[r * ar + i * ai], m[i], inv_tau, itl, &zl);      \
            double v;                                                                     \
            if (log_mode) {                    /* z + zl - s, rounded once */             \
                double v1 = z - s[i];                                                     \
                v = isfinite(v1) ? v1 + (lse_two_sum_err(z, -s[i], v1) + zl) : v1;       \
            } else {                                                                      \
                v = isfinite(m[i]) ? lse_div_corrected(lse_exp_nonpos2(z, zl), s[i],      \
                                                       sl == NULL ? 0.0 : sl[i]) : NAN;   \
            }                                                                             \
            out[r * or_ + i * oi] = (A_T)v;                                               \
        }                                                                                 \
}                                                                                         \
                                                                                          \
LSE_CLONES void lse_normalize_generic_##SUF(const A_T *a, ptrdiff_t ar, ptrdiff_t ai,     \
                                            A_T *out, ptrdiff_t or_, ptrdiff_t oi,        \
                                            ptrdiff_t nr, ptrdiff_t ni, const double *m,  \
                                            const double *s, const double *sl, double tau, \
                                            int log_mode)                                 \
{                                                                                         \
    if (ni == 1 && ar == 1 && or_ == 1 && log_mode)      /* literal modes: vectorized */  \
        lse_normalize_impl_##SUF(a, 1, 0, out, 1, 0, nr, 1, m, s, sl, tau, 1);           \
    else if (ni == 1 && ar == 1 && or_ == 1)                                              \
        lse_normalize_impl_##SUF(a, 1, 0, out, 1, 0, nr, 1, m, s, sl, tau, 0);           \
    else if (ai == 1 && oi == 1 && log_mode)                                              \
        lse_normalize_impl_##SUF(a, ar, 1, out, or_, 1, nr, ni, m, s, sl, tau, 1);       \
    else if (ai == 1 && oi == 1)                                                          \
        lse_normalize_impl_##SUF(a, ar, 1, out, or_, 1, nr, ni, m, s, sl, tau, log_mode); \
    else                                                                                  \
        lse_normalize_impl_##SUF(a, ar, ai, out, or_, oi, nr, ni, m, s, sl, tau, log_mode); \
}                                                                                         \
                                                                                          \
void lse_normalize_##SUF(const A_T *a, ptrdiff_t ar, ptrdiff_t ai, A_T *out,              \
                         ptrdiff_t or_, ptrdiff_t oi, ptrdiff_t nr, ptrdiff_t ni,         \
                         const double *m, const double *s, const double *sl, double tau,  \
                         int log_mode)                                                    \
{                                                                                         \
    LSE_NORMALIZE_FAST(FAST)                                                              \
    lse_normalize_generic_##SUF(a, ar, ai, out, or_, oi, nr, ni, m, s, sl, tau, log_mode); \
}

#ifdef LSE_HAVE_AVX512
#define LSE_NORMALIZE_FAST(FAST)                                                          \
    if (!log_mode && ni == 1 && ar == 1 && or_ == 1 && isfinite(m[0])                     \
        && lse_use_avx512()) {                                                            \
        lse512_softmax_##FAST(a, out, nr, m[0], tau, s[0], sl == NULL ? 0.0 : sl[0]);     \
        return;                                                                           \
    }
#else
#define LSE_NORMALIZE_FAST(FAST)
#endif

LSE_NORMALIZE_DEFINE(d, double, d)
LSE_NORMALIZE_DEFINE(f, float, f)


/*
 * log|w + t + c| as *lh + *ll (about 2^-60 relative) and the sign of w + t + c, in two
 * steps so that a loop can run the libm calls of many partials before their Newton steps.
 *
 * lse_log_abs_start sets *lh to libm's log1p of (|w| - 1) + t near 1, so that w = 1 and
 * a t below one ulp of w keep t, and to its log elsewhere; the sum as *h + *l for the
 * Newton step, or *h = nan when *lh is final (an infinite, nan or zero sum).
 * lse_log_abs_newton returns *ll: one Newton step against exp(*lh) in double-double.
 */
LSE_INLINE void lse_log_abs_start(double w, double t, double c,
                                  double *lh, double *h, double *l, double *sign)
{
    double s = w + t;
    double lo = isfinite(s) ? lse_two_sum_err(w, t, s) + c : 0.0;
    double total = s + lo;
    *sign = total > 0 ? 1.0 : (total < 0 ? -1.0 : (total == 0 ? 0.0 : NAN));
    if (total < 0) { w = -w; t = -t; c = -c; s = -s; lo = -lo; }
    if (!isfinite(s) || s == 0.0) {                  /* inf, nan, or only c is left */
        *lh = isfinite(s) ? log(fabs(lo)) : log(s);
        *h = NAN;
        *l = 0.0;
        return;
    }
    *h = s;
    *l = lo;
    if (s >= 0.5 && s <= 2.0) {
        double v = w - 1.0;                      /* inexact for w < 0.5 (a mean's) */
        double u = v + t;
        double ulo = lse_two_sum_err(v, t, u) + (lse_two_sum_err(w, -1.0, v) + c);
        *lh = log1p(u);
        *h = 1.0 + u;
        *l = lse_two_sum_err(1.0, u, *h) + ulo;
    } else {
        *lh = log(s);
    }
}

LSE_INLINE double lse_log_abs_newton(double lh, double h, double l)
{
    if (isnan(h)) return 0.0;
    double el, eh = lse_exp_dd(lh, &el);
    return ((h - eh) + (l - el)) / eh;
}

/* x / d as a quotient plus *lo, the rest of the exact quotient to about 2^-104. */
LSE_INLINE double lse_div_dd(double x, double d, double *lo)
{
    double q = x / d;
    double pe, p = lse_two_prod(q, d, &pe);
    *lo = isfinite(q) ? ((x - p) - pe) / d : 0.0;
    return q;
}

/* m + tau (lh + ll), rounded once at the end where it matters. */
LSE_INLINE double lse_shift_add(double m, double tau, double lh, double ll)
{
    if (!isfinite(m) || !isfinite(lh) || !isfinite(ll)) return m + tau * (lh + ll);
    double pe, p = lse_two_prod(tau, lh, &pe);
    if (!isfinite(p)) return m + p;              /* tau log S overflows: +-inf */
    double s = m + p;
    return s + (lse_two_sum_err(m, p, s) + pe + tau * ll);
}

/* lse_finalize with libm's logs, run for a chunk of partials before their Newton steps. */
LSE_INLINE void lse_finalize_portable(ptrdiff_t n, const double *m, const double *w,
                                      const double *t, const double *c, const double *divisor,
                                      double tau, double *out, double *sign, double *log_sum)
{
    enum { CHUNK = 128 };
    double lh[CHUNK], h[CHUNK], l[CHUNK], sg[CHUNK];
    int scale[CHUNK];
    for (ptrdiff_t j0 = 0; j0 < n; j0 += CHUNK) {
        ptrdiff_t nc = n - j0 < CHUNK ? n - j0 : CHUNK;
        for (ptrdiff_t k = 0; k < nc; k++) {     /* the libm calls */
            ptrdiff_t j = j0 + k;
            double wj = w[j], tj = t[j], cj = c[j];
            scale[k] = 0;
            if (divisor != NULL) {
                double lw, lt, d = divisor[j], big = fmax(fabs(wj), fabs(tj));
                /* a quotient beyond float64's normal range: the sum and the divisor are
                 * divided by their powers of two first, whose ratio 2^scale is logged apart */
                if (big > 0.0 && isfinite(big) && isfinite(d) && d != 0.0
                    && abs(ilogb(big) - ilogb(d)) > 960) {
                    int es = ilogb(big), ed = ilogb(d);
                    scale[k] = es - ed;
                    wj = ldexp(wj, -es);
                    tj = ldexp(tj, -es);
                    cj = ldexp(cj, -es);
                    d = ldexp(d, -ed);
                }
                wj = lse_div_dd(wj, d, &lw);
                tj = lse_div_dd(tj, d, &lt);
                cj = cj / d + lw + lt;
            }
            lse_log_abs_start(wj, tj, cj, lh + k, h + k, l + k, sg + k);
        }
        for (ptrdiff_t k = 0; k < nc; k++) {     /* independent Newton steps */
            ptrdiff_t j = j0 + k;
            double ll = lse_log_abs_newton(lh[k], h[k], l[k]);
            if (scale[k] != 0 && isfinite(lh[k])) {    /* + scale ln2, LSE_N1 scale exact */
                double e2, p2 = lse_two_prod((double)scale[k], LSE_N2, &e2);
                double a = (double)scale[k] * LSE_N1, s1 = lh[k] + a;
                ll += lse_two_sum_err(lh[k], a, s1) + p2 + e2 + (double)scale[k] * LSE_N3;
                lh[k] = s1;
            }
            double lg = lh[k] + ll;
            double res = lse_shift_add(m[j], tau, lh[k], ll);
            double sj = sg[k];
            if (m[j] == -INFINITY && !isnan(lg)) {
                res = -INFINITY;
                sj = 0.0;
            }
            if (isnan(res)) sj = NAN;
            out[j] = res;
            if (sign != NULL) sign[j] = sj;
            if (log_sum != NULL) log_sum[j] = lg;
        }
    }
}

/*
 * Finalize n partials: out[j] = m[j] + tau log|S_j|, sign[j] = sign(S_j) and
 * log_sum[j] = log|S_j| for S_j = (w[j] + t[j] + c[j]) / divisor[j] (sign, log_sum and
 * divisor may be NULL).  A max of -inf (an empty or all -inf slice, or zero weights) is
 * a zero sum: -inf with sign 0; a nan result has a nan sign.  With AVX-512, 8 at a
 * time, and the rare partials that the vector code leaves by the portable code.
 */
LSE_CLONES void lse_finalize(ptrdiff_t n, const double *m, const double *w, const double *t,
                             const double *c, const double *divisor, double tau,
                             double *out, double *sign, double *log_sum)
{
#ifdef LSE_HAVE_AVX512
    if (lse_use_avx512()) {
        for (ptrdiff_t j0 = 0; j0 < n; j0 += 8) {
            ptrdiff_t nk = n - j0 < 8 ? n - j0 : 8;
            const double *dj = divisor != NULL ? divisor + j0 : NULL;
            double *sj = sign != NULL ? sign + j0 : NULL, *lj = log_sum != NULL ? log_sum + j0 : NULL;
            unsigned rest = ((1u << nk) - 1) & ~(unsigned)lse512_finalize(
                nk, m + j0, w + j0, t + j0, c + j0, dj, tau, out + j0, sj, lj);
            for (; rest; rest &= rest - 1) {
                ptrdiff_t j = j0 + __builtin_ctz(rest);
                lse_finalize_portable(1, m + j, w + j, t + j, c + j,
                                      divisor != NULL ? divisor + j : NULL, tau, out + j,
                                      sign != NULL ? sign + j : NULL,
                                      log_sum != NULL ? log_sum + j : NULL);
            }
        }
        return;
    }
#endif
    lse_finalize_portable(n, m, w, t, c, divisor, tau, out, sign, log_sum);
}

/*
 * softmax (log_mode 0) or log_softmax (1) of one contiguous row of n elements into out:
 * the row's partial, its sum (or the log of it, as the finalizer computes it), then the
 * output pass while the row is still in cache.  With AVX-512, a softmax row of at most
 * LSE_ROW_BLOCK elements keeps its exps in buf (NULL: none) instead of computing them
 * twice.
 */
#ifdef LSE_HAVE_AVX512
#define LSE_SOFTMAX_BUFFERED(SUF)                                                         \
    if (!log_mode && buf != NULL && n <= LSE_ROW_BLOCK && lse_use_avx512()                \
        && lse512_softmax_buffered_##SUF(a, out, buf, n, tau))                            \
        return;
#else
#define LSE_SOFTMAX_BUFFERED(SUF)
#endif
#define LSE_SOFTMAX_ROW_DEFINE(SUF, A_T)                                                  \
void lse_softmax_row_##SUF(const A_T *a, A_T *out, double *buf, ptrdiff_t n,             \
                           double tau, int log_mode)                                      \
{                                                                                         \
    LSE_SOFTMAX_BUFFERED(SUF)                                                             \
    double m = -INFINITY, w = 0.0, t = 0.0, c = 0.0, s, sl = 0.0, inv_tau;                \
    double itl = lse_inv_tau(tau, &inv_tau);                                              \
    /* log_softmax needs the sum only relative to itself */                               \
    lse_row_##SUF##SUF(a, 1, NULL, 0, n, inv_tau, itl, &m, &w, &t, &c, LSE_COARSE);       \
    if (log_mode && sizeof(A_T) == 4) {  /* libm's log|S|, 2^-52: plenty for float32 */   \
        double h, l, sg;                                                                  \
        lse_log_abs_start(w, t, c, &s, &h, &l, &sg);                                      \
    } else if (log_mode) {             /* log|S|, as the finalizer computes it */         \
        double res;                                                                       \
        lse_finalize(1, &m, &w, &t, &c, NULL, 1.0, &res, NULL, &s);                       \
    } else {                                                                              \
        lse_split_sum(w, t, c, &s, &sl);                                                  \
    }                                                                                     \
    lse_normalize_##SUF(a, 1, 0, out, 1, 0, n, 1, &m, &s, &sl, tau, log_mode);            \
}

LSE_SOFTMAX_ROW_DEFINE(d, double)
LSE_SOFTMAX_ROW_DEFINE(f, float)

#endif
