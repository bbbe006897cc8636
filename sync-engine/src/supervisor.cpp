#include "ipcsync/sync/supervisor.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "ipcsync/sync/host_process.h"
#include "ipcsync/sync/restart_policy.h"

namespace ipcsync {

std::string_view toString(InstanceState state) {
  switch (state) {
    case InstanceState::Starting: return "starting";
    case InstanceState::Running: return "running";
    case InstanceState::Restarting: return "restarting";
    case InstanceState::Failed: return "failed";
    case InstanceState::Stopping: return "stopping";
    case InstanceState::Stopped: return "stopped";
  }
  return "unknown";
}

namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr auto kProbeInterval = std::chrono::milliseconds(50);

// Host exit codes (see the plugin host's --help).
constexpr int kHostStopped = 0;
constexpr int kHostRefused = 3;
constexpr int kHostCreateFailed = 4;

// epoll tags: instance index in the upper bits, the descriptor's kind in the lowest two.
enum class Kind : std::uint64_t { PidFd = 0, Stderr = 1, Timer = 2 };
std::uint64_t tag(std::size_t index, Kind kind) { return (static_cast<std::uint64_t>(index) << 2) | static_cast<std::uint64_t>(kind); }

struct Instance {
  std::uint64_t id = 0;  // stable for the instance's life: epoll tags carry it
  PluginInstanceConfig config;
  std::filesystem::path dataDir;
  InstanceStatus status;
  RestartPolicy policy;
  std::optional<HostProcess> host;
  std::optional<SteadyClock::time_point> restartDue;
  std::string lastLine;  // the host's last stderr line
  std::optional<SteadyClock::time_point> killAt;  // SIGTERM sent: SIGKILL at this time
  bool removing = false;                          // dropped from the configuration: forget it once reaped
  std::optional<PluginInstanceConfig> next;       // start with this configuration once reaped
};

bool sameLaunch(const PluginInstanceConfig& a, const PluginInstanceConfig& b) {
  return a.library == b.library && a.settings == b.settings && a.dataDir == b.dataDir && a.libraryAsWritten == b.libraryAsWritten;
}

}  // namespace

class Supervisor::Impl {
 public:
  Impl(const PluginsConfig& config, Options options, LogSink log, RegisteredProbe registered)
      : m_options(std::move(options)),
        m_log(std::move(log)),
        m_registered(std::move(registered)),
        m_config(config),
        m_stopTimeout(config.supervision.stopTimeout) {
    for (const auto& ic : config.instances) m_instances.push_back(makeInstance(ic));
  }

  std::unique_ptr<Instance> makeInstance(const PluginInstanceConfig& ic) {
    auto inst = std::make_unique<Instance>(Instance{m_nextId++, ic, effectiveDataDir(m_config, ic, m_options.ns), {},
                                                    RestartPolicy(m_config.supervision), {}, {}, {}, {}, false, {}});
    inst->status.name = ic.name;
    inst->status.library = ic.libraryAsWritten;
    inst->status.state = InstanceState::Stopped;
    inst->status.since = std::chrono::system_clock::now();
    return inst;
  }

  Instance* find(std::uint64_t id) {
    for (auto& inst : m_instances)
      if (inst->id == id) return inst.get();
    return nullptr;
  }
  Instance* find(const std::string& name) {
    for (auto& inst : m_instances)
      if (inst->config.name == name && !inst->removing) return inst.get();
    return nullptr;
  }

  void reconfigure(const PluginsConfig& config) {
    if (m_shuttingDown) return;
    m_config = config;
    m_stopTimeout = config.supervision.stopTimeout;
    for (auto& inst : m_instances) {
      if (inst->removing) continue;
      const auto it = std::ranges::find_if(config.instances, [&](const PluginInstanceConfig& c) { return c.name == inst->config.name; });
      if (it == config.instances.end()) {
        log(LogLevel::Info, m_options.kind + " '" + inst->config.name + "' is no longer configured: stopping it");
        inst->removing = true;
        stop(*inst, "removed from the configuration");
      } else if (!sameLaunch(inst->config, *it)) {
        log(LogLevel::Info, m_options.kind + " '" + inst->config.name + "' changed: starting it afresh");
        replace(*inst, *it);
      }
    }
    for (const auto& ic : config.instances)
      if (!find(ic.name)) {
        log(LogLevel::Info, m_options.kind + " '" + ic.name + "' was added: starting it");
        m_instances.push_back(makeInstance(ic));
        start(*m_instances.back());
      }
    forgetRemoved();
    rearm();
    changed();
  }

  void restart(const std::string& name) {
    if (m_shuttingDown) return;
    if (Instance* inst = find(name)) {
      replace(*inst, inst->config);
      rearm();
      changed();
    }
  }

  std::expected<void, std::string> open() {
    m_epoll.reset(::epoll_create1(EPOLL_CLOEXEC));
    m_timer.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!m_epoll || !m_timer) return std::unexpected(std::string("epoll/timerfd: ") + std::strerror(errno));
    if (!add(m_timer.get(), tag(0, Kind::Timer))) return std::unexpected(std::string("epoll_ctl: ") + std::strerror(errno));
    return {};
  }

  ~Impl() {
    for (auto& inst : m_instances) inst->host.reset();  // SIGKILL and reap
  }

  int pollFd() const noexcept { return m_epoll.get(); }
  void onChange(std::function<void()> cb) { m_onChange = std::move(cb); }

  void startAll() {
    for (auto& inst : m_instances) start(*inst);
    rearm();
    changed();
  }

  void dispatch() {
    epoll_event events[32];
    bool any = false;
    for (;;) {
      const int n = ::epoll_wait(m_epoll.get(), events, 32, 0);
      if (n <= 0) break;
      for (int k = 0; k < n; ++k) {
        Instance* inst = find(events[k].data.u64 >> 2);
        switch (static_cast<Kind>(events[k].data.u64 & 3)) {
          case Kind::Timer: {
            std::uint64_t expirations = 0;
            [[maybe_unused]] auto r = ::read(m_timer.get(), &expirations, sizeof expirations);
            break;
          }
          case Kind::Stderr:
            if (inst) drain(*inst);
            break;
          case Kind::PidFd:
            if (inst) any |= reap(*inst);
            break;
        }
      }
      if (n < 32) break;
    }
    any |= runDueWork();
    forgetRemoved();
    rearm();
    if (any) changed();
  }

  void beginShutdown() {
    if (m_shuttingDown) return;
    m_shuttingDown = true;
    for (auto& inst : m_instances) {
      inst->next.reset();
      stop(*inst, "the daemon is stopping");
    }
    rearm();
    changed();
  }

  void holdRestarts() { m_holdRestarts = true; }

  bool stopped() const noexcept {
    return m_shuttingDown && std::ranges::none_of(m_instances, [](const auto& i) { return i->host.has_value(); });
  }

  std::vector<InstanceStatus> status() const {
    std::vector<InstanceStatus> out;
    for (const auto& inst : m_instances)
      if (!inst->removing) out.push_back(inst->status);
    return out;
  }

 private:
  bool add(int fd, std::uint64_t data) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = data;
    return ::epoll_ctl(m_epoll.get(), EPOLL_CTL_ADD, fd, &ev) == 0;
  }
  void remove(int fd) {
    if (fd >= 0) ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, fd, nullptr);
  }

  void log(LogLevel level, const std::string& text) {
    if (m_log) m_log(level, text);
  }
  void changed() {
    if (m_onChange) m_onChange();
  }
  static void setState(Instance& inst, InstanceState state, std::string message) {
    inst.status.state = state;
    inst.status.message = std::move(message);
    inst.status.since = std::chrono::system_clock::now();
  }

  std::vector<std::string> hostArgs(const Instance& inst) const {
    if (m_options.args) return m_options.args(inst.config, inst.dataDir);
    std::vector<std::string> args = {"--plugin",    inst.config.library.string(), "--instance",
                                     inst.config.name, "--namespace", m_options.ns};
    if (!m_options.runtimeDir.empty()) args.insert(args.end(), {"--runtime-dir", m_options.runtimeDir.string()});
    args.insert(args.end(), {"--data-dir", inst.dataDir.string()});
    for (const auto& [k, v] : inst.config.settings) args.insert(args.end(), {"--setting", k + "=" + v});
    return args;
  }

  // SIGTERM to the instance's process (SIGKILL after the stop timeout); no restart is due any more.
  void stop(Instance& inst, const std::string& why) {
    inst.restartDue.reset();
    inst.status.restartAt.reset();
    if (inst.host) {
      if (!inst.killAt) {
        inst.host->signal(SIGTERM);
        inst.killAt = SteadyClock::now() + m_stopTimeout;
      }
      setState(inst, InstanceState::Stopping, inst.status.message);
    } else if (inst.status.state != InstanceState::Failed || inst.removing) {
      setState(inst, InstanceState::Stopped, why);
    }
  }

  // Stops the instance and starts it with `config` once its process is gone (at once if none runs).
  void replace(Instance& inst, const PluginInstanceConfig& config) {
    inst.next = config;
    if (inst.host) {
      stop(inst, "restarting");
    } else {
      applyNext(inst);
      start(inst);
    }
  }
  void applyNext(Instance& inst) {
    if (!inst.next) return;
    inst.config = std::move(*inst.next);
    inst.next.reset();
    inst.dataDir = effectiveDataDir(m_config, inst.config, m_options.ns);
    inst.status.library = inst.config.libraryAsWritten;
    inst.policy = RestartPolicy(m_config.supervision);  // a fresh start: earlier crashes do not count
  }

  // Drops removed instances whose process is gone.
  void forgetRemoved() {
    std::erase_if(m_instances, [](const auto& i) { return i->removing && !i->host; });
  }

  void start(Instance& inst) {
    inst.restartDue.reset();
    inst.status.restartAt.reset();
    std::error_code ec;
    std::filesystem::create_directories(inst.dataDir, ec);
    if (ec) {
      fail(inst, "cannot create data directory " + inst.dataDir.string() + ": " + ec.message() +
                     "; fix data_dir or state_dir in the configuration");
      return;
    }
    // Without a host program each instance's library is the program itself (the sync engine).
    const bool ownProgram = m_options.hostProgram.empty();
    auto host = HostProcess::spawn(ownProgram ? inst.config.library : m_options.hostProgram, hostArgs(inst));
    if (!host && host.error().transient) {
      // Out of processes, descriptors or memory: not the configuration's fault, and not a crash
      // of the plugin. Try again after the longest back-off delay, for as long as it takes.
      const auto delay = m_config.supervision.restartMax;
      inst.restartDue = SteadyClock::now() + delay;
      inst.status.restartAt = std::chrono::system_clock::now() + delay;
      log(LogLevel::Warn, m_options.kind + " '" + inst.config.name + "': " + host.error().message + "; trying again in " +
                              std::to_string(delay.count()) + " ms");
      setState(inst, InstanceState::Restarting, host.error().message);
      return;
    }
    if (!host) {
      fail(inst, host.error().message + (ownProgram ? "; check sync_program in the configuration" : "; check plugin_host in the configuration"));
      return;
    }
    if (inst.status.pid != 0 || !inst.status.lastExit.empty()) ++inst.status.restarts;
    inst.status.pid = host->pid();
    inst.lastLine.clear();
    add(host->pidFd(), tag(inst.id, Kind::PidFd));
    add(host->stderrFd(), tag(inst.id, Kind::Stderr));
    inst.killAt.reset();
    inst.host = std::move(*host);
    setState(inst, InstanceState::Starting, {});
    log(LogLevel::Info, m_options.kind + " '" + inst.config.name + "': " + m_options.process + " started, pid " + std::to_string(inst.status.pid) +
                            " (" + inst.config.library.string() + ")");
  }

  void fail(Instance& inst, std::string reason) {
    log(LogLevel::Error, m_options.kind + " '" + inst.config.name + "' FAILED: " + reason);
    setState(inst, InstanceState::Failed, std::move(reason));
    inst.status.pid = 0;
  }

  // `pid`: the host's, also after it was reaped (its last lines explain why it ended).
  void drain(Instance& inst, pid_t pid = 0) {
    if (!inst.host) return;
    if (pid <= 0) pid = inst.host->pid();
    inst.host->drainStderr([&](std::string_view line) {
      if (line.empty()) return;
      inst.lastLine = std::string(line);
      log(LogLevel::Info, m_options.registeredPrefix + inst.config.name + "[" + std::to_string(pid) + "]: " + inst.lastLine);
    });
    // At end of file the pipe is closed, which also takes it out of the epoll set.
  }

  // The host of instance `index` may have ended: reap it and decide. True when something changed.
  bool reap(Instance& inst) {
    if (!inst.host) return false;
    const pid_t pid = inst.host->pid();
    auto exit = inst.host->tryReap();
    if (!exit) return false;
    drain(inst, pid);  // what it wrote last: usually the reason it ended
    remove(inst.host->pidFd());
    remove(inst.host->stderrFd());
    inst.host.reset();
    inst.killAt.reset();
    inst.status.pid = 0;
    inst.status.lastExit = exit->describe();
    const std::string what = m_options.kind + " '" + inst.config.name + "': " + m_options.process + " pid " + std::to_string(pid) + " ended (" +
                             inst.status.lastExit + ")";
    if (inst.removing) {
      log(LogLevel::Info, what + "; removed");
      setState(inst, InstanceState::Stopped, "removed from the configuration");
      return true;
    }
    if (inst.next && !m_shuttingDown) {
      log(LogLevel::Info, what + "; starting it again");
      applyNext(inst);
      start(inst);
      return true;
    }
    if (m_shuttingDown || m_holdRestarts) {
      log(LogLevel::Info, what);
      setState(inst, InstanceState::Stopped, inst.lastLine);
      return true;
    }
    if (!exit->signaled && exit->code == kHostStopped) {
      log(LogLevel::Warn, what + " after being told to stop by someone else; not restarting it");
      setState(inst, InstanceState::Stopped, inst.lastLine);
      return true;
    }
    if (!exit->signaled && (exit->code == kHostRefused || exit->code == kHostCreateFailed)) {
      const char* why = exit->code == kHostRefused ? "the plugin was refused by the loader (exit 3)"
                                                   : "the plugin's create/start failed (exit 4)";
      fail(inst, std::string(why) + (inst.lastLine.empty() ? "" : ": " + inst.lastLine) + "; restarting cannot help");
      return true;
    }
    const auto decision = inst.policy.onCrash(SteadyClock::now());
    if (decision.giveUp) {
      fail(inst, "crashed " + std::to_string(decision.crashesInWindow) + " times within the crash window (last: " +
                     inst.status.lastExit + (inst.lastLine.empty() ? "" : ", " + inst.lastLine) +
                     "); not restarting it");
      return true;
    }
    inst.restartDue = SteadyClock::now() + decision.delay;
    inst.status.restartAt = std::chrono::system_clock::now() + decision.delay;
    log(LogLevel::Warn, what + "; restarting in " + std::to_string(decision.delay.count()) + " ms (crash " +
                            std::to_string(decision.crashesInWindow) + " within the window)");
    setState(inst, InstanceState::Restarting, inst.lastLine);
    return true;
  }

  bool runDueWork() {
    bool any = false;
    const auto now = SteadyClock::now();
    for (auto& p : m_instances) {
      Instance& inst = *p;
      if (!m_shuttingDown && inst.restartDue && *inst.restartDue <= now) {
        start(inst);
        any = true;
      }
      if (inst.host && !inst.killAt && inst.status.state == InstanceState::Starting && m_registered &&
          m_registered(m_options.registeredPrefix + inst.config.name, inst.host->pid())) {
        setState(inst, InstanceState::Running, inst.lastLine);
        log(LogLevel::Info, m_options.kind + " '" + inst.config.name + "' is running (registered as " +
                                m_options.registeredPrefix + inst.config.name + ")");
        any = true;
      }
      if (inst.host && inst.killAt && now >= *inst.killAt) {
        log(LogLevel::Warn, m_options.kind + " '" + inst.config.name + "': " + m_options.process + " pid " + std::to_string(inst.host->pid()) +
                                " did not stop within " + std::to_string(m_stopTimeout.count()) + " ms; killing it");
        inst.host->signal(SIGKILL);
        inst.killAt = SteadyClock::time_point::max();  // once
      }
    }
    return any;
  }

  // Arms the timer for the earliest of: a due restart, the next registration probe, the kill deadline.
  void rearm() {
    std::optional<SteadyClock::time_point> next;
    auto consider = [&](SteadyClock::time_point t) { next = next ? std::min(*next, t) : t; };
    const auto now = SteadyClock::now();
    for (const auto& inst : m_instances) {
      if (inst->restartDue && !m_shuttingDown) consider(*inst->restartDue);
      if (inst->host && inst->status.state == InstanceState::Starting) consider(now + kProbeInterval);
      if (inst->host && inst->killAt && *inst->killAt != SteadyClock::time_point::max()) consider(*inst->killAt);
    }
    itimerspec spec{};
    if (next) {
      auto in = std::max(std::chrono::nanoseconds(1000), std::chrono::nanoseconds(*next - now));
      spec.it_value.tv_sec = static_cast<time_t>(in.count() / 1'000'000'000);
      spec.it_value.tv_nsec = static_cast<long>(in.count() % 1'000'000'000);
    }
    ::timerfd_settime(m_timer.get(), 0, &spec, nullptr);
  }

  Options m_options;
  LogSink m_log;
  RegisteredProbe m_registered;
  PluginsConfig m_config;
  std::chrono::milliseconds m_stopTimeout;
  std::function<void()> m_onChange;
  std::uint64_t m_nextId = 1;  // 0 tags the timer
  std::vector<std::unique_ptr<Instance>> m_instances;
  UniqueFd m_epoll, m_timer;
  bool m_shuttingDown = false;
  bool m_holdRestarts = false;  // holdRestarts(): hosts that end stay stopped
};

std::expected<std::unique_ptr<Supervisor>, std::string> Supervisor::create(const PluginsConfig& config, Options options,
                                                                           LogSink log, RegisteredProbe registered) {
  auto impl = std::make_unique<Impl>(config, std::move(options), std::move(log), std::move(registered));
  if (auto ok = impl->open(); !ok) return std::unexpected(ok.error());
  return std::unique_ptr<Supervisor>(new Supervisor(std::move(impl)));
}

Supervisor::Supervisor(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
Supervisor::~Supervisor() = default;
int Supervisor::pollFd() const noexcept { return m_impl->pollFd(); }
void Supervisor::onChange(std::function<void()> callback) { m_impl->onChange(std::move(callback)); }
void Supervisor::startAll() { m_impl->startAll(); }
void Supervisor::dispatch() { m_impl->dispatch(); }
void Supervisor::reconfigure(const PluginsConfig& config) { m_impl->reconfigure(config); }
void Supervisor::restart(const std::string& name) { m_impl->restart(name); }
void Supervisor::beginShutdown() { m_impl->beginShutdown(); }
void Supervisor::holdRestarts() { m_impl->holdRestarts(); }
bool Supervisor::stopped() const noexcept { return m_impl->stopped(); }
std::vector<InstanceStatus> Supervisor::status() const { return m_impl->status(); }

}  // namespace ipcsync
