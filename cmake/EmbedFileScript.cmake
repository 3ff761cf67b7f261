# Script mode helper for og_embed_file: hex-encodes INPUT so any byte survives.
file(READ ${INPUT} hex HEX)
string(LENGTH "${hex}" hexlen)
math(EXPR len "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," body "${hex}")
string(REGEX MATCH "^(.*)::([^:]+)$" _ ${SYMBOL})
set(ns ${CMAKE_MATCH_1})
set(var ${CMAKE_MATCH_2})
file(WRITE ${OUTPUT} "// Generated from ${INPUT}; do not edit.\n#include <string_view>\nnamespace ${ns} {\nnamespace { constexpr char kData[] = {${body} '\\0'}; }\nextern const std::string_view ${var};\nconst std::string_view ${var}{kData, ${len}};\n}\n")
