/* XLA FFI custom calls of the kernel: a float32/float64 buffer reduced or normalized over its last axis. */

#ifndef LSE_XLA_H
#define LSE_XLA_H

#include <string.h>
#if defined(__SSE2__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

/* XLA's stable C API only: the package builds without jax. */
#include "vendor/xla_ffi_c_api.h"

/* Computes on the rows of x (rows of n elements, C-contiguous) into out, in x's dtype (f64:
   float64, else float32), at temperature tau, with a flag of the function's own (the mean of a
   reduction, the log of a softmax); -1 when memory runs out. */
typedef int (*lse_xla_rows_fn)(int f64, const void *x, void *out, Py_ssize_t rows, Py_ssize_t n,
                               double tau, int flag);

static XLA_FFI_Error *lse_xla_error(const XLA_FFI_Api *api, XLA_FFI_Error_Code code,
                                    const char *message)
{
    XLA_FFI_Error_Create_Args args;
    args.struct_size = XLA_FFI_Error_Create_Args_STRUCT_SIZE;
    args.extension_start = NULL;
    args.message = message;
    args.errc = code;
    return api->XLA_FFI_Error_Create(&args);
}

/* XLA runs its CPU programs with subnormals flushed to zero; the kernel's results are those of
   IEEE arithmetic (a subnormal result, or input, is kept), as on NumPy arrays. The flags are
   per thread: XLA's calling thread is set here, the kernel's OpenMP workers are not XLA's and
   keep IEEE subnormals. */
#if defined(__SSE2__) || defined(_M_X64)
typedef unsigned int lse_fp_state;
static lse_fp_state lse_keep_subnormals(void)
{
    lse_fp_state state = _mm_getcsr();
    _mm_setcsr(state & ~(_MM_FLUSH_ZERO_ON | 0x0040u));  /* FTZ and DAZ off */
    return state;
}
static void lse_restore_fp(lse_fp_state state) { _mm_setcsr(state); }
#elif defined(__aarch64__)
typedef unsigned long lse_fp_state;
static lse_fp_state lse_keep_subnormals(void)
{
    lse_fp_state state;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(state));
    __asm__ __volatile__("msr fpcr, %0" : : "r"(state & ~(1ul << 24)));  /* FZ off */
    return state;
}
static void lse_restore_fp(lse_fp_state state) { __asm__ __volatile__("msr fpcr, %0" : : "r"(state)); }
#else
typedef int lse_fp_state;
static lse_fp_state lse_keep_subnormals(void) { return 0; }
static void lse_restore_fp(lse_fp_state state) { (void)state; }
#endif

/* The float64 scalar attribute `name`, if the call has it (XLA sorts attributes by name). */
static int lse_xla_f64_attr(const XLA_FFI_Attrs *attrs, const char *name, double *value)
{
    size_t len = strlen(name);
    int64_t i;
    for (i = 0; i < attrs->size; i++) {
        const XLA_FFI_ByteSpan *key = attrs->names[i];
        const XLA_FFI_Scalar *scalar = (const XLA_FFI_Scalar *)attrs->attrs[i];
        if (key->len == len && memcmp(key->ptr, name, len) == 0
            && attrs->types[i] == XLA_FFI_AttrType_SCALAR
            && scalar->dtype == XLA_FFI_DataType_F64) {
            *value = *(const double *)scalar->value;
            return 1;
        }
    }
    return 0;
}

/* The handler of a custom call over the last axis: the float64 attribute `tau`, one buffer in
   and one out of its dtype (its shape, or without the last axis for a reduction); `rows`
   computes, with `flag`. */
static XLA_FFI_Error *lse_xla_call(XLA_FFI_CallFrame *frame, lse_xla_rows_fn rows, int flag)
{
    const XLA_FFI_Buffer *x, *out;
    Py_ssize_t outer = 1, n;
    int64_t k;
    double tau;
    lse_fp_state fp;
    int rc;
    /* XLA first asks which version of the API the handler was compiled against. */
    if (frame->extension_start != NULL
        && frame->extension_start->type == XLA_FFI_Extension_Metadata) {
        XLA_FFI_Metadata *metadata = ((XLA_FFI_Metadata_Extension *)frame->extension_start)->metadata;
        metadata->api_version.struct_size = XLA_FFI_Api_Version_STRUCT_SIZE;
        metadata->api_version.extension_start = NULL;
        metadata->api_version.major_version = XLA_FFI_API_MAJOR;
        metadata->api_version.minor_version = XLA_FFI_API_MINOR;
        metadata->traits = 0;
        return NULL;
    }
    if (frame->stage != XLA_FFI_ExecutionStage_EXECUTE)
        return NULL;
    if (frame->args.size != 1 || frame->rets.size != 1
        || frame->args.types[0] != XLA_FFI_ArgType_BUFFER
        || frame->rets.types[0] != XLA_FFI_RetType_BUFFER)
        return lse_xla_error(frame->api, XLA_FFI_Error_Code_INVALID_ARGUMENT,
                             "lsearray: a custom call takes one buffer and returns one");
    x = (const XLA_FFI_Buffer *)frame->args.args[0];
    out = (const XLA_FFI_Buffer *)frame->rets.rets[0];
    if ((x->dtype != XLA_FFI_DataType_F32 && x->dtype != XLA_FFI_DataType_F64)
        || out->dtype != x->dtype || x->rank < 1)
        return lse_xla_error(frame->api, XLA_FFI_Error_Code_INVALID_ARGUMENT,
                             "lsearray: a custom call takes a float32 or float64 array of "
                             "rank >= 1 and returns its dtype");
    if (!lse_xla_f64_attr(&frame->attrs, "tau", &tau))
        return lse_xla_error(frame->api, XLA_FFI_Error_Code_INVALID_ARGUMENT,
                             "lsearray: a custom call needs the float64 attribute tau");
    for (k = 0; k + 1 < x->rank; k++)
        outer *= (Py_ssize_t)x->dims[k];
    n = (Py_ssize_t)x->dims[x->rank - 1];
    fp = lse_keep_subnormals();
    rc = rows(x->dtype == XLA_FFI_DataType_F64, x->data, out->data, outer, n, tau, flag);
    lse_restore_fp(fp);
    if (rc < 0)
        return lse_xla_error(frame->api, XLA_FFI_Error_Code_RESOURCE_EXHAUSTED,
                             "lsearray: out of memory");
    return NULL;
}

#endif
