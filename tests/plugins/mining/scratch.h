// The two process-and-directory helpers the mining suite needs, kept here so that it does not
// depend on ipcsyncd being built (tests/support's versions are tied to the engine).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <functional>

namespace ipcsync::test {

// A fresh directory under /tmp, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return m_path; }

 private:
  std::filesystem::path m_path;
};

// A forked child running `body`; its return value is the exit code. The destructor kills and
// reaps a child that was not waited for.
class Child {
 public:
  explicit Child(const std::function<int()>& body);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  int wait();  // exit code, or 128 + signal

 private:
  pid_t m_pid = -1;
};

}  // namespace ipcsync::test
