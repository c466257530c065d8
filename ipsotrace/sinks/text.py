"""One-line human summaries of layers and packets (used by `dissect` and reports)."""

from __future__ import annotations

from ipsotrace.records import Layer, Packet

# Which fields summarise a layer best, in order; everything else is in --json.
_KEYS: dict[str, tuple[str, ...]] = {
    "eth": ("src", "dst"),
    "vlan": ("vid", "pcp"),
    "arp": ("op", "sender_ip", "target_ip"),
    "icmp": ("kind", "code", "mtu"),
    "icmpv6": ("kind", "code", "mtu"),
    "tcp": ("flag_names", "seq", "payload_length", "mss"),
    "vxlan": ("vni",),
}


def layer_summary(ly: Layer) -> str:
    f = ly.fields
    head = f"{'q:' if ly.quoted else ''}{ly.proto}"
    if "src" in f and "dst" in f and ly.proto in ("ipv4", "ipv6"):
        extra = f" ttl={f.get('ttl')}"
        if f.get("mf") or f.get("frag_offset"):
            extra += f" frag@{f.get('frag_offset')}{'+' if f.get('mf') else ''}"
        if f.get("reassembly") and f.get("reassembly") != "complete":
            extra += f" [{f['reassembly']}]"
        if f.get("reassembled_frames"):
            frames = ",".join(str(n) for n in f["reassembled_frames"])
            extra += f" [reassembled {f.get('reassembled_length')} B from frames {frames}]"
        return f"{head} {f['src']} > {f['dst']}{extra}"
    if "sport" in f and "dport" in f:
        rest = " ".join(f"{k}={f[k]}" for k in _KEYS.get(ly.proto, ()) if f.get(k) not in (None, ""))
        return f"{head} {f['sport']} > {f['dport']}" + (f" {rest}" if rest else "")
    keys = _KEYS.get(ly.proto)
    if keys is None:
        keys = ("tunnel_id",) if "tunnel_id" in f else ()
    rest = " ".join(f"{k}={f[k]}" for k in keys if f.get(k) not in (None, ""))
    return f"{head} {rest}".rstrip()


def packet_summary(pkt: Packet) -> str:
    parts = [layer_summary(ly) for ly in pkt.layers]
    line = f"{pkt.frame:>6}  " + " | ".join(parts)
    if pkt.truncated:
        line += f"  [cut {pkt.caplen}/{pkt.wirelen}]"
    if pkt.anomalies:
        line += "  !! " + ", ".join(a.kind for a in pkt.anomalies)
    return line
