// Helpers shared by the tests: scratch folders, running the command-line tool, small data.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <string>

#include "privaudit/data/dataset.h"
#include "privaudit/models/builtin.h"

namespace privaudit::testing {

// A fresh folder under the system temp dir, removed when the object goes.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = 0;
  std::string output;  // stdout and stderr together
};

// Runs the built `privaudit` binary with `arguments` (a shell-quoted string).
CommandResult run_cli(const std::string& arguments);
// Runs a shell command line (e.g. with environment variables before the binary).
CommandResult run_shell(const std::string& command_line);

// Writes bytes to a file.
void write_bytes(const std::string& path, const std::string& bytes);

// A small deterministic dataset of `per_class` images per class: each class a distinct blob
// pattern plus noise, so that a classifier can learn it in a few steps.
data::Splits toy_splits(int64_t classes, int64_t per_class, int64_t channels = 1, int64_t size = 28,
                        uint64_t seed = 0);

// Whether Debian's Fashion-MNIST is installed (tests that need it say so when it is not).
bool have_fashion_mnist();

// Added to the seeds of the slow tests with a statistical claim (environment variable
// PRIVAUDIT_TEST_SEED_OFFSET, default 0), so that scripts/test-spread.sh can measure how far their
// figures move from seed to seed. CI runs offset 0.
uint64_t seed_offset();

// Whether `text` contains `part`.
inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Whether the tests run under CI (the environment has CI=true, as .ci/run sets it).
bool in_ci();

// Prints a loud line to stderr (a skipped test must not go unnoticed in a long log).
void announce_skip(const std::string& what, const std::string& package);

}  // namespace privaudit::testing

// For a test whose dependency may be missing: outside CI the test is skipped (announced loudly);
// under CI=true it fails naming the package, so a CI machine without it never goes green on less.
#define PRIVAUDIT_REQUIRE(available, package)                                          \
  do {                                                                                 \
    if (!(available)) {                                                                \
      if (::privaudit::testing::in_ci()) {                                             \
        FAIL() << "missing test dependency: " << (package)                             \
               << " (CI=true forbids skipping; scripts/install-deps.sh installs it)";  \
      }                                                                                \
      ::privaudit::testing::announce_skip(                                             \
          ::testing::UnitTest::GetInstance()->current_test_info()->name(), (package)); \
      GTEST_SKIP() << "missing test dependency: " << (package);                        \
    }                                                                                  \
  } while (0)

#define PRIVAUDIT_REQUIRE_FASHION_MNIST() \
  PRIVAUDIT_REQUIRE(::privaudit::testing::have_fashion_mnist(), "dataset-fashion-mnist (Debian)")

namespace privaudit::testing {

// Base of the test suites that need Fashion-MNIST in every test (see PRIVAUDIT_REQUIRE).
class RequiresFashionMnist : public ::testing::Test {
 protected:
  void SetUp() override { PRIVAUDIT_REQUIRE_FASHION_MNIST(); }
};

}  // namespace privaudit::testing
