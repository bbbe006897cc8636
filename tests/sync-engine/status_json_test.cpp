// `ipcsync status --json` against a live namespace: the documented fields (docs/STATUS-JSON.md),
// with the values the engine and a real registered process have.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "ipcsync/ipccore/client.h"
#include "namespace_test.h"
#include "run_program.h"

namespace ipcsync {
namespace {

using namespace std::chrono_literals;

class StatusJsonTest : public test::NamespaceTest {};

TEST_F(StatusJsonTest, DescribesTheEngineEveryRegistrationAndItsBlock) {
  startEngine("json");
  auto client = Client::connect(options("crm"));
  ASSERT_TRUE(client) << client.error().message();
  auto a = (*client)->allocate(300 << 10);  // most of a third of the first 1 MiB arena
  ASSERT_TRUE(a);
  // The arena picture is published on the engine's tick.
  nlohmann::json crm;
  ASSERT_TRUE(test::waitFor([&] {
    const auto [code, out] = test::runProgram({IPCSYNC_CLI, "status", "-n", ns, "--json"});
    if (code != 0) return false;
    const auto doc = nlohmann::json::parse(out);
    EXPECT_EQ(doc["version"], 1);
    EXPECT_EQ(doc["namespace"], ns);
    EXPECT_EQ(doc["engine"]["pid"], engine->pid());
    EXPECT_TRUE(doc["engine"]["running"].get<bool>());
    EXPECT_TRUE(doc["cached_topics"].is_array());
    for (const auto& r : doc["registrations"])
      if (r["name"] == "crm") crm = r;
    return !crm.is_null() && crm["block"]["bytes_in_use"].get<std::uint64_t>() >= (300u << 10) &&
           crm["block"]["arena_used_permille"][0].is_number() && crm["block"]["arena_used_permille"][0].get<int>() > 0;
  }, 5s)) << crm.dump(2);
  EXPECT_EQ(crm["pid"], ::getpid());
  EXPECT_EQ(crm["uid"], ::getuid());
  EXPECT_EQ(crm["state"], "registered");
  EXPECT_EQ(crm["block"]["arena_bytes"], 1u << 20);
  EXPECT_EQ(crm["block"]["active_arenas"], 1u);
  EXPECT_EQ(crm["block"]["arena_used_permille"][0], 500) << "512 KiB of the arena (300 KiB rounds up)";
  EXPECT_TRUE(crm["block"]["arena_used_permille"][1].is_null()) << "inactive arenas are null";
  EXPECT_EQ(crm["traffic"]["messages_in"], 0u);
}

TEST_F(StatusJsonTest, ANamespaceWithoutAnEngineIsExitOneWithAMessage) {
  const auto [code, out] = test::runProgram({IPCSYNC_CLI, "status", "-n", test::uniqueNamespace("nobody"), "--json"});
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("not running"), std::string::npos) << out;
}

}  // namespace
}  // namespace ipcsync
