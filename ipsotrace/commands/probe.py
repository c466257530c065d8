"""``ipsotrace trace|pmtu|ping``: overlay probes toward a far VTEP (front end of ipsotrace.probe).

Run them from the VTEP host's namespace: ``ipsotrace lab exec v1 -- ipsotrace trace 192.0.2.2 …``.
The engine returns results; everything printed is rendered here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import typer

from ipsotrace.commands.common import EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, fail, stderr, write_line


@dataclass(frozen=True)
class _Common:
    vtep: str
    vni: int
    inner_dst: str
    sport: int | None
    paths: int
    dport: int
    source: str | None
    inner_src: str | None
    inner_dst_mac: str | None
    pps: float
    timeout: float
    replay: str | None
    verbose: bool
    as_json: bool


VniOption = typer.Option(..., "--vni", help="VXLAN network identifier of the overlay to probe.")
InnerDstOption = typer.Option(..., "--inner-dst", help="Inner (overlay) address that answers behind the far VTEP.")
SportOption = typer.Option(None, "--sport", help="Probe only this outer UDP source port (one ECMP path).")
PathsOption = typer.Option(1, "--paths", "-k", help="Find up to K ECMP paths by varying the outer source port.")
DportOption = typer.Option(4789, "--dport", help="VXLAN UDP port of the far VTEP.")
SourceOption = typer.Option(None, "--source", help="Outer source address (default: the local VXLAN device's).")
InnerSrcOption = typer.Option(None, "--inner-src", help="Inner source address (default: the local VXLAN device's).")
InnerMacOption = typer.Option(None, "--inner-dst-mac", help="Inner destination MAC (default: ARP through the overlay).")
PpsOption = typer.Option(50.0, "--pps", help="At most this many probes per second.")
TimeoutOption = typer.Option(2.0, "--timeout", help="Longest wait for one probe's answer, seconds.")
ReplayOption = typer.Option(
    None, "--replay-flow", help="FILE:FLOWSPEC, e.g. cap.pcap:vni=100,src=203.0.113.1,dst=203.0.113.2,proto=icmp"
)
VerboseOption = typer.Option(False, "--verbose", "-v", help="Show every probe and answer on stderr.")
JsonOption = typer.Option(False, "--json", help="Print the result as JSON (docs/probes.md).")


@contextmanager
def _session(c: _Common) -> Iterator[tuple[Any, dict[str, Any]]]:
    """Resolve the target, open raw sockets and resolve the inner MAC; errors become exit 2."""
    from ipsotrace.probe import ProbeError, RawNetwork, Session
    from ipsotrace.probe.replay import find_flow, parse_replay
    from ipsotrace.probe.resolve import local_target

    extra: dict[str, Any] = {}
    try:
        target = local_target(
            c.vtep,
            c.vni,
            c.inner_dst,
            source=c.source,
            inner_src=c.inner_src,
            inner_dst_mac=c.inner_dst_mac,
            dport=c.dport,
        )
        if c.replay:
            path, spec = parse_replay(c.replay)
            flow = find_flow(path, spec, target.vtep, target.dport)
            extra["replay"] = flow.to_json()
        net = RawNetwork()
    except ProbeError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    try:
        session = Session(net, target, pps=c.pps, timeout=c.timeout, on_event=_printer() if c.verbose else None)
        if c.inner_dst_mac is None:
            session.resolve_inner_mac(sport=c.sport or 49152)
        yield session, extra
    except ProbeError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    finally:
        net.close()


def _printer() -> Callable[[Any], None]:
    def show(ev: Any) -> None:
        r = ev.request
        if ev.what == "sent" and r is not None:
            stderr.print(
                f"[dim]→ #{ev.probe_id} sport {r.sport} ttl {r.ttl} size {r.size or 'min'}[/]", highlight=False
            )
        elif ev.what == "outcome" and ev.outcome is not None:
            o = ev.outcome
            rtt = f" {o.rtt_ms:.3f} ms" if o.rtt_ms is not None else ""
            mtu = f" mtu {o.mtu}" if o.mtu else ""
            stderr.print(f"[dim]← #{ev.probe_id} {o.kind} {o.address or ''}{rtt}{mtu}[/]", highlight=False)

    return show


def _sports_for(c: _Common, extra: dict[str, Any]) -> list[int] | None:
    """Explicit flows to probe: every port a replayed flow used (last used last), or --sport."""
    if "replay" in extra:
        return [int(p) for p in extra["replay"]["sports_seen"]]
    return None if c.sport is None else [c.sport]


def _ms(v: float | None) -> str:
    return "*" if v is None else f"{v:.3f} ms"


def _render_trace_paths(result: Any) -> None:
    for i, p in enumerate(result.paths, 1):
        ports = " ".join(str(s) for s in p.sports[:12]) + (" …" if len(p.sports) > 12 else "")
        write_line(f"path {i}  ({len(p.sports)} source ports: {ports})")
        for h in p.hops:
            if h.kind == "vtep":
                note = f"far VTEP, inner reply from {h.evidence.get('inner_reply_from')}"
            elif h.kind == "unreachable":
                note = f"unreachable (code {h.evidence.get('code')})"
            elif h.inherited:
                note = "(inherited: MDA-resolved single next hop)"
            else:
                note = ""
            write_line(f"  {h.ttl:2}  {h.address or '*':15}  {_ms(h.rtt_ms):>11}  {note}".rstrip())
        if not p.reached:
            write_line(f"  did not reach the far VTEP ({p.status})")


def trace(
    vtep: str = typer.Argument(..., help="Far VTEP (outer destination)."),
    vni: int = VniOption,
    inner_dst: str = InnerDstOption,
    sport: int | None = SportOption,
    paths: int = PathsOption,
    dport: int = DportOption,
    max_hops: int = typer.Option(16, "--max-hops", help="Give up a flow after this TTL."),
    source: str | None = SourceOption,
    inner_src: str | None = InnerSrcOption,
    inner_dst_mac: str | None = InnerMacOption,
    pps: float = PpsOption,
    timeout: float = TimeoutOption,
    replay_flow: str | None = ReplayOption,
    verbose: bool = VerboseOption,
    as_json: bool = JsonOption,
) -> None:
    """Overlay traceroute: VXLAN probes with increasing outer TTL, per ECMP path, to the far VTEP."""
    c = _Common(vtep, vni, inner_dst, sport, paths, dport, source, inner_src, inner_dst_mac, pps, timeout,
                replay_flow, verbose, as_json)  # fmt: skip
    with _session(c) as (session, extra):
        result = session.trace(sports=_sports_for(c, extra), paths=paths, max_hops=max_hops)
    if as_json:
        write_line(json.dumps({**result.to_json(), **extra}, indent=1))
    else:
        t = result.target
        if "replay" in extra:
            r = extra["replay"]
            ports = ", ".join(f"{p} ({n} packets)" for p, n in r["sports_seen"].items())
            write_line(f"replaying flow {r['flow']}: outer source ports {ports}; last used {r['sport']}")
        write_line(
            f"overlay trace {t.local} → {t.vtep} VNI {t.vni} (inner {t.inner_dst}): {len(result.paths)} path(s), "
            f"{result.balancing} balancing, {result.flows} flows, {result.probes} probes, "
            f"stopped: {result.stopped}, {result.elapsed_s:.1f} s"
        )
        _render_trace_paths(result)
    raise typer.Exit(EXIT_OK if result.paths and all(p.reached for p in result.paths) else EXIT_PROBLEM)


def pmtu(
    vtep: str = typer.Argument(..., help="Far VTEP (outer destination)."),
    vni: int = VniOption,
    inner_dst: str = InnerDstOption,
    sport: int | None = SportOption,
    paths: int = PathsOption,
    dport: int = DportOption,
    min_size: int = typer.Option(1200, "--min", help="Bottom of the search range (outer bytes)."),
    max_size: int = typer.Option(9216, "--max", help="Top of the search range (capped by the local interface MTU)."),
    max_probes: int = typer.Option(40, "--max-probes", help="Probe budget per path."),
    source: str | None = SourceOption,
    inner_src: str | None = InnerSrcOption,
    inner_dst_mac: str | None = InnerMacOption,
    pps: float = PpsOption,
    timeout: float = TimeoutOption,
    replay_flow: str | None = ReplayOption,
    verbose: bool = VerboseOption,
    as_json: bool = JsonOption,
) -> None:
    """Path MTU per ECMP path (DF probes, PTB honoured), with black-hole detection and location."""
    c = _Common(vtep, vni, inner_dst, sport, paths, dport, source, inner_src, inner_dst_mac, pps, timeout,
                replay_flow, verbose, as_json)  # fmt: skip
    if not 0 < min_size <= max_size:
        raise fail("--min must be positive and at most --max", EXIT_USAGE)
    with _session(c) as (session, extra):
        tr = session.trace(sports=_sports_for(c, extra), paths=paths)
        report = session.pmtu(tr, lo=min_size, hi=max_size, max_probes=max_probes)
    if as_json:
        write_line(json.dumps({**report.to_json(), **extra}, indent=1))
    else:
        t = report.target
        write_line(
            f"path MTU {t.local} → {t.vtep} VNI {t.vni} (inner {t.inner_dst}), {len(report.paths)} path(s), "
            f"{report.elapsed_s:.1f} s"
        )
        for i, pp in enumerate(report.paths, 1):
            r = pp.pmtu
            hops = " → ".join(h.address or "*" for h in pp.path.hops)
            write_line(f"path {i}  sport {r.sport}  {hops}")
            if r.underlay_mtu is None:
                write_line(f"  no answer ({r.status}): {'; '.join(r.notes)}")
                continue
            acc = f" (±{r.accuracy})" if r.accuracy else ""
            write_line(
                f"  underlay MTU {r.underlay_mtu}{acc}   overhead {r.overhead}   overlay MTU {r.overlay_mtu}   "
                f"recommended inner MTU {r.overlay_mtu} (TCP MSS {r.overlay_mtu - 40})   {r.probes} probes"
            )
            for ptb in r.ptbs:
                write_line(f"  PTB from {ptb['from']}: next-hop MTU {ptb['mtu']} (probe of {ptb['probe_size']} bytes)")
            if r.blackhole and r.blackhole_at:
                b = r.blackhole_at
                last = b["last_hop_reached"]
                miss = b["first_hop_not_reached"]
                write_line(
                    f"  BLACK HOLE: packets over {r.underlay_mtu} bytes vanish without a PTB; "
                    f"last seen at hop {last['ttl']} ({last['address']}), never reach hop {miss['ttl']} "
                    f"({miss['address'] or '?'}): {b['culprit']} drops them silently"
                    if last
                    else "  BLACK HOLE: packets over {r.underlay_mtu} bytes vanish before the first hop"
                )
            for note in r.notes:
                write_line(f"  note: {note}")
    bad = any(p.pmtu.blackhole or p.pmtu.status != "ok" for p in report.paths)
    raise typer.Exit(EXIT_PROBLEM if bad else EXIT_OK)


def ping(
    vtep: str = typer.Argument(..., help="Far VTEP (outer destination)."),
    vni: int = VniOption,
    inner_dst: str = InnerDstOption,
    sport: int | None = SportOption,
    paths: int = PathsOption,
    count: int = typer.Option(10, "--count", "-c", help="Probes per path."),
    interval: float = typer.Option(1.0, "--interval", "-i", help="Seconds between rounds (one probe per path)."),
    size: int = typer.Option(0, "--size", "-s", help="Outer packet size in bytes (0: smallest probe)."),
    dport: int = DportOption,
    source: str | None = SourceOption,
    inner_src: str | None = InnerSrcOption,
    inner_dst_mac: str | None = InnerMacOption,
    pps: float = typer.Option(1000.0, "--pps", help="Pacing cap (probes per second, all paths)."),
    timeout: float = TimeoutOption,
    verbose: bool = VerboseOption,
    as_json: bool = JsonOption,
) -> None:
    """Overlay ping per ECMP path: loss, RTT min/avg/max/mdev, jitter."""
    c = _Common(vtep, vni, inner_dst, sport, paths, dport, source, inner_src, inner_dst_mac, pps, timeout,
                None, verbose, as_json)  # fmt: skip
    with _session(c) as (session, _extra):
        if sport is not None or paths <= 1:
            sports = [sport or 49152]
            found: list[Any] = [None]
        else:
            tr = session.trace(paths=paths)
            found = list(tr.paths)
            sports = [p.sports[0] for p in tr.paths]
        report = session.ping(sports, paths=found, count=count, interval=interval, size=size)
    if as_json:
        write_line(json.dumps(report.to_json(), indent=1))
    else:
        t = report.target
        write_line(f"overlay ping {t.local} → {t.vtep} VNI {t.vni} (inner {t.inner_dst})")
        for path, st in report.paths:
            hops = " → ".join(h.address or "*" for h in path.hops) if path else ""
            write_line(f"sport {st.sport}  {hops}".rstrip())
            write_line(
                f"  {st.sent} sent, {st.received} received, {st.loss_pct:.1f}% loss; rtt min/avg/max/mdev "
                + "/".join(
                    "-" if v is None else f"{v:.3f}"
                    for v in (st.rtt_min_ms, st.rtt_avg_ms, st.rtt_max_ms, st.rtt_mdev_ms)
                )
                + f" ms, jitter {'-' if st.jitter_ms is None else f'{st.jitter_ms:.3f}'} ms"
            )
    raise typer.Exit(EXIT_PROBLEM if any(st.received == 0 for _, st in report.paths) else EXIT_OK)


def register(app: typer.Typer) -> None:
    app.command()(trace)
    app.command()(pmtu)
    app.command()(ping)
