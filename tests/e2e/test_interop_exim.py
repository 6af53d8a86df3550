"""Exim 4.96 (Debian, unpacked: exim.py) as a sending client.

Against a small server made here that offers CHUNKING (RFC 3030), Exim
sends the message with BDAT and logs K; without CHUNKING it uses DATA.
Against smtpd, plain and with STARTTLS, the message arrives intact, and
Exim uses BDAT exactly when smtpd's EHLO offers CHUNKING."""

import re
import socket
import threading
import unittest

import certs
import exim
from harness import (RECORD, Smtpd, sample_message, strip_all_received,
                     wait_for)

RCPTS = ["a@example.com", "b@example.org"]
SENDER = "s@example.com"


class ChunkingServer:
    """A minimal ESMTP server on 127.0.0.1 (a port of its own): EHLO
    offers PIPELINING and, with chunking=True, CHUNKING; it accepts every
    MAIL and RCPT, DATA and BDAT.  .messages: dicts sender, rcpts, data,
    via ("DATA" or "BDAT") and chunks (the BDAT sizes)."""

    def __init__(self, chunking=True):
        self.chunking = chunking
        self.messages = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def close(self):
        # shutdown() wakes the thread blocked in accept(); close() alone
        # would not.
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        for t in self.threads:
            t.join(5)

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            t = threading.Thread(target=self._session, args=(conn,),
                                 daemon=True)
            self.threads.append(t)
            t.start()

    def _session(self, conn):
        conn.settimeout(10)
        with conn, conn.makefile("rb") as rf:
            conn.sendall(b"220 chunky.test ESMTP\r\n")
            tx = None
            while True:
                line = rf.readline()
                if not line:
                    return
                reply, tx = self._command(line.rstrip(b"\r\n"), tx,
                                          conn, rf)
                conn.sendall(reply.encode() + b"\r\n")
                if reply.startswith("221"):
                    return

    def _command(self, line, tx, conn, rf):
        verb, _, arg = line.decode("ascii", "replace").partition(" ")
        verb = verb.upper()
        if verb == "EHLO":
            caps = ["PIPELINING", "8BITMIME"]
            if self.chunking:
                caps.append("CHUNKING")
            return "250-chunky.test\r\n" + "\r\n".join(
                ("250-" if i < len(caps) - 1 else "250 ") + c
                for i, c in enumerate(caps)), None
        if verb == "MAIL":
            sender = arg.split("<", 1)[1].split(">", 1)[0]
            return "250 OK", {"sender": sender, "rcpts": [], "data": b"",
                              "via": None, "chunks": []}
        if verb == "RCPT" and tx is not None:
            tx["rcpts"].append(arg.split("<", 1)[1].split(">", 1)[0])
            return "250 OK", tx
        if verb == "DATA" and tx is not None and tx["rcpts"]:
            conn.sendall(b"354 Go ahead\r\n")
            return self._data(tx, rf)
        if verb == "BDAT" and tx is not None and tx["rcpts"]:
            return self._bdat(tx, arg.split(), rf)
        if verb in ("RSET", "NOOP"):
            return "250 OK", None if verb == "RSET" else tx
        if verb == "QUIT":
            return "221 Bye", None
        return "503 Bad sequence of commands", tx

    def _data(self, tx, rf):
        lines = []
        while True:
            line = rf.readline()
            if line in (b".\r\n", b""):
                break
            lines.append(line[1:] if line.startswith(b".") else line)
        tx["data"], tx["via"] = b"".join(lines), "DATA"
        self.messages.append(tx)
        return "250 OK queued", None

    def _bdat(self, tx, args, rf):
        size = int(args[0])
        tx["data"] += rf.read(size)
        tx["chunks"].append(size)
        if len(args) > 1 and args[1].upper() == "LAST":
            tx["via"] = "BDAT"
            self.messages.append(tx)
            return "250 OK queued", None
        return "250 OK chunk", tx


@unittest.skipUnless(exim.available(),
                     "needs root, Exim unpacked and user Debian-exim "
                     "(contrib/deps.sh check)")
class TestEximModule(unittest.TestCase):
    """exim.py itself, against ChunkingServer."""

    def send(self, chunking):
        srv = ChunkingServer(chunking)
        self.addCleanup(srv.close)
        msg = sample_message(1 << 20, SENDER, RCPTS, "exim")
        log = exim.exim_send("127.0.0.1", srv.port, SENDER, RCPTS, msg)
        wait_for(lambda: srv.messages, 5)
        self.assertEqual(len(srv.messages), 1, log)
        got = srv.messages[0]
        self.assertEqual(got["sender"], SENDER)
        self.assertEqual(got["rcpts"], RCPTS)
        self.assertTrue(strip_all_received(got["data"]) == msg,
                        "message changed on the way")
        self.assertEqual([x["rcpt"] for x in exim.deliveries(log)], RCPTS)
        return got, log

    def test_bdat_when_chunking_offered(self):
        got, log = self.send(True)
        self.assertEqual(got["via"], "BDAT")
        self.assertTrue(exim.used_chunking(log), log)
        self.assertRegex(log, r"=> a@example\.com .* K C=\"250 OK queued\"")

    def test_data_without_chunking(self):
        got, log = self.send(False)
        self.assertEqual(got["via"], "DATA")
        self.assertFalse(any(x["chunking"] for x in exim.deliveries(log)))


@unittest.skipUnless(exim.available(),
                     "needs root, Exim unpacked and user Debian-exim "
                     "(contrib/deps.sh check)")
class TestEximToSmtpd(unittest.TestCase):
    """Exim delivers one 1 MiB message with two recipients to smtpd."""

    @classmethod
    def setUpClass(cls):
        cls.msg = sample_message(1 << 20, SENDER, RCPTS, "exim")
        d = Smtpd("", start=False, listen_opts="starttls")
        try:
            cert, key, _ = certs.server_cert(d.tmp)
            d.write_config(RECORD + "\ntls certificate %s key %s"
                           % (cert, key))
            d.start()
            c = d.connect()
            cls.ehlo = c.cmd("EHLO client.test")
            c.close()
        except BaseException:
            d.cleanup()
            raise
        cls.d = d

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()

    def setUp(self):
        self.d.clear_out()

    def send(self, tls):
        log = exim.exim_send("127.0.0.1", self.d.port, SENDER, RCPTS,
                             self.msg, self.d.tmp, tls=tls)
        runs = self.d.wait_deliveries(1)
        self.assertEqual(len(runs), 1, log)
        self.assertEqual(runs[0]["argv"], [SENDER] + RCPTS)
        self.assertTrue(strip_all_received(runs[0]["data"]) == self.msg,
                        "message changed on the way")
        found = exim.deliveries(log)
        self.assertEqual([x["rcpt"] for x in found], RCPTS, log)
        offered = any(l[4:] == "CHUNKING" for l in self.ehlo.split("\n"))
        self.assertEqual(exim.used_chunking(log), offered, log)
        # smtpd's own log says the message came in BDAT chunks.
        bdat = self.d.wait_log(r" message %s via=BDAT chunks=\d+ size=\d+\n"
                               % re.escape(runs[0]["env"]["SMTPD_ID"]))
        self.assertEqual(bool(bdat), offered, self.d.log()[-2000:])
        return runs[0], found

    def test_plain(self):
        run, found = self.send(False)
        self.assertEqual(run["env"]["SMTPD_TLS"], "")
        self.assertEqual({x["tls"] for x in found}, {None})

    def test_starttls(self):
        run, found = self.send(True)
        self.assertRegex(run["env"]["SMTPD_TLS"], r"^TLSv1\.[23] ")
        self.assertNotIn(None, {x["tls"] for x in found})


if __name__ == "__main__":
    unittest.main()
