/*
 * ipsotrace.fast._aggregate: the per-row work of ipsotrace/fast/aggregate.py's Accumulator, compiled.
 *
 * Accumulator.add folds rows into per-(flow, path) group arrays with about thirty numpy passes
 * (the packed key, two 64-bit hashes of it, sums, minima, maxima, the earliest packet, TCP
 * counters, the segments, the size histogram, the TTL/DSCP/ECN profile cache).  Here each is one
 * pass over the rows, in row order, with exactly the numbers the numpy passes give (the order of
 * rows never changes a sum, a minimum or a maximum; the earliest packet is resolved as numpy
 * resolves it, per call, then merged).  Hash-table inserts and the profile table stay in Python.
 * Set IPSOTRACE_NO_EXT=1 to use the numpy passes instead; tests/fast compares the two.
 *
 * Plain CPython C API: int64 arrays through the buffer protocol, lengths checked.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define BIG ((int64_t)1 << 62)
/* "no packet yet" in local_ts: above every time (a time may pass 2**62: a pcapng's clock) */
#define NO_TS INT64_MAX

/* Buffers of a tuple of int64 arrays: n_items each (n_items < 0: any length, stored in *len). */
static int
get_all(PyObject *tuple, Py_buffer *b, int count, int writable, const char *what)
{
    if (!PyTuple_Check(tuple) || PyTuple_GET_SIZE(tuple) != count) {
        PyErr_Format(PyExc_TypeError, "%s: a tuple of %d arrays", what, count);
        return -1;
    }
    for (int k = 0; k < count; k++) {
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(tuple, k), &b[k], writable ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0) {
            for (int j = 0; j < k; j++)
                PyBuffer_Release(&b[j]);
            return -1;
        }
    }
    return 0;
}

static void
release_all(Py_buffer *b, int count)
{
    for (int k = 0; k < count; k++)
        PyBuffer_Release(&b[k]);
}

/* --- the key ------------------------------------------------------------------------------------- */
enum { K_ENCAP, K_O_VER, K_I_VER, K_TID, K_I_PROTO, K_O_PROTO, K_O_FLOW_LABEL, K_I_SPORT, K_I_DPORT, K_O_SPORT,
       K_O_DPORT, K_O_SRC_HI, K_O_SRC_LO, K_O_DST_HI, K_O_DST_LO, K_I_SRC_HI, K_I_SRC_LO, K_I_DST_HI, K_I_DST_LO,
       NK };
#define NWORDS 11

PyDoc_STRVAR(keys_doc,
"keys(columns, hashes, checks)\n\n"
"aggregate.key_hashes and aggregate.key_checks of aggregate._packed_key, in one pass: columns is a\n"
"tuple of the 19 int64 key columns in KEY_COLUMNS order; hashes and checks are int64 outputs.");

static PyObject *
keys(PyObject *self, PyObject *args)
{
    PyObject *o_cols, *o_hash, *o_check;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOO", &o_cols, &o_hash, &o_check))
        return NULL;
    Py_buffer b[NK], out[2];
    if (get_all(o_cols, b, NK, 0, "keys") < 0)
        return NULL;
    if (PyObject_GetBuffer(o_hash, &out[0], PyBUF_WRITABLE) < 0) {
        release_all(b, NK);
        return NULL;
    }
    if (PyObject_GetBuffer(o_check, &out[1], PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&out[0]);
        release_all(b, NK);
        return NULL;
    }
    Py_ssize_t n = out[0].len / 8;
    int ok = out[1].len == 8 * n;
    for (int k = 0; k < NK; k++)
        ok = ok && b[k].len == 8 * n;
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "keys: column lengths do not agree");
    } else {
        const int64_t *c[NK];
        for (int k = 0; k < NK; k++)
            c[k] = b[k].buf;
        uint64_t *h_out = out[0].buf, *c_out = out[1].buf;
        uint64_t weight[NWORDS];
        for (int i = 0; i < NWORDS; i++)
            weight[i] = (0xD1B54A32D192ED03ull + 0x3C6EF372FE94F82Aull * (uint64_t)i) | 1;
        for (Py_ssize_t r = 0; r < n; r++) {
            uint64_t w[NWORDS];
            w[0] = (uint64_t)c[K_ENCAP][r] | ((uint64_t)c[K_O_VER][r] << 16) | ((uint64_t)c[K_I_VER][r] << 20)
                   | (((uint64_t)c[K_TID][r] + 1) << 24);
            w[1] = (uint64_t)c[K_I_PROTO][r] | ((uint64_t)c[K_O_PROTO][r] << 8)
                   | ((uint64_t)c[K_O_FLOW_LABEL][r] << 16);
            w[2] = (uint64_t)c[K_I_SPORT][r] | ((uint64_t)c[K_I_DPORT][r] << 16) | ((uint64_t)c[K_O_SPORT][r] << 32)
                   | ((uint64_t)c[K_O_DPORT][r] << 48);
            for (int k = 0; k < 8; k++)
                w[3 + k] = (uint64_t)c[K_O_SRC_HI + k][r];
            uint64_t h = 0xCBF29CE484222325ull, s = 0;
            for (int i = 0; i < NWORDS; i++) {
                h = (h ^ w[i]) * 0x9E3779B97F4A7C15ull;
                s += w[i] * weight[i];
            }
            h ^= h >> 32;
            h *= 0xD6E8FEB86659FD93ull;
            h ^= h >> 32;
            h_out[r] = h;
            c_out[r] = s ^ (s >> 31);
        }
    }
    PyBuffer_Release(&out[0]);
    PyBuffer_Release(&out[1]);
    release_all(b, NK);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

/* --- the reductions ----------------------------------------------------------------------------- */
enum { R_GID, R_I_SIZE, R_O_SIZE, R_I_FRAG, R_I_DF, R_TS, R_FRAME, R_ROW, R_TCP_FLAGS, R_MSS, R_TCP_LEN, R_TCP_SEQ,
       R_I_TTL, R_O_TTL, R_I_DSCP, R_O_DSCP, R_I_ECN, R_O_ECN, NR };
enum { A_PACKETS, A_I_BYTES, A_O_BYTES, A_FRAGS, A_I_MIN, A_I_MAX, A_I_MAX_DF, A_O_MAX, A_LAST_TS, A_FIRST_TS,
       A_FIRST_FRAME, A_FIRST_ROW, A_FIRST_ROW_TS, A_TCP, A_TCP_OR, A_SYNS, A_MSS_MIN, A_MSS_MAX, NA };
enum { H_SIZE_HIST, H_SIZE_BIN_OF, H_SIZE_EDGES, H_LAST_PROF, H_LAST_PID, H_LOCAL_TS, H_LOCAL_FRAME, NH };
enum { O_PROF, O_PID, O_SEG_G, O_SEG_ROW, O_SEG_END, O_TOUCHED, NO };

PyDoc_STRVAR(reduce_doc,
"reduce(rows, acc, state, out, groups) -> segments\n\n"
"The per-row part of Accumulator.add: rows is a tuple of the int64 row columns in ROW_COLUMNS\n"
"order (gid first: every row's group, below ``groups``); acc the group\n"
"arrays in ACC_COLUMNS order; state (size_hist, size_bin_of, size_edges, last_prof, last_pid,\n"
"local_ts, local_frame): local_ts/local_frame scratch per group holding 2**63 - 1 / 2**62, left so; out\n"
"(prof, pid, seg_group, seg_row, seg_end, touched) one entry per row.  pid is the cached profile\n"
"pair of the row's group, -1 where the cache does not hold the row's profile (Python asks the\n"
"pair table).  Returns how many TCP data segments were written.");

static PyObject *
reduce_rows(PyObject *self, PyObject *args)
{
    PyObject *o_rows, *o_acc, *o_state, *o_out;
    (void)self;
    Py_ssize_t groups;
    if (!PyArg_ParseTuple(args, "OOOOn", &o_rows, &o_acc, &o_state, &o_out, &groups))
        return NULL;
    Py_buffer r[NR], a[NA], h[NH], o[NO];
    if (get_all(o_rows, r, NR, 0, "reduce rows") < 0)
        return NULL;
    if (get_all(o_acc, a, NA, 1, "reduce acc") < 0) {
        release_all(r, NR);
        return NULL;
    }
    if (get_all(o_state, h, NH, 1, "reduce state") < 0) {
        release_all(a, NA);
        release_all(r, NR);
        return NULL;
    }
    if (get_all(o_out, o, NO, 1, "reduce out") < 0) {
        release_all(h, NH);
        release_all(a, NA);
        release_all(r, NR);
        return NULL;
    }
    Py_ssize_t n = r[0].len / 8, nbins = h[H_SIZE_EDGES].len / 8;
    Py_ssize_t nbin_of = h[H_SIZE_BIN_OF].len / 8;
    int ok = nbins > 0 && groups >= 0;
    for (int k = 0; k < NR; k++)
        ok = ok && r[k].len == 8 * n;
    for (int k = 0; k < NA; k++)
        ok = ok && a[k].len >= 8 * groups;
    for (int k = 0; k < NO; k++)
        ok = ok && o[k].len == 8 * n;
    ok = ok && h[H_SIZE_HIST].len >= 8 * groups * nbins && h[H_LAST_PROF].len >= 8 * groups
         && h[H_LAST_PID].len >= 8 * groups && h[H_LOCAL_TS].len >= 8 * groups && h[H_LOCAL_FRAME].len >= 8 * groups;
    const int64_t *gid = r[R_GID].buf;
    for (Py_ssize_t i = 0; ok && i < n; i++)
        ok = gid[i] >= 0 && gid[i] < groups;
    Py_ssize_t segs = 0;
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "reduce: array sizes or group numbers do not agree");
    } else {
        const int64_t *c[NR];
        int64_t *A[NA], *H[NH], *O[NO];
        for (int k = 0; k < NR; k++)
            c[k] = r[k].buf;
        for (int k = 0; k < NA; k++)
            A[k] = a[k].buf;
        for (int k = 0; k < NH; k++)
            H[k] = h[k].buf;
        for (int k = 0; k < NO; k++)
            O[k] = o[k].buf;
        int64_t *lts = H[H_LOCAL_TS], *lfr = H[H_LOCAL_FRAME], *touched = O[O_TOUCHED];
        Py_ssize_t nt = 0;
        int bad_size = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t g = gid[i], is = c[R_I_SIZE][i], os = c[R_O_SIZE][i], ts = c[R_TS][i], row = c[R_ROW][i];
            A[A_PACKETS][g] += 1;
            A[A_I_BYTES][g] += is;
            A[A_O_BYTES][g] += os;
            A[A_FRAGS][g] += c[R_I_FRAG][i];
            if (is < A[A_I_MIN][g])
                A[A_I_MIN][g] = is;
            if (is > A[A_I_MAX][g])
                A[A_I_MAX][g] = is;
            int64_t df = c[R_I_DF][i] != 0 ? is : 0;
            if (df > A[A_I_MAX_DF][g])
                A[A_I_MAX_DF][g] = df;
            if (os > A[A_O_MAX][g])
                A[A_O_MAX][g] = os;
            if (ts > A[A_LAST_TS][g])
                A[A_LAST_TS][g] = ts;
            /* the earliest packet of this call: smallest time, then the smallest frame at that time */
            /* (a group's first row here sets its frame: frame numbers stay far below 2**62) */
            if (lfr[g] == BIG)
                touched[nt++] = g;
            if (ts < lts[g] || (ts == lts[g] && c[R_FRAME][i] < lfr[g])) {
                lts[g] = ts;
                lfr[g] = c[R_FRAME][i];
            }
            if (row < A[A_FIRST_ROW][g]) {
                A[A_FIRST_ROW][g] = row;
                A[A_FIRST_ROW_TS][g] = ts;
            }
            int64_t flags = c[R_TCP_FLAGS][i];
            if (flags >= 0) {
                if (A[A_TCP][g] < 1)
                    A[A_TCP][g] = 1;
                A[A_TCP_OR][g] |= flags;
                A[A_SYNS][g] += (flags & 0x12) == 0x02;
                int64_t mss = c[R_MSS][i];
                if (mss > 0) {
                    if (mss < A[A_MSS_MIN][g])
                        A[A_MSS_MIN][g] = mss;
                    if (mss > A[A_MSS_MAX][g])
                        A[A_MSS_MAX][g] = mss;
                }
                int64_t len = c[R_TCP_LEN][i];
                if (len > 0) {
                    O[O_SEG_G][segs] = g;
                    O[O_SEG_ROW][segs] = row;
                    O[O_SEG_END][segs] = (c[R_TCP_SEQ][i] + len) & 0xFFFFFFFF;
                    segs++;
                }
            }
            /* the inner size's bin: the table where it reaches, else the edges (as searchsorted) */
            Py_ssize_t bin;
            if (is >= 0 && is < nbin_of) {
                bin = H[H_SIZE_BIN_OF][is];
            } else {
                Py_ssize_t lo = 0, hi = nbins; /* the number of edges <= is, minus one */
                while (lo < hi) {
                    Py_ssize_t mid = (lo + hi) / 2;
                    if (H[H_SIZE_EDGES][mid] <= is)
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                bin = lo - 1;
            }
            if (bin < 0 || bin >= nbins) { /* below the first edge: numpy's bincount refuses it too */
                bad_size = 1;
                break;
            }
            H[H_SIZE_HIST][g * nbins + bin] += 1;
            int64_t prof = ((c[R_I_TTL][i] + 1) << 27) | ((c[R_O_TTL][i] + 1) << 18) | (c[R_I_DSCP][i] << 12)
                           | (c[R_O_DSCP][i] << 6) | (c[R_I_ECN][i] << 3) | c[R_O_ECN][i];
            O[O_PROF][i] = prof;
            O[O_PID][i] = H[H_LAST_PROF][g] == prof ? H[H_LAST_PID][g] : -1;
        }
        /* merged as the numpy passes do: a call's earliest packet replaces only a strictly later one
           (first_frame 2**62: none yet) */
        for (Py_ssize_t k = 0; k < nt; k++) {
            int64_t g = touched[k];
            if (lfr[g] < BIG && (lts[g] < A[A_FIRST_TS][g] || A[A_FIRST_FRAME][g] == BIG)) {
                A[A_FIRST_TS][g] = lts[g];
                A[A_FIRST_FRAME][g] = lfr[g];
            }
        }
        for (Py_ssize_t k = 0; k < nt; k++) {
            lts[touched[k]] = NO_TS;
            lfr[touched[k]] = BIG;
        }
        if (bad_size) {
            PyErr_SetString(PyExc_ValueError, "reduce: an inner size below the first size bin");
            ok = 0;
        }
    }
    release_all(o, NO);
    release_all(h, NH);
    release_all(a, NA);
    release_all(r, NR);
    if (!ok)
        return NULL;
    return PyLong_FromSsize_t(segs);
}

/* --- TCP sequence runs (Applier._tcp) ------------------------------------------------------------ */
PyDoc_STRVAR(tcp_runs_doc,
"tcp_runs(flow, ends, has_next, next0, new, bad, any_new, next_end, retrans)\n\n"
"Applier._tcp's serial arithmetic, one pass in capture order: each data segment (its flow, its\n"
"sequence end) is new when its end passes every earlier end of its flow (and the flow's tcp_next,\n"
"where has_next), else a retransmission.  Per segment: new (int8).  Per flow: bad (int8: two ends\n"
"2**31 or more apart, serial order undefined: Python replays it), any_new (int8), next_end (int64,\n"
"the furthest new end, where any_new), retrans (int64 count).  Distances are taken from next0\n"
"where has_next, else from the flow's first end.");

#define NO_SEQ (-((int64_t)1 << 39))

static PyObject *
tcp_runs(PyObject *self, PyObject *args)
{
    PyObject *o[9];
    Py_buffer b[9];
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &o[8]))
        return NULL;
    int got = 0, ok = 1;
    for (; got < 9; got++) {
        if (PyObject_GetBuffer(o[got], &b[got], got >= 4 ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0) {
            ok = 0;
            break;
        }
    }
    if (ok) {
        Py_ssize_t n = b[0].len / 8, nf = b[3].len / 8;
        const int64_t *flow = b[0].buf, *ends = b[1].buf, *next0 = b[3].buf;
        const int8_t *has_next = b[2].buf;
        int8_t *is_new = b[4].buf, *bad = b[5].buf, *any_new = b[6].buf;
        int64_t *max_new = b[7].buf, *retrans = b[8].buf; /* max_new: distances, then next_end */
        ok = b[1].len == 8 * n && b[2].len == nf && b[4].len == n && b[5].len == nf && b[6].len == nf
             && b[7].len == 8 * nf && b[8].len == 8 * nf;
        for (Py_ssize_t i = 0; ok && i < n; i++)
            ok = flow[i] >= 0 && flow[i] < nf;
        int64_t *ref = NULL, *run = NULL;
        if (!ok) {
            PyErr_SetString(PyExc_ValueError, "tcp_runs: array sizes or flow numbers do not agree");
        } else {
            ref = PyMem_Malloc(sizeof(int64_t) * (size_t)(nf ? nf : 1));
            run = PyMem_Malloc(sizeof(int64_t) * (size_t)(nf ? nf : 1));
            if (!ref || !run) {
                PyErr_NoMemory();
                ok = 0;
            }
        }
        if (ok) {
            for (Py_ssize_t f = 0; f < nf; f++) {
                run[f] = NO_SEQ - 1; /* no segment yet */
                bad[f] = any_new[f] = 0;
                max_new[f] = -((int64_t)1 << 40);
                retrans[f] = 0;
            }
            for (Py_ssize_t i = 0; i < n; i++) {
                int64_t f = flow[i];
                if (run[f] == NO_SEQ - 1) {
                    ref[f] = has_next[f] ? next0[f] : ends[i];
                    run[f] = has_next[f] ? 0 : NO_SEQ; /* no sequence seen yet: anything is new */
                }
                /* the serial distance from the reference, in -2**31 .. 2**31 - 1 */
                int64_t u = ((ends[i] - ref[f] + ((int64_t)1 << 31)) & 0xFFFFFFFF) - ((int64_t)1 << 31);
                int64_t prev = run[f];
                /* serial arithmetic equals integer order only while values stay within 2**31 of each other */
                if (prev > NO_SEQ && (u - prev >= ((int64_t)1 << 31) || prev - u >= ((int64_t)1 << 31)))
                    bad[f] = 1;
                if (u > prev) {
                    is_new[i] = 1;
                    any_new[f] = 1;
                    if (u > max_new[f])
                        max_new[f] = u;
                    run[f] = u;
                } else {
                    is_new[i] = 0;
                    retrans[f]++;
                }
            }
            for (Py_ssize_t f = 0; f < nf; f++) {
                if (any_new[f])
                    max_new[f] = (ref[f] + max_new[f]) & 0xFFFFFFFF;
            }
        }
        PyMem_Free(ref);
        PyMem_Free(run);
    }
    for (int k = 0; k < got; k++)
        PyBuffer_Release(&b[k]);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"tcp_runs", tcp_runs, METH_VARARGS, tcp_runs_doc},
    {"keys", keys, METH_VARARGS, keys_doc},
    {"reduce", reduce_rows, METH_VARARGS, reduce_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_aggregate", "The accumulator's per-row passes, compiled (see ipsotrace/fast/aggregate.py).",
    -1, methods, NULL, NULL, NULL, NULL,
};

static PyObject *
names(const char *const *items, int count)
{
    PyObject *t = PyTuple_New(count);
    for (int k = 0; t && k < count; k++) {
        PyObject *s = PyUnicode_FromString(items[k]);
        if (!s) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, k, s);
    }
    return t;
}

PyMODINIT_FUNC
PyInit__aggregate(void)
{
    static const char *const key_cols[NK] = {
        "encap", "o_ver", "i_ver", "tid", "i_proto", "o_proto", "o_flow_label", "i_sport", "i_dport", "o_sport",
        "o_dport", "o_src_hi", "o_src_lo", "o_dst_hi", "o_dst_lo", "i_src_hi", "i_src_lo", "i_dst_hi", "i_dst_lo"};
    static const char *const row_cols[NR] = {
        "gid", "i_size", "o_size", "i_frag", "i_df", "ts", "frame", "row", "tcp_flags", "mss", "tcp_len", "tcp_seq",
        "i_ttl", "o_ttl", "i_dscp", "o_dscp", "i_ecn", "o_ecn"};
    static const char *const acc_cols[NA] = {
        "packets", "i_bytes", "o_bytes", "frags", "i_min", "i_max", "i_max_df", "o_max", "last_ts", "first_ts",
        "first_frame", "first_row", "first_row_ts", "tcp", "tcp_or", "syns", "mss_min", "mss_max"};
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    const char *const *lists[3] = {key_cols, row_cols, acc_cols};
    const int counts[3] = {NK, NR, NA};
    const char *attrs[3] = {"KEY_COLUMNS", "ROW_COLUMNS", "ACC_COLUMNS"};
    for (int k = 0; k < 3; k++) {
        PyObject *t = names(lists[k], counts[k]);
        if (!t || PyModule_AddObject(m, attrs[k], t) < 0) {
            Py_XDECREF(t);
            Py_DECREF(m);
            return NULL;
        }
    }
    return m;
}
