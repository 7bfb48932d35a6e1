# edm-serve - build, test and benchmark.
#
#   make            build build/edm, build/edmd and the tests
#   make run        build and serve the bundled model on 127.0.0.1:8080
#   make test       run every test tier (unit, conformance, CLI, server)
#   make asan       the test suite under AddressSanitizer + UBSan (build-asan/)
#   make bench      engine benchmark (ms per evaluation, GFLOP/s vs SGEMM)
#   make clean
#
# CUDA=auto (default) builds the CUDA backend when nvcc and cuBLAS are found, CUDA=0 never,
# CUDA=1 requires them (CUDA_HOME=... overrides the toolkit nvcc reports).
# Files follow conventions, so adding a file needs no edit here:
#   core/*.c core/*/*.c -> build/libedm.a     (the engine, its formats and the CPU backend)
#   core/cuda/*.cu      -> build/libedm.a     when CUDA is on; core/cuda/stub/*.c when it is off
#   tools/edm/*.c       -> build/edm
#   server/*.c          -> build/edmd
#   tests/unit/test_*.c -> build/tests/test_*  (each links libedm)

BUILD   ?= build
CC      ?= cc
CUDA    ?= auto
SAN     ?=
OPT     ?= -O2

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror
CFLAGS  += -std=c11 $(OPT) -g $(WARN) -D_GNU_SOURCE -fopenmp -Iinclude \
           -I/usr/include/x86_64-linux-gnu/openblas-pthread $(SAN)
LDFLAGS += -fopenmp $(SAN)
LDLIBS  += -lopenblas -ljansson -lpng -lz -lm -lpthread

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
TEST_SRCS   := $(wildcard tests/unit/test_*.c)
TEST_BINS   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
BENCH_BINS  := $(patsubst bench/%.c,$(BUILD)/bench/%,$(wildcard bench/*.c))
TEST_HELP   := $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out $(TEST_SRCS),$(wildcard tests/unit/*.c)))
LIB         := $(BUILD)/libedm.a

SRV_LDLIBS  := -lmicrohttpd -lhiredis
WEB_FILES   := $(sort $(wildcard server/web/*))
# The web page is compiled into edmd (tools/embed); server/web_assets.h declares the table.
ifneq ($(SRV_OBJS),)
  SRV_OBJS  += $(BUILD)/obj/gen/web_assets.o
endif

# include/ is the only way server/ and tools/ reach the engine; core, its tests and benches
# may use the internal headers.
$(CORE_OBJS) $(TEST_BINS) $(TEST_HELP) $(BENCH_BINS): CFLAGS += -Icore

.PHONY: all run test asan bench bench-server clean info
all: $(LIB) $(BUILD)/edm $(if $(SRV_OBJS),$(BUILD)/edmd) $(TEST_BINS) $(BENCH_BINS)
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

$(BUILD)/tests/%: tests/unit/%.c $(TEST_HELP) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit $^ $(LDFLAGS) $(LDLIBS) -o $@

$(BUILD)/bench/server_load: LDLIBS += -lcurl
$(BUILD)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ $(LDFLAGS) $(LDLIBS) -o $@

test: all
	BUILD=$(BUILD) tests/run_all.sh

asan:
	$(MAKE) BUILD=build-asan CUDA=0 OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" test

bench: all
	BUILD=$(BUILD) bench/run.sh

bench-server: all
	BUILD=$(BUILD) bench/server.sh

run: $(BUILD)/edmd
	BUILD=$(BUILD) deploy/run-local.sh $(MODEL)

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
