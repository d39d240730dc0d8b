/* AVX-512 arithmetic: table-driven exps, compensated sums and double-double, lane by lane. */
#ifndef LSECORE_LSE_AVX512_MATH_H
#define LSECORE_LSE_AVX512_MATH_H

#include "_lse_common.h"

#ifdef LSE_HAVE_AVX512
#include <immintrin.h>

#include "_lse_exact.h"

/* Compiled for x86-64-v4 only, and run only where the CPU has AVX-512 (_lse_dispatch.h). */
#define LSE512 static __attribute__((target("arch=x86-64-v4")))
#define LSE512_INLINE static inline __attribute__((always_inline, target("arch=x86-64-v4")))

/* The lanes of a loop's last vector, left (>= 1) elements from the end: all 8 or the first left. */
LSE512_INLINE __mmask8 lse512_tail_mask(ptrdiff_t left)
{
    return left >= 8 ? 0xff : (__mmask8)((1u << left) - 1);
}

/* The first left lanes (0 < left < 8): the tail after a loop over whole vectors. */
LSE512_INLINE __mmask8 lse512_first_lanes(ptrdiff_t left)
{
    return (__mmask8)((1u << left) - 1);
}

/* 2^(j/16) = LSE_T_HI[j] + LSE_T_LO[j], j < 16, to about 2^-107. */
static const double LSE_T_HI[16] = {
    0x1.0000000000000p+0, 0x1.0b5586cf9890fp+0, 0x1.172b83c7d517bp+0, 0x1.2387a6e756238p+0,
    0x1.306fe0a31b715p+0, 0x1.3dea64c123422p+0, 0x1.4bfdad5362a27p+0, 0x1.5ab07dd485429p+0,
    0x1.6a09e667f3bcdp+0, 0x1.7a11473eb0187p+0, 0x1.8ace5422aa0dbp+0, 0x1.9c49182a3f090p+0,
    0x1.ae89f995ad3adp+0, 0x1.c199bdd85529cp+0, 0x1.d5818dcfba487p+0, 0x1.ea4afa2a490dap+0};
static const double LSE_T_LO[16] = {
    0x0.0p+0, 0x1.8a62e4adc610bp-54, -0x1.19041b9d78a76p-55, 0x1.9b07eb6c70573p-54,
    0x1.6f46ad23182e4p-55, 0x1.ada0911f09ebcp-55, 0x1.d4397afec42e2p-56, 0x1.6324c054647adp-54,
    -0x1.bdd3413b26456p-54, -0x1.41577ee04992fp-55, 0x1.6e9f156864b27p-54, 0x1.c7c46b071f2bep-56,
    0x1.7a1cd345dcc81p-54, 0x1.11065895048ddp-55, 0x1.2ed02d75b3707p-55, -0x1.e9c23179c2893p-54};

/* The bits of LSE_T_HI[j] less j << 48: adding the bits of k = 16 q + j shifted left by 48
 * then gives the bits of 2^q LSE_T_HI[j] (q in the exponent field, j's bits cancelled). */
static const uint64_t LSE_T_BITS[16] = {
    0x3ff0000000000000ULL, 0x3fefb5586cf9890fULL, 0x3fef72b83c7d517bULL, 0x3fef387a6e756238ULL,
    0x3fef06fe0a31b715ULL, 0x3feedea64c123422ULL, 0x3feebfdad5362a27ULL, 0x3feeab07dd485429ULL,
    0x3feea09e667f3bcdULL, 0x3feea11473eb0187ULL, 0x3feeace5422aa0dbULL, 0x3feec49182a3f090ULL,
    0x3feee89f995ad3adULL, 0x3fef199bdd85529cULL, 0x3fef5818dcfba487ULL, 0x3fefa4afa2a490daULL};

/* The tables and constants of the exp, loaded into registers once per loop. */
typedef struct {
    __m512d thi0, thi1, tlo0, tlo1;
    __m512i tbits0, tbits1;
} lse512_tab;

LSE512_INLINE lse512_tab lse512_tables(void)
{
    lse512_tab k;
    k.thi0 = _mm512_loadu_pd(LSE_T_HI);
    k.thi1 = _mm512_loadu_pd(LSE_T_HI + 8);
    k.tlo0 = _mm512_loadu_pd(LSE_T_LO);
    k.tlo1 = _mm512_loadu_pd(LSE_T_LO + 8);
    k.tbits0 = _mm512_loadu_si512(LSE_T_BITS);
    k.tbits1 = _mm512_loadu_si512(LSE_T_BITS + 8);
    return k;
}

/*
 * exp(d) for d <= 0, -inf or nan.  d = (16 q + j) ln2/16 + r with |r| <= ln2/32, so
 * exp(d) = 2^q (T_j + T_j p(r)) with the table T_j = 2^(j/16) in double-double and
 * p(r) = expm1(r) by its degree-7 Taylor polynomial (truncation below 2^-59).  r carries
 * one rounding of about 2^-59, T_j p one of 2^-58: the error is below 0.52 ulp.  2^q is
 * applied by scalef, so results below 2^-1022 are correctly rounded subnormals, -inf
 * gives 0 and nan stays nan.  exp(0) is exactly 1.  dl, a low part of the argument
 * (|dl| < 2^-40, 0 where d is not finite), joins r before the polynomial: exp(d + dl) with
 * no more rounding.
 */
LSE512_INLINE __m512d lse512_exp2(__m512d d, __m512d dl, const lse512_tab *k)
{
    const __m512d shift = _mm512_set1_pd(0x1.8p52);
    d = _mm512_max_pd(_mm512_set1_pd(LSE_EXP_CLAMP), d);    /* nan (the second operand) stays */
    __m512d kd = _mm512_fmadd_pd(d, _mm512_set1_pd(16.0 * LSE_INV_LN2), shift);
    __m512i j = _mm512_castpd_si512(kd);             /* low 4 bits: k mod 16 */
    kd = _mm512_sub_pd(kd, shift);
    __m512d r = _mm512_fnmadd_pd(kd, _mm512_set1_pd(LSE_LN2 / 16.0), d);
    r = _mm512_fnmadd_pd(kd, _mm512_set1_pd(LSE_LN2_TAIL / 16.0), r);
    r = _mm512_add_pd(r, dl);
    __m512d th = _mm512_permutex2var_pd(k->thi0, j, k->thi1);
    __m512d tl = _mm512_permutex2var_pd(k->tlo0, j, k->tlo1);
    __m512d q = _mm512_fmadd_pd(r, _mm512_set1_pd(1.0 / 5040.0), _mm512_set1_pd(1.0 / 720.0));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(1.0 / 120.0));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(1.0 / 24.0));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(1.0 / 6.0));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(0.5));
    __m512d p = _mm512_fmadd_pd(_mm512_mul_pd(r, r), q, r);
    __m512d e = _mm512_add_pd(th, _mm512_fmadd_pd(th, p, tl));
    return _mm512_scalef_pd(e, _mm512_mul_pd(kd, _mm512_set1_pd(0.0625)));
}

/*
 * exp(d) to about 2^-50 relative where it matters (d > -20), for float32 data: the
 * table's leading parts, one reduction constant, and a degree-6 polynomial (truncation
 * below 2^-51).  Enough for a float32 result within 1 ulp even where the max and the
 * log of the sum nearly cancel (a result of 1e-7 has ulps of 2^-46).  d is rounded to
 * k ln2 / 16 by a shift of 1.5 2^48, and 2^(k/16) = 2^q T_j built from the bits of k
 * and LSE_T_BITS by integer adds, which needs 2^q normal: d below -708 gives 0 (the
 * exact term is below every float32 sum's ulp).  nan stays nan.  coarse (a constant of
 * the loop, see LSE_COARSE): degree 4, truncation below 2^-34.
 */
LSE512_INLINE __m512d lse512_exp_f32(__m512d d, const lse512_tab *k, const int coarse)
{
    const __m512d shift = _mm512_set1_pd(0x1.8p48);
    /* below -708 the term is 0 (not 2^-1021, which a huge temperature would bring back) */
    __mmask8 live = _mm512_cmp_pd_mask(d, _mm512_set1_pd(LSE_EXP_NORMAL_MIN), _CMP_NLT_UQ);
    d = _mm512_max_pd(_mm512_set1_pd(LSE_EXP_NORMAL_MIN), d);    /* nan (the second operand) stays */
    __m512d kd = _mm512_fmadd_pd(d, _mm512_set1_pd(LSE_INV_LN2), shift);
    __m512i kb = _mm512_castpd_si512(kd);            /* low bits: k, two's complement */
    kd = _mm512_sub_pd(kd, shift);                   /* k / 16 */
    __m512d r = _mm512_fnmadd_pd(kd, _mm512_set1_pd(LSE_LN2), d);
    __m512i tb = _mm512_permutex2var_epi64(k->tbits0, kb, k->tbits1);
    __m512d th = _mm512_castsi512_pd(_mm512_add_epi64(tb, _mm512_slli_epi64(kb, 48)));
    __m512d q;
    if (coarse) {
        q = _mm512_fmadd_pd(r, _mm512_set1_pd(1.0 / 24.0), _mm512_set1_pd(1.0 / 6.0));
    } else {
        q = _mm512_fmadd_pd(r, _mm512_set1_pd(1.0 / 720.0), _mm512_set1_pd(1.0 / 120.0));
        q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(1.0 / 24.0));
        q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(1.0 / 6.0));
    }
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(0.5));
    __m512d p = _mm512_fmadd_pd(_mm512_mul_pd(r, r), q, r);
    return _mm512_maskz_mov_pd(live, _mm512_fmadd_pd(th, p, th));
}

/* Kahan's add of e into (*s, *c); the sum is *s - *c.  Terms are in [0, 1] or nan. */
LSE512_INLINE void lse512_kahan(__m512d *s, __m512d *c, __m512d e)
{
    __m512d y = _mm512_sub_pd(e, *c);
    __m512d u = _mm512_add_pd(*s, y);
    *c = _mm512_sub_pd(_mm512_sub_pd(u, *s), y);
    *s = u;
}

/* The term e of x, or 0 where x is the max m; the others (nan included) are counted in
 * *others, so that the maxima of v vectors are 8 v - *others. */
LSE512_INLINE __m512d lse512_off_max(__m512d x, __m512d m, __m512d e, uint64_t *others)
{
    __mmask8 k = _mm512_cmp_pd_mask(x, m, _CMP_NEQ_UQ);
    *others += (uint64_t)__builtin_popcount((unsigned)k);
    return _mm512_maskz_mov_pd(k, e);
}

/* The lanes of the vectors that cover n elements. */
#define LSE512_LANES(n) ((uint64_t)((n) + 7) & ~(uint64_t)7)

/* Knuth's two-sum error of s = x + y, lane by lane. */
LSE512_INLINE __m512d lse512_two_sum_err(__m512d x, __m512d y, __m512d s)
{
    __m512d yy = _mm512_sub_pd(s, x);
    return _mm512_add_pd(_mm512_sub_pd(x, _mm512_sub_pd(s, yy)), _mm512_sub_pd(y, yy));
}

/* The float64 term exp((x - m) inv_tau) with the rounding error dl of x - m carried:
 * exp(z + dl inv_tau), so that the term is within 0.52 ulp however far x is below m
 * (lse_refine_flag counts on it at a unit temperature).  Lanes whose x - m is not finite
 * (x = -inf) keep exp's 0. */
LSE512_INLINE __m512d lse512_term_d(__m512d x, __m512d m, __m512d iv, const lse512_tab *k,
                                    const int unit)
{
    __m512d d = _mm512_sub_pd(x, m);
    __m512d dl = lse512_two_sum_err(x, _mm512_sub_pd(_mm512_setzero_pd(), m), d);
    __m512d z = unit ? d : _mm512_mul_pd(d, iv), zl = unit ? dl : _mm512_mul_pd(dl, iv);
    /* where the term underflows the low part is moot, and may be huge (or nan at -inf):
     * added to exp's reduced argument it would leave a nonzero term */
    zl = _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(z, _mm512_set1_pd(LSE_EXP_CLAMP), _CMP_GT_OQ), zl);
    return lse512_exp2(z, zl, k);
}

/* lse512_term_d with 1/tau = iv + itl: the product's rounding and inv_tau's carried too,
 * for the softmax's outputs (each within 0.52 ulp before its division). */
LSE512_INLINE __m512d lse512_term_dt(__m512d x, __m512d m, __m512d iv, __m512d itl,
                                     const lse512_tab *k, const int unit)
{
    if (unit) return lse512_term_d(x, m, iv, k, 1);
    __m512d d = _mm512_sub_pd(x, m);
    __m512d dl = lse512_two_sum_err(x, _mm512_sub_pd(_mm512_setzero_pd(), m), d);
    __m512d z = _mm512_mul_pd(d, iv);
    /* where the term underflows the low part is moot (and may not be small) */
    __mmask8 fin = _mm512_cmp_pd_mask(z, _mm512_set1_pd(LSE_EXP_CLAMP), _CMP_GT_OQ);
    __m512d zl = _mm512_fmadd_pd(dl, iv, _mm512_fmadd_pd(d, itl, _mm512_fmsub_pd(d, iv, z)));
    return lse512_exp2(z, _mm512_maskz_mov_pd(fin, zl), k);
}

/* (x - m) inv_tau, with no product at a unit temperature (unit a constant of the loop). */
LSE512_INLINE __m512d lse512_scaled(__m512d x, __m512d m, __m512d iv, const int unit)
{
    return unit ? _mm512_sub_pd(x, m) : _mm512_mul_pd(_mm512_sub_pd(x, m), iv);
}

/* F(args..., 1) at a unit temperature, else F(args..., 0): F's loops are then compiled
 * twice, neither testing the temperature. */
#define LSE512_BY_UNIT(inv_tau, F, ...) ((inv_tau) == 1.0 ? F(__VA_ARGS__, 1) : F(__VA_ARGS__, 0))

/* Knuth's two-sum, lane by lane: *u + *e = x + y exactly. */
LSE512_INLINE void lse512_two_sum(__m512d x, __m512d y, __m512d *u, __m512d *e)
{
    __m512d s = _mm512_add_pd(x, y);
    __m512d yy = _mm512_sub_pd(s, x);
    *e = _mm512_add_pd(_mm512_sub_pd(x, _mm512_sub_pd(s, yy)), _mm512_sub_pd(y, yy));
    *u = s;
}

/* Merge the Kahan sums s2 - c2 into s - c with no rounding error but that of the c's. */
LSE512_INLINE void lse512_merge_sums(__m512d *s, __m512d *c, __m512d s2, __m512d c2)
{
    __m512d u, e;
    lse512_two_sum(*s, s2, &u, &e);
    *c = _mm512_sub_pd(_mm512_add_pd(*c, c2), e);
    *s = u;
}

/* Add the four Kahan sums s_k - c_k into the partial's compensated sum (*t, *tc): the
 * vectors, then their lanes, merged by two-sums in registers. */
LSE512_INLINE void lse512_flush(__m512d s0, __m512d c0, __m512d s1, __m512d c1,
                                __m512d s2, __m512d c2, __m512d s3, __m512d c3,
                                double *t, double *tc)
{
    lse512_merge_sums(&s0, &c0, s1, c1);
    lse512_merge_sums(&s2, &c2, s3, c3);
    lse512_merge_sums(&s0, &c0, s2, c2);
    lse512_merge_sums(&s0, &c0, _mm512_shuffle_f64x2(s0, s0, 0x4e), _mm512_shuffle_f64x2(c0, c0, 0x4e));
    lse512_merge_sums(&s0, &c0, _mm512_shuffle_f64x2(s0, s0, 0xb1), _mm512_shuffle_f64x2(c0, c0, 0xb1));
    lse512_merge_sums(&s0, &c0, _mm512_permute_pd(s0, 0x55), _mm512_permute_pd(c0, 0x55));
    lse_neumaier(t, tc, _mm512_cvtsd_f64(s0));
    lse_neumaier(t, tc, -_mm512_cvtsd_f64(c0));
}

/* exp(x) as hi + *lo to about 2^-60, lane by lane, for |x| < 708: lse_exp_dd's steps. */
LSE512_INLINE __m512d lse512_exp_dd(__m512d x, __m512d *lo)
{
    const __m512d one = _mm512_set1_pd(1.0), half = _mm512_set1_pd(0.5);
    __m512d kd = _mm512_roundscale_pd(_mm512_mul_pd(x, _mm512_set1_pd(LSE_INV_LN2)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512d rh = _mm512_fnmadd_pd(kd, _mm512_set1_pd(LSE_LN2_HI), x);
    __m512d tl = _mm512_mul_pd(kd, _mm512_set1_pd(LSE_LN2_LO));
    __m512d r = _mm512_sub_pd(rh, tl);
    __m512d rl = _mm512_sub_pd(_mm512_sub_pd(rh, r), tl);
    __m512d q = _mm512_set1_pd(LSE_INV_FACT[15]);
    for (int k = 14; k >= 3; k--) q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(LSE_INV_FACT[k]));
    __m512d r2h = _mm512_mul_pd(r, r);
    __m512d r2l = _mm512_fmsub_pd(r, r, r2h);
    __m512d h = _mm512_add_pd(one, r);
    __m512d l = _mm512_add_pd(_mm512_sub_pd(one, h), r);
    __m512d hr = _mm512_mul_pd(half, r2h);
    __m512d h2, l2;
    lse512_two_sum(h, hr, &h2, &l2);
    __m512d small = _mm512_add_pd(_mm512_add_pd(l, l2), _mm512_mul_pd(half, r2l));
    small = _mm512_add_pd(small, _mm512_mul_pd(_mm512_mul_pd(r, r2h), q));
    small = _mm512_add_pd(small, _mm512_mul_pd(rl, _mm512_add_pd(one, r)));
    __m512d p = _mm512_add_pd(h2, small);
    __m512d plo = _mm512_add_pd(_mm512_sub_pd(h2, p), small);
    *lo = _mm512_scalef_pd(plo, kd);
    return _mm512_scalef_pd(p, kd);
}

/* x / d as q + *lo, lane by lane, as lse_div_dd (lanes whose q is not finite are the caller's). */
LSE512_INLINE __m512d lse512_div_dd(__m512d x, __m512d d, __m512d *lo)
{
    __m512d q = _mm512_div_pd(x, d);
    __m512d p = _mm512_mul_pd(q, d);
    __m512d pe = _mm512_fmsub_pd(q, d, p);
    *lo = _mm512_div_pd(_mm512_sub_pd(_mm512_sub_pd(x, p), pe), d);
    return q;
}

/* ln2/16 = LSE_L16_1 + LSE_L16_2 + LSE_L16_3 to about 2^-150, the first with 36 bits: k
 * LSE_L16_1 is exact for |k| < 2^17, every k lse512_exp_dd_tab meets. */
#define LSE_L16_1 0x1.62e42fefa0000p-5
#define LSE_L16_2 0x1.cf79abc9e3b3ap-44
#define LSE_L16_3 (-0x1.ff0342542fc33p-98)

/*
 * exp(d + dl) as hi + *lo to about 2^-63 relative, for d <= 0, -inf or nan (|dl| < 2^-40,
 * 0 where d is not finite or below LSE_EXP_CLAMP): the two-term relatives' terms, whose
 * rounding test (_lse_pairs512.h) needs them far more exact than lse512_exp2's 0.52 ulp.
 * d = (16 q + j) ln2/16 + r, |r| <= ln2/32, reduced exactly (k LSE_L16_1 and its
 * difference from d are exact) with the reduction's low parts and dl carried in rl;
 * exp(d) = 2^q T_j (1 + r + r^2 Q(r)) (1 + rl) with the table T_j = 2^(j/16) in
 * double-double and Q by its Taylor polynomial to r^6/8! (truncation below 2^-68).
 * T_j + T_j r is summed exactly; the rest, below 2^-10 of it, carries roundings of about
 * 2^-64.  Below 2^-1022 the result is a subnormal hi (lo is then below 2^-1074).
 */
LSE512_INLINE __m512d lse512_exp_dd_tab(__m512d d, __m512d dl, const lse512_tab *k, __m512d *lo)
{
    const __m512d shift = _mm512_set1_pd(0x1.8p52);
    d = _mm512_max_pd(_mm512_set1_pd(LSE_EXP_CLAMP), d);    /* nan (the second operand) stays */
    __m512d kd = _mm512_fmadd_pd(d, _mm512_set1_pd(16.0 * LSE_INV_LN2), shift);
    __m512i j = _mm512_castpd_si512(kd);                     /* low 4 bits: k mod 16 */
    kd = _mm512_sub_pd(kd, shift);
    __m512d rh = _mm512_fnmadd_pd(kd, _mm512_set1_pd(LSE_L16_1), d);           /* exact */
    __m512d th = _mm512_mul_pd(kd, _mm512_set1_pd(LSE_L16_2));
    __m512d tl = _mm512_fmsub_pd(kd, _mm512_set1_pd(LSE_L16_2), th);
    __m512d s = _mm512_sub_pd(rh, th);
    __m512d sl = lse512_two_sum_err(rh, _mm512_sub_pd(_mm512_setzero_pd(), th), s);
    __m512d u = _mm512_sub_pd(dl, _mm512_fmadd_pd(kd, _mm512_set1_pd(LSE_L16_3), tl));
    __m512d r = _mm512_add_pd(s, u);
    __m512d rl = _mm512_add_pd(lse512_two_sum_err(s, u, r), sl);
    __m512d q = _mm512_fmadd_pd(r, _mm512_set1_pd(1.0 / 40320.0), _mm512_set1_pd(1.0 / 5040.0));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(1.0 / 720.0));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(1.0 / 120.0));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(1.0 / 24.0));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(1.0 / 6.0));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(0.5));
    __m512d p2 = _mm512_mul_pd(_mm512_mul_pd(r, r), q);
    __m512d t0 = _mm512_permutex2var_pd(k->thi0, j, k->thi1);
    __m512d t1 = _mm512_permutex2var_pd(k->tlo0, j, k->tlo1);
    __m512d ph = _mm512_mul_pd(t0, r), pe = _mm512_fmsub_pd(t0, r, ph);
    __m512d hi = _mm512_add_pd(t0, ph);
    __m512d e1 = _mm512_add_pd(_mm512_sub_pd(t0, hi), ph);  /* exact: |t0| >= 1 > |ph| */
    /* pe + T_lo (1 + r) + T_hi (r^2 Q + rl (1 + r)) */
    __m512d rest = _mm512_fmadd_pd(t0, _mm512_add_pd(p2, _mm512_fmadd_pd(rl, r, rl)),
                                   _mm512_fmadd_pd(t1, r, t1));
    rest = _mm512_add_pd(_mm512_add_pd(rest, pe), e1);
    __m512d h = _mm512_add_pd(hi, rest);
    __m512d l = _mm512_add_pd(_mm512_sub_pd(hi, h), rest);
    __m512d scale = _mm512_mul_pd(kd, _mm512_set1_pd(0.0625));   /* scalef: 2^floor(k/16) */
    *lo = _mm512_scalef_pd(l, scale);
    return _mm512_scalef_pd(h, scale);
}

/*
 * The log's table: z in [0.6875, 1.375) falls in the interval i of 16 by the bits of z
 * (widths 1/32 below 1 and 1/16 above), whose point c_i (its middle, and 1 for the two
 * intervals beside 1) is within 1/32 of z relative to z + c_i; log c_i to about 2^-107
 * as LSE_LOGC_HI + LSE_LOGC_LO.
 */
static const double LSE_LOGC[16] = {
    0x1.68p-1, 0x1.78p-1, 0x1.88p-1, 0x1.98p-1, 0x1.a8p-1, 0x1.b8p-1, 0x1.c8p-1, 0x1.d8p-1,
    0x1.e8p-1, 0x1.0p+0, 0x1.0p+0, 0x1.18p+0, 0x1.28p+0, 0x1.38p+0, 0x1.48p+0, 0x1.58p+0};
static const double LSE_LOGC_HI[16] = {
    -0x1.68ac83e9c6a14p-2, -0x1.3c25277333184p-2, -0x1.1178e8227e47cp-2, -0x1.d1037f2655e7bp-3,
    -0x1.823c16551a3c2p-3, -0x1.365fcb0159016p-3, -0x1.da727638446a2p-4, -0x1.4d3115d207eacp-4,
    -0x1.894aa149fb343p-5, 0x0.0p+0, 0x0.0p+0, 0x1.6f0d28ae56b4cp-4,
    0x1.29552f81ff523p-3, 0x1.9525a9cf456b4p-3, 0x1.fb9186d5e3e2bp-3, 0x1.2e8e2bae11d31p-2};
static const double LSE_LOGC_LO[16] = {
    -0x1.a64eadd740178p-58, 0x1.2ad27e50a8ec6p-56, 0x1.0e63a5f01c691p-57, -0x1.60629242471a2p-57,
    0x1.1232ce70be781p-57, -0x1.7d411a5b944adp-58, -0x1.401fa71733019p-58, -0x1.769f42c7842ccp-58,
    -0x1.a8be97660a23dp-60, 0x0.0p+0, 0x0.0p+0, -0x1.906d99184b992p-58,
    0x1.301771c407dbfp-57, 0x1.d904c1d4e2e26p-57, -0x1.caaae64f21acbp-57, -0x1.8f4cdb95ebdf9p-56};

/* The log's tables in registers, loaded once per loop. */
typedef struct {
    __m512d c0, c1, h0, h1, l0, l1;
} lse512_logtab;

LSE512_INLINE lse512_logtab lse512_log_tables(void)
{
    lse512_logtab t;
    t.c0 = _mm512_loadu_pd(LSE_LOGC);
    t.c1 = _mm512_loadu_pd(LSE_LOGC + 8);
    t.h0 = _mm512_loadu_pd(LSE_LOGC_HI);
    t.h1 = _mm512_loadu_pd(LSE_LOGC_HI + 8);
    t.l0 = _mm512_loadu_pd(LSE_LOGC_LO);
    t.l1 = _mm512_loadu_pd(LSE_LOGC_LO + 8);
    return t;
}

/*
 * The reduction of the logs below: sh = 2^k z with z in [0.6875, 1.375) (the bits of sh less
 * those of 0.6875: k is their top, the table index *idx the next 4), returned with *kd = k,
 * the low part *zl = sl 2^-k and the table's point *c = c_i.
 */
LSE512_INLINE __m512d lse512_log_reduce(__m512d sh, __m512d sl, const lse512_logtab *t,
                                        __m512i *idx, __m512d *kd, __m512d *zl, __m512d *c)
{
    __m512i ix = _mm512_castpd_si512(sh);
    __m512i tmp = _mm512_sub_epi64(ix, _mm512_set1_epi64(0x3fe6000000000000LL));
    __m512i kk = _mm512_srai_epi64(tmp, 52);
    *idx = _mm512_srli_epi64(tmp, 48);                       /* low 4 bits: i */
    *kd = _mm512_cvtepi64_pd(kk);
    *zl = _mm512_scalef_pd(sl, _mm512_sub_pd(_mm512_setzero_pd(), *kd));
    *c = _mm512_permutex2var_pd(t->c0, *idx, t->c1);
    return _mm512_castsi512_pd(_mm512_sub_epi64(ix, _mm512_slli_epi64(kk, 52)));
}

/*
 * log(sh + sl) as hi + *lo, for sh positive and normal and |sl| <= ulp(sh), with *err a
 * bound on the error: 2^-60 of the log where sh + sl is within 1/16 of 1 (no table term:
 * the log of 1 - e keeps its relative accuracy however small e), else 2^-64 plus 2^-96 of
 * the log.  sh = 2^k z with z in [0.6875, 1.375) (the bits of sh less those of 0.6875: k
 * is their top, the table index the next 4), log(sh + sl) = k ln2 + log c_i + 2 atanh(f),
 * f = (z + zl - c_i) / (z + zl + c_i) in double-double (|f| <= 1/32), and atanh's series
 * to f^11 (truncation below 2^-67).
 */
LSE512_INLINE __m512d lse512_log_dd(__m512d sh, __m512d sl, const lse512_logtab *t, __m512d *lo,
                                    __m512d *err)
{
    const __m512d one = _mm512_set1_pd(1.0);
    __m512i idx;
    __m512d kd, zl, c, z = lse512_log_reduce(sh, sl, t, &idx, &kd, &zl, &c);
    __m512d n = _mm512_sub_pd(z, c);                         /* exact: z / c in [1/2, 2] */
    __m512d nh = _mm512_add_pd(n, zl), nl = lse512_two_sum_err(n, zl, nh);
    __m512d dh = _mm512_add_pd(z, c);
    __m512d dlo = _mm512_add_pd(lse512_two_sum_err(z, c, dh), zl);
    __m512d fh = _mm512_div_pd(nh, dh);
    __m512d rem = _mm512_add_pd(_mm512_fnmadd_pd(fh, dh, nh), _mm512_fnmadd_pd(fh, dlo, nl));
    __m512d fl = _mm512_mul_pd(rem, _mm512_rcp14_pd(dh));   /* 2^-14 of a 2^-53 remainder */
    __m512d f2 = _mm512_mul_pd(fh, fh);
    __m512d p = _mm512_fmadd_pd(f2, _mm512_set1_pd(1.0 / 11.0), _mm512_set1_pd(1.0 / 9.0));
    p = _mm512_fmadd_pd(p, f2, _mm512_set1_pd(1.0 / 7.0));
    p = _mm512_fmadd_pd(p, f2, _mm512_set1_pd(1.0 / 5.0));
    p = _mm512_fmadd_pd(p, f2, _mm512_set1_pd(1.0 / 3.0));
    __m512d tail = _mm512_mul_pd(_mm512_mul_pd(_mm512_add_pd(fh, fh), f2), p);
    __m512d ch = _mm512_permutex2var_pd(t->h0, idx, t->h1);
    __m512d cl = _mm512_permutex2var_pd(t->l0, idx, t->l1);
    __m512d a = _mm512_mul_pd(kd, _mm512_set1_pd(LSE_LN2_HI));   /* exact: |k| < 2^11 */
    __m512d a1, a1e, b, be;
    lse512_two_sum(a, ch, &a1, &a1e);
    lse512_two_sum(a1, _mm512_add_pd(fh, fh), &b, &be);
    __m512d l = _mm512_fmadd_pd(kd, _mm512_set1_pd(LSE_LN2_LO), _mm512_add_pd(a1e, be));
    l = _mm512_add_pd(l, _mm512_add_pd(_mm512_add_pd(cl, _mm512_add_pd(fl, fl)), tail));
    __m512d h = _mm512_add_pd(b, l);
    *lo = _mm512_add_pd(_mm512_sub_pd(b, h), l);
    __mmask8 near = _mm512_cmp_pd_mask(c, one, _CMP_EQ_OQ)
                    & _mm512_cmp_pd_mask(kd, _mm512_setzero_pd(), _CMP_EQ_OQ);
    __m512d ah = _mm512_abs_pd(h);
    *err = _mm512_mask_blend_pd(near, _mm512_fmadd_pd(ah, _mm512_set1_pd(0x1p-96),
                                                      _mm512_set1_pd(0x1p-64)),
                                _mm512_mul_pd(ah, _mm512_set1_pd(0x1p-60)));
    return h;
}

/* The power of two at or below |r| (0 for subnormals), halved where r is one: the exact value
 * it was rounded from may lie in the binade below, whose half ulp is the one to test. */
LSE512_INLINE __m512d lse512_binade(__m512d r)
{
    __m512i bits = _mm512_castpd_si512(r);
    __m512d pow2 = _mm512_castsi512_pd(_mm512_and_si512(bits,
                                                        _mm512_set1_epi64(0x7ff0000000000000LL)));
    __mmask8 exact = _mm512_testn_epi64_mask(bits, _mm512_set1_epi64(0x000fffffffffffffLL));
    return _mm512_mask_mul_pd(pow2, exact, pow2, _mm512_set1_pd(0.5));
}

/*
 * log(sh + sl) for sh positive and normal and |sl| <= ulp(sh), in plain float64:
 * lse512_log_dd's reduction (k ln2 + log c_i + 2 atanh(f), |f| <= 1/32) without its
 * double-double parts, and *bound with the error at most *bound 2^-53: half an ulp (at most
 * 2^-53 of itself) for each of the two roundings, of a = k ln2_hi + log c_i and of the sum
 * l; 4 2^-53 relative of 2f (two roundings, the division, and zl left out of the
 * denominator) and 2^-53 of the sum 2f + the rest, 10.1 |f| in all; and 2^-64 for the rest
 * (the series' terms and truncation, the table's low parts).  Where sh + sl is near 1, a is
 * 0, |f| is about |l| / 2 and the bound about 6 |l|.
 */
LSE512_INLINE __m512d lse512_log_fast(__m512d sh, __m512d sl, const lse512_logtab *t,
                                      __m512d *bound)
{
    __m512i idx;
    __m512d kd, zl, c, z = lse512_log_reduce(sh, sl, t, &idx, &kd, &zl, &c);
    __m512d f = _mm512_div_pd(_mm512_add_pd(_mm512_sub_pd(z, c), zl), _mm512_add_pd(z, c));
    __m512d f2 = _mm512_mul_pd(f, f);
    __m512d p = _mm512_fmadd_pd(f2, _mm512_set1_pd(1.0 / 11.0), _mm512_set1_pd(1.0 / 9.0));
    p = _mm512_fmadd_pd(p, f2, _mm512_set1_pd(1.0 / 7.0));
    p = _mm512_fmadd_pd(p, f2, _mm512_set1_pd(1.0 / 5.0));
    p = _mm512_fmadd_pd(p, f2, _mm512_set1_pd(1.0 / 3.0));
    __m512d f1 = _mm512_add_pd(f, f);
    __m512d lo = _mm512_fmadd_pd(_mm512_mul_pd(f1, f2), p,
                                 _mm512_fmadd_pd(kd, _mm512_set1_pd(LSE_LN2_LO),
                                                 _mm512_permutex2var_pd(t->l0, idx, t->l1)));
    __m512d a = _mm512_fmadd_pd(kd, _mm512_set1_pd(LSE_LN2_HI),
                                _mm512_permutex2var_pd(t->h0, idx, t->h1));
    __m512d l = _mm512_add_pd(a, _mm512_add_pd(f1, lo));
    *bound = _mm512_fmadd_pd(_mm512_abs_pd(f), _mm512_set1_pd(10.1),
                             _mm512_add_pd(_mm512_add_pd(_mm512_abs_pd(a), _mm512_abs_pd(l)),
                                           _mm512_set1_pd(0x1p-11)));
    return l;
}

/*
 * What differs between float64 (d) and float32 (f) input in the loops below: the loads and
 * stores of 8 elements as float64 lanes (whole, or under a mask km), a column tile's and a
 * softmax output's term, and the softmax's division.
 */
LSE512_INLINE __m512d lse512_load8_d(const double *p) { return _mm512_loadu_pd(p); }
LSE512_INLINE __m512d lse512_load8_masked_d(__m512d src, __mmask8 km, const double *p)
{
    return _mm512_mask_loadu_pd(src, km, p);
}
LSE512_INLINE void lse512_store8_d(double *p, __m512d v) { _mm512_storeu_pd(p, v); }
LSE512_INLINE void lse512_store8_masked_d(double *p, __mmask8 km, __m512d v)
{
    _mm512_mask_storeu_pd(p, km, v);
}
LSE512_INLINE __m512d lse512_load8_f(const float *p) { return _mm512_cvtps_pd(_mm256_loadu_ps(p)); }
LSE512_INLINE __m512d lse512_load8_masked_f(__m512d src, __mmask8 km, const float *p)
{
    return _mm512_cvtps_pd(_mm256_mask_loadu_ps(_mm512_cvtpd_ps(src), km, p));
}
LSE512_INLINE void lse512_store8_f(float *p, __m512d v) { _mm256_storeu_ps(p, _mm512_cvtpd_ps(v)); }
LSE512_INLINE void lse512_store8_masked_f(float *p, __mmask8 km, __m512d v)
{
    _mm256_mask_storeu_ps(p, km, _mm512_cvtpd_ps(v));
}

/* A column tile's exact term: float64's carries the rounding of x - m (lse512_term_dt),
 * float32's has none (x - m is exact in float64). */
LSE512_INLINE __m512d lse512_tile_term_d(__m512d x, __m512d m, __m512d iv, __m512d itl,
                                         const lse512_tab *k, const int unit)
{
    return lse512_term_dt(x, m, iv, itl, k, unit);
}
LSE512_INLINE __m512d lse512_tile_term_f(__m512d x, __m512d m, __m512d iv, __m512d itl,
                                         const lse512_tab *k, const int unit)
{
    (void)itl;
    return lse512_exp_f32(lse512_scaled(x, m, iv, unit), k, 0);
}

/* A softmax output's term: float64's exact as lse512_term_dt, float32's coarse. */
LSE512_INLINE __m512d lse512_softmax_term_d(__m512d x, __m512d m, __m512d iv, __m512d itl,
                                            const lse512_tab *k, const int unit)
{
    return lse512_term_dt(x, m, iv, itl, k, unit);
}
LSE512_INLINE __m512d lse512_softmax_term_f(__m512d x, __m512d m, __m512d iv, __m512d itl,
                                            const lse512_tab *k, const int unit)
{
    (void)itl;
    return lse512_exp_f32(lse512_scaled(x, m, iv, unit), k, 1);
}

/* e / (s + sl) for the softmax (is = 1 / s): for float64 results the quotient y = e / s
 * corrected by the residual (e - y s - y sl) / s, so that neither the sum's rounding nor
 * the division's adds to the term's error; for float32 ones a product with the
 * reciprocal, whose float64 error is far below their rounding. */
LSE512_INLINE __m512d lse512_div_corrected(__m512d e, __m512d s, __m512d sl, __m512d is)
{
    __m512d y = _mm512_div_pd(e, s);
    __m512d r = _mm512_fnmadd_pd(y, sl, _mm512_fnmadd_pd(y, s, e));
    return _mm512_fmadd_pd(r, is, y);
}
LSE512_INLINE __m512d lse512_softmax_div_d(__m512d e, __m512d s, __m512d sl, __m512d is)
{
    return lse512_div_corrected(e, s, sl, is);
}
LSE512_INLINE __m512d lse512_softmax_div_f(__m512d e, __m512d s, __m512d sl, __m512d is)
{
    (void)s, (void)sl;
    return _mm512_mul_pd(e, is);
}


/*
 * The row and column drivers for float64 (SUF d, A_T double, exp lse512_exp) and
 * float32 (SUF f, A_T float, exp lse512_exp_f32): the same block structure and partial
 * algebra as the portable lse_row_generic / lse_cols_generic, whose loops also take the
 * rare blocks with a +inf max.
 */

/* Double-double arithmetic lane by lane, for the accurate tier's rows (lse_dd's). */
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

/* Below this argument the accurate tier's row drops a term: it is below 2^-1074 of the row's
 * maximal term, 1. */
#define LSE512_EXACT_MIN (-745.0)

/*
 * lse_exp_exact lane by lane for z.h in (LSE512_EXACT_MIN, 0]: exp(z) and, where `mean`, exp(z) - 1,
 * both in double-double; lanes outside `live` (z.h <= LSE512_EXACT_MIN, -inf, padding) give 0 and -1.
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
    __m512d kd = _mm512_roundscale_pd(_mm512_mul_pd(z.h, _mm512_set1_pd(64.0 * LSE_INV_LN2)),
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

#endif
#endif
