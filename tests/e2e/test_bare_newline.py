"""bare-newline keep|normalize|reject and bare-newline-exempt
(smtpd.conf(5)): what the delivery program gets, the 550 of reject (one
per recipient in LMTP), and that neither changes what ends a message or
how dots are removed."""

import time
import unittest

from harness import OK_ID, RECORD, SmtpdTest

BARE_550 = "550 5.5.2 Error: bare <CR> or <LF> received"
LINE_500 = "500 Line too long (see RFC5321 4.5.3.1.6)"
MIXED = b"a\nb\rc\r\r\nd\n\r\n"


class BareCase(SmtpdTest):
    def send(self, c, raw, rcpts=("b@example.com",)):
        """raw after 354 (the final dot is added); the reply to it."""
        return self.transaction(c, "a@example.com", rcpts, raw)


class TestKeep(BareCase):
    CONFIG = RECORD + "\nreceived-header no\nbare-newline keep"

    def test_as_sent(self):
        c = self.session()
        self.assertEqual(self.delivered(c, MIXED), MIXED)


class TestNormalize(BareCase):
    CONFIG = RECORD + "\nreceived-header no\nbare-newline normalize"

    def test_bare_lf_becomes_crlf(self):
        c = self.session()
        self.assertEqual(self.delivered(c, MIXED),
                         b"a\r\nb\rc\r\r\nd\r\n\r\n")

    def test_end_and_dots_unchanged(self):
        c = self.session()
        # "\n.\n" never ends DATA, and a dot after a bare LF is not at
        # the start of a line: it stays.
        self.assertEqual(
            self.delivered(c, b"Testing\n.\nX\r\n..y\n..z\r\n"),
            b"Testing\r\n.\r\nX\r\n.y\r\n..z\r\n")

    def test_large_bdat_chunk(self):
        # A chunk of 1024 octets or more with nothing buffered is read
        # straight into the spool; the bare LFs in it become CRLF too.
        c = self.session()
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        body = b"ab\ncd\r\n" * 300
        c.send(b"BDAT %d LAST\r\n" % len(body))
        time.sleep(0.3)
        c.send(body)
        self.assertRegex(c.recv_reply(), "^" + OK_ID + "$")
        runs = self.d.wait_deliveries(1)
        self.assertEqual(runs[0]["data"], b"ab\r\ncd\r\n" * 300)

    def test_line_length_as_received(self):
        # 600 + LF + 600 + CRLF is one line of 1203 octets.
        c = self.session()
        got = self.send(c, b"x" * 600 + b"\n" + b"y" * 600 + b"\r\n")
        self.assertEqual(got, LINE_500)
        self.assertEqual(self.d.deliveries(), [])


class TestReject(BareCase):
    CONFIG = RECORD + "\nreceived-header no\nbare-newline reject"

    def test_bare_lf_and_bare_cr(self):
        c = self.session()
        for raw in (b"a\nb\r\n", b"a\rb\r\n", b"a\r\r\n", b"\n\r\n"):
            with self.subTest(raw=raw):
                self.assertEqual(self.send(c, raw), BARE_550)
        self.assertEqual(self.d.deliveries(), [])
        self.assertTrue(self.d.wait_log(r"refused: bare CR or LF"))
        # The session goes on; a clean message is delivered.
        self.assertEqual(self.delivered(c, b"a\r\n..b\r\n"),
                         b"a\r\n.b\r\n")

    def test_smuggling_attempt(self):
        c = self.session()
        got = self.send(c, b"x\n.\r\nMAIL FROM:<e@example.com>\r\n")
        self.assertEqual(got, BARE_550)
        c.check("NOOP", "250 OK")
        self.assertEqual(self.d.deliveries(), [])


class TestRejectLmtp(BareCase):
    CONFIG = RECORD + "\nreceived-header no\nbare-newline reject"
    OPTS = {"listen_opts": "lmtp"}

    def test_one_550_per_recipient(self):
        c = self.connect()
        c.send("LHLO client.test\r\n")
        c.recv_reply()
        got = self.send(c, b"a\nb\r\n",
                        rcpts=("b@example.com", "c@example.com"))
        self.assertEqual(got, BARE_550)
        c.expect(BARE_550)
        c.check("NOOP", "250 OK")
        self.assertEqual(self.d.deliveries(), [])


class TestExempt(BareCase):
    CONFIG = (RECORD + "\nreceived-header no\nbare-newline reject\n"
              "bare-newline-exempt 192.0.2.0/24\n"
              "bare-newline-exempt 127.0.0.0/8")

    def test_exempt_client_gets_keep(self):
        c = self.session()
        self.assertEqual(self.delivered(c, MIXED), MIXED)


class TestNotExempt(BareCase):
    CONFIG = (RECORD + "\nreceived-header no\nbare-newline normalize\n"
              "bare-newline-exempt 192.0.2.0/24 ::1")

    def test_other_clients_do_not(self):
        c = self.session()
        self.assertEqual(self.delivered(c, b"a\nb\r\n"),
                         b"a\r\nb\r\n")


if __name__ == "__main__":
    unittest.main()
