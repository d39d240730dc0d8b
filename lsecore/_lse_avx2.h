/* AVX2 kernels: the unweighted contiguous row loops for CPUs with AVX2 and FMA but no AVX-512. */
#ifndef LSECORE_LSE_AVX2_H
#define LSECORE_LSE_AVX2_H

/*
 * Included by _lse_blocks.h after _lse_avx512.h.  Every function here is compiled for
 * x86-64-v3 only and called only after lse_use_avx2() said the CPU has AVX2 and FMA and
 * the AVX-512 loops are not taken.  The exp is the AVX-512 one on 4 lanes: the table of
 * 2^(j/16) (LSE_T_HI, LSE_T_LO, LSE_T_BITS) read by gathers, 2^q from the bits of k.
 */
#if defined(LSE_HAVE_AVX512) && !defined(LSE_NO_AVX2)      /* the same compilers and CPUs */
#define LSE_HAVE_AVX2 1
#include <immintrin.h>
#include <stdlib.h>

#define LSE256 static __attribute__((target("arch=x86-64-v3")))
#define LSE256_INLINE static inline __attribute__((always_inline, target("arch=x86-64-v3")))
#define LSE256_BY_UNIT LSE512_BY_UNIT

/*
 * Whether the AVX2 row loops run: the CPU has AVX2 and FMA, the AVX-512 loops do not
 * run, and LSECORE_SIMD is not "generic".  LSECORE_SIMD=avx2 selects them on an AVX-512
 * CPU too (lse_use_avx512 then says no), so that they can be tested there.
 */
static inline int lse_use_avx2(void)
{
    static int use = -1;                         /* racy but idempotent */
    if (use < 0) {
        const char *env = getenv("LSECORE_SIMD");
        int generic = env != NULL && strcmp(env, "generic") == 0;
        __builtin_cpu_init();
        use = !generic && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return use && !lse_use_avx512();
}

/*
 * exp(d) for d <= 0, -inf or nan, as lse512_exp and lse512_exp_f32 compute it, on 4
 * lanes.  prec: 0 for float64 (the table in double-double, two reduction constants,
 * degree 7: under 0.52 ulp), 1 for float32 (degree 6, about 2^-50), 2 for float32's
 * coarse terms (degree 4, 2^-34), as lse_row_block_start_SUF numbers them.  d below -708 is taken as -708, so that 2^q stays
 * normal, and for float64 its term is then 0, as the portable loops flush it; nan stays nan.
 */
LSE256_INLINE __m256d lse256_exp(__m256d d, const int prec)
{
    const __m256d shift = _mm256_set1_pd(0x1.8p48);  /* rounds d / ln2 to sixteenths */
    __m256d dc = _mm256_max_pd(_mm256_set1_pd(-708.0), d);   /* nan (the second) stays */
    __m256d kd = _mm256_fmadd_pd(dc, _mm256_set1_pd(0x1.71547652b82fep0), shift);
    __m256i kb = _mm256_castpd_si256(kd);            /* low bits: k, two's complement */
    __m256i j = _mm256_and_si256(kb, _mm256_set1_epi64x(15));
    kd = _mm256_sub_pd(kd, shift);                   /* k / 16 */
    __m256d r = _mm256_fnmadd_pd(kd, _mm256_set1_pd(0x1.62e42fefa39efp-1), dc);
    __m256i k48 = _mm256_slli_epi64(kb, 48);         /* q << 52, and j << 48 */
    __m256d q;
    if (prec == 0) {
        r = _mm256_fnmadd_pd(kd, _mm256_set1_pd(0x1.abc9e3b39803fp-56), r);
        q = _mm256_fmadd_pd(r, _mm256_set1_pd(1.0 / 5040.0), _mm256_set1_pd(1.0 / 720.0));
        q = _mm256_fmadd_pd(q, r, _mm256_set1_pd(1.0 / 120.0));
        q = _mm256_fmadd_pd(q, r, _mm256_set1_pd(1.0 / 24.0));
        q = _mm256_fmadd_pd(q, r, _mm256_set1_pd(1.0 / 6.0));
    } else if (prec == 1) {
        q = _mm256_fmadd_pd(r, _mm256_set1_pd(1.0 / 720.0), _mm256_set1_pd(1.0 / 120.0));
        q = _mm256_fmadd_pd(q, r, _mm256_set1_pd(1.0 / 24.0));
        q = _mm256_fmadd_pd(q, r, _mm256_set1_pd(1.0 / 6.0));
    } else {
        q = _mm256_fmadd_pd(r, _mm256_set1_pd(1.0 / 24.0), _mm256_set1_pd(1.0 / 6.0));
    }
    q = _mm256_fmadd_pd(q, r, _mm256_set1_pd(0.5));
    __m256d p = _mm256_fmadd_pd(_mm256_mul_pd(r, r), q, r);
    if (prec != 0) {
        __m256i tb = _mm256_i64gather_epi64((const long long *)LSE_T_BITS, j, 8);
        __m256d th = _mm256_castsi256_pd(_mm256_add_epi64(tb, k48));
        return _mm256_fmadd_pd(th, p, th);
    }
    __m256d th = _mm256_i64gather_pd(LSE_T_HI, j, 8);
    __m256d tl = _mm256_i64gather_pd(LSE_T_LO, j, 8);
    __m256i qb = _mm256_and_si256(k48, _mm256_set1_epi64x((long long)0xfff0000000000000ULL));
    __m256d scale = _mm256_castsi256_pd(_mm256_add_epi64(qb,
                                                         _mm256_set1_epi64x(0x3ff0000000000000LL)));
    __m256d e = _mm256_mul_pd(_mm256_add_pd(th, _mm256_fmadd_pd(th, p, tl)), scale);
    return _mm256_and_pd(e, _mm256_cmp_pd(d, _mm256_set1_pd(-708.0), _CMP_NLT_UQ));
}

/* Add the lanes of the Kahan sums s_k - c_k (k < 4) to the compensated sum (*t, *tc). */
LSE256_INLINE void lse256_flush(const __m256d *s, const __m256d *c, double *t, double *tc)
{
    double sv[4], cv[4];
    for (int k = 0; k < 4; k++) {
        _mm256_storeu_pd(sv, s[k]);
        _mm256_storeu_pd(cv, c[k]);
        for (int l = 0; l < 4; l++) {
            lse_neumaier(t, tc, sv[l]);
            lse_neumaier(t, tc, -cv[l]);
        }
    }
}

/* The max of n >= 1 contiguous elements, nan ignored (-inf when all are nan). */
#define LSE256_MAX_DEFINE(SUF, A_T, LOAD4)                                               \
LSE256_INLINE double lse256_max_##SUF(const A_T *a, ptrdiff_t n)                         \
{                                                                                         \
    __m256d m0 = _mm256_set1_pd(-INFINITY), m1 = m0, m2 = m0, m3 = m0;                    \
    ptrdiff_t i = 0;                                                                      \
    for (; i + 16 <= n; i += 16) {          /* max(x, m) is m when x is nan */            \
        m0 = _mm256_max_pd(LOAD4(a + i), m0);                                             \
        m1 = _mm256_max_pd(LOAD4(a + i + 4), m1);                                         \
        m2 = _mm256_max_pd(LOAD4(a + i + 8), m2);                                         \
        m3 = _mm256_max_pd(LOAD4(a + i + 12), m3);                                        \
    }                                                                                     \
    double mx[4], m = -INFINITY;                                                          \
    _mm256_storeu_pd(mx, _mm256_max_pd(_mm256_max_pd(m0, m1), _mm256_max_pd(m2, m3)));    \
    for (int l = 0; l < 4; l++) m = mx[l] > m ? mx[l] : m;                                \
    for (; i < n; i++) m = (double)a[i] > m ? (double)a[i] : m;                           \
    return m;                                                                             \
}

#define LSE256_LOAD4_d(p) _mm256_loadu_pd(p)
#define LSE256_LOAD4_f(p) _mm256_cvtps_pd(_mm_loadu_ps(p))
LSE256_MAX_DEFINE(d, double, LSE256_LOAD4_d)
LSE256_MAX_DEFINE(f, float, LSE256_LOAD4_f)

/*
 * Add exp((a_i - m) inv_tau) over n contiguous elements (m >= every a_i, or 0 for an all
 * -inf block) to the partial, as lse512_sum_d: the count of a_i == m to *w, the others'
 * terms to four Kahan sums of 4 lanes, then to (*t, *tc); the tail by the scalar exp of
 * the portable loops.  prec as lse256_exp; unit: inv_tau is 1.
 */
#define LSE256_SUM_DEFINE(SUF, A_T, LOAD4)                                               \
LSE256_INLINE void lse256_sum_##SUF(const A_T *a, ptrdiff_t n, double m, double inv_tau,   \
                                    double *w, double *t, double *tc, const int prec,    \
                                    const int unit)                                       \
{                                                                                         \
    const __m256d mv = _mm256_set1_pd(m), iv = _mm256_set1_pd(inv_tau);                   \
    __m256d s[4], c[4];                                                                   \
    for (int k = 0; k < 4; k++) s[k] = c[k] = _mm256_setzero_pd();                        \
    uint64_t others = 0;                                                                  \
    ptrdiff_t i = 0;                                                                      \
    for (; i + 16 <= n; i += 16)                                                          \
        for (int k = 0; k < 4; k++) {                                                     \
            __m256d x = LOAD4(a + i + 4 * k);                                             \
            __m256d dx = _mm256_sub_pd(x, mv);                                            \
            __m256d e = lse256_exp(unit ? dx : _mm256_mul_pd(dx, iv), prec);              \
            __m256d off = _mm256_cmp_pd(x, mv, _CMP_NEQ_UQ);                              \
            others += (uint64_t)__builtin_popcount((unsigned)_mm256_movemask_pd(off));    \
            __m256d y = _mm256_sub_pd(_mm256_and_pd(e, off), c[k]);                       \
            __m256d u = _mm256_add_pd(s[k], y);                                           \
            c[k] = _mm256_sub_pd(_mm256_sub_pd(u, s[k]), y);                              \
            s[k] = u;                                                                     \
        }                                                                                 \
    *w += (double)((uint64_t)i - others);                                                 \
    lse256_flush(s, c, t, tc);                                                            \
    for (; i < n; i++) {                                                                  \
        double x = (double)a[i];                                                          \
        if (x == m) *w += 1.0;                                                            \
        else lse_neumaier(t, tc, lse_exp_nonpos((x - m) * inv_tau));                      \
    }                                                                                     \
}

LSE256_SUM_DEFINE(d, double, LSE256_LOAD4_d)
LSE256_SUM_DEFINE(f, float, LSE256_LOAD4_f)

/*
 * The row driver, as lse512_row_SUF: blocks of LSE_ROW_BLOCK, each one's max, then
 * lse_row_block_start_SUF, then its terms.  coarse as lse512_row_SUF (float32 only).
 */
#define LSE256_ROW_DEFINE(SUF, A_T)                                                       \
LSE256 void lse256_row_##SUF(const A_T *a, ptrdiff_t n, double inv_tau,                   \
                             double *m, double *w, double *t, double *c, int coarse)      \
{                                                                                         \
    for (ptrdiff_t i0 = 0; i0 < n; i0 += LSE_ROW_BLOCK) {                                 \
        ptrdiff_t len = n - i0 < LSE_ROW_BLOCK ? n - i0 : LSE_ROW_BLOCK;                  \
        const A_T *ab = a + i0;                                                           \
        int start = lse_row_block_start_##SUF(ab, len, lse256_max_##SUF(ab, len), inv_tau, \
                                              m, w, t, c, coarse);                        \
        if (!start) continue;                                                             \
        double mb = *m == -INFINITY ? 0.0 : *m;                                           \
        int prec = sizeof(A_T) == 8 ? 0 : start;                                          \
        if (prec == 0)                                                                    \
            LSE256_BY_UNIT(inv_tau, lse256_sum_##SUF, ab, len, mb, inv_tau, w, t, c, 0);  \
        else if (prec == 1)                                                               \
            LSE256_BY_UNIT(inv_tau, lse256_sum_##SUF, ab, len, mb, inv_tau, w, t, c, 1);  \
        else                                                                              \
            LSE256_BY_UNIT(inv_tau, lse256_sum_##SUF, ab, len, mb, inv_tau, w, t, c, 2);  \
    }                                                                                     \
}

LSE256_ROW_DEFINE(d, double)
LSE256_ROW_DEFINE(f, float)

#endif
#endif
