"""The clients of make bench (contrib/bench): what they send arrives intact
and what they count is right.  bdat-client by DATA through smtpd, and by
BDAT (RFC 3030) through a small CHUNKING server here that checks the
framing; tls-client's STARTTLS sessions against smtpd; spawn-floor's runs
of a program; switch-floor's token round its ring.  BENCH_BIN names their directory (default: contrib/bench
beside the smtpd under test)."""

import os
import signal
import socketserver
import subprocess
import tempfile
import threading
import time
import unittest

import certs
from harness import RECORD, Smtpd, SmtpdTest, smtpd_path, strip_received

BENCH_BIN = os.environ.get("BENCH_BIN") or os.path.join(
    os.path.dirname(os.path.abspath(smtpd_path())), "contrib", "bench")
EX_UNAVAILABLE = 69


def tool(name):
    return os.path.join(BENCH_BIN, name)


def have_tools():
    return all(os.access(tool(n), os.X_OK)
               for n in ("bdat-client", "tls-client", "spawn-floor",
                         "switch-floor"))


def run(name, *args, timeout=60):
    return subprocess.run((tool(name),) + args, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)


class ChunkServer(socketserver.ThreadingTCPServer):
    """SMTP with CHUNKING (and PIPELINING unless told not to): keeps every
    message and the BDAT commands that made it."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, pipelining=True):
        super().__init__(("127.0.0.1", 0), ChunkHandler)
        self.pipelining = pipelining
        self.messages = []      # (how, bytes, [chunk sizes], [LAST flags])
        self.errors = []
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def stop(self):
        self.shutdown()
        self.server_close()


class ChunkHandler(socketserver.StreamRequestHandler):
    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")

    def handle(self):
        srv = self.server
        self.reply("220 chunks ESMTP")
        body, sizes, lasts = b"", [], []
        while True:
            line = self.rfile.readline()
            if not line:
                return
            verb = line.split()[0].upper() if line.split() else b""
            if verb == b"EHLO":
                ext = ["PIPELINING"] if srv.pipelining else []
                for e in ["chunks"] + ext + ["CHUNKING"]:
                    self.reply(("250 " if e == "CHUNKING" else "250-") + e)
            elif verb in (b"MAIL", b"RCPT"):
                self.reply("250 ok")
            elif verb == b"DATA":
                self.reply("354 go")
                self.wfile.flush()
                data = b""
                while True:
                    x = self.rfile.readline()
                    if x in (b".\r\n", b""):
                        break
                    data += x[1:] if x.startswith(b".") else x
                with srv.lock:
                    srv.messages.append(("DATA", data, [], []))
                self.reply("250 queued")
            elif verb == b"BDAT":
                args = line.split()
                n = int(args[1])
                body += self.rfile.read(n)
                sizes.append(n)
                lasts.append(len(args) > 2 and args[2].upper() == b"LAST")
                if lasts[-1]:
                    with srv.lock:
                        srv.messages.append(("BDAT", body, sizes, lasts))
                    body, sizes, lasts = b"", [], []
                    self.reply("250 queued")
                else:
                    self.reply("250 chunk")
            elif verb == b"QUIT":
                self.reply("221 bye")
                return
            else:
                with srv.lock:
                    srv.errors.append(line)
                self.reply("500 what")
            self.wfile.flush()


@unittest.skipUnless(have_tools(), "bench clients not built in " + BENCH_BIN)
class TestBdatClientChunks(unittest.TestCase):
    """BDAT framing, against a server that offers CHUNKING."""

    def send(self, pipelining, *args):
        srv = ChunkServer(pipelining)
        try:
            r = run("bdat-client", *args,
                    "127.0.0.1:%d" % srv.server_address[1])
        finally:
            srv.stop()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(srv.errors, [])
        return r.stdout.decode(), srv.messages

    def test_chunks_of_k_with_last_on_the_final_one(self):
        for pipelining in (True, False):
            out, msgs = self.send(pipelining, "-c", "3000", "-m", "4",
                                  "-s", "2", "-l", "10000")
            self.assertIn("4 messages of 10000 octets, 2 sessions, "
                          "BDAT chunks of 3000", out)
            self.assertRegex(out, r" [0-9.]+ msgs/s\n$")
            self.assertEqual(len(msgs), 4)
            for how, data, sizes, lasts in msgs:
                self.assertEqual(how, "BDAT")
                self.assertEqual(sizes, [3000, 3000, 3000, 1000])
                self.assertEqual(lasts, [False, False, False, True])
                self.assertEqual(len(data), 10000)

    def test_one_chunk_and_data_carry_the_same_message(self):
        _, bdat = self.send(True, "-m", "1", "-l", "65536")
        _, data = self.send(True, "-D", "-m", "1", "-l", "65536")
        self.assertEqual(bdat[0][2], [65536])
        self.assertEqual(data[0][0], "DATA")
        self.assertEqual(bdat[0][1], data[0][1])
        self.assertTrue(data[0][1].endswith(b"\r\n"))
        self.assertIn(b"\r\nSubject: bench\r\n\r\n", data[0][1])


@unittest.skipUnless(have_tools(), "bench clients not built in " + BENCH_BIN)
class TestBdatClientSmtpd(SmtpdTest):
    CONFIG = RECORD

    def test_data_messages_arrive_intact(self):
        r = run("bdat-client", "-D", "-m", "3", "-s", "2", "-l", "20000",
                "127.0.0.1:%d" % self.d.port)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"3 messages of 20000 octets, 2 sessions, DATA",
                      r.stdout)
        runs = self.d.wait_deliveries(3)
        self.assertEqual(len(runs), 3)
        for m in runs:
            self.assertEqual(len(strip_received(m["data"])[1]), 20000)

    def test_bdat_needs_chunking(self):
        c = self.connect()
        ehlo = c.cmd("EHLO client.test")
        c.cmd("QUIT")
        r = run("bdat-client", "-m", "2", "-l", "5000",
                "127.0.0.1:%d" % self.d.port)
        if "CHUNKING" in ehlo:
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(len(self.d.wait_deliveries(2)), 2)
        else:
            self.assertEqual(r.returncode, EX_UNAVAILABLE)
            self.assertIn(b"does not offer CHUNKING", r.stderr)


@unittest.skipUnless(have_tools(), "bench clients not built in " + BENCH_BIN)
class TestTlsClient(unittest.TestCase):
    def test_starttls_sessions_counted(self):
        d = Smtpd("", listen_opts="starttls", start=False)
        try:
            cert, key, _ = certs.server_cert(d.tmp)
            d.write_config("deliver discard\ntls certificate %s key %s"
                           % (cert, key))
            d.start()
            for flag in ((), ("-r",)):
                r = run("tls-client", *flag, "-n", "6", "-P", "2",
                        "127.0.0.1:%d" % d.port)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertRegex(
                    r.stdout.decode(),
                    r"^tls-client: 6 sessions \(.*\), 2 processes: .* "
                    r"[0-9.]+ sessions/s, [0-9]+% resumed, EHLO after the "
                    r"handshake: median [0-9.]+ ms, 90% [0-9.]+ ms\n$")
            self.assertTrue(d.wait_log(r" tls TLSv1\.3 TLS_", count=12))
        finally:
            d.cleanup()

    def test_no_starttls_fails(self):
        with Smtpd(RECORD) as d:
            r = run("tls-client", "-n", "1", "-P", "1",
                    "127.0.0.1:%d" % d.port)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(b"does not offer STARTTLS", r.stderr)


@unittest.skipUnless(have_tools(), "bench clients not built in " + BENCH_BIN)
class TestSpawnFloor(unittest.TestCase):
    def test_spawns_counted(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "out")
            prog = os.path.join(tmp, "prog")
            with open(prog, "w") as f:
                f.write("#!/bin/sh\ncat >>%s\n" % out)
            os.chmod(prog, 0o755)
            msg = os.path.join(tmp, "msg")
            with open(msg, "wb") as f:
                f.write(b"x" * 100 + b"\r\n")
            r = run("spawn-floor", "-n", "7", "-P", "3", "-i", msg, prog)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout.decode(),
                             r"^spawn-floor: 7 spawns, 3 in parallel: .* "
                             r"[0-9.]+ spawns/s, [0-9]+ us CPU/spawn\n$")
            with open(out, "rb") as f:
                self.assertEqual(f.read(), (b"x" * 100 + b"\r\n") * 7)

    def test_failing_program(self):
        r = run("spawn-floor", "-n", "2", "-P", "1", "/bin/false")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"2 of 2 runs failed", r.stderr)


@unittest.skipUnless(have_tools(), "bench clients not built in " + BENCH_BIN)
class TestSwitchFloor(unittest.TestCase):
    def test_hops_counted(self):
        # -n 7 with 3 members: whole rounds, 9 hops, which the token
        # itself counted.
        for flags, kind in (((), "processes"), (("-t",), "threads")):
            r = run("switch-floor", *flags, "-n", "7", "3")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout.decode(),
                             r"^switch-floor: 3 %s on CPU -?[0-9]+, 9 hops: "
                             r"[0-9.]+ s, [0-9.]+ us a hop\n$" % kind)

    def test_usage(self):
        r = run("switch-floor", "1")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"not a number from 2 to", r.stderr)
        self.assertEqual(run("switch-floor").returncode, 64)

    def test_broken_ring_ends(self):
        # A member killed: the others see the ring broken and exit,
        # rather than wait for the token for ever.
        p = subprocess.Popen((tool("switch-floor"), "-n", "100000000", "5"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            kids = []
            deadline = time.monotonic() + 5
            while len(kids) < 4 and time.monotonic() < deadline:
                with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
                    kids = [int(k) for k in f.read().split()]
            self.assertEqual(len(kids), 4)
            os.kill(kids[2], signal.SIGKILL)
            out, err = p.communicate(timeout=10)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"ring broken", err)
