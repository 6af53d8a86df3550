"""Addresses through MAIL, RCPT and VRFY, and the
envelope the delivery program gets in argv (byte-exact)."""

import unittest

from harness import OK_ID, RECORD, SmtpdTest

MALFORMED = "553 5.1.3 Error: malformed address"
VRFY_OK = "252 Cannot VRFY user, but will accept message and attempt delivery"

# (text after "TO:" / "FROM:", normalised envelope address)
ACCEPTED = [
    ("anne@example.com", "anne@example.com"),
    ("<anne@example.com>", "anne@example.com"),
    ("  <anne@example.com>", "anne@example.com"),
    ("anne(comment)@example.com", "anne@example.com"),
    ("(c)anne@example.com", "anne@example.com"),
    ("anne@example.com(c)", "anne@example.com"),
    ("anne@machine(comment).  example", "anne@machine.example"),
    ("<anne @ example.com>", "anne@example.com"),
    ("<(c)anne(d)@(e)example.com(f)>", "anne@example.com"),
    ("<@example.org:anne@example.com>", "anne@example.com"),
    ("<@a.net,@b.org:anne@example.com>", "anne@example.com"),
    ("<@x,,@y:a@b>", "a@b"),
    ("anne@[IPv6:2001:db8::1]", "anne@[IPv6:2001:db8::1]"),
    ("<anne@[127.0.0.1]>", "anne@[127.0.0.1]"),
    ("anne@127.0.0.1", "anne@127.0.0.1"),
    ("anne@mail", "anne@mail"),
    ("mailhost!anne@example.com", "mailhost!anne@example.com"),
    ("anne%x.org@example.com", "anne%x.org@example.com"),
    ("$A12345@example.com", "$A12345@example.com"),
    ("customer/department=shipping@example.com",
     "customer/department=shipping@example.com"),
    ('"Abc@def"@example.com', '"Abc@def"@example.com'),
    ('"Fred Bloggs"@example.com', '"Fred Bloggs"@example.com'),
    ('" "@example.com', '" "@example.com'),
    ('"anne..arthur"@example.com', "anne..arthur@example.com"),
    ('much."more\\ unusual"@example.com', '"much.more unusual"@example.com'),
    ("Fred\\ Bloggs@example.com", '"Fred\\\\ Bloggs"@example.com'),
    ('""@example.com', "@example.com"),
    ('<""@example.com>', '""@example.com'),
    ("<Postmaster>", "Postmaster"),
    ("Postmaster", "Postmaster"),
    ("=?utf-8?q?x?=@example.com", "=?utf-8?q?x?=@example.com"),
    ("=?utf-8?q?-x?=@example.com", "=?utf-8?q?-x?=@example.com"),
    ("<anne@=?us-ascii?q?example.com?=>", "anne@=?us-ascii?q?example.com?="),
    ('"-a b"@example.com', '"-a b"@example.com'),
    ("a-b@example.com", "a-b@example.com"),
    ("a@-b.example", "a@-b.example"),
    ("a b@c", '"a b"@c'),
    ("x" * 70 + "@example.com", "x" * 70 + "@example.com"),
    ("y" * 500, "y" * 500),
    ('"a;b|c$(x)"@example.com', '"a;b|c$(x)"@example.com'),
    ("a|b&c`id`'q'*?@example.com", "a|b&c`id`'q'*?@example.com"),
    ('"a>b"@example.com', '"a>b"@example.com'),
    ('"a\\"b"@example.com', '"a\\"b"@example.com'),
]

# refused by MAIL and RCPT with 553, by VRFY with 502
REFUSED = [
    "<@example.com>", "<johnathon@>", "anne@@example.com", "a@b@c",
    "<a@b@c>", "a@.b", "a@b..c", "<<a@b>>", "<@x,a@b>", "<@:a@b>",
    "<@x:@y:a@b>", '"anne@example.com', '<"anne@example.com>',
    '"a\\"@example.com', '"', "anne@[1.2.3.4", "<anne@[1.2.3.4>",
    "-oQ@example.com", "<-oQ@example.com>", "-f", '"-a"@example.com',
    '"\\-a"@example.com', "(c)-a@example.com",
    "<@example.org:-a@example.com>",
    "<a", "<anne@example.com", "<@example.org:anne@example.com",
    "<anne@example.com SIZE=1", "<a@b c>",
    "<a\x00b@example.com>", "<a\rb@example.com>", "<a\tb@example.com>",
    "<a\x7fb@example.com>", "a\x01b@example.com", "<a@exa\x1bmple.com>",
    # decoded, a bracket would make another literal: x@[foo@[127.0.0.1]
    "<x@[foo@\\[127.0.0.1]>", "x@[a\\]b]", "<x@[a\\\\b]>",
]


def shown(arg):
    """VRFY's echo of a refused argument: trimmed, controls as '?'."""
    arg = arg.strip(" \t\r\n\x0b\x0c")
    return "".join("?" if ord(ch) < 0x20 or ord(ch) == 0x7f else ch
                   for ch in arg)


class TestAddresses(SmtpdTest):
    CONFIG = RECORD + "\nreceived-header no"

    def test_recipients_normalised_in_argv(self):
        c = self.session()
        c.check("MAIL FROM:<s@example.com>", "250 OK")
        for sent, _ in ACCEPTED:
            with self.subTest(rcpt=sent):
                c.check("RCPT TO:" + sent, "250 OK")
        c.check("DATA", "354 End data with <CR><LF>.<CR><LF>")
        c.send(b"x\r\n.\r\n")
        c.expect_match(OK_ID)
        runs = self.d.deliveries()
        self.assertEqual(len(runs), 1)
        argv = runs[0]["argv"]
        self.assertEqual(argv[0], "s@example.com")
        for (sent, want), got in zip(ACCEPTED, argv[1:]):
            with self.subTest(rcpt=sent):
                self.assertEqual(got, want)
        self.assertEqual(len(argv), 1 + len(ACCEPTED))
        self.assertEqual(runs[0]["env"]["SMTPD_RECIPIENTS"],
                         "\n".join(w for _, w in ACCEPTED))

    def test_senders_normalised_in_argv(self):
        senders = [
            ("anne(comment)@example.com", "anne@example.com"),
            ("<@a.net,@b.org:anne@example.com>", "anne@example.com"),
            ('"Fred Bloggs"@example.com', '"Fred Bloggs"@example.com'),
            ('much."more\\ unusual"@example.com',
             '"much.more unusual"@example.com'),
            ('""@example.com', "@example.com"),
            ('<""@example.com>', '""@example.com'),
            ('"a;b|c$(x)"@example.com', '"a;b|c$(x)"@example.com'),
            ("<>", ""),
            (" <>", ""),
        ]
        c = self.session()
        for sent, _ in senders:
            c.check("MAIL FROM:" + sent, "250 OK")
            c.check("RCPT TO:<r@example.com>", "250 OK")
            c.check("DATA", "354 End data with <CR><LF>.<CR><LF>")
            c.send(b"x\r\n.\r\n")
            c.expect_match(OK_ID)
        runs = self.d.deliveries()
        self.assertEqual(len(runs), len(senders))
        for (sent, want), run in zip(senders, runs):
            with self.subTest(sender=sent):
                self.assertEqual(run["argv"], [want, "r@example.com"])
                self.assertEqual(run["env"]["SMTPD_SENDER"], want)

    def test_refused_mail(self):
        c = self.session()
        for addr in REFUSED:
            with self.subTest(addr=addr):
                c.check("MAIL FROM:" + addr, MALFORMED)
        c.check("MAIL FROM:<s@example.com>", "250 OK")

    def test_refused_rcpt(self):
        c = self.session()
        c.check("MAIL FROM:<s@example.com>", "250 OK")
        for addr in REFUSED + ["<>"]:
            with self.subTest(addr=addr):
                c.check("RCPT TO:" + addr, MALFORMED)
        c.check("DATA", "503 Error: need RCPT command")

    def test_vrfy(self):
        c = self.connect()
        for addr in REFUSED:
            with self.subTest(addr=addr):
                c.check("VRFY " + addr, "502 Could not VRFY " + shown(addr))
        for sent, _ in ACCEPTED:
            with self.subTest(addr=sent):
                c.check("VRFY " + sent, VRFY_OK)
        c.check("VRFY <>", VRFY_OK)

    def test_unclosed_path_bare_lf(self):
        # A bare LF ends a command line: "<a" is all there is.
        c = self.session()
        c.send(b"MAIL FROM:<a\n")
        c.expect(MALFORMED)
        c.send(b"MAIL FROM:<s@example.com>\n")
        c.expect("250 OK")
        c.send(b"RCPT TO:<r@example.com\n")
        c.expect(MALFORMED)

    def test_nothing_refused_was_delivered(self):
        c = self.session()
        c.check("MAIL FROM:<-x@example.com>", MALFORMED)
        c.check("MAIL FROM:<s@example.com>", "250 OK")
        c.check("RCPT TO:<-x@example.com>", MALFORMED)
        c.check("RCPT TO:<r@example.com>", "250 OK")
        c.check("DATA", "354 End data with <CR><LF>.<CR><LF>")
        c.send(b"x\r\n.\r\n")
        c.expect_match(OK_ID)
        runs = self.d.deliveries()
        self.assertEqual([r["argv"] for r in runs],
                         [["s@example.com", "r@example.com"]])


class TestSmtputf8Addresses(SmtpdTest):
    CONFIG = RECORD + "\nsmtputf8 yes\nreceived-header no"

    def test_utf8_addresses(self):
        c = self.session()
        c.send("MAIL FROM:<ännä@exämple.com> SMTPUTF8\r\n".encode())
        c.expect("250 OK")
        c.send("RCPT TO:<bö@example.com>\r\n".encode())
        c.expect("250 OK")
        c.send('RCPT TO:<"ö ö"@example.com>\r\n'.encode())
        c.expect("250 OK")
        c.check("DATA", "354 End data with <CR><LF>.<CR><LF>")
        c.send(b"x\r\n.\r\n")
        c.expect_match(OK_ID)
        runs = self.d.deliveries()
        self.assertEqual(runs[0]["argv"], ["ännä@exämple.com", "bö@example.com",
                                           '"ö ö"@example.com'])
        self.assertEqual(runs[0]["env"]["SMTPD_SMTPUTF8"], "1")

    def test_utf8_address_logged_whole(self):
        # 120 characters of two octets each (240 octets, 4 log
        # characters an octet): whole, not cut with "...".
        local = "\u00e9" * 120
        c = self.session()
        c.check("MAIL FROM:<a@example.com> SMTPUTF8", "250 OK")
        c.send(("RCPT TO:<%s@example.com>\r\n" % local).encode())
        c.expect("250 OK")
        c.check("QUIT", "221 Bye")
        esc = r"(?:\\xc3\\xa9){120}@example\.com"
        self.assertTrue(self.d.wait_log(r"(?m) rcpt to=<%s>$" % esc),
                        self.d.log())


class TestMaxLocalPart(SmtpdTest):
    CONFIG = RECORD + "\nmax-local-part 5"

    def test_limit(self):
        c = self.session()
        c.check("MAIL FROM:<abcdef@example.com>", MALFORMED)
        c.check("MAIL FROM:<abcde@example.com>", "250 OK")
        c.check("RCPT TO:<abcde@example.com>", "250 OK")
        c.check("RCPT TO:<abcdef@example.com>", MALFORMED)
        c.check('RCPT TO:<"a b"@example.com>', "250 OK")
        c.check('RCPT TO:<"a bc"@example.com>', MALFORMED)
        c.check('RCPT TO:<"abcd"@example.com>', "250 OK")
        c.check('RCPT TO:<"abcdef"@example.com>', MALFORMED)
        # domain-less addresses escape the limit (quirk)
        c.check("RCPT TO:<abcdefghij>", "250 OK")
        c.check("VRFY abcdef@example.com",
                "502 Could not VRFY abcdef@example.com")
        c.check("VRFY abcde@example.com", VRFY_OK)


if __name__ == "__main__":
    unittest.main()
