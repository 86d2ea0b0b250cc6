# Thin wrapper over CMake: the two commands of the README.
#   make run   install what is missing, build, serve manifests/examples
#   make test  install what is missing, build twice (plain and ASan+UBSan), run every test
#   make fuzz  build the fuzz harnesses with clang + libFuzzer, run each FUZZ_SECONDS (tests/fuzz)
JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
CMAKE_FLAGS ?=
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= manifest h1_request h1_response h2_frames tls_hello certsvc_reply certstore
# make install PREFIX=/usr DESTDIR=/tmp/stage
PREFIX ?= /usr/local

.PHONY: all deps build build-asan run test test-plain test-asan test-list bench format clean fuzz

all: build

deps:
	@contrib/deps.sh

# Configure on every build (a fraction of a second on a configured tree), so
# a changed CMAKE_FLAGS or a stale cache is never silently kept. The ASan
# build puts -DALBD_SANITIZE=ON last: no CMAKE_FLAGS can turn it off.
build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS) -DALBD_SANITIZE=ON
	@grep -qx 'ALBD_SANITIZE:BOOL=ON' $(ASAN_BUILD)/CMakeCache.txt || \
	  { echo "$(ASAN_BUILD) is not configured with ALBD_SANITIZE=ON"; exit 1; }
	cmake --build $(ASAN_BUILD) -j $(JOBS)

run: build
	contrib/demo.sh $(BUILD)/albd

# Every run first checks that ctest registered exactly the tests listed in
# tests/expected_tests.txt (a lost test fails the build, a new one must be
# listed): after adding or removing a test, run `make test-list`.
test-plain: build
	tests/check_test_list.sh $(BUILD)
	cd $(BUILD) && ctest --no-tests=error --output-on-failure -j $(JOBS)

test-asan: build-asan
	tests/check_test_list.sh $(ASAN_BUILD)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --no-tests=error --output-on-failure -j $(JOBS)

# Rewrite tests/expected_tests.txt from what ctest registers (review the diff).
test-list: build
	tests/check_test_list.sh --write $(BUILD)

test: test-plain test-asan

$(FUZZ_BUILD)/CMakeCache.txt:
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DALBD_FUZZ=ON $(CMAKE_FLAGS)

fuzz: deps $(FUZZ_BUILD)/CMakeCache.txt
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target $(addprefix fuzz_,$(FUZZ_TARGETS))
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

bench: build
	contrib/deps.sh --bench
	bench/run.sh $(BUILD)/albd

format:
	clang-format -i agent/*.[ch] reconciler/*.[ch] proxy/*.[ch] tests/unit/*/*.c tests/fuzz/*.[ch]

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

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
