# bench/bench.mk -- `make bench`: everything (bench/run.sh: engine against
# LevelDB, 10M scale, HTTP against its peers, one table of ratios);
# `make bench-engine` and `make bench-http` run one part.
# BENCH_ARGS passes flags to bench-engine, e.g. BENCH_ARGS=--num=100000
DB_BENCH := $(BUILD)/db_bench

$(DB_BENCH): bench/db_bench.c $(ENGINE_LIB) engine/kvlsm.h
	@mkdir -p $(dir $@)
	$(CC) $(ENGINE_CFLAGS) -o $@ bench/db_bench.c $(ENGINE_LIB) $(APR_LIBS) -lleveldb -lpthread

.PHONY: bench bench-engine
bench-engine: $(DB_BENCH)
	$(DB_BENCH) $(BENCH_ARGS)
bench: deps module $(DB_BENCH)
	@sh tools/bench-deps.sh
	sh bench/run.sh

# Over HTTP: the module against a static file, webdis+Redis and etcd in one
# run (bench/http.sh; BENCH_SECONDS per run, default 10).
.PHONY: bench-http
bench-http: module
	sh bench/http.sh $(or $(BENCH_SECONDS),10)
