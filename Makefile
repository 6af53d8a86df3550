# smtpd: GNU make on Linux (README, Platform).  `make run` and `make check` are the two
# commands of the README; both install missing Debian packages first.

PREFIX ?=	/usr/local
SYSCONFDIR ?=	$(PREFIX)/etc
SBINDIR ?=	$(PREFIX)/sbin
LIBEXECDIR ?=	$(PREFIX)/libexec/smtpd
MANDIR ?=	$(PREFIX)/share/man
DESTDIR ?=

CC ?=		cc
PKG_CONFIG ?=	pkg-config
BUILDDIR ?=	build
SAN ?=		0

# The flags a build needs are kept apart from the user's CPPFLAGS, CFLAGS,
# LDFLAGS and LDLIBS, which only add to them: `make CFLAGS=-g` keeps -std,
# the libbsd overlay and the pkg-config flags.  Every build turns an
# implicit declaration into an error (a libbsd function without its
# overlay header would be called as int f()); -Werror on every warning is
# for `make check` and CI (WERROR=-Werror), not for a user's compiler.
WARNINGS =	-Wall -Wextra -Wshadow -Wpointer-arith -Wcast-qual \
		-Wstrict-prototypes -Wmissing-prototypes \
		-Wmissing-declarations -Wwrite-strings -Wformat=2 \
		-Wformat-security -Wundef -Wvla -Wimplicit-fallthrough \
		-Wnull-dereference -Wold-style-definition \
		-Werror=implicit-function-declaration
WERROR ?=
HARDEN =	-fstack-protector-strong -fPIE
ifeq ($(SAN),1)
CFLAGS ?=	-O1 -g
SANFLAGS =	-fno-omit-frame-pointer \
		-fsanitize=address,undefined -fno-sanitize-recover=all
SANLD =		-fsanitize=address,undefined
MAILDIR_LDFLAGS = $(SMTPD_LDFLAGS)
MAILDIR_CC =	$(CC)
else
# _FORTIFY_SOURCE needs an optimizing build: it goes with -O2.
CFLAGS ?=	-O2 -g -D_FORTIFY_SOURCE=2
SANFLAGS =
SANLD =
MAILDIR_LDFLAGS = -static-pie -Wl,-z,relro,-z,now $(LDFLAGS)
# With musl (Debian's musl-tools) the program starts in a third of the
# time a static glibc one takes on this machine (glibc probes the CPU at
# every start); it is used when it is there.
MAILDIR_CC :=	$(shell command -v musl-gcc 2>/dev/null || echo $(CC))
endif

PKGS =		openssl libbsd-overlay libcrypt
SMTPD_CPPFLAGS = -I. -D_GNU_SOURCE -DSYSCONFDIR='"$(SYSCONFDIR)"' \
		-DLIBEXECDIR='"$(LIBEXECDIR)"' $(CPPFLAGS)
CFLAGS_BASE =	-std=c11 $(WARNINGS) $(WERROR) $(HARDEN) $(SANFLAGS)
SMTPD_CFLAGS =	$(CFLAGS_BASE) \
		$(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null) $(CFLAGS)
SMTPD_LDFLAGS =	-pie -Wl,-z,relro,-z,now $(SANLD) $(LDFLAGS)
SMTPD_LDLIBS =	$(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) $(LDLIBS)
CMOCKA_LIBS =	$(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null)

# Everything but main() links into the unit tests.
LIBSRCS =	addr.c anvil.c auth.c broker.c channel.c config.c content.c \
		control.c deliver.c exec.c load.c log.c metrics.c net.c os.c \
		policy.c progs.c proxy.c score.c session.c systemd.c tls.c \
		upgrade.c util.c
LIBOBJS =	$(LIBSRCS:%.c=$(BUILDDIR)/%.o)
# The longest first: tests/run-unit.sh runs them one per CPU at a time.
UNITTESTS =	test_deliver test_broker test_policy test_session test_tls \
		test_auth test_config test_ids test_channel test_addr \
		test_proxy test_content test_score test_sandbox
UNITBINS =	$(UNITTESTS:%=$(BUILDDIR)/tests/%)
CONTRIB =	$(BUILDDIR)/contrib/deliver-maildir
# The bench's clients (contrib/bench), built by make bench and make test.
BENCHDIR =	$(BUILDDIR)/contrib/bench
BENCHBINS =	$(BENCHDIR)/bdat-client $(BENCHDIR)/tls-client \
		$(BENCHDIR)/spawn-floor $(BENCHDIR)/switch-floor

.PHONY: all deps deps-check run check test unit e2e check-valgrind install \
	uninstall clean lint bench bench-tools soak check-upgrade

all: $(BUILDDIR)/smtpd $(CONTRIB)
	@if [ "$(BUILDDIR)" = build ]; then ln -sf build/smtpd smtpd; fi

deps:
	@sh contrib/deps.sh build

deps-check:
	@sh contrib/deps.sh check

$(BUILDDIR)/%.o: %.c smtpd.h internal.h
	@mkdir -p $(@D)
	$(CC) $(SMTPD_CPPFLAGS) $(SMTPD_CFLAGS) -c -o $@ $<

# The contrib programs use libc alone (no libbsd overlay).
$(BUILDDIR)/contrib/%.o: contrib/%.c
	@mkdir -p $(@D)
	$(MAILDIR_CC) -D_GNU_SOURCE $(CPPFLAGS) $(CFLAGS_BASE) $(CFLAGS) -c -o $@ $<

# The bench's clients: the system's compiler (tls-client needs OpenSSL's
# headers), the project's warnings; benchio.o is what they share.
$(BENCHDIR)/%.o: contrib/bench/%.c contrib/bench/benchio.h
	@mkdir -p $(@D)
	$(CC) -D_GNU_SOURCE $(CPPFLAGS) $(CFLAGS_BASE) \
	    $(shell $(PKG_CONFIG) --cflags openssl 2>/dev/null) $(CFLAGS) \
	    -c -o $@ $<

$(BENCHDIR)/tls-client: $(BENCHDIR)/tls-client.o $(BENCHDIR)/benchio.o
	$(CC) $(SMTPD_LDFLAGS) -o $@ $^ \
	    $(shell $(PKG_CONFIG) --libs openssl 2>/dev/null)

# switch-floor's rings of threads: -pthread, which older C libraries need.
$(BENCHDIR)/switch-floor: $(BENCHDIR)/switch-floor.o $(BENCHDIR)/benchio.o
	$(CC) $(SMTPD_LDFLAGS) -pthread -o $@ $^

$(BENCHDIR)/%: $(BENCHDIR)/%.o $(BENCHDIR)/benchio.o
	$(CC) $(SMTPD_LDFLAGS) -o $@ $^

bench-tools: $(BENCHBINS)
.PRECIOUS: $(BENCHDIR)/%.o

$(BUILDDIR)/smtpd: $(BUILDDIR)/smtpd.o $(LIBOBJS)
	$(CC) $(SMTPD_LDFLAGS) -o $@ $^ $(SMTPD_LDLIBS)

# A static program starts faster: smtpd runs it once per message, and the
# dynamic loader's start-up was most of its cost (make bench).  It needs
# nothing but libc.
$(BUILDDIR)/contrib/deliver-maildir: $(BUILDDIR)/contrib/deliver-maildir.o
	$(MAILDIR_CC) $(MAILDIR_LDFLAGS) -o $@ $^

$(BUILDDIR)/tests/%: $(BUILDDIR)/tests/%.o $(BUILDDIR)/tests/testlib.o $(LIBOBJS)
	$(CC) $(SMTPD_LDFLAGS) -o $@ $^ $(SMTPD_LDLIBS) $(CMOCKA_LIBS)

run: deps
	$(MAKE) all
	./build/smtpd -d

# The unit and end-to-end tests of one build (BUILDDIR, SAN).
test: all $(UNITBINS) $(BENCHBINS)
	@sh tests/run-unit.sh $(BUILDDIR) $(UNITTESTS)
	@sh tests/test_maildir.sh $(CONTRIB)
	@sh tests/test_manuals.sh
	@SMTPD=$(BUILDDIR)/smtpd DELIVER_MAILDIR=$(CONTRIB) \
	    python3 tests/e2e/run.py -j $(E2E_JOBS)

# The builds use every CPU, and so do the end-to-end tests: E2E_JOBS
# workers, each running whole test modules (tests/e2e/run.py -j), one
# more than there are CPUs, since many tests spend most of their time
# waiting for one of the daemon's timeouts (test_auth's late verdict,
# 50 s): on 2 CPUs, 3 workers took the two runs from 200 and 275 s to
# 140 and 219.
CHECK_JOBS ?=	$(shell getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
E2E_JOBS ?=	$(shell expr $(CHECK_JOBS) + 1)
check: deps-check
	$(MAKE) -j$(CHECK_JOBS) test BUILDDIR=build SAN=0 WERROR=-Werror
	$(MAKE) -j$(CHECK_JOBS) test BUILDDIR=build-asan SAN=1 WERROR=-Werror
	$(MAKE) -j$(CHECK_JOBS) fuzz-check WERROR=-Werror
	@sh tests/test_build.sh
	@sh tests/test_install.sh
	@if command -v mandoc >/dev/null; then \
	    mandoc -Tlint -W warning smtpd.8 smtpd.conf.5 && \
	    echo "mandoc -Tlint: clean"; fi

# smtpd against Postfix's smtp-sink driven by smtp-source, the spawn floor
# of a delivery program, BDAT against DATA, and STARTTLS sessions against a
# private Postfix (installs the postfix package when missing, without
# starting it); see contrib/bench/bench.sh.  BENCH_ONLY="tls bdat" runs a
# part.
bench: $(BUILDDIR)/smtpd $(CONTRIB) $(BENCHBINS)
	@SMTPD=$(BUILDDIR)/smtpd DELIVER_MAILDIR=$(CONTRIB) \
	    BENCH_BIN=$(BENCHDIR) sh contrib/bench/bench.sh

# 1000 concurrent sessions for SOAK_SECONDS (default 600) into a Maildir
# on /dev/shm: every acknowledged message delivered once, RSS, processes,
# zombies and the master's descriptors sampled; see tests/soak.py.
SOAK_SECONDS ?=	600
soak: $(BUILDDIR)/smtpd $(CONTRIB)
	@SMTPD=$(BUILDDIR)/smtpd DELIVER_MAILDIR=$(CONTRIB) \
	    SOAK_SECONDS=$(SOAK_SECONDS) python3 tests/soak.py

# The binary replaced under load: 20 busy sessions, SIGUSR2 three times
# during UPGRADE_SECONDS (default 20); no connection refused, no session
# failed, every acknowledged message delivered once; see
# tests/upgrade_load.py.
UPGRADE_SECONDS ?= 20
check-upgrade: $(BUILDDIR)/smtpd $(CONTRIB)
	@SMTPD=$(BUILDDIR)/smtpd DELIVER_MAILDIR=$(CONTRIB) \
	    UPGRADE_SECONDS=$(UPGRADE_SECONDS) python3 tests/upgrade_load.py

# A racer as nobody swaps a UNIX listener's socket for a link to a file
# of root's while smtpd (as root) starts RACER_STARTS (300) times: the file
# must never change; see tests/racer.py.
RACER_STARTS ?=	300
racer: $(BUILDDIR)/smtpd
	@SMTPD=$(BUILDDIR)/smtpd RACER_STARTS=$(RACER_STARTS) \
	    python3 tests/racer.py

# Full plain, STARTTLS+AUTH and implicit-TLS sessions, and the end-to-end
# tests that are not bound to timing, under valgrind.
check-valgrind: all
	@sh tests/valgrind.sh build/smtpd
	@sh tests/valgrind-e2e.sh build/smtpd

# The program's sources (smtpd and contrib), not the tests: cmocka's
# fail_msg() is not marked noreturn, which floods both tools with false
# null dereferences in tests/.
#  cppcheck: sys/queue.h is libbsd's (the build's -isystem /usr/include/bsd
#    -DLIBBSD_OVERLAY); --include gives cppcheck its TAILQ macros without
#    parsing every system header.  Suppressed, checked by hand:
#    getpwnamCalled, getgrnamCalled  "not thread-safe, use getpwnam_r":
#      smtpd has no threads, and each result is used before the next call.
#  scan-build: the whole build (BUILDDIR in a temp folder) under the clang
#    analyzer with --status-bugs.  A finding fails the target unless it is
#    one of LINT_SCAN_FP, "file:function:bug type" of the reports that were
#    checked to be false positives:
#    smtpd.c:master_shutdown_done:Use-after-free  the analyzer cannot see
#      that TAILQ_REMOVE() updates the head through tqe_prev, so it takes
#      TAILQ_FIRST() after pool_remove() for the freed element;
#    deliver.c:deliver_spawn:Argument with 'nonnull' attribute passed null
#      argv[0] is c_deliver_argv[0], which config.c guarantees is an
#      absolute path (an empty deliver string or one starting with %{...}
#      is a configuration error).
LINT_SRCS =	$(LIBSRCS) smtpd.c contrib/deliver-maildir.c \
		$(wildcard contrib/bench/*.c)
LINT_SCAN_FP =	"smtpd.c:master_shutdown_done:Use-after-free" \
		"deliver.c:deliver_spawn:Argument with 'nonnull' attribute passed null"
lint:
	mandoc -Tlint -W warning smtpd.8 smtpd.conf.5
	cppcheck --quiet --enable=warning,portability --error-exitcode=1 \
	    --library=posix,gnu,bsd,openssl -D__GNUC__ -D_GNU_SOURCE -I. \
	    --include=/usr/include/bsd/sys/queue.h \
	    --suppress=getpwnamCalled --suppress=getgrnamCalled \
	    --inline-suppr $(LINT_SRCS)
	@command -v scan-build >/dev/null || \
	    { [ "$$(id -u)" = 0 ] && apt-get install -y -qq clang-tools; } || \
	    { echo "lint: scan-build missing: apt-get install clang-tools"; \
	    exit 1; }
	@t=$$(mktemp -d "$${TMPDIR:-/tmp}/smtpd-lint.XXXXXX") || exit 1; \
	echo "scan-build --status-bugs: build in $$t"; \
	scan-build --status-bugs -o $$t/report \
	    $(MAKE) -s BUILDDIR=$$t/build all >$$t/scan.log 2>&1; st=$$?; \
	grep -v '^scan-build: \(Using\|Run\|Removing\)' $$t/scan.log; \
	if [ $$st -ne 0 ]; then \
	    if ! ls $$t/report/*/report-*.html >/dev/null 2>&1; then \
	        echo "lint: scan-build failed (no reports): $$t"; exit 1; fi; \
	    left=0; \
	    for r in $$t/report/*/report-*.html; do \
	        k=$$(sed -n 's/^<!-- BUGFILE .*\/\([^/]*\) -->$$/\1/p; \
	            s/^<!-- FUNCTIONNAME \(.*\) -->$$/\1/p; \
	            s/^<!-- BUGTYPE \(.*\) -->$$/\1/p' "$$r" | \
	            awk 'NR==1{t=$$0} NR==2{f=$$0} NR==3{print f ":" $$0 ":" t}'); \
	        known=0; \
	        for fp in $(LINT_SCAN_FP); do \
	            [ "$$k" = "$$fp" ] && known=1; done; \
	        if [ $$known = 1 ]; then echo "known false positive: $$k"; \
	        else echo "FINDING: $$k ($$r)"; left=1; fi; \
	    done; \
	    if [ $$left = 1 ]; then echo "lint: scan-build findings in $$t"; \
	        exit 1; fi; \
	fi; \
	rm -rf $$t; echo "lint: clean"

# libFuzzer harnesses tests/fuzz/fuzz_NAME.c, one per parser (they need clang
# and libclang-rt).  Each links the sources it names in
# FUZZ_SRCS_fuzz_NAME (default: all of LIBSRCS); `fuzz-run` runs each for
# FUZZ_SECONDS on its seed corpus tests/fuzz/corpus/NAME (inputs of at most
# FUZZ_MAXLEN octets), writing what it finds under build-fuzz/ so the seeds
# stay as committed.
FUZZCC ?=	clang
FUZZDIR =	build-fuzz
FUZZ_SECONDS ?=	10
FUZZ_MAXLEN ?=	8192
FUZZFLAGS =	-g -O1 -fno-omit-frame-pointer \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZERS =	$(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SRCS_fuzz_proxy =	proxy.c
FUZZ_SRCS_fuzz_addr =	addr.c
# These include the .c file whose static functions they call.
FUZZ_SRCS_fuzz_data =	$(filter-out session.c,$(LIBSRCS))
FUZZ_SRCS_fuzz_deliver = $(filter-out deliver.c,$(LIBSRCS))

FUZZOBJ =	$(FUZZDIR)/obj
FUZZ_CFLAGS =	$(SMTPD_CPPFLAGS) -std=c11 $(FUZZFLAGS) $(WARNINGS) $(WERROR) \
		$(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)

.PHONY: fuzz fuzz-run fuzz-check

fuzz: $(FUZZERS:%=$(FUZZDIR)/%)

# The sources are compiled once for all the harnesses, and kept.
.SECONDARY: $(LIBSRCS:%.c=$(FUZZOBJ)/%.o)
$(FUZZOBJ)/%.o: %.c smtpd.h internal.h
	@mkdir -p $(@D)
	$(FUZZCC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZDIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h \
    $(LIBSRCS:%.c=$(FUZZOBJ)/%.o) smtpd.h internal.h
	@mkdir -p $(@D)
	$(FUZZCC) $(FUZZ_CFLAGS) -o $@ $< $(patsubst %.c,$(FUZZOBJ)/%.o, \
	    $(or $(FUZZ_SRCS_fuzz_$*),$(LIBSRCS))) $(SMTPD_LDLIBS)

# `fuzz-check` (called by `make check`): every harness FUZZ_CHECK_SECONDS
# (2), failing on any finding; `fuzz-run` is the longer run.
# tests/fuzz/run.sh also replays tests/fuzz/regress/.
FUZZ_CHECK_SECONDS ?= 2
fuzz-run: fuzz
	@sh tests/fuzz/run.sh $(FUZZDIR) $(FUZZ_SECONDS) $(FUZZ_MAXLEN) \
	    $(FUZZERS)

fuzz-check: fuzz
	@sh tests/fuzz/run.sh $(FUZZDIR) $(FUZZ_CHECK_SECONDS) $(FUZZ_MAXLEN) \
	    $(FUZZERS)

# Installation.  The configuration and libexec paths are compiled in
# (smtpd.h), so every object depends on $(BUILDDIR)/.paths, which changes
# only when they do: `make install' rebuilds `all' with its own PREFIX,
# SYSCONFDIR ..., and a build with other paths is redone first.  Give the
# build and `make install' the same variables (or none to the build), e.g.
#	make PREFIX=/usr SYSCONFDIR=/etc && make install PREFIX=/usr SYSCONFDIR=/etc
# The example configuration becomes $(SYSCONFDIR)/smtpd.conf only when
# there is none; `make uninstall' removes it only when it is unedited.
# SYSTEMDUNITDIR (e.g. /lib/systemd/system, or $(PREFIX)/lib/systemd/system)
# installs contrib/systemd/smtpd.service and smtpd.socket; empty (the
# default): no unit.
# The installed manuals, example and unit name the installed paths.
SYSTEMDUNITDIR ?=
PATHSTAMP =	$(BUILDDIR)/.paths
INSTDIR =	$(BUILDDIR)/install
INSTALL_SED =	sed -e 's|/usr/local/etc|$(SYSCONFDIR)|g' \
		    -e 's|/usr/local/libexec/smtpd|$(LIBEXECDIR)|g' \
		    -e 's|/usr/local/sbin|$(SBINDIR)|g'
INSTFILES =	$(INSTDIR)/smtpd.8 $(INSTDIR)/smtpd.conf.5 \
		$(INSTDIR)/smtpd.conf $(INSTDIR)/smtpd.service \
		$(INSTDIR)/smtpd.socket

.PHONY: check-install FORCE

$(PATHSTAMP): FORCE
	@mkdir -p $(@D)
	@p='$(SBINDIR) $(SYSCONFDIR) $(LIBEXECDIR)'; \
	    if [ "$$(cat $@ 2>/dev/null)" != "$$p" ]; then \
	        echo "$$p" >$@; fi

$(BUILDDIR)/smtpd.o $(LIBOBJS): $(PATHSTAMP)

# The same for the compiler flags: a build with other flags (WERROR of
# `make check`, a user's CFLAGS) recompiles everything in its BUILDDIR.
FLAGSTAMP =	$(BUILDDIR)/.flags
FLAGS_KEY =	$(subst ',,$(subst ",,$(CC) $(SMTPD_CPPFLAGS) $(SMTPD_CFLAGS) \
		$(MAILDIR_CC)))
$(FLAGSTAMP): FORCE
	@mkdir -p $(@D)
	@p='$(FLAGS_KEY)'; \
	    if [ "$$(cat $@ 2>/dev/null)" != "$$p" ]; then \
	        echo "$$p" >$@; fi

$(BUILDDIR)/smtpd.o $(LIBOBJS) $(UNITBINS:%=%.o) $(BUILDDIR)/tests/testlib.o \
    $(BUILDDIR)/contrib/deliver-maildir.o: $(FLAGSTAMP)

$(INSTDIR)/smtpd.8: smtpd.8 $(PATHSTAMP)
$(INSTDIR)/smtpd.conf.5: smtpd.conf.5 $(PATHSTAMP)
$(INSTDIR)/smtpd.conf: contrib/smtpd.conf.example $(PATHSTAMP)
$(INSTDIR)/smtpd.service: contrib/systemd/smtpd.service $(PATHSTAMP)
$(INSTDIR)/smtpd.socket: contrib/systemd/smtpd.socket $(PATHSTAMP)
$(INSTFILES):
	@mkdir -p $(@D)
	$(INSTALL_SED) $< >$@

install: all $(INSTFILES)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBEXECDIR) \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(SYSCONFDIR)
	install -m 0755 $(BUILDDIR)/smtpd $(DESTDIR)$(SBINDIR)/smtpd
	install -m 0755 $(CONTRIB) $(DESTDIR)$(LIBEXECDIR)/deliver-maildir
	install -m 0644 $(INSTDIR)/smtpd.8 $(DESTDIR)$(MANDIR)/man8/smtpd.8
	install -m 0644 $(INSTDIR)/smtpd.conf.5 \
	    $(DESTDIR)$(MANDIR)/man5/smtpd.conf.5
	@f=$(DESTDIR)$(SYSCONFDIR)/smtpd.conf; \
	if [ -e "$$f" ] || [ -L "$$f" ]; then \
	    echo "keeping the existing $$f"; \
	else \
	    echo "install -m 0644 $(INSTDIR)/smtpd.conf $$f"; \
	    install -m 0644 $(INSTDIR)/smtpd.conf "$$f" || exit 1; fi
	@if [ -n "$(SYSTEMDUNITDIR)" ]; then \
	    install -d $(DESTDIR)$(SYSTEMDUNITDIR) || exit 1; \
	    for u in smtpd.service smtpd.socket; do \
	        echo "install -m 0644 $(INSTDIR)/$$u" \
	            "$(DESTDIR)$(SYSTEMDUNITDIR)/$$u"; \
	        install -m 0644 $(INSTDIR)/$$u \
	            "$(DESTDIR)$(SYSTEMDUNITDIR)/$$u" || exit 1; \
	    done; fi
	@# The sessions' and the delivery program's users, on this system
	@# only (not into a DESTDIR), when missing; uninstall keeps them.
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then \
	    sh=$$(command -v nologin || echo /bin/false); \
	    for u in _smtpd _smtpd-deliver; do \
	    getent passwd $$u >/dev/null && continue; \
	    echo "useradd --system --user-group $$u"; \
	    useradd --system --user-group --home-dir /nonexistent \
	        --no-create-home --shell "$$sh" $$u || exit 1; done; fi

uninstall: $(INSTDIR)/smtpd.conf
	rm -f $(DESTDIR)$(SBINDIR)/smtpd \
	    $(DESTDIR)$(LIBEXECDIR)/deliver-maildir \
	    $(DESTDIR)$(MANDIR)/man8/smtpd.8 \
	    $(DESTDIR)$(MANDIR)/man5/smtpd.conf.5
	@if [ -n "$(SYSTEMDUNITDIR)" ]; then \
	    echo "rm -f $(DESTDIR)$(SYSTEMDUNITDIR)/smtpd.service" \
	        "$(DESTDIR)$(SYSTEMDUNITDIR)/smtpd.socket"; \
	    rm -f $(DESTDIR)$(SYSTEMDUNITDIR)/smtpd.service \
	        $(DESTDIR)$(SYSTEMDUNITDIR)/smtpd.socket; fi
	@rmdir $(DESTDIR)$(LIBEXECDIR) 2>/dev/null || true
	@f=$(DESTDIR)$(SYSCONFDIR)/smtpd.conf; \
	if cmp -s $(INSTDIR)/smtpd.conf "$$f"; then \
	    echo "rm -f $$f"; rm -f "$$f"; \
	elif [ -e "$$f" ]; then \
	    echo "keeping the edited $$f"; fi

# tests/test_install.sh: install, uninstall and the service scripts, in a
# temporary DESTDIR.
check-install: all
	@sh tests/test_install.sh

clean:
	rm -rf build build-asan build-fuzz smtpd
