#include "privaudit/report/image_grid.h"

#include <stb/stb_image_write.h>

#include <algorithm>

#include "privaudit/util/error.h"
#include "privaudit/util/files.h"

namespace privaudit::report {

void write_image_grid(const std::string& path, const std::vector<torch::Tensor>& rows, int scale,
                      int64_t max_columns) {
  if (rows.empty()) throw Error(path + ": no images to draw");
  const auto& first = rows.front();
  const int64_t h = first.size(2), w = first.size(3);
  const int gap = 2;
  int64_t columns = 0;
  for (const auto& row : rows) columns = std::max(columns, std::min(row.size(0), max_columns));
  const int64_t cell_h = h * scale + gap, cell_w = w * scale + gap;
  const int64_t height = static_cast<int64_t>(rows.size()) * cell_h + gap;
  const int64_t width = columns * cell_w + gap;
  auto canvas = torch::full({height, width, 3}, 255, torch::kUInt8);
  for (size_t r = 0; r < rows.size(); ++r) {
    auto row = rows[r].detach().to(torch::kCPU, torch::kFloat).clamp(0, 1);
    if (row.dim() != 4 || row.size(2) != h || row.size(3) != w) {
      throw Error(path + ": all images of a grid must share one size");
    }
    if (row.size(1) == 1) row = row.repeat({1, 3, 1, 1});
    for (int64_t c = 0; c < std::min(row.size(0), max_columns); ++c) {
      auto pixels = (row[c] * 255.0).round().to(torch::kUInt8).permute({1, 2, 0});  // H x W x 3
      pixels = pixels.repeat_interleave(scale, 0).repeat_interleave(scale, 1);
      const int64_t top = gap + static_cast<int64_t>(r) * cell_h, left = gap + c * cell_w;
      canvas.slice(0, top, top + h * scale).slice(1, left, left + w * scale).copy_(pixels);
    }
  }
  canvas = canvas.contiguous();
  write_atomic_with(path, [&](const std::string& temporary) {
    if (stbi_write_png(temporary.c_str(), static_cast<int>(width), static_cast<int>(height), 3,
                       canvas.data_ptr<uint8_t>(), static_cast<int>(width * 3)) == 0) {
      throw Error(path + ": cannot write PNG");
    }
  });
}

}  // namespace privaudit::report
