# BPF objects compiled with clang (-target bpf) into a libbpf skeleton header, the way
# libbpf-bootstrap's FindBpfObject does it:
#
#   og_bpf_skeleton(<name> SOURCE <file.bpf.c> [DEPENDS <headers>...])
#
# creates an INTERFACE target <name>_skel whose include directory holds <name>.skel.h
# (bpftool gen skeleton) and which links libbpf. The program sees only UAPI headers
# (linux-libc-dev), libbpf's bpf_helpers.h and the project's include/ and bpf/ directories:
# nothing is read from the build machine's kernel, so the object is the same wherever it is
# built; kernel-internal types are CO-RE relocated at load time.
find_program(OG_BPF_CLANG NAMES clang-14 clang REQUIRED)
find_program(OG_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
find_program(OG_LLVM_STRIP NAMES llvm-strip-14 llvm-strip)
pkg_check_modules(LIBBPF REQUIRED IMPORTED_TARGET libbpf>=1.0)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64")
  set(OG_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64")
  set(OG_BPF_ARCH arm64)
else()
  set(OG_BPF_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

# clang -target bpf does not search the multiarch directory that holds <asm/types.h>.
set(OG_BPF_SYSTEM_INCLUDES)
if(CMAKE_LIBRARY_ARCHITECTURE)
  list(APPEND OG_BPF_SYSTEM_INCLUDES -idirafter /usr/include/${CMAKE_LIBRARY_ARCHITECTURE})
endif()

function(og_bpf_skeleton name)
  cmake_parse_arguments(ARG "" "SOURCE" "DEPENDS" ${ARGN})
  get_filename_component(src ${ARG_SOURCE} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(skel ${CMAKE_CURRENT_BINARY_DIR}/${name}.skel.h)
  set(strip_cmd)
  if(OG_LLVM_STRIP)
    # DWARF is only needed to produce BTF; the skeleton embeds the object, keep it small.
    set(strip_cmd COMMAND ${OG_LLVM_STRIP} -g ${obj})
  endif()
  add_custom_command(OUTPUT ${obj}
    COMMAND ${OG_BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${OG_BPF_ARCH}
            -Wall -Wextra -Wno-unused-parameter -Werror
            -I${PROJECT_SOURCE_DIR}/include -I${PROJECT_SOURCE_DIR}/bpf ${OG_BPF_SYSTEM_INCLUDES}
            -c ${src} -o ${obj}
    ${strip_cmd}
    DEPENDS ${src} ${ARG_DEPENDS}
    COMMAND_EXPAND_LISTS VERBATIM
    COMMENT "[clang -target bpf] ${name}")
  add_custom_command(OUTPUT ${skel}
    COMMAND bash -c "${OG_BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}.tmp && mv ${skel}.tmp ${skel}"
    DEPENDS ${obj}
    VERBATIM
    COMMENT "[bpftool gen skeleton] ${name}")
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  # SYSTEM: the generated C header is not held to the project's C++ warning flags.
  target_include_directories(${name}_skel SYSTEM INTERFACE ${CMAKE_CURRENT_BINARY_DIR})
  target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
  set(${name}_OBJECT ${obj} PARENT_SCOPE)
endfunction()
