#!/usr/bin/env python3
"""A Postfix policy server for the e2e tests.

policy_server.py PORTFILE LOGFILE MODE
Listens on a free 127.0.0.1 port (written to PORTFILE), and answers each
request (name=value lines, an empty line) by MODE:
  script  the action is ACTIONS[the recipient's local part], DUNNO for
          any other recipient
  hang    reads requests, never answers
  close   closes the connection on each request
Each request is appended to LOGFILE as one JSON line.
"""

import json
import os
import socket
import sys
import threading
import time

ACTIONS = {
    "ok": "OK",
    "reject": "REJECT",
    "rejtext": "REJECT No such luck",
    "defer": "DEFER",
    "greylist": "DEFER_IF_PERMIT 4.2.0 Greylisted",
    "busy": "421 4.7.0 Busy",
    "c554": "554 5.7.9 Policy says no",
    "prepend": "PREPEND X-Policy-Test: yes",
    "bad": "HOLD",
    "enh": "REJECT 5.1.1234 Four digits",
    "hi8": "REJECT caf\u00e9 ok",
    "esc": "HOLD \x1b[2Jred\rfake",
}

# Replies that are no single well-formed block: a block without an action
# and, a moment later, the action; an answer past smtpd's reply limit.
RAW = {
    "twoblk": [b"foo=bar\n\n", b"action=REJECT stale\n\n"],
    "big": [b"x=" + b"A" * 5000 + b"\naction=REJECT big\n\n"],
}


def action_for(req):
    return ACTIONS.get(req.get("recipient", "").split("@")[0], "DUNNO")


def serve(conn, mode, logfile):
    buf = b""
    with conn:
        while True:
            data = conn.recv(4096)
            if not data:
                return
            buf += data
            while b"\n\n" in buf:
                block, buf = buf.split(b"\n\n", 1)
                req = dict(line.split("=", 1) for line in
                           block.decode("utf-8", "replace").split("\n"))
                with open(logfile, "a") as f:
                    f.write(json.dumps(req) + "\n")
                if mode == "close":
                    return
                if mode == "hang":
                    continue
                raw = RAW.get(req.get("recipient", "").split("@")[0])
                for i, part in enumerate(raw or []):
                    if i > 0:
                        time.sleep(0.3)
                    conn.sendall(part)
                if raw is None:
                    conn.sendall(("action=%s\n\n"
                                  % action_for(req)).encode())


def main():
    portfile, logfile, mode = sys.argv[1:4]
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(s.getsockname()[1]))
    os.rename(portfile + ".tmp", portfile)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn, mode, logfile),
                         daemon=True).start()


if __name__ == "__main__":
    main()
