#include "ranges/refresher.hpp"

namespace og::ranges {

RefreshOutcome Refresher::run(const RefreshInput& in, WallTime now) {
  RefreshOutcome out;
  SourceFetcher fetcher(http_, cfg_);
  const auto policy = ValidationPolicy::from(cfg_);
  std::vector<Error> failures;

  for (const auto& alt : cfg_.sources) {
    const std::string label = describe(alt);
    const bool same_source = label == in.current_source;
    auto fetched = fetcher.fetch(alt, in.etags, same_source && !in.force);
    if (!fetched) {
      failures.push_back(fetched.error());
      continue;
    }
    if (fetched->not_modified) {
      out.kind = RefreshOutcome::Kind::not_modified;
      break;
    }
    auto valid = validate(std::move(fetched->ranges), policy, in.last_good ? &*in.last_good : nullptr, in.force);
    if (!valid) {
      failures.push_back(valid.error().context(label + ": refused"));
      continue;
    }
    out.kind = RefreshOutcome::Kind::updated;
    out.result.ranges = std::move(valid->set);
    out.result.source = label;
    out.result.etag = fetched->etag;
    out.result.etags = std::move(fetched->etags);
    out.result.fetched_at = now;
    out.notes = std::move(valid->notes);
    break;
  }

  if (out.kind == RefreshOutcome::Kind::failed) {
    for (const auto& f : failures) {
      out.error.message += (out.error.message.empty() ? "" : "; then ") + f.message;
      if (out.error.sys_errno == 0) out.error.sys_errno = f.sys_errno;
    }
    return out;
  }
  if (!failures.empty()) {
    std::string why;
    for (const auto& f : failures) why += (why.empty() ? "" : "; ") + f.message;
    out.notes.push_back("preferred source failed, used a fallback: " + why);
  }
  return out;
}

}  // namespace og::ranges
