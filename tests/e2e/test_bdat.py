"""CHUNKING (RFC 3030): BDAT in SMTP and LMTP sessions, pipelined or not,
`chunking yes|no` (smtpd.8 CHUNKING).  The rule that matters most: from a
well-formed BDAT line the next <size> octets are data, never commands,
whatever the reply; every refusal is shown with a chunk that holds
commands."""

import time

import certs
from harness import (OK_ID, RECORD, RECORD_EACH, SmtpdTest, ehlo_lines,
                     strip_received)

HELO_FIRST = "503 Error: send HELO first"
NEED_MAIL = "503 Error: need MAIL command"
NEED_RCPT = "503 Error: need RCPT command"
TOO_BIG = "552 Error: Too much mail data"
FAILED = "503 5.5.1 Error: transaction failed, send RSET"
MALFORMED = "501 Syntax: BDAT <size> [LAST]"
LINE_TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"
NOT_FIRST = "530 Must issue a STARTTLS command first"
AUTH_REQUIRED = "530 5.7.0 Authentication required"

# A chunk that would do harm if it were read as commands.
EVIL = b"QUIT\r\nRSET\r\nMAIL FROM:<evil@example.com>\r\n"


def bdat(data, last=False):
    return b"BDAT %d%s\r\n%s" % (len(data), b" LAST" if last else b"",
                                 data)


def ok_chunk(data):
    return "250 OK %d octets received" % len(data)


class BdatCase(SmtpdTest):
    CONFIG = RECORD + "\nreceived-header no"

    def envelope(self, c, rcpts=("r@example.com",)):
        c.check("MAIL FROM:<s@example.com>", "250 OK")
        for r in rcpts:
            c.check("RCPT TO:<%s>" % r, "250 OK")

    def assert_harmless(self, c):
        """The chunk was not read as commands: the session is where the
        refusal left it, and nothing was delivered."""
        c.check("NOOP", "250 OK")
        self.assertEqual(self.d.deliveries(), [])


class TestBdat(BdatCase):
    def test_ehlo_advertises_chunking(self):
        c = self.connect()
        got = c.check("EHLO client.test", ehlo_lines())
        self.assertIn("250-CHUNKING", got.split("\n"))

    def test_one_chunk(self):
        c = self.session()
        self.envelope(c)
        body = b"Subject: t\r\n\r\nhello\r\n"
        c.send(bdat(body, last=True))
        c.expect_match("^" + OK_ID + "$")
        runs = self.d.wait_deliveries(1)
        self.assertEqual(len(runs), 1)
        self.assertEqual(runs[0]["argv"], ["s@example.com", "r@example.com"])
        self.assertEqual(runs[0]["data"], body)

    def test_chunks_are_raw_and_concatenated(self):
        """No dot-stuffing, no end-of-data line: ".\\r\\n" and "..x" are
        kept as sent, and a chunk may end inside a line or a CRLF."""
        c = self.session()
        self.envelope(c)
        parts = [b"a\r\n.\r\n", b"..x\r", b"\nbare\nlf\rcr\r\n.", b""]
        for p in parts[:-1]:
            c.send(bdat(p))
            c.expect(ok_chunk(p))
        c.send(bdat(parts[-1], last=True))
        c.expect_match("^" + OK_ID + "$")
        runs = self.d.wait_deliveries(1)
        self.assertEqual(runs[0]["data"], b"".join(parts))

    def test_bdat_zero_last(self):
        c = self.session()
        self.envelope(c)
        c.send(b"BDAT 0 LAST\r\n")
        c.expect_match("^" + OK_ID + "$")
        self.assertEqual(self.d.wait_deliveries(1)[0]["data"], b"")

    def test_last_any_case(self):
        c = self.session()
        self.envelope(c)
        c.send(b"bdat 3 lAsT\r\nxyz")
        c.expect_match("^" + OK_ID + "$")
        self.assertEqual(self.d.wait_deliveries(1)[0]["data"], b"xyz")

    def test_pipelined_in_one_write(self):
        """Two transactions, their chunks and QUIT in one segment: every
        reply, in order, without sending anything more."""
        c = self.connect()
        c.send(b"EHLO client.test\r\nMAIL FROM:<a@example.com>\r\n"
               b"RCPT TO:<b@example.com>\r\n" + bdat(b"first ") +
               bdat(b"part\r\n", last=True) +
               b"MAIL FROM:<>\r\nRCPT TO:<c@example.com>\r\n" +
               bdat(EVIL, last=True) + b"QUIT\r\n")
        c.expect(ehlo_lines())
        c.expect("250 OK")
        c.expect("250 OK")
        c.expect(ok_chunk(b"first "))
        c.expect_match("^" + OK_ID + "$")
        c.expect("250 OK")
        c.expect("250 OK")
        c.expect_match("^" + OK_ID + "$")
        c.expect("221 Bye")
        c.expect_closed()
        runs = self.d.deliveries()
        self.assertEqual([(r["argv"], r["data"]) for r in runs],
                         [(["a@example.com", "b@example.com"],
                           b"first part\r\n"),
                          (["", "c@example.com"], EVIL)])

    def test_reply_waits_for_the_chunk(self):
        """Nothing is answered before the chunk's last octet."""
        c = self.session()
        self.envelope(c)
        c.send(b"BDAT 10\r\n12345")
        c.assert_silent(0.3)
        c.send(b"67890")
        c.expect(ok_chunk(b"1234567890"))

    def test_message_ids_count_bdat_and_data(self):
        c = self.session()
        self.envelope(c)
        c.send(bdat(b"one\r\n", last=True))
        first = c.recv_reply()
        self.envelope(c)
        c.check("DATA", "354 End data with <CR><LF>.<CR><LF>")
        c.send(b"two\r\n.\r\n")
        second = c.recv_reply()
        self.assertRegex(first, r"^250 OK id=\S+\.1$")
        self.assertRegex(second, r"^250 OK id=\S+\.2$")

    def test_log_says_bdat(self):
        c = self.session()
        self.envelope(c)
        c.send(bdat(b"x\r\n") + bdat(b"y\r\n", last=True))
        c.expect(ok_chunk(b"x\r\n"))
        c.expect_match("^" + OK_ID + "$")
        self.assertTrue(self.d.wait_log(
            r" message \S+ via=BDAT chunks=2 size=6\n"))

    def test_one_mebibyte_in_chunks(self):
        line = b"".join(b"%06d " % i + b"x" * 70 + b"\r\n"
                        for i in range(13800))[:1 << 20]
        c = self.session()
        self.envelope(c)
        step = 300000
        parts = [line[i:i + step] for i in range(0, len(line), step)]
        for p in parts[:-1]:
            c.send(bdat(p))
        c.send(bdat(parts[-1], last=True))
        for p in parts[:-1]:
            c.expect(ok_chunk(p))
        c.expect_match("^" + OK_ID + "$", timeout=20)
        runs = self.d.wait_deliveries(1)
        self.assertEqual(len(runs[0]["data"]), 1 << 20)
        self.assertEqual(runs[0]["data"], line)

    def test_delivery_failure_is_the_reply_to_last(self):
        self.d.set_exit(67)
        c = self.session()
        self.envelope(c)
        c.send(bdat(b"x\r\n", last=True))
        c.expect("550 5.1.1 Delivery failed: no such user")
        # The transaction is over: MAIL is needed again.
        c.send(bdat(EVIL))
        c.expect(NEED_MAIL)

    def test_eof_after_last_delivers(self):
        c = self.session()
        self.envelope(c)
        c.send(bdat(b"x\r\n", last=True))
        c.shutdown_write()
        c.expect_match("^" + OK_ID + "$")
        self.assertEqual(len(self.d.wait_deliveries(1)), 1)

    def test_eof_inside_chunk_delivers_nothing(self):
        c = self.session()
        self.envelope(c)
        c.send(bdat(b"x\r\n") + b"BDAT 10 LAST\r\nabc")
        c.expect(ok_chunk(b"x\r\n"))
        c.shutdown_write()
        c.expect_closed()
        self.assertTrue(self.d.wait_log(r"message \S+ aborted after 6 "))
        self.assertEqual(self.d.deliveries(), [])


class TestBdatReceived(BdatCase):
    CONFIG = RECORD

    def test_received_header_first(self):
        c = self.session()
        self.envelope(c)
        c.send(bdat(b"Subject: t\r\n") + bdat(b"\r\nbody\r\n", last=True))
        c.expect(ok_chunk(b"Subject: t\r\n"))
        c.expect_match("^" + OK_ID + "$")
        head, rest = strip_received(self.d.wait_deliveries(1)[0]["data"])
        self.assertIsNotNone(head)
        self.assertEqual(rest, b"Subject: t\r\n\r\nbody\r\n")


class TestBdatRefused(BdatCase):
    """17.1 rows 2-5: each refusal reads the chunk and drops it."""

    def test_before_helo(self):
        c = self.connect()
        c.send(bdat(EVIL))
        c.expect(HELO_FIRST)
        c.send(bdat(EVIL, last=True))
        c.expect(HELO_FIRST)
        self.assert_harmless(c)

    def test_without_mail(self):
        c = self.session()
        c.send(bdat(EVIL, last=True))
        c.expect(NEED_MAIL)
        self.assert_harmless(c)

    def test_without_rcpt(self):
        """The refused chunk was part of the message: the transaction has
        failed, and no later chunk makes a message without it."""
        c = self.session()
        c.check("MAIL FROM:<s@example.com>", "250 OK")
        c.send(bdat(EVIL))
        c.expect(NEED_RCPT)
        c.check("RCPT TO:<r@example.com>", "503 5.5.1 Error: RCPT after BDAT")
        c.send(bdat(b"ok\r\n", last=True))
        c.expect(NEED_RCPT)
        self.assertEqual(self.d.deliveries(), [])
        c.check("RSET", "250 OK")
        self.envelope(c)
        c.send(bdat(b"ok\r\n", last=True))
        c.expect_match("^" + OK_ID + "$")

    def expect_malformed(self, lines):
        """Each line, in a transaction of its own, gets the syntax reply
        and the close; the NOOP behind it is never a command."""
        for line in lines:
            with self.subTest(line=line[:16]):
                c = self.session()
                self.envelope(c)
                c.send(line + b"\r\nNOOP\r\n")
                c.expect(MALFORMED)
                c.expect_closed()
        self.assertEqual(self.d.deliveries(), [])

    def test_malformed_closes(self):
        self.expect_malformed((
            b"BDAT", b"BDAT x", b"BDAT 1 LAST x", b"BDAT  1",
            b"BDAT 1  LAST", b"BDAT -1", b"BDAT 1 FIRST",
            b"BDAT 12345678901234567890", b"BDAT 1\tLAST"))

    def test_malformed_before_any_other_check(self):
        """A malformed BDAT closes even where another refusal would come
        first: non-ASCII, a line over the command length, a line over
        max-line-length."""
        self.expect_malformed((
            b"BDAT 6 LAST\xff", b"BDAT 6 LAST" + b" " * 600,
            b"BDAT 6 LAST" + b" " * 2000, b"bdat 6" + b"x" * 2000))

    def test_rcpt_after_bdat(self):
        c = self.session()
        self.envelope(c)
        c.send(bdat(b"x\r\n"))
        c.expect(ok_chunk(b"x\r\n"))
        c.check("RCPT TO:<other@example.com>",
                "503 5.5.1 Error: RCPT after BDAT")
        c.send(bdat(b"y\r\n", last=True))
        c.expect_match("^" + OK_ID + "$")
        runs = self.d.wait_deliveries(1)
        self.assertEqual(runs[0]["argv"], ["s@example.com", "r@example.com"])
        self.assertEqual(runs[0]["data"], b"x\r\ny\r\n")

    def test_data_after_bdat(self):
        c = self.session()
        self.envelope(c)
        c.send(bdat(b"x\r\n"))
        c.expect(ok_chunk(b"x\r\n"))
        c.check("DATA", "503 5.5.1 Error: BDAT in progress, DATA not allowed")
        c.check("MAIL FROM:<s@example.com>", "503 Error: nested MAIL command")
        c.send(bdat(b"y\r\n", last=True))
        c.expect_match("^" + OK_ID + "$")

    def test_rset_ends_the_transaction(self):
        c = self.session()
        self.envelope(c)
        c.send(bdat(b"x\r\n"))
        c.expect(ok_chunk(b"x\r\n"))
        c.check("RSET", "250 OK")
        c.send(bdat(EVIL, last=True))
        c.expect(NEED_MAIL)
        self.envelope(c)
        c.send(bdat(b"new\r\n", last=True))
        c.expect_match("^" + OK_ID + "$")
        self.assertEqual(self.d.wait_deliveries(1)[0]["data"], b"new\r\n")

    def test_chunking_word_is_not_a_prefix(self):
        c = self.session()
        c.check("BDATX 1", '500 Error: command "BDATX" not recognized')


class TestBdatLimits(BdatCase):
    CONFIG = RECORD + "\nreceived-header no\nmax-message-size 100"

    def test_size_limit_fails_the_transaction(self):
        c = self.session()
        self.envelope(c)
        c.send(bdat(b"a" * 60))
        c.expect(ok_chunk(b"a" * 60))
        c.send(bdat(EVIL + b"b" * 20))          # 60 + 61 > 100
        c.expect(TOO_BIG)
        c.send(bdat(b"c", last=True))
        c.expect(FAILED)
        c.send(bdat(EVIL))
        c.expect(FAILED)
        c.check("RCPT TO:<x@example.com>", "503 5.5.1 Error: RCPT after BDAT")
        self.assert_harmless(c)
        c.check("RSET", "250 OK")
        self.envelope(c)
        c.send(bdat(b"d" * 100, last=True))     # exactly the limit
        c.expect_match("^" + OK_ID + "$")
        self.assertEqual(self.d.wait_deliveries(1)[0]["data"], b"d" * 100)

    def test_last_chunk_over_the_limit(self):
        c = self.session()
        self.envelope(c)
        c.send(bdat(EVIL + b"x" * 70, last=True))
        c.expect(TOO_BIG)
        c.send(bdat(b"x", last=True))
        c.expect(FAILED)
        self.assert_harmless(c)


class TestBdatLines(BdatCase):
    CONFIG = RECORD + "\nreceived-header no\nmax-line-length 100"

    def test_line_too_long_across_chunks(self):
        """Lines end at CRLF only, across chunks: 60 + 41 octets with a
        bare LF and a bare CR between them is one line of 101."""
        c = self.session()
        self.envelope(c)
        c.send(bdat(b"x" * 58 + b"\n\r"))
        c.expect(ok_chunk(b"x" * 60))
        c.send(bdat(b"y" * 39 + b"\r\n", last=True))
        c.expect(LINE_TOO_LONG)
        self.assertEqual(self.d.deliveries(), [])
        # The transaction is over.
        c.send(bdat(EVIL))
        c.expect(NEED_MAIL)

    def test_longest_line_across_chunks(self):
        """98 octets and a CRLF split between two chunks: at the limit."""
        c = self.session()
        self.envelope(c)
        c.send(bdat(b"x" * 60))
        c.expect(ok_chunk(b"x" * 60))
        c.send(bdat(b"y" * 38 + b"\r"))
        c.expect(ok_chunk(b"y" * 39))
        c.send(bdat(b"\nnext\r\n", last=True))
        c.expect_match("^" + OK_ID + "$")
        self.assertEqual(self.d.wait_deliveries(1)[0]["data"],
                         b"x" * 60 + b"y" * 38 + b"\r\nnext\r\n")


class TestBdatTimeout(BdatCase):
    CONFIG = RECORD + "\nreceived-header no\ntimeout 2"
    OPTS = {"timeout": None}

    def test_timer_restarts_at_every_read(self):
        """A chunk that trickles in over more than the timeout is fine;
        a pause longer than it inside a chunk ends the session."""
        c = self.session()
        self.envelope(c)
        c.send(b"BDAT 4 LAST\r\n")
        for ch in b"abcd":
            time.sleep(0.9)
            c.send(bytes([ch]))
        c.expect_match("^" + OK_ID + "$")
        self.envelope(c)
        c.send(b"BDAT 4 LAST\r\nab")
        c.expect_closed(timeout=5)
        self.assertEqual(len(self.d.deliveries()), 1)


class TestBdatLmtp(BdatCase):
    CONFIG = RECORD_EACH + "\nreceived-header no\nmax-message-size 100"
    OPTS = {"listen_opts": "lmtp"}

    def test_one_reply_per_recipient(self):
        c = self.session("LHLO client.test")
        self.envelope(c, ["a@example.com", "b@example.com", "a@example.com"])
        self.d.set_exit(67, rcpt="b@example.com")
        c.send(bdat(b"x\r\n") + bdat(b"y\r\n", last=True))
        c.expect(ok_chunk(b"x\r\n"))
        c.expect_match("^" + OK_ID + "$")
        c.expect("550 5.1.1 Delivery failed: no such user")
        c.expect_match("^" + OK_ID + "$")
        runs = self.d.wait_deliveries(3)
        self.assertEqual(sorted(r["argv"][1] for r in runs),
                         ["a@example.com", "a@example.com", "b@example.com"])
        self.assertTrue(all(r["data"] == b"x\r\ny\r\n" for r in runs))

    def test_last_over_the_limit_per_recipient(self):
        c = self.session("LHLO client.test")
        self.envelope(c, ["a@example.com", "b@example.com"])
        c.send(bdat(EVIL + b"x" * 70, last=True))
        c.expect(TOO_BIG)
        c.expect(TOO_BIG)
        c.send(bdat(EVIL))
        c.expect(NEED_MAIL)
        self.assert_harmless(c)

    def test_refused_in_lmtp(self):
        c = self.connect()
        c.send(bdat(EVIL, last=True))
        c.expect(HELO_FIRST)
        self.assert_harmless(c)


class TestBdatCommandLimit(BdatCase):
    CONFIG = RECORD + "\nreceived-header no\ncommand-limit BDAT 2"

    def test_421_after_the_chunk(self):
        c = self.session()
        self.envelope(c)
        c.send(bdat(b"a") + bdat(b"b"))
        c.expect(ok_chunk(b"a"))
        c.expect(ok_chunk(b"b"))
        c.send(bdat(EVIL, last=True) + b"NOOP\r\n")
        c.expect("421 4.7.0 BDAT sent too many times")
        c.expect_closed()
        self.assertEqual(self.d.deliveries(), [])


class TestBdatRequireAuth(BdatCase):
    CONFIG = (RECORD + "\nreceived-header no\nauth checkpassword /bin/false"
              "\nauth failure-delay 0")
    OPTS = {"listen_opts": "require-auth auth-plaintext"}

    def test_530_after_the_chunk(self):
        c = self.session()
        c.send(bdat(EVIL))
        c.expect(AUTH_REQUIRED)
        c.send(bdat(EVIL, last=True))
        c.expect(AUTH_REQUIRED)
        self.assert_harmless(c)


class TestBdatRequireStarttls(BdatCase):
    CONFIG = RECORD + "\ntls certificate @CERT@ key @KEY@"
    OPTS = {"listen_opts": "require-starttls"}

    @classmethod
    def setUpClass(cls):
        cls.d = certs.smtpd_with_cert(cls.CONFIG, **cls.OPTS)[0]

    def test_530_after_the_chunk(self):
        c = self.connect()
        c.send(bdat(EVIL))
        c.expect(NOT_FIRST)
        c.send(b"EHLO client.test\r\n" + bdat(b"STARTTLS\r\n", last=True))
        c.recv_reply()
        c.expect(NOT_FIRST)
        self.assert_harmless(c)

    def test_malformed_closes_before_530(self):
        for line in (b"BDAT 6 ", b"BDAT 99999999999999999999 LAST"):
            with self.subTest(line=line):
                c = self.connect()
                c.send(line + b"\r\nNOOP\r\n")
                c.expect(MALFORMED)
                c.expect_closed()


class TestChunkingOff(SmtpdTest):
    CONFIG = RECORD + "\nreceived-header no\nchunking no"

    def test_not_offered(self):
        c = self.connect()
        c.check("EHLO client.test", ehlo_lines(chunking=False))
        c.check("HELP BDAT", "501 Supported commands: DATA EHLO HELO HELP "
                "MAIL NOOP QUIT RCPT RSET VRFY")

    def test_bdat_unknown_and_what_follows_are_commands(self):
        c = self.session()
        c.send(b"BDAT 6\r\nNOOP\r\n")
        c.expect('500 Error: command "BDAT" not recognized')
        c.expect("250 OK")


class TestBdatBareReject(BdatCase):
    CONFIG = RECORD + "\nreceived-header no\nbare-newline reject"

    def test_bare_lf_across_chunks_refused(self):
        """A CR at the end of one chunk and an LF at the start of the
        next are a CRLF; an LF alone is bare."""
        c = self.session()
        self.envelope(c)
        c.send(bdat(b"a\r") + bdat(b"\nb\r\n", last=True))
        c.expect(ok_chunk(b"a\r"))
        c.expect_match("^" + OK_ID + "$")
        self.assertEqual(self.d.wait_deliveries(1)[0]["data"], b"a\r\nb\r\n")
        self.envelope(c)
        c.send(bdat(b"a\n") + bdat(b"b\r\n", last=True))
        c.expect(ok_chunk(b"a\n"))
        c.expect("550 5.5.2 Error: bare <CR> or <LF> received")
        self.assertEqual(len(self.d.deliveries()), 1)


class TestBdatBareNormalize(BdatCase):
    CONFIG = RECORD + "\nreceived-header no\nbare-newline normalize"

    def test_bare_lf_becomes_crlf(self):
        c = self.session()
        self.envelope(c)
        c.send(bdat(b"a\nb\r") + bdat(b"\nc\n", last=True))
        c.expect(ok_chunk(b"a\nb\r"))
        c.expect_match("^" + OK_ID + "$")
        self.assertEqual(self.d.wait_deliveries(1)[0]["data"],
                         b"a\r\nb\r\nc\r\n")
