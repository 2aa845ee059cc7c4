"""A live-stream client in a process of its own that resumes and hangs up at once.

    python -m tests.hangup_child HOST PORT AFTER TOKEN

It asks for ``/feed/stream?after=AFTER``, reads until the first event arrives (so the server is
sending the backlog by then), and resets the connection: a client that goes away, short of being
polite. A process of its own rather than a thread, so that it acts at once whatever the server's
process is doing. It prints how many bytes it had received.
"""

from __future__ import annotations

import socket
import struct
import sys


def main(host: str, port: int, after: str, token: str) -> None:
    with socket.create_connection((host, port), timeout=20) as sock:
        sock.sendall(
            f"GET /feed/stream?after={after} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {token}\r\n\r\n".encode()
        )
        received = b""
        while b"\r\ndata: " not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        # Linger 0: close sends a reset at once, with the unread answer discarded.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    print(len(received), received[:15].decode(errors="replace"), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
