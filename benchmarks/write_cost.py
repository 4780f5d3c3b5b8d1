"""What one more `send()` costs the writer: the same 300-byte messages over loopback TCP, sent whole or in
two writes (as uvicorn sent a response's head and body). Prints the writer's CPU (user + system, from
getrusage) per message for each way, alternating, and the difference.

    python -m benchmarks.write_cost
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import time


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _reader(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        while sock.recv(65536):
            pass


def _send(conn: socket.socket, message: bytes, split: bool, count: int) -> float:
    half = len(message) // 2
    start = _cpu()
    for i in range(count):
        if split:
            conn.send(message[:half])
            conn.send(message[half:])
        else:
            conn.send(message)
        if i % 50 == 0:
            time.sleep(0.0005)  # let the reader keep up: traffic is not one long burst
    return (_cpu() - start) / count * 1e6


def main(argv: list[str] | None = None) -> None:
    description = __doc__.splitlines()[0]
    parser = argparse.ArgumentParser(prog="python -m benchmarks.write_cost", description=description)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        pid = os.fork()
        if pid == 0:
            _reader(server.getsockname()[1])
            os._exit(0)
        conn, _ = server.accept()
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        message = b"x" * 300
        for _ in range(args.rounds):
            two = _send(conn, message, True, args.messages)
            one = _send(conn, message, False, args.messages)
            print(f"two writes {two:6.2f} µs/message, one write {one:6.2f}, extra {two - one:6.2f} µs")
    os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
