# fuzz/fuzz.mk -- libFuzzer targets (clang) for the request parser, the
# log reader and the SST reader, each with a seed corpus in fuzz/corpus.
#   make fuzz               each target for FUZZ_SECONDS (default 60)
#   make fuzz-smoke         each for 5 seconds (part of make test)
# Findings are written to build/fuzz/<target>.findings/; keep each crash input in
# fuzz/corpus/<target>/ as a regression seed once fixed.
FUZZ_CC      ?= clang
FUZZ_FLAGS   := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
                -Iengine -I. $(APR_CFLAGS)
FUZZ_SECONDS ?= 60
FUZZ_ENGINE  := engine/wal.c engine/crc32c.c engine/bloom.c engine/sst_read.c engine/sst_write.c engine/fileio.c engine/compress.c
FUZZERS      := build/fuzz/request build/fuzz/wal build/fuzz/sst

build/fuzz/request: fuzz/request.c http/request.c http/request.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ fuzz/request.c http/request.c $(APR_LIBS) -lcjson
build/fuzz/wal: fuzz/wal.c $(FUZZ_ENGINE)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ fuzz/wal.c engine/wal.c engine/crc32c.c -lpthread
build/fuzz/sst: fuzz/sst.c $(FUZZ_ENGINE)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ fuzz/sst.c $(FUZZ_ENGINE) $(APR_LIBS) -lpthread

.PHONY: fuzz fuzz-smoke
fuzz: $(FUZZERS)
	sh fuzz/run.sh $(FUZZ_SECONDS)
fuzz-smoke: $(FUZZERS)
	sh fuzz/run.sh 5
