// Test helpers shared by the host's process tests: bytes from text and back, and an Apply
// envelope as the sync engine sends it.
#pragma once

#include <ipcsync/plugin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ipcsync/plugin_host/wire.h"

namespace ipcsync::test {

inline std::vector<std::byte> bytesOf(std::string_view s) {
  std::vector<std::byte> out(s.size());
  std::memcpy(out.data(), s.data(), s.size());
  return out;
}

inline std::string textOf(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// One whole change-set from "crm" on `route`, applied as `seq`.
inline wire::Envelope applyEnvelope(const std::string& route, std::uint64_t seq, std::vector<std::byte> data,
                                    std::uint32_t policy = IPCSYNC_CONFLICT_SOURCE_WINS) {
  wire::Envelope e;
  e.origin = "crm";
  e.sequence = seq;
  e.route = route;
  e.commitTimeUs = 1;
  e.provenance = {"crm"};
  e.pieceCount = 1;
  e.conflictPolicy = policy;
  e.data = std::move(data);
  return e;
}

}  // namespace ipcsync::test
