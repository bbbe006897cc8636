// ipcsync-admin: the Qt admin console. See docs/console.md and --help.
#include <QApplication>
#include <QImageWriter>
#include <QTimer>

#include <cstdio>

#include "console_options.h"
#include "main_window.h"

namespace {

// Renders `window` to `path`; false with a message on stderr.
bool writeScreenshot(ipcsync::admin::MainWindow& window, const QString& path) {
  const QPixmap shot = window.grab();
  QImageWriter writer(path, "png");
  if (shot.isNull() || !writer.write(shot.toImage())) {
    std::fprintf(stderr, "ipcsync-admin: cannot write screenshot %s: %s; check that the directory exists and is writable\n",
                 qPrintable(path), shot.isNull() ? "the window did not render" : qPrintable(writer.errorString()));
    return false;
  }
  std::printf("ipcsync-admin: wrote %s (%dx%d)\n", qPrintable(path), shot.width(), shot.height());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // Options first, so --help and usage errors need no display.
  QStringList arguments;
  for (int i = 0; i < argc; ++i) arguments << QString::fromLocal8Bit(argv[i]);
  QString error, help;
  int exitCode = 0;
  const auto options = ipcsync::admin::parseConsoleOptions(arguments, error, exitCode, help);
  if (!options) {
    if (exitCode == ipcsync::admin::kExitOk) std::printf("%s", qPrintable(help));
    else std::fprintf(stderr, "ipcsync-admin: %s\n", qPrintable(error));
    return exitCode;
  }
  // A screenshot needs no screen: render offscreen unless a platform was chosen.
  if (!options->screenshot.isEmpty() && qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM"))
    qputenv("QT_QPA_PLATFORM", "offscreen");
  QApplication app(argc, argv);
  QApplication::setApplicationName(QStringLiteral("ipcsync-admin"));
  ipcsync::admin::MainWindow window(*options);
  window.show();
  if (options->screenshot.isEmpty()) return QApplication::exec();

  // Screenshot mode: once data has arrived (or after 2 s regardless), render, write, exit.
  bool done = false;
  const auto shoot = [&] {
    if (done) return;
    done = true;
    QTimer::singleShot(0, &window, [&] {  // let the layout settle after the last refresh
      QApplication::exit(writeScreenshot(window, options->screenshot) ? ipcsync::admin::kExitOk
                                                                     : ipcsync::admin::kExitScreenshotFailed);
    });
  };
  QObject::connect(&window, &ipcsync::admin::MainWindow::refreshed, &window, [&] {
    if (window.hasData()) shoot();
  });
  QTimer::singleShot(2000, &window, shoot);
  return QApplication::exec();
}
