#!/usr/bin/env python3
"""What the XDP enforcer's pinned links run, as digests a test compares with nft_sets.py's.

  xdp_maps.py PIN_DIR
      prints one line per pinned link, sorted by name:
      "<link name> prog=<id> v4=<intervals>:<hash> v6=<intervals>:<hash>"
      (the edge addresses of the generation the link runs, read from that program's own
      tables in the kernel), or "<link name> detached" / "<link name> error: <why>"; whether
      the link's program is the one on the interface is for the caller to check (ip link)

The tables (bpf/lib/maps.h, agent/xdp/tables.cpp) are read through the bpf() syscall by map
id: the IPv4 /24 bitmap (2^19 words) and the IPv6 top-32 hash in batch lookups, both tries
key by key (tries have no batch operations). Edge addresses are the /24s (bitmap) and /32s (top hash) of kind EDGE plus the
trie entries of kind EDGE: exact for sets whose prefixes do not nest in one another with
different kinds (edge ranges only, as the kill -9 test serves). The intervals and digest are
computed as nft_sets.py does, so "equal" means exactly the same edge addresses.
"""
import array
import ctypes
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nft_sets import digest  # noqa: E402

KIND_EDGE = 1
BPF_MAP_LOOKUP_ELEM, BPF_MAP_GET_NEXT_KEY, BPF_MAP_GET_FD_BY_ID, BPF_MAP_LOOKUP_BATCH = 1, 4, 14, 24
NR_BPF = {"x86_64": 321, "aarch64": 280}[os.uname().machine]
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def bpf(cmd, attr):
    r = libc.syscall(NR_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    if r < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return r


class FdById(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32), ("next_id", ctypes.c_uint32), ("open_flags", ctypes.c_uint32)]


class Elem(ctypes.Structure):
    _fields_ = [("map_fd", ctypes.c_uint32), ("pad", ctypes.c_uint32), ("key", ctypes.c_uint64),
                ("value", ctypes.c_uint64), ("flags", ctypes.c_uint64)]


class Batch(ctypes.Structure):
    _fields_ = [("in_batch", ctypes.c_uint64), ("out_batch", ctypes.c_uint64), ("keys", ctypes.c_uint64),
                ("values", ctypes.c_uint64), ("count", ctypes.c_uint32), ("map_fd", ctypes.c_uint32),
                ("elem_flags", ctypes.c_uint64), ("flags", ctypes.c_uint64)]


def map_fd(map_id):
    return bpf(BPF_MAP_GET_FD_BY_ID, FdById(id=map_id))


def entries(fd, key_size, value_size=4):
    """Every (key bytes, u32 value) of a hash or trie map, by get_next_key + lookup."""
    key, nxt, val = (ctypes.create_string_buffer(key_size), ctypes.create_string_buffer(key_size),
                     ctypes.create_string_buffer(value_size))
    attr = Elem(map_fd=fd, key=0, value=ctypes.addressof(nxt))  # key 0: the first key
    out = []
    while True:
        try:
            bpf(BPF_MAP_GET_NEXT_KEY, attr)
        except OSError as e:
            if e.errno == 2:  # ENOENT: no more keys
                return out
            raise
        ctypes.memmove(key, nxt, key_size)
        bpf(BPF_MAP_LOOKUP_ELEM, Elem(map_fd=fd, key=ctypes.addressof(key), value=ctypes.addressof(val)))
        out.append((key.raw, int.from_bytes(val.raw[:4], "little")))
        attr = Elem(map_fd=fd, key=ctypes.addressof(key), value=ctypes.addressof(nxt))


def batch(fd, key_size, value_size, n):
    """(keys, values) as bytes of every element of an array or hash map: batch lookups."""
    keys, vals = ctypes.create_string_buffer(key_size * n), ctypes.create_string_buffer(value_size * n)
    token, nxt = ctypes.c_uint64(), ctypes.c_uint64()  # the batch position (u32 for these maps)
    got, first = 0, True
    while got < n:
        attr = Batch(in_batch=0 if first else ctypes.addressof(token), out_batch=ctypes.addressof(nxt),
                     keys=ctypes.addressof(keys) + got * key_size, values=ctypes.addressof(vals) + got * value_size,
                     count=n - got, map_fd=fd)
        done = False
        try:
            bpf(BPF_MAP_LOOKUP_BATCH, attr)
        except OSError as e:
            if e.errno != 2:  # ENOENT: this was the last batch
                raise
            done = True
        got += attr.count
        if done or attr.count == 0:
            break
        token.value, first = nxt.value, False
    return keys.raw[: got * key_size], vals.raw[: got * value_size]


def bpftool(*args):
    return json.loads(subprocess.run(["bpftool", "-j", *args], check=True, capture_output=True, text=True).stdout)


def prefix_pair(addr, length, bits):
    first = int.from_bytes(addr, "big") & ~((1 << (bits - length)) - 1) & ((1 << bits) - 1)
    return first, first | ((1 << (bits - length)) - 1)


def generation(prog_id):
    maps = {}
    for mid in bpftool("prog", "show", "id", str(prog_id)).get("map_ids", []):
        info = bpftool("map", "show", "id", str(mid))
        maps[info["name"]] = info
    v4, v6 = [], []
    fds = {name: map_fd(m["id"]) for name, m in maps.items() if name.startswith("og_v")}
    try:
        # ~20x faster to walk as an array.array than as ctypes
        words = array.array("Q", batch(fds["og_v4_bitmap"], 4, 8, maps["og_v4_bitmap"]["max_entries"])[1])
        for w, bits in enumerate(words):
            if not bits:
                continue
            while bits:  # each /24 in use, two bits of the word
                j = ((bits & -bits).bit_length() - 1) >> 1
                if (bits >> (2 * j)) & 3 == KIND_EDGE:
                    first = ((w << 5) | j) << 8
                    v4.append((first, first | 0xFF))
                bits &= ~(3 << (2 * j))
        for key, kind in entries(fds["og_v4_lpm"], 8):
            if kind == KIND_EDGE:
                v4.append(prefix_pair(key[4:8], int.from_bytes(key[:4], "little"), 32))
        keys, kinds = batch(fds["og_v6_top"], 4, 4, maps["og_v6_top"]["max_entries"])
        for k, kind in zip(array.array("I", keys), array.array("I", kinds)):
            if kind == KIND_EDGE:
                first = int.from_bytes(k.to_bytes(4, "little"), "big") << 96  # key: the address's first 4 bytes
                v6.append((first, first | ((1 << 96) - 1)))
        for key, kind in entries(fds["og_v6_lpm"], 20):
            if kind == KIND_EDGE:
                v6.append(prefix_pair(key[4:20], int.from_bytes(key[:4], "little"), 128))
    finally:
        for fd in fds.values():
            os.close(fd)
    return f"v4={digest(v4)} v6={digest(v6)}"


def main():
    pin_dir = sys.argv[1]
    cache = {}
    for name in sorted(os.listdir(pin_dir)):
        if not name.startswith("link_"):
            continue
        try:
            link = bpftool("link", "show", "pinned", os.path.join(pin_dir, name))
            prog = link.get("prog_id", 0)
            if link.get("ifindex", None) == 0:  # older bpftool does not print it for xdp links
                print(f"{name[5:]} detached")
                continue
            if prog not in cache:
                cache[prog] = generation(prog)
            print(f"{name[5:]} prog={prog} {cache[prog]}")
        except (OSError, subprocess.CalledProcessError, KeyError, ValueError) as e:
            print(f"{name[5:]} error: {e}")


if __name__ == "__main__":
    main()
