# DaemonEye developer entry points. `./dev.sh TARGET` does the same on a
# machine that does not have make yet.
#
#   make deps    install the Debian 12 packages the build needs (sudo when not root)
#   make build   configure and build (build/)
#   make test    build and run every test (unit + multi-process integration)
#   make demo    run the full agent with its collectors and show them working (Ctrl-C stops)
#   make install install programs, headers and the CMake package (PREFIX=/usr/local)
#   make asan    build with AddressSanitizer+UBSan (build-asan/) and run every test
#   make tsan    build with ThreadSanitizer (build-tsan/) and run every test
#   make windows cross-build for Windows with mingw-w64 (build-windows/); the
#                third-party libraries are built once from Debian's source packages
#                into build-windows/deps (scripts/windows-deps.sh)
#   make windows-test  the same, then run every test under Wine
#   make bench   build the micro-benchmarks in Release (build-bench/) and run each briefly
#   make fuzz    build the libFuzzer targets with clang (build-fuzz/) and run each
#                for FUZZ_SECONDS (default 60)

BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
PREFIX ?= /usr/local
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

DEB_PACKAGES := build-essential cmake pkg-config \
  libasio-dev libprotobuf-dev protobuf-compiler \
  libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev libtomlplusplus-dev libsqlite3-dev libssl-dev \
  libgtest-dev libgmock-dev libbenchmark-dev

FUZZ_SECONDS ?= 60
FUZZ_PACKAGES := clang-14 libfuzzer-14-dev libclang-rt-14-dev

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps install-packages build test demo install clean asan tsan windows windows-test fuzz fuzz-seeds bench

all: build

deps:
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(DEB_PACKAGES)"

install-packages:
	@missing=""; \
	for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(BUILD_DIR)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DDAEMONEYE_WERROR=ON $(CMAKE_FLAGS)

build: deps $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 300

demo: build
	scripts/demo.sh $(BUILD_DIR)

install: build
	cmake --install $(BUILD_DIR) --prefix $(PREFIX)

asan tsan: deps
	cmake --preset $@ $(CMAKE_FLAGS)
	cmake --build build-$@ -j $(JOBS)
	cd build-$@ && ctest --output-on-failure -j $(JOBS) --timeout 600

# Windows: tests and gtest_discover_tests run under Wine through a persistent
# wineserver (scripts/wine-run.sh), stopped again at the end.
WINDOWS_BUILD_DIR ?= build-windows
WINE_STOP = DAEMONEYE_WINEPREFIX=$(abspath $(WINDOWS_BUILD_DIR))/wineprefix $(CURDIR)/scripts/wine-run.sh --stop

windows:
	scripts/windows-deps.sh $(WINDOWS_BUILD_DIR)
	cmake -S . -B $(WINDOWS_BUILD_DIR) -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/mingw-w64.cmake \
	  -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DDAEMONEYE_WERROR=ON $(CMAKE_FLAGS)
	cmake --build $(WINDOWS_BUILD_DIR) -j $(JOBS); rc=$$?; $(WINE_STOP); exit $$rc

windows-test: windows
	cd $(WINDOWS_BUILD_DIR) && ctest --output-on-failure -j2 --timeout 300; rc=$$?; $(WINE_STOP); exit $$rc

bench: deps
	cmake --preset bench $(CMAKE_FLAGS)
	cmake --build build-bench -j $(JOBS) --target codec_bench topic_bench routing_bench
	for b in codec_bench topic_bench routing_bench; do build-bench/bench/micro/$$b --benchmark_min_time=0.2 || exit 1; done

fuzz: deps
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(FUZZ_PACKAGES)"
	cmake --preset fuzz
	cmake --build build-fuzz -j $(JOBS) --target frame_fuzz topic_fuzz broker_fuzz
	scripts/fuzz.sh build-fuzz $(FUZZ_SECONDS)

# Regenerates the committed seed corpora from well-formed frames.
fuzz-seeds: fuzz
	cmake --build build-fuzz --target make_seeds
	build-fuzz/fuzz/make_seeds fuzz/corpus

clean:
	rm -rf $(BUILD_DIR) build-asan build-tsan build-fuzz build-bench
