// GoogleTest main for the console tests: one QApplication (offscreen, from the test's
// environment), and every message of Qt's model tester counted as a failure.
#include <gtest/gtest.h>

#include <QApplication>

#include "console_fixture.h"

namespace {

QtMessageHandler g_previous = nullptr;

void countModelTesterMessages(QtMsgType type, const QMessageLogContext& context, const QString& message) {
  if (context.category && QLatin1String(context.category) == QLatin1String("qt.modeltest")) {
    ++ipcsync::test::modelTesterComplaints();
    ADD_FAILURE() << "QAbstractItemModelTester: " << message.toStdString();
  }
  if (g_previous) g_previous(type, context, message);
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  g_previous = qInstallMessageHandler(countModelTesterMessages);
  // Test discovery runs this binary without the tests' ENVIRONMENT: offscreen unless told otherwise.
  if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
  QApplication app(argc, argv);
  return RUN_ALL_TESTS();
}
