"""Postfix 3.7 (Debian), a private instance (postfix.py), relays to smtpd:
smtp(8) in plain SMTP and with STARTTLS, lmtp(8) to an LMTP listener over
TCP and over a UNIX socket.  One message of 1 MiB with several recipients
each time: it arrives byte for byte (after the Received headers), and
Postfix logs status=sent for every recipient.  With enhanced-status-codes
yes, Postfix logs smtpd's codes: dsn=2.0.0 and "250 2.0.0 OK id=..." for
each recipient, and dsn=5.5.2 for a message with too long lines, a code
it can only have taken from smtpd's reply."""

import os
import shutil
import tempfile
import unittest

import certs
import postfix
from harness import RECORD, Smtpd, sample_message, strip_all_received

RCPTS = ["a@example.com", "b@example.org", "c@example.net"]
SENDER = "s@example.com"


@unittest.skipUnless(postfix.available(),
                     "needs root and Postfix (contrib/deps.sh check)")
class TestPostfixRelay(unittest.TestCase):
    """One smtpd: SMTP with STARTTLS on PORT, LMTP on PORT2 and on a UNIX
    socket that user postfix may reach."""

    EXTRA = ""          # more configuration lines

    @classmethod
    def setUpClass(cls):
        cls.msg = sample_message(1 << 20, SENDER, RCPTS, "postfix")
        cls.sockdir = tempfile.mkdtemp(prefix="smtpd-e2e-sock-")
        os.chmod(cls.sockdir, 0o755)
        cls.sock = os.path.join(cls.sockdir, "lmtp.sock")
        d = Smtpd("", start=False, listen_opts="starttls", unix_listen=cls.sock,
                  unix_opts="lmtp mode 0660 group postfix")
        try:
            cert, key, _ = certs.server_cert(d.tmp)
            d.write_config(RECORD + "\ntls certificate %s key %s\n"
                           "listen on 127.0.0.1 port @PORT@ starttls\n"
                           "listen on 127.0.0.1 port @PORT2@ lmtp\n"
                           % (cert, key) + cls.EXTRA)
            d.start()
        except BaseException:
            d.cleanup()
            shutil.rmtree(cls.sockdir, ignore_errors=True)
            raise
        cls.d = d

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()
        shutil.rmtree(cls.sockdir, ignore_errors=True)

    def setUp(self):
        self.d.clear_out()

    def relay(self, **where):
        """Send the message through a fresh Postfix; return the recorder's
        runs and Postfix's delivery lines."""
        pf = postfix.PostfixInstance(self.d.tmp, **where)
        self.addCleanup(pf.stop)
        pf.start()
        qid = pf.submit(SENDER, RCPTS, self.msg)
        self.assertTrue(pf.wait_queue_empty(30),
                        "still queued:\n" + pf.log_text())
        sent = pf.wait_deliveries(qid, len(RCPTS))
        self.assertEqual(sorted(x["to"] for x in sent
                                if x["status"] == "sent"), sorted(RCPTS),
                         pf.log_text())
        self.log = pf.log_text()
        return self.d.deliveries(), sent

    def assert_intact(self, runs):
        got = []
        for run in runs:
            self.assertEqual(run["argv"][0], SENDER)
            got += run["argv"][1:]
            body = strip_all_received(run["data"])
            self.assertEqual(len(body), len(self.msg))
            self.assertTrue(body == self.msg, "message changed on the way")
        self.assertEqual(sorted(got), sorted(RCPTS))

    def test_smtp(self):
        runs, _ = self.relay(relay=("127.0.0.1", self.d.port))
        self.assertEqual(len(runs), 1)
        self.assert_intact(runs)
        self.assertEqual(runs[0]["env"]["SMTPD_TLS"], "")

    def test_smtp_starttls(self):
        runs, _ = self.relay(relay=("127.0.0.1", self.d.port), tls=True)
        self.assertEqual(len(runs), 1)
        self.assert_intact(runs)
        self.assertRegex(runs[0]["env"]["SMTPD_TLS"], r"^TLSv1\.[23] ")
        self.assertRegex(self.log, r"TLS connection established to "
                         r"127\.0\.0\.1\[127\.0\.0\.1\]:%d" % self.d.port)

    def test_lmtp_tcp(self):
        runs, sent = self.relay(lmtp=("127.0.0.1", self.d.port2))
        self.assertEqual({x["agent"] for x in sent}, {"lmtp"})
        self.assert_intact(runs)

    def test_lmtp_unix(self):
        runs, sent = self.relay(lmtp=self.sock)
        self.assertEqual({x["agent"] for x in sent}, {"lmtp"})
        for x in sent:
            self.assertTrue(x["relay"].endswith("[%s]" % self.sock), x)
        self.assert_intact(runs)



class TestPostfixRelayEnhanced(TestPostfixRelay):
    """The same relays with enhanced-status-codes yes: Postfix's smtp(8)
    and lmtp(8) log the code of smtpd's reply for every recipient."""

    EXTRA = "enhanced-status-codes yes\n"

    def relay(self, **where):
        runs, sent = super().relay(**where)
        for x in sent:
            self.assertEqual(x["dsn"], "2.0.0", x)
            self.assertRegex(x["text"], r"\b250 2\.0\.0 OK id=\S+", x)
        return runs, sent


@unittest.skipUnless(postfix.available(),
                     "needs root and Postfix (contrib/deps.sh check)")
class TestPostfixEnhancedBounce(unittest.TestCase):
    """Lines longer than max-line-length: smtpd's reply to the message,
    500 5.5.2 Line too long, is the code Postfix logs for the bounce (it
    would log 5.0.0 for a 500 without a code)."""

    @classmethod
    def setUpClass(cls):
        cls.d = Smtpd(RECORD + "\nenhanced-status-codes yes\n"
                      "max-line-length 64")

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()

    def test_line_too_long_bounce(self):
        msg = sample_message(4096, SENDER, RCPTS[:1], "postfix")
        pf = postfix.PostfixInstance(self.d.tmp,
                                     relay=("127.0.0.1", self.d.port))
        self.addCleanup(pf.stop)
        pf.start()
        qid = pf.submit(SENDER, RCPTS[:1], msg)
        done = pf.wait_deliveries(qid, 1)
        self.assertEqual([(x["status"], x["dsn"]) for x in done],
                         [("bounced", "5.5.2")], pf.log_text())
        self.assertIn("500 5.5.2 Line too long (see RFC5321 4.5.3.1.6)",
                      done[0]["text"])


if __name__ == "__main__":
    unittest.main()
