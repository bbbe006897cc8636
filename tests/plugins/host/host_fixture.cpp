#include "host_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "processes.h"

namespace ipcsync::test {

namespace {

int decode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::filesystem::path tempFile(const std::string& tag) {
  std::string tmpl = "/tmp/ipcsync-host-test-" + tag + "-XXXXXX";
  const int fd = ::mkstemp(tmpl.data());
  ::close(fd);
  return tmpl;
}

[[noreturn]] void execProgram(const std::string& program, const std::vector<std::string>& args, const std::string& out,
                              const std::string& err) {
  const int o = ::open(out.c_str(), O_WRONLY | O_TRUNC);
  const int e = ::open(err.c_str(), O_WRONLY | O_TRUNC);
  if (o >= 0) ::dup2(o, STDOUT_FILENO);
  if (e >= 0) ::dup2(e, STDERR_FILENO);
  std::vector<char*> argv{const_cast<char*>(program.c_str())};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execv(program.c_str(), argv.data());
  ::_exit(127);
}

}  // namespace

std::filesystem::path testPlugin(const std::string& name) {
  return std::filesystem::path(IPCSYNC_TEST_PLUGIN_DIR) / (name + ".so");
}
std::string pluginHostPath() { return IPCSYNC_TEST_PLUGIN_HOST; }
std::string cliPath() { return IPCSYNC_TEST_CLI; }

RunResult runProgram(const std::string& program, const std::vector<std::string>& args,
                     std::chrono::milliseconds timeout) {
  const auto out = tempFile("out");
  const auto err = tempFile("err");
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) execProgram(program, args, out, err);
  RunResult r;
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (::waitpid(pid, &status, WNOHANG) != pid) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  r.code = decode(status);
  r.out = slurp(out);
  r.err = slurp(err);
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  return r;
}

HostProcess::HostProcess(const std::vector<std::string>& args) : m_log(tempFile("log")) {
  std::fflush(nullptr);
  m_pid = ::fork();
  if (m_pid == 0) execProgram(pluginHostPath(), args, "/dev/null", m_log);
}

HostProcess::~HostProcess() {
  if (!m_code) {
    ::kill(m_pid, SIGKILL);
    int status = 0;
    ::waitpid(m_pid, &status, 0);
  }
  std::filesystem::remove(m_log);
}

std::optional<int> HostProcess::poll() {
  if (m_code) return m_code;
  int status = 0;
  if (::waitpid(m_pid, &status, WNOHANG) == m_pid) m_code = decode(status);
  return m_code;
}

int HostProcess::wait(std::chrono::milliseconds timeout) {
  waitFor([&] { return poll().has_value(); }, timeout);
  return m_code.value_or(-1);
}

int HostProcess::signal(int sig) {
  ::kill(m_pid, sig);
  return wait();
}

std::string HostProcess::log() const { return slurp(m_log); }

std::expected<SyncSide, std::string> SyncSide::open(const std::string& ns, const std::filesystem::path& runtimeDir,
                                                    const std::string& host, const std::string& name) {
  ConnectOptions o;
  o.ns = ns;
  o.name = name;
  o.runtimeDir = runtimeDir;
  auto c = Client::connect(o);
  if (!c) return std::unexpected("connect: " + c.error().message());
  SyncSide side;
  side.m_client = std::move(*c);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    auto s = side.m_client->openSession(host, std::chrono::milliseconds(2000));
    if (s) {
      side.m_session = *s;
      return side;
    }
    if (s.error().code != Errc::NoSuchPeer || std::chrono::steady_clock::now() > deadline)
      return std::unexpected("openSession(" + host + "): " + s.error().message());
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::expected<std::vector<std::byte>, std::string> SyncSide::request(std::span<const std::byte> frame,
                                                                     std::chrono::milliseconds timeout) {
  auto loan = m_client->loan(frame.size(), std::chrono::milliseconds(1000));
  if (!loan) return std::unexpected("loan: " + loan.error().message());
  std::memcpy(loan->bytes().data(), frame.data(), frame.size());
  auto reply = m_client->request(m_session, *loan, timeout);
  if (!reply) {
    m_client->abandon(std::move(*loan));
    return std::unexpected("request: " + reply.error().message());
  }
  std::vector<std::byte> out(reply->bytes().begin(), reply->bytes().end());
  m_client->release(std::move(*reply));
  return out;
}

std::expected<void, std::string> SyncSide::send(std::span<const std::byte> frame) {
  auto loan = m_client->loan(frame.size(), std::chrono::milliseconds(1000));
  if (!loan) return std::unexpected("loan: " + loan.error().message());
  std::memcpy(loan->bytes().data(), frame.data(), frame.size());
  if (auto sent = m_client->send(m_session, *loan); !sent) {
    m_client->abandon(std::move(*loan));
    return std::unexpected("send: " + sent.error().message());
  }
  return {};
}

std::expected<std::vector<std::byte>, std::string> SyncSide::next(std::chrono::milliseconds timeout) {
  auto m = m_client->receive(timeout);
  if (!m) return std::unexpected("receive: " + m.error().message());
  std::vector<std::byte> out(m->bytes().begin(), m->bytes().end());
  m_client->release(std::move(*m));
  return out;
}

}  // namespace ipcsync::test
