"""smtpd.8 Process model: started as root with `user nobody`, the
children and the delivery program run unprivileged, and the master never
holds a client's socket."""

import os
import pwd
import unittest

from harness import OK_ID, RECORD, SmtpdTest, socket_inode, wait_for


def ids(pid):
    """(uids, gids, groups) of a process from /proc/PID/status."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, val = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                out[key] = [int(v) for v in val.split()]
    return out["Uid"], out["Gid"], out["Groups"]


def dropped_children(d, timeout=5.0):
    """The children, once each has dropped root: a child just forked is
    root for the moment it takes to drop (before it takes a connection)."""
    def dropped():
        kids = d.children()
        if kids and all(ids(p)[0][0] != 0 for p in kids):
            return kids
        return None
    return wait_for(dropped, timeout) or d.children()


def socket_fds(pid):
    """The socket inodes a process holds."""
    found = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            found.add(link[8:-1])
    return found


@unittest.skipUnless(os.getuid() == 0, "needs root")
class TestPrivileges(SmtpdTest):
    CONFIG = RECORD + "\nuser nobody"

    def test_children_unprivileged(self):
        nobody = pwd.getpwnam("nobody")
        kids = dropped_children(self.d)
        self.assertTrue(kids)
        for pid in kids:
            uids, gids, groups = ids(pid)
            self.assertEqual(uids, [nobody.pw_uid] * 4, pid)
            self.assertEqual(gids, [nobody.pw_gid] * 4, pid)
            self.assertEqual(groups, [nobody.pw_gid], pid)
        # The master keeps root: it binds and signals.
        self.assertEqual(ids(self.d.pid)[0][0], 0)

    def test_scoreboard_confined(self):
        """Each child maps one page of the scoreboard writable, the rest
        read-only; the broker does not map it."""
        for pid in dropped_children(self.d):
            with open("/proc/%d/maps" % pid) as f:
                maps = [l.split() for l in f if "smtpd-score" in l]
            writable = [m for m in maps if m[1].startswith("rw")]
            self.assertEqual(len(writable), 1, (pid, maps))
            lo, hi = (int(x, 16) for x in writable[0][0].split("-"))
            self.assertEqual(hi - lo, os.sysconf("SC_PAGE_SIZE"))
            self.assertTrue(len(maps) >= 2, (pid, maps))
        broker = self.d.broker()
        self.assertIsNotNone(broker)
        with open("/proc/%d/maps" % broker) as f:
            self.assertNotIn("smtpd-score", f.read())

    def test_children_filtered(self):
        """Each child runs under its system call filter (smtpd.8): no
        fork, no signal but to itself.  A sanitizer build has none."""
        for pid in dropped_children(self.d):
            with open("/proc/%d/maps" % pid) as f:
                if "libasan" in f.read():
                    self.skipTest("sanitizer build: no filter")
            with open("/proc/%d/status" % pid) as f:
                mode = [l.split()[1] for l in f if l.startswith("Seccomp:")]
            self.assertEqual(mode, ["2"], pid)

    def test_master_holds_no_client_socket(self):
        c = self.d.connect()
        inode = wait_for(lambda: socket_inode(self.d.port, c.local_port),
                         3.0)
        self.assertIsNotNone(inode)
        holders = [pid for pid in self.d.children()
                   if inode in socket_fds(pid)]
        self.assertEqual(len(holders), 1)
        # The master closes its copy right after the hand-off; the child
        # may greet before that close has run, so allow it a moment.
        self.assertTrue(wait_for(
            lambda: inode not in socket_fds(self.d.pid), 2.0),
            "the master still holds the client's socket")
        c.close()

    def test_delivery_program_unprivileged(self):
        nobody = pwd.getpwnam("nobody")
        c = self.d.session()
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("DATA", "354 End data with <CR><LF>.<CR><LF>")
        c.send(b"x\r\n.\r\n")
        c.expect_match(OK_ID)
        run = self.d.deliveries()[0]
        self.assertEqual(run["uid"], nobody.pw_uid)


if __name__ == "__main__":
    unittest.main()
