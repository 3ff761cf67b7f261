# OG_SANITIZE=ON: AddressSanitizer + UndefinedBehaviorSanitizer for the whole tree.
if(OG_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
  # ASan's instrumentation makes g++ 12's flow analysis report false -Wmaybe-uninitialized
  # inside Boost.Beast headers; the normal build keeps the warning as an error.
  add_compile_options(-Wno-maybe-uninitialized)
endif()
# OG_TSAN=ON: ThreadSanitizer (scripts/tsan.sh builds the gatekeeper and its unit tests with it).
# It cannot be combined with ASan, and brings its own allocator like ASan does.
if(OG_TSAN)
  if(OG_SANITIZE)
    message(FATAL_ERROR "OG_TSAN and OG_SANITIZE cannot be combined")
  endif()
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
  # As with ASan: g++ 12's flow analysis under the instrumentation reports false
  # -Wmaybe-uninitialized inside Boost.Beast headers.
  add_compile_options(-Wno-maybe-uninitialized)
  # g++ warns that TSan does not model std::atomic_thread_fence, which asio's fenced blocks use
  # around handler calls. asio hands handlers between threads under its scheduler's mutex,
  # which TSan does see, so the fences add nothing it needs; the code stays as in production.
  add_compile_options(-Wno-tsan)
endif()
