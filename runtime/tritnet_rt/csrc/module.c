/* CPython binding: _tnrt.Plan(ops).run(), ISA selection, thread count. Buffers come in through the buffer
 * protocol (numpy arrays, but numpy is not needed here), are held for the plan's life, never copied. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include "ops.h"

static int current_isa = TN_ISA_SERIAL;

/* One plan runs at a time: the thread pool is global, and a plan's buffers are its own scratch space, so two
 * Python threads running plans (or one changing the thread count) at once would corrupt each other. */
#ifdef _WIN32
static void run_lock(void) {}
static void run_unlock(void) {}
#else
#include <pthread.h>
static pthread_mutex_t run_mutex = PTHREAD_MUTEX_INITIALIZER;
static void run_lock(void) { pthread_mutex_lock(&run_mutex); }
static void run_unlock(void) { pthread_mutex_unlock(&run_mutex); }
#endif

typedef struct {
    PyObject_HEAD
    int nops;
    tn_op *ops;
    Py_buffer *views;
    int nviews;
    void *in_ptr;                 /* the plan's input buffer (Plan(ops, input=...)): run(x) reads x in its place */
    size_t in_len;
    void **in_slots[TN_MAX_BUFS]; /* the op buffer pointers that are in_ptr (the convs reading the input) */
    int n_in_slots;
} PlanObject;

static void Plan_dealloc(PlanObject *self) {
    for (int i = 0; i < self->nviews; i++) PyBuffer_Release(&self->views[i]);
    PyMem_Free(self->views);
    PyMem_Free(self->ops);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static const tn_op_desc *find_op(const char *name) {
    for (int i = 0; i < tn_op_count; i++)
        if (!strcmp(tn_op_table[i].name, name)) return &tn_op_table[i];
    return NULL;
}

static int name_in(const char *const *names, int n, PyObject *key) {
    const char *k = PyUnicode_Check(key) ? PyUnicode_AsUTF8(key) : NULL;
    if (!k) { PyErr_Clear(); return 0; }
    for (int i = 0; i < n && names[i]; i++)
        if (!strcmp(names[i], k)) return 1;
    return 0;
}

static int as_int(PyObject *v, Py_ssize_t k, const char *field, int *out) {
    long x = PyLong_AsLong(v);
    if (x == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "op %zd: field %s is not an integer", k, field);
        return -1;
    }
    if (x < INT_MIN || x > INT_MAX) {
        PyErr_Format(PyExc_ValueError, "op %zd: field %s = %ld is out of range", k, field, x);
        return -1;
    }
    *out = (int)x;
    return 0;
}

/* every key of d is one of names (or `list`) */
static int known_keys(PyObject *d, const char *const *names, int n, const char *list, Py_ssize_t k, const char *what) {
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    while (PyDict_Next(d, &pos, &key, &value)) {
        int ok = name_in(names, n, key) || (list && PyUnicode_Check(key) && !strcmp(PyUnicode_AsUTF8(key), list));
        if (!ok) {
            PyErr_Format(PyExc_ValueError, "op %zd: unknown %s %R", k, what, key);
            return -1;
        }
    }
    return 0;
}

/* Plan(ops): ops is a list of (name, ints, floats, buffers): ints a dict of the op's integer fields and
 * buffers a dict of its arrays, both by the names in tn_op_table (ops.c); a buffer may be None or absent */
static int Plan_init(PlanObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"ops", "input", NULL};
    PyObject *list, *input = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!|O", kwlist, &PyList_Type, &list, &input)) return -1;
    Py_ssize_t n = PyList_GET_SIZE(list);
    self->ops = PyMem_Calloc(n ? n : 1, sizeof(tn_op));
    self->views = PyMem_Calloc((n ? n : 1) * TN_MAX_BUFS + 1, sizeof(Py_buffer));
    if (!self->ops || !self->views) { PyErr_NoMemory(); return -1; }
    if (input && input != Py_None) {
        Py_buffer *v = &self->views[self->nviews];
        if (PyObject_GetBuffer(input, v, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) return -1;
        self->nviews++;
        self->in_ptr = v->buf;
        self->in_len = (size_t)v->len;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        const char *name;
        PyObject *ints, *floats, *bufs;
        tn_op *op = &self->ops[k];
        if (!PyArg_ParseTuple(PyList_GET_ITEM(list, k), "sO!O!O!", &name, &PyDict_Type, &ints, &PyTuple_Type, &floats,
                              &PyDict_Type, &bufs)) return -1;
        const tn_op_desc *d = find_op(name);
        if (!d) { PyErr_Format(PyExc_ValueError, "op %zd: unknown op %s", k, name); return -1; }
        op->code = d->code;
        int ni = 0;
        for (; ni < TN_MAX_INTS && d->ints[ni]; ni++) {
            PyObject *v = PyDict_GetItemString(ints, d->ints[ni]);
            if (!v) { PyErr_Format(PyExc_ValueError, "op %zd (%s): no field %s", k, name, d->ints[ni]); return -1; }
            if (as_int(v, k, d->ints[ni], &op->i[ni]) < 0) return -1;
        }
        if (d->list) {
            PyObject *v = PyDict_GetItemString(ints, d->list);
            PyObject *seq = v ? PySequence_Fast(v, "a list of integers") : NULL;
            if (!seq) {
                if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "op %zd (%s): no field %s", k, name, d->list);
                return -1;
            }
            Py_ssize_t len = PySequence_Fast_GET_SIZE(seq);
            if (ni + len > TN_MAX_INTS) {
                Py_DECREF(seq);
                PyErr_Format(PyExc_ValueError, "op %zd (%s): %zd values in %s", k, name, len, d->list);
                return -1;
            }
            for (Py_ssize_t j = 0; j < len; j++)
                if (as_int(PySequence_Fast_GET_ITEM(seq, j), k, d->list, &op->i[ni + j]) < 0) { Py_DECREF(seq); return -1; }
            Py_DECREF(seq);
        }
        if (known_keys(ints, d->ints, TN_MAX_INTS, d->list, k, "field") < 0 ||
            known_keys(bufs, d->bufs, TN_MAX_BUFS, NULL, k, "buffer") < 0) return -1;
        if (PyTuple_GET_SIZE(floats) > TN_MAX_FLOATS) {
            PyErr_Format(PyExc_ValueError, "op %zd: too many float parameters", k);
            return -1;
        }
        for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(floats); j++) {
            op->f[j] = (float)PyFloat_AsDouble(PyTuple_GET_ITEM(floats, j));
            if (PyErr_Occurred()) return -1;
        }
        size_t len[TN_MAX_BUFS] = {0};
        for (int j = 0; j < TN_MAX_BUFS && d->bufs[j]; j++) {
            PyObject *b = PyDict_GetItemString(bufs, d->bufs[j]);
            if (!b || b == Py_None) continue;
            Py_buffer *v = &self->views[self->nviews];
            if (PyObject_GetBuffer(b, v, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) return -1;
            self->nviews++;
            if ((uintptr_t)v->buf % 4) {
                PyErr_Format(PyExc_ValueError, "op %zd: buffer %s is not 4-byte aligned", k, d->bufs[j]);
                return -1;
            }
            op->b[j] = v->buf;
            len[j] = (size_t)v->len;
        }
        char err[200];
        if (tn_check_op(op, len, err) < 0) {
            PyErr_Format(PyExc_ValueError, "op %zd (%s): %s", k, name, err);
            return -1;
        }
        self->nops = (int)k + 1;
    }
    for (int k = 0; self->in_ptr && k < self->nops; k++)
        for (int j = 0; j < TN_MAX_BUFS; j++)
            if (self->ops[k].b[j] == self->in_ptr) {
                if (self->n_in_slots == TN_MAX_BUFS) {
                    PyErr_SetString(PyExc_ValueError, "more than 20 ops read the input buffer");
                    return -1;
                }
                self->in_slots[self->n_in_slots++] = &self->ops[k].b[j];
            }
    return 0;
}

/* x (None: the plan's own input buffer) checked for run(x); 0, or -1 with the error set */
static int take_input(PlanObject *self, PyObject *x, Py_buffer *v) {
    if (!x || x == Py_None) return 0;
    if (!self->in_ptr) {
        PyErr_Format(PyExc_ValueError, "this plan was made without its input buffer");
        return -1;
    }
    if (PyObject_GetBuffer(x, v, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    if ((size_t)v->len != self->in_len || v->itemsize != 4 || !v->format || strcmp(v->format, "f") ||
        (uintptr_t)v->buf % 4) {
        PyBuffer_Release(v);
        v->obj = NULL;
        PyErr_Format(PyExc_ValueError, "run(x): x must be C-contiguous float32 of %zu bytes", self->in_len);
        return -1;
    }
    return 0;
}

/* every op in order; the convs reading the input read v's images (when given) for this run only */
static void run_ops(PlanObject *self, const Py_buffer *v, int isa) {
    for (int i = 0; v->obj && i < self->n_in_slots; i++) *self->in_slots[i] = v->buf;
    for (int k = 0; k < self->nops; k++) tn_run_op(&self->ops[k], isa);
    for (int i = 0; v->obj && i < self->n_in_slots; i++) *self->in_slots[i] = self->in_ptr;
}

/* run() or run(x): x (C-contiguous, writable, float32, the input buffer's size) read where the ops read the plan's
 * input buffer, for this run: the caller's images without a copy. The ops only read the input. */
static PyObject *Plan_run(PlanObject *self, PyObject *args) {
    PyObject *x = NULL;
    if (!PyArg_ParseTuple(args, "|O", &x)) return NULL;
    Py_buffer v = {0};
    if (take_input(self, x, &v) < 0) return NULL;
    int isa = current_isa;
    Py_BEGIN_ALLOW_THREADS
    run_lock();
    run_ops(self, &v, isa);
    run_unlock();
    Py_END_ALLOW_THREADS
    if (v.obj) PyBuffer_Release(&v);
    Py_RETURN_NONE;
}

static PyMethodDef Plan_methods[] = {
    {"run", (PyCFunction)Plan_run, METH_VARARGS,
     "run() or run(x): every op, in order, with the current ISA and threads; x replaces the input buffer"},
    {NULL}};

static PyTypeObject PlanType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tritnet_rt._tnrt.Plan", .tp_basicsize = sizeof(PlanObject), .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew, .tp_init = (initproc)Plan_init, .tp_dealloc = (destructor)Plan_dealloc,
    .tp_methods = Plan_methods, .tp_doc = "a compiled list of ops over preallocated buffers"};

/* run_together([(plan, x or None), ...]): the plans at once, one a thread of the pool, each running its ops on
 * that thread alone (tn_parallel does not nest), so a batch split into one micro-batch a thread crosses no
 * barrier between layers and each core keeps its own images' activations. The plans must not share buffers. */
typedef struct { PlanObject *plan; Py_buffer view; int isa; } together_item;

static void together_task(void *ctx, int i) {
    together_item *it = (together_item *)ctx + i;
    run_ops(it->plan, &it->view, it->isa);
}

static PyObject *py_run_together(PyObject *m, PyObject *arg) {
    PyObject *seq = PySequence_Fast(arg, "run_together takes a sequence of (plan, x or None)");
    if (!seq) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    together_item *items = PyMem_Calloc(n ? (size_t)n : 1, sizeof *items);
    if (!items) { Py_DECREF(seq); return PyErr_NoMemory(); }
    Py_ssize_t ok = 0;
    for (; ok < n; ok++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(seq, ok), *p = NULL, *x = NULL;
        if (!PyTuple_Check(pair) || !PyArg_ParseTuple(pair, "O!O", &PlanType, &p, &x)) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "run_together: items are (plan, x or None)");
            break;
        }
        for (Py_ssize_t j = 0; j < ok; j++)
            if (items[j].plan == (PlanObject *)p) {
                PyErr_SetString(PyExc_ValueError, "run_together: a plan given twice (its buffers would be shared)");
                break;
            }
        if (PyErr_Occurred()) break;
        items[ok].plan = (PlanObject *)p;
        items[ok].isa = current_isa;
        if (take_input(items[ok].plan, x, &items[ok].view) < 0) break;
    }
    if (ok == n) {
        Py_BEGIN_ALLOW_THREADS
        run_lock();
        tn_parallel((int)n, together_task, items);
        run_unlock();
        Py_END_ALLOW_THREADS
    }
    for (Py_ssize_t j = 0; j < ok; j++)
        if (items[j].view.obj) PyBuffer_Release(&items[j].view);
    PyMem_Free(items);
    Py_DECREF(seq);
    if (ok < n) return NULL;
    Py_RETURN_NONE;
}

static PyObject *py_compiled(PyObject *m, PyObject *a) {
    PyObject *out = PyList_New(0);
    for (int i = 0; i < TN_ISA_COUNT; i++)
        if (tn_isa_table[i].t8) PyList_Append(out, PyUnicode_FromString(tn_isa_table[i].name));
    return out;
}

static PyObject *py_supported(PyObject *m, PyObject *a) {
    PyObject *out = PyList_New(0);
    for (int i = 0; i < TN_ISA_COUNT; i++)
        if (tn_cpu_supports(i)) PyList_Append(out, PyUnicode_FromString(tn_isa_table[i].name));
    return out;
}

static PyObject *py_set_isa(PyObject *m, PyObject *arg) {
    const char *name = PyUnicode_AsUTF8(arg);
    if (!name) return NULL;
    for (int i = 0; i < TN_ISA_COUNT; i++)
        if (!strcmp(name, tn_isa_table[i].name)) {
            if (!tn_cpu_supports(i)) return PyErr_Format(PyExc_ValueError, "ISA %s is not %s", name,
                                                         tn_isa_table[i].t8 ? "supported by this CPU" : "compiled in");
            current_isa = i;
            Py_RETURN_NONE;
        }
    return PyErr_Format(PyExc_ValueError, "unknown ISA %s", name);
}

static PyObject *py_get_isa(PyObject *m, PyObject *a) { return PyUnicode_FromString(tn_isa_table[current_isa].name); }
static PyObject *py_par_min_macs(PyObject *m, PyObject *a) { return PyFloat_FromDouble(tn_par_min_macs(current_isa)); }

static PyObject *py_set_threads(PyObject *m, PyObject *arg) {
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    Py_BEGIN_ALLOW_THREADS
    run_lock();
    tn_set_threads((int)n);
    run_unlock();
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_get_threads(PyObject *m, PyObject *a) { return PyLong_FromLong(tn_get_threads()); }

static PyMethodDef methods[] = {
    {"compiled", py_compiled, METH_NOARGS, "ISA paths compiled into this build"},
    {"supported", py_supported, METH_NOARGS, "ISA paths this build can run on this CPU"},
    {"set_isa", py_set_isa, METH_O, "force an ISA path by name"},
    {"get_isa", py_get_isa, METH_NOARGS, "the ISA path in use"},
    {"par_min_macs", py_par_min_macs, METH_NOARGS, "the ISA in use's multiply-adds from which a conv is split"},
    {"set_threads", py_set_threads, METH_O, "number of threads (>= 1)"},
    {"get_threads", py_get_threads, METH_NOARGS, "number of threads"},
    {"run_together", py_run_together, METH_O, "run plans at once, one a thread: [(plan, x or None), ...]"},
    {NULL}};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "_tnrt", "tritnet_rt kernels", -1, methods};

PyMODINIT_FUNC PyInit__tnrt(void) {
    if (PyType_Ready(&PlanType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moddef);
    if (!m) return NULL;
    Py_INCREF(&PlanType);
    PyModule_AddObject(m, "Plan", (PyObject *)&PlanType);
    PyModule_AddIntConstant(m, "AMX_MIN_K", TN_AMX_MIN_K);
    PyObject *slots = PyTuple_New(16);            /* the 2-bit weights' channel order, for plan.py */
    if (slots)
        for (int c = 0; c < 16; c++) PyTuple_SET_ITEM(slots, c, PyLong_FromLong(TN_W2_SLOT(c)));
    PyModule_AddObject(m, "W2_SLOTS", slots);
    for (int i = TN_ISA_COUNT - 1; i >= 0; i--)       /* best supported path by default */
        if (tn_cpu_supports(i)) { current_isa = i; break; }
    return m;
}
