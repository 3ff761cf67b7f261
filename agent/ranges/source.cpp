#include "ranges/source.hpp"

#include <fstream>
#include <sstream>

namespace og::ranges {

std::string effective_url(const std::string& url, bool include_china) {
  if (!include_china || url.find("/client/v4/ips") == std::string::npos || url.find("networks=") != std::string::npos)
    return url;
  return url + (url.find('?') == std::string::npos ? "?" : "&") + "networks=jdcloud";
}

std::string describe(const std::vector<std::string>& urls) {
  std::string out;
  for (const auto& u : urls) out += (out.empty() ? "" : " + ") + u;
  return out;
}

Result<HttpResponse> read_file_url(const std::string& url, std::size_t cap) {
  std::string path = url.substr(std::string_view("file://").size());
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail_errno("open " + path);
  HttpResponse r;
  r.status = 200;
  // Grown with what is read, never sized by the cap: a 1.5 KB file under a 64 MiB
  // max_body_bytes used to touch (and keep as peak RSS) the whole 64 MiB.
  char chunk[16384];
  while (in) {
    in.read(chunk, sizeof chunk);
    const auto got = static_cast<std::size_t>(in.gcount());
    if (r.body.size() + got > cap) return fail("file exceeds " + std::to_string(cap) + " bytes (max_body_bytes)");
    r.body.append(chunk, got);
  }
  if (in.bad()) return fail_errno("read " + path);
  return r;
}

namespace {

std::string status_hint(const HttpResponse& r) {
  std::string_view b(r.body);
  auto pos = b.find_first_not_of(" \t\r\n");
  if (pos != std::string_view::npos && b[pos] == '<') return " (HTML page: challenge or error page?)";
  return "";
}

}  // namespace

Result<HttpResponse> SourceFetcher::get_one(const std::string& url, const std::string& inm) {
  if (url.starts_with("file://")) return read_file_url(url, cfg_.max_body_bytes);
  return http_.get(effective_url(url, cfg_.include_china_network), inm);
}

Result<Fetched> SourceFetcher::fetch(const std::vector<std::string>& urls, const EtagMap& etags, bool conditional) {
  Fetched out;
  std::vector<HttpResponse> bodies(urls.size());
  std::vector<bool> unchanged(urls.size(), false);
  std::size_t n_unchanged = 0;
  for (std::size_t i = 0; i < urls.size(); ++i) {
    const auto& url = urls[i];
    std::string inm;
    if (auto it = etags.find(url); conditional && it != etags.end()) inm = it->second;
    auto r = get_one(url, inm);
    if (!r) return fail(r.error().context(url));
    if (r->status == 304 && !inm.empty()) {
      unchanged[i] = true;
      ++n_unchanged;
      out.etags[url] = inm;
      continue;
    }
    if (r->status != 200) return fail(url + ": HTTP " + std::to_string(r->status) + status_hint(*r));
    bodies[i] = std::move(*r);
  }
  if (n_unchanged == urls.size()) {
    out.not_modified = true;
    return out;
  }
  // Part of a union changed: refetch the unchanged parts unconditionally so the candidate is
  // whole (we keep no per-URL bodies across refreshes).
  for (std::size_t i = 0; i < urls.size(); ++i) {
    if (!unchanged[i]) continue;
    auto r = get_one(urls[i], "");
    if (!r) return fail(r.error().context(urls[i]));
    if (r->status != 200) return fail(urls[i] + ": HTTP " + std::to_string(r->status) + status_hint(*r));
    bodies[i] = std::move(*r);
  }
  for (std::size_t i = 0; i < urls.size(); ++i) {
    auto parsed = parse_body(bodies[i].body, bodies[i].content_type, cfg_.include_china_network);
    // Parsed: the body (megabytes for a large list) is not needed any more.
    std::string().swap(bodies[i].body);
    if (!parsed) return fail(parsed.error().context(urls[i]));
    if (out.ranges.prefixes.empty()) {
      out.ranges.prefixes = std::move(parsed->prefixes);
    } else {
      out.ranges.prefixes.insert(out.ranges.prefixes.end(), parsed->prefixes.begin(), parsed->prefixes.end());
    }
    if (!bodies[i].etag.empty()) out.etags[urls[i]] = bodies[i].etag;
    if (out.etag.empty()) out.etag = !parsed->etag.empty() ? parsed->etag : bodies[i].etag;
  }
  return out;
}

}  // namespace og::ranges
