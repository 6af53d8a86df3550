"""The delivery agents of contrib/examples behind the real smtpd.

Each example's deliver line is read from its file and run with test paths
in place of the system ones; a message goes in with smtplib and must land,
byte for byte (modulo what the agent documents), in the mailbox, and the
agent's failures must give the 550 / 451 of the delivery contract.

Agents come from Debian packages (procmail, maildrop, dovecot-core,
postfix); a missing one skips its tests.  maildrop -d and procmail -d need
a real account: as root the tests create a throw-away system user
(useradd -r, removed again); otherwise those tests skip.  Nothing here
starts a daemon of an agent or changes its system-wide configuration.
"""

import os
import pwd
import re
import shutil
import smtplib
import subprocess
import tempfile
import unittest

from harness import (REPO, Smtpd, deliver_maildir_path, host_lacks,
                     smtpd_path, strip_received)

EXAMPLES = os.path.join(REPO, "contrib", "examples")
ALL_EXAMPLES = ("sendmail.conf", "relay.conf", "maildrop.conf",
                "procmail.conf", "dovecot-lda.conf", "deliver-maildir.conf")

MSG = (b"From: Anne <a@example.com>\r\nSubject: agent test\r\n\r\n"
       b".leading dot\r\nbody line\r\n")
OK = re.compile(r"250 OK id=\S+")
NOUSER = "550 5.1.1 Delivery failed: no such user"
TEMPFAIL = "451 4.3.0 Delivery failed temporarily, try again later"

IS_ROOT = os.geteuid() == 0
TEST_USER = "smtpd-e2e-agent"
NO_USER = "no-such-user-smtpd-e2e"

PROCMAIL = "/usr/bin/procmail"
MAILDROP = "/usr/bin/maildrop"
DOVECOT_LDA = "/usr/lib/dovecot/dovecot-lda"
SENDMAIL = "/usr/sbin/sendmail"


def example_delivers(name):
    """The deliver strings of an example: (active, [commented-out ones])."""
    active, alt = None, []
    with open(os.path.join(EXAMPLES, name)) as f:
        for line in f:
            m = re.match(r'(#?)deliver\s+"([^"\\]*)"\s*$', line)
            if m and m.group(1):
                alt.append(m.group(2))
            elif m:
                active = m.group(2)
    return active, alt


def deliver(cmd):
    return 'deliver "%s"' % cmd


def send(d, sender, rcpts, msg=MSG):
    """One transaction with smtplib; the reply to DATA as text."""
    s = d.smtp()
    s.ehlo("client.test")
    s.mail(sender)
    for r in rcpts:
        code, text = s.rcpt(r)
        assert code == 250, (r, code, text)
    code, text = s.data(msg)
    s.quit()
    return "%d %s" % (code, text.decode())


def send_reply(d, sender, rcpts, msg=MSG):
    try:
        return send(d, sender, rcpts, msg)
    except smtplib.SMTPDataError as e:
        return "%d %s" % (e.smtp_code, e.smtp_error.decode())


def maildir_messages(path):
    new = os.path.join(path, "new")
    if not os.path.isdir(new):
        return []
    out = []
    for name in sorted(os.listdir(new)):
        with open(os.path.join(new, name), "rb") as f:
            out.append(f.read())
    return out


def delivery_uid():
    """The uid the delivery program runs as in these tests (`user nobody'
    when root, else ourselves)."""
    return pwd.getpwnam("nobody").pw_uid if IS_ROOT else os.geteuid()


def user_line():
    return "user nobody\n" if IS_ROOT else ""


def mkdir_mode(path, mode):
    os.mkdir(path)
    os.chmod(path, mode)     # not the umask's


def make_maildir(path, uid=None, mode=0o700):
    for sub in ("", "tmp", "new", "cur"):
        p = os.path.join(path, sub)
        os.makedirs(p, exist_ok=True)
        if uid is not None and IS_ROOT:
            gid = pwd.getpwuid(uid).pw_gid
            os.chown(p, uid, gid)
        os.chmod(p, mode)


class _Tmp:
    """A temp dir (0755) removed at exit."""

    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="smtpd-agents-")
        os.chmod(self.path, 0o755)
        return self

    def __exit__(self, *a):
        shutil.rmtree(self.path, ignore_errors=True)


class TempUser:
    """A throw-away system account with its home under a temp dir."""

    def __init__(self):
        self.name = TEST_USER
        self.parent = tempfile.mkdtemp(prefix="smtpd-agents-")
        os.chmod(self.parent, 0o755)
        self.home = os.path.join(self.parent, "home")
        self._remove()      # a leftover of an interrupted run
        subprocess.run(["useradd", "-r", "-m", "-d", self.home, "-s",
                        "/usr/sbin/nologin", self.name], check=True,
                       capture_output=True, timeout=20)
        pw = pwd.getpwnam(self.name)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid

    def _remove(self):
        try:
            pwd.getpwnam(self.name)
        except KeyError:
            return
        subprocess.run(["userdel", self.name], capture_output=True,
                       timeout=20)

    def write(self, rel, data, mode):
        path = os.path.join(self.home, rel)
        with open(path, "w") as f:
            f.write(data)
        os.chown(path, self.uid, self.gid)
        os.chmod(path, mode)
        return path

    def cleanup(self):
        self._remove()
        for p in ("/var/mail/" + self.name, "/var/spool/mail/" + self.name):
            try:
                os.unlink(p)
            except OSError:
                pass
        shutil.rmtree(self.parent, ignore_errors=True)


def need_root_user():
    if not IS_ROOT:
        raise unittest.SkipTest("needs root to create a throw-away user")
    if shutil.which("useradd") is None:
        raise unittest.SkipTest("no useradd")


def host_copy(path, directory):
    """A copy of the configuration at path with the users and programs
    this host lacks replaced by nobody and /bin/true."""
    out = []
    with open(path) as f:
        for line in f:
            m = re.match(r"(user\s+)(\S+)", line)
            if m:
                try:
                    pwd.getpwnam(m.group(2))
                except KeyError:
                    line = m.group(1) + "nobody\n"
            m = re.match(r'((?:deliver|auth checkpassword)\s+")(/[^ "]+)',
                         line)
            if m and not os.path.exists(m.group(2)):
                line = line.replace(m.group(2), "/bin/true", 1)
            out.append(line)
    copy = os.path.join(directory, os.path.basename(path))
    with open(copy, "w") as f:
        f.write("".join(out))
    return copy


class TestExamples(unittest.TestCase):
    """Every example is a complete smtpd.conf that `smtpd -n' accepts."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="smtpd-e2e-examples-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_examples_check(self):
        for name in ALL_EXAMPLES:
            with self.subTest(name=name):
                path = os.path.join(EXAMPLES, name)
                p = subprocess.run([smtpd_path(), "-n", "-f", path],
                                   capture_output=True, timeout=10)
                if p.returncode != 0 and host_lacks(p.stderr.decode()):
                    # checked as far as this host allows: the syntax
                    p = subprocess.run([smtpd_path(), "-n", "-f",
                                        host_copy(path, self.tmp)],
                                       capture_output=True, timeout=10)
                self.assertEqual(p.returncode, 0, p.stderr.decode())
                out = p.stdout.decode()
                self.assertRegex(out, r"(?m)^listen on ")
                self.assertRegex(out, r"(?m)^hostname ")
                self.assertRegex(out, r'(?m)^deliver "/')
                with open(path) as f:
                    text = f.read()
                # Either tested here, or says at the top why not.
                self.assertTrue(text.startswith("# UNTESTED")
                                or "test_agents.py" in text, name)


class TestProcmail(unittest.TestCase):
    """procmail.conf: -d (setuid root procmail, a throw-away account) and
    -m with an rcfile."""

    def setUp(self):
        if not os.access(PROCMAIL, os.X_OK):
            self.skipTest("procmail not installed")
        self.active, self.alt = example_delivers("procmail.conf")

    def test_d_system_user(self):
        need_root_user()
        self.assertEqual(self.active,
                         "/usr/bin/procmail -f %{sender} -d %{recipient}")
        u = TempUser()
        self.addCleanup(u.cleanup)
        u.write(".procmailrc", "DEFAULT=$HOME/Maildir/\n", 0o644)
        # smtpd's default user: procmail switches to the recipient itself.
        with Smtpd(deliver(self.active) + "\nreceived-header no") as d:
            self.assertRegex(send(d, "a@example.com", [u.name]), OK)
            self.assertEqual(
                maildir_messages(os.path.join(u.home, "Maildir")), [MSG])
            self.assertEqual(send_reply(d, "a@example.com", [NO_USER]),
                             NOUSER)
            # procmail takes the login name from before the `@'.
            self.assertRegex(
                send(d, "a@example.com", [u.name + "@example.org"]), OK)
            self.assertEqual(send_reply(d, "a@example.com",
                                        [u.name + "+tag@example.org"]),
                             NOUSER)
            # Null sender: an empty -f argument.
            self.assertRegex(send(d, "", [u.name]), OK)
            self.assertEqual(
                maildir_messages(os.path.join(u.home, "Maildir")), [MSG] * 3)

    def test_m_rcfile(self):
        alt = [a for a in self.alt if " -m " in a]
        self.assertEqual(alt, ["/usr/bin/procmail -m /etc/smtpd/procmailrc "
                               "%{sender} %{recipient}"])
        with _Tmp() as t:
            # procmail refuses an rcfile in a world-writable directory.
            etc = os.path.join(t.path, "etc")
            mkdir_mode(etc, 0o755)
            vmail = os.path.join(t.path, "vmail")
            mkdir_mode(vmail, 0o755)
            uid = delivery_uid()
            make_maildir(os.path.join(vmail, "box@example.org"), uid)
            # Exists, but `user' cannot write it: 73 EX_CANTCREAT.
            make_maildir(os.path.join(vmail, "ro@example.org"), None, 0o555)
            rc = os.path.join(etc, "procmailrc")
            with open(rc, "w") as f:
                # The rcfile of procmail.conf's comment.
                f.write("RCPT=$2\n"
                        ":0\n"
                        "* ! RCPT ?? ^^[a-z0-9.]+@example\\.org^^\n"
                        "{\n"
                        "\tEXITCODE=67\n"
                        "\t:0\n"
                        "\t/dev/null\n"
                        "}\n"
                        ":0\n"
                        "%s/$RCPT/\n" % vmail)
            os.chmod(rc, 0o644)
            cmd = alt[0].replace("/etc/smtpd/procmailrc", rc)
            with Smtpd(user_line() + deliver(cmd)
                       + "\nreceived-header no") as d:
                self.assertRegex(send(d, "a@example.com",
                                      ["box@example.org"]), OK)
                self.assertEqual(maildir_messages(
                    os.path.join(vmail, "box@example.org")), [MSG])
                self.assertEqual(send_reply(d, "a@example.com",
                                            ["other@example.com"]), NOUSER)
                self.assertEqual(send_reply(d, "a@example.com",
                                            ["ro@example.org"]), TEMPFAIL)
                self.assertEqual(maildir_messages(
                    os.path.join(vmail, "ro@example.org")), [])


class TestMaildrop(unittest.TestCase):
    """maildrop.conf: -d as the account itself (smtpd's user = the mailbox
    owner), and manual mode with a filter file."""

    def setUp(self):
        if not os.access(MAILDROP, os.X_OK):
            self.skipTest("maildrop not installed")
        self.active, self.alt = example_delivers("maildrop.conf")

    def test_d_account(self):
        need_root_user()
        self.assertEqual(self.active, "/usr/bin/maildrop -d %{recipient}")
        u = TempUser()
        self.addCleanup(u.cleanup)
        u.write(".mailfilter", 'to "$HOME/Maildir/"\n', 0o600)
        make_maildir(os.path.join(u.home, "Maildir"), u.uid)
        # authdaemond does not run: maildrop says so on stderr and falls
        # back to the passwd database.
        with Smtpd("user %s\n" % u.name + deliver(self.active)
                   + "\nreceived-header no") as d:
            self.assertRegex(send(d, "a@example.com", [u.name]), OK)
            self.assertEqual(
                maildir_messages(os.path.join(u.home, "Maildir")), [MSG])
            self.assertEqual(send_reply(d, "a@example.com", [NO_USER]),
                             NOUSER)
            # The passwd fallback knows no user@domain (maildrop.conf).
            self.assertEqual(send_reply(d, "a@example.com",
                                        [u.name + "@example.org"]), NOUSER)
        # smtpd's user is not the account: maildrop cannot switch (75).
        with Smtpd("user nobody\n" + deliver(self.active)
                   + "\nreceived-header no") as d:
            self.assertEqual(send_reply(d, "a@example.com", [u.name]),
                             TEMPFAIL)
        self.assertEqual(
            len(maildir_messages(os.path.join(u.home, "Maildir"))), 1)

    def test_manual_mode(self):
        alt = [a for a in self.alt if "mailfilter" in a]
        self.assertEqual(alt, ["/usr/bin/maildrop /etc/smtpd/mailfilter "
                               "%{sender} %{recipient}"])
        with _Tmp() as t:
            uid = delivery_uid()
            vmail = os.path.join(t.path, "vmail")
            mkdir_mode(vmail, 0o755)
            make_maildir(os.path.join(vmail, "box@example.org"), uid)
            filt = os.path.join(t.path, "mailfilter")
            with open(filt, "w") as f:
                f.write('to "%s/$2/"\n' % vmail)
            if IS_ROOT:
                os.chown(filt, uid, pwd.getpwuid(uid).pw_gid)
            os.chmod(filt, 0o600)
            cmd = alt[0].replace("/etc/smtpd/mailfilter", filt)
            with Smtpd(user_line() + deliver(cmd)
                       + "\nreceived-header no") as d:
                self.assertRegex(send(d, "a@example.com",
                                      ["box@example.org"]), OK)
                self.assertEqual(maildir_messages(
                    os.path.join(vmail, "box@example.org")), [MSG])
                # No such Maildir: maildrop cannot lock it, 75.
                self.assertEqual(send_reply(d, "a@example.com",
                                            ["none@example.org"]), TEMPFAIL)


class TestDovecotLda(unittest.TestCase):
    """dovecot-lda.conf with a private Dovecot configuration (-c)."""

    def setUp(self):
        if not os.access(DOVECOT_LDA, os.X_OK):
            self.skipTest("dovecot-lda (dovecot-core) not installed")
        self.active, self.alt = example_delivers("dovecot-lda.conf")
        self.assertEqual(self.active, DOVECOT_LDA + " -f %{sender} -a "
                         "%{recipient} -d %{recipient}")
        self.assertEqual(self.alt, [DOVECOT_LDA + " -f %{sender} -a "
                                    "%{recipient}"])

    def test_lda(self):
        with _Tmp() as t:
            conf = os.path.join(t.path, "dovecot.conf")
            run = os.path.join(t.path, "run")      # no auth socket in it
            mkdir_mode(run, 0o755)
            box = os.path.join(t.path, "mail")
            mkdir_mode(box, 0o777)
            log = os.path.join(t.path, "dovecot.log")
            with open(conf, "w") as f:
                f.write("base_dir = %s\n"
                        "log_path = %s\n"
                        "mail_location = maildir:%s/Maildir\n"
                        "ssl = no\n"
                        "protocols =\n" % (run, log, box))
            os.chmod(conf, 0o644)
            with open(log, "w"):
                pass
            os.chmod(log, 0o666)
            with_c = lambda cmd: cmd.replace(DOVECOT_LDA, DOVECOT_LDA
                                             + " -c " + conf)
            with Smtpd(user_line() + deliver(with_c(self.alt[0]))
                       + "\nreceived-header no") as d:
                self.assertRegex(send(d, "a@example.com",
                                      ["b@example.com"]), OK)
                # Dovecot stores LF line ends (mail_save_crlf = no).
                self.assertEqual(
                    maildir_messages(os.path.join(box, "Maildir")),
                    [MSG.replace(b"\r\n", b"\n")])
            # -d without Dovecot's auth service: EX_TEMPFAIL.
            with Smtpd(user_line() + deliver(with_c(self.active))
                       + "\nreceived-header no") as d:
                self.assertEqual(send_reply(d, "a@example.com",
                                            ["b@example.com"]), TEMPFAIL)
            with open(log) as f:
                self.assertIn("auth-userdb", f.read())


class TestDeliverMaildirExample(unittest.TestCase):
    """deliver-maildir.conf with the built deliver-maildir."""

    def test_fixed_maildir(self):
        prog = deliver_maildir_path()
        if prog is None:
            self.skipTest("deliver-maildir not built")
        active, _ = example_delivers("deliver-maildir.conf")
        self.assertEqual(active, "/usr/local/libexec/smtpd/deliver-maildir "
                         "-c /var/mail/smtpd")
        with _Tmp() as t:
            mail = os.path.join(t.path, "mail")
            mkdir_mode(mail, 0o777)
            md = os.path.join(mail, "smtpd")
            cmd = active.replace("/usr/local/libexec/smtpd/deliver-maildir",
                                 prog).replace("/var/mail/smtpd", md)
            # As in the example: the Received header stays on.
            with Smtpd(user_line() + deliver(cmd)) as d:
                self.assertRegex(send(d, "a@example.com",
                                      ["b@example.com", "c@example.com"]),
                                 OK)
                msgs = maildir_messages(md)
                self.assertEqual(len(msgs), 1)
                received, rest = strip_received(msgs[0])
                self.assertIsNotNone(received)
                self.assertEqual(rest, MSG)
                # The Maildir cannot be written any more: 75.
                for sub in ("tmp", "new"):
                    os.chmod(os.path.join(md, sub), 0o555)
                self.assertEqual(send_reply(d, "a@example.com",
                                            ["b@example.com"]), TEMPFAIL)
                self.assertEqual(len(maildir_messages(md)), 1)


def postfix_sendmail():
    return os.access(SENDMAIL, os.X_OK) and \
        shutil.which("postconf") is not None and \
        os.access("/usr/sbin/postdrop", os.X_OK)


def postfix_running():
    p = subprocess.run(["postfix", "status"], capture_output=True,
                       timeout=10) if shutil.which("postfix") else None
    return p is not None and p.returncode == 0


class TestSendmail(unittest.TestCase):
    """sendmail.conf (and relay.conf's hand-off) with Postfix's sendmail.
    Postfix's daemons are never started."""

    def setUp(self):
        if not os.access(SENDMAIL, os.X_OK):
            self.skipTest("no %s" % SENDMAIL)
        self.active, _ = example_delivers("sendmail.conf")
        self.assertEqual(self.active, "/usr/sbin/sendmail -i -f %{sender} "
                         "-- %{recipients}")
        self.assertEqual(example_delivers("relay.conf")[0], self.active)

    def test_tempfail(self):
        if not postfix_sendmail():
            self.skipTest("sendmail is not Postfix's")
        # Postfix's sendmail exits 75 on any fatal error, here a
        # configuration directory that does not exist.
        cmd = self.active.replace(SENDMAIL, SENDMAIL
                                  + " -C /nonexistent/smtpd-e2e")
        with Smtpd(user_line() + deliver(cmd)) as d:
            self.assertEqual(send_reply(d, "a@example.com",
                                        ["b@example.invalid"]), TEMPFAIL)

    def test_maildrop_queue(self):
        if not postfix_sendmail():
            self.skipTest("sendmail is not Postfix's")
        if not IS_ROOT:
            self.skipTest("needs root to read Postfix's maildrop queue")
        if not os.path.exists("/etc/postfix/main.cf"):
            self.skipTest("Postfix not configured (no /etc/postfix/main.cf)")
        p = subprocess.run(["postconf", "-h", "queue_directory"],
                           capture_output=True, timeout=10)
        if p.returncode != 0:
            self.skipTest("Postfix not configured: "
                          + p.stderr.decode().strip())
        if postfix_running():
            self.skipTest("Postfix runs: it would pick the message up "
                          "and try to deliver it")
        qdir = os.path.join(p.stdout.decode().strip(), "maildrop")
        before = set(os.listdir(qdir))
        token = "smtpd-e2e-%d" % os.getpid()
        msg = MSG.replace(b"agent test", token.encode())
        mine = []
        try:
            with Smtpd(deliver(self.active) + "\nreceived-header no") as d:
                self.assertRegex(send(d, "a@example.com",
                                      ["b@example.invalid",
                                       "c@example.invalid"], msg), OK)
                for name in set(os.listdir(qdir)) - before:
                    out = subprocess.run(
                        ["postcat", os.path.join(qdir, name)],
                        capture_output=True, timeout=10).stdout.decode(
                            "utf-8", "replace")
                    if token in out:
                        mine.append((name, out))
            self.assertEqual(len(mine), 1, [n for n, _ in mine])
            out = mine[0][1]
            self.assertRegex(out, r"(?m)^sender: a@example\.com$")
            self.assertRegex(out, r"(?m)^recipient: b@example\.invalid$")
            self.assertRegex(out, r"(?m)^recipient: c@example\.invalid$")
            self.assertRegex(out, r"(?m)^Subject: %s$" % token)
            self.assertRegex(out, r"(?m)^\.leading dot$")
            self.assertRegex(out, r"(?m)^body line$")
        finally:
            # Remove what this test queued, and nothing else.
            for name in set(os.listdir(qdir)) - before:
                path = os.path.join(qdir, name)
                try:
                    with open(path, "rb") as f:
                        if token.encode() in f.read():
                            os.unlink(path)
                except OSError:
                    pass


if __name__ == "__main__":
    unittest.main()
