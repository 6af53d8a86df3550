"""systemd without libsystemd: readiness notification on a test-owned
NOTIFY_SOCKET, and socket activation (LISTEN_PID/LISTEN_FDS) with
systemd-socket-activate and with sockets made by the test."""

import os
import shutil
import signal
import socket
import stat
import struct
import subprocess
import time
import unittest

from harness import (RECORD, Client, Smtpd, pid_alive, smtpd_path,
                     stop_process, wait_for)


class Notify:
    """A datagram socket the daemon notifies, as systemd's would be."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)

    def next(self, timeout=5.0):
        self.sock.settimeout(timeout)
        return self.sock.recv(4096).decode()

    def wait(self, key, timeout=5.0):
        """The next message with a line `key` (or key=...), skipping
        periodic STATUS= updates."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.next(max(0.1, deadline - time.monotonic()))
            lines = msg.split("\n")
            if any(l == key or l.startswith(key + "=") for l in lines):
                return msg

    def close(self):
        self.sock.close()


class TestNotify(unittest.TestCase):
    def setUp(self):
        self.d = Smtpd(RECORD, start=False)
        self.n = Notify(os.path.join(self.d.tmp, "notify.sock"))
        self.d.env = dict(os.environ, NOTIFY_SOCKET=self.n.path)
        self.d.start()
        self.ready = self.n.wait("READY")

    def tearDown(self):
        self.n.close()
        self.d.cleanup()

    def test_ready_reload_stopping(self):
        self.assertIn("READY=1", self.ready.split("\n"))
        self.assertRegex(self.ready, r"STATUS=\d+ sessions, \d+ idle "
                                     r"children, \d+ messages accepted")
        self.d.reload()
        msg = self.n.wait("RELOADING")
        self.assertRegex(msg, r"^RELOADING=1\nMONOTONIC_USEC=\d+$")
        msg = self.n.wait("READY")
        self.assertIn("READY=1", msg.split("\n"))
        self.d.signal(signal.SIGTERM)
        self.assertEqual(self.n.wait("STOPPING"), "STOPPING=1")
        self.assertEqual(self.d.wait_exit(), 0)

    def test_no_sink_under_a_service(self):
        # -d keeps a service in the foreground (the shipped unit): without
        # a deliver line it would answer every message 250 and print it
        # into the journal.  A reload to such a file is refused, and so
        # are -n and a start with $NOTIFY_SOCKET.
        self.d.reload("")
        self.assertTrue(self.d.wait_log(r"no \"deliver\" directive; the "
                                        r"standard output sink is for a "
                                        r"terminal, not for a service"),
                        self.d.log())
        self.assertTrue(self.d.wait_log(r"reload failed"), self.d.log())
        env = dict(os.environ, NOTIFY_SOCKET=self.n.path)
        for args in (["-n"], ["-n", "-d"], ["-d"]):
            p = subprocess.run([smtpd_path()] + args + ["-f", self.d.conf],
                               env=env, capture_output=True, timeout=10)
            self.assertEqual(p.returncode, 1, args)
            self.assertIn(b"not for a service ($NOTIFY_SOCKET is set)",
                          p.stderr, args)
        # In a terminal (no $NOTIFY_SOCKET) -d runs the sink, -n warns.
        env.pop("NOTIFY_SOCKET")
        p = subprocess.run([smtpd_path(), "-n", "-d", "-f", self.d.conf],
                           env=env, capture_output=True, timeout=10)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_mainpid_after_upgrade(self):
        self.d.signal(signal.SIGUSR2)
        msg = self.n.wait("MAINPID", 15)
        new = int(msg.split("=", 1)[1])
        self.addCleanup(lambda: pid_alive(new) and os.kill(new,
                                                           signal.SIGKILL))
        self.assertNotEqual(new, self.d.pid)
        self.assertTrue(self.d.wait_log(r"upgrade: new master %d is ready"
                                        % new))
        # The new master notifies from now on; the old one drains.
        self.assertEqual(self.d.wait_exit(15), 0)
        os.kill(new, signal.SIGTERM)
        self.assertEqual(self.n.wait("STOPPING", 15), "STOPPING=1")
        self.assertTrue(wait_for(lambda: not pid_alive(new), 15))

    def test_new_master_silent_until_mainpid(self):
        # systemd (NotifyAccess=main) drops what the new master sends
        # before the old one names it MAINPID.
        self.n.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.d.signal(signal.SIGUSR2)
        seen = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            self.n.sock.settimeout(max(0.1, deadline - time.monotonic()))
            msg, anc, _, _ = self.n.sock.recvmsg(
                4096, socket.CMSG_SPACE(12))
            pid = struct.unpack("i", anc[0][2][:4])[0] if anc else 0
            seen.append((pid, msg.decode()))
            if msg.startswith(b"MAINPID="):
                break
        new = int(seen[-1][1].split("=", 1)[1])
        self.addCleanup(lambda: pid_alive(new) and os.kill(new,
                                                           signal.SIGKILL))
        self.assertNotIn(new, [p for p, _ in seen], seen)
        self.assertTrue(self.d.wait_log(r"upgrade: new master %d is ready"
                                        % new))
        self.assertEqual(self.d.wait_exit(15), 0)
        os.kill(new, signal.SIGTERM)
        self.assertTrue(wait_for(lambda: not pid_alive(new), 15))

    def test_children_cannot_notify(self):
        # What a child could read: its environment as it is now.
        for pid in self.d.children():
            with open("/proc/%d/environ" % pid, "rb") as f:
                env = f.read()
            self.assertNotIn(b"\0NOTIFY_SOCKET=" + self.n.path.encode(),
                             b"\0" + env)


def launch(d, socks, extra=()):
    """Start smtpd -d with socks as descriptors 3, 4 ... and LISTEN_PID
    and LISTEN_FDS set as systemd sets them."""
    fds = [s.fileno() for s in socks]
    moves = " ".join("%d<&%d" % (3 + i, fd) for i, fd in enumerate(fds))
    script = ("exec %s; LISTEN_PID=$$ LISTEN_FDS=%d exec \"$@\""
              % (moves, len(fds)))
    log = open(d.logfile, "ab")
    return subprocess.Popen(["sh", "-c", script, "sh", smtpd_path(), "-d",
                             "-f", d.conf] + list(extra),
                            pass_fds=fds, stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL, cwd=d.tmp)


def tcp_listener(family, addr, port, v6only=None):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if v6only is not None:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
    s.bind((addr, port))
    s.listen(16)
    return s


def has_ipv6():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


class TestActivation(unittest.TestCase):
    def setUp(self):
        self.d = Smtpd(RECORD, start=False)
        self.proc = None
        self.socks = []

    def tearDown(self):
        if self.proc is not None:
            stop_process(self.proc, 15)
        for s in self.socks:
            s.close()
        self.d.cleanup()

    def greet(self, port, family=socket.AF_INET, host="127.0.0.1"):
        c = Client(port, host=host, timeout=10)
        try:
            c.expect("220 mx.test ESMTP smtpd")
            c.check("QUIT", "221 Bye")
        finally:
            c.close()

    @unittest.skipUnless(shutil.which("systemd-socket-activate"),
                         "no systemd-socket-activate")
    def test_systemd_socket_activate(self):
        d = self.d
        path = os.path.join(d.tmp, "lmtp.sock")
        d.write_config(RECORD + "\nlisten on 127.0.0.1 port @PORT@\n"
                       "listen on 127.0.0.1 port @PORT2@\n"
                       "listen on %s lmtp mode 0600\n" % path)
        log = open(d.logfile, "ab")
        self.proc = subprocess.Popen(
            ["systemd-socket-activate", "-l", "127.0.0.1:%d" % d.port,
             "-l", path, smtpd_path(), "-d", "-f", d.conf],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=d.tmp)
        self.assertTrue(wait_for(lambda: os.path.exists(path), 5))
        mode = stat.S_IMODE(os.stat(path).st_mode)
        # It starts smtpd at the first connection.
        self.greet(d.port)
        self.assertIn("listening on 127.0.0.1:%d (inherited from systemd)"
                      % d.port, d.log())
        self.assertIn("listening on %s (inherited from systemd)" % path,
                      d.log())
        # Not inherited: bound as usual.
        self.greet(d.port2)
        # systemd's socket keeps systemd's mode, not `mode 0600`.
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), mode)
        c = Client(path=path, timeout=10)
        c.expect("220 mx.test ESMTP smtpd")
        c.close()
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.proc.wait(15), 0)
        # Nor does smtpd remove the file: it is systemd's.
        self.assertTrue(os.path.exists(path))

    def test_unnamed_socket_is_an_error(self):
        d = self.d
        self.socks = [tcp_listener(socket.AF_INET, "127.0.0.1", d.port2)]
        self.proc = launch(d, self.socks)
        self.assertEqual(self.proc.wait(10), 1)
        self.assertIn("socket 127.0.0.1:%d from systemd: no \"listen on\" "
                      "line names it" % d.port2, d.log())

    def test_partial_sockets_are_what_the_unit_gives(self):
        # `localhost` with only systemd's 127.0.0.1: ::1 is not bound
        # (it may be another's, or need a privilege the unit lacks).
        d = self.d
        d.write_config(RECORD + "\nlisten on localhost port @PORT@\n")
        self.socks = [tcp_listener(socket.AF_INET, "127.0.0.1", d.port)]
        if has_ipv6():
            self.socks.append(tcp_listener(socket.AF_INET6, "::1", d.port))
        self.proc = launch(d, self.socks[:1])
        self.greet(d.port)
        self.assertNotIn("Address already in use", d.log())
        self.assertEqual(d.log().count("(inherited from systemd)"), 1)

    def refused_socket(self, kind):
        """A socket of kind bound to the listener's address, not listening:
        accept() on it would fail at once, for ever."""
        d = self.d
        d.write_config(RECORD + "\nlisten on 127.0.0.1 port @PORT@\n")
        s = socket.socket(socket.AF_INET, kind)
        s.bind(("127.0.0.1", d.port))
        self.socks = [s]
        self.proc = launch(d, self.socks)
        self.assertEqual(self.proc.wait(10), 1)
        self.assertIn("socket 127.0.0.1:%d from systemd: not a listening "
                      "stream socket" % d.port, d.log())

    def test_datagram_socket_is_an_error(self):
        self.refused_socket(socket.SOCK_DGRAM)

    def test_socket_not_listening_is_an_error(self):
        self.refused_socket(socket.SOCK_STREAM)

    @unittest.skipUnless(has_ipv6(), "no IPv6")
    def test_mapped_socket_is_the_ipv4_line(self):
        # ListenStream=[::ffff:127.0.0.1]:PORT: `listen on` refuses the
        # mapped spelling, so the IPv4 line must take the socket.
        d = self.d
        d.write_config(RECORD + "\nlisten on 127.0.0.1 port @PORT@\n")
        self.socks = [tcp_listener(socket.AF_INET6, "::ffff:127.0.0.1",
                                   d.port, 0)]
        self.proc = launch(d, self.socks)
        self.greet(d.port)
        self.assertIn("listening on 127.0.0.1:%d (inherited from systemd)"
                      % d.port, d.log())

    @unittest.skipUnless(has_ipv6(), "no IPv6")
    def test_star_one_dual_stack_socket(self):
        d = self.d
        d.write_config(RECORD + "\nlisten on * port @PORT@\n")
        self.socks = [tcp_listener(socket.AF_INET6, "::", d.port, 0)]
        self.proc = launch(d, self.socks)
        self.greet(d.port)
        self.greet(d.port, host="::1")
        self.assertEqual(d.log().count("(inherited from systemd)"), 1)

    @unittest.skipUnless(has_ipv6(), "no IPv6")
    def test_star_two_sockets(self):
        d = self.d
        d.write_config(RECORD + "\nlisten on * port @PORT@\n")
        self.socks = [tcp_listener(socket.AF_INET, "0.0.0.0", d.port),
                      tcp_listener(socket.AF_INET6, "::", d.port, 1)]
        self.proc = launch(d, self.socks)
        self.greet(d.port)
        self.greet(d.port, host="::1")
        self.assertEqual(d.log().count("(inherited from systemd)"), 2)


@unittest.skipUnless(shutil.which("systemd-analyze"), "no systemd-analyze")
class TestUnits(unittest.TestCase):
    def test_verify(self):
        here = os.path.dirname(os.path.abspath(__file__))
        units = os.path.join(here, "..", "..", "contrib", "systemd")
        tmp = Smtpd(start=False)
        try:
            for name in ("smtpd.service", "smtpd.socket"):
                with open(os.path.join(units, name)) as f:
                    text = f.read()
                text = text.replace("/usr/local/sbin/smtpd",
                                    os.path.abspath(smtpd_path()))
                with open(os.path.join(tmp.tmp, name), "w") as f:
                    f.write(text)
            r = subprocess.run(
                ["systemd-analyze", "verify", "--man=no",
                 os.path.join(tmp.tmp, "smtpd.socket"),
                 os.path.join(tmp.tmp, "smtpd.service")],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout.decode())
            self.assertEqual(r.stdout.decode().strip(), "")
        finally:
            tmp.cleanup()


if __name__ == "__main__":
    unittest.main()
