#!/usr/bin/env python3
"""Run the end-to-end tests: python3 tests/e2e/run.py [-j N] [NAME-FILTER...]

SMTPD (default build/smtpd) names the binary under test. Prints one line
per test and ends with "N passed, M failed" (", K skipped" if any); exits
non-zero on any failure. A filter keeps the tests whose id (module.Class.
method) contains it; one that begins with "-" drops the tests whose id
contains the rest (after the others have chosen, or from all tests).

-j N runs N worker processes; each takes the next test module nobody has
claimed yet (a module always runs whole in one worker, so its fixtures and
the resources it shares between its classes, such as test_agents' user,
never meet a second copy).  The tests spend most of their time waiting on
the daemon's timers, so two workers on two CPUs halve the wall time.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

# Scheduling hint only: the longest modules are claimed first, so that no
# worker starts one of them when the others are nearly done.
LONGEST = ("test_auth", "test_faults", "test_master", "test_limits",
           "test_ops", "test_broker", "test_proxy", "test_tls", "test_lmtp")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


def filtered(suite, words):
    if not words:
        return suite
    want = [w for w in words if not w.startswith("-")]
    drop = [w[1:] for w in words if w.startswith("-")]
    keep = unittest.TestSuite()
    for t in iter_tests(suite):
        if ((not want or any(w in t.id() for w in want)) and
                not any(w in t.id() for w in drop)):
            keep.addTest(t)
    return keep


class Result(unittest.TestResult):
    """Counts tests (not subtests): a test fails if any part of it fails."""

    def __init__(self, stream):
        super().__init__()
        self.stream = stream
        self.npassed = 0
        self.nfailed = 0
        self.nskipped = 0
        self.t0 = 0.0
        self.outcome = None

    def startTest(self, test):
        super().startTest(test)
        self.t0 = time.monotonic()
        self.outcome = "ok"

    def stopTest(self, test):
        super().stopTest(test)
        dt = time.monotonic() - self.t0
        if self.outcome == "ok":
            self.npassed += 1
        elif self.outcome == "skip":
            self.nskipped += 1
        else:
            self.nfailed += 1
        self.stream.write("%-5s %s (%.2fs)\n" % (self.outcome, test.id(), dt))
        self.stream.flush()
        self.outcome = None

    def _fixture(self, test, word):
        # setUpClass / tearDownClass / module fixture failures: not inside
        # startTest/stopTest; count each as one failed test.
        self.nfailed += 1
        self.stream.write("%-5s %s\n" % (word, test.id()))
        self.stream.flush()

    def addFailure(self, test, err):
        super().addFailure(test, err)
        if self.outcome is None:
            self._fixture(test, "FAIL")
        else:
            self.outcome = "FAIL"

    def addError(self, test, err):
        super().addError(test, err)
        if self.outcome is None:
            self._fixture(test, "ERROR")
        elif self.outcome != "FAIL":
            self.outcome = "ERROR"

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        if self.outcome is None:
            self.nskipped += 1
            self.stream.write("skip  %s: %s\n" % (test.id(), reason))
        else:
            self.outcome = "skip"

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self.stream.write("  subtest failed: %s\n" % subtest.id())
            if self.outcome in ("ok", "skip"):
                self.outcome = "FAIL"

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.outcome = "FAIL"


def by_module(suite):
    """The tests grouped by module, the longest modules first."""
    groups = {}
    for t in iter_tests(suite):
        groups.setdefault(t.id().split(".")[0], []).append(t)
    rank = {m: i for i, m in enumerate(LONGEST)}
    return sorted(groups.items(), key=lambda g: rank.get(g[0], len(rank)))


def claim(directory, module):
    """True for the one worker that creates the module's claim file."""
    try:
        os.close(os.open(os.path.join(directory, "claim." + module),
                         os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        return True
    except FileExistsError:
        return False


def failures(result):
    text = ""
    for kind, items in (("FAIL", result.failures), ("ERROR", result.errors)):
        for test, tb in items:
            text += ("\n" + "=" * 70 + "\n%s: %s\n" % (kind, test.id())
                     + "-" * 70 + "\n" + tb)
    return text


def worker(directory, index, suite):
    """One of -j N: run the modules it claims; counts and failures go to
    files the parent adds up."""
    result = Result(sys.stdout)
    for module, tests in by_module(suite):
        if claim(directory, module):
            unittest.TestSuite(tests).run(result)
    with open(os.path.join(directory, "result.%d" % index), "w") as f:
        json.dump({"passed": result.npassed, "failed": result.nfailed,
                   "skipped": result.nskipped, "ran": result.testsRun,
                   "failures": failures(result)}, f)
    return 0


def parallel(jobs, words):
    """Start the workers, wait for all, and add up what they wrote."""
    directory = tempfile.mkdtemp(prefix="smtpd-e2e-")
    procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__),
                               "--worker", directory, str(i)] + words)
             for i in range(jobs)]
    total = {"passed": 0, "failed": 0, "skipped": 0, "ran": 0,
             "failures": ""}
    for i, p in enumerate(procs):
        p.wait()
        try:
            with open(os.path.join(directory, "result.%d" % i)) as f:
                part = json.load(f)
        except (OSError, ValueError):
            part = {"failed": 1, "failures": "\nworker %d exited with %d "
                    "before reporting\n" % (i, p.returncode)}
        for k, v in part.items():
            total[k] += v
    for name in os.listdir(directory):
        os.unlink(os.path.join(directory, name))
    os.rmdir(directory)
    return total


def serial(words):
    result = Result(sys.stdout)
    filtered(discover(), words).run(result)
    return {"passed": result.npassed, "failed": result.nfailed,
            "skipped": result.nskipped, "ran": result.testsRun,
            "failures": failures(result)}


def discover():
    loader = unittest.TestLoader()
    return loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)


def report(total, t0):
    out = sys.stdout
    out.write(total["failures"])
    tail = "%d passed, %d failed" % (total["passed"], total["failed"])
    if total["skipped"]:
        tail += ", %d skipped" % total["skipped"]
    out.write("\n(%s: %.1fs)\n" % (os.environ.get("SMTPD", "build/smtpd"),
                                    time.monotonic() - t0))
    out.write(tail + "\n")
    out.flush()
    if total["ran"] == 0 and not total["failed"]:
        out.write("no tests ran\n")
        return 1
    return 1 if total["failed"] else 0


def main(argv):
    os.chdir(os.path.dirname(os.path.dirname(HERE)))
    args = argv[1:]
    if args[:1] == ["--worker"]:
        return worker(args[1], int(args[2]), filtered(discover(), args[3:]))
    jobs = 1
    if args[:1] == ["-j"] and len(args) > 1:
        jobs = max(1, int(args[1]))
        args = args[2:]
    t0 = time.monotonic()
    total = parallel(jobs, args) if jobs > 1 else serial(args)
    return report(total, t0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
