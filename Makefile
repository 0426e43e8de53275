# SPDX-License-Identifier: MIT
# imapkit: entry points. CMake does the building; this file only strings the
# steps together.
#
#   make deps          install the Debian packages the project needs (as root)
#   make build         warnings-as-errors build in build/
#   make demo          build, then a tour of the imapkit tool on a generated mailbox
#                      served by a private Dovecot (tools/demo.sh)
#   make check         the whole test suite (see "check" below)
#   make bench         benchmarks in build-bench/ against their baselines
#   make bench-fetch   whole jobs against peer clients on a private Dovecot
#   make format        reformat every C file with clang-format
#   make clean         remove the build directories

SHELL := /bin/bash
MAKEFLAGS += --no-print-directory
.SHELLFLAGS := -eu -o pipefail -c

JOBS ?= 2
FUZZ_SECONDS ?= 30

# What Cyrus imapd (unpacked by deps-cyrus, not installed) needs at run time,
# read off `ldd` of its binary: the libraries a fresh Debian 12 lacks.
CYRUS_RUNTIME := libical3 libicu72 libjansson4 libkrb5-3 libldap-2.5-0 libpcre3 libpq5 \
	libsasl2-2 libsqlite3-0 libwrap0 libxapian30 libxml2

DEB_PACKAGES := cmake gcc g++ clang clang-format make pkg-config \
	libjansson-dev libetpan-dev libclang-rt-14-dev \
	libssl-dev zlib1g-dev libgsasl-dev libuv1-dev \
	openssl dovecot-imapd courier-base procps isync python3 \
	libedit-dev python3-jsonschema tmux groff-base \
	$(CYRUS_RUNTIME)


# Courier-IMAP conflicts with dovecot-imapd, so its .deb is unpacked here
# (DESIGN.md section 9) and run with courier-base's libraries.
COURIER_DIR := .deps/courier

BUILD_DIRS := build build-asan build-fuzz build-bench .deps

# The C files under the formatter's and the checker's care.
FORMAT_FILES = $(shell find include src tests bench -path tests/fuzz/corpus -prune -o \
	-type f \( -name '*.c' -o -name '*.h' \) -print 2>/dev/null | LC_ALL=C sort)

.PHONY: bench-fetch all deps deps-courier deps-cyrus build demo check bench format format-check fuzz-smoke clean \
	check-build check-asan check-source build-only bench-only

all: build

# ---- dependencies ----------------------------------------------------------

deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
		status=$$(dpkg-query -W -f='$${db:Status-Status}' "$$p" 2>/dev/null || true); \
		[ "$$status" = installed ] || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages present"; exit 0; fi; \
	echo "deps: missing:$$missing"; \
	if [ "$$(id -u)" -ne 0 ]; then \
		echo "deps: not root; install them with:"; \
		echo "    sudo apt-get install -y$$missing"; \
		exit 1; \
	fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt_install() { apt-get install -y --no-install-recommends $$missing; }; \
	if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then apt-get update; fi; \
	# Installing dovecot or courier must not start system services (port 143 \
	# stays free; tests start private servers): policy-rc.d 101 forbids it. \
	made_policy=0; \
	if [ ! -e /usr/sbin/policy-rc.d ]; then \
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; made_policy=1; \
	fi; \
	rc=0; apt_install || { apt-get update && apt_install; } || rc=$$?; \
	[ $$made_policy -eq 0 ] || rm -f /usr/sbin/policy-rc.d; \
	exit $$rc

# Cyrus IMAP conflicts with dovecot-imapd (both provide imap-server) and
# cyrus-common's install would add a user, /etc/imapd.conf and a service:
# both .debs are unpacked here (their libraries come from CYRUS_RUNTIME).
CYRUS_DIR := .deps/cyrus

deps-cyrus:
	@if [ -x $(CYRUS_DIR)/usr/lib/cyrus/bin/imapd ]; then exit 0; fi; \
	tmp=$$(mktemp -d); \
	if (cd "$$tmp" && apt-get download cyrus-imapd cyrus-common >/dev/null 2>&1) || \
	   { [ "$$(id -u)" -eq 0 ] && apt-get update >/dev/null && (cd "$$tmp" && apt-get download cyrus-imapd cyrus-common); }; then \
		mkdir -p $(CYRUS_DIR) && for deb in "$$tmp"/*.deb; do dpkg-deb -x "$$deb" $(CYRUS_DIR); done; \
		echo "deps: cyrus-imapd and cyrus-common unpacked into $(CYRUS_DIR)"; \
	else \
		echo "deps: could not download cyrus-imapd; the Cyrus tests will be skipped"; \
	fi; \
	rm -rf "$$tmp"

# Courier's imapd, unpacked (not installed) into $(COURIER_DIR).
deps-courier:
	@if [ -x $(COURIER_DIR)/usr/bin/imapd ]; then exit 0; fi; \
	tmp=$$(mktemp -d); \
	if (cd "$$tmp" && apt-get download courier-imap >/dev/null 2>&1) || \
	   { [ "$$(id -u)" -eq 0 ] && apt-get update >/dev/null && (cd "$$tmp" && apt-get download courier-imap); }; then \
		mkdir -p $(COURIER_DIR) && dpkg-deb -x "$$tmp"/courier-imap_*.deb $(COURIER_DIR); \
		echo "deps: courier-imap unpacked into $(COURIER_DIR)"; \
	else \
		echo "deps: could not download courier-imap; the Courier tests will be skipped"; \
	fi; \
	rm -rf "$$tmp"

# ---- build and demo ----------------------------------------------------------

# Sub-makes keep the order (deps first) even under make -j.
build: deps
	@$(MAKE) --no-print-directory deps-courier
	@$(MAKE) --no-print-directory deps-cyrus
	@$(MAKE) --no-print-directory build-only

build-only:
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMK_WERROR=ON
	cmake --build build -j$(JOBS)

demo: build
	tools/demo.sh build

# ---- check -------------------------------------------------------------------
#
# Five stages, each run even when an earlier one failed, then one summary line:
#   check-build   warnings-as-errors build (gcc) in build/, ctest
#   check-asan    clang + ASan + UBSan build in build-asan/, ctest (leaks detected)
#   fuzz-smoke    every libFuzzer target for FUZZ_SECONDS over a copy of its corpus
#   format-check  clang-format --dry-run --Werror
#   check-source  tools/check-source (banned functions, raw allocation) and
#                 tools/check-layers (DESIGN.md section 2 layering, by #include)

CHECK_STAGES := check-build check-asan fuzz-smoke format-check check-source

check: deps
	@$(MAKE) --no-print-directory deps-courier
	@$(MAKE) --no-print-directory deps-cyrus
	@passed=0; failed=0; failed_names=""; \
	for stage in $(CHECK_STAGES); do \
		echo "==== check: $$stage"; \
		if $(MAKE) --no-print-directory $$stage; then \
			passed=$$((passed + 1)); \
		else \
			failed=$$((failed + 1)); failed_names="$$failed_names $$stage"; \
			echo "==== check: $$stage FAILED"; \
		fi; \
	done; \
	[ $$failed -eq 0 ] || echo "failed stages:$$failed_names"; \
	echo "check: $$passed passed, $$failed failed"; \
	[ $$failed -eq 0 ]

check-build: build-only
	cd build && ctest --output-on-failure -j$(JOBS)

check-asan:
	CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug \
		-DIMK_SANITIZE=ON -DIMK_WERROR=ON
	cmake --build build-asan -j$(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j$(JOBS)

# Each fuzz_<name> runs over a temporary copy of tests/fuzz/corpus/<name>, so new
# inputs it finds never land in the repository; crashes are kept in
# build-fuzz/artifacts/.
fuzz-smoke:
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMK_FUZZ=ON
	cmake --build build-fuzz -j$(JOBS) --target fuzzers
	@shopt -s nullglob; \
	fuzzers=(build-fuzz/fuzz/fuzz_*); \
	if [ $${#fuzzers[@]} -eq 0 ]; then echo "fuzz-smoke: no fuzz targets"; exit 0; fi; \
	mkdir -p build-fuzz/artifacts build-fuzz/logs; \
	failed=0; \
	for bin in "$${fuzzers[@]}"; do \
		[ -x "$$bin" ] || continue; \
		name=$${bin##*/fuzz_}; \
		work=$$(mktemp -d); \
		if [ -d "tests/fuzz/corpus/$$name" ]; then \
			cp -R "tests/fuzz/corpus/$$name/." "$$work/"; \
		else \
			echo "fuzz-smoke: warning: no tests/fuzz/corpus/$$name, starting empty"; \
		fi; \
		log=build-fuzz/logs/fuzz_$$name.log; \
		echo "fuzz-smoke: fuzz_$$name for $(FUZZ_SECONDS)s ($$(ls "$$work" | wc -l) seed inputs)"; \
		if "$$bin" -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
				-artifact_prefix=build-fuzz/artifacts/fuzz_$$name- "$$work" >"$$log" 2>&1; then \
			echo "fuzz-smoke: fuzz_$$name: $$(grep -E '^Done [0-9]+ runs' "$$log" | tail -n1)"; \
		else \
			failed=1; \
			echo "fuzz-smoke: fuzz_$$name FAILED (log: $$log)"; \
			tail -n 60 "$$log"; \
		fi; \
		rm -rf "$$work"; \
	done; \
	exit $$failed

format-check:
	@bad=(); \
	for f in $(FORMAT_FILES); do \
		clang-format --dry-run --Werror "$$f" >/dev/null 2>&1 || bad+=("$$f"); \
	done; \
	if [ $${#bad[@]} -eq 0 ]; then echo "format-check: OK ($(words $(FORMAT_FILES)) files)"; exit 0; fi; \
	for f in "$${bad[@]}"; do \
		echo "--- $$f (first lines of the change clang-format wants)"; \
		clang-format "$$f" | diff -u "$$f" - | sed -n '3,22p' || true; \
	done; \
	echo "format-check: $${#bad[@]} file(s) not formatted: $${bad[*]}"; \
	echo "format-check: run 'make format' to fix them"; \
	exit 1

check-source:
	tools/check-source
	tools/check-layers

# ---- benchmarks ------------------------------------------------------------------

bench: deps
	@$(MAKE) --no-print-directory bench-only

bench-only:
	cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" -DIMK_BENCH=ON
	cmake --build build-bench -j$(JOBS)
	@shopt -s nullglob; \
	benches=(build-bench/bench/*); \
	if [ $${#benches[@]} -eq 0 ]; then echo "bench: no benchmarks in bench/"; exit 0; fi; \
	for b in "$${benches[@]}"; do \
		[ -f "$$b" ] && [ -x "$$b" ] || continue; \
		echo "==== $${b##*/}"; \
		"$$b"; \
	done

# The whole-job benchmark: a 20,000-message mailbox fetched from a private
# Dovecot by imapkit, libetpan, Python imaplib and mbsync (bench/fetch/README.md).
bench-fetch: deps build-only
	bench/fetch/run.sh

# ---- formatting and cleaning -------------------------------------------------------

format:
	@if [ -n "$(strip $(FORMAT_FILES))" ]; then clang-format -i $(FORMAT_FILES); fi

clean:
	rm -rf $(BUILD_DIRS)
