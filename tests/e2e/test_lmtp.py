"""RFC 2033: LMTP listeners (listener option `lmtp`)."""

import os
import smtplib
import socket
import struct
import time
import unittest

from harness import (OK_ID, RECORD, SmtpdTest, ehlo_lines, runs_stopped,
                     send_slow_runs)

DATA_354 = "354 End data with <CR><LF>.<CR><LF>"
TEMP = "451 4.3.0 Delivery failed temporarily, try again later"
NOUSER = "550 5.1.1 Delivery failed: no such user"
LMTP_HELP = "DATA HELP LHLO MAIL NOOP QUIT RCPT RSET VRFY"


class TestLmtp(SmtpdTest):
    CONFIG = RECORD + "\nreceived-header no"
    OPTS = {"listen_opts": "lmtp"}

    def test_greeting_and_lhlo(self):
        c = self.connect()
        c.check("LHLO", "501 Syntax: EHLO hostname")
        c.check("LHLO client.test", ehlo_lines())
        c.check("lhlo again", ehlo_lines())
        c.check("LHLO -x", "501 Syntax: EHLO hostname")

    def test_helo_ehlo_not_commands_but_not_unknown(self):
        c = self.connect()
        for _ in range(3):
            c.check("HELO client.test",
                    '500 Error: command "HELO" not recognized')
            c.check("EHLO client.test",
                    '500 Error: command "EHLO" not recognized')
        c.check("MAIL FROM:<a@example.com>", "503 Error: send HELO first")
        for i in range(4):
            c.check("FOO", '500 Error: command "FOO" not recognized')
        c.check("HELO x", '500 Error: command "HELO" not recognized')
        c.check("FOO", "502 5.5.1 Too many unrecognized commands, goodbye.")
        c.expect_closed()

    def test_helo_has_no_effect(self):
        c = self.connect()
        c.check("LHLO client.test", ehlo_lines())
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("HELO x", '500 Error: command "HELO" not recognized')
        c.check("RCPT TO:<b@example.com>", "250 OK")   # envelope kept

    def test_before_lhlo(self):
        c = self.connect()
        c.check("MAIL FROM:<a@example.com>", "503 Error: send HELO first")
        c.check("RCPT TO:<a@example.com>", "503 Error: send HELO first")
        c.check("DATA", "503 Error: send HELO first")
        c.check("AUTH PLAIN", '500 Error: command "AUTH" not recognized')

    def test_help(self):
        c = self.connect()
        c.check("HELP", "250 Supported commands: " + LMTP_HELP)
        c.check("HELP LHLO", "250 Syntax: LHLO hostname")
        c.check("HELP HELO", "501 Supported commands: " + LMTP_HELP)
        c.check("HELP EHLO", "501 Supported commands: " + LMTP_HELP)
        c.check("HELP MAIL", "250 Syntax: MAIL FROM: <address>")
        c.check("LHLO x", ehlo_lines())
        c.check("HELP MAIL",
                "250 Syntax: MAIL FROM: <address> [SP <mail-parameters>]")
        c.check("HELP RCPT",
                "250 Syntax: RCPT TO: <address> [SP <mail-parameters>]")

    def test_one_reply_per_recipient(self):
        rcpts = ["ok1@example.com", "nouser@example.com", "temp@example.com",
                 "ok1@example.com", "perm@example.com"]
        self.d.set_exit(67, rcpt="nouser@example.com")
        self.d.set_exit(75, rcpt="temp@example.com")
        self.d.set_exit(65, rcpt="perm@example.com")
        c = self.connect()
        c.check("LHLO client.test", ehlo_lines())
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        for r in rcpts:
            c.check("RCPT TO:<%s>" % r, "250 OK")
        c.check("RCPT TO:<>", "553 5.1.3 Error: malformed address")
        c.check("RCPT TO:<x@example.com> NOTIFY=NEVER",
                "555 RCPT TO parameters not recognized or not implemented")
        c.check("DATA", DATA_354)
        c.send(b"Subject: lmtp\r\n\r\nhi\r\n.\r\n")
        c.expect_match(OK_ID)
        c.expect(NOUSER)
        c.expect(TEMP)
        c.expect_match(OK_ID)
        c.expect("554 5.6.0 Delivery failed: data format error")
        c.assert_silent(0.2)
        c.check("NOOP", "250 OK")
        runs = self.d.deliveries()
        self.assertEqual(sorted(r["argv"] for r in runs),
                         sorted(["a@example.com", r] for r in rcpts))
        for r in runs:
            self.assertEqual(r["env"]["SMTPD_RECIPIENTS"], r["argv"][1])
            self.assertEqual(r["data"], b"Subject: lmtp\r\n\r\nhi\r\n")
        c.check("RCPT TO:<b@example.com>", "503 Error: need MAIL command")

    def test_program_reply_per_recipient(self):
        self.d.set_stdout("550 5.1.1 <u1@example.com>: unknown\n",
                          rcpt="u1@example.com")
        self.d.set_exit(67, rcpt="u1@example.com")
        self.d.set_stdout("250 2.1.5 delivered to u2\n", rcpt="u2@example.com")
        c = self.connect()
        c.check("LHLO client.test", ehlo_lines())
        c.check("MAIL FROM:<>", "250 OK")
        c.check("RCPT TO:<u1@example.com>", "250 OK")
        c.check("RCPT TO:<u2@example.com>", "250 OK")
        c.check("DATA", DATA_354)
        c.send(b"x\r\n.\r\n")
        c.expect("550 5.1.1 <u1@example.com>: unknown")
        c.expect("250 2.1.5 delivered to u2")
        for r in self.d.deliveries():
            self.assertEqual(r["argv"][0], "")
            self.assertEqual(r["env"]["SMTPD_SENDER"], "")

    def test_program_421_ends_the_runs(self):
        """A recipient's 421 says that the connection closes: the client
        takes the recipients after it as not delivered and sends them
        the message again, so no run starts for them (each would have
        been delivered twice)."""
        self.d.set_stdout("421 4.3.2 shutting down\n", rcpt="r2@example.com")
        self.d.set_exit(75, rcpt="r2@example.com")
        c = self.connect()
        c.check("LHLO client.test", ehlo_lines())
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        for i in range(1, 4):
            c.check("RCPT TO:<r%d@example.com>" % i, "250 OK")
        c.check("DATA", DATA_354)
        c.send(b"x\r\n.\r\n")
        c.expect_match(OK_ID)
        c.expect("421 4.3.2 shutting down")
        c.expect_closed()
        self.assertEqual(sorted(r["argv"][1] for r in self.d.deliveries()),
                         ["r1@example.com", "r2@example.com"])
        self.assertTrue(self.d.wait_log(r"(?m)^smtpd\[\d+\]: [0-9A-Z]{16} "
                                        r"deliver id=[0-9A-Z]{16}\.\d+ lmtp: "
                                        r"a 421 closes the connection; 1 "
                                        r"recipients left undelivered"),
                        self.d.log())

    def test_pipelined_lmtp(self):
        c = self.connect()
        c.send(b"LHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<p1@example.com>"
               b"\r\nRCPT TO:<p2@example.com>\r\nDATA\r\nbody\r\n.\r\nQUIT\r\n")
        c.expect(ehlo_lines())
        for want in ("250 OK", "250 OK", "250 OK", DATA_354):
            c.expect(want)
        c.expect_match(OK_ID)
        c.expect_match(OK_ID)
        c.expect("221 Bye")
        c.expect_closed()

    def test_smtplib_lmtp(self):
        s = self.d.lmtp()
        code, _ = s.ehlo("client.test")          # LHLO
        self.assertEqual(code, 250)
        self.assertTrue(s.has_extn("pipelining"))
        self.assertEqual(s.esmtp_features["size"], "33554432")
        refused = s.sendmail("a@example.com", ["lib@example.com"],
                             b"Subject: smtplib\r\n\r\nhello\r\n")
        self.assertEqual(refused, {})
        s.quit()
        runs = self.d.deliveries()
        self.assertEqual(runs[0]["argv"], ["a@example.com", "lib@example.com"])
        self.assertEqual(runs[0]["data"], b"Subject: smtplib\r\n\r\nhello\r\n")

    def test_smtplib_lmtp_failure(self):
        self.d.set_exit(67)
        s = self.d.lmtp()
        s.ehlo("client.test")
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            s.sendmail("a@example.com", ["lib@example.com"], b"x\r\n")
        self.assertEqual(cm.exception.smtp_code, 550)


class TestLmtpRepliesWhenKnown(SmtpdTest):
    """RFC 2033 4.2: each recipient's reply is sent as soon as its run has
    ended (they all waited for the last run: a client with a time limit
    per reply, as Postfix's lmtp_data_done_timeout, gave up and sent the
    message again to every recipient); once the client is gone, the
    recipients left are not delivered, as it sends the message again."""
    CONFIG = RECORD + "\nreceived-header no"
    OPTS = {"listen_opts": "lmtp", "timeout": 30}

    def slow_runs(self, n):
        path = os.path.join(self.d.out, "sleep")
        with open(path, "w") as f:
            f.write("1")
        self.addCleanup(os.unlink, path)
        c = self.connect()
        c.check("LHLO client.test", ehlo_lines())
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        for i in range(n):
            c.check("RCPT TO:<r%d@example.com>" % i, "250 OK")
        c.check("DATA", DATA_354)
        c.send(b"Subject: slow\r\n\r\nhi\r\n.\r\n")
        return c, time.monotonic()

    def test_each_reply_when_its_run_ends(self):
        c, t0 = self.slow_runs(3)
        c.expect_match(OK_ID, timeout=10)
        self.assertLess(time.monotonic() - t0, 1.9)
        c.expect_match(OK_ID, timeout=10)
        c.expect_match(OK_ID, timeout=10)
        self.assertEqual(len(self.d.deliveries()), 3)

    def test_client_gone_rest_not_delivered(self):
        c, _ = self.slow_runs(4)
        c.expect_match(OK_ID, timeout=10)
        # Reset at once: the next reply cannot be sent.
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                          struct.pack("ii", 1, 0))
        c.close()
        self.assertTrue(self.d.wait_log(r"(?m)^smtpd\[\d+\]: [0-9A-Z]{16} "
                                        r"deliver id=[0-9A-Z]{16}\.\d+ lmtp: "
                                        r"the client is gone; 2 recipients "
                                        r"left undelivered",
                                        1, 10.0), self.d.log())
        time.sleep(1.5)
        self.assertEqual(len(self.d.deliveries()), 2)


class TestLmtpSessionTime(SmtpdTest):
    """max-session-time: the run going finishes and is answered; no run
    starts after it (each would stretch the session by its own time)."""
    CONFIG = RECORD + "\nreceived-header no\nmax-session-time 3"
    OPTS = {"listen_opts": "lmtp", "timeout": 2}

    def test_no_run_starts_after_the_limit(self):
        c, t0 = send_slow_runs(self, b"LHLO")
        replies = []
        while True:
            r = c.recv_reply(timeout=10)
            replies.append(r)
            if r.startswith("421"):
                break
        c.expect_closed()
        runs = runs_stopped(self, "lmtp", t0)
        self.assertEqual(replies[:-1], [r for r in replies[:-1]
                                        if r.startswith("250 OK id=")])
        self.assertEqual(len(replies) - 1, runs)


class TestLmtpLimits(SmtpdTest):
    CONFIG = RECORD + "\nreceived-header no\nmax-message-size 1500"
    OPTS = {"listen_opts": "lmtp"}

    def test_data_failure_once_per_recipient(self):
        c = self.connect()
        c.check("LHLO c", ehlo_lines(size=1500))
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<x1@example.com>", "250 OK")
        c.check("RCPT TO:<x2@example.com>", "250 OK")
        c.check("RCPT TO:<x1@example.com>", "250 OK")
        c.check("DATA", DATA_354)
        c.send((b"y" * 98 + b"\r\n") * 20 + b".\r\n")
        for _ in range(3):
            c.expect("552 Error: Too much mail data")
        c.assert_silent(0.2)
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<x1@example.com>", "250 OK")
        c.check("DATA", DATA_354)
        c.send(b"z" * 1200 + b"\r\n.\r\n")
        c.expect("500 Line too long (see RFC5321 4.5.3.1.6)")
        c.assert_silent(0.2)
        self.assertEqual(self.d.deliveries(), [])


class TestLmtpUnixSocket(SmtpdTest):
    CONFIG = RECORD + "\nreceived-header no\nlisten on @TMP@/lmtp.sock lmtp"

    def test_unix_socket(self):
        path = os.path.join(self.d.tmp, "lmtp.sock")
        c = self.d.connect_unix(path)
        c.check("LHLO client.test", ehlo_lines())
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<u@example.com>", "250 OK")
        c.check("RCPT TO:<v@example.com>", "250 OK")
        c.check("DATA", DATA_354)
        c.send(b"unix\r\n.\r\n")
        c.expect_match(OK_ID)
        c.expect_match(OK_ID)
        c.check("QUIT", "221 Bye")
        runs = self.d.deliveries()
        self.assertEqual(sorted(r["argv"][1] for r in runs),
                         ["u@example.com", "v@example.com"])
        self.assertEqual(runs[0]["data"], b"unix\r\n")


if __name__ == "__main__":
    unittest.main()
