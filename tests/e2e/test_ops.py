"""Operations: the scoreboard as `smtpd -s` shows it (the control socket)
and as the `metrics` listener serves it (Prometheus text format)."""

import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import time
import unittest

import prom
from harness import (RECORD, Smtpd, SmtpdTest, read_pid, smtpd_path,
                     wait_for)

TOO_MANY = "421 mx.test Service not available, too many connections"


def http(port, request, timeout=5.0):
    """Send request bytes, return everything until the server closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk
    finally:
        s.close()


def scrape(port):
    """(status line, headers dict, body) of GET /metrics."""
    raw = http(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {}
    for h in lines[1:]:
        k, _, v = h.partition(":")
        headers[k.strip().lower()] = v.strip()
    return lines[0], headers, body.decode()


def metric(body, name):
    """The value of the sample called name (with its labels), or None."""
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def total(text, key):
    """A line `key  N` of smtpd -s."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == key:
            return int(parts[1])
    return None


class TestStatus(SmtpdTest):
    CONFIG = RECORD

    def test_socket_is_private(self):
        st = os.stat(self.d.control)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(st.st_uid, os.geteuid())

    def test_status_shows_sessions_and_totals(self):
        rc, before = self.d.status()
        self.assertEqual(rc, 0, before)
        c = self.session()
        self.assertEqual(self.transaction(c, "a@example.org",
                                          ["b@example.net"])[:3], "250")
        c.check("MAIL FROM:<a@example.org>", "250 OK")
        rc, out = self.d.status()
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"smtpd \S+, pid %d, up " % self.d.pid)
        self.assertIn("config %s, loaded " % os.path.realpath(self.d.conf),
                      out)
        self.assertRegex(out, r"children \d+ idle, 1 busy")
        self.assertRegex(out, r"\n\d+ +mail +127\.0\.0\.1 +\d+s +1\n")
        self.assertEqual(total(out, "messages.2xx"),
                         total(before, "messages.2xx") + 1)
        self.assertEqual(total(out, "deliveries.0"),
                         total(before, "deliveries.0") + 1)
        self.assertGreater(total(out, "connections_accepted"),
                           total(before, "connections_accepted"))
        c.check("QUIT", "221 Bye")
        c.expect_closed()
        self.assertTrue(wait_for(lambda: total(self.d.status()[1],
                                               "sessions.quit") ==
                                 total(before, "sessions.quit") + 1))

    def test_verbose_lists_idle_children(self):
        rc, out = self.d.status()
        self.assertNotRegex(out, r"\n\d+ +idle ")
        rc, out = self.d.status("-v")
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"\n\d+ +idle +- ")
        self.assertIn("OCTETS", out)

    def test_counters_survive_reload(self):
        c = self.session()
        self.transaction(c, "a@example.org", ["b@example.net"])
        c.check("QUIT", "221 Bye")
        before = self.d.status()[1]
        self.d.reload()
        self.assertTrue(wait_for(lambda: total(self.d.status()[1],
                                               "reloads.ok") ==
                                 total(before, "reloads.ok") + 1))
        after = self.d.status()[1]
        self.assertEqual(total(after, "messages.2xx"),
                         total(before, "messages.2xx"))


class TestNoDaemon(unittest.TestCase):
    def test_exit_1_when_nobody_answers(self):
        d = Smtpd(RECORD, start=False)
        try:
            rc, out = d.status()
            self.assertEqual(rc, 1)
            self.assertIn("no daemon answers on %s" % d.control, out)
        finally:
            d.cleanup()

    def test_directory_is_made(self):
        d = Smtpd(RECORD + "\ncontrol @TMP@/run/smtpd.sock")
        try:
            path = os.path.join(d.tmp, "run", "smtpd.sock")
            self.assertTrue(stat.S_ISSOCK(os.stat(path).st_mode))
            rc, out = d.status()
            self.assertEqual(rc, 0, out)
            d.stop()
            self.assertFalse(os.path.exists(path))
        finally:
            d.cleanup()


class TestControlPath(unittest.TestCase):
    def test_reload_moves_the_socket(self):
        d = Smtpd(RECORD)
        try:
            old = d.control
            d.control = os.path.join(d.tmp, "moved.sock")
            d.reload(RECORD + "\ncontrol %s" % d.control)
            self.assertTrue(wait_for(lambda: os.path.exists(d.control)))
            self.assertFalse(os.path.exists(old))
            rc, out = d.status()
            self.assertEqual(rc, 0, out)
        finally:
            d.cleanup()

    def test_pidfile_made_for_us(self):
        # Not started as root, in a directory it may not write: the file
        # made for it there is written in place.
        if os.getuid() != 0 or shutil.which("setpriv") is None:
            self.skipTest("needs root and setpriv")
        nobody = pwd.getpwnam("nobody")
        d = Smtpd(RECORD + "\npidfile @TMP@/run/smtpd.pid", start=False,
                  wrapper=["setpriv", "--reuid=%d" % nobody.pw_uid,
                           "--regid=%d" % nobody.pw_gid, "--clear-groups",
                           "--"])
        try:
            run = os.path.join(d.tmp, "run")
            os.mkdir(run, 0o755)
            path = os.path.join(run, "smtpd.pid")
            open(path, "w").close()
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
            d.start()
            self.assertTrue(wait_for(lambda: read_pid(path) == d.pid, 5),
                            d.log())
        finally:
            d.cleanup()

    def test_master_not_dumpable(self):
        # The master holds the TLS keys: not dumpable, so its memory,
        # environment and descriptors under /proc are root's even when it
        # runs as nobody (nobody's other processes cannot trace it or read
        # its memory).
        if os.getuid() != 0 or shutil.which("setpriv") is None:
            self.skipTest("needs root and setpriv")
        nobody = pwd.getpwnam("nobody")
        d = Smtpd(RECORD, start=False,
                  wrapper=["setpriv", "--reuid=%d" % nobody.pw_uid,
                           "--regid=%d" % nobody.pw_gid, "--clear-groups",
                           "--"])
        try:
            d.start()
            with open("/proc/%d/status" % d.pid) as f:
                uids = [line.split()[1] for line in f
                        if line.startswith("Uid:")]
            self.assertEqual(uids, [str(nobody.pw_uid)])
            for name in ("mem", "environ", "fd"):
                self.assertEqual(os.stat("/proc/%d/%s" % (d.pid, name))
                                 .st_uid, 0, name)
        finally:
            d.cleanup()

    def test_pidfile_never_seen_empty(self):
        # Written beside and renamed: a reader that finds the file finds
        # the pid in it, however soon it looks.
        d = Smtpd(RECORD + "\npidfile @TMP@/p0.pid")
        try:
            seen = set()
            for i in range(1, 31):
                p = os.path.join(d.tmp, "p%d.pid" % (i % 2))
                d.reload(RECORD + "\npidfile %s" % p)
                t = time.monotonic() + 5
                while time.monotonic() < t:
                    try:
                        with open(p) as f:
                            text = f.read()
                    except FileNotFoundError:
                        continue
                    seen.add(text)
                    if text:
                        break
                self.assertTrue(d.wait_log("reloaded configuration", i))
            self.assertEqual(seen, {"%d\n" % d.pid})
        finally:
            d.cleanup()

    def test_reload_moves_the_pidfile(self):
        d = Smtpd(RECORD + "\npidfile @TMP@/p1.pid")
        try:
            p1, p2 = (os.path.join(d.tmp, n) for n in ("p1.pid", "p2.pid"))
            self.assertTrue(wait_for(lambda: os.path.exists(p1)))
            d.reload(RECORD + "\npidfile @TMP@/p2.pid")
            self.assertTrue(wait_for(lambda: os.path.exists(p2)), d.log())
            with open(p2) as f:
                self.assertEqual(int(f.read()), d.pid)
            self.assertFalse(os.path.exists(p1))
            # one that cannot be written leaves the old one
            d.reload(RECORD + "\npidfile @TMP@/no/such/dir/p3.pid")
            self.assertTrue(d.wait_log(r"pidfile stays at %s" % p2),
                            d.log())
            self.assertTrue(os.path.exists(p2))
            # none named, with -d: none at all
            d.reload(RECORD)
            self.assertTrue(wait_for(lambda: not os.path.exists(p2)))
            d.signal(signal.SIGTERM)
            self.assertEqual(d.wait_exit(10), 0)
        finally:
            d.cleanup()

    def start_fails(self, path, why):
        """A start with `control path` exits 1, its log holding why (in
        which @TMP@ stands for the daemon's directory)."""
        d = Smtpd(RECORD + "\ncontrol " + path, start=False)
        try:
            d.start(wait=False)
            self.assertEqual(d.wait_exit(10), 1)
            self.assertIn(why.replace("@TMP@", d.tmp), d.log())
        finally:
            d.cleanup()

    def test_explicit_path_that_cannot_be_made(self):
        # only the last directory is made: seen when the file is read
        self.start_fails("@TMP@/no/such/dir/smtpd.sock",
                         ":7: control: \"@TMP@/no/such/dir/smtpd.sock\" is "
                         "in a directory that cannot be created")
        # a directory the kernel refuses: seen at the start
        self.start_fails("/proc/smtpd-e2e-none/smtpd.sock",
                         "control /proc/smtpd-e2e-none/smtpd.sock: cannot "
                         "listen")


class TestMetrics(SmtpdTest):
    CONFIG = RECORD + """
max-clients 1
listen on 127.0.0.1 port @PORT@
listen on 127.0.0.1 port @PORT2@ metrics"""
    OPTS = {"prefork": 1}

    def test_scrape(self):
        c = self.session()
        self.transaction(c, "a@example.org", ["b@example.net"])
        c.check("QUIT", "221 Bye")
        c.expect_closed()
        line, headers, body = scrape(self.d.port2)
        self.assertEqual(line, "HTTP/1.1 200 OK")
        self.assertEqual(headers["content-type"],
                         "text/plain; version=0.0.4")
        self.assertEqual(int(headers["content-length"]),
                         len(body.encode()))
        self.assertGreaterEqual(
            metric(body, 'smtpd_messages_total{reply="2xx"}'), 1)
        self.assertGreaterEqual(
            metric(body, "smtpd_delivery_duration_seconds_count"), 1)
        self.assertGreaterEqual(
            metric(body, 'smtpd_message_size_bytes_bucket{le="+Inf"}'), 1)
        self.assertEqual(metric(body, 'smtpd_build_info{version="1.0"}'), 1)
        self.assertIn("# TYPE smtpd_sessions gauge", body)
        self.assertIn('smtpd_children{state="idle"}', body)
        # No client addresses: those are for smtpd -s and the logs.
        self.assertNotIn("127.0.0.1", body)

    @unittest.skipUnless(prom.available(), "no prometheus package")
    def test_promtool_check_metrics(self):
        clean, out = prom.promtool_check_metrics(scrape(self.d.port2)[2])
        self.assertTrue(clean, out)
        self.assertEqual(out.strip(), "")

    def test_errors(self):
        for req, status in (
                (b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "405"),
                (b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n", "404"),
                # RFC 9112 3.2: exactly one Host in HTTP/1.1
                (b"GET /metrics HTTP/1.1\r\n\r\n", "400"),
                (b"GET /metrics HTTP/1.1\r\nHost: x\r\nhost: y\r\n\r\n",
                 "400"),
                (b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
                (b"GET ftp://x/metrics HTTP/1.1\r\nHost: x\r\n\r\n",
                 "400"),
                (b"GET /metrics SMTP/1.0\r\n\r\n", "400"),
                (b"EHLO x\r\n\r\n", "400"),
                # a NUL would hide the end of the headers: 400 at once
                (b"GET /metrics HTTP/1.1\r\n\0\r\n\r\n", "400"),
                (b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n",
                 "400")):
            with self.subTest(req=req[:30]):
                raw = http(self.d.port2, req)
                self.assertTrue(raw.startswith(b"HTTP/1.1 " +
                                               status.encode()), raw[:80])

    def test_request_forms(self):
        # HTTP/1.0 needs no Host; a server takes the absolute form (RFC
        # 9112 3.2.2) and passes over empty lines before the request (2.2).
        for req in (b"GET /metrics HTTP/1.0\r\n\r\n",
                    b"GET /metrics?x=1 HTTP/1.1\r\nhOsT: x\r\n\r\n",
                    b"GET http://127.0.0.1:1/metrics HTTP/1.1\r\n"
                    b"Host: 127.0.0.1:1\r\n\r\n",
                    b"GET HTTP://x/metrics?y HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"\r\n\r\nGET /metrics HTTP/1.1\nHost: x\n\n"):
            with self.subTest(req=req[:40]):
                raw = http(self.d.port2, req)
                self.assertTrue(raw.startswith(b"HTTP/1.1 200 OK\r\n"),
                                raw[:80])
                self.assertIn(b"\nsmtpd_build_info{", raw)

    def test_head(self):
        # RFC 9110 9.3.2: the headers of the GET, no body.
        raw = http(self.d.port2, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        head, sep, body = raw.partition(b"\r\n\r\n")
        self.assertEqual(sep, b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 OK\r\n"), head)
        length = re.search(rb"\r\nContent-Length: (\d+)", head)
        self.assertTrue(length and int(length.group(1)) > 100, head)
        self.assertEqual(body, b"")
        raw = http(self.d.port2, b"PUT /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn(b"\r\nAllow: GET, HEAD\r\n", raw)

    def test_slow_request_is_closed(self):
        s = socket.create_connection(("127.0.0.1", self.d.port2), timeout=10)
        try:
            s.sendall(b"GET /metrics HTTP/1.1\r\n")
            t0 = time.monotonic()
            self.assertEqual(s.recv(100), b"")
            self.assertLess(time.monotonic() - t0, 8)
        finally:
            s.close()

    def test_status_shows_the_scrape_itself(self):
        # The child that served a session serves a scrape next: smtpd -s
        # shows the scraper's address and age, not the session's.
        c = self.session()
        self.transaction(c, "a@example.org", ["b@example.net"])
        c.check("QUIT", "221 Bye")
        c.expect_closed()
        s = socket.socket()
        self.addCleanup(s.close)
        s.bind(("127.0.0.2", 0))
        s.connect(("127.0.0.1", self.d.port2))
        s.sendall(b"GET /metrics HTTP/1.1\r\n")      # not the end yet
        self.assertTrue(wait_for(lambda: "metrics" in self.d.status()[1],
                                 5.0))
        out = self.d.status()[1]
        self.assertRegex(out, r"\n\d+ +metrics +127\.0\.0\.2 +[01]s +0\n",
                         out)

    def test_scrape_children_past_max_clients_go(self):
        # Scrapes while max-clients (1) are busy get children of their
        # own; idle again, those past max-clients exit.
        self.assertTrue(wait_for(lambda: " 0 busy" in self.d.status()[1],
                                 5.0))          # the last test's session
        c = self.session()
        held = []
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", self.d.port2))
            self.addCleanup(s.close)
            s.sendall(b"GET /metrics HTTP/1.1\r\n")
            held.append(s)
        self.assertTrue(wait_for(lambda: len(re.findall(
            r"\n\d+ +metrics ", self.d.status()[1])) == 2, 5.0))
        for s in held:
            s.sendall(b"Host: x\r\n\r\n")
            self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 200 OK"))
            s.close()
        c.check("QUIT", "221 Bye")
        c.expect_closed()
        self.assertTrue(wait_for(lambda: "children 1 idle, 0 busy" in
                                 self.d.status()[1], 5.0),
                        self.d.status()[1])

    def test_scrape_at_max_clients(self):
        c1 = self.session()
        c2 = self.connect(greeting=False)
        c2.expect(TOO_MANY)
        line, _, body = scrape(self.d.port2)
        self.assertEqual(line, "HTTP/1.1 200 OK")
        self.assertEqual(metric(body, 'smtpd_sessions{state="helo"}'), 1)
        self.assertGreaterEqual(metric(
            body, 'smtpd_connections_refused_total{reason="max_clients"}'),
            1)
        c1.check("NOOP", "250 OK")


@unittest.skipUnless(prom.available(), "no prometheus package")
class TestPrometheus(SmtpdTest):
    """A real Prometheus (its own configuration and data, loopback only)
    scrapes the listener."""
    CONFIG = RECORD + """
listen on 127.0.0.1 port @PORT@
listen on 127.0.0.1 port @PORT2@ metrics"""

    def test_scrapes(self):
        before = metric(scrape(self.d.port2)[2],
                        'smtpd_messages_total{reply="2xx"}')
        for _ in range(3):
            c = self.session()
            self.transaction(c, "a@example.org", ["b@example.net"])
            c.check("QUIT", "221 Bye")
        with prom.Prometheus("127.0.0.1:%d" % self.d.port2,
                             self.d.tmp) as p:
            self.assertEqual(p.wait_value('up{job="test"}',
                                          lambda v: v == 1), 1, p.log())
            self.assertEqual(p.wait_value(
                'smtpd_messages_total{job="test",reply="2xx"}',
                lambda v: v == before + 3), before + 3, p.log())


class TestConfig(unittest.TestCase):
    def check_conf(self, text):
        d = Smtpd(start=False)
        try:
            d.write_config(text, raw=True)
            r = subprocess.run([smtpd_path(), "-n", "-f", d.conf],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=10)
            return r.returncode, (r.stdout + r.stderr).decode()
        finally:
            d.cleanup()

    def test_metrics_needs_port(self):
        rc, out = self.check_conf("deliver discard\n"
                                  "listen on 127.0.0.1 port 25\n"
                                  "listen on 127.0.0.1 metrics\n")
        self.assertEqual(rc, 1)
        self.assertIn(":3: listen: metrics needs an explicit port", out)

    def test_metrics_alone(self):
        rc, out = self.check_conf("deliver discard\n"
                                  "listen on 127.0.0.1 port 9154 metrics "
                                  "proxy-protocol\n")
        self.assertEqual(rc, 1)
        self.assertIn(":2: listen: metrics takes no other option", out)

    def test_canonical(self):
        rc, out = self.check_conf("deliver discard\ncontrol /run/x.sock\n"
                                  "listen on ::1 port 9154 metrics\n")
        self.assertEqual(rc, 0, out)
        self.assertIn("control /run/x.sock\n", out)
        self.assertIn("listen on ::1 port 9154 metrics\n", out)


if __name__ == "__main__":
    unittest.main()
