// privaudit_bench NAME [ARGS...]: prints the figures of one benchmark; with no name, lists them.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "bench.h"
#include "privaudit/util/timer.h"

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

std::vector<std::string> list_argument(const std::vector<std::string>& args, size_t index,
                                       const std::string& fallback) {
  std::vector<std::string> items;
  std::stringstream list(args.size() > index ? args[index] : fallback);
  for (std::string item; std::getline(list, item, ',');) items.push_back(item);
  return items;
}

std::vector<attacks::InversionProblem> one_image_problems(models::Classifier& model,
                                                          const torch::Tensor& images,
                                                          const torch::Tensor& labels) {
  std::vector<attacks::InversionProblem> problems;
  for (int64_t i = 0; i < images.size(0); ++i) {
    const auto image = images.slice(0, i, i + 1);
    const auto label = labels.slice(0, i, i + 1);
    problems.push_back(
        {attacks::shared_gradients(model, image, label), label, static_cast<uint64_t>(i)});
  }
  return problems;
}

double time_seconds(const std::function<void()>& work) {
  const Stopwatch watch;
  work();
  return watch.seconds();
}

std::string source_path(const std::string& relative) {
  return std::string(PRIVAUDIT_SOURCE_DIR) + "/" + relative;
}

void write_floats(const std::string& path, const torch::Tensor& tensor) {
  const auto t = tensor.detach().to(torch::kFloat).contiguous();
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(t.data_ptr<float>()),
            static_cast<std::streamsize>(t.numel() * sizeof(float)));
}

nlohmann::json run_twin(const std::string& name, const std::string& command) {
  std::string output;
  int status = -1;
  if (FILE* pipe = popen((command + " 2>&1").c_str(), "r")) {
    char buffer[4096];
    size_t got;
    while ((got = fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, got);
    status = pclose(pipe);
  }
  const auto line_start = output.rfind('{');
  if (status == 0 && line_start != std::string::npos) {
    try {
      return nlohmann::json::parse(output.substr(line_start));
    } catch (const std::exception&) {
    }
  }
  std::cerr << name << ": Python twin failed: " << output << std::endl;
  return nullptr;
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
