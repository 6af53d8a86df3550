"""A real HAProxy in front of two smtpd instances (PROTOCOL.md 13.3).

haproxy (TCP mode, roundrobin, health checks that expect the 220 greeting
and carry a PROXY header themselves) listens on loopback and sends every
connection to one of two smtpd `proxy-protocol from 127.0.0.1/32`
listeners, once with `send-proxy` (v1) and once with `send-proxy-v2`.
smtplib connects from 127.0.0.5: each delivery must name 127.0.0.5 as the
client, not haproxy's 127.0.0.1. Skipped when haproxy is not installed.
"""

import os
import shutil
import signal
import smtplib
import subprocess
import tempfile
import time
import unittest

from harness import (RECORD, Smtpd, _listening_tcp, free_port,
                     strip_received, wait_for)

HAPROXY = shutil.which("haproxy")
SOURCE = "127.0.0.5"
NMAIL = 6

CONFIG = """\
global
    maxconn 64

defaults
    mode tcp
    timeout connect 2s
    timeout client 10s
    timeout server 10s

frontend smtp
    bind 127.0.0.1:{front}
    default_backend smtpd

backend smtpd
    balance roundrobin
    option tcp-check
    tcp-check expect string 220
    tcp-check send QUIT\\r\\n
    tcp-check expect string 221
    default-server {send} check check-send-proxy inter 200ms fall 2 rise 1
    server s1 127.0.0.1:{p1}
    server s2 127.0.0.1:{p2}
"""


def setUpModule():
    if HAPROXY is None:
        raise unittest.SkipTest("haproxy not installed")


class HaproxyCase(unittest.TestCase):
    SEND = None     # "send-proxy" or "send-proxy-v2"

    @classmethod
    def setUpClass(cls):
        if cls.SEND is None:
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
                f.write(CONFIG.format(front=cls.front, send=cls.SEND,
                                      p1=cls.smtpds[0].port,
                                      p2=cls.smtpds[1].port))
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
            if not wait_for(lambda: cls.front in _listening_tcp()
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

    def test_health_checks_carry_a_header(self):
        # a check is a real session: greeting, QUIT, nothing refused
        for d in self.smtpds:
            self.assertTrue(d.wait_log(r"disconnect commands=1 messages=0",
                                       2, 3.0), d.log())
            self.assertNotIn("not allowed", d.log())
            self.assertNotRegex(d.log(), r"proxy header .* refused")
        self.assertNotIn(" is DOWN", self.haproxy_log())


class TestHaproxyV1(HaproxyCase):
    SEND = "send-proxy"


class TestHaproxyV2(HaproxyCase):
    SEND = "send-proxy-v2"


del HaproxyCase

if __name__ == "__main__":
    unittest.main()
