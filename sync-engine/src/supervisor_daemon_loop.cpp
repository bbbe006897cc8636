#include "ipcsync/sync/daemon_loop.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
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
#include "ipcsync/ipccore/unique_fd.h"

namespace ipcsync {
namespace {

sigset_t stopSignals() {
  sigset_t set;
  ::sigemptyset(&set);
  ::sigaddset(&set, SIGTERM);
  ::sigaddset(&set, SIGINT);
  ::sigaddset(&set, SIGHUP);
  return set;
}

enum Tag : std::uint64_t { kSignal, kSupervisor, kSyncSupervisor, kWatch, kEngineDone, kConfigWatch };

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

// The sync engine as the one instance of its own supervisor; none when there are no routes.
PluginsConfig syncPlugins(const DaemonConfig& config) {
  PluginsConfig out = config.plugins;
  out.instances.clear();
  if (config.topology.routes.empty()) return out;
  PluginInstanceConfig sync;
  sync.name = "sync";
  sync.library = config.plugins.syncProgram.empty() ? defaultSyncProgram() : config.plugins.syncProgram;
  sync.libraryAsWritten = sync.library.string();
  sync.dataDir = config.plugins.stateDir.empty() ? defaultStateDir(config.engine.ns) : config.plugins.stateDir;
  out.instances.push_back(std::move(sync));
  return out;
}

// Watches the configuration file's directory for the file being written and closed or moved in
// (editors often write a new file and rename it over the old one).
class ConfigFileWatch {
 public:
  explicit ConfigFileWatch(const std::filesystem::path& file) : m_name(file.filename().string()) {
    if (file.empty()) return;
    m_fd.reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (m_fd && ::inotify_add_watch(m_fd.get(), file.parent_path().c_str(), IN_CLOSE_WRITE | IN_MOVED_TO) < 0) m_fd.reset();
  }
  int fd() const noexcept { return m_fd.get(); }
  // True when an event named the file.
  bool changed() {
    bool hit = false;
    alignas(inotify_event) char buf[4096];
    for (ssize_t n; (n = ::read(m_fd.get(), buf, sizeof buf)) > 0;)
      for (ssize_t off = 0; off < n;) {
        const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
        if (ev->len > 0 && m_name == ev->name) hit = true;
        off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
      }
    return hit;
  }

 private:
  std::string m_name;
  UniqueFd m_fd;
};

}  // namespace

std::vector<std::string> syncProgramArgs(const DaemonConfig& config, const std::filesystem::path& runtimeDir) {
  std::vector<std::string> args = {"--config", config.sourceFile.string(), "--namespace", config.engine.ns};
  if (!runtimeDir.empty()) args.insert(args.end(), {"--runtime-dir", runtimeDir.string()});
  return args;
}

std::string topologyFingerprint(const Topology& t) {
  std::string out;
  auto add = [&](const std::string& s) { out += std::to_string(s.size()) + ":" + s + ";"; };
  auto list = [&](const std::vector<std::string>& v) {
    add(std::to_string(v.size()));
    for (const auto& s : v) add(s);
  };
  for (const auto& r : t.routes) {
    add(r.name), add(r.from), list(r.to);
    add(std::to_string(r.tables.size()));
    for (const auto& rule : r.tables)
      add(rule.table), add(rule.renameTo), list(rule.includeColumns), list(rule.excludeColumns), add(rule.rowFilter);
    add(std::to_string(r.bidirectional)), add(std::to_string(static_cast<int>(r.conflict))), add(r.timestampColumn);
    add(std::to_string(r.snapshot)), add(std::to_string(r.maxRetries));
  }
  const auto& j = t.journal;
  add(j.path.string()), add(std::to_string(static_cast<int>(j.durability))), add(std::to_string(j.groupCommit.count()));
  add(std::to_string(j.groupCommitMax)), add(std::to_string(j.maxBytes)), add(std::to_string(j.warnAtPercent));
  add(std::to_string(j.retention.count())), add(std::to_string(j.pieceBytes));
  return out;
}

void blockStopSignals() {
  const sigset_t set = stopSignals();
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int runDaemon(std::unique_ptr<Engine> engine, const DaemonConfig& initial, const LogSink& log, int readyFd,
              ConfigReloader reload) {
  DaemonConfig config = initial;  // the running configuration; replaced by a successful reload
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
  ConfigFileWatch configWatch(reload ? config.sourceFile : std::filesystem::path());
  if (configWatch.fd() >= 0) add(configWatch.fd(), kConfigWatch);

  Supervisor::Options options{config.plugins.hostProgram.empty() ? defaultHostProgram() : config.plugins.hostProgram,
                              config.engine.ns, runtimeBase, {}, "plugin.", "plugin instance", "host"};
  auto supervisor = Supervisor::create(config.plugins, options, log, RegistryProbe(config.engine.ns));
  // The sync engine: the same supervision (back-off, FAILED), its own command line, registered as "sync".
  Supervisor::Options syncOptions{{}, config.engine.ns, runtimeBase,
                                  [&config, runtimeBase](const PluginInstanceConfig&, const std::filesystem::path&) {
                                    return syncProgramArgs(config, runtimeBase);
                                  },
                                  "", "sync engine", "process"};
  auto syncSupervisor = Supervisor::create(syncPlugins(config), syncOptions, log, RegistryProbe(config.engine.ns));
  if (!supervisor || !syncSupervisor) {
    log(LogLevel::Error, "cannot start the supervisor: " + (supervisor ? syncSupervisor.error() : supervisor.error()));
    return 1;
  }
  Supervisor& sup = **supervisor;
  Supervisor& syncSup = **syncSupervisor;
  add(sup.pollFd(), kSupervisor);
  add(syncSup.pollFd(), kSyncSupervisor);

  bool statusFailed = false;
  auto publish = [&] {
    const auto syncStatus = syncSup.status();
    if (auto ok = writePluginsStatus(statusPath, sup.status(), availableFiles(watch ? &*watch : nullptr, config.plugins),
                                     syncStatus.empty() ? nullptr : &syncStatus.front());
        !ok) {
      if (!statusFailed) log(LogLevel::Warn, ok.error());
      statusFailed = true;
    } else {
      statusFailed = false;
    }
  };
  sup.onChange(publish);
  syncSup.onChange(publish);

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
  syncSup.startAll();
  if (readyFd >= 0) {
    [[maybe_unused]] auto n = ::write(readyFd, "ready\n", 6);
    ::close(readyFd);
  }

  // Shutdown runs in two steps: the sync engine drains and stops, then the hosts stop.
  bool stopping = false;
  auto beginShutdown = [&] {
    if (stopping) return;
    stopping = true;
    sup.holdRestarts();  // the hosts exit when the sync engine's sessions end: no restarts now
    syncSup.beginShutdown();
  };
  auto applyReload = [&](const std::string& why) {
    if (stopping) return;
    if (!reload) {
      log(LogLevel::Warn, why + ": there is no configuration file to reload (started without --config)");
      return;
    }
    log(LogLevel::Info, why + ": reloading " + config.sourceFile.string());
    auto next = reload();
    if (!next) {
      log(LogLevel::Error, "the new configuration is refused; keeping the running one. Its errors:\n" + next.error());
      return;
    }
    // Only plugins and topology are applied; namespace, runtime_dir, engine and access need a restart
    // (docs/CONFIG.md, "Reloading"). The reloaded file has no command-line overrides, so it cannot tell.
    const bool topologyChanged = topologyFingerprint(next->topology) != topologyFingerprint(config.topology);
    const std::string ns = config.engine.ns;
    const auto runtimeDir = config.engine.runtimeDir;
    config.plugins = next->plugins;
    config.topology = next->topology;
    config.engine.ns = ns;
    config.engine.runtimeDir = runtimeDir;
    sup.reconfigure(config.plugins);
    const auto syncStatus = syncSup.status();
    const bool syncRuns = !syncStatus.empty();
    syncSup.reconfigure(syncPlugins(config));  // starts, stops or replaces it when routes appear, vanish or the program changes
    if (topologyChanged && syncRuns && !config.topology.routes.empty()) {
      log(LogLevel::Info, "the topology changed: restarting the sync engine");
      syncSup.restart("sync");
    }
    log(LogLevel::Info, "configuration reloaded: " + std::to_string(config.plugins.instances.size()) + " plugin instances, " +
                            std::to_string(config.topology.routes.size()) + " routes");
    publish();
  };

  int rc = 0;
  bool engineEnded = false;
  while (!(syncSup.stopped() && sup.stopped())) {
    if (stopping && syncSup.stopped()) sup.beginShutdown();  // no-op after the first time
    if (sup.stopped() && syncSup.stopped()) break;
    epoll_event events[8];
    const int n = ::epoll_wait(epoll.get(), events, 8, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      log(LogLevel::Error, std::string("epoll_wait: ") + std::strerror(errno));
      rc = 1;
      beginShutdown();
      continue;
    }
    for (int k = 0; k < n; ++k) {
      switch (events[k].data.u64) {
        case kSignal: {
          signalfd_siginfo info{};
          while (::read(signals.get(), &info, sizeof info) == sizeof info) {
            if (info.ssi_signo == SIGHUP) {
              applyReload("SIGHUP received");
              continue;
            }
            log(LogLevel::Info, std::string("SIG") + ::sigabbrev_np(static_cast<int>(info.ssi_signo)) +
                                    " received: stopping the sync engine, then the plugin hosts, then the engine");
            beginShutdown();
          }
          break;
        }
        case kConfigWatch:
          if (configWatch.changed()) applyReload("the configuration file changed");
          break;
        case kEngineDone: {
          std::uint64_t v = 0;
          [[maybe_unused]] auto r = ::read(engineDone.get(), &v, sizeof v);
          engineEnded = true;
          rc = 1;
          log(LogLevel::Error, "the engine's loop ended: " + (ran ? std::string("no reason given") : ran.error().message()) +
                                   "; stopping the sync engine and the plugin hosts");
          beginShutdown();
          break;
        }
        case kWatch: {
          auto changes = watch->readEvents();
          if (changes.overflowed)
            log(LogLevel::Warn, "plugins directory " + watch->dir().string() +
                                    ": too many changes at once for inotify's queue; listed it again");
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
        case kSyncSupervisor: syncSup.dispatch(); break;
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
