"""HELO, EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT, VRFY, EXPN, HELP, and
the ESMTP parameters of MAIL and RCPT (RFC 5321 4.1.1, 1870, 6152, 6531)."""

import time
import unittest

from harness import OK_ID, RECORD, SmtpdTest, ehlo_lines

SYN_MAIL = "501 Syntax: MAIL FROM: <address>"
SYN_MAIL_E = "501 Syntax: MAIL FROM: <address> [SP <mail-parameters>]"
SYN_RCPT = "501 Syntax: RCPT TO: <address>"
SYN_RCPT_E = "501 Syntax: RCPT TO: <address> [SP <mail-parameters>]"
MALFORMED = "553 5.1.3 Error: malformed address"
HELO_FIRST = "503 Error: send HELO first"
NESTED = "503 Error: nested MAIL command"
NEED_MAIL = "503 Error: need MAIL command"
NEED_RCPT = "503 Error: need RCPT command"
BODY_ERR = "501 Error: BODY can only be one of 7BIT, 8BITMIME"
SIZE_ERR = "552 Error: message size exceeds fixed maximum message size"
MAIL_555 = "555 MAIL FROM parameters not recognized or not implemented"
RCPT_555 = "555 RCPT TO parameters not recognized or not implemented"
VRFY_OK = "252 Cannot VRFY user, but will accept message and attempt delivery"
DATA_354 = "354 End data with <CR><LF>.<CR><LF>"
HELP_LIST = "DATA EHLO HELO HELP MAIL NOOP QUIT RCPT RSET VRFY"


def drops_recipients(t, greeting, reply):
    """The recipients of the transaction a new greeting ends are not
    delivered with the next one."""
    c = t.session()
    c.check("MAIL FROM:<a@example.com>", "250 OK")
    c.check("RCPT TO:<b@example.com>", "250 OK")
    c.check(greeting, reply)
    t.d.clear_out()
    t.assertRegex(t.transaction(c, "c@example.com", ["d@example.com"],
                                b"x\r\n"), "^" + OK_ID + "$")
    runs = t.d.wait_deliveries(1)
    t.assertEqual([r["argv"] for r in runs],
                  [["c@example.com", "d@example.com"]])


class TestHelo(SmtpdTest):
    def test_helo(self):
        c = self.connect()
        c.check("HELO", "501 Syntax: HELO hostname")
        c.check("HELO    ", "501 Syntax: HELO hostname")
        c.check("HELO client.test", "250 mx.test")
        c.check("HELO anything at all [1.2.3.4]", "250 mx.test")
        c.check("helo x", "250 mx.test")

    def test_helo_resets_envelope_and_esmtp(self):
        c = self.session()
        c.check("MAIL FROM:<a@example.com> SIZE=10", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("HELO client.test", "250 mx.test")
        c.check("RCPT TO:<b@example.com>", NEED_MAIL)
        c.check("MAIL FROM:<a@example.com> SIZE=10", SYN_MAIL)
        c.check("MAIL FROM:<a@example.com>", "250 OK")

    def test_helo_drops_recipients(self):
        drops_recipients(self, "HELO client.test", "250 mx.test")

    def test_helo_control_and_dash_refused(self):
        c = self.connect()
        c.check("HELO a\x01b", "501 Syntax: HELO hostname")
        c.check("HELO -oQ", "501 Syntax: HELO hostname")
        c.check("HELO a\tb", "501 Syntax: HELO hostname")
        c.check("MAIL FROM:<a@example.com>", HELO_FIRST)
        c.check("EHLO a\x7fb", "501 Syntax: EHLO hostname")
        c.check("EHLO -x", "501 Syntax: EHLO hostname")
        c.check("MAIL FROM:<a@example.com>", HELO_FIRST)
        # a refused name changes nothing: the earlier HELO stays
        c.check("HELO ok.test", "250 mx.test")
        c.check("HELO -x", "501 Syntax: HELO hostname")
        c.check("MAIL FROM:<a@example.com>", "250 OK")


class TestEhlo(SmtpdTest):
    def test_ehlo(self):
        c = self.connect()
        c.check("EHLO", "501 Syntax: EHLO hostname")
        c.check("EHLO  ", "501 Syntax: EHLO hostname")
        got = c.check("EHLO client.test", ehlo_lines())
        self.assertEqual(got.split("\n")[3], "250-PIPELINING")
        c.check("ehlo other.name", ehlo_lines())

    def test_ehlo_resets_envelope(self):
        c = self.session()
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("EHLO client.test", ehlo_lines())
        c.check("DATA", NEED_RCPT)
        c.check("RCPT TO:<b@example.com>", NEED_MAIL)
        c.check("MAIL FROM:<a@example.com>", "250 OK")

    def test_ehlo_drops_recipients(self):
        drops_recipients(self, "EHLO client.test", ehlo_lines())

    def test_ehlo_exact_bytes(self):
        c = self.connect()
        c.send(b"EHLO client.test\r\n")
        raw = b"".join(c.recv_line() for _ in range(6))
        self.assertEqual(raw, b"250-mx.test\r\n250-SIZE 33554432\r\n"
                         b"250-8BITMIME\r\n250-PIPELINING\r\n"
                         b"250-CHUNKING\r\n250 HELP\r\n")


class TestEhloOptions(SmtpdTest):
    CONFIG = RECORD + "\nsmtputf8 yes\nmax-message-size 1K"

    def test_ehlo_smtputf8_and_size(self):
        c = self.connect()
        c.check("EHLO client.test",
                ["250-mx.test", "250-SIZE 1024", "250-8BITMIME",
                 "250-PIPELINING", "250-CHUNKING", "250-SMTPUTF8",
                 "250 HELP"])

    def test_mail_smtputf8(self):
        c = self.session()
        c.check("MAIL FROM:<a@example.com> SMTPUTF8", "250 OK")
        c.check("RSET", "250 OK")
        c.check("MAIL FROM:<a@example.com> SMTPUTF8=yes",
                "501 Error: SMTPUTF8 takes no arguments")
        c.check("MAIL FROM:<a@example.com> SIZE=1024", "250 OK")
        c.check("RSET", "250 OK")
        c.check("MAIL FROM:<a@example.com> SIZE=1025", SIZE_ERR)
        c.send("MAIL FROM:<ä@example.com> SMTPUTF8\r\n".encode())
        c.expect("250 OK")


class TestEhloUnlimited(SmtpdTest):
    CONFIG = RECORD + "\nmax-message-size 0"

    def test_ehlo_without_size(self):
        c = self.connect()
        c.check("EHLO client.test",
                ["250-mx.test", "250-8BITMIME", "250-PIPELINING",
                 "250-CHUNKING", "250 HELP"])
        c.check("MAIL FROM:<a@example.com> SIZE=999999999999", "250 OK")


class TestVerboseStates(SmtpdTest):
    """With -v each change of state is logged, all before the disconnect
    line: the session's end is no change of state (its envelope goes)."""
    OPTS = {"args": ("-v",)}

    def test_no_state_line_after_disconnect(self):
        c = self.session()
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("QUIT", "221 Bye")
        self.assertTrue(self.d.wait_log(r"disconnect commands="))
        time.sleep(0.2)
        lines = self.d.log().splitlines()
        sid = [ln for ln in lines if " disconnect commands=" in ln][-1]
        sid = sid.split()[1]
        mine = [ln.split(None, 2)[2] for ln in lines
                if ln.split()[1:2] == [sid]]
        self.assertEqual([ln for ln in mine if ln.startswith("state ")],
                         ["state INIT -> HELO", "state HELO -> MAIL",
                          "state MAIL -> RCPT"])
        self.assertTrue(mine[-1].startswith("disconnect commands=4 "),
                        mine)


class TestMail(SmtpdTest):
    def test_step1_no_helo(self):
        c = self.connect()
        c.check("MAIL FROM:<a@example.com>", HELO_FIRST)
        c.check("MAIL", HELO_FIRST)
        c.check("RCPT TO:<a@example.com>", HELO_FIRST)
        c.check("DATA", HELO_FIRST)

    def test_steps_3_to_5_syntax(self):
        c = self.session()
        for line in ("MAIL", "MAIL   ", "MAIL TO:<a@example.com>",
                     "MAIL FROM <a@example.com>", "MAIL FROM :<a@example.com>",
                     "MAIL FROMX:<a@example.com>", "MAIL <a@example.com>",
                     "MAIL FROM:", "MAIL FROM:    "):
            c.check(line, SYN_MAIL_E)
        c.check("mail from:<a@example.com>", "250 OK")
        c.check("RSET", "250 OK")
        c.check("MAIL From: <a@example.com>", "250 OK")
        c.check("RSET", "250 OK")
        c.check("MAIL FROM:a@example.com", "250 OK")

    def test_syntax_after_helo(self):
        c = self.session("HELO client.test")
        c.check("MAIL", SYN_MAIL)
        c.check("MAIL FROM:", SYN_MAIL)
        # nothing may follow the address in SMTP mode
        c.check("MAIL FROM:<a@example.com> SIZE=10", SYN_MAIL)
        c.check("MAIL FROM:<a@example.com> BODY=8BITMIME", SYN_MAIL)
        # the address is checked before what follows it
        c.check("MAIL FROM:<a@b@c> SIZE=10", MALFORMED)
        c.check("MAIL FROM:<a@example.com>   ", "250 OK")

    def test_malformed_path(self):
        c = self.session()
        c.check("MAIL FROM:<a@b@c>", MALFORMED)
        c.check("MAIL FROM:<-oQ@example.com>", MALFORMED)
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        # parsed (6) before the nested check (8)
        c.check("MAIL FROM:<a@b@c>", MALFORMED)
        c.check("MAIL FROM:<a@example.com>", NESTED)
        c.check("MAIL FROM:<>", NESTED)

    def test_bare_empty_quoted_string(self):
        # A bare "" normalises to nothing: no sender, and not the null
        # path. As aiosmtpd (its address is empty): the syntax 501,
        # before the nested-MAIL check and after HELO alike.
        c = self.session()
        c.check('MAIL FROM:""', SYN_MAIL_E)
        c.check('MAIL FROM:(c)""(d)', SYN_MAIL_E)
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check('MAIL FROM:""', SYN_MAIL_E)
        c.check("HELO client.test", "250 mx.test")
        c.check('MAIL FROM:""', SYN_MAIL)
        c.check('MAIL FROM:<"">', "250 OK")       # angle form: ""

    def test_null_sender_opens_transaction(self):
        c = self.session()
        c.check("MAIL FROM:<>", "250 OK")
        c.check("MAIL FROM:<a@example.com>", NESTED)
        c.check("RCPT TO:<b@example.com>", "250 OK")

    def test_step9_parameter_syntax(self):
        c = self.session()
        for p in ("SIZE 10000", "FOO=", "=BAR", "FO-O=1", "SIZE==1",
                  "BODY=8BITMIME FOO=", "A_B"):
            c.check("MAIL FROM:<anne@example.com> " + p, SYN_MAIL_E)
        c.check("MAIL FROM: Anne <anne@example.com>", SYN_MAIL_E)

    def test_step10_body(self):
        c = self.session()
        c.check("MAIL FROM:<anne@example.com> BODY=9BIT", BODY_ERR)
        c.check("MAIL FROM:<anne@example.com> BODY", BODY_ERR)
        c.check("MAIL FROM:<anne@example.com> BODY 9BIT", BODY_ERR)
        c.check("MAIL FROM:<anne@example.com> BODY=BINARYMIME", BODY_ERR)
        c.check("MAIL FROM:<anne@example.com> BODY=7BIT", "250 OK")
        c.check("RSET", "250 OK")
        c.check("MAIL FROM:<anne@example.com> body=8bitmime", "250 OK")

    def test_step11_12_smtputf8(self):
        c = self.session()
        c.check("MAIL FROM:<anne@example.com> SMTPUTF8=x",
                "501 Error: SMTPUTF8 takes no arguments")
        c.check("MAIL FROM:<anne@example.com> SMTPUTF8",
                "501 Error: SMTPUTF8 disabled")
        c.check("MAIL FROM:<anne@example.com> smtputf8",
                "501 Error: SMTPUTF8 disabled")

    def test_step13_14_size(self):
        c = self.session()
        c.check("MAIL FROM:<anne@example.com> SIZE", SYN_MAIL_E)
        c.check("MAIL FROM:<anne@example.com> SIZE=abc", SYN_MAIL_E)
        c.check("MAIL FROM:<anne@example.com> SIZE=-1", SYN_MAIL_E)
        c.check("MAIL FROM:<anne@example.com> SIZE=1.5", SYN_MAIL_E)
        c.check("MAIL FROM:<anne@example.com> SIZE=33554433", SIZE_ERR)
        c.check("MAIL FROM:<anne@example.com> SIZE=1 SIZE=999999999999",
                SIZE_ERR)
        c.check("MAIL FROM:<anne@example.com> SIZE=99999999999999999999999",
                SIZE_ERR)
        c.check("MAIL FROM:<anne@example.com> SIZE=33554432", "250 OK")
        c.check("RSET", "250 OK")
        c.check("MAIL FROM:<anne@example.com> SIZE=0", "250 OK")
        c.check("RSET", "250 OK")
        c.check("MAIL FROM:<anne@example.com> size=10 body=7bit", "250 OK")

    def test_step15_unknown_parameters(self):
        c = self.session()
        c.check("MAIL FROM:<anne@example.com> FOO=BAR", MAIL_555)
        c.check("MAIL FROM:<anne@example.com> FOO", MAIL_555)
        c.check("MAIL FROM:<anne@example.com> RET=HDRS ENVID=x", MAIL_555)
        c.check("MAIL FROM:<anne@example.com> AUTH=<>", MAIL_555)
        # SIZE is checked before unknown parameters
        c.check("MAIL FROM:<anne@example.com> FOO=BAR SIZE=abc", SYN_MAIL_E)
        # BODY before SIZE before unknown
        c.check("MAIL FROM:<anne@example.com> FOO=1 SIZE=abc BODY=x", BODY_ERR)
        c.check("MAIL FROM:<anne@example.com> FOO=1 SIZE=999999999999",
                SIZE_ERR)

    def test_rest_of_address_as_parameters(self):
        c = self.session()
        c.check("MAIL FROM:anne@exa mple.com", SYN_MAIL_E)
        c.check("MAIL FROM:anne@exa mple", MAIL_555)
        c.check("MAIL FROM:a,b@c", SYN_MAIL_E)
        c.check('MAIL FROM:a@b"c', SYN_MAIL_E)


class TestRcpt(SmtpdTest):
    def test_step1_3(self):
        c = self.connect()
        c.check("RCPT TO:<a@example.com>", HELO_FIRST)
        c.check("EHLO client.test", ehlo_lines())
        c.check("RCPT TO:<a@example.com>", NEED_MAIL)
        c.check("RCPT", NEED_MAIL)
        c.check("RCPT TO:<>", NEED_MAIL)

    def test_syntax(self):
        c = self.session()
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        for line in ("RCPT", "RCPT   ", "RCPT FROM:<b@example.com>",
                     "RCPT TO <b@example.com>", "RCPT TO :<b@example.com>",
                     "RCPT TO:", "RCPT TO:   ", "RCPT <b@example.com>"):
            c.check(line, SYN_RCPT_E)
        c.check("rcpt to:<b@example.com>", "250 OK")
        c.check("RCPT To: <b@example.com>", "250 OK")
        c.check("RCPT TO:b@example.com", "250 OK")

    def test_syntax_after_helo(self):
        c = self.session("HELO client.test")
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT", SYN_RCPT)
        c.check("RCPT TO:<b@example.com> NOTIFY=NEVER", SYN_RCPT)
        c.check("RCPT TO:<b@example.com> X", SYN_RCPT)
        c.check("RCPT TO:<b@b@c> X", MALFORMED)
        c.check("RCPT TO:<b@example.com>", "250 OK")

    def test_null_recipient(self):
        c = self.session()
        c.check("MAIL FROM:<>", "250 OK")
        c.check("RCPT TO:<>", MALFORMED)
        c.check("RCPT TO: <>", MALFORMED)
        c.check("RCPT TO:<> NOTIFY=NEVER", MALFORMED)
        c.check("DATA", NEED_RCPT)

    def test_bare_empty_quoted_string(self):
        c = self.session()
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check('RCPT TO:""', SYN_RCPT_E)
        c.check('RCPT TO: (c)""', SYN_RCPT_E)
        c.check("DATA", NEED_RCPT)
        c.check('RCPT TO:<"">', "250 OK")

    def test_malformed(self):
        c = self.session()
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<a@b@c>", MALFORMED)
        c.check("RCPT TO:<-b@example.com>", MALFORMED)
        c.check("RCPT TO:-b", MALFORMED)

    def test_parameters(self):
        c = self.session()
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com> NOTIFY=NEVER", RCPT_555)
        c.check("RCPT TO:<b@example.com> ORCPT=rfc822;b@example.com",
                RCPT_555)
        c.check("RCPT TO:<b@example.com> FOO", RCPT_555)
        c.check("RCPT TO:<b@example.com> SIZE=10", RCPT_555)
        c.check("RCPT TO:<b@example.com> =x", SYN_RCPT_E)
        c.check("RCPT TO:<b@example.com> NOTIFY=", SYN_RCPT_E)
        c.check("RCPT TO:<b@example.com> A-B=1", SYN_RCPT_E)
        c.check("RCPT TO:b@exa mple.com", SYN_RCPT_E)
        c.check("RCPT TO:b@exa mple", RCPT_555)
        c.check("RCPT TO:<b@example.com>", "250 OK")


class TestMaxRecipients(SmtpdTest):
    CONFIG = RECORD + "\nmax-recipients 3\nreceived-header no"

    def test_452(self):
        c = self.session()
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        for r in ("r1", "r2", "r2"):
            c.check("RCPT TO:<%s@example.com>" % r, "250 OK")
        c.check("RCPT TO:<r4@example.com>",
                "452 4.5.3 Error: too many recipients")
        c.check("RCPT TO:<r5@example.com>",
                "452 4.5.3 Error: too many recipients")
        c.check("DATA", DATA_354)
        c.send(b"x\r\n.\r\n")
        c.expect_match(OK_ID)
        runs = self.d.deliveries()
        self.assertEqual(len(runs), 1)
        self.assertEqual(runs[0]["argv"], ["a@example.com", "r1@example.com",
                                           "r2@example.com", "r2@example.com"])
        # the next transaction has its own count
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        for r in ("r1", "r2", "r3"):
            c.check("RCPT TO:<%s@example.com>" % r, "250 OK")
        c.check("RCPT TO:<r4@example.com>",
                "452 4.5.3 Error: too many recipients")


class TestData(SmtpdTest):
    def test_steps(self):
        c = self.connect()
        c.check("DATA", HELO_FIRST)
        c.check("EHLO client.test", ehlo_lines())
        c.check("DATA", NEED_RCPT)
        c.check("DATA x", NEED_RCPT)
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("DATA", NEED_RCPT)
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("DATA x", "501 Syntax: DATA")
        c.check("DATA", DATA_354)          # the transaction was kept
        c.send(b"hi\r\n.\r\n")
        c.expect_match(OK_ID)
        # envelope reset, HELO kept
        c.check("RCPT TO:<b@example.com>", NEED_MAIL)
        c.check("DATA", NEED_RCPT)
        c.check("MAIL FROM:<a@example.com>", "250 OK")


class TestSimple(SmtpdTest):
    def test_rset(self):
        c = self.connect()
        c.check("RSET", "250 OK")                 # no HELO needed
        c.check("RSET x", "501 Syntax: RSET")
        c.check("EHLO client.test", ehlo_lines())
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("RSET x", "501 Syntax: RSET")
        c.check("MAIL FROM:<a@example.com>", NESTED)
        c.check("RSET", "250 OK")
        c.check("RCPT TO:<b@example.com>", NEED_MAIL)
        c.check("MAIL FROM:<a@example.com>", "250 OK")   # EHLO kept

    def test_noop(self):
        c = self.connect()
        c.check("NOOP", "250 OK")
        c.check("NOOP whatever you say", "250 OK")

    def test_quit(self):
        c = self.connect()
        c.check("QUIT now", "501 Syntax: QUIT")
        c.check("NOOP", "250 OK")
        c.check("QUIT", "221 Bye")
        c.expect_closed()

    def test_quit_ignores_pipelined_input(self):
        c = self.connect()
        c.send(b"NOOP\r\nQUIT\r\nNOOP\r\nHELO x\r\n")
        c.expect("250 OK")
        c.expect("221 Bye")
        c.expect_closed()

    def test_vrfy(self):
        c = self.connect()
        c.check("VRFY", "501 Syntax: VRFY <address>")
        c.check("VRFY   ", "501 Syntax: VRFY <address>")
        c.check("VRFY anne@example.com", VRFY_OK)
        c.check("VRFY <anne@example.com>", VRFY_OK)
        c.check("VRFY <anne@example.com> anything after", VRFY_OK)
        c.check("VRFY <>", VRFY_OK)
        c.check('VRFY ""', VRFY_OK)             # parses, as in aiosmtpd
        c.check("VRFY Postmaster", VRFY_OK)
        c.check("VRFY <a@b@c>", "502 Could not VRFY <a@b@c>")
        c.check("VRFY    <a@b@c>   ", "502 Could not VRFY <a@b@c>")
        c.check("VRFY -oQ@example.com", "502 Could not VRFY -oQ@example.com")
        c.check('VRFY "-a"@example.com', '502 Could not VRFY "-a"@example.com')
        c.check('VRFY "anne@example.com', '502 Could not VRFY "anne@example.com')
        c.check("VRFY <a\x01b@example.com>",
                "502 Could not VRFY <a?b@example.com>")
        c.check("VRFY <a\tb@example.com>",
                "502 Could not VRFY <a?b@example.com>")

    def test_expn(self):
        c = self.connect()
        c.check("EXPN", "502 EXPN not implemented")
        c.check("EXPN staff", "502 EXPN not implemented")
        c.check("EHLO client.test", ehlo_lines())
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("EXPN staff", "502 EXPN not implemented")
        c.check("RCPT TO:<b@example.com>", "250 OK")   # state unchanged

    def test_help(self):
        c = self.connect()
        c.check("HELP", "250 Supported commands: " + HELP_LIST)
        c.check("HELP MAIL", "250 Syntax: MAIL FROM: <address>")
        c.check("HELP RCPT", "250 Syntax: RCPT TO: <address>")
        c.check("EHLO client.test", ehlo_lines())
        topics = {
            "HELO": "Syntax: HELO hostname",
            "EHLO": "Syntax: EHLO hostname",
            "MAIL": "Syntax: MAIL FROM: <address> [SP <mail-parameters>]",
            "RCPT": "Syntax: RCPT TO: <address> [SP <mail-parameters>]",
            "DATA": "Syntax: DATA",
            "RSET": "Syntax: RSET",
            "NOOP": "Syntax: NOOP [ignored]",
            "QUIT": "Syntax: QUIT",
            "VRFY": "Syntax: VRFY <address>",
            "HELP": "Syntax: HELP [command]",
        }
        for t, text in topics.items():
            c.check("HELP " + t, "250 " + text)
        c.check("help mail", "250 " + topics["MAIL"])
        for bad in ("FOO", "EXPN", "AUTH", "STARTTLS", "LHLO", "MAIL RCPT"):
            c.check("HELP " + bad, "501 Supported commands: " + HELP_LIST)
        c.check("HELO client.test", "250 mx.test")
        c.check("HELP MAIL", "250 Syntax: MAIL FROM: <address>")
        c.check("HELP RCPT", "250 Syntax: RCPT TO: <address>")


if __name__ == "__main__":
    unittest.main()
