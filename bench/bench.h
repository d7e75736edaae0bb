// The benchmark program: each benchmark registers itself by name and prints its figures.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace privaudit::bench {

struct Benchmark {
  std::string name;
  std::string description;
  std::function<int(const std::vector<std::string>& args)> run;
};

bool register_benchmark(Benchmark benchmark);
const std::vector<Benchmark>& benchmarks();

// Seconds of wall-clock time `work` takes.
double time_seconds(const std::function<void()>& work);

// Path of a file in the source tree (bench/*.py twins).
std::string source_path(const std::string& relative);

}  // namespace privaudit::bench
