# smtpd: portable GNU make.  `make run` and `make check` are the two
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

WARNINGS =	-Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wcast-qual \
		-Wstrict-prototypes -Wmissing-prototypes \
		-Wmissing-declarations -Wwrite-strings -Wformat=2 \
		-Wformat-security -Wundef -Wvla -Wimplicit-fallthrough \
		-Wnull-dereference -Wold-style-definition
HARDEN =	-fstack-protector-strong -fPIE
ifeq ($(SAN),1)
OPT =		-O1 -g -fno-omit-frame-pointer \
		-fsanitize=address,undefined -fno-sanitize-recover=all
SANLD =		-fsanitize=address,undefined
MAILDIR_LDFLAGS = $(LDFLAGS)
else
OPT =		-O2 -g -D_FORTIFY_SOURCE=2
SANLD =
MAILDIR_LDFLAGS = -static-pie -Wl,-z,relro,-z,now
endif

PKGS =		openssl libbsd-overlay libcrypt
CPPFLAGS +=	-I. -D_GNU_SOURCE -DSYSCONFDIR='"$(SYSCONFDIR)"' \
		-DLIBEXECDIR='"$(LIBEXECDIR)"'
CFLAGS_BASE =	-std=c11 $(OPT) $(WARNINGS) $(HARDEN)
CFLAGS +=	$(CFLAGS_BASE) \
		$(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
LDFLAGS +=	-pie -Wl,-z,relro,-z,now $(SANLD)
LDLIBS +=	$(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS =	$(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null)

# Everything but main() links into the unit tests.
LIBSRCS =	addr.c auth.c config.c deliver.c log.c policy.c proxy.c session.c \
		tls.c util.c
LIBOBJS =	$(LIBSRCS:%.c=$(BUILDDIR)/%.o)
UNITTESTS =	test_addr test_config test_session test_deliver test_tls test_proxy test_auth test_policy
UNITBINS =	$(UNITTESTS:%=$(BUILDDIR)/tests/%)
CONTRIB =	$(BUILDDIR)/contrib/deliver-maildir

.PHONY: all deps deps-check run check test unit e2e check-valgrind install \
	uninstall clean lint bench soak

all: $(BUILDDIR)/smtpd $(CONTRIB)
	@if [ "$(BUILDDIR)" = build ]; then ln -sf build/smtpd smtpd; fi

deps:
	@sh contrib/deps.sh build

deps-check:
	@sh contrib/deps.sh check

$(BUILDDIR)/%.o: %.c smtpd.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# The contrib programs use libc alone (no libbsd overlay).
$(BUILDDIR)/contrib/%.o: contrib/%.c
	@mkdir -p $(@D)
	$(CC) -D_GNU_SOURCE $(CFLAGS_BASE) -c -o $@ $<

$(BUILDDIR)/smtpd: $(BUILDDIR)/smtpd.o $(LIBOBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# A static program starts faster: smtpd runs it once per message, and the
# dynamic loader's start-up was most of its cost (make bench).  It needs
# nothing but libc.
$(BUILDDIR)/contrib/deliver-maildir: $(BUILDDIR)/contrib/deliver-maildir.o
	$(CC) $(MAILDIR_LDFLAGS) -o $@ $^

$(BUILDDIR)/tests/%: $(BUILDDIR)/tests/%.o $(LIBOBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CMOCKA_LIBS)

run: deps
	$(MAKE) all
	./build/smtpd -d

# The unit and end-to-end tests of one build (BUILDDIR, SAN).
test: all $(UNITBINS)
	@sh tests/run-unit.sh $(BUILDDIR) $(UNITTESTS)
	@sh tests/test_maildir.sh $(CONTRIB)
	@sh tests/test_manuals.sh
	@SMTPD=$(BUILDDIR)/smtpd DELIVER_MAILDIR=$(CONTRIB) \
	    python3 tests/e2e/run.py

check: deps-check
	$(MAKE) test BUILDDIR=build SAN=0
	$(MAKE) test BUILDDIR=build-asan SAN=1
	@if command -v mandoc >/dev/null; then \
	    mandoc -Tlint -W warning smtpd.8 smtpd.conf.5 && \
	    echo "mandoc -Tlint: clean"; fi

# smtpd against Postfix's smtp-sink, driven by smtp-source (installs the
# postfix package when missing, without starting it); see contrib/bench.
bench: $(BUILDDIR)/smtpd $(CONTRIB)
	@SMTPD=$(BUILDDIR)/smtpd DELIVER_MAILDIR=$(CONTRIB) \
	    sh contrib/bench/bench.sh

# 1000 concurrent sessions for SOAK_SECONDS (default 600) into a Maildir
# on /dev/shm: every acknowledged message delivered once, RSS, processes,
# zombies and the master's descriptors sampled; see tests/soak.py.
SOAK_SECONDS ?=	600
soak: $(BUILDDIR)/smtpd $(CONTRIB)
	@SMTPD=$(BUILDDIR)/smtpd DELIVER_MAILDIR=$(CONTRIB) \
	    SOAK_SECONDS=$(SOAK_SECONDS) python3 tests/soak.py

# Full plain, STARTTLS+AUTH and implicit-TLS sessions under valgrind.
check-valgrind: all
	@sh tests/valgrind.sh build/smtpd

lint:
	mandoc -Tlint -W warning smtpd.8 smtpd.conf.5
	cppcheck --quiet --enable=warning,portability --error-exitcode=1 \
	    -D__GNUC__ --inline-suppr $(LIBSRCS) smtpd.c

# libFuzzer harnesses tests/fuzz/fuzz_NAME.c, kept apart from `make check`
# (they need clang and libclang-rt).  Each links the sources it names in
# FUZZ_SRCS_fuzz_NAME (default: all of LIBSRCS); `fuzz-run` runs each for
# FUZZ_SECONDS on its seed corpus tests/fuzz/corpus/NAME, writing what it
# finds under build-fuzz/ so the seeds stay as committed.
FUZZCC ?=	clang
FUZZDIR =	build-fuzz
FUZZ_SECONDS ?=	10
FUZZFLAGS =	-g -O1 -fno-omit-frame-pointer \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZERS =	$(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SRCS_fuzz_proxy =	proxy.c

.PHONY: fuzz fuzz-run

fuzz: $(FUZZERS:%=$(FUZZDIR)/%)

$(FUZZDIR)/fuzz_%: tests/fuzz/fuzz_%.c $(LIBSRCS) smtpd.h
	@mkdir -p $(@D)
	$(FUZZCC) $(CPPFLAGS) -std=c11 $(FUZZFLAGS) $(WARNINGS) \
	    $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null) -o $@ $< \
	    $(or $(FUZZ_SRCS_fuzz_$*),$(LIBSRCS)) $(LDLIBS)

fuzz-run: fuzz
	@for f in $(FUZZERS); do \
	    n=$${f#fuzz_}; mkdir -p $(FUZZDIR)/corpus/$$n; \
	    echo "$$f: $(FUZZ_SECONDS)s"; \
	    ./$(FUZZDIR)/$$f -max_total_time=$(FUZZ_SECONDS) \
	        $(FUZZDIR)/corpus/$$n tests/fuzz/corpus/$$n || exit 1; \
	done

# Installation.  The configuration and libexec paths are compiled in
# (smtpd.h), so every object depends on $(BUILDDIR)/.paths, which changes
# only when they do: `make install' rebuilds `all' with its own PREFIX,
# SYSCONFDIR ..., and a build with other paths is redone first.  Give the
# build and `make install' the same variables (or none to the build), e.g.
#	make PREFIX=/usr SYSCONFDIR=/etc && make install PREFIX=/usr SYSCONFDIR=/etc
# The example configuration becomes $(SYSCONFDIR)/smtpd.conf only when
# there is none; `make uninstall' removes it only when it is unedited.
# SYSTEMDUNITDIR (e.g. /lib/systemd/system, or $(PREFIX)/lib/systemd/system)
# installs contrib/systemd/smtpd.service; empty (the default): no unit.
# The installed manuals, example and unit name the installed paths.
SYSTEMDUNITDIR ?=
PATHSTAMP =	$(BUILDDIR)/.paths
INSTDIR =	$(BUILDDIR)/install
INSTALL_SED =	sed -e 's|/usr/local/etc|$(SYSCONFDIR)|g' \
		    -e 's|/usr/local/libexec/smtpd|$(LIBEXECDIR)|g' \
		    -e 's|/usr/local/sbin|$(SBINDIR)|g'
INSTFILES =	$(INSTDIR)/smtpd.8 $(INSTDIR)/smtpd.conf.5 \
		$(INSTDIR)/smtpd.conf $(INSTDIR)/smtpd.service

.PHONY: check-install FORCE

$(PATHSTAMP): FORCE
	@mkdir -p $(@D)
	@p='$(SBINDIR) $(SYSCONFDIR) $(LIBEXECDIR)'; \
	    if [ "$$(cat $@ 2>/dev/null)" != "$$p" ]; then \
	        echo "$$p" >$@; fi

$(BUILDDIR)/smtpd.o $(LIBOBJS): $(PATHSTAMP)

$(INSTDIR)/smtpd.8: smtpd.8 $(PATHSTAMP)
$(INSTDIR)/smtpd.conf.5: smtpd.conf.5 $(PATHSTAMP)
$(INSTDIR)/smtpd.conf: contrib/smtpd.conf.example $(PATHSTAMP)
$(INSTDIR)/smtpd.service: contrib/systemd/smtpd.service $(PATHSTAMP)
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
	    u=$(DESTDIR)$(SYSTEMDUNITDIR)/smtpd.service; \
	    echo "install -m 0644 $(INSTDIR)/smtpd.service $$u"; \
	    install -d $(DESTDIR)$(SYSTEMDUNITDIR) && \
	    install -m 0644 $(INSTDIR)/smtpd.service "$$u"; fi

uninstall: $(INSTDIR)/smtpd.conf
	rm -f $(DESTDIR)$(SBINDIR)/smtpd \
	    $(DESTDIR)$(LIBEXECDIR)/deliver-maildir \
	    $(DESTDIR)$(MANDIR)/man8/smtpd.8 \
	    $(DESTDIR)$(MANDIR)/man5/smtpd.conf.5
	@if [ -n "$(SYSTEMDUNITDIR)" ]; then \
	    echo "rm -f $(DESTDIR)$(SYSTEMDUNITDIR)/smtpd.service"; \
	    rm -f $(DESTDIR)$(SYSTEMDUNITDIR)/smtpd.service; fi
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
