"""contrib/systemd/smtpd.service: the capabilities of its
CapabilityBoundingSet are enough for what the configuration may ask of
the master.  systemd-analyze verify cannot see a missing capability, so
smtpd runs here under setpriv(1) with exactly the unit's bounding set
(read from the unit file, so the two stay in step), with a UNIX listener
that has an owner and a group (chown needs CAP_CHOWN)."""

import grp
import os
import pwd
import re
import shutil
import unittest

from harness import REPO, RECORD, Smtpd, ehlo_lines
from test_broker import may_renice

UNIT = os.path.join(REPO, "contrib", "systemd", "smtpd.service")


def unit_capabilities():
    """The unit's CapabilityBoundingSet, as setpriv's list."""
    with open(UNIT) as f:
        m = re.search(r"(?m)^CapabilityBoundingSet=(.*)$", f.read())
    caps = m.group(1).split()
    return ",".join(["-all"] + ["+" + c.lower()[len("cap_"):] for c in caps])


@unittest.skipUnless(os.geteuid() == 0, "needs root (the unit's master)")
@unittest.skipUnless(shutil.which("setpriv"), "no setpriv (util-linux)")
class TestUnitCapabilities(unittest.TestCase):
    def test_unix_listener_owner_group(self):
        wrapper = ["setpriv", "--bounding-set", unit_capabilities(), "--"]
        with Smtpd(RECORD, wrapper=wrapper, unix_listen="lmtp.sock",
                   unix_opts="lmtp mode 0660 owner nobody group nogroup"
                   ) as d:
            st = os.stat(d.unix_listen)
            self.assertEqual(st.st_uid, pwd.getpwnam("nobody").pw_uid)
            self.assertEqual(st.st_gid, grp.getgrnam("nogroup").gr_gid)
            c = d.connect_unix(d.unix_listen)
            c.check("LHLO client.test", ehlo_lines())
            # the children still drop to the session user
            d.session()
            c.check("QUIT", "221 Bye")

    @unittest.skipUnless(may_renice(), "no CAP_SYS_NICE to hand on")
    def test_broker_priority(self):
        # The broker's nice value (smtpd.8, Process model) needs
        # CAP_SYS_NICE: without it in the set, it stays at the master's.
        wrapper = ["setpriv", "--bounding-set", unit_capabilities(), "--"]
        with Smtpd(RECORD, wrapper=wrapper) as d:
            nice = os.getpriority(os.PRIO_PROCESS, d.pid)
            self.assertEqual(os.getpriority(os.PRIO_PROCESS, d.broker()),
                             max(nice - 10, -20))


if __name__ == "__main__":
    unittest.main()
