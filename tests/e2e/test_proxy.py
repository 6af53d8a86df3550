"""The PROXY protocol (listener `proxy-protocol`).

Raw sockets: every header is built by hand here, v1 and v2, valid and
malformed. A refused header closes the connection without a byte and is
logged as "proxy header from ADDR refused: WHY".
"""

import re
import signal
import socket
import struct
import time
import unittest

import certs
from harness import (OK_ID, RECORD, Smtpd, SmtpdTest, ehlo_lines,
                     strip_received, wait_for)

DATA_354 = "354 End data with <CR><LF>.<CR><LF>"
GREETING = "220 mx.test ESMTP smtpd"
TOO_MANY = "421 mx.test Service not available, too many connections"
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
REFUSED_RE = r"proxy header from \S+ refused: "


def v1(proto, src, dst, sport, dport):
    return ("PROXY %s %s %s %s %s\r\n"
            % (proto, src, dst, sport, dport)).encode()


def v2(cmd, fam, proto, payload=b"", length=None, ver=2, sig=V2_SIG):
    """A v2 header: cmd 0 LOCAL / 1 PROXY, fam 0..3, proto 0..2."""
    if length is None:
        length = len(payload)
    return (sig + bytes([(ver << 4) | cmd, (fam << 4) | proto])
            + struct.pack("!H", length) + payload)


def inet_block(src, dst, sport, dport):
    return (socket.inet_pton(socket.AF_INET, src)
            + socket.inet_pton(socket.AF_INET, dst)
            + struct.pack("!HH", sport, dport))


def inet6_block(src, dst, sport, dport):
    return (socket.inet_pton(socket.AF_INET6, src)
            + socket.inet_pton(socket.AF_INET6, dst)
            + struct.pack("!HH", sport, dport))


def tlv(t, value):
    return bytes([t]) + struct.pack("!H", len(value)) + value


# What haproxy appends: ALPN, AUTHORITY, CRC32C (not checked by smtpd),
# UNIQUE_ID, NOOP, and an SSL TLV with sub-TLVs.
TLVS = (tlv(0x01, b"smtp") + tlv(0x02, b"mx.example.com")
        + tlv(0x03, b"\x12\x34\x56\x78") + tlv(0x05, b"uid-0001")
        + tlv(0x04, b"") + tlv(0x20, b"\x07" + b"\x00\x00\x00\x00"
                                + tlv(0x21, b"TLSv1.3")))


def sock_nodelay(c):
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class ProxyCase(SmtpdTest):
    CONFIG = RECORD
    OPTS = {"listen_opts": "proxy-protocol timeout 2", "prefork": 3}

    def raw(self, **kw):
        c = self.connect(greeting=False, **kw)
        sock_nodelay(c)
        return c

    def deliver_one(self, c, rcpt="b@example.com"):
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<%s>" % rcpt, "250 OK")
        c.check("DATA", DATA_354)
        c.send(b"Subject: proxied\r\n\r\nhi\r\n.\r\n")
        c.expect_match(OK_ID)
        runs = self.d.wait_deliveries(1)
        self.assertEqual(len(runs), 1)
        return runs[0]

    def assert_client(self, run, addr, port):
        env = run["env"]
        self.assertEqual((env["SMTPD_CLIENT_ADDR"], env["SMTPD_CLIENT_PORT"]),
                         (addr, str(port)))
        received, rest = strip_received(run["data"])
        self.assertIsNotNone(received, run["data"][:200])
        self.assertIn(addr.encode(), received)
        self.assertEqual(rest, b"Subject: proxied\r\n\r\nhi\r\n")

    def refused_count(self):
        return len(re.findall(REFUSED_RE, self.d.log()))


class TestProxyValid(ProxyCase):
    def header_then_ehlo(self, header, addr, port, split=None):
        c = self.raw()
        peer_port = c.local_port
        if split is None:
            c.send(header + b"EHLO client.test\r\n")
        else:
            # several writes, the last one with EHLO behind the header
            # several writes; no greeting before the header is complete;
            # the last write carries EHLO behind the end of the header
            last = (len(header) - 1) // split * split
            for i in range(0, last, split):
                c.send(header[i:i + split])
                time.sleep(0.02)
            c.assert_silent(0.05)
            c.send(header[last:] + b"EHLO client.test\r\n")
        c.expect(GREETING)
        c.expect(ehlo_lines())
        run = self.deliver_one(c)
        if addr is None:        # the socket's peer
            addr, port = "127.0.0.1", peer_port
        self.assert_client(run, addr, port)
        c.check("QUIT", "221 Bye")
        c.expect_closed()
        return run

    def test_v1_tcp4_ehlo_same_write(self):
        self.header_then_ehlo(v1("TCP4", "192.0.2.7", "198.51.100.1",
                                 40000, 25), "192.0.2.7", 40000)
        self.assertIn("connect from 192.0.2.7:40000", self.d.log())

    def test_v1_tcp6_ehlo_same_write(self):
        self.header_then_ehlo(v1("TCP6", "2001:db8::7", "2001:db8::1",
                                 0, 25), "2001:db8::7", 0)

    def test_v1_split_over_writes(self):
        hdr = v1("TCP4", "203.0.113.9", "198.51.100.1", 65535, 25)
        self.header_then_ehlo(hdr, "203.0.113.9", 65535, split=1)
        self.d.clear_out()
        self.header_then_ehlo(hdr, "203.0.113.9", 65535, split=7)

    def test_v1_unknown_keeps_peer(self):
        self.header_then_ehlo(b"PROXY UNKNOWN\r\n", None, None)
        self.d.clear_out()
        self.header_then_ehlo(
            b"PROXY UNKNOWN ffff::1 ffff::2 1 2 whatever\r\n", None, None)

    def test_v1_longest_unknown(self):
        hdr = b"PROXY UNKNOWN " + b"x" * (107 - 16) + b"\r\n"
        self.assertEqual(len(hdr), 107)
        self.header_then_ehlo(hdr, None, None)

    def test_v2_local_keeps_peer(self):
        self.header_then_ehlo(v2(0, 0, 0), None, None)
        self.d.clear_out()
        self.header_then_ehlo(v2(0, 0, 0, b"junk junk"), None, None)
        self.d.clear_out()
        # LOCAL with an INET block: still the socket's peer
        self.header_then_ehlo(
            v2(0, 1, 1, inet_block("192.0.2.1", "192.0.2.2", 1, 2)),
            None, None)
        self.d.clear_out()
        # LOCAL ignores family and protocol: no block for them, or any
        self.header_then_ehlo(v2(0, 1, 1), None, None)
        self.d.clear_out()
        self.header_then_ehlo(v2(0, 2, 2, b"\0" * 12), None, None)
        self.d.clear_out()
        self.header_then_ehlo(v2(0, 15, 15), None, None)

    def test_v2_proxy_unspec_and_unix_keep_peer(self):
        self.header_then_ehlo(v2(1, 0, 0, b"opaque"), None, None)
        self.d.clear_out()
        self.header_then_ehlo(
            v2(1, 3, 1, b"/run/a".ljust(108, b"\0") + b"/run/b".ljust(
                108, b"\0")), None, None)
        self.d.clear_out()
        # INET with protocol UNSPEC: opaque payload, peer kept
        self.header_then_ehlo(v2(1, 1, 0, b"xy"), None, None)

    def test_v2_inet_with_tlvs(self):
        blk = inet_block("192.0.2.44", "198.51.100.1", 51234, 25)
        self.header_then_ehlo(v2(1, 1, 1, blk + TLVS), "192.0.2.44", 51234)
        self.d.clear_out()
        # malformed TLVs are not checked
        self.header_then_ehlo(v2(1, 1, 1, blk + b"\x05\xff"), "192.0.2.44",
                              51234)
        self.d.clear_out()
        # DGRAM too
        self.header_then_ehlo(v2(1, 1, 2, blk), "192.0.2.44", 51234)

    def test_v2_inet6_with_tlvs(self):
        blk = inet6_block("2001:db8:1::44", "2001:db8::1", 443, 25)
        self.header_then_ehlo(v2(1, 2, 1, blk + TLVS), "2001:db8:1::44", 443)

    def test_v2_split_over_writes(self):
        blk = inet_block("192.0.2.45", "198.51.100.1", 1025, 25)
        self.header_then_ehlo(v2(1, 1, 1, blk + TLVS), "192.0.2.45", 1025,
                              split=5)


# (name, header bytes, the reason the log must give: a regex)
MALFORMED = [
    # 13.1 v1
    ("PROXY1", b"PROXY1 TCP4 192.0.2.1 192.0.2.2 1 2\r\n", "wrong signature"),
    ("two spaces", b"PROXY  TCP4 192.0.2.1 192.0.2.2 1 2\r\n",
     "wrong signature"),
    ("lowercase", b"proxy TCP4 192.0.2.1 192.0.2.2 1 2\r\n",
     "wrong signature"),
    ("not a header", b"EHLO client.test\r\n", "wrong signature"),
    ("TCP5", b"PROXY TCP5 192.0.2.1 192.0.2.2 1 2\r\n",
     "unrecognised family"),
    ("TCP", b"PROXY TCP 192.0.2.1 192.0.2.2 1 2\r\n", "unrecognised family"),
    ("TCP46", b"PROXY TCP46 192.0.2.1 192.0.2.2 1 2\r\n",
     "unrecognised family"),
    ("UDP4", b"PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n",
     "unrecognised protocol"),
    ("missing port", b"PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n", "malformed"),
    ("missing all", b"PROXY TCP4\r\n", "malformed"),
    ("two spaces between fields", b"PROXY TCP4 192.0.2.1  192.0.2.2 1 2\r\n",
     "malformed"),
    ("leading zero address", b"PROXY TCP4 192.0.2.01 192.0.2.2 1 2\r\n",
     "address malformed|not IPv4"),
    ("leading zeros address", b"PROXY TCP4 010.0.0.1 192.0.2.2 1 2\r\n",
     "address malformed|not IPv4"),
    ("leading zeros dst", b"PROXY TCP4 192.0.2.1 192.000.2.2 1 2\r\n",
     "address malformed|not IPv4"),
    ("bad address char", b"PROXY TCP4 192.0.2.g 192.0.2.2 1 2\r\n",
     "address malformed"),
    ("v6 in TCP4", b"PROXY TCP4 ::1 192.0.2.2 1 2\r\n", "not IPv4"),
    ("v4 in TCP6", b"PROXY TCP6 2001:db8::1 192.0.2.2 1 2\r\n", "not IPv6"),
    ("bad v6", b"PROXY TCP6 2001:db8:::1 2001:db8::2 1 2\r\n",
     "address malformed|not IPv6"),
    ("leading zero port", b"PROXY TCP4 192.0.2.1 192.0.2.2 01 2\r\n",
     "port malformed"),
    ("leading zero dport", b"PROXY TCP4 192.0.2.1 192.0.2.2 1 025\r\n",
     "port malformed"),
    ("signed port", b"PROXY TCP4 192.0.2.1 192.0.2.2 +1 2\r\n",
     "port malformed"),
    ("port 65536", b"PROXY TCP4 192.0.2.1 192.0.2.2 65536 2\r\n",
     "port out of bounds"),
    ("dport 65536", b"PROXY TCP4 192.0.2.1 192.0.2.2 1 65536\r\n",
     "port out of bounds"),
    ("port 99999", b"PROXY TCP4 192.0.2.1 192.0.2.2 99999 2\r\n",
     "port out of bounds"),
    ("bare LF", b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n", "malformed"),
    ("bare LF unknown", b"PROXY UNKNOWN\n", "malformed"),
    ("trailing space", b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2 \r\n",
     "extraneous data"),
    ("fifth field", b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2 3\r\n",
     "extraneous data"),
    ("108 octets", b"PROXY UNKNOWN " + b"x" * (108 - 16) + b"\r\n",
     "too long"),
    ("no LF in 200", b"PROXY UNKNOWN " + b"x" * 200, "too long"),
    # 13.2 v2
    ("v2 signature", v2(1, 1, 1, inet_block("192.0.2.1", "192.0.2.2", 1, 2),
                        sig=V2_SIG[:-1] + b"\r"), "wrong signature"),
    ("v2 signature 5", b"\r\n\r\n\x01" + V2_SIG[5:] + b"\x21\x11\x00\x0c"
     + inet_block("192.0.2.1", "192.0.2.2", 1, 2), "wrong signature"),
    ("v2 version 1", v2(1, 1, 1, inet_block("192.0.2.1", "192.0.2.2", 1, 2),
                        ver=1), "bad version"),
    ("v2 version 3", v2(0, 0, 0, ver=3), "bad version"),
    ("v2 command 2", v2(2, 1, 1, inet_block("192.0.2.1", "192.0.2.2", 1, 2)),
     "bad command"),
    ("v2 command 15", v2(15, 0, 0), "bad command"),
    ("v2 family 4", v2(1, 4, 1, inet_block("192.0.2.1", "192.0.2.2", 1, 2)),
     "bad family"),
    ("v2 family 15", v2(1, 15, 0), "bad family"),
    ("v2 protocol 3", v2(1, 1, 3, inet_block("192.0.2.1", "192.0.2.2", 1, 2)),
     "bad protocol"),
    ("v2 INET6 with an IPv4 block",
     v2(1, 2, 1, inet_block("192.0.2.1", "192.0.2.2", 1, 2)),
     "truncated address"),
    ("v2 INET6 35 octets",
     v2(1, 2, 1, inet6_block("2001:db8::1", "2001:db8::2", 1, 2)[:35]),
     "truncated address"),
    ("v2 INET 11 octets",
     v2(1, 1, 1, inet_block("192.0.2.1", "192.0.2.2", 1, 2)[:11]),
     "truncated address"),
    ("v2 UNIX short", v2(1, 3, 1, b"/x".ljust(200, b"\0")),
     "truncated address"),
    ("v2 INET6 short", v2(1, 2, 2, b"\0" * 12), "truncated address"),
]


class TestProxyMalformed(ProxyCase):
    def refuse(self, name, header, reason, split=None):
        before = self.refused_count()
        c = self.raw()
        if split:
            try:
                for i in range(0, len(header), split):
                    c.send(header[i:i + split])
                    time.sleep(0.01)
            except OSError:
                pass    # refused before the end: fine
        else:
            c.send(header)
        # a client that goes on as if the header had been taken
        try:
            c.send(b"EHLO client.test\r\n")
        except OSError:
            pass
        t0 = time.monotonic()
        c.expect_closed(timeout=4)
        self.assertLess(time.monotonic() - t0, 1.5,
                        "%s: closed only after the proxy timeout" % name)
        self.assertTrue(self.d.wait_log(REFUSED_RE, before + 1, 3.0),
                        "%s: no 'proxy header ... refused' log line" % name)
        lines = re.findall(REFUSED_RE + r".*", self.d.log())
        self.assertRegex(lines[-1], REFUSED_RE + "(%s)$" % reason,
                         "%s: %r" % (name, header))
        c.close()

    def test_malformed(self):
        for name, header, reason in MALFORMED:
            with self.subTest(name=name):
                self.refuse(name, header, reason)
        self.assertEqual(self.d.deliveries(), [])
        # the server keeps serving others
        c = self.raw()
        c.send(v1("TCP4", "192.0.2.9", "192.0.2.2", 9, 25))
        c.expect(GREETING)
        c.check("EHLO x", ehlo_lines())

    def test_malformed_split(self):
        # the error is found however the bytes arrive
        pick = ("two spaces", "port 65536", "trailing space", "v2 command 2",
                "v2 INET6 with an IPv4 block")
        for name, header, reason in [m for m in MALFORMED if m[0] in pick]:
            with self.subTest(name=name):
                self.refuse(name, header, reason, split=3)

    def test_peer_closes_mid_header(self):
        c = self.raw()
        c.send(b"PROXY TCP4 192.0.2.1 ")
        c.shutdown_write()
        c.expect_closed(timeout=3)
        c2 = self.raw()
        c2.send(v2(1, 1, 1)[:10])
        c2.shutdown_write()
        c2.expect_closed(timeout=3)


class TestProxyTimeout(ProxyCase):
    def test_slow_header(self):
        silent = self.raw()
        partial = self.raw()
        drip = self.raw()
        t0 = time.monotonic()
        partial.send(b"PROXY TCP4 192.0.2.1")
        # the timeout counts from accept: trickling bytes do not extend it
        hdr = v1("TCP4", "192.0.2.1", "192.0.2.2", 1, 2)
        done = {}
        i = 0
        while time.monotonic() - t0 < 4.0 and len(done) < 3:
            for name, c in (("silent", silent), ("partial", partial),
                            ("drip", drip)):
                if name not in done and c.is_closed():
                    done[name] = time.monotonic() - t0
            if "drip" not in done and i < len(hdr) - 2:
                try:
                    drip.send(hdr[i:i + 1])
                except OSError:
                    pass
                i += 1
            time.sleep(0.1)
        for name, c in (("silent", silent), ("partial", partial),
                        ("drip", drip)):
            with self.subTest(name=name):
                self.assertIn(name, done, "%s: still open after 4 s" % name)
                self.assertEqual(c.buf, b"", "%s: bytes were sent" % name)
                self.assertGreater(done[name], 1.7)
                self.assertLess(done[name], 3.0)
        self.assertTrue(self.d.wait_log(REFUSED_RE + "timeout", 3, 2.0),
                        self.d.log())


class TestProxyShutdown(unittest.TestCase):
    """SIGTERM while a child still waits for the PROXY header: when the
    grace period ends the client gets the 421 a session gets, and the log
    says why (not "timeout"); on an implicit-TLS listener, where the client
    waits for a handshake, the connection is closed without a byte."""

    SHUTDOWN = "421 mx.test Service shutting down"
    NOT_READ = r"proxy header from 127\.0\.0\.1 not read: shutting down"

    def start(self, listen_opts, cert=False):
        config = RECORD + "\nshutdown-grace 1"
        opts = {"listen_opts": listen_opts, "timeout": 30}
        if cert:
            config += "\ntls certificate @CERT@ key @KEY@"
            self.d = certs.smtpd_with_cert(config, **opts)[0]
        else:
            self.d = Smtpd(config, **opts)
        self.addCleanup(self.d.cleanup)

    def shut_down_waiting(self, partial):
        c = self.d.connect(greeting=False)
        sock_nodelay(c)
        c.send(partial)
        time.sleep(0.3)         # a child has it and waits for the rest
        t0 = time.monotonic()
        self.d.signal(signal.SIGTERM)
        return c, t0

    def test_plain_listener_421(self):
        for partial in (b"", b"PROXY TCP4 192.0.2.1"):
            with self.subTest(partial=partial):
                self.start("proxy-protocol timeout 30")
                c, t0 = self.shut_down_waiting(partial)
                c.expect(self.SHUTDOWN, timeout=5)
                self.assertLess(time.monotonic() - t0, 3.0)
                c.expect_closed()
                self.assertEqual(self.d.wait_exit(5), 0, self.d.log())
                log = self.d.log()
                self.assertRegex(log, self.NOT_READ)
                self.assertNotRegex(log, REFUSED_RE)

    def test_tls_listener_closed_without_a_byte(self):
        self.start("tls proxy-protocol timeout 30", cert=True)
        c, t0 = self.shut_down_waiting(b"")
        c.expect_closed(timeout=5)
        self.assertLess(time.monotonic() - t0, 3.0)
        self.assertEqual(c.buf, b"")
        self.assertEqual(self.d.wait_exit(5), 0, self.d.log())
        self.assertRegex(self.d.log(), self.NOT_READ)


class TestProxyFrom(SmtpdTest):
    """`from`: only these peers may send a header; a second, plain listener
    takes a PROXY line as an unknown command."""

    CONFIG = RECORD + """
listen on 127.0.0.1 port @PORT@ proxy-protocol from 127.0.0.2/32 ::1/128
listen on 127.0.0.1 port @PORT2@"""
    OPTS = {"prefork": 2}

    def test_peer_not_allowed(self):
        c = self.connect(greeting=False)       # from 127.0.0.1
        c.send(v1("TCP4", "192.0.2.1", "192.0.2.2", 1, 2)
               + b"EHLO client.test\r\n")
        c.expect_closed(timeout=3)
        self.assertTrue(self.d.wait_log(r"proxy.*127\.0\.0\.1.*not allowed"
                                        r"|proxy.*not allowed.*127\.0\.0\.1"
                                        r"|127\.0\.0\.1.*proxy.*refused",
                                        1, 3.0), self.d.log())
        # nothing is read: a silent client is closed at once, not at the
        # proxy timeout
        c2 = self.connect(greeting=False)
        t0 = time.monotonic()
        c2.expect_closed(timeout=4)
        self.assertLess(time.monotonic() - t0, 2.0)

    def test_peer_allowed(self):
        c = self.connect(greeting=False, source="127.0.0.2")
        c.send(v1("TCP4", "192.0.2.3", "192.0.2.2", 3333, 25)
               + b"EHLO client.test\r\n")
        c.expect(GREETING)
        c.expect(ehlo_lines())
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("DATA", DATA_354)
        c.send(b"x\r\n.\r\n")
        c.expect_match(OK_ID)
        run = self.d.wait_deliveries(1)[0]
        self.assertEqual(run["env"]["SMTPD_CLIENT_ADDR"], "192.0.2.3")
        self.assertEqual(run["env"]["SMTPD_CLIENT_PORT"], "3333")
        self.assertIn(b"[192.0.2.3]", strip_received(run["data"])[0])

    def test_plain_listener_proxy_is_a_command(self):
        c = self.connect(port=self.d.port2)
        c.check("PROXY TCP4 192.0.2.1 192.0.2.2 1 2",
                '500 Error: command "PROXY" not recognized')
        c.check("EHLO client.test", ehlo_lines())
        c.check("MAIL FROM:<a@example.com>", "250 OK")


class TestProxyMaxPerAddress(SmtpdTest):
    CONFIG = RECORD + "\nmax-clients-per-address 1"
    OPTS = {"listen_opts": "proxy-protocol", "prefork": 4}

    def hdr(self, src):
        return v1("TCP4", src, "192.0.2.250", 1234, 25)

    def one_then_refused(self, src):
        """A session from src, then a second one refused; the first."""
        c1 = self.connect(greeting=False)
        c1.send(self.hdr(src))
        c1.expect(GREETING)
        c2 = self.connect(greeting=False)
        c2.send(self.hdr(src))
        c2.expect(TOO_MANY)
        c2.expect_closed()
        return c1

    def test_counts_proxied_address(self):
        c1 = self.one_then_refused("192.0.2.1")
        self.assertTrue(self.d.wait_log(r"refused 192\.0\.2\.1: too many", 1,
                                        2.0), self.d.log())
        # another proxied source, over the same socket peer 127.0.0.1
        c3 = self.connect(greeting=False)
        c3.send(self.hdr("192.0.2.2"))
        c3.expect(GREETING)
        c3.check("NOOP", "250 OK")
        c1.check("NOOP", "250 OK")
        c1.check("QUIT", "221 Bye")
        c1.expect_closed()

        def again():
            c = self.connect(greeting=False)
            c.send(self.hdr("192.0.2.1"))
            try:
                g = c.recv_reply()
            except AssertionError:
                g = None
            c.close()
            return g == GREETING
        self.assertTrue(wait_for(again, 3.0, 0.1),
                        "192.0.2.1 still refused after its session ended")

    def test_ipv4_mapped_counts_as_ipv4(self):
        """::ffff:a.b.c.d in a TCP6 header (a proxy on a dual-stack
        socket) is the IPv4 client a.b.c.d: one limit for both forms,
        as for the AUTH throttle and the NETWORK lists."""
        c1 = self.connect(greeting=False)
        c1.send(self.hdr("192.0.2.41"))
        c1.expect(GREETING)
        c2 = self.connect(greeting=False)
        c2.send(v1("TCP6", "::ffff:192.0.2.41", "::ffff:192.0.2.250",
                   1234, 25))
        c2.expect(TOO_MANY)
        c2.expect_closed()
        self.assertTrue(self.d.wait_log(
            r"refused ::ffff:192\.0\.2\.41: too many", 1, 2.0),
            self.d.log())
        c1.check("QUIT", "221 Bye")
        c1.expect_closed()

    def test_ipv6_counts_by_its_64(self):
        """An IPv6 client has a /64 to take addresses from: another
        address of the same /64 is the same client, one of another /64
        is not."""
        c1 = self.connect(greeting=False)
        c1.send(v1("TCP6", "2001:db8:0:7::1", "2001:db8::250", 1234, 25))
        c1.expect(GREETING)
        c2 = self.connect(greeting=False)
        c2.send(v1("TCP6", "2001:db8:0:7:ffff::2", "2001:db8::250", 1234,
                   25))
        c2.expect(TOO_MANY)
        c2.expect_closed()
        self.assertTrue(self.d.wait_log(
            r"refused 2001:db8:0:7:ffff::2: too many", 1, 2.0), self.d.log())
        c3 = self.connect(greeting=False)
        c3.send(v1("TCP6", "2001:db8:0:8::1", "2001:db8::250", 1234, 25))
        c3.expect(GREETING)
        c3.check("QUIT", "221 Bye")
        c1.check("QUIT", "221 Bye")
        c1.expect_closed()

    def test_headers_without_client_not_counted(self):
        """UNKNOWN and LOCAL headers name no client: the session keeps
        the proxy's address, which is never counted, so a limit of 1
        refuses none of three such connections at once."""
        heads = [b"PROXY UNKNOWN\r\n", v2(0, 0, 0), b"PROXY UNKNOWN\r\n"]
        cs = []
        for h in heads:
            c = self.connect(greeting=False)
            c.send(h)
            c.expect(GREETING)
            cs.append(c)
        for c in cs:
            c.check("NOOP", "250 OK")
        self.assertNotIn("refused 127.0.0.1", self.d.log())

    def test_status_shows_proxied_client(self):
        """smtpd -s lists the client the header names, not the proxy."""
        c = self.connect(greeting=False)
        c.send(self.hdr("192.0.2.77"))
        c.expect(GREETING)
        self.assertTrue(wait_for(lambda: re.search(
            r"^\d+\s+\w+\s+192\.0\.2\.77\s", self.d.status()[1], re.M),
            3.0, 0.1), self.d.status()[1])
        c.check("QUIT", "221 Bye")

    def test_refusal_counted_as_per_address(self):
        """A refusal after the header counts as max_clients_per_address,
        not as a bad PROXY header."""
        def count(reason):
            m = re.search(r"^connections_refused\.%s\s+(\d+)$" % reason,
                          self.d.status()[1], re.M)
            return int(m.group(1)) if m else -1
        peraddr, proxy = count("max_clients_per_address"), count(
            "proxy_protocol")
        self.assertGreaterEqual(peraddr, 0, self.d.status()[1])
        self.one_then_refused("192.0.2.31")
        self.assertTrue(wait_for(
            lambda: count("max_clients_per_address") == peraddr + 1, 3.0,
            0.1), self.d.status()[1])
        self.assertEqual(count("proxy_protocol"), proxy)

    def test_proxy_address_not_counted(self):
        """Connections whose header has not come yet are not counted as
        the proxy's own address (127.0.0.1): with a limit of 1, a second
        one is not refused at accept."""
        c1 = self.connect(greeting=False)
        c2 = self.connect(greeting=False)
        c2.assert_silent(0.3)
        c1.send(self.hdr("192.0.2.11"))
        c2.send(self.hdr("192.0.2.12"))
        c1.expect(GREETING)
        c2.expect(GREETING)
        self.assertNotIn("refused 127.0.0.1", self.d.log())


class TestProxyUnix(SmtpdTest):
    """A proxy-protocol UNIX socket listener (HAProxy's health checks,
    UNIX frontends): headers that name no client get the greeting at
    once."""
    CONFIG = RECORD + "\nmax-clients-per-address 1"
    OPTS = {"unix_listen": "p.sock", "unix_opts": "proxy-protocol",
            "prefork": 3}

    def test_no_client_header_greeted_at_once(self):
        for h in (b"PROXY UNKNOWN\r\n", v2(0, 0, 0), v2(1, 0, 0)):
            c = self.d.connect_unix(self.d.unix_listen, greeting=False)
            t0 = time.monotonic()
            c.send(h)
            c.expect(GREETING)
            self.assertLess(time.monotonic() - t0, 2.0)
            c.check("QUIT", "221 Bye")
        self.assertNotIn("no peer answer", self.d.log())


if __name__ == "__main__":
    unittest.main()
