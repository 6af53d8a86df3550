"""Enhanced status codes (RFC 2034, RFC 3463), `enhanced-status-codes
yes|no` (smtpd.8 ENHANCED STATUS CODES): with yes every 2xx, 4xx and 5xx
reply but the greeting and the HELO/EHLO/LHLO replies carries a code from
one table; with no (the default) the replies stay as they were."""

import certs
from harness import RECORD, RECORD_EACH, SmtpdTest, ehlo_lines

# The same dialogue, the replies without and with codes.
DIALOGUE = [
    ("MAIL FROM:<a@example.com>", "503 Error: send HELO first",
     "503 5.5.1 Error: send HELO first"),
    ("HELO", "501 Syntax: HELO hostname", "501 Syntax: HELO hostname"),
    ("HELO client.test", "250 mx.test", "250 mx.test"),
    ("EHLO -x", "501 Syntax: EHLO hostname", "501 Syntax: EHLO hostname"),
    ("RCPT TO:<b@example.com>", "503 Error: need MAIL command",
     "503 5.5.1 Error: need MAIL command"),
    ("MAIL FROM:<a@example.com>", "250 OK", "250 2.1.0 OK"),
    ("MAIL FROM:<a@example.com>", "503 Error: nested MAIL command",
     "503 5.5.1 Error: nested MAIL command"),
    ("RCPT TO:<b@example.com> NOTIFY=NEVER",
     "501 Syntax: RCPT TO: <address>",
     "501 5.5.4 Syntax: RCPT TO: <address>"),
    ("RCPT TO:<b@example.com>", "250 OK", "250 2.1.5 OK"),
    ("RCPT TO:<>", "553 5.1.3 Error: malformed address",
     "553 5.1.3 Error: malformed address"),
    ("DATA x", "501 Syntax: DATA", "501 5.5.4 Syntax: DATA"),
    ("RSET", "250 OK", "250 2.0.0 OK"),
    ("NOOP", "250 OK", "250 2.0.0 OK"),
    ("VRFY <a@example.com>",
     "252 Cannot VRFY user, but will accept message and attempt delivery",
     "252 2.0.0 Cannot VRFY user, but will accept message and attempt "
     "delivery"),
    ("VRFY a@b@c", "502 Could not VRFY a@b@c",
     "502 5.5.1 Could not VRFY a@b@c"),
    ("EXPN x", "502 EXPN not implemented", "502 5.5.1 EXPN not implemented"),
    ("HELP QUIT", "250 Syntax: QUIT", "250 2.0.0 Syntax: QUIT"),
    ("HELP FOO", "501 Supported commands: DATA EHLO HELO HELP MAIL NOOP "
     "QUIT RCPT RSET VRFY", "501 5.5.4 Supported commands: DATA EHLO HELO "
     "HELP MAIL NOOP QUIT RCPT RSET VRFY"),
    ("STARTTLS", "454 TLS not available", "454 4.7.0 TLS not available"),
    ("FOO", '500 Error: command "FOO" not recognized',
     '500 5.5.2 Error: command "FOO" not recognized'),
    ("", "500 Error: bad syntax", "500 5.5.2 Error: bad syntax"),
]

EHLO_DIALOGUE = [
    ("EHLO client.test", None, None),
    ("MAIL FROM:<a@example.com> SIZE=99999999999",
     "552 Error: message size exceeds fixed maximum message size",
     "552 5.3.4 Error: message size exceeds fixed maximum message size"),
    ("MAIL FROM:<a@example.com> FOO=BAR",
     "555 MAIL FROM parameters not recognized or not implemented",
     "555 5.5.4 MAIL FROM parameters not recognized or not implemented"),
    ("MAIL FROM:<a@example.com> BODY=9BIT",
     "501 Error: BODY can only be one of 7BIT, 8BITMIME",
     "501 5.5.4 Error: BODY can only be one of 7BIT, 8BITMIME"),
]


class EnhancedChecks:
    """The checks, run with the setting off and on."""

    def pick(self, off, on):
        return on if self.ON else off

    def run_dialogue(self, c, dialogue):
        for line, off, on in dialogue:
            if off is None:
                c.send(line + "\r\n")
                c.recv_reply()
                continue
            with self.subTest(line=line):
                c.check(line, self.pick(off, on))

    def test_greeting(self):
        c = self.connect(greeting=False)
        c.expect("220 mx.test ESMTP smtpd")

    def test_ehlo(self):
        c = self.connect()
        c.check("EHLO client.test", ehlo_lines(enhanced=self.ON))

    def test_dialogue(self):
        self.run_dialogue(self.connect(), DIALOGUE)
        self.run_dialogue(self.connect(), EHLO_DIALOGUE)

    def envelope(self, c):
        c.check("MAIL FROM:<a@example.com>", self.pick("250 OK",
                                                       "250 2.1.0 OK"))
        c.check("RCPT TO:<b@example.com>", self.pick("250 OK",
                                                     "250 2.1.5 OK"))

    def test_message_and_quit(self):
        c = self.session()
        self.envelope(c)
        c.check("DATA", "354 End data with <CR><LF>.<CR><LF>")
        c.send(b"x\r\n.\r\n")
        c.expect_match(self.pick(r"^250 OK id=\S+$", r"^250 2\.0\.0 OK id=\S+$"))
        self.envelope(c)
        c.send(b"BDAT 3\r\nx\r\nBDAT 0 LAST\r\n")
        c.expect(self.pick("250 OK 3 octets received",
                           "250 2.0.0 OK 3 octets received"))
        c.expect_match(self.pick(r"^250 OK id=\S+$", r"^250 2\.0\.0 OK id=\S+$"))
        c.check("QUIT", self.pick("221 Bye", "221 2.0.0 Bye"))

    def test_delivery_replies(self):
        """The table's delivery replies keep their codes; the program's
        own reply without one gets its class's X.0.0."""
        cases = [
            (67, None, "550 5.1.1 Delivery failed: no such user"),
            (75, None, "451 4.3.0 Delivery failed temporarily, try again "
             "later"),
            (0, "250 Stored\n", self.pick("250 Stored", "250 2.0.0 Stored")),
            (67, "550 Gone away\n", self.pick("550 Gone away",
                                              "550 5.0.0 Gone away")),
            (75, "421 Busy\n", self.pick("421 Busy", "421 4.0.0 Busy")),
            (65, "552 Too big for me\n", self.pick(
                "552 Too big for me", "552 5.0.0 Too big for me")),
            (67, "550 5.1.1 Unknown\n", "550 5.1.1 Unknown"),
        ]
        for status, out, want in cases:
            with self.subTest(status=status, out=out):
                self.d.clear_out()
                self.d.set_exit(status)
                if out is not None:
                    self.d.set_stdout(out)
                c = self.session()
                self.envelope(c)
                c.send(b"BDAT 3 LAST\r\nx\r\n")
                c.expect(want)


class TestEnhancedOff(EnhancedChecks, SmtpdTest):
    CONFIG = RECORD + "\nreceived-header no"
    ON = False


class TestEnhancedOn(EnhancedChecks, SmtpdTest):
    CONFIG = RECORD + "\nreceived-header no\nenhanced-status-codes yes"
    ON = True


class TestEnhancedLmtp(SmtpdTest):
    CONFIG = RECORD_EACH + "\nreceived-header no\nenhanced-status-codes yes"
    OPTS = {"listen_opts": "lmtp"}

    def test_lhlo_and_per_recipient(self):
        c = self.connect()
        c.check("HELO x", '500 Error: command "HELO" not recognized')
        c.check("LHLO client.test", ehlo_lines(enhanced=True))
        c.check("MAIL FROM:<a@example.com>", "250 2.1.0 OK")
        c.check("RCPT TO:<b@example.com>", "250 2.1.5 OK")
        c.check("RCPT TO:<c@example.com>", "250 2.1.5 OK")
        self.d.set_exit(67, rcpt="c@example.com")
        c.send(b"BDAT 3 LAST\r\nx\r\n")
        c.expect_match(r"^250 2\.0\.0 OK id=\S+$")
        c.expect("550 5.1.1 Delivery failed: no such user")


class TestEnhancedMaster(SmtpdTest):
    CONFIG = RECORD + "\nenhanced-status-codes yes\nmax-clients 1"
    OPTS = {"prefork": 1}

    def test_master_refusal_has_a_code(self):
        c1 = self.connect()
        c1.check("NOOP", "250 2.0.0 OK")
        c2 = self.connect(greeting=False)
        c2.expect("421 4.7.0 mx.test Service not available, too many "
                  "connections")
        c2.expect_closed()
        c1.check("QUIT", "221 2.0.0 Bye")


class TestEnhancedLimits(SmtpdTest):
    CONFIG = (RECORD + "\nreceived-header no\nenhanced-status-codes yes\n"
              "command-limit NOOP 1\nmax-message-size 10")

    def test_limits(self):
        c = self.session()
        c.check("NOOP", "250 2.0.0 OK")
        c.check("MAIL FROM:<a@example.com>", "250 2.1.0 OK")
        c.check("RCPT TO:<b@example.com>", "250 2.1.5 OK")
        c.send(b"BDAT 11\r\n0123456789A")
        c.expect("552 5.3.4 Error: Too much mail data")
        c.send(b"BDAT 1\r\nx")
        c.expect("503 5.5.1 Error: transaction failed, send RSET")
        c.send(b"BDAT 1 x\r\n")
        c.expect("501 5.5.4 Syntax: BDAT <size> [LAST]")
        c.expect_closed()
        c = self.session()
        c.check("NOOP", "250 2.0.0 OK")
        c.check("NOOP", "421 4.7.0 NOOP sent too many times")
        c = self.session()
        c.check("MAIL FROM:<a@example.com>", "250 2.1.0 OK")
        c.check("RCPT TO:<b@example.com>", "250 2.1.5 OK")
        c.check("DATA", "354 End data with <CR><LF>.<CR><LF>")
        c.send(b"0123456789A\r\n.\r\n")
        c.expect("552 5.3.4 Error: Too much mail data")


class TestEnhancedStarttls(SmtpdTest):
    CONFIG = (RECORD + "\nenhanced-status-codes yes\n"
              "tls certificate @CERT@ key @KEY@")
    OPTS = {"listen_opts": "require-starttls"}

    @classmethod
    def setUpClass(cls):
        cls.d = certs.smtpd_with_cert(cls.CONFIG, **cls.OPTS)[0]

    def test_530_and_220(self):
        c = self.connect()
        c.check("HELO client.test",
                "530 5.7.0 Must issue a STARTTLS command first")
        c.check("MAIL FROM:<a@example.com>",
                "530 5.7.0 Must issue a STARTTLS command first")
        c.check("STARTTLS x", "501 5.5.4 Syntax: STARTTLS")
        c.check("STARTTLS", "220 2.0.0 Ready to start TLS")
