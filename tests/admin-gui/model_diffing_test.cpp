// The console's models under QAbstractItemModelTester while rows come, change and go, fed
// randomised snapshots; the diffing must describe every change with inserts, removes and
// dataChanged, never a reset, and end up showing exactly the snapshot.
#include <gtest/gtest.h>

#include <QAbstractItemModelTester>
#include <QSortFilterProxyModel>

#include <cstring>
#include <map>
#include <random>

#include "console_fixture.h"
#include "ipcsync/admin/cache_model.h"
#include "ipcsync/admin/memory_model.h"
#include "ipcsync/admin/plugins_model.h"
#include "ipcsync/admin/registrations_model.h"

namespace ipcsync::admin {
namespace {

using Tester = QAbstractItemModelTester;
constexpr auto kWarn = QAbstractItemModelTester::FailureReportingMode::Warning;

ProcessRecord record(std::uint64_t generation, const std::string& name, std::mt19937_64& rng) {
  ProcessRecord r;
  r.generation = generation;
  r.pid = static_cast<std::int32_t>(1000 + generation);
  r.state = RecordState::Registered;
  std::strncpy(r.name, name.c_str(), kNameCapacity - 1);
  r.stats.activeArenas = 1 + static_cast<std::uint32_t>(rng() % 4);
  r.stats.bytesInUse = rng() % (std::uint64_t{r.stats.activeArenas} << 20);
  r.traffic.messagesIn = rng() % 1000;
  for (auto& a : r.arenaUsedPermille) a = kArenaInactive;
  return r;
}

std::uint64_t seed() {
  const std::uint64_t s = std::random_device{}();
  std::printf("seed %llu\n", static_cast<unsigned long long>(s));
  return s;
}

class ModelDiffingTest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_EQ(test::modelTesterComplaints(), m_complaintsBefore); }
  int m_complaintsBefore = test::modelTesterComplaints();
};

TEST_F(ModelDiffingTest, RegistrationsFollowRandomSnapshotsWithPreciseSignalsAndNoReset) {
  const auto s = seed();
  std::mt19937_64 rng(s);
  RegistrationsModel model;
  QSortFilterProxyModel proxy;
  proxy.setSourceModel(&model);
  proxy.setSortRole(kSortRole);
  proxy.setDynamicSortFilter(true);
  proxy.sort(RegistrationsModel::kInUse, Qt::DescendingOrder);
  Tester t1(&model, kWarn), t2(&proxy, kWarn);
  test::ModelSignals sig(&model);

  std::map<std::uint32_t, ProcessRecord> live;  // slot -> record
  std::uint64_t generation = 0;
  NamespaceSnapshot snap;
  snap.online = true;
  snap.engine.pid = 77;
  int expectInserted = 0;
  for (int tick = 0; tick < 300; ++tick) {
    bool added = false, removed = false;
    for (std::uint32_t slot = 0; slot < 12; ++slot) {
      const auto roll = rng() % 10;
      if (!live.contains(slot) && roll < 3) {
        ++generation;
        live[slot] = record(generation, "p" + std::to_string(generation), rng);
        added = true;
      } else if (live.contains(slot) && roll == 0) {
        live.erase(slot);
        removed = true;
      } else if (live.contains(slot) && roll < 4) {
        live[slot].traffic.messagesIn += rng() % 50;
        live[slot].stats.bytesInUse = rng() % (std::uint64_t{live[slot].stats.activeArenas} << 20);
      }
    }
    snap.records.assign(live.begin(), live.end());
    snap.monotonicNs += 150'000'000;
    snap.takenAtNs += 150'000'000;
    const int before = sig.inserted + sig.removed;
    model.update(snap);
    if (added) ++expectInserted;  // new rows are appended in one run
    if (removed) {
      EXPECT_GT(sig.removed + sig.inserted, before) << "tick " << tick;
    }
    ASSERT_EQ(model.rowCount(), static_cast<int>(live.size())) << "tick " << tick;
    for (int r = 0; r < model.rowCount(); ++r) {  // every row shows the current record of its slot
      const auto* row = model.rowAt(r);
      ASSERT_TRUE(live.contains(row->key.slot));
      EXPECT_EQ(row->record.generation, live[row->key.slot].generation);
      EXPECT_EQ(model.data(model.index(r, RegistrationsModel::kMessagesIn), kSortRole).toULongLong(),
                live[row->key.slot].traffic.messagesIn);
    }
    for (int r = 1; r < proxy.rowCount(); ++r)  // the proxy keeps it sorted as rows change
      EXPECT_GE(proxy.data(proxy.index(r - 1, RegistrationsModel::kInUse), kSortRole).toULongLong(),
                proxy.data(proxy.index(r, RegistrationsModel::kInUse), kSortRole).toULongLong());
  }
  EXPECT_EQ(sig.resets, 0);
  EXPECT_EQ(sig.inserted, expectInserted);
  EXPECT_GT(sig.removed, 0);
  EXPECT_GT(sig.changed, 0);
}

TEST_F(ModelDiffingTest, AnUnchangedSnapshotEmitsNothing) {
  std::mt19937_64 rng(1);
  RegistrationsModel model;
  Tester t(&model, kWarn);
  NamespaceSnapshot snap;
  snap.online = true;
  snap.records = {{0, record(1, "a", rng)}, {3, record(2, "b", rng)}};
  model.update(snap);
  test::ModelSignals sig(&model);
  snap.monotonicNs += 100'000'000;  // within the rate window, nothing shown changes
  model.update(snap);
  EXPECT_EQ(sig.inserted + sig.removed + sig.changed + sig.resets, 0);
}

TEST_F(ModelDiffingTest, AChangedCounterEmitsDataChangedForItsCellsOnly) {
  std::mt19937_64 rng(2);
  RegistrationsModel model;
  Tester t(&model, kWarn);
  NamespaceSnapshot snap;
  snap.online = true;
  snap.records = {{0, record(1, "a", rng)}, {1, record(2, "b", rng)}};
  model.update(snap);
  std::vector<std::pair<QModelIndex, QModelIndex>> ranges;
  QObject::connect(&model, &QAbstractItemModel::dataChanged,
                   [&](const QModelIndex& a, const QModelIndex& b) { ranges.emplace_back(a, b); });
  snap.records[1].second.traffic.messagesOut += 5;
  model.update(snap);
  ASSERT_EQ(ranges.size(), 1u);
  EXPECT_EQ(ranges[0].first.row(), 1);
  EXPECT_EQ(ranges[0].first.column(), RegistrationsModel::kMessagesOut);
  EXPECT_EQ(ranges[0].second.column(), RegistrationsModel::kMessagesOut);
}

TEST_F(ModelDiffingTest, ASlotReusedByANewProcessIsANewRow) {
  std::mt19937_64 rng(3);
  RegistrationsModel model;
  Tester t(&model, kWarn);
  NamespaceSnapshot snap;
  snap.online = true;
  snap.records = {{0, record(1, "old", rng)}};
  model.update(snap);
  test::ModelSignals sig(&model);
  snap.records = {{0, record(2, "new", rng)}};
  model.update(snap);
  EXPECT_EQ(sig.removed, 1);
  EXPECT_EQ(sig.inserted, 1);
  EXPECT_EQ(model.data(model.index(0, RegistrationsModel::kName), Qt::DisplayRole).toString(), "new");
}

TEST_F(ModelDiffingTest, RatesAreMeasuredOverHalfSecondWindows) {
  std::mt19937_64 rng(4);
  RegistrationsModel model;
  NamespaceSnapshot snap;
  snap.online = true;
  snap.records = {{0, record(1, "a", rng)}};
  snap.records[0].second.traffic.messagesOut = 100;
  model.update(snap);
  EXPECT_EQ(model.data(model.index(0, RegistrationsModel::kRateOut), Qt::DisplayRole).toString(), "—");
  for (int i = 1; i <= 4; ++i) {  // 4 x 150 ms = 600 ms, 60 messages
    snap.monotonicNs += 150'000'000;
    snap.records[0].second.traffic.messagesOut += 15;
    model.update(snap);
  }
  EXPECT_NEAR(model.rows()[0].messagesOutPerS, 100.0, 0.5);
}

TEST_F(ModelDiffingTest, CachesPluginsAndFreeBlocksFollowRandomChangesUnderTheTester) {
  const auto s = seed();
  std::mt19937_64 rng(s);
  CacheModel caches;
  PluginsModel plugins;
  FreeBlocksModel orders;
  Tester t1(&caches, kWarn), t2(&plugins, kWarn), t3(&orders, kWarn);
  test::ModelSignals sc(&caches), sp(&plugins), so(&orders);
  const char* states[] = {"starting", "running", "restarting", "failed", "stopped"};
  for (int tick = 0; tick < 200; ++tick) {
    NamespaceSnapshot snap;
    for (int i = 0; i < 6; ++i)
      if (rng() % 2) {
        CacheRecord c;
        std::snprintf(c.topic, sizeof c.topic, "topic-%d", i);
        c.entries = static_cast<std::uint32_t>(rng() % 8);
        c.depth = 8;
        snap.caches.push_back(c);
      }
    caches.update(snap);
    ASSERT_EQ(caches.rowCount(), static_cast<int>(snap.caches.size()));

    PluginsStatus ps;
    for (int i = 0; i < 4; ++i)
      if (rng() % 3) ps.instances.push_back({QString("p%1").arg(i), "p.so", states[rng() % 5], std::nullopt, 0, {}, {}, {}, {}});
    if (rng() % 2) ps.available << "erp.so";
    plugins.update(ps);
    ASSERT_EQ(plugins.rowCount(), static_cast<int>(ps.instances.size() + ps.available.size()));

    ProcessRecord r;
    r.geometry.arenaShift = 14 + static_cast<std::uint32_t>(rng() % 4);  // 9..12 orders: rows come and go
    for (auto& n : r.stats.freeBlocksPerOrder) n = rng() % 3;
    orders.show(rng() % 5 ? std::optional(r) : std::nullopt);
  }
  for (const auto* sig : {&sc, &sp, &so}) {
    EXPECT_EQ(sig->resets, 0);
    EXPECT_GT(sig->inserted, 0);
    EXPECT_GT(sig->removed, 0);
  }
  EXPECT_GT(sp.changed, 0);
  EXPECT_GT(so.changed, 0);
}

TEST_F(ModelDiffingTest, FailedAndRestartingPluginsStandOut) {
  PluginsModel model;
  PluginsStatus ps;
  ps.instances.push_back({"crm", "crm.so", "running", 42, 0, {}, {}, {}, {}});
  ps.instances.push_back({"mining", "mining.so", "failed", std::nullopt, 2, "signal 11 (SIGSEGV)", "crashed 3 times", {}, {}});
  ps.instances.push_back({"erp", "erp.so", "restarting", std::nullopt, 1, "exit 1", {}, {}, "2024-05-01T12:00:04.256Z"});
  ps.available << "spare.so";
  model.update(ps);
  const auto state = [&](int row, int role) { return model.data(model.index(row, PluginsModel::kState), role); };
  EXPECT_FALSE(state(0, Qt::BackgroundRole).isValid());
  EXPECT_EQ(state(1, Qt::DisplayRole).toString(), "FAILED");
  EXPECT_TRUE(state(1, Qt::BackgroundRole).isValid());
  EXPECT_FALSE(state(1, Qt::DecorationRole).value<QIcon>().isNull());
  EXPECT_EQ(state(2, Qt::DisplayRole).toString(), "RESTARTING at 12:00:04.256");
  EXPECT_NE(state(1, Qt::BackgroundRole), state(2, Qt::BackgroundRole));
  EXPECT_EQ(state(3, Qt::DisplayRole).toString(), "available, not configured");
  EXPECT_EQ(model.data(model.index(3, PluginsModel::kLibrary), Qt::DisplayRole).toString(), "spare.so");
}

TEST_F(ModelDiffingTest, FragmentationIsOneMinusLargestFreeRunOverFreeBytes) {
  ProcessRecord r;
  r.stats.bytesFree = 4096;
  r.stats.largestFreeRun = 1024;
  EXPECT_DOUBLE_EQ(memoryFigures(r).fragmentation, 0.75);
  r.stats.bytesFree = 0;
  r.stats.largestFreeRun = 0;
  EXPECT_DOUBLE_EQ(memoryFigures(r).fragmentation, 0.0);
}

}  // namespace
}  // namespace ipcsync::admin
