"""LMTP (RFC 2033) over a UNIX socket listener with `mode 0660`
(`listen on /path/lmtp.sock lmtp mode 0660`) and over TCP: smtplib.LMTP and
swaks, a real LMTP client from Debian, get one reply per recipient after
the final dot, in RCPT order.

The recorder records every run, also those whose exit status rejects the
recipient: "delivered" below means the run that exited 0.
"""

import grp
import os
import pwd
import shutil
import stat
import subprocess
import unittest

from harness import OK_ID, RECORD_EACH, SmtpdTest, ehlo_lines

DATA_354 = "354 End data with <CR><LF>.<CR><LF>"
TEMP = "451 4.3.0 Delivery failed temporarily, try again later"
NOUSER = "550 5.1.1 Delivery failed: no such user"
RCPTS = ["ok@example.com", "temp@example.com", "nouser@example.com"]
BODY = b"Subject: lmtp unix\r\n\r\nhello\r\n"


# Only root can give a socket away.
OWNER = " owner nobody group nogroup" if os.getuid() == 0 else ""


class TestLmtpUnix(SmtpdTest):
    CONFIG = RECORD_EACH + "\nreceived-header no"
    OPTS = {"listen_opts": "lmtp", "unix_listen": "lmtp.sock",
            "unix_opts": "lmtp mode 0660" + OWNER}

    def setUp(self):
        super().setUp()
        self.d.set_exit(75, rcpt="temp@example.com")
        self.d.set_exit(67, rcpt="nouser@example.com")

    def check_runs(self, sender="a@example.com", data=BODY):
        runs = self.d.wait_deliveries(3)
        self.assertEqual(sorted(r["argv"][1] for r in runs), sorted(RCPTS))
        for r in runs:
            self.assertEqual(r["argv"][0], sender)
            self.assertEqual(r["env"]["SMTPD_RECIPIENTS"], r["argv"][1])
            self.assertEqual(r["data"], data)
        return runs

    def smtplib_three(self, s):
        code, _ = s.ehlo("client.test")           # LHLO
        self.assertEqual(code, 250)
        self.assertEqual(s.mail("a@example.com")[0], 250)
        for r in RCPTS:
            self.assertEqual(s.rcpt(r), (250, b"OK"))
        # smtplib's data() reads the first reply; the others follow
        code, msg = s.data(BODY)
        replies = [(code, msg), s.getreply(), s.getreply()]
        self.assertEqual(replies[0][0], 250)
        self.assertRegex(b"%d %s" % replies[0], OK_ID.encode())
        self.assertEqual(replies[1:], [
            (451, b"4.3.0 Delivery failed temporarily, try again later"),
            (550, b"5.1.1 Delivery failed: no such user")])
        self.assertEqual(s.noop()[0], 250)
        s.quit()
        self.check_runs()

    def test_socket_mode(self):
        st = os.stat(self.d.unix_listen)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(oct(stat.S_IMODE(st.st_mode)), oct(0o660))
        if OWNER:
            self.assertEqual(st.st_uid, pwd.getpwnam("nobody").pw_uid)
            self.assertEqual(st.st_gid, grp.getgrnam("nogroup").gr_gid)

    def test_smtplib_unix(self):
        self.smtplib_three(self.d.lmtp_unix())

    def test_smtplib_tcp(self):
        self.smtplib_three(self.d.lmtp())

    def test_raw_unix(self):
        c = self.d.connect_unix(self.d.unix_listen)
        c.check("LHLO client.test", ehlo_lines())
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        for r in RCPTS:
            c.check("RCPT TO:<%s>" % r, "250 OK")
        c.check("DATA", DATA_354)
        c.send(BODY + b".\r\n")
        c.expect_match(OK_ID)
        c.expect(TEMP)
        c.expect(NOUSER)
        c.assert_silent(0.2)
        c.check("QUIT", "221 Bye")
        c.expect_closed()
        self.assertIn("connect from local", self.d.log())
        runs = self.check_runs()
        # a UNIX client has no address
        self.assertEqual(runs[0]["env"]["SMTPD_CLIENT_ADDR"], "")

    @unittest.skipUnless(shutil.which("swaks"), "swaks not installed")
    def test_swaks_unix_and_tcp(self):
        for where in (["--socket", self.d.unix_listen],
                      ["--server", "127.0.0.1", "--port", str(self.d.port)]):
            with self.subTest(where=where[0]):
                self.d.clear_out()
                self.setUp()
                p = subprocess.run(
                    ["swaks", "--protocol", "LMTP", "--helo", "client.test",
                     "--from", "a@example.com", "--to", ",".join(RCPTS),
                     "--data", "Subject: swaks\r\n\r\nhello",
                     "--timeout", "5", "--suppress-data"] + where,
                    capture_output=True, text=True, timeout=20)
                out = p.stdout
                after = out[out.index("lines sent"):]
                replies = [ln[4:] for ln in after.splitlines()
                           if ln.startswith(("<- ", "<**"))]
                self.assertRegex(replies[0], OK_ID, out)
                self.assertEqual(replies[1:3], [TEMP, NOUSER], out)
                self.assertEqual(replies[3:], ["221 Bye"], out)
                self.check_runs(data=b"Subject: swaks\r\n\r\nhello\r\n")


if __name__ == "__main__":
    unittest.main()
