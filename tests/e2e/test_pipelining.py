"""PIPELINING (RFC 2920): replies in order, every
complete command answered without the client sending more."""

import unittest

from harness import OK_ID, RECORD, SmtpdTest, ehlo_lines

DATA_354 = "354 End data with <CR><LF>.<CR><LF>"


class TestPipelining(SmtpdTest):
    CONFIG = RECORD + "\nreceived-header no"

    def test_transaction_in_one_write(self):
        c = self.connect()
        c.send(b"EHLO client.test\r\nMAIL FROM:<a@example.com>\r\n"
               b"RCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\n"
               b"DATA\r\n")
        c.expect(ehlo_lines())
        c.expect("250 OK")
        c.expect("250 OK")
        c.expect("250 OK")
        c.expect(DATA_354)          # without sending anything more
        c.send(b"Subject: p\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        c.expect_match(OK_ID)
        c.expect("221 Bye")
        c.expect_closed()
        runs = self.d.deliveries()
        self.assertEqual(len(runs), 1)
        self.assertEqual(runs[0]["argv"], ["a@example.com", "b@example.com",
                                           "c@example.com"])
        self.assertEqual(runs[0]["data"], b"Subject: p\r\n\r\nbody\r\n")

    def test_everything_in_one_write(self):
        c = self.connect()
        c.send(b"EHLO client.test\r\nMAIL FROM:<a@example.com>\r\n"
               b"RCPT TO:<b@example.com>\r\nDATA\r\nfirst\r\n.\r\n"
               b"MAIL FROM:<>\r\nRCPT TO:<c@example.com>\r\n"
               b"RCPT TO:<>\r\nDATA\r\nsecond\r\n..\r\n.\r\nQUIT\r\n")
        c.expect(ehlo_lines())
        for want in ("250 OK", "250 OK", DATA_354):
            c.expect(want)
        c.expect_match(OK_ID)
        for want in ("250 OK", "250 OK", "553 5.1.3 Error: malformed address",
                     DATA_354):
            c.expect(want)
        c.expect_match(OK_ID)
        c.expect("221 Bye")
        c.expect_closed()
        runs = self.d.deliveries()
        self.assertEqual([(r["argv"], r["data"]) for r in runs],
                         [(["a@example.com", "b@example.com"], b"first\r\n"),
                          (["", "c@example.com"], b"second\r\n.\r\n")])

    def test_errors_pipelined(self):
        c = self.connect()
        c.send(b"MAIL FROM:<a@example.com>\r\nEHLO x\r\nMAIL FROM:<a@b@c>\r\n"
               b"RCPT TO:<b@example.com>\r\nMAIL FROM:<a@example.com>\r\n"
               b"DATA\r\nRCPT TO:<b@example.com>\r\nFOO\r\nRSET\r\n"
               b"DATA\r\n")
        c.expect("503 Error: send HELO first")
        c.recv_reply()
        c.expect("553 5.1.3 Error: malformed address")
        c.expect("503 Error: need MAIL command")
        c.expect("250 OK")
        c.expect("503 Error: need RCPT command")
        c.expect("250 OK")
        c.expect('500 Error: command "FOO" not recognized')
        c.expect("250 OK")
        c.expect("503 Error: need RCPT command")
        c.assert_silent(0.2)

    def test_incomplete_last_line(self):
        c = self.connect()
        c.send(b"NOOP\r\nNOOP\r\nNO")
        c.expect("250 OK")
        c.expect("250 OK")
        c.assert_silent(0.2)
        c.send(b"OP\r\n")
        c.expect("250 OK")

    def test_eof_after_commands(self):
        # the replies to what arrived before the EOF are sent, then close
        c = self.connect()
        c.send(b"NOOP\r\nHELO x\r\nFOO\r\nNOOP")    # last line incomplete
        c.shutdown_write()
        c.expect("250 OK")
        c.expect("250 mx.test")
        c.expect('500 Error: command "FOO" not recognized')
        c.expect_closed()

    def test_eof_after_whole_transaction(self):
        c = self.connect()
        c.send(b"EHLO c\r\nMAIL FROM:<a@example.com>\r\n"
               b"RCPT TO:<b@example.com>\r\nDATA\r\neof\r\n.\r\n")
        c.shutdown_write()
        c.expect(ehlo_lines())
        for want in ("250 OK", "250 OK", DATA_354):
            c.expect(want)
        c.expect_match(OK_ID)
        c.expect_closed()
        self.assertEqual([r["data"] for r in self.d.deliveries()],
                         [b"eof\r\n"])

    def test_many_commands(self):
        c = self.connect()
        n = 100         # junk-command-limit: the 101st NOOP is a 421
        c.send(b"NOOP\r\nHELO x\r\n" * n)
        for _ in range(n):
            c.expect("250 OK")
            c.expect("250 mx.test")
        c.assert_silent(0.1)

    def test_data_failure_then_pipelined_commands(self):
        self.d.set_exit(75)
        c = self.connect()
        c.send(b"EHLO x\r\nMAIL FROM:<a@example.com>\r\n"
               b"RCPT TO:<b@example.com>\r\nDATA\r\nx\r\n.\r\nNOOP\r\n")
        c.recv_reply()
        c.expect("250 OK")
        c.expect("250 OK")
        c.expect(DATA_354)
        c.expect("451 4.3.0 Delivery failed temporarily, try again later")
        c.expect("250 OK")


if __name__ == "__main__":
    unittest.main()
