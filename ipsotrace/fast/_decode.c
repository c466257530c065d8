/*
 * ipsotrace.fast._decode: the header walk of ipsotrace/fast/decode.py, compiled, one frame at a time.
 *
 * decode.py walks a batch layer by layer as groups of frames with the same shape, in numpy; a
 * capture with many shapes splits into many small groups, and every layer costs a few numpy calls
 * per group.  This file does the same walk for each frame in one pass and writes the same columns:
 * the same steps (Ethernet, VLAN, IPv4, IPv6, UDP, TCP, VXLAN, Geneve, GRE), the same checks (a
 * frame stays on the fast path only when the scalar dissectors would give exactly this stack with
 * no anomaly), the same lookup tables (built by ipsotrace/fast/tables.py from the registry, passed
 * in), the same header geometry (offsets and sizes from the dissectors' declarations, passed in by
 * name: GEOMETRY below lists the names this file reads).  The one thing it does not decide is a
 * UDP payload a heuristic might claim: such frames are listed for decode.py, which asks the
 * heuristics as the numpy walk does.  tests/fast/test_decode.py runs its scalar comparisons with
 * both walks, and compares the two walks' columns.
 *
 * Plain CPython C API, buffers through the buffer protocol; every byte read is checked against
 * the frame's captured length and the buffer's length.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* the output columns, in ipsotrace.fast.decode.COLUMNS order (decode.py checks it) */
enum {
    C_ROW, C_SHAPE, C_ENCAP, C_TUNNEL_ID,
    C_O, /* 16 per-depth columns of the outer header, then 16 of the inner one */
    C_I = C_O + 16,
    C_TCP_FLAGS = C_I + 16, C_TCP_SEQ, C_TCP_ACK, C_TCP_LEN, C_MSS,
    NCOL
};
/* the per-depth columns, in decode.IP_FIELDS + decode.L4_FIELDS order */
enum { F_VER, F_SRC_HI, F_SRC_LO, F_DST_HI, F_DST_LO, F_PROTO, F_TTL, F_DSCP, F_ECN, F_SIZE, F_DF, F_FLOW_LABEL,
       F_IPID, F_SPORT, F_DPORT, F_CSUM, NF };
static const char *const column_names[NCOL] = {
    "row", "shape", "encap", "tunnel_id",
    "o_ver", "o_src_hi", "o_src_lo", "o_dst_hi", "o_dst_lo", "o_proto", "o_ttl", "o_dscp", "o_ecn", "o_size", "o_df",
    "o_flow_label", "o_ipid", "o_sport", "o_dport", "o_csum",
    "i_ver", "i_src_hi", "i_src_lo", "i_dst_hi", "i_dst_lo", "i_proto", "i_ttl", "i_dscp", "i_ecn", "i_size", "i_df",
    "i_flow_label", "i_ipid", "i_sport", "i_dport", "i_csum",
    "tcp_flags", "tcp_seq", "tcp_ack", "tcp_len", "mss",
};

/* the constants this file reads, by name (decode.py passes their values in this order) */
#define GEO(X) \
    X(TERMINAL) X(FALLBACK) X(CODE_ETH) X(CODE_VLAN) X(CODE_IPV4) X(CODE_IPV6) X(CODE_UDP) X(CODE_TCP) \
    X(CODE_VXLAN) X(CODE_GENEVE) X(CODE_GRE) \
    X(WIDE) \
    X(ETH_LEN) X(ETH_TYPE) X(MAX_8023) X(VLAN_LEN) X(VLAN_TYPE) \
    X(V4_LEN) X(V4_VIHL) X(V4_TOS) X(V4_TOTAL) X(V4_ID) X(V4_FF) X(V4_TTL) X(V4_PROTO) X(V4_SRC) X(V4_DST) \
    X(V6_LEN) X(V6_VTF) X(V6_PLEN) X(V6_NH) X(V6_HLIM) X(V6_SRC) X(V6_DST) X(V6_NO_NEXT) \
    X(UDP_LEN) X(UDP_SPORT) X(UDP_DPORT) X(UDP_LENGTH) X(UDP_CSUM) \
    X(TCP_LEN) X(TCP_SPORT) X(TCP_DPORT) X(TCP_SEQ) X(TCP_ACK) X(TCP_CSUM) X(TCP_OFFRES) X(TCP_FLAGS) \
    X(NOP_NOP_TS) \
    X(VXLAN_LEN) X(VXLAN_FLAGS) X(VXLAN_VNI) X(VXLAN_PLAIN) \
    X(GENEVE_LEN) X(GENEVE_VER) X(GENEVE_FLAGS) X(GENEVE_PTYPE) X(GENEVE_VNI) \
    X(GRE_LEN) X(GRE_FLAGS) X(GRE_PTYPE) X(GRE_F_KEY) X(GRE_TEB) \
    X(ENC_VXLAN) X(ENC_GENEVE) X(ENC_GRE) X(ENC_NVGRE) X(ENC_IPIP) X(ENC_6IN4) X(ENC_4IN6) X(ENC_6IN6)
#define GEO_ENUM(name) G_##name,
#define GEO_NAME(name) #name,
enum { GEO(GEO_ENUM) NGEO };
static const char *const geo_names[NGEO] = {GEO(GEO_NAME)};

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(addr) __builtin_prefetch((addr), 0, 3)
#else
#define PREFETCH(addr) ((void)0)
#endif
#define AHEAD 8

/*
 * Every header walked is 4 bytes or more (a VLAN tag, a plain GRE header) and lies within the wide
 * window, so a frame has at most WIDE / 4 layers: decode() checks that MAX_LAYERS covers that (the
 * numpy walk has no other limit, and a frame the limit cut short would go to the scalar path).
 */
#define MAX_LAYERS 64
#define MIN_HEADER 4

/* what a frame's walk ends in */
enum { S_KEPT = 0, S_FALLBACK = 1, S_PLAIN = 2 };

typedef struct {
    const int8_t *ethertype, *gre, *ipproto, *udp_port;
    const uint8_t *udp_bound, *v4_ipip, *v6_ipip, *v6_ext, *gre_sub;
    int64_t g[NGEO];
    int heuristics, max_depth, gre_key_as_id;
} Ctx;

typedef struct {
    int n;
    int32_t layer[MAX_LAYERS];
} Shape;

/*
 * Kept rows are written to the columns BLOCK at a time: one row's 41 values go to 41 arrays (41
 * pages), so writing each row straight out costs a TLB miss per value; a block of rows is laid
 * out column by column instead.
 */
#define BLOCK 64

typedef struct {
    Shape *shape; /* grown as shapes are met: the numpy walk has no limit on their number */
    int64_t *count;
    int n, cap, last, nomem;
    int64_t block[BLOCK][NCOL]; /* rows on their way to the columns (see flush_block) */
} Shapes;

static void
flush_block(int64_t *const *out, int64_t at, int64_t (*block)[NCOL], int nb)
{
    for (int j = 0; j < NCOL; j++) {
        int64_t *dst = out[j] + at;
        for (int r = 0; r < nb; r++)
            dst[r] = block[r][j];
    }
}

static inline uint32_t be16(const unsigned char *p) { return ((uint32_t)p[0] << 8) | p[1]; }
static inline uint32_t be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline int64_t be64(const unsigned char *p) { return (int64_t)(((uint64_t)be32(p) << 32) | be32(p + 4)); }

static int
intern(Shapes *s, const int32_t *layer, int n)
{
    if (s->last >= 0 && s->shape[s->last].n == n && !memcmp(s->shape[s->last].layer, layer, n * sizeof(int32_t)))
        return s->last;
    for (int k = 0; k < s->n; k++) {
        if (s->shape[k].n == n && !memcmp(s->shape[k].layer, layer, n * sizeof(int32_t)))
            return s->last = k;
    }
    if (s->n == s->cap) {
        /* without the GIL: the raw allocator */
        int cap = s->cap ? 2 * s->cap : 64;
        Shape *shape = PyMem_RawRealloc(s->shape, (size_t)cap * sizeof(Shape));
        if (shape)
            s->shape = shape;
        int64_t *count = shape ? PyMem_RawRealloc(s->count, (size_t)cap * sizeof(int64_t)) : NULL;
        if (!count) {
            s->nomem = 1; /* decode() raises MemoryError */
            return -1;
        }
        s->count = count;
        s->cap = cap;
    }
    s->shape[s->n].n = n;
    s->count[s->n] = 0;
    memcpy(s->shape[s->n].layer, layer, n * sizeof(int32_t));
    return s->last = s->n++;
}

/* The scalar option walk of tcp._options: 1 where it reports tcp.bad-option; *mss the last MSS. */
static int
tcp_options(const unsigned char *f, int64_t p, int64_t e, int64_t *mss)
{
    while (p < e) {
        int kind = f[p];
        if (kind == 0)
            return 0;
        if (kind == 1) {
            p += 1;
            continue;
        }
        if (p + 2 > e)
            return 1;
        int64_t olen = f[p + 1];
        if (olen < 2 || p + olen > e)
            return 1;
        if (kind == 2 && olen == 4)
            *mss = ((int64_t)f[p + 2] << 8) | f[p + 3];
        p += olen;
    }
    return 0;
}

/*
 * Walk one frame.  Returns S_KEPT / S_PLAIN with the columns in col[], *shape its shape, and
 * (*cs, *ce) a UDP payload a heuristic might claim (*cs < 0: none); or S_FALLBACK.
 */
static int
walk(const Ctx *c, const unsigned char *f, int64_t caplen, int cut, int code, int64_t *col, Shapes *shapes,
     int *shape, int64_t *cs, int64_t *ce)
{
    const int64_t *g = c->g;
    int64_t d[2][NF];
    int64_t o = 0, end = caplen;
    int depth = 0, nl = 0, udp_seen = 0, ip_at[2] = {0, 0};
    int32_t layer[MAX_LAYERS];
    int64_t encap = -1, tunnel_id = -1, tcp_flags = -1, tcp_seq = 0, tcp_ack = 0, tcp_len = 0, mss = 0;
    int lim = c->max_depth < 1 ? c->max_depth : 1;
    *cs = -1;
    for (int k = 0; k < 2; k++) {
        for (int j = 0; j < NF; j++)
            d[k][j] = 0;
        d[k][F_TTL] = -1;
        d[k][F_CSUM] = -1;
    }
    for (;;) {
        if (code == g[G_FALLBACK])
            return S_FALLBACK;
        if (code == g[G_TERMINAL] || end <= o) {
            /* the scalar loop stops before a header when no bytes are left (snaplen cut: it says so) */
            if (code != g[G_TERMINAL] && cut && end >= caplen)
                return S_FALLBACK;
            break;
        }
        int64_t *dc = d[depth];
        int64_t left = end - o, length, nxt;
        int enc = 0;
        const unsigned char *h = f + o;
        if (nl == MAX_LAYERS)
            return S_FALLBACK;
        layer[nl++] = (int32_t)(code | (o << 8) | ((int64_t)depth << 16));
        if (code == g[G_CODE_ETH] || code == g[G_CODE_VLAN]) {
            int eth = code == g[G_CODE_ETH];
            length = eth ? g[G_ETH_LEN] : g[G_VLAN_LEN];
            if (o + length > g[G_WIDE] || left < length)
                return S_FALLBACK;
            uint32_t etype = be16(h + (eth ? g[G_ETH_TYPE] : g[G_VLAN_TYPE]));
            if (etype <= (uint32_t)g[G_MAX_8023])
                return S_FALLBACK; /* 802.3 length + LLC: scalar only */
            nxt = c->ethertype[etype];
        } else if (code == g[G_CODE_IPV4]) {
            length = g[G_V4_LEN];
            if (o + length > g[G_WIDE] || left < length)
                return S_FALLBACK;
            int64_t total = be16(h + g[G_V4_TOTAL]);
            uint32_t ff = be16(h + g[G_V4_FF]);
            int proto = h[g[G_V4_PROTO]], tos = h[g[G_V4_TOS]];
            /* no options, not a GSO super-frame, no evil bit, not a fragment, lengths that agree */
            if (h[g[G_V4_VIHL]] != 0x45 || total < length || (ff & 0xBFFF) || (o + total > end && !cut))
                return S_FALLBACK;
            if (c->v4_ipip[proto]) {
                if (proto != 4 && proto != 41)
                    return S_FALLBACK; /* Ethernet in IP: named "eth-in-ipv4" by the correlator */
                enc = 1;
                encap = proto == 4 ? g[G_ENC_IPIP] : g[G_ENC_6IN4];
            }
            dc[F_VER] = 4;
            dc[F_SRC_LO] = be32(h + g[G_V4_SRC]);
            dc[F_DST_LO] = be32(h + g[G_V4_DST]);
            dc[F_PROTO] = proto;
            dc[F_TTL] = h[g[G_V4_TTL]];
            dc[F_DSCP] = tos >> 2;
            dc[F_ECN] = tos & 3;
            dc[F_SIZE] = total;
            dc[F_DF] = (ff >> 14) & 1;
            dc[F_IPID] = be16(h + g[G_V4_ID]);
            ip_at[depth] = 1;
            nxt = c->ipproto[proto];
            if (o + total < end)
                end = o + total;
        } else if (code == g[G_CODE_IPV6]) {
            length = g[G_V6_LEN];
            if (o + length > g[G_WIDE] || left < length)
                return S_FALLBACK;
            uint32_t vtf = be32(h + g[G_V6_VTF]);
            int64_t plen = be16(h + g[G_V6_PLEN]);
            int nh = h[g[G_V6_NH]];
            /* jumbogram / GSO and extension headers: scalar only */
            if ((vtf >> 28) != 6 || plen == 0 || c->v6_ext[nh] || (o + length + plen > end && !cut))
                return S_FALLBACK;
            if (c->v6_ipip[nh]) {
                if (nh != 4 && nh != 41)
                    return S_FALLBACK;
                enc = 1;
                encap = nh == 4 ? g[G_ENC_4IN6] : g[G_ENC_6IN6];
            }
            uint32_t tclass = (vtf >> 20) & 0xFF;
            dc[F_VER] = 6;
            dc[F_SRC_HI] = be64(h + g[G_V6_SRC]);
            dc[F_SRC_LO] = be64(h + g[G_V6_SRC] + 8);
            dc[F_DST_HI] = be64(h + g[G_V6_DST]);
            dc[F_DST_LO] = be64(h + g[G_V6_DST] + 8);
            dc[F_PROTO] = nh;
            dc[F_TTL] = h[g[G_V6_HLIM]];
            dc[F_DSCP] = tclass >> 2;
            dc[F_ECN] = tclass & 3;
            dc[F_SIZE] = plen + length;
            dc[F_DF] = 1; /* IPv6 is never fragmented by routers */
            dc[F_FLOW_LABEL] = vtf & 0xFFFFF;
            ip_at[depth] = 1;
            nxt = nh == g[G_V6_NO_NEXT] ? g[G_TERMINAL] : c->ipproto[nh];
            if (o + length + plen < end)
                end = o + length + plen;
        } else if (code == g[G_CODE_UDP]) {
            length = g[G_UDP_LEN];
            if (o + length > g[G_WIDE] || left < length)
                return S_FALLBACK;
            uint32_t sport = be16(h + g[G_UDP_SPORT]), dport = be16(h + g[G_UDP_DPORT]);
            int64_t ulen = be16(h + g[G_UDP_LENGTH]);
            if (ulen < length || (o + ulen > end && !cut))
                return S_FALLBACK;
            if (o + ulen < end)
                end = o + ulen;
            uint32_t lo = sport < dport ? sport : dport, hi = sport < dport ? dport : sport;
            /* the lower port first, like the registry */
            nxt = c->udp_bound[lo] ? c->udp_port[lo] : c->udp_port[hi];
            if (c->heuristics && !c->udp_bound[lo] && !c->udp_bound[hi] && end > o + length) {
                *cs = o + length;
                *ce = end;
            }
            dc[F_SPORT] = sport;
            dc[F_DPORT] = dport;
            dc[F_CSUM] = be16(h + g[G_UDP_CSUM]);
            udp_seen = 1;
        } else if (code == g[G_CODE_TCP]) {
            if (o + g[G_TCP_LEN] > g[G_WIDE] || left < g[G_TCP_LEN])
                return S_FALLBACK;
            int offres = h[g[G_TCP_OFFRES]];
            length = (int64_t)(offres >> 4) * 4;
            if (length < g[G_TCP_LEN] || left < length)
                return S_FALLBACK;
            if (length > g[G_TCP_LEN]) {
                /* options past the wide window: scalar only (decode.py reads them from its windows) */
                if (o + length > g[G_WIDE])
                    return S_FALLBACK;
                /* most segments carry exactly NOP, NOP, timestamps: nothing to walk, no MSS */
                if (!(length == g[G_TCP_LEN] + 12 && be32(h + g[G_TCP_LEN]) == (uint32_t)g[G_NOP_NOP_TS])) {
                    if (tcp_options(f, o + g[G_TCP_LEN], o + length, &mss))
                        return S_FALLBACK;
                }
            }
            int64_t flags = h[g[G_TCP_FLAGS]] | ((int64_t)(offres & 1) << 8);
            int64_t payload = end - o - length;
            dc[F_SPORT] = be16(h + g[G_TCP_SPORT]);
            dc[F_DPORT] = be16(h + g[G_TCP_DPORT]);
            dc[F_CSUM] = be16(h + g[G_TCP_CSUM]);
            tcp_flags = flags;
            tcp_seq = be32(h + g[G_TCP_SEQ]);
            tcp_ack = be32(h + g[G_TCP_ACK]);
            tcp_len = (payload > 0 ? payload : 0) + (flags & 1) + ((flags >> 1) & 1);
            nxt = g[G_TERMINAL];
        } else if (code == g[G_CODE_VXLAN]) {
            length = g[G_VXLAN_LEN];
            if (o + length > g[G_WIDE] || left < length)
                return S_FALLBACK;
            uint32_t vni_res = be32(h + g[G_VXLAN_VNI]);
            if (be32(h + g[G_VXLAN_FLAGS]) != (uint32_t)g[G_VXLAN_PLAIN] || (vni_res & 0xFF))
                return S_FALLBACK;
            encap = g[G_ENC_VXLAN];
            tunnel_id = vni_res >> 8;
            nxt = g[G_CODE_ETH];
            enc = 1;
        } else if (code == g[G_CODE_GENEVE]) {
            length = g[G_GENEVE_LEN];
            if (o + length > g[G_WIDE] || left < length)
                return S_FALLBACK;
            uint32_t vni_res = be32(h + g[G_GENEVE_VNI]);
            /* version 0 and no options */
            if (h[g[G_GENEVE_VER]] != 0 || (h[g[G_GENEVE_FLAGS]] & 0x3F) || (vni_res & 0xFF))
                return S_FALLBACK;
            encap = g[G_ENC_GENEVE];
            tunnel_id = vni_res >> 8;
            nxt = c->ethertype[be16(h + g[G_GENEVE_PTYPE])];
            enc = 1;
        } else if (code == g[G_CODE_GRE]) {
            if (o + g[G_GRE_LEN] + 4 > g[G_WIDE] || left < g[G_GRE_LEN])
                return S_FALLBACK;
            uint32_t flags = be16(h + g[G_GRE_FLAGS]), ptype = be16(h + g[G_GRE_PTYPE]);
            int keyed = flags == (uint32_t)g[G_GRE_F_KEY];
            length = keyed ? g[G_GRE_LEN] + 4 : g[G_GRE_LEN];
            /* only plain GRE with or without key; ERSPAN, WCCP and the like start with their own header */
            if ((flags != 0 && !keyed) || left < length || c->gre_sub[ptype])
                return S_FALLBACK;
            int64_t key = keyed ? (int64_t)be32(h + g[G_GRE_LEN]) : -1;
            int nvgre = keyed && ptype == (uint32_t)g[G_GRE_TEB] && !c->gre_key_as_id;
            /* GRE with key over Ethernet reads as NVGRE: the VSID names the tunnel, the FlowID is entropy */
            encap = nvgre ? g[G_ENC_NVGRE] : g[G_ENC_GRE];
            tunnel_id = nvgre ? key >> 8 : key;
            if (!udp_seen) /* over UDP (GRE-in-UDP) the UDP ports win */
                dc[F_SPORT] = nvgre ? (key & 0xFF) : 0;
            nxt = c->gre[ptype];
            enc = 1;
        } else {
            return S_FALLBACK;
        }
        depth += enc;
        if (depth > lim) /* nested tunnels, or a depth limit of 0: scalar only */
            return S_FALLBACK;
        if (nxt == g[G_TERMINAL])
            break;
        o += length;
        code = (int)nxt;
    }
    if (!ip_at[depth])
        return S_FALLBACK; /* no IP header where the flow is read: scalar only */
    int sid = intern(shapes, layer, nl);
    if (sid < 0)
        return S_FALLBACK;
    *shape = sid;
    col[C_SHAPE] = sid;
    col[C_ENCAP] = encap;
    col[C_TUNNEL_ID] = tunnel_id;
    col[C_TCP_FLAGS] = tcp_flags;
    col[C_TCP_SEQ] = tcp_seq;
    col[C_TCP_ACK] = tcp_ack;
    col[C_TCP_LEN] = tcp_len;
    col[C_MSS] = mss;
    if (encap >= 0) {
        for (int j = 0; j < NF; j++) {
            col[C_O + j] = d[0][j];
            col[C_I + j] = d[1][j];
        }
        return S_KEPT;
    }
    for (int j = 0; j < NF; j++) {
        col[C_O + j] = d[1][j]; /* untouched: the absent values */
        col[C_I + j] = d[0][j];
    }
    return S_PLAIN;
}

static int
get_table(PyObject *o, Py_buffer *b, Py_ssize_t size, const char *what)
{
    if (PyObject_GetBuffer(o, b, PyBUF_SIMPLE) < 0)
        return -1;
    if (b->len != size) {
        PyErr_Format(PyExc_ValueError, "decode: table %s has %zd bytes, not %zd", what, b->len, size);
        PyBuffer_Release(b);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(decode_doc,
"decode(data, offset, caplen, wirelen, first, tables, geometry, options, out, status, sid, cand)\n\n"
"Walk every frame (see the file's comment).  offset/caplen/wirelen: int64 per frame; first: int8\n"
"walk code of the first layer (-1: by the IP version nibble); tables: (ethertype, gre, ipproto,\n"
"udp_port, udp_bound, v4_ipip, v6_ipip, v6_ext, gre_sub) as int8/bool arrays; geometry: int64 values\n"
"of GEOMETRY; options: (heuristics, max_depth, gre_key_as_id, tunnelled_only); out: NCOL int64 arrays of n:\n"
"columns of the kept frames (all fast frames unless tunnelled_only) from position 0; with\n"
"tunnelled_only, the plain frames' numbers fill the row column from its end backwards; status: int8 per frame (0 kept,\n"
"1 scalar, 2 plain); sid: int64 shape per frame (-1 scalar); cand: int64 (3, n) frames whose UDP\n"
"payload a heuristic might claim (frame, payload start, payload end).  Returns (kept, plain,\n"
"candidates, shapes): shapes a list of (layers, frames) with layers packed code | offset << 8 |\n"
"depth << 16.");

static PyObject *
decode(PyObject *self, PyObject *args)
{
    PyObject *o_data, *o_off, *o_cap, *o_wire, *o_first, *o_tables, *o_geo, *o_out, *o_status, *o_sid, *o_cand;
    int heuristics, max_depth, key_as_id, tunnelled_only;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOOOO(iiii)OOOO", &o_data, &o_off, &o_cap, &o_wire, &o_first, &o_tables, &o_geo,
                          &heuristics, &max_depth, &key_as_id, &tunnelled_only, &o_out, &o_status, &o_sid, &o_cand))
        return NULL;
    if (!PyTuple_Check(o_tables) || PyTuple_GET_SIZE(o_tables) != 9) {
        PyErr_SetString(PyExc_TypeError, "decode: tables is a tuple of 9 arrays");
        return NULL;
    }
    enum { NBUF = 18 };
    Py_buffer b[NBUF];
    int got = 0, ok = 1;
    PyObject *plain_objs[] = {o_data, o_off, o_cap, o_wire, o_first, o_geo};
    for (int k = 0; k < 6 && ok; k++) {
        ok = PyObject_GetBuffer(plain_objs[k], &b[got], PyBUF_SIMPLE) == 0;
        got += ok;
    }
    static const Py_ssize_t sizes[9] = {65536, 65536, 256, 65536, 65536, 256, 256, 256, 65536};
    static const char *const names[9] = {"ethertype", "gre", "ipproto", "udp_port", "udp_bound",
                                         "v4_ipip", "v6_ipip", "v6_ext", "gre_sub"};
    for (int k = 0; k < 9 && ok; k++) {
        ok = get_table(PyTuple_GET_ITEM(o_tables, k), &b[got], sizes[k], names[k]) == 0;
        got += ok;
    }
    PyObject *out_objs[] = {o_status, o_sid, o_cand};
    for (int k = 0; k < 3 && ok; k++) {
        ok = PyObject_GetBuffer(out_objs[k], &b[got], PyBUF_WRITABLE) == 0;
        got += ok; /* counts the buffers held */
    }
    /* the columns: one array each (a column nobody keeps is freed on its own) */
    Py_buffer ob[NCOL];
    int got_cols = 0;
    if (ok && (!PyTuple_Check(o_out) || PyTuple_GET_SIZE(o_out) != NCOL)) {
        PyErr_SetString(PyExc_TypeError, "decode: out is a tuple of one array per column");
        ok = 0;
    }
    while (ok && got_cols < NCOL) {
        ok = PyObject_GetBuffer(PyTuple_GET_ITEM(o_out, got_cols), &ob[got_cols], PyBUF_WRITABLE) == 0;
        got_cols += ok;
    }
    if (!ok) {
        for (int k = 0; k < got; k++)
            PyBuffer_Release(&b[k]);
        for (int k = 0; k < got_cols; k++)
            PyBuffer_Release(&ob[k]);
        return NULL;
    }
    Py_ssize_t n = b[1].len / 8, have = b[0].len;
    Ctx c;
    if (b[2].len != 8 * n || b[3].len != 8 * n || b[4].len != n || b[5].len != 8 * NGEO
        || b[15].len != n || b[16].len != 8 * n || b[17].len != 3 * 8 * n) {
        PyErr_SetString(PyExc_ValueError, "decode: array sizes do not agree");
        ok = 0;
    }
    for (int j = 0; ok && j < NCOL; j++) {
        if (ob[j].len != 8 * n) {
            PyErr_SetString(PyExc_ValueError, "decode: column sizes do not agree");
            ok = 0;
        }
    }
    if (ok)
        memcpy(c.g, b[5].buf, sizeof(c.g));
    int64_t kept = 0, plain = 0, ncand = 0;
    Shapes *shapes = NULL;
    if (ok && (c.g[G_WIDE] / MIN_HEADER >= MAX_LAYERS || c.g[G_WIDE] > 256)) {
        /* (a layer's offset is packed in 8 bits, see the docstring) */
        PyErr_SetString(PyExc_ValueError, "decode: the wide window holds more layers than MAX_LAYERS, or is over 256");
        ok = 0;
    }
    if (ok) {
        shapes = PyMem_Malloc(sizeof(Shapes));
        if (!shapes) {
            PyErr_NoMemory();
            ok = 0;
        } else {
            shapes->shape = NULL;
            shapes->count = NULL;
            shapes->n = shapes->cap = shapes->nomem = 0;
            shapes->last = -1;
        }
    }
    if (ok) {
        const unsigned char *data = b[0].buf;
        const int64_t *off = b[1].buf, *cap = b[2].buf, *wire = b[3].buf;
        const int8_t *first = b[4].buf;
        c.ethertype = b[6].buf;
        c.gre = b[7].buf;
        c.ipproto = b[8].buf;
        c.udp_port = b[9].buf;
        c.udp_bound = b[10].buf;
        c.v4_ipip = b[11].buf;
        c.v6_ipip = b[12].buf;
        c.v6_ext = b[13].buf;
        c.gre_sub = b[14].buf;
        c.heuristics = heuristics;
        c.max_depth = max_depth;
        c.gre_key_as_id = key_as_id;
        int64_t *out[NCOL], *sid = b[16].buf, *cand = b[17].buf;
        int8_t *status = b[15].buf;
        int64_t(*block)[NCOL] = shapes->block;
        for (int j = 0; j < NCOL; j++)
            out[j] = ob[j].buf;
        int64_t col[NCOL];
        int nb = 0;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t o = off[i], cl = cap[i];
            if (i + AHEAD < n) {
                /* the headers of a frame a few ahead: their cache lines load while this one is walked */
                int64_t q = off[i + AHEAD];
                if (q >= 0 && q <= have - 192) {
                    PREFETCH(data + q);
                    PREFETCH(data + q + 64);
                    PREFETCH(data + q + 127);
                }
            }
            int st = S_FALLBACK, shape = -1;
            int64_t cs = -1, ce = 0;
            if (o >= 0 && cl >= 0 && o <= have && cl <= have - o) {
                int code = first[i];
                if (code == -1) { /* raw IP: the version nibble decides */
                    int ver = cl > 0 ? data[o] >> 4 : 0; /* (nothing captured: the walk stops at once) */
                    code = (int)(ver == 4 ? c.g[G_CODE_IPV4] : ver == 6 ? c.g[G_CODE_IPV6] : c.g[G_TERMINAL]);
                }
                st = walk(&c, data + o, cl, cl < wire[i], code, col, shapes, &shape, &cs, &ce);
            }
            if (st == S_PLAIN && !tunnelled_only)
                st = S_KEPT;
            status[i] = (int8_t)st;
            sid[i] = st == S_FALLBACK ? -1 : shape;
            if (st == S_FALLBACK)
                continue;
            shapes->count[shape]++;
            if (st == S_KEPT) {
                col[C_ROW] = i;
                memcpy(block[nb++], col, sizeof(col));
                if (nb == BLOCK) {
                    flush_block(out, kept, block, nb);
                    kept += nb;
                    nb = 0;
                }
            } else { /* a plain frame: only its position, from the end of the row column backwards */
                out[C_ROW][n - 1 - plain++] = i;
            }
            if (cs >= 0) {
                cand[ncand] = i;
                cand[n + ncand] = cs;
                cand[2 * n + ncand] = ce;
                ncand++;
            }
        }
        flush_block(out, kept, block, nb);
        kept += nb;
        Py_END_ALLOW_THREADS
    }
    PyObject *result = NULL;
    if (ok && shapes->nomem) {
        PyErr_NoMemory();
        ok = 0;
    }
    if (ok) {
        PyObject *list = PyList_New(shapes->n);
        for (int k = 0; list && k < shapes->n; k++) {
            PyObject *layers = PyTuple_New(shapes->shape[k].n);
            for (int j = 0; layers && j < shapes->shape[k].n; j++)
                PyTuple_SET_ITEM(layers, j, PyLong_FromLong(shapes->shape[k].layer[j]));
            PyObject *item = layers ? Py_BuildValue("(NL)", layers, (long long)shapes->count[k]) : NULL;
            if (!item) {
                Py_CLEAR(list);
                break;
            }
            PyList_SET_ITEM(list, k, item);
        }
        if (list)
            result = Py_BuildValue("(LLLN)", (long long)kept, (long long)plain, (long long)ncand, list);
    }
    if (shapes) {
        PyMem_RawFree(shapes->shape);
        PyMem_RawFree(shapes->count);
    }
    PyMem_Free(shapes);
    for (int k = 0; k < got; k++)
        PyBuffer_Release(&b[k]);
    for (int k = 0; k < got_cols; k++)
        PyBuffer_Release(&ob[k]);
    return result;
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS, decode_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_decode", "The fast path's header walk, compiled (see ipsotrace/fast/decode.py).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__decode(void)
{
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    PyObject *cols = PyTuple_New(NCOL), *geo = PyTuple_New(NGEO);
    for (int k = 0; cols && k < NCOL; k++)
        PyTuple_SET_ITEM(cols, k, PyUnicode_FromString(column_names[k]));
    for (int k = 0; geo && k < NGEO; k++)
        PyTuple_SET_ITEM(geo, k, PyUnicode_FromString(geo_names[k]));
    if (!cols || !geo || PyModule_AddObject(m, "COLUMNS", cols) < 0) {
        Py_XDECREF(cols);
        Py_XDECREF(geo);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddObject(m, "GEOMETRY", geo) < 0) {
        Py_DECREF(geo);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
