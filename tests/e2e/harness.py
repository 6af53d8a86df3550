"""End-to-end test harness: runs the real smtpd binary on 127.0.0.1.

Smtpd     the daemon under test (context manager), one temp dir each
Client    a raw line-level client (bytes in, exact reply texts out)
SmtpdTest a unittest.TestCase base class that shares one daemon per class

Configs given by tests may use these tokens, replaced by the harness:
    @RECORDER@  absolute path of (a reachable copy of) recorder.py
    @OUT@       the recorder's output directory of this daemon
    @TMP@       the daemon's temp directory
    @PORT@ @PORT2@ @PORT3@   free TCP ports (PORT is the one the harness
                listens on unless the config has its own `listen` lines)
"""

import atexit
import json
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
HOSTNAME = "mx.test"

_progdir = None


def runnable(path):
    """A copy of the program at path in a directory of mode 0755 under
    /tmp, made once per test run: the delivery and session users of an
    smtpd started as root must be able to run it, and root may keep the
    checkout in a private directory (mode 0700) that they cannot enter.
    The checkout's own modes are never changed."""
    global _progdir
    if _progdir is None:
        _progdir = tempfile.mkdtemp(prefix="smtpd-e2e-bin-")
        os.chmod(_progdir, 0o755)
        atexit.register(shutil.rmtree, _progdir, True)
    copy = os.path.join(_progdir, os.path.basename(path))
    if not os.path.exists(copy):
        shutil.copyfile(path, copy + ".new")
        os.chmod(copy + ".new", 0o755)
        os.rename(copy + ".new", copy)
    return copy


RECORDER = runnable(os.path.join(HERE, "recorder.py"))


_BUILT = {"SMTPD": "build/smtpd",
          "DELIVER_MAILDIR": "build/contrib/deliver-maildir"}


def built_path(var):
    """The program that make built and the environment variable var
    (SMTPD, DELIVER_MAILDIR) may name instead, as an absolute path."""
    path = os.environ.get(var, _BUILT[var])
    return path if os.path.isabs(path) else os.path.join(REPO, path)


def deliver_maildir_path():
    """contrib/deliver-maildir as built (DELIVER_MAILDIR), runnable by the
    delivery user; None when it is not built."""
    path = built_path("DELIVER_MAILDIR")
    if not os.access(path, os.X_OK):
        return None
    return runnable(path)

# The usual delivery line: record sender and recipients.
RECORD = 'deliver "@RECORDER@ @OUT@ %{sender} %{recipients}"'
RECORD_EACH = 'deliver "@RECORDER@ @OUT@ %{sender} %{recipient}"'

SANITIZER_RE = re.compile(
    rb"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
    rb"SUMMARY: UndefinedBehaviorSanitizer")

_used_ports = set()


def smtpd_path():
    return built_path("SMTPD")


def free_port():
    """A TCP port nobody listens on (bind to port 0, then release it)."""
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _used_ports:
            _used_ports.add(port)
            return port


def listening_tcp():
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A":
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


def _listening_unix():
    paths = set()
    try:
        with open("/proc/net/unix") as f:
            next(f)
            for line in f:
                fields = line.split()
                if len(fields) >= 8 and int(fields[3], 16) & 0x10000:
                    paths.add(fields[7])
    except OSError:
        pass
    return paths


def socket_inode(port, peer_port):
    """Inode of the server side of the TCP connection port <- peer_port."""
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    lport = int(fields[1].rsplit(":", 1)[1], 16)
                    rport = int(fields[2].rsplit(":", 1)[1], 16)
                    if lport == port and rport == peer_port:
                        return fields[9]
        except OSError:
            pass
    return None


def pid_children(pid):
    kids = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                    kids.extend(int(x) for x in f.read().split())
            except OSError:
                pass
    except OSError:
        return []
    return sorted(set(kids))


def read_pid(path):
    """The process id in a pidfile, or None."""
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def pid_title(pid):
    """The process title (setproctitle) of pid, or "" if it is gone."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def proc_state(pid):
    """The state letter of pid (R, S, D, Z...), or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def pid_alive(pid):
    return proc_state(pid) not in (None, "Z", "X")


def read_pids(path):
    """The numbers in the file at path, one a line; [] if there is none."""
    try:
        with open(path) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def end_tracers(directory):
    """SIGKILL to the tracers TRACED started there (their pids in
    `tracer`): the programs they held are reaped then."""
    for t in read_pids(os.path.join(directory, "tracer")):
        try:
            os.kill(t, signal.SIGKILL)
        except OSError:
            pass


# A program (delivery or checkpassword), for tests of one that does not
# die when killed: a child of the program leaves its process group (the
# kill at the deadline misses it) and traces the program, so that the
# killed program stays a zombie only its tracer may reap, for as many
# seconds as the file `hold` says; to waitpid() in the broker it is a
# program that does not die, as one in an uninterruptible sleep (a hung
# NFS server) would be.  With a file `flood`, the tracer writes to the
# program's standard output meanwhile, as long as it can.
TRACED = r"""
import ctypes, os, time
T = os.environ["T"]
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p,
                        ctypes.c_void_p]
leader = os.getpid()
r, w = os.pipe()
if os.fork() == 0:
    os.close(r)
    os.setsid()
    if libc.ptrace(16, leader, None, None) != 0:    # PTRACE_ATTACH
        os._exit(1)
    os.waitpid(leader, 0x40000000)                  # __WALL: its stop
    libc.ptrace(7, leader, None, None)              # PTRACE_CONT
    with open(T + "/tracer", "a") as f:
        f.write("%d\n" % os.getpid())
    os.write(w, b"x")
    with open(T + "/hold") as f:
        end = time.monotonic() + float(f.read())
    try:
        while os.path.exists(T + "/flood") and time.monotonic() < end:
            os.write(1, b"flood\n" * 512)
    except OSError:
        pass
    time.sleep(max(0, end - time.monotonic()))
    os._exit(0)
os.close(w)
if os.read(r, 1) != b"x":
    open(T + "/noptrace", "w").close()
time.sleep(60)
"""


def no_leak_check_env():
    """The environment for a daemon whose test makes hundreds of children
    (a crowd): the sanitizer build's LeakSanitizer scans every process at
    its exit, some 40 ms of CPU each here, which took such a test from 2 s
    to over 20 and starved the daemons of the tests running beside it
    until their 2-second timeouts expired.  Other tests keep the check."""
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = ((env["ASAN_OPTIONS"] + ":")
                           if env.get("ASAN_OPTIONS") else "") + \
        "detect_leaks=0"
    return env


def wait_for(pred, timeout=5.0, interval=0.02):
    """Poll pred() until it returns a true value or timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def wait_listening(port, proc=None, timeout=10.0):
    """Wait until a TCP socket listens on port; False on timeout or if
    proc (a Popen) has exited first."""
    def ready():
        if proc is not None and proc.poll() is not None:
            return "exited"
        return port in listening_tcp()
    return wait_for(ready, timeout, 0.02) is True


def stop_process(proc, grace=5.0):
    """Stop a Popen started by a test: SIGTERM, then SIGKILL after grace
    seconds; reap it and return its exit status."""
    if proc.poll() is None:
        try:
            proc.terminate()
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def group_pids(pgid):
    """The live processes of process group pgid (a test started its leader
    with start_new_session=True)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            pids.append(int(name))
    return pids


def kill_group(pgid, grace=3.0):
    """Wait up to grace seconds for process group pgid to end, then kill
    what is left of it, by PID."""
    if wait_for(lambda: not group_pids(pgid), grace):
        return
    for pid in group_pids(pgid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


class Service:
    """A third-party program a test runs in the background (Postfix,
    Prometheus): a directory of its own (self.dir, under tmpdir or a new
    temp dir) and a session of its own.  A subclass defines _start(), which
    runs the program with spawn() and waits until it serves.  start()
    returns self, or stops everything and raises; stop() ends the program
    and whatever is left in its process group, by PID, and removes the
    directory (safe to call twice).  As a context manager it starts and
    stops."""

    def __init__(self, prefix, tmpdir=None):
        self.dir = tempfile.mkdtemp(prefix=prefix, dir=tmpdir)
        self.proc = None
        self.pid = None
        self._out = None

    def spawn(self, argv, output):
        """Run argv in self.dir, its output appended to the file output
        there."""
        self._out = open(os.path.join(self.dir, output), "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=self._out,
                                     stderr=subprocess.STDOUT, cwd=self.dir,
                                     start_new_session=True)
        self.pid = self.proc.pid
        return self.proc

    def start(self):
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, grace=5.0):
        if self.proc is not None:
            stop_process(self.proc, grace)
            kill_group(self.pid)
            self.proc = None
        if self._out is not None:
            self._out.close()
            self._out = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def read(self, name):
        """The text of file name in self.dir ("" if there is none)."""
        try:
            with open(os.path.join(self.dir, name), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, TypeError):
            return ""

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


def host_lacks(err):
    """smtpd -n's standard error err refuses only what this host lacks and
    a real one would have: the configuration's user, or the program it
    runs, does not exist here."""
    m = re.fullmatch(r"smtpd: (?:(?:\S+:\d+: )?user (\S+): no such user|"
                     r"\S+:\d+: [a-z ]+: (/[^:]*): No such file or "
                     r"directory for user .*)\n", err)
    if m is None:
        return False
    if m.group(1) is not None:
        try:
            pwd.getpwnam(m.group(1))
            return False
        except KeyError:
            return True
    return not os.path.exists(m.group(2))


class Closed(AssertionError):
    pass


class Client:
    """A raw SMTP client. Replies are returned as text: the lines without
    their CRLF (which is checked), joined by "\\n"."""

    def __init__(self, port=None, host="127.0.0.1", timeout=5.0,
                 source=None, path=None):
        self.timeout = timeout
        if path is not None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(path)
        else:
            src = (source, 0) if source else None
            self.sock = socket.create_connection((host, port), timeout,
                                                 source_address=src)
        self.buf = b""
        self.eof = False

    @property
    def local_port(self):
        return self.sock.getsockname()[1]

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        self.sock.sendall(data)

    def _fill(self, deadline):
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def recv_line(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\n" not in self.buf:
            try:
                more = self._fill(deadline)
            except socket.timeout:
                raise AssertionError(
                    "timeout waiting for a reply line; partial %r"
                    % self.buf) from None
            if not more:
                raise Closed("connection closed; expected a reply, got %r"
                             % self.buf)
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def recv_reply(self, timeout=None):
        lines = []
        while True:
            raw = self.recv_line(timeout)
            if not raw.endswith(b"\r\n"):
                raise AssertionError("reply line not ended by CRLF: %r" % raw)
            line = raw[:-2]
            lines.append(line.decode("utf-8", "surrogateescape"))
            if not (len(line) >= 4 and line[3:4] == b"-"):
                return "\n".join(lines)

    def expect(self, text, timeout=None, msg=""):
        if isinstance(text, (list, tuple)):
            text = "\n".join(text)
        got = self.recv_reply(timeout)
        if got != text:
            raise AssertionError("%sexpected %r, got %r"
                                 % (msg + ": " if msg else "", text, got))
        return got

    def expect_match(self, pattern, timeout=None):
        got = self.recv_reply(timeout)
        if not re.fullmatch(pattern, got):
            raise AssertionError("expected reply matching %r, got %r"
                                 % (pattern, got))
        return got

    def cmd(self, line):
        """Send one command line (CRLF added), return the reply text."""
        if isinstance(line, str):
            line = line.encode("utf-8", "surrogateescape")
        self.send(line + b"\r\n")
        return self.recv_reply()

    def check(self, line, text):
        """Send a command line and assert its reply."""
        if isinstance(text, (list, tuple)):
            text = "\n".join(text)
        got = self.cmd(line)
        if got != text:
            raise AssertionError("%r: expected %r, got %r"
                                 % (line, text, got))
        return got

    def expect_closed(self, timeout=None):
        """Nothing more arrives, and the server closes the connection."""
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while self._fill(deadline):
                pass
        except socket.timeout:
            raise AssertionError("connection still open after %.1fs"
                                 % (timeout or self.timeout)) from None
        if self.buf:
            raise AssertionError("expected close without reply, got %r"
                                 % self.buf)

    def is_closed(self, wait=0.0):
        """True if the server closed the connection (within wait)."""
        if self.eof:
            return True
        deadline = time.monotonic() + wait
        try:
            self.sock.setblocking(False)
            try:
                while True:
                    try:
                        chunk = self.sock.recv(65536)
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            return False
                        time.sleep(0.02)
                        continue
                    except ConnectionResetError:
                        chunk = b""
                    if not chunk:
                        self.eof = True
                        return True
                    self.buf += chunk
            finally:
                self.sock.setblocking(True)
        except OSError:
            return True

    def assert_silent(self, secs=0.3):
        """No reply arrives within secs (and the connection stays open)."""
        deadline = time.monotonic() + secs
        try:
            while time.monotonic() < deadline:
                if not self._fill(deadline):
                    break
        except socket.timeout:
            pass
        if self.buf:
            raise AssertionError("expected no reply yet, got %r" % self.buf)
        if self.eof:
            raise AssertionError("connection closed unexpectedly")

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def reset(self):
        """Close with a TCP RST (SO_LINGER 0)."""
        import struct
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             struct.pack("ii", 1, 0))
        self.sock.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def _directives(text):
    names = set()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.add(line.split()[0])
    return names


class Smtpd:
    """One smtpd -d process with its own temp dir, config, log and outdir."""

    def __init__(self, config="", *, listen_opts="", prefork=2, timeout=5,
                 hostname=HOSTNAME, args=(), env=None, start=True,
                 noconf=False, unix_listen=None, unix_opts="", wrapper=(),
                 binary=None):
        self.tmp = tempfile.mkdtemp(prefix="smtpd-e2e-")
        # Sticky: the session users may write here, but not put anything
        # in place of the daemon's UNIX sockets (smtpd refuses those in a
        # directory that others could change so).
        os.chmod(self.tmp, 0o1777)
        self.out = os.path.join(self.tmp, "out")
        os.mkdir(self.out)
        os.chmod(self.out, 0o777)
        self.spool = os.path.join(self.tmp, "spool")
        os.mkdir(self.spool)
        os.chmod(self.spool, 0o1777)
        self.conf = os.path.join(self.tmp, "smtpd.conf")
        self.control = os.path.join(self.tmp, "control.sock")
        self.logfile = os.path.join(self.tmp, "stderr.log")
        self.stdoutfile = os.path.join(self.tmp, "stdout.log")
        self.port = free_port()
        self.port2 = free_port()
        self.port3 = free_port()
        self.listen_opts = listen_opts
        self.prefork = prefork
        self.timeout = timeout
        self.hostname = hostname
        self.args = list(args)
        self.env = env
        self.noconf = noconf        # run without -f (built-in default)
        self.binary = binary        # None: smtpd_path()
        # wrapper: argv put before smtpd's, e.g. ["prlimit",
        # "--nofile=40:40", "--"]; it must exec smtpd (same pid).
        self.wrapper = list(wrapper)
        # unix_listen: also a UNIX socket listener at this path (a name
        # without "/" is put in the temp dir), with unix_opts ("lmtp mode
        # 0660"); the default TCP listener stays unless the config has
        # `listen` lines.
        self.unix_listen = None
        if unix_listen is not None:
            self.unix_listen = (unix_listen if "/" in unix_listen
                                else os.path.join(self.tmp, unix_listen))
        self.unix_opts = unix_opts
        self.proc = None
        self.returncode = None
        self.clients = []
        self._known_pids = set()
        self.unix_paths = []
        self.tcp_ports = []
        self.write_config(config)
        if start:
            try:
                self.start()
            except BaseException:
                self.cleanup()
                raise

    # -- configuration --------------------------------------------------

    def subst(self, text):
        for k, v in (("@RECORDER@", RECORDER), ("@OUT@", self.out),
                     ("@TMP@", self.tmp), ("@PORT3@", str(self.port3)),
                     ("@PORT2@", str(self.port2)),
                     ("@PORT@", str(self.port))):
            text = text.replace(k, v)
        return text

    def config_text(self, config):
        config = self.subst(config)
        have = _directives(config)
        head = []
        if self.hostname and "hostname" not in have:
            head.append("hostname %s" % self.hostname)
        if self.prefork is not None and "prefork" not in have:
            head.append("prefork %d" % self.prefork)
        if self.timeout is not None and "timeout" not in have:
            head.append("timeout %s" % self.timeout)
        if "spool" not in have:
            head.append("spool %s" % self.spool)
        # Every daemon its own control socket: the default one is shared
        # by every smtpd of the host.
        if "control" not in have:
            head.append("control %s" % self.control)
        if "listen" not in have:
            head.append(("listen on 127.0.0.1 port %d %s"
                         % (self.port, self.listen_opts)).rstrip())
        if getattr(self, "unix_listen", None):
            head.append(("listen on %s %s"
                         % (self.unix_listen, self.unix_opts)).rstrip())
        return "\n".join(head + [config]) + "\n"

    def write_config(self, config, raw=False):
        """Write the config file (raw: exactly this text, no defaults)."""
        text = self.subst(config) if raw else self.config_text(config)
        with open(self.conf, "w") as f:
            f.write(text)
        self.config = text
        # What to wait for at start: every TCP port / UNIX path we listen on.
        self.tcp_ports, self.unix_paths = [], []
        for line in text.splitlines():
            m = re.match(r"\s*listen\s+on\s+(\S+)(.*)", line)
            if not m:
                continue
            if m.group(1).startswith("/"):
                self.unix_paths.append(m.group(1))
            else:
                p = re.search(r"\bport\s+(\d+)", m.group(2))
                if p:
                    self.tcp_ports.append(int(p.group(1)))
        return text

    # -- process --------------------------------------------------------

    def start(self, wait=True):
        env = dict(os.environ if self.env is None else self.env)
        # Canaries: nothing of smtpd's environment but PATH may reach the
        # delivery program.
        env.setdefault("E2E_CANARY", "leak")
        env.setdefault("SMTPD_CANARY", "leak")
        cmd = [self.binary or smtpd_path(), "-d"] + self.args
        if not self.noconf:
            cmd[2:2] = ["-f", self.conf]
        else:
            self.tcp_ports, self.unix_paths = [8025], []
        cmd = list(getattr(self, "wrapper", ())) + cmd
        # make check-valgrind runs every daemon under valgrind this way.
        cmd = os.environ.get("SMTPD_WRAPPER", "").split() + cmd
        self._stdout = open(self.stdoutfile, "ab")
        self._stderr = open(self.logfile, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=self._stdout,
                                     stderr=self._stderr, env=env,
                                     cwd=self.tmp)
        self.pid = self.proc.pid
        if wait:
            try:
                self.wait_ready()
            except BaseException:
                self.stop(grace=2.0)
                raise
        return self

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("smtpd exited with %s at start; log:\n%s"
                                   % (self.proc.returncode, self.log()))
            tcp = listening_tcp()
            unix = _listening_unix() if self.unix_paths else set()
            if (all(p in tcp for p in self.tcp_ports)
                    and all(p in unix for p in self.unix_paths)):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("smtpd not listening after %.0fs; log:\n%s"
                                   % (timeout, self.log()))
            time.sleep(0.01)
        # Let the pre-forked pool come up (bounded; not an error if not).
        want = self.prefork or 1
        wait_for(lambda: len(self.children()) >= want, 3.0, 0.01)
        # And the delivery broker, named (until then it looks like the
        # master, and would pass for a child).
        self.broker(3.0)
        return self

    def children(self):
        """The session children (the delivery broker is not one)."""
        if self.proc is None:
            return []
        kids = pid_children(self.pid)
        self._known_pids.update(kids)
        return [k for k in kids if "broker" not in pid_title(k)]

    def broker(self, timeout=3.0):
        """The pid of the delivery broker, or None."""
        def find():
            for k in pid_children(self.pid) if self.proc else []:
                if "broker" in pid_title(k):
                    self._known_pids.add(k)
                    return k
            return None
        return wait_for(find, timeout, 0.01)

    def descendants(self):
        todo, seen = [self.pid], []
        while todo:
            p = todo.pop()
            for k in pid_children(p):
                if k not in seen:
                    seen.append(k)
                    todo.append(k)
        self._known_pids.update(seen)
        return seen

    def signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self, config=None, raw=False):
        if config is not None:
            self.write_config(config, raw=raw)
        self.proc.send_signal(signal.SIGHUP)

    def status(self, *args):
        """smtpd -s on this daemon's configuration: (exit status, output)."""
        r = subprocess.run([smtpd_path(), "-s", "-f", self.conf] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=10)
        return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")

    def wait_exit(self, timeout=10.0):
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def stop(self, grace=10.0):
        if self.proc is None:
            return self.returncode
        for c in self.clients:
            c.close()
        self.clients = []
        self.descendants()
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.descendants()
                self.proc.kill()
                self.proc.wait()
        self.returncode = self.proc.returncode
        # Children should go with the master; make sure, by PID.
        exe = os.path.realpath(smtpd_path())
        left = [p for p in self._known_pids if pid_alive(p)]
        if left and not wait_for(
                lambda: not any(pid_alive(p) for p in left), 3.0):
            for p in left:
                try:
                    if os.path.realpath("/proc/%d/exe" % p) == exe:
                        os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        self._stdout.close()
        self._stderr.close()
        self.proc = None
        return self.returncode

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.cleanup()

    # -- clients --------------------------------------------------------

    def connect(self, greeting=True, port=None, **kw):
        c = Client(port or self.port, **kw)
        self.clients.append(c)
        if greeting:
            c.expect("220 %s ESMTP smtpd" % self.hostname, msg="greeting")
        return c

    def connect_retry(self, timeout=5.0, **kw):
        """Connect until the greeting is a 220 (not a 421); return the
        client and the greeting."""
        deadline = time.monotonic() + timeout
        while True:
            c = self.connect(greeting=False, **kw)
            try:
                g = c.recv_reply()
            except AssertionError:
                g = None
            if g is not None and g.startswith("220 ") \
                    or time.monotonic() > deadline:
                return c, g
            c.close()
            time.sleep(0.05)

    def connect_unix(self, path, greeting=True):
        c = Client(path=path)
        self.clients.append(c)
        if greeting:
            c.expect("220 %s ESMTP smtpd" % self.hostname, msg="greeting")
        return c

    def smtp(self, port=None):
        s = smtplib.SMTP("127.0.0.1", port or self.port, timeout=5)
        self.clients.append(_SmtplibCloser(s))
        return s

    def lmtp_unix(self, path=None, timeout=5):
        """smtplib.LMTP over a UNIX socket (default: unix_listen)."""
        s = smtplib.LMTP(path or self.unix_listen, timeout=timeout)
        self.clients.append(_SmtplibCloser(s))
        return s

    def lmtp(self, port=None):
        s = smtplib.LMTP("127.0.0.1", port or self.port)
        s.sock.settimeout(5)
        self.clients.append(_SmtplibCloser(s))
        return s

    def session(self, helo="EHLO client.test"):
        """A connected client that has done EHLO (capabilities read)."""
        c = self.connect()
        c.send(helo + "\r\n")
        c.recv_reply()
        return c

    # -- outputs --------------------------------------------------------

    def log(self):
        try:
            with open(self.logfile, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stdout(self):
        with open(self.stdoutfile, "rb") as f:
            return f.read()

    def wait_log(self, pattern, count=1, timeout=5.0):
        rx = re.compile(pattern)
        return wait_for(lambda: len(rx.findall(self.log())) >= count,
                        timeout)

    def sanitizer_report(self):
        try:
            with open(self.logfile, "rb") as f:
                data = f.read()
        except OSError:
            return None
        m = SANITIZER_RE.search(data)
        if not m:
            return None
        start = max(0, m.start() - 200)
        return data[start:start + 3000].decode("utf-8", "replace")

    def clear_out(self):
        for name in os.listdir(self.out):
            os.unlink(os.path.join(self.out, name))

    def set_exit(self, status, rcpt=None):
        name = "exit" if rcpt is None else "exit." + _fname(rcpt)
        with open(os.path.join(self.out, name), "w") as f:
            f.write(str(status))

    def set_stdout(self, text, rcpt=None):
        name = "stdout" if rcpt is None else "stdout." + _fname(rcpt)
        with open(os.path.join(self.out, name), "wb") as f:
            f.write(text if isinstance(text, bytes) else text.encode())

    def deliveries(self):
        return read_deliveries(self.out)

    def wait_deliveries(self, n, timeout=5.0):
        wait_for(lambda: len(self.deliveries()) >= n, timeout)
        return self.deliveries()


class _SmtplibCloser:
    def __init__(self, s):
        self.s = s

    def close(self):
        try:
            self.s.close()
        except Exception:
            pass


def send_slow_runs(test, greeting, nrcpts=12, sleep="0.5"):
    """max-session-time against runs per recipient: the recording
    program sleeps `sleep` seconds a run, and one session sends greeting
    (EHLO or LHLO), MAIL, nrcpts RCPTs and a message in one write, then
    reads the replies up to DATA's (queued until the message's reply,
    so the first waits for the runs).  Returns the client and the time
    of the send."""
    path = os.path.join(test.d.out, "sleep")
    with open(path, "w") as f:
        f.write(sleep)
    test.addCleanup(os.unlink, path)
    c = test.connect()
    c.send(greeting + b" client.test\r\nMAIL FROM:<a@example.com>\r\n" +
           b"".join(b"RCPT TO:<r%d@example.com>\r\n" % i
                    for i in range(nrcpts)) + b"DATA\r\nhi\r\n.\r\n")
    t0 = time.monotonic()
    c.recv_reply(timeout=20)
    for _ in range(nrcpts + 2):
        c.recv_reply()
    return c, t0


def runs_stopped(test, proto, t0, nrcpts=12):
    """After send_slow_runs(): the session ended within 5.5 s, before
    every run, and the log says how many recipients were left.  Returns
    the number of runs."""
    test.assertLess(time.monotonic() - t0, 5.5)
    runs = len(test.d.deliveries())
    test.assertLess(runs, nrcpts)
    test.assertTrue(test.d.wait_log(r"(?m)^smtpd\[\d+\]: [0-9A-Z]{16} deliver "
                                    r"id=[0-9A-Z]{16}\.\d+ %s: the session "
                                    r"time is up; %d recipients left "
                                    r"undelivered" % (proto, nrcpts - runs)),
                    test.d.log())
    return runs


def _fname(addr):
    return addr.replace("/", "_")


def read_deliveries(outdir):
    """The recorder's runs, in order: dicts argv, env, data, uid."""
    runs = []
    for name in os.listdir(outdir):
        m = re.fullmatch(r"(\d+)\.json", name)
        if m:
            runs.append(int(m.group(1)))
    result = []
    for n in sorted(runs):
        with open(os.path.join(outdir, "%d.json" % n)) as f:
            rec = json.load(f)
        with open(os.path.join(outdir, "%d.data" % n), "rb") as f:
            rec["data"] = f.read()
        result.append(rec)
    return result


def strip_received(data):
    """Split a message into (Received header incl. folding, rest)."""
    if not data.startswith(b"Received:"):
        return None, data
    pos = 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return data, b""
        pos = end + 2
        if data[pos:pos + 1] not in (b" ", b"\t"):
            return data[:pos], data[pos:]


def strip_all_received(data):
    """The message without the Received headers at its top (each MTA on
    the way puts one there): what the first sender wrote."""
    while True:
        head, rest = strip_received(data)
        if head is None:
            return data
        data = rest


def sample_message(size, sender="s@example.com", rcpts=("r@example.com",),
                   subject="interop"):
    """A 7-bit message of about size bytes (CRLF line ends), complete
    headers (so that no MTA adds any but Received), and body lines of 76
    characters, some starting with a dot (they are dot-stuffed on the
    wire)."""
    head = ("From: <%s>\r\nTo: %s\r\nSubject: %s\r\n"
            "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
            "Message-ID: <%d.%s@example.com>\r\n\r\n"
            % (sender, ", ".join("<%s>" % r for r in rcpts), subject,
               size, subject)).encode()
    lines = [head]
    n = len(head)
    i = 0
    while n < size:
        line = ("%s%07d " % ("." if i % 100 == 0 else "", i)).encode()
        line += bytes(33 + (i * 7 + j) % 94 for j in range(76 - len(line)))
        lines.append(line + b"\r\n")
        n += len(line) + 2
        i += 1
    return b"".join(lines)


class OwnSmtpdTest(unittest.TestCase):
    """A daemon per test, in self.d: stopped after the test, which fails
    on a sanitizer report in its log."""

    d = None

    def tearDown(self):
        if self.d is not None:
            rep = self.d.sanitizer_report()
            self.d.cleanup()
            self.d = None
            if rep:
                self.fail("sanitizer report in smtpd's log:\n" + rep)


class SmtpdTest(unittest.TestCase):
    """One daemon per class: set CONFIG (and OPTS) in the subclass."""

    CONFIG = RECORD
    OPTS = {}
    d = None

    @classmethod
    def setUpClass(cls):
        cls.d = Smtpd(cls.CONFIG, **cls.OPTS)

    @classmethod
    def tearDownClass(cls):
        if cls.d is not None:
            cls.d.cleanup()
            cls.d = None

    def setUp(self):
        self.d.clear_out()

    def tearDown(self):
        for c in self.d.clients:
            c.close()
        self.d.clients = []
        rep = self.d.sanitizer_report()
        if rep:
            self.fail("sanitizer report in smtpd's log:\n" + rep)

    # helpers ------------------------------------------------------------

    def connect(self, **kw):
        return self.d.connect(**kw)

    def session(self, helo="EHLO client.test"):
        return self.d.session(helo)

    def transaction(self, c, sender, rcpts, body=b"Subject: t\r\n\r\nhi\r\n",
                    end=b".\r\n"):
        """MAIL, RCPTs, DATA, body, end (the final dot) on client c;
        return the reply."""
        c.check("MAIL FROM:<%s>" % sender if sender is not None
                else "MAIL FROM:<>", "250 OK")
        for r in rcpts:
            c.check("RCPT TO:<%s>" % r, "250 OK")
        c.check("DATA", "354 End data with <CR><LF>.<CR><LF>")
        c.send(body + end)
        return c.recv_reply()

    def delivered(self, c, raw, end=b".\r\n"):
        """raw and end after 354, accepted; what the one delivery read."""
        self.d.clear_out()
        got = self.transaction(c, "a@example.com", ["b@example.com"], raw,
                               end)
        self.assertRegex(got, "^" + OK_ID + "$")
        runs = self.d.deliveries()
        self.assertEqual(len(runs), 1)
        return runs[0]["data"]

    def message(self, c, sender="s@example.com", rcpt="r@example.com"):
        """One accepted message to one recipient; return its one run."""
        got = self.transaction(c, sender, [rcpt])
        self.assertRegex(got, "^" + OK_ID + "$")
        runs = self.d.wait_deliveries(1)
        self.assertEqual(len(runs), 1)
        return runs[0]


def ehlo_lines(hostname=HOSTNAME, size=33554432, smtputf8=False,
               starttls=False, auth=None, chunking=True, enhanced=False):
    """The EHLO reply smtpd sends with these settings, line by line."""
    lines = ["250-" + hostname]
    if size:
        lines.append("250-SIZE %d" % size)
    lines += ["250-8BITMIME", "250-PIPELINING"]
    if chunking:
        lines.append("250-CHUNKING")
    if enhanced:
        lines.append("250-ENHANCEDSTATUSCODES")
    if smtputf8:
        lines.append("250-SMTPUTF8")
    if starttls:
        lines.append("250-STARTTLS")
    if auth:
        lines.append("250-AUTH " + auth)
    lines.append("250 HELP")
    return "\n".join(lines)


OK_ID = r"250 OK id=\S+"
