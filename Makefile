# edm-serve - build, test and benchmark.
#
#   make            build build/edm, build/edmd and every test program
#   make run        build and serve the bundled model on 127.0.0.1:8080
#   make test       run every test tier (tests/run_all.sh), one closing line "N passed, N failed, N skipped"
#   make test-TIER  run one tier: unit, conformance, server, reliability, fuzz, deploy or web
#   make asan       the test suite under AddressSanitizer + UBSan (build-asan/)
#   make fuzz       the libFuzzer targets (clang) in build/fuzz*/; tests/fuzz*/fuzz.sh runs them
#   make sim        the CUDA backend against the host emulator (build-sim/test_ops, bench_gpu)
#   make bench      engine benchmark (ms per evaluation, GFLOP/s vs SGEMM)
#   make clean
#
# Packages: every goal but clean first runs deps/ensure.sh on the list deps/debian.txt (one
# dpkg-query, well under a second): the build set, plus the test set and the tests' npm
# folders for test, test-* and asan. As root it installs what is missing with apt-get (and
# npm ci); otherwise it stops with the `sudo apt-get install ...` line to run. NO_INSTALL=1
# skips the check (so do make -n and -q, and systems without dpkg-query).
#
# CUDA=auto (default) builds the CUDA backend when nvcc and cuBLAS are found, CUDA=0 never,
# CUDA=1 requires them (CUDA_HOME=... overrides the toolkit nvcc reports).
# Files follow conventions, so adding a file needs no edit here:
#   core/*.c core/*/*.c  -> build/libedm.a     (the engine, its formats and the CPU backend)
#   core/cuda/*.cu       -> build/libedm.a     when CUDA is on; core/cuda/stub/*.c when it is off
#   tools/edm/*.c        -> build/edm
#   server/*.c           -> build/edmd         (all but main.c also in build/libedmd.a, for tests)
#   tests/DIR/test_*.c   -> build/tests/DIR/test_*       (each links libedm; test_server libedmd too)
#   tests/fuzz*/fuzz_*.c -> build/fuzz*/replay_*         (with the plain main() of tests/fuzz/replay.c)
# Test tiers (tests/run_all.sh; each runs the folders' test_* programs and test_*.sh scripts):
#   unit         tests/unit: ops on every backend, sampler, RNG, NPY, PNG, safetensors, the daemon's
#                pure modules (test_server)
#   conformance  tests/conformance, tests/vectors, tests/cli, tests/converter: the engine, the `edm`
#                command and the converter against what the official code produced
#   server       tests/server, tests/clients: the real edmd over HTTP, and the openai SDK etc.
#   reliability  tests/reliability: edmd under attack and abuse (EDM_RELIABILITY_LONG=1: long form)
#   fuzz         tests/fuzz, tests/fuzz_server: the committed corpora replayed
#   deploy       tests/deploy: Dockerfile, Kubernetes manifests, the load-balanced local setup
#   web          tests/web: the web page in a browser
# tests/gpu/run.sh is the GPU session's script (it builds with CUDA=1 itself).

BUILD   ?= build
CC      ?= cc
CUDA    ?= auto
SAN     ?=
OPT     ?= -O2
NO_INSTALL ?=

DEPS_SETS := build$(if $(filter test test-% asan,$(MAKECMDGOALS)), test npm)
MAKE_DRY  := $(findstring n,$(firstword -$(MAKEFLAGS)))$(findstring q,$(firstword -$(MAKEFLAGS)))
ifeq ($(filter-out 0,$(NO_INSTALL))$(MAKE_DRY),)
  ifneq ($(filter-out clean,$(or $(MAKECMDGOALS),all)),)
    ifneq ($(shell deps/ensure.sh $(DEPS_SETS) >&2; echo $$?),0)
      $(error deps/ensure.sh: not set up (see above); NO_INSTALL=1 skips this check)
    endif
  endif
endif

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror
CFLAGS  += -std=c11 $(OPT) -g $(WARN) -D_GNU_SOURCE -fopenmp -Iinclude \
           -I/usr/include/x86_64-linux-gnu/openblas-pthread $(SAN)
LDFLAGS += -fopenmp $(SAN)
LDLIBS  += -lopenblas -ldnnl -ljansson -lpng -lz -lm -lpthread

ifeq ($(origin NVCC),undefined)
  NVCC := $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
endif
# The toolkit's root as nvcc itself reports it (nvcc may be a wrapper script outside the
# toolkit), and the folder that holds cuBLAS under it (lib64, or lib on newer layouts).
ifneq ($(NVCC),)
  ifeq ($(origin CUDA_HOME),undefined)
  CUDA_HOME   := $(abspath $(shell $(NVCC) -dryrun -x cu -c /dev/null -o /dev/null 2>&1 | \
                   sed -n 's/^\#\$$ TOP=//p' | head -n 1))
  CUDA_HOME   := $(or $(CUDA_HOME),$(patsubst %/bin/nvcc,%,$(NVCC)))
  endif
  CUDA_LIBDIR := $(firstword $(foreach d,lib64 targets/x86_64-linux/lib lib,\
                   $(if $(wildcard $(CUDA_HOME)/$(d)/libcublas.so),$(CUDA_HOME)/$(d))))
endif
ifeq ($(CUDA),auto)
  ifneq ($(CUDA_LIBDIR),)
    USE_CUDA := 1
  else
    USE_CUDA := 0
    ifneq ($(NVCC),)
      $(warning nvcc found at $(NVCC) but not cuBLAS under '$(CUDA_HOME)': building without CUDA)
    endif
  endif
else
  USE_CUDA := $(CUDA)
endif
ifeq ($(USE_CUDA),1)
  ifeq ($(NVCC),)
    $(error CUDA=1 but nvcc was not found)
  endif
  ifeq ($(CUDA_LIBDIR),)
    $(error CUDA=1 but cuBLAS (libcublas.so) was not found under CUDA_HOME='$(CUDA_HOME)')
  endif
  CUDA_ARCHS  ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
                 -gencode arch=compute_90,code=compute_90
  NVCCFLAGS   ?= -O3 -std=c++17 $(CUDA_ARCHS) -Iinclude -Icore -Xcompiler -Wall,-Wextra,-fPIC \
                 -Werror all-warnings
  CUDA_SRCS   := $(wildcard core/cuda/*.cu)
  CUDA_OBJS   := $(patsubst %.cu,$(BUILD)/obj/%.o,$(CUDA_SRCS))
  # cudart statically (it loads the driver itself, so binaries run where no driver is);
  # cuBLAS from the toolkit, found through the rpath.
  LDLIBS      += -L$(CUDA_LIBDIR) -Wl,-rpath,$(CUDA_LIBDIR) -lcublasLt -lcublas \
                 -lcudart_static -ldl -lrt -lstdc++
else
  CUDA_OBJS   := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard core/cuda/stub/*.c)) # "not built"
endif
# Every engine source one level down (core/net/, core/cpu/, ...); a backend that needs its own
# compiler (core/cuda/) has no .c files of its own at that level.
CORE_SRCS   := $(wildcard core/*.c core/*/*.c)

CORE_OBJS   := $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRCS)) $(CUDA_OBJS)
EDM_OBJS    := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tools/edm/*.c))
SRV_OBJS    := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard server/*.c))
TEST_SRCS   := $(wildcard tests/*/test_*.c)
TEST_OBJS   := $(patsubst %.c,$(BUILD)/obj/%.o,$(TEST_SRCS))
TEST_BINS   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
BENCH_BINS  := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
TEST_HELP   := $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out $(TEST_SRCS),$(wildcard tests/unit/*.c)))
# The fuzz targets with a plain main() (replayed by `make test`) and with libFuzzer (make fuzz).
REPLAY_BINS := $(patsubst tests/fuzz/fuzz_%.c,$(BUILD)/fuzz/replay_%,$(wildcard tests/fuzz/fuzz_*.c)) \
               $(patsubst tests/fuzz_server/fuzz_%.c,$(BUILD)/fuzz_server/replay_%,\
                   $(wildcard tests/fuzz_server/fuzz_*.c))
REPLAY_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tests/fuzz/*.c tests/fuzz_server/*.c))
FUZZ_BINS   := $(subst /replay_,/fuzz_,$(REPLAY_BINS))
LIB         := $(BUILD)/libedm.a
SRV_LIB     := $(BUILD)/libedmd.a

SRV_LDLIBS  := -lmicrohttpd -lhiredis
WEB_FILES   := $(sort $(wildcard server/web/*))
# The web page is compiled into edmd (tools/embed); server/web_assets.h declares the table.
ifneq ($(SRV_OBJS),)
  SRV_OBJS  += $(BUILD)/obj/gen/web_assets.o
endif

# include/ is the only way server/ and tools/ reach the engine; core, its tests and benches
# may use the internal headers (tests of the daemon: server/ too). Flags go on objects, not
# on binaries, whose prerequisites (the libraries' objects) would inherit them.
$(CORE_OBJS) $(TEST_OBJS) $(TEST_HELP) $(REPLAY_OBJS) $(BENCH_BINS): CFLAGS += -Icore
$(TEST_OBJS) $(TEST_HELP): CFLAGS += -Itests/unit
$(BUILD)/obj/tests/unit/test_server.o $(REPLAY_OBJS): CFLAGS += -Iserver
$(REPLAY_OBJS): CFLAGS += -Itests/fuzz

.PHONY: all run test asan bench bench-server clean info fuzz sim
all: $(LIB) $(BUILD)/edm $(if $(SRV_OBJS),$(BUILD)/edmd) $(TEST_BINS) $(REPLAY_BINS) $(BENCH_BINS)
	@echo "built: edm$(if $(SRV_OBJS), edmd) (CUDA backend: $(if $(filter 1,$(USE_CUDA)),on,off))"

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(CORE_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/edm: $(EDM_OBJS) $(LIB)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tools/embed: tools/embed/embed.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@

$(BUILD)/gen/web_assets.c: $(BUILD)/tools/embed $(WEB_FILES)
	@mkdir -p $(dir $@)
	$(BUILD)/tools/embed $@ server/web/ $(WEB_FILES)

$(BUILD)/obj/gen/web_assets.o: $(BUILD)/gen/web_assets.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-missing-prototypes -c $< -o $@

# openapi_doc.c embeds the JSON with .incbin, which -MMD cannot see.
$(BUILD)/obj/server/openapi_doc.o: server/openapi.json

$(BUILD)/edmd: $(SRV_OBJS) $(LIB)
	$(CC) $(LDFLAGS) $^ $(SRV_LDLIBS) $(LDLIBS) -o $@

# Tests link the engine, and those of the daemon also the daemon without its main()
# (libedmd.a); only what they use is pulled in. The archives go in a group, so their order
# does not matter.
$(SRV_LIB): $(filter-out %/main.o,$(SRV_OBJS))
	rm -f $@ && ar rcs $@ $^

LINK_TEST = $(CC) $(LDFLAGS) $(filter %.o,$^) -Wl,--start-group $(filter %.a,$^) -Wl,--end-group \
            $(LDLIBS) -o $@
SRV_TESTS := $(BUILD)/tests/unit/test_server $(filter $(BUILD)/fuzz_server/%,$(REPLAY_BINS))
$(SRV_TESTS): $(SRV_LIB)
$(SRV_TESTS): LDLIBS += $(SRV_LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_HELP) $(LIB)
	@mkdir -p $(dir $@)
	$(LINK_TEST)

$(BUILD)/fuzz/replay_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(BUILD)/obj/tests/fuzz/replay.o $(LIB)
	@mkdir -p $(dir $@)
	$(LINK_TEST)

$(BUILD)/fuzz_server/replay_%: $(BUILD)/obj/tests/fuzz_server/fuzz_%.o \
                               $(BUILD)/obj/tests/fuzz/replay.o $(LIB)
	@mkdir -p $(dir $@)
	$(LINK_TEST)

# libFuzzer targets: the fuzz driver and the few sources it reaches, all instrumented by clang.
CLANG      ?= clang
FUZZ_FLAGS := -std=c11 -O1 -g -D_GNU_SOURCE -Iinclude -Icore -Iserver -Itests/fuzz \
              -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
$(BUILD)/fuzz/fuzz_safetensors: core/io/safetensors.c core/status.c
$(BUILD)/fuzz/fuzz_npy: core/io/npy.c core/status.c
$(BUILD)/fuzz/fuzz_png: core/io/png_read.c core/io/image_in.c core/status.c
$(BUILD)/fuzz/fuzz_png: FUZZ_LIBS := -lpng -lz
$(BUILD)/fuzz_server/fuzz_request: server/json_req.c server/image_req.c server/errors.c \
                                   core/sampler/sampler_params.c core/status.c core/io/png_read.c \
                                   core/io/image_in.c core/io/sha256.c
$(BUILD)/fuzz_server/fuzz_request: FUZZ_LIBS := -lpng -lz
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_FLAGS) $^ -ljansson $(FUZZ_LIBS) -lm -o $@
$(BUILD)/fuzz_server/fuzz_%: tests/fuzz_server/fuzz_%.c
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_FLAGS) $^ -ljansson $(FUZZ_LIBS) -lm -o $@
fuzz: $(FUZZ_BINS)

# The CUDA backend on the host emulator (tests/gpu/sim/cuda_sim.h: one OS thread per CUDA
# thread, so slow): the .cu files by g++ -DEDM_CUDA_SIM, the rest of the engine as built in
# $(BUILD) (the C objects do not depend on CUDA), into $(SIM)/.
SIM          ?= build-sim
SIM_CXXFLAGS := -x c++ -std=c++20 -O1 -g -Wall -Wextra -Werror -DEDM_CUDA_SIM -Itests/gpu/sim \
                -Iinclude -Icore
SIM_LIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRCS)) \
                $(patsubst core/cuda/%.cu,$(SIM)/obj/%.o,$(wildcard core/cuda/*.cu))
$(SIM)/obj/%.o: core/cuda/%.cu
	@mkdir -p $(dir $@)
	$(CXX) $(SIM_CXXFLAGS) -MMD -MP -c $< -o $@
$(SIM)/libedm.a: $(SIM_LIB_OBJS)
	rm -f $@ && ar rcs $@ $^
$(SIM)/test_ops: $(BUILD)/obj/tests/unit/test_ops.o $(TEST_HELP) $(SIM)/libedm.a
	$(LINK_TEST) -lstdc++
$(SIM)/bench_gpu: $(BUILD)/obj/bench/bench_gpu.o $(SIM)/libedm.a
	$(LINK_TEST) -lstdc++
$(BUILD)/obj/bench/bench_gpu.o: CFLAGS += -Icore
sim: $(SIM)/test_ops $(SIM)/bench_gpu

$(BUILD)/bench/server_load: LDLIBS += -lcurl
$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ $(LDFLAGS) $(LDLIBS) -o $@

test: all
	BUILD=$(BUILD) tests/run_all.sh

# make test-unit, test-conformance, ...: one tier (the list is in tests/run_all.sh).
test-%: all
	BUILD=$(BUILD) tests/run_all.sh $*

asan:
	$(MAKE) BUILD=build-asan CUDA=0 OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" test

bench: all
	BUILD=$(BUILD) bench/run.sh

bench-server: all
	BUILD=$(BUILD) bench/server.sh

run: $(BUILD)/edmd
	BUILD=$(BUILD) deploy/run-local.sh $(MODEL)

clean:
	rm -rf build build-asan $(SIM)

-include $(shell find $(BUILD)/obj $(SIM)/obj -name '*.d' 2>/dev/null)
