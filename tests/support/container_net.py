"""A listening socket on a container's own loopback, served from this process: how a test
puts a loopback server (the scripted model, a git server) where a workspace's processes
reach it without the sandbox admitting anything from the container to this machine.

    sock = listen_in_container(container_id, port)   # 127.0.0.1:port inside it (root only)
    server.serve_socket(sock)
"""

import ctypes
import socket
import subprocess

CLONE_NEWNET = 0x40000000


def listen_in_container(container: str, port: int = 0) -> socket.socket:
    """A listening socket on 127.0.0.1:`port` of the container's network namespace (this
    thread enters it just to make the socket, then comes back)."""
    inspect = ["docker", "inspect", "-f", "{{.State.Pid}}", container]
    pid = subprocess.run(inspect, capture_output=True, text=True, check=True).stdout.strip()
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/thread-self/ns/net") as own, open(f"/proc/{pid}/ns/net") as theirs:
        if libc.setns(theirs.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns into the container (run as root)")
        try:
            return socket.create_server(("127.0.0.1", port))
        finally:
            if libc.setns(own.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
