"""A private Postfix instance that relays to the server under test.

    pf = PostfixInstance(tmpdir, relay=("127.0.0.1", port))   # smtp(8)
    pf = PostfixInstance(tmpdir, relay=(host, port), tls=True)
                                  # smtp(8), STARTTLS required, any cert
    pf = PostfixInstance(tmpdir, lmtp=("127.0.0.1", port))    # lmtp(8), TCP
    pf = PostfixInstance(tmpdir, lmtp="/abs/path/lmtp.sock")  # lmtp(8), UNIX
    pf.start()                       # or: with PostfixInstance(...) as pf:
    qid = pf.submit(sender, rcpts, msg_bytes)    # via its SMTP listener
    pf.wait_queue_empty(timeout)     # True once every message has left
    pf.deliveries(qid)               # parsed "to=<..>, ... status=" lines
    pf.log_lines()                   # its maillog, one str per line
    pf.stop()                        # by PID, removes its directory

Everything lives in a directory of its own made under tmpdir (or a new
temp dir): main.cf and master.cf, queue_directory, data_directory and the
maillog (maillog_file through postlogd, Postfix >= 3.4).  Nothing under
/etc/postfix is read or written (meta_directory, with postfix-files, is
read).  The instance listens on 127.0.0.1 on a free port (.port), accepts
mail from 127.0.0.0/8 for any domain, and hands every message to
default_transport: smtp(8) to relay=(host, port) or lmtp(8) to lmtp=.
extra={"param": "value"} adds or overrides main.cf parameters.  Retries
are quick (queue_run_delay 1s), so a deferred message is tried again
within seconds; a bounce goes to the sender through the same transport.

It runs master(8) in the foreground as root (mail_owner postfix), in a
session of its own: stop() ends it, then any process left in its process
group, by PID.  Postfix's daemons open the queue as root, but lmtp(8)
connects to a UNIX socket as user postfix: the socket and the directories
above it must let that user in.  The Debian package postfix provides it
(contrib/deps.sh); available() says whether it is installed.
"""

import os
import re
import shutil
import smtplib
import subprocess
import time

from harness import Service, free_port, wait_for, wait_listening

MASTER = "/usr/lib/postfix/sbin/master"
POSTFIX = "/usr/sbin/postfix"
POSTQUEUE = "/usr/sbin/postqueue"
HOSTNAME = "postfix.test"

# The services a relay needs (master.cf(5) of Postfix 3.7, no chroot),
# after the SMTP listener line.
SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

# Where messages wait; empty when everything has been delivered.
QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")

# The queue directories, as postfix-files(5) makes them ("postfix check"
# does the same, but takes seconds): owner, group, mode.
QUEUE_DIRS = {
    "active": ("postfix", "root", 0o700),
    "bounce": ("postfix", "root", 0o700),
    "corrupt": ("postfix", "root", 0o700),
    "defer": ("postfix", "root", 0o700),
    "deferred": ("postfix", "root", 0o700),
    "flush": ("postfix", "root", 0o700),
    "hold": ("postfix", "root", 0o700),
    "incoming": ("postfix", "root", 0o700),
    "maildrop": ("postfix", "postdrop", 0o730),
    "pid": ("root", "root", 0o755),
    "private": ("postfix", "root", 0o700),
    "public": ("postfix", "postdrop", 0o710),
    "saved": ("postfix", "root", 0o700),
    "trace": ("postfix", "root", 0o700),
}

DELIVERY_RE = re.compile(
    r"postfix/(?P<agent>[\w-]+)\[\d+\]: (?P<qid>[0-9A-Za-z]+): "
    r"to=<(?P<to>[^>]*)>,(?: orig_to=<[^>]*>,)? relay=(?P<relay>[^,]+), "
    r".*?dsn=(?P<dsn>[0-9.]+), status=(?P<status>\w+) \((?P<text>.*)\)$")


def available():
    """True if Postfix is installed and this process may run it (root)."""
    return (os.path.exists(MASTER) and os.path.exists(POSTFIX)
            and os.geteuid() == 0)


class PostfixInstance(Service):
    def __init__(self, tmpdir=None, *, relay=None, lmtp=None, tls=False,
                 extra=None, hostname=HOSTNAME):
        if (relay is None) == (lmtp is None):
            raise ValueError("give exactly one of relay= and lmtp=")
        super().__init__("postfix-", tmpdir)
        os.chmod(self.dir, 0o755)
        self.conf_dir = os.path.join(self.dir, "conf")
        self.queue_dir = os.path.join(self.dir, "queue")
        self.data_dir = os.path.join(self.dir, "data")
        self.port = free_port()
        self.hostname = hostname
        self.params = self._main_cf(relay, lmtp, tls)
        self.params.update(extra or {})

    def _main_cf(self, relay, lmtp, tls):
        p = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue_dir,
            "data_directory": self.data_dir,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": self.hostname,
            "mydomain": "test",
            "myorigin": self.hostname,
            "mydestination": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            # The message leaves as it came: no header rewriting.
            "local_header_rewrite_clients": "",
            "maillog_file": os.path.join(self.dir, "maillog"),
            "maillog_file_prefixes": self.dir,
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "smtp_host_lookup": "native",
            "smtp_tls_loglevel": "1",
            "lmtp_tls_loglevel": "1",
        }
        if relay is not None:
            p["default_transport"] = "smtp"
            p["relayhost"] = "[%s]:%d" % relay
        elif isinstance(lmtp, str):
            p["default_transport"] = "lmtp:unix:" + lmtp
        else:
            p["default_transport"] = "lmtp:inet:[%s]:%d" % lmtp
        if tls:
            # encrypt: TLS or no delivery, the certificate not checked.
            agent = "smtp" if relay is not None else "lmtp"
            p[agent + "_tls_security_level"] = "encrypt"
        return p

    # -- process --------------------------------------------------------

    def _start(self):
        """Write the configuration, make the queue and run master(8) until
        it listens."""
        self._setup()
        self._run_master()

    def _setup(self):
        os.mkdir(self.conf_dir, 0o755)
        os.mkdir(self.queue_dir, 0o755)
        os.mkdir(self.data_dir, 0o700)
        shutil.chown(self.data_dir, "postfix")
        with open(os.path.join(self.conf_dir, "main.cf"), "w") as f:
            for k, v in self.params.items():
                f.write("%s = %s\n" % (k, v))
        with open(os.path.join(self.conf_dir, "master.cf"), "w") as f:
            f.write("127.0.0.1:%d inet n - n - - smtpd\n" % self.port)
            f.write(SERVICES)
        # Postfix waits until a config file is two seconds old (it could be
        # in the middle of an edit): make them older.
        past = time.time() - 10
        for name in ("main.cf", "master.cf"):
            os.utime(os.path.join(self.conf_dir, name), (past, past))
        for name, (owner, group, mode) in QUEUE_DIRS.items():
            path = os.path.join(self.queue_dir, name)
            os.mkdir(path)
            shutil.chown(path, owner, group)
            os.chmod(path, mode)

    def _run_master(self):
        # -s: the foreground mode of "postfix start-fg".  In a session of
        # its own: master(8) stops its daemons by signalling its process
        # group.
        self.spawn([MASTER, "-c", self.conf_dir, "-s"], "master.out")
        if not wait_listening(self.port, self.proc, 15.0):
            raise RuntimeError("postfix master not listening (exit %s):\n%s"
                               % (self.proc.poll(), self.log_text()))

    # -- mail -----------------------------------------------------------

    def submit(self, sender, rcpts, msg_bytes, timeout=30):
        """Give one message to the instance over SMTP; return its queue
        id.  msg_bytes: the message with CRLF line ends."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=timeout) as s:
            s.ehlo("submit.test")
            code, text = s.mail(sender)
            if code != 250:
                raise RuntimeError("MAIL: %d %r" % (code, text))
            for r in rcpts:
                code, text = s.rcpt(r)
                if code != 250:
                    raise RuntimeError("RCPT %s: %d %r" % (r, code, text))
            code, text = s.data(msg_bytes)
            if code != 250:
                raise RuntimeError("DATA: %d %r" % (code, text))
        return text.decode().rsplit(" ", 1)[1]

    def flush(self):
        """Try deferred messages now (postqueue -f)."""
        subprocess.run([POSTQUEUE, "-c", self.conf_dir, "-f"],
                       stdin=subprocess.DEVNULL, check=True, timeout=30)

    def queue_files(self):
        """Paths of the messages still in the queue."""
        found = []
        for q in QUEUES:
            for root, _, files in os.walk(os.path.join(self.queue_dir, q)):
                found.extend(os.path.join(root, f) for f in files)
        return found

    def wait_queue_empty(self, timeout=10.0):
        """True once no message is left in the queue (within timeout)."""
        return wait_for(lambda: not self.queue_files(), timeout, 0.05)

    # -- log ------------------------------------------------------------

    def log_text(self):
        """The instance's maillog."""
        return self.read("maillog")

    def log_lines(self):
        """The instance's maillog, one str per line."""
        return self.log_text().splitlines()

    def wait_log(self, pattern, count=1, timeout=10.0):
        """True once pattern (a regex) matches count lines of the log."""
        rx = re.compile(pattern)
        return wait_for(
            lambda: sum(1 for l in self.log_lines() if rx.search(l))
            >= count, timeout, 0.05)

    def deliveries(self, qid=None):
        """The delivery attempts logged (of queue id qid): dicts with agent
        (smtp, lmtp, error...), qid, to, relay, dsn, status (sent,
        deferred, bounced) and text (the server's reply and context)."""
        found = []
        for line in self.log_lines():
            m = DELIVERY_RE.search(line)
            if m and (qid is None or m["qid"] == qid):
                found.append(m.groupdict())
        return found

    def wait_deliveries(self, qid, count, timeout=10.0):
        """Wait until count recipients of qid have a final status (sent or
        bounced); return deliveries(qid)."""
        wait_for(lambda: sum(1 for d in self.deliveries(qid)
                             if d["status"] != "deferred") >= count,
                 timeout, 0.05)
        return self.deliveries(qid)
