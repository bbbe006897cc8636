// The sync engine's views: the routes model, the dead-letter and conflict models under
// QAbstractItemModelTester while rows come and go (fed snapshots directly, from a sync.json and
// from a real journal file read read-only), and the topology picture for 0, 1 and several routes.
#include <gtest/gtest.h>

#include <QAbstractItemModelTester>
#include <QFile>
#include <QImage>
#include <QSortFilterProxyModel>

#include <algorithm>
#include <cstdio>
#include <random>

#include "console_fixture.h"
#include "ipcsync/admin/journal_models.h"
#include "ipcsync/admin/journal_reader.h"
#include "ipcsync/admin/routes_model.h"
#include "ipcsync/admin/sync_status.h"
#include "ipcsync/sync/journal.h"
#include "processes.h"
#include "topology_widget.h"

namespace ipcsync::admin {
namespace {

using Tester = QAbstractItemModelTester;
constexpr auto kWarn = QAbstractItemModelTester::FailureReportingMode::Warning;

std::uint64_t seed() {
  const std::uint64_t s = std::random_device{}();
  std::printf("seed %llu\n", static_cast<unsigned long long>(s));
  return s;
}

void write(const std::filesystem::path& path, const QByteArray& text) {
  const auto tmp = path.string() + ".tmp";
  QFile f(QString::fromStdString(tmp));
  ASSERT_TRUE(f.open(QIODevice::WriteOnly));
  f.write(text);
  f.close();
  std::filesystem::rename(tmp, path);  // a new inode, as the engine writes it
}

SyncRoute route(const QString& name, const QString& from, const QString& to, std::mt19937_64& rng) {
  SyncRoute r;
  r.route = name;
  r.source = from;
  r.subscriber = to;
  r.connected = rng() % 4 != 0;
  r.cursor = rng() % 1000;
  r.lagChangesets = rng() % 50;
  r.lagMs = rng() % 900;
  r.appliedPerS = static_cast<double>(rng() % 5000) / 10;
  r.conflicts = rng() % 3;
  r.deadLetters = rng() % 2;
  if (rng() % 3 == 0) r.lastError = QStringLiteral("no such table: x");
  return r;
}

class SyncViewsTest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_EQ(test::modelTesterComplaints(), m_complaintsBefore); }
  int m_complaintsBefore = test::modelTesterComplaints();
};

TEST_F(SyncViewsTest, RoutesFollowRandomSnapshotsWithPreciseSignalsAndNoReset) {
  const auto s = seed();
  std::mt19937_64 rng(s);
  RoutesModel model;
  QSortFilterProxyModel proxy;
  proxy.setSourceModel(&model);
  proxy.setSortRole(kSortRole);
  proxy.setDynamicSortFilter(true);
  proxy.sort(RoutesModel::kLagMs, Qt::DescendingOrder);
  Tester t1(&model, kWarn), t2(&proxy, kWarn);
  test::ModelSignals sig(&model);
  const QStringList nodes{"crm", "mining", "erp", "audit"};
  for (int round = 0; round < 200; ++round) {
    SyncStatus status;
    status.present = true;
    for (const auto& from : nodes)
      for (const auto& to : nodes)
        if (from != to && rng() % 3 == 0) status.routes.push_back(route(from + "-" + to, from, to, rng));
    model.update(status);
    ASSERT_EQ(model.rowCount(), static_cast<int>(status.routes.size()));
    for (const auto& r : status.routes) {
      const int row = model.rowOf(r.route + QChar(0x1f) + r.subscriber);
      ASSERT_GE(row, 0) << r.route.toStdString();
      EXPECT_EQ(model.rows()[static_cast<std::size_t>(row)], r);
      EXPECT_EQ(model.index(row, RoutesModel::kLagMs).data(kSortRole).toULongLong(), r.lagMs);
      EXPECT_EQ(model.index(row, RoutesModel::kFrom).data().toString(), r.source);
    }
  }
  EXPECT_GT(sig.inserted, 0);
  EXPECT_GT(sig.removed, 0);
  EXPECT_GT(sig.changed, 0);
  EXPECT_EQ(sig.resets, 0);
}

TEST_F(SyncViewsTest, DeadLettersAndConflictsFollowSnapshotsAsRowsComeAndGo) {
  const auto s = seed();
  std::mt19937_64 rng(s);
  DeadLettersModel letters;
  ConflictsModel conflicts;
  Tester t1(&letters, kWarn), t2(&conflicts, kWarn);
  test::ModelSignals sl(&letters), sc(&conflicts);
  for (int round = 0; round < 200; ++round) {
    JournalContents c;
    for (std::int64_t id = 1; id <= 12; ++id) {
      if (rng() % 2) c.deadLetters.push_back({id, "crm-mining", "mining", id * 10, static_cast<std::int64_t>(rng() % 6), 0,
                                              QStringLiteral("error %1").arg(rng() % 3), rng() % 4 == 0});
      if (rng() % 2)
        c.conflicts.push_back({id, "crm-mining", "crm", "mining", "orders", "update", id * 10, QStringLiteral("{\"id\":%1}").arg(id),
                               QStringLiteral("{\"qty\":%1}").arg(rng() % 5), QStringLiteral("{\"qty\":%1}").arg(rng() % 5),
                               static_cast<int>(rng() % 3), 0});
    }
    letters.update(c);
    conflicts.update(c);
    // Row order is arrival order (views sort through a proxy): compare by id.
    auto byId = [](auto rows) {
      std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
      return rows;
    };
    ASSERT_EQ(byId(letters.rows()), c.deadLetters);
    ASSERT_EQ(byId(conflicts.rows()), c.conflicts);
  }
  EXPECT_GT(sl.inserted + sc.inserted, 0);
  EXPECT_GT(sl.removed + sc.removed, 0);
  EXPECT_EQ(sl.resets + sc.resets, 0);
}

TEST_F(SyncViewsTest, SyncJsonIsReadWhenItChangesAndAMalformedOneKeepsTheLastGoodContentNamingTheField) {
  test::TempDir dir;
  const auto path = dir.path() / "sync.json";
  SyncFile file;
  EXPECT_FALSE(file.refresh(path).present);
  write(path, R"({"version":1,"pid":42,"journal":{"path":"/x/journal.db","entries":3,"bytes":300,"head":9,
    "max_bytes":1000,"nearly_full":true},"sources":[{"instance":"crm","connected":true,"emitted":5,"journaled":5}],
    "routes":[{"route":"r","source":"crm","subscriber":"mining","connected":false,"cursor":6,"lag_changesets":3,
    "lag_ms":120,"applied":6,"applied_per_s":2.5,"rows":60,"rows_per_s":25,"conflicts":1,"errors":2,"dead_letters":1,
    "last_error":"boom","problem":null}]})");
  const SyncStatus& s = file.refresh(path);
  ASSERT_TRUE(s.error.isEmpty()) << s.error.toStdString();
  EXPECT_EQ(s.pid, 42);
  EXPECT_EQ(s.journal.head, 9u);
  EXPECT_TRUE(s.journal.nearlyFull);
  ASSERT_EQ(s.routes.size(), 1u);
  EXPECT_EQ(s.routes[0].lagMs, 120u);
  EXPECT_DOUBLE_EQ(s.routes[0].appliedPerS, 2.5);
  EXPECT_FALSE(s.routes[0].connected);
  EXPECT_EQ(s.routes[0].lastError, "boom");

  RoutesModel model;
  Tester t(&model, kWarn);
  model.update(s);
  EXPECT_EQ(model.rowCount(), 1);
  EXPECT_EQ(model.index(0, RoutesModel::kTo).data().toString(), "mining (disconnected)");

  write(path, R"({"routes":[{"route":"r","source":"crm","subscriber":"mining","lag_ms":"slow"}]})");
  const SyncStatus& bad = file.refresh(path);
  EXPECT_TRUE(bad.error.contains("routes[0].lag_ms")) << bad.error.toStdString();
  EXPECT_TRUE(bad.error.contains("last good content")) << bad.error.toStdString();
  ASSERT_EQ(bad.routes.size(), 1u);  // nothing lost
  EXPECT_EQ(bad.routes[0].lagMs, 120u);

  write(path, R"({"routes":[]})");
  model.update(file.refresh(path));
  EXPECT_EQ(model.rowCount(), 0);
  std::filesystem::remove(path);
  EXPECT_FALSE(file.refresh(path).present);
}

TEST_F(SyncViewsTest, JournalDeadLettersAndConflictsAreReadReadOnlyFromARealJournalAsTheyComeAndGo) {
  test::TempDir dir;
  JournalConfig config;
  config.path = dir.path() / "journal.db";
  auto journal = Journal::open(config);
  ASSERT_TRUE(journal) << journal.error().message;
  std::vector<JournalEntry> entries(3);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    entries[i].origin = "crm";
    entries[i].originSequence = i + 1;
    entries[i].tables = {"orders"};
    entries[i].pieces = {{1, 2, 3}};
  }
  auto sequences = (*journal)->append(entries);
  ASSERT_TRUE(sequences) << sequences.error().message;

  JournalReader reader;
  DeadLettersModel letters;
  ConflictsModel conflicts;
  Tester t1(&letters, kWarn), t2(&conflicts, kWarn);
  auto show = [&](const JournalContents& c) {
    letters.update(c);
    conflicts.update(c);
    return c.error;
  };
  EXPECT_EQ(show(reader.refresh(config.path, true)), "");
  EXPECT_EQ(letters.rowCount(), 0);

  auto l1 = (*journal)->addDeadLetter({0, "crm-mining", "mining", (*sequences)[0], "no such table: orders", 5, 0, false});
  auto l2 = (*journal)->addDeadLetter({0, "crm-mining", "mining", (*sequences)[1], "constraint failed", 2, 0, false});
  ASSERT_TRUE(l1 && l2);
  ParkedConflict pc;
  pc.route = "crm-mining";
  pc.origin = "crm";
  pc.subscriber = "mining";
  pc.table = "orders";
  pc.kind = "update";
  pc.sequence = (*sequences)[2];
  pc.keyJson = R"({"id":7})";
  pc.sourceJson = R"({"qty":3})";
  pc.targetJson = R"({"qty":4})";
  pc.change = {1, 2, 3};
  auto c1 = (*journal)->park(pc);
  ASSERT_TRUE(c1) << c1.error().message;

  EXPECT_EQ(show(reader.refresh(config.path, true)), "");
  ASSERT_EQ(letters.rowCount(), 2);
  EXPECT_EQ(letters.index(0, DeadLettersModel::kError).data().toString(), "no such table: orders");
  EXPECT_EQ(letters.index(0, DeadLettersModel::kAttempts).data().toLongLong(), 5);
  EXPECT_EQ(letters.index(1, DeadLettersModel::kSequence).data().toLongLong(), static_cast<qlonglong>((*sequences)[1]));
  ASSERT_EQ(conflicts.rowCount(), 1);
  EXPECT_EQ(conflicts.index(0, ConflictsModel::kSource).data().toString(), R"({"qty":3})");
  EXPECT_EQ(conflicts.index(0, ConflictsModel::kTarget).data().toString(), R"({"qty":4})");
  EXPECT_EQ(conflicts.index(0, ConflictsModel::kResolution).data().toString(), "open");

  ASSERT_TRUE((*journal)->removeDeadLetter(*l1));
  ASSERT_TRUE((*journal)->requestResolution(*c1, ConflictResolution::TakeSourceRequested));
  EXPECT_EQ(show(reader.refresh(config.path, true)), "");
  ASSERT_EQ(letters.rowCount(), 1);
  EXPECT_EQ(letters.rows()[0].id, static_cast<std::int64_t>(*l2));
  EXPECT_EQ(conflicts.index(0, ConflictsModel::kResolution).data().toString(), "take source requested");
  ASSERT_TRUE((*journal)->markResolved(*c1));
  EXPECT_EQ(show(reader.refresh(config.path, true)), "");
  EXPECT_EQ(conflicts.rowCount(), 0);

  // Not forced, within the second: the last contents, no query.
  ASSERT_TRUE((*journal)->removeDeadLetter(*l2));
  reader.refresh(config.path);
  EXPECT_EQ(letters.rowCount(), 1);
}

TEST_F(SyncViewsTest, AMissingOrForeignJournalShowsTheErrorAndIsNeitherCreatedNorChanged) {
  test::TempDir dir;
  const auto missing = dir.path() / "nothing.db";
  JournalReader reader;
  const JournalContents& c = reader.refresh(missing, true);
  EXPECT_TRUE(c.error.contains(QString::fromStdString(missing.string()))) << c.error.toStdString();
  EXPECT_TRUE(c.error.contains("read-only")) << c.error.toStdString();
  EXPECT_TRUE(c.deadLetters.empty());
  EXPECT_FALSE(std::filesystem::exists(missing));

  const auto text = dir.path() / "notes.txt";
  write(text, "this is not a database at all, just text that is long enough to be a header");
  const auto before = std::filesystem::file_size(text);
  const JournalContents& d = reader.refresh(text, true);
  EXPECT_TRUE(d.error.contains("dead letters") || d.error.contains("read-only")) << d.error.toStdString();
  EXPECT_EQ(std::filesystem::file_size(text), before);
}

TEST_F(SyncViewsTest, PluginsJsonSyncMemberIsReadAndAWrongOneIsRefusedNamingIt) {
  QString error;
  auto none = parsePluginsJson(R"({"instances":[],"sync":null})", error);
  ASSERT_TRUE(none) << error.toStdString();
  EXPECT_FALSE(none->sync);
  auto some = parsePluginsJson(R"({"instances":[],"sync":{"name":"sync","library":"ipcsync-sync","state":"failed",
                                  "pid":null,"restarts":3}})", error);
  ASSERT_TRUE(some) << error.toStdString();
  ASSERT_TRUE(some->sync);
  EXPECT_EQ(some->sync->state, "failed");
  EXPECT_EQ(some->sync->restarts, 3);
  EXPECT_FALSE(parsePluginsJson(R"({"instances":[],"sync":3})", error));
  EXPECT_EQ(error, R"("sync": expected an object or null)");
  EXPECT_FALSE(parsePluginsJson(R"({"instances":[],"sync":{"name":"sync","library":"x","state":7}})", error));
  EXPECT_TRUE(error.startsWith("sync.state: expected a string")) << error.toStdString();
}

// Counts the pixels of exactly `colour` in `image`.
int pixelsOf(const QImage& image, QColor colour) {
  int n = 0;
  for (int y = 0; y < image.height(); ++y)
    for (int x = 0; x < image.width(); ++x) n += image.pixelColor(x, y).rgb() == colour.rgb() ? 1 : 0;
  return n;
}

QImage render(TopologyWidget& w) {
  w.resize(640, 420);
  QImage image(w.size(), QImage::Format_ARGB32);
  image.fill(Qt::white);
  w.render(&image);
  return image;
}

TEST_F(SyncViewsTest, TopologyPaintsNoneOneAndSeveralRoutesAndAFailedPluginStandsOutInRed) {
  std::mt19937_64 rng(1);
  TopologyWidget w;
  PluginsStatus plugins;
  SyncStatus sync;
  w.setStatus(plugins, sync);
  EXPECT_TRUE(w.nodes().empty());
  EXPECT_EQ(pixelsOf(render(w), TopologyWidget::fillFor(TopologyWidget::Health::Failed)), 0);

  plugins.present = true;
  plugins.instances = {{"crm", "crm.so", "running"}, {"mining", "mining.so", "running"}};
  plugins.sync = PluginInstance{"sync", "ipcsync-sync", "running"};
  sync.present = true;
  sync.routes = {route("crm-mining", "crm", "mining", rng)};
  w.setStatus(plugins, sync);
  EXPECT_EQ(w.nodes().size(), 3u);
  EXPECT_EQ(w.routes().size(), 1u);
  EXPECT_EQ(pixelsOf(render(w), TopologyWidget::fillFor(TopologyWidget::Health::Failed)), 0);
  EXPECT_GT(pixelsOf(render(w), TopologyWidget::fillFor(TopologyWidget::Health::Ok)), 500);

  plugins.instances.push_back({"erp", "erp.so", "failed"});
  plugins.instances.push_back({"audit", "audit.so", "restarting"});
  sync.routes.push_back(route("mining-crm", "mining", "crm", rng));
  sync.routes.push_back(route("crm-erp", "crm", "erp", rng));
  sync.routes.push_back(route("erp-audit", "erp", "audit", rng));
  sync.routes.push_back(route("ghost", "crm", "elsewhere", rng));  // a subscriber plugins.json does not list
  w.setStatus(plugins, sync);
  ASSERT_NE(w.node("erp"), nullptr);
  EXPECT_EQ(w.node("erp")->health, TopologyWidget::Health::Failed);
  EXPECT_EQ(w.node("audit")->health, TopologyWidget::Health::Restarting);
  EXPECT_EQ(w.node("crm")->health, TopologyWidget::Health::Ok);
  ASSERT_NE(w.node("elsewhere"), nullptr);
  const QImage image = render(w);
  EXPECT_GT(pixelsOf(image, TopologyWidget::fillFor(TopologyWidget::Health::Failed)), 500);
  EXPECT_GT(pixelsOf(image, TopologyWidget::fillFor(TopologyWidget::Health::Restarting)), 500);

  // A tiny widget must not crash either.
  w.resize(10, 10);
  QImage tiny(w.size(), QImage::Format_ARGB32);
  w.render(&tiny);
}

}  // namespace
}  // namespace ipcsync::admin
