# qbrief build. `make` builds bin/qbrief, `make test` builds and runs every test,
# `make SAN=address,undefined test` does so under sanitizers, `make fuzz` builds the
# libFuzzer harnesses with clang. Every library is found through pkg-config except
# libharu and libcsv, which Debian ships without .pc files.

CC      ?= cc
O       ?= build
SAN     ?=
OPT     ?= -O2
PKGS    := jansson libpcre2-8 sqlite3 yaml-0.1 glib-2.0 cairo

ifneq ($(SAN),)
O       := build-san
OPT     := -O1 -g -fno-omit-frame-pointer
SANFLAGS := -fsanitize=$(SAN) -fno-sanitize-recover=all
endif

# What the code needs to build at all (QB_CFLAGS, QB_LDFLAGS) is kept apart from what a user
# may set: `make CFLAGS=-O0` changes the optimisation, not the language, OpenMP or warnings.
WARN    := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Wformat=2 -Wvla \
           -Wcast-qual
ifeq ($(WERROR),1)
WARN    += -Werror
endif
QB_CPPFLAGS := -I. $(patsubst -I%,-isystem %,$(shell pkg-config --cflags $(PKGS)))
QB_CFLAGS   := -std=c11 -D_GNU_SOURCE -fopenmp -MMD -MP $(WARN) $(SANFLAGS)
QB_LDFLAGS  := -fopenmp $(SANFLAGS)
QB_LDLIBS   := $(shell pkg-config --libs $(PKGS)) -lcsv -lhpdf -lm
CFLAGS  ?= $(OPT) -g
ALL_CFLAGS = $(QB_CPPFLAGS) $(CPPFLAGS) $(QB_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(QB_LDFLAGS) $(LDFLAGS)
ALL_LDLIBS = $(QB_LDLIBS) $(LDLIBS)

# every .c under the four library folders, at any depth, except the CLI's main
LIB_SRC  := $(filter-out collector/cli/main.c,$(shell find collector kernels analysis output -name '*.c' | sort))
LIB_OBJ  := $(LIB_SRC:%.c=$(O)/%.o)
MAIN_OBJ := $(O)/collector/cli/main.o
TEST_SRC := $(shell find tests -name 'test_*.c' | sort)
TEST_BIN := $(TEST_SRC:tests/%.c=$(O)/tbin/%)
TESTLIB_OBJ := $(O)/tests/check.o

.PHONY: all test fuzz clean demo deps check-layers format-check
all: bin/qbrief$(if $(SAN),-san)

bin/qbrief$(if $(SAN),-san): $(MAIN_OBJ) $(O)/libqbrief.a
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(ALL_LDLIBS)

$(O)/libqbrief.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(O)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ISAFLAGS) -c -o $@ $<

# the commit recorded with every run (stale only in a tree rebuilt without touching run.c)
$(O)/collector/run/run.o: QB_CPPFLAGS += -DQB_GIT_COMMIT='"$(shell git rev-parse --short=12 HEAD 2>/dev/null)"'

# instruction-set flags per file only: the rest of the program runs on any x86-64
$(O)/kernels/x86/%_avx2.o: ISAFLAGS = -mavx2 -mfma -mf16c
$(O)/kernels/x86/%_avx512.o: ISAFLAGS = -mavx512f -mavx512bw -mavx512vl -mavx2 -mfma -mf16c
build-fuzz/kernels/x86/%_avx2.o: ISAFLAGS = -mavx2 -mfma -mf16c
build-fuzz/kernels/x86/%_avx512.o: ISAFLAGS = -mavx512f -mavx512bw -mavx512vl -mavx2 -mfma -mf16c

$(O)/tbin/%: tests/%.c $(TESTLIB_OBJ) $(O)/libqbrief.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(ALL_LDLIBS)

# benchmarks and tools written in C: build/tools/NAME from tools/NAME.c
$(O)/tools/%: tools/%.c $(O)/libqbrief.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(ALL_LDLIBS)
.PHONY: bench-brief bench-calib bench-merge
bench-brief: $(O)/tools/bench-brief
	$(O)/tools/bench-brief
bench-merge: $(O)/tools/bench-merge
	$(O)/tools/bench-merge
bench-calib: $(O)/tools/bench-calib
	tools/bench-calib.sh

# every #include in the library points down the layers (docs/architecture.md)
check-layers:
	@tools/check-layers.py

# every C file of the library, tests and tools against the repository's .clang-format, changing
# nothing (run by `make test`); skipped with a message where clang-format is missing
CLANG_FORMAT ?= clang-format
FORMAT_SRC = $(shell find collector kernels analysis output tests tools -name '*.[ch]' | sort)
format-check:
	@if command -v $(CLANG_FORMAT) >/dev/null 2>&1; then \
		$(CLANG_FORMAT) --dry-run --Werror $(FORMAT_SRC) && \
		echo "format-check: every file matches .clang-format"; \
	else \
		echo "format-check: skipped, $(CLANG_FORMAT) is not installed (scripts/install-deps.sh installs it)"; \
	fi

test: check-layers format-check bin/qbrief$(if $(SAN),-san) $(TEST_BIN)
	@QB_BUILD=$(O) QBRIEF=bin/qbrief$(if $(SAN),-san) tests/run.sh $(TEST_BIN)

# libFuzzer harnesses: one per parser, built with clang (see tests/fuzz/README.md)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=build-fuzz/%.o)
fuzz: $(FUZZ_BIN)
build-fuzz/%.o: %.c
	@mkdir -p $(@D)
	clang $(QB_CPPFLAGS) $(CPPFLAGS) $(ISAFLAGS) -std=c11 -D_GNU_SOURCE -O1 -g -fopenmp -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -c -o $@ $<
build-fuzz/libqbrief.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^
build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c build-fuzz/libqbrief.a
	clang $(QB_CPPFLAGS) $(CPPFLAGS) -std=c11 -D_GNU_SOURCE -O1 -g -fopenmp -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -o $@ $^ $(ALL_LDLIBS)

# The bundled demo: qbrief's own model (examples/demo, trained by tools/make-demo.py) in thirteen
# configs, measured and briefed. Results go to out/demo/ (a rerun resumes from qbrief.db).
deps:
	scripts/install-deps.sh
demo: deps
	$(MAKE) all
	@mkdir -p out/demo
	bin/qbrief run examples/demo/plan.yaml
	@bin/qbrief brief --db out/demo/qbrief.db --run demo -o out/demo/brief.md >/dev/null
	@bin/qbrief brief --db out/demo/qbrief.db --run demo -o out/demo/brief.pdf

clean:
	rm -rf build build-san build-fuzz bin

-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d) $(TESTLIB_OBJ:.o=.d)
