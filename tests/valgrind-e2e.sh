#!/bin/sh
# End-to-end test modules with every smtpd (master, children) under
# valgrind: no memory error, no definite leak.  The timing-bound modules
# (timeouts, faults, master limits) are left out: valgrind is slow.  So
# is test_broker, which looks at the processes' names and descriptors,
# which valgrind changes; the broker itself runs under valgrind in every
# module that delivers or authenticates.
# Within those modules, the tests that wait a few seconds for a reload,
# a shutdown or a new pool are left out (VG_SKIP): under valgrind these
# take longer than the tests wait; test_master's (whose names contain
# "test_delivery") likewise.  So are the tests of checkpassword programs
# left behind: valgrind (3.19) does not know pidfd_open nor
# pidfd_send_signal, so under it such programs are not counted, as on a
# kernel without pidfds (smtpd.conf.5).
# Usage: sh tests/valgrind-e2e.sh [build/smtpd]; VG_MODULES="test_bdat"
# runs some modules only.
# Word splitting of the module list and of the file list is intended.
# shellcheck disable=SC2086,SC2012
set -u
smtpd=${1:-build/smtpd}
command -v valgrind >/dev/null || { echo "valgrind: not installed"; exit 1; }
logs=$(mktemp -d /tmp/smtpd-vge.XXXXXX)
chmod 1777 "$logs"
trap 'rm -rf "$logs"' EXIT
SMTPD_WRAPPER="valgrind -q --vgdb=no --trace-children=yes \
--trace-children-skip=*/python3*,*/sh,*/bash,*recorder.py --leak-check=full \
--errors-for-leak-kinds=definite --log-file=$logs/vg.%p" \
    SMTPD=$smtpd python3 tests/e2e/run.py ${VG_MODULES:-test_commands \
    test_addresses test_data test_pipelining test_lmtp test_auth \
    test_bare_newline test_bdat test_enhanced test_ops test_delivery \
    test_policy test_proxy test_lines test_unix_sockets test_lmtp_unix \
    test_tls} ${VG_SKIP:--test_master. -test_ops.TestControlPath \
    -test_ops.TestStatus.test_counters_survive_reload \
    -test_proxy.TestProxyShutdown -test_tls.TestCertRotation \
    -test_tls.TestShutdownOverTls -test_tls.TestTicketKeyRotation \
    -test_tls.TestTicketKeysFailedReload \
    -test_unix_sockets.TestUnixSocketReload \
    -test_auth.TestStuckCheckpassword}
rc=$?
bad=$(grep -l "ERROR SUMMARY: [1-9]\|definitely lost: [1-9]\|^==[0-9]*== [A-Z]" \
    "$logs"/vg.* 2>/dev/null)
if [ -n "$bad" ]; then
	cat $bad
	echo "valgrind-e2e: 0 passed, 1 failed"
	exit 1
fi
echo "valgrind-e2e: $(ls "$logs" | wc -l) valgrind logs clean"
exit $rc
