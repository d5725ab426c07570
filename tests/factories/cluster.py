"""Local cluster helpers for the tests that start TensorFlow servers on 127.0.0.1."""

import socket


def free_ports(count):
    """``count`` distinct TCP ports free on 127.0.0.1 right now (all bound at once, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports
