// Test support: a GoogleTest fixture that owns one namespace served by a real ipcsyncd, with the
// lookups the multi-process suites share. Each test gets its own namespace and runtime directory.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "ipcsync/ipccore/admin_segment.h"
#include "ipcsync/ipccore/client.h"
#include "processes.h"

namespace ipcsync::test {

class NamespaceTest : public ::testing::Test {
 protected:
  // Starts ipcsyncd for a fresh namespace named after `tag`, with extra command-line options.
  void startEngine(const std::string& tag, std::vector<std::string> extra = {}) {
    ns = uniqueNamespace(tag);
    engine = EngineProcess::start(ns, dir.path(), std::move(extra));
    ASSERT_TRUE(engine) << "ipcsyncd did not start";
  }
  ConnectOptions options(const std::string& name) const {
    ConnectOptions o;
    o.ns = ns;
    o.name = name;
    return o;
  }
  // Every record that is not free, as an observer sees it now.
  std::vector<ProcessRecord> records() const {
    std::vector<ProcessRecord> out;
    if (auto a = AdminSegment::open(ns))
      for (auto& [slot, r] : (*a)->snapshot()) out.push_back(r);
    return out;
  }
  std::optional<ProcessRecord> record(const std::string& name) const {
    for (const auto& r : records())
      if (r.nameView() == name) return r;
    return std::nullopt;
  }
  bool registered(const std::string& name) const {
    auto r = record(name);
    return r && r->state == RecordState::Registered;
  }
  bool hasRecord(pid_t pid) const {
    for (const auto& r : records())
      if (r.pid == pid) return true;
    return false;
  }

  TempDir dir;
  std::string ns;
  std::optional<EngineProcess> engine;
};

}  // namespace ipcsync::test
