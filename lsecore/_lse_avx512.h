/* AVX-512 kernels: a table-driven exp and the unweighted row, column and output loops. */
#ifndef LSECORE_LSE_AVX512_H
#define LSECORE_LSE_AVX512_H

/*
 * Included by _lse_blocks.h after its scalar algebra.  Every function here is compiled for
 * x86-64-v4 only and called only after lse_use_avx512() said the CPU (and the OS) has
 * AVX-512; other builds and CPUs keep the portable loops of _lse_blocks.h.
 */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(LSE_NO_AVX512)
#define LSE_HAVE_AVX512 1
#include <immintrin.h>
#include <stdlib.h>

#define LSE_SHORT 32          /* rows of a tile of non-contiguous columns per copy */
#define LSE512 static __attribute__((target("arch=x86-64-v4")))
#define LSE512_INLINE static inline __attribute__((always_inline, target("arch=x86-64-v4")))

/*
 * Whether the AVX-512 loops run: the CPU has them and LSECORE_SIMD is not "generic"
 * (which keeps the portable loops, so that they can be tested on any machine).
 */
static inline int lse_use_avx512(void)
{
    static int use = -1;                         /* racy but idempotent */
    if (use < 0) {
        const char *env = getenv("LSECORE_SIMD");
        int generic = env != NULL && strcmp(env, "generic") == 0;
        __builtin_cpu_init();
        use = !generic && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
    }
    return use;
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
    d = _mm512_max_pd(_mm512_set1_pd(-750.0), d);    /* nan (the second operand) stays */
    __m512d kd = _mm512_fmadd_pd(d, _mm512_set1_pd(0x1.71547652b82fep+4), shift);
    __m512i j = _mm512_castpd_si512(kd);             /* low 4 bits: k mod 16 */
    kd = _mm512_sub_pd(kd, shift);
    __m512d r = _mm512_fnmadd_pd(kd, _mm512_set1_pd(0x1.62e42fefa39efp-5), d);
    r = _mm512_fnmadd_pd(kd, _mm512_set1_pd(0x1.abc9e3b39803fp-60), r);
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

/* exp(d) for d <= 0, as lse512_exp2 with no low part. */
LSE512_INLINE __m512d lse512_exp(__m512d d, const lse512_tab *k)
{
    return lse512_exp2(d, _mm512_setzero_pd(), k);
}

/*
 * exp(d) to about 2^-50 relative where it matters (d > -20), for float32 data: the
 * table's leading parts, one reduction constant, and a degree-6 polynomial (truncation
 * below 2^-51).  Enough for a float32 result within 1 ulp even where the max and the
 * log of the sum nearly cancel (a result of 1e-7 has ulps of 2^-46).  d is rounded to
 * k ln2 / 16 by a shift of 1.5 2^48, and 2^(k/16) = 2^q T_j built from the bits of k
 * and LSE_T_BITS by integer adds, which needs 2^q normal: d below -708 gives 0 (the
 * exact term is below every float32 sum's ulp).  nan stays nan.  coarse: degree 4, see LSE512_EXP_f.
 */
LSE512_INLINE __m512d lse512_exp_f32(__m512d d, const lse512_tab *k, const int coarse)
{
    const __m512d shift = _mm512_set1_pd(0x1.8p48);
    /* below -708 the term is 0 (not 2^-1021, which a huge temperature would bring back) */
    __mmask8 live = _mm512_cmp_pd_mask(d, _mm512_set1_pd(-708.0), _CMP_NLT_UQ);
    d = _mm512_max_pd(_mm512_set1_pd(-708.0), d);    /* nan (the second operand) stays */
    __m512d kd = _mm512_fmadd_pd(d, _mm512_set1_pd(0x1.71547652b82fep0), shift);
    __m512i kb = _mm512_castpd_si512(kd);            /* low bits: k, two's complement */
    kd = _mm512_sub_pd(kd, shift);                   /* k / 16 */
    __m512d r = _mm512_fnmadd_pd(kd, _mm512_set1_pd(0x1.62e42fefa39efp-1), d);
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

/* The exp of the float64 (d) and float32 (f) loops.  coarse (a constant of the loop, see */
/* LSE_COARSE in _lse_blocks.h): float32's exp stops at degree 4 (truncation below 2^-34). */
#define LSE512_EXP_d(x, k, coarse) lse512_exp((x), (k))
#define LSE512_EXP_f(x, k, coarse) lse512_exp_f32((x), (k), (coarse))
/* A column tile's exact term: float64's carries the rounding of x - m (lse512_term_d),
 * float32's has none (x - m is exact in float64). */
#define LSE512_TERM_d(x, m, iv, itl, k, unit) lse512_term_dt((x), (m), (iv), (itl), (k), (unit))
#define LSE512_TERM_f(x, m, iv, itl, k, unit) \
    lse512_exp_f32(lse512_scaled((x), (m), (iv), (unit)), (k), 0)
/* A softmax output's term: float64's exact as lse512_term_dt, float32's coarse. */
#define LSE512_SOFTMAX_TERM_d(x, m, iv, itl, k, unit) lse512_term_dt((x), (m), (iv), (itl), (k), (unit))
#define LSE512_SOFTMAX_TERM_f(x, m, iv, itl, k, unit) \
    lse512_exp_f32(lse512_scaled((x), (m), (iv), (unit)), (k), 1)

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
    zl = _mm512_maskz_mov_pd(_mm512_cmp_pd_mask(z, _mm512_set1_pd(-746.0), _CMP_GT_OQ), zl);
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
    __mmask8 fin = _mm512_cmp_pd_mask(z, _mm512_set1_pd(-746.0), _CMP_GT_OQ);
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

/* The max of n contiguous float64 (n >= 1), nan ignored (-inf when all are nan). */
LSE512_INLINE double lse512_max_d(const double *a, ptrdiff_t n)
{
    __m512d m0 = _mm512_set1_pd(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    ptrdiff_t i = 0;
    for (; i + 32 <= n; i += 32) {               /* max(x, m) is m when x is nan */
        m0 = _mm512_max_pd(_mm512_loadu_pd(a + i), m0);
        m1 = _mm512_max_pd(_mm512_loadu_pd(a + i + 8), m1);
        m2 = _mm512_max_pd(_mm512_loadu_pd(a + i + 16), m2);
        m3 = _mm512_max_pd(_mm512_loadu_pd(a + i + 24), m3);
    }
    for (; i < n; i += 8) {
        __mmask8 k = n - i >= 8 ? 0xff : (__mmask8)((1u << (n - i)) - 1);
        m0 = _mm512_max_pd(_mm512_mask_loadu_pd(m0, k, a + i), m0);
    }
    return _mm512_reduce_max_pd(_mm512_max_pd(_mm512_max_pd(m0, m1), _mm512_max_pd(m2, m3)));
}

/* The max of n contiguous float32 (n >= 1), nan ignored. */
LSE512_INLINE double lse512_max_f(const float *a, ptrdiff_t n)
{
    __m512 m0 = _mm512_set1_ps(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    ptrdiff_t i = 0;
    for (; i + 64 <= n; i += 64) {
        m0 = _mm512_max_ps(_mm512_loadu_ps(a + i), m0);
        m1 = _mm512_max_ps(_mm512_loadu_ps(a + i + 16), m1);
        m2 = _mm512_max_ps(_mm512_loadu_ps(a + i + 32), m2);
        m3 = _mm512_max_ps(_mm512_loadu_ps(a + i + 48), m3);
    }
    for (; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        m0 = _mm512_max_ps(_mm512_mask_loadu_ps(m0, k, a + i), m0);
    }
    return (double)_mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
}

/* Prefetch the cache line at byte offset i from p into L2 while a block's exp pass runs. */
LSE512_INLINE void lse512_prefetch(const char *p, ptrdiff_t i)
{
    _mm_prefetch(p + i, _MM_HINT_T1);
}

/*
 * Add exp((a_i - m) inv_tau) over n contiguous float64 (m >= every a_i, or 0 for an all
 * -inf block) to the partial: the count of a_i == m to *w, the others' terms to the
 * compensated sum (*t, *tc).  The next block (pf_bytes from pf) is prefetched meanwhile.
 * Maximal terms stay out of the Kahan sums: a 1 added to a lane that holds only tiny
 * terms would take their rounding error with it.  unit: inv_tau is 1 (LSE512_BY_UNIT);
 * coarse is lse512_sum_f's, unused here.
 */
LSE512_INLINE void lse512_sum_d(const double *a, ptrdiff_t n, double m, double inv_tau,
                                double itl, double *w, double *t, double *tc,
                                const char *pf, ptrdiff_t pf_bytes, const int coarse,
                                const int unit)
{
    const lse512_tab k = lse512_tables();
    const __m512d mv = _mm512_set1_pd(m), iv = _mm512_set1_pd(inv_tau);
    const __m512d itlv = _mm512_set1_pd(itl);
    __m512d s0 = _mm512_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
    __m512d c0 = s0, c1 = s0, c2 = s0, c3 = s0;
    uint64_t others = 0;
    (void)coarse;
#define LSE512_E(x) lse512_term_dt((x), mv, iv, itlv, &k, unit)
    ptrdiff_t i = 0;
    for (; i + 32 <= n; i += 32) {
        if (i * 8 < pf_bytes) {
            lse512_prefetch(pf, i * 8);
            lse512_prefetch(pf, i * 8 + 64);
            lse512_prefetch(pf, i * 8 + 128);
            lse512_prefetch(pf, i * 8 + 192);
        }
        __m512d x0 = _mm512_loadu_pd(a + i), x1 = _mm512_loadu_pd(a + i + 8);
        __m512d x2 = _mm512_loadu_pd(a + i + 16), x3 = _mm512_loadu_pd(a + i + 24);
        lse512_kahan(&s0, &c0, lse512_off_max(x0, mv, LSE512_E(x0), &others));
        lse512_kahan(&s1, &c1, lse512_off_max(x1, mv, LSE512_E(x1), &others));
        lse512_kahan(&s2, &c2, lse512_off_max(x2, mv, LSE512_E(x2), &others));
        lse512_kahan(&s3, &c3, lse512_off_max(x3, mv, LSE512_E(x3), &others));
    }
    for (; i < n; i += 8) {                      /* masked-off lanes read -inf: exp 0 */
        __mmask8 km = n - i >= 8 ? 0xff : (__mmask8)((1u << (n - i)) - 1);
        __m512d x = _mm512_mask_loadu_pd(_mm512_set1_pd(-INFINITY), km, a + i);
        lse512_kahan(&s0, &c0, lse512_off_max(x, mv, LSE512_E(x), &others));
    }
#undef LSE512_E
    *w += (double)(LSE512_LANES(n) - others);
    lse512_flush(s0, c0, s1, c1, s2, c2, s3, c3, t, tc);
}

/*
 * lse512_sum_d for float32 input, with the cheaper lse512_exp_f32.  Each lane adds 64
 * terms below 1 (the maximal ones are counted apart) without compensation, a relative
 * error below 2^-47; the chunks' sums then merge by exact two-sums.
 */
LSE512_INLINE void lse512_sum_f(const float *a, ptrdiff_t n, double m, double inv_tau,
                                double itl, double *w, double *t, double *tc,
                                const char *pf, ptrdiff_t pf_bytes, const int coarse,
                                const int unit)
{
    enum { CHUNK = 2048 };                       /* 64 terms a lane */
    (void)itl;                                   /* float32's differences are exact */
    const lse512_tab k = lse512_tables();
    const __m512d mv = _mm512_set1_pd(m), iv = _mm512_set1_pd(inv_tau);
    __m512d z = _mm512_setzero_pd(), S = z, C = z;
    uint64_t others = 0;
#define LSE512_E(x) lse512_exp_f32(lse512_scaled((x), mv, iv, unit), &k, coarse)
#define LSE512_LD(p) _mm512_cvtps_pd(_mm256_loadu_ps(p))
    for (ptrdiff_t i0 = 0; i0 < n; i0 += CHUNK) {
        ptrdiff_t i = i0, end = n - i0 < CHUNK ? n : i0 + CHUNK;
        __m512d s0 = z, s1 = z, s2 = z, s3 = z;
        for (; i + 32 <= end; i += 32) {
            if (i * 4 < pf_bytes) {
                lse512_prefetch(pf, i * 4);
                lse512_prefetch(pf, i * 4 + 64);
            }
            __m512d x0 = LSE512_LD(a + i), x1 = LSE512_LD(a + i + 8);
            __m512d x2 = LSE512_LD(a + i + 16), x3 = LSE512_LD(a + i + 24);
            s0 = _mm512_add_pd(s0, lse512_off_max(x0, mv, LSE512_E(x0), &others));
            s1 = _mm512_add_pd(s1, lse512_off_max(x1, mv, LSE512_E(x1), &others));
            s2 = _mm512_add_pd(s2, lse512_off_max(x2, mv, LSE512_E(x2), &others));
            s3 = _mm512_add_pd(s3, lse512_off_max(x3, mv, LSE512_E(x3), &others));
        }
        for (; i < end; i += 8) {
            __mmask8 km = end - i >= 8 ? 0xff : (__mmask8)((1u << (end - i)) - 1);
            __m512d x = _mm512_cvtps_pd(_mm256_mask_loadu_ps(_mm256_set1_ps(-INFINITY), km, a + i));
            s0 = _mm512_add_pd(s0, lse512_off_max(x, mv, LSE512_E(x), &others));
        }
        lse512_merge_sums(&S, &C, s0, z);
        lse512_merge_sums(&S, &C, s1, z);
        lse512_merge_sums(&S, &C, s2, z);
        lse512_merge_sums(&S, &C, s3, z);
    }
#undef LSE512_LD
#undef LSE512_E
    *w += (double)(LSE512_LANES(n) - others);
    lse512_flush(S, C, z, z, z, z, z, z, t, tc);
}


/* exp(x) as hi + *lo to about 2^-60, lane by lane, for |x| < 708: lse_exp_dd's steps. */
LSE512_INLINE __m512d lse512_exp_dd(__m512d x, __m512d *lo)
{
    const __m512d one = _mm512_set1_pd(1.0), half = _mm512_set1_pd(0.5);
    __m512d kd = _mm512_roundscale_pd(_mm512_mul_pd(x, _mm512_set1_pd(0x1.71547652b82fep0)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512d rh = _mm512_fnmadd_pd(kd, _mm512_set1_pd(0x1.62e42fefa3800p-1), x);
    __m512d tl = _mm512_mul_pd(kd, _mm512_set1_pd(0x1.ef35793c76730p-45));
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


/*
 * lse_finalize for n <= 8 partials at once: lse_log_abs_start, lse_log_abs_newton and
 * lse_shift_add lane by lane, with a vector log in place of libm's.  s = 2^e mant with
 * mant in [0.75, 1.5] (mant - 1 = u exactly, from the partial, near s = 1), and
 * log mant = 2 atanh(f), f = (mant - 1) / (mant + 1), |f| <= 1/5, by its series to
 * f^15 (truncation below 2^-40 relative): the Newton step against exp in double-double
 * squares that error away.  Computes the lanes with a positive finite sum, a finite max
 * and |log S| < 708, and returns their mask; the caller does the others.
 */
LSE512 __mmask8 lse512_finalize(ptrdiff_t n, const double *m, const double *w, const double *t,
                                const double *c, const double *divisor, double tau,
                                double *out, double *sign, double *log_sum)
{
    __mmask8 km = n >= 8 ? 0xff : (__mmask8)((1u << n) - 1);
    const __m512d one = _mm512_set1_pd(1.0), big = _mm512_set1_pd(0x1.fffffffffffffp1023);
    __m512d vm = _mm512_maskz_loadu_pd(km, m), vw = _mm512_maskz_loadu_pd(km, w);
    __m512d vt = _mm512_maskz_loadu_pd(km, t), vc = _mm512_maskz_loadu_pd(km, c);
    if (divisor != NULL) {
        __m512d d = _mm512_mask_loadu_pd(one, km, divisor), lw, lt;
        vw = lse512_div_dd(vw, d, &lw);
        vt = lse512_div_dd(vt, d, &lt);
        vc = _mm512_add_pd(_mm512_add_pd(_mm512_div_pd(vc, d), lw), lt);
    }
    __m512d s = _mm512_add_pd(vw, vt);
    __m512d lo = _mm512_add_pd(lse512_two_sum_err(vw, vt, s), vc);
    /* sums below 2^-1000 (quotients near underflow, subnormal weights) are the portable
     * code's, which scales quotients beyond float64's range */
    __mmask8 ok = km & _mm512_cmp_pd_mask(s, _mm512_set1_pd(0x1p-1000), _CMP_GE_OQ)
                  & _mm512_cmp_pd_mask(s, big, _CMP_LE_OQ)
                  & _mm512_cmp_pd_mask(_mm512_abs_pd(vm), big, _CMP_LE_OQ)
                  & _mm512_cmp_pd_mask(_mm512_add_pd(s, lo), _mm512_setzero_pd(), _CMP_GT_OQ);
    if (!ok) return 0;
    s = _mm512_mask_blend_pd(ok, one, s);
    /* Near 1, the sum as 1 + u + ulo, as lse_log_abs_start has it. */
    __m512d v = _mm512_sub_pd(vw, one);
    __m512d u = _mm512_add_pd(v, vt);
    __m512d ulo = _mm512_add_pd(lse512_two_sum_err(v, vt, u),
                                _mm512_add_pd(lse512_two_sum_err(vw, _mm512_set1_pd(-1.0), v), vc));
    __m512d h1 = _mm512_add_pd(one, u);
    __mmask8 near = _mm512_cmp_pd_mask(s, _mm512_set1_pd(0.5), _CMP_GE_OQ)
                    & _mm512_cmp_pd_mask(s, _mm512_set1_pd(2.0), _CMP_LE_OQ);
    __m512d h = _mm512_mask_blend_pd(near, s, h1);
    __m512d l = _mm512_mask_blend_pd(near, lo, _mm512_add_pd(lse512_two_sum_err(one, u, h1), ulo));
    /* The approximate log. */
    __m512d e = _mm512_getexp_pd(s);
    __m512d mant = _mm512_getmant_pd(s, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_src);
    __mmask8 hi = _mm512_cmp_pd_mask(mant, _mm512_set1_pd(1.5), _CMP_GT_OQ);
    mant = _mm512_mask_mul_pd(mant, hi, mant, _mm512_set1_pd(0.5));
    e = _mm512_mask_add_pd(e, hi, e, one);
    __mmask8 mid = near & _mm512_cmp_pd_mask(e, _mm512_setzero_pd(), _CMP_EQ_OQ);
    __m512d num = _mm512_mask_blend_pd(mid, _mm512_sub_pd(mant, one), u);
    __m512d f = _mm512_div_pd(num, _mm512_add_pd(num, _mm512_set1_pd(2.0)));
    __m512d f2 = _mm512_mul_pd(f, f);
    __m512d q = _mm512_set1_pd(1.0 / 15.0);
    for (int k = 13; k >= 3; k -= 2) q = _mm512_fmadd_pd(q, f2, _mm512_set1_pd(1.0 / k));
    __m512d lm = _mm512_mul_pd(_mm512_add_pd(f, f), _mm512_fmadd_pd(q, f2, one));
    __m512d lh = _mm512_fmadd_pd(e, _mm512_set1_pd(0x1.62e42fefa39efp-1), lm);
    ok &= _mm512_cmp_pd_mask(_mm512_abs_pd(lh), _mm512_set1_pd(708.0), _CMP_LT_OQ);
    if (!ok) return 0;
    /* One Newton step, then m + tau (lh + ll) rounded once, as lse_shift_add. */
    __m512d el, eh = lse512_exp_dd(_mm512_mask_blend_pd(ok, _mm512_setzero_pd(), lh), &el);
    __m512d ll = _mm512_div_pd(_mm512_add_pd(_mm512_sub_pd(h, eh), _mm512_sub_pd(l, el)), eh);
    __m512d tv = _mm512_set1_pd(tau);
    __m512d p = _mm512_mul_pd(tv, lh);
    __m512d pe = _mm512_fmsub_pd(tv, lh, p);
    ok &= _mm512_cmp_pd_mask(_mm512_abs_pd(p), big, _CMP_LE_OQ);   /* overflows: portable */
    __m512d sum, err;
    lse512_two_sum(vm, p, &sum, &err);
    __m512d r = _mm512_add_pd(sum, _mm512_add_pd(_mm512_add_pd(err, pe), _mm512_mul_pd(tv, ll)));
    _mm512_mask_storeu_pd(out, ok, r);
    if (sign != NULL) _mm512_mask_storeu_pd(sign, ok, one);
    if (log_sum != NULL) _mm512_mask_storeu_pd(log_sum, ok, _mm512_add_pd(lh, ll));
    return ok;
}

/*
 * The row and column drivers for float64 (SUF d, A_T double, exp lse512_exp) and
 * float32 (SUF f, A_T float, exp lse512_exp_f32): the same block structure and partial
 * algebra as the portable lse_row_generic / lse_cols_generic, whose loops also take the
 * rare blocks with a +inf max.
 */
#define LSE512_DEFINE(SUF, A_T, LOAD8)                                            \
                                                                                          \
/* coarse: LSE_EXACT, LSE_COARSE or LSE_COARSE_FLOAT32 (see _lse_blocks.h); float32 only. */ \
LSE512 void lse512_row_##SUF(const A_T *a, ptrdiff_t n, double inv_tau, double itl,       \
                             double *m, double *w, double *t, double *c, int coarse)      \
{                                                                                         \
    for (ptrdiff_t i0 = 0; i0 < n; i0 += LSE_ROW_BLOCK) {                                 \
        ptrdiff_t len = n - i0 < LSE_ROW_BLOCK ? n - i0 : LSE_ROW_BLOCK;                  \
        /* The next block, or after the last one the next row if rows follow each */       \
        /* other (a prefetch past the end of the data is harmless: it never faults). */     \
        ptrdiff_t next = n - i0 - len < LSE_ROW_BLOCK ? n - i0 - len : LSE_ROW_BLOCK;     \
        next = next > 0 ? next : len;                                                     \
        const A_T *ab = a + i0;                                                           \
        double bm = lse512_max_##SUF(ab, len);                                            \
        if (bm == INFINITY || *m == INFINITY) {                                           \
            lse_row_generic_##SUF##SUF(ab, 1, NULL, 0, len, inv_tau, itl, m, w, t, c);         \
            continue;                                                                     \
        }                                                                                 \
        if (bm > *m) {                                                                    \
            lse_rescale(w, t, c, *m, bm, inv_tau, itl);                                   \
            *m = bm;                                                                      \
        }                                                                                 \
        /* An all -inf (or nan) partial so far: exp(a - 0) is 0, or nan for nan. */       \
        double mb = *m == -INFINITY ? 0.0 : *m;                                           \
        const char *pf = (const char *)(ab + len);                                        \
        ptrdiff_t pfn = next * (ptrdiff_t)sizeof(A_T);                                    \
        if (sizeof(A_T) == 4                                                              \
            && (coarse == LSE_COARSE || (coarse == LSE_COARSE_FLOAT32 && *m >= 0.0)))     \
            LSE512_BY_UNIT(inv_tau, lse512_sum_##SUF, ab, len, mb, inv_tau, itl, w, t, c, pf,  \
                           pfn, 1);                                                       \
        else                                                                              \
            LSE512_BY_UNIT(inv_tau, lse512_sum_##SUF, ab, len, mb, inv_tau, itl, w, t, c, pf,  \
                           pfn, 0);                                                       \
    }                                                                                     \
}                                                                                         \
                                                                                          \
/* The columns j < nj <= LSE_TILE of a[r sr + j], r < nr. */                              \
LSE512_INLINE void lse512_cols_impl_##SUF(const A_T *a, ptrdiff_t sr, ptrdiff_t nr,       \
                                          ptrdiff_t nj, double inv_tau, double itl,       \
                                          double *mt, double *wt, double *tt, double *ct, \
                                          const int unit)                                 \
{                                                                                         \
    const lse512_tab k = lse512_tables();                                                 \
    const __m512d iv = _mm512_set1_pd(inv_tau), ninf = _mm512_set1_pd(-INFINITY);         \
    const __m512d one = _mm512_set1_pd(1.0), itlv = _mm512_set1_pd(itl);                  \
    const int nv = (int)((nj + 7) / 8);                                                   \
    __mmask8 km[LSE_TILE / 8];                                                            \
    for (int v = 0; v < nv; v++)                                                          \
        km[v] = nj - 8 * v >= 8 ? 0xff : (__mmask8)((1u << (nj - 8 * v)) - 1);            \
    for (ptrdiff_t r0 = 0; r0 < nr; r0 += LSE_TILE_ROWS) {                                \
        ptrdiff_t r1 = nr - r0 < LSE_TILE_ROWS ? nr : r0 + LSE_TILE_ROWS;                 \
        __m512d bm[LSE_TILE / 8];                                                         \
        for (int v = 0; v < nv; v++) bm[v] = ninf;                                        \
        for (ptrdiff_t r = r0; r < r1; r++)                                               \
            for (int v = 0; v < nv; v++)                                                  \
                bm[v] = _mm512_max_pd(LOAD8(ninf, km[v], a + r * sr + 8 * v), bm[v]);     \
        /* Each vector's running partial, then the rows' terms added to all of them */    \
        /* at once: nv independent chains of Kahan sums rather than one at a time. */       \
        __m512d mn[LSE_TILE / 8], me[LSE_TILE / 8], wv[LSE_TILE / 8];                     \
        __m512d sv[LSE_TILE / 8], cv[LSE_TILE / 8];                                       \
        unsigned direct = 0;                                                              \
        for (int v = 0; v < nv; v++) {                                                    \
            double *m = mt + 8 * v, *w = wt + 8 * v, *t = tt + 8 * v, *c = ct + 8 * v;    \
            __m512d mo = _mm512_mask_loadu_pd(ninf, km[v], m);                            \
            __mmask8 inf = _mm512_mask_cmp_pd_mask(km[v], bm[v], _mm512_set1_pd(INFINITY), \
                                                   _CMP_EQ_OQ)                            \
                           | _mm512_mask_cmp_pd_mask(km[v], mo, _mm512_set1_pd(INFINITY), \
                                                     _CMP_EQ_OQ);                         \
            mn[v] = me[v] = wv[v] = sv[v] = cv[v] = _mm512_setzero_pd();                  \
            if (inf) {                                                                    \
                lse_cols_generic_##SUF##SUF(a + r0 * sr + 8 * v, sr, 1, NULL, 0, 0,       \
                                            r1 - r0, nj - 8 * v < 8 ? nj - 8 * v : 8,     \
                                            inv_tau, itl, m, w, t, c);                    \
                continue;                                                                 \
            }                                                                             \
            direct |= 1u << v;                                                            \
            __mmask8 up = _mm512_mask_cmp_pd_mask(km[v], bm[v], mo, _CMP_GT_OQ);          \
            __mmask8 fresh = up & _mm512_cmp_pd_mask(mo, ninf, _CMP_EQ_OQ);               \
            for (int l = 0; l < 8; l++)                                                   \
                if ((up & ~fresh) >> l & 1) {                                             \
                    double bl[8];                                                         \
                    _mm512_storeu_pd(bl, bm[v]);                                          \
                    lse_rescale(w + l, t + l, c + l, m[l], bl[l], inv_tau, itl);          \
                }                                                                         \
            __m512d zero = _mm512_setzero_pd();                                           \
            /* From an all -inf partial: exp(-inf) = 0 scales w, t and c (nan stays). */  \
            __m512d w0 = _mm512_mask_loadu_pd(zero, km[v], w);                            \
            __m512d t0 = _mm512_mask_loadu_pd(zero, km[v], t);                            \
            __m512d c0 = _mm512_mask_loadu_pd(zero, km[v], c);                            \
            wv[v] = _mm512_mask_mul_pd(w0, fresh, w0, zero);                              \
            sv[v] = _mm512_mask_mul_pd(t0, fresh, t0, zero);                              \
            cv[v] = _mm512_sub_pd(zero, _mm512_mask_mul_pd(c0, fresh, c0, zero));         \
            mn[v] = _mm512_mask_blend_pd(up, mo, bm[v]);                                  \
            me[v] = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(mn[v], ninf, _CMP_EQ_OQ),     \
                                         mn[v], zero);                                    \
        }                                                                                 \
        for (ptrdiff_t r = r0; r < r1; r++)                                               \
            for (int v = 0; v < nv; v++) {                                                \
                __m512d x = LOAD8(ninf, km[v], a + r * sr + 8 * v);                       \
                /* 8 tiles ahead (a prefetch past the end of the data never faults) */    \
                lse512_prefetch((const char *)(a + r * sr + 8 * v), 8 * LSE_TILE * sizeof(A_T)); \
                __mmask8 top = _mm512_cmp_pd_mask(x, mn[v], _CMP_EQ_OQ);                  \
                __m512d e = LSE512_TERM_##SUF(x, me[v], iv, itlv, &k, unit);              \
                wv[v] = _mm512_mask_add_pd(wv[v], top, wv[v], one);                       \
                lse512_kahan(sv + v, cv + v, _mm512_maskz_mov_pd((__mmask8)~top, e));     \
            }                                                                             \
        for (int v = 0; v < nv; v++)                                                      \
            if (direct >> v & 1) {                                                        \
                _mm512_mask_storeu_pd(mt + 8 * v, km[v], mn[v]);                          \
                _mm512_mask_storeu_pd(wt + 8 * v, km[v], wv[v]);                          \
                _mm512_mask_storeu_pd(tt + 8 * v, km[v], sv[v]);                          \
                _mm512_mask_storeu_pd(ct + 8 * v, km[v],                                  \
                                      _mm512_sub_pd(_mm512_setzero_pd(), cv[v]));         \
            }                                                                             \
    }                                                                                     \
}                                                                                         \
                                                                                          \
/* Columns that are not contiguous (si != 1, such as many short rows taken as columns) */ \
/* are copied, LSE_SHORT rows of a tile at a time, into a contiguous buffer. */             \
LSE512 void lse512_cols_##SUF(const A_T *a, ptrdiff_t sr, ptrdiff_t si, ptrdiff_t nr,     \
                              ptrdiff_t ni, double inv_tau, double itl,                   \
                              double *m, double *w, double *t, double *c)                 \
{                                                                                         \
    A_T buf[LSE_SHORT * LSE_TILE];                                                        \
    for (ptrdiff_t j0 = 0; j0 < ni; j0 += LSE_TILE) {                                     \
        ptrdiff_t nj = ni - j0 < LSE_TILE ? ni - j0 : LSE_TILE;                           \
        double *mj = m + j0, *wj = w + j0, *tj = t + j0, *cj = c + j0;                    \
        if (si == 1 && nj == LSE_TILE)  /* unrolled across the tile */                    \
            LSE512_BY_UNIT(inv_tau, lse512_cols_impl_##SUF, a + j0, sr, nr, LSE_TILE,     \
                           inv_tau, itl, mj, wj, tj, cj);                                      \
        else if (si == 1)                                                                 \
            LSE512_BY_UNIT(inv_tau, lse512_cols_impl_##SUF, a + j0, sr, nr, nj, inv_tau,  \
                           itl, mj, wj, tj, cj);                                               \
        else                                                                              \
            for (ptrdiff_t r0 = 0; r0 < nr; r0 += LSE_SHORT) {                            \
                ptrdiff_t nb = nr - r0 < LSE_SHORT ? nr - r0 : LSE_SHORT;                 \
                for (ptrdiff_t j = 0; j < nj; j++)                                        \
                    for (ptrdiff_t r = 0; r < nb; r++)                                    \
                        buf[r * LSE_TILE + j] = a[(j0 + j) * si + (r0 + r) * sr];         \
                LSE512_BY_UNIT(inv_tau, lse512_cols_impl_##SUF, buf, LSE_TILE, nb, nj,    \
                               inv_tau, itl, mj, wj, tj, cj);                                  \
            }                                                                             \
    }                                                                                     \
}                                                                                         \
                                                                                          \
/* softmax of a row of n <= LSE_ROW_BLOCK contiguous elements into out in two passes */ \
/* over memory: the max, then the exps (kept in buf, n doubles) with their sum, and */    \
/* out_i = buf_i / s from cache.  The sum is (w + t) + tc as the finalizer's total for */ \
/* float64; float32 results need far less than Kahan's sums and the maxima kept apart: */ \
/* plain sums of at most LSE_ROW_BLOCK / 32 terms a lane (relative error below 2^-44). */ \
/* The next row, if rows follow each other, is prefetched meanwhile. */                   \
/* Returns 0, writing nothing, when the max is not finite (the portable loops decide). */ \
LSE512_INLINE int lse512_softmax_buffered_impl_##SUF(const A_T *a, A_T *out, double *buf, \
                                                    ptrdiff_t n, double tau,              \
                                                    const int unit)                       \
{                                                                                         \
    const lse512_tab k = lse512_tables();                                                 \
    double m = lse512_max_##SUF(a, n);                                                    \
    if (!(m > -INFINITY && m < INFINITY)) return 0;                                       \
    double inv_tau, itl = lse_inv_tau(tau, &inv_tau);                                     \
    const __m512d mv = _mm512_set1_pd(m), iv = _mm512_set1_pd(inv_tau);                   \
    const __m512d itlv = _mm512_set1_pd(itl);                                             \
    const __m512d ninf = _mm512_set1_pd(-INFINITY);                                       \
    __m512d s[4], c[4];                                                                   \
    for (int l = 0; l < 4; l++) s[l] = c[l] = _mm512_setzero_pd();                        \
    uint64_t others = 0;                                                                  \
    ptrdiff_t i = 0;                                                                      \
    for (; i + 32 <= n; i += 32)                                                          \
        for (int l = 0; l < 4; l++) {                                                     \
            __m512d x = LOAD8(ninf, 0xff, a + i + 8 * l);                                 \
            __m512d e = LSE512_SOFTMAX_TERM_##SUF(x, mv, iv, itlv, &k, unit);             \
            _mm512_storeu_pd(buf + i + 8 * l, e);                                         \
            if (sizeof(A_T) == 4)                                                         \
                s[l] = _mm512_add_pd(s[l], e);                                            \
            else                                                                          \
                lse512_kahan(s + l, c + l, lse512_off_max(x, mv, e, &others));            \
            lse512_prefetch((const char *)(a + n), (i + 8 * l) * (ptrdiff_t)sizeof(A_T)); \
        }                                                                                 \
    for (; i < n; i += 8) {                                                               \
        __mmask8 km = n - i >= 8 ? 0xff : (__mmask8)((1u << (n - i)) - 1);                \
        __m512d x = LOAD8(ninf, km, a + i);                                               \
        __m512d e = LSE512_SOFTMAX_TERM_##SUF(x, mv, iv, itlv, &k, unit);                 \
        _mm512_mask_storeu_pd(buf + i, km, e);                                            \
        if (sizeof(A_T) == 4)                                                             \
            s[0] = _mm512_add_pd(s[0], _mm512_maskz_mov_pd(km, e));                       \
        else                                                                              \
            lse512_kahan(s, c, lse512_off_max(x, mv, e, &others));                        \
    }                                                                                     \
    double t = 0.0, tc = 0.0;                                                             \
    if (sizeof(A_T) == 4)                                                                 \
        t = _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(s[0], s[1]),                 \
                                               _mm512_add_pd(s[2], s[3])));               \
    else                                                                                  \
        lse512_flush(s[0], c[0], s[1], c[1], s[2], c[2], s[3], c[3], &t, &tc);            \
    /* float64: the sum's rounding error kept in sl, for the quotients' correction */    \
    double sh = t, sl = 0.0;                                                              \
    if (sizeof(A_T) == 8) lse_split_sum((double)(LSE512_LANES(n) - others), t, tc, &sh, &sl); \
    const __m512d sv = _mm512_set1_pd(sh), slv = _mm512_set1_pd(sl);                      \
    const __m512d isv = _mm512_set1_pd(1.0 / sh);                                         \
    for (i = 0; i + 8 <= n; i += 8)                                                       \
        LSE512_STORE_##SUF(out + i, 0xff, LSE512_DIV_##SUF(_mm512_loadu_pd(buf + i), sv, slv, isv)); \
    if (i < n) {                                                                          \
        __mmask8 km = (__mmask8)((1u << (n - i)) - 1);                                    \
        LSE512_STORE_##SUF(out + i, km, LSE512_DIV_##SUF(_mm512_maskz_loadu_pd(km, buf + i), sv, slv, isv)); \
    }                                                                                     \
    return 1;                                                                             \
}                                                                                         \
                                                                                          \
LSE512 int lse512_softmax_buffered_##SUF(const A_T *a, A_T *out, double *buf, ptrdiff_t n, \
                                         double tau)                                      \
{                                                                                         \
    return LSE512_BY_UNIT(tau, lse512_softmax_buffered_impl_##SUF, a, out, buf, n, tau);  \
}                                                                                         \
                                                                                          \
/* out_i = exp((a_i - m) inv_tau) / s over n contiguous elements (m finite).  Masked */  \
/* loads and stores only for the tail: they are slow on some CPUs. */                     \
LSE512_INLINE void lse512_softmax_impl_##SUF(const A_T *a, A_T *out, ptrdiff_t n, double m, \
                                             double tau, double s, double sl,             \
                                             const int unit)                              \
{                                                                                         \
    const lse512_tab k = lse512_tables();                                                 \
    double inv_tau, itl = lse_inv_tau(tau, &inv_tau);                                     \
    const __m512d mv = _mm512_set1_pd(m), iv = _mm512_set1_pd(inv_tau);                   \
    const __m512d itlv = _mm512_set1_pd(itl);                                             \
    const __m512d sv = _mm512_set1_pd(s), ninf = _mm512_set1_pd(-INFINITY);               \
    const __m512d slv = _mm512_set1_pd(sl), isv = _mm512_set1_pd(1.0 / s);                \
    ptrdiff_t i = 0;                                                                      \
    for (; i + 8 <= n; i += 8) {                                                          \
        __m512d e = LSE512_SOFTMAX_TERM_##SUF(LOAD8(ninf, 0xff, a + i), mv, iv, itlv, &k, \
                                              unit);                                      \
        LSE512_STORE_##SUF(out + i, 0xff, LSE512_DIV_##SUF(e, sv, slv, isv));                       \
    }                                                                                     \
    if (i < n) {                                                                          \
        __mmask8 km = (__mmask8)((1u << (n - i)) - 1);                                    \
        __m512d e = LSE512_SOFTMAX_TERM_##SUF(LOAD8(ninf, km, a + i), mv, iv, itlv, &k,   \
                                              unit);                                      \
        LSE512_STORE_##SUF(out + i, km, LSE512_DIV_##SUF(e, sv, slv, isv));                         \
    }                                                                                     \
}                                                                                         \
                                                                                          \
LSE512 void lse512_softmax_##SUF(const A_T *a, A_T *out, ptrdiff_t n, double m,           \
                                 double tau, double s, double sl)                         \
{                                                                                         \
    LSE512_BY_UNIT(tau, lse512_softmax_impl_##SUF, a, out, n, m, tau, s, sl);             \
}

/* Load or store 8 elements as float64 lanes, under a mask unless it is the constant 0xff. */
#define LSE512_LOAD8_d(src, k, p) \
    (__builtin_constant_p(k) && (k) == 0xff ? _mm512_loadu_pd(p) : _mm512_mask_loadu_pd((src), (k), (p)))
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
#define LSE512_DIV_d(e, s, sl, is) lse512_div_corrected((e), (s), (sl), (is))
#define LSE512_DIV_f(e, s, sl, is) ((void)(s), (void)(sl), _mm512_mul_pd((e), (is)))
#define LSE512_STORE_d(p, k, v) \
    (__builtin_constant_p(k) && (k) == 0xff ? _mm512_storeu_pd((p), (v)) \
                                             : _mm512_mask_storeu_pd((p), (k), (v)))
#define LSE512_LOAD8_f(src, k, p) \
    _mm512_cvtps_pd(__builtin_constant_p(k) && (k) == 0xff \
                    ? _mm256_loadu_ps(p) : _mm256_mask_loadu_ps(_mm512_cvtpd_ps(src), (k), (p)))
#define LSE512_STORE_f(p, k, v) \
    (__builtin_constant_p(k) && (k) == 0xff ? _mm256_storeu_ps((p), _mm512_cvtpd_ps(v)) \
                                             : _mm256_mask_storeu_ps((p), (k), _mm512_cvtpd_ps(v)))

LSE512_DEFINE(d, double, LSE512_LOAD8_d)
LSE512_DEFINE(f, float, LSE512_LOAD8_f)

#endif
#endif
