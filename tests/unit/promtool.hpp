// `promtool check metrics` (Debian's prometheus package) on a text exposition, for unit tests
// of the agent's and the gatekeeper's metrics.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#ifndef OG_PROMTOOL
#define OG_PROMTOOL "promtool"
#endif

namespace og::test {

// "" when promtool accepts `text` (names, types, HELP, units, grouping), else its complaints
// (or why it did not run).
inline std::string promtool_check_metrics(const std::string& text) {
  const auto file = std::filesystem::temp_directory_path() / ("og-metrics-" + std::to_string(::getpid()) + ".txt");
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << text;
  }
  const std::string cmd = std::string(OG_PROMTOOL) + " check metrics < '" + file.string() + "' 2>&1";
  std::string said;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return "cannot run " + cmd;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) said += buf;
  const int rc = ::pclose(p);
  std::filesystem::remove(file);
  if (rc != 0) return said.empty() ? "promtool exited with status " + std::to_string(rc) + " (installed?)" : said;
  return "";
}

}  // namespace og::test
