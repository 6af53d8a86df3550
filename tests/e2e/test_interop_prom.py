"""prom.py itself: promtool's verdict on exposition texts, and a real
Prometheus (Debian's) scraping a small HTTP server made here."""

import http.server
import threading
import unittest

import prom

EXPOSITION = """\
# HELP demo_scrapes_total Scrapes served.
# TYPE demo_scrapes_total counter
demo_scrapes_total {n}
# HELP demo_build_info Build information.
# TYPE demo_build_info gauge
demo_build_info{{version="1.0"}} 1
"""


class MetricsServer:
    """GET /metrics on 127.0.0.1 (a port of its own): EXPOSITION, with
    demo_scrapes_total counting the requests."""

    def __init__(self):
        self.scrapes = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != "/metrics":
                    self.send_error(404)
                    return
                owner.scrapes += 1
                body = EXPOSITION.format(n=owner.scrapes).encode()
                self.send_response(200)
                self.send_header("Content-Type",
                                 "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@unittest.skipUnless(prom.available(),
                     "needs prometheus and promtool (contrib/deps.sh check)")
class TestPromtool(unittest.TestCase):
    def test_clean(self):
        ok, out = prom.promtool_check_metrics(EXPOSITION.format(n=3))
        self.assertTrue(ok, out)
        self.assertEqual(out, "")

    def test_lint_problem(self):
        ok, out = prom.promtool_check_metrics(
            "# HELP x Things.\n# TYPE x counter\nx 1\n")
        self.assertFalse(ok)
        self.assertIn('counter metrics should have "_total" suffix', out)

    def test_parse_error(self):
        ok, out = prom.promtool_check_metrics(b"x{ 1\n")
        self.assertFalse(ok)
        self.assertIn("parsing error", out)


@unittest.skipUnless(prom.available(),
                     "needs prometheus and promtool (contrib/deps.sh check)")
class TestPrometheusScrape(unittest.TestCase):
    def test_scrape(self):
        srv = MetricsServer()
        self.addCleanup(srv.close)
        p = prom.Prometheus("127.0.0.1:%d" % srv.port, job="demo")
        self.addCleanup(p.stop)
        p.start()
        self.assertEqual(p.wait_value('up{job="demo"}', lambda v: v == 1),
                         1.0, p.log())
        n = p.wait_value("demo_scrapes_total", lambda v: v >= 2)
        self.assertGreaterEqual(n, 2)
        self.assertLessEqual(n, srv.scrapes)
        got = p.query('demo_build_info{version="1.0"}')
        self.assertEqual(got[0]["metric"]["instance"],
                         "127.0.0.1:%d" % srv.port)
        self.assertEqual(p.value("demo_build_info"), 1.0)


if __name__ == "__main__":
    unittest.main()
