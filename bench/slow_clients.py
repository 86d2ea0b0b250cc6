#!/usr/bin/env python3
"""Slow downloaders for bench/compression.sh (loopback only):

    slow_clients.py PORT N ACCEPT-ENCODING SECONDS ALBD-PID

N clients each GET /big.json over HTTP/1.1 from 127.0.0.1:PORT with the
given Accept-Encoding and read it slowly (2 KiB every 0.2 s, an 8 KiB
receive buffer) for SECONDS; albd's VmRSS is sampled meanwhile. Prints
albd's RSS before, the sampled peak, VmHWM and RSS after the clients
closed, how many responses came compressed, and the status codes."""
import asyncio
import socket
import sys
import time

PORT, N, AE, DURATION, PID = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
READ, SLEEP = 2048, 0.2
stats = {"compressed": 0, "plain": 0, "bytes": 0, "errors": 0, "done": 0}

def rss(field):
    with open(f"/proc/{PID}/status") as f:
        for l in f:
            if l.startswith(field):
                return int(l.split()[1])
    return 0

async def client(i, end):
    try:
        r, w = await asyncio.open_connection("127.0.0.1", PORT, limit=READ)
        w.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        w.write(f"GET /big.json HTTP/1.1\r\nHost: x\r\nAccept-Encoding: {AE}\r\n\r\n".encode())
        head = await r.readuntil(b"\r\n\r\n")
        st = head.split(b" ")[1].decode()
        stats["status_" + st] = stats.get("status_" + st, 0) + 1
        if b"content-encoding:" in head.lower():
            stats["compressed"] += 1
        else:
            stats["plain"] += 1
        while time.monotonic() < end:
            b = await r.read(READ)
            if not b:
                stats["done"] += 1
                break
            stats["bytes"] += len(b)
            await asyncio.sleep(SLEEP)
        w.close()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, IndexError):
        stats["errors"] += 1

async def main():
    end = time.monotonic() + DURATION
    base = rss("VmRSS")
    tasks = []
    for i in range(N):
        tasks.append(asyncio.create_task(client(i, end)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)
    peak = 0
    while time.monotonic() < end:
        peak = max(peak, rss("VmRSS"))
        await asyncio.sleep(0.25)
    await asyncio.gather(*tasks)
    await asyncio.sleep(1)
    print(f"AE={AE} clients={N}: albd RSS before {base // 1024} MiB, peak sampled {peak // 1024} MiB, "
          f"VmHWM {rss('VmHWM') // 1024} MiB, after close {rss('VmRSS') // 1024} MiB; "
          f"compressed {stats['compressed']}, plain {stats['plain']}, errors {stats['errors']}, "
          f"read {stats['bytes'] // 1024} KiB; " + str({k: v for k, v in stats.items() if k.startswith("status")}))

asyncio.run(main())
