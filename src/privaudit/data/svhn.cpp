#include "privaudit/data/svhn.h"

#include <matio.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sstream>

#include "privaudit/data/loaders.h"
#include "privaudit/data/mat_layout.h"
#include "privaudit/util/error.h"

namespace privaudit::data {
namespace fs = std::filesystem;

namespace {

constexpr int64_t kSide = 32;
constexpr int64_t kImageBytes = kSide * kSide * 3;

// matio reports problems through a global logger that prints to stderr; keep it quiet and keep
// the last message so that our error can carry it.
std::string& last_matio_message() {
  static std::string message;
  return message;
}

void quiet_matio_log(int /*level*/, char* message) {
  last_matio_message() = message != nullptr ? message : "";
}

void install_quiet_logger() {
  static const bool installed = [] {
    Mat_LogInitFunc("privaudit", quiet_matio_log);
    return true;
  }();
  (void)installed;
}

struct MatCloser {
  void operator()(mat_t* mat) const { Mat_Close(mat); }
};
struct VarFreer {
  void operator()(matvar_t* var) const { Mat_VarFree(var); }
};
using MatFile = std::unique_ptr<mat_t, MatCloser>;
using MatVar = std::unique_ptr<matvar_t, VarFreer>;

std::string dims_text(const matvar_t& var) {
  std::string text;
  for (int d = 0; d < var.rank; ++d) text += (d ? "x" : "") + std::to_string(var.dims[d]);
  return text;
}

// Reads a variable's header only, so that its shape can be checked before its data is read.
MatVar read_info(mat_t* mat, const char* name, const std::string& path) {
  MatVar info(Mat_VarReadInfo(mat, name));
  if (!info) throw Error(path + ": no variable " + name + " (not an SVHN cropped-digits file?)");
  if (info->isComplex || info->rank < 2 || info->dims == nullptr) {
    throw Error(path + ": variable " + name + " is not a real numeric array");
  }
  return info;
}

// The number of images X holds: 32x32x3xN (MATLAB drops the trailing 1 when N is 1).
int64_t image_count(const matvar_t& x, const std::string& path) {
  if (x.class_type != MAT_C_UINT8) throw Error(path + ": X is not uint8");
  const bool shape_ok =
      (x.rank == 4 || x.rank == 3) && x.dims[0] == kSide && x.dims[1] == kSide && x.dims[2] == 3;
  if (!shape_ok) {
    throw Error(path + ": X is " + dims_text(x) + ", expected 32x32x3xN");
  }
  return x.rank == 4 ? static_cast<int64_t>(x.dims[3]) : 1;
}

void check_label_shape(const matvar_t& y, int64_t n, const std::string& path) {
  const bool column = y.rank == 2 && (y.dims[1] == 1 || y.dims[0] == 1);
  if (!column) throw Error(path + ": y is " + dims_text(y) + ", expected N x 1");
  const auto count = static_cast<int64_t>(y.dims[0] * y.dims[1]);
  if (count != n) {
    throw Error(path + ": y holds " + std::to_string(count) + " labels but X holds " +
                std::to_string(n) + " images");
  }
  if (y.class_type != MAT_C_DOUBLE && y.class_type != MAT_C_SINGLE && y.class_type != MAT_C_UINT8) {
    throw Error(path + ": y is neither double nor uint8");
  }
}

MatVar read_data(mat_t* mat, const char* name, size_t expected_bytes, const std::string& path) {
  MatVar var(Mat_VarRead(mat, name));
  if (!var || var->data == nullptr || var->nbytes != expected_bytes) {
    throw Error(path + ": cannot read the data of " + name + " (corrupt file?) " +
                last_matio_message());
  }
  return var;
}

double label_at(const matvar_t& y, int64_t i) {
  switch (y.class_type) {
    case MAT_C_DOUBLE:
      return static_cast<const double*>(y.data)[i];
    case MAT_C_SINGLE:
      return static_cast<const float*>(y.data)[i];
    default:
      return static_cast<const uint8_t*>(y.data)[i];
  }
}

torch::Tensor convert_labels(const matvar_t& y, int64_t n, const std::string& path) {
  auto labels = torch::empty({n}, torch::kLong);
  int64_t* out = labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const double label = label_at(y, i);
    if (!(label >= 1 && label <= 10) || label != std::floor(label)) {
      std::ostringstream text;
      text << label;
      throw Error(path + ": label " + text.str() + " at position " + std::to_string(i + 1) +
                  " of y is outside 1..10");
    }
    out[i] = static_cast<int64_t>(label) % 10;  // SVHN writes the digit 0 as 10
  }
  return labels;
}

}  // namespace

SvhnPart read_svhn_mat(const std::string& path) {
  if (!fs::is_regular_file(path)) throw Error(path + ": file not found");
  check_mat_layout(path);
  install_quiet_logger();
  last_matio_message().clear();
  MatFile mat(Mat_Open(path.c_str(), MAT_ACC_RDONLY));
  if (!mat) throw Error(path + ": not a MAT file");
  const auto x_info = read_info(mat.get(), "X", path);
  const int64_t n = image_count(*x_info, path);
  if (n == 0) throw Error(path + ": X holds no images");
  const auto y_info = read_info(mat.get(), "y", path);
  check_label_shape(*y_info, n, path);
  const uintmax_t x_bytes = static_cast<uintmax_t>(n) * kImageBytes;
  // A variable that claims more than kMaxZlibExpansion times the file's size is a corrupt header,
  // refused before matio allocates for it.
  if (x_bytes > kMaxZlibExpansion * fs::file_size(path)) {
    throw Error(path + ": X claims " + std::to_string(n) + " images, more than the file can hold");
  }
  const auto x = read_data(mat.get(), "X", x_bytes, path);
  const auto y = read_data(mat.get(), "y", n * Mat_SizeOfClass(y_info->class_type), path);
  SvhnPart part;
  // Column-major 32x32x3xN read as row-major is N x 3 x column x row: swap the last two.
  part.images = torch::from_blob(x->data, {n, 3, kSide, kSide}, torch::kUInt8)
                    .transpose(2, 3)
                    .to(torch::kFloat)
                    .div_(255.0f)
                    .contiguous();
  part.labels = convert_labels(*y, n, path);
  return part;
}

Splits load_svhn(const std::string& dir) {
  if (!fs::is_directory(dir)) throw Error(dir + ": SVHN folder not found");
  const fs::path root(dir);
  std::vector<std::string> classes;
  for (int digit = 0; digit < 10; ++digit) classes.push_back(std::to_string(digit));
  auto train = read_svhn_mat((root / "train_32x32.mat").string());
  auto test = read_svhn_mat((root / "test_32x32.mat").string());
  Splits splits;
  splits.train = {train.images, train.labels, classes, dir + " (svhn train)"};
  splits.test = {test.images, test.labels, classes, dir + " (svhn test)"};
  return splits;
}

}  // namespace privaudit::data
