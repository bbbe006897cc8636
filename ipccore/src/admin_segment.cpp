#include "ipcsync/ipccore/admin_segment.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <new>
#include <sstream>

namespace ipcsync {
namespace bip = boost::interprocess;
namespace {

constexpr std::uint64_t kRecordStride = sizeof(SeqLocked<ProcessRecord>);
constexpr std::uint64_t kRecordsOffset = (sizeof(layout::AdminHeader) + 63) / 64 * 64;

std::uint64_t cachesOffset(std::uint32_t capacity) { return (kRecordsOffset + kRecordStride * capacity + 63) / 64 * 64; }

std::uint64_t segmentSize(std::uint32_t capacity) {
  return (cachesOffset(capacity) + sizeof(SeqLocked<CacheRecord>) * layout::kCacheRows + 4095) / 4096 * 4096;
}

void copyString(char* dst, std::size_t cap, std::string_view src) {
  const std::size_t n = std::min(cap - 1, src.size());
  std::memcpy(dst, src.data(), n);
  dst[n] = '\0';
}

}  // namespace

std::uint64_t processStartTicks(std::int32_t pid) noexcept {
  if (pid <= 0) return 0;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  std::ifstream in(path);
  std::string stat;
  if (!in || !std::getline(in, stat)) return 0;
  const auto close = stat.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos) return 0;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && (rest >> field); ++i) {
    if (i == 22) return std::strtoull(field.c_str(), nullptr, 10);
  }
  return 0;
}

std::string AdminSegment::shmName(std::string_view ns) { return "ipcsync." + std::string(ns); }

std::expected<void, Error> AdminSegment::validateNamespace(std::string_view ns) {
  const bool okChars = std::all_of(ns.begin(), ns.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
  });
  if (ns.empty() || ns.size() >= layout::kNamespaceCapacity || !okChars || ns.front() == '.')
    return std::unexpected(Error{Errc::InvalidArgument,
                                 "namespace '" + std::string(ns) +
                                     "' must be 1-63 characters of letters, digits, '_', '-' or '.', not starting with '.'"});
  return {};
}

AdminSegment::~AdminSegment() {
  if (m_owner) bip::shared_memory_object::remove(m_name.c_str());
}

const layout::AdminHeader& AdminSegment::header() const noexcept {
  return *reinterpret_cast<const layout::AdminHeader*>(m_mapping.data());
}

SeqLocked<ProcessRecord>* AdminSegment::records() const noexcept {
  return reinterpret_cast<SeqLocked<ProcessRecord>*>(m_mapping.data() + kRecordsOffset);
}

std::expected<std::unique_ptr<AdminSegment>, Error> AdminSegment::create(std::string_view ns, std::uint32_t capacity,
                                                                        const EngineIdentity& engine,
                                                                        std::int32_t* replacedStalePid) {
  if (auto ok = validateNamespace(ns); !ok) return std::unexpected(ok.error());
  if (capacity == 0 || capacity > 65536)
    return std::unexpected(Error{Errc::InvalidArgument, "registry capacity must be 1..65536"});
  const std::string name = shmName(ns);
  const std::uint64_t size = segmentSize(capacity);
  std::unique_ptr<AdminSegment> seg(new AdminSegment());
  seg->m_name = name;
  seg->m_capacity = capacity;
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      bip::permissions perms;
      perms.set_permissions(0644);  // observers of other users may read; only the engine writes
      bip::shared_memory_object shm(bip::create_only, name.c_str(), bip::read_write, perms);
      shm.truncate(static_cast<bip::offset_t>(size));
      auto mapped = Mapping::map(shm.get_mapping_handle().handle, size, Mapping::Access::ReadWrite, name.c_str());
      if (!mapped) {
        bip::shared_memory_object::remove(name.c_str());
        return std::unexpected(mapped.error());
      }
      seg->m_mapping = std::move(*mapped);
      seg->m_owner = true;
      break;
    } catch (const bip::interprocess_exception& e) {
      if (e.get_error_code() != bip::already_exists_error || attempt == 1)
        return std::unexpected(Error{Errc::SystemError, "cannot create /dev/shm/" + name + ": " + e.what()});
    }
    // The name exists: a live engine, or a leftover of a dead one.
    auto existing = open(ns);
    if (existing && (*existing)->engineAlive()) {
      return std::unexpected(Error{Errc::EngineAlreadyRunning,
                                   "namespace '" + std::string(ns) + "' is served by a running engine (pid " +
                                       std::to_string((*existing)->engine().pid) +
                                       "); stop it first or choose another namespace"});
    }
    if (replacedStalePid) *replacedStalePid = existing ? (*existing)->engine().pid : 0;
    bip::shared_memory_object::remove(name.c_str());
  }

  std::byte* base = seg->m_mapping.data();
  auto* hdr = new (base) layout::AdminHeader{};
  hdr->layoutVersion = layout::kAdminLayoutVersion;
  hdr->size = size;
  hdr->enginePid = engine.pid;
  hdr->capacity = capacity;
  hdr->engineStartTicks = engine.startTicks;
  hdr->recordsOffset = kRecordsOffset;
  hdr->recordStride = kRecordStride;
  copyString(hdr->ns, sizeof hdr->ns, ns);
  copyString(hdr->socketPath, sizeof hdr->socketPath, engine.socketPath);
  for (std::uint32_t i = 0; i < capacity; ++i) new (base + kRecordsOffset + i * kRecordStride) SeqLocked<ProcessRecord>();
  hdr->cachesOffset = cachesOffset(capacity);
  for (std::uint32_t i = 0; i < layout::kCacheRows; ++i)
    new (base + hdr->cachesOffset + i * sizeof(SeqLocked<CacheRecord>)) SeqLocked<CacheRecord>();
  return seg;  // magic stays 0 ("starting") until publish()
}

std::expected<std::unique_ptr<AdminSegment>, Error> AdminSegment::open(std::string_view ns) {
  if (auto ok = validateNamespace(ns); !ok) return std::unexpected(ok.error());
  const std::string name = shmName(ns);
  std::unique_ptr<AdminSegment> seg(new AdminSegment());
  seg->m_name = name;
  try {
    bip::shared_memory_object shm(bip::open_only, name.c_str(), bip::read_only);
    bip::offset_t size = 0;
    if (!shm.get_size(size) || size < static_cast<bip::offset_t>(kRecordsOffset))
      return std::unexpected(Error{Errc::BadSegment, "/dev/shm/" + name + " is too small to be an admin segment"});
    auto mapped = Mapping::map(shm.get_mapping_handle().handle, static_cast<std::size_t>(size),
                               Mapping::Access::ReadOnly, name.c_str());
    if (!mapped) return std::unexpected(mapped.error());
    seg->m_mapping = std::move(*mapped);
    struct stat st {};
    if (::fstat(shm.get_mapping_handle().handle, &st) == 0) seg->m_ownerUid = st.st_uid;
  } catch (const bip::interprocess_exception& e) {
    if (e.get_error_code() == bip::not_found_error)
      return std::unexpected(Error{Errc::EngineNotRunning, "no engine serves namespace '" + std::string(ns) +
                                                               "' (no /dev/shm/" + name +
                                                               "); start one with: ipcsyncd --namespace " +
                                                               std::string(ns)});
    return std::unexpected(Error{Errc::SystemError, "cannot open /dev/shm/" + name + ": " + e.what()});
  }
  const auto& hdr = seg->header();
  // A creator that has not finished initialising yet shows magic 0; that is "not running yet".
  const std::uint32_t magic = hdr.magic.load(std::memory_order_acquire);
  if (magic == 0) {
    if (seg->engineAlive())
      return std::unexpected(Error{Errc::EngineBusy, "the engine of namespace '" + std::string(ns) + "' (pid " +
                                                         std::to_string(seg->header().enginePid) + ") is still starting"});
    return std::unexpected(Error{Errc::EngineNotRunning, "/dev/shm/" + name + " was left by an engine that died while starting"});
  }
  if (magic != layout::kAdminMagic || hdr.layoutVersion != layout::kAdminLayoutVersion)
    return std::unexpected(Error{Errc::BadSegment, "/dev/shm/" + name + " has layout version " +
                                                       std::to_string(hdr.layoutVersion) + ", this build reads " +
                                                       std::to_string(layout::kAdminLayoutVersion) +
                                                       "; use matching ipcsync builds"});
  if (hdr.size != seg->m_mapping.size() || hdr.recordStride != kRecordStride || hdr.recordsOffset != kRecordsOffset ||
      hdr.size < segmentSize(hdr.capacity) || hdr.cachesOffset != cachesOffset(hdr.capacity))
    return std::unexpected(Error{Errc::BadSegment, "/dev/shm/" + name + " has an inconsistent header"});
  seg->m_capacity = hdr.capacity;
  return seg;
}

EngineIdentity AdminSegment::engine() const {
  const auto& hdr = header();
  return EngineIdentity{hdr.enginePid, hdr.engineStartTicks,
                        std::string(hdr.socketPath, ::strnlen(hdr.socketPath, sizeof hdr.socketPath))};
}

bool AdminSegment::engineAlive() const noexcept {
  const auto& hdr = header();
  if (hdr.enginePid <= 0) return false;
  if (::kill(hdr.enginePid, 0) != 0 && errno == ESRCH) return false;
  return processStartTicks(hdr.enginePid) == hdr.engineStartTicks;
}

std::uint64_t AdminSegment::heartbeatNs() const noexcept {
  return header().heartbeatNs.load(std::memory_order_relaxed);
}

std::optional<ProcessRecord> AdminSegment::load(std::uint32_t slot) const noexcept { return records()[slot].load(); }

std::vector<std::pair<std::uint32_t, ProcessRecord>> AdminSegment::snapshot() const {
  std::vector<std::pair<std::uint32_t, ProcessRecord>> out;
  for (std::uint32_t i = 0; i < m_capacity; ++i) {
    auto r = load(i);  // nothing when an engine died in the middle of writing it
    if (r && r->state != RecordState::Free) out.emplace_back(i, *r);
  }
  return out;
}

void AdminSegment::publish() noexcept {
  const_cast<layout::AdminHeader&>(header()).magic.store(layout::kAdminMagic, std::memory_order_release);
}

std::string_view CacheRecord::topicView() const noexcept { return std::string_view(topic, ::strnlen(topic, sizeof topic)); }

SeqLocked<CacheRecord>* AdminSegment::cacheRows() const noexcept {
  return reinterpret_cast<SeqLocked<CacheRecord>*>(m_mapping.data() + header().cachesOffset);
}

std::vector<CacheRecord> AdminSegment::caches() const {
  std::vector<CacheRecord> out;
  for (std::uint32_t i = 0; i < layout::kCacheRows; ++i)
    if (auto r = cacheRows()[i].load(); r && r->topic[0]) out.push_back(*r);
  return out;
}

void AdminSegment::storeCache(std::uint32_t row, const CacheRecord& record) noexcept {
  if (row < layout::kCacheRows) cacheRows()[row].store(record);
}

void AdminSegment::store(std::uint32_t slot, const ProcessRecord& record) noexcept { records()[slot].store(record); }

void AdminSegment::beat(std::uint64_t nowNs) noexcept {
  const_cast<layout::AdminHeader&>(header()).heartbeatNs.store(nowNs, std::memory_order_relaxed);
}

}  // namespace ipcsync
