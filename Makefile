# wopt — the two commands a new user types: `make demo` and `make check`.
# Both install the Debian packages that are missing, then configure and build.
# `make install PREFIX=/opt/wopt` installs the tool, the headers, the
# libraries and the CMake package (find_package(Wopt CONFIG)); DESTDIR works.

BUILD ?= build
PREFIX ?= /usr/local
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

.PHONY: all deps configure build demo check bench install clean

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

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

bench: build
	@bash test/bench/run.sh $(BUILD)/bin/wopt

clean:
	rm -rf $(BUILD)
