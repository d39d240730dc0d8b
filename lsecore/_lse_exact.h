/* The accurate tier: one slice's log-sum-exp in double-double, for the results that the fast loops cannot round right. */
#ifndef LSECORE_LSE_EXACT_H
#define LSECORE_LSE_EXACT_H

#include "_lse_blocks.h"

/*
 * The fast loops of _lse_blocks.h and _lse_avx512.h compute each term to about an ulp, so a
 * result m + tau log S is off by up to tau 2^-52 t / S beside its rounding.  That is far
 * below an ulp unless the result is much smaller than tau (m and tau log S cancel), or
 * the terms were weighted in ways the fast loops round (weights beyond 2^967 of each other).
 * lse_finalize flags those results (lse_refine_flag) and the caller recomputes their
 * slices here: every term exp(z) to about 2^-104, z = (a - m) / tau carried exactly,
 * weights multiplied exactly and scaled by powers of two (so that terms below 2^-1022 of
 * the max keep their bits), the sum in double-double and its log by one Newton step.
 * The result is rounded once: within 1 ulp wherever |result| > 2^-48 (|m| + n tau), and
 * otherwise within an absolute 2^-100 (|m| + n tau).
 */

typedef struct { double h, l; } lse_dd;

/* |a| >= |b| or a == 0: a + b = h + l exactly. */
LSE_INLINE lse_dd lse_dd_fast(double a, double b)
{
    lse_dd r;
    r.h = a + b;
    r.l = b - (r.h - a);
    return r;
}

/* Double-double sum, relative error below 3 2^-106 (the accurate algorithm). */
LSE_INLINE lse_dd lse_dd_add(lse_dd x, lse_dd y)
{
    double sh = x.h + y.h, sl = lse_two_sum_err(x.h, y.h, sh);
    double th = x.l + y.l, tl = lse_two_sum_err(x.l, y.l, th);
    lse_dd s = lse_dd_fast(sh, sl + th);
    return lse_dd_fast(s.h, s.l + tl);
}

/* Double-double product, relative error below 5 2^-106. */
LSE_INLINE lse_dd lse_dd_mul(lse_dd x, lse_dd y)
{
    double e, p = lse_two_prod(x.h, y.h, &e);
    return lse_dd_fast(p, e + (x.h * y.l + x.l * y.h));
}

LSE_INLINE lse_dd lse_dd_mul_d(lse_dd x, double y)
{
    double e, p = lse_two_prod(x.h, y, &e);
    return lse_dd_fast(p, e + x.l * y);
}

LSE_INLINE lse_dd lse_dd_ldexp(lse_dd x, int e)
{
    lse_dd r = {ldexp(x.h, e), ldexp(x.l, e)};
    return r;
}

/* 2^(j/64) = LSE_X_HI[j] + LSE_X_LO[j], j < 64, to 2^-107. */
static const double LSE_X_HI[64] = {
    0x1.0000000000000p+0, 0x1.02c9a3e778061p+0, 0x1.059b0d3158574p+0, 0x1.0874518759bc8p+0,
    0x1.0b5586cf9890fp+0, 0x1.0e3ec32d3d1a2p+0, 0x1.11301d0125b51p+0, 0x1.1429aaea92de0p+0,
    0x1.172b83c7d517bp+0, 0x1.1a35beb6fcb75p+0, 0x1.1d4873168b9aap+0, 0x1.2063b88628cd6p+0,
    0x1.2387a6e756238p+0, 0x1.26b4565e27cddp+0, 0x1.29e9df51fdee1p+0, 0x1.2d285a6e4030bp+0,
    0x1.306fe0a31b715p+0, 0x1.33c08b26416ffp+0, 0x1.371a7373aa9cbp+0, 0x1.3a7db34e59ff7p+0,
    0x1.3dea64c123422p+0, 0x1.4160a21f72e2ap+0, 0x1.44e086061892dp+0, 0x1.486a2b5c13cd0p+0,
    0x1.4bfdad5362a27p+0, 0x1.4f9b2769d2ca7p+0, 0x1.5342b569d4f82p+0, 0x1.56f4736b527dap+0,
    0x1.5ab07dd485429p+0, 0x1.5e76f15ad2148p+0, 0x1.6247eb03a5585p+0, 0x1.6623882552225p+0,
    0x1.6a09e667f3bcdp+0, 0x1.6dfb23c651a2fp+0, 0x1.71f75e8ec5f74p+0, 0x1.75feb564267c9p+0,
    0x1.7a11473eb0187p+0, 0x1.7e2f336cf4e62p+0, 0x1.82589994cce13p+0, 0x1.868d99b4492edp+0,
    0x1.8ace5422aa0dbp+0, 0x1.8f1ae99157736p+0, 0x1.93737b0cdc5e5p+0, 0x1.97d829fde4e50p+0,
    0x1.9c49182a3f090p+0, 0x1.a0c667b5de565p+0, 0x1.a5503b23e255dp+0, 0x1.a9e6b5579fdbfp+0,
    0x1.ae89f995ad3adp+0, 0x1.b33a2b84f15fbp+0, 0x1.b7f76f2fb5e47p+0, 0x1.bcc1e904bc1d2p+0,
    0x1.c199bdd85529cp+0, 0x1.c67f12e57d14bp+0, 0x1.cb720dcef9069p+0, 0x1.d072d4a07897cp+0,
    0x1.d5818dcfba487p+0, 0x1.da9e603db3285p+0, 0x1.dfc97337b9b5fp+0, 0x1.e502ee78b3ff6p+0,
    0x1.ea4afa2a490dap+0, 0x1.efa1bee615a27p+0, 0x1.f50765b6e4540p+0, 0x1.fa7c1819e90d8p+0,
};
static const double LSE_X_LO[64] = {
    0x0.0p+0, -0x1.19083535b085dp-56, 0x1.d73e2a475b465p-55, 0x1.186be4bb284ffp-57,
    0x1.8a62e4adc610bp-54, 0x1.03a1727c57b53p-59, -0x1.6c51039449b3ap-54, -0x1.32fbf9af1369ep-54,
    -0x1.19041b9d78a76p-55, 0x1.e5b4c7b4968e4p-55, 0x1.e016e00a2643cp-54, 0x1.dc775814a8495p-55,
    0x1.9b07eb6c70573p-54, 0x1.2bd339940e9d9p-55, 0x1.612e8afad1255p-55, 0x1.0024754db41d5p-54,
    0x1.6f46ad23182e4p-55, 0x1.32721843659a6p-54, -0x1.63aeabf42eae2p-54, -0x1.5e436d661f5e3p-56,
    0x1.ada0911f09ebcp-55, -0x1.ef3691c309278p-58, 0x1.89b7a04ef80d0p-59, 0x1.3c1a3b69062f0p-56,
    0x1.d4397afec42e2p-56, -0x1.4b309d25957e3p-54, -0x1.07abe1db13cadp-55, 0x1.9bb2c011d93adp-54,
    0x1.6324c054647adp-54, 0x1.ba6f93080e65ep-54, -0x1.383c17e40b497p-54, -0x1.bb60987591c34p-54,
    -0x1.bdd3413b26456p-54, -0x1.bbe3a683c88abp-57, -0x1.16e4786887a99p-55, -0x1.0245957316dd3p-54,
    -0x1.41577ee04992fp-55, 0x1.05d02ba15797ep-56, -0x1.d4c1dd41532d8p-54, -0x1.fc6f89bd4f6bap-54,
    0x1.6e9f156864b27p-54, 0x1.5cc13a2e3976cp-55, -0x1.75fc781b57ebcp-57, -0x1.d185b7c1b85d1p-54,
    0x1.c7c46b071f2bep-56, -0x1.359495d1cd533p-54, -0x1.d2f6edb8d41e1p-54, 0x1.0fac90ef7fd31p-54,
    0x1.7a1cd345dcc81p-54, -0x1.2805e3084d708p-57, -0x1.5584f7e54ac3bp-56, 0x1.23dd07a2d9e84p-55,
    0x1.11065895048ddp-55, 0x1.2884dff483cadp-54, 0x1.503cbd1e949dbp-56, -0x1.cbc3743797a9cp-54,
    0x1.2ed02d75b3707p-55, 0x1.c2300696db532p-54, -0x1.1a5cd4f184b5cp-54, 0x1.39e8980a9cc8fp-55,
    -0x1.e9c23179c2893p-54, 0x1.dc7f486a4b6b0p-54, 0x1.9d3e12dd8a18bp-54, 0x1.74853f3a5931ep-55,
};

/* ln2 / 64 = L1 + L2 + L3, L1 with 29 bits (k L1 exact for |k| < 2^24); ln2's split
 * LSE_N1 + LSE_N2 + LSE_N3 is _lse_blocks.h's. */
#define LSE_L1 0x1.62e42fe000000p-7
#define LSE_L2 0x1.f473de6af278fp-36
#define LSE_L3 -0x1.8cff81a12a17ep-91

/*
 * exp(z) for |z.h| < 1500 as 2^*q (h + l), h + l in [0.7, 1.42] to about 2^-104 relative:
 * z = (64 q + j) ln2/64 + r, |r| <= ln2/128, p = exp(r) - 1 by its Taylor series in
 * double-double up to r^5 and in double beyond (r^6/6! < 2^-54), times 2^(j/64) from the
 * table.  *m1 = exp(z) - 1 (m1 may be NULL), exact relative to itself also where z is
 * tiny (p itself).
 * Beyond that range the value is 0 (z < -1500: no weight can bring it back), *m1 = -1,
 * and nan stays nan.
 */
static inline lse_dd lse_exp_exact(lse_dd z, int *q, lse_dd *m1)
{
    static const lse_dd c120 = {0x1.1111111111111p-7, 0x1.1111111111111p-63};
    static const lse_dd c24 = {0x1.5555555555555p-5, 0x1.5555555555555p-59};
    static const lse_dd c6 = {0x1.5555555555555p-3, 0x1.5555555555555p-57};
    *q = 0;
    if (!(z.h > -1500.0 && z.h < 1500.0)) {
        lse_dd r = {z.h != z.h ? z.h : (z.h > 0 ? INFINITY : 0.0), 0.0};
        if (m1 != NULL) *m1 = (lse_dd){z.h != z.h ? z.h : (z.h > 0 ? INFINITY : -1.0), 0.0};
        return r;
    }
    double kd = nearbyint(z.h * 0x1.71547652b82fep+6);     /* 64 / ln2 */
    long k = (long)kd;
    int j = (int)(k & 63);
    *q = (int)((k - j) / 64);
    double e2, p2 = lse_two_prod(kd, LSE_L2, &e2);
    lse_dd r = lse_dd_add((lse_dd){z.h - kd * LSE_L1, 0.0}, (lse_dd){-p2, -e2});
    r = lse_dd_add(r, (lse_dd){z.l, -kd * LSE_L3});
    double x = r.h;
    double tail = 1.0 / 720.0 + x * (1.0 / 5040.0 + x * (1.0 / 40320.0 + x * (1.0 / 362880.0
                  + x * (1.0 / 3628800.0 + x * (1.0 / 39916800.0)))));
    lse_dd p = lse_dd_add(c120, (lse_dd){x * tail, 0.0});
    p = lse_dd_add(c24, lse_dd_mul(p, r));
    p = lse_dd_add(c6, lse_dd_mul(p, r));
    p = lse_dd_add((lse_dd){0.5, 0.0}, lse_dd_mul(p, r));
    p = lse_dd_add(lse_dd_mul(p, lse_dd_mul(r, r)), r);      /* exp(r) - 1 */
    if (k == 0) {
        if (m1 != NULL) *m1 = p;
        return lse_dd_add((lse_dd){1.0, 0.0}, p);
    }
    lse_dd t = {LSE_X_HI[j], LSE_X_LO[j]};
    lse_dd e = lse_dd_add(t, lse_dd_mul(t, p));
    if (m1 != NULL)                              /* |exp(z) - 1| > 2^-8: no cancellation */
        *m1 = lse_dd_add(lse_dd_ldexp(e, *q), (lse_dd){-1.0, 0.0});
    return e;
}

/* x / y in double-double, for y != 0. */
LSE_INLINE lse_dd lse_dd_div(lse_dd x, lse_dd y)
{
    double q1 = x.h / y.h;
    lse_dd r = lse_dd_add(x, lse_dd_mul_d(y, -q1));
    return lse_dd_fast(q1, r.h / y.h);
}

/* e ln2 in double-double (|e| < 2^13). */
LSE_INLINE lse_dd lse_ln2_times(int e)
{
    double n2e, n2 = lse_two_prod((double)e, LSE_N2, &n2e);
    return lse_dd_add((lse_dd){(double)e * LSE_N1, 0.0}, (lse_dd){n2, n2e + (double)e * LSE_N3});
}

/* log1p(x) for x > -1/2 in double-double, to about 2^-104 of itself: libm's log1p, then
 * one Newton step y + (x - expm1(y)) / (1 + expm1(y)). */
static inline lse_dd lse_log1p_exact(lse_dd x)
{
    double y = log1p(x.h);
    if (y == 0.0) return x;
    int q;
    lse_dd m1;
    lse_exp_exact((lse_dd){y, 0.0}, &q, &m1);
    lse_dd num = lse_dd_add(x, (lse_dd){-m1.h, -m1.l});
    return lse_dd_fast(y, num.h / (1.0 + m1.h));
}

/* log(x) for a finite x > 0 in double-double, to about 2^-104 absolute plus 2^-104 of it:
 * x = 2^e f with f in [1/sqrt2, sqrt2), log1p(f - 1) as lse_log1p_exact, plus e ln2. */
static inline lse_dd lse_log_exact(lse_dd x)
{
    int e;
    double f = frexp(x.h, &e);
    if (f < 0.70710678118654752) {
        f *= 2.0;
        e -= 1;
    }
    lse_dd lg = lse_log1p_exact(lse_dd_fast(f - 1.0, ldexp(x.l, -e)));  /* f - 1 exact */
    return e != 0 ? lse_dd_add(lg, lse_ln2_times(e)) : lg;
}

/* (x - m) / tau in double-double, for finite x and m. */
LSE_INLINE lse_dd lse_quotient_exact(double x, double m, double tau)
{
    double d = x - m, dl = lse_two_sum_err(x, -m, d);
    if (tau == 1.0) return lse_dd_fast(d, dl);
    double q = d / tau;
    return lse_dd_fast(q, (fma(-q, tau, d) + dl) / tau);
}

/*
 * The sums of one slice's weighted terms b exp(z), z = (a - m) / tau <= 0: 2^e w over
 * the maxima (z = 0) and 2^e t over the others, each term added at the scale of the
 * largest seen (e follows it), so that neither huge weights nor terms below 2^-1022 lose
 * bits; and, unscaled, x = sum b expm1(z), which a mean's log takes without cancelling.
 */
typedef struct { lse_dd w, t, x; int e; int any; } lse_exact_sum;

LSE_INLINE void lse_exact_rescale(lse_exact_sum *acc, int e)
{
    acc->w = lse_dd_ldexp(acc->w, acc->e - e);
    acc->t = lse_dd_ldexp(acc->t, acc->e - e);
    acc->e = e;
}

LSE_INLINE void lse_exact_add(lse_exact_sum *acc, lse_dd z, double b, int mean)
{
    int q, eb = 1;
    lse_dd m1, x = lse_exp_exact(z, &q, mean ? &m1 : NULL);
    if (mean) acc->x = lse_dd_add(acc->x, lse_dd_mul_d(m1, b));
    if (x.h == 0.0) return;
    /* b = 2^eb bm, |bm| in [1/2, 1): both factors finite, the product exact to 2^-106 */
    lse_dd term = b == 1.0 ? lse_dd_ldexp(x, -1) : lse_dd_mul_d(x, frexp(b, &eb));
    int te = q + eb;
    if (!acc->any) {
        acc->any = 1;
        acc->e = te;
    } else if (te > acc->e + 64) {
        lse_exact_rescale(acc, te);
    }
    if (te != acc->e) term = lse_dd_ldexp(term, te - acc->e);
    if (z.h == 0.0 && z.l == 0.0) acc->w = lse_dd_add(acc->w, term);
    else acc->t = lse_dd_add(acc->t, term);
}

/* |w| > 0 with |t| <= |w| / 2 of its sign: log|w + t| as log|w| + log1p(t / w), which
 * keeps all of t's bits where it is tiny against w. */
LSE_INLINE lse_dd lse_log_split(lse_dd w, lse_dd t)
{
    lse_dd aw = w.h < 0 ? (lse_dd){-w.h, -w.l} : w;
    return lse_dd_add(lse_log_exact(aw), lse_log1p_exact(lse_dd_div(t, w)));
}

/*
 * m + tau log|S / divisor| rounded once for S = 2^e (w + t), *sign = sign(S).  divisor 0:
 * none.  A mean whose value is within a factor 2 of the max's takes log1p(x / divisor)
 * (x = S - divisor exactly, summed without cancelling), so that a temperature far above
 * the spread of a keeps the mean exact.
 */
LSE_INLINE double lse_exact_result(lse_exact_sum *acc, double m, double tau, double divisor,
                                   double *sign)
{
    lse_dd s = lse_dd_add(acc->w, acc->t);
    if (!acc->any || s.h == 0.0) {
        *sign = 0.0;
        return -INFINITY;
    }
    *sign = (s.h > 0) == !(divisor < 0) ? 1.0 : -1.0;   /* the sign of S / divisor */
    if (acc->e > -900 && acc->e < 900) {          /* no scale left where there can be none */
        lse_exact_rescale(acc, 0);
        s = lse_dd_add(acc->w, acc->t);
    }
    lse_dd lg;
    lse_dd xd = divisor != 0.0 ? lse_dd_div(acc->x, (lse_dd){divisor, 0.0}) : acc->x;
    if (divisor != 0.0 && isfinite(xd.h) && xd.h > -0.5 && xd.h < 0.5) {
        lg = lse_log1p_exact(xd);
    } else {
        int split = (acc->w.h > 0) == (s.h > 0) && acc->w.h != 0.0
                    && fabs(acc->t.h) <= 0.5 * fabs(acc->w.h);
        lg = split ? lse_log_split(acc->w, acc->t)
                   : lse_log_exact(s.h < 0 ? (lse_dd){-s.h, -s.l} : s);
        if (acc->e != 0) lg = lse_dd_add(lg, lse_ln2_times(acc->e));
        if (divisor != 0.0) {
            lse_dd ld = lse_log_exact((lse_dd){fabs(divisor), 0.0});
            lg = lse_dd_add(lg, (lse_dd){-ld.h, -ld.l});
        }
    }
    if (!isfinite(tau * lg.h)) return m + tau * lg.h;   /* overflows: +-inf */
    lse_dd r = lse_dd_add((lse_dd){m, 0.0}, lse_dd_mul_d(lg, tau));
    return r.h + r.l;
}

/*
 * Whether the fast result out = m + tau log(S / divisor) of the partial (m, w, t, c), with
 * S = w + t + c, of a slice of n elements may be off by more than half an ulp of a float
 * of `bits` bits beside its own rounding.  Each term is within eps of itself (eps_pos
 * where m >= 0) when the loops carried x - m exactly (`carried`: a unit temperature);
 * otherwise the roundings of x - m and of its product by 1/tau add up to 2^-53 (|m| / tau
 * + 3 |z|) to a term exp(z), and sum_i t_i |z_i| <= t log(n / t) (the entropy's bound).
 * Those move tau log S by their sum over S, the finalizer's log by 2^-56 of it.  The loops
 * flush terms below 2^-1021, which a weight of up to |b| makes up to `lost` = |b| 2^-1021:
 * results with such weights against their sum are flagged too.  Infinite,
 * nan and -inf results are exact; sums with negative terms are as exact as their condition
 * number allows, and are not flagged.
 */
LSE_INLINE int lse_refine_flag(double m, double w, double t, double c, double tau,
                               double out, double eps_neg, double eps_pos, int bits,
                               double n, int carried, double lost)
{
    double s = w + t + c;
    if (!isfinite(m)) return 0;
    /* finite weights whose sum overflows, or so small that their products are subnormal */
    if (isinf(w) || isinf(t) || isinf(w + t) || (s > 0 && s < 0x1p-960)) return 1;
    if (!(isfinite(out) && s > 0 && w >= 0 && t >= 0)) return 0;
    double tt = t + c > 0 ? t + c : 0.0;
    double terms = (m >= 0 ? eps_pos : eps_neg) * tt;
    if (!carried && tt > 0)
        terms += 0x1p-53 * tt * (fabs(m) / tau + 3.0 * fmax(log(n / tt), 0.0));
    double err = tau * terms / s + 0x1p-56 * fabs(out - m) + 0x1p-100 * fabs(m);
    /* half an ulp: 2^(exponent of out) 2^-bits, from out's exponent bits (0 for
     * subnormal results, which are then always recomputed) */
    double half_ulp = lse_asdouble(lse_asuint64(out) & 0x7ff0000000000000ULL)
                      * (bits == 24 ? 0x1p-24 : 0x1p-53);
    return err > half_ulp || lost > 0x1p-60 * s;
}


#ifdef LSE_HAVE_AVX512
/* The accurate tier's sums of one unweighted contiguous row, 8 terms at a time. */
typedef struct { __m512d h, l; } lse512_dd;

LSE512_INLINE lse512_dd lse512_dd_fast(__m512d a, __m512d b)
{
    lse512_dd r;
    r.h = _mm512_add_pd(a, b);
    r.l = _mm512_sub_pd(b, _mm512_sub_pd(r.h, a));
    return r;
}

LSE512_INLINE lse512_dd lse512_dd_add(lse512_dd x, lse512_dd y)
{
    __m512d sh = _mm512_add_pd(x.h, y.h), sl = lse512_two_sum_err(x.h, y.h, sh);
    __m512d th = _mm512_add_pd(x.l, y.l), tl = lse512_two_sum_err(x.l, y.l, th);
    lse512_dd s = lse512_dd_fast(sh, _mm512_add_pd(sl, th));
    return lse512_dd_fast(s.h, _mm512_add_pd(s.l, tl));
}

LSE512_INLINE lse512_dd lse512_dd_mul(lse512_dd x, lse512_dd y)
{
    __m512d p = _mm512_mul_pd(x.h, y.h);
    __m512d e = _mm512_fmsub_pd(x.h, y.h, p);
    e = _mm512_fmadd_pd(x.h, y.l, _mm512_fmadd_pd(x.l, y.h, e));
    return lse512_dd_fast(p, e);
}

LSE512_INLINE lse512_dd lse512_dd_set(double h, double l)
{
    lse512_dd r = {_mm512_set1_pd(h), _mm512_set1_pd(l)};
    return r;
}

/*
 * lse_exp_exact lane by lane for z.h in (-745, 0]: exp(z) and, where `mean`, exp(z) - 1,
 * both in double-double; lanes outside `live` (z.h <= -745, -inf, padding) give 0 and -1.
 */
LSE512_INLINE lse512_dd lse512_exp_exact(lse512_dd z, __mmask8 live, lse512_dd *m1,
                                         const int mean)
{
    const lse512_dd c120 = lse512_dd_set(0x1.1111111111111p-7, 0x1.1111111111111p-63);
    const lse512_dd c24 = lse512_dd_set(0x1.5555555555555p-5, 0x1.5555555555555p-59);
    const lse512_dd c6 = lse512_dd_set(0x1.5555555555555p-3, 0x1.5555555555555p-57);
    const __m512d zero = _mm512_setzero_pd();
    z.h = _mm512_maskz_mov_pd(live, z.h);
    z.l = _mm512_maskz_mov_pd(live, z.l);
    __m512d kd = _mm512_roundscale_pd(_mm512_mul_pd(z.h, _mm512_set1_pd(0x1.71547652b82fep+6)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512i k = _mm512_cvtpd_epi64(kd);
    __m512i j = _mm512_and_si512(k, _mm512_set1_epi64(63));
    __m512d q = _mm512_cvtepi64_pd(_mm512_srai_epi64(k, 6));
    __m512d p2 = _mm512_mul_pd(kd, _mm512_set1_pd(LSE_L2));
    __m512d e2 = _mm512_fmsub_pd(kd, _mm512_set1_pd(LSE_L2), p2);
    lse512_dd r = {_mm512_fnmadd_pd(kd, _mm512_set1_pd(LSE_L1), z.h), zero};
    lse512_dd np2 = {_mm512_sub_pd(zero, p2), _mm512_sub_pd(zero, e2)};
    r = lse512_dd_add(r, np2);
    lse512_dd zl = {z.l, _mm512_mul_pd(kd, _mm512_set1_pd(-LSE_L3))};
    r = lse512_dd_add(r, zl);
    __m512d x = r.h;
    __m512d tail = _mm512_fmadd_pd(x, _mm512_set1_pd(1.0 / 39916800.0), _mm512_set1_pd(1.0 / 3628800.0));
    tail = _mm512_fmadd_pd(x, tail, _mm512_set1_pd(1.0 / 362880.0));
    tail = _mm512_fmadd_pd(x, tail, _mm512_set1_pd(1.0 / 40320.0));
    tail = _mm512_fmadd_pd(x, tail, _mm512_set1_pd(1.0 / 5040.0));
    tail = _mm512_fmadd_pd(x, tail, _mm512_set1_pd(1.0 / 720.0));
    lse512_dd xt = {_mm512_mul_pd(x, tail), zero};
    lse512_dd p = lse512_dd_add(c120, xt);
    p = lse512_dd_add(c24, lse512_dd_mul(p, r));
    p = lse512_dd_add(c6, lse512_dd_mul(p, r));
    p = lse512_dd_add(lse512_dd_set(0.5, 0.0), lse512_dd_mul(p, r));
    p = lse512_dd_add(lse512_dd_mul(p, lse512_dd_mul(r, r)), r);    /* exp(r) - 1 */
    lse512_dd t = {_mm512_i64gather_pd(j, LSE_X_HI, 8), _mm512_i64gather_pd(j, LSE_X_LO, 8)};
    lse512_dd e = lse512_dd_add(t, lse512_dd_mul(t, p));
    e.h = _mm512_maskz_mov_pd(live, _mm512_scalef_pd(e.h, q));
    e.l = _mm512_maskz_mov_pd(live, _mm512_scalef_pd(e.l, q));
    if (mean) {
        __mmask8 k0 = _mm512_cmp_pd_mask(kd, zero, _CMP_EQ_OQ);
        lse512_dd em1 = lse512_dd_add(e, lse512_dd_set(-1.0, 0.0));
        m1->h = _mm512_mask_blend_pd(live, _mm512_set1_pd(-1.0),
                                     _mm512_mask_blend_pd(k0, em1.h, p.h));
        m1->l = _mm512_maskz_mov_pd(live, _mm512_mask_blend_pd(k0, em1.l, p.l));
    }
    return e;
}

/* The accurate tier's sums (lse_exact_sum, unscaled) of the n contiguous elements of a
 * (finite max m, unit weights), shifted by m and divided by tau. */
#define LSE512_EXACT_ROW_DEFINE(SUF, A_T, LOAD8)                                          \
LSE512_INLINE void lse512_exact_row_impl_##SUF(const A_T *a, ptrdiff_t n, double m,       \
                                               double tau, lse_exact_sum *acc,            \
                                               const int mean, const int unit)            \
{                                                                                         \
    const __m512d mv = _mm512_set1_pd(m), nmv = _mm512_set1_pd(-m);                       \
    const __m512d tv = _mm512_set1_pd(tau), zero = _mm512_setzero_pd();                   \
    const __m512d ninf = _mm512_set1_pd(-INFINITY);                                       \
    lse512_dd T = {zero, zero}, X = {zero, zero};                                         \
    uint64_t tops = 0;                                                                    \
    for (ptrdiff_t i = 0; i < n; i += 8) {                                                \
        __mmask8 km = n - i >= 8 ? 0xff : (__mmask8)((1u << (n - i)) - 1);                \
        __m512d x = LOAD8(ninf, km, a + i);                                               \
        __m512d d = _mm512_sub_pd(x, mv);                                                 \
        __m512d dl = lse512_two_sum_err(x, nmv, d);                                       \
        lse512_dd z;                                                                      \
        if (unit) {                                                                       \
            z.h = d;                                                                      \
            z.l = dl;                                                                     \
        } else {                                                                          \
            __m512d qh = _mm512_div_pd(d, tv);                                            \
            __m512d ql = _mm512_div_pd(_mm512_add_pd(_mm512_fnmadd_pd(qh, tv, d), dl), tv); \
            z = lse512_dd_fast(qh, ql);                                                   \
        }                                                                                 \
        __mmask8 live = km & _mm512_cmp_pd_mask(z.h, _mm512_set1_pd(-745.0), _CMP_GT_OQ); \
        __mmask8 top = km & _mm512_cmp_pd_mask(d, zero, _CMP_EQ_OQ);                      \
        tops += (uint64_t)__builtin_popcount((unsigned)top);                              \
        lse512_dd m1, e = lse512_exp_exact(z, live, &m1, mean);                           \
        e.h = _mm512_mask_mov_pd(e.h, top, zero);                                         \
        e.l = _mm512_mask_mov_pd(e.l, top, zero);                                         \
        T = lse512_dd_add(T, e);                                                          \
        if (mean) {                                                                       \
            m1.h = _mm512_maskz_mov_pd(km, m1.h);                                         \
            m1.l = _mm512_maskz_mov_pd(km, m1.l);                                         \
            X = lse512_dd_add(X, m1);                                                     \
        }                                                                                 \
    }                                                                                     \
    double th[8], tl[8], xh[8], xl[8];                                                    \
    _mm512_storeu_pd(th, T.h);                                                            \
    _mm512_storeu_pd(tl, T.l);                                                            \
    _mm512_storeu_pd(xh, X.h);                                                            \
    _mm512_storeu_pd(xl, X.l);                                                            \
    for (int l = 0; l < 8; l++) {                                                         \
        acc->t = lse_dd_add(acc->t, (lse_dd){th[l], tl[l]});                              \
        acc->x = lse_dd_add(acc->x, (lse_dd){xh[l], xl[l]});                              \
    }                                                                                     \
    acc->w = (lse_dd){(double)tops, 0.0};                                                 \
    acc->e = 0;                                                                           \
    acc->any = tops > 0;                                                                  \
}                                                                                         \
                                                                                          \
LSE512 void lse512_exact_row_##SUF(const A_T *a, ptrdiff_t n, double m, double tau,       \
                                   lse_exact_sum *acc, int mean)                          \
{                                                                                         \
    if (mean && tau == 1.0) lse512_exact_row_impl_##SUF(a, n, m, tau, acc, 1, 1);         \
    else if (mean) lse512_exact_row_impl_##SUF(a, n, m, tau, acc, 1, 0);                  \
    else if (tau == 1.0) lse512_exact_row_impl_##SUF(a, n, m, tau, acc, 0, 1);            \
    else lse512_exact_row_impl_##SUF(a, n, m, tau, acc, 0, 0);                            \
}

LSE512_EXACT_ROW_DEFINE(d, double, LSE512_LOAD8_d)
LSE512_EXACT_ROW_DEFINE(f, float, LSE512_LOAD8_f)
#define LSE512_EXACT_ROW(SUF)                                                             \
    if (b == NULL && sa == 1 && lse_use_avx512()) {                                       \
        lse512_exact_row_##SUF(a, n, m, tau, &acc, divisor != 0.0);                       \
        return lse_exact_result(&acc, m, tau, divisor, sign);                             \
    }
#else
#define LSE512_EXACT_ROW(SUF)
#endif

/*
 * LSE_EXACT_DEFINE(SUF, A_T, B_T, FAST) defines
 * lse_exact_slice_SUF(a, sa, b, sb, n, tau, divisor, &sign):
 *     tau log(sum b_i exp(a_i / tau) / divisor) over a[i sa], b[i sb], i < n (b NULL:
 *     unit weights; divisor 0: none), rounded once, with the sign of the sum.  Only for
 *     slices whose max over b != 0 is finite and whose weights are finite: others return
 *     nan (their fast result is exact already).
 */
#define LSE_EXACT_DEFINE(SUF, A_T, B_T, FAST)                                             \
static double lse_exact_slice_##SUF(const A_T *a, ptrdiff_t sa, const B_T *b, ptrdiff_t sb, \
                                    ptrdiff_t n, double tau, double divisor, double *sign) \
{                                                                                         \
    double m = -INFINITY;                                                                 \
    *sign = NAN;                                                                          \
    for (ptrdiff_t i = 0; i < n; i++) {                                                   \
        double x = (double)a[i * sa], bi = b == NULL ? 1.0 : (double)b[i * sb];           \
        if (bi == 0.0) continue;                                                          \
        if (x != x || !isfinite(bi)) return NAN;                                          \
        m = x > m ? x : m;                                                                \
    }                                                                                     \
    if (!isfinite(m)) return NAN;                                                         \
    lse_exact_sum acc = {{0.0, 0.0}, {0.0, 0.0}, {0.0, 0.0}, 0, 0};                       \
    FAST                                                                                  \
    for (ptrdiff_t i = 0; i < n; i++) {                                                   \
        double x = (double)a[i * sa], bi = b == NULL ? 1.0 : (double)b[i * sb];           \
        if (bi == 0.0) continue;                                                          \
        if (x == -INFINITY)  /* a term of 0: expm1 = -1 for a mean's sum */               \
            acc.x = lse_dd_add(acc.x, (lse_dd){-bi, 0.0});                                \
        else                                                                              \
            lse_exact_add(&acc, lse_quotient_exact(x, m, tau), bi, divisor != 0.0);       \
    }                                                                                     \
    return lse_exact_result(&acc, m, tau, divisor, sign);                                 \
}

LSE_EXACT_DEFINE(dd, double, double, LSE512_EXACT_ROW(d))
LSE_EXACT_DEFINE(ff, float, float, LSE512_EXACT_ROW(f))
LSE_EXACT_DEFINE(fd, float, double, )
LSE_EXACT_DEFINE(df, double, float, )

#endif
