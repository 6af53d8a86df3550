"""Policy: recipient and sender tables, client networks, the Postfix
policy delegation protocol (tests/e2e/policy_server.py), and a real
postgrey when it is installed."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

from harness import (HERE, RECORD, Smtpd, SmtpdTest, free_port, stop_process,
                     wait_for)

SERVER = os.path.join(HERE, "policy_server.py")


def table_daemon(config, tables):
    """An smtpd whose table files (name: text) are in its temp dir."""
    d = Smtpd(config, start=False)
    for name, text in tables.items():
        with open(os.path.join(d.tmp, name), "w") as f:
            f.write(text)
    d.start()
    return d


class TestTables(SmtpdTest):
    CONFIG = (RECORD + "\nreceived-header no\nrecipient-delimiter +\n"
              "accept recipients @TMP@/rcpts\n"
              "reject senders @TMP@/bad\n")

    @classmethod
    def setUpClass(cls):
        cls.d = table_daemon(cls.CONFIG, {
            "rcpts": "# users\nanne@example.org\n@Example.NET\n",
            "bad": "spam@example.com\n@spam.example\n"})

    def test_recipients(self):
        c = self.d.session()
        c.check("MAIL FROM:<a@b.example>", "250 OK")
        c.check("RCPT TO:<anne@EXAMPLE.org>", "250 OK")
        c.check("RCPT TO:<anne+news@example.org>", "250 OK")
        c.check("RCPT TO:<x@example.net>", "250 OK")
        c.check("RCPT TO:<Anne@example.org>", "550 5.1.1 <Anne@example.org>:"
                " Recipient address rejected: User unknown")
        c.check("RCPT TO:<bob@example.org>", "550 5.1.1 <bob@example.org>:"
                " Recipient address rejected: User unknown")
        c.check("DATA", "354 End data with <CR><LF>.<CR><LF>")
        c.send("Subject: t\r\n\r\nx\r\n.\r\n")
        self.assertTrue(c.recv_reply().startswith("250 OK"))
        c.check("QUIT", "221 Bye")
        runs = self.d.wait_deliveries(1)
        self.assertEqual(runs[0]["argv"][1:], [
            "anne@EXAMPLE.org", "anne+news@example.org", "x@example.net"])
        # Each refusal is logged with its address and reply (smtpd.8).
        self.assertTrue(self.d.wait_log(
            r"(?m)^smtpd\[\d+\]: [0-9A-Z]{16} reject rcpt to=<bob@example"
            r"\.org>: 550 5\.1\.1 <bob@example\.org>: Recipient address "
            r"rejected: User unknown$"), self.d.log())

    def test_senders(self):
        c = self.d.session()
        c.check("MAIL FROM:<spam@example.com>", "550 5.7.1 "
                "<spam@example.com>: Sender address rejected: Access denied")
        c.check("MAIL FROM:<x@SPAM.example>", "550 5.7.1 "
                "<x@SPAM.example>: Sender address rejected: Access denied")
        c.check("MAIL FROM:<>", "250 OK")
        self.assertTrue(self.d.wait_log(
            r"(?m)^smtpd\[\d+\]: [0-9A-Z]{16} reject mail from=<x@SPAM\."
            r"example>: 550 5\.7\.1 <x@SPAM\.example>: Sender address "
            r"rejected: Access denied$"), self.d.log())


class TestAcceptSenders(SmtpdTest):
    CONFIG = RECORD + "\naccept senders @TMP@/ok\n"

    @classmethod
    def setUpClass(cls):
        cls.d = table_daemon(cls.CONFIG, {"ok": "<>\n@good.example\n"})

    def test_accept_senders(self):
        c = self.d.session()
        c.check("MAIL FROM:<a@b.example>", "550 5.7.1 <a@b.example>: "
                "Sender address rejected: Access denied")
        c.check("MAIL FROM:<a@good.example>", "250 OK")
        c.check("RSET", "250 OK")
        c.check("MAIL FROM:<>", "250 OK")


class TestClients(SmtpdTest):
    CONFIG = (RECORD + "\naccept clients 127.0.0.0/8\n"
              "reject clients 127.0.0.2/32\ncommand-limit * 100\n")

    def test_rejected_many_verbs(self):
        # Each of 40 verbs once: 503 each (not "sent too many times"
        # when the per-verb budgets ran out), then QUIT is answered.
        c = self.connect(greeting=False, source="127.0.0.2")
        c.expect("554 5.7.1 <127.0.0.2>: Client host rejected: "
                 "Access denied")
        c.send(b"".join(b"X%03d\r\n" % i for i in range(40)) +
               b"QUIT\r\n")
        for _ in range(40):
            c.expect("503 5.7.1 Error: access denied, send QUIT")
        c.expect("221 Bye")

    def test_accepted(self):
        c = self.connect()
        c.check("QUIT", "221 Bye")

    def test_rejected(self):
        c = self.connect(greeting=False, source="127.0.0.2")
        c.expect("554 5.7.1 <127.0.0.2>: Client host rejected: "
                 "Access denied")
        c.check("EHLO x", "503 5.7.1 Error: access denied, send QUIT")
        c.check("MAIL FROM:<a@b>", "503 5.7.1 Error: access denied, "
                "send QUIT")
        c.check("QUIT", "221 Bye")
        self.assertTrue(self.d.wait_log(
            r"(?m)^smtpd\[\d+\]: [0-9A-Z]{16} reject client: 554 5\.7\.1 "
            r"<127\.0\.0\.2>: Client host rejected: Access denied$"),
            self.d.log())


class PolicyServer:
    def __init__(self, mode):
        self.tmp = tempfile.mkdtemp(prefix="policy-e2e-")
        self.portfile = os.path.join(self.tmp, "port")
        self.logfile = os.path.join(self.tmp, "requests")
        self.proc = subprocess.Popen([sys.executable, SERVER, self.portfile,
                                      self.logfile, mode])
        wait_for(lambda: os.path.exists(self.portfile), 10)
        with open(self.portfile) as f:
            self.port = int(f.read())

    def requests(self):
        if not os.path.exists(self.logfile):
            return []
        with open(self.logfile) as f:
            return [json.loads(line) for line in f]

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


class PolicyTest(SmtpdTest):
    MODE = "script"
    POLICY = ""

    @classmethod
    def setUpClass(cls):
        cls.server = PolicyServer(cls.MODE)
        try:
            cls.d = Smtpd(RECORD + "\npolicy inet:127.0.0.1:%d\n%s"
                          % (cls.server.port, cls.POLICY))
        except BaseException:
            cls.server.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.server.stop()

    def mail(self):
        """A session with its MAIL accepted, ready for RCPTs."""
        c = self.d.session()
        c.check("MAIL FROM:<s@example.org>", "250 OK")
        return c


class TestPolicyActions(PolicyTest):
    POLICY = "policy-stages rcpt data\n"

    def test_actions(self):
        c = self.mail()
        w = "Recipient address rejected"
        for rcpt, reply in (
                ("ok", "250 OK"), ("dunno", "250 OK"),
                ("reject", "550 5.7.1 <reject@x>: %s: Access denied" % w),
                ("rejtext", "550 5.7.1 <rejtext@x>: %s: No such luck" % w),
                ("defer", "450 4.7.1 <defer@x>: %s: Service is unavailable"
                 % w),
                ("greylist", "450 4.2.0 <greylist@x>: %s: Greylisted" % w),
                ("c554", "554 5.7.9 <c554@x>: %s: Policy says no" % w),
                ("bad", "451 4.3.5 Server configuration problem"),
                ("prepend", "250 OK")):
            c.check("RCPT TO:<%s@x>" % rcpt, reply)
        c.check("DATA", "354 End data with <CR><LF>.<CR><LF>")
        c.send("Subject: t\r\n\r\nx\r\n.\r\n")
        self.assertTrue(c.recv_reply().startswith("250 OK"))
        c.check("QUIT", "221 Bye")
        runs = self.d.wait_deliveries(1)
        data = runs[0]["data"]
        self.assertTrue(data.startswith(b"Received: "))
        self.assertIn(b"\r\nX-Policy-Test: yes\r\nSubject: t\r\n", data)
        reqs = self.server.requests()
        self.assertEqual([r["protocol_state"] for r in reqs],
                         ["RCPT"] * 9 + ["END-OF-MESSAGE"])
        r = reqs[0]
        self.assertEqual(r["request"], "smtpd_access_policy")
        self.assertEqual(r["protocol_name"], "ESMTP")
        self.assertEqual(r["client_address"], "127.0.0.1")
        self.assertEqual(r["client_name"], "127.0.0.1")
        self.assertEqual(r["helo_name"], "client.test")
        self.assertEqual(r["sender"], "s@example.org")
        self.assertEqual(r["recipient"], "ok@x")
        self.assertEqual(reqs[-1]["recipient_count"], "3")
        self.assertEqual(len({r["instance"] for r in reqs}), 1)


@unittest.skipUnless(os.getuid() == 0, "chroot needs root")
class TestPolicyInChroot(PolicyTest):
    """With chroot, the master looks the server's name up when it reads
    the file: inside an empty chroot there is no resolver, and every
    request got policy-default (451)."""

    @classmethod
    def setUpClass(cls):
        cls.server = PolicyServer(cls.MODE)
        cls.jail = tempfile.mkdtemp(prefix="smtpd-jail-")
        os.chmod(cls.jail, 0o755)
        try:
            d = Smtpd(RECORD + "\npolicy inet:localhost:%d\nchroot %s\n"
                      % (cls.server.port, cls.jail), start=False)
            # The spool is a path inside the chroot.
            inside = cls.jail + d.spool
            os.makedirs(inside)
            os.chmod(inside, 0o1777)
            d.start()
            cls.d = d
        except BaseException:
            cls.server.stop()
            shutil.rmtree(cls.jail, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.jail, ignore_errors=True)

    def test_name_resolved_by_the_master(self):
        c = self.mail()
        c.check("RCPT TO:<ok@x>", "250 OK")
        c.check("RCPT TO:<reject@x>", "550 5.7.1 <reject@x>: Recipient "
                "address rejected: Access denied")
        c.check("QUIT", "221 Bye")


class TestPolicyData(PolicyTest):
    POLICY = "policy-stages data\n"

    def test_end_of_message_refused(self):
        # Asked only at the end: the one recipient's action refuses it.
        c = self.mail()
        c.check("RCPT TO:<reject@x>", "250 OK")
        c.check("DATA", "354 End data with <CR><LF>.<CR><LF>")
        c.send("Subject: t\r\n\r\nx\r\n.\r\n")
        c.expect("550 5.7.1 <END-OF-MESSAGE>: End-of-data rejected: Access "
                 "denied")
        c.check("QUIT", "221 Bye")
        self.assertTrue(self.d.wait_log(
            r"(?m)^smtpd\[\d+\]: ([0-9A-Z]{16}) message \1\.1 refused: 550 "
            r"5\.7\.1 <END-OF-MESSAGE>: End-of-data rejected: Access "
            r"denied$"), self.d.log())
        self.assertEqual(self.d.deliveries(), [])


class TestPolicy421(PolicyTest):
    def test_421_closes(self):
        """A 421 says the connection closes (RFC 5321 3.8): it does."""
        c = self.mail()
        c.check("RCPT TO:<ok@x>", "250 OK")
        c.check("RCPT TO:<busy@x>", "421 4.7.0 <busy@x>: Recipient "
                "address rejected: Busy")
        c.expect_closed()


class TestPolicyBadReplies(PolicyTest):
    W = "Recipient address rejected"

    def test_no_action_then_late_action(self):
        # The connection of a malformed reply is closed: its late action
        # is never taken for the next recipient's answer.
        c = self.mail()
        c.check("RCPT TO:<ok@x>", "250 OK")
        c.check("RCPT TO:<twoblk@x>", "451 4.3.5 Server configuration "
                "problem")
        time.sleep(0.5)                 # the late action has come
        c.check("RCPT TO:<reject@x>", "550 5.7.1 <reject@x>: %s: Access "
                "denied" % self.W)
        c.check("RCPT TO:<ok@x>", "250 OK")

    def test_oversized_reply_asked_once(self):
        c = self.mail()
        c.check("RCPT TO:<ok@x>", "250 OK")
        before = len(self.server.requests())
        c.check("RCPT TO:<big@x>", "451 4.3.5 Server configuration problem")
        self.assertEqual([r["recipient"] for r in
                          self.server.requests()[before:]], ["big@x"])

    def test_reply_text(self):
        # RFC 3463: a detail of 1 to 3 digits; RFC 5321: US-ASCII text.
        c = self.mail()
        c.check("RCPT TO:<enh@x>", "550 5.7.1 <enh@x>: %s: 5.1.1234 Four "
                "digits" % self.W)
        c.check("RCPT TO:<hi8@x>", "550 5.7.1 <hi8@x>: %s: caf   ok"
                % self.W)


class TestPolicyLog(PolicyTest):
    """What the policy server and the client said is escaped in the log
    (smtpd.8 Logging), here a terminal's escapes: ESC and CR from the
    server, U+009B (CSI) in a recipient of an smtputf8 client."""
    POLICY = "smtputf8 yes\n"

    def test_escaped(self):
        c = self.mail()
        c.check("RCPT TO:<esc@x>", "451 4.3.5 Server configuration problem")
        c.check("RCPT TO:<reject@\u00e9\u009b.x>", "550 5.7.1 "
                "<reject@\u00e9\u009b.x>: Recipient address rejected: "
                "Access denied")
        c.check("QUIT", "221 Bye")
        self.assertTrue(self.d.wait_log(r"disconnect commands="))
        log = self.d.log()
        self.assertRegex(log, r"[0-9A-Z]{16} policy inet:127\.0\.0\.1:%d: "
                         r'action "HOLD \\x1b\[2Jred\\x0dfake" not '
                         r"understood" % self.server.port)
        self.assertRegex(log, r"[0-9A-Z]{16} reject rcpt to=<reject@"
                         r"\\xc3\\xa9\\xc2\\x9b\.x>: 550 5\.7\.1 "
                         r"<reject@\\xc3\\xa9\\xc2\\x9b\.x>: Recipient")
        # The recipient the failing server left to policy-default.
        self.assertRegex(log, r"[0-9A-Z]{16} reject rcpt to=<esc@x>: 451 "
                         r"4\.3\.5 Server configuration problem")
        self.assertNotIn("\x1b", log)
        self.assertNotIn("\u009b", log)


class TestPolicyHang(PolicyTest):
    MODE = "hang"
    POLICY = "policy-timeout 1\n"

    def test_timeout(self):
        c = self.mail()
        t0 = time.monotonic()
        c.check("RCPT TO:<a@x>", "451 4.3.5 Server configuration problem")
        self.assertLess(time.monotonic() - t0, 4)


class TestPolicyHangDunno(PolicyTest):
    MODE = "hang"
    POLICY = "policy-timeout 1\npolicy-default dunno\n"

    def test_timeout_dunno(self):
        c = self.mail()
        c.check("RCPT TO:<a@x>", "250 OK")


class TestPolicyClose(PolicyTest):
    MODE = "close"

    def test_closed(self):
        c = self.mail()
        c.check("RCPT TO:<a@x>", "451 4.3.5 Server configuration problem")
        c.check("RCPT TO:<b@x>", "451 4.3.5 Server configuration problem")
        self.assertEqual(len(self.server.requests()), 2)
        # A line of the session: its id first (smtpd.8 Logging).
        self.assertEqual(len(re.findall(
            r"\]: [0-9A-Z]{16} policy inet:127\.0\.0\.1:%d: "
            % self.server.port, self.d.log())), 2, self.d.log())


POSTGREY = shutil.which("postgrey") or (
    "/usr/sbin/postgrey" if os.path.exists("/usr/sbin/postgrey") else None)


@unittest.skipIf(POSTGREY is None, "postgrey not installed")
class TestPostgrey(SmtpdTest):
    @classmethod
    def setUpClass(cls):
        cls.pg_tmp = tempfile.mkdtemp(prefix="postgrey-e2e-")
        os.chmod(cls.pg_tmp, 0o777)
        port = free_port()
        cls.pg = subprocess.Popen(
            [POSTGREY, "--inet=127.0.0.1:%d" % port, "--delay=2",
             "--dbdir=" + cls.pg_tmp, "--max-age=1", "--user=nobody",
             "--group=nogroup"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: _port_open(port), 20)
            cls.d = Smtpd(RECORD + "\npolicy inet:127.0.0.1:%d\n" % port)
        except BaseException:
            cls.pg.kill()
            cls.pg.wait()
            raise

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        stop_process(cls.pg)
        shutil.rmtree(cls.pg_tmp, ignore_errors=True)

    def attempt(self):
        c = self.d.session()
        c.check("MAIL FROM:<sender@example.org>", "250 OK")
        reply = c.cmd("RCPT TO:<rcpt@example.net>")
        c.check("QUIT", "221 Bye")
        return reply

    def test_greylisting(self):
        first = self.attempt()
        # postgrey's DEFER_IF_PERMIT has no enhanced code: 4.7.1.
        self.assertTrue(first.startswith("450 4.7.1 <rcpt@example.net>: "
                                         "Recipient address rejected: "
                                         "Greylisted"), first)
        self.assertTrue(self.attempt().startswith("450 "))
        time.sleep(3)
        self.assertEqual(self.attempt(), "250 OK")


def _port_open(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


if __name__ == "__main__":
    unittest.main()
