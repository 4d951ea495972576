# wopt — the two commands a new user types: `make demo` and `make check`.
# Both install the Debian packages that are missing, then configure and build.

BUILD ?= build
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

.PHONY: all deps configure build demo check bench clean

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

check: build
	@cmake --build $(BUILD) --target check

bench: build
	@bash test/bench/run.sh $(BUILD)/bin/wopt

clean:
	rm -rf $(BUILD)
