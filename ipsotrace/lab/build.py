"""Build and tear down the lab with pyroute2 (namespaces, veths, addresses, routes, VXLAN).

Sysctls are written from inside each namespace (``/proc/sys/net`` follows the
thread's namespace); fault injection uses nftables (``nft -f -`` run inside the
namespace), because this is what Debian/Ubuntu kernels without ``sch_netem``
can do: ``numgen random`` drops for loss, an ICMP-type drop for the black hole.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass

from pyroute2 import IPRoute, NetNS, netns

from ipsotrace.lab import nsutil
from ipsotrace.lab.state import LabState, check_prefix
from ipsotrace.lab.topology import DEFAULT, LOSSY_ROUTER, Topology


class LabError(Exception):
    """The lab cannot be built or used as asked (message is for the user)."""


@dataclass(frozen=True, slots=True)
class LabOptions:
    prefix: str = "ipt-"
    #: the routers in front of the 1400-byte links drop their ICMP fragmentation-needed
    blackhole: bool = False
    #: percent of forward (v1 → v2) packets dropped on the rb path
    loss: float = 0.0
    #: one-way delay in ms on the rb path (needs sch_netem)
    delay_ms: float = 0.0
    #: net.ipv4.icmp_ratelimit in the routers; None keeps the kernel default (1000 ms, burst 6)
    icmp_ratelimit_ms: int | None = None
    #: outer UDP source ports (first, last; both included) the VTEPs draw entropy from; None keeps
    #: the kernel's range (net.ipv4.ip_local_port_range).  A narrow range polarizes ECMP.
    srcport_range: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.srcport_range is not None:
            lo, hi = self.srcport_range
            # the kernel's upper bound is exclusive, and an empty range means "the default range"
            if not 1 <= lo <= hi <= 65534:
                raise ValueError(f"source port range {lo}-{hi}: give FIRST-LAST with 1 <= FIRST <= LAST <= 65534")


def ns_name(prefix: str, node: str) -> str:
    return f"{prefix}{node}"


def up(opts: LabOptions, topo: Topology = DEFAULT) -> LabState:
    """Build the lab; a leftover lab with the same prefix is removed first."""
    check_prefix(opts.prefix)
    _require_tools(opts)
    if LabState.load(opts.prefix) is not None or any(nsutil.exists(ns_name(opts.prefix, n)) for n in topo.nodes):
        down(opts.prefix, topo)
    state = LabState(prefix=opts.prefix, options=asdict(opts), created_by_pid=os.getpid())
    state.save()
    try:
        _build(state, opts, topo)
    except BaseException:
        down(opts.prefix, topo)
        raise
    state.complete = True
    state.save()
    return state


def down(prefix: str, topo: Topology = DEFAULT) -> list[str]:
    """Remove everything the lab with ``prefix`` created (state file first, then the usual names)."""
    check_prefix(prefix)
    state = LabState.load(prefix)
    names = set(state.namespaces if state else [])
    names.update(ns_name(prefix, n) for n in topo.nodes)
    removed = []
    if state is not None:
        with IPRoute() as ipr:
            for ifname in state.root_links:
                for idx in ipr.link_lookup(ifname=ifname):
                    ipr.link("del", index=idx)
    for name in sorted(names):
        if not nsutil.exists(name):
            continue
        _stop_processes(name)
        netns.remove(name)
        removed.append(name)
    if state is not None:
        state.remove()
    return removed


def status(prefix: str, topo: Topology = DEFAULT) -> dict[str, object]:
    state = LabState.load(prefix)
    nodes: dict[str, object] = {}
    for node in topo.nodes:
        name = ns_name(prefix, node)
        if not nsutil.exists(name):
            nodes[node] = None
            continue
        with NetNS(name, flags=0) as ns:
            ifaces = {}
            for link in ns.get_links():
                ifname = link.get_attr("IFLA_IFNAME")
                addrs = [
                    f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}" for a in ns.get_addr(index=link["index"], family=2)
                ]
                ifaces[ifname] = {"mtu": link.get_attr("IFLA_MTU"), "addresses": addrs}
        nodes[node] = {"namespace": name, "interfaces": ifaces}
    return {
        "prefix": prefix,
        "up": state is not None and state.complete and all(v is not None for v in nodes.values()),
        "options": state.options if state else None,
        "nodes": nodes,
    }


# --- building --------------------------------------------------------------------------------


def _require_tools(opts: LabOptions) -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, veth, nftables)")
    if (opts.blackhole or opts.loss) and shutil.which("nft") is None:
        raise LabError("--blackhole and --loss need nftables (apt-get install nftables)")
    if not 0 <= opts.loss < 100:
        raise LabError(f"--loss {opts.loss}: give a percentage in [0, 100)")


def _build(state: LabState, opts: LabOptions, topo: Topology) -> None:
    for node in topo.nodes:
        name = ns_name(opts.prefix, node)
        state.namespaces.append(name)
        state.save()
        netns.create(name)
    tag = f"ipt{os.getpid() % 100000}"
    with IPRoute() as ipr:
        for i, ln in enumerate(topo.links):
            ends = {ln.a: f"{tag}{i}a", ln.b: f"{tag}{i}b"}
            state.root_links.extend(ends.values())
            state.save()
            ipr.link("add", ifname=ends[ln.a], kind="veth", peer={"ifname": ends[ln.b]})
            for node, tmp in ends.items():
                idx = ipr.link_lookup(ifname=tmp)[0]
                ipr.link("set", index=idx, net_ns_fd=ns_name(opts.prefix, node))
            del state.root_links[-2:]
            state.save()
            for node, tmp in ends.items():
                with NetNS(ns_name(opts.prefix, node), flags=0) as ns:
                    idx = ns.link_lookup(ifname=tmp)[0]
                    ns.link("set", index=idx, ifname=ln.ifname(node), mtu=ln.mtu)
                    ns.addr("add", index=idx, address=ln.address(node), prefixlen=30)
                    ns.link("set", index=idx, state="up")
    for node in topo.nodes:
        _configure_node(opts, topo, node)
    _apply_faults(opts, topo)


def _configure_node(opts: LabOptions, topo: Topology, node: str) -> None:
    name = ns_name(opts.prefix, node)
    vtep = topo.vtep(node)
    with NetNS(name, flags=0) as ns:
        lo = ns.link_lookup(ifname="lo")[0]
        ns.link("set", index=lo, state="up")
        if vtep is not None:
            ns.addr("add", index=lo, address=vtep.loopback, prefixlen=32)
        for prefix, gws in topo.routes(node).items():
            extra = {"prefsrc": vtep.loopback} if vtep is not None else {}
            if len(gws) == 1:
                ns.route("add", dst=prefix, gateway=gws[0], **extra)
            else:
                ns.route("add", dst=prefix, multipath=[{"gateway": g} for g in gws], **extra)
        if vtep is not None:
            remote = next(v for v in topo.vteps if v.node != node)
            ns.link(
                "add",
                ifname=topo.vxlan_ifname,
                kind="vxlan",
                vxlan_id=topo.vni,
                vxlan_local=vtep.loopback,
                vxlan_group=remote.loopback,
                vxlan_port=topo.vxlan_port,
                address=vtep.mac,
                mtu=1450,
                **_port_range(opts),
                # Outer DF copied from the inner packet (TCP sets it, ICMP replies do not), as
                # hardware VTEPs do: big TCP segments then need PTBs, which --blackhole eats.
                vxlan_df=2,
            )
            idx = ns.link_lookup(ifname=topo.vxlan_ifname)[0]
            ns.addr("add", index=idx, address=vtep.overlay, prefixlen=topo.overlay_prefixlen)
            ns.link("set", index=idx, state="up")
    with nsutil.entered(name):
        nsutil.write_sysctl("net.ipv4.conf.all.rp_filter", 0)
        nsutil.write_sysctl("net.ipv4.conf.default.rp_filter", 0)
        if node in topo.routers:
            nsutil.write_sysctl("net.ipv4.ip_forward", 1)
            _l4_hash()
            # Answer from the interface the probe came in on, so each hop names the link it
            # was reached by instead of whatever the (ECMP) return route picks.
            nsutil.write_sysctl("net.ipv4.icmp_errors_use_inbound_ifaddr", 1)
            if opts.icmp_ratelimit_ms is not None:
                nsutil.write_sysctl("net.ipv4.icmp_ratelimit", opts.icmp_ratelimit_ms)


def _port_range(opts: LabOptions) -> dict[str, object]:
    if opts.srcport_range is None:
        return {}
    lo, hi = opts.srcport_range
    return {"vxlan_port_range": {"low": lo, "high": hi + 1}}  # the kernel's high end is exclusive


#: src IP, dst IP, IP protocol, src port, dst port (fib_multipath_hash_fields bits)
HASH_FIELDS = 0x0037


def _l4_hash() -> None:
    """Hash ECMP on the outer 5-tuple, so the outer UDP source port chooses the path.

    Policy 1 (L4) would be the obvious choice, but it reuses ``skb->hash`` when the
    packet already has one, and a veth keeps the hash the sending *socket* gave it:
    kernel VXLAN traffic would then be balanced by the inner TCP socket's hash, not by
    its outer header as on a real router, and a replayed source port would not follow
    the flow.  Policy 3 (custom, Linux 5.12+) always hashes the listed header fields.
    """
    try:
        nsutil.write_sysctl("net.ipv4.fib_multipath_hash_fields", HASH_FIELDS)
        nsutil.write_sysctl("net.ipv4.fib_multipath_hash_policy", 3)
    except OSError:
        nsutil.write_sysctl("net.ipv4.fib_multipath_hash_policy", 1)


def blackhole_routers(topo: Topology) -> list[str]:
    """Routers that send fragmentation-needed: those in front of a link smaller than the one a packet came in on."""
    out = []
    for node in topo.routers:
        mtus = {ln.mtu for ln in topo.links_of(node)}
        if len(mtus) > 1:
            out.append(node)
    return out


def _apply_faults(opts: LabOptions, topo: Topology) -> None:
    if opts.blackhole:
        rules = [
            "table inet ipsotrace_lab {",
            " chain lab_output { type filter hook output priority 0; policy accept;",
            "  icmp type destination-unreachable icmp code frag-needed counter drop",
            " }",
            "}",
        ]
        for node in blackhole_routers(topo):
            _nft(ns_name(opts.prefix, node), "\n".join(rules))
    lossy = ns_name(opts.prefix, LOSSY_ROUTER)
    toward_v1 = next(ln for ln in topo.links_of(LOSSY_ROUTER) if ln.peer(LOSSY_ROUTER) == "r1")
    if opts.loss:
        pct = opts.loss
        # numgen gives integers: drop on a 0..9999 draw to keep fractional percentages.
        threshold = round(pct * 100)
        rules = [
            "table inet ipsotrace_lab {",
            " chain lab_forward { type filter hook forward priority 0; policy accept;",
            f'  iifname "{toward_v1.ifname(LOSSY_ROUTER)}" numgen random mod 10000 < {threshold} counter drop',
            " }",
            "}",
        ]
        _nft(lossy, "\n".join(rules))
    if opts.delay_ms:
        egress = next(ln for ln in topo.links_of(LOSSY_ROUTER) if ln.peer(LOSSY_ROUTER) == "r3")
        with nsutil.entered(lossy):
            res = subprocess.run(
                [
                    "tc",
                    "qdisc",
                    "add",
                    "dev",
                    egress.ifname(LOSSY_ROUTER),
                    "root",
                    "netem",
                    "delay",
                    f"{opts.delay_ms}ms",
                ],
                capture_output=True,
                text=True,
            )
        if res.returncode != 0:
            raise LabError(
                "--delay needs the netem qdisc (kernel module sch_netem), which this kernel does not have "
                f"(tc said: {res.stderr.strip() or res.returncode}); build the lab without --delay"
            )


def _nft(ns: str, ruleset: str) -> None:
    with nsutil.entered(ns):
        res = subprocess.run(["nft", "-f", "-"], input=ruleset, capture_output=True, text=True)
    if res.returncode != 0:
        raise LabError(f"nft failed in {ns}: {res.stderr.strip()}")


def _stop_processes(name: str) -> None:
    """Processes still inside a lab namespace (a forgotten capture) would keep it alive."""
    target = os.stat(nsutil.netns_path(name))
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            st = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
            pids.append(int(entry))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 2.0
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if os.path.exists(f"/proc/{p}")]
        time.sleep(0.05)
