/*
 * ipsotrace.fast._walk: the record-chain walks of ipsotrace/fast/batch.py, compiled, and the
 * copy of every frame's first bytes (header windows) that ipsotrace/fast/decode.py reads.
 *
 * Finding where each record of a capture starts is the one loop of the fast path
 * that cannot be vectorized (every record's length gives the next one's offset).
 * The walks do exactly what the pure-Python loops in batch.py do, and stop at exactly
 * the same place; everything else (checks, damage messages, fields) stays in Python.
 * The window copy gives the bytes numpy's fancy indexing gives (batch.windows), faster.
 * Two loops of the findings feed (ipsotrace/fast/facts.py) are here too: the duplicate scan
 * (each packet against its flow's previous 8, in capture order: a serial dependency per flow)
 * and the fingerprints (seven splitmix64 rounds per row); facts.py keeps numpy versions
 * that give the same results.  So does the hash-table lookup of ipsotrace/fast/aggregate.py
 * (GroupTable.lookup: a probe chain per key).
 * Set IPSOTRACE_NO_EXT=1 to use the Python and numpy versions instead.
 *
 * Plain CPython C API: the capture bytes and the output come in through the buffer
 * protocol.  Every read is bounds-checked against `have`, which must not exceed the
 * buffer's length; a corrupt length can never make us read or write out of bounds.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* pcapng block types (as in ipsotrace/sources/capfile.py) */
#define EPB 0x00000006u
#define OBSOLETE_PB 0x00000002u

/*
 * Each record's position depends on the length read from the one before, so a plain walk waits
 * for memory at every record.  Records of a capture often repeat a few sizes: asking for the lines
 * where the next records would start if they were as long as this one overlaps some of those
 * waits (measured: about a fifth less walk time on a VXLAN capture).  A wrong guess costs a wasted
 * prefetch, never a wrong result; no address outside the buffer is formed.
 */
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(addr) __builtin_prefetch((addr), 0, 0)
#else
#define PREFETCH(addr) ((void)0)
#endif
#define AHEAD 4

static inline void
prefetch_ahead(const unsigned char *b, Py_ssize_t q, Py_ssize_t step, Py_ssize_t have)
{
    for (int k = 0; k < AHEAD; k++) {
        q += step;
        if (q >= have)
            return;
        PREFETCH(b + q);
    }
}

static uint32_t
read_u32(const unsigned char *b, int big_endian)
{
    if (big_endian)
        return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | (uint32_t)b[3];
    return ((uint32_t)b[3] << 24) | ((uint32_t)b[2] << 16) | ((uint32_t)b[1] << 8) | (uint32_t)b[0];
}

/* Take the input and output buffers; checks that pos and have lie within the input. */
static int
open_args(PyObject *data, PyObject *out, Py_ssize_t pos, Py_ssize_t have, Py_buffer *in, Py_buffer *dst)
{
    if (PyObject_GetBuffer(data, in, PyBUF_SIMPLE) < 0)
        return -1;
    if (PyObject_GetBuffer(out, dst, PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(in);
        return -1;
    }
    if (have < 0 || have > in->len || pos < 0) {
        PyBuffer_Release(in);
        PyBuffer_Release(dst);
        PyErr_SetString(PyExc_ValueError, "pos/have outside the buffer");
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(pcap_doc,
"pcap(data, pos, have, rec, big_endian, out, fields) -> (count, stop)\n\n"
"Walk classic pcap records from byte ``pos`` while a whole record (``rec``-byte header plus\n"
"its captured length, read at header offset 8) lies within ``data[:have]``.  Record start\n"
"offsets are written to ``out`` (a writable int64 buffer), and the four 32-bit header words\n"
"(seconds, fraction, captured and original length) of record i to ``fields[4*i:4*i+4]``\n"
"(int64): they are in cache now, a gather later would fetch them again.  Returns how many\n"
"records, and the offset of the first record not walked.  Stops early when an output is full.");

static PyObject *
walk_pcap(PyObject *self, PyObject *args)
{
    PyObject *data, *out, *fields;
    Py_ssize_t pos, have, rec;
    int big;
    Py_buffer in, dst, fld;
    (void)self;
    if (!PyArg_ParseTuple(args, "OnnnpOO", &data, &pos, &have, &rec, &big, &out, &fields))
        return NULL;
    if (rec < 16) {
        PyErr_SetString(PyExc_ValueError, "record header shorter than 16 bytes");
        return NULL;
    }
    if (open_args(data, out, pos, have, &in, &dst) < 0)
        return NULL;
    if (PyObject_GetBuffer(fields, &fld, PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&in);
        PyBuffer_Release(&dst);
        return NULL;
    }
    const unsigned char *b = (const unsigned char *)in.buf;
    int64_t *o = (int64_t *)dst.buf;
    int64_t *f = (int64_t *)fld.buf;
    Py_ssize_t room = dst.len / (Py_ssize_t)sizeof(int64_t);
    Py_ssize_t frooms = fld.len / (Py_ssize_t)(4 * sizeof(int64_t));
    if (frooms < room)
        room = frooms;
    Py_ssize_t n = 0, p = pos;
    Py_BEGIN_ALLOW_THREADS
    /* p + rec <= have keeps the length field (bytes p+8..p+11) inside the buffer */
    while (n < room && p <= have - rec) {
        Py_ssize_t q = p + rec + (Py_ssize_t)read_u32(b + p + 8, big);
        if (q > have)
            break;
        prefetch_ahead(b, q, q - p, have);
        /* memcpy: the outputs need not be aligned */
        memcpy(o + n, &(int64_t){(int64_t)p}, sizeof(int64_t));
        for (int k = 0; k < 4; k++)
            memcpy(f + 4 * n + k, &(int64_t){(int64_t)read_u32(b + p + 4 * k, big)}, sizeof(int64_t));
        n++;
        p = q;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&in);
    PyBuffer_Release(&dst);
    PyBuffer_Release(&fld);
    return Py_BuildValue("nn", n, p);
}

PyDoc_STRVAR(pcapng_doc,
"pcapng(data, pos, have, big_endian, max_record, out) -> (count, stop)\n\n"
"Walk a run of enhanced (and obsolete) packet blocks from byte ``pos``: a block is taken\n"
"when its length is at least 12, a multiple of 4, at most ``max_record``, and the whole block\n"
"lies within ``data[:have]``.  Block start offsets go to ``out``; returns how many, and the\n"
"offset of the first block not taken (any other block type, a bad or cut block: Python\n"
"looks at it).  Stops early when ``out`` is full.");

static PyObject *
walk_pcapng(PyObject *self, PyObject *args)
{
    PyObject *data, *out;
    Py_ssize_t pos, have;
    unsigned long max_record;
    int big;
    Py_buffer in, dst;
    (void)self;
    if (!PyArg_ParseTuple(args, "OnnpkO", &data, &pos, &have, &big, &max_record, &out))
        return NULL;
    if (open_args(data, out, pos, have, &in, &dst) < 0)
        return NULL;
    const unsigned char *b = (const unsigned char *)in.buf;
    int64_t *o = (int64_t *)dst.buf;
    Py_ssize_t room = dst.len / (Py_ssize_t)sizeof(int64_t);
    Py_ssize_t n = 0, p = pos;
    Py_BEGIN_ALLOW_THREADS
    while (n < room && p <= have - 8) {
        uint32_t btype = read_u32(b + p, big);
        uint32_t blen = read_u32(b + p + 4, big);
        if (btype != EPB && btype != OBSOLETE_PB)
            break;
        if (blen < 12 || (blen & 3) || blen > max_record || (Py_ssize_t)blen > have - p)
            break;
        prefetch_ahead(b, p + (Py_ssize_t)blen, (Py_ssize_t)blen, have);
        memcpy(o + n, &(int64_t){(int64_t)p}, sizeof(int64_t));
        n++;
        p += (Py_ssize_t)blen;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&in);
    PyBuffer_Release(&dst);
    return Py_BuildValue("nn", n, p);
}

PyDoc_STRVAR(windows_doc,
"windows(data, offsets, width, out) -> None\n\n"
"Copy ``data[offsets[i] : offsets[i] + width]`` into ``out[i*width : (i+1)*width]`` for every\n"
"offset (a C-contiguous int64 buffer): the header windows the decoder reads.  numpy's fancy\n"
"indexing copies such rows byte by byte.  Raises ValueError, having copied nothing past it,\n"
"when a window does not lie within ``data`` or ``out`` is too small.");

static PyObject *
windows(PyObject *self, PyObject *args)
{
    PyObject *data, *offsets, *out;
    Py_ssize_t width;
    Py_buffer in, off, dst;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOnO", &data, &offsets, &width, &out))
        return NULL;
    if (width < 0) {
        PyErr_SetString(PyExc_ValueError, "negative width");
        return NULL;
    }
    if (PyObject_GetBuffer(data, &in, PyBUF_SIMPLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(offsets, &off, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&in);
        return NULL;
    }
    if (PyObject_GetBuffer(out, &dst, PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&in);
        PyBuffer_Release(&off);
        return NULL;
    }
    const char *fmt = off.format ? off.format : "B";
    char kind = fmt[strlen(fmt) - 1];
    int ok = off.itemsize == 8 && (kind == 'q' || kind == 'l') && fmt[0] != '>' && fmt[0] != '!';
    Py_ssize_t n = ok ? off.len / 8 : 0;
    if (!ok)
        PyErr_SetString(PyExc_ValueError, "offsets must be native int64");
    else if (n > 0 && width > 0 && dst.len / width < n) {
        ok = 0;
        PyErr_SetString(PyExc_ValueError, "output too small");
    }
    if (ok) {
        const unsigned char *b = (const unsigned char *)in.buf;
        const char *o = (const char *)off.buf;
        unsigned char *w = (unsigned char *)dst.buf;
        Py_ssize_t i;
        Py_BEGIN_ALLOW_THREADS
        for (i = 0; i < n; i++) {
            int64_t at;
            memcpy(&at, o + 8 * i, sizeof(at));
            if (at < 0 || at > (int64_t)(in.len - width))
                break;
            memcpy(w + i * width, b + at, (size_t)width);
        }
        Py_END_ALLOW_THREADS
        if (i < n) {
            ok = 0;
            PyErr_Format(PyExc_ValueError, "window %zd outside the data", i);
        }
    }
    PyBuffer_Release(&in);
    PyBuffer_Release(&off);
    PyBuffer_Release(&dst);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(dups_doc,
"dups(fid, fp, ttl, ts, r_fp, r_ttl, r_ts, r_len, r_head, out, dup_ns)\n\n"
"DupTrack.add (ipsotrace/findings/collect.py) for rows in capture order, flows side by side:\n"
"the duplicate arrays of ipsotrace/fast/facts.py (rings of 8 right-aligned per flow group, their\n"
"lengths and head lengths; int64, the fingerprints uint64) are updated in place, and out[i]\n"
"(int8) says what row i was: 1 a head packet, 2 a duplicate, 3 a duplicate whose TTL went down\n"
"(a loop), else 0.  Rows are the flow groups ``fid`` (int64) with their ``fp``, ``ttl``, ``ts``.");

#define DUP_RING 8

static PyObject *
dups(PyObject *self, PyObject *args)
{
    PyObject *obj[10];
    Py_buffer buf[10];
    long long dup_ns;
    int writable[10] = {0, 0, 0, 0, 1, 1, 1, 1, 1, 1};
    int got = 0, ok = 1;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOL", &obj[0], &obj[1], &obj[2], &obj[3], &obj[4], &obj[5], &obj[6],
                          &obj[7], &obj[8], &obj[9], &dup_ns))
        return NULL;
    for (; got < 10; got++) {
        if (PyObject_GetBuffer(obj[got], &buf[got], writable[got] ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0) {
            ok = 0;
            break;
        }
    }
    if (ok) {
        Py_ssize_t m = buf[0].len / 8, groups = buf[7].len / 8;
        if (buf[1].len != 8 * m || buf[2].len != 8 * m || buf[3].len != 8 * m || buf[9].len != m ||
            buf[8].len != 8 * groups || buf[4].len != 8 * DUP_RING * groups ||
            buf[5].len != 8 * DUP_RING * groups || buf[6].len != 8 * DUP_RING * groups) {
            ok = 0;
            PyErr_SetString(PyExc_ValueError, "dups: array sizes do not agree");
        }
        const int64_t *fid = (const int64_t *)buf[0].buf, *ttl = (const int64_t *)buf[2].buf;
        const int64_t *ts = (const int64_t *)buf[3].buf;
        const uint64_t *fp = (const uint64_t *)buf[1].buf;
        uint64_t *r_fp = (uint64_t *)buf[4].buf;
        int64_t *r_ttl = (int64_t *)buf[5].buf, *r_ts = (int64_t *)buf[6].buf;
        int64_t *r_len = (int64_t *)buf[7].buf, *r_head = (int64_t *)buf[8].buf;
        int8_t *out = (int8_t *)buf[9].buf;
        for (Py_ssize_t i = 0; ok && i < m; i++) {
            int64_t f = fid[i];
            if (f < 0 || f >= groups || r_len[f] < 0 || r_len[f] > DUP_RING) {
                ok = 0;
                PyErr_Format(PyExc_ValueError, "dups: row %zd: flow group out of range", i);
                break;
            }
            uint64_t *rf = r_fp + DUP_RING * f;
            int64_t *rt = r_ttl + DUP_RING * f, *rs = r_ts + DUP_RING * f;
            int8_t what = 0;
            if (r_head[f] < DUP_RING) {
                r_head[f]++;
                what = 1;
            } else {
                for (int k = DUP_RING - (int)r_len[f]; k < DUP_RING; k++) {  /* oldest first */
                    int64_t age = ts[i] - rs[k];
                    if (rf[k] == fp[i] && age >= 0 && age <= dup_ns) {
                        what = (ttl[i] >= 0 && ttl[i] < rt[k]) ? 3 : 2;
                        break;
                    }
                }
            }
            out[i] = what;
            memmove(rf, rf + 1, (DUP_RING - 1) * sizeof(*rf));
            memmove(rt, rt + 1, (DUP_RING - 1) * sizeof(*rt));
            memmove(rs, rs + 1, (DUP_RING - 1) * sizeof(*rs));
            rf[DUP_RING - 1] = fp[i];
            rt[DUP_RING - 1] = ttl[i];
            rs[DUP_RING - 1] = ts[i];
            if (r_len[f] < DUP_RING)
                r_len[f]++;
        }
    }
    for (int k = 0; k < got; k++)
        PyBuffer_Release(&buf[k]);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(fingerprints_doc,
"fingerprints(i_ver, tcp_flags, i_ipid, i_size, i_csum, tcp_seq, tcp_ack, seed, out)\n\n"
"ipsotrace.fast.facts.fingerprints, compiled: the fingerprint of each fast-path row (int64 columns\n"
"in, int64 bit patterns out), splitmix64 over the seven values as findings.collect.fingerprint.");

static inline uint64_t
mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static PyObject *
fingerprints(PyObject *self, PyObject *args)
{
    PyObject *obj[8];
    Py_buffer buf[8];
    unsigned long long seed;
    int got = 0, ok = 1;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOOOOKO", &obj[0], &obj[1], &obj[2], &obj[3], &obj[4], &obj[5], &obj[6], &seed,
                          &obj[7]))
        return NULL;
    for (; got < 8; got++) {
        if (PyObject_GetBuffer(obj[got], &buf[got], got == 7 ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0) {
            ok = 0;
            break;
        }
    }
    if (ok) {
        Py_ssize_t n = buf[7].len / 8;
        for (int k = 0; k < 7; k++) {
            if (buf[k].len != 8 * n) {
                ok = 0;
                PyErr_SetString(PyExc_ValueError, "fingerprints: column lengths do not agree");
                break;
            }
        }
        if (ok) {
            const int64_t *ver = (const int64_t *)buf[0].buf, *flags = (const int64_t *)buf[1].buf;
            const int64_t *ipid = (const int64_t *)buf[2].buf, *size = (const int64_t *)buf[3].buf;
            const int64_t *csum = (const int64_t *)buf[4].buf, *seq = (const int64_t *)buf[5].buf;
            const int64_t *ack = (const int64_t *)buf[6].buf;
            uint64_t *out = (uint64_t *)buf[7].buf;
            for (Py_ssize_t i = 0; i < n; i++) {
                int v4 = ver[i] == 4, tcp = flags[i] >= 0;
                uint64_t h = mix64((uint64_t)seed ^ (uint64_t)(v4 ? ipid[i] : -1));
                h = mix64(h ^ (uint64_t)(v4 ? size[i] : size[i] - 40));
                h = mix64(h ^ (uint64_t)(v4 ? 0 : -1));
                h = mix64(h ^ (uint64_t)csum[i]);
                h = mix64(h ^ (uint64_t)(tcp ? seq[i] : -1));
                h = mix64(h ^ (uint64_t)(tcp ? ack[i] : -1));
                h = mix64(h ^ (uint64_t)-1);
                out[i] = h ? h : 1;
            }
        }
    }
    for (int k = 0; k < got; k++)
        PyBuffer_Release(&buf[k]);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(lookup_doc,
"lookup(slot_key, slot_gid, keys, out)\n\n"
"GroupTable.lookup (ipsotrace/fast/aggregate.py), compiled: the group number of each key (-1:\n"
"unknown) by the table's multiplicative hash and linear probing; int64 buffers, a power-of-two\n"
"table that always has a free slot.");

static PyObject *
lookup(PyObject *self, PyObject *args)
{
    PyObject *obj[4];
    Py_buffer buf[4];
    int got = 0, ok = 1;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOO", &obj[0], &obj[1], &obj[2], &obj[3]))
        return NULL;
    for (; got < 4; got++) {
        if (PyObject_GetBuffer(obj[got], &buf[got], got == 3 ? PyBUF_WRITABLE : PyBUF_SIMPLE) < 0) {
            ok = 0;
            break;
        }
    }
    if (ok) {
        Py_ssize_t cap = buf[0].len / 8, n = buf[2].len / 8;
        int bits = 0;
        while (((Py_ssize_t)1 << bits) < cap)
            bits++;
        if (cap < 2 || ((Py_ssize_t)1 << bits) != cap || buf[1].len != 8 * cap || buf[3].len != 8 * n) {
            ok = 0;
            PyErr_SetString(PyExc_ValueError, "lookup: a power-of-two table and one output per key");
        } else {
            const int64_t *slot_key = (const int64_t *)buf[0].buf, *slot_gid = (const int64_t *)buf[1].buf;
            const int64_t *keys = (const int64_t *)buf[2].buf;
            int64_t *out = (int64_t *)buf[3].buf;
            uint64_t mask = (uint64_t)cap - 1;
            for (Py_ssize_t i = 0; i < n; i++) {
                uint64_t slot = ((uint64_t)keys[i] * 0x9E3779B97F4A7C15ull) >> (64 - bits);
                int64_t g = -1;
                for (Py_ssize_t probe = 0; probe < cap; probe++) {
                    int64_t s = slot_gid[slot];
                    if (s < 0)
                        break;
                    if (slot_key[slot] == keys[i]) {
                        g = s;
                        break;
                    }
                    slot = (slot + 1) & mask;
                }
                out[i] = g;
            }
        }
    }
    for (int k = 0; k < got; k++)
        PyBuffer_Release(&buf[k]);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"pcap", walk_pcap, METH_VARARGS, pcap_doc},
    {"pcapng", walk_pcapng, METH_VARARGS, pcapng_doc},
    {"windows", windows, METH_VARARGS, windows_doc},
    {"dups", dups, METH_VARARGS, dups_doc},
    {"fingerprints", fingerprints, METH_VARARGS, fingerprints_doc},
    {"lookup", lookup, METH_VARARGS, lookup_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "_walk",
    "Record-chain walks of the fast batch reader (see ipsotrace/fast/batch.py).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__walk(void)
{
    return PyModule_Create(&module);
}
