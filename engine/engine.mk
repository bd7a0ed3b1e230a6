# engine/engine.mk -- builds the storage engine as a static library of
# position-independent objects (linked into mod_kvlsm.so, the tests, the
# tools and the benchmark), and its Criterion tests.  Included by Makefile.

APR_CFLAGS  := $(shell apr-1-config --cflags --cppflags --includes 2>/dev/null)
APR_LIBS    := $(shell apr-1-config --link-ld --libs 2>/dev/null) -llz4 -lzstd
CC          ?= cc
OPT         ?= -O2
ENGINE_CFLAGS = -std=gnu11 -g $(OPT) -fPIC -Wall -Wextra -Werror -Iengine $(APR_CFLAGS) $(EXTRA_CFLAGS)

# BUILD is build/ normally, build/asan for `make asan`, build/fault for
# the fault-injection build (`make fault-test`): only that one compiles
# fault.c and routes file operations through it.
BUILD       ?= build
ifneq ($(filter -DKV_FAULT_INJECT,$(EXTRA_CFLAGS)),)
ENGINE_SRCS := $(wildcard engine/*.c)
else
ENGINE_SRCS := $(filter-out engine/fault.c,$(wildcard engine/*.c))
endif
ENGINE_OBJS := $(patsubst engine/%.c,$(BUILD)/engine/%.o,$(ENGINE_SRCS))
ENGINE_LIB  := $(BUILD)/libkvlsm.a
ENGINE_TEST_SRCS := $(wildcard engine/tests/*.c)
ENGINE_TESTS := $(BUILD)/engine-tests

$(BUILD)/engine/%.o: engine/%.c $(wildcard engine/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ENGINE_CFLAGS) -c $< -o $@

$(ENGINE_LIB): $(ENGINE_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# kvlsm-check: verify a data directory, or dump it as JSON lines.
KVLSM_CHECK := $(BUILD)/kvlsm-check
$(KVLSM_CHECK): engine/tools/kvlsm-check.c $(ENGINE_LIB)
	$(CC) $(ENGINE_CFLAGS) $(LDFLAGS) -o $@ $< $(ENGINE_LIB) $(APR_LIBS) -lpthread

$(ENGINE_TESTS): $(ENGINE_TEST_SRCS) $(ENGINE_LIB) $(KVLSM_CHECK) $(wildcard engine/*.h engine/tests/*.h)
	$(CC) $(ENGINE_CFLAGS) -Iengine/tests -DKVLSM_CHECK='"$(abspath $(KVLSM_CHECK))"' -o $@ $(ENGINE_TEST_SRCS) $(ENGINE_LIB) $(APR_LIBS) -lcriterion -lpthread

# Power-loss tests: only meaningful (and only built) in the fault build.
FAULT_TESTS := $(BUILD)/fault-tests
$(FAULT_TESTS): $(wildcard engine/tests/fault/*.c) $(ENGINE_LIB) $(KVLSM_CHECK) $(wildcard engine/*.h engine/tests/*.h)
	$(CC) $(ENGINE_CFLAGS) -Iengine/tests -DKVLSM_CHECK='"$(abspath $(KVLSM_CHECK))"' -o $@ $(wildcard engine/tests/fault/*.c) $(ENGINE_LIB) $(APR_LIBS) -lcriterion -lpthread

.PHONY: engine engine-test
engine: $(ENGINE_LIB) $(KVLSM_CHECK)
# Criterion runs the tests in parallel; -j2 matches the machine.
engine-test: $(ENGINE_TESTS)
	$(ENGINE_TESTS) -j2 --verbose=0
