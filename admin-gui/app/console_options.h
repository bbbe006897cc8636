// ConsoleOptions: ipcsync-admin's command line (QCommandLineParser), and its exit codes.
#pragma once

#include <QString>
#include <QStringList>

#include <chrono>
#include <optional>

namespace ipcsync::admin {

enum ExitCode : int {
  kExitOk = 0,
  kExitScreenshotFailed = 1,  // --screenshot could not render or write the file
  kExitUsage = 2,             // bad option or value
};

struct ConsoleOptions {
  QString ns = QStringLiteral("default");
  QString runtimeDir;  // empty: as the engine's segment says
  QString screenshot;  // empty: interactive
  std::chrono::milliseconds refresh{150};
  int tab = 0;  // the tab shown first: 0 overview, 1 topology, 2 journal (--tab)
};

// Parses `arguments` (argv as QStrings, program first). --help and --version print and exit 0
// through `exitCode`; a bad value sets `error` (what, which option, what is allowed) and returns
// nothing with exitCode kExitUsage.
std::optional<ConsoleOptions> parseConsoleOptions(const QStringList& arguments, QString& error, int& exitCode,
                                                  QString& helpText);

}  // namespace ipcsync::admin
