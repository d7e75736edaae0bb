#include "privaudit/train/per_example.h"

#include <string>
#include <utility>
#include <unordered_map>

#include "privaudit/models/builtin_layers.h"
#include "privaudit/util/error.h"

namespace privaudit::train {
namespace nn = torch::nn;

namespace {

enum class TapKind { kLinear, kConv, kNorm, kEmbed };

// One layer with parameters: what it saw, the output whose gradient is taken, and the parameters
// the pair (input, output gradient) gives the gradients of.
struct Tap {
  Tap(TapKind kind, torch::Tensor input, torch::Tensor output, torch::Tensor weight,
      torch::Tensor bias)
      : kind(kind),
        input(std::move(input)),
        output(std::move(output)),
        weight(std::move(weight)),
        bias(std::move(bias)) {}
  TapKind kind;
  torch::Tensor input;  // detached: a for linear/conv, x_hat for norms
  torch::Tensor output;
  torch::Tensor weight, bias;                              // kEmbed: positions, class token
  std::vector<int64_t> kernel, stride, padding, dilation;  // kConv
  bool channel_axis_first = false;  // kNorm: GroupNorm (B x C x ...), else LayerNorm (... x D)
};

// Runs the model stage by stage, each layer with parameters written out so that its input and
// output are recorded.
class Tape {
 public:
  torch::Tensor linear(nn::LinearImpl& layer, const torch::Tensor& x) {
    auto out = layer.forward(x);
    taps_.emplace_back(TapKind::kLinear, x.detach(), out, layer.weight, layer.bias);
    return out;
  }
  torch::Tensor conv(nn::Conv2dImpl& layer, const torch::Tensor& x) {
    if (layer.options.groups() != 1) throw Error("per-example gradients: grouped convolution");
    auto out = layer.forward(x);
    Tap tap{TapKind::kConv, x.detach(), out, layer.weight, layer.bias};
    const auto& o = layer.options;
    const auto padding = c10::get_if<torch::ExpandingArray<2>>(&o.padding());
    if (padding == nullptr) throw Error("per-example gradients: convolution padding by name");
    tap.kernel = at::ArrayRef<int64_t>(o.kernel_size()).vec();
    tap.stride = at::ArrayRef<int64_t>(o.stride()).vec();
    tap.padding = at::ArrayRef<int64_t>(*padding).vec();
    tap.dilation = at::ArrayRef<int64_t>(o.dilation()).vec();
    taps_.push_back(tap);
    return out;
  }
  torch::Tensor layer_norm(nn::LayerNormImpl& layer, const torch::Tensor& x) {
    const auto& options = layer.options;
    auto normalised = torch::layer_norm(x, options.normalized_shape(), {}, {}, options.eps());
    auto out = normalised * layer.weight + layer.bias;
    taps_.emplace_back(TapKind::kNorm, normalised.detach(), out, layer.weight, layer.bias);
    return out;
  }
  torch::Tensor group_norm(nn::GroupNormImpl& layer, const torch::Tensor& x) {
    const auto& options = layer.options;
    auto normalised = torch::group_norm(x, options.num_groups(), {}, {}, options.eps());
    std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
    shape[1] = x.size(1);
    auto out = normalised * layer.weight.view(shape) + layer.bias.view(shape);
    Tap tap{TapKind::kNorm, normalised.detach(), out, layer.weight, layer.bias};
    tap.channel_axis_first = true;
    taps_.push_back(tap);
    return out;
  }
  torch::Tensor embed(models::PatchEmbedImpl& layer, const torch::Tensor& x) {
    auto out = layer.assemble(conv(*layer.projection(), x), x.size(0));
    taps_.emplace_back(TapKind::kEmbed, torch::Tensor(), out, layer.positions(),
                       layer.class_token());
    return out;
  }
  torch::Tensor block(models::TransformerBlockImpl& layer, const torch::Tensor& x) {
    const int64_t batch = x.size(0), tokens = x.size(1), dim = x.size(2);
    auto& dropout = *layer.dropout();
    auto mixed =
        layer.attend(linear(*layer.qkv(), layer_norm(*layer.norm1(), x)), batch, tokens, dim);
    auto h = x + dropout.forward(linear(*layer.projection(), mixed));
    auto hidden = torch::gelu(linear(*layer.fc1(), layer_norm(*layer.norm2(), h)));
    return h + dropout.forward(linear(*layer.fc2(), dropout.forward(hidden)));
  }

  torch::Tensor run(models::StagedNetImpl& net, const torch::Tensor& images) {
    auto x = net.normalise(images);
    auto children = net.named_children();
    for (const auto& name : net.stage_names()) {
      auto stage = std::dynamic_pointer_cast<nn::SequentialImpl>(children[name]);
      for (auto& module : *stage) x = layer(module, name, x);
    }
    return x;
  }

  const std::vector<Tap>& taps() const { return taps_; }

 private:
  torch::Tensor layer(nn::AnyModule& module, const std::string& stage, const torch::Tensor& x) {
    const auto any = module.ptr();
    if (auto m = std::dynamic_pointer_cast<nn::LinearImpl>(any)) return linear(*m, x);
    if (auto m = std::dynamic_pointer_cast<nn::Conv2dImpl>(any)) return conv(*m, x);
    if (auto m = std::dynamic_pointer_cast<nn::LayerNormImpl>(any)) return layer_norm(*m, x);
    if (auto m = std::dynamic_pointer_cast<nn::GroupNormImpl>(any)) return group_norm(*m, x);
    if (auto m = std::dynamic_pointer_cast<models::PatchEmbedImpl>(any)) return embed(*m, x);
    if (auto m = std::dynamic_pointer_cast<models::TransformerBlockImpl>(any)) return block(*m, x);
    if (auto m = std::dynamic_pointer_cast<models::ClassTokenImpl>(any)) {
      return layer_norm(*m->norm(), x.select(1, 0));
    }
    if (!any->parameters().empty()) {
      throw Error("per-example gradients: stage '" + stage + "' has a layer with parameters (" +
                  any->name() + ") that DP-SGD cannot split by example");
    }
    return module.forward(x);
  }

  std::vector<Tap> taps_;
};

// Per-example gradients of a tap's parameters from its input and its output's gradient g.
void tap_gradients(const Tap& tap, const torch::Tensor& g,
                   std::unordered_map<const void*, torch::Tensor>& out) {
  const int64_t batch = g.size(0);
  const auto batched = [batch](const torch::Tensor& parameter) {
    auto shape = parameter.sizes().vec();
    shape.insert(shape.begin(), batch);
    return shape;
  };
  const auto put = [&out](const torch::Tensor& parameter, torch::Tensor gradient) {
    if (!parameter.defined()) return;
    auto& slot = out[parameter.unsafeGetTensorImpl()];
    slot = slot.defined() ? slot + gradient : gradient;
  };
  switch (tap.kind) {
    case TapKind::kLinear: {
      const auto a = tap.input.reshape({batch, -1, tap.input.size(-1)});
      const auto go = g.reshape({batch, -1, g.size(-1)});
      put(tap.weight, torch::bmm(go.transpose(1, 2), a));
      put(tap.bias, go.sum(1));
      return;
    }
    case TapKind::kConv: {
      const auto columns =
          nn::functional::unfold(tap.input, nn::functional::UnfoldFuncOptions(tap.kernel)
                                                .padding(tap.padding)
                                                .stride(tap.stride)
                                                .dilation(tap.dilation));
      const auto go = g.reshape({batch, g.size(1), -1});  // B x O x L
      put(tap.weight, torch::bmm(go, columns.transpose(1, 2)).view(batched(tap.weight)));
      put(tap.bias, go.sum(2));
      return;
    }
    case TapKind::kNorm: {
      const auto product = g * tap.input;
      if (tap.channel_axis_first) {  // GroupNorm: gamma, beta per channel of B x C x ...
        put(tap.weight, product.reshape({batch, g.size(1), -1}).sum(2));
        put(tap.bias, g.reshape({batch, g.size(1), -1}).sum(2));
        return;
      }
      // LayerNorm: gamma, beta over the last axes, summed over the tokens before them.
      const int64_t features = tap.weight.numel();
      put(tap.weight, product.reshape({batch, -1, features}).sum(1).view(batched(tap.weight)));
      put(tap.bias, g.reshape({batch, -1, features}).sum(1).view(batched(tap.bias)));
      return;
    }
    case TapKind::kEmbed: {
      put(tap.weight, g.unsqueeze(1));                          // positions: 1 x T x D
      put(tap.bias, g.select(1, 0).unsqueeze(1).unsqueeze(1));  // class token: 1 x 1 x D
      return;
    }
  }
}

}  // namespace

void check_per_example_model(const models::BuiltinClassifier& model) {
  if (model.config().batch_norm) {
    throw Error(
        "DP-SGD: the model has batch norm, which mixes the examples of a batch so no example's "
        "gradient can be clipped alone; train it with --group-norm instead of --batch-norm");
  }
}

PerExampleGradients per_example_gradients(models::BuiltinClassifier& model,
                                          const torch::Tensor& images,
                                          const torch::Tensor& labels) {
  check_per_example_model(model);
  Tape tape;
  const auto logits = tape.run(*model.net(), images);
  const auto loss = nn::functional::cross_entropy(
      logits, labels, nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  std::vector<torch::Tensor> outputs;
  for (const auto& tap : tape.taps()) outputs.push_back(tap.output);
  const auto output_gradients = torch::autograd::grad({loss}, outputs, {}, /*retain_graph=*/false,
                                                      /*create_graph=*/false,
                                                      /*allow_unused=*/true);
  std::unordered_map<const void*, torch::Tensor> by_parameter;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < outputs.size(); ++i) {
    auto g = output_gradients[i].defined() ? output_gradients[i] : torch::zeros_like(outputs[i]);
    tap_gradients(tape.taps()[i], g, by_parameter);
  }
  PerExampleGradients result;
  result.logits = logits.detach();
  const auto named = model.net()->named_parameters();
  for (const auto& item : named) {
    const auto found = by_parameter.find(item.value().unsafeGetTensorImpl());
    if (found == by_parameter.end()) {
      throw Error("per-example gradients: no layer computes parameter '" + item.key() + "'");
    }
    result.gradients.push_back(found->second);
  }
  return result;
}

PerExampleGradients per_example_gradients_by_loop(models::BuiltinClassifier& model,
                                                  const torch::Tensor& images,
                                                  const torch::Tensor& labels) {
  check_per_example_model(model);
  const auto parameters = model.parameters();
  std::vector<std::vector<torch::Tensor>> per_parameter(parameters.size());
  std::vector<torch::Tensor> logits;
  for (int64_t i = 0; i < images.size(0); ++i) {
    const auto out = model.forward(images.slice(0, i, i + 1));
    const auto loss = nn::functional::cross_entropy(out, labels.slice(0, i, i + 1));
    const auto grads = torch::autograd::grad({loss}, parameters, {}, false, false, true);
    for (size_t p = 0; p < parameters.size(); ++p) {
      per_parameter[p].push_back(grads[p].defined() ? grads[p] : torch::zeros_like(parameters[p]));
    }
    logits.push_back(out.detach());
  }
  PerExampleGradients result;
  for (auto& gradients : per_parameter) result.gradients.push_back(torch::stack(gradients));
  result.logits = torch::cat(logits);
  return result;
}

}  // namespace privaudit::train
