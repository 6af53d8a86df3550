"""Session limits of smtpd.conf(5): recipients by total size, exec
failures caused by the message (E2BIG), the Received header's line
length, junk commands, the session time limit."""

import time
import unittest

from harness import (OK_ID, RECORD, RECORD_EACH, SmtpdTest, runs_stopped,
                     send_slow_runs, strip_received)

TOO_MANY = "452 4.5.3 Error: too many recipients"
DATA_354 = "354 End data with <CR><LF>.<CR><LF>"
E2BIG = "554 5.3.4 Delivery failed: message too big for the program"
RCPT_ENV_MAX = 131072 - len("SMTPD_RECIPIENTS=")
JUNK_421 = "421 4.7.0 Error: too many junk commands, goodbye."
TIME_421 = "421 4.4.2 Error: session time limit reached, goodbye."
VRFY_252 = ("252 Cannot VRFY user, but will accept message and attempt "
            "delivery")


def rcpt(n, size=200):
    """A recipient of exactly size octets."""
    head = "r%05d" % n
    tail = "@example.com"
    return head + "x" * (size - len(head) - len(tail)) + tail


def pipelined_rcpts(c, rcpts):
    """All RCPTs in one write; their replies in order."""
    c.send("".join("RCPT TO:<%s>\r\n" % r for r in rcpts))
    return [c.recv_reply() for _ in rcpts]


class TestRecipientSize(SmtpdTest):
    CONFIG = RECORD + "\nreceived-header no"

    def test_700_recipients_of_200_octets(self):
        rcpts = [rcpt(i) for i in range(700)]
        fit = RCPT_ENV_MAX // 201          # 652 recipients fit
        c = self.session()
        c.check("MAIL FROM:<s@example.com>", "250 OK")
        got = pipelined_rcpts(c, rcpts)
        self.assertEqual(got[:fit], ["250 OK"] * fit)
        self.assertEqual(got[fit:], [TOO_MANY] * (700 - fit))
        # 3 octets are left: "a@b" does not fit, "ab" (and its separator)
        # does, exactly.
        self.assertEqual(RCPT_ENV_MAX - fit * 201, 3)
        c.check("RCPT TO:<a@b>", TOO_MANY)
        c.check("RCPT TO:<ab>", "250 OK")
        c.check("RCPT TO:<a>", TOO_MANY)
        c.check("DATA", DATA_354)
        c.send(b"x\r\n.\r\n")
        c.expect_match(OK_ID)
        runs = self.d.deliveries()
        self.assertEqual(len(runs), 1)
        self.assertEqual(len(runs[0]["argv"]), 1 + fit + 1)
        self.assertEqual(len(runs[0]["env"]["SMTPD_RECIPIENTS"]) + 1,
                         RCPT_ENV_MAX)

    def test_size_restarts_with_the_transaction(self):
        c = self.session()
        c.check("MAIL FROM:<s@example.com>", "250 OK")
        got = pipelined_rcpts(c, [rcpt(i) for i in range(660)])
        self.assertEqual(got[-1], TOO_MANY)
        c.check("RSET", "250 OK")
        c.check("MAIL FROM:<s@example.com>", "250 OK")
        c.check("RCPT TO:<%s>" % rcpt(1), "250 OK")


class TestE2big(SmtpdTest):
    # 60 copies of the recipients: far past what execve() takes in all
    # (at most 6 MB of arguments, whatever the stack limit).
    CONFIG = ('deliver "@RECORDER@ @OUT@ %{sender}'
              + " %{recipients}" * 60 + '"\nreceived-header no')

    def test_permanent(self):
        c = self.session()
        c.check("MAIL FROM:<s@example.com>", "250 OK")
        got = pipelined_rcpts(c, [rcpt(i, 400) for i in range(300)])
        self.assertEqual(got, ["250 OK"] * 300)
        c.check("DATA", DATA_354)
        c.send(b"x\r\n.\r\n")
        c.expect(E2BIG)
        self.assertEqual(self.d.deliveries(), [])
        # A small message goes through the same program.
        c.check("MAIL FROM:<s@example.com>", "250 OK")
        c.check("RCPT TO:<r@example.com>", "250 OK")
        c.check("DATA", DATA_354)
        c.send(b"x\r\n.\r\n")
        c.expect_match(OK_ID)
        self.assertEqual(len(self.d.deliveries()), 1)


class TestReceivedFolding(SmtpdTest):
    def lines(self, rcpt):
        c = self.session()
        c.check("MAIL FROM:<s@example.com>", "250 OK")
        c.check("RCPT TO:" + rcpt, "250 OK")
        c.check("DATA", DATA_354)
        c.send(b"Subject: x\r\n\r\nx\r\n.\r\n")
        c.expect_match(OK_ID)
        runs = self.d.deliveries()
        self.assertEqual(len(runs), 1)
        head, rest = strip_received(runs[0]["data"])
        self.assertEqual(rest, b"Subject: x\r\n\r\nx\r\n")
        self.assertTrue(head.endswith(b"\r\n"))
        return head, head[:-2].split(b"\r\n")

    def test_500_backslashes(self):
        # Was a 1012-octet line; RFC 5322 2.1.1 allows 998.
        head, lines = self.lines("<" + "\\" * 500 + "@a>")
        self.assertLessEqual(max(len(x) for x in lines), 998)
        self.assertNotIn(b"for <", head)
        self.assertTrue(lines[-1].startswith(b"\t"))
        self.assertTrue(lines[-2].endswith(b";"))

    def test_folded_at_white_space(self):
        # Normalised: "\\...\\a \\...\\"@a, 1000 octets with one space.
        head, lines = self.lines("<" + "\\" * 249 + "a " + "\\" * 248 + "@a>")
        self.assertLessEqual(max(len(x) for x in lines), 998)
        want = '\tfor <"' + "\\" * 498 + "a " + "\\" * 496 + '"@a>;'
        self.assertNotIn(want.encode(), head)
        self.assertIn(want.encode(), head.replace(b"\r\n ", b" "))


class TestJunkDefault(SmtpdTest):
    def test_100_noops_then_421(self):
        c = self.session()
        c.send("NOOP\r\n" * 100)
        for _ in range(100):
            c.expect("250 OK")
        c.check("NOOP", JUNK_421)
        c.expect_closed()
        self.assertTrue(self.d.wait_log(r"junk-command-limit reached"))


class TestJunkLimit(SmtpdTest):
    CONFIG = RECORD + "\njunk-command-limit 5"

    def test_what_counts(self):
        c = self.session()
        c.check("NOOP", "250 OK")
        c.check("RSET", "250 OK")
        c.check("VRFY a@b", VRFY_252)
        c.check("EXPN a", "502 EXPN not implemented")
        # Commands that move mail do not count.
        c.send("EHLO client.test\r\n")
        self.assertTrue(c.recv_reply().endswith("250 HELP"))
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("HELP", "250 Supported commands: DATA EHLO HELO HELP "
                "MAIL NOOP QUIT RCPT RSET VRFY")
        c.check("FOO", JUNK_421)
        c.expect_closed()

    def test_unknown_verbs_count(self):
        c = self.session()
        for _ in range(4):
            c.check("FOO", '500 Error: command "FOO" not recognized')
        c.check("NOOP", "250 OK")
        c.check("NOOP", JUNK_421)

    def test_restarts_after_each_message(self):
        c = self.session()
        for _ in range(4):
            c.check("RSET", "250 OK")
            for _ in range(4):
                c.check("NOOP", "250 OK")
            self.transaction(c, "a@example.com", ["b@example.com"])
        self.assertEqual(len(self.d.deliveries()), 4)
        c.check("NOOP", "250 OK")

    def test_failed_message_does_not_restart(self):
        c = self.session()
        for _ in range(4):
            c.check("NOOP", "250 OK")
        self.d.set_exit(67)
        self.assertEqual(self.transaction(c, "a@example.com",
                                          ["b@example.com"]),
                         "550 5.1.1 Delivery failed: no such user")
        c.check("NOOP", "250 OK")
        c.check("NOOP", JUNK_421)


class TestJunkOff(SmtpdTest):
    CONFIG = RECORD + "\njunk-command-limit 0"

    def test_no_limit(self):
        c = self.session()
        c.send("NOOP\r\n" * 300)
        for _ in range(300):
            c.expect("250 OK")
        c.check("QUIT", "221 Bye")


class TestSessionTime(SmtpdTest):
    # The command timeout is longer than the test: only max-session-time
    # can end these sessions.
    CONFIG = RECORD + "\nmax-session-time 2\nreceived-header no"
    OPTS = {"timeout": 60}

    def test_idle_wakes_at_the_limit(self):
        t0 = time.monotonic()
        c = self.session()
        c.expect(TIME_421, timeout=10)
        c.expect_closed()
        self.assertLess(time.monotonic() - t0, 4.5)
        self.assertTrue(self.d.wait_log(r"session time limit reached"))

    def test_noops_do_not_keep_it(self):
        t0 = time.monotonic()
        c = self.session()
        while True:
            got = c.cmd("NOOP")
            if got != "250 OK":
                break
            time.sleep(0.3)
        self.assertEqual(got, TIME_421)
        c.expect_closed()
        self.assertLess(time.monotonic() - t0, 5)

    def test_message_in_transfer_is_not_delivered(self):
        c = self.session()
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("DATA", DATA_354)
        c.send(b"Subject: x\r\n\r\n")
        time.sleep(2.5)
        c.assert_silent(0.1)
        c.send(b"late\r\n.\r\n")
        c.expect(TIME_421)
        c.expect_closed()
        self.assertEqual(self.d.deliveries(), [])


class TestSessionTimeTrickle(SmtpdTest):
    """A message still arriving at max-session-time gets one `timeout`
    more to end; a line now and then does not keep it going."""
    CONFIG = RECORD + "\nmax-session-time 2\nreceived-header no"
    OPTS = {"timeout": 2}

    def trickle(self, c, data):
        t0 = time.monotonic()
        while time.monotonic() - t0 < 10:
            try:
                c.send(data)
            except OSError:
                break
            if c.is_closed(0.5):
                break
        return time.monotonic() - t0

    def test_data_lines(self):
        c = self.session()
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("DATA", DATA_354)
        self.assertLess(self.trickle(c, b"x\r\n"), 6)
        self.assertEqual(self.d.deliveries(), [])
        self.assertTrue(self.d.wait_log(
            r"session time limit reached \(2s\), message unfinished"))

    def test_bdat_chunk(self):
        c = self.session()
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.send(b"BDAT 100000000 LAST\r\n")
        self.assertLess(self.trickle(c, b"y" * 100), 6)
        self.assertEqual(self.d.deliveries(), [])


class TestSessionTimeLastWait(SmtpdTest):
    """A message in transfer has until one `timeout` after max-session-time
    to end, and each wait is still one `timeout` at most: past either,
    the connection is closed without a reply."""
    CONFIG = RECORD + "\nmax-session-time 2\nreceived-header no"
    OPTS = {"timeout": 2}

    def start_data(self, pause=0.0):
        t0 = time.monotonic()
        c = self.session()
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        time.sleep(pause)
        c.check("DATA", DATA_354)
        return c, t0

    def assert_closed_at(self, c, t0, when):
        # Half a second more for a loaded machine: the mutants it must
        # catch close 1.3 s (a wait stretched) or 2 s (lines extending
        # the limit) later than that.
        time.sleep(max(0.0, t0 + when - time.monotonic()))
        self.assertTrue(c.is_closed(0.5))
        self.assertEqual(c.buf, b"")
        self.assertEqual(self.d.deliveries(), [])

    def test_lines_after_the_limit_do_not_extend_it(self):
        # Lines until 3.5 s: the message still ends at 2 + 2 s.
        c, t0 = self.start_data()
        while time.monotonic() - t0 < 3.5:
            c.send(b"x\r\n")
            time.sleep(0.5)
        self.assert_closed_at(c, t0, 4.7)

    def test_wait_before_the_limit_is_one_timeout(self):
        # Silent from 0.3 s: the timeout ends it at 2.3 s, not 2 + 2 s.
        c, t0 = self.start_data(pause=0.3)
        c.send(b"Subject: x\r\n")
        self.assert_closed_at(c, t0, 3.1)


class TestSessionTimeDelivery(SmtpdTest):
    CONFIG = ('deliver "/bin/sh -c \'sleep 2\'"\nmax-session-time 1')
    OPTS = {"timeout": 60}

    def test_running_delivery_is_answered_first(self):
        c = self.session()
        got = self.transaction(c, "a@example.com", ["b@example.com"],
                               b"x\r\n")
        self.assertRegex(got, "^" + OK_ID + "$")
        c.expect(TIME_421)
        c.expect_closed()


class TestSessionTimeRunsPerRecipient(SmtpdTest):
    """SMTP with %{recipient}: once max-session-time is reached no run
    starts (each would stretch the session by its own time, up to
    max-recipients times deliver-timeout); the message gets a 451, so
    that the client sends it again, then the 421."""
    CONFIG = RECORD_EACH + "\nreceived-header no\nmax-session-time 3"
    OPTS = {"timeout": 2}

    def test_no_run_starts_after_the_limit(self):
        c, t0 = send_slow_runs(self, b"EHLO")
        got = c.recv_reply()
        c.expect(TIME_421, timeout=5)
        c.expect_closed()
        runs_stopped(self, "smtp", t0)
        self.assertEqual(got, "451 4.3.0 Delivery failed temporarily, "
                         "try again later")


if __name__ == "__main__":
    unittest.main()
