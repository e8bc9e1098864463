#!/usr/bin/env python3
"""Who answers for an address on a link: the link-layer addresses that
reply to an ARP request (IPv4) or a neighbour solicitation (IPv6) for it.

    float-who.py --iface IF --addr ADDR [--tries N] [--wait-ms MS]

Run in the namespace of a node on the link.  Prints each distinct MAC
that answered, one a line (nothing when none did); exit 0 either way, 2
on bad arguments.  A frame is only counted if it really answers for ADDR:
an ARP reply whose sender IP is ADDR, or a neighbour advertisement whose
target is ADDR with a target link-layer address option.
"""
import argparse
import fcntl
import ipaddress
import select
import socket
import struct
import sys
import time

ETH_P_ARP = 0x0806
SIOCGIFHWADDR = 0x8927


def mac_of(iface):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        req = struct.pack("256s", iface.encode()[:15])
        return fcntl.ioctl(s.fileno(), SIOCGIFHWADDR, req)[18:24]
    finally:
        s.close()


def fmt_mac(b):
    return ":".join("%02x" % x for x in b)


def collect(sock, send, answer, tries, wait):
    """send() tries times; after each, wait seconds for frames on sock.
    answer(frame) is the MAC the frame answers with, or None."""
    seen = []
    for _ in range(tries):
        send()
        end = time.monotonic() + wait
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([sock], [], [], left)
            if not r:
                continue
            mac = answer(sock.recv(2048))
            if mac is not None and mac not in seen:
                seen.append(mac)
    return seen


def arp_who(iface, addr, tries, wait):
    me = mac_of(iface)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    s.bind((iface, ETH_P_ARP))
    target = ipaddress.IPv4Address(addr).packed
    # An ARP probe (sender 0.0.0.0, RFC 5227): every holder answers it,
    # and no neighbour cache learns anything from it.
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, me, b"\0" * 4,
                      b"\0" * 6, target)
    frame = b"\xff" * 6 + me + struct.pack("!H", ETH_P_ARP) + arp

    def answer(pkt):
        if len(pkt) < 14 + 28:
            return None
        op, sha, spa = struct.unpack("!6xH6s4s", pkt[14:14 + 18])
        return sha if op == 2 and spa == target else None

    return collect(s, lambda: s.send(frame), answer, tries, wait)


def solicited_node(a):
    return ipaddress.IPv6Address(b"\xff\x02" + b"\0" * 9 + b"\x01\xff" + a[13:])


def nd_who(iface, addr, tries, wait):
    me = mac_of(iface)
    target = ipaddress.IPv6Address(addr).packed
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    idx = socket.if_nametoindex(iface)
    # type 135, code 0, checksum (the kernel's), reserved, target, and
    # our source link-layer address (option 1)
    ns = struct.pack("!BBHI16sBB6s", 135, 0, 0, 0, target, 1, 1, me)
    dst = str(solicited_node(target))

    def answer(pkt):
        if len(pkt) < 24 or pkt[0] != 136 or pkt[8:24] != target:
            return None
        opts = pkt[24:]
        while len(opts) >= 8 and opts[1] > 0:
            if opts[0] == 2:
                return opts[2:8]
            opts = opts[opts[1] * 8:]
        return None

    return collect(s, lambda: s.sendto(ns, (dst, 0, 0, idx)), answer, tries, wait)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iface", required=True)
    ap.add_argument("--addr", required=True)
    ap.add_argument("--tries", type=int, default=3)
    ap.add_argument("--wait-ms", type=int, default=200)
    a = ap.parse_args()
    try:
        ip = ipaddress.ip_address(a.addr)
    except ValueError:
        print("float-who.py: not an address: %s" % a.addr, file=sys.stderr)
        return 2
    wait = a.wait_ms / 1000.0
    macs = (arp_who if ip.version == 4 else nd_who)(a.iface, a.addr, a.tries, wait)
    for m in macs:
        print(fmt_mac(m))
    return 0


if __name__ == "__main__":
    sys.exit(main())
