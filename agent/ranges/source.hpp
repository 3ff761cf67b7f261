// Fetches one source alternative (one URL, or several whose union is the candidate):
// https:// through HttpClient with If-None-Match, file:/// from disk. Checks the transport
// level (status, size, content type) and parses; policy checks are the validator's.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "originguard/config.hpp"
#include "ranges/http_client.hpp"
#include "ranges/parse.hpp"

namespace og::ranges {

using EtagMap = std::map<std::string, std::string>;  // URL -> ETag header of its last 200

struct Fetched {
  bool not_modified = false;  // every URL answered 304 to our If-None-Match
  ParsedRanges ranges;        // union of all URLs (empty when not_modified)
  EtagMap etags;              // for the next conditional request
  std::string etag;           // shown in status: the API body's etag, else the ETag header
};

// The URL actually requested: adds networks=jdcloud to the JSON API when the China network
// is included.
[[nodiscard]] std::string effective_url(const std::string& url, bool include_china);

class SourceFetcher {
 public:
  SourceFetcher(HttpClient& http, const RangesConfig& cfg) : http_(http), cfg_(cfg) {}
  // `conditional`: send If-None-Match with the ETags we hold.
  [[nodiscard]] Result<Fetched> fetch(const std::vector<std::string>& urls, const EtagMap& etags, bool conditional);

 private:
  Result<HttpResponse> get_one(const std::string& url, const std::string& inm);
  HttpClient& http_;
  const RangesConfig& cfg_;
};

[[nodiscard]] std::string describe(const std::vector<std::string>& urls);  // "a + b"

// A file:// source's body: at most cap bytes, its memory proportional to what was read.
[[nodiscard]] Result<HttpResponse> read_file_url(const std::string& url, std::size_t cap);

}  // namespace og::ranges
