#!/usr/bin/env python3
"""Run the end-to-end tests: python3 tests/e2e/run.py [NAME-FILTER...]

SMTPD (default build/smtpd) names the binary under test. Prints one line
per test and ends with "N passed, M failed" (", K skipped" if any); exits
non-zero on any failure. A filter keeps the tests whose id (module.Class.
method) contains it.
"""

import os
import sys
import time
import unittest

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
    keep = unittest.TestSuite()
    for t in iter_tests(suite):
        if any(w in t.id() for w in words):
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


def main(argv):
    os.chdir(os.path.dirname(os.path.dirname(HERE)))
    loader = unittest.TestLoader()
    suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    suite = filtered(suite, argv[1:])
    out = sys.stdout
    result = Result(out)
    t0 = time.monotonic()
    suite.run(result)
    for kind, items in (("FAIL", result.failures), ("ERROR", result.errors)):
        for test, tb in items:
            out.write("\n" + "=" * 70 + "\n%s: %s\n" % (kind, test.id())
                      + "-" * 70 + "\n" + tb)
    failed = result.nfailed
    tail = "%d passed, %d failed" % (result.npassed, failed)
    if result.nskipped:
        tail += ", %d skipped" % result.nskipped
    out.write("\n(%s: %.1fs)\n" % (os.environ.get("SMTPD", "build/smtpd"),
                                    time.monotonic() - t0))
    out.write(tail + "\n")
    out.flush()
    if result.testsRun == 0 and not failed:
        out.write("no tests ran\n")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
