#!/usr/bin/env python3
"""Groups `perf script -F pid,ip,sym` call stacks by where the CPU time went.

Reads perf script output on stdin (samples separated by blank lines, leaf
frame first) and prints the share of samples per group. A sample belongs to
the first group found walking from the leaf towards the root: allocator and
memmove leaves by themselves, system calls by the syscall the code made,
anything else by the first frame of a known library or of Switchyard.
"""

import collections
import re
import sys

ALLOCATOR = {"malloc", "free", "realloc", "calloc", "malloc_consolidate"}
ALLOCATOR_PREFIXES = ("_int_", "__libc_malloc", "__libc_free", "__libc_realloc",
                      "__libc_calloc", "cfree", "unlink_chunk", "tcache_")
COPY = ("memmove", "memcpy", "memset")
SYSCALLS = (
    (("__GI___writev", "writev", "__libc_sendmsg", "__send", "__GI___libc_write"),
     "kernel: send (writev; loopback delivery and waking the reader included)"),
    (("__libc_recv", "recv", "recvfrom", "__GI___libc_read", "read"), "kernel: receive (recv/read)"),
    (("epoll_wait", "__GI_epoll_wait"), "kernel: epoll_wait (parking and being woken)"),
)
LIBRARIES = (
    ("h2::", "gRPC: HTTP/2 framing and HPACK (h2)"),
    ("tonic::", "gRPC: tonic and protobuf"),
    ("prost::", "gRPC: tonic and protobuf"),
    ("serde_json::", "JSON (serde_json)"),
    ("sqlx", "usage ledger (SQLite via sqlx)"),
    ("sqlite3", "usage ledger (SQLite via sqlx)"),
    ("hyper::", "HTTP/1 (hyper, hyper-util, reqwest, axum)"),
    ("hyper_util::", "HTTP/1 (hyper, hyper-util, reqwest, axum)"),
    ("reqwest::", "HTTP/1 (hyper, hyper-util, reqwest, axum)"),
    ("axum::", "HTTP/1 (hyper, hyper-util, reqwest, axum)"),
    ("http::", "HTTP/1 (hyper, hyper-util, reqwest, axum)"),
    ("url::", "provider URL parsing (url)"),
    ("idna::", "provider URL parsing (url)"),
    ("tokio::", "tokio scheduler, I/O driver and timers"),
    ("switchyard_", "Switchyard's own code"),
)


def parse(sample):
    """The process id (None without `-F pid`) and the symbol names of one
    sample, leaf first, addresses stripped."""
    pid, names = None, []
    for line in sample.strip().splitlines():
        line = line.strip()
        if re.fullmatch(r"\d+", line):
            pid = line
        else:
            names.append(re.sub(r"^[0-9a-f]+\s+", "", line))
    return pid, names


def group(names):
    leaf = names[0] if names else ""
    if leaf in ALLOCATOR or leaf.startswith(ALLOCATOR_PREFIXES):
        return "malloc/free (glibc)"
    if leaf.startswith(("__memmove", "__memcpy", "__memset")) or leaf in COPY:
        return "memmove/memcpy"
    for name in names:
        for wrappers, label in SYSCALLS:
            if name in wrappers:
                return label
        bare = name.lstrip("<")
        for prefix, label in LIBRARIES:
            if bare.startswith(prefix):
                return label
    kernel = any(name.startswith(("entry_SYSCALL", "asm_")) for name in names)
    return "kernel: other (scheduling, timers, interrupts)" if kernel else "other"


def main():
    samples = [s for s in re.split(r"\n\s*\n", sys.stdin.read()) if s.strip()]
    if not samples:
        sys.exit("perf-breakdown: no samples on stdin")
    total = len(samples)
    groups, processes, wakeups = collections.Counter(), collections.Counter(), 0
    for sample in samples:
        pid, names = parse(sample)
        groups[group(names)] += 1
        processes[pid] += 1
        # Loopback delivers into the peer's socket on the sender's CPU and
        # wakes the reader there; in a VM that is an IPI to another vCPU.
        wakeups += "sock_def_readable" in names
    print(f"{total} samples")
    for label, count in groups.most_common():
        print(f"{100 * count / total:5.1f}%  {label}")
    print(f"{100 * wakeups / total:5.1f}%  of all samples: waking the reader of a socket "
          "(sock_def_readable), counted in the kernel groups above")
    if len(processes) > 1:
        print("by process:")
        for pid, count in processes.most_common():
            print(f"{100 * count / total:5.1f}%  pid {pid}")


if __name__ == "__main__":
    main()
