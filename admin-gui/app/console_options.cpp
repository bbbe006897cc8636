#include "console_options.h"

#include <QCommandLineParser>

#include "ipcsync/ipccore/admin_segment.h"

namespace ipcsync::admin {

std::optional<ConsoleOptions> parseConsoleOptions(const QStringList& arguments, QString& error, int& exitCode,
                                                  QString& helpText) {
  QCommandLineParser parser;
  parser.setApplicationDescription(
      "ipcsync-admin: live view of an ipcsync namespace (registrations, memory, cached topics, plugins,\n"
      "sync routes with their lag, the sync journal's dead letters and parked conflicts).\n"
      "Attaches read-only to the namespace's admin segment; it never changes what it watches.\n\n"
      "Exit codes: 0 ok; 1 --screenshot could not be written; 2 bad option or value.\n"
      "Keys: Ctrl+F filter, F5 refresh now, Ctrl+1..4 focus a pane, Ctrl+5 topology, Ctrl+6 dead letters, Ctrl+7 conflicts, Ctrl+Q quit.");
  const QCommandLineOption help({"h", "help"}, "Show this help and exit.");
  const QCommandLineOption ns({"n", "namespace"}, "Namespace to watch (default: default).", "NS", "default");
  const QCommandLineOption runtime("runtime-dir",
                                   "Runtime directory of the daemon, where <DIR>/<NS>/plugins.json and sync.json live "
                                   "(default: the directory of the engine's socket).",
                                   "DIR");
  const QCommandLineOption shot("screenshot",
                                "Render the window to FILE (PNG) once data has arrived (at most 2 s), then exit.", "FILE");
  const QCommandLineOption refresh("refresh-ms", "Refresh interval in milliseconds, 20..10000 (default: 150).", "N", "150");
  const QCommandLineOption tab("tab", "The tab shown first: overview, topology or journal (default: overview).", "NAME",
                               "overview");
  parser.addOptions({help, ns, runtime, shot, refresh, tab});
  helpText = parser.helpText().replace(QStringLiteral("<executable_name>"), QStringLiteral("ipcsync-admin"));
  if (!parser.parse(arguments)) {
    error = parser.errorText() + ". See --help.";
    exitCode = kExitUsage;
    return std::nullopt;
  }
  if (parser.isSet(help)) {
    exitCode = kExitOk;
    return std::nullopt;
  }
  if (!parser.positionalArguments().isEmpty()) {
    error = QStringLiteral("unexpected argument '%1': options only, e.g. --namespace NS. See --help.")
                .arg(parser.positionalArguments().first());
    exitCode = kExitUsage;
    return std::nullopt;
  }
  ConsoleOptions o;
  o.ns = parser.value(ns);
  if (auto valid = AdminSegment::validateNamespace(o.ns.toStdString()); !valid) {
    error = QStringLiteral("--namespace '%1': %2").arg(o.ns, QString::fromStdString(valid.error().message()));
    exitCode = kExitUsage;
    return std::nullopt;
  }
  o.runtimeDir = parser.value(runtime);
  o.screenshot = parser.value(shot);
  if (parser.isSet(shot) && o.screenshot.isEmpty()) {
    error = QStringLiteral("--screenshot: needs a file name, e.g. --screenshot console.png");
    exitCode = kExitUsage;
    return std::nullopt;
  }
  bool ok = false;
  const int ms = parser.value(refresh).toInt(&ok);
  if (!ok || ms < 20 || ms > 10000) {
    error = QStringLiteral("--refresh-ms '%1': expected a whole number of milliseconds from 20 to 10000")
                .arg(parser.value(refresh));
    exitCode = kExitUsage;
    return std::nullopt;
  }
  o.refresh = std::chrono::milliseconds(ms);
  const QStringList tabs{"overview", "topology", "journal"};
  o.tab = static_cast<int>(tabs.indexOf(parser.value(tab)));
  if (o.tab < 0) {
    error = QStringLiteral("--tab '%1': expected one of overview, topology, journal").arg(parser.value(tab));
    exitCode = kExitUsage;
    return std::nullopt;
  }
  return o;
}

}  // namespace ipcsync::admin
