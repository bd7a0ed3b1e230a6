# Makefile -- mod_kvlsm: the engine library, the Apache module, the tests.
#   make          build the engine and the module (.libs/mod_kvlsm.so)
#   make test     engine and request-parser Criterion tests (plain and with
#                 ASan+UBSan), then the Apache::Test suite in t/ against a
#                 real Apache
#   make asan     the Criterion tests built with AddressSanitizer + UBSan
#   make apache-asan  the Apache::Test suite with the module built so
#   make valgrind the engine tests under Valgrind memcheck
#   make fault-test  power-loss simulation (engine built with fault.c)
#   make run      Apache in the foreground on 127.0.0.1:8081, data in ./var
#   make install  install the module and conf/kvlsm.{load,conf} (a2enmod kvlsm)
#   make deb      the Debian package libapache2-mod-kvlsm (debian/), into build/
#   make package-test  as root: install that package into the system Apache,
#                 use it, purge it (t/package.sh)
#   make bench    engine vs LevelDB (bench/)
#   make fuzz     libFuzzer on the request parser, log and SST readers
#   make stress   the shared-log load test and the linearizability tests,
#                 long; 1000 simulated power cuts per sync mode; 200 cycles
#                 of kill -9 of Apache under load (t/crash.t)
# `test` and `run` first install missing Debian packages when run as root.

.DEFAULT_GOAL := all
include engine/engine.mk
-include bench/bench.mk
include fuzz/fuzz.mk

APXS    ?= apxs
MODULE  := .libs/mod_kvlsm.so
MOD_SRC := mod_kvlsm.c $(wildcard http/*.c)
HTTP_TESTS := $(BUILD)/http-tests

.PHONY: all module test asan run install deps clean unit-test cross-abi apache-test apache-asan stress fault-test valgrind \
        kvlsm-check deb package-test
all: module

module: $(MODULE)
$(MODULE): $(MOD_SRC) $(wildcard http/*.h) engine/kvlsm.h $(ENGINE_LIB)
	$(APXS) -c -Wc,-std=gnu11 -Wc,-Wall -Wc,-Wextra -Wc,-Werror -Wc,-I. \
	    -o mod_kvlsm.la $(MOD_SRC) $(ENGINE_LIB) -lcjson -llz4 -lzstd

# The same module built like the engine beside it (build/fault: with the
# fault layer; build/asan: with the sanitizers), for the tests that load it
# into Apache.  The production module above is built by apxs.
HTTPD_INC := $(shell $(APXS) -q INCLUDEDIR 2>/dev/null)
$(BUILD)/mod_kvlsm.so: $(MOD_SRC) $(wildcard http/*.h) engine/kvlsm.h $(ENGINE_LIB)
	$(CC) -shared $(ENGINE_CFLAGS) -I. -I$(HTTPD_INC) -o $@ $(MOD_SRC) $(ENGINE_LIB) -lcjson -llz4 -lzstd

$(HTTP_TESTS): http/request.c http/request.h $(wildcard http/tests/*.c)
	@mkdir -p $(dir $@)
	$(CC) $(ENGINE_CFLAGS) -I. -Iengine/tests -o $@ http/request.c $(wildcard http/tests/*.c) \
	    $(APR_LIBS) -lcjson -lcriterion

deps:
	@sh tools/deps.sh

unit-test: $(ENGINE_TESTS) $(HTTP_TESTS)
	sh tools/criterion-run.sh $(BUILD)/logs/engine.log $(ENGINE_TESTS) -j2
	sh tools/criterion-run.sh $(BUILD)/logs/http.log $(HTTP_TESTS) -j2
	@$(MAKE) --no-print-directory cross-abi

# fileio.c's system calls on 32-bit CPUs (armhf, i686) under qemu-user,
# when the cross compilers, their C libraries and qemu are installed
# (they are not in .ci/packages: about 200 MB for one check); the script
# says so when it skips.
cross-abi:
	@sh engine/tests/cross/run.sh

apache-test: module $(KVLSM_CHECK)
	@$(FAULT_MAKE) build/fault/mod_kvlsm.so
	@$(MAKE) --no-print-directory released-module
	sh t/run.sh
	@if [ "$$(id -u)" = 0 ]; then unshare -m perl t/diskfull.pl && perl t/rootstart.pl; \
	 else echo "t/diskfull.pl and t/rootstart.pl skipped: they need root (a tmpfs; children as www-data)"; fi

test: deps
	$(MAKE) unit-test
	$(MAKE) asan
	$(MAKE) valgrind
	$(MAKE) fault-test
	$(MAKE) fuzz-smoke
	$(MAKE) apache-test
	$(MAKE) apache-asan
	$(MAKE) package-test

# Criterion counts a test whose process reports a leak at exit as passed,
# so the sanitizers' own reports decide too (tools/san-verdict.sh: any
# error, any leak with a frame in our sources).
ASAN_MAKE = $(MAKE) BUILD=build/asan OPT="-O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"
asan:
	@mkdir -p build
	@LSAN_OPTIONS=exitcode=0 $(ASAN_MAKE) unit-test > build/asan.log 2>&1; rc=$$?; cat build/asan.log; \
	    test $$rc = 0 && sh tools/san-verdict.sh build/asan.log

# Power loss under the fault-injection layer (engine/fault.c); the cycle
# count comes from KVLSM_POWER_CYCLES (40 per sync mode by default).
FAULT_MAKE = $(MAKE) BUILD=build/fault EXTRA_CFLAGS=-DKV_FAULT_INJECT
fault-test:
	@$(FAULT_MAKE) build/fault/fault-tests
	sh tools/criterion-run.sh build/fault/logs/fault.log build/fault/fault-tests -j2 --verbose=1

# The engine tests under Valgrind memcheck.  Criterion counts a worker that
# valgrind found errors in as passed, so its logs decide (workers killed on
# purpose by the crash tests leave no summary); tools/criterion.supp names
# the one leak of Criterion's own runner.
valgrind: $(ENGINE_TESTS)
	@rm -rf build/valgrind && mkdir -p build/valgrind
	valgrind --trace-children=yes --leak-check=full --errors-for-leak-kinds=definite \
	    --suppressions=tools/criterion.supp --log-file=build/valgrind/%p.log $(ENGINE_TESTS) -j2
	@bad=$$(grep -l "ERROR SUMMARY: [1-9]" build/valgrind/*.log || true); \
	 echo "valgrind: $$(ls build/valgrind | wc -l) processes checked, $$(echo $$bad | wc -w) with errors"; \
	 for f in $$bad; do cat $$f; done; test -z "$$bad"

# The Apache::Test suite against the module built with ASan and UBSan,
# Apache started with their runtimes preloaded (t/run.sh).
apache-asan: module $(KVLSM_CHECK)
	@$(ASAN_MAKE) build/asan/mod_kvlsm.so
	@$(FAULT_MAKE) build/fault/mod_kvlsm.so
	@$(MAKE) --no-print-directory released-module
	KVLSM_SANITIZE=1 sh t/run.sh

# The module as it was before the STATS file (SHM version 2 without it),
# built from this repository's history, for t/upgrade.t: graceful
# restarts from it to this build and back, old and new children serving
# side by side.  Without git or that commit t/upgrade.t skips, saying so.
RELEASED_COMMIT := 057127b6a71b21ddf7950219cce266bf0c63d0d1
.PHONY: released-module
released-module:
	@if [ -f build/released/mod_kvlsm.so ]; then exit 0; fi; \
	 if git rev-parse -q --verify "$(RELEASED_COMMIT)^{commit}" >/dev/null 2>&1; then \
	     echo "building the released module ($(RELEASED_COMMIT)) for t/upgrade.t"; \
	     rm -rf build/released && mkdir -p build/released/src && \
	     git archive $(RELEASED_COMMIT) | tar -x -C build/released/src && \
	     $(MAKE) -C build/released/src build/mod_kvlsm.so > build/released/build.log 2>&1 && \
	     cp build/released/src/build/mod_kvlsm.so build/released/ || \
	     echo "the released module did not build (build/released/build.log): t/upgrade.t will skip"; \
	 else echo "no commit $(RELEASED_COMMIT) in this checkout: t/upgrade.t will skip"; fi

# kill -9 of the whole Apache under concurrent writes, 200 times (t/crash.t
# runs 10 cycles within `make test`); the shared-log load test at 8000
# writes per thread; the linearizability tests with 20000 ops per thread,
# 5 runs each (engine/tests/test_linearizable.c).
stress: deps module $(ENGINE_TESTS)
	KVLSM_SHAREDLOG_WRITES=8000 $(ENGINE_TESTS) --filter 'sharedlog/*'
	KVLSM_POWER_CYCLES=1000 $(MAKE) fault-test
	KVLSM_LIN_OPS=20000 KVLSM_LIN_ROUNDS=5 $(ENGINE_TESTS) --filter 'linearizable/*' --verbose=1
	KVLSM_STRESS_CYCLES=200 sh t/run.sh -verbose t/crash.t

run: deps module
	sh conf/run.sh

kvlsm-check: $(KVLSM_CHECK)

# The package is built by dpkg-buildpackage in a copy of the tree
# (tools/deb.sh), so nothing is written beside it; the .deb lands in
# build/.  debian/rules builds with `make module kvlsm-check`.
deb:
	@sh tools/deb.sh

# As root only (it skips, saying so, otherwise): builds the package, then
# installs it into this machine's Apache, stores and reads a key, removes
# and purges it, and checks the machine is left as it was.
package-test:
	@sh t/package.sh

install: module
	$(APXS) -i -n kvlsm $(MODULE)
	install -m 644 conf/kvlsm.load conf/kvlsm.conf /etc/apache2/mods-available/
	@echo "now: a2enmod kvlsm && mkdir -p /var/lib/kvlsm && systemctl restart apache2"

clean:
	rm -rf build .libs http/.libs *.la *.lo *.slo http/*.lo http/*.slo http/*.o *.o var t/logs
	rm -rf debian/.debhelper debian/libapache2-mod-kvlsm debian/tmp debian/files debian/*.substvars \
	    debian/*.debhelper debian/*.debhelper.log debian/debhelper-build-stamp
