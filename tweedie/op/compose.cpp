#include "tweedie/op/compose.h"

#include "tweedie/core/error.h"

namespace tweedie::op {
namespace {

bool all_linear(const std::vector<std::shared_ptr<Operator>>& parts) {
  for (auto& p : parts)
    if (!p->linear()) return false;
  return true;
}

std::string join(const std::vector<std::shared_ptr<Operator>>& parts, const char* sep) {
  std::string s;
  for (auto& p : parts) s += (s.empty() ? "" : sep) + p->spec();
  return s;
}

// y = A_k(...A_1(x)); Aᵀ = A_1ᵀ ∘ ... ∘ A_kᵀ.
class Chain : public Operator {
 public:
  explicit Chain(std::vector<std::shared_ptr<Operator>> parts)
      : Operator(parts.front()->in_shape(), parts.back()->out_shape()), parts_(std::move(parts)) {}
  std::string name() const override { return "chain"; }
  std::string spec() const override { return join(parts_, "|"); }
  bool linear() const override { return all_linear(parts_); }
  bool complex_output() const override { return parts_.back()->complex_output(); }
  torch::Tensor apply(const torch::Tensor& x) const override {
    auto y = x;
    for (auto& p : parts_) y = p->apply(y);
    return y;
  }
  torch::Tensor adjoint(const torch::Tensor& y) const override {
    if (!linear()) return Operator::adjoint(y);
    auto x = y;
    for (auto it = parts_.rbegin(); it != parts_.rend(); ++it) x = (*it)->adjoint(x);
    return x;
  }
  void to(const torch::Device& d) override {
    for (auto& p : parts_) p->to(d);
  }

 private:
  std::vector<std::shared_ptr<Operator>> parts_;
};

Shape stacked_out(const std::vector<std::shared_ptr<Operator>>& parts) {
  int64_t m = 0;
  for (auto& p : parts) m += numel(p->out_shape());
  return {m};
}

// y = [A_1 x; ...; A_k x]; Aᵀ y = Σ A_kᵀ y_k.
class Stack : public Operator {
 public:
  explicit Stack(std::vector<std::shared_ptr<Operator>> parts)
      : Operator(parts.front()->in_shape(), stacked_out(parts)), parts_(std::move(parts)) {}
  std::string name() const override { return "stack"; }
  std::string spec() const override { return join(parts_, "&"); }
  bool linear() const override { return all_linear(parts_); }
  bool complex_output() const override { return parts_.front()->complex_output(); }
  torch::Tensor apply(const torch::Tensor& x) const override {
    std::vector<torch::Tensor> ys;
    for (auto& p : parts_) ys.push_back(p->apply(x).flatten(1));
    return torch::cat(ys, 1);
  }
  torch::Tensor adjoint(const torch::Tensor& y) const override {
    if (!linear()) return Operator::adjoint(y);
    torch::Tensor x;
    int64_t at = 0;
    for (auto& p : parts_) {
      int64_t m = numel(p->out_shape());
      auto xk = p->adjoint(y.slice(1, at, at + m).reshape(with_batch(y.size(0), p->out_shape())));
      x = x.defined() ? x + xk : xk;
      at += m;
    }
    return x;
  }
  void to(const torch::Device& d) override {
    for (auto& p : parts_) p->to(d);
  }

 private:
  std::vector<std::shared_ptr<Operator>> parts_;
};

}  // namespace

std::shared_ptr<Operator> chain(std::vector<std::shared_ptr<Operator>> parts) {
  if (parts.empty()) throw InputError("chain: no operators");
  for (size_t i = 1; i < parts.size(); ++i)
    if (parts[i]->in_shape() != parts[i - 1]->out_shape())
      throw InputError("chain: " + parts[i - 1]->name() + " gives " + shape_text(parts[i - 1]->out_shape()) +
                       " but " + parts[i]->name() + " takes " + shape_text(parts[i]->in_shape()));
  return std::make_shared<Chain>(std::move(parts));
}

std::shared_ptr<Operator> stack(std::vector<std::shared_ptr<Operator>> parts) {
  if (parts.empty()) throw InputError("stack: no operators");
  for (auto& p : parts) {
    if (p->in_shape() != parts[0]->in_shape())
      throw InputError("stack: " + p->name() + " takes " + shape_text(p->in_shape()) + " but " + parts[0]->name() +
                       " takes " + shape_text(parts[0]->in_shape()));
    if (p->complex_output() != parts[0]->complex_output())
      throw InputError("stack: cannot stack complex and real outputs (" + p->name() + ", " + parts[0]->name() + ")");
  }
  return std::make_shared<Stack>(std::move(parts));
}

}  // namespace tweedie::op
