"""A real Prometheus server and promtool, for tests of a metrics endpoint.

    ok, out = promtool_check_metrics(text)   # "promtool check metrics"
    with Prometheus("127.0.0.1:%d" % port, tmpdir) as prom:  # started
        prom.wait_value('up{job="test"}', lambda v: v == 1)  # -> 1.0
        prom.query("up")      # the API's data.result: list of dicts
        prom.value("up")      # the first result's value as a float, or None

Prometheus runs with its own configuration and TSDB in a directory of its
own under tmpdir (or a new temp dir), listens on 127.0.0.1 on a free port
(.port, .url) and scrapes one target (host:port, metrics_path, job name
job) every second.  stop() ends it by PID and removes the directory.
The Debian package prometheus provides both programs (contrib/deps.sh);
available() says whether they are installed.
"""

import json
import os
import shutil
import subprocess
import urllib.parse
import urllib.request

from harness import Service, free_port, wait_for, wait_listening

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: {job}
    metrics_path: {path}
    static_configs:
      - targets: ["{target}"]
"""


def available():
    """True if prometheus and promtool are installed."""
    return os.access(PROMETHEUS, os.X_OK) and os.access(PROMTOOL, os.X_OK)


def promtool_check_metrics(text):
    """Lint an exposition text (str or bytes) with "promtool check
    metrics"; return (clean, promtool's output)."""
    if isinstance(text, str):
        text = text.encode()
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    return r.returncode == 0, r.stdout.decode("utf-8", "replace")


class Prometheus(Service):
    def __init__(self, target, tmpdir=None, metrics_path="/metrics",
                 job="test"):
        super().__init__("prometheus-", tmpdir)
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.conf = os.path.join(self.dir, "prometheus.yml")
        with open(self.conf, "w") as f:
            f.write(CONFIG.format(job=job, path=metrics_path,
                                  target=target))

    def _start(self, timeout=20.0):
        """Run Prometheus until its API is ready."""
        self.spawn([PROMETHEUS, "--config.file=" + self.conf,
                    "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
                    "--web.listen-address=127.0.0.1:%d" % self.port,
                    "--log.level=warn"], "prometheus.log")
        if not (wait_listening(self.port, self.proc, timeout)
                and wait_for(self._ready, timeout, 0.1)):
            raise RuntimeError("prometheus not ready (exit %s):\n%s"
                               % (self.proc.poll(), self.log()))

    def _ready(self):
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2):
                return True
        except OSError:
            return False

    def log(self):
        """What Prometheus printed (warnings and errors)."""
        return self.read("prometheus.log")

    def query(self, expr):
        """An instant query (/api/v1/query): the list data.result, each a
        dict with "metric" (labels) and "value" ([time, "value"])."""
        url = "%s/api/v1/query?%s" % (self.url,
                                      urllib.parse.urlencode({"query": expr}))
        with urllib.request.urlopen(url, timeout=5) as r:
            reply = json.load(r)
        if reply.get("status") != "success":
            raise RuntimeError("query %r: %r" % (expr, reply))
        return reply["data"]["result"]

    def value(self, expr):
        """The value of the query's first result as a float, or None."""
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def wait_value(self, expr, pred=lambda v: True, timeout=20.0):
        """Poll value(expr) until pred(value) holds; return the last value
        (check it: on timeout it is whatever was last seen)."""
        last = [None]

        def check():
            last[0] = self.value(expr)
            return last[0] is not None and pred(last[0])
        wait_for(check, timeout, 0.2)
        return last[0]
