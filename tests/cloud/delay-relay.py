#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""delay-relay.py: a TCP relay on loopback that delays every byte by a fixed time each way, a
long round trip without tc netem (which a container's kernel may lack), for the HTTP/2 window
experiments of tests/cloud/README.md: an HTTP/2 stream moves at most one window per round trip.

  delay-relay.py LISTEN_PORT TARGET_PORT DELAY_MS

Listens on 127.0.0.1:LISTEN_PORT (0: a free one, printed as "port=N" on stdout) and relays each
connection to 127.0.0.1:TARGET_PORT; what one side sends reaches the other DELAY_MS later (the
round trip is twice that). The rate is not limited; the relay buffers what is in flight.
"""

import asyncio
import socket
import sys
import time


async def pipe(reader, writer, delay):
    queue = asyncio.Queue()

    async def send():
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                break
            writer.write(data)
            await writer.drain()
        try:
            writer.write_eof()
        except OSError:
            pass

    task = asyncio.ensure_future(send())
    try:
        while True:
            data = await reader.read(1 << 18)
            queue.put_nowait((time.monotonic() + delay, data or None))
            if not data:
                break
    except OSError:
        queue.put_nowait((time.monotonic(), None))
    try:
        await task
    except OSError:
        pass


async def handle(creader, cwriter, target, delay):
    try:
        sreader, swriter = await asyncio.open_connection("127.0.0.1", target)
    except OSError:
        cwriter.close()
        return
    for w in (cwriter, swriter):
        w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    await asyncio.gather(pipe(creader, swriter, delay), pipe(sreader, cwriter, delay))
    cwriter.close()
    swriter.close()


async def main():
    listen, target, delay = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000
    server = await asyncio.start_server(lambda r, w: handle(r, w, target, delay),
                                        "127.0.0.1", listen)
    print("port=%d" % server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.stderr.write("usage: delay-relay.py LISTEN_PORT TARGET_PORT DELAY_MS\n")
        sys.exit(2)
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
