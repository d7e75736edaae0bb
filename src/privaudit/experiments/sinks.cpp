#include "privaudit/experiments/sinks.h"

#include "privaudit/report/image_grid.h"
#include "privaudit/util/files.h"

namespace privaudit::experiments {

void FolderSink::image_grid(const std::string& name, const std::vector<torch::Tensor>& rows) {
  report::write_image_grid((folder_ / name).string(), rows);
}

void FolderSink::plot(const std::string& name, const report::Plot& plot) {
  report::write_svg((folder_ / name).string(), plot);
}

void FolderSink::tensors(const std::string& name, const std::vector<torch::Tensor>& values) {
  std::vector<torch::Tensor> on_cpu;
  for (const auto& v : values) on_cpu.push_back(v.detach().cpu());
  write_atomic_with(folder_ / name, [&](const std::string& path) { torch::save(on_cpu, path); });
}

}  // namespace privaudit::experiments
