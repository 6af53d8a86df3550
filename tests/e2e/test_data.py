"""DATA (RFC 5321 4.1.1.4, 4.5.2): the message. Exactly what the delivery
program gets (dot-unstuffing, bare CR/LF, smuggling variants), the size and line
limits, EOF handling."""

import time
import unittest

from harness import OK_ID, RECORD, SmtpdTest

DATA_354 = "354 End data with <CR><LF>.<CR><LF>"
TOO_MUCH = "552 Error: Too much mail data"
LINE_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"


class DataCase(SmtpdTest):
    """raw is sent as it is after 354: it must include the final dot."""

    def send_message(self, c, raw, rcpts=("b@example.com",)):
        return self.transaction(c, "a@example.com", rcpts, raw, b"")

    def delivered(self, c, raw):
        return super().delivered(c, raw, b"")


class TestContent(DataCase):
    CONFIG = RECORD + "\nreceived-header no"

    def test_plain(self):
        c = self.session()
        self.assertEqual(self.delivered(c, b"Subject: x\r\n\r\nhello\r\n.\r\n"),
                         b"Subject: x\r\n\r\nhello\r\n")

    def test_empty_message(self):
        c = self.session()
        self.assertEqual(self.delivered(c, b".\r\n"), b"")

    def test_dot_unstuffing(self):
        c = self.session()
        self.assertEqual(
            self.delivered(c, b"..x\r\n.x\r\n...\r\n..\r\nend.\r\n. \r\n"
                              b".\n...\r\n.\r\n"),
            b".x\r\nx\r\n..\r\n.\r\nend.\r\n \r\n\n...\r\n")

    def test_bare_lf_and_cr_are_data(self):
        c = self.session()
        self.assertEqual(self.delivered(c, b"a\nb\rc\r\r\nd\n\r\n.\r\n"),
                         b"a\nb\rc\r\r\nd\n\r\n")

    def test_smuggling_lf_dot_lf(self):
        c = self.session()
        self.assertEqual(
            self.delivered(c, b"Testing\n.\nMAIL FROM:<x@y>\r\n.\r\n"),
            b"Testing\n.\nMAIL FROM:<x@y>\r\n")

    def test_smuggling_lf_dot_crlf(self):
        c = self.session()
        self.assertEqual(
            self.delivered(c, b"Testing\n.\r\nNO SMUGGLING\r\n.\r\n"),
            b"Testing\n.\r\nNO SMUGGLING\r\n")

    def test_smuggling_cr_dot_cr(self):
        c = self.session()
        self.assertEqual(
            self.delivered(c, b"Testing\r.\rRCPT TO:<x@y>\r\n.\r\n"),
            b"Testing\r.\rRCPT TO:<x@y>\r\n")

    def test_smuggling_cr_dot_crlf(self):
        c = self.session()
        self.assertEqual(self.delivered(c, b"A\r.\r\nB\r\n.\r\n"),
                         b"A\r.\r\nB\r\n")

    def test_smuggling_crlf_dot_lf(self):
        c = self.session()
        self.assertEqual(self.delivered(c, b"Testing\r\n.\nX\r\n.\r\n"),
                         b"Testing\r\n\nX\r\n")

    def test_smuggled_commands_not_executed(self):
        c = self.session()
        raw = (b"Subject: a\r\n\r\nx\n.\nMAIL FROM:<evil@x>\nRCPT TO:<v@x>\n"
               b"DATA\nevil\n.\n\r\n")
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("DATA", DATA_354)
        c.send(raw)
        c.assert_silent(0.3)            # still in DATA
        c.send(b".\r\n")
        c.expect_match(OK_ID)
        c.check("NOOP", "250 OK")
        runs = self.d.deliveries()
        self.assertEqual(len(runs), 1)
        self.assertEqual(runs[0]["data"], raw)
        self.assertEqual(runs[0]["argv"], ["a@example.com", "b@example.com"])

    def test_eight_bit_and_nul(self):
        c = self.session()
        raw = b"\xff\xfe\x00\x80 caf\xc3\xa9\r\n\x00\r\n"
        self.assertEqual(self.delivered(c, raw + b".\r\n"), raw)

    def test_body_parameter_does_not_matter(self):
        c = self.session()
        c.check("MAIL FROM:<a@example.com> BODY=7BIT", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("DATA", DATA_354)
        c.send(b"\xe9t\xe9\r\n.\r\n")
        c.expect_match(OK_ID)
        runs = self.d.deliveries()
        self.assertEqual(runs[0]["data"], b"\xe9t\xe9\r\n")
        self.assertEqual(runs[0]["env"]["SMTPD_BODY"], "7BIT")

    def test_message_in_pieces(self):
        c = self.session()
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("DATA", DATA_354)
        for piece in (b"Sub", b"ject: x\r", b"\n\r\nbody\r\n.", b"x\r\n",
                      b"\r\n.", b"\r"):
            c.send(piece)
            c.assert_silent(0.05)
        c.send(b"\n")
        c.expect_match(OK_ID)
        runs = self.d.deliveries()
        self.assertEqual(runs[0]["data"],
                         b"Subject: x\r\n\r\nbody\r\nx\r\n\r\n")

    def test_large_message(self):
        c = self.session()
        line = b"0123456789" * 99 + b"\r\n"          # 992 octets
        raw = line * 1100                            # about 1 MB
        self.assertEqual(self.delivered(c, raw + b".\r\n"), raw)

    def test_envelope_reset_after_delivery(self):
        c = self.session()
        self.delivered(c, b"x\r\n.\r\n")
        c.check("RCPT TO:<b@example.com>", "503 Error: need MAIL command")
        c.check("DATA", "503 Error: need RCPT command")
        c.check("MAIL FROM:<a@example.com>", "250 OK")

    def test_eof_after_final_dot_delivers(self):
        c = self.session()
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("DATA", DATA_354)
        c.send(b"half-closed\r\n.\r\n")
        c.shutdown_write()
        c.expect_match(OK_ID)
        c.expect_closed()
        runs = self.d.deliveries()
        self.assertEqual([r["data"] for r in runs], [b"half-closed\r\n"])

    def test_eof_after_final_dot_without_reading(self):
        c = self.connect()
        c.send(b"EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>"
               b"\r\nDATA\r\ngone\r\n.\r\n")
        c.shutdown_write()              # EOF; the replies are never read
        runs = self.d.wait_deliveries(1)
        c.close()
        self.assertEqual([r["data"] for r in runs], [b"gone\r\n"])

    def test_eof_mid_data_delivers_nothing(self):
        c = self.session()
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("DATA", DATA_354)
        c.send(b"partial\r\nmessage\r\n")
        c.shutdown_write()
        c.expect_closed()
        # the session ended; a delivery would have happened before the close
        self.assertEqual(self.d.deliveries(), [])

    def test_eof_mid_data_after_dot_lf(self):
        c = self.session()
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("DATA", DATA_354)
        c.send(b"partial\r\n.\n")
        c.shutdown_write()
        c.expect_closed()
        self.assertEqual(self.d.deliveries(), [])

    def test_reset_mid_data_delivers_nothing(self):
        n = self.d.log().count("disconnect")
        c = self.session()
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("DATA", DATA_354)
        c.send(b"partial\r\nmessage\r\n")
        c.reset()
        self.assertTrue(self.d.wait_log("disconnect", n + 1),
                        "no disconnect logged after a reset")
        self.assertEqual(self.d.deliveries(), [])
        c2 = self.session()
        c2.check("NOOP", "250 OK")


class TestLimits(DataCase):
    CONFIG = RECORD + "\nreceived-header no\nmax-message-size 100"

    def test_ehlo_and_mail_size(self):
        c = self.connect()
        got = c.cmd("EHLO client.test")
        self.assertIn("250-SIZE 100", got.split("\n"))
        c.check("MAIL FROM:<a@example.com> SIZE=101",
                "552 Error: message size exceeds fixed maximum message size")
        c.check("MAIL FROM:<a@example.com> SIZE=100", "250 OK")

    def test_size_boundary(self):
        c = self.session()
        raw = b"a" * 98 + b"\r\n"                    # 100 octets
        self.assertEqual(self.delivered(c, raw + b".\r\n"), raw)
        self.d.clear_out()
        self.assertEqual(self.send_message(c, b"a" * 99 + b"\r\n.\r\n"),
                         TOO_MUCH)
        self.assertEqual(self.d.deliveries(), [])

    def test_size_counts_stuffing_dots(self):
        c = self.session()
        raw = b"." + b"a" * 97 + b"\r\n"             # 100 as received
        self.assertEqual(self.delivered(c, raw + b".\r\n"), raw[1:])
        self.d.clear_out()
        got = self.send_message(c, b".." + b"a" * 97 + b"\r\n.\r\n")
        self.assertEqual(got, TOO_MUCH)
        self.assertEqual(self.d.deliveries(), [])

    def test_nothing_sent_before_final_dot(self):
        c = self.session()
        c.check("MAIL FROM:<a@example.com>", "250 OK")
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("DATA", DATA_354)
        c.send(b"x" * 80 + b"\r\n")
        c.send((b"y" * 80 + b"\r\n") * 200)
        c.assert_silent(0.3)
        c.send(b"more\r\n.\r\n")
        c.expect(TOO_MUCH)
        self.assertEqual(self.d.deliveries(), [])

    def test_session_usable_after_552(self):
        c = self.session()
        self.assertEqual(self.send_message(c, b"z" * 500 + b"\r\n.\r\n"),
                         TOO_MUCH)
        c.check("RCPT TO:<b@example.com>", "503 Error: need MAIL command")
        c.check("MAIL FROM:<a@example.com>", "250 OK")   # EHLO kept
        c.check("RCPT TO:<b@example.com>", "250 OK")
        c.check("DATA", DATA_354)
        c.send(b"small\r\n.\r\n")
        c.expect_match(OK_ID)
        self.assertEqual([r["data"] for r in self.d.deliveries()],
                         [b"small\r\n"])

    def test_size_first_decides(self):
        c = self.session()
        raw = b"a" * 98 + b"\r\n" + b"b" * 10 + b"\r\n" + b"c" * 1500 + b"\r\n"
        self.assertEqual(self.send_message(c, raw + b".\r\n"), TOO_MUCH)
        self.assertEqual(self.d.deliveries(), [])


class TestLineLimit(DataCase):
    CONFIG = RECORD + "\nreceived-header no\nmax-message-size 4000"

    def test_line_boundary(self):
        c = self.session()
        raw = b"a" * 999 + b"\r\n"                   # 1001 octets: fine
        self.assertEqual(self.delivered(c, raw + b".\r\n"), raw)
        self.d.clear_out()
        got = self.send_message(c, b"a" * 1000 + b"\r\n.\r\n")
        self.assertEqual(got, LINE_LONG)
        self.assertEqual(self.d.deliveries(), [])

    def test_line_counts_stuffing_dot(self):
        c = self.session()
        raw = b"." + b"a" * 998 + b"\r\n"
        self.assertEqual(self.delivered(c, raw + b".\r\n"), raw[1:])
        self.d.clear_out()
        got = self.send_message(c, b"." + b"a" * 999 + b"\r\n.\r\n")
        self.assertEqual(got, LINE_LONG)

    def test_bare_lf_does_not_end_a_line(self):
        c = self.session()
        got = self.send_message(c, b"a" * 600 + b"\n" + b"b" * 600
                                + b"\r\n.\r\n")
        self.assertEqual(got, LINE_LONG)
        self.assertEqual(self.d.deliveries(), [])

    def test_long_line_first_decides(self):
        c = self.session()
        raw = b"L" * 1500 + b"\r\n" + (b"s" * 98 + b"\r\n") * 40
        self.assertEqual(self.send_message(c, raw + b".\r\n"), LINE_LONG)
        self.assertEqual(self.d.deliveries(), [])

    def test_long_line_crossing_size_in_same_line(self):
        # One 5000-octet line: the line limit is crossed at octet 1002,
        # the size limit (4000) only at octet 4001 of the same line.
        c = self.session()
        got = self.send_message(c, b"x" * 5000 + b"\r\n.\r\n")
        self.assertEqual(got, LINE_LONG)
        self.assertEqual(self.d.deliveries(), [])

    def test_size_first_decides(self):
        c = self.session()
        raw = (b"s" * 98 + b"\r\n") * 41 + b"L" * 1500 + b"\r\n"
        self.assertEqual(self.send_message(c, raw + b".\r\n"), TOO_MUCH)
        self.assertEqual(self.d.deliveries(), [])

    def test_session_usable_after_500(self):
        c = self.session()
        self.assertEqual(self.send_message(c, b"x" * 3000 + b"\r\n.\r\n"),
                         LINE_LONG)
        c.check("DATA", "503 Error: need RCPT command")
        self.assertEqual(self.delivered(c, b"ok\r\n.\r\n"), b"ok\r\n")

    def test_pipelined_after_long_line(self):
        c = self.session()
        c.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
               b"DATA\r\n" + b"x" * 3000 + b"\r\n.\r\nNOOP\r\n")
        c.expect("250 OK")
        c.expect("250 OK")
        c.expect(DATA_354)
        c.expect(LINE_LONG)
        c.expect("250 OK")


class TestReceived(DataCase):
    CONFIG = RECORD

    def test_received_header_first(self):
        c = self.session()
        msg = b"Subject: x\r\n\r\nhello\r\n"
        data = self.delivered(c, msg + b".\r\n")
        self.assertTrue(data.startswith(b"Received: "), data[:200])
        self.assertTrue(data.endswith(b"\r\n" + msg), data)
        # the Received header (with folding lines) comes right before msg
        head = data[:-len(msg)]
        lines = head.split(b"\r\n")[:-1]
        self.assertTrue(lines[0].startswith(b"Received: "))
        for line in lines[1:]:
            self.assertIn(line[:1], (b" ", b"\t"), head)
        self.assertIn(b"mx.test", head)
        self.assertIn(b"client.test", head)
        self.assertNotIn(b"\n", head.replace(b"\r\n", b""))


class TestNoDelayedAck(DataCase):
    CONFIG = "deliver discard"

    def test_final_dot_in_its_own_segment(self):
        # The client writes the text, then the final dot: with Nagle (no
        # TCP_NODELAY here) the dot waits for the ACK of the text, which
        # must not be a delayed ACK (40 ms).
        c = self.session()
        times = []
        for _ in range(5):
            c.check("MAIL FROM:<a@example.com>", "250 OK")
            c.check("RCPT TO:<b@example.com>", "250 OK")
            c.check("DATA", DATA_354)
            t0 = time.monotonic()
            c.send(b"Subject: x\r\n\r\n" + (b"y" * 70 + b"\r\n") * 40)
            c.send(b".\r\n")
            c.expect_match(OK_ID)
            times.append((time.monotonic() - t0) * 1000)
        self.assertLess(min(times), 20.0, times)


if __name__ == "__main__":
    unittest.main()
