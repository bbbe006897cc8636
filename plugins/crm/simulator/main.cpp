// ipcsync-callcentre: drives a CRM database file with call-centre work (see callcentre.h).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <random>

#include "callcentre.h"

int main(int argc, char** argv) {
  ipcsync::callcentre::Options options;
  CLI::App app{"Simulates a call centre working on a CRM database file (plain SQL in small transactions): new accounts "
               "and contacts, interactions logged, orders placed, changed and cancelled, accounts moving region. "
               "Creates the CRM tables if the file is new.\n\n"
               "Exit codes: 0 the work is done; 1 the database could not be opened or written (the message says why); "
               "2 the command line is wrong.",
               "ipcsync-callcentre"};
  double duration = 0;
  int64_t operations = 0;
  std::string seedText;
  app.add_option("--database", options.database, "the CRM database file (created if absent)")->required();
  app.add_option("--rate", options.rate, "operations per second; 0 = as fast as possible")->check(CLI::NonNegativeNumber)->default_val(0);
  auto* d = app.add_option("--duration", duration, "run this many seconds")->check(CLI::PositiveNumber);
  auto* n = app.add_option("--operations", operations, "run this many operations")->check(CLI::PositiveNumber);
  d->excludes(n);
  app.add_option("--seed", seedText, "random seed (default: a fresh one, printed)");
  app.add_option("--accounts", options.accounts, "accounts to create first if the file has fewer")
      ->check(CLI::NonNegativeNumber)->default_val(20);
  app.add_flag("--quiet", options.quiet, "print only the summary line");
  try {
    app.parse(argc, argv);
    if (!*d && !*n) throw CLI::RequiredError("--duration or --operations");
    if (*d) options.durationSeconds = duration;
    if (*n) options.operations = operations;
    options.seed = seedText.empty() ? std::random_device{}() : std::stoull(seedText);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ipcsync-callcentre: --seed '%s' is not a whole number (%s)\n", seedText.c_str(), e.what());
    return 2;
  }
  std::printf("seed %llu\n", static_cast<unsigned long long>(options.seed));
  auto totals = ipcsync::callcentre::run(options, stdout);
  if (!totals) {
    std::fprintf(stderr, "ipcsync-callcentre: database '%s': %s\n", options.database.c_str(), totals.error().c_str());
    return 1;
  }
  return 0;
}
