// Runs the built chatshard binary (CHATSHARD_CLI) from a test, as a user
// would, in a scratch directory of the test's own that is removed when the
// test binary ends. Shared by the CLI tests of each subcommand.
#ifndef CHATSHARD_TESTS_TOOLS_CLI_RUNNER_H_
#define CHATSHARD_TESTS_TOOLS_CLI_RUNNER_H_

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

#ifndef CHATSHARD_CLI
#error "CHATSHARD_CLI must name the chatshard binary (tests/tools/CMakeLists.txt)"
#endif

extern char** environ;

namespace chatshard::cli {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

inline void WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

// Scratch directories made by this process, removed when the run ends.
inline std::vector<std::filesystem::path>& ScratchDirs() {
  static std::vector<std::filesystem::path> dirs;
  return dirs;
}

class RemoveScratchDirs : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ignored;
    for (const std::filesystem::path& dir : ScratchDirs())
      std::filesystem::remove_all(dir, ignored);
  }
};
[[maybe_unused]] inline ::testing::Environment* const kRemoveScratchDirs =
    ::testing::AddGlobalTestEnvironment(new RemoveScratchDirs);

// A scratch directory of its own per test (ctest runs tests in parallel).
inline std::filesystem::path ScratchDir() {
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) /
                              ("chatshard_cli_" + std::string(test->test_suite_name()) + "_" +
                               test->name() + "_" + std::to_string(getpid()));
  if (std::filesystem::create_directories(dir)) ScratchDirs().push_back(dir);
  return dir;
}

// The number after `label` on its line of the text report ("  <label>   <n>").
// (No std::regex: GCC 12 warns inside <regex> under -fsanitize=address.)
inline uint64_t ReportNumber(const std::string& report, const std::string& label) {
  const std::string key = "\n  " + label + " ";
  const size_t at = report.find(key);
  if (at == std::string::npos) {
    ADD_FAILURE() << "no '" << label << "' in the report:\n" << report;
    return 0;
  }
  const size_t digits = report.find_first_not_of(' ', at + key.size());
  const size_t end = report.find_first_not_of("0123456789", digits);
  if (digits == std::string::npos || end == digits) {
    ADD_FAILURE() << "no number after '" << label << "' in the report:\n" << report;
    return 0;
  }
  return std::stoull(report.substr(digits, end - digits));
}

// Runs CHATSHARD_CLI with `args`, `stdin_text` as its standard input, and
// captures standard output and error through files (no pipe can fill up).
inline CommandResult RunCli(const std::vector<std::string>& args,
                            const std::string& stdin_text = "") {
  const std::filesystem::path dir = ScratchDir();
  const std::filesystem::path in = dir / "stdin";
  const std::filesystem::path out = dir / "stdout";
  const std::filesystem::path err = dir / "stderr";
  WriteFile(in, stdin_text);

  std::vector<std::string> argv_storage = {CHATSHARD_CLI};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, in.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  CommandResult result;
  if (spawned != 0) {
    ADD_FAILURE() << "cannot run " << argv[0] << ": " << std::strerror(spawned);
    return result;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = ReadFile(out);
  result.err = ReadFile(err);
  return result;
}

inline std::string Describe(const CommandResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\n--- stdout:\n" + r.out + "--- stderr:\n" +
         r.err;
}

}  // namespace chatshard::cli

#endif  // CHATSHARD_TESTS_TOOLS_CLI_RUNNER_H_
