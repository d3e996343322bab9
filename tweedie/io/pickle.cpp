#include "tweedie/io/pickle.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>

#include "tweedie/core/error.h"
#include "tweedie/io/byte_order.h"

namespace tweedie::io::pickle {

namespace {

// Deeper nesting than this is rejected; it bounds recursion when values are walked or freed.
constexpr int kMaxDepth = 200;
// Longest "module\nname\n" line accepted for GLOBAL.
constexpr size_t kMaxGlobalLine = 256;
// Most tensor dimensions accepted.
constexpr size_t kMaxDims = 64;

// Names of every pickle opcode (protocols 0-5), for error messages.
const char* opcode_name(uint8_t op) {
  switch (op) {
    case '(': return "MARK";
    case '.': return "STOP";
    case '0': return "POP";
    case '1': return "POP_MARK";
    case '2': return "DUP";
    case 'F': return "FLOAT";
    case 'I': return "INT";
    case 'J': return "BININT";
    case 'K': return "BININT1";
    case 'L': return "LONG";
    case 'M': return "BININT2";
    case 'N': return "NONE";
    case 'P': return "PERSID";
    case 'Q': return "BINPERSID";
    case 'R': return "REDUCE";
    case 'S': return "STRING";
    case 'T': return "BINSTRING";
    case 'U': return "SHORT_BINSTRING";
    case 'V': return "UNICODE";
    case 'X': return "BINUNICODE";
    case 'a': return "APPEND";
    case 'b': return "BUILD";
    case 'c': return "GLOBAL";
    case 'd': return "DICT";
    case '}': return "EMPTY_DICT";
    case 'e': return "APPENDS";
    case 'g': return "GET";
    case 'h': return "BINGET";
    case 'i': return "INST";
    case 'j': return "LONG_BINGET";
    case 'l': return "LIST";
    case ']': return "EMPTY_LIST";
    case 'o': return "OBJ";
    case 'p': return "PUT";
    case 'q': return "BINPUT";
    case 'r': return "LONG_BINPUT";
    case 's': return "SETITEM";
    case 't': return "TUPLE";
    case ')': return "EMPTY_TUPLE";
    case 'u': return "SETITEMS";
    case 'G': return "BINFLOAT";
    case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES";
    case 0x80: return "PROTO";
    case 0x81: return "NEWOBJ";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 0x85: return "TUPLE1";
    case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3";
    case 0x88: return "NEWTRUE";
    case 0x89: return "NEWFALSE";
    case 0x8a: return "LONG1";
    case 0x8b: return "LONG4";
    case 0x8c: return "SHORT_BINUNICODE";
    case 0x8d: return "BINUNICODE8";
    case 0x8e: return "BINBYTES8";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x92: return "NEWOBJ_EX";
    case 0x93: return "STACK_GLOBAL";
    case 0x94: return "MEMOIZE";
    case 0x95: return "FRAME";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    default: return nullptr;
  }
}

std::string describe_opcode(uint8_t op) {
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%02x", op);
  const char* name = opcode_name(op);
  return name ? std::string(name) + " (" + hex + ")" : std::string("unknown opcode ") + hex;
}

// torch.<T>Storage classes that persistent ids name, and their element types.
bool storage_dtype(const std::string& global, torch::ScalarType* dtype) {
  static const std::pair<const char*, torch::ScalarType> kTable[] = {
      {"torch.FloatStorage", torch::kFloat},     {"torch.DoubleStorage", torch::kDouble},
      {"torch.HalfStorage", torch::kHalf},       {"torch.BFloat16Storage", torch::kBFloat16},
      {"torch.LongStorage", torch::kLong},       {"torch.IntStorage", torch::kInt},
      {"torch.ShortStorage", torch::kShort},     {"torch.CharStorage", torch::kChar},
      {"torch.ByteStorage", torch::kByte},       {"torch.BoolStorage", torch::kBool},
  };
  for (const auto& [name, type] : kTable) {
    if (global == name) {
      if (dtype) *dtype = type;
      return true;
    }
  }
  return false;
}

bool allowed_global(const std::string& global) {
  return global == "collections.OrderedDict" || global == "torch._utils._rebuild_tensor_v2" ||
         global == "torch._utils._rebuild_tensor" || global == "torch._utils._rebuild_parameter" ||
         global == "torch._utils._rebuild_parameter_with_state" || global == "torch.device" ||
         storage_dtype(global, nullptr);
}

ValuePtr make(Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

ValuePtr make_int(int64_t i) {
  auto v = make(Kind::kInt);
  v->integer = i;
  return v;
}

ValuePtr make_bool(bool b) {
  auto v = make(Kind::kBool);
  v->boolean = b;
  return v;
}

ValuePtr make_string(std::string s, Kind kind = Kind::kString) {
  auto v = make(kind);
  v->text = std::move(s);
  return v;
}

// Key under which a dict indexes scalar keys (Python: 1 == True, so bools share ints' keys).
bool dict_key(const Value& key, std::string* out) {
  switch (key.kind) {
    case Kind::kString: *out = "s" + key.text; return true;
    case Kind::kInt: *out = "i" + std::to_string(key.integer); return true;
    case Kind::kBool: *out = key.boolean ? "i1" : "i0"; return true;
    case Kind::kNone: *out = "n"; return true;
    default: return false;
  }
}

class Machine {
 public:
  Machine(std::string_view bytes, size_t pos, const std::string& where)
      : bytes_(bytes), pos_(pos), where_(where) {}

  Result run(size_t* end);

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw InputError(where_ + ": " + what + " (pickle offset " + std::to_string(op_pos_) + ")");
  }

  // ---- input ----
  std::string_view take(uint64_t n) {
    if (n > bytes_.size() - pos_) fail("truncated pickle");
    std::string_view s = bytes_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  template <typename T>
  T read() {
    return load_le<T>(take(sizeof(T)).data());
  }
  std::string read_line() {
    size_t limit = std::min(bytes_.size(), pos_ + kMaxGlobalLine);
    const char* begin = bytes_.data() + pos_;
    const void* nl = std::memchr(begin, '\n', limit - pos_);
    if (!nl) fail("unterminated GLOBAL name");
    std::string line(begin, static_cast<const char*>(nl));
    pos_ += line.size() + 1;
    return line;
  }

  // ---- stack ----
  void push(ValuePtr v) { stack_.push_back(std::move(v)); }
  ValuePtr pop() {
    if (stack_.size() <= stack_floor()) fail("stack underflow");
    ValuePtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  const ValuePtr& top() const {
    if (stack_.size() <= stack_floor()) fail("stack underflow");
    return stack_.back();
  }
  // Items pushed since the last MARK cannot be popped by ordinary opcodes.
  size_t stack_floor() const { return marks_.empty() ? 0 : marks_.back(); }
  std::vector<ValuePtr> pop_mark() {
    if (marks_.empty()) fail("MARK expected");
    size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> items(std::make_move_iterator(stack_.begin() + mark),
                                std::make_move_iterator(stack_.end()));
    stack_.resize(mark);
    return items;
  }

  // ---- object graph ----
  // Records that `child` now lives inside `parent` (see the header comment).
  void adopt(Value& parent, const ValuePtr& child) {
    child->frozen = true;  // before the check, so that inserting a container into itself fails
    if (parent.frozen)
      fail("a container is modified after being nested (recursive objects are not supported)");
    parent.depth = std::max(parent.depth, child->depth + 1);
    if (parent.depth > kMaxDepth)
      fail("objects nested deeper than " + std::to_string(kMaxDepth) + " levels");
  }
  ValuePtr make_tuple(std::vector<ValuePtr> items) {
    auto t = make(Kind::kTuple);
    for (const auto& item : items) adopt(*t, item);
    t->items = std::move(items);
    return t;
  }
  void set_item(const ValuePtr& dict, ValuePtr key, ValuePtr value) {
    if (dict->kind != Kind::kDict) fail(std::string("SETITEM on a ") + kind_name(dict->kind));
    adopt(*dict, key);
    adopt(*dict, value);
    std::string k;
    if (dict_key(*key, &k)) {
      auto [it, inserted] = dict->key_index.emplace(k, dict->entries.size());
      if (!inserted) {  // Python keeps the first key object and the last value
        dict->entries[it->second].second = std::move(value);
        return;
      }
    }
    dict->entries.emplace_back(std::move(key), std::move(value));
  }
  void append(const ValuePtr& list, ValuePtr item) {
    if (list->kind != Kind::kList) fail(std::string("APPEND on a ") + kind_name(list->kind));
    adopt(*list, item);
    list->items.push_back(std::move(item));
  }
  void memo_put(uint64_t index) { memo_[index] = top(); }
  void memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) fail("memo index " + std::to_string(index) + " was never stored");
    push(it->second);
  }

  // ---- opcodes with substance ----
  void op_global(const std::string& module, const std::string& name);
  void op_reduce();
  void op_build();
  void op_persid();
  ValuePtr rebuild_tensor(const std::vector<ValuePtr>& args);
  int64_t int_arg(const ValuePtr& v, const char* what) const;
  std::vector<int64_t> int_tuple(const ValuePtr& v, const char* what) const;
  int64_t read_long1();
  void execute(uint8_t op);

  std::string_view bytes_;
  size_t pos_;
  size_t op_pos_ = 0;
  const std::string& where_;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, ValuePtr> memo_;
  std::vector<std::shared_ptr<const StorageRef>> storages_;
  bool stopped_ = false;
  ValuePtr result_;
};

Result Machine::run(size_t* end) {
  if (pos_ > bytes_.size()) fail("truncated pickle");
  while (!stopped_) {
    op_pos_ = pos_;
    execute(static_cast<uint8_t>(take(1)[0]));
  }
  *end = pos_;
  return Result{std::move(result_), std::move(storages_)};
}

void Machine::execute(uint8_t op) {
  switch (op) {
    case 0x80: {  // PROTO
      uint8_t proto = read<uint8_t>();
      if (proto > 5) fail("unsupported pickle protocol " + std::to_string(proto));
      return;
    }
    case 0x95: {  // FRAME: a length prefix for the next opcodes; framing carries no data
      uint64_t len = read<uint64_t>();
      if (len > bytes_.size() - pos_) fail("truncated pickle frame");
      return;
    }
    case '.':  // STOP
      result_ = pop();
      stopped_ = true;
      return;
    case '(':  // MARK
      marks_.push_back(stack_.size());
      return;
    case '}': push(make(Kind::kDict)); return;   // EMPTY_DICT
    case ']': push(make(Kind::kList)); return;   // EMPTY_LIST
    case ')': push(make(Kind::kTuple)); return;  // EMPTY_TUPLE
    case 't': push(make_tuple(pop_mark())); return;  // TUPLE
    case 0x85:  // TUPLE1
    case 0x86:  // TUPLE2
    case 0x87: {  // TUPLE3
      std::vector<ValuePtr> items(op - 0x84);
      for (size_t i = items.size(); i-- > 0;) items[i] = pop();
      push(make_tuple(std::move(items)));
      return;
    }
    case 's': {  // SETITEM
      ValuePtr value = pop();
      ValuePtr key = pop();
      set_item(top(), std::move(key), std::move(value));
      return;
    }
    case 'u': {  // SETITEMS
      std::vector<ValuePtr> items = pop_mark();
      if (items.size() % 2) fail("SETITEMS with an odd number of items");
      const ValuePtr& dict = top();
      for (size_t i = 0; i < items.size(); i += 2) set_item(dict, items[i], items[i + 1]);
      return;
    }
    case 'a': {  // APPEND
      ValuePtr item = pop();
      append(top(), std::move(item));
      return;
    }
    case 'e': {  // APPENDS
      std::vector<ValuePtr> items = pop_mark();
      const ValuePtr& list = top();
      for (auto& item : items) append(list, std::move(item));
      return;
    }
    case 'J': push(make_int(read<int32_t>())); return;   // BININT
    case 'K': push(make_int(read<uint8_t>())); return;   // BININT1
    case 'M': push(make_int(read<uint16_t>())); return;  // BININT2
    case 0x8a: push(make_int(read_long1())); return;     // LONG1
    case 'G': {  // BINFLOAT: big-endian IEEE double
      uint64_t bits = __builtin_bswap64(read<uint64_t>());
      auto v = make(Kind::kFloat);
      std::memcpy(&v->real, &bits, sizeof bits);
      push(v);
      return;
    }
    case 0x88: push(make_bool(true)); return;   // NEWTRUE
    case 0x89: push(make_bool(false)); return;  // NEWFALSE
    case 'N': push(make(Kind::kNone)); return;  // NONE
    case 'X': push(make_string(std::string(take(read<uint32_t>())))); return;  // BINUNICODE
    case 0x8c: push(make_string(std::string(take(read<uint8_t>())))); return;  // SHORT_BINUNICODE
    case 0x8d: push(make_string(std::string(take(read<uint64_t>())))); return;  // BINUNICODE8
    case 'q': memo_put(read<uint8_t>()); return;   // BINPUT
    case 'r': memo_put(read<uint32_t>()); return;  // LONG_BINPUT
    case 0x94: memo_put(memo_.size()); return;     // MEMOIZE
    case 'h': memo_get(read<uint8_t>()); return;   // BINGET
    case 'j': memo_get(read<uint32_t>()); return;  // LONG_BINGET
    case 'c': {  // GLOBAL
      std::string module = read_line();
      std::string name = read_line();
      op_global(module, name);
      return;
    }
    case 0x93: {  // STACK_GLOBAL
      ValuePtr name = pop();
      ValuePtr module = pop();
      if (module->kind != Kind::kString || name->kind != Kind::kString)
        fail("STACK_GLOBAL needs two strings");
      op_global(module->text, name->text);
      return;
    }
    case 'R': op_reduce(); return;
    case 'b': op_build(); return;
    case 'Q': op_persid(); return;
    default: fail("unsupported pickle opcode " + describe_opcode(op));
  }
}

int64_t Machine::read_long1() {
  // n bytes of little-endian two's complement; we only need values that fit 64 bits.
  uint8_t n = read<uint8_t>();
  if (n > 8) fail("LONG1 integer wider than 64 bits");
  std::string_view b = take(n);
  if (n == 0) return 0;
  uint64_t u = 0;
  for (size_t i = 0; i < n; ++i) u |= static_cast<uint64_t>(static_cast<uint8_t>(b[i])) << (8 * i);
  if (n < 8 && (static_cast<uint8_t>(b[n - 1]) & 0x80)) u |= ~uint64_t{0} << (8 * n);  // sign
  int64_t v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}

void Machine::op_global(const std::string& module, const std::string& name) {
  std::string global = module + "." + name;
  if (!allowed_global(global)) {
    std::string hint = module.rfind("__torch__", 0) == 0 ? " (TorchScript archives are not supported)" : "";
    fail("unsupported global '" + global + "'" + hint);
  }
  push(make_string(std::move(global), Kind::kGlobal));
}

int64_t Machine::int_arg(const ValuePtr& v, const char* what) const {
  if (v->kind != Kind::kInt) fail(std::string(what) + " must be an int, got " + kind_name(v->kind));
  return v->integer;
}

std::vector<int64_t> Machine::int_tuple(const ValuePtr& v, const char* what) const {
  if (v->kind != Kind::kTuple) fail(std::string(what) + " must be a tuple, got " + kind_name(v->kind));
  if (v->items.size() > kMaxDims) fail(std::string(what) + " has too many dimensions");
  std::vector<int64_t> out;
  for (const auto& item : v->items) out.push_back(int_arg(item, what));
  return out;
}

void Machine::op_reduce() {
  ValuePtr args = pop();
  ValuePtr callable = pop();
  if (callable->kind != Kind::kGlobal) fail(std::string("REDUCE of a ") + kind_name(callable->kind));
  if (args->kind != Kind::kTuple) fail("REDUCE arguments are not a tuple");
  const std::string& f = callable->text;
  const std::vector<ValuePtr>& a = args->items;
  if (f == "collections.OrderedDict") {
    if (!a.empty()) fail("OrderedDict() with arguments is not supported");
    push(make(Kind::kDict));
  } else if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor") {
    push(rebuild_tensor(a));
  } else if (f == "torch._utils._rebuild_parameter" ||
             f == "torch._utils._rebuild_parameter_with_state") {
    // (data, requires_grad, backward_hooks[, state]): a Parameter is its data tensor.
    if (a.size() < 3 || a[0]->kind != Kind::kTensor) fail("bad arguments to " + f);
    push(a[0]);
  } else if (f == "torch.device") {
    push(make(Kind::kOpaque));
  } else {
    fail("cannot call '" + f + "'");
  }
}

ValuePtr Machine::rebuild_tensor(const std::vector<ValuePtr>& a) {
  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks
  // [, metadata]); the legacy _rebuild_tensor takes the first four.
  if (a.size() < 4 || a.size() > 7) fail("bad number of arguments to _rebuild_tensor");
  if (a[0]->kind != Kind::kStorage) fail("_rebuild_tensor expects a storage");
  auto t = std::make_shared<TensorRef>();
  t->storage = a[0]->storage;
  t->offset = int_arg(a[1], "storage offset");
  t->size = int_tuple(a[2], "tensor size");
  t->stride = int_tuple(a[3], "tensor stride");
  if (t->size.size() != t->stride.size()) fail("tensor size and stride differ in length");
  if (t->offset < 0) fail("negative storage offset");

  // The furthest element addressed must lie inside the storage (unless the tensor is empty).
  bool empty = false;
  for (size_t d = 0; d < t->size.size(); ++d) {
    if (t->size[d] < 0 || t->stride[d] < 0) fail("negative tensor size or stride");
    empty = empty || t->size[d] == 0;
  }
  if (!empty) {
    int64_t last = t->offset;
    for (size_t d = 0; d < t->size.size(); ++d) {
      int64_t step;
      if (__builtin_mul_overflow(t->size[d] - 1, t->stride[d], &step) ||
          __builtin_add_overflow(last, step, &last))
        fail("tensor extent overflows");
    }
    if (last >= t->storage->numel)
      fail("tensor (offset " + std::to_string(t->offset) + ") reaches element " +
           std::to_string(last) + " of storage '" + t->storage->key + "' with " +
           std::to_string(t->storage->numel) + " elements");
  }
  auto v = make(Kind::kTensor);
  v->tensor = std::move(t);
  return v;
}

void Machine::op_build() {
  ValuePtr state = pop();
  const ValuePtr& obj = top();
  // OrderedDict's instance attributes (state dicts carry `_metadata`) are not needed.
  if (obj->kind != Kind::kDict) fail(std::string("BUILD on a ") + kind_name(obj->kind));
  adopt(*obj, state);
}

void Machine::op_persid() {
  // ('storage', torch.<T>Storage, key, location, numel[, view_metadata])
  ValuePtr pid = pop();
  const auto& p = pid->items;
  if (pid->kind != Kind::kTuple || p.size() < 5 || p.size() > 6 || p[0]->kind != Kind::kString ||
      p[0]->text != "storage")
    fail("unsupported persistent id");
  auto s = std::make_shared<StorageRef>();
  if (p[1]->kind != Kind::kGlobal || !storage_dtype(p[1]->text, &s->dtype))
    fail("persistent id without a storage type");
  if (p[2]->kind != Kind::kString || p[3]->kind != Kind::kString)
    fail("persistent id with a non-string key or location");
  s->key = p[2]->text;
  s->location = p[3]->text;
  s->root_numel = int_arg(p[4], "storage size");
  if (s->root_numel < 0) fail("negative storage size");
  s->numel = s->root_numel;
  if (p.size() == 6 && p[5]->kind != Kind::kNone) {
    // Legacy storage view: (view_key, offset, size) in elements of the root storage.
    const ValuePtr& view = p[5];
    if (view->kind != Kind::kTuple || view->items.size() != 3) fail("bad storage view");
    s->offset = int_arg(view->items[1], "storage view offset");
    s->numel = int_arg(view->items[2], "storage view size");
    if (s->offset < 0 || s->numel < 0 || s->offset > s->root_numel ||
        s->numel > s->root_numel - s->offset)
      fail("storage view outside storage '" + s->key + "'");
  }
  storages_.push_back(s);
  auto v = make(Kind::kStorage);
  v->storage = std::move(s);
  push(v);
}

}  // namespace

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::kNone: return "None";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kString: return "str";
    case Kind::kTuple: return "tuple";
    case Kind::kList: return "list";
    case Kind::kDict: return "dict";
    case Kind::kGlobal: return "global";
    case Kind::kStorage: return "storage";
    case Kind::kTensor: return "tensor";
    case Kind::kOpaque: return "object";
  }
  return "?";
}

Result load(std::string_view bytes, size_t* pos, const std::string& where) {
  Machine machine(bytes, *pos, where);
  return machine.run(pos);
}

}  // namespace tweedie::io::pickle
