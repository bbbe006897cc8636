#include "ipcsync/sync/status_report.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ipcsync/ipccore/admin_segment.h"

namespace ipcsync {
namespace {

namespace fs = std::filesystem;

std::uint64_t nowNs() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

double ageMs(std::uint64_t thenNs, std::uint64_t now) {
  return thenNs == 0 || thenNs > now ? 0.0 : static_cast<double>(now - thenNs) / 1e6;
}

nlohmann::json recordJson(std::uint32_t slot, const ProcessRecord& r, std::uint64_t now) {
  nlohmann::json arenas = nlohmann::json::array();
  for (std::uint32_t a = 0; a < r.geometry.maxArenas && a < kMaxArenas; ++a)
    arenas.push_back(r.arenaUsedPermille[a] == kArenaInactive ? nlohmann::json(nullptr) : nlohmann::json(r.arenaUsedPermille[a]));
  nlohmann::json perOrder = nlohmann::json::array();
  for (std::uint32_t k = 0; k <= r.geometry.topOrder() && k < kMaxOrders; ++k) perOrder.push_back(r.stats.freeBlocksPerOrder[k]);
  return {
      {"slot", slot},
      {"generation", r.generation},
      {"name", std::string(r.nameView())},
      {"pid", r.pid},
      {"uid", r.uid},
      {"gid", r.gid},
      {"state", std::string(describe(r.state))},
      {"registered_at_ns", r.registeredAtNs},
      {"last_seen_age_ms", ageMs(r.lastSeenNs, now)},
      {"block",
       {{"arena_bytes", r.geometry.arenaSize()},
        {"min_block_bytes", r.geometry.minBlock()},
        {"max_arenas", r.geometry.maxArenas},
        {"active_arenas", r.stats.activeArenas},
        {"bytes_in_use", r.stats.bytesInUse},
        {"bytes_free", r.stats.bytesFree},
        {"largest_free_run", r.stats.largestFreeRun},
        {"allocations", r.stats.allocations},
        {"frees", r.stats.frees},
        {"failures", r.stats.failures},
        {"arenas_grown", r.stats.arenasGrown},
        {"arenas_released", r.stats.arenasReleased},
        {"free_blocks_per_order", perOrder},
        {"arena_used_permille", arenas}}},
      {"traffic",
       {{"messages_out", r.traffic.messagesOut},
        {"bytes_out", r.traffic.bytesOut},
        {"messages_in", r.traffic.messagesIn},
        {"bytes_in", r.traffic.bytesIn},
        {"waits_for_room", r.traffic.waitsForRoom},
        {"dropped", r.traffic.dropped},
        {"sessions", r.traffic.sessions}}},
  };
}

}  // namespace

std::optional<nlohmann::json> readStateFile(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream body;
  body << in.rdbuf();
  try {
    return nlohmann::json::parse(body.str());
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

std::expected<nlohmann::json, std::string> statusReport(const std::string& ns) {
  auto admin = AdminSegment::open(ns);
  if (!admin) return std::unexpected(admin.error().message());
  const AdminSegment& a = **admin;
  const std::uint64_t now = nowNs();
  const EngineIdentity engine = a.engine();
  nlohmann::json doc = {
      {"version", kStatusJsonVersion},
      {"namespace", ns},
      {"engine",
       {{"pid", engine.pid},
        {"running", a.engineAlive()},
        {"socket", engine.socketPath},
        {"last_tick_age_ms", ageMs(a.heartbeatNs(), now)},
        {"capacity", a.capacity()}}},
  };
  nlohmann::json records = nlohmann::json::array();
  for (const auto& [slot, r] : a.snapshot()) records.push_back(recordJson(slot, r, now));
  doc["registrations"] = std::move(records);
  nlohmann::json caches = nlohmann::json::array();
  for (const auto& c : a.caches())
    caches.push_back({{"topic", std::string(c.topicView())},
                      {"entries", c.entries},
                      {"depth", c.depth},
                      {"bytes", c.bytes},
                      {"oldest_age_ms", ageMs(c.oldestNs, now)},
                      {"hits", c.hits}});
  doc["cached_topics"] = std::move(caches);
  const fs::path runtime = fs::path(engine.socketPath).parent_path();
  doc["supervision"] = readStateFile(runtime / "plugins.json").value_or(nullptr);
  doc["sync"] = readStateFile(runtime / "sync.json").value_or(nullptr);
  return doc;
}

}  // namespace ipcsync
