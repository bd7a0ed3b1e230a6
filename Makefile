# Makefile -- mod_kvlsm: the engine library, the Apache module, the tests.
#   make          build engine + module (.libs/mod_kvlsm.so)
#   make test     engine Criterion tests, then the Apache::Test suite in t/
#   make asan     the engine tests built with AddressSanitizer
#   make run      Apache in the foreground on 127.0.0.1:8081, data in ./var
#   make bench    engine vs LevelDB (bench/)

.DEFAULT_GOAL := all
include engine/engine.mk
-include bench/bench.mk

.PHONY: all test asan clean
all: engine

test: engine-test

asan:
	$(MAKE) BUILD=build/asan OPT="-O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	    EXTRA_LDFLAGS="-fsanitize=address,undefined" engine-test

clean:
	rm -rf build .libs *.la *.lo *.slo *.o
