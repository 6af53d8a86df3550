"""STARTTLS (RFC 3207), require-starttls, implicit TLS; smtpd.conf.5
`tls certificate`, `tls protocols`, `tls ciphers`, `tls tickets`, SIGHUP
certificate and ticket key rotation; real clients: smtplib, openssl
s_client, swaks."""

import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import time
import unittest

import certs
from certs import client_context, connect_tls, starttls, tls_wrap
from harness import (OK_ID, RECORD, Smtpd, SmtpdTest, ehlo_lines, pid_alive,
                     pid_children, read_pid, smtpd_path, strip_received,
                     wait_for)
from test_master import ShutdownGraceCases

HOST = "mx.test"
SMTPD_TLS_RE = r"TLSv1\.3 TLS_[A-Z0-9_]+"
NOT_FIRST = "530 Must issue a STARTTLS command first"
SWAKS = shutil.which("swaks")


def swaks_supports_tls():
    if not SWAKS:
        return False
    r = subprocess.run([SWAKS, "--support"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return b"=== TLS supported" in r.stdout


SWAKS_TLS = swaks_supports_tls()
OPENSSL = shutil.which("openssl")


TLS_CONF = "tls certificate @CERT@ key @KEY@"


class TlsCase(SmtpdTest):
    """A daemon with a fresh certificate in its temp dir: CONFIG may use
    @CERT@ and @KEY@."""

    CONFIG = RECORD + "\n" + TLS_CONF

    @classmethod
    def setUpClass(cls):
        cls.d, cls.cert, cls.key, cls.serial = certs.smtpd_with_cert(
            cls.CONFIG, **cls.OPTS)

    def assert_tls_run(self, run, proto="ESMTPS", tls_re=SMTPD_TLS_RE):
        self.assertRegex(run["env"]["SMTPD_TLS"], "^" + tls_re + "$")
        head, _ = strip_received(run["data"])
        self.assertIsNotNone(head, run["data"])
        self.assertRegex(head.decode(), r"\bwith %s id " % proto)


# -- STARTTLS -------------------------------------------------------------

class TestStarttls(TlsCase):
    OPTS = {"listen_opts": "starttls"}

    def test_ehlo_offers_starttls_only_before_tls(self):
        c = self.connect()
        c.check("EHLO client.test", ehlo_lines(starttls=True))
        starttls(c)
        c.check("EHLO client.test", ehlo_lines())
        c.check("QUIT", "221 Bye")

    def test_smtplib_starttls_full_message(self):
        s = self.d.smtp()
        s.ehlo("client.test")
        self.assertTrue(s.has_extn("starttls"))
        code, _ = s.starttls(context=client_context())
        self.assertEqual(code, 220)
        s.ehlo("client.test")
        self.assertFalse(s.has_extn("starttls"))
        s.sendmail("s@example.com", ["r@example.com"],
                   b"Subject: tls\r\n\r\nover tls\r\n")
        s.quit()
        runs = self.d.wait_deliveries(1)
        self.assertEqual(len(runs), 1)
        self.assert_tls_run(runs[0])
        self.assertEqual(strip_received(runs[0]["data"])[1],
                         b"Subject: tls\r\n\r\nover tls\r\n")
        self.assertTrue(self.d.wait_log(r" tls TLSv1\.3 TLS_"))

    def test_raw_starttls_message_and_env(self):
        c = self.connect()
        c.check("EHLO client.test", ehlo_lines(starttls=True))
        starttls(c)
        c.check("EHLO client.test", ehlo_lines())
        run = self.message(c)
        self.assert_tls_run(run)
        self.assertEqual(run["env"]["SMTPD_AUTH_USER"], "")

    @unittest.skipUnless(OPENSSL, "openssl missing")
    def test_openssl_s_client_starttls(self):
        r = subprocess.run(
            ["timeout", "10", OPENSSL, "s_client", "-starttls", "smtp",
             "-connect", "127.0.0.1:%d" % self.d.port, "-CAfile",
             certs.ca().cert, "-crlf", "-ign_eof", "-servername", HOST],
            input=b"EHLO client.test\nNOOP\nQUIT\n",
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=15)
        out = r.stdout.decode(errors="replace")
        self.assertIn("CN = mx.test", out)
        self.assertIn("-----BEGIN CERTIFICATE-----", out)
        self.assertIn("Verify return code: 0 (ok)", out)
        self.assertRegex(out, r"TLSv1\.3")
        self.assertIn("250 HELP", out)
        self.assertNotIn("250-STARTTLS", out.split("Verify return code")[-1])
        self.assertIn("221 Bye", out)

    def test_injection_rset(self):
        c = self.connect()
        c.check("EHLO client.test", ehlo_lines(starttls=True))
        c.send(b"STARTTLS\r\nRSET\r\n")
        c.expect("220 Ready to start TLS")
        # nothing after the 220 in plaintext: that would be the RSET's reply
        tls_wrap(c)
        c.check("EHLO client.test", ehlo_lines())
        c.check("NOOP", "250 OK")
        c.assert_silent(0.3)

    def test_injection_mail(self):
        c = self.connect()
        c.check("EHLO client.test", ehlo_lines(starttls=True))
        c.send(b"STARTTLS\r\nMAIL FROM:<evil@x>\r\n")
        c.expect("220 Ready to start TLS")
        tls_wrap(c)
        c.check("EHLO client.test", ehlo_lines())
        # no transaction was open: MAIL succeeds, no pending reply
        c.check("MAIL FROM:<good@example.com>", "250 OK")
        c.check("RCPT TO:<r@example.com>", "250 OK")
        c.check("DATA", "354 End data with <CR><LF>.<CR><LF>")
        c.send(b"Subject: t\r\n\r\nhi\r\n.\r\n")
        c.expect_match(OK_ID)
        runs = self.d.wait_deliveries(1)
        self.assertEqual(runs[0]["argv"][0], "good@example.com")

    def test_injection_before_ehlo(self):
        c = self.connect()
        c.send(b"STARTTLS\r\nEHLO evil\r\nMAIL FROM:<evil@x>\r\n")
        c.expect("220 Ready to start TLS")
        tls_wrap(c)
        # the session inside TLS is new: no EHLO happened
        c.check("MAIL FROM:<a@example.com>", "503 Error: send HELO first")
        c.assert_silent(0.2)

    def test_starttls_inside_tls(self):
        c = self.connect()
        starttls(c)
        c.check("STARTTLS", "503 5.5.1 Error: TLS already active")
        c.check("EHLO client.test", ehlo_lines())
        c.check("STARTTLS", "503 5.5.1 Error: TLS already active")
        c.check("STARTTLS x", "501 Syntax: STARTTLS")
        c.check("NOOP", "250 OK")

    def test_starttls_argument(self):
        c = self.connect()
        c.check("STARTTLS x", "501 Syntax: STARTTLS")
        c.check("EHLO client.test", ehlo_lines(starttls=True))
        c.check("STARTTLS now", "501 Syntax: STARTTLS")
        c.check("NOOP", "250 OK")

    def test_mail_after_starttls_needs_new_ehlo(self):
        c = self.connect()
        c.check("EHLO client.test", ehlo_lines(starttls=True))
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        starttls(c)
        c.check("MAIL FROM:<a@example.com>", "503 Error: send HELO first")
        c.check("RCPT TO:<r@example.com>", "503 Error: send HELO first")
        c.check("EHLO client.test", ehlo_lines())
        c.check("MAIL FROM:<a@example.com>", "250 OK")

    def test_starttls_right_after_greeting_and_after_helo(self):
        c = self.connect()
        starttls(c)
        c.check("HELO client.test", "250 " + HOST)
        c2 = self.connect()
        c2.check("HELO client.test", "250 " + HOST)
        starttls(c2)
        c2.check("EHLO client.test", ehlo_lines())

    def test_help_keeps_starttls(self):
        lst = "DATA EHLO HELO HELP MAIL NOOP QUIT RCPT RSET STARTTLS VRFY"
        c = self.connect()
        c.check("HELP", "250 Supported commands: " + lst)
        c.check("HELP STARTTLS", "250 Syntax: STARTTLS")
        starttls(c)
        c.check("HELP", "250 Supported commands: " + lst)

    def test_plaintext_instead_of_handshake_closes(self):
        c = self.connect()
        c.check("STARTTLS", "220 Ready to start TLS")
        c.send(b"EHLO client.test\r\n")
        # a TLS alert at most, never an SMTP reply
        deadline = time.monotonic() + 5
        data = b""
        while time.monotonic() < deadline:
            c.sock.settimeout(deadline - time.monotonic())
            try:
                chunk = c.sock.recv(4096)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            data += chunk
        else:
            self.fail("connection still open")
        self.assertNotRegex(data, rb"^\d\d\d[ -]")

    def test_tls11_client_refused(self):
        ctx = client_context(minimum=ssl.TLSVersion.TLSv1,
                             maximum=ssl.TLSVersion.TLSv1_1,
                             ciphers="DEFAULT:@SECLEVEL=0")
        c = self.connect()
        c.check("STARTTLS", "220 Ready to start TLS")
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            tls_wrap(c, ctx)
        time.sleep(0.1)
        self.assertNotRegex(self.d.log(), r" tls TLSv1(\.1)? ")

    @unittest.skipUnless(SWAKS_TLS, "swaks missing or without TLS")
    def test_swaks_tls(self):
        r = subprocess.run(
            [SWAKS, "--server", "127.0.0.1", "--port", str(self.d.port),
             "--helo", "client.test", "--from", "s@example.com",
             "--to", "r@example.com", "--tls", "--timeout", "5",
             "--body", "swaks body"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=30)
        out = r.stdout.decode(errors="replace")
        self.assertEqual(r.returncode, 0, out)
        self.assertIn("TLS started", out)
        runs = self.d.wait_deliveries(1)
        self.assertEqual(len(runs), 1, out)
        self.assert_tls_run(runs[0])


class TestNoStarttls(TlsCase):
    """A certificate is configured but the listener offers no STARTTLS."""

    def test_starttls_not_available(self):
        c = self.connect()
        c.check("EHLO client.test", ehlo_lines())
        c.check("STARTTLS", "454 TLS not available")
        c.check("STARTTLS x", "501 Syntax: STARTTLS")
        c.check("HELP", "250 Supported commands: "
                "DATA EHLO HELO HELP MAIL NOOP QUIT RCPT RSET VRFY")
        c.check("MAIL FROM:<a@example.com>", "250 OK")


# -- require-starttls -----------------------------------------------------

class TestRequireStarttls(TlsCase):
    CONFIG = (RECORD + "\n" + TLS_CONF + "\n"
              "listen on 127.0.0.1 port @PORT@ require-starttls\n"
              "listen on 127.0.0.1 port @PORT2@ lmtp require-starttls")

    REFUSED = ["HELO client.test", "HELP", "HELP MAIL",
               "MAIL FROM:<a@example.com>", "RCPT TO:<r@example.com>",
               "DATA", "RSET", "VRFY a@example.com", "EXPN list",
               "AUTH PLAIN", "LHLO client.test", "FOO", "BAR x",
               "BAZ", "QUX", "ZAP", "ZIP"]

    def test_refused_before_tls(self):
        c = self.connect()
        for line in self.REFUSED:
            with self.subTest(line=line):
                c.check(line, NOT_FIRST)
        # 7 unknown verbs, none counted as unrecognised: still open
        c.check("NOOP", "250 OK")
        c.check("NOOP x", "250 OK")
        c.check("EHLO client.test", ehlo_lines(starttls=True))
        for line in self.REFUSED:
            with self.subTest(after_ehlo=line):
                c.check(line, NOT_FIRST)
        c.check("QUIT", "221 Bye")
        c.expect_closed()

    def test_served_after_tls(self):
        c = self.connect()
        c.check("EHLO client.test", ehlo_lines(starttls=True))
        starttls(c)
        c.check("HELO client.test", "250 " + HOST)
        c.check("RSET", "250 OK")
        c.check("VRFY a@example.com", "252 Cannot VRFY user, but will "
                "accept message and attempt delivery")
        c.check("HELP", "250 Supported commands: "
                "DATA EHLO HELO HELP MAIL NOOP QUIT RCPT RSET STARTTLS VRFY")
        c.check("EHLO client.test", ehlo_lines())
        self.assert_tls_run(self.message(c))

    def test_lmtp_lhlo_served(self):
        c = self.connect(port=self.d.port2)
        c.check("LHLO client.test", ehlo_lines(starttls=True))
        c.check("EHLO client.test",
                '500 Error: command "EHLO" not recognized')
        c.check("NOOP", "250 OK")
        for line in ("MAIL FROM:<a@example.com>", "HELO x", "HELP", "RSET",
                     "FOO"):
            with self.subTest(line=line):
                c.check(line, NOT_FIRST)
        starttls(c)
        c.check("MAIL FROM:<a@example.com>", "503 Error: send HELO first")
        c.check("LHLO client.test", ehlo_lines())
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("QUIT", "221 Bye")

    def test_smtplib_starttls(self):
        s = self.d.smtp()
        s.ehlo("client.test")
        s.starttls(context=client_context())
        s.sendmail("s@example.com", ["r@example.com"], b"Subject: x\r\n\r\nx\r\n")
        s.quit()
        self.assert_tls_run(self.d.wait_deliveries(1)[0])


class TestShutdownOverTls(ShutdownGraceCases, unittest.TestCase):
    """The shutdown-grace cases of test_master over STARTTLS: a wait for a
    command, a blocking read of the socket under TLS too, ends with the
    421 when the grace ends; a message in transfer is read to its end
    first."""

    def setUp(self):
        self.d, _, _, _ = certs.smtpd_with_cert(
            RECORD + "\nreceived-header no\nshutdown-grace 1\n" + TLS_CONF,
            timeout=30, listen_opts="starttls")

    def tearDown(self):
        self.d.cleanup()

    def session(self):
        c = self.d.connect()
        c.check("EHLO client.test", ehlo_lines(starttls=True))
        starttls(c)
        c.check("EHLO client.test", ehlo_lines())
        return c


class TestShutdownInHandshake(unittest.TestCase):
    """SIGTERM while a child waits in a TLS handshake, on an implicit-TLS
    listener or after STARTTLS's 220, for a client that sends nothing:
    when the grace period ends the connection is closed without a byte,
    as a wait for a command ends then, not when the handshake would time
    out (the master killed the child SHUTDOWN_KILL seconds later)."""

    def test_handshake_ends_when_grace_ends(self):
        d, _, _, _ = certs.smtpd_with_cert(
            RECORD + "\nshutdown-grace 1\n" + TLS_CONF + "\n"
            "listen on 127.0.0.1 port @PORT@ starttls\n"
            "listen on 127.0.0.1 port @PORT2@ tls", timeout=30)
        self.addCleanup(d.cleanup)
        implicit = d.connect(greeting=False, port=d.port2)
        st = d.connect()
        st.check("STARTTLS", "220 Ready to start TLS")
        time.sleep(0.3)             # both children are in the handshake
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        for c in (implicit, st):
            c.expect_closed(timeout=8)
        self.assertLess(time.monotonic() - t0, 4.0)
        self.assertEqual(d.wait_exit(5), 0, d.log())
        log = d.log()
        self.assertEqual(log.count("tls handshake failed: shutting down"),
                         2, log)
        self.assertNotIn("killed", log)


# -- implicit TLS ---------------------------------------------------------

class TestImplicitTls(TlsCase):
    OPTS = {"listen_opts": "tls", "timeout": 2}

    def test_smtplib_ssl_full_message(self):
        s = smtplib.SMTP_SSL("127.0.0.1", self.d.port, timeout=5,
                             context=client_context())
        try:
            code, _ = s.ehlo("client.test")
            self.assertEqual(code, 250)
            self.assertFalse(s.has_extn("starttls"))
            s.sendmail("s@example.com", ["r@example.com"],
                       b"Subject: smtps\r\n\r\nimplicit\r\n")
            s.quit()
        finally:
            s.close()
        runs = self.d.wait_deliveries(1)
        self.assertEqual(len(runs), 1)
        self.assert_tls_run(runs[0])
        self.assertEqual(strip_received(runs[0]["data"])[1],
                         b"Subject: smtps\r\n\r\nimplicit\r\n")

    def test_raw_ehlo_and_starttls_refused(self):
        c = connect_tls(self.d)
        self.assertEqual(int(c.sock.getpeercert()["serialNumber"], 16),
                         self.serial)
        c.check("EHLO client.test", ehlo_lines())
        c.check("STARTTLS", "454 TLS not available")
        c.check("STARTTLS x", "501 Syntax: STARTTLS")
        self.assert_tls_run(self.message(c))

    def test_plaintext_client_gets_no_greeting(self):
        c = self.connect(greeting=False)
        c.send(b"EHLO client.test\r\n")
        data = b""
        deadline = time.monotonic() + 5
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail("connection still open; got %r" % data)
            c.sock.settimeout(left)
            try:
                chunk = c.sock.recv(4096)
            except ConnectionResetError:
                break
            except socket.timeout:
                continue
            if not chunk:
                break
            data += chunk
        self.assertNotIn(b"220", data)
        self.assertNotIn(b"ESMTP", data)

    def test_silent_client_closed_after_timeout(self):
        c = self.connect(greeting=False)
        t0 = time.monotonic()
        c.expect_closed(timeout=6)
        dt = time.monotonic() - t0
        self.assertGreaterEqual(dt, 1.5)
        self.assertLess(dt, 4.5)

    @unittest.skipUnless(SWAKS_TLS, "swaks missing or without TLS")
    def test_swaks_tlsc(self):
        r = subprocess.run(
            [SWAKS, "--server", "127.0.0.1", "--port", str(self.d.port),
             "--helo", "client.test", "--from", "s@example.com",
             "--to", "r@example.com", "--tlsc", "--timeout", "5"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=30)
        out = r.stdout.decode(errors="replace")
        self.assertEqual(r.returncode, 0, out)
        runs = self.d.wait_deliveries(1)
        self.assertEqual(len(runs), 1, out)
        self.assert_tls_run(runs[0])

    @unittest.skipUnless(OPENSSL, "openssl missing")
    def test_openssl_s_client_tls11_refused(self):
        r = subprocess.run(
            ["timeout", "10", OPENSSL, "s_client", "-connect",
             "127.0.0.1:%d" % self.d.port, "-tls1_1", "-cipher",
             "DEFAULT:@SECLEVEL=0", "-ign_eof"],
            input=b"QUIT\r\n", stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=15)
        out = r.stdout.decode(errors="replace")
        self.assertNotEqual(r.returncode, 0, out)
        self.assertNotIn("220 mx.test", out)


class TestTlsTrickle(TlsCase):
    """A TLS record sent an octet at a time, each sooner than `timeout`
    after the last: the wait for the command ends with the timeout all
    the same, as it does for a plain line sent so."""

    OPTS = {"listen_opts": "tls", "timeout": 2}

    def tls_over(self, sock):
        """Handshake over sock through memory BIOs: the test decides when
        each octet of a record goes out."""
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = client_context().wrap_bio(inc, out,
                                        server_hostname=certs.SERVER_NAME)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                sock.sendall(out.read())
                data = sock.recv(65536)
                self.assertTrue(data, "closed during the handshake")
                inc.write(data)
        sock.sendall(out.read())
        line = b""
        while not line.endswith(b"\r\n"):
            try:
                line += tls.read(4096)
            except ssl.SSLWantReadError:
                data = sock.recv(65536)
                self.assertTrue(data, "closed before the greeting")
                inc.write(data)
        self.assertTrue(line.startswith(b"220 "), line)
        return tls, out

    def test_trickled_record_times_out(self):
        with socket.create_connection(("127.0.0.1", self.d.port), 5) as sock:
            tls, out = self.tls_over(sock)
            tls.write(b"NOOP\r\n")
            record = out.read()
            start = time.monotonic()
            sock.settimeout(0.5)
            ended = None
            for octet in record:
                try:
                    sock.sendall(bytes([octet]))
                    while sock.recv(65536):
                        pass        # the 421, then the end
                    ended = time.monotonic() - start
                    break
                except socket.timeout:
                    continue
                except OSError:
                    ended = time.monotonic() - start
                    break
            self.assertIsNotNone(ended, "%d octets over %.1f s, still open"
                                 % (len(record), time.monotonic() - start))
            self.assertLess(ended, 4.0)
        self.assertTrue(wait_for(lambda: "timeout" in self.d.log(), 5.0),
                        self.d.log())


class TestTls13Only(TlsCase):
    CONFIG = RECORD + "\n" + TLS_CONF + "\ntls protocols TLSv1.3"
    OPTS = {"listen_opts": "tls"}

    def test_tls12_client_refused(self):
        ctx = client_context(maximum=ssl.TLSVersion.TLSv1_2)
        c = self.connect(greeting=False)
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            tls_wrap(c, ctx)

    def test_tls13_client_served(self):
        c = connect_tls(self.d)
        self.assertEqual(c.sock.version(), "TLSv1.3")
        c.check("EHLO client.test", ehlo_lines())


class TestTls12Ciphers(TlsCase):
    CONFIG = (RECORD + "\n" + TLS_CONF + "\ntls protocols TLSv1.2\n"
              'tls ciphers "ECDHE-ECDSA-AES128-GCM-SHA256"')
    OPTS = {"listen_opts": "starttls"}

    def test_cipher_and_protocol(self):
        c = self.connect()
        c.check("STARTTLS", "220 Ready to start TLS")
        tls_wrap(c)
        self.assertEqual(c.sock.version(), "TLSv1.2")
        self.assertEqual(c.sock.cipher()[0], "ECDHE-ECDSA-AES128-GCM-SHA256")
        c.check("EHLO client.test", ehlo_lines())
        run = self.message(c)
        self.assert_tls_run(run,
                            tls_re=r"TLSv1\.2 ECDHE-ECDSA-AES128-GCM-SHA256")

    def test_tls13_only_client_refused(self):
        ctx = client_context(minimum=ssl.TLSVersion.TLSv1_3)
        c = self.connect()
        c.check("STARTTLS", "220 Ready to start TLS")
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            tls_wrap(c, ctx)


# -- configuration errors -------------------------------------------------

class TestTlsConfigErrors(unittest.TestCase):
    def setUp(self):
        self.d = Smtpd("", start=False)

    def tearDown(self):
        self.d.cleanup()

    def check_n(self, config, *names):
        self.d.write_config(RECORD + "\n" + config)
        r = subprocess.run([smtpd_path(), "-n", "-f", self.d.conf],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=10)
        err = r.stderr.decode(errors="replace")
        self.assertEqual(r.returncode, 1, err)
        for n in names:
            self.assertIn(n, err)
        return err

    def test_key_readable_by_others(self):
        cert, key, _ = certs.server_cert(self.d.tmp, key_mode=0o644)
        self.check_n("tls certificate %s key %s" % (cert, key), key)
        os.chmod(key, 0o600)
        self.d.write_config(RECORD + "\ntls certificate %s key %s"
                            % (cert, key))
        r = subprocess.run([smtpd_path(), "-n", "-f", self.d.conf],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_ciphers_error_names_its_own_line(self):
        # OpenSSL refuses the list when the context is made: the error
        # names the line of `tls ciphers`, not that of `tls certificate`.
        cert, key, _ = certs.server_cert(self.d.tmp)
        err = self.check_n("tls certificate %s key %s\n# a comment\n"
                           'tls ciphers "NOSUCHCIPHER"' % (cert, key))
        line = self.d.config.splitlines().index(
            'tls ciphers "NOSUCHCIPHER"') + 1
        self.assertIn('%s:%d: tls: ciphers "NOSUCHCIPHER"'
                      % (self.d.conf, line), err)

    def test_missing_certificate(self):
        _, key, _ = certs.server_cert(self.d.tmp)
        missing = os.path.join(self.d.tmp, "nonexistent.crt")
        self.check_n("tls certificate %s key %s" % (missing, key), missing)

    def test_starttls_without_certificate(self):
        self.check_n("listen on 127.0.0.1 port @PORT@ starttls",
                     self.d.conf)

    def test_tls_with_starttls(self):
        cert, key, _ = certs.server_cert(self.d.tmp)
        self.check_n("tls certificate %s key %s\n"
                     "listen on 127.0.0.1 port @PORT@ tls starttls"
                     % (cert, key), self.d.conf)


# -- SIGHUP certificate rotation -----------------------------------------

class TestCertRotation(TlsCase):
    OPTS = {"listen_opts": "starttls"}

    def peer_serial(self):
        c = self.connect()
        try:
            starttls(c)
            return int(c.sock.getpeercert()["serialNumber"], 16)
        finally:
            c.close()

    def test_sighup_rotates_certificate(self):
        self.assertEqual(self.peer_serial(), self.serial)
        # a session opened before the reload, mid-transaction
        old = self.connect()
        starttls(old)
        self.assertEqual(int(old.sock.getpeercert()["serialNumber"], 16),
                         self.serial)
        old.check("EHLO client.test", ehlo_lines())
        old.check("MAIL FROM:<old@example.com>", "250 OK")
        old.check("RCPT TO:<r@example.com>", "250 OK")
        # new cert + key, moved into place under the configured names
        stage = os.path.join(self.d.tmp, "stage")
        os.mkdir(stage)
        cert, key, serial = certs.server_cert(stage)
        self.assertNotEqual(serial, self.serial)
        os.replace(key, self.key)
        os.replace(cert, self.cert)
        self.d.reload()
        got = wait_for(lambda: self.peer_serial() == serial, 5.0, 0.1)
        self.assertTrue(got, "new serial not seen after SIGHUP; log:\n"
                        + self.d.log()[-2000:])
        # the old session completes its message
        old.check("DATA", "354 End data with <CR><LF>.<CR><LF>")
        old.send(b"Subject: t\r\n\r\nold session\r\n.\r\n")
        old.expect_match(OK_ID)
        old.check("QUIT", "221 Bye")
        runs = self.d.wait_deliveries(1)
        self.assertEqual(len(runs), 1)
        self.assertEqual(runs[0]["argv"][0], "old@example.com")
        self.assert_tls_run(runs[0])


# -- session tickets --------------------------------------------------------

class TicketCase(TlsCase):
    OPTS = {"listen_opts": "starttls"}

    def tls_session(self, ctx, session=None):
        """STARTTLS offering session; returns the client after its first
        EHLO inside TLS and the time that EHLO took, in ms."""
        c = self.connect()
        c.check("STARTTLS", "220 Ready to start TLS")
        c.sock.settimeout(c.timeout)
        c.sock = ctx.wrap_socket(c.sock, server_hostname=certs.SERVER_NAME,
                                 session=session)
        t0 = time.monotonic()
        c.check("EHLO client.test", ehlo_lines())
        return c, (time.monotonic() - t0) * 1000

    def ticket(self, ctx):
        c, _ = self.tls_session(ctx)
        try:
            # TLSv1.3: the ticket came after the handshake, read by now
            return c.sock.session
        finally:
            c.check("QUIT", "221 Bye")
            c.close()

    def resumes(self, ctx, session):
        c, _ = self.tls_session(ctx, session)
        try:
            return c.sock.session_reused
        finally:
            c.close()

    def assert_prompt_ehlo(self):
        # A client that sends EHLO right behind its Finished (Nagle, no
        # TCP_NODELAY here) must not wait for a delayed ACK (40 ms).
        ctx = client_context()
        times = []
        for _ in range(5):
            c, ms = self.tls_session(ctx)
            c.close()
            times.append(ms)
        self.assertLess(min(times), 20.0, times)


class TestTickets(TicketCase):
    def test_resumed_session_delivers(self):
        ctx = client_context()
        session = self.ticket(ctx)
        self.assertTrue(session.has_ticket)
        c, _ = self.tls_session(ctx, session)
        self.assertTrue(c.sock.session_reused)
        run = self.message(c)
        self.assert_tls_run(run)
        c.check("QUIT", "221 Bye")

    def test_first_ehlo_after_handshake_is_prompt(self):
        self.assert_prompt_ehlo()


class TestNoTickets(TicketCase):
    CONFIG = TlsCase.CONFIG + "\ntls tickets no"

    def test_no_ticket_no_resumption(self):
        ctx = client_context()
        session = self.ticket(ctx)
        self.assertFalse(session.has_ticket)
        self.assertFalse(self.resumes(ctx, session))

    def test_first_ehlo_after_handshake_is_prompt(self):
        self.assert_prompt_ehlo()


class TestTicketKeyRotation(TicketCase):
    def reload(self, n):
        self.d.reload()
        self.assertTrue(self.d.wait_log("reloaded configuration", n),
                        self.d.log()[-2000:])

    def test_reload_keeps_previous_key_only(self):
        ctx = client_context()
        session = self.ticket(ctx)
        self.assertTrue(self.resumes(ctx, session))
        # a new key; the one that sealed the ticket still opens it
        self.reload(1)
        self.assertTrue(self.resumes(ctx, session))
        # two keys later it is forgotten: a full handshake, no failure
        self.reload(2)
        self.assertFalse(self.resumes(ctx, session))
        self.assertTrue(self.resumes(ctx, self.ticket(ctx)))


class UpgradeTicketCase(TicketCase):
    """A master with a pidfile, which names the new one after SIGUSR2;
    that one is stopped after each test."""

    CONFIG = TlsCase.CONFIG + "\npidfile @TMP@/smtpd.pid"

    def tearDown(self):
        pid = read_pid(os.path.join(self.d.tmp, "smtpd.pid"))
        if pid is not None and pid != self.d.pid and pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not pid_alive(pid), 15)


class TestTicketsAcrossUpgrade(UpgradeTicketCase):
    """SIGUSR2: the new master takes the old one's ticket keys, so that the
    tickets clients hold still resume (each had a full handshake before,
    for the hour a ticket lives)."""

    def reload(self, pid, n):
        os.kill(pid, signal.SIGHUP)
        self.assertTrue(self.d.wait_log("reloaded configuration", n),
                        self.d.log()[-2000:])

    def test_ticket_resumes_after_upgrade(self):
        ctx = client_context()
        session = self.ticket(ctx)
        self.d.signal(signal.SIGUSR2)
        self.assertTrue(self.d.wait_log(r"upgrade: new master \d+ is ready",
                                        timeout=15), self.d.log()[-2000:])
        self.assertEqual(self.d.wait_exit(15), 0, self.d.log()[-2000:])
        new = read_pid(os.path.join(self.d.tmp, "smtpd.pid"))
        self.assertNotEqual(new, self.d.pid)
        self.assertTrue(self.resumes(ctx, session))
        # The key that sealed it is the new master's current one: the
        # first reload keeps it as the previous, the second drops it.
        self.reload(new, 1)
        self.assertTrue(self.resumes(ctx, session))
        self.reload(new, 2)
        self.assertFalse(self.resumes(ctx, session))


class CopiedTicketCase(UpgradeTicketCase):
    """The master runs from a copy of the binary in the test's directory,
    which a test replaces (install) before SIGUSR2."""

    @classmethod
    def setUpClass(cls):
        d = Smtpd("", start=False, **cls.OPTS)
        try:
            cls.cert, cls.key, cls.serial = certs.server_cert(d.tmp)
            d.write_config(cls.CONFIG.replace("@CERT@", cls.cert)
                           .replace("@KEY@", cls.key))
            d.binary = os.path.join(d.tmp, "smtpd")
            shutil.copy2(smtpd_path(), d.binary)
            d.start()
        except BaseException:
            d.cleanup()
            raise
        cls.d = d

    def install(self, path, text):
        with open(path + ".new", "w") as f:
            f.write(text)
        os.chmod(path + ".new", 0o755)
        os.rename(path + ".new", path)


class TestTicketsAcrossDowngrade(CopiedTicketCase):
    """An upgrade to a binary without the handover (it leaves
    SMTPD_UPGRADE_TICKETS in its environment and the memfd open, in it and
    in every child it forks), then one back: the keys must not stay
    readable there, and, those of the master before the older one, not the
    older one's, the new master must not take them up again."""

    def upgrade(self, pid, n):
        pidfile = os.path.join(self.d.tmp, "smtpd.pid")
        os.kill(pid, signal.SIGUSR2)
        self.assertTrue(self.d.wait_log(r"upgrade: new master \d+ is ready",
                                        n, timeout=15), self.d.log()[-2000:])
        self.assertTrue(wait_for(lambda: not pid_alive(pid), 15))
        self.assertNotEqual(read_pid(pidfile), pid)
        return read_pid(pidfile)

    def handed_keys(self, pid):
        """The octets of a memfd of keys handed over open in pid or in a
        child of it."""
        n = 0
        for p in [pid] + pid_children(pid):
            try:
                fds = os.listdir("/proc/%d/fd" % p)
            except OSError:
                continue
            for fd in fds:
                path = "/proc/%d/fd/%s" % (p, fd)
                try:
                    if "smtpd-tickets" in os.readlink(path):
                        n += os.stat(path).st_size
                except OSError:
                    pass
        return n

    def test_stale_keys_not_taken(self):
        old = os.path.join(self.d.tmp, "old")
        new = os.path.join(self.d.tmp, "new")
        ctx = client_context()
        session = self.ticket(ctx)
        # The older binary, as far as the handover goes: it neither reads
        # nor removes the variable, nor closes the descriptor.
        shutil.copy2(smtpd_path(), old)
        self.install(self.d.binary,
                     "#!/bin/sh\nexport STALE=$SMTPD_UPGRADE_TICKETS\n"
                     "unset SMTPD_UPGRADE_TICKETS\nexec %s \"$@\"\n" % old)
        older = self.upgrade(self.d.pid, 1)
        self.assertFalse(self.resumes(ctx, session))
        # The keys handed over went with the master that handed them.
        self.assertEqual(self.handed_keys(older), 0)
        # Back to the binary with the handover, which the older one starts
        # with all its environment and descriptors (and no keys of its own).
        shutil.copy2(smtpd_path(), new)
        self.install(old, "#!/bin/sh\nexport SMTPD_UPGRADE_TICKETS=$STALE\n"
                     "exec %s \"$@\"\n" % new)
        self.upgrade(older, 2)
        self.assertFalse(self.resumes(ctx, session))


class TestTicketsReloadDuringUpgrade(CopiedTicketCase):
    """A reload of the old master while the new one starts (here a script
    that sleeps before it runs the binary): no new key, or the tickets its
    children seal meanwhile would not resume on the new master."""

    def test_ticket_sealed_in_the_window_resumes(self):
        new = os.path.join(self.d.tmp, "new")
        shutil.copy2(smtpd_path(), new)
        self.install(self.d.binary,
                     "#!/bin/sh\nsleep 2\nexec %s \"$@\"\n" % new)
        ctx = client_context()
        os.kill(self.d.pid, signal.SIGUSR2)
        self.assertTrue(self.d.wait_log(r"upgrade: new master \d+ started"),
                        self.d.log()[-2000:])
        self.d.reload()
        self.assertTrue(self.d.wait_log("reloaded configuration"),
                        self.d.log()[-2000:])
        self.assertNotIn("is ready", self.d.log())
        session = self.ticket(ctx)
        self.assertTrue(self.d.wait_log(r"upgrade: new master \d+ is ready",
                                        timeout=15), self.d.log()[-2000:])
        self.assertTrue(wait_for(lambda: not pid_alive(self.d.pid), 15))
        self.assertTrue(self.resumes(ctx, session))


class TestTicketKeysFailedReload(TicketCase):
    def test_failed_reload_keeps_the_keys(self):
        ctx = client_context()
        session = self.ticket(ctx)
        good = self.d.config
        # fails after the certificate is loaded: the table is missing
        self.d.reload(good + "\naccept recipients /nonexistent/table\n",
                      raw=True)
        self.assertTrue(self.d.wait_log("reload failed"), self.d.log())
        # one good reload: the key that sealed the ticket still opens it
        self.d.reload(good, raw=True)
        self.assertTrue(self.d.wait_log("reloaded configuration"),
                        self.d.log()[-2000:])
        self.assertTrue(self.resumes(ctx, session))


class TestTicketsAfterTlsChange(TicketCase):
    """A ticket sealed before a reload that changed the TLS configuration
    is not resumed, though its key still opens it: resumption would serve
    on, for the hour a ticket lives, a cipher taken out of `tls ciphers`
    or the certificate replaced (a full handshake under the new one)."""

    def reload(self, config=None):
        n = self.d.log().count("reloaded configuration") + 1
        self.d.reload(config, raw=config is not None)
        self.assertTrue(self.d.wait_log("reloaded configuration", n),
                        self.d.log()[-2000:])

    def test_cipher_taken_out(self):
        ctx = client_context()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        session = self.ticket(ctx)
        self.assertTrue(session.has_ticket)
        old = self.tls_session(ctx, session)[0].sock.cipher()[0]
        self.assertNotEqual(old, "ECDHE-ECDSA-CHACHA20-POLY1305")
        self.reload(self.d.config + "tls ciphers "
                    "\"ECDHE-ECDSA-CHACHA20-POLY1305\"\n")
        c, _ = self.tls_session(ctx, session)
        self.assertFalse(c.sock.session_reused)
        self.assertEqual(c.sock.cipher()[0], "ECDHE-ECDSA-CHACHA20-POLY1305")

    def test_certificate_replaced(self):
        ctx = client_context()
        session = self.ticket(ctx)
        self.assertTrue(self.resumes(ctx, session))
        stage = os.path.join(self.d.tmp, "stage")
        os.mkdir(stage)
        cert, key, serial = certs.server_cert(stage)
        os.replace(key, self.key)
        os.replace(cert, self.cert)
        self.reload()
        c, _ = self.tls_session(ctx, session)
        self.assertFalse(c.sock.session_reused)
        self.assertEqual(int(c.sock.getpeercert()["serialNumber"], 16),
                         serial)
        # the new configuration's tickets resume
        self.assertTrue(self.resumes(ctx, self.ticket(ctx)))


if __name__ == "__main__":
    unittest.main()
