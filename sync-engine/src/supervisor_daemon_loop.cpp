#include "ipcsync/sync/daemon_loop.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "ipcsync/ipccore/admin_segment.h"
#include "ipcsync/sync/plugin_dir_watch.h"
#include "ipcsync/sync/plugins_status_file.h"
#include "ipcsync/sync/supervisor.h"

namespace ipcsync {
namespace {

sigset_t stopSignals() {
  sigset_t set;
  ::sigemptyset(&set);
  ::sigaddset(&set, SIGTERM);
  ::sigaddset(&set, SIGINT);
  return set;
}

enum Tag : std::uint64_t { kSignal, kSupervisor, kWatch, kEngineDone };

// Answers "is this host registered with the engine?" from the admin segment, as observers see it.
class RegistryProbe {
 public:
  explicit RegistryProbe(std::string ns) : m_ns(std::move(ns)) {}
  bool operator()(const std::string& name, pid_t pid) {
    if (!m_segment) {
      auto seg = AdminSegment::open(m_ns);
      if (!seg) return false;
      m_segment = std::move(*seg);
    }
    for (const auto& [slot, r] : m_segment->snapshot())
      if (r.pid == pid && r.nameView() == name && r.state == RecordState::Registered) return true;
    return false;
  }

 private:
  std::string m_ns;
  std::shared_ptr<AdminSegment> m_segment;
};

// Which files of the plugins directory no configured instance uses.
std::vector<std::string> availableFiles(const PluginDirWatch* watch, const PluginsConfig& config) {
  std::vector<std::string> out;
  if (!watch) return out;
  for (const auto& file : watch->files()) {
    const auto path = (watch->dir() / file).lexically_normal();
    const bool used = std::ranges::any_of(config.instances, [&](const PluginInstanceConfig& i) {
      std::error_code ec;
      return i.library.lexically_normal() == path || std::filesystem::equivalent(i.library, path, ec);
    });
    if (!used) out.push_back(file);
  }
  return out;
}

}  // namespace

void blockStopSignals() {
  const sigset_t set = stopSignals();
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int runDaemon(std::unique_ptr<Engine> engine, const DaemonConfig& config, const LogSink& log, int readyFd) {
  const sigset_t set = stopSignals();
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
  if (readyFd >= 0) ::fcntl(readyFd, F_SETFD, FD_CLOEXEC);  // no host may inherit it
  UniqueFd signals(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
  UniqueFd engineDone(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!signals || !epoll || !engineDone) {
    log(LogLevel::Error, std::string("cannot set up the daemon's loop: ") + std::strerror(errno));
    return 1;
  }
  auto add = [&](int fd, std::uint64_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    ::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &ev);
  };
  add(signals.get(), kSignal);
  add(engineDone.get(), kEngineDone);

  const std::filesystem::path runtimeBase = config.engine.runtimeDir.empty() ? defaultRuntimeDir() : config.engine.runtimeDir;
  const std::filesystem::path statusPath = engine->socketPath().parent_path() / "plugins.json";

  std::optional<PluginDirWatch> watch;
  if (!config.plugins.pluginsDir.empty()) {
    if (auto w = PluginDirWatch::open(config.plugins.pluginsDir)) {
      watch = std::move(*w);
      add(watch->fd(), kWatch);
      log(LogLevel::Info, "watching plugins directory " + config.plugins.pluginsDir.string());
    } else {
      log(LogLevel::Warn, w.error() + "; plugin files dropped there will not be noticed");
    }
  }

  Supervisor::Options options{config.plugins.hostProgram.empty() ? defaultHostProgram() : config.plugins.hostProgram,
                              config.engine.ns, runtimeBase};
  auto supervisor = Supervisor::create(config.plugins, options, log, RegistryProbe(config.engine.ns));
  if (!supervisor) {
    log(LogLevel::Error, "cannot start the supervisor: " + supervisor.error());
    return 1;
  }
  Supervisor& sup = **supervisor;
  add(sup.pollFd(), kSupervisor);

  bool statusFailed = false;
  auto publish = [&] {
    if (auto ok = writePluginsStatus(statusPath, sup.status(), availableFiles(watch ? &*watch : nullptr, config.plugins)); !ok) {
      if (!statusFailed) log(LogLevel::Warn, ok.error());
      statusFailed = true;
    } else {
      statusFailed = false;
    }
  };
  sup.onChange(publish);

  std::expected<void, Error> ran;
  std::thread engineThread([&] {
    ran = engine->run();
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(engineDone.get(), &one, sizeof one);
  });

  if (watch)
    for (const auto& f : availableFiles(&*watch, config.plugins))
      log(LogLevel::Info, "plugin file " + f + " is available, not configured");
  sup.startAll();  // publishes the first plugins.json
  if (readyFd >= 0) {
    [[maybe_unused]] auto n = ::write(readyFd, "ready\n", 6);
    ::close(readyFd);
  }

  int rc = 0;
  bool engineEnded = false;
  while (!sup.stopped()) {
    epoll_event events[8];
    const int n = ::epoll_wait(epoll.get(), events, 8, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      log(LogLevel::Error, std::string("epoll_wait: ") + std::strerror(errno));
      rc = 1;
      sup.beginShutdown();
      continue;
    }
    for (int k = 0; k < n; ++k) {
      switch (events[k].data.u64) {
        case kSignal: {
          signalfd_siginfo info{};
          while (::read(signals.get(), &info, sizeof info) == sizeof info)
            log(LogLevel::Info, std::string("SIG") + ::sigabbrev_np(static_cast<int>(info.ssi_signo)) +
                                    " received: stopping the plugin hosts, then the engine");
          sup.beginShutdown();
          break;
        }
        case kEngineDone: {
          std::uint64_t v = 0;
          [[maybe_unused]] auto r = ::read(engineDone.get(), &v, sizeof v);
          engineEnded = true;
          rc = 1;
          log(LogLevel::Error, "the engine's loop ended: " + (ran ? std::string("no reason given") : ran.error().message()) +
                                   "; stopping the plugin hosts");
          sup.beginShutdown();
          break;
        }
        case kWatch: {
          auto changes = watch->readEvents();
          for (const auto& f : changes.appeared) {
            const auto avail = availableFiles(&*watch, config.plugins);
            if (std::ranges::find(avail, f) != avail.end())
              log(LogLevel::Info, "plugin file " + f + " appeared: available, not configured");
            else
              log(LogLevel::Info, "plugin file " + f + " appeared (configured)");
          }
          for (const auto& f : changes.vanished) log(LogLevel::Info, "plugin file " + f + " was removed");
          if (changes.watchLost) {
            log(LogLevel::Warn, "plugins directory " + watch->dir().string() + " went away; no longer watching it");
            ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, watch->fd(), nullptr);
            watch.reset();
          }
          if (!changes.appeared.empty() || !changes.vanished.empty() || changes.watchLost) publish();
          break;
        }
        case kSupervisor: sup.dispatch(); break;
        default: break;
      }
    }
  }

  std::error_code ec;
  std::filesystem::remove(statusPath, ec);  // before the engine removes its runtime directory
  engine->requestStop();
  engineThread.join();
  engine.reset();
  if (!engineEnded && !ran) {
    log(LogLevel::Error, ran.error().message());
    rc = 1;
  }
  return rc;
}

}  // namespace ipcsync
