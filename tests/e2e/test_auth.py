"""AUTH (RFC 4954), its EHLO line and HELP; the smtpd.conf.5 settings
`auth passwd`, `auth checkpassword`, `auth mechanisms`, `auth max-failures`,
`auth failure-delay`, listener `auth`, `require-auth`, `auth-plaintext`.
Real clients: smtplib, swaks; raw sockets for the exact replies."""

import base64
import re
import os
import shutil
import signal
import smtplib
import subprocess
import time
import unittest
import warnings

import certs
from certs import client_context, connect_tls, starttls
from harness import (TRACED, Smtpd, SmtpdTest, ehlo_lines, end_tracers,
                     pid_alive, read_pids, strip_received, wait_for)

HOST = "mx.test"
SWAKS = shutil.which("swaks")

# Every password used below; none may ever appear in smtpd's log.
USERS = {"alice": "Pw-alice-3f9Kq", "bob": "Pw-bob-x7Rt2"}
WRONG = "Pw-wrong-Zz81q"
CP_USER, CP_PASS = "carol", "Pw-carol-cp-5521"
ANY_PASS = "Pw-any-user-7731"
PASSWORDS = list(USERS.values()) + [WRONG, CP_PASS, ANY_PASS]

OK_235 = "235 2.7.0 Authentication successful"
BAD_535 = "535 5.7.8 Authentication credentials invalid"
TEMP_454 = "454 4.7.0 Temporary authentication failure"
TOO_MANY_421 = "421 4.7.0 Too many authentication failures"
NEED_538 = ("538 5.7.11 Encryption required for requested authentication "
            "mechanism")
NEED_AUTH = "530 5.7.0 Authentication required"
UNRECOGNIZED_504 = "504 5.5.4 Unrecognized authentication type"
LOGIN_USER = "334 VXNlciBOYW1lAA=="
LOGIN_PASS = "334 UGFzc3dvcmQA"
HELP_AUTH = "AUTH DATA EHLO HELO HELP MAIL NOOP QUIT RCPT RSET VRFY"
HELP_AUTH_TLS = ("AUTH DATA EHLO HELO HELP MAIL NOOP QUIT RCPT RSET STARTTLS "
                 "VRFY")

RECORD_USER = 'deliver "@RECORDER@ @OUT@ %{user} %{sender} %{recipients}"'


def b64(text):
    if isinstance(text, str):
        text = text.encode()
    return base64.b64encode(text).decode()


def plain(user, password, authzid=""):
    return b64("%s\0%s\0%s" % (authzid, user, password))


def crypt_hash(password):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512))
    except ImportError:
        return subprocess.run(["openssl", "passwd", "-6", "-stdin"],
                              input=password.encode(), check=True,
                              stdout=subprocess.PIPE).stdout.decode().strip()


def write_passwd(directory):
    path = os.path.join(directory, "passwd")
    with open(path, "w") as f:
        for u, p in USERS.items():
            f.write("%s:%s\n" % (u, crypt_hash(p)))
        # locked accounts (shadow style) load and never match
        f.write("locked:*\nlocked2:!%s\n" % crypt_hash(WRONG))
    os.chmod(path, 0o600)
    return path


# A checkpassword program: carol/CP_PASS is good, user "temp" is a
# temporary failure (111), user "hang" never answers, user "traced" never
# answers and is not gone when killed (harness.TRACED), user "bg"
# leaves a process behind (its pid in checkpassword.sh.bg) and fails, any
# user with ANY_PASS is good, anything else is bad.
CHECKPASSWORD = r"""#!/bin/sh
input=$(tr '\000' '\n' <&3 | head -n 2 | tr '\n' ':')
case "$input" in
%s:%s:) exit 0 ;;
temp:*) exit 111 ;;
hang:*) exec sleep 60 ;;
traced:*) T=$(dirname "$0") exec python3 "$(dirname "$0")/traced.py" ;;
bg:*) sleep 60 </dev/null >/dev/null 2>&1 3<&- & echo $! >"$0.bg"; exit 1 ;;
*:%s:) exit 0 ;;
*) exit 1 ;;
esac
""" % (CP_USER, CP_PASS, ANY_PASS)


def swaks_supports_tls():
    if not SWAKS:
        return False
    r = subprocess.run([SWAKS, "--support"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return b"=== TLS supported" in r.stdout


class AuthCase(SmtpdTest):
    """A daemon with a certificate (@CERT@ @KEY@), a passwd file (@PASSWD@)
    and a checkpassword program (@CHECKPASSWORD@) in its temp dir."""

    CONFIG = RECORD_USER
    # Many failures from 127.0.0.1: not throttled but where tested.
    PER_ADDRESS = "auth max-failures-per-address 0\n"

    @classmethod
    def setUpClass(cls):
        opts = dict(cls.OPTS)
        opts["start"] = False
        d = Smtpd("", **opts)
        try:
            cls.cert, cls.key, _ = certs.server_cert(d.tmp)
            passwd = write_passwd(d.tmp)
            cp = os.path.join(d.tmp, "checkpassword.sh")
            with open(cp, "w") as f:
                f.write(CHECKPASSWORD)
            os.chmod(cp, 0o755)
            with open(os.path.join(d.tmp, "traced.py"), "w") as f:
                f.write(TRACED)
            d.write_config((cls.PER_ADDRESS + cls.CONFIG)
                           .replace("@CERT@", cls.cert)
                           .replace("@KEY@", cls.key)
                           .replace("@PASSWD@", passwd)
                           .replace("@CHECKPASSWORD@", cp))
            d.start()
        except BaseException:
            d.cleanup()
            raise
        cls.d = d

    def assert_auth_run(self, run, user, proto):
        self.assertEqual(run["env"]["SMTPD_AUTH_USER"], user)
        self.assertEqual(run["argv"][0], user)        # %{user}
        head, _ = strip_received(run["data"])
        self.assertIsNotNone(head, run["data"])
        self.assertRegex(head.decode(), r"\bwith %s id " % proto)

    def test_zz_no_password_in_log(self):
        """Runs last in its class (alphabetical order)."""
        log = self.d.log()
        for p in PASSWORDS:
            for form in (p, b64(p)):
                self.assertNotIn(form, log)
        for u, p in list(USERS.items()) + [(CP_USER, CP_PASS)]:
            self.assertNotIn(plain(u, p), log)


TLS_PASSWD = "tls certificate @CERT@ key @KEY@\nauth passwd @PASSWD@\n"


class TestAuth(AuthCase):
    CONFIG = (RECORD_USER + "\n" + TLS_PASSWD + "auth failure-delay 0\n"
              "listen on 127.0.0.1 port @PORT@ starttls auth\n"
              "listen on 127.0.0.1 port @PORT2@ starttls auth auth-plaintext\n"
              "listen on 127.0.0.1 port @PORT3@ tls auth")

    def tls_session(self, ehlo=True):
        """An EHLO'd session inside STARTTLS on the first listener."""
        c = self.connect()
        starttls(c)
        if ehlo:
            c.check("EHLO client.test", ehlo_lines(auth="LOGIN PLAIN"))
        return c

    # -- advertisement, HELP --

    def test_ehlo_auth_line_only_in_tls(self):
        c = self.connect()
        c.check("EHLO client.test", ehlo_lines(starttls=True))
        c.check("AUTH PLAIN " + plain("alice", USERS["alice"]), NEED_538)
        c.check("AUTH LOGIN", NEED_538)
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        starttls(c)
        c.check("EHLO client.test", ehlo_lines(auth="LOGIN PLAIN"))

    def test_auth_plaintext_listener_advertises(self):
        c = self.connect(port=self.d.port2)
        c.check("EHLO client.test", ehlo_lines(starttls=True, auth="LOGIN PLAIN"))
        c.check("AUTH PLAIN " + plain("alice", USERS["alice"]), OK_235)
        run = self.message(c)
        self.assert_auth_run(run, "alice", "ESMTPA")
        self.assertEqual(run["env"]["SMTPD_TLS"], "")

    def test_implicit_tls_advertises(self):
        c = connect_tls(self.d, port=self.d.port3)
        c.check("EHLO client.test", ehlo_lines(auth="LOGIN PLAIN"))
        c.check("AUTH PLAIN " + plain("bob", USERS["bob"]), OK_235)
        self.assert_auth_run(self.message(c), "bob", "ESMTPSA")

    def test_help_lists_auth(self):
        c = self.connect()
        c.check("HELP", "250 Supported commands: " + HELP_AUTH_TLS)
        c.check("HELP AUTH", "250 Syntax: AUTH <mechanism>")
        c3 = connect_tls(self.d, port=self.d.port3)
        c3.check("HELP", "250 Supported commands: " + HELP_AUTH)

    # -- smtplib --

    def smtplib_tls(self):
        s = self.d.smtp()
        s.ehlo("client.test")
        s.starttls(context=client_context())
        s.ehlo("client.test")
        self.assertEqual(s.esmtp_features.get("auth", "").strip(),
                         "LOGIN PLAIN")
        return s

    def smtplib_send(self, s, user):
        s.sendmail("s@example.com", ["r@example.com"],
                   b"Subject: a\r\n\r\nauthenticated\r\n")
        s.quit()
        runs = self.d.wait_deliveries(1)
        self.assertEqual(len(runs), 1)
        self.assert_auth_run(runs[0], user, "ESMTPSA")
        self.assertRegex(runs[0]["env"]["SMTPD_TLS"], r"^TLSv1\.3 ")

    def test_smtplib_login_plain(self):
        s = self.smtplib_tls()
        s.user, s.password = "alice", USERS["alice"]
        code, text = s.auth("PLAIN", s.auth_plain)   # initial response
        self.assertEqual((code, text), (235, b"2.7.0 Authentication successful"))
        self.smtplib_send(s, "alice")

    def test_smtplib_login_login(self):
        s = self.smtplib_tls()
        s.user, s.password = "bob", USERS["bob"]
        code, _ = s.auth("LOGIN", s.auth_login)       # initial response
        self.assertEqual(code, 235)
        self.smtplib_send(s, "bob")

    def test_smtplib_without_initial_response(self):
        for mech, fn in (("PLAIN", "auth_plain"), ("LOGIN", "auth_login")):
            with self.subTest(mech=mech):
                self.d.clear_out()
                s = self.smtplib_tls()
                s.user, s.password = "alice", USERS["alice"]
                code, _ = s.auth(mech, getattr(s, fn),
                                 initial_response_ok=False)
                self.assertEqual(code, 235)
                self.smtplib_send(s, "alice")

    def test_smtplib_login_method_and_wrong_password(self):
        s = self.smtplib_tls()
        with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
            s.login("alice", WRONG)
        self.assertEqual(cm.exception.smtp_code, 535)
        code, _ = s.login("alice", USERS["alice"])
        self.assertEqual(code, 235)
        self.smtplib_send(s, "alice")

    # -- raw exchanges --

    def test_plain_challenge(self):
        c = self.tls_session()
        c.check("AUTH PLAIN", "334 ")
        c.check(plain("alice", USERS["alice"], authzid="someone"), OK_235)
        c.check("AUTH PLAIN " + plain("alice", USERS["alice"]),
                "503 Already authenticated")
        c.check("AUTH FOO", "503 Already authenticated")
        c.check("AUTH", "503 Already authenticated")
        # kept over RSET and EHLO
        c.check("RSET", "250 OK")
        c.check("EHLO client.test", ehlo_lines(auth="LOGIN PLAIN"))
        c.check("AUTH LOGIN", "503 Already authenticated")
        self.assert_auth_run(self.message(c), "alice", "ESMTPSA")

    def test_login_challenges(self):
        c = self.tls_session()
        c.check("AUTH LOGIN", LOGIN_USER)
        c.check(b64("bob"), LOGIN_PASS)
        c.check(b64(USERS["bob"]), OK_235)
        c2 = self.tls_session()
        c2.check("AUTH LOGIN " + b64("bob"), LOGIN_PASS)
        c2.check(b64(USERS["bob"]), OK_235)

    def test_abort(self):
        c = self.tls_session()
        c.check("AUTH PLAIN", "334 ")
        c.check("*", "501 5.7.0 Auth aborted")
        c.check("AUTH LOGIN", LOGIN_USER)
        c.check("*", "501 5.7.0 Auth aborted")
        c.check("AUTH LOGIN", LOGIN_USER)
        c.check(b64("alice"), LOGIN_PASS)
        c.check("*", "501 5.7.0 Auth aborted")
        c.check("NOOP", "250 OK")
        c.check("AUTH PLAIN " + plain("alice", USERS["alice"]), OK_235)

    def test_empty_responses(self):
        c = self.tls_session()
        c.check("AUTH PLAIN =", "501 5.5.2 Can't split auth value")
        c.check("AUTH PLAIN", "334 ")
        c.check("=", "501 5.5.2 Can't split auth value")
        c.check("AUTH PLAIN", "334 ")
        c.check("", "501 5.5.2 Can't split auth value")
        c.check("AUTH PLAIN " + b64("alice\0" + USERS["alice"]),
                "501 5.5.2 Can't split auth value")
        c.check("AUTH LOGIN =", LOGIN_PASS)
        c.check("*", "501 5.7.0 Auth aborted")
        c.check("NOOP", "250 OK")

    def test_bad_base64(self):
        c = self.tls_session()
        for arg in ("!!!!", "AB", "AB=", "==", "=A", "QUIT x"):
            with self.subTest(initial=arg):
                want = ("501 Too many values" if " " in arg
                        else "501 5.5.2 Can't decode base64")
                c.check("AUTH PLAIN " + arg, want)
        c.check("AUTH LOGIN *", "501 5.5.2 Can't decode base64")
        c.check("AUTH LOGIN", LOGIN_USER)
        c.check("not base64!", "501 5.5.2 Can't decode base64")
        c.check("AUTH PLAIN", "334 ")
        # not a command: valid base64 of three bytes without NULs
        c.check("QUIT", "501 5.5.2 Can't split auth value")
        c.check("NOOP", "250 OK")

    def test_overlong_response(self):
        c = self.tls_session()
        c.check("AUTH PLAIN", "334 ")
        c.check("A" * 1200,
                "500 5.5.6 Authentication Exchange line is too long")
        c.check("NOOP", "250 OK")
        c.check("AUTH LOGIN", LOGIN_USER)
        c.check("QUFB" * 400,
                "500 5.5.6 Authentication Exchange line is too long")
        c.check("AUTH PLAIN " + plain("alice", USERS["alice"]), OK_235)

    def test_mechanism_case_and_unknown(self):
        c = self.tls_session()
        c.check("auth plain", UNRECOGNIZED_504)
        c.check("AUTH Login", UNRECOGNIZED_504)
        c.check("AUTH FOO", UNRECOGNIZED_504)
        c.check("AUTH CRAM-MD5 xyz", UNRECOGNIZED_504)
        c.check("auth PLAIN " + plain("alice", USERS["alice"]), OK_235)

    def test_argument_count(self):
        c = self.tls_session()
        c.check("AUTH", "501 Not enough value")
        c.check("AUTH PLAIN a b", "501 Too many values")
        c.check("AUTH FOO a b", "501 Too many values")

    def test_before_ehlo_and_after_helo(self):
        c = self.connect()
        starttls(c)
        c.check("AUTH PLAIN " + plain("alice", USERS["alice"]),
                "503 Error: send EHLO first")
        c.check("HELO client.test", "250 " + HOST)
        c.check("AUTH PLAIN " + plain("alice", USERS["alice"]),
                "500 Error: command 'AUTH' not recognized")
        c.check("AUTH", "500 Error: command 'AUTH' not recognized")
        c.check("EHLO client.test", ehlo_lines(auth="LOGIN PLAIN"))
        c.check("AUTH PLAIN " + plain("alice", USERS["alice"]), OK_235)
        c3 = connect_tls(self.d, port=self.d.port3)
        c3.check("AUTH LOGIN", "503 Error: send EHLO first")

    def test_wrong_password_and_unknown_user(self):
        c = self.tls_session()
        t0 = time.monotonic()
        c.check("AUTH PLAIN " + plain("alice", WRONG), BAD_535)
        self.assertLess(time.monotonic() - t0, 0.8)   # failure-delay 0
        c.check("AUTH LOGIN", LOGIN_USER)
        c.check(b64("nobody-here"), LOGIN_PASS)
        c.check(b64(WRONG), BAD_535)
        c.check("AUTH PLAIN " + plain("alice", USERS["alice"]), OK_235)

    def test_locked_accounts_and_empty(self):
        c = self.tls_session()
        c.check("AUTH PLAIN " + plain("locked", "*"), BAD_535)
        c.check("AUTH PLAIN " + plain("locked2", WRONG), BAD_535)
        c3 = self.tls_session()
        c3.check("AUTH PLAIN " + plain("locked", ""), BAD_535)
        c3.check("AUTH LOGIN =", LOGIN_PASS)        # empty user, password
        c3.check("=", BAD_535)

    def test_max_failures(self):
        c = self.tls_session()
        c.check("AUTH PLAIN " + plain("alice", WRONG), BAD_535)
        c.check("AUTH PLAIN " + plain("bob", WRONG), BAD_535)
        c.check("AUTH PLAIN " + plain("alice", WRONG), TOO_MANY_421)
        c.expect_closed()
        # per connection: a new one starts afresh
        c2 = self.tls_session()
        c2.check("AUTH PLAIN " + plain("alice", WRONG), BAD_535)
        c2.check("AUTH PLAIN " + plain("alice", USERS["alice"]), OK_235)

    def test_starttls_forgets_authentication(self):
        c = self.connect(port=self.d.port2)
        c.check("EHLO client.test", ehlo_lines(starttls=True, auth="LOGIN PLAIN"))
        c.check("AUTH PLAIN " + plain("alice", USERS["alice"]), OK_235)
        starttls(c)
        c.check("EHLO client.test", ehlo_lines(auth="LOGIN PLAIN"))
        c.check("AUTH PLAIN " + plain("bob", USERS["bob"]), OK_235)
        self.assert_auth_run(self.message(c), "bob", "ESMTPSA")

    def test_unauthenticated_message(self):
        c = self.tls_session()
        run = self.message(c)
        self.assertEqual(run["env"]["SMTPD_AUTH_USER"], "")
        self.assertEqual(run["argv"][0], "")
        self.assertRegex(strip_received(run["data"])[0].decode(),
                         r"\bwith ESMTPS id ")

    # -- swaks --

    def swaks(self, port, tls_opt, mech, user, password):
        r = subprocess.run(
            [SWAKS, "--server", "127.0.0.1", "--port", str(port),
             "--helo", "client.test", "--from", "s@example.com",
             "--to", "r@example.com", tls_opt, "--timeout", "5",
             "--auth", mech, "--auth-user", user,
             "--auth-password", password],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=30)
        return r.returncode, r.stdout.decode(errors="replace")

    @unittest.skipUnless(swaks_supports_tls(), "swaks without TLS support")
    def test_swaks(self):
        for port, opt in ((self.d.port, "--tls"), (self.d.port3, "--tlsc")):
            for mech, user in (("PLAIN", "alice"), ("LOGIN", "bob")):
                with self.subTest(opt=opt, mech=mech):
                    self.d.clear_out()
                    rc, out = self.swaks(port, opt, mech, user, USERS[user])
                    self.assertEqual(rc, 0, out)
                    self.assertIn("235 2.7.0 Authentication successful", out)
                    runs = self.d.wait_deliveries(1)
                    self.assertEqual(len(runs), 1, out)
                    self.assert_auth_run(runs[0], user, "ESMTPSA")
        rc, out = self.swaks(self.d.port, "--tls", "PLAIN", "alice", WRONG)
        self.assertNotEqual(rc, 0, out)
        self.assertIn(BAD_535, out)


class TestAuthMechanismsPlain(AuthCase):
    CONFIG = (RECORD_USER + "\n" + TLS_PASSWD + "auth failure-delay 0\n"
              "auth mechanisms PLAIN")
    OPTS = {"listen_opts": "auth auth-plaintext"}

    def test_only_plain(self):
        c = self.connect()
        c.check("EHLO client.test", ehlo_lines(auth="PLAIN"))
        c.check("AUTH LOGIN", UNRECOGNIZED_504)
        c.check("AUTH LOGIN " + b64("alice"), UNRECOGNIZED_504)
        c.check("AUTH PLAIN " + plain("alice", USERS["alice"]), OK_235)
        self.assert_auth_run(self.message(c), "alice", "ESMTPA")

    def test_not_inside_a_transaction(self):
        """RFC 4954 4: MAIL and RCPT were judged unauthenticated, so AUTH
        waits for the transaction to end."""
        c = self.connect()
        c.check("EHLO client.test", ehlo_lines(auth="PLAIN"))
        c.check("MAIL FROM:<s@example.com>", "250 OK")
        c.check("AUTH PLAIN " + plain("alice", USERS["alice"]),
                "503 5.5.1 Error: MAIL transaction in progress")
        c.check("RCPT TO:<r@example.com>", "250 OK")
        c.check("AUTH PLAIN " + plain("alice", USERS["alice"]),
                "503 5.5.1 Error: MAIL transaction in progress")
        c.check("RSET", "250 OK")
        c.check("AUTH PLAIN " + plain("alice", USERS["alice"]), OK_235)


class TestAuthLongResponse(AuthCase):
    """With a max-line-length above 2 KiB a response can be valid base64
    of more than any credentials hold: it fails as bad credentials
    (535), not as bad base64; LOGIN still asks for the password.  A
    PLAIN value is decoded whole: split or not, and its authzid ignored,
    whatever its length.  (The AUTH line itself is a command: 512 octets
    at most.)"""
    CONFIG = (RECORD_USER + "\n" + TLS_PASSWD + "auth failure-delay 0\n"
              "max-line-length 8192")
    OPTS = {"listen_opts": "auth auth-plaintext"}

    def test_long_plain(self):
        c = self.connect()
        c.check("EHLO client.test", ehlo_lines(auth="LOGIN PLAIN"))
        c.check("AUTH PLAIN", "334 ")
        c.check(plain("alice", "p" * 1600), BAD_535)

    def test_long_plain_split_as_any(self):
        c = self.session()
        c.check("AUTH PLAIN", "334 ")
        c.check(b64("x" * 2000), "501 5.5.2 Can't split auth value")
        c.check("AUTH PLAIN", "334 ")
        c.check(b64("\0alice\0p\0" + "x" * 2000),
                "501 5.5.2 Can't split auth value")
        c.check("AUTH PLAIN", "334 ")
        c.check(plain("alice", USERS["alice"], authzid="z" * 2000), OK_235)

    def test_long_plain_not_logged_as_another_user(self):
        # The log names no user the response did not give: not the one
        # of an earlier AUTH of the child (left on its stack).
        c = self.session()
        c.check("AUTH PLAIN " + plain("earlier-name", WRONG), BAD_535)
        c.check("AUTH PLAIN", "334 ")
        c.check(plain("mallory", "p" * 1600), BAD_535)
        c.check("QUIT", "221 Bye")
        self.assertTrue(self.d.wait_log(r"auth user=\S* failed "
                                        r"mechanism=PLAIN", count=2))
        self.assertEqual(self.d.log().count("auth user=earlier-name "), 1,
                         self.d.log())

    def test_long_login_user(self):
        c = self.connect()
        c.check("EHLO client.test", ehlo_lines(auth="LOGIN PLAIN"))
        c.check("AUTH LOGIN", LOGIN_USER)
        c.check(b64("a" * 1600), LOGIN_PASS)
        c.check(b64(USERS["alice"]), BAD_535)


class TestAuthVerboseLog(AuthCase):
    """-v logs every reply, and the 500 of an unknown command repeats its
    verb: a response sent when no AUTH exchange was under way (a client
    that pipelined AUTH with its responses, answered 503 or 538) is such
    a verb, and must not reach the log, in any case of its letters.  The
    client still gets its verb back."""
    CONFIG = (RECORD_USER + "\n" + TLS_PASSWD + "auth failure-delay 0\n"
              "command-limit 2\nsmtputf8 yes")
    OPTS = {"listen_opts": "auth auth-plaintext", "args": ("-v",)}

    def test_responses_out_of_an_exchange(self):
        pw = plain("alice", USERS["alice"])
        c = self.connect()
        c.send("AUTH PLAIN\r\n%s\r\n" % pw)
        c.expect("503 Error: send EHLO first")
        c.expect('500 Error: command "%s" not recognized' % pw.upper())
        c.check("EHLO client.test",
                ehlo_lines(smtputf8=True, auth="LOGIN PLAIN"))
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.send("AUTH LOGIN\r\n%s\r\n%s\r\n"
               % (b64("alice"), b64(USERS["alice"])))
        c.expect("503 5.5.1 Error: MAIL transaction in progress")
        c.expect('500 Error: command "%s" not recognized'
                 % b64("alice").upper())
        c.expect('500 Error: command "%s" not recognized'
                 % b64(USERS["alice"]).upper())
        # Over the budget of command-limit: 421 repeats the verb too.
        c.send(("%s\r\n" % pw) * 2)
        c.expect('500 Error: command "%s" not recognized' % pw.upper())
        c.expect("421 4.7.0 %s sent too many times" % pw.upper())
        c.expect_closed()
        self.assertTrue(self.d.wait_log(r"disconnect commands="))
        log = self.d.log()
        for secret in (pw, b64("alice"), b64(USERS["alice"])):
            self.assertNotIn(secret.upper(), log.upper())
        self.assertIn('> 500 Error: command "(not logged)" not recognized',
                      log)
        self.assertIn("> 421 4.7.0 (not logged) sent too many times", log)

    def test_known_verb_over_budget_logged(self):
        c = self.connect()
        c.check("NOOP", "250 OK")
        c.check("NOOP", "250 OK")
        c.check("NOOP", "421 4.7.0 NOOP sent too many times")
        self.assertTrue(self.d.wait_log(r"> 421 4\.7\.0 NOOP sent too "
                                        r"many times"))

    def test_reply_escaped(self):
        # VRFY repeats its argument, controls masked but not the octets
        # of smtputf8: the log escapes them (smtpd.8 Logging), U+009B
        # (a terminal's CSI) as any other.
        c = self.connect()
        c.check("VRFY <a\u009b31m\udcff@b", "502 Could not VRFY "
                "<a\u009b31m\udcff@b")
        self.assertTrue(self.d.wait_log(r"> 502 Could not VRFY "
                                        r"<a\\xc2\\x9b31m\\xff@b"))
        self.assertNotIn("\u009b", self.d.log())


class TestAuthInputMoves(AuthCase):
    """The AUTH line lies in the input buffer, which reading the next
    line of the exchange may move: nothing of the old line is used after
    that (the mechanism logged was read there, and here it was the
    password's base64; the initial response was wiped there, over what
    had moved in)."""
    CONFIG = (RECORD_USER + "\n" + TLS_PASSWD + "auth failure-delay 0\n")
    OPTS = {"listen_opts": "auth auth-plaintext"}

    def test_mechanism_logged_is_the_mechanism(self):
        c = self.connect()
        c.check("EHLO " + "x" * 37, ehlo_lines(auth="LOGIN PLAIN"))
        c.send("NOOP " + "p" * 18 + "\r\nAUTH LOGIN\r\n")
        c.expect("250 OK")
        c.expect("334 VXNlciBOYW1lAA==")
        c.send(" " * 20 + b64("alice") + "\r\n" + b64(USERS["alice"]))
        c.expect("334 UGFzc3dvcmQA")
        time.sleep(0.5)
        c.send("\r\n")
        c.expect(OK_235)
        self.assertTrue(self.d.wait_log(r"auth user=alice ok"))
        self.assertIn("auth user=alice ok mechanism=LOGIN\n", self.d.log())
        self.assertNotIn(b64(USERS["alice"]), self.d.log())


class TestNoAuthListener(AuthCase):
    CONFIG = RECORD_USER + "\n" + TLS_PASSWD
    OPTS = {"listen_opts": "starttls"}

    def test_auth_is_unknown(self):
        c = self.connect()
        c.check("EHLO client.test", ehlo_lines(starttls=True))
        c.check("HELP", "250 Supported commands: "
                "DATA EHLO HELO HELP MAIL NOOP QUIT RCPT RSET STARTTLS VRFY")
        c.check("HELP AUTH", "501 Supported commands: "
                "DATA EHLO HELO HELP MAIL NOOP QUIT RCPT RSET STARTTLS VRFY")
        starttls(c)
        c.check("EHLO client.test", ehlo_lines())
        c.check("AUTH PLAIN " + plain("alice", USERS["alice"]),
                '500 Error: command "AUTH" not recognized')
        c.check("AUTH", '500 Error: command "AUTH" not recognized')
        c.check("MAIL FROM:<a@example.com>", "250 OK")


class TestRequireAuth(AuthCase):
    CONFIG = RECORD_USER + "\n" + TLS_PASSWD + "auth failure-delay 0"
    OPTS = {"listen_opts": "require-auth auth-plaintext"}

    def test_refused_until_auth(self):
        c = self.connect()
        c.check("MAIL FROM:<a@example.com>", "503 Error: send HELO first")
        c.check("VRFY a@example.com", NEED_AUTH)
        c.check("HELP", NEED_AUTH)
        c.check("NOOP", "250 OK")
        c.check("RSET", "250 OK")
        c.check("EXPN x", "502 EXPN not implemented")
        c.check("EHLO client.test", ehlo_lines(auth="LOGIN PLAIN"))
        for line in ("MAIL FROM:<a@example.com>", "RCPT TO:<r@example.com>",
                     "DATA", "VRFY a@example.com", "VRFY", "HELP",
                     "HELP MAIL"):
            with self.subTest(line=line):
                c.check(line, NEED_AUTH)
        c.check("AUTH PLAIN " + plain("alice", WRONG), BAD_535)
        c.check("MAIL FROM:<a@example.com>", NEED_AUTH)
        c.check("AUTH PLAIN " + plain("alice", USERS["alice"]), OK_235)
        c.check("HELP", "250 Supported commands: " + HELP_AUTH)
        c.check("VRFY a@example.com", "252 Cannot VRFY user, but will accept "
                "message and attempt delivery")
        self.assert_auth_run(self.message(c), "alice", "ESMTPA")
        c.check("QUIT", "221 Bye")

    def test_smtplib(self):
        s = self.d.smtp()
        s.ehlo("client.test")
        with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
            s.sendmail("s@example.com", ["r@example.com"], b"x\r\n")
        self.assertEqual(cm.exception.smtp_code, 530)
        s.login("bob", USERS["bob"])
        s.sendmail("s@example.com", ["r@example.com"], b"x\r\n")
        s.quit()
        self.assert_auth_run(self.d.wait_deliveries(1)[0], "bob", "ESMTPA")


class TestFailureDelay(AuthCase):
    CONFIG = (RECORD_USER + "\n" + TLS_PASSWD + "auth failure-delay 1\n"
              "auth max-failures 2")
    OPTS = {"listen_opts": "auth auth-plaintext"}

    def test_delay_then_421(self):
        c = self.d.session()
        t0 = time.monotonic()
        c.send("AUTH PLAIN %s\r\n" % plain("alice", WRONG))
        c.assert_silent(0.7)
        c.expect(BAD_535)
        dt = time.monotonic() - t0
        self.assertGreaterEqual(dt, 0.95)
        self.assertLess(dt, 2.5)
        c.check("AUTH LOGIN", LOGIN_USER)
        c.check(b64("alice"), LOGIN_PASS)
        c.check(b64(WRONG), TOO_MANY_421)
        c.expect_closed()

    def test_unusable_delay_then_421(self):
        # Credentials refused without asking the broker (a user name
        # that begins with '-') wait as long, the 421 too.
        c = self.d.session()
        for reply in (BAD_535, TOO_MANY_421):
            t0 = time.monotonic()
            c.send("AUTH PLAIN %s\r\n" % plain("-alice", WRONG))
            c.expect(reply)
            self.assertGreaterEqual(time.monotonic() - t0, 0.95, reply)
        c.expect_closed()

    def test_success_not_delayed(self):
        c = self.d.session()
        t0 = time.monotonic()
        c.check("AUTH PLAIN " + plain("alice", USERS["alice"]), OK_235)
        self.assertLess(time.monotonic() - t0, 0.8)


class TestFailureDelayNotTheClients(AuthCase):
    """The failure-delay is not taken from the client's timeout, whether
    the broker held the verdict or the session refused the credentials
    without asking: the session goes on after the 535."""
    CONFIG = (RECORD_USER + "\n" + TLS_PASSWD + "auth failure-delay 3\n")
    OPTS = {"listen_opts": "auth auth-plaintext", "timeout": 2}

    def test_session_goes_on(self):
        for user in ("alice", "-alice"):
            c = self.d.session()
            c.check("AUTH PLAIN " + plain(user, WRONG), BAD_535)
            c.check("NOOP", "250 OK")


class TestThrottledPauseNotTheClients(AuthCase):
    """The pause before a throttled 454 is not taken from the client's
    timeout either: the session goes on after it."""
    PER_ADDRESS = "auth max-failures-per-address 1\n"
    CONFIG = (RECORD_USER + "\n" + TLS_PASSWD + "auth failure-delay 3\n")
    OPTS = {"listen_opts": "auth auth-plaintext", "timeout": 2}

    def test_session_goes_on(self):
        c = self.d.session()
        c.check("AUTH PLAIN " + plain("alice", WRONG), BAD_535)
        self.assertTrue(self.d.wait_log(r"auth: 127\.0\.0\.1 throttled"))
        c.check("AUTH PLAIN " + plain("alice", WRONG), TEMP_454)
        c.check("NOOP", "250 OK")


class TestAuthShutdown(AuthCase):
    """SIGTERM while a session waits for an AUTH response: when the grace
    period ends it gets the 421 a session waiting for a command gets (it
    used to be closed without a reply)."""
    CONFIG = (RECORD_USER + "\n" + TLS_PASSWD + "shutdown-grace 1\n")
    OPTS = {"listen_opts": "auth auth-plaintext", "timeout": 30}

    def test_mid_exchange_421(self):
        plain_c = self.d.session()
        plain_c.check("AUTH PLAIN", "334 ")
        login_c = self.d.session()
        login_c.check("AUTH LOGIN", LOGIN_USER)
        login_c.check(b64("alice"), LOGIN_PASS)
        t = time.monotonic()
        self.d.signal(signal.SIGTERM)
        for c in (plain_c, login_c):
            c.expect("421 mx.test Service shutting down", timeout=5)
            c.expect_closed()
        self.assertLess(time.monotonic() - t, 4.0)
        self.assertEqual(self.d.wait_exit(5), 0, self.d.log())
        self.assertNotIn("auth user=", self.d.log())


class TestAuthPerAddress(AuthCase):
    """auth max-failures-per-address: 535s to one client address over all
    sessions, counted by the master; then 454 without the backend."""
    PER_ADDRESS = ""
    CONFIG = (RECORD_USER + "\n" + TLS_PASSWD + "auth failure-delay 0\n"
              "auth max-failures-per-address 3\n"
              "listen on 127.0.0.1 port @PORT@ auth auth-plaintext\n"
              "listen on 127.0.0.1 port @PORT2@ auth auth-plaintext "
              "proxy-protocol\n")

    def test_throttled_then_other_address(self):
        good = "AUTH PLAIN " + plain("alice", USERS["alice"])
        for _ in range(3):
            c = self.d.session()
            c.check("AUTH PLAIN " + plain("alice", WRONG), BAD_535)
            c.close()
        self.assertTrue(self.d.wait_log(
            r"auth: 127\.0\.0\.1 throttled: 3 failed AUTH in 10 minutes"))
        c = self.d.session()
        c.check(good, TEMP_454)          # good credentials, not asked
        c.check(good, TEMP_454)          # these do not count
        self.assertIn("auth user=alice throttled", self.d.log())
        # the address a PROXY header names is another client
        p = self.d.connect(greeting=False, port=self.d.port2)
        p.send(b"PROXY TCP4 192.0.2.7 192.0.2.1 1234 25\r\n")
        p.expect("220 mx.test ESMTP smtpd")
        p.cmd("EHLO client.test")
        p.check(good, OK_235)


class TestAuthPerAddressParallel(AuthCase):
    """A check counts from its start: wrong passwords sent at once in many
    sessions get as many 535s as max-failures-per-address, the rest 454
    without the backend (every one used to be checked and get its 535)."""
    PER_ADDRESS = ""
    CONFIG = (RECORD_USER + "\n" + TLS_PASSWD + "auth failure-delay 0\n"
              "auth max-failures-per-address 3\n")
    OPTS = {"listen_opts": "auth auth-plaintext", "prefork": 10}

    def test_parallel_sessions_try_no_more(self):
        sessions = [self.d.session() for _ in range(10)]
        for c in sessions:
            c.send("AUTH PLAIN %s\r\n" % plain("alice", WRONG))
        replies = [c.recv_reply(timeout=20) for c in sessions]
        self.assertEqual(replies.count(BAD_535), 3, replies)
        self.assertEqual(replies.count(TEMP_454), 7, replies)
        self.assertEqual(len(re.findall(r"auth user=alice failed",
                                        self.d.log())), 3, self.d.log())
        c = self.d.session()
        c.check("AUTH PLAIN " + plain("alice", USERS["alice"]), TEMP_454)


class TestAuthExempt(AuthCase):
    PER_ADDRESS = ""
    CONFIG = (RECORD_USER + "\n" + TLS_PASSWD + "auth failure-delay 0\n"
              "auth max-failures-per-address 1\nauth exempt 127.0.0.0/8\n")
    OPTS = {"listen_opts": "auth auth-plaintext"}

    def test_exempt_never_throttled(self):
        for _ in range(3):
            c = self.d.session()
            c.check("AUTH PLAIN " + plain("alice", WRONG), BAD_535)
            c.close()
        c = self.d.session()
        c.check("AUTH PLAIN " + plain("alice", USERS["alice"]), OK_235)
        self.assertNotIn("throttled", self.d.log())


class TestCheckpassword(AuthCase):
    CONFIG = (RECORD_USER + "\nauth checkpassword @CHECKPASSWORD@\n"
              "auth failure-delay 0\nauth max-failures 5")
    # longer than the checkpassword time limit (AUTH_TIMEOUT, 10 s)
    OPTS = {"listen_opts": "auth auth-plaintext", "timeout": 30}

    def test_accept_reject(self):
        c = self.d.session()
        c.check("AUTH PLAIN " + plain(CP_USER, WRONG), BAD_535)
        c.check("AUTH PLAIN " + plain("alice", USERS["alice"]), BAD_535)
        c.check("AUTH LOGIN", LOGIN_USER)
        c.check(b64(CP_USER), LOGIN_PASS)
        c.check(b64(CP_PASS), OK_235)
        self.assert_auth_run(self.message(c), CP_USER, "ESMTPA")

    def test_tempfail(self):
        c = self.d.session()
        c.check("AUTH PLAIN " + plain("temp", "whatever"), TEMP_454)
        c.check("NOOP", "250 OK")
        c.check("AUTH PLAIN " + plain(CP_USER, CP_PASS), OK_235)

    def test_tempfail_does_not_count_as_failure(self):
        c = self.d.session()
        for _ in range(5):
            c.check("AUTH PLAIN " + plain("temp", "x"), TEMP_454)
        c.check("NOOP", "250 OK")

    def test_unsafe_user_names(self):
        # %{user} and SMTPD_AUTH_USER: no option, no broken line, whatever
        # the backend says (this one accepts any user with ANY_PASS).
        for user in ("-oQ", "-", "a\tb", "a\x01b", "a\x7fb", "a\rb"):
            with self.subTest(user=user):
                c = self.d.session()
                c.check("AUTH PLAIN " + plain(user, ANY_PASS), BAD_535)
                c.close()
        c = self.d.session()
        c.check("AUTH LOGIN", LOGIN_USER)
        c.check(b64("-f"), LOGIN_PASS)
        c.check(b64(ANY_PASS), BAD_535)
        c.check("AUTH PLAIN " + plain("a-b", ANY_PASS), OK_235)
        self.assert_auth_run(self.message(c), "a-b", "ESMTPA")

    def test_background_process_killed(self):
        """After a normal exit the program's process group is killed, as
        the delivery program's is."""
        c = self.d.session()
        c.check("AUTH PLAIN " + plain("bg", "x"), BAD_535)
        with open(os.path.join(self.d.tmp, "checkpassword.sh.bg")) as f:
            pid = int(f.read())
        self.assertTrue(wait_for(lambda: not pid_alive(pid), 3.0),
                        "checkpassword's background process %d lives" % pid)

    def test_hang_times_out(self):
        c = self.d.session()
        t0 = time.monotonic()
        c.send("AUTH PLAIN %s\r\n" % plain("hang", "x"))
        c.expect(TEMP_454, timeout=20)
        dt = time.monotonic() - t0
        self.assertGreaterEqual(dt, 5)
        self.assertLess(dt, 15)
        c.check("NOOP", "250 OK")

    def test_stuck_program_ends_its_worker(self):
        """Checkpassword programs killed at their deadline that are not gone
        (zombies their tracers hold 16 s), one on each of the three
        workers: 454 a second after the deadline, not when they are
        reaped; each worker ends without a verdict, so that a check
        waiting behind them goes to a new worker, not to one that is
        about to exit (it got 454 untried)."""
        tmp = self.d.tmp
        with open(os.path.join(tmp, "hold"), "w") as f:
            f.write("16")
        stuck = [self.d.session() for _ in range(3)]
        t0 = time.monotonic()
        for c in stuck:
            c.send("AUTH PLAIN %s\r\n" % plain("traced", "x"))
        time.sleep(0.5)
        good = self.d.session()
        good.send("AUTH PLAIN %s\r\n" % plain(CP_USER, CP_PASS))
        for c in stuck:
            c.expect(TEMP_454, timeout=25)
        dt = time.monotonic() - t0
        self.addCleanup(end_tracers, tmp)
        if os.path.exists(os.path.join(tmp, "noptrace")):
            self.skipTest("ptrace not permitted here")
        self.assertLess(dt, 14)
        good.expect(OK_235, timeout=15)
        self.assertEqual(self.d.log().count(
            "checkpassword killed at its deadline is not gone: this worker "
            "ends"), 3, self.d.log())



class StuckCheckpasswordCase(AuthCase):
    """Checkpassword programs (user "traced") that their tracers hold a
    minute after the kill at their deadline; max-clients N."""
    MAX_CLIENTS = 2
    TRACED_AUTH = "AUTH PLAIN %s\r\n" % plain("traced", "x")

    @classmethod
    def setUpClass(cls):
        cls.CONFIG = (RECORD_USER + "\nauth checkpassword @CHECKPASSWORD@\n"
                      "auth failure-delay 0\nmax-clients %d\nprefork %d"
                      % (cls.MAX_CLIENTS, cls.MAX_CLIENTS))
        cls.OPTS = {"listen_opts": "auth auth-plaintext", "timeout": 60}
        super().setUpClass()

    def hold(self):
        with open(os.path.join(self.d.tmp, "hold"), "w") as f:
            f.write("60")
        self.addCleanup(end_tracers, self.d.tmp)

    def left_behind(self, sessions):
        """Each session's check is left behind: 454, a tracer each."""
        for c in sessions:
            c.expect(TEMP_454, timeout=25)
        if os.path.exists(os.path.join(self.d.tmp, "noptrace")):
            self.skipTest("ptrace not permitted here")

    def tracers(self):
        return len(read_pids(os.path.join(self.d.tmp, "tracer")))


class TestStuckCheckpasswordBound(StuckCheckpasswordCase):
    """Checkpassword programs killed at their deadline and not gone are
    counted until they are reaped (their workers have ended): while
    max-clients of them are there, AUTH gets 454 at once, without a run;
    once they are reaped, checks run again."""

    def test_no_check_while_max_clients_left(self):
        tmp = self.d.tmp
        self.hold()
        stuck = [self.d.session() for _ in range(2)]
        for c in stuck:
            c.send(self.TRACED_AUTH)
        self.left_behind(stuck)
        self.assertEqual(self.tracers(), 2)
        c = stuck[0]
        t0 = time.monotonic()
        c.check("AUTH PLAIN " + plain(CP_USER, CP_PASS), TEMP_454)
        self.assertLess(time.monotonic() - t0, 2)
        self.assertIn("AUTH check not run: 2 checkpassword programs killed "
                      "at their deadline are not gone", self.d.log())
        # Reaped when their tracers end: checks run again.
        end_tracers(tmp)
        self.assertTrue(self.d.wait_log(
            r"checkpassword \d+, killed at its deadline, is gone", 2),
            self.d.log())
        c.check("AUTH PLAIN " + plain(CP_USER, CP_PASS), OK_235)


class TestStuckCheckpasswordQueued(StuckCheckpasswordCase):
    """A check waiting for a worker when max-clients programs are left
    behind fails too, without a run (it used to run, and could leave one
    more)."""
    MAX_CLIENTS = 4

    def test_waiting_check_fails(self):
        self.hold()
        traced = self.TRACED_AUTH
        s = [self.d.session() for _ in range(4)]
        for c in s[:3]:
            c.send(traced)
        time.sleep(0.3)
        s[3].send(traced)               # waits for a worker
        self.left_behind(s[:3])
        # 3 left behind; s[3]'s check runs; two more on new workers, and
        # a good one waits: when those three are left too, it fails.
        time.sleep(0.5)
        s[0].send(traced)
        s[1].send(traced)
        time.sleep(0.3)
        s[2].send("AUTH PLAIN %s\r\n" % plain(CP_USER, CP_PASS))
        for c in (s[3], s[0], s[1]):
            c.expect(TEMP_454, timeout=25)
        self.assertEqual(s[2].recv_reply(timeout=25), TEMP_454)
        self.assertRegex(self.d.log(), r"AUTH check not run: [4-6] "
                         r"checkpassword programs killed at their deadline "
                         r"are not gone")
        self.assertEqual(self.tracers(), 6)


class TestLateVerdict(AuthCase):
    """A session stops waiting for a verdict after 40 s (454); the verdict
    that comes later, good, must not leave its user for the session's
    deliveries (BR_FORGET).  Fifteen checks of user "hang" (each killed
    at 10 s) keep the three workers busy 50 s; the good check waits
    behind them and is answered after its session gave up."""
    CONFIG = (RECORD_USER + "\nauth checkpassword @CHECKPASSWORD@\n"
              "auth failure-delay 0\nmax-clients 20\nprefork 17")
    OPTS = {"listen_opts": "auth auth-plaintext", "timeout": 120}

    def test_late_good_verdict_leaves_no_user(self):
        hang = [self.d.session() for _ in range(15)]
        for c in hang:
            c.send("AUTH PLAIN %s\r\n" % plain("hang", "x"))
        time.sleep(0.5)
        c = self.d.session()
        t0 = time.monotonic()
        c.send("AUTH PLAIN %s\r\n" % plain(CP_USER, CP_PASS))
        self.assertEqual(c.recv_reply(timeout=50), TEMP_454)
        self.assertGreater(time.monotonic() - t0, 35)
        for h in hang:
            h.expect(TEMP_454, timeout=30)
        # The last three hang checks end at 50 s; the good one runs then.
        self.assertTrue(wait_for(lambda: self.d.log().count(
            "checkpassword timed out") == 15, 15.0), self.d.log())
        time.sleep(1)
        run = self.message(c)
        self.assertEqual(run["env"]["SMTPD_AUTH_USER"], "")
        self.assertEqual(run["argv"][0], "")          # %{user}
        c.check("AUTH PLAIN " + plain(CP_USER, CP_PASS), OK_235)

if __name__ == "__main__":
    unittest.main()
