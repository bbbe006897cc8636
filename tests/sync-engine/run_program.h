// Runs a program to its end in a child process and returns its exit code (128+signal when killed)
// and what it wrote to stdout and stderr together. For tests of the command-line tools.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace ipcsync::test {

inline std::pair<int, std::string> runProgram(const std::vector<std::string>& argv) {
  char tmpl[] = "/tmp/ipcsync-cli-XXXXXX.out";
  const int fd = ::mkstemps(tmpl, 4);
  if (fd < 0) return {-1, "mkstemps failed"};
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(fd);
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::stringstream out;
  out << std::ifstream(tmpl).rdbuf();
  ::unlink(tmpl);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out.str()};
}

}  // namespace ipcsync::test
