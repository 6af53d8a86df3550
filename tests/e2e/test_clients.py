"""Real clients: Python's smtplib and swaks."""

import os
import shutil
import subprocess
import unittest

from harness import OK_ID, RECORD, Smtpd, SmtpdTest, deliver_maildir_path


class TestSmtplib(SmtpdTest):
    CONFIG = RECORD + "\nreceived-header no"

    def test_sendmail(self):
        s = self.d.smtp()
        code, _ = s.ehlo("client.test")
        self.assertEqual(code, 250)
        self.assertTrue(s.has_extn("pipelining"))
        self.assertTrue(s.has_extn("8bitmime"))
        self.assertEqual(s.esmtp_features["size"], "33554432")
        refused = s.sendmail("a@example.com",
                             ["b@example.com", "c@example.com"],
                             b"Subject: smtplib\r\n\r\n.leading dot\r\nend\r\n")
        self.assertEqual(refused, {})
        code, msg = s.noop()
        self.assertEqual((code, msg), (250, b"OK"))
        s.quit()
        runs = self.d.deliveries()
        self.assertEqual(len(runs), 1)
        self.assertEqual(runs[0]["argv"], ["a@example.com", "b@example.com",
                                           "c@example.com"])
        self.assertEqual(runs[0]["data"],
                         b"Subject: smtplib\r\n\r\n.leading dot\r\nend\r\n")

    def test_sendmail_refused_recipient_and_body(self):
        s = self.d.smtp()
        s.ehlo("client.test")
        refused = s.sendmail("a@example.com", ["b@example.com", "<>"],
                             b"x\r\n", mail_options=["BODY=8BITMIME"])
        self.assertIn("<>", refused)
        self.assertEqual(refused["<>"][0], 553)
        s.quit()
        runs = self.d.deliveries()
        self.assertEqual(runs[0]["env"]["SMTPD_BODY"], "8BITMIME")

    def test_vrfy_help(self):
        s = self.d.smtp()
        self.assertEqual(s.verify("anne@example.com")[0], 252)
        self.assertEqual(s.help(), b"Supported commands: DATA EHLO HELO HELP "
                                   b"MAIL NOOP QUIT RCPT RSET VRFY")
        s.quit()


class TestSwaks(SmtpdTest):
    CONFIG = RECORD

    def test_swaks(self):
        if shutil.which("swaks") is None:
            self.skipTest("swaks not installed")
        p = subprocess.run(
            ["swaks", "--to", "a@b", "--from", "swaks@example.com",
             "--server", "127.0.0.1:%d" % self.d.port, "--timeout", "10",
             "--header", "Subject: via swaks"],
            capture_output=True, timeout=30)
        out = p.stdout.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 0, out + p.stderr.decode())
        self.assertRegex(out, r"<-  250 OK id=\S+")
        runs = self.d.deliveries()
        self.assertEqual(len(runs), 1)
        self.assertEqual(runs[0]["argv"], ["swaks@example.com", "a@b"])
        self.assertIn(b"Subject: via swaks", runs[0]["data"])

    def test_swaks_pipelining(self):
        if shutil.which("swaks") is None:
            self.skipTest("swaks not installed")
        p = subprocess.run(
            ["swaks", "--to", "a@b,c@d", "--server",
             "127.0.0.1:%d" % self.d.port, "--pipeline", "--timeout", "10"],
            capture_output=True, timeout=30)
        out = p.stdout.decode("utf-8", "replace")
        self.assertEqual(p.returncode, 0, out + p.stderr.decode())
        runs = self.d.deliveries()
        self.assertEqual(len(runs), 1)
        self.assertEqual(runs[0]["argv"][1:], ["a@b", "c@d"])


if __name__ == "__main__":
    unittest.main()


class TestDeliverMaildir(unittest.TestCase):
    """contrib/deliver-maildir behind smtpd (DELIVER_MAILDIR)."""

    def test_maildir_delivery(self):
        prog = deliver_maildir_path()
        if prog is None:
            self.skipTest("deliver-maildir not built")
        conf = 'deliver "%s -c @TMP@/Maildir"\nreceived-header no' % prog
        with Smtpd(conf) as d:
            c = d.session()
            for i in range(2):
                c.check("MAIL FROM:<a@example.com>", "250 OK")
                c.check("RCPT TO:<b@example.com>", "250 OK")
                c.check("DATA", "354 End data with <CR><LF>.<CR><LF>")
                c.send(b"Subject: maildir %d\r\n\r\n..dot\r\n.\r\n" % i)
                c.expect_match(OK_ID)
            c.check("QUIT", "221 Bye")
            new = os.path.join(d.tmp, "Maildir", "new")
            names = sorted(os.listdir(new))
            self.assertEqual(len(names), 2, names)
            bodies = set()
            for n in names:
                with open(os.path.join(new, n), "rb") as f:
                    bodies.add(f.read())
            self.assertEqual(bodies, {b"Subject: maildir %d\r\n\r\n.dot\r\n"
                                      % i for i in range(2)})
            self.assertEqual(os.listdir(os.path.join(d.tmp, "Maildir", "tmp")),
                             [])
