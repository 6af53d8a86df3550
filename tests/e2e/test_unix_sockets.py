"""UNIX socket listeners made safely by a master that runs as root: the
mode comes with the socket (umask around bind), owner and group are set
through a descriptor of the socket file, never by following its name, and
a socket whose directory, or one above it, could be changed by others
than root and the socket's owner is refused.  A reload applies a changed
mode, owner or group of a socket it keeps."""

import grp
import os
import pwd
import socket
import stat
import unittest

from harness import RECORD, Smtpd

IS_ROOT = os.geteuid() == 0


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def in_subdir(name, opts="lmtp"):
    """A daemon, not started, with a UNIX listener in directory name of
    its temp dir (which the test makes)."""
    d = Smtpd(RECORD, start=False)
    d.unix_listen = os.path.join(d.tmp, name, "s.sock")
    d.unix_opts = opts
    d.write_config(RECORD)
    return d


class TestUnixSocketDirectory(unittest.TestCase):
    def start_refused(self, d, why):
        with self.assertRaises(RuntimeError) as cm:
            d.start()
        self.assertIn("listen on %s: " % d.unix_listen, str(cm.exception))
        self.assertIn(why, str(cm.exception))
        self.assertFalse(os.path.lexists(d.unix_listen))

    def test_mode_at_creation(self):
        with Smtpd(RECORD, unix_listen="s.sock",
                   unix_opts="lmtp mode 0604") as d:
            self.assertEqual(mode_of(d.unix_listen), 0o604)
            self.assertTrue(stat.S_ISSOCK(os.lstat(d.unix_listen).st_mode))

    def test_directory_writable_by_others(self):
        d = in_subdir("open")
        try:
            os.mkdir(os.path.join(d.tmp, "open"))
            os.chmod(os.path.join(d.tmp, "open"), 0o777)
            self.start_refused(d, "directory %s/open is writable by others"
                               % os.path.realpath(d.tmp))
            os.chmod(os.path.join(d.tmp, "open"), 0o775)
            self.start_refused(d, "is writable by others")
            os.chmod(os.path.join(d.tmp, "open"), 0o1777)
            d.start()
            self.assertTrue(stat.S_ISSOCK(os.lstat(d.unix_listen).st_mode))
        finally:
            d.cleanup()

    @unittest.skipUnless(IS_ROOT, "needs root to own files for others")
    def test_directory_of_another_user(self):
        nobody = pwd.getpwnam("nobody")
        d = in_subdir("theirs")
        try:
            theirs = os.path.join(d.tmp, "theirs")
            os.mkdir(theirs, 0o755)
            os.chown(theirs, nobody.pw_uid, nobody.pw_gid)
            self.start_refused(d, "belongs to uid %d" % nobody.pw_uid)
            # ... unless the socket is theirs anyway
            d.unix_opts = "lmtp owner nobody"
            d.write_config(RECORD)
            d.start()
            self.assertEqual(os.lstat(d.unix_listen).st_uid, nobody.pw_uid)
        finally:
            d.cleanup()


class TestUnixSocketReload(unittest.TestCase):
    def test_reload_applies_mode_owner_group(self):
        with Smtpd(RECORD, unix_listen="r.sock",
                   unix_opts="lmtp mode 0660") as d:
            ino = os.lstat(d.unix_listen).st_ino
            self.assertEqual(mode_of(d.unix_listen), 0o660)
            opts = "lmtp mode 0640"
            if IS_ROOT:
                opts += " owner nobody group nogroup"
            d.unix_opts = opts
            d.reload(RECORD)
            self.assertTrue(d.wait_log(r"r\.sock: mode 0640"), d.log())
            st = os.lstat(d.unix_listen)
            self.assertEqual(st.st_ino, ino)        # the same socket
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o640)
            if IS_ROOT:
                self.assertEqual(st.st_uid, pwd.getpwnam("nobody").pw_uid)
                self.assertEqual(st.st_gid, grp.getgrnam("nogroup").gr_gid)
            c = d.connect_unix(d.unix_listen)
            c.check("QUIT", "221 Bye")

    def test_failed_reload_keeps_mode(self):
        """A reload that fails leaves the sockets it would have kept as
        they were: one whose mode the new file widens stays as the old
        file says, whether the reload fails on a new listener it cannot
        bind or on another socket whose owner it cannot set."""
        with Smtpd(RECORD, unix_listen="k.sock",
                   unix_opts="lmtp mode 0600") as d:
            tcp = "listen on 127.0.0.1 port @PORT@\n"
            blocker = socket.socket()
            blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            blocker.bind(("127.0.0.1", d.port2))
            blocker.listen()
            try:
                d.unix_opts = "lmtp mode 0666"
                d.reload(RECORD + "\n" + tcp +
                         "listen on 127.0.0.1 port @PORT2@")
                self.assertTrue(d.wait_log("reload failed"), d.log())
            finally:
                blocker.close()
            self.assertEqual(mode_of(d.unix_listen), 0o600)
            # The old file again: nothing to change, and nothing changed.
            d.unix_opts = "lmtp mode 0600"
            d.reload(RECORD + "\n" + tcp)
            self.assertTrue(d.wait_log("reloaded configuration"), d.log())
            self.assertEqual(mode_of(d.unix_listen), 0o600)

            # A second kept socket whose owner does not exist: the first
            # one's new mode is put back.
            second = os.path.join(d.tmp, "k2.sock")
            d.reload(RECORD + "\n" + tcp +
                     "listen on %s mode 0600" % second)
            self.assertTrue(d.wait_log("reloaded configuration", 2),
                            d.log())
            d.unix_opts = "lmtp mode 0666"
            d.reload(RECORD + "\n" + tcp + "listen on %s mode 0600 "
                     "owner no-such-user-here" % second)
            self.assertTrue(d.wait_log("reload failed", 2), d.log())
            self.assertIn("no user no-such-user-here", d.log())
            self.assertEqual(mode_of(d.unix_listen), 0o600)
            self.assertEqual(mode_of(second), 0o600)
            c = d.connect_unix(d.unix_listen)
            c.check("QUIT", "221 Bye")


if __name__ == "__main__":
    unittest.main()
