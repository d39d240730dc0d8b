/* What all loops share: build switches, named constants, compensated sums, scalar exps, partials. */
#ifndef LSECORE_LSE_COMMON_H
#define LSECORE_LSE_COMMON_H

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
 */

/* Block and tile sizes of the loops. */
#define LSE_LANES 32        /* independent accumulators of the portable exp pass */
/*
 * A block is read once from memory by its max pass and again, from cache (128 KiB for
 * float64, in L2), by its exp pass.  Long blocks keep rescales of the running sum rare:
 * each costs up to an ulp of what was summed before it.
 */
#define LSE_ROW_BLOCK 16384 /* elements of a row per block */
#define LSE_TILE 64         /* columns of a column tile */
#define LSE_TILE_ROWS 256   /* rows of a column tile per block */
#define LSE_SHORT 32        /* rows of a tile of non-contiguous columns per copy (AVX-512) */
#define LSE_SCAN_BLOCK 128  /* outputs of a scan's row finalized together */

/*
 * The ranges of exp's argument.  exp(x) is a normal float64 above LSE_EXP_NORMAL_MIN (and
 * finite below LSE_EXP_NORMAL_MAX), and rounds to 0 below LSE_EXP_ZERO = log(2^-1075).
 * The exps clamp their argument at LSE_EXP_CLAMP, below LSE_EXP_ZERO: -inf then reduces
 * like a finite argument to an exp of 0, and the argument's low part is moot there.
 */
#define LSE_EXP_NORMAL_MIN (-708.0)
#define LSE_EXP_NORMAL_MAX 708.0
#define LSE_EXP_ZERO (-745.2)
#define LSE_EXP_CLAMP (-746.0)

/* ln2 and its splits for the exps' argument reductions. */
#define LSE_INV_LN2 0x1.71547652b82fep0     /* 1/ln2 */
#define LSE_LN2 0x1.62e42fefa39efp-1        /* ln2 rounded to float64, */
#define LSE_LN2_TAIL 0x1.abc9e3b39803fp-56  /* and ln2 - LSE_LN2 */
/* ln2 = LSE_LN2_HI + LSE_LN2_LO, LSE_LN2_HI with 11 trailing zero bits (k LSE_LN2_HI exact
 * for |k| < 2^11) */
#define LSE_LN2_HI 0x1.62e42fefa3800p-1
#define LSE_LN2_LO 0x1.ef35793c76730p-45
/* ln2 = N1 + N2 + N3 to about 2^-155, N1 with 40 bits (E N1 exact for |E| < 2^13). */
#define LSE_N1 0x1.62e42fefa2000p-1
#define LSE_N2 0x1.9ef35793c7673p-41
#define LSE_N3 0x1.f97b57a079a19p-103

/* target_clones needs the loader's ifunc, which glibc has and musl has not. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__) \
    && !defined(LSE_NO_CLONES)
#define LSE_HAVE_CLONES 1
#define LSE_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LSE_CLONES
#endif

/* The AVX-512 loops are compiled where GCC or clang targets x86-64; they run only where the
 * CPU has AVX-512 (_lse_dispatch.h). */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(LSE_NO_AVX512)
#define LSE_HAVE_AVX512 1
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
 * The exps.  Each accuracy a loop needs has one algorithm, written once for scalars and,
 * step by step the same, once for AVX-512 vectors where the AVX-512 loops need it:
 *   lse_exp_nonpos2   x <= 0, 0.7 ulp: the portable loops' terms; a Taylor polynomial
 *                     the compiler vectorizes (no table: a gather would cost more).
 *   lse512_exp2       x <= 0, 0.52 ulp: the AVX-512 loops' terms, from a 16-entry table
 *                     held in two registers (_lse_avx512.h).
 *   lse512_exp_f32    x <= 0, 2^-50 (or 2^-34): the AVX-512 float32 terms, cheaper.
 *   lse_exp_dd        |x| < 708, 2^-60, as hi + lo: rescales and the finalizer's Newton
 *                     step (lse512_exp_dd lane by lane).
 *   lse512_exp_dd_tab x + xl <= 0, about 2^-63, as hi + lo, from a 16-entry table: the
 *                     AVX-512 pairs' and scans' terms, whose rounding test needs the low
 *                     part (_lse_avx512_math.h).
 *   lse_exp_exact     2^-104 in double-double: the accurate tier (_lse_exact.h).
 * The portable and AVX-512 paths differ in the last bits of a term, below what either
 * promises of a result; each path is deterministic.
 */

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
    x = LSE_EXP_CLAMP > x ? LSE_EXP_CLAMP : x;   /* nan stays nan, -inf is clamped */
    double kd = x * LSE_INV_LN2 + shift;
    uint64_t ki = lse_asuint64(kd);
    kd -= shift;
    double rh = x - kd * LSE_LN2_HI;             /* exact: LSE_LN2_HI's trailing zeros */
    double tl = kd * LSE_LN2_LO;
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
    return x < LSE_EXP_NORMAL_MIN ? (x < LSE_EXP_ZERO ? 0.0 : tiny) : scaled;
}

/* Knuth's two-sum: the rounding error of s = x + y. */
LSE_INLINE double lse_two_sum_err(double x, double y, double s)
{
    double yy = s - x;
    return (x - (s - yy)) + (y - yy);
}

/* The two-product: x * y = p + *e exactly (for |x|, |y| < 2^995); *e = 0 when p is not
 * finite.  fma is one instruction where the CPU has it (x86-64-v3 and up, aarch64). */
LSE_INLINE double lse_two_prod(double x, double y, double *e)
{
    double p = x * y;
    *e = isfinite(p) ? fma(x, y, -p) : 0.0;
    return p;
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
    return lse_exp_nonpos2(z, z > LSE_EXP_CLAMP ? zl : 0.0);   /* moot (and maybe large) below */
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

/*
 * exp(x), |x| < 708, as hi + *lo, about 2^-60 relative: the factor of the rare rescales
 * of a running sum, which must not cost an ulp each, and the finalizer's Newton step.
 * exp(r) = 1 + r + r^2/2 + r^3 q with the first three terms summed exactly.
 */
static inline double lse_exp_dd(double x, double *lo)
{
    *lo = 0.0;
    if (!(x > LSE_EXP_NORMAL_MIN && x < LSE_EXP_NORMAL_MAX)) return exp(x);  /* +-inf, nan, extremes */
    double kd = nearbyint(x * LSE_INV_LN2);
    double rh = x - kd * LSE_LN2_HI;
    double tl = kd * LSE_LN2_LO;
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
typedef enum { LSE_EXACT = 0, LSE_COARSE = 1, LSE_COARSE_FLOAT32 = 2 } lse_precision;

#endif
