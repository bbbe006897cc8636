// A stand-in for the plugin host in plugin tests: loads one plugin library with dlopen, offers it
// host services that record what it emits, logs and reports, and drives its lifecycle. No engine,
// no IPC: just the ABI. (The changeset helper services are left null here; the real host's own
// tests cover them.)
#pragma once

#include <ipcsync/plugin.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace ipcsync::test {

// One envelope as the plugin emitted it, with its strings and bytes copied.
struct RecordedEnvelope {
  std::string origin;
  uint64_t sequence = 0;
  int64_t commitTimeUs = 0;
  uint32_t pieceIndex = 0;
  uint32_t pieceCount = 0;
  std::vector<unsigned char> data;
};

struct RecordedConflict {
  std::string route, origin, table, kind, keyJson, sourceJson, targetJson;
  uint64_t sequence = 0;
  std::vector<unsigned char> change;
};

class TestHost {
 public:
  // Loads `library` and checks its descriptor's ABI version; throws std::runtime_error on failure.
  TestHost(const std::filesystem::path& library, std::map<std::string, std::string> settings,
           std::filesystem::path dataDir);
  ~TestHost();
  TestHost(const TestHost&) = delete;
  TestHost& operator=(const TestHost&) = delete;

  const ipcsync_plugin_descriptor& descriptor() const { return *m_descriptor; }

  // Lifecycle calls; each returns the plugin's status and keeps its message in lastError().
  int create();
  int start(uint64_t journaledThrough = 0);
  int poll();
  int apply(const ipcsync_envelope& envelope, ipcsync_apply_result& result);
  int snapshot(const std::string& table, const std::string& route, size_t maxPieceBytes, uint64_t& asOf);
  int lastApplied(const std::string& route, uint64_t& sequence);
  int acknowledge(uint64_t sequence);
  int stop();
  void destroy();  // also done by the destructor
  const std::string& lastError() const { return m_lastError; }

  // What the plugin did through the host services.
  std::vector<RecordedEnvelope> emitted;
  std::vector<RecordedEnvelope> snapshotPieces;
  std::vector<RecordedConflict> conflicts;
  std::vector<std::pair<int, std::string>> logs;
  int busyEmits = 0;  // make the next N emits answer IPCSYNC_EBUSY (back-pressure)
  int wakeFd = -1;    // what the plugin last gave set_wake_fd (ABI 1.1)
  // Before create(): offer the services table of an ABI 1.0 host (no set_wake_fd, shorter struct).
  void offerAbi10Services();

 private:
  int finish(int status);
  static ipcsync_host* self(TestHost* host) { return reinterpret_cast<ipcsync_host*>(host); }
  static TestHost* from(ipcsync_host* host) { return reinterpret_cast<TestHost*>(host); }
  static void doLog(ipcsync_host* host, int level, const char* message);
  static const char* doSetting(ipcsync_host* host, const char* key);
  static const char* doDataDir(ipcsync_host* host);
  static int doEmit(ipcsync_host* host, const ipcsync_envelope* envelope, ipcsync_error* error);
  static int doEmitSnapshot(ipcsync_host* host, const ipcsync_envelope* envelope, ipcsync_error* error);
  static int doReportConflict(ipcsync_host* host, const ipcsync_conflict* conflict, ipcsync_error* error);
  static int doSetWakeFd(ipcsync_host* host, int fd, ipcsync_error* error);

  void* m_library = nullptr;
  const ipcsync_plugin_descriptor* m_descriptor = nullptr;
  ipcsync_plugin* m_plugin = nullptr;
  bool m_started = false;
  std::map<std::string, std::string> m_settings;
  std::string m_dataDir;
  ipcsync_host_services m_services{};
  std::string m_lastError;
};

}  // namespace ipcsync::test
