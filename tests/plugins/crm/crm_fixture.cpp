#include "crm_fixture.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace ipcsync::test {

int runProcess(const std::vector<std::string>& argv, const std::string& input, std::string* output) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(out[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  // Write the input, then read everything (small inputs: the pipe buffer holds them).
  size_t written = 0;
  while (written < input.size()) {
    const ssize_t n = write(in[1], input.data() + written, input.size() - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  close(in[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (output) *output = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

ipcsync_envelope envelopeFor(const std::vector<unsigned char>& data, uint64_t sequence, const char* route, uint32_t pieceIndex,
                             uint32_t pieceCount, ipcsync_conflict_policy policy, const char* timestamp) {
  ipcsync_envelope e{};
  e.struct_size = sizeof e;
  e.origin = "source";
  e.sequence = sequence;
  e.route = route;
  e.piece_index = pieceIndex;
  e.piece_count = pieceCount;
  e.data = data.data();
  e.size = data.size();
  e.conflict_policy = policy;
  e.timestamp_column = timestamp;
  return e;
}

ipcsync_envelope envelopeFor(const RecordedEnvelope& r, const char* route, ipcsync_conflict_policy policy, const char* timestamp) {
  return envelopeFor(r.data, r.sequence, route, r.pieceIndex, r.pieceCount, policy, timestamp);
}

std::string crmSchema() {
  std::ifstream in(IPCSYNC_CRM_SCHEMA_SQL);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<unsigned char> crmChangeset(const std::string& setup, const std::string& changes) {
  SqliteDb db;
  db.exec(crmSchema());
  db.exec(setup);
  sqlite3_session* session = nullptr;
  sqlite3session_create(db.get(), "main", &session);
  sqlite3session_attach(session, nullptr);
  db.exec(changes);
  int size = 0;
  void* data = nullptr;
  sqlite3session_changeset(session, &size, &data);
  std::vector<unsigned char> out(static_cast<unsigned char*>(data), static_cast<unsigned char*>(data) + size);
  sqlite3_free(data);
  sqlite3session_delete(session);
  return out;
}

CrmTest::CrmTest() {
  char pattern[] = "/tmp/ipcsync-crm-test-XXXXXX";
  const char* made = mkdtemp(pattern);
  if (!made) throw std::runtime_error("mkdtemp failed");
  m_dir = made;
}

CrmTest::~CrmTest() {
  std::error_code ignored;
  std::filesystem::remove_all(m_dir, ignored);
}

std::unique_ptr<TestHost> CrmTest::crm(const std::string& name, std::map<std::string, std::string> settings, bool start) {
  settings.try_emplace("database", path(name + ".db"));
  auto host = std::make_unique<TestHost>(IPCSYNC_CRM_PLUGIN, settings, m_dir / (name + "-data"));
  const int created = host->create();
  EXPECT_EQ(created, IPCSYNC_OK) << host->lastError();
  if (created == IPCSYNC_OK && start) {
    EXPECT_EQ(host->start(0), IPCSYNC_OK) << host->lastError();
  }
  return host;
}

void CrmTest::pollAll(TestHost& host) {
  for (int i = 0; i < 1000; ++i) {
    const size_t before = host.emitted.size();
    ASSERT_EQ(host.poll(), IPCSYNC_OK) << host.lastError();
    if (host.emitted.size() == before && host.busyEmits == 0) return;
  }
  FAIL() << "poll kept emitting";
}

size_t CrmTest::feed(const TestHost& source, TestHost& target, const char* route, size_t from) {
  size_t applied = 0;
  for (size_t i = from; i < source.emitted.size(); ++i) {
    ipcsync_apply_result result{};
    auto e = envelopeFor(source.emitted[i], route);
    EXPECT_EQ(target.apply(e, result), IPCSYNC_OK) << target.lastError();
    EXPECT_NE(result.status, IPCSYNC_DUPLICATE) << "sequence " << source.emitted[i].sequence;
    ++applied;
  }
  return applied;
}

void CrmTest::shell(const std::string& db, const std::string& sql) {
  std::string output;
  const int code = runProcess({"sqlite3", "-bail", db}, ".timeout 10000\n" + sql + "\n", &output);
  ASSERT_EQ(code, 0) << "sqlite3 shell failed: " << output;
}

void CrmTest::expectSameTables(const std::string& a, const std::string& b) {
  SqliteDb x(a), y(b);
  for (const char* table : {"accounts", "contacts", "interactions", "orders"}) {
    auto rowsA = x.table(table), rowsB = y.table(table);
    EXPECT_EQ(rowsA.size(), rowsB.size()) << table;
    EXPECT_TRUE(rowsA == rowsB) << "table " << table << " differs";
  }
}

}  // namespace ipcsync::test
