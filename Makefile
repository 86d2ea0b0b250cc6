# Thin wrapper over CMake: the two commands of the README.
#   make run   install what is missing, build, serve manifests/examples
#   make test  install what is missing, build twice (plain and ASan+UBSan), run every test
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
CMAKE_FLAGS ?=
# make install PREFIX=/usr DESTDIR=/tmp/stage
PREFIX ?= /usr/local

.PHONY: all deps build build-asan run test test-plain test-asan bench format clean

all: build

deps:
	@contrib/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

$(ASAN_BUILD)/CMakeCache.txt:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DALBD_SANITIZE=ON $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j $(JOBS)

run: build
	contrib/demo.sh $(BUILD)/albd

test-plain: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: build-asan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS)

test: test-plain test-asan

bench: build
	contrib/deps.sh --bench
	bench/run.sh $(BUILD)/albd

format:
	clang-format -i agent/*.[ch] reconciler/*.[ch] proxy/*.[ch] tests/unit/*/*.c

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

.PHONY: install validate-examples

# The binary, schemas, albd(1), the systemd unit (+ sysusers/tmpfiles), the
# examples and the CI script under $(DESTDIR)$(PREFIX); see albd(1) FILES.
install: build
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	cmake --install $(BUILD)

# The examples' certificate is generated (never shipped): make it, then validate.
validate-examples: build
	contrib/demo.sh --certs-only
	$(BUILD)/albd validate -m manifests/examples
