#include "privaudit/experiments/sinks.h"

#include "privaudit/report/image_grid.h"

namespace privaudit::experiments {

void FolderSink::image_grid(const std::string& name, const std::vector<torch::Tensor>& rows) {
  report::write_image_grid((folder_ / name).string(), rows);
}

void FolderSink::plot(const std::string& name, const report::Plot& plot) {
  report::write_svg((folder_ / name).string(), plot);
}

}  // namespace privaudit::experiments
