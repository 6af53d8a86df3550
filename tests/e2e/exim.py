"""Exim 4 as a sending client: one message to a given SMTP server.

    log = exim_send("127.0.0.1", port, sender, rcpts, msg_bytes, tmpdir)
    deliveries(log)      # [{"rcpt", "host", "chunking", "tls", "reply"}]
    used_chunking(log)   # True if every delivery went by BDAT

Debian's exim4 conflicts with postfix as the system's MTA, so the tests
run the binary unpacked by contrib/deps.sh (dpkg-deb -x of
exim4-daemon-light and exim4-base) under EXIM_ROOT (default
/var/cache/smtpd-tests/exim); available() says whether it is there.

Each call makes a directory of its own under tmpdir (or a new temp dir)
with the runtime configuration given by -C, the spool and the logs, runs
"exim4 -C FILE -odf -oi -f SENDER RCPT..." as root with the message on
its standard input, and returns the text of the mainlog once Exim is
done: with -odf it delivers in the foreground.  Exim receives the message
as root, then executes itself again (-Mc) as user Debian-exim to deliver
it (exim_user, exim_path pointing at the unpacked binary); that run gives
up root for -C, which it notes in the paniclog: expected, nothing else is.
That user must be able to reach the directory: tmpdir gains search (x)
permission for others.

Routing: every address goes to server_host:port with the smtp transport
(manualroute, self = send, allow_localhost), hosts_try_chunking = * (BDAT
when the server offers CHUNKING), STARTTLS only with tls=True (then
required, the certificate not checked).  A delivery line in the mainlog
("=>" for the first recipient of a delivery, "->" for the others) has K
when the message went by CHUNKING, X=... with TLS, C="..." the server's
final reply.
"""

import os
import re
import shutil
import subprocess
import tempfile

from harness import kill_group

EXIM_ROOT = os.environ.get("EXIM_ROOT", "/var/cache/smtpd-tests/exim")
EXIM = os.path.join(EXIM_ROOT, "usr/sbin/exim4")
USER = "Debian-exim"
LOST_PRIVILEGE = "exim user lost privilege for using -C option"

CONFIG = """\
exim_path = {exim}
spool_directory = {dir}/spool
log_file_path = {dir}/log/%slog
exim_user = {user}
exim_group = {user}
primary_hostname = exim.test
qualify_domain = exim.test
keep_environment =
log_selector = +smtp_connection +outgoing_port

begin routers
to_server:
  driver = manualroute
  route_list = * {host}
  self = send
  transport = to_server

begin transports
to_server:
  driver = smtp
  port = {port}
  allow_localhost
  hosts_try_chunking = *
  {tls}
  connect_timeout = 5s
  command_timeout = 10s
  data_timeout = 30s

begin retry
* * F,1m,1m
"""

DELIVERY_RE = re.compile(
    r" (?:=>|->) (?P<rcpt>\S+) .*?H=(?P<host>\S+ \[[^\]]+\](?::\d+)?)"
    r"(?P<flags>.*?)(?: C=\"(?P<reply>.*)\")?$")


def available():
    """True if the unpacked Exim and its user are there, and we are root."""
    try:
        import pwd
        pwd.getpwnam(USER)
    except KeyError:
        return False
    return os.access(EXIM, os.X_OK) and os.geteuid() == 0


def _config(d, host, port, tls):
    tls_line = ("hosts_require_tls = *"
                if tls else "hosts_avoid_tls = *")
    path = os.path.join(d, "exim.conf")
    with open(path, "w") as f:
        f.write(CONFIG.format(exim=EXIM, dir=d, user=USER, host=host,
                              port=port, tls=tls_line))
    # Exim reads a configuration owned by root and writable by no one else.
    os.chmod(path, 0o644)
    return path


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def exim_send(server_host, port, sender, rcpts, msg_bytes, tmpdir=None,
              tls=False, timeout=60):
    """Have Exim deliver msg_bytes from sender to rcpts at
    server_host:port; return its mainlog.  Raises RuntimeError if Exim
    fails, or logs to its paniclog anything but the expected -C line."""
    if tmpdir is not None:
        os.chmod(tmpdir, os.stat(tmpdir).st_mode | 0o011)
    d = tempfile.mkdtemp(prefix="exim-", dir=tmpdir)
    try:
        os.chmod(d, 0o755)
        for sub in ("spool", "log"):
            os.mkdir(os.path.join(d, sub), 0o750)
            shutil.chown(os.path.join(d, sub), USER, USER)
        conf = _config(d, server_host, port, tls)
        proc = subprocess.Popen(
            [EXIM, "-C", conf, "-odf", "-oi", "-f", sender, "--"]
            + list(rcpts), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, cwd=d, start_new_session=True)
        try:
            out, _ = proc.communicate(msg_bytes, timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        finally:
            kill_group(proc.pid)
        mainlog = _read(os.path.join(d, "log", "mainlog"))
        panic = [l for l in _read(os.path.join(d, "log", "paniclog"))
                 .splitlines() if not l.endswith(LOST_PRIVILEGE)]
        if proc.returncode != 0 or panic:
            raise RuntimeError(
                "exim exited with %s: %s\npaniclog:\n%s\nmainlog:\n%s"
                % (proc.returncode, out.decode("utf-8", "replace"),
                   "\n".join(panic), mainlog))
        return mainlog
    finally:
        shutil.rmtree(d, ignore_errors=True)


def deliveries(mainlog):
    """The delivery lines of a mainlog: dicts with rcpt, host, chunking
    (K), tls (the X= field or None) and reply (C=, the server's last
    reply)."""
    found = []
    for line in mainlog.splitlines():
        m = DELIVERY_RE.search(line)
        if not m:
            continue
        flags = " " + m["flags"] + " "
        tls = re.search(r" X=(\S+)", flags)
        found.append({"rcpt": m["rcpt"], "host": m["host"],
                      "chunking": " K " in flags,
                      "tls": tls.group(1) if tls else None,
                      "reply": m["reply"]})
    return found


def used_chunking(mainlog):
    """True if there were deliveries and all of them went by CHUNKING."""
    found = deliveries(mainlog)
    return bool(found) and all(x["chunking"] for x in found)
