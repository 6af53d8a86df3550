"""The timeout closes without a reply; commands
restart it, unknown verbs do not; in DATA every line restarts it."""

import time
import unittest

from harness import OK_ID, RECORD, SmtpdTest

DATA_354 = "354 End data with <CR><LF>.<CR><LF>"


class TestTimeout(SmtpdTest):
    CONFIG = RECORD + "\nreceived-header no"
    OPTS = {"timeout": 2, "prefork": 6}

    def test_timers(self):
        # Several clients at once, so that the whole test takes ~4 s.
        t0 = time.monotonic()

        def at(t):
            delay = t0 + t - time.monotonic()
            if delay > 0:
                time.sleep(delay)

        idle = self.connect()
        noop = self.connect()
        unknown = self.connect()
        trickle = self.session()
        trickle.check("MAIL FROM:<slow@example.com>", "250 OK")
        trickle.check("RCPT TO:<b@example.com>", "250 OK")
        trickle.check("DATA", DATA_354)
        stalled = self.session()
        stalled.check("MAIL FROM:<stalled@example.com>", "250 OK")
        stalled.check("RCPT TO:<b@example.com>", "250 OK")
        stalled.check("DATA", DATA_354)
        t0 = time.monotonic()       # all sessions are set up by now

        at(0.5)
        stalled.send(b"first line\r\n")
        trickle.send(b"line 1\r\n")
        at(1.0)
        noop.check("NOOP", "250 OK")
        unknown.check("FOO", '500 Error: command "FOO" not recognized')
        trickle.send(b"line 2\r\n")
        at(1.5)
        self.assertFalse(idle.is_closed(), "idle session closed too early")
        trickle.send(b"line 3\r\n")
        at(2.0)
        noop.check("NOOP", "250 OK")
        trickle.send(b"line 4\r\n")
        # idle: timer from accept (~2 s); unknown: FOO did not restart it
        at(2.6)
        self.assertTrue(idle.is_closed(0.5), "idle session not closed")
        self.assertEqual(idle.buf, b"", "timeout must close without reply")
        self.assertTrue(unknown.is_closed(0.1),
                        "unknown verb restarted the timer")
        self.assertEqual(unknown.buf, b"")
        trickle.send(b"line 5\r\n")
        at(3.0)
        noop.check("NOOP", "250 OK")      # restarted at 1.0 and 2.0
        # stalled in DATA since 0.5: closed without reply, nothing delivered
        stalled.expect_closed(timeout=0.6)
        trickle.send(b"line 6\r\n")
        at(3.6)
        trickle.send(b".\r\n")            # DATA phase took 3.6 s > timeout
        trickle.expect_match(OK_ID)
        trickle.check("QUIT", "221 Bye")
        runs = self.d.deliveries()
        self.assertEqual(len(runs), 1)
        self.assertEqual(runs[0]["argv"], ["slow@example.com", "b@example.com"])
        self.assertEqual(runs[0]["data"],
                         b"".join(b"line %d\r\n" % i for i in range(1, 7)))
        self.assertFalse(noop.is_closed())


if __name__ == "__main__":
    unittest.main()
