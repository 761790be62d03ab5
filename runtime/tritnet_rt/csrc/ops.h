/* The executor's ops. Activations are float32 NHWC; Python (tritnet_rt/plan.py) builds the op list once
 * per batch size with every buffer preallocated, and one call runs the whole network in C. */
#ifndef TN_OPS_H
#define TN_OPS_H
#include "tn.h"

enum { OP_CONV_T8 = 1, OP_CONV_TT, OP_CONV_F32, OP_MAXPOOL, OP_AVGPOOL, OP_CONCAT, OP_ADD, OP_UPSAMPLE,
       OP_GATHER, OP_LINEAR, OP_ACT, OP_SLICE, OP_CONV_GROUPED, OP_SCALE_CHANNELS,
       OP_SHORTCUT };
#define TN_MAX_INTS 40
#define TN_MAX_BUFS 20
#define TN_MAX_FLOATS 8
/* a conv under this many multiply-adds runs on the calling thread (ops.c says why); AMX's tiles run the same
 * conv several times faster, so their threshold is higher. Python reads the active ISA's as
 * _tnrt.par_min_macs() to report which layers run on one thread */
#define TN_PAR_MIN_MACS 1e6
#define TN_PAR_MIN_MACS_AMX 8e6
double tn_par_min_macs(int isa);

typedef struct {
    int code;
    int i[TN_MAX_INTS];
    float f[TN_MAX_FLOATS];
    void *b[TN_MAX_BUFS];
} tn_op;

/* The op table of the C side: each op's name (what Python plans use), its integer fields in the order of
 * op->i and its buffers in the order of op->b. Python passes both as dicts by these names (module.c), so a
 * field is named in this table and in the kernel's enum, never by its position in a tuple. */
typedef struct {
    int code;
    const char *name;
    const char *ints[TN_MAX_INTS];
    const char *bufs[TN_MAX_BUFS];
    const char *list;          /* a trailing list-valued int field (concat's input channels), or NULL */
} tn_op_desc;
extern const tn_op_desc tn_op_table[];
extern const int tn_op_count;

void tn_run_op(const tn_op *op, int isa);
/* 0 if the op's ints are sane and buffer j holds at least what the op reads or writes (len[j] bytes, 0 for
 * none) and its index tables stay inside their buffers; else -1 and a message in err (200 bytes) */
int tn_check_op(const tn_op *op, const size_t *len, char *err);
#endif
