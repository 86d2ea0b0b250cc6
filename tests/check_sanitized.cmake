# ctest build/albd_sanitizer_matches_configuration: the albd binary carries
# the AddressSanitizer and UndefinedBehaviorSanitizer runtimes exactly when
# the build was configured with ALBD_SANITIZE=ON, so a build directory whose
# cache lost the option (or a plain binary copied in) cannot run the
# "sanitized" suite green.
#   cmake -DALBD=<binary> -DWANT=<ON|OFF> -P check_sanitized.cmake
if(NOT EXISTS "${ALBD}")
  message(FATAL_ERROR "no albd binary at '${ALBD}'")
endif()
file(STRINGS "${ALBD}" asan REGEX "__asan_init" LIMIT_COUNT 1)
file(STRINGS "${ALBD}" ubsan REGEX "__ubsan_handle_" LIMIT_COUNT 1)
set(has_asan NO)
set(has_ubsan NO)
if(asan)
  set(has_asan YES)
endif()
if(ubsan)
  set(has_ubsan YES)
endif()
if(WANT)
  if(NOT has_asan OR NOT has_ubsan)
    message(FATAL_ERROR "${ALBD}: configured with ALBD_SANITIZE=ON but not instrumented "
                        "(__asan_init: ${has_asan}, __ubsan_handle_*: ${has_ubsan}); "
                        "reconfigure: make build-asan")
  endif()
  message(STATUS "${ALBD}: ASan and UBSan instrumented, as configured")
else()
  if(has_asan OR has_ubsan)
    message(FATAL_ERROR "${ALBD}: configured with ALBD_SANITIZE=OFF but instrumented "
                        "(__asan_init: ${has_asan}, __ubsan_handle_*: ${has_ubsan})")
  endif()
  message(STATUS "${ALBD}: not instrumented, as configured")
endif()
