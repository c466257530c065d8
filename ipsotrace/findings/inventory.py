"""The user's inventory: expected VTEPs, tunnel IDs (VNIs), MTUs and untrusted networks.

File format (YAML or TOML, same keys; docs/findings.md)::

    underlay_mtu: 1500          # MTU of the underlay links, every path
    overlay_mtu: 1450           # MTU of the tenant (inner) interfaces
    vteps:                      # addresses or CIDRs; an entry may carry its own underlay MTU
      - 192.0.2.1
      - {address: 192.0.2.2, mtu: 9000}
      - 198.51.100.0/28
    vnis: [100, 200, "300-399"] # tunnel IDs (VNI, GRE key, TEID...) expected in any encapsulation
    untrusted: [203.0.113.0/24] # networks the overlay crosses in clear (also --untrusted CIDR)

Parsing takes text (the CLI reads the file); nothing here opens files.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
KNOWN_KEYS = frozenset({"underlay_mtu", "overlay_mtu", "vteps", "vnis", "untrusted"})


class InventoryError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Inventory:
    underlay_mtu: int | None = None
    overlay_mtu: int | None = None
    vteps: tuple[tuple[Network, int | None], ...] = ()  # (network, its underlay MTU or None)
    vnis: tuple[tuple[int, int], ...] = ()  # inclusive ranges
    untrusted: tuple[Network, ...] = ()
    given: frozenset[str] = field(default_factory=frozenset)  # keys present in the file

    @property
    def lists_vteps(self) -> bool:
        return "vteps" in self.given

    @property
    def lists_vnis(self) -> bool:
        return "vnis" in self.given

    def vtep_known(self, addr: str) -> bool:
        ip = _addr(addr)
        return ip is not None and any(ip in net for net, _ in self.vteps)

    def vni_known(self, tid: int) -> bool:
        return any(lo <= tid <= hi for lo, hi in self.vnis)

    def mtu_for(self, *addrs: str) -> int | None:
        """The underlay MTU a path between these VTEPs has: the smallest one the inventory states."""
        found = []
        for a in addrs:
            ip = _addr(a)
            if ip is None:
                continue
            found += [mtu for net, mtu in self.vteps if mtu is not None and ip in net]
        if found:
            return min(found)
        return self.underlay_mtu


def _addr(a: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(a)
    except ValueError:
        return None


def is_ip(addr: str) -> bool:
    return _addr(addr) is not None


def is_in(addr: str, nets: Sequence[Network]) -> bool:
    ip = _addr(addr)
    return ip is not None and any(ip.version == n.version and ip in n for n in nets)


def network(text: str) -> Network:
    try:
        return ipaddress.ip_network(str(text).strip(), strict=False)
    except ValueError as exc:
        raise InventoryError(f"not an address or CIDR: {text!r}") from exc


def _mtu(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 68 <= v <= 65535:
        raise InventoryError(f"{name} must be an integer between 68 and 65535, not {v!r}")
    return v


def _vni_ranges(v: Any) -> tuple[tuple[int, int], ...]:
    if not isinstance(v, list):
        raise InventoryError("vnis must be a list of integers or 'LOW-HIGH' ranges")
    out = []
    for item in v:
        if isinstance(item, int) and not isinstance(item, bool):
            out.append((item, item))
        elif isinstance(item, str) and "-" in item:
            lo, _, hi = item.partition("-")
            try:
                out.append((int(lo), int(hi)))
            except ValueError as exc:
                raise InventoryError(f"bad VNI range {item!r}") from exc
        else:
            raise InventoryError(f"bad VNI {item!r}: use integers or 'LOW-HIGH' ranges")
    return tuple(out)


def from_mapping(doc: Mapping[str, Any]) -> Inventory:
    if not isinstance(doc, Mapping):
        raise InventoryError("the inventory must be a mapping of keys to values")
    unknown = set(doc) - KNOWN_KEYS
    if unknown:
        known = ", ".join(sorted(KNOWN_KEYS))
        raise InventoryError(f"unknown inventory keys: {', '.join(sorted(unknown))}; known: {known}")
    vteps: list[tuple[Network, int | None]] = []
    for entry in doc.get("vteps") or []:
        if isinstance(entry, Mapping):
            if "address" not in entry:
                raise InventoryError(f"VTEP entry {dict(entry)!r} needs an 'address'")
            mtu = _mtu("vtep mtu", entry["mtu"]) if entry.get("mtu") is not None else None
            vteps.append((network(entry["address"]), mtu))
        else:
            vteps.append((network(entry), None))
    return Inventory(
        underlay_mtu=_mtu("underlay_mtu", doc["underlay_mtu"]) if doc.get("underlay_mtu") is not None else None,
        overlay_mtu=_mtu("overlay_mtu", doc["overlay_mtu"]) if doc.get("overlay_mtu") is not None else None,
        vteps=tuple(vteps),
        vnis=_vni_ranges(doc["vnis"]) if "vnis" in doc else (),
        untrusted=tuple(network(n) for n in doc.get("untrusted") or []),
        given=frozenset(doc),
    )


def parse(text: str, fmt: str) -> Inventory:
    """Parse inventory ``text``; ``fmt`` is "yaml" or "toml" (the CLI picks it from the file suffix)."""
    try:
        doc = tomllib.loads(text) if fmt == "toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise InventoryError(f"cannot parse the inventory as {fmt.upper()}: {exc}") from exc
    return from_mapping(doc or {})
