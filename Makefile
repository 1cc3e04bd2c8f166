# Thin wrapper over Meson + Ninja for newcomers; see README.md.
#
#   make            build build/autosync
#   make deps       install the build and test dependencies (Debian 12, root)
#   make demo       deps + build + scripts/demo.sh (sync, then the service)
#   make check      unit tests (meson test) and end-to-end tests
#   make man        one man page per command in build/man (from doc/autosync.8)
#   make install    PREFIX=/usr/local DESTDIR= ; binary, man pages and the
#                   systemd unit (SYSTEMDUNITDIR=PREFIX/lib/systemd/system)
#                   and bash completion (BASHCOMPDIR)
#   make clean      remove build/

PREFIX	?= /usr/local
DESTDIR	?=
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
BUILD	?= build
MESON	?= meson
NINJA	?= ninja

DEB_PACKAGES = build-essential meson ninja-build pkg-config libxxhash-dev \
	libzstd-dev libssl-dev libsqlite3-dev libcmocka-dev acl attr rsync \
	libcap2-bin clang libclang-rt-14-dev strace python3 e2fsprogs btrfs-progs \
	util-linux openssh-server openssh-client nftables iproute2 zfs-fuse \
	groff-base valgrind

.PHONY: all build deps demo check man install uninstall clean

all: build

$(BUILD)/build.ninja:
	$(MESON) setup $(BUILD) --prefix=$(PREFIX)

build: $(BUILD)/build.ninja
	$(NINJA) -C $(BUILD)

deps:
	@if [ "$$(id -u)" -ne 0 ]; then \
		echo "make deps: run as root (it uses apt-get)" >&2; exit 1; fi
	DEBIAN_FRONTEND=noninteractive apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		$(DEB_PACKAGES)

# As root, install what is missing first; as a user, assume it is there.
demo:
	@if [ "$$(id -u)" -eq 0 ] && ! dpkg -s $(DEB_PACKAGES) >/dev/null 2>&1; \
	then $(MAKE) deps; fi
	$(MAKE) build
	AUTOSYNC=$(CURDIR)/$(BUILD)/autosync sh scripts/demo.sh

check: build
	$(MESON) test -C $(BUILD) --print-errorlogs
	AUTOSYNC=$(CURDIR)/$(BUILD)/autosync bash tests/e2e/run-all.sh
	bash tests/valgrind/run.sh

# autosync-VERB(8) for every command: cut from autosync(8), the one source.
man:
	python3 scripts/man-split.py doc/autosync.8 src/cli/main.c $(BUILD)/man

install: build man
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man8 \
	    $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 755 $(BUILD)/autosync $(DESTDIR)$(PREFIX)/bin/autosync
	install -m 644 doc/autosync.8 $(BUILD)/man/autosync-*.8 \
	    $(DESTDIR)$(PREFIX)/share/man/man8/
	install -m 644 doc/autosync-stream.5 doc/autosync-serve.conf.5 \
	    $(DESTDIR)$(PREFIX)/share/man/man5/
	install -d $(DESTDIR)$(SYSTEMDUNITDIR)
	sed 's|@BINDIR@|$(PREFIX)/bin|g' data/autosync.service.in \
	    >$(DESTDIR)$(SYSTEMDUNITDIR)/autosync.service
	chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/autosync.service
	install -d $(DESTDIR)$(BASHCOMPDIR)
	install -m 644 data/autosync.bash-completion \
	    $(DESTDIR)$(BASHCOMPDIR)/autosync

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/autosync \
		$(DESTDIR)$(PREFIX)/share/man/man8/autosync.8 \
		$(DESTDIR)$(PREFIX)/share/man/man8/autosync-*.8 \
		$(DESTDIR)$(PREFIX)/share/man/man5/autosync-stream.5 \
		$(DESTDIR)$(PREFIX)/share/man/man5/autosync-serve.conf.5 \
		$(DESTDIR)$(SYSTEMDUNITDIR)/autosync.service \
		$(DESTDIR)$(BASHCOMPDIR)/autosync

clean:
	rm -rf $(BUILD)
