# Debian's hardening flags (dpkg-buildflags: stack protector, _FORTIFY_SOURCE=2, RELRO) plus
# BIND_NOW, for every target of a normal build: the agent runs as root and the gatekeeper
# faces the Internet, and nginx, the gatekeeper's yardstick, is built with the same flags.
# Not with sanitizers (ASan, TSan) or the fuzzers, whose interceptors _FORTIFY_SOURCE would bypass.
if(NOT OG_SANITIZE AND NOT OG_TSAN AND NOT OG_FUZZ)
  add_compile_options(-fstack-protector-strong
    # glibc warns (and -Werror fails) when _FORTIFY_SOURCE meets -O0
    $<$<NOT:$<CONFIG:Debug>>:-D_FORTIFY_SOURCE=2>)
  add_link_options(-Wl,-z,relro -Wl,-z,now)
endif()
