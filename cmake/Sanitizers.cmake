# OG_SANITIZE=ON: AddressSanitizer + UndefinedBehaviorSanitizer for the whole tree.
if(OG_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
  # ASan's instrumentation makes g++ 12's flow analysis report false -Wmaybe-uninitialized
  # inside Boost.Beast headers; the normal build keeps the warning as an error.
  add_compile_options(-Wno-maybe-uninitialized)
endif()
