#include "test_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>

#include "privaudit/data/spec.h"

namespace privaudit::testing {
namespace fs = std::filesystem;

TempDir::TempDir() {
  static int counter = 0;
  std::random_device device;
  path_ = fs::temp_directory_path() /
          ("privaudit-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
           std::to_string(device() % 100000));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ignored;
  fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ignored);
  fs::remove_all(path_, ignored);
}

CommandResult run_cli(const std::string& arguments) {
  return run_shell(std::string(PRIVAUDIT_CLI_PATH) + " " + arguments);
}

CommandResult run_shell(const std::string& command_line) {
  const std::string command = command_line + " 2>&1";
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::array<char, 4096> buffer;
  size_t got;
  while ((got = fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    result.output.append(buffer.data(), got);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

data::Splits toy_splits(int64_t classes, int64_t per_class, int64_t channels, int64_t size,
                        uint64_t seed) {
  auto generator = at::detail::createCPUGenerator(seed);
  const auto make = [&](int64_t count, const std::string& source) {
    data::Dataset d;
    const int64_t n = classes * count;
    d.labels = torch::arange(classes, torch::kLong).repeat_interleave(count);
    auto images = torch::zeros({n, channels, size, size});
    const auto ys = torch::arange(size, torch::kFloat).view({size, 1});
    const auto xs = torch::arange(size, torch::kFloat).view({1, size});
    for (int64_t c = 0; c < classes; ++c) {
      // A Gaussian blob whose centre depends on the class.
      const double angle = 2.0 * M_PI * static_cast<double>(c) / static_cast<double>(classes);
      const double cy = size / 2.0 + size / 4.0 * std::sin(angle);
      const double cx = size / 2.0 + size / 4.0 * std::cos(angle);
      const auto blob =
          torch::exp(-((ys - cy).pow(2) + (xs - cx).pow(2)) / (2.0 * (size / 8.0) * (size / 8.0)));
      images.slice(0, c * count, (c + 1) * count).copy_(blob.expand({count, channels, size, size}));
    }
    images = (images * 0.8 + 0.2 * torch::rand({n, channels, size, size}, generator)).clamp(0, 1);
    d.images = images;
    for (int64_t c = 0; c < classes; ++c) d.class_names.push_back("class" + std::to_string(c));
    d.source = source;
    return d;
  };
  data::Splits splits;
  splits.train = make(per_class, "toy train");
  splits.test = make(std::max<int64_t>(2, per_class / 2), "toy test");
  splits.normalization = data::compute_normalization(splits.train);
  return splits;
}

bool have_fashion_mnist() {
  return fs::exists(fs::path(data::fashion_mnist_dir()) / "train-images-idx3-ubyte.gz");
}

uint64_t seed_offset() {
  const char* offset = std::getenv("PRIVAUDIT_TEST_SEED_OFFSET");
  return offset == nullptr ? 0 : std::strtoull(offset, nullptr, 10);
}

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

void announce_skip(const std::string& what, const std::string& package) {
  std::fprintf(stderr, "\n*** SKIPPED %s: %s is not installed (CI=true would fail here) ***\n\n",
               what.c_str(), package.c_str());
}

}  // namespace privaudit::testing
