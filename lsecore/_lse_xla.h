/* XLA FFI custom calls of the kernel: one float32/float64 buffer reduced over its last axis. */

#ifndef LSE_XLA_H
#define LSE_XLA_H

#include <string.h>

/* XLA's stable C API only: the package builds without jax. */
#include "vendor/xla_ffi_c_api.h"

/* Reduces the rows of x (rows of n elements, C-contiguous) into out, in x's dtype (f64: float64,
   else float32): the log-sum-exp at temperature tau, or the log-mean-exp with mean; -1 when
   memory runs out. */
typedef int (*lse_xla_rows_fn)(int f64, const void *x, void *out, Py_ssize_t rows, Py_ssize_t n,
                               double tau, int mean);

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

/* The handler of a reduction custom call: the float64 attribute `tau`, one buffer in and one
   out of its dtype with the last axis dropped; `rows` computes. */
static XLA_FFI_Error *lse_xla_reduce(XLA_FFI_CallFrame *frame, lse_xla_rows_fn rows, int mean)
{
    const XLA_FFI_Buffer *x, *out;
    Py_ssize_t outer = 1, n;
    int64_t k;
    double tau;
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
                             "lsearray: a reduction takes one buffer and returns one");
    x = (const XLA_FFI_Buffer *)frame->args.args[0];
    out = (const XLA_FFI_Buffer *)frame->rets.rets[0];
    if ((x->dtype != XLA_FFI_DataType_F32 && x->dtype != XLA_FFI_DataType_F64)
        || out->dtype != x->dtype || x->rank < 1)
        return lse_xla_error(frame->api, XLA_FFI_Error_Code_INVALID_ARGUMENT,
                             "lsearray: a reduction takes a float32 or float64 array of rank "
                             ">= 1 and returns its dtype");
    if (!lse_xla_f64_attr(&frame->attrs, "tau", &tau))
        return lse_xla_error(frame->api, XLA_FFI_Error_Code_INVALID_ARGUMENT,
                             "lsearray: a reduction needs the float64 attribute tau");
    for (k = 0; k + 1 < x->rank; k++)
        outer *= (Py_ssize_t)x->dims[k];
    n = (Py_ssize_t)x->dims[x->rank - 1];
    if (rows(x->dtype == XLA_FFI_DataType_F64, x->data, out->data, outer, n, tau, mean) < 0)
        return lse_xla_error(frame->api, XLA_FFI_Error_Code_RESOURCE_EXHAUSTED,
                             "lsearray: out of memory");
    return NULL;
}

#endif
