"""smtpd.conf.5 DELIVERY COMMAND: exit status to
reply, the program's own reply, message ids, argv placeholders, the
environment, per-recipient runs, deliver-timeout, discard, the stdout sink,
and the log lines."""

import os
import re
import unittest

from harness import (OK_ID, RECORD, RECORD_EACH, Smtpd, SmtpdTest,
                     strip_received, wait_for)

DATA_354 = "354 End data with <CR><LF>.<CR><LF>"
TEMP = "451 4.3.0 Delivery failed temporarily, try again later"
STATUS = {
    0: None,
    67: "550 5.1.1 Delivery failed: no such user",
    68: "550 5.1.2 Delivery failed: host unknown",
    65: "554 5.6.0 Delivery failed: data format error",
    77: "554 5.7.1 Delivery failed: permission denied",
    69: "554 5.3.0 Delivery failed: service unavailable",
    75: TEMP,
    1: TEMP,
    64: TEMP,
    70: TEMP,
    100: TEMP,
    255: TEMP,
    "kill": TEMP,
}
ENV_KEYS = {"PATH", "SMTPD_SENDER", "SMTPD_RECIPIENTS", "SMTPD_CLIENT_ADDR",
            "SMTPD_CLIENT_PORT", "SMTPD_HELO", "SMTPD_AUTH_USER", "SMTPD_TLS",
            "SMTPD_ID", "SMTPD_BODY", "SMTPD_SMTPUTF8"}


class DeliveryCase(SmtpdTest):
    def deliver(self, c=None, sender="a@example.com", rcpts=("b@example.com",),
                body=b"Subject: t\r\n\r\nhi\r\n", mail_params=""):
        c = c or self.session()
        c.check("MAIL FROM:<%s>%s" % (sender, mail_params), "250 OK")
        for r in rcpts:
            c.check("RCPT TO:<%s>" % r, "250 OK")
        c.check("DATA", DATA_354)
        c.send(body + b".\r\n")
        return c.recv_reply()


class TestExitStatus(DeliveryCase):
    CONFIG = RECORD + "\nreceived-header no"

    def test_exit_status_to_reply(self):
        c = self.session()
        for status, want in STATUS.items():
            with self.subTest(status=status):
                self.d.clear_out()
                self.d.set_exit(status)
                got = self.deliver(c)
                if want is None:
                    self.assertRegex(got, "^" + OK_ID + "$")
                else:
                    self.assertEqual(got, want)
                self.assertEqual(len(self.d.deliveries()), 1)
                # envelope reset, session goes on
                c.check("RCPT TO:<b@example.com>",
                        "503 Error: need MAIL command")

    def test_ok_id_matches_smtpd_id(self):
        c = self.session()
        got = self.deliver(c)
        m = re.fullmatch(r"250 OK id=(\S+)", got)
        self.assertTrue(m, got)
        run = self.d.deliveries()[0]
        self.assertEqual(run["env"]["SMTPD_ID"], m.group(1))
        got2 = self.deliver(c)
        m2 = re.fullmatch(r"250 OK id=(\S+)", got2)
        self.assertTrue(m2, got2)
        self.assertNotEqual(m.group(1), m2.group(1))

    def test_program_reply_used(self):
        cases = [
            (0, "250 2.0.0 Queued as ABC123\n", "250 2.0.0 Queued as ABC123"),
            (0, "250 fine\r\nsecond line\n", "250 fine"),
            (0, "299 odd but 2xx\n", "299 odd but 2xx"),
            (67, "550 5.1.1 <b@example.com>: no mailbox here\n",
             "550 5.1.1 <b@example.com>: no mailbox here"),
            (65, "552 5.3.4 too big for me\n", "552 5.3.4 too big for me"),
            (75, "450 4.2.0 mailbox busy\n", "450 4.2.0 mailbox busy"),
            (0, "250 no newline at end", "250 no newline at end"),
        ]
        c = self.session()
        for status, out, want in cases:
            with self.subTest(status=status, out=out):
                self.d.clear_out()
                self.d.set_exit(status)
                self.d.set_stdout(out)
                self.assertEqual(self.deliver(c), want)

    def test_program_421_closes(self):
        """A 421 says the connection closes (RFC 5321 3.8): it does."""
        self.d.set_exit(1)
        self.d.set_stdout("421 4.3.2 shutting down\n")
        c = self.session()
        self.assertEqual(self.deliver(c), "421 4.3.2 shutting down")
        c.expect_closed()

    def test_program_reply_ignored(self):
        cases = [
            (0, "550 nope\n", None),
            (67, "250 fine\n", STATUS[67]),
            (65, "499 odd\n", STATUS[65]),
            (75, "250 fine\n", TEMP),
            (75, "550 5.0.0 permanent?\n", TEMP),
            (0, "250\n", None),
            (0, "free text\n", None),
            (0, "25 short\n", None),
            (0, "2500 long code\n", None),
            (0, "250-continued\n250 end\n", None),
            (0, "\n250 second line\n", None),
            (69, "abc 5xx\n", STATUS[69]),
        ]
        c = self.session()
        for status, out, want in cases:
            with self.subTest(status=status, out=out):
                self.d.clear_out()
                self.d.set_exit(status)
                self.d.set_stdout(out)
                got = self.deliver(c)
                if want is None:
                    self.assertRegex(got, "^" + OK_ID + "$")
                else:
                    self.assertEqual(got, want)

    def test_environment_exact(self):
        c = self.connect()
        c.cmd("EHLO helo.client.test")
        got = self.deliver(c, rcpts=("b@example.com", "c@example.com"))
        self.assertRegex(got, "^" + OK_ID + "$")
        env = self.d.deliveries()[0]["env"]
        self.assertEqual(set(env), ENV_KEYS, env)
        self.assertEqual(env["SMTPD_SENDER"], "a@example.com")
        self.assertEqual(env["SMTPD_RECIPIENTS"],
                         "b@example.com\nc@example.com")
        self.assertEqual(env["SMTPD_CLIENT_ADDR"], "127.0.0.1")
        self.assertEqual(env["SMTPD_CLIENT_PORT"], str(c.local_port))
        self.assertEqual(env["SMTPD_HELO"], "helo.client.test")
        self.assertEqual(env["SMTPD_AUTH_USER"], "")
        self.assertEqual(env["SMTPD_TLS"], "")
        self.assertEqual(env["SMTPD_ID"], got.split("id=", 1)[1])
        self.assertEqual(env["SMTPD_BODY"], "7BIT")
        self.assertEqual(env["SMTPD_SMTPUTF8"], "0")
        self.assertTrue(env["PATH"])

    def test_environment_body_and_null_sender(self):
        c = self.session("HELO old.style")
        got = self.deliver(c, sender="")
        self.assertRegex(got, "^" + OK_ID + "$")
        c.cmd("EHLO e")
        self.deliver(c, sender="", mail_params=" BODY=8BITMIME")
        runs = self.d.deliveries()
        self.assertEqual(runs[0]["env"]["SMTPD_SENDER"], "")
        self.assertEqual(runs[0]["argv"], ["", "b@example.com"])
        self.assertEqual(runs[0]["env"]["SMTPD_HELO"], "old.style")
        self.assertEqual(runs[1]["env"]["SMTPD_BODY"], "8BITMIME")
        self.assertEqual(runs[1]["env"]["SMTPD_HELO"], "e")

    def test_ids_unique_across_sessions(self):
        ids = set()
        for _ in range(3):
            c = self.session()
            for _ in range(2):
                got = self.deliver(c)
                self.assertRegex(got, "^" + OK_ID + "$")
                ids.add(got.split("id=", 1)[1])
            c.close()
        self.assertEqual(len(ids), 6, ids)

    def test_long_helo_name(self):
        name = "h" * 200 + "." + "x" * 290          # 491 octets
        c = self.connect()
        c.check("HELO " + name, "250 mx.test")
        self.deliver(c)
        self.assertEqual(self.d.deliveries()[0]["env"]["SMTPD_HELO"], name)

    def test_runs_as_unprivileged_user(self):
        if os.getuid() != 0:
            self.skipTest("not root")
        self.deliver()
        run = self.d.deliveries()[0]
        self.assertNotEqual(run["uid"], 0)

    def test_duplicate_recipients_kept(self):
        self.deliver(rcpts=("b@example.com", "b@example.com", "c@example.com"))
        run = self.d.deliveries()[0]
        self.assertEqual(run["argv"], ["a@example.com", "b@example.com",
                                       "b@example.com", "c@example.com"])


class TestManyRecipients(DeliveryCase):
    CONFIG = RECORD + "\nreceived-header no"

    def test_default_max_recipients_1000(self):
        c = self.session()
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.send(b"".join(b"RCPT TO:<r%d@example.com>\r\n" % i
                        for i in range(1001)))
        for i in range(1000):
            c.expect("250 OK")
        c.expect("452 4.5.3 Error: too many recipients")
        c.check("DATA", DATA_354)
        c.send(b"x\r\n.\r\n")
        c.expect_match(OK_ID)
        run = self.d.deliveries()[0]
        self.assertEqual(run["argv"], ["a@example.com"] + [
            "r%d@example.com" % i for i in range(1000)])


class TestPlaceholders(DeliveryCase):
    CONFIG = ('deliver "@RECORDER@ @OUT@ %{id} %{client} %{helo} '
              '%{user} %{sender} -- %{recipients}"\nreceived-header no')

    def test_placeholders(self):
        c = self.connect()
        c.cmd("EHLO my.helo")
        got = self.deliver(c, sender="", rcpts=("b@example.com",
                                                '"x y"@example.com'))
        run = self.d.deliveries()[0]
        msgid = got.split("id=", 1)[1]
        self.assertEqual(run["argv"], [msgid, "127.0.0.1", "my.helo",
                                       "", "", "--", "b@example.com",
                                       '"x y"@example.com'])


class TestReceivedOff(DeliveryCase):
    CONFIG = RECORD + "\nreceived-header no"

    def test_no_received_header(self):
        self.deliver(body=b"Subject: t\r\n\r\nhi\r\n")
        self.assertEqual(self.d.deliveries()[0]["data"],
                         b"Subject: t\r\n\r\nhi\r\n")


class TestReceivedOn(DeliveryCase):
    CONFIG = RECORD

    def test_received_header_present_and_first(self):
        body = b"Received: from earlier\r\nSubject: t\r\n\r\nhi\r\n"
        self.deliver(body=body)
        data = self.d.deliveries()[0]["data"]
        head, rest = strip_received(data)
        self.assertIsNotNone(head, data)
        self.assertEqual(rest, body)


class TestPerRecipient(DeliveryCase):
    CONFIG = RECORD_EACH + "\nreceived-header no"

    def run3(self, statuses, stdouts=None):
        self.d.clear_out()
        rcpts = ("r1@example.com", "r2@example.com", "r3@example.com")
        for r, s in zip(rcpts, statuses):
            self.d.set_exit(s, rcpt=r)
        for r, out in zip(rcpts, stdouts or ()):
            if out:
                self.d.set_stdout(out, rcpt=r)
        got = self.deliver(rcpts=rcpts)
        runs = self.d.deliveries()
        self.assertEqual(sorted(r["argv"][1] for r in runs), list(rcpts))
        return got

    def test_each_run_sees_its_recipient(self):
        got = self.run3((0, 0, 0))
        self.assertRegex(got, "^" + OK_ID + "$")
        for run in self.d.deliveries():
            self.assertEqual(len(run["argv"]), 2)
            self.assertEqual(run["argv"][0], "a@example.com")
            self.assertEqual(run["env"]["SMTPD_RECIPIENTS"], run["argv"][1])
            self.assertEqual(run["data"], b"Subject: t\r\n\r\nhi\r\n")

    def test_aggregation(self):
        self.assertEqual(self.run3((0, 67, 75)), TEMP)
        self.assertEqual(self.run3((67, 65, 0)), STATUS[67])
        self.assertEqual(self.run3((0, 65, 67)), STATUS[65])
        self.assertEqual(self.run3((0, 0, 69)), STATUS[69])
        self.assertEqual(self.run3((0, 1, 0)), TEMP)
        self.assertEqual(self.run3((77, 0, 75)), TEMP)

    def test_aggregation_uses_program_replies(self):
        got = self.run3((67, 75, 75), (None, "450 4.2.0 r2 busy\n",
                                       "451 4.2.0 r3 busy\n"))
        self.assertEqual(got, "450 4.2.0 r2 busy")
        got = self.run3((0, 67, 65), (None, "550 5.1.1 r2 unknown\n", None))
        self.assertEqual(got, "550 5.1.1 r2 unknown")

    def test_null_sender_each(self):
        self.deliver(sender="", rcpts=("r1@example.com", "r2@example.com"))
        runs = self.d.deliveries()
        self.assertEqual(sorted(r["argv"] for r in runs),
                         [["", "r1@example.com"], ["", "r2@example.com"]])
        for r in runs:
            self.assertEqual(r["env"]["SMTPD_SENDER"], "")


class TestDeliverTimeout(DeliveryCase):
    CONFIG = RECORD + "\ndeliver-timeout 1"

    def test_timeout_is_temporary(self):
        with open(os.path.join(self.d.out, "sleep"), "w") as f:
            f.write("4")
        got = self.deliver()
        self.assertEqual(got, TEMP)
        os.unlink(os.path.join(self.d.out, "sleep"))
        c = self.session()
        self.assertRegex(self.deliver(c), "^" + OK_ID + "$")


class TestExecFailure(DeliveryCase):
    """The program is there at start (smtpd refuses to start without
    it), then goes away."""
    CONFIG = 'deliver "@TMP@/program %{sender} %{recipients}"'

    @classmethod
    def setUpClass(cls):
        cls.d = Smtpd(cls.CONFIG, start=False)
        try:
            prog = os.path.join(cls.d.tmp, "program")
            with open(prog, "w") as f:
                f.write("#!/bin/sh\nexit 0\n")
            os.chmod(prog, 0o755)
            cls.d.start()
            os.unlink(prog)
        except BaseException:
            cls.d.cleanup()
            raise

    def test_cannot_exec_is_temporary(self):
        self.assertEqual(self.deliver(), TEMP)
        c = self.session()
        self.assertEqual(self.deliver(c), TEMP)
        c.check("NOOP", "250 OK")


class TestProgramSignals(DeliveryCase):
    """A program starts with every signal at its default disposition and
    none blocked: what smtpd catches (the master's and the children's
    handlers), what the broker ignores (SIGHUP, SIGPIPE, SIGUSR1) and what
    smtpd itself inherited ignored (SIGINT and SIGQUIT here, as a shell
    without job control leaves them for a command run with &)."""
    # Run by /bin/sh, which make check-valgrind does not trace: a program
    # under valgrind would show valgrind's signals, not smtpd's.
    CONFIG = 'deliver "/bin/sh @TMP@/program"'
    OPTS = {"wrapper": ["sh", "-c", 'trap "" INT QUIT; exec "$@"', "sh"],
            "start": False}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            prog = os.path.join(cls.d.tmp, "program")
            with open(prog, "w") as f:
                # exec: grep reads what it inherited through the shell
                # (one that does not wait for it, and so blocks nothing).
                f.write("#!/bin/sh\nexec grep '^Sig[BIC]' /proc/self/status"
                        " >%s/sig.$$\n" % cls.d.out)
            os.chmod(prog, 0o755)
            cls.d.start()
        except BaseException:
            cls.d.cleanup()
            raise

    def test_defaults(self):
        for _ in range(2):      # the broker's second start, too
            self.assertRegex(self.deliver(), "^" + OK_ID + "$")
        files = [n for n in os.listdir(self.d.out) if n.startswith("sig.")]
        self.assertEqual(len(files), 2, files)
        # Caught ones execve() resets; 32 and 33 are the C library's own
        # (signal(7)): its sigaction() refuses them, and whatever started
        # the tests may have left them ignored.
        libc = (1 << 31) | (1 << 32)
        for n in files:
            with open(os.path.join(self.d.out, n)) as f:
                got = dict(line.split(":\t") for line in f.read().split("\n")
                           if line)
            self.assertEqual(int(got["SigBlk"], 16), 0, got)
            self.assertEqual(int(got["SigIgn"], 16) & ~libc, 0, got)


class TestDiscard(DeliveryCase):
    CONFIG = "deliver discard"

    def test_discard(self):
        c = self.session()
        self.assertRegex(self.deliver(c), "^" + OK_ID + "$")
        self.assertRegex(self.deliver(c), "^" + OK_ID + "$")
        c.check("QUIT", "221 Bye")
        self.assertEqual(self.d.stdout(), b"")


class TestStdoutSink(DeliveryCase):
    CONFIG = ""      # no deliver line: -d prints every message to stdout

    def test_stdout_sink(self):
        got = self.deliver(body=b"Subject: sink test\r\n\r\nmarker-1234\r\n")
        self.assertRegex(got, "^" + OK_ID + "$")
        wait_for(lambda: b"marker-1234" in self.d.stdout(), 2.0)
        out = self.d.stdout()
        self.assertIn(b"marker-1234", out)
        self.assertIn(b"Subject: sink test", out)


class TestLogs(DeliveryCase):
    CONFIG = RECORD

    def test_log_lines(self):
        c = self.session()
        self.deliver(c, sender="logged@example.com",
                     rcpts=("first@example.net", "second@example.net"))
        c.check("QUIT", "221 Bye")
        c.expect_closed()
        self.assertTrue(self.d.wait_log(r"disconnect", 1), self.d.log())
        log = self.d.log()
        port = c.local_port
        self.assertRegex(log, r"connect from 127\.0\.0\.1:%d\b" % port)
        self.assertIn("mail from=<logged@example.com>", log)
        self.assertIn("rcpt to=<first@example.net>", log)
        self.assertIn("rcpt to=<second@example.net>", log)
        self.assertRegex(log, r"deliver id=\S+ (\S+ )*status=250 exit=0")
        self.assertRegex(log, r"disconnect commands=\d+ messages=1")
        # one session id prefixes all of that session's lines
        m = re.search(r"(\S+) connect from 127\.0\.0\.1:%d\b" % port, log)
        sid = m.group(1)
        for what in ("mail from=<logged@example.com>", "deliver id=",
                     "disconnect"):
            self.assertRegex(log, re.escape(sid) + " " + re.escape(what))

    def test_log_failed_delivery(self):
        self.d.set_exit(67)
        self.assertEqual(self.deliver(), STATUS[67])
        self.assertTrue(self.d.wait_log(r"deliver id=\S+ (\S+ )*status=550 "
                                        r"exit=67"),
                        self.d.log())


if __name__ == "__main__":
    unittest.main()
