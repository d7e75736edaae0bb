// Helpers shared by the tests: scratch folders, running the command-line tool, small data.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <string>

#include "privaudit/data/dataset.h"

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

// Writes bytes to a file.
void write_bytes(const std::string& path, const std::string& bytes);

// A small deterministic dataset of `per_class` images per class: each class a distinct blob
// pattern plus noise, so that a classifier can learn it in a few steps.
data::Splits toy_splits(int64_t classes, int64_t per_class, int64_t channels = 1, int64_t size = 28,
                        uint64_t seed = 0);

// Whether Debian's Fashion-MNIST is installed (tests that need it say so when it is not).
bool have_fashion_mnist();

}  // namespace privaudit::testing
