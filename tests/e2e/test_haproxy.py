"""A real HAProxy in front of two smtpd instances (proxy-protocol).

haproxy runs contrib/haproxy/haproxy.cfg (send-proxy-v2) and
haproxy-v1.cfg (send-proxy), moved to loopback: TCP mode, roundrobin,
health checks that expect the 220 greeting and carry a PROXY header
themselves. It sends every connection to one of two smtpd
`proxy-protocol from 127.0.0.1/32` listeners.
smtplib connects from 127.0.0.5: each delivery must name 127.0.0.5 as the
client, not haproxy's 127.0.0.1. Skipped when haproxy is not installed.
"""

import os
import re
import shutil
import signal
import smtplib
import subprocess
import tempfile
import time
import unittest

from harness import (REPO, RECORD, Client, Smtpd, free_port, listening_tcp,
                     strip_received, wait_for)

HAPROXY = (shutil.which("haproxy")
           or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin"))
SOURCE = "127.0.0.5"
NMAIL = 6
NBURST = 100

CONTRIB = os.path.join(REPO, "contrib", "haproxy")


def haproxy_config(name, front, p1, p2):
    """contrib/haproxy/NAME made to run here: loopback addresses and ports,
    checks every 200 ms, log to stderr; the rest as shipped."""
    with open(os.path.join(CONTRIB, name)) as f:
        text = f.read()
    subs = [
        (r"(?m)^(\s*)bind :25$", r"\1bind 127.0.0.1:%d" % front),
        (r"(?m)^(\s*server mx1) \S+", r"\1 127.0.0.1:%d" % p1),
        (r"(?m)^(\s*server mx2) \S+", r"\1 127.0.0.1:%d" % p2),
        (r"\binter \d+s\b", "inter 200ms"),
        (r"(?m)^(\s*log) stdout\b", r"\1 stderr"),
    ]
    for pattern, repl in subs:
        text, n = re.subn(pattern, repl, text)
        if n != 1:
            raise AssertionError("%s: %r found %d times" % (name, pattern, n))
    if os.getuid() != 0:        # cannot switch to the haproxy account
        text = re.sub(r"(?m)^\s*(user|group) .*\n", "", text)
    return text


def setUpModule():
    if HAPROXY is None:
        raise unittest.SkipTest("haproxy not installed")


class HaproxyCase(unittest.TestCase):
    CFG = None      # the file in contrib/haproxy

    @classmethod
    def setUpClass(cls):
        if cls.CFG is None:
            raise unittest.SkipTest("base class")
        cls.smtpds = []
        cls.proc = None
        cls.tmp = tempfile.mkdtemp(prefix="haproxy-e2e-")
        try:
            for _ in range(2):
                cls.smtpds.append(Smtpd(
                    RECORD, prefork=2,
                    listen_opts="proxy-protocol from 127.0.0.1/32"))
            cls.front = free_port()
            cls.cfg = os.path.join(cls.tmp, "haproxy.cfg")
            with open(cls.cfg, "w") as f:
                f.write(haproxy_config(cls.CFG, cls.front,
                                       cls.smtpds[0].port,
                                       cls.smtpds[1].port))
            check = subprocess.run([HAPROXY, "-c", "-f", cls.cfg],
                                   capture_output=True, text=True)
            if check.returncode != 0:
                raise RuntimeError("haproxy -c: %s%s"
                                   % (check.stdout, check.stderr))
            cls.errlog = os.path.join(cls.tmp, "haproxy.log")
            cls._err = open(cls.errlog, "wb")
            cls.proc = subprocess.Popen([HAPROXY, "-f", cls.cfg, "-db"],
                                        stdin=subprocess.DEVNULL,
                                        stdout=cls._err, stderr=cls._err)
            if not wait_for(lambda: cls.front in listening_tcp()
                            or cls.proc.poll() is not None, 5.0):
                raise RuntimeError("haproxy not listening")
            if cls.proc.poll() is not None:
                raise RuntimeError("haproxy exited: %s" % cls.haproxy_log())
            # both servers have passed a health check (greeting, QUIT)
            for d in cls.smtpds:
                if not d.wait_log(r"disconnect", 1, 5.0):
                    raise RuntimeError("no health check reached smtpd:\n"
                                       + d.log() + cls.haproxy_log())
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.proc is not None:
            if cls.proc.poll() is None:
                os.kill(cls.proc.pid, signal.SIGTERM)
                try:
                    cls.proc.wait(5)
                except subprocess.TimeoutExpired:
                    os.kill(cls.proc.pid, signal.SIGKILL)
                    cls.proc.wait()
            cls._err.close()
            cls.proc = None
        for d in cls.smtpds:
            d.cleanup()
        cls.smtpds = []
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def haproxy_log(cls):
        try:
            with open(cls.errlog, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, AttributeError):
            return ""

    def setUp(self):
        for d in self.smtpds:
            d.clear_out()

    def tearDown(self):
        for d in self.smtpds:
            rep = d.sanitizer_report()
            if rep:
                self.fail("sanitizer report in smtpd's log:\n" + rep)

    def send_mail(self, i):
        s = smtplib.SMTP("127.0.0.1", self.front, timeout=5,
                         source_address=(SOURCE, 0))
        try:
            code, _ = s.ehlo("client%d.test" % i)
            self.assertEqual(code, 250)
            refused = s.sendmail("a@example.com", ["b%d@example.com" % i],
                                 b"Subject: via haproxy %d\r\n\r\nhi\r\n" % i)
            self.assertEqual(refused, {})
            s.quit()
        finally:
            s.close()

    def test_round_robin_client_address(self):
        for i in range(NMAIL):
            self.send_mail(i)
        wait_for(lambda: sum(len(d.deliveries()) for d in self.smtpds)
                 >= NMAIL, 3.0)
        runs = [d.deliveries() for d in self.smtpds]
        counts = [len(r) for r in runs]
        self.assertEqual(sum(counts), NMAIL, counts)
        # roundrobin, equal weights: they take turns
        self.assertEqual(counts, [NMAIL // 2, NMAIL // 2],
                         "round robin: deliveries per smtpd")
        seen = set()
        for r in runs[0] + runs[1]:
            env = r["env"]
            self.assertEqual(env["SMTPD_CLIENT_ADDR"], SOURCE)
            self.assertTrue(env["SMTPD_CLIENT_PORT"].isdigit())
            received, rest = strip_received(r["data"])
            self.assertIsNotNone(received)
            self.assertIn(b"[" + SOURCE.encode() + b"]", received)
            seen.add(r["argv"][1])
        self.assertEqual(seen, {"b%d@example.com" % i for i in range(NMAIL)})
        for d in self.smtpds:
            self.assertIn("connect from %s:" % SOURCE, d.log())
            self.assertNotRegex(d.log(), r"proxy header .* refused")
        self.assertNotIn(" is DOWN", self.haproxy_log())

    def test_zy_burst_sessions_all_greeted(self):
        """NBURST sessions at once, each from a client address of its own,
        with the default limits: every one is greeted.  Only the address
        the header names counts for max-clients-per-address, never the
        proxy's own (which all the connections come from).  (Runs after
        the others: under load a health check may time out meanwhile.)"""
        clients = []
        try:
            for i in range(NBURST):
                clients.append(Client(self.front, timeout=20,
                                      source="127.0.1.%d" % (i + 1)))
            greetings = [c.recv_reply() for c in clients]
            self.assertEqual(greetings, ["220 mx.test ESMTP smtpd"] * NBURST)
            for c in clients:
                c.send("QUIT\r\n")
            for c in clients:
                c.expect("221 Bye")
        finally:
            for c in clients:
                c.close()
        for d in self.smtpds:
            self.assertNotIn("too many connections", d.log())
        # both servers up again for what follows
        wait_for(lambda: self.haproxy_log().count(" is UP")
                 >= self.haproxy_log().count(" is DOWN"), 5.0)

    def test_health_checks_carry_a_header(self):
        # a check is a real session: greeting, QUIT, nothing refused
        for d in self.smtpds:
            self.assertTrue(d.wait_log(r"disconnect commands=1 messages=0",
                                       2, 3.0), d.log())
            self.assertNotIn("not allowed", d.log())
            self.assertNotRegex(d.log(), r"proxy header .* refused")
        self.assertNotIn(" is DOWN", self.haproxy_log())


class TestHaproxyV1(HaproxyCase):
    CFG = "haproxy-v1.cfg"

    def test_config_is_v1(self):
        with open(self.cfg) as f:
            text = f.read()
        self.assertRegex(text, r"\bsend-proxy check\b")
        self.assertNotIn("send-proxy-v2", text)


class TestHaproxyV2(HaproxyCase):
    CFG = "haproxy.cfg"

    def test_config_is_v2(self):
        with open(self.cfg) as f:
            self.assertIn("send-proxy-v2 check", f.read())

    def test_zz_server_down_taken_out(self):
        # (runs last: stops the second smtpd) the health check notices
        self.smtpds[1].stop()
        self.assertTrue(wait_for(lambda: "mx2 is DOWN" in self.haproxy_log(),
                                 5.0, 0.05), self.haproxy_log())
        for i in range(4):
            self.send_mail(i)
        runs = self.smtpds[0].wait_deliveries(4, 3.0)
        self.assertEqual(len(runs), 4)
        for r in runs:
            self.assertEqual(r["env"]["SMTPD_CLIENT_ADDR"], SOURCE)


del HaproxyCase

if __name__ == "__main__":
    unittest.main()
