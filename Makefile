# wopt — the two commands a new user types: `make demo` and `make check`.
# Both install the Debian packages that are missing, then configure and build.
# `make fuzz` builds the fuzz targets with clang and runs each one.

BUILD ?= build
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

# The fuzz build: every source with libFuzzer's coverage, ASan and UBSan,
# assertions on. clang 19, as the LLVM 19 archives wopt links want.
FUZZ_BUILD ?= build-fuzz
FUZZ_CXX ?= clang++-19
FUZZ_TIME ?= 60
FUZZ_SANITIZE = -fsanitize=fuzzer-no-link,address,undefined \
  -fno-sanitize-recover=undefined -fno-omit-frame-pointer
HAVE_FUZZ_CXX := $(shell command -v $(FUZZ_CXX) 2>/dev/null)

.PHONY: all deps configure build demo check bench clean fuzz fuzz-deps fuzz-build

all: build

deps:
	@bash utils/install-deps.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

configure: deps $(BUILD)/build.ninja

build: configure
	cmake --build $(BUILD)

demo: build
	@bash examples/demo.sh $(BUILD)/bin/wopt

# With clang present, the suite also runs every fuzz target briefly over its
# seeds (test/Reliability/fuzz-seeds.test); without it, only the replay of
# fuzz/regressions/, built with the normal compiler.
ifneq ($(HAVE_FUZZ_CXX),)
check: build fuzz-build
	@WOPT_FUZZ_BIN=$(abspath $(FUZZ_BUILD))/bin cmake --build $(BUILD) --target check
else
check: build
	@cmake --build $(BUILD) --target check
endif

bench: build
	@bash test/bench/run.sh $(BUILD)/bin/wopt

fuzz-deps:
	@bash utils/install-deps.sh --fuzz

$(FUZZ_BUILD)/build.ninja:
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_CXX_COMPILER=$(FUZZ_CXX) \
	  -DWOPT_FUZZ=ON -DCMAKE_BUILD_TYPE=Fuzz \
	  "-DCMAKE_CXX_FLAGS_FUZZ=-O1 -gline-tables-only $(FUZZ_SANITIZE)"

fuzz-build: $(FUZZ_BUILD)/build.ninja
	cmake --build $(FUZZ_BUILD) --target wopt-fuzz-targets

# Seeds are generated, then each target runs FUZZ_TIME seconds (FUZZ_RUNS
# executions when set); what fails lands in $(FUZZ_BUILD)/work/findings/.
fuzz: fuzz-deps build
	@$(MAKE) --no-print-directory fuzz-build
	/usr/bin/python3 fuzz/make_seeds.py $(BUILD)/bin/wopt $(FUZZ_BUILD)/seeds
	FUZZ_TIME=$(FUZZ_TIME) bash fuzz/run.sh $(FUZZ_BUILD)/bin $(FUZZ_BUILD)/seeds $(FUZZ_BUILD)/work

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD)
