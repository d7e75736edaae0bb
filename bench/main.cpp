// privaudit_bench NAME [ARGS...]: prints the figures of one benchmark; with no name, lists them.
#include <chrono>
#include <iostream>

#include "bench.h"

namespace privaudit::bench {

namespace {
std::vector<Benchmark>& list() {
  static std::vector<Benchmark> all;
  return all;
}
}  // namespace

bool register_benchmark(Benchmark benchmark) {
  list().push_back(std::move(benchmark));
  return true;
}

const std::vector<Benchmark>& benchmarks() { return list(); }

double time_seconds(const std::function<void()>& work) {
  const auto start = std::chrono::steady_clock::now();
  work();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string source_path(const std::string& relative) {
  return std::string(PRIVAUDIT_SOURCE_DIR) + "/" + relative;
}

}  // namespace privaudit::bench

int main(int argc, char** argv) {
  using privaudit::bench::benchmarks;
  if (argc < 2) {
    std::cout << "usage: privaudit_bench NAME [ARGS...] | all\n";
    for (const auto& b : benchmarks()) std::cout << "  " << b.name << ": " << b.description << "\n";
    return 0;
  }
  const std::string name = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  int status = 0;
  bool found = false;
  for (const auto& b : benchmarks()) {
    if (name == "all" || b.name == name) {
      found = true;
      std::cout << "== " << b.name << " ==" << std::endl;
      try {
        status |= b.run(args);
      } catch (const std::exception& e) {
        std::cerr << b.name << ": " << e.what() << std::endl;
        status = 1;
      }
    }
  }
  if (!found) {
    std::cerr << "unknown benchmark " << name << std::endl;
    return 2;
  }
  return status;
}
