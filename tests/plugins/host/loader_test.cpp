// The loader in-process: every refusal by kind and message, the description of a good plugin,
// create() failures, and the host services a plugin instance gets (without IPC).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "host_fixture.h"
#include "ipcsync/plugin_host/description_json.h"
#include "ipcsync/plugin_host/loader.h"
#include "ipcsync/plugin_sdk/changeset.h"
#include "processes.h"

namespace ipcsync::plugin_host {
namespace {

using test::testPlugin;
using ::testing::HasSubstr;

// Records what the plugin emits; can push back (EBUSY) on the next N emits.
class RecordingSink final : public HostSink {
 public:
  int emit(const ipcsync_envelope& e, std::string& error) override {
    if (busy > 0) {
      --busy;
      error = "back-pressure (test)";
      return IPCSYNC_EBUSY;
    }
    const auto* b = static_cast<const char*>(e.data);
    emitted.emplace_back(e.sequence, std::string(b, b + e.size));
    return IPCSYNC_OK;
  }
  int emitSnapshot(const ipcsync_envelope& e, std::string&) override {
    ++snapshotPieces;
    (void)e;
    return IPCSYNC_OK;
  }
  int reportConflict(const ipcsync_conflict& c, std::string&) override {
    conflicts.push_back(c.key_json ? c.key_json : "");
    return IPCSYNC_OK;
  }
  int busy = 0;
  std::vector<std::pair<std::uint64_t, std::string>> emitted;
  int snapshotPieces = 0;
  std::vector<std::string> conflicts;
};

struct Refusal {
  const char* plugin;
  LoadErrc code;
  std::vector<const char*> says;  // what the message must contain besides the file name
};

class LoaderRefusalTest : public ::testing::TestWithParam<Refusal> {};

TEST_P(LoaderRefusalTest, RefusesTheDefectWithItsKindAndAMessageNamingFileAndRemedy) {
  const Refusal& r = GetParam();
  const auto path = std::string(r.plugin) == "missing" ? testPlugin("does_not_exist")
                    : std::string(r.plugin) == "x"     ? std::filesystem::path(IPCSYNC_TEST_PLUGIN_DIR) / "x.so"
                                                       : testPlugin(r.plugin);
  auto loaded = load(path);
  ASSERT_FALSE(loaded) << r.plugin << " loaded";
  EXPECT_EQ(loaded.error().code, r.code) << loaded.error().message;
  EXPECT_THAT(loaded.error().message, HasSubstr(path.string()));
  for (const char* s : r.says) EXPECT_THAT(loaded.error().message, HasSubstr(s));
}

INSTANTIATE_TEST_SUITE_P(
    EveryDefect, LoaderRefusalTest,
    ::testing::Values(
        Refusal{"missing", LoadErrc::FileMissing, {"no such file"}},
        Refusal{"x", LoadErrc::NotALibrary, {"cannot be loaded", "invalid ELF header"}},
        Refusal{"bad_unresolved", LoadErrc::NotALibrary, {"undefined symbol", "ipcsync_test_symbol_that_does_not_exist"}},
        Refusal{"bad_no_entry", LoadErrc::NoEntrySymbol, {"does not export ipcsync_plugin_entry", "IPCSYNC_PLUGIN_EXPORT"}},
        Refusal{"bad_null_descriptor", LoadErrc::NullDescriptor, {"returned NULL"}},
        Refusal{"bad_major", LoadErrc::AbiMajorMismatch, {"plugin ABI 2.1", "this host speaks 1.1", "rebuild against plugin.h 1.x"}},
        Refusal{"bad_minor", LoadErrc::AbiMinorTooNew, {"plugin ABI 1.2", "newer than this host's 1.1"}},
        Refusal{"bad_tiny_struct", LoadErrc::StructTooSmall, {"struct_size is 8 bytes", "sizeof(ipcsync_plugin_descriptor)"}},
        Refusal{"bad_missing_functions", LoadErrc::MissingFunctions, {"apply, snapshot"}},
        Refusal{"bad_no_primary_key", LoadErrc::NoPrimaryKey, {"table 'notes'", "PRIMARY KEY"}},
        Refusal{"bad_no_schema", LoadErrc::BadTable, {"table 'notes' has no schema"}},
        Refusal{"bad_name", LoadErrc::BadName, {"'Bad Name!'", "[a-z0-9_-]"}}),
    [](const auto& p) {
      std::string n = p.param.plugin;
      for (auto& c : n)
        if (c == '_') c = 'X';
      return n;
    });

TEST(LoaderTest, LoadsAGoodPluginAndDescribesItsTablesAndFlags) {
  auto loaded = load(testPlugin("echo"));
  ASSERT_TRUE(loaded) << loaded.error().message;
  const auto& d = loaded->description();
  EXPECT_EQ(d.name, "echo");
  EXPECT_EQ(d.version, "1.2.3");
  EXPECT_EQ(d.abiMajor, IPCSYNC_PLUGIN_ABI_MAJOR);
  ASSERT_EQ(d.tables.size(), 2u);
  EXPECT_EQ(d.tables[0].name, "items");
  EXPECT_TRUE(d.tables[0].produces());
  EXPECT_TRUE(d.tables[0].accepts());
  EXPECT_EQ(d.tables[1].name, "audit");
  EXPECT_TRUE(d.tables[1].produces());
  EXPECT_FALSE(d.tables[1].accepts());
  const auto json = describeAsJson(*loaded);
  EXPECT_THAT(json, HasSubstr("\"name\":\"echo\""));
  EXPECT_THAT(json, HasSubstr("\"accepts\":false"));
}

TEST(LoaderTest, ACreateThatFailsIsReportedWithThePluginsOwnMessage) {
  auto loaded = load(testPlugin("bad_create_fails"));
  ASSERT_TRUE(loaded) << loaded.error().message;
  test::TempDir dir;
  RecordingSink sink;
  auto instance = loaded->createInstance({"crm1", {}, dir.path() / "data"}, sink);
  ASSERT_FALSE(instance);
  EXPECT_EQ(instance.error().code, LoadErrc::CreateFailed);
  EXPECT_THAT(instance.error().message, HasSubstr("instance 'crm1'"));
  EXPECT_THAT(instance.error().message, HasSubstr("cannot open database /nonexistent/bad.sqlite"));
  EXPECT_THAT(instance.error().message, HasSubstr("status 2"));
}

TEST(LoaderTest, AnUncreatableDataDirectoryIsACreateFailureNamingTheDirectory) {
  auto loaded = load(testPlugin("echo"));
  ASSERT_TRUE(loaded);
  test::TempDir dir;
  std::ofstream(dir.path() / "file") << "x";
  RecordingSink sink;
  auto instance = loaded->createInstance({"e", {}, dir.path() / "file" / "data"}, sink);
  ASSERT_FALSE(instance);
  EXPECT_EQ(instance.error().code, LoadErrc::CreateFailed);
  EXPECT_THAT(instance.error().message, HasSubstr((dir.path() / "file" / "data").string()));
}

TEST(LoaderTest, TheInstanceGetsItsSettingsAndDataDirAndEmitsThroughTheSink) {
  auto loaded = load(testPlugin("echo"));
  ASSERT_TRUE(loaded);
  test::TempDir dir;
  RecordingSink sink;
  auto instance = loaded->createInstance({"e1", {{"fail_start", "0"}}, dir.path() / "data"}, sink);
  ASSERT_TRUE(instance) << instance.error().message;
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "data" / "echo.created"));
  auto& p = **instance;
  ASSERT_TRUE(p.start(41));
  const std::string told = "hello";
  ipcsync_envelope tell{};
  tell.route = "tell";
  tell.sequence = 1;
  tell.piece_count = 1;
  tell.data = told.data();
  tell.size = told.size();
  ASSERT_TRUE(p.apply(tell));
  sink.busy = 2;  // back-pressure twice: the plugin keeps it and emits on a later poll
  ASSERT_TRUE(p.poll());
  ASSERT_TRUE(p.poll());
  EXPECT_TRUE(sink.emitted.empty());
  ASSERT_TRUE(p.poll());
  ASSERT_EQ(sink.emitted.size(), 1u);
  EXPECT_EQ(sink.emitted[0].first, 42u);
  EXPECT_EQ(sink.emitted[0].second, "hello");
  auto ack = p.acknowledge(99);
  ASSERT_FALSE(ack);
  EXPECT_EQ(ack.error().status, IPCSYNC_EINVAL);
  EXPECT_THAT(ack.error().message, HasSubstr("beyond the last emitted sequence 42"));
  ASSERT_TRUE(p.stop());
}

TEST(LoaderTest, AStartThatFailsReturnsThePluginsMessage) {
  auto loaded = load(testPlugin("echo"));
  ASSERT_TRUE(loaded);
  test::TempDir dir;
  RecordingSink sink;
  auto instance = loaded->createInstance({"e2", {{"fail_start", "1"}}, dir.path()}, sink);
  ASSERT_TRUE(instance);
  auto started = (*instance)->start(0);
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().status, IPCSYNC_EINVAL);
  EXPECT_THAT(started.error().message, HasSubstr("fail_start=1"));
}

TEST(LoaderTest, EmitOutsideStartAndStopIsRefusedWithAClearMessage) {
  auto loaded = load(testPlugin("echo"));
  ASSERT_TRUE(loaded);
  test::TempDir dir;
  RecordingSink sink;
  auto instance = loaded->createInstance({"e3", {}, dir.path()}, sink);
  ASSERT_TRUE(instance);
  // Ask the plugin to emit, then stop it: the emit it tries on a later poll must be refused.
  ASSERT_TRUE((*instance)->start(0));
  const std::string told = "late";
  ipcsync_envelope tell{};
  tell.route = "tell";
  tell.piece_count = 1;
  tell.data = told.data();
  tell.size = told.size();
  ASSERT_TRUE((*instance)->apply(tell));
  ASSERT_TRUE((*instance)->stop());
  auto polled = (*instance)->poll();
  ASSERT_FALSE(polled);
  EXPECT_EQ(polled.error().status, IPCSYNC_EINVAL);
  EXPECT_THAT(polled.error().message, HasSubstr("outside start()..stop()"));
  EXPECT_TRUE(sink.emitted.empty());
}

TEST(LoaderTest, ParkedConflictsReachTheSink) {
  auto loaded = load(testPlugin("echo"));
  ASSERT_TRUE(loaded);
  test::TempDir dir;
  RecordingSink sink;
  auto instance = loaded->createInstance({"e4", {}, dir.path()}, sink);
  ASSERT_TRUE(instance);
  ASSERT_TRUE((*instance)->start(0));
  ipcsync_envelope e{};
  e.route = "r";
  e.origin = "crm";
  e.sequence = 7;
  e.piece_count = 1;
  e.conflict_policy = IPCSYNC_CONFLICT_PARK;
  auto result = (*instance)->apply(e);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, IPCSYNC_CONFLICTS);
  ASSERT_EQ(sink.conflicts.size(), 1u);
  EXPECT_EQ(sink.conflicts[0], "{\"seq\":7}");
}

TEST(LoaderTest, TheChangesetHelperServicesBuildAndReadAChangesetSqliteUnderstands) {
  auto loaded = load(testPlugin("echo"));
  ASSERT_TRUE(loaded);
  test::TempDir dir;
  RecordingSink sink;
  auto instance = loaded->createInstance({"e5", {}, dir.path()}, sink);
  ASSERT_TRUE(instance);
  ASSERT_TRUE((*instance)->start(0));
  const std::string v = "built row";
  ipcsync_envelope e{};
  e.route = "build";
  e.sequence = 77;
  e.piece_count = 1;
  e.data = v.data();
  e.size = v.size();
  auto built = (*instance)->apply(e);
  ASSERT_TRUE(built) << built.error().message;
  ASSERT_TRUE((*instance)->poll());
  ASSERT_EQ(sink.emitted.size(), 1u);
  const auto& bytes = sink.emitted[0].second;
  auto reader = plugin_sdk::ChangesetReader::open(
      std::span(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()));
  ASSERT_TRUE(reader) << reader.error();
  ipcsync_change change{};
  change.struct_size = sizeof change;
  auto next = reader->next(change);
  ASSERT_TRUE(next && *next) << (next ? "empty changeset" : next.error());
  EXPECT_STREQ(change.table, "items");
  EXPECT_EQ(change.op, IPCSYNC_OP_INSERT);
  ASSERT_EQ(change.column_count, 2);
  EXPECT_EQ(change.new_values[0].integer, 77);
  EXPECT_EQ(std::string(static_cast<const char*>(change.new_values[1].bytes), change.new_values[1].size), v);
}

}  // namespace
}  // namespace ipcsync::plugin_host
