#!/usr/bin/env python3
# Records the sd_notify(3) datagrams a daemon sends to NOTIFY_SOCKET, one line each, for a bounded time.
"""Usage: notify_receiver.py SOCKET_PATH LOG_PATH [SECONDS]

Binds a Unix datagram socket at SOCKET_PATH (mode 0666, so a daemon running as another user
can send to it, as it can to systemd's), appends each datagram to LOG_PATH with its newlines
turned into spaces, and exits after SECONDS (default 60) or on SIGTERM.
"""

import os
import signal
import socket
import sys
import time


def main():
    path, log_path = sys.argv[1], sys.argv[2]
    deadline = time.monotonic() + (float(sys.argv[3]) if len(sys.argv) > 3 else 60.0)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)
    os.chmod(path, 0o666)
    with open(log_path, "a") as log:
        while (left := deadline - time.monotonic()) > 0:
            receiver.settimeout(left)
            try:
                datagram = receiver.recv(4096)
            except socket.timeout:
                break
            log.write(datagram.decode(errors="replace").replace("\n", " ") + "\n")
            log.flush()


if __name__ == "__main__":
    main()
