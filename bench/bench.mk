# bench/bench.mk -- `make bench`: the engine against LevelDB (db_bench.c).
# BENCH_ARGS passes flags, e.g. make bench BENCH_ARGS=--num=100000
DB_BENCH := $(BUILD)/db_bench

$(DB_BENCH): bench/db_bench.c $(ENGINE_LIB) engine/kvlsm.h
	@mkdir -p $(dir $@)
	$(CC) $(ENGINE_CFLAGS) -o $@ bench/db_bench.c $(ENGINE_LIB) $(APR_LIBS) -lleveldb -lpthread

.PHONY: bench bench-engine
bench-engine: $(DB_BENCH)
	$(DB_BENCH) $(BENCH_ARGS)
bench: bench-engine

# Over HTTP: the module against a static file, webdis+Redis and etcd in one
# run (bench/http.sh; BENCH_SECONDS per run, default 10).
.PHONY: bench-http
bench-http: module
	sh bench/http.sh $(or $(BENCH_SECONDS),10)
