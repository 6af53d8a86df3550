"""Greeting, reading a command line, unknown commands, command-limit
(smtpd.8 DIAGNOSTICS, 500 and 502, 421)."""

import unittest

from harness import RECORD, SmtpdTest, ehlo_lines

TOO_LONG = "500 Command line too long"
BAD = "500 Error: bad syntax"
STRICT = "500 Error: strict ASCII mode"
GOODBYE = "502 5.5.1 Too many unrecognized commands, goodbye."


def unknown(verb):
    return '500 Error: command "%s" not recognized' % verb


def mail_line(length):
    """A valid `MAIL FROM:<...>` line of exactly length octets."""
    fixed = len("MAIL FROM:<@example.com>")
    return "MAIL FROM:<%s@example.com>" % ("a" * (length - fixed))


class TestLines(SmtpdTest):
    CONFIG = RECORD

    def test_greeting(self):
        c = self.connect(greeting=False)
        self.assertEqual(c.recv_line(), b"220 mx.test ESMTP smtpd\r\n")

    def test_line_endings(self):
        c = self.connect()
        c.send(b"NOOP\n")
        c.expect("250 OK")
        c.send(b"NOOP\r\n")
        c.expect("250 OK")
        c.send(b"NOOP\r\r\n")
        c.expect("250 OK")
        c.send(b"noop\r\n")
        c.expect("250 OK")
        c.send(b"NoOp ignored argument\r\n")
        c.expect("250 OK")

    def test_empty_line(self):
        c = self.connect()
        c.send(b"\r\n")
        c.expect(BAD)
        c.send(b"\n")
        c.expect(BAD)
        c.send(b"\r\r\n")
        c.expect(BAD)
        c.check("NOOP", "250 OK")

    def test_non_ascii_verb(self):
        c = self.connect()
        c.send("NÖOP\r\n".encode())
        c.expect(BAD)
        c.send(b"\xffNOOP\r\n")
        c.expect(BAD)
        # The verb is checked before the argument: a non-ASCII verb with a
        # non-ASCII argument is bad syntax, not strict ASCII mode.
        c.send("MÄIL FROM:<ä@example.com>\r\n".encode())
        c.expect(BAD)
        c.check("NOOP", "250 OK")

    def test_strict_ascii(self):
        c = self.connect()
        c.send("NOOP é\r\n".encode())
        c.expect(STRICT)
        c.send(b"HELO \xff\r\n")
        c.expect(STRICT)
        c.send(b"FOO \x80\r\n")
        c.expect(STRICT)
        c.check("EHLO client.test", ehlo_lines())
        c.send("MAIL FROM:<ä@example.com>\r\n".encode())
        c.expect(STRICT)
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.send("RCPT TO:<b@exämple.com>\r\n".encode())
        c.expect(STRICT)
        c.check("RCPT TO:<b@example.com>", "250 OK")

    def test_strict_ascii_not_counted_as_unknown(self):
        c = self.connect()
        for _ in range(6):
            c.send(b"FOO \xe9\r\n")
            c.expect(STRICT)
        c.check("NOOP", "250 OK")

    def test_step1_line_longer_than_max_line_length(self):
        c = self.connect()
        c.send(b"NOOP " + b"x" * 1995 + b"\r\n")
        c.expect(TOO_LONG)
        c.check("NOOP", "250 OK")
        # One reply per long line, after its LF; the next line is intact.
        c.send(b"X" * 2000 + b"\r\n" + b"Y" * 5000 + b"\nNOOP\r\n")
        c.expect(TOO_LONG)
        c.expect(TOO_LONG)
        c.expect("250 OK")

    def test_step1_long_line_in_pieces(self):
        c = self.connect()
        c.send(b"MAIL FROM:<" + b"a" * 1500)
        c.assert_silent(0.2)
        c.send(b"a" * 1500)
        c.assert_silent(0.2)
        c.send(b"@example.com>\r\nNOOP\r\n")
        c.expect(TOO_LONG)
        c.expect("250 OK")

    def test_step5_command_limit_512(self):
        c = self.connect()
        line = "NOOP " + "x" * 595
        self.assertEqual(len(line), 600)
        c.check(line, TOO_LONG)
        c.check("NOOP " + "x" * 507, "250 OK")          # 512 octets
        c.check("NOOP " + "x" * 508, TOO_LONG)          # 513 octets
        # CR/LF are not part of the length
        c.send(b"NOOP " + b"x" * 507 + b"\r\r\r\n")
        c.expect("250 OK")
        c.check("FOO " + "x" * 600, TOO_LONG)

    def test_step5_mail_allowance_after_ehlo(self):
        c = self.connect()
        c.check("EHLO client.test", ehlo_lines())
        c.check(mail_line(538), "250 OK")
        c.check("RSET", "250 OK")
        c.check(mail_line(539), TOO_LONG)
        # RCPT gets no allowance
        c.check(mail_line(520), "250 OK")
        c.check("RCPT TO:<%s@example.com>" % ("b" * (513 - 22)), TOO_LONG)

    def test_step5_mail_no_allowance_after_helo(self):
        c = self.connect()
        c.check("HELO client.test", "250 mx.test")
        c.check(mail_line(512), "250 OK")
        c.check("RSET", "250 OK")
        c.check(mail_line(513), TOO_LONG)

    def test_step5_allowance_from_last_greeting(self):
        c = self.connect()
        c.check("EHLO client.test", ehlo_lines())
        c.check("EHLO client.test", ehlo_lines())
        c.check(mail_line(539), TOO_LONG)
        c.check("HELO client.test", "250 mx.test")
        c.check(mail_line(513), TOO_LONG)

    def test_step5_before_greeting(self):
        c = self.connect()
        c.check(mail_line(513), TOO_LONG)
        c.check(mail_line(512), "503 Error: send HELO first")

    def test_unknown_commands(self):
        c = self.connect()
        c.check("FOO", unknown("FOO"))
        c.check("bar baz", unknown("BAR"))
        c.check("NOOP", "250 OK")       # does not reset the count
        c.check("LHLO client.test", unknown("LHLO"))
        c.check("AUTH PLAIN", unknown("AUTH"))
        c.check("FOO", GOODBYE)
        c.expect_closed()

    def test_echo_of_a_long_verb_is_cut(self):
        # A 475-octet verb would make a 513-octet reply line, a 512-octet
        # one (the longest command line) 550; both are cut at 512.
        c = self.connect()
        for n in (475, 512):
            c.send(b"X" * n + b"\r\n")
            want = unknown("X" * n)[:510]
            self.assertEqual(c.recv_line(), want.encode() + b"\r\n")
        c.check("FOO", unknown("FOO"))

    def test_argument_trimming(self):
        # SP HT VT FF around the argument are removed; empty = no argument
        c = self.connect()
        c.check("HELO \t\x0b\x0c", "501 Syntax: HELO hostname")
        c.check("RSET \t", "250 OK")
        c.check("HELP  mail  ", "250 Syntax: MAIL FROM: <address>")
        c.check("EHLO client.test", ehlo_lines())
        c.check("MAIL FROM:<a@example.com>\t\x0b", "250 OK")
        c.check("RCPT TO:<b@example.com> \t", "250 OK")
        c.check("DATA \x0c", "354 End data with <CR><LF>.<CR><LF>")
        c.send(b".\r\n")
        c.expect_match(r"250 OK id=\S+")
        c.check("VRFY \x0b<a@b@c>\x0c", "502 Could not VRFY <a@b@c>")
        c.check("QUIT \x0c", "221 Bye")

    def test_unknown_tab_is_not_a_separator(self):
        c = self.connect()
        # The verb is "NOOP<TAB>X" (upper-cased). Nothing says
        # how a control character is echoed: literally or as "?".
        got = c.cmd("NOOP\tx")
        self.assertRegex(got, r'^500 Error: command "NOOP[\t?]X" not '
                         r'recognized$')
        c.check("NOOP", "250 OK")

    def test_not_counted_as_unknown(self):
        # empty lines, bad syntax, too long lines do not count
        c = self.connect()
        c.check("FOO", unknown("FOO"))
        for _ in range(5):
            c.check("", BAD)
            c.send("ÜBER\r\n".encode())
            c.expect(BAD)
            c.check("X" * 600, TOO_LONG)
        c.check("FOO", unknown("FOO"))
        c.check("FOO", unknown("FOO"))
        c.check("FOO", unknown("FOO"))
        c.check("FOO", GOODBYE)
        c.expect_closed()

    def test_long_unknown_verb_echoed_whole(self):
        # The verb of a line that passes the 512-octet limit is echoed
        # whole, as aiosmtpd does, as long as the reply line stays within
        # RFC 5321 4.5.3.1.5's 512 octets with its CRLF: 474 octets.
        c = self.connect()
        verb = "X" * 40 + "Y"
        c.check(verb.lower() + " arg", unknown(verb))
        verb = "Z" * 474
        c.check(verb, unknown(verb))

    def test_five_unknown_pipelined(self):
        c = self.connect()
        c.send(b"A\r\nB\r\nC\r\nD\r\nE\r\nNOOP\r\n")
        for v in "ABCD":
            c.expect(unknown(v))
        c.expect(GOODBYE)
        c.expect_closed()

    def test_starttls_not_offered(self):
        c = self.connect()
        c.check("STARTTLS", "454 TLS not available")
        c.check("STARTTLS now", "501 Syntax: STARTTLS")
        c.check("EHLO client.test", ehlo_lines())
        c.check("STARTTLS", "454 TLS not available")


class TestSmtputf8Lines(SmtpdTest):
    CONFIG = RECORD + "\nsmtputf8 yes"

    def test_non_ascii_argument_allowed(self):
        c = self.connect()
        c.send("NOOP é\r\n".encode())
        c.expect("250 OK")
        c.send(b"NOOP \xff\xfe\r\n")     # invalid UTF-8 too
        c.expect("250 OK")
        c.send("NÖOP\r\n".encode())
        c.expect(BAD)

    def test_mail_allowance_548(self):
        c = self.connect()
        c.check("EHLO client.test", ehlo_lines(smtputf8=True))
        c.check(mail_line(548), "250 OK")
        c.check("RSET", "250 OK")
        c.check(mail_line(549), TOO_LONG)
        c.check("HELO client.test", "250 mx.test")
        c.check(mail_line(513), TOO_LONG)


class TestAllowanceNoSize(SmtpdTest):
    CONFIG = RECORD + "\nmax-message-size 0\nsmtputf8 yes"

    def test_mail_allowance_without_size(self):
        c = self.connect()
        c.check("EHLO client.test", ehlo_lines(size=0, smtputf8=True))
        c.check(mail_line(522), "250 OK")
        c.check("RSET", "250 OK")
        c.check(mail_line(523), TOO_LONG)


class TestMaxLineLength(SmtpdTest):
    CONFIG = RECORD + "\nmax-line-length 100"

    def test_step1_decides_with_small_max_line_length(self):
        c = self.connect()
        c.check("NOOP " + "x" * 93, "250 OK")     # 98 + CRLF = 100
        c.check("NOOP " + "x" * 94, TOO_LONG)     # 101 octets with CRLF
        c.check("NOOP", "250 OK")

    def test_data_line_limit_follows_max_line_length(self):
        c = self.connect()
        c.check("EHLO client.test", ehlo_lines())
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("DATA", "354 End data with <CR><LF>.<CR><LF>")
        c.send(b"a" * 98 + b"\r\n.\r\n")              # 100 octets
        c.expect_match(r"250 OK id=\S+")
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("DATA", "354 End data with <CR><LF>.<CR><LF>")
        c.send(b"a" * 99 + b"\r\n.\r\n")              # 101 octets
        c.expect("500 Line too long (see RFC5321 4.5.3.1.6)")


class TestLongReplies(SmtpdTest):
    """RFC 5321 4.5.3.1.5: a reply line is 512 octets at most with its
    CRLF, whatever the client has us echo and whatever the delivery
    program says; the cut does not split a UTF-8 sequence."""
    CONFIG = RECORD + "\nsmtputf8 yes\nenhanced-status-codes yes"

    def test_vrfy_echo_is_cut(self):
        c = self.connect()
        arg = "<" + "a" * 490 + "@@example.com>"
        c.send(b"VRFY " + arg.encode() + b"\r\n")
        want = "502 5.5.1 Could not VRFY " + arg
        self.assertEqual(c.recv_line(), want[:510].encode() + b"\r\n")
        c.check("NOOP", "250 2.0.0 OK")

    def test_cut_between_characters(self):
        # After the 25 octets of "502 5.5.1 Could not VRFY ", two-octet
        # characters: the 243rd would take octets 510 and 511, so the line
        # ends before it, at 509 octets and its CRLF.
        c = self.connect()
        arg = "\u00e9" * 245 + "@@example.com"
        c.send(("VRFY " + arg + "\r\n").encode())
        self.assertEqual(c.recv_line(), ("502 5.5.1 Could not VRFY " +
                         "\u00e9" * 242 + "\r\n").encode())
        c.check("NOOP", "250 2.0.0 OK")

    def test_program_reply_is_cut(self):
        self.d.set_stdout("250 2.0.0 " + "x" * 600 + "\n")
        c = self.connect()
        c.check("EHLO client.test", ehlo_lines(enhanced=True, smtputf8=True))
        c.check("MAIL FROM:<a@example.com>", "250 2.1.0 OK")
        c.check("RCPT TO:<b@example.com>", "250 2.1.5 OK")
        c.check("DATA", "354 End data with <CR><LF>.<CR><LF>")
        c.send(b"hello\r\n.\r\n")
        self.assertEqual(c.recv_line(),
                         b"250 2.0.0 " + b"x" * 500 + b"\r\n")
        c.check("NOOP", "250 2.0.0 OK")


class TestBanner(SmtpdTest):
    CONFIG = RECORD + '\nbanner "Welcome to the test"'

    def test_banner(self):
        c = self.connect(greeting=False)
        c.expect("220 mx.test Welcome to the test")
        c.check("HELO client.test", "250 mx.test")


class TestCommandLimitInt(SmtpdTest):
    CONFIG = RECORD + "\ncommand-limit 3"

    def test_limit(self):
        c = self.connect()
        for _ in range(3):
            c.check("NOOP", "250 OK")
        c.check("RSET", "250 OK")
        c.check("NOOP", "421 4.7.0 NOOP sent too many times")
        c.expect_closed()

    def test_failed_commands_count(self):
        c = self.connect()
        for _ in range(3):
            c.check("MAIL FROM:<a@example.com>", "503 Error: send HELO first")
        c.check("mail FROM:<a@example.com>",
                "421 4.7.0 MAIL sent too many times")
        c.expect_closed()

    def test_data_lines_are_not_commands(self):
        c = self.connect()
        c.check("EHLO client.test", ehlo_lines())
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("DATA", "354 End data with <CR><LF>.<CR><LF>")
        c.send(b"NOOP\r\n" * 10 + b"DATA\r\n" * 5 + b".\r\n")
        c.expect_match(r"250 OK id=\S+")
        c.check("NOOP", "250 OK")

    def test_unknown_verb_budget_first(self):
        c = self.connect()
        for _ in range(3):
            c.check("FOO", unknown("FOO"))
        c.check("FOO", "421 4.7.0 FOO sent too many times")
        c.expect_closed()

    def test_long_verbs_have_budgets_of_their_own(self):
        # Per verb, however long: two verbs that share their first 31
        # letters are two budgets (and each is echoed whole).
        c = self.connect()
        a, b = "A" * 31 + "B", "A" * 31 + "C"
        for _ in range(2):
            c.check(a, unknown(a))
        c.check(b, unknown(b))
        c.check(a, unknown(a))
        c.check(a, "421 4.7.0 %s sent too many times" % a)
        c.expect_closed()

    def test_refused_lines_do_not_count(self):
        c = self.connect()
        for _ in range(4):
            c.send("NOOP é\r\n".encode())
            c.expect(STRICT)
            c.check("NOOP " + "x" * 600, TOO_LONG)
        for _ in range(3):
            c.check("NOOP", "250 OK")
        c.check("NOOP", "421 4.7.0 NOOP sent too many times")
        c.expect_closed()


class TestCommandLimitPerVerb(SmtpdTest):
    CONFIG = RECORD + "\ncommand-limit NOOP 2"

    def test_per_verb_and_default_20(self):
        c = self.connect()
        c.check("NOOP", "250 OK")
        c.check("NOOP", "250 OK")
        for _ in range(20):
            c.check("RSET", "250 OK")
        c.check("RSET", "421 4.7.0 RSET sent too many times")
        c.expect_closed()

    def test_per_verb(self):
        c = self.connect()
        c.check("NOOP", "250 OK")
        c.check("NOOP", "250 OK")
        c.check("NOOP", "421 4.7.0 NOOP sent too many times")
        c.expect_closed()


class TestCommandLimitStar(SmtpdTest):
    CONFIG = RECORD + "\ncommand-limit * 3\ncommand-limit NOOP 5"

    def test_star_default(self):
        c = self.connect()
        for _ in range(5):
            c.check("NOOP", "250 OK")
        for _ in range(3):
            c.check("RSET", "250 OK")
        c.check("RSET", "421 4.7.0 RSET sent too many times")
        c.expect_closed()

    def test_listed_verb(self):
        c = self.connect()
        for _ in range(5):
            c.check("NOOP", "250 OK")
        c.check("NOOP", "421 4.7.0 NOOP sent too many times")
        c.expect_closed()


if __name__ == "__main__":
    unittest.main()
